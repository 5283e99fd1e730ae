use std::fs;

use ring::signature::{UnparsedPublicKey, ED25519};
use rustls_pki_types::pem::PemObject;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::*;
use crate::io::tls::member_of;

fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

fn options(out: &Path, codes: &[&str]) -> CertsOptions {
    CertsOptions {
        out: out.to_path_buf(),
        countries: codes.iter().map(|c| country(c)).collect(),
        days: 90,
        force: false,
    }
}

fn pem_der(path: &Path) -> Vec<u8> {
    rustls_pki_types::CertificateDer::from_pem_file(path).unwrap().to_vec()
}

use crate::domain::hex::encode as hex;

#[test]
fn writes_the_example_pki_and_consortium_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/pki");
    let summary = generate(&options(&out, &["DEU", "FRA", "ITA"])).unwrap();
    let today = Date::today();
    assert_eq!(summary.valid_from, today);
    assert_eq!(summary.valid_until.day_number(), today.day_number() + 90);

    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = ["ca.key", "ca.pem", "consortium.toml"].map(String::from).into();
    for code in ["deu", "fra", "ita"] {
        expected.extend([".key", ".pem", ".sign.pk8"].map(|ext| format!("{code}{ext}")));
    }
    expected.sort();
    assert_eq!(names, expected);

    // The consortium file: the fixed head, then one block per member in order.
    let toml = fs::read_to_string(&summary.consortium).unwrap();
    let mut wanted = String::from(
        "# Accord consortium file: identical at every member.\nname = \"accord-example\"\n\
         test_only = true\n\n[definitions]\nmin_duration_months = 12\n\
         unknown_duration = \"count\"\n\n[disclosure]\nmethod = \"threshold\"\nthreshold = 5\n\n\
         [reconcile]\nrule = \"receiving\"\nasymmetry_flag = 0.2\n",
    );
    for member in &summary.members {
        wanted.push_str(&format!(
            "\n[[members]]\ncountry = \"{}\"\n\n[[members.keys]]\npublic_key = \"{}\"\n\
             valid_from = \"{today}\"\nvalid_until = \"{}\"\n",
            member.country,
            hex(&member.signing_public_key),
            summary.valid_until
        ));
    }
    assert_eq!(toml, wanted);
    let parsed: toml::Value = toml::from_str(&toml).unwrap();
    assert_eq!(parsed["members"][1]["country"].as_str(), Some("FRA"));

    // Each signing key signs what its listed public key verifies.
    for member in &summary.members {
        let pkcs8 = fs::read(&member.signing_key).unwrap();
        // PKCS#8 v1 (version 0), the form `openssl pkey` reads.
        assert_eq!(pkcs8.len(), 48);
        assert_eq!(&pkcs8[2..5], &[0x02, 0x01, 0x00]);
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).unwrap();
        let signature = pair.sign(b"accord");
        UnparsedPublicKey::new(&ED25519, member.signing_public_key)
            .verify(b"accord", signature.as_ref())
            .unwrap();
        assert_eq!(member.cert, out.join(format!("{}.pem", member.country.lower())));
    }
    let keys: Vec<_> = summary.members.iter().map(|m| m.signing_public_key).collect();
    assert!(keys[0] != keys[1] && keys[1] != keys[2]);
}

#[test]
fn member_certificates_carry_the_spec_names_and_usages() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&options(dir.path(), &["DEU", "FRA"])).unwrap();
    let ca_der = pem_der(&summary.ca_cert);
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    assert_eq!(ca.subject().to_string(), "CN=Accord example CA");
    assert!(ca.is_ca());

    let mut serials = vec![ca.raw_serial().to_vec()];
    for member in &summary.members {
        let der = pem_der(&member.cert);
        assert_eq!(member_of(&der).unwrap(), member.country);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(cert.subject().to_string(), format!("CN={}", member.country));
        assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw());
        assert!(!cert.is_ca());
        let code = member.country.lower();
        let names = &cert.subject_alternative_name().unwrap().unwrap().value.general_names;
        let dns_name = format!("{code}.accord");
        let urn = format!("urn:accord:member:{}", member.country);
        assert!(names.contains(&GeneralName::URI(&urn)));
        assert!(names.contains(&GeneralName::DNSName(&dns_name)));
        assert!(names.contains(&GeneralName::DNSName("localhost")));
        assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
        let usage = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(usage.server_auth && usage.client_auth);
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
        assert_eq!(days, 90);
        serials.push(cert.raw_serial().to_vec());
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 3, "serials are distinct");
    assert!(serials.iter().all(|s| s.len() == 16), "random 16-byte serials");
}

#[cfg(unix)]
#[test]
fn private_keys_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    generate(&options(dir.path(), &["DEU"])).unwrap();
    let mode = |name: &str| {
        let meta = fs::metadata(dir.path().join(name)).unwrap();
        meta.permissions().mode() & 0o777
    };
    for secret in ["ca.key", "deu.key", "deu.sign.pk8"] {
        assert_eq!(mode(secret), 0o600, "{secret}");
    }
    // Force keeps a loosened key file private when it is rewritten.
    fs::set_permissions(dir.path().join("deu.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let mut again = options(dir.path(), &["DEU"]);
    again.force = true;
    generate(&again).unwrap();
    assert_eq!(mode("deu.key"), 0o600);
}

#[test]
fn refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let clash = dir.path().join("fra.pem");
    fs::write(&clash, "keep me").unwrap();

    // Only fra.pem clashes, yet nothing at all is written.
    let error = generate(&options(dir.path(), &["ITA", "FRA"])).unwrap_err();
    assert!(matches!(&error, CertsError::Exists(path) if *path == clash), "{error}");
    assert!(error.to_string().contains("fra.pem"), "{error}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(fs::read_to_string(&clash).unwrap(), "keep me");

    let mut forced = options(dir.path(), &["ITA", "FRA"]);
    forced.force = true;
    generate(&forced).unwrap();
    assert_eq!(member_of(&pem_der(&clash)).unwrap(), country("FRA"));
}

#[test]
fn refuses_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], u32, &str); 5] = [
        (&[], 30, "no member"),
        (&["DEU", "DEU"], 30, "DEU is listed twice"),
        (&["XXX"], 30, "XXX is not an ISO"),
        (&["DEU"], 0, "1 to 36500 days, got 0"),
        (&["DEU"], 36_501, "got 36501"),
    ];
    for (codes, days, message) in cases {
        let mut opts = options(dir.path(), codes);
        opts.days = days;
        let error = generate(&opts).unwrap_err().to_string();
        assert!(error.contains(message), "{error}");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn revoked_serials(path: &Path) -> Vec<Vec<u8>> {
    let der = rustls_pki_types::CertificateRevocationListDer::from_pem_file(path).unwrap();
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    let mut serials: Vec<Vec<u8>> = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect();
    serials.sort();
    serials
}

fn serial_of(path: &Path) -> Vec<u8> {
    let der = pem_der(path);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    cert.raw_serial().to_vec()
}

#[test]
fn revoke_writes_a_crl_that_accumulates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path();
    generate(&options(pki, &["DEU", "FRA", "ITA"])).unwrap();
    let crl = pki.join("crl.pem");
    revoke(pki, &pki.join("fra.pem"), &crl).unwrap();
    assert_eq!(revoked_serials(&crl), vec![serial_of(&pki.join("fra.pem"))]);

    revoke(pki, &pki.join("ita.pem"), &crl).unwrap();
    revoke(pki, &pki.join("ita.pem"), &crl).unwrap();
    let mut both = vec![serial_of(&pki.join("fra.pem")), serial_of(&pki.join("ita.pem"))];
    both.sort();
    assert_eq!(revoked_serials(&crl), both);

    // The CRL carries the CA's name and key identifier (tls's end-to-end tests prove that
    // rustls accepts its signature).
    let der = rustls_pki_types::CertificateRevocationListDer::from_pem_file(&crl).unwrap();
    let (_, parsed) = CertificateRevocationList::from_der(&der).unwrap();
    let ca_der = pem_der(&pki.join("ca.pem"));
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    assert_eq!(parsed.issuer().as_raw(), ca.subject().as_raw());
    let ski = ca.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
        _ => None,
    });
    let aki = parsed.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|id| id.0.to_vec()),
        _ => None,
    });
    assert_eq!(aki, ski);
}

#[test]
fn revoke_refuses_certificates_from_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path();
    generate(&options(pki, &["DEU"])).unwrap();
    let foreign = generate_foreign_ca(&pki.join("elsewhere"), country("DEU")).unwrap();
    let error = revoke(pki, &foreign.cert, &pki.join("crl.pem")).unwrap_err();
    assert!(matches!(error, CertsError::NotIssuedByCa { .. }), "{error}");
    assert!(!pki.join("crl.pem").exists());

    // The foreign certificate looks like a real member's, signed by a different CA.
    let der = pem_der(&foreign.cert);
    assert_eq!(member_of(&der).unwrap(), country("DEU"));
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(cert.issuer().to_string(), "CN=Foreign example CA");

    let missing = revoke(&pki.join("nowhere"), &pki.join("deu.pem"), &pki.join("crl.pem"));
    assert!(missing.unwrap_err().to_string().contains("ca.pem"));
}

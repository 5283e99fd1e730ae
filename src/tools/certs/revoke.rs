//! `accord certs` revocation: a CRL signed by the example CA that revokes a member's
//! certificate. The CRL must name its issuer byte for byte as the CA certificate names its
//! subject, or verifiers ignore it; this file makes sure of that and refuses otherwise.

use std::fs;
use std::path::Path;

use rcgen::{
    CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, DnValue, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use x509_parser::asn1_rs::Tag;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::files::{write_file, OutFile};
use super::CertsError;
use crate::domain::date::{unix_now, Date};

/// How long a CRL written by [`revoke`] claims to be current. rustls does not enforce a CRL's
/// `nextUpdate` unless asked, so this is informative for other verifiers.
const CRL_DAYS: i64 = 365;

/// Writes to `out_crl` a CRL (PEM) signed by the CA in `ca_dir` (`ca.pem`, `ca.key`) that
/// revokes `member_cert`. If `out_crl` already holds a CRL from the same CA, the serials it
/// revokes stay revoked, so one file can accumulate revocations.
pub fn revoke(ca_dir: &Path, member_cert: &Path, out_crl: &Path) -> Result<(), CertsError> {
    let ca_path = ca_dir.join("ca.pem");
    let ca_der = read_certificate(&ca_path)?;
    let ca_cert = parse_certificate(&ca_path, &ca_der)?;
    let key_path = ca_dir.join("ca.key");
    let key_pem = fs::read_to_string(&key_path).map_err(|source| CertsError::Read {
        path: key_path.clone(),
        source,
    })?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| CertsError::BadCaKey {
        path: key_path.clone(),
        reason: e.to_string(),
    })?;
    let issuer = issuer_from_certificate(&ca_path, &ca_cert, key)?;

    let member_der = read_certificate(member_cert)?;
    let member = parse_certificate(member_cert, &member_der)?;
    if member.issuer().as_raw() != ca_cert.subject().as_raw() {
        return Err(CertsError::NotIssuedByCa {
            cert: member_cert.to_path_buf(),
            ca: ca_path,
        });
    }

    let today = Date::today();
    let mut serials = previously_revoked(out_crl, &ca_cert)?;
    let serial = unsigned_serial(member.raw_serial());
    if !serials.contains(&serial) {
        serials.push(serial);
    }
    let revocation_time = to_datetime!(today);
    let params = CertificateRevocationListParams {
        this_update: revocation_time,
        next_update: to_datetime!(
            Date::from_day_number(today.day_number() + CRL_DAYS).expect("a year after today is before 10000")
        ),
        // Seconds since the epoch only grow, as RFC 5280 wants of CRL numbers.
        crl_number: SerialNumber::from(u64::try_from(unix_now()).unwrap_or(0)),
        issuing_distribution_point: None,
        revoked_certs: serials
            .into_iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time,
                reason_code: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: issuer_key_id(&ca_cert),
    };
    let crl = params.signed_by(&issuer)?;
    check_crl_issuer(out_crl, crl.der(), &ca_cert)?;
    write_file(&OutFile::public(out_crl.to_path_buf(), crl.pem()?))
}

fn read_certificate(path: &Path) -> Result<CertificateDer<'static>, CertsError> {
    let bytes = fs::read(path).map_err(|source| CertsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    CertificateDer::pem_slice_iter(&bytes)
        .next()
        .ok_or_else(|| CertsError::BadCertificate {
            path: path.to_path_buf(),
            reason: "no certificate in PEM".into(),
        })?
        .map_err(|e| CertsError::BadCertificate {
            path: path.to_path_buf(),
            reason: format!("bad PEM: {e}"),
        })
}

fn parse_certificate<'a>(path: &Path, der: &'a [u8]) -> Result<X509Certificate<'a>, CertsError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| CertsError::BadCertificate {
            path: path.to_path_buf(),
            reason: format!("not an X.509 certificate: {e}"),
        })
}

/// An rcgen issuer whose name encodes byte for byte like the CA certificate's subject (so
/// verifiers match the CRL to the CA), holding the CA key.
fn issuer_from_certificate(
    path: &Path,
    ca: &X509Certificate<'_>,
    key: KeyPair,
) -> Result<Issuer<'static, KeyPair>, CertsError> {
    let bad = |reason: String| CertsError::BadCertificate {
        path: path.to_path_buf(),
        reason,
    };
    if let Ok(Some(usage)) = ca.key_usage() {
        if !usage.value.crl_sign() {
            return Err(bad("CA certificate does not allow signing CRLs".into()));
        }
    }
    let mut name = DistinguishedName::new();
    for attribute in ca.subject().iter_attributes() {
        let oid: Vec<u64> = attribute
            .attr_type()
            .iter()
            .ok_or_else(|| bad("CA subject has an oversized attribute type".into()))?
            .collect();
        let value = attribute.attr_value();
        let text =
            String::from_utf8(value.data.to_vec()).map_err(|_| bad("CA subject attribute is not text".into()))?;
        let value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text),
            Tag::PrintableString => DnValue::PrintableString(text.try_into()?),
            Tag::Ia5String => DnValue::Ia5String(text.try_into()?),
            other => return Err(bad(format!("CA subject uses unsupported string type {other}"))),
        };
        name.push(DnType::from_oid(&oid), value);
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::CrlSign];
    params.key_identifier_method = issuer_key_id(ca);
    Ok(Issuer::new(params, key))
}

/// The CA's own subject key identifier, so the CRL's authority key identifier matches it even
/// for a CA made by other tooling.
fn issuer_key_id(ca: &X509Certificate<'_>) -> KeyIdMethod {
    ca.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(KeyIdMethod::PreSpecified(id.0.to_vec())),
            _ => None,
        })
        .unwrap_or(KeyIdMethod::Sha256)
}

/// A serial without DER's leading sign byte, as rcgen wants it.
fn unsigned_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len().saturating_sub(1));
    raw[start..].to_vec()
}

/// Serials already revoked by an existing CRL file from the same CA (none if there is no file).
fn previously_revoked(path: &Path, ca: &X509Certificate<'_>) -> Result<Vec<Vec<u8>>, CertsError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CertsError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let bad = |reason: String| CertsError::BadCrl {
        path: path.to_path_buf(),
        reason,
    };
    let der = CertificateRevocationListDer::from_pem_slice(&bytes).map_err(|e| bad(format!("bad PEM: {e}")))?;
    let (_, crl) = CertificateRevocationList::from_der(&der).map_err(|e| bad(format!("not a CRL: {e}")))?;
    if crl.issuer().as_raw() != ca.subject().as_raw() {
        return Err(bad("issued by another CA".into()));
    }
    Ok(crl
        .iter_revoked_certificates()
        .map(|revoked| unsigned_serial(revoked.raw_serial()))
        .collect())
}

/// Proves the CRL names its issuer exactly as the CA certificate does; otherwise verifiers
/// would silently ignore it and the revocation would not take effect.
fn check_crl_issuer(
    path: &Path,
    der: &CertificateRevocationListDer<'_>,
    ca: &X509Certificate<'_>,
) -> Result<(), CertsError> {
    let bad = |reason: String| CertsError::BadCrl {
        path: path.to_path_buf(),
        reason,
    };
    let (_, crl) = CertificateRevocationList::from_der(der).map_err(|e| bad(format!("not a CRL: {e}")))?;
    if crl.issuer().as_raw() != ca.subject().as_raw() {
        return Err(bad("the CA subject could not be reproduced in the CRL issuer".into()));
    }
    Ok(())
}

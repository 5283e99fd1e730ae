//! Accord with a PKI it did not make (SPEC §5: "certificates made by any standard CA tooling ...
//! work"). Every file in `tests/fixtures/openssl-pki/` was made by openssl (`make.sh` there): an
//! EC P-384 CA, DEU's TLS key as PKCS#1 RSA without extended key usage, FRA's as SEC1 EC P-256,
//! no localhost or IP names (peers dial by `tls_name`), Ed25519 signing keys from `openssl genpkey`
//! (DEU's PEM, FRA's DER), and a CRL from `openssl ca`. Real `accord serve` processes on
//! 127.0.0.1 exchange feeds both ways with them; a certificate revoked in that CRL, and one
//! without the member URI SAN, are refused with a one-line reason and change nothing.

use std::path::Path;

use crate::support::cli::*;
use crate::support::last_year;

/// Copies the openssl-made PKI into the site's `pki/`.
fn openssl_pki(site: &Site) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openssl-pki");
    let to = site.path("pki");
    std::fs::create_dir_all(&to).expect("pki dir");
    for entry in std::fs::read_dir(&from).expect("fixture dir") {
        let entry = entry.expect("fixture entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy fixture");
    }
}

/// Writes `<name>.toml` for `country` with the given TLS certificate, its store in `<data>/`,
/// the CRL, and `peer` as its one peer, dialled on 127.0.0.1 by DNS name.
#[allow(clippy::too_many_arguments)]
fn node_config(
    site: &Site,
    name: &str,
    country: &str,
    data: &str,
    cert: &str,
    key: &str,
    signing: &str,
    ports: (u16, u16),
    peer: &str,
) {
    let peer_name = format!("{}.interop.example", peer.to_lowercase());
    // The one config without the CRL stands for a node whose operator has not installed it yet.
    let crls = if name.ends_with("-nocrl") { "" } else { "\"pki/ca.crl\"" };
    site.write(
        &format!("{name}.toml"),
        &format!(
            "country = \"{country}\"\ndata_dir = \"{data}\"\nlisten = \"127.0.0.1:{}\"\n\
             consortium = \"pki/consortium.toml\"\n\n[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/{cert}\"\n\
             key = \"pki/{key}\"\ncrls = [{crls}]\n\n[signing]\nkey = \"pki/{signing}\"\n\n\
             [[peers]]\ncountry = \"{peer}\"\nendpoint = \"https://127.0.0.1:{}\"\ntls_name = \"{peer_name}\"\n",
            ports.0, ports.1
        ),
    );
}

/// Publishers in a `status --format json`, with their seqs.
fn feeds(site: &Site, config: &str) -> Vec<(String, u64)> {
    let status = site.status(config);
    let feeds = status["feeds"]
        .as_array()
        .unwrap_or_else(|| panic!("no feeds in {status}"));
    let mut feeds: Vec<(String, u64)> = feeds
        .iter()
        .map(|f| {
            (
                f["publisher"].as_str().expect("publisher").to_string(),
                f["seq"].as_u64().expect("seq"),
            )
        })
        .collect();
    feeds.sort();
    feeds
}

fn view_digest(site: &Site, config: &str) -> String {
    let status = site.status(config);
    let digest = status["view_digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no view_digest in {status}"));
    assert!(is_hex_digest(digest), "view_digest {digest}");
    digest.to_string()
}

#[test]
fn nodes_with_an_openssl_pki_exchange_feeds_and_refuse_revoked_or_nameless_certificates() {
    let site = Site::empty();
    openssl_pki(&site);
    site.synth(3000, 11, "records");
    let ports = (free_port(), free_port());
    node_config(
        &site,
        "deu",
        "DEU",
        "deu",
        "deu.pem",
        "deu.key",
        "deu.sign.pem",
        ports,
        "FRA",
    );
    // FRA's store, dialling DEU with each of its certificates in turn.
    for (name, cert) in [
        ("fra", "fra.pem"),
        ("fra-revoked", "fra-revoked.pem"),
        ("fra-revoked-nocrl", "fra-revoked.pem"),
        ("fra-nosan", "fra-nosan.pem"),
    ] {
        let ports = (ports.1, ports.0);
        node_config(&site, name, "FRA", "fra", cert, "fra.key", "fra.sign.der", ports, "DEU");
    }
    let year = last_year().to_string();
    for (config, file) in [("deu.toml", "records/deu.csv"), ("fra.toml", "records/fra.csv")] {
        site.ok(&format!("ingest --config {config} {file}"));
        site.ok(&format!("publish --config {config} --cube flows --period {year}"));
    }
    let fra_alone = vec![("FRA".to_string(), 1)];
    assert_eq!(feeds(&site, "fra.toml"), fra_alone);

    let mut deu = site.serve(&site.configured("DEU", "deu.toml", "deu"));

    // A node whose certificate its own CRL revokes, or that names no member, says so itself.
    let revoked = site.fails("sync --config fra-revoked.toml");
    revoked.stdout_has("DEU: failed: certificate pki/fra-revoked.pem is revoked in pki/ca.crl (serial ");
    revoked.reason_has(&["sync failed with 1 of 1 peers; DEU: certificate pki/fra-revoked.pem is revoked"]);
    let nameless = site.fails("sync --config fra-nosan.toml");
    nameless.reason_has(&[
        "DEU: certificate pki/fra-nosan.pem does not name a member",
        "urn:accord:member:<CODE>",
    ]);
    // Without the CRL the client dials, and DEU's server refuses the revoked certificate.
    let refused = site.fails("sync --config fra-revoked-nocrl.toml");
    refused.stdout_has("DEU: failed: ");
    refused.reason_has(&["sync failed with 1 of 1 peers; DEU: "]);
    assert_eq!(feeds(&site, "fra.toml"), fra_alone, "a refused sync stored nothing");

    // FRA (SEC1 EC key, DER signing key) pulls from DEU (PKCS#1 RSA key, PEM signing key).
    let pulled = site.ok("sync --config fra.toml");
    pulled.stdout_has("DEU");
    let both = vec![("DEU".to_string(), 1), ("FRA".to_string(), 1)];
    assert_eq!(feeds(&site, "fra.toml"), both);
    let log = deu.log();
    assert!(
        log.contains("TLS handshake failed") && log.contains("Revoked"),
        "DEU logs why:\n{log}"
    );
    assert!(deu.terminate().success(), "DEU stops cleanly on SIGTERM");

    // And the other way round: DEU dials FRA's server.
    let mut fra = site.serve(&site.configured("FRA", "fra.toml", "fra"));
    site.ok("sync --config deu.toml");
    assert_eq!(feeds(&site, "deu.toml"), both);
    let fra_digest = view_digest(&site, "fra.toml"); // through the running FRA's admin socket
    assert!(fra.terminate().success(), "FRA stops cleanly on SIGTERM");
    assert_eq!(view_digest(&site, "deu.toml"), fra_digest, "same datasets, same view");
}

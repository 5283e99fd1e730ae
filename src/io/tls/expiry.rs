//! When the node's TLS material stops being usable: its own certificate's and the CA's
//! `notAfter`, and each CRL's `nextUpdate`. Read for readiness and monitoring (SPEC §14); the
//! handshake itself is rustls's business.

use std::path::{Path, PathBuf};

use x509_parser::prelude::FromDer;

use super::{TlsError, TlsFiles};

/// Expiry times, in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiries {
    /// The node's own certificate (the first in `cert`).
    pub certificate: i64,
    /// The earliest-expiring CA certificate in `ca`.
    pub ca: i64,
    /// Each CRL file with the earliest `nextUpdate` of the CRLs in it (`None`: it names none).
    pub crls: Vec<(PathBuf, Option<i64>)>,
}

/// Reads the expiry times of `files`.
pub fn expiries(files: &TlsFiles) -> Result<Expiries, TlsError> {
    let not_after = |path: &Path| -> Result<Vec<i64>, TlsError> {
        let bytes = super::read(path)?;
        let mut out = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
            let bad = |reason: String| TlsError::BadCa {
                path: path.to_path_buf(),
                reason,
            };
            let pem = pem.map_err(|e| bad(e.to_string()))?;
            if pem.label != "CERTIFICATE" {
                continue;
            }
            let (_, cert) =
                x509_parser::certificate::X509Certificate::from_der(&pem.contents).map_err(|e| bad(e.to_string()))?;
            out.push(cert.validity().not_after.timestamp());
        }
        Ok(out)
    };
    let certificate = not_after(&files.cert)?
        .first()
        .copied()
        .ok_or_else(|| TlsError::NoCertificate(files.cert.clone()))?;
    let ca = not_after(&files.ca)?
        .into_iter()
        .min()
        .ok_or_else(|| TlsError::NoCertificate(files.ca.clone()))?;
    let mut crls = Vec::new();
    for path in &files.crls {
        let bytes = super::read(path)?;
        let mut next = None::<i64>;
        for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes).flatten() {
            if let Ok((_, crl)) = x509_parser::revocation_list::CertificateRevocationList::from_der(&pem.contents) {
                if let Some(t) = crl.next_update() {
                    let t = t.timestamp();
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
        }
        crls.push((path.clone(), next));
    }
    Ok(Expiries { certificate, ca, crls })
}

//! Mutual TLS for the exchange (SPEC §5): the only module that builds rustls configurations.
//! It loads a node's CA, certificate, key and CRLs; makes server configurations that demand a
//! client certificate from the consortium CA (CRLs honoured) and client configurations that
//! refuse a server whose certificate names another member than the one expected; reads the
//! member code from a certificate's `urn:accord:member:<CODE>` SAN; and carries tonic over
//! rustls both ways. A peer's identity comes only from its verified certificate, never from
//! anything it says; this module must never offer a way to skip that check.

mod expiry;
mod identity;
mod transport;
mod verify;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::domain::model::Country;

pub use expiry::expiries;
pub use identity::{member_of, peer_member, MEMBER_URN_PREFIX};
pub use transport::{channel, incoming, incoming_reloadable, listen, MAX_CONNECTIONS_PER_MEMBER};

/// Where a node's TLS material lives (SPEC §7 `[tls]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The consortium CA certificate(s), PEM.
    pub ca: PathBuf,
    /// This node's certificate chain, PEM, its own certificate first.
    pub cert: PathBuf,
    /// This node's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Certificate revocation lists, PEM.
    pub crls: Vec<PathBuf>,
}

/// Why TLS material could not be loaded or a peer was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A PEM file holds no certificate.
    #[error("no certificate in {}", .0.display())]
    NoCertificate(PathBuf),
    /// A PEM file is malformed.
    #[error("bad PEM in {}: {reason}", path.display())]
    BadPem { path: PathBuf, reason: String },
    /// The key file holds no private key.
    #[error("no private key in {}", .0.display())]
    NoKey(PathBuf),
    /// A CA certificate was refused as a trust anchor.
    #[error("bad CA certificate in {}: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    /// A CRL file holds no CRL, or one rustls cannot use.
    #[error("bad CRL in {}: {reason}", path.display())]
    BadCrl { path: PathBuf, reason: String },
    /// The node's own certificate does not identify a member.
    #[error("certificate {} does not name a member: {source}", path.display())]
    OwnCertificate { path: PathBuf, source: Box<TlsError> },
    /// The node's own certificate is listed in one of its configured CRLs: no peer that
    /// honours that CRL will accept it, so the node says so before dialling or serving.
    #[error("certificate {} is revoked in {} (serial {serial})", cert.display(), crl.display())]
    OwnCertificateRevoked {
        cert: PathBuf,
        crl: PathBuf,
        serial: String,
    },
    /// A certificate is not parseable X.509.
    #[error("certificate cannot be parsed: {0}")]
    BadCertificate(String),
    /// A certificate has no `urn:accord:member:<CODE>` SAN.
    #[error("certificate has no URI SAN {MEMBER_URN_PREFIX}<CODE>")]
    NoMemberSan,
    /// A certificate has more than one member SAN, so its identity is ambiguous.
    #[error("certificate has {0} URI SANs {MEMBER_URN_PREFIX}<CODE>, expected exactly one")]
    SeveralMemberSans(usize),
    /// The member SAN does not hold an ISO 3166-1 alpha-3 code.
    #[error("certificate member SAN {MEMBER_URN_PREFIX}{0} does not name an ISO 3166-1 alpha-3 country")]
    BadMemberCode(String),
    /// The server's certificate names another member than the one dialled.
    #[error("peer certificate names member {found}, expected {expected}")]
    MemberMismatch { found: Country, expected: Country },
    /// rustls refused the configuration (e.g. key and certificate do not match).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The certificate verifier could not be built.
    #[error("TLS certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A peer endpoint is not usable.
    #[error("bad endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
}

/// The one crypto provider Accord uses; passed explicitly so no process-level default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration: TLS 1.2/1.3, ALPN `h2`, a client certificate from `files.ca` is
/// mandatory and checked against `files.crls`. Fails before any port is bound if the node's
/// own certificate does not name a member.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    Ok(server_tls(files)?.config)
}

/// A server configuration with the client verifier inside it, kept apart so that after a reload
/// the connections already established can be checked again under the new CA and CRLs.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// `None`: established connections are never checked again.
    pub verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
}

impl From<Arc<ServerConfig>> for ServerTls {
    fn from(config: Arc<ServerConfig>) -> ServerTls {
        ServerTls { config, verifier: None }
    }
}

/// [`server_config`] with its verifier (see [`ServerTls`]).
pub fn server_tls(files: &TlsFiles) -> Result<ServerTls, TlsError> {
    let provider = provider();
    let roots = Arc::new(load_roots(&files.ca)?);
    let crls = load_crls(&files.crls)?;
    let (chain, key) = load_identity(files)?;
    not_revoked(files, &chain, &roots, &crls, &provider)?;
    // A CRL past its next update no longer says who is revoked: nobody is let in under it.
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .with_crls(crls.into_iter().map(|(_, crl)| crl))
        .enforce_revocation_expiration()
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        verifier: Some(verifier),
    })
}

/// A client configuration for dialling the member `expected`: presents the node's certificate,
/// verifies the server's chain against `files.ca` and `files.crls`, then requires the server
/// certificate to name `expected` (so two members on one host cannot answer for each other).
pub fn client_config(files: &TlsFiles, expected: Country) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let roots = Arc::new(load_roots(&files.ca)?);
    let crls = load_crls(&files.crls)?;
    let (chain, key) = load_identity(files)?;
    not_revoked(files, &chain, &roots, &crls, &provider)?;
    let crls = crls.into_iter().map(|(_, crl)| crl).collect();
    let verifier = verify::MemberServerVerifier::new(roots, crls, provider.clone(), expected)?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous() // only to install a verifier that is stricter than the default one
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certificates(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Every CRL in the files, each with the file it came from.
type Crls = Vec<(PathBuf, CertificateRevocationListDer<'static>)>;

fn load_crls(paths: &[PathBuf]) -> Result<Crls, TlsError> {
    let mut crls = Vec::new();
    for path in paths {
        let bytes = read(path)?;
        let bad = |reason: String| TlsError::BadCrl {
            path: path.clone(),
            reason,
        };
        let found = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if found.is_empty() {
            return Err(bad("no CRL in PEM".into()));
        }
        // rustls parses CRLs only when the verifier is built and then names no file; parse
        // each here so an operator learns which file is wrong.
        for crl in &found {
            check_crl_parses(crl).map_err(bad)?;
        }
        crls.extend(found.into_iter().map(|crl| (path.clone(), crl)));
    }
    Ok(crls)
}

/// Whether a CRL parses, so a broken file is reported by name.
fn check_crl_parses(crl: &CertificateRevocationListDer<'_>) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    x509_parser::revocation_list::CertificateRevocationList::from_der(crl)
        .map(|_| ())
        .map_err(|e| format!("not a CRL: {e}"))
}

/// Refuses the node's own certificate when one of its own CRLs revokes it. Peers would refuse
/// it anyway, but with TLS 1.3 they do so after the handshake and the node sees only a closed
/// connection; this names the certificate and the CRL instead. The check is rustls's own client
/// verification (CRL signature and issuer included), and only a revocation counts: anything else
/// about the certificate is for the peers to judge.
fn not_revoked(
    files: &TlsFiles,
    chain: &[CertificateDer<'static>],
    roots: &Arc<RootCertStore>,
    crls: &Crls,
    provider: &Arc<CryptoProvider>,
) -> Result<(), TlsError> {
    let now = rustls_pki_types::UnixTime::now();
    for (path, crl) in crls {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .with_crls([crl.clone()])
            // One CRL covers one issuer; without this an intermediate it does not cover would
            // end the check before the node's own certificate is looked up.
            .allow_unknown_revocation_status()
            .build()?;
        let verdict = verifier.verify_client_cert(&chain[0], &chain[1..], now);
        if let Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)) = verdict {
            return Err(TlsError::OwnCertificateRevoked {
                cert: files.cert.clone(),
                crl: path.clone(),
                serial: serial_of(&chain[0]),
            });
        }
    }
    Ok(())
}

fn serial_of(cert: &CertificateDer<'_>) -> String {
    use x509_parser::prelude::FromDer;
    x509_parser::certificate::X509Certificate::from_der(cert)
        .map(|(_, c)| c.raw_serial_as_string())
        .unwrap_or_else(|_| "unreadable".into())
}

/// The node's certificate chain and key, after checking the certificate names a member.
fn load_identity(files: &TlsFiles) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = load_certificates(&files.cert)?;
    // `load_certificates` never returns an empty list, and the node's own certificate is first.
    member_of(&chain[0]).map_err(|source| TlsError::OwnCertificate {
        path: files.cert.clone(),
        source: Box::new(source),
    })?;
    let key_bytes = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey(files.key.clone()),
        other => TlsError::BadPem {
            path: files.key.clone(),
            reason: other.to_string(),
        },
    })?;
    Ok((chain, key))
}

//! The client side's server-certificate check: the standard WebPKI verification (chain to the
//! consortium CA, validity, server name, CRLs), then the member named by the certificate must
//! be the member this client is dialling. Without the second step any consortium member could
//! answer for another, e.g. when two members share a host.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};

use super::{member_of, TlsError};
use crate::domain::model::Country;

/// Verifies a server certificate as WebPKI does and requires it to name `expected`.
#[derive(Debug)]
pub(super) struct MemberServerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    expected: Country,
}

impl MemberServerVerifier {
    pub(super) fn new(
        roots: Arc<RootCertStore>,
        crls: Vec<CertificateRevocationListDer<'static>>,
        provider: Arc<CryptoProvider>,
        expected: Country,
    ) -> Result<MemberServerVerifier, TlsError> {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .with_crls(crls)
            .enforce_revocation_expiration()
            .build()?;
        Ok(MemberServerVerifier { webpki, expected })
    }
}

impl ServerCertVerifier for MemberServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let refuse = |error: TlsError| {
            // `Error::Other` displays our message as it is ("other error: peer certificate
            // names member FRA, expected DEU"); `CertificateError::Other` would print its Debug.
            rustls::Error::Other(OtherError(Arc::new(error)))
        };
        let found = member_of(end_entity).map_err(refuse)?;
        if found != self.expected {
            return Err(refuse(TlsError::MemberMismatch {
                found,
                expected: self.expected,
            }));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

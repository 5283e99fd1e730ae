//! A member's identity is the `urn:accord:member:<CODE>` URI SAN of its certificate, and
//! nothing else: not the subject name, not a DNS name, not a message field.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::TlsError;
use crate::domain::model::Country;

/// The URI SAN prefix that carries a member code.
pub const MEMBER_URN_PREFIX: &str = "urn:accord:member:";

/// The member code named by a certificate (DER). Checked: the certificate parses; exactly one
/// URI SAN starts with [`MEMBER_URN_PREFIX`] (two would make the identity ambiguous); its code
/// is an ISO 3166-1 alpha-3 country (not `XXX`/`XXA`). Does not check the chain: callers pass
/// certificates rustls has already verified, or the node's own.
pub fn member_of(cert_der: &[u8]) -> Result<Country, TlsError> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    let sans = cert
        .subject_alternative_name()
        .map_err(|e| TlsError::BadCertificate(format!("subject alternative names: {e}")))?;
    let codes: Vec<&str> = sans
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(MEMBER_URN_PREFIX),
            _ => None,
        })
        .collect();
    match codes.as_slice() {
        [] => Err(TlsError::NoMemberSan),
        [code] => Country::parse(code)
            .filter(|country| country.is_iso())
            .ok_or_else(|| TlsError::BadMemberCode((*code).to_string())),
        several => Err(TlsError::SeveralMemberSans(several.len())),
    }
}

/// The calling member, from the client certificate rustls verified for this connection.
/// `unauthenticated` when there is none (a connection that did not come through
/// [`super::incoming`]) or it names no member.
pub fn peer_member<T>(request: &tonic::Request<T>) -> Result<Country, tonic::Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| tonic::Status::unauthenticated("no client certificate"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| tonic::Status::unauthenticated("no client certificate"))?;
    member_of(leaf).map_err(|e| tonic::Status::unauthenticated(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::string::Ia5String;
    use rcgen::{CertificateParams, KeyPair, SanType};

    fn cert_with_uris(uris: &[&str]) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI(Ia5String::try_from(*uri).unwrap()));
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_the_member_code() {
        let der = cert_with_uris(&["https://example.org", "urn:accord:member:FRA"]);
        assert_eq!(member_of(&der).unwrap(), Country::parse("FRA").unwrap());
    }

    #[test]
    fn refuses_missing_ambiguous_and_invalid_codes() {
        let none = member_of(&cert_with_uris(&[])).unwrap_err();
        assert!(matches!(none, TlsError::NoMemberSan), "{none}");
        assert!(none.to_string().contains("urn:accord:member:"));

        let two = member_of(&cert_with_uris(&["urn:accord:member:FRA", "urn:accord:member:DEU"]));
        assert!(matches!(two, Err(TlsError::SeveralMemberSans(2))), "{two:?}");

        for bad in ["XXX", "XXA", "fra", "FRX", "FRAN", ""] {
            let uri = format!("urn:accord:member:{bad}");
            let err = member_of(&cert_with_uris(&[&uri])).unwrap_err();
            assert!(matches!(&err, TlsError::BadMemberCode(code) if code == bad), "{err}");
        }

        let garbage = member_of(b"not a certificate").unwrap_err();
        assert!(matches!(garbage, TlsError::BadCertificate(_)), "{garbage}");
    }

    #[test]
    fn peer_member_without_tls_is_unauthenticated() {
        let status = peer_member(&tonic::Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}

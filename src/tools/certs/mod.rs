//! Example PKI for `accord certs` (SPEC §6): a consortium CA, one TLS certificate and Ed25519
//! signing key per member, the matching `consortium.toml`, and CRLs that revoke a member's
//! certificate. It exists so a cluster runs on one machine without other tooling; real
//! deployments may use any CA whose certificates carry the same SANs. It never loads or builds
//! rustls configurations (that is `tls`), and it never overwrites a file unless told to.

/// rcgen's timestamp (a `time` type this crate does not name) at midnight UTC of a [`Date`].
/// `date_time_ymd` panics on impossible dates; a `Date` is always real and [`MAX_DAYS`] keeps
/// the year far below 9999.
macro_rules! to_datetime {
    ($date:expr) => {{
        let date: Date = $date;
        rcgen::date_time_ymd(date.year, date.month, date.day)
    }};
}

mod files;
mod revoke;

#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use crate::domain::date::Date;
use crate::domain::model::Country;
use files::{write_all, OutFile};

pub use revoke::revoke;

/// The CA's common name.
const CA_NAME: &str = "Accord example CA";
/// Longest validity accepted, so dates stay far inside what X.509 and rcgen can encode.
const MAX_DAYS: u32 = 36_500;

/// What `accord certs` should make.
#[derive(Debug, Clone)]
pub struct CertsOptions {
    /// Directory to write into (created if missing).
    pub out: PathBuf,
    /// Members, in the order they appear in `consortium.toml`.
    pub countries: Vec<Country>,
    /// Validity of every certificate and signing key, from today.
    pub days: u32,
    /// Overwrite files that already exist.
    pub force: bool,
}

/// The files one member received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedMember {
    pub country: Country,
    /// `<code>.pem`: TLS certificate (server and client).
    pub cert: PathBuf,
    /// `<code>.key`: the TLS private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// `<code>.sign.pk8`: the Ed25519 signing key (PKCS#8 DER).
    pub signing_key: PathBuf,
    /// The raw Ed25519 public key listed in `consortium.toml`.
    pub signing_public_key: [u8; 32],
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsSummary {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub consortium: PathBuf,
    pub members: Vec<IssuedMember>,
    /// First and last day of validity.
    pub valid_from: Date,
    pub valid_until: Date,
}

/// A member certificate issued by a CA other than the consortium's (for hostile-peer tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignMember {
    /// The foreign CA's certificate.
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the example PKI could not be made or a certificate revoked.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// No member was named.
    #[error("no member countries given")]
    NoCountries,
    /// A member was named twice.
    #[error("member {0} is listed twice")]
    DuplicateCountry(Country),
    /// `XXX`/`XXA` cannot be consortium members.
    #[error("{0} is not an ISO 3166-1 country, so it cannot be a member")]
    NotIsoCountry(Country),
    /// The validity is zero or absurdly long.
    #[error("validity must be 1 to {MAX_DAYS} days, got {0}")]
    InvalidDays(u32),
    /// A file would be overwritten without `force`.
    #[error("{} already exists (use --force to overwrite)", .0.display())]
    Exists(PathBuf),
    /// The output directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// rcgen refused to build a certificate, key or CRL.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The operating system's random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// ring could not read back the signing key it had just generated.
    #[error("the generated Ed25519 signing key is unusable")]
    SigningKey,
    /// A certificate file is not a usable certificate.
    #[error("{}: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    /// The CA key file is not a usable private key.
    #[error("{}: not a usable CA private key: {reason}", path.display())]
    BadCaKey { path: PathBuf, reason: String },
    /// The certificate to revoke was not issued by this CA.
    #[error("{} was not issued by the CA in {}", cert.display(), ca.display())]
    NotIssuedByCa { cert: PathBuf, ca: PathBuf },
    /// An existing CRL file could not be read back to extend it.
    #[error("{}: not a CRL from this CA: {reason}", path.display())]
    BadCrl { path: PathBuf, reason: String },
}

/// Writes the example PKI described in SPEC §6 into `opts.out`; see [`CertsOptions`].
/// Everything is generated in memory and every target is checked before the first byte is
/// written, so a refusal leaves the directory untouched.
pub fn generate(opts: &CertsOptions) -> Result<CertsSummary, CertsError> {
    check_members(&opts.countries)?;
    let (valid_from, valid_until) = validity(opts.days)?;
    let rng = SystemRandom::new();
    let out = &opts.out;

    let ca = make_ca(CA_NAME, valid_from, valid_until, &rng)?;
    let mut files = vec![
        OutFile::public(out.join("ca.pem"), ca.pem()),
        OutFile::secret(out.join("ca.key"), ca.key().serialize_pem()),
    ];
    let mut members = Vec::with_capacity(opts.countries.len());
    for &country in &opts.countries {
        let code = country.lower();
        let (cert_pem, key_pem) = issue_member(&ca, country, valid_from, valid_until, &rng)?;
        let generated = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CertsError::Random)?;
        let pkcs8 = pkcs8_v1(generated.as_ref())?;
        let signing_public_key = ed25519_public_key(&pkcs8)?;
        let member = IssuedMember {
            country,
            cert: out.join(format!("{code}.pem")),
            key: out.join(format!("{code}.key")),
            signing_key: out.join(format!("{code}.sign.pk8")),
            signing_public_key,
        };
        files.push(OutFile::public(member.cert.clone(), cert_pem));
        files.push(OutFile::secret(member.key.clone(), key_pem));
        files.push(OutFile::secret(member.signing_key.clone(), pkcs8));
        members.push(member);
    }
    let consortium = out.join("consortium.toml");
    let toml = consortium_toml(&members, valid_from, valid_until);
    files.push(OutFile::public(consortium.clone(), toml));

    write_all(out, &files, opts.force)?;
    Ok(CertsSummary {
        ca_cert: out.join("ca.pem"),
        ca_key: out.join("ca.key"),
        consortium,
        members,
        valid_from,
        valid_until,
    })
}

/// Test helper: a fresh CA (not the consortium's) and a certificate from it for `member`, with
/// the same SANs a real member certificate has. Writes `foreign-ca.pem`, `foreign-<code>.pem`
/// and `foreign-<code>.key` into `out`, overwriting.
#[doc(hidden)]
pub fn generate_foreign_ca(out: &Path, member: Country) -> Result<ForeignMember, CertsError> {
    let (valid_from, valid_until) = validity(30)?;
    let rng = SystemRandom::new();
    let ca = make_ca("Foreign example CA", valid_from, valid_until, &rng)?;
    let (cert_pem, key_pem) = issue_member(&ca, member, valid_from, valid_until, &rng)?;
    let code = member.lower();
    let issued = ForeignMember {
        ca_cert: out.join("foreign-ca.pem"),
        cert: out.join(format!("foreign-{code}.pem")),
        key: out.join(format!("foreign-{code}.key")),
    };
    let files = [
        OutFile::public(issued.ca_cert.clone(), ca.pem()),
        OutFile::public(issued.cert.clone(), cert_pem),
        OutFile::secret(issued.key.clone(), key_pem),
    ];
    write_all(out, &files, true)?;
    Ok(issued)
}

fn check_members(countries: &[Country]) -> Result<(), CertsError> {
    if countries.is_empty() {
        return Err(CertsError::NoCountries);
    }
    for (i, &country) in countries.iter().enumerate() {
        if !country.is_iso() {
            return Err(CertsError::NotIsoCountry(country));
        }
        if countries[..i].contains(&country) {
            return Err(CertsError::DuplicateCountry(country));
        }
    }
    Ok(())
}

/// First and last day of validity for `days` from today.
fn validity(days: u32) -> Result<(Date, Date), CertsError> {
    if days == 0 || days > MAX_DAYS {
        return Err(CertsError::InvalidDays(days));
    }
    let today = Date::today();
    let until =
        Date::from_day_number(today.day_number() + i64::from(days)).expect("MAX_DAYS from today is before 10000");
    Ok((today, until))
}

/// A random positive 16-byte serial (RFC 5280 wants them unpredictable and at most 20 bytes).
fn random_serial(rng: &SystemRandom) -> Result<SerialNumber, CertsError> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).map_err(|_| CertsError::Random)?;
    // Clear the sign bit and set the next one, so the encoding is positive and always 16 bytes.
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn make_ca(
    name: &str,
    from: Date,
    until: Date,
    rng: &SystemRandom,
) -> Result<CertifiedIssuer<'static, KeyPair>, CertsError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = to_datetime!(from);
    params.not_after = to_datetime!(until);
    params.serial_number = Some(random_serial(rng)?);
    Ok(CertifiedIssuer::self_signed(params, key)?)
}

/// A member's TLS certificate and key (both PEM): P-256, for server and client auth, with the
/// SANs SPEC §5/§6 name.
fn issue_member(
    ca: &Issuer<'_, KeyPair>,
    country: Country,
    from: Date,
    until: Date,
    rng: &SystemRandom,
) -> Result<(String, String), CertsError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let code = country.lower();
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(country.as_str());
    params.subject_alt_names = vec![
        SanType::URI(Ia5String::try_from(format!("urn:accord:member:{country}"))?),
        SanType::DnsName(Ia5String::try_from(format!("{code}.accord"))?),
        SanType::DnsName(Ia5String::try_from("localhost")?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = to_datetime!(from);
    params.not_after = to_datetime!(until);
    params.serial_number = Some(random_serial(rng)?);
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// ring writes PKCS#8 v2 (RFC 5958, public key included), which OpenSSL 3.0 cannot read; an
/// auditor deriving the public key with `openssl pkey` needs v1 (RFC 5208): the same 32-byte seed
/// under the v1 prefix. ring reads both.
fn pkcs8_v1(v2: &[u8]) -> Result<Vec<u8>, CertsError> {
    const V2_PREFIX: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    const V1_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    let seed = v2
        .strip_prefix(&V2_PREFIX)
        .and_then(|rest| rest.get(..32))
        .ok_or(CertsError::SigningKey)?;
    let v1 = [&V1_PREFIX[..], seed].concat();
    // The same key either way, or nothing is written.
    let same = |der: &[u8]| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map(|k| k.public_key().as_ref().to_vec());
    match (same(v2), same(&v1)) {
        (Ok(a), Ok(b)) if a == b => Ok(v1),
        _ => Err(CertsError::SigningKey),
    }
}

fn ed25519_public_key(pkcs8: &[u8]) -> Result<[u8; 32], CertsError> {
    // The bytes come from `generate_pkcs8` via `pkcs8_v1`, so this fails only if ring is broken.
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| CertsError::SigningKey)?;
    pair.public_key()
        .as_ref()
        .try_into()
        .map_err(|_| CertsError::SigningKey)
}

/// `consortium.toml` in the exact layout SPEC §6 and the brief fix.
fn consortium_toml(members: &[IssuedMember], from: Date, until: Date) -> String {
    let mut text = String::from(
        "# Accord consortium file: identical at every member.\n\
         name = \"accord-example\"\n\
         test_only = true\n\
         \n\
         [definitions]\n\
         min_duration_months = 12\n\
         unknown_duration = \"count\"\n\
         \n\
         [disclosure]\n\
         method = \"threshold\"\n\
         threshold = 5\n\
         \n\
         [reconcile]\n\
         rule = \"receiving\"\n\
         asymmetry_flag = 0.2\n",
    );
    for member in members {
        let hex = crate::domain::hex::encode(&member.signing_public_key);
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "\n[[members]]\ncountry = \"{}\"\n\n[[members.keys]]\npublic_key = \"{hex}\"\n\
             valid_from = \"{from}\"\nvalid_until = \"{until}\"\n",
            member.country
        );
    }
    text
}

//! A node's operations over its store, shared by every entry point: the daemon, its admin
//! socket and the CLI when no daemon runs all call these, so each operation has one
//! implementation. The daemon itself (TLS server, sync loop, signals) is in [`daemon`].

pub mod daemon;
pub mod metrics;
mod status;

pub use status::{FeedStatus, PeerReport, Status};

use std::sync::Arc;

use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::aggregate::disclosure;
use crate::config::NodeConfig;
use crate::dataset::publish::{sign_entry, EntryParams};
use crate::dataset::{verify, AcceptedDataset, Cube, Dataset, Limits, Period, Placement, VerifiedEntry, VerifyError};
use crate::date::unix_now;
use crate::proto;
use crate::reconcile::View;
use crate::record::Country;
use crate::store::{Store, StoreError};

/// Failures of node operations.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing key file is unusable or not this member's key in the consortium.
    #[error("signing key {path}: {message}")]
    SigningKey { path: String, message: String },
    /// An entry failed verification.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A request names something that does not exist or is not allowed.
    #[error("{0}")]
    Request(String),
}

/// One member's node state: configuration, store and signing key.
pub struct Node {
    pub config: NodeConfig,
    pub store: Store,
    signing: Ed25519KeyPair,
    pub limits: Limits,
    pub metrics: metrics::Metrics,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub publisher: Country,
    pub seq: u64,
    pub digest: [u8; 32],
    pub cells: usize,
    pub confidential: usize,
}

impl Node {
    /// Opens the store and loads the signing key, checking it is one of this member's keys.
    pub fn open(config: NodeConfig) -> Result<Arc<Node>, NodeError> {
        let signing = load_signing_key(&config)?;
        let store = Store::open(&config.data_dir, config.country, config.consortium.definition)?;
        Ok(Arc::new(Node {
            config,
            store,
            signing,
            limits: Limits::default(),
            metrics: metrics::Metrics::default(),
        }))
    }

    pub fn country(&self) -> Country {
        self.config.country
    }

    /// Builds `cube` for `period` from the live aggregates, applies disclosure control, signs
    /// it as the next entry of this node's feed and stores it.
    pub fn publish(&self, cube: Cube, period: Period, audience: Vec<Country>) -> Result<Published, NodeError> {
        for a in &audience {
            if self.config.consortium.member(*a).is_none() {
                return Err(NodeError::Request(format!("audience: {a} is not a consortium member")));
            }
        }
        let tallies = self.store.period_tallies(cube, period)?;
        let consortium = &self.config.consortium;
        let cells = disclosure::protect(&consortium.disclosure, tallies);
        if cells.len() > self.limits.max_cells {
            return Err(NodeError::Request(format!(
                "{cube} {period} has {} cells, over the limit max_cells ({})",
                cells.len(),
                self.limits.max_cells
            )));
        }
        let dataset = Dataset {
            publisher: self.country(),
            cube,
            period,
            definition: consortium.definition,
            disclosure: consortium.disclosure,
            cells,
        };
        let head = self.store.head(self.country())?;
        let entry = sign_entry(
            &dataset,
            EntryParams {
                head,
                created_at: unix_now(),
                audience,
                key: &self.signing,
            },
        );
        // Our own entry goes through the same verification as any other: what we store is what
        // every peer will accept.
        let verified = verify(entry, consortium, &self.limits)?;
        match self.store.accept(&verified)? {
            Placement::Append => {}
            other => return Err(NodeError::Request(format!("own feed refused the entry: {other:?}"))),
        }
        self.store.flush()?;
        let confidential = dataset
            .cells
            .iter()
            .filter(|c| c.value == crate::dataset::CellValue::Confidential)
            .count();
        Ok(Published {
            publisher: self.country(),
            seq: verified.header.seq,
            digest: verified.digest,
            cells: dataset.cells.len(),
            confidential,
        })
    }

    /// Verifies an entry from the network and places it in its feed.
    pub fn accept(&self, entry: proto::Entry) -> Result<(VerifiedEntry, Placement), NodeError> {
        let verified = verify(entry, &self.config.consortium, &self.limits)?;
        let placement = self.store.accept(&verified)?;
        Ok((verified, placement))
    }

    /// Every accepted dataset this node holds a payload for, re-verified on the way out of the
    /// store so the view only ever reads verified data.
    pub fn accepted_datasets(&self) -> Result<Vec<AcceptedDataset>, NodeError> {
        let mut out = Vec::new();
        for entry in self.store.all_entries() {
            let v = verify(entry?, &self.config.consortium, &self.limits)?;
            if let Some(dataset) = v.dataset {
                out.push(AcceptedDataset {
                    publisher: v.header.publisher,
                    seq: v.header.seq,
                    digest: v.digest,
                    dataset,
                });
            }
        }
        Ok(out)
    }

    /// The common view of everything accepted.
    pub fn view(&self) -> Result<View, NodeError> {
        Ok(crate::reconcile::compute(
            &self.accepted_datasets()?,
            &self.config.consortium.reconcile,
        ))
    }

    /// One stored entry as an export file.
    pub fn export(&self, publisher: Country, seq: u64) -> Result<Vec<u8>, NodeError> {
        let entry = self
            .store
            .entry(publisher, seq)?
            .ok_or_else(|| NodeError::Request(format!("no entry {publisher} seq {seq} in this node's store")))?;
        Ok(crate::export::encode(&entry))
    }
}

/// The PKCS#8 DER of a signing key file: DER as `accord certs` writes it, or the PEM
/// `PRIVATE KEY` block that `openssl genpkey -algorithm ed25519` writes by default.
fn signing_key_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use rustls_pki_types::pem::PemObject;
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(bytes)
        .map(|key| key.secret_pkcs8_der().to_vec())
        .map_err(|e| format!("no PEM PRIVATE KEY (PKCS#8) block: {e}"))
}

fn load_signing_key(config: &NodeConfig) -> Result<Ed25519KeyPair, NodeError> {
    let path = config.signing_key.display().to_string();
    let err = |message: String| NodeError::SigningKey {
        path: path.clone(),
        message,
    };
    let bytes = std::fs::read(&config.signing_key).map_err(|e| err(e.to_string()))?;
    let der = signing_key_der(&bytes).map_err(err)?;
    let key =
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| err(format!("not an Ed25519 PKCS#8 key: {e}")))?;
    let public = key.public_key().as_ref();
    let member = config
        .consortium
        .member(config.country)
        .ok_or_else(|| err("no such member".into()))?;
    if !member.keys.iter().any(|k| k.public_key == public) {
        return Err(err(format!(
            "its public key (key id {}) is not one of {}'s keys in the consortium file",
            crate::dataset::envelope::key_id(public),
            config.country
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::signing_key_der;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    #[test]
    fn signing_key_reads_as_der_or_as_openssl_pem() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let der = pair.serialize_der();
        let pem = pair.serialize_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));

        let from_der = signing_key_der(&der).unwrap();
        let from_pem = signing_key_der(format!("\n{pem}").as_bytes()).unwrap();
        assert_eq!(from_der, der);
        assert_eq!(from_pem, der);
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&from_pem).unwrap();
        assert_eq!(key.public_key().as_ref(), pair.public_key_raw());
    }

    #[test]
    fn a_pem_without_a_private_key_is_refused_with_a_reason() {
        let cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        let err = signing_key_der(cert.as_bytes()).unwrap_err();
        assert!(err.contains("no PEM PRIVATE KEY"), "{err}");
    }
}

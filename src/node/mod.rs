//! A node's operations over its store, shared by every entry point: the daemon, its admin
//! socket and the CLI when no daemon runs all call these, so each operation has one
//! implementation. `Node` keeps its store, configuration and signing key private: every write
//! goes through an operation here, so the index of current datasets ([`current`]) always
//! follows the store. The exchange reaches the node only through [`Feeds`](crate::io::exchange::Feeds).

mod attest;
mod certify;
mod current;
mod feeds;
mod governance;
mod health;
mod maintained;
pub mod metrics;
mod ops;
mod publish;
mod status;

pub use crate::domain::attest::check::MAX_NOTE_BYTES as MAX_ATTESTATION_BYTES;
pub use certify::CertifySummary;
pub use current::LeftOut;
pub use governance::{parse_document, MAX_DOCUMENT_BYTES, MAX_VERSIONS_AHEAD, MAX_VOTES_PER_VERSION};
pub use health::EXPIRY_WARNING_SECS;
pub use maintained::ViewMaintainer;
pub use ops::{Local, OpError, Operations, PeerPull};
pub use publish::{PublishRequest, Published};
pub use status::{ConsortiumVersion, FeedStatus, ForkReport, MeasurementReport, PeerReport, ProposalReport, Status};

use std::path::Path;
use std::sync::Arc;

use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::domain::consortium::Consortium;
use crate::domain::dataset::{verify_at, AcceptedDataset, Head, Limits, Placement, VerifiedEntry, VerifyError};
use crate::domain::date::unix_now;
use crate::domain::model::Country;
use crate::domain::reconcile::View;
use crate::domain::record::Record;
use crate::io::config::NodeConfig;
use crate::io::exchange::Syncer;
use crate::io::ingest::{IngestError, RecordSink};
use crate::io::store::{CheckReport, ForkEvidence, IngestOutcome, PeerStatus, Store, StoreError};

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
    /// A certified bundle could not be written.
    #[error(transparent)]
    Certify(#[from] crate::io::certify::CertifyError),
    /// A request names something that does not exist or is not allowed.
    #[error("{0}")]
    Request(String),
    /// A restored store whose aggregates disagree with its records.
    #[error("the backup's aggregates disagree with its records ({count} differences; first: {first})")]
    RestoreCheck { count: usize, first: String },
    /// The node restored from a backup failed to open or a check (in the staging directory):
    /// nothing was moved into `data_dir`, which is left as it was found.
    #[error("restore from {file} refused (data_dir left as it was found): {source}")]
    Restore { file: String, source: Box<NodeError> },
    /// The consortium file is not the genesis document `node.toml` pins.
    #[error("consortium file {file} has digest {found}, but {config} pins consortium_sha256 = {pinned}: it is not the genesis document the consortium agreed on (compare `accord consortium --config ...` with the other members')")]
    ConsortiumPin {
        file: String,
        config: String,
        found: String,
        pinned: String,
    },
}

/// What [`Node::restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Store keys and bytes of the backup.
    pub keys: u64,
    pub bytes: u64,
    /// Entries held in all feeds, each verified again.
    pub entries: u64,
    /// Of those, entries that no longer verify under the consortium in force.
    pub left_out: usize,
    pub check: CheckReport,
    /// The store format the backup had, when it was older and the restore migrated it.
    pub migrated_from: Option<u32>,
}

/// One member's node: configuration, store, signing key, and what it has accepted.
pub struct Node {
    config: NodeConfig,
    store: Store,
    signing: Ed25519KeyPair,
    limits: Limits,
    metrics: metrics::Metrics,
    current: current::Index,
    /// Held while the view is computed: callers that find it out of date meanwhile wait for that
    /// computation and take its result, rather than computing the same view beside it. On a
    /// daemon it holds the view kept for the next refresh.
    computing: std::sync::Mutex<Option<maintained::KeptView>>,
    /// Set on a daemon, where a thread keeps the view up to date ([`Node::maintain_view`]):
    /// `status` then reads the latest view computed instead of computing one.
    maintained: std::sync::atomic::AtomicBool,
    /// The consortium versions (SPEC §11): genesis (the configured file) and what the
    /// proposals and approvals held put in force.
    governance: governance::Governance,
    /// Held while an attestation is compared with the one kept and stored (this node's own or
    /// a peer's): concurrent pulls never put an older note over a newer one.
    attesting: std::sync::Mutex<()>,
    /// When the last pull made this node compare its attestation with its state (Unix
    /// seconds): quiet pulls check again only after [`feeds::ATTEST_CHECK_SECS`].
    attest_checked: std::sync::atomic::AtomicI64,
    /// The TLS files in use: the configured ones, until a reload (SIGHUP) puts the `[tls]`
    /// section as it is then in their place. Readiness and expiry metrics read these.
    tls: std::sync::RwLock<crate::io::tls::TlsFiles>,
}

impl Node {
    /// Opens the store and loads the signing key, checking it is one of this member's keys.
    pub fn open(config: NodeConfig) -> Result<Arc<Node>, NodeError> {
        let genesis = crate::domain::consortium::digest(&config.consortium);
        if let Some(pinned) = config.consortium_sha256.filter(|p| *p != genesis) {
            return Err(NodeError::ConsortiumPin {
                file: config.consortium_path.display().to_string(),
                config: config.file.display().to_string(),
                found: crate::domain::hex::encode(&genesis),
                pinned: crate::domain::hex::encode(&pinned),
            });
        }
        let signing = load_signing_key(&config)?;
        let store = Store::open_as_stored(&config.data_dir, config.country, config.consortium.definition)?;
        let limits = Limits::default();
        let governance = governance::Governance::load(config.consortium.clone(), &store, &limits)?;
        let wanted = governance.consortium().definition;
        if governance.in_force().current().version == 1 {
            // The configured file itself changed the definition: the operator rebuilds with
            // `accord check --rebuild`, as before governance.
            store.require_definition(wanted)?;
        } else if let Some(r) = store.redefine(wanted, &mut |_| {})? {
            tracing::info!(from = %r.from, to = %r.to, records = r.records, cells = r.cells, "rebuilt the aggregates under the definition of the consortium version in force");
        }
        // The key must be this member's under the version in force, which the store's
        // governance entries may have moved past the configured file (a key rotated).
        let version = governance.in_force().current().version;
        check_signing_key(&config, &signing, &governance.consortium(), version)?;
        let node = Node {
            tls: std::sync::RwLock::new(config.tls.clone()),
            config,
            store,
            signing,
            limits,
            metrics: metrics::Metrics::default(),
            current: current::Index::default(),
            computing: std::sync::Mutex::new(None),
            maintained: std::sync::atomic::AtomicBool::new(false),
            governance,
            attesting: std::sync::Mutex::new(()),
            attest_checked: std::sync::atomic::AtomicI64::new(0),
        };
        node.follow_kept_branches()?;
        Ok(Arc::new(node))
    }

    pub fn country(&self) -> Country {
        self.config.country
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The document of the consortium version in force: members, keys, definition,
    /// disclosure and reconciliation as the node applies them now.
    pub fn consortium(&self) -> Arc<Consortium> {
        self.governance.consortium()
    }

    /// Whether `member` may hold the payload of the entry with `header`: in its audience and,
    /// for a dataset, allowed by the sharing rules in force for the entry's `created_at`.
    pub fn may_hold(&self, header: &crate::domain::dataset::EntryHeader, member: Country) -> bool {
        header.admits(member)
            && header.dataset().is_none_or(|(cube, _)| {
                self.consortium()
                    .shares(header.publisher, member, cube, header.created_at)
            })
    }

    /// The consortium versions: the one in force, how it came to be, pending proposals.
    pub fn governance(&self) -> Arc<crate::domain::consortium::InForce> {
        self.governance.in_force()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The anti-entropy client for this node's configured peers, dialling with the TLS files
    /// in use now.
    pub fn syncer(self: &Arc<Self>) -> Syncer {
        Syncer::new(self.clone(), self.config.peers.clone(), self.tls_files())
    }

    /// The TLS files in use (see [`Node::use_tls_files`]).
    pub fn tls_files(&self) -> crate::io::tls::TlsFiles {
        self.tls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records the TLS files a reload put in use, for readiness and the expiry metrics. The
    /// caller has loaded them into its TLS configurations already; this changes no connection.
    pub fn use_tls_files(&self, files: crate::io::tls::TlsFiles) {
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = files;
    }

    /// Stores a batch of validated records (and the aggregate cells they change) atomically.
    pub fn ingest(&self, batch: &[Record]) -> Result<IngestOutcome, NodeError> {
        Ok(self.store.ingest(batch)?)
    }

    /// A staging session for one file arriving in batches (through the admin socket).
    pub fn begin_staging(&self) -> u64 {
        self.store.begin_staging()
    }

    /// Stages the next validated rows of `session`'s file: on disk, pseudonymised, not yet
    /// counted.
    pub fn stage(&self, session: u64, batch: &[Record]) -> Result<(), NodeError> {
        Ok(self.store.stage(session, batch)?)
    }

    /// Stores `session`'s staged file, its end having arrived: the rows move into the records
    /// in file order, each chunk atomic with its aggregates.
    pub fn commit_staged(&self, session: u64) -> Result<IngestOutcome, NodeError> {
        Ok(self.store.commit_staged(session)?)
    }

    /// Drops `session`'s staged rows: the file's end never came.
    pub fn drop_staged(&self, session: u64) -> Result<(), NodeError> {
        Ok(self.store.drop_staged(session)?)
    }

    /// Makes every acknowledged write durable.
    pub fn flush(&self) -> Result<(), NodeError> {
        Ok(self.store.flush()?)
    }

    /// Recomputes the aggregates from the records and compares them with the live ones.
    pub fn check(&self, progress: &mut dyn FnMut(u64)) -> Result<CheckReport, NodeError> {
        Ok(self.store.check(progress)?)
    }

    /// The head of `publisher`'s feed.
    pub fn head(&self, publisher: Country) -> Result<Option<Head>, NodeError> {
        Ok(self.store.head(publisher)?)
    }

    /// A stored entry, exactly as received.
    pub fn entry(&self, publisher: Country, seq: u64) -> Result<Option<crate::proto::Entry>, NodeError> {
        Ok(self.store.entry(publisher, seq)?)
    }

    /// Every feed's head, by publisher.
    pub fn heads(&self) -> Result<Vec<(Country, Head)>, NodeError> {
        Ok(self.store.heads()?)
    }

    /// All fork evidence held.
    pub fn forks(&self) -> Result<Vec<ForkEvidence>, NodeError> {
        Ok(self.store.forks()?)
    }

    /// Records held, by event type.
    pub fn record_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<crate::domain::record::EventType, u64>, NodeError> {
        Ok(self.store.record_counts()?)
    }

    /// The outcome of the last sync with `peer`.
    pub fn peer_status(&self, peer: Country) -> Result<PeerStatus, NodeError> {
        Ok(self.store.peer_status(peer)?)
    }

    /// Fills the empty `data_dir` of `config` from the backup `file` after checking its seal
    /// (see [`backup_keys`]), opens the node (which checks the store belongs to this member and
    /// definition), re-verifies every stored entry and checks the aggregates against the
    /// records. All of it happens in a staging directory inside `data_dir`, moved into place
    /// only when every check passed: on any failure `data_dir` is left as it was found.
    pub fn restore(config: NodeConfig, file: &Path) -> Result<Restored, NodeError> {
        let signing = load_signing_key(&config)?;
        let keys = backup_keys(&config, &signing);
        let trust = crate::io::store::BackupTrust {
            member: config.country,
            keys: &keys,
        };
        let restoring = crate::io::store::restore(&config.data_dir, file, trust)?;
        let staged = config.with_data_dir(restoring.staging().to_path_buf());
        let checked = (|| {
            // The backup is the snapshot of the old format: no second one is needed.
            let migrated = crate::io::store::migrate(&staged.data_dir, None)?;
            let node = Node::open(staged)?;
            let entries = node.heads()?.iter().map(|(_, h)| h.seq).sum();
            let left_out = node.left_out()?.len();
            let check = node.check(&mut |_| {})?;
            if let Some(first) = check.differences.first() {
                return Err(NodeError::RestoreCheck {
                    count: check.differences.len(),
                    first: crate::domain::excerpt::excerpt(first).into_owned(),
                });
            }
            // The store is closed before it moves.
            node.flush()?;
            Ok((entries, left_out, check, migrated.map(|m| m.from)))
        })();
        // On an error `restoring` is dropped here, which removes the staging directory.
        let (entries, left_out, check, migrated_from) = checked.map_err(|e| NodeError::Restore {
            file: file.display().to_string(),
            source: Box::new(e),
        })?;
        let summary = restoring.commit()?;
        Ok(Restored {
            keys: summary.keys,
            bytes: summary.bytes,
            entries,
            left_out,
            check,
            migrated_from,
        })
    }

    /// Writes a consistent backup of the store and the node secret to the new file `out`,
    /// sealed with this node's signing key.
    pub fn backup(&self, out: &Path) -> Result<crate::io::store::BackupSummary, NodeError> {
        Ok(self.store.backup(out, &self.signing)?)
    }

    /// Verifies an entry from the network and places it in its feed.
    pub fn accept(&self, entry: crate::proto::Entry) -> Result<(VerifiedEntry, Placement), NodeError> {
        // Governance entries may come from a member a proposal adds: they are checked against
        // the version in force plus those members (see `governance`). A dataset is checked
        // against the version in force, or for a removed member against its last version if
        // created before the removal took effect.
        let header = entry
            .envelope
            .as_ref()
            .and_then(|env| crate::domain::dataset::EntryHeader::decode(&env.payload).ok());
        let in_force = self.governance();
        let widened;
        let consortium = match &header {
            Some(h) if h.dataset().is_none() => {
                widened = self.governance.widened();
                &*widened
            }
            Some(h) => in_force.document_for(h.publisher, h.created_at),
            None => &in_force.current().document,
        };
        let mut verified = verify_at(entry, consortium, &self.limits, unix_now())?;
        if verified.entry().has_payload && !self.may_hold(verified.header(), self.country()) {
            // A payload this node may not hold under the sharing rules (a publisher or relay
            // that ignored them): kept as the signed header alone, like any entry outside the
            // audience, and never relayed further.
            verified = verified.without_payload();
        }
        let vote = governance::vote_of(&verified)?;
        let h = verified.header();
        let _placing = h.dataset().is_none().then(|| self.governance.placing());
        if h.dataset().is_none() && self.store.head(h.publisher)?.is_none_or(|head| head.seq < h.seq) {
            // A new governance entry is kept only whole and within the bounds. It has no
            // audience, so every node may hold its payload; held as a header alone, its vote
            // could be neither bounded nor counted, and nodes would disagree on the version in
            // force until the payload came.
            match &vote {
                Some(vote) => self.governance.admits(h.publisher, vote.version())?,
                None => {
                    return Err(VerifyError::GovernanceWithoutPayload {
                        publisher: h.publisher,
                        seq: h.seq,
                    }
                    .into())
                }
            }
        }
        let placement = self.store.accept(&verified)?;
        self.current.placed(&verified, placement);
        if let (Some(vote), Placement::Append | Placement::Replay) = (vote, placement) {
            // A replay may complete an entry an older node kept as a header alone; counting
            // one entry twice changes nothing.
            self.count(vote);
        }
        Ok((verified, placement))
    }

    /// The common view of everything accepted: the current revision of every dataset, read
    /// from the store as verified on acceptance (never verified again here). Kept, with its
    /// digest, until an accepted entry changes the current datasets.
    pub fn view(&self) -> Result<Arc<View>, NodeError> {
        Ok(self.view_and_digest()?.0)
    }

    /// The current revision of every dataset held with its payload: what the view is built from.
    pub fn current_datasets(&self) -> Result<Vec<AcceptedDataset>, NodeError> {
        let snapshot = self.current.snapshot(&self.store, &self.governance(), &self.limits)?;
        current::datasets(&self.store, &snapshot, &self.limits).collect()
    }

    /// The view digest.
    pub fn view_digest(&self) -> Result<[u8; 32], NodeError> {
        Ok(self.view_and_digest()?.1)
    }

    /// The current view and its digest: the one kept, else computed (one computation at a time).
    fn view_and_digest(&self) -> Result<(Arc<View>, [u8; 32]), NodeError> {
        let snapshot = self.current.snapshot(&self.store, &self.governance(), &self.limits)?;
        if let Some(cached) = snapshot.cached.clone() {
            return Ok(cached);
        }
        let mut kept = self.computing.lock().unwrap_or_else(|p| p.into_inner());
        // Whoever held the lock may have computed this very view.
        let snapshot = self.current.snapshot(&self.store, &self.governance(), &self.limits)?;
        if let Some(cached) = snapshot.cached.clone() {
            return Ok(cached);
        }
        let governance = self.governance();
        let view = if self.maintained.load(std::sync::atomic::Ordering::Relaxed) {
            self.refreshed(&mut kept, &snapshot, governance.current())?
        } else {
            Arc::new(self.view_of(&snapshot, governance.current())?)
        };
        let digest = view.digest();
        self.current.cache_view(snapshot.generation, view.clone(), digest);
        Ok((view, digest))
    }

    /// The view of `snapshot`'s datasets under consortium `version`.
    fn view_of(
        &self,
        snapshot: &current::Snapshot,
        version: &crate::domain::consortium::Version,
    ) -> Result<View, NodeError> {
        // Each dataset is decoded, read into the view and dropped before the next: the view
        // never needs every decoded dataset at once.
        let mut failure = None;
        let datasets = current::datasets(&self.store, snapshot, &self.limits)
            .map_while(|loaded| loaded.map_err(|e| failure = Some(e)).ok());
        let mut view = crate::domain::reconcile::compute_current(datasets, &version.document.reconcile);
        if let Some(e) = failure {
            return Err(e);
        }
        crate::domain::reconcile::under(
            &mut view,
            crate::domain::reconcile::ConsortiumRef {
                version: version.version,
                digest: version.digest,
            },
            &version.document,
        );
        Ok(view)
    }

    /// The view as it was on this node at `t` (milliseconds since the Unix epoch, SPEC §16):
    /// from the entries it had accepted by then, under the consortium version in force then,
    /// with that view's digest. Computed afresh on every call (each entry verified again).
    pub fn view_as_of(&self, t: i64) -> Result<(View, [u8; 32]), NodeError> {
        let in_force = self.governance.in_force_as_of(&self.store, &self.limits, t)?;
        let snapshot = current::as_of(&self.store, &in_force, &self.limits, t)?;
        let view = self.view_of(&snapshot, in_force.current())?;
        let digest = view.digest();
        Ok((view, digest))
    }

    /// When this node accepted `publisher`/`seq` (milliseconds since the Unix epoch; 0 for an
    /// entry stored before acceptance times were kept), `None` when it holds no payload for it.
    pub fn accepted_at(&self, publisher: Country, seq: u64) -> Result<Option<i64>, NodeError> {
        match self.store.accepted_at(publisher, seq)? {
            Some(t) => Ok(Some(t)),
            None => Ok(self.store.entry(publisher, seq)?.filter(|e| e.has_payload).map(|_| 0)),
        }
    }

    /// Every moment this node accepted an entry (milliseconds since the Unix epoch), in order:
    /// the moments its view may have changed.
    pub fn acceptance_times(&self) -> Result<Vec<i64>, NodeError> {
        Ok(self.store.acceptance_times()?)
    }

    /// Stored entries that no longer verify under the consortium in force (a key removed, a
    /// member gone): named, and left out of the view. The first call verifies every stored
    /// entry once (the daemon makes it at start).
    pub fn left_out(&self) -> Result<Vec<LeftOut>, NodeError> {
        self.current.left_out(&self.store, &self.governance(), &self.limits)
    }

    /// One stored entry as an export file.
    pub fn export(&self, publisher: Country, seq: u64) -> Result<Vec<u8>, NodeError> {
        let entry = self
            .store
            .entry(publisher, seq)?
            .ok_or_else(|| NodeError::Request(format!("no entry {publisher} seq {seq} in this node's store")))?;
        Ok(crate::domain::export::encode(&entry))
    }
}

/// File ingest straight into the node's store (no daemon running).
impl RecordSink for &Node {
    fn store(&mut self, batch: &[Record]) -> Result<IngestOutcome, IngestError> {
        Ok(self.store.ingest(batch)?)
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        Ok(self.store.flush()?)
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

/// The public keys whose seal `restore` accepts on a backup of `config`'s member: every key the
/// member holds in the consortium file `node.toml` names, whatever its validity window, and the
/// node's own signing key.
///
/// Why these, and key rotation: a backup is restored to recover, often long after it was made,
/// so a key since retired or past its window still proves who sealed it; windows bound what a
/// key may sign into the feed, not the operator's own files. A key rotated in through a later
/// consortium version is not in the configured (genesis) file, so the node's own signing key
/// counts as well: it lives outside `data_dir`, whoever can only write backup files cannot sign
/// with it, and `Node::open` then checks it is this member's key under the version in force.
/// The version in force itself is never consulted: it is read from the store, i.e. from the
/// very backup being checked. A backup sealed by a key that is neither (rotated out and no
/// longer configured) is refused; the operator points `signing_key` at that key's file to
/// restore it only if that key is still the member's in force.
fn backup_keys(config: &NodeConfig, signing: &Ed25519KeyPair) -> Vec<[u8; 32]> {
    let mut keys: Vec<[u8; 32]> = config
        .consortium
        .member(config.country)
        .map(|m| m.keys.iter().map(|k| k.public_key).collect())
        .unwrap_or_default();
    if let Ok(own) = <[u8; 32]>::try_from(signing.public_key().as_ref()) {
        keys.push(own);
    }
    keys
}

/// Loads the node's Ed25519 signing key (`signing_key` in `node.toml`): for the CLI's commands
/// that seal a backup without a running node (`check --migrate`).
pub fn signing_key(config: &NodeConfig) -> Result<Ed25519KeyPair, NodeError> {
    load_signing_key(config)
}

fn load_signing_key(config: &NodeConfig) -> Result<Ed25519KeyPair, NodeError> {
    let path = config.signing_key.display().to_string();
    let err = |message: String| NodeError::SigningKey {
        path: path.clone(),
        message,
    };
    let bytes = std::fs::read(&config.signing_key).map_err(|e| err(e.to_string()))?;
    let der = signing_key_der(&bytes).map_err(err)?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| err(format!("not an Ed25519 PKCS#8 key: {e}")))
}

/// The signing key must be one of this member's keys in consortium version `version`.
fn check_signing_key(
    config: &NodeConfig,
    key: &Ed25519KeyPair,
    consortium: &Consortium,
    version: u64,
) -> Result<(), NodeError> {
    let err = |message: String| NodeError::SigningKey {
        path: config.signing_key.display().to_string(),
        message,
    };
    let public = key.public_key().as_ref();
    let where_ = if version == 1 {
        "the consortium file".to_string()
    } else {
        format!("consortium version {version} (in force)")
    };
    let Some(member) = consortium.member(config.country) else {
        // A member-to-be (SPEC §11): it runs to fetch the proposal that adds it and approve it;
        // its approval is checked against that proposal's document, its datasets once the
        // version is in force.
        tracing::warn!(
            country = %config.country,
            version,
            "this node's country is not a member of the consortium version in force: it can fetch proposals and approve one that adds it, and publishes once such a version is in force"
        );
        return Ok(());
    };
    if !member.keys.iter().any(|k| k.public_key == public) {
        return Err(err(format!(
            "its public key (key id {}) is not one of {}'s keys in {where_}",
            crate::domain::dataset::envelope::key_id(public),
            config.country
        )));
    }
    Ok(())
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

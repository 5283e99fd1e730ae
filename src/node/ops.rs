//! The node's operations as one interface with typed requests and results. The CLI drives a
//! node through [`Operations`] and nothing else: [`Local`] runs them in this process on the
//! store, the admin client (`admin::Remote`) runs them in a running daemon through its admin
//! socket. Neither renders text: that is the CLI's job alone.

use std::path::Path;
use std::sync::Arc;

use super::{Node, NodeError, PublishRequest, Published, Status};
use crate::domain::model::Country;
use crate::domain::reconcile::{render_to, Format, ViewFilter};
use crate::domain::record::validate::ValidationContext;
use crate::io::config::NodeConfig;
use crate::io::exchange::SyncError;
use crate::io::ingest::{ingest_file, FileReport, IngestError, Progress};
use crate::io::store::CheckReport;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The node refused or failed the operation.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A record file was refused (unreadable, invalid rows) or could not be stored.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The running node reported a failure through its admin socket: its text, as the same
    /// failure reads in process.
    #[error("{0}")]
    Remote(String),
    /// The output could not be written.
    #[error("writing the output: {0}")]
    Output(std::io::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// What one pull from one peer brought, as `accord sync` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPull {
    pub peer: Country,
    pub appended: u64,
    pub forks: u64,
    pub gaps: u64,
    /// The refusals kept with their text (at most `exchange::sync::MAX_REJECTIONS_KEPT`).
    pub rejected: Vec<String>,
    /// Every refusal of the pull, listed or not.
    pub rejected_total: u64,
    /// Why the pull failed, when it did.
    pub error: Option<String>,
}

impl PeerPull {
    /// A pull from `peer` that brought nothing and failed nowhere.
    pub fn new(peer: Country) -> PeerPull {
        PeerPull {
            peer,
            appended: 0,
            forks: 0,
            gaps: 0,
            rejected: Vec::new(),
            rejected_total: 0,
            error: None,
        }
    }

    /// The report of one pull.
    pub fn of(peer: Country, result: &Result<crate::io::exchange::PeerSync, SyncError>) -> PeerPull {
        match result {
            Ok(s) => PeerPull {
                peer,
                appended: s.appended,
                forks: s.forks,
                gaps: s.gaps,
                rejected: s.rejected.iter().map(|r| r.detail.clone()).collect(),
                rejected_total: s.rejected_total(),
                error: None,
            },
            Err(e) => PeerPull {
                error: Some(e.detail()),
                ..PeerPull::new(peer)
            },
        }
    }
}

/// The operations an operator runs on a node (SPEC §6), wherever the node runs.
pub trait Operations {
    /// Whether a running daemon carries these out (rather than this process on the store).
    fn through_daemon(&self) -> bool;
    /// Ingests one record file; each file is all or nothing.
    fn ingest(
        &self,
        file: &Path,
        ctx: ValidationContext,
        skip_invalid: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<FileReport, OpError>;
    fn publish(&self, request: PublishRequest) -> Result<Published, OpError>;
    /// Pulls from every configured peer now.
    fn sync(&self) -> Result<Vec<PeerPull>, OpError>;
    /// Writes the rendered view to `out` piece by piece; returns the stored entries it leaves out.
    /// With `as_of` (milliseconds since the Unix epoch), the view as it was on the node then
    /// (SPEC §16 vintages).
    fn view(
        &self,
        filter: ViewFilter,
        format: Format,
        as_of: Option<i64>,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<Vec<String>, OpError>;
    fn status(&self) -> Result<Status, OpError>;
    /// One stored entry as an export file.
    fn export(&self, publisher: Country, seq: u64) -> Result<Vec<u8>, OpError>;
    /// Recomputes the aggregates from the records and compares.
    fn check(&self, progress: &mut dyn FnMut(u64)) -> Result<CheckReport, OpError>;
    /// Writes a consistent backup (store and node secret) to the new file `out` (absolute).
    fn backup(&self, out: &Path) -> Result<crate::io::store::BackupSummary, OpError>;
    /// Writes a certified bundle of the view into the new directory `out` (absolute).
    fn certify(&self, out: &Path) -> Result<super::CertifySummary, OpError>;
    /// One consortium version (`None`: the one in force), its document and approvals.
    fn consortium(&self, version: Option<u64>) -> Result<super::ConsortiumVersion, OpError>;
    /// Signs a proposal of `document` as the next version; returns (version, digest, in force).
    fn propose(&self, document: &str) -> Result<(u64, [u8; 32], u64), OpError>;
    /// Signs this member's approval of `digest` as `version`; returns (version, digest, in force).
    fn approve(&self, version: u64, digest: [u8; 32]) -> Result<(u64, [u8; 32], u64), OpError>;
}

/// The operations in this process, on the node's store (no daemon running).
pub struct Local {
    node: Arc<Node>,
    runtime: tokio::runtime::Runtime,
}

impl Local {
    pub fn open(config: NodeConfig) -> Result<Local, OpError> {
        let node = Node::open(config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(OpError::Runtime)?;
        Ok(Local { node, runtime })
    }

    /// The operations over a node this process already holds (a daemon's own node): the same
    /// code the daemon's admin socket runs, without the socket. Blocks: call it, use it and drop
    /// it outside async code.
    pub fn over(node: Arc<Node>) -> Result<Local, OpError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(OpError::Runtime)?;
        Ok(Local { node, runtime })
    }
}

impl Operations for Local {
    fn through_daemon(&self) -> bool {
        false
    }

    fn ingest(
        &self,
        file: &Path,
        ctx: ValidationContext,
        skip_invalid: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<FileReport, OpError> {
        Ok(ingest_file(file, ctx, skip_invalid, &mut &*self.node, progress)?)
    }

    fn publish(&self, request: PublishRequest) -> Result<Published, OpError> {
        Ok(self.node.publish(request)?)
    }

    fn sync(&self) -> Result<Vec<PeerPull>, OpError> {
        let results = self.runtime.block_on(self.node.syncer().pull_all());
        Ok(results.iter().map(|(peer, r)| PeerPull::of(*peer, r)).collect())
    }

    fn view(
        &self,
        filter: ViewFilter,
        format: Format,
        as_of: Option<i64>,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<Vec<String>, OpError> {
        let view = match as_of {
            None => self.node.view()?,
            Some(t) => Arc::new(self.node.view_as_of(t)?.0),
        };
        render_to(&view, &filter, format, &mut Sink(out)).map_err(OpError::Output)?;
        Ok(self.node.left_out()?.iter().map(ToString::to_string).collect())
    }

    fn status(&self) -> Result<Status, OpError> {
        Ok(self.node.status()?)
    }

    fn export(&self, publisher: Country, seq: u64) -> Result<Vec<u8>, OpError> {
        Ok(self.node.export(publisher, seq)?)
    }

    fn check(&self, progress: &mut dyn FnMut(u64)) -> Result<CheckReport, OpError> {
        Ok(self.node.check(progress)?)
    }

    fn backup(&self, out: &Path) -> Result<crate::io::store::BackupSummary, OpError> {
        Ok(self.node.backup(out)?)
    }

    fn certify(&self, out: &Path) -> Result<super::CertifySummary, OpError> {
        Ok(self.node.certify(out)?)
    }

    fn consortium(&self, version: Option<u64>) -> Result<super::ConsortiumVersion, OpError> {
        Ok(self.node.consortium_version(version)?)
    }

    fn propose(&self, document: &str) -> Result<(u64, [u8; 32], u64), OpError> {
        let (version, digest) = self.node.propose(document)?;
        Ok((version, digest, self.node.governance().current().version))
    }

    fn approve(&self, version: u64, digest: [u8; 32]) -> Result<(u64, [u8; 32], u64), OpError> {
        self.node.approve(version, digest)?;
        Ok((version, digest, self.node.governance().current().version))
    }
}

/// A writer over a callback, for rendering straight to the caller.
struct Sink<'a>(&'a mut dyn FnMut(&[u8]));

impl std::io::Write for Sink<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        (self.0)(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

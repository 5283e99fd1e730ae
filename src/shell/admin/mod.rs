//! The admin socket: `<data_dir>/admin.sock`, a Unix socket (mode 0600) through which the CLI
//! drives a running node — the store is held by the daemon, so commands cannot open it
//! themselves. gRPC (`accord.v1.Admin`) over the socket; no file path crosses it (ingest streams
//! the validated records). A shell over [`Node`]: it converts messages to typed requests,
//! runs the operation off the async workers, and converts the result back. [`Remote`] is the
//! client side: the same operations, through the socket.

mod client;
mod convert;

pub use client::{connect, Remote};

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_stream::Stream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::model::{Country, Cube, Period};
use crate::domain::reconcile::{render_to, Format, ViewFilter};
use crate::domain::record::validate::{validate_fields, RawRecord, ValidationContext};
use crate::domain::record::Record;
use crate::io::exchange::Syncer;
use crate::node::{Node, NodeError, PeerPull, PublishRequest};
use crate::proto;
use crate::proto::admin_server::Admin;

/// Most records one file may bring through the admin socket: the node stages a file's records
/// on disk until the file is complete (so that a broken stream stores nothing), and this bounds
/// what one stream may stage.
pub const MAX_INGEST_RECORDS: usize = 10_000_000;
/// Largest chunk of a rendered view in one message.
pub const VIEW_CHUNK_BYTES: usize = 1024 * 1024;

/// Serves admin requests for a running node.
pub struct AdminService {
    node: Arc<Node>,
    syncer: Arc<Syncer>,
    tasks: TaskTracker,
    stop: watch::Receiver<bool>,
}

impl AdminService {
    /// `tasks` and `stop` are the daemon's: announcements after a publish run on its tracker.
    pub fn new(node: Arc<Node>, syncer: Arc<Syncer>, tasks: TaskTracker, stop: watch::Receiver<bool>) -> AdminService {
        AdminService {
            node,
            syncer,
            tasks,
            stop,
        }
    }
}

/// The one place node errors become statuses on the admin socket.
fn to_status(error: NodeError) -> Status {
    match error {
        NodeError::Request(m) => Status::invalid_argument(m),
        NodeError::Verify(e) => Status::invalid_argument(e.to_string()),
        NodeError::Certify(e) => Status::failed_precondition(e.to_string()),
        NodeError::Store(e) => Status::internal(e.to_string()),
        NodeError::SigningKey { .. }
        | NodeError::ConsortiumPin { .. }
        | NodeError::RestoreCheck { .. }
        | NodeError::Restore { .. } => Status::internal(error.to_string()),
    }
}

/// What `propose` and `approve` answer: the version voted on, its digest, the version in force.
fn governance_reply(version: u64, digest: [u8; 32], in_force: u64) -> Response<proto::GovernanceReply> {
    Response::new(proto::GovernanceReply {
        version,
        digest: digest.to_vec(),
        in_force,
    })
}

/// Runs a node operation off the async workers.
async fn run<T: Send + 'static>(
    node: &Arc<Node>,
    op: impl FnOnce(&Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, Status> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || op(&node))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(to_status)
}

fn country_arg(field: &str, text: &str) -> Result<Country, Status> {
    Country::parse(text).ok_or_else(|| Status::invalid_argument(format!("{field}: not a country code: {text:?}")))
}

/// Parses view arguments shared by the CLI and the admin socket.
pub fn view_args(
    cube: &str,
    period: &str,
    origin: &str,
    destination: &str,
    format: &str,
) -> Result<(ViewFilter, Format), String> {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let filter = ViewFilter {
        cube: opt(cube)
            .map(|c| Cube::parse(&c).ok_or(format!("--cube: unknown cube {c:?} (flows, asylum, permits)")))
            .transpose()?,
        period: opt(period)
            .map(|p| Period::parse(&p).ok_or(format!("--period: not a period {p:?} (2024, 2024-Q2, 2024-05)")))
            .transpose()?,
        origin: opt(origin)
            .map(|o| Country::parse(&o).ok_or(format!("--origin: not a country code {o:?}")))
            .transpose()?,
        destination: opt(destination)
            .map(|d| Country::parse(&d).ok_or(format!("--destination: not a country code {d:?}")))
            .transpose()?,
    };
    let format = Format::parse(if format.is_empty() { "table" } else { format }).ok_or(format!(
        "--format: unknown format {format:?} (table, csv, json, sdmx-csv)"
    ))?;
    Ok((filter, format))
}

/// One file's batches: each validated and staged as it arrives; the file stored once its end
/// has arrived, dropped if the stream ends (or fails) before.
async fn ingest_stream(
    node: Arc<Node>,
    mut stream: Streaming<proto::IngestBatch>,
) -> Result<Response<proto::IngestReply>, Status> {
    let ctx = ValidationContext::for_today(node.country());
    // Each batch is staged as it arrives, so the node holds one batch at a time; the file
    // moves into the records once its end has arrived.
    let session = node.begin_staging();
    let mut staged = 0usize;
    let mut complete = false;
    let arrived = async {
        while let Some(batch) = stream.message().await? {
            if staged + batch.records.len() > MAX_INGEST_RECORDS {
                return Err(Status::resource_exhausted(format!(
                    "a file of more than {MAX_INGEST_RECORDS} records (max_ingest_records) cannot go through the admin socket; split it, or stop the node and ingest on the store"
                )));
            }
            let records = batch
                .records
                .into_iter()
                .map(|m| {
                    let id = m.event_id.clone();
                    from_message(m, &ctx).map_err(|e| Status::invalid_argument(format!("event {id}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            staged += records.len();
            run(&node, move |node| node.stage(session, &records)).await?;
            if batch.end {
                complete = true;
                break;
            }
        }
        Ok(())
    }
    .await;
    if arrived.is_err() || !complete {
        // The sender went away mid-file, or sent what cannot be stored: store none of it.
        run(&node, move |node| node.drop_staged(session)).await?;
        arrived?;
        return Err(Status::cancelled(
            "the ingest stream ended before the end of the file; nothing was stored",
        ));
    }
    let reply = run(&node, move |node| {
        let outcome = node.commit_staged(session)?;
        node.flush()?;
        Ok(proto::IngestReply {
            stored: outcome.stored,
            replaced: outcome.replaced,
        })
    })
    .await?;
    Ok(Response::new(reply))
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn ingest(
        &self,
        request: Request<Streaming<proto::IngestBatch>>,
    ) -> Result<Response<proto::IngestReply>, Status> {
        // On a task of its own, which the caller going away does not cancel: the stream then
        // ends with an error and the staged rows are dropped, never left on disk.
        let (node, stream) = (self.node.clone(), request.into_inner());
        self.tasks
            .spawn(ingest_stream(node, stream))
            .await
            .map_err(|e| Status::internal(format!("ingest task: {e}")))?
    }

    async fn publish(&self, request: Request<proto::PublishRequest>) -> Result<Response<proto::PublishReply>, Status> {
        let r = request.into_inner();
        let cube =
            Cube::parse(&r.cube).ok_or_else(|| Status::invalid_argument(format!("cube: unknown cube {:?}", r.cube)))?;
        let period = Period::parse(&r.period)
            .ok_or_else(|| Status::invalid_argument(format!("period: not a period {:?}", r.period)))?;
        let audience = r
            .audience
            .iter()
            .map(|a| country_arg("audience", a))
            .collect::<Result<Vec<_>, _>>()?;
        let request = PublishRequest {
            cube,
            period,
            audience,
            unreported: r.unreported,
        };
        // Settled: the operator's next `status` shows the view with this entry.
        let p = run(&self.node, move |node| {
            let p = node.publish(request)?;
            node.settle()?;
            Ok(p)
        })
        .await?;
        self.syncer.announce_on(&self.tasks, &self.stop);
        Ok(Response::new(proto::PublishReply {
            publisher: p.publisher.to_string(),
            cube: p.cube.to_string(),
            period: p.period.to_string(),
            seq: p.seq,
            digest: p.digest.to_vec(),
            cells: p.cells as u64,
            confidential: p.confidential as u64,
            suppressed: p.suppressed as u64,
        }))
    }

    async fn sync(&self, _: Request<proto::SyncRequest>) -> Result<Response<proto::SyncReply>, Status> {
        let pulls = self
            .syncer
            .pull_all()
            .await
            .iter()
            .map(|(peer, result)| PeerPull::of(*peer, result).into())
            .collect();
        run(&self.node, |node| node.settle()).await?;
        Ok(Response::new(proto::SyncReply { pulls }))
    }

    type ViewStream = Pin<Box<dyn Stream<Item = Result<proto::ViewChunk, Status>> + Send>>;

    async fn view(&self, request: Request<proto::ViewRequest>) -> Result<Response<Self::ViewStream>, Status> {
        let r = request.into_inner();
        let (filter, format) =
            view_args(&r.cube, &r.period, &r.origin, &r.destination, &r.format).map_err(Status::invalid_argument)?;
        let as_of = match r.as_of.as_str() {
            "" => None,
            t => Some(crate::domain::date::parse_instant_millis(t).ok_or_else(|| {
                Status::invalid_argument(format!("--as-of: not an RFC 3339 time {t:?} (2026-12-07T18:10:25Z)"))
            })?),
        };
        let (view, left_out) = run(&self.node, move |node| {
            let left_out = node.left_out()?.iter().map(ToString::to_string).collect::<Vec<_>>();
            let view = match as_of {
                None => node.view()?,
                Some(t) => Arc::new(node.view_as_of(t)?.0),
            };
            Ok((view, left_out))
        })
        .await?;
        // Rendered on a blocking thread straight into the stream, a chunk at a time: the channel
        // holds a few chunks, so a view larger than memory allows as text still goes out whole,
        // at the pace the client reads it.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (stop, runtime) = (self.stop.clone(), tokio::runtime::Handle::current());
        self.tasks.spawn_blocking(move || {
            let mut chunks = ChunkWriter {
                tx,
                buffer: Vec::with_capacity(VIEW_CHUNK_BYTES),
                left_out: Some(left_out),
                stop,
                runtime,
            };
            let rendered = render_to(&view, &filter, format, &mut chunks).and_then(|()| chunks.send());
            if let Err(e) = rendered {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    let _ = chunks
                        .tx
                        .try_send(Err(Status::internal(format!("rendering the view: {e}"))));
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn status(&self, _: Request<proto::StatusRequest>) -> Result<Response<proto::StatusReply>, Status> {
        let s = run(&self.node, |node| node.status()).await?;
        Ok(Response::new(s.into()))
    }

    async fn export(&self, request: Request<proto::ExportRequest>) -> Result<Response<proto::ExportReply>, Status> {
        let r = request.into_inner();
        let publisher = country_arg("publisher", &r.publisher)?;
        let file = run(&self.node, move |node| node.export(publisher, r.seq)).await?;
        Ok(Response::new(proto::ExportReply { file }))
    }

    async fn backup(&self, request: Request<proto::BackupRequest>) -> Result<Response<proto::BackupReply>, Status> {
        let path = std::path::PathBuf::from(request.into_inner().path);
        if !path.is_absolute() {
            return Err(Status::invalid_argument("backup: the path must be absolute"));
        }
        let s = run(&self.node, move |node| node.backup(&path)).await?;
        Ok(Response::new(proto::BackupReply {
            keys: s.keys,
            bytes: s.bytes,
        }))
    }

    async fn certify(&self, request: Request<proto::CertifyRequest>) -> Result<Response<proto::CertifyReply>, Status> {
        let path = std::path::PathBuf::from(request.into_inner().path);
        if !path.is_absolute() {
            return Err(Status::invalid_argument("certify: the path must be absolute"));
        }
        let s = run(&self.node, move |node| node.certify(&path)).await?;
        Ok(Response::new(proto::CertifyReply {
            files: s.written.files as u64,
            entries: s.written.entries as u64,
            witnesses: s.written.witnesses as u64,
            view_digest: s.view_digest.to_vec(),
            attested_by: s.attested_by,
        }))
    }

    async fn consortium(
        &self,
        request: Request<proto::ConsortiumRequest>,
    ) -> Result<Response<proto::ConsortiumReply>, Status> {
        let version = Some(request.into_inner().version).filter(|v| *v > 0);
        let c = run(&self.node, move |node| node.consortium_version(version)).await?;
        Ok(Response::new(proto::ConsortiumReply {
            version: c.version,
            digest: c.digest,
            document: c.document,
            proposer: c.proposer.unwrap_or_default(),
            approvals: c.approvals,
            in_force: c.in_force,
        }))
    }

    async fn propose(
        &self,
        request: Request<proto::ProposeRequest>,
    ) -> Result<Response<proto::GovernanceReply>, Status> {
        let document = request.into_inner().document;
        let (version, digest, in_force) = run(&self.node, move |node| {
            let (version, digest) = node.propose(&document)?;
            node.settle()?;
            Ok((version, digest, node.governance().current().version))
        })
        .await?;
        self.syncer.announce_on(&self.tasks, &self.stop);
        Ok(governance_reply(version, digest, in_force))
    }

    async fn approve(
        &self,
        request: Request<proto::ApproveRequest>,
    ) -> Result<Response<proto::GovernanceReply>, Status> {
        let r = request.into_inner();
        let digest: [u8; 32] = r
            .digest
            .try_into()
            .map_err(|_| Status::invalid_argument("approve: the digest must be 32 bytes"))?;
        let version = r.version;
        let in_force = run(&self.node, move |node| {
            node.approve(version, digest)?;
            node.settle()?;
            Ok(node.governance().current().version)
        })
        .await?;
        self.syncer.announce_on(&self.tasks, &self.stop);
        Ok(governance_reply(version, digest, in_force))
    }

    async fn check(&self, _: Request<proto::CheckRequest>) -> Result<Response<proto::CheckReply>, Status> {
        let report = run(&self.node, |node| node.check(&mut |_| {})).await?;
        Ok(Response::new(proto::CheckReply {
            records: report.records,
            cells: report.cells,
            differences: report.differences,
        }))
    }
}

/// Cuts rendered text into [`VIEW_CHUNK_BYTES`] messages; the first also carries the entries
/// left out of the view. A client gone away is a broken pipe.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<proto::ViewChunk, Status>>,
    buffer: Vec<u8>,
    left_out: Option<Vec<String>>,
    /// The daemon's stop signal: a reader that never reads does not hold up shutdown.
    stop: watch::Receiver<bool>,
    runtime: tokio::runtime::Handle,
}

impl ChunkWriter {
    /// Sends what is buffered (and, once, the left-out entries even with no text).
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() && self.left_out.is_none() {
            return Ok(());
        }
        let chunk = proto::ViewChunk {
            text: std::mem::replace(&mut self.buffer, Vec::with_capacity(VIEW_CHUNK_BYTES)),
            left_out: self.left_out.take().unwrap_or_default(),
        };
        let (tx, mut stop) = (&self.tx, self.stop.clone());
        let sent = self.runtime.block_on(async move {
            tokio::select! {
                sent = tx.send(Ok(chunk)) => sent.is_ok(),
                _ = stop.wait_for(|stopping| *stopping) => false,
            }
        });
        if sent {
            Ok(())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = VIEW_CHUNK_BYTES - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == VIEW_CHUNK_BYTES {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A record as it crosses the admin socket.
pub fn to_message(r: &Record) -> proto::RecordMessage {
    let raw = RawRecord::from_record(r);
    proto::RecordMessage {
        event_id: raw.event_id,
        person_id: raw.person_id,
        event_type: raw.event_type,
        event_date: raw.event_date,
        citizenship: raw.citizenship,
        country_of_birth: raw.country_of_birth,
        partner_country: raw.partner_country,
        sex: raw.sex,
        birth_year: r.birth_year.unwrap_or(0),
        reason: raw.reason,
        duration_months: r.duration_months.map_or(-1, |d| d as i32),
    }
}

/// The node validates again what it receives: the socket is a boundary too. (Public for the
/// fuzz target of admin requests, which feeds it what arrives on the socket.)
pub fn from_message(
    m: proto::RecordMessage,
    ctx: &ValidationContext,
) -> Result<Record, crate::domain::record::FieldError> {
    let raw = RawRecord {
        event_id: m.event_id,
        person_id: m.person_id,
        event_type: m.event_type,
        event_date: m.event_date,
        citizenship: m.citizenship,
        country_of_birth: m.country_of_birth,
        partner_country: m.partner_country,
        sex: m.sex,
        birth_year: if m.birth_year == 0 {
            String::new()
        } else {
            m.birth_year.to_string()
        },
        reason: m.reason,
        duration_months: if m.duration_months < 0 {
            String::new()
        } else {
            m.duration_months.to_string()
        },
    };
    validate_fields(&raw, ctx)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_large_view_goes_out_in_bounded_chunks_left_out_on_the_first() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let (_stop_tx, stop) = watch::channel(false);
        let handle = runtime.handle().clone();
        let writer = std::thread::spawn(move || {
            let mut chunks = ChunkWriter {
                tx,
                buffer: Vec::new(),
                left_out: Some(vec!["FRA seq 1: signature does not verify".into()]),
                stop,
                runtime: handle,
            };
            let line = vec![b'x'; 1000];
            for _ in 0..2_600 {
                chunks.write_all(&line).unwrap();
            }
            chunks.send().unwrap();
        });
        let mut sizes = Vec::new();
        let mut left_out = Vec::new();
        while let Some(chunk) = runtime.block_on(rx.recv()) {
            let chunk = chunk.unwrap();
            sizes.push(chunk.text.len());
            left_out.push(chunk.left_out.len());
        }
        writer.join().unwrap();
        assert_eq!(
            sizes,
            vec![VIEW_CHUNK_BYTES, VIEW_CHUNK_BYTES, 2_600_000 - 2 * VIEW_CHUNK_BYTES]
        );
        assert_eq!(left_out, vec![1, 0, 0]);
    }

    #[test]
    fn a_reader_that_never_reads_does_not_hold_up_shutdown() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let (stop_tx, stop) = watch::channel(false);
        let handle = runtime.handle().clone();
        let writer = std::thread::spawn(move || {
            let mut chunks = ChunkWriter {
                tx,
                buffer: Vec::new(),
                left_out: None,
                stop,
                runtime: handle,
            };
            let block = vec![b'x'; VIEW_CHUNK_BYTES];
            loop {
                if let Err(e) = chunks.write_all(&block) {
                    return e.kind();
                }
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        stop_tx.send(true).unwrap();
        assert_eq!(writer.join().unwrap(), std::io::ErrorKind::BrokenPipe);
    }
}

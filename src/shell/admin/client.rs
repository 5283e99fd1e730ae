//! The admin client: [`Operations`] carried out by a running node through its admin socket.
//! Requests and results cross as typed messages; a view arrives in chunks.

use std::future::Future;
use std::path::Path;

use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint, Uri};

use super::to_message;
use crate::domain::model::{Country, Cube, Period};
use crate::domain::reconcile::{Format, ViewFilter};
use crate::domain::record::validate::ValidationContext;
use crate::domain::record::Record;
use crate::io::ingest::{ingest_file, FileReport, IngestError, Progress, RecordSink};
use crate::io::store::{CheckReport, IngestOutcome};
use crate::node::{OpError, Operations, PeerPull, PublishRequest, Published, Status};
use crate::proto;
use crate::proto::admin_client::AdminClient;

/// A running node, reached through its admin socket.
pub struct Remote {
    client: AdminClient<Channel>,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    /// Connects to the node running on `socket`; `None` when no node is listening there.
    pub fn connect(socket: &Path) -> Result<Option<Remote>, OpError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(OpError::Runtime)?;
        let client = runtime.block_on(connect(socket));
        Ok(client.map(|client| Remote { client, runtime }))
    }

    fn call<T>(&self, call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> Result<T, OpError> {
        self.runtime
            .block_on(call)
            .map(tonic::Response::into_inner)
            .map_err(remote)
    }
}

fn remote(status: tonic::Status) -> OpError {
    OpError::Remote(status.message().to_string())
}

fn reply_field<T>(what: &str, value: Option<T>) -> Result<T, OpError> {
    value.ok_or_else(|| OpError::Remote(format!("the node's reply has a bad {what}")))
}

/// Streams validated batches to the node; the file's end is marked once it went through whole.
struct AdminSink {
    tx: mpsc::Sender<proto::IngestBatch>,
}

impl RecordSink for AdminSink {
    fn store(&mut self, batch: &[Record]) -> Result<IngestOutcome, IngestError> {
        let records = batch.iter().map(to_message).collect();
        self.tx
            .blocking_send(proto::IngestBatch { records, end: false })
            .map_err(|_| IngestError::Node("the node closed the ingest stream".into()))?;
        Ok(IngestOutcome {
            stored: batch.len() as u64,
            replaced: 0,
        })
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        Ok(())
    }
}

impl Operations for Remote {
    fn through_daemon(&self) -> bool {
        true
    }

    fn ingest(
        &self,
        file: &Path,
        ctx: ValidationContext,
        skip_invalid: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<FileReport, OpError> {
        let (tx, rx) = mpsc::channel(8);
        let mut client = self.client.clone();
        let call = self
            .runtime
            .spawn(async move { client.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
        let mut sink = AdminSink { tx };
        let result = ingest_file(file, ctx, skip_invalid, &mut sink, progress);
        if result.is_ok() {
            // The whole file went through: the node may store it now. Without this mark (a
            // rejected file, or this process killed) the node stores none of it.
            let _ = sink.tx.blocking_send(proto::IngestBatch {
                records: Vec::new(),
                end: true,
            });
        }
        drop(sink);
        let reply = self
            .runtime
            .block_on(call)
            .map_err(|e| OpError::Remote(format!("ingest task: {e}")))?;
        let mut report = result?;
        let reply = reply.map_err(remote)?.into_inner();
        report.outcome = IngestOutcome {
            stored: reply.stored,
            replaced: reply.replaced,
        };
        Ok(report)
    }

    fn publish(&self, request: PublishRequest) -> Result<Published, OpError> {
        let mut client = self.client.clone();
        let r = self.call(client.publish(proto::PublishRequest {
            cube: request.cube.to_string(),
            period: request.period.to_string(),
            audience: request.audience.iter().map(ToString::to_string).collect(),
            unreported: request.unreported,
        }))?;
        Ok(Published {
            publisher: reply_field("publisher", Country::parse(&r.publisher))?,
            cube: reply_field("cube", Cube::parse(&r.cube))?,
            period: reply_field("period", Period::parse(&r.period))?,
            seq: r.seq,
            digest: reply_field("digest", r.digest.try_into().ok())?,
            cells: r.cells as usize,
            confidential: r.confidential as usize,
            suppressed: r.suppressed as usize,
        })
    }

    fn sync(&self) -> Result<Vec<PeerPull>, OpError> {
        let mut client = self.client.clone();
        let reply = self.call(client.sync(proto::SyncRequest {}))?;
        reply.pulls.into_iter().map(PeerPull::try_from).collect()
    }

    fn view(
        &self,
        filter: ViewFilter,
        format: Format,
        as_of: Option<i64>,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<Vec<String>, OpError> {
        let text = |v: Option<String>| v.unwrap_or_default();
        let mut client = self.client.clone();
        let mut chunks = self.call(
            client.view(proto::ViewRequest {
                cube: text(filter.cube.map(|c| c.to_string())),
                period: text(filter.period.map(|p| p.to_string())),
                origin: text(filter.origin.map(|c| c.to_string())),
                destination: text(filter.destination.map(|c| c.to_string())),
                format: format.as_str().to_string(),
                as_of: as_of
                    .map(crate::domain::date::format_instant_millis)
                    .unwrap_or_default(),
            }),
        )?;
        let mut left_out = Vec::new();
        while let Some(chunk) = self.runtime.block_on(chunks.message()).map_err(remote)? {
            left_out.extend(chunk.left_out);
            out(&chunk.text);
        }
        Ok(left_out)
    }

    fn status(&self) -> Result<Status, OpError> {
        let mut client = self.client.clone();
        let s = self.call(client.status(proto::StatusRequest {}))?;
        Ok(s.into())
    }

    fn export(&self, publisher: Country, seq: u64) -> Result<Vec<u8>, OpError> {
        let mut client = self.client.clone();
        let reply = self.call(client.export(proto::ExportRequest {
            publisher: publisher.to_string(),
            seq,
        }))?;
        Ok(reply.file)
    }

    fn backup(&self, out: &Path) -> Result<crate::io::store::BackupSummary, OpError> {
        let mut client = self.client.clone();
        let r = self.call(client.backup(proto::BackupRequest {
            path: out.display().to_string(),
        }))?;
        Ok(crate::io::store::BackupSummary {
            keys: r.keys,
            bytes: r.bytes,
        })
    }

    fn certify(&self, out: &Path) -> Result<crate::node::CertifySummary, OpError> {
        let mut client = self.client.clone();
        let r = self.call(client.certify(proto::CertifyRequest {
            path: out.display().to_string(),
        }))?;
        let view_digest = r
            .view_digest
            .as_slice()
            .try_into()
            .map_err(|_| OpError::Remote("certify: the node sent a view digest of the wrong length".into()))?;
        Ok(crate::node::CertifySummary {
            written: crate::io::certify::Written {
                files: r.files as usize,
                entries: r.entries as usize,
                attestations: r.attested_by.len(),
                witnesses: r.witnesses as usize,
            },
            view_digest,
            attested_by: r.attested_by,
        })
    }

    fn consortium(&self, version: Option<u64>) -> Result<crate::node::ConsortiumVersion, OpError> {
        let mut client = self.client.clone();
        let r = self.call(client.consortium(proto::ConsortiumRequest {
            version: version.unwrap_or(0),
        }))?;
        Ok(crate::node::ConsortiumVersion {
            version: r.version,
            digest: r.digest,
            document: r.document,
            proposer: (!r.proposer.is_empty()).then_some(r.proposer),
            approvals: r.approvals,
            in_force: r.in_force,
        })
    }

    fn propose(&self, document: &str) -> Result<(u64, [u8; 32], u64), OpError> {
        let mut client = self.client.clone();
        let r = self.call(client.propose(proto::ProposeRequest {
            document: document.to_string(),
        }))?;
        governance_reply(r)
    }

    fn approve(&self, version: u64, digest: [u8; 32]) -> Result<(u64, [u8; 32], u64), OpError> {
        let mut client = self.client.clone();
        let r = self.call(client.approve(proto::ApproveRequest {
            version,
            digest: digest.to_vec(),
        }))?;
        governance_reply(r)
    }

    fn check(&self, _progress: &mut dyn FnMut(u64)) -> Result<CheckReport, OpError> {
        let mut client = self.client.clone();
        let r = self.call(client.check(proto::CheckRequest {}))?;
        Ok(CheckReport {
            records: r.records,
            cells: r.cells,
            differences: r.differences,
        })
    }
}

/// Connects to a running node's admin socket; `None` when no node is listening there.
pub async fn connect(socket: &Path) -> Option<AdminClient<Channel>> {
    if !socket.exists() {
        return None;
    }
    let path = socket.to_path_buf();
    let channel = Endpoint::try_from("http://admin.sock")
        .ok()?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
        }))
        .await
        .ok()?;
    Some(AdminClient::new(channel).max_decoding_message_size(crate::io::exchange::MAX_MESSAGE_BYTES))
}

fn governance_reply(r: proto::GovernanceReply) -> Result<(u64, [u8; 32], u64), OpError> {
    let digest = r
        .digest
        .try_into()
        .map_err(|_| OpError::Remote("the node answered with a digest that is not 32 bytes".into()))?;
    Ok((r.version, digest, r.in_force))
}

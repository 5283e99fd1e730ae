//! The admin socket: `<data_dir>/admin.sock`, a Unix socket (mode 0600) through which the CLI
//! drives a running node — the store is held by the daemon, so commands cannot open it
//! themselves. gRPC (`accord.v1.Admin`) over the socket; no file path crosses it (ingest streams
//! the validated records).

use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Response, Status, Streaming};

use crate::dataset::{Cube, Period};
use crate::exchange::sync::{summarize, Syncer};
use crate::node::Node;
use crate::proto;
use crate::proto::admin_client::AdminClient;
use crate::proto::admin_server::Admin;
use crate::reconcile::{render, Format, ViewFilter};
use crate::record::validate::{validate_fields, RawRecord, ValidationContext};
use crate::record::{Country, Record};

/// Serves admin requests for a running node.
pub struct AdminService {
    pub node: Arc<Node>,
    pub syncer: Arc<Syncer>,
}

fn text(t: String) -> Response<proto::TextReply> {
    Response::new(proto::TextReply {
        text: t,
        failed: false,
        reason: String::new(),
    })
}

/// A reply that may report a failure with its one-line reason.
fn text_or_failure(t: String, reason: Option<String>) -> Response<proto::TextReply> {
    Response::new(proto::TextReply {
        text: t,
        failed: reason.is_some(),
        reason: reason.unwrap_or_default(),
    })
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

#[tonic::async_trait]
impl Admin for AdminService {
    async fn ingest(
        &self,
        request: Request<Streaming<proto::IngestBatch>>,
    ) -> Result<Response<proto::IngestReply>, Status> {
        let mut stream = request.into_inner();
        let ctx = ValidationContext::for_today(self.node.country());
        let mut reply = proto::IngestReply::default();
        while let Some(batch) = stream.message().await? {
            let mut records = Vec::with_capacity(batch.records.len());
            for m in batch.records {
                let id = m.event_id.clone();
                records.push(from_message(m, &ctx).map_err(|e| Status::invalid_argument(format!("event {id}: {e}")))?);
            }
            let node = self.node.clone();
            let outcome = tokio::task::spawn_blocking(move || node.store.ingest(&records))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| Status::internal(e.to_string()))?;
            reply.stored += outcome.stored;
            reply.replaced += outcome.replaced;
        }
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || node.store.flush())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(reply))
    }

    async fn publish(&self, request: Request<proto::PublishRequest>) -> Result<Response<proto::TextReply>, Status> {
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
        let node = self.node.clone();
        let published = tokio::task::spawn_blocking(move || node.publish(cube, period, audience))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(crate::exchange::to_status)?;
        let syncer = self.syncer.clone();
        tokio::spawn(async move { syncer.announce_all().await });
        Ok(text(describe_published(&published, cube, period)))
    }

    async fn sync(&self, _: Request<proto::SyncRequest>) -> Result<Response<proto::TextReply>, Status> {
        let results = self.syncer.pull_all().await;
        let (t, reason) = summarize(&results);
        Ok(text_or_failure(t, reason))
    }

    async fn view(&self, request: Request<proto::ViewRequest>) -> Result<Response<proto::TextReply>, Status> {
        let r = request.into_inner();
        let (filter, format) =
            view_args(&r.cube, &r.period, &r.origin, &r.destination, &r.format).map_err(Status::invalid_argument)?;
        let node = self.node.clone();
        let view = tokio::task::spawn_blocking(move || node.view())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(crate::exchange::to_status)?;
        Ok(text(render(&view, &filter, format)))
    }

    async fn status(&self, request: Request<proto::StatusRequest>) -> Result<Response<proto::TextReply>, Status> {
        let json = request.into_inner().format == "json";
        let node = self.node.clone();
        let status = tokio::task::spawn_blocking(move || node.status())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(crate::exchange::to_status)?;
        Ok(text(if json { status.to_json() } else { status.to_text() }))
    }

    async fn export(&self, request: Request<proto::ExportRequest>) -> Result<Response<proto::ExportReply>, Status> {
        let r = request.into_inner();
        let publisher = country_arg("publisher", &r.publisher)?;
        let file = self.node.export(publisher, r.seq).map_err(crate::exchange::to_status)?;
        Ok(Response::new(proto::ExportReply { file }))
    }

    async fn check(&self, _: Request<proto::CheckRequest>) -> Result<Response<proto::TextReply>, Status> {
        let node = self.node.clone();
        let report = tokio::task::spawn_blocking(move || node.store.check(&mut |_| {}))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        let (t, reason) = describe_check(&report);
        Ok(text_or_failure(t, reason))
    }
}

/// One line on a publish.
pub fn describe_published(p: &crate::node::Published, cube: Cube, period: Period) -> String {
    format!(
        "published {} {cube} {period} as seq {} ({} cells, {} confidential), digest {}\n",
        p.publisher,
        p.seq,
        p.cells,
        p.confidential,
        crate::hex::encode(&p.digest)
    )
}

/// The check report as text, and whether it found differences.
pub fn describe_check(report: &crate::store::CheckReport) -> (String, Option<String>) {
    if report.differences.is_empty() {
        return (
            format!(
                "aggregates agree with {} records ({} cells)\n",
                report.records, report.cells
            ),
            None,
        );
    }
    let mut t = format!(
        "{} differences between records and aggregates:\n",
        report.differences.len()
    );
    for d in &report.differences {
        t.push_str(d);
        t.push('\n');
    }
    let reason = format!(
        "check found {} differences between the records and the aggregates (listed on stdout)",
        report.differences.len()
    );
    (t, Some(reason))
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

/// The node validates again what it receives: the socket is a boundary too.
fn from_message(m: proto::RecordMessage, ctx: &ValidationContext) -> Result<Record, crate::record::FieldError> {
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
    Some(AdminClient::new(channel).max_decoding_message_size(crate::exchange::MAX_MESSAGE_BYTES))
}

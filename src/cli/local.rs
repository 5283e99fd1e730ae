//! The admin commands: through a running node's admin socket when there is one, otherwise on
//! the store directly (the same `Node` operations either way).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::mpsc;

use accord::admin::{self, describe_check, describe_published};
use accord::config::NodeConfig;
use accord::exchange::summarize;
use accord::ingest::{ingest_file, FileReport, IngestError, Progress, RecordSink};
use accord::model::Country;
use accord::model::{Cube, Period};
use accord::node::Node;
use accord::proto;
use accord::proto::admin_client::AdminClient;
use accord::reconcile::{Format, ViewFilter};
use accord::record::validate::ValidationContext;
use accord::record::Record;
use accord::store::IngestOutcome;

use super::progress::Bar;
use super::runtime;

type Client = AdminClient<tonic::transport::Channel>;

fn load(config: &Path) -> Result<NodeConfig> {
    Ok(NodeConfig::load(config)?)
}

/// The running node's admin client, if a node runs on this data dir.
fn running(rt: &tokio::runtime::Runtime, config: &NodeConfig) -> Option<Client> {
    rt.block_on(admin::connect(&config.admin_socket()))
}

fn open(config: NodeConfig) -> Result<Arc<Node>> {
    Ok(Node::open(config)?)
}

fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow!("node: {}", s.message())
}

fn print_reply(reply: proto::TextReply) -> Result<i32> {
    let reason = reply.failed.then_some(reply.reason);
    print_outcome(&reply.text, reason)
}

/// Prints a command's report; a failed command then ends with its one-line reason on stderr.
fn print_outcome(text: &str, failure: Option<String>) -> Result<i32> {
    out!("{text}");
    match failure {
        None => Ok(0),
        Some(reason) if reason.is_empty() => bail!("the node reported a failure"),
        Some(reason) => bail!("{reason}"),
    }
}

pub fn serve(config: &Path) -> Result<i32> {
    let config = load(config)?;
    // Check TLS files before the store or any port, so a misconfigured node fails fast.
    accord::tls::server_config(&config.tls)?;
    let node = open(config)?;
    let rt = runtime()?;
    rt.block_on(async {
        let listener = accord::daemon::bind(&node).await?;
        accord::daemon::run(node.clone(), listener, shutdown_signal()).await
    })?;
    Ok(0)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Streams validated batches to a running node.
struct AdminSink {
    tx: mpsc::Sender<proto::IngestBatch>,
}

impl RecordSink for AdminSink {
    fn store(&mut self, batch: &[Record]) -> Result<IngestOutcome, IngestError> {
        let records = batch.iter().map(admin::to_message).collect();
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

fn progress_for<'a>(bar: &'a Bar, file: &Path) -> impl FnMut(Progress) + 'a {
    let name = file.display().to_string();
    move |p: Progress| {
        bar.set_length(p.total_bytes);
        bar.set_message(format!("{} {name}", p.pass));
        bar.set(p.bytes_read);
    }
}

pub fn ingest(config: &Path, files: &[PathBuf], skip_invalid: bool) -> Result<i32> {
    let config = load(config)?;
    let ctx = ValidationContext::for_today(config.country);
    let rt = runtime()?;
    let client = running(&rt, &config);
    let node = match client {
        Some(_) => None,
        None => Some(open(config.clone())?),
    };
    // Each file is all or nothing on its own: a rejected file does not stop the others, and
    // the command fails at the end naming it. A store or node failure stops everything.
    let mut rejected: Vec<anyhow::Error> = Vec::new();
    for file in files {
        match ingest_one(&rt, client.as_ref(), node.as_deref(), file, &ctx, skip_invalid) {
            Ok(()) => {}
            Err(e) if is_rejection(&e) => {
                outln!("{}: rejected, nothing stored: {e:#}", file.display());
                rejected.push(e);
            }
            Err(e) => return Err(e),
        }
    }
    match (rejected.len(), rejected.into_iter().next()) {
        (_, None) => Ok(0),
        (1, Some(only)) if files.len() == 1 => Err(only),
        (n, Some(first)) => Err(anyhow!(
            "{first:#}; {n} of {} files rejected, the others stored",
            files.len()
        )),
    }
}

/// A file refused as a whole (unreadable or with invalid rows), as opposed to a store failure.
fn is_rejection(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<IngestError>(),
        Some(IngestError::Invalid { .. } | IngestError::Read(_))
    )
}

fn ingest_one(
    rt: &tokio::runtime::Runtime,
    client: Option<&AdminClient<tonic::transport::Channel>>,
    node: Option<&Node>,
    file: &Path,
    ctx: &ValidationContext,
    skip_invalid: bool,
) -> Result<()> {
    let started = std::time::Instant::now();
    let bar = Bar::new(0, "bytes");
    let (report, outcome): (FileReport, IngestOutcome) = match (client, node) {
        (Some(client), _) => {
            let (tx, rx) = mpsc::channel(8);
            let mut client = client.clone();
            let call = rt.spawn(async move { client.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
            let mut sink = AdminSink { tx };
            let result = ingest_file(
                file,
                ctx.clone(),
                skip_invalid,
                &mut sink,
                &mut progress_for(&bar, file),
            );
            if result.is_ok() {
                // The whole file went through: the node may store it now. Without this mark
                // (a rejected file, or this process killed) the node stores none of it.
                let _ = sink.tx.blocking_send(proto::IngestBatch {
                    records: Vec::new(),
                    end: true,
                });
            }
            drop(sink);
            let reply = rt.block_on(call).map_err(|e| anyhow!("ingest task: {e}"))?;
            let report = result?;
            let reply = reply.map_err(status_error)?.into_inner();
            (
                report,
                IngestOutcome {
                    stored: reply.stored,
                    replaced: reply.replaced,
                },
            )
        }
        (None, Some(node)) => {
            let report = ingest_file(
                file,
                ctx.clone(),
                skip_invalid,
                &mut &*node,
                &mut progress_for(&bar, file),
            )?;
            let outcome = report.outcome;
            (report, outcome)
        }
        (None, None) => bail!("no store"),
    };
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    out!(
        "{}: stored {} records ({} replaced earlier ones) in {:.1} s, {:.0} records/s",
        file.display(),
        outcome.stored,
        outcome.replaced,
        secs,
        outcome.stored as f64 / secs.max(1e-9)
    );
    match &report.rejected_file {
        Some(r) => outln!("; {} rejected rows written to {}", report.rejected, r.display()),
        None => outln!(),
    }
    Ok(())
}

pub fn publish(config: &Path, cube: Cube, period: Period, audience: &[Country]) -> Result<i32> {
    let config = load(config)?;
    let rt = runtime()?;
    if let Some(mut client) = running(&rt, &config) {
        let reply = rt
            .block_on(client.publish(proto::PublishRequest {
                cube: cube.to_string(),
                period: period.to_string(),
                audience: audience.iter().map(ToString::to_string).collect(),
            }))
            .map_err(status_error)?;
        return print_reply(reply.into_inner());
    }
    let node = open(config)?;
    let published = node.publish(cube, period, audience.to_vec())?;
    out!("{}", describe_published(&published));
    outln!("(no node running: peers receive it at their next sync with this node's daemon)");
    Ok(0)
}

pub fn sync(config: &Path) -> Result<i32> {
    let config = load(config)?;
    let rt = runtime()?;
    if let Some(mut client) = running(&rt, &config) {
        let reply = rt.block_on(client.sync(proto::SyncRequest {})).map_err(status_error)?;
        return print_reply(reply.into_inner());
    }
    let node = open(config)?;
    let results = rt.block_on(node.syncer().pull_all());
    let (text, failure) = summarize(&results);
    print_outcome(&text, failure)
}

pub fn view(config: &Path, filter: ViewFilter, format_v: Format) -> Result<i32> {
    let config = load(config)?;
    if filter.cube.is_none() && matches!(format_v, Format::Csv | Format::SdmxCsv) {
        // One CSV holds one cube; say which, so nobody takes the file for the whole view.
        eprintln!(
            "note: {} shows flows; --cube asylum or --cube permits for the others",
            format_v.as_str()
        );
    }
    let text = |v: Option<String>| v.unwrap_or_default();
    let (cube, period, origin, destination, format) = (
        text(filter.cube.map(|c| c.to_string())),
        text(filter.period.map(|p| p.to_string())),
        text(filter.origin.map(|c| c.to_string())),
        text(filter.destination.map(|c| c.to_string())),
        format_v.as_str(),
    );
    let rt = runtime()?;
    if let Some(mut client) = running(&rt, &config) {
        return rt.block_on(async {
            let mut chunks = client
                .view(proto::ViewRequest {
                    cube,
                    period,
                    origin,
                    destination,
                    format: format.into(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            while let Some(chunk) = chunks.message().await.map_err(status_error)? {
                note_left_out(&chunk.left_out);
                out!("{}", String::from_utf8_lossy(&chunk.text));
            }
            Ok(0)
        });
    }
    let node = open(config)?;
    let view = node.view()?;
    let left_out: Vec<String> = node.left_out()?.iter().map(ToString::to_string).collect();
    note_left_out(&left_out);
    out!("{}", accord::reconcile::render(&view, &filter, format_v));
    Ok(0)
}

/// Names on stderr the stored entries the view leaves out, so nobody takes it for complete.
fn note_left_out(left_out: &[String]) {
    for entry in left_out {
        eprintln!("note: left out of the view (no longer verifies under the consortium in force): {entry}");
    }
}

pub fn status(config: &Path, json: bool) -> Result<i32> {
    let format = if json { "json" } else { "text" };
    let config = load(config)?;
    let rt = runtime()?;
    if let Some(mut client) = running(&rt, &config) {
        let reply = rt
            .block_on(client.status(proto::StatusRequest { format: format.into() }))
            .map_err(status_error)?;
        let mut reply = reply.into_inner();
        if json && !reply.text.ends_with('\n') {
            reply.text.push('\n');
        }
        return print_reply(reply);
    }
    let node = open(config)?;
    let status = node.status()?;
    if json {
        outln!("{}", status.to_json());
    } else {
        out!("{}", status.to_text());
        outln!("node         not running (store opened directly)");
    }
    Ok(0)
}

pub fn export(config: &Path, publisher: &str, seq: u64, out: &Path) -> Result<i32> {
    let config = load(config)?;
    let who = Country::parse(publisher).with_context(|| format!("--publisher: not a member code {publisher:?}"))?;
    let rt = runtime()?;
    let bytes = match running(&rt, &config) {
        Some(mut client) => {
            rt.block_on(client.export(proto::ExportRequest {
                publisher: publisher.into(),
                seq,
            }))
            .map_err(status_error)?
            .into_inner()
            .file
        }
        None => open(config)?.export(who, seq)?,
    };
    std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    outln!("wrote {who} seq {seq} to {}", out.display());
    Ok(0)
}

pub fn check(config: &Path, rebuild: bool) -> Result<i32> {
    let config = load(config)?;
    let rt = runtime()?;
    if rebuild {
        if running(&rt, &config).is_some() {
            bail!("--rebuild needs the store to itself: stop the node, then run it again");
        }
        let bar = Bar::new(0, "records");
        let (store, rebuilt) = accord::store::Store::open_rebuilding(
            &config.data_dir,
            config.country,
            config.consortium.definition,
            &mut |n| bar.set(n),
        )?;
        bar.finish();
        match rebuilt {
            Some(r) => outln!(
                "rebuilt {} aggregate cells from {} records: {} (was {})",
                r.cells,
                r.records,
                r.to,
                r.from
            ),
            None => outln!("aggregates already follow the consortium's definition; nothing to rebuild"),
        }
        // Checked on the store already open: sled lets go of its lock only after its background
        // flusher stops, so reopening at once could find the store still "in use".
        let bar = Bar::new(0, "records");
        let report = store.check(&mut |n| bar.set(n))?;
        bar.finish();
        let (text, failure) = describe_check(&report);
        return print_outcome(&text, failure);
    }
    if let Some(mut client) = running(&rt, &config) {
        let reply = rt
            .block_on(client.check(proto::CheckRequest {}))
            .map_err(status_error)?;
        return print_reply(reply.into_inner());
    }
    let node = open(config)?;
    let bar = Bar::new(0, "records");
    let report = node.check(&mut |n| bar.set(n))?;
    bar.finish();
    let (text, failure) = describe_check(&report);
    print_outcome(&text, failure)
}

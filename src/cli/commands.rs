//! The admin commands, one path each: [`operations`] picks a running node's admin socket when
//! there is one and the store otherwise, and each command calls the same [`Operations`] either
//! way, then prints what `report` renders.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use accord::admin::Remote;
use accord::config::NodeConfig;
use accord::ingest::{IngestError, Progress};
use accord::model::Country;
use accord::node::{Local, Node, OpError, Operations, PublishRequest};
use accord::reconcile::{Format, ViewFilter};
use accord::record::validate::ValidationContext;
use accord::report;

use super::progress::Bar;
use super::runtime;

fn load(config: &Path) -> Result<NodeConfig> {
    Ok(NodeConfig::load(config)?)
}

/// The node's operations: through its admin socket while it runs, on its store otherwise.
fn operations(config: &NodeConfig) -> Result<Box<dyn Operations>> {
    match Remote::connect(&config.admin_socket())? {
        Some(remote) => Ok(Box::new(remote)),
        None => Ok(Box::new(Local::open(config.clone())?)),
    }
}

/// Prints a command's report; a failed command then ends with its one-line reason on stderr.
fn print_outcome(text: &str, failure: Option<String>) -> Result<i32> {
    out!("{text}");
    match failure {
        None => Ok(0),
        Some(reason) => bail!("{reason}"),
    }
}

pub fn serve(config: &Path) -> Result<i32> {
    let config = load(config)?;
    // Check TLS files before the store or any port, so a misconfigured node fails fast.
    accord::tls::server_config(&config.tls)?;
    let node = Node::open(config)?;
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
    let ops = operations(&config)?;
    // Each file is all or nothing on its own: a rejected file does not stop the others, and
    // the command fails at the end naming it. A store or node failure stops everything.
    let mut rejected: Vec<anyhow::Error> = Vec::new();
    for file in files {
        match ingest_one(ops.as_ref(), file, &ctx, skip_invalid) {
            Ok(()) => {}
            Err(e) if is_rejection(&e) => {
                let e = anyhow::Error::from(e);
                outln!("{}", report::ingest_rejected(file, &format!("{e:#}")));
                rejected.push(e);
            }
            Err(e) => return Err(e.into()),
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
fn is_rejection(e: &OpError) -> bool {
    matches!(e, OpError::Ingest(IngestError::Invalid { .. } | IngestError::Read(_)))
}

fn ingest_one(ops: &dyn Operations, file: &Path, ctx: &ValidationContext, skip_invalid: bool) -> Result<(), OpError> {
    let started = std::time::Instant::now();
    let bar = Bar::new(0, "bytes");
    let report = ops.ingest(file, ctx.clone(), skip_invalid, &mut progress_for(&bar, file))?;
    bar.finish();
    outln!("{}", report::ingested(file, &report, started.elapsed().as_secs_f64()));
    Ok(())
}

pub fn publish(config: &Path, request: PublishRequest) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let published = ops.publish(request)?;
    out!("{}", report::published_line(&published));
    if !ops.through_daemon() {
        outln!("{}", report::PUBLISHED_OFFLINE);
    }
    Ok(0)
}

pub fn sync(config: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let (text, failure) = report::sync_text(&ops.sync()?);
    print_outcome(&text, failure)
}

pub fn view(config: &Path, filter: ViewFilter, format: Format, as_of: Option<i64>) -> Result<i32> {
    let config = load(config)?;
    if filter.cube.is_none() && matches!(format, Format::Csv | Format::SdmxCsv) {
        // One CSV holds one cube; say which, so nobody takes the file for the whole view.
        eprintln!("{}", report::view_cube_note(format));
    }
    let ops = operations(&config)?;
    let left_out = ops.view(filter, format, as_of, &mut |bytes| {
        out!("{}", String::from_utf8_lossy(bytes))
    })?;
    // Named on stderr, so nobody takes the view for complete.
    for entry in left_out {
        eprintln!("{}", report::left_out_note(&entry));
    }
    Ok(0)
}

pub fn status(config: &Path, json: bool) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let status = ops.status()?;
    if json {
        outln!("{}", report::status_json(&status));
    } else {
        out!("{}", report::status_text(&status));
        if !ops.through_daemon() {
            outln!("{}", report::STATUS_OFFLINE);
        }
    }
    Ok(0)
}

pub fn consortium(config: &Path, version: Option<u64>, json: bool) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let c = ops.consortium(version)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&c).unwrap_or_default());
    } else {
        // stdout is the document alone, so that its SHA-256 is the digest; the rest on stderr.
        eprintln!("{}", report::consortium_header(&c));
        out!("{}", c.document);
    }
    Ok(0)
}

pub fn propose(config: &Path, change: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let document =
        std::fs::read_to_string(change).map_err(|e| anyhow!("propose: cannot read {}: {e}", change.display()))?;
    let (version, digest, in_force) = ops.propose(&document)?;
    outln!("{}", report::proposed(version, &digest, in_force));
    Ok(0)
}

pub fn approve(config: &Path, version: u64, digest: [u8; 32]) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let (version, digest, in_force) = ops.approve(version, digest)?;
    outln!("{}", report::approved(version, &digest, in_force));
    Ok(0)
}

pub fn export(config: &Path, publisher: Country, seq: u64, out: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let bytes = ops.export(publisher, seq)?;
    std::fs::write(out, &bytes).map_err(|e| anyhow!("cannot write {}: {e}", out.display()))?;
    outln!("{}", report::exported(publisher, seq, out));
    Ok(0)
}

pub fn backup(config: &Path, out: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    // The daemon may run elsewhere in the file system: it gets the path whole.
    let out = std::path::absolute(out).map_err(|e| anyhow!("backup: {}: {e}", out.display()))?;
    let s = ops.backup(&out)?;
    outln!("{}", report::backed_up(&s, &out));
    Ok(0)
}

pub fn certify(config: &Path, out: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let out = std::path::absolute(out).map_err(|e| anyhow!("certify: {}: {e}", out.display()))?;
    let s = ops.certify(&out)?;
    outln!("{}", report::certify_written(&s, &out));
    Ok(0)
}

pub fn verify_bundle(consortium: &Path, dir: &Path) -> Result<i32> {
    let trusted = accord::consortium::Consortium::load(consortium)?;
    let r = accord::certify::verify(dir, &trusted).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    out!("{}", report::certified(&r));
    Ok(0)
}

pub fn restore(config: &Path, file: &Path) -> Result<i32> {
    let config = load(config)?;
    let data_dir = config.data_dir.clone();
    let r = accord::node::Node::restore(config, file)?;
    outln!("{}", report::restored(&r, file, &data_dir));
    let (text, failure) = report::check_text(&r.check);
    print_outcome(&text, failure)
}

pub fn check(config: &Path, migrate: bool, rebuild: bool) -> Result<i32> {
    let config = load(config)?;
    if migrate {
        migrate_store(&config)?;
    }
    if rebuild {
        return rebuild_then_check(&config);
    }
    let ops = operations(&config)?;
    let bar = Bar::new(0, "records");
    let checked = ops.check(&mut |n| bar.set(n))?;
    bar.finish();
    let (text, failure) = report::check_text(&checked);
    print_outcome(&text, failure)
}

/// `check --migrate`: on the store alone (the node stopped), back it up and bring it to this
/// build's format; the check that follows reads it as migrated.
fn migrate_store(config: &NodeConfig) -> Result<()> {
    if Remote::connect(&config.admin_socket())?.is_some() {
        bail!("--migrate needs the store to itself: stop the node, then run it again");
    }
    // The backup taken first is sealed like any other: with the node's signing key.
    let key = accord::node::signing_key(config)?;
    let migrated = accord::store::migrate(&config.data_dir, Some(&key))?;
    outln!("{}", report::migrated(migrated.as_ref()));
    Ok(())
}

/// `check --rebuild`: on the store alone (the node stopped), rebuild the aggregates under the
/// consortium's definition, then check them.
fn rebuild_then_check(config: &NodeConfig) -> Result<i32> {
    if Remote::connect(&config.admin_socket())?.is_some() {
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
    outln!("{}", report::rebuilt(rebuilt.as_ref()));
    // Checked on the store already open: sled lets go of its lock only after its background
    // flusher stops, so reopening at once could find the store still "in use".
    let bar = Bar::new(0, "records");
    let checked = store.check(&mut |n| bar.set(n))?;
    bar.finish();
    let (text, failure) = report::check_text(&checked);
    print_outcome(&text, failure)
}

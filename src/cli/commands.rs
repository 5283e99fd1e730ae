//! The admin commands, one path each: [`operations`] picks a running node's admin socket when
//! there is one and the store otherwise, and each command calls the same [`Operations`] either
//! way, then prints what `report` renders.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use accord::admin::Remote;
use accord::config::NodeConfig;
use accord::ingest::{IngestError, Progress};
use accord::model::{Country, Cube, Period};
use accord::node::{Local, Node, OpError, Operations};
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
                outln!("{}: rejected, nothing stored: {e:#}", file.display());
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
    let outcome = report.outcome;
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
    let ops = operations(&load(config)?)?;
    let published = ops.publish(cube, period, audience.to_vec())?;
    out!("{}", report::published_line(&published));
    if !ops.through_daemon() {
        outln!("(no node running: peers receive it at their next sync with this node's daemon)");
    }
    Ok(0)
}

pub fn sync(config: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let (text, failure) = report::sync_text(&ops.sync()?);
    print_outcome(&text, failure)
}

pub fn view(config: &Path, filter: ViewFilter, format: Format) -> Result<i32> {
    let config = load(config)?;
    if filter.cube.is_none() && matches!(format, Format::Csv | Format::SdmxCsv) {
        // One CSV holds one cube; say which, so nobody takes the file for the whole view.
        eprintln!(
            "note: {} shows flows; --cube asylum or --cube permits for the others",
            format.as_str()
        );
    }
    let ops = operations(&config)?;
    let left_out = ops.view(filter, format, &mut |bytes| out!("{}", String::from_utf8_lossy(bytes)))?;
    // Named on stderr, so nobody takes the view for complete.
    for entry in left_out {
        eprintln!("note: left out of the view (no longer verifies under the consortium in force): {entry}");
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
            outln!("node         not running (store opened directly)");
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
        eprintln!(
            "# consortium version {} ({}), digest {}, {}",
            c.version,
            if c.version == c.in_force {
                "in force".to_string()
            } else {
                format!("version {} is in force", c.in_force)
            },
            c.digest,
            match &c.proposer {
                None => "genesis".to_string(),
                Some(p) => format!("proposed by {p}, approved by {}", c.approvals.join(", ")),
            }
        );
        out!("{}", c.document);
    }
    Ok(0)
}

pub fn propose(config: &Path, change: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let document =
        std::fs::read_to_string(change).map_err(|e| anyhow!("propose: cannot read {}: {e}", change.display()))?;
    let (version, digest, in_force) = ops.propose(&document)?;
    let digest = accord::hex::encode(&digest);
    if in_force == version {
        outln!("proposed version {version} (digest {digest}): in force now, the proposal alone is a quorum");
    } else {
        outln!(
            "proposed version {version} (digest {digest}); version {in_force} stays in force until a quorum of its members approves: accord approve --version {version} --digest {digest}"
        );
    }
    Ok(0)
}

pub fn approve(config: &Path, version: u64, digest: [u8; 32]) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let (version, digest, in_force) = ops.approve(version, digest)?;
    outln!(
        "approved version {version} (digest {}); version {in_force} is in force",
        accord::hex::encode(&digest)
    );
    Ok(0)
}

pub fn export(config: &Path, publisher: Country, seq: u64, out: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let bytes = ops.export(publisher, seq)?;
    std::fs::write(out, &bytes).map_err(|e| anyhow!("cannot write {}: {e}", out.display()))?;
    outln!("wrote {publisher} seq {seq} to {}", out.display());
    Ok(0)
}

pub fn backup(config: &Path, out: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    // The daemon may run elsewhere in the file system: it gets the path whole.
    let out = std::path::absolute(out).map_err(|e| anyhow!("backup: {}: {e}", out.display()))?;
    let s = ops.backup(&out)?;
    outln!(
        "backed up {} keys ({} bytes) to {}: mode 0600, it holds the node secret and pseudonymised records; keep it as you keep the signing key",
        s.keys,
        s.bytes,
        out.display()
    );
    Ok(0)
}

pub fn certify(config: &Path, out: &Path) -> Result<i32> {
    let ops = operations(&load(config)?)?;
    let out = std::path::absolute(out).map_err(|e| anyhow!("certify: {}: {e}", out.display()))?;
    let s = ops.certify(&out)?;
    outln!(
        "certified view {} in {}: {} files, {} entries, attested by {} ({}), {} witnessing attestations",
        accord::hex::encode(&s.view_digest),
        out.display(),
        s.written.files,
        s.written.entries,
        s.attested_by.len(),
        s.attested_by.join(", "),
        s.written.witnesses
    );
    Ok(0)
}

pub fn verify_bundle(consortium: &Path, dir: &Path) -> Result<i32> {
    let trusted = accord::model::Consortium::load(consortium)?;
    let r = accord::certify::verify(dir, &trusted).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    out!("{}", report::certified(&r));
    Ok(0)
}

pub fn restore(config: &Path, file: &Path) -> Result<i32> {
    let config = load(config)?;
    let data_dir = config.data_dir.clone();
    let r = accord::node::Node::restore(config, file)?;
    if let Some(from) = r.migrated_from {
        outln!(
            "migrated the restored store from format {from} to format {}",
            accord::store::FORMAT_VERSION
        );
    }
    outln!(
        "restored {} keys ({} bytes) from {} into {}; {} entries verified again ({} left out under the consortium in force)",
        r.keys,
        r.bytes,
        file.display(),
        data_dir.display(),
        r.entries,
        r.left_out
    );
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
    match accord::store::migrate(&config.data_dir, Some(&key))? {
        Some(m) => {
            if let Some(backup) = &m.backup {
                outln!(
                    "backed up the format {} store to {} (restore it with `accord restore` into an empty data_dir to undo)",
                    m.from,
                    backup.display()
                );
            }
            outln!(
                "migrated the store from format {} to format {} ({} values rewritten)",
                m.from,
                m.to,
                m.rewritten
            );
        }
        None => outln!(
            "the store already has format {}; nothing to migrate",
            accord::store::FORMAT_VERSION
        ),
    }
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
    let checked = store.check(&mut |n| bar.set(n))?;
    bar.finish();
    let (text, failure) = report::check_text(&checked);
    print_outcome(&text, failure)
}

//! `accord demo`: the whole system on one machine (SPEC §9). A temporary consortium of three
//! members with example certificates, a synthetic year of records for each, three real nodes on
//! loopback ports over mutual TLS; ingest, publish, sync, then the common view of the mirror
//! pairs and every node's view digest (which must all be equal).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::domain::consortium::{Accuracy, Measurement, Undercount};
use crate::domain::date::Date;
use crate::domain::hex;
use crate::domain::model::Country;
use crate::domain::model::{Cube, Period};
use crate::domain::reconcile::Reported;
use crate::domain::record::validate::ValidationContext;
use crate::io::ingest::{ingest_file, IngestError};
use crate::node::{PeerPull, PublishRequest};
use crate::shell::report::sync_text;
use crate::tools::cluster::{full_mesh, ClusterError, ClusterOptions, LocalCluster};
use crate::tools::synth::{synthesize, Registers, SynthOptions};

/// Demo failures.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("synthetic data: {0}")]
    Synth(String),
    #[error("ingest: {0}")]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Node(#[from] crate::node::NodeError),
    #[error("nodes disagree: {0}")]
    Diverged(String),
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
}

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub countries: Vec<Country>,
    /// Synthetic records per country.
    pub records: u64,
    pub seed: u64,
    /// Where to work; a fresh temporary directory (removed afterwards) when `None`.
    pub dir: Option<PathBuf>,
    /// Also publish the twelve months of flows, serve every node's dashboard and keep the
    /// nodes running until Ctrl-C.
    pub dashboard: bool,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions {
            countries: ["DEU", "FRA", "ITA"].iter().filter_map(|c| Country::parse(c)).collect(),
            records: 60_000,
            seed: 2024,
            dir: None,
            dashboard: false,
        }
    }
}

/// What the demo established.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Each node's view digest (hex).
    pub digests: Vec<(Country, String)>,
    pub pairs: usize,
    pub flagged: usize,
}

/// Runs the demo, writing its narrative to `out`.
pub async fn run(options: DemoOptions, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    let (dir, temporary) = match &options.dir {
        Some(d) => (d.clone(), false),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            (
                std::env::temp_dir().join(format!("accord-demo-{}-{nanos}", std::process::id())),
                true,
            )
        }
    };
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&options, &dir, out, started).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_in(
    options: &DemoOptions,
    dir: &Path,
    out: &mut dyn Write,
    started: Instant,
) -> Result<DemoReport, DemoError> {
    let names: Vec<String> = options.countries.iter().map(|c| c.to_string()).collect();
    writeln!(
        out,
        "Accord demo: consortium of {} in {}",
        names.join(", "),
        dir.display()
    )?;
    let year = Date::today().year - 1;
    let period = Period::Year(year);

    // The members' registers are drawn from measurement classes (SPEC §15); the consortium
    // declares those classes and asks for estimates, anchored on the members whose immigration
    // registers miss least.
    let registers = Registers::Drawn;
    let declared: Vec<(Country, Measurement)> = options
        .countries
        .iter()
        .filter_map(|&c| registers.classes(options.seed, c).map(|m| (c, m)))
        .collect();
    let declaration = declare(&declared);
    let cluster_options = ClusterOptions {
        countries: options.countries.clone(),
        peered: full_mesh,
        sync_interval_secs: 3600,
        consortium_edit: Some(std::sync::Arc::new(move |text: &str| declaration(text))),
        dashboard: options.dashboard,
    };
    let cluster = LocalCluster::start(dir, &cluster_options).await?;
    writeln!(out, "  example CA and certificates in {}", cluster.pki.display())?;
    for n in &cluster.nodes {
        writeln!(out, "  node {} listening on https://{} (mutual TLS)", n.country, n.addr)?;
    }

    let synth_dir = dir.join("records");
    let opts = SynthOptions {
        countries: options.countries.clone(),
        year,
        records: options.records,
        seed: options.seed,
        out: synth_dir.clone(),
        registers,
    };
    let summary = tokio::task::spawn_blocking(move || synthesize(&opts, &mut |_| {}))
        .await
        .map_err(|e| DemoError::Synth(e.to_string()))?
        .map_err(|e| DemoError::Synth(e.to_string()))?;
    writeln!(out, "  synthesised {year}: {} true moves", summary.moves)?;

    for (i, n) in cluster.nodes.iter().enumerate() {
        let node = cluster
            .node(i)
            .cloned()
            .ok_or_else(|| DemoError::Diverged(format!("{} not running", n.country)))?;
        let file = summary
            .files
            .iter()
            .find(|(c, _, _)| *c == n.country)
            .map(|(_, p, _)| p.clone())
            .ok_or_else(|| DemoError::Synth(format!("no records for {}", n.country)))?;
        let country = n.country;
        let months = options.dashboard;
        let report = tokio::task::spawn_blocking(move || -> Result<_, DemoError> {
            let ctx = ValidationContext::for_today(country);
            let report = ingest_file(&file, ctx, false, &mut &*node, &mut |_| {})?;
            let mut published = Vec::new();
            for cube in Cube::ALL {
                published.push(node.publish(PublishRequest::new(cube, period))?);
            }
            if months {
                // Under threshold disclosure the audit may refuse a month that, with the year
                // already out, would give a small count away (SPEC §10): that month is skipped.
                for month in 1..=12 {
                    if let Ok(p) = node.publish(PublishRequest::new(Cube::Flows, Period::Month(year, month))) {
                        published.push(p);
                    }
                }
            }
            Ok((report, published))
        })
        .await
        .map_err(|e| DemoError::Synth(e.to_string()))??;
        writeln!(
            out,
            "  {}: ingested {} records, published flows/asylum/permits {year} as seq {}..{}",
            n.country,
            report.0.outcome.stored,
            report.1.first().map_or(0, |p| p.seq),
            report.1.last().map_or(0, |p| p.seq)
        )?;
    }

    // Two explicit pull rounds over mutual TLS (announcements may already have done the work).
    for round in 1..=2 {
        for (i, n) in cluster.nodes.iter().enumerate() {
            let Some(node) = cluster.node(i).cloned() else { continue };
            let results = node.syncer().pull_all().await;
            let pulls: Vec<PeerPull> = results.iter().map(|(peer, r)| PeerPull::of(*peer, r)).collect();
            let (text, failure) = sync_text(&pulls);
            if round == 1 || failure.is_some() {
                for line in text.lines() {
                    writeln!(out, "  sync {} <- {line}", n.country)?;
                }
            }
        }
    }

    let mut digests = Vec::new();
    let mut view = None;
    for (i, n) in cluster.nodes.iter().enumerate() {
        let Some(node) = cluster.node(i) else { continue };
        let v = node.view()?;
        digests.push((n.country, hex::encode(&v.digest())));
        view.get_or_insert(v);
    }
    let view = view.ok_or_else(|| DemoError::Diverged("no view".into()))?;

    writeln!(
        out,
        "\nCommon view, flows {year}, mirror pairs (rule: {}, flag when |asymmetry| > {}):",
        view.rule.as_str(),
        view.asymmetry_flag
    )?;
    // The synthetic truth, to set the rule's figure and the estimate against.
    let truth = std::fs::read_to_string(&summary.truth)
        .ok()
        .and_then(|text| crate::domain::reconcile::read_truth(&text, period).ok())
        .unwrap_or_default();
    writeln!(
        out,
        "  {:<8} {:<12} {:>8} {:>8} {:>10} {:>9}  flag  {:>22} {:>8}",
        "origin", "destination", "sender", "receiver", "reconciled", "asymmetry", "estimate [95%]", "truth"
    )?;
    let show = |r: Reported, withheld: u64| match r {
        Reported::Value(v) if withheld > 0 => format!("{v}+C"),
        Reported::Value(v) => v.to_string(),
        Reported::Confidential => "C".into(),
        Reported::Missing => "-".into(),
    };
    let members: Vec<Country> = options.countries.clone();
    let mut pairs = 0;
    let mut flagged = 0;
    for (key, total) in &view.pairs {
        if key.period != period || !members.contains(&key.origin) || !members.contains(&key.destination) {
            continue;
        }
        pairs += 1;
        flagged += usize::from(total.flag);
        writeln!(
            out,
            "  {:<8} {:<12} {:>8} {:>8} {:>10} {:>9}  {:<4}  {:>22} {:>8}",
            key.origin.as_str(),
            key.destination.as_str(),
            show(total.sender.reported, total.sender.withheld),
            show(total.receiver.reported, total.receiver.withheld),
            match total.reconciled {
                Some(v) => show(Reported::Value(v), total.reconciled_withheld),
                None if total.reconciled_status() == "C" => "C".into(),
                None => "-".into(),
            },
            total.asymmetry.map_or("-".into(), |a| format!("{a:+.4}")),
            if total.flag { "!" } else { "" },
            total
                .estimate
                .map_or("-".into(), |e| format!("{} [{}, {}]", e.value, e.lower, e.upper)),
            truth
                .get(&(key.origin, key.destination, period))
                .map_or("-".into(), |t| t.to_string())
        )?;
    }
    writeln!(
        out,
        "  (totals are the ones each member published, exact; C: a total itself confidential;\n   \
         +C: a sum of cells that leaves confidential ones out, from a dataset without totals;\n   \
         estimate: the modelled figure of SPEC §15 under the classes the consortium declares;\n   \
         truth: the synthetic world's true long-term moves; flows with non-members are in `accord view`)"
    )?;

    writeln!(out, "\nView digest per node:")?;
    for (c, d) in &digests {
        writeln!(out, "  {c}  {d}")?;
    }
    let first = digests.first().map(|(_, d)| d.clone()).unwrap_or_default();
    let agree = digests.iter().all(|(_, d)| *d == first);
    if options.dashboard && agree {
        writeln!(out, "\nDashboards (read-only; Ctrl-C stops the demo):")?;
        for n in &cluster.nodes {
            if let Some(addr) = n.dashboard {
                writeln!(out, "  {}  http://{addr}/flows", n.country)?;
            }
        }
        out.flush()?;
        let _ = tokio::signal::ctrl_c().await;
    }
    cluster.shutdown().await?;
    if !agree {
        return Err(DemoError::Diverged("view digests differ between nodes".into()));
    }
    writeln!(
        out,
        "All {} nodes agree. Shut down cleanly in {:.1} s.",
        digests.len(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(DemoReport {
        digests,
        pairs,
        flagged,
    })
}

/// The reference members a consortium of these classes would pick: those whose immigration
/// registers miss least (low undercount), count by the 12-month definition and are accurate;
/// failing that, low undercount and the 12-month rule; failing that, low undercount; failing
/// that, the first member by code.
pub fn reference_members(classes: &[(Country, Measurement)]) -> Vec<Country> {
    let pick = |ok: &dyn Fn(&Measurement) -> bool| -> Vec<Country> {
        let mut out: Vec<Country> = classes.iter().filter(|(_, m)| ok(m)).map(|(c, _)| *c).collect();
        out.sort();
        out
    };
    let low = |m: &Measurement| m.immigration.undercount == Undercount::Low;
    let twelve = |m: &Measurement| low(m) && m.immigration.duration_months == 12;
    let accurate = |m: &Measurement| twelve(m) && m.immigration.accuracy == Accuracy::High;
    for ok in [&accurate as &dyn Fn(&Measurement) -> bool, &twelve, &low] {
        let found = pick(ok);
        if !found.is_empty() {
            return found;
        }
    }
    classes.iter().map(|(c, _)| *c).min().into_iter().collect()
}

/// Declares `classes` in a generated consortium.toml: each member's `[members.measurement]`
/// under its `[[members]]`, and `[estimates]` with [`reference_members`].
fn declare(classes: &[(Country, Measurement)]) -> impl Fn(&str) -> String + Send + Sync {
    let reference = reference_members(classes);
    let classes = classes.to_vec();
    move |text: &str| {
        let mut out = String::new();
        for line in text.lines() {
            out.push_str(line);
            out.push('\n');
            let Some(code) = line.strip_prefix("country = \"").and_then(|r| r.strip_suffix('"')) else {
                continue;
            };
            if let Some((_, m)) = classes.iter().find(|(c, _)| c.as_str() == code) {
                out.push_str("[members.measurement]\n");
                for (name, r) in [("emigration", m.emigration), ("immigration", m.immigration)] {
                    out.push_str(&format!(
                        "{name}_undercount = \"{}\"\n{name}_accuracy = \"{}\"\n{name}_duration_months = {}\n",
                        r.undercount.as_str(),
                        r.accuracy.as_str(),
                        r.duration_months
                    ));
                }
            }
        }
        let codes: Vec<String> = reference.iter().map(|c| format!("\"{c}\"")).collect();
        out.push_str(&format!(
            "\n[estimates]\nmethod = \"imem-lite\"\nreference = [{}]\n",
            codes.join(", ")
        ));
        out
    }
}

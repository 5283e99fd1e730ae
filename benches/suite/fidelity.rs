//! Issue 5: how close each reconciliation rule comes to the true flows. `accord synth` writes
//! four members' records and `truth.csv` (fixed seed); every node of a real cluster ingests its
//! file and publishes `flows` for the year, the nodes sync over mutual TLS, and the common view
//! (identical at every node, checked) is scored with `reconcile::pair_total_mape` against the
//! truth. Repeated for each disclosure method, since suppression and noise change the totals.

use std::sync::Arc;

use accord::cluster::{full_mesh, ClusterOptions, LocalCluster};
use accord::hex;
use accord::ingest::ingest_file;
use accord::model::{Cube, Period};
use accord::node::Node;
use accord::reconcile::{pair_total_mape, read_truth};
use accord::record::validate::ValidationContext;
use accord::synth::{synthesize, SynthOptions, SynthSummary};

use super::{country, line, section, thousands, timed, Fixture, SEED};

const COUNTRIES: [&str; 4] = ["DEU", "FRA", "ITA", "ESP"];
/// Records per country file.
const RECORDS: u64 = 100_000;

/// A rewrite of the generated consortium.toml (as `ClusterOptions::consortium_edit` takes).
type ConsortiumEdit = fn(&str) -> String;

fn threshold(text: &str) -> String {
    text.to_string()
}

fn cell_key(text: &str) -> String {
    text.replace("method = \"threshold\"\nthreshold = 5", "method = \"cell-key\"")
}

fn no_protection(text: &str) -> String {
    text.replace("method = \"threshold\"\nthreshold = 5", "method = \"none\"")
}

pub fn run(fx: &mut Fixture) {
    section("fidelity (issue 5): MAPE of reconciled pair totals against truth.csv");
    let opts = SynthOptions {
        countries: COUNTRIES.iter().map(|c| country(c)).collect(),
        year: fx.year,
        records: RECORDS,
        seed: SEED,
        out: fx.dir.path().join("fidelity-records"),
    };
    let summary = synthesize(&opts, &mut |_| {}).expect("synthesize");
    line(
        "synthetic input",
        format!(
            "{} members, {} records, {} true moves in {}, seed {SEED}",
            COUNTRIES.len(),
            thousands(summary.files.iter().map(|f| f.2).sum::<u64>() as f64),
            thousands(summary.moves as f64),
            fx.year
        ),
    );
    let text = std::fs::read_to_string(&summary.truth).expect("read truth.csv");
    let truth = read_truth(&text, Period::Year(fx.year)).expect("truth.csv parses");
    let members: Vec<_> = COUNTRIES.iter().map(|c| country(c)).collect();
    let member_truth: accord::reconcile::fidelity::Truth = truth
        .iter()
        .filter(|((o, d, _), _)| members.contains(o) && members.contains(d))
        .map(|(k, v)| (*k, *v))
        .collect();
    line(
        "truth pairs (moves > 0): all / mirror pairs scored",
        format!(
            "{} / {}",
            truth.values().filter(|&&m| m > 0).count(),
            member_truth.values().filter(|&&m| m > 0).count()
        ),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let methods: [(&str, ConsortiumEdit); 3] = [
        ("threshold k=5", threshold),
        ("cell-key", cell_key),
        ("none (test only)", no_protection),
    ];
    println!(
        "  {:<18} {:>10} {:>10} {:>10} {:>10}",
        "disclosure", "receiving", "sending", "max", "mean"
    );
    for (i, (name, edit)) in methods.into_iter().enumerate() {
        let dir = fx.dir.path().join(format!("fidelity-{i}"));
        let (mape, secs) = timed(|| runtime.block_on(view_mape(&dir, fx.year, &summary, edit, &truth)));
        let cell = |rule: &str| {
            mape.iter()
                .find(|(r, _)| r.as_str() == rule)
                .map_or("-".into(), |(_, m)| format!("{m:.1}%"))
        };
        println!(
            "  {:<18} {:>10} {:>10} {:>10} {:>10}   ({secs:.1} s)",
            name,
            cell("receiving"),
            cell("sending"),
            cell("max"),
            cell("mean")
        );
    }
}

/// Ingest, publish, sync and view on a fresh cluster; the MAPE per rule.
async fn view_mape(
    dir: &std::path::Path,
    year: i32,
    summary: &SynthSummary,
    edit: ConsortiumEdit,
    truth: &accord::reconcile::fidelity::Truth,
) -> Vec<(accord::model::Rule, f64)> {
    let options = ClusterOptions {
        countries: COUNTRIES.iter().map(|c| country(c)).collect(),
        peered: full_mesh,
        sync_interval_secs: 3600,
        consortium_edit: Some(edit),
    };
    let cluster = LocalCluster::start(dir, &options).await.expect("start cluster");
    let nodes: Vec<Arc<Node>> = (0..COUNTRIES.len())
        .map(|i| cluster.node(i).expect("node running").clone())
        .collect();
    let mut tasks = Vec::new();
    for node in &nodes {
        let node = node.clone();
        let file = summary
            .files
            .iter()
            .find(|f| f.0 == node.country())
            .map(|f| f.1.clone())
            .expect("file per member");
        tasks.push(tokio::task::spawn_blocking(move || {
            let ctx = ValidationContext::for_today(node.country());
            ingest_file(&file, ctx, false, &mut &*node, &mut |_| {}).expect("ingest");
            node.publish(Cube::Flows, Period::Year(year), Vec::new())
                .expect("publish");
        }));
    }
    for t in tasks {
        t.await.expect("ingest task");
    }
    for _ in 0..2 {
        for node in &nodes {
            for (peer, result) in node.syncer().pull_all().await {
                result.unwrap_or_else(|e| panic!("{} pulling from {peer}: {e}", node.country()));
            }
        }
    }
    let views: Vec<_> = nodes.iter().map(|n| n.view().expect("view")).collect();
    let digests: Vec<String> = views.iter().map(|v| hex::encode(&v.digest())).collect();
    assert!(
        digests.iter().all(|d| *d == digests[0]),
        "view digests differ between nodes: {digests:?}"
    );
    let inputs = views[0].inputs.len();
    assert_eq!(inputs, COUNTRIES.len(), "one flows dataset per member in the view");
    let mape = pair_total_mape(&views[0], truth);
    drop(views);
    drop(nodes);
    cluster.shutdown().await.expect("shutdown");
    mape
}

//! Issue 5: how close each reconciliation rule comes to the true flows. `accord synth` writes
//! four members' records and `truth.csv` (fixed seed); every node of a real cluster ingests its
//! file and publishes `flows` for the year, the nodes sync over mutual TLS, and the common view
//! (identical at every node, checked) is scored with `reconcile::pair_total_mape` against the
//! truth. Repeated for each disclosure method, since suppression and noise change the totals,
//! and once more for threshold and cell-key with every node publishing its months, then its
//! quarters, then the year: under threshold the year is audited against the months and
//! quarters already published (SPEC §10) and loses the cells that would disclose by
//! subtraction; under cell-key nothing is suppressed.

use std::collections::BTreeMap;
use std::sync::Arc;

use accord::cluster::{full_mesh, ClusterOptions, LocalCluster};
use accord::hex;
use accord::ingest::ingest_file;
use accord::model::{CellValue, Cube, Period};
use accord::node::{Node, PublishRequest};
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
        registers: accord::synth::Registers::Plain,
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
    let year = vec![Period::Year(fx.year)];
    let every: Vec<Period> = (1..=12)
        .map(|m| Period::Month(fx.year, m))
        .chain((1..=4).map(|q| Period::Quarter(fx.year, q)))
        .chain(std::iter::once(Period::Year(fx.year)))
        .collect();
    let methods: [(&str, ConsortiumEdit, &[Period]); 6] = [
        ("threshold k=5", threshold, &year),
        ("cell-key", cell_key, &year),
        ("none (test only)", no_protection, &year),
        ("threshold, 17 per.", threshold, &every),
        ("cell-key, 17 per.", cell_key, &every),
        ("none, 17 per.", no_protection, &every),
    ];
    let mut published = Vec::new();
    println!(
        "  {:<18} {:>10} {:>10} {:>10} {:>10}",
        "disclosure", "receiving", "sending", "max", "mean"
    );
    for (i, (name, edit, periods)) in methods.into_iter().enumerate() {
        let dir = fx.dir.path().join(format!("fidelity-{i}"));
        let ((mape, suppressed, own), secs) =
            timed(|| runtime.block_on(view_mape(&dir, &summary, edit, &truth, periods)));
        published.push(own);
        let cell = |rule: &str| {
            mape.iter()
                .find(|(r, _)| r.as_str() == rule)
                .map_or("-".into(), |(_, m)| format!("{m:.1}%"))
        };
        println!(
            "  {:<18} {:>10} {:>10} {:>10} {:>10}   ({secs:.1} s; {suppressed} cells suppressed to protect earlier publications)",
            name,
            cell("receiving"),
            cell("sending"),
            cell("max"),
            cell("mean")
        );
    }
    // Differencing by an analyst holding DEU's months, quarters and year: each month as its
    // quarter minus the other two months, each quarter as the year minus the other three;
    // scored against the exact counts (the `none` run, same records).
    let exact = &published[5];
    println!("  differencing DEU's 17 publications (months as Q minus the other two months, quarters as the year minus the other three):");
    for (name, own) in [("threshold k=5", &published[3]), ("cell-key", &published[4])] {
        let d = differencing(own, exact);
        println!(
            "  {name:<18} {} derivable of {} small true counts (1-4): {} exact, mean error {:.2}; derived values in 1-4 that are not true: {}",
            d.derived, d.small, d.exact, d.mean_error, d.misleading
        );
    }
    let (checked, narrowed, secs) = {
        let started = std::time::Instant::now();
        let (c, n) = linear_program(&published[3], exact);
        (c, n, started.elapsed().as_secs_f64())
    };
    println!(
        "  linear programs over DEU's 17 threshold publications: {checked} confidential figures of a true count in 1-4 checked, {narrowed} narrowed to fewer than 5 values ({secs:.1} s)"
    );
    let started = std::time::Instant::now();
    let t = tables_lp(&published[3], exact, LP_FIGURES);
    println!(
        "  linear programs over whole tables (every key's months and the total, DEU's 17 threshold publications): {} of {} confidential figures of a true count in 1-4 checked (all of tables up to {} keys, smallest tables first), {} narrowed to fewer than 5 values ({:.1} s)",
        t.checked,
        t.candidates,
        t.largest,
        t.narrowed,
        started.elapsed().as_secs_f64()
    );
    for (name, own) in [("year alone", &published[0]), ("17 periods", &published[3])] {
        let exact = if own.len() == 1 { &published[2] } else { exact };
        let s = secondary(own, exact);
        println!(
            "  threshold, {name}: {} confidential cells of DEU ({} primary, {} secondary holding {} people, {:.1}% of DEU's published total); totals confidential: {}",
            s.primary + s.secondary,
            s.primary,
            s.secondary,
            s.secondary_people,
            100.0 * s.secondary_people as f64 / s.people.max(1) as f64,
            s.totals_confidential
        );
    }
}

/// The most confidential figures the whole-table linear programs check (two solves each).
const LP_FIGURES: usize = 1_500;

struct TablesLp {
    candidates: usize,
    checked: usize,
    narrowed: usize,
    largest: usize,
}

/// The analyst with a linear-program solver over whole tables: per table (direction and
/// partner), every key's twelve months as variables (at least 0), every published figure of
/// every period, the total included (the sum of every key), as a constraint (a value: equal;
/// `C`: at least 1; absent: 0). For each `C` figure (cell or total) whose true count is 1-4:
/// its smallest and largest count. Tables are taken smallest first, up to `budget` figures.
fn tables_lp(own: &Published, exact: &Published, budget: usize) -> TablesLp {
    use microlp::{ComparisonOp, OptimizationDirection, Problem};
    let total = |prefix: &[String]| -> Vec<String> {
        prefix
            .iter()
            .cloned()
            .chain(std::iter::repeat_n("_T".to_string(), 3))
            .collect()
    };
    let truth = |period: Period, key: &Vec<String>| true_count(exact, period, key);
    let mut tables: BTreeMap<Vec<String>, std::collections::BTreeSet<Vec<String>>> = BTreeMap::new();
    for (_, cells) in own {
        for key in cells.keys().filter(|k| !k.contains(&"_T".to_string())) {
            tables.entry(key[..2].to_vec()).or_default().insert(key.clone());
        }
    }
    let mut order: Vec<(Vec<String>, Vec<Vec<String>>)> = tables
        .into_iter()
        .map(|(p, keys)| (p, keys.into_iter().collect()))
        .collect();
    order.sort_by_key(|(p, keys)| (keys.len(), p.clone()));
    let mut out = TablesLp {
        candidates: 0,
        checked: 0,
        narrowed: 0,
        largest: 0,
    };
    for (prefix, keys) in order {
        let total_key = total(&prefix);
        let targets: Vec<(Period, Vec<String>)> = own
            .iter()
            .flat_map(|(p, cells)| {
                cells
                    .iter()
                    .filter(|(k, v)| **v == CellValue::Confidential && (keys.contains(k) || **k == total_key))
                    .map(move |(k, _)| (*p, k.clone()))
            })
            .filter(|(p, k)| (1..=4).contains(&truth(*p, k)))
            .collect();
        out.candidates += targets.len();
        if out.checked + targets.len() > budget {
            continue;
        }
        out.largest = out.largest.max(keys.len());
        for (target, target_key) in targets {
            out.checked += 1;
            let mut bounds = [0.0; 2];
            for (i, direction) in [OptimizationDirection::Minimize, OptimizationDirection::Maximize]
                .into_iter()
                .enumerate()
            {
                let mut problem = Problem::new(direction);
                let vars: Vec<Vec<_>> = keys
                    .iter()
                    .map(|key| {
                        (1..=12u8)
                            .map(|m| {
                                let counted =
                                    (target_key == total_key || *key == target_key) && target.months().contains(&m);
                                problem.add_var(if counted { 1.0 } else { 0.0 }, (0.0, f64::INFINITY))
                            })
                            .collect()
                    })
                    .collect();
                for (period, cells) in own {
                    let months: Vec<usize> = period.months().map(|m| usize::from(m) - 1).collect();
                    let mut constrain = |terms: Vec<(microlp::Variable, f64)>, value: Option<&CellValue>| match value {
                        None => problem.add_constraint(terms.as_slice(), ComparisonOp::Eq, 0.0),
                        Some(CellValue::Value(v)) => {
                            problem.add_constraint(terms.as_slice(), ComparisonOp::Eq, *v as f64)
                        }
                        Some(CellValue::Confidential) => {
                            problem.add_constraint(terms.as_slice(), ComparisonOp::Ge, 1.0)
                        }
                    };
                    for (i, key) in keys.iter().enumerate() {
                        constrain(months.iter().map(|&m| (vars[i][m], 1.0)).collect(), cells.get(key));
                    }
                    let all = vars
                        .iter()
                        .flat_map(|v| months.iter().map(move |&m| (v[m], 1.0)))
                        .collect();
                    constrain(all, cells.get(&total_key));
                }
                bounds[i] = match problem.solve() {
                    Ok(solution) => solution.objective(),
                    Err(microlp::Error::Unbounded) => f64::INFINITY,
                    Err(e) => panic!("{target_key:?}: the solver failed: {e:?}"),
                };
            }
            if bounds[1].floor() - bounds[0].ceil() + 1.0 < 5.0 {
                out.narrowed += 1;
            }
        }
    }
    out
}

#[derive(Default)]
struct Secondary {
    primary: usize,
    secondary: usize,
    secondary_people: u64,
    people: u64,
    totals_confidential: usize,
}

/// DEU's confidential cells split by their true count: primary (1-4) and secondary (5 or more,
/// suppressed by the audit), the people the secondary ones hold, and DEU's published totals.
fn secondary(own: &Published, exact: &Published) -> Secondary {
    let mut s = Secondary::default();
    for ((period, cells), (_, truth)) in own.iter().zip(exact) {
        let _ = period;
        for (key, value) in cells {
            let true_count = match truth.get(key) {
                Some(CellValue::Value(v)) => *v,
                _ => 0,
            };
            let is_total = key.contains(&"_T".to_string());
            if is_total {
                s.people += true_count;
            }
            if *value == CellValue::Confidential {
                if is_total {
                    s.totals_confidential += 1;
                } else if true_count >= 5 {
                    s.secondary += 1;
                    s.secondary_people += true_count;
                } else {
                    s.primary += 1;
                }
            }
        }
    }
    s
}

/// The analyst with a linear-program solver (`microlp`, knowing nothing of the audit): per key,
/// the twelve months as variables (at least 0), every published figure of the year, its
/// quarters and months as a constraint (a value: equal; `C`: at least 1; absent: 0). For each
/// `C` figure whose true count is 1–4: its smallest and largest count. Returns the figures
/// checked and those narrowed to fewer than 5 possible counts.
fn linear_program(own: &Published, exact: &Published) -> (usize, usize) {
    use microlp::{ComparisonOp, OptimizationDirection, Problem};
    let months = |p: Period| -> Vec<usize> { p.months().map(|m| usize::from(m) - 1).collect() };
    let truth = |period: Period, key: &Vec<String>| true_count(exact, period, key);
    let keys: std::collections::BTreeSet<&Vec<String>> = own.iter().flat_map(|(_, c)| c.keys()).collect();
    let (mut checked, mut narrowed) = (0, 0);
    for key in keys {
        let figures: Vec<(Period, Option<u64>)> = own
            .iter()
            .map(|(p, cells)| {
                let v = match cells.get(key) {
                    None => Some(0),
                    Some(CellValue::Value(v)) => Some(*v),
                    Some(CellValue::Confidential) => None,
                };
                (*p, v)
            })
            .collect();
        for (target, _) in figures.iter().filter(|(_, v)| v.is_none()) {
            if !(1..=4).contains(&truth(*target, key)) {
                continue;
            }
            checked += 1;
            let mut bounds = [0.0; 2];
            for (i, direction) in [OptimizationDirection::Minimize, OptimizationDirection::Maximize]
                .into_iter()
                .enumerate()
            {
                let mut problem = Problem::new(direction);
                let inside = months(*target);
                let vars: Vec<_> = (0..12)
                    .map(|m| problem.add_var(if inside.contains(&m) { 1.0 } else { 0.0 }, (0.0, f64::INFINITY)))
                    .collect();
                for (period, value) in &figures {
                    let terms: Vec<_> = months(*period).into_iter().map(|m| (vars[m], 1.0)).collect();
                    match value {
                        Some(v) => problem.add_constraint(terms.as_slice(), ComparisonOp::Eq, *v as f64),
                        None => problem.add_constraint(terms.as_slice(), ComparisonOp::Ge, 1.0),
                    }
                }
                bounds[i] = match problem.solve() {
                    Ok(solution) => solution.objective(),
                    Err(microlp::Error::Unbounded) => f64::INFINITY,
                    // One record state, so the figures always have a solution.
                    Err(e) => panic!("{key:?}: the solver failed: {e:?}"),
                };
            }
            if bounds[1].floor() - bounds[0].ceil() + 1.0 < 5.0 {
                narrowed += 1;
            }
        }
    }
    (checked, narrowed)
}

type Published = Vec<(Period, BTreeMap<Vec<String>, CellValue>)>;

/// A key's count for a period in the unprotected run's publications (absent: 0).
fn true_count(exact: &Published, period: Period, key: &Vec<String>) -> u64 {
    exact
        .iter()
        .find(|(q, _)| *q == period)
        .and_then(|(_, cells)| match cells.get(key) {
            Some(CellValue::Value(v)) => Some(*v),
            _ => None,
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Differencing {
    /// True counts in 1..=4 among the parts derived.
    small: usize,
    /// Of those, how many the published figures let an analyst derive at all.
    derived: usize,
    /// Of those, derived exactly.
    exact: usize,
    mean_error: f64,
    /// Derived values in 1..=4 where the true count differs.
    misleading: usize,
}

/// Derives each month from its quarter and each quarter from the year, subtracting the
/// published siblings; scores the derivations of small true counts.
fn differencing(own: &Published, exact: &Published) -> Differencing {
    let value = |p: &Published, period: Period, key: &Vec<String>| -> Option<i64> {
        let (_, cells) = p.iter().find(|(q, _)| *q == period)?;
        match cells.get(key) {
            None => Some(0),
            Some(CellValue::Value(v)) => Some(*v as i64),
            Some(CellValue::Confidential) => None,
        }
    };
    let year = own[0].0.year();
    let mut families: Vec<(Period, Vec<Period>)> = (1..=4u8)
        .map(|q| {
            (
                Period::Quarter(year, q),
                (q * 3 - 2..=q * 3).map(|m| Period::Month(year, m)).collect(),
            )
        })
        .collect();
    families.push((Period::Year(year), (1..=4).map(|q| Period::Quarter(year, q)).collect()));
    let keys: std::collections::BTreeSet<&Vec<String>> = exact.iter().flat_map(|(_, c)| c.keys()).collect();
    let mut d = Differencing::default();
    let mut error = 0;
    for key in keys {
        for (parent, parts) in &families {
            for part in parts {
                let truth = value(exact, *part, key).unwrap_or(0);
                let derived = value(own, *parent, key).and_then(|total| {
                    parts
                        .iter()
                        .filter(|p| *p != part)
                        .try_fold(total, |acc, p| Some(acc - value(own, *p, key)?))
                });
                if let Some(v) = derived {
                    if (1..=4).contains(&v) && v != truth {
                        d.misleading += 1;
                    }
                }
                if (1..=4).contains(&truth) {
                    d.small += 1;
                    if let Some(v) = derived {
                        d.derived += 1;
                        d.exact += usize::from(v == truth);
                        error += (v - truth).unsigned_abs();
                    }
                }
            }
        }
    }
    d.mean_error = error as f64 / d.derived.max(1) as f64;
    d
}

/// Ingest, publish `periods` in order, sync and view on a fresh cluster; the MAPE per rule and
/// the cells suppressed by the audit across all nodes.
async fn view_mape(
    dir: &std::path::Path,
    summary: &SynthSummary,
    edit: ConsortiumEdit,
    truth: &accord::reconcile::fidelity::Truth,
    periods: &[Period],
) -> (Vec<(accord::consortium::Rule, f64)>, usize, Published) {
    let options = ClusterOptions {
        countries: COUNTRIES.iter().map(|c| country(c)).collect(),
        peered: full_mesh,
        sync_interval_secs: 3600,
        consortium_edit: Some(std::sync::Arc::new(edit)),
        dashboard: false,
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
        let periods = periods.to_vec();
        tasks.push(tokio::task::spawn_blocking(move || {
            let ctx = ValidationContext::for_today(node.country());
            ingest_file(&file, ctx, false, &mut &*node, &mut |_| {}).expect("ingest");
            periods
                .into_iter()
                .map(|p| {
                    node.publish(PublishRequest::new(Cube::Flows, p))
                        .expect("publish")
                        .suppressed
                })
                .sum::<usize>()
        }));
    }
    let mut suppressed = 0;
    for t in tasks {
        suppressed += t.await.expect("ingest task");
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
    assert_eq!(
        inputs,
        COUNTRIES.len() * periods.len(),
        "each member's flows datasets in the view"
    );
    let mape = pair_total_mape(&views[0], truth);
    // Mirror pairs of the year whose total is confidential on a side: what the MAPE pays for.
    for (pair, total) in &views[0].pairs {
        let members = |c: &accord::model::Country| COUNTRIES.contains(&c.as_str());
        if !matches!(pair.period, Period::Year(_)) || !members(&pair.origin) || !members(&pair.destination) {
            continue;
        }
        let sides = [total.sender.reported, total.receiver.reported];
        if sides.contains(&accord::reconcile::Reported::Confidential) {
            println!(
                "    {} to {}: sender {}, receiver {}, reconciled {:?}, true {}",
                pair.origin,
                pair.destination,
                sides[0].status(),
                sides[1].status(),
                total.reconciled,
                truth
                    .get(&(pair.origin, pair.destination, pair.period))
                    .copied()
                    .unwrap_or(0)
            );
        }
    }
    let mut own: Published = nodes[0]
        .current_datasets()
        .expect("datasets")
        .into_iter()
        .filter(|a| a.publisher == nodes[0].country())
        .map(|a| {
            let cells = a.dataset.cells.into_iter().map(|c| (c.key, c.value)).collect();
            (a.dataset.period, cells)
        })
        .collect();
    own.sort_by_key(|(p, _)| *p);
    drop(views);
    drop(nodes);
    cluster.shutdown().await.expect("shutdown");
    (mape, suppressed, own)
}

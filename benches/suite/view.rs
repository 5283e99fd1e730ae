//! Issue 5: the common view (`reconcile::compute` + `View::digest`) over 10 members × 12 monthly
//! `flows` datasets, each the size of a real publication from a million records. The datasets
//! are DEU's twelve real monthly publications (from the publish benchmark's store), relabelled
//! for ten members by swapping DEU's code with each member's in every key, so each member's
//! datasets have exactly the cell counts and value distribution of a 1M-record publication and
//! the members' partner cells mirror each other. Target: under 2 s and 500 MB (peak RSS of a
//! child process that loads the datasets and computes the view).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use accord::consortium::Reconcile;
use accord::dataset::envelope::sha256;
use accord::dataset::{AcceptedDataset, Dataset, Limits};
use accord::model::Cell;
use accord::model::Country;
use serde_json::json;

use super::{country, line, num, path_str, peak_rss_mib, rss_mib, run_child, section, thousands, verdict, Fixture};

/// Members in the view.
const MEMBERS: usize = 10;
/// Times the view is computed (the first one's peak memory counts; the median time is shown).
const ROUNDS: usize = 3;

pub fn run(fx: &mut Fixture) {
    if fx.view_inputs.is_none() {
        super::publish::run_publish(fx);
    }
    let inputs = fx.view_inputs.clone().expect("view inputs");
    section("view (issue 5): 10 members x 12 monthly flows datasets of 1M records each");
    let r = run_child("view", &[path_str(&inputs)]);
    line(
        "inputs",
        format!(
            "{} datasets, {} cells ({:.0} MB of payloads), decoded in {:.2} s",
            num(&r, "datasets"),
            thousands(num(&r, "cells")),
            num(&r, "payload_bytes") / 1e6,
            num(&r, "load_secs")
        ),
    );
    let secs = num(&r, "median_secs");
    line(
        "compute + digest",
        format!(
            "median {secs:.3} s of {ROUNDS} (first {:.3} s): {} mirror rows, {} pair totals",
            num(&r, "first_secs"),
            thousands(num(&r, "rows")),
            thousands(num(&r, "pairs"))
        ),
    );
    let peak = num(&r, "peak_rss_mib") * 1.048_576;
    line(
        "  peak RSS (process) / before computing",
        format!("{peak:.0} MB / {:.0} MB", num(&r, "rss_before_mib") * 1.048_576),
    );
    line(
        "  compute alone (first round): time / peak RSS / RSS holding the view",
        format!(
            "{:.3} s / {:.0} MB / {:.0} MB; digest adds the rest",
            num(&r, "compute_secs"),
            num(&r, "compute_peak_rss_mib") * 1.048_576,
            num(&r, "view_rss_mib") * 1.048_576
        ),
    );
    line(
        "TARGET view under 2 s",
        format!("{secs:.3} s -> {}", verdict(secs < 2.0)),
    );
    line(
        "TARGET view under 500 MB",
        format!("{peak:.0} MB -> {}", verdict(peak < 500.0)),
    );
}

/// Writes the 120 relabelled payloads under `dir/view-inputs` as `<CODE>-<seq>.bin`.
pub fn write_inputs(dir: &Path, monthly: &[AcceptedDataset]) -> PathBuf {
    let out = dir.join("view-inputs");
    std::fs::create_dir_all(&out).expect("view-inputs directory");
    let deu = country("DEU");
    // DEU and its most frequent partners (by cells) are the members; if DEU has fewer than nine
    // partners, its most frequent citizenships fill the consortium up to ten.
    let mut members = vec![deu];
    for column in [1, 2] {
        let mut frequency: BTreeMap<String, usize> = BTreeMap::new();
        for a in monthly {
            for c in &a.dataset.cells {
                *frequency.entry(c.key[column].clone()).or_default() += 1;
            }
        }
        let mut ranked: Vec<(usize, String)> = frequency.into_iter().map(|(p, n)| (n, p)).collect();
        ranked.sort_by(|a, b| b.cmp(a));
        for code in ranked.iter().filter_map(|(_, p)| Country::parse(p)) {
            if members.len() < MEMBERS && code.is_iso() && !members.contains(&code) {
                members.push(code);
            }
        }
    }
    assert_eq!(members.len(), MEMBERS, "enough distinct countries in DEU's cells");
    for &member in &members {
        for (i, a) in monthly.iter().enumerate() {
            let swap = |code: &str| -> String {
                if code == deu.as_str() {
                    member.to_string()
                } else if code == member.as_str() {
                    deu.to_string()
                } else {
                    code.to_string()
                }
            };
            let mut cells: Vec<Cell> = a
                .dataset
                .cells
                .iter()
                .map(|c| {
                    let mut key = c.key.clone();
                    key[1] = swap(&key[1]);
                    key[2] = swap(&key[2]);
                    Cell { key, value: c.value }
                })
                .collect();
            cells.sort_by(|x, y| x.key.cmp(&y.key));
            let dataset = Dataset {
                publisher: member,
                cells,
                unreported: Default::default(),
                ..a.dataset.clone()
            };
            let name = format!("{member}-{:02}.bin", i + 1);
            std::fs::write(out.join(name), dataset.encode()).expect("write payload");
        }
    }
    out
}

/// Child: decode the payloads in `args[0]`, then compute the view and its digest.
pub fn child_view(args: &[String]) -> serde_json::Value {
    let start = Instant::now();
    let mut accepted = Vec::new();
    let mut payload_bytes = 0usize;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args[0])
        .expect("read view inputs")
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path).expect("read payload");
        payload_bytes += bytes.len();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("file name");
        let (code, seq) = name.split_once('-').expect("<CODE>-<seq>");
        let dataset = Dataset::decode(&bytes, Limits::default().max_cells).expect("payload decodes");
        accepted.push(AcceptedDataset {
            publisher: country(code),
            seq: seq.parse().expect("seq"),
            digest: sha256(&bytes),
            dataset,
        });
    }
    let load_secs = start.elapsed().as_secs_f64();
    let cells: usize = accepted.iter().map(|a| a.dataset.cells.len()).sum();
    let rss_before = rss_mib();
    let settings = Reconcile::default();
    let mut times = Vec::new();
    let mut shape = (0, 0);
    let (mut compute_peak, mut first_peak, mut compute_secs, mut view_rss) = (0.0, 0.0, 0.0, 0.0);
    for round in 0..ROUNDS {
        let start = Instant::now();
        let view = accord::reconcile::compute(&accepted, &settings);
        let computed = start.elapsed().as_secs_f64();
        if round == 0 {
            compute_peak = peak_rss_mib();
            view_rss = rss_mib();
            compute_secs = computed;
        }
        let digest = view.digest();
        times.push(start.elapsed().as_secs_f64());
        std::hint::black_box(digest);
        shape = (view.rows.len(), view.pairs.len());
        drop(view);
        if round == 0 {
            first_peak = peak_rss_mib();
        }
    }
    let first = times[0];
    times.sort_by(f64::total_cmp);
    json!({
        "datasets": accepted.len(),
        "cells": cells,
        "payload_bytes": payload_bytes,
        "load_secs": load_secs,
        "rss_before_mib": rss_before,
        "peak_rss_mib": first_peak,
        "compute_peak_rss_mib": compute_peak,
        "view_rss_mib": view_rss,
        "compute_secs": compute_secs,
        "first_secs": first,
        "median_secs": times[ROUNDS / 2],
        "rows": shape.0,
        "pairs": shape.1,
    })
}

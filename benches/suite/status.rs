//! Issue 12: `status` does not grow with the entries a node holds. One node with 10 monthly
//! `flows` datasets, published once each (10 entries) or revised 100 times each (1,000
//! entries); `status` is timed cold (the first call verifies every stored entry once and
//! computes the view digest) and warm (the median of 21 calls afterwards, as an operator's
//! monitoring polls it). Target: warm status with 1,000 entries within 2x of 10.

use accord::config::NodeConfig;
use accord::ingest::ingest_file;
use accord::model::{Cube, Period};
use accord::node::{Node, PublishRequest};
use accord::record::validate::ValidationContext;
use accord::synth::{synthesize, SynthOptions};

use super::{country, line, section, timed, verdict, Fixture, MEMBERS};

const DATASETS: u8 = 10;

pub fn run(fx: &mut Fixture) {
    section("status (issue 12): 10 vs 1,000 entries held");
    let deu_toml = std::fs::read_to_string(fx.node_toml("DEU")).expect("DEU node.toml");
    let records = fx.dir.path().join("status-records");
    let summary = synthesize(
        &SynthOptions {
            countries: MEMBERS.iter().map(|c| country(c)).collect(),
            year: fx.year,
            records: 20_000,
            seed: super::SEED,
            out: records,
            registers: accord::synth::Registers::Plain,
        },
        &mut |_| {},
    )
    .expect("synthesize");
    let file = summary.files[0].1.clone();
    let mut warm = Vec::new();
    for revisions in [1u32, 100] {
        let dir = fx.dir.path().join(format!("status-{revisions}"));
        std::fs::create_dir_all(&dir).expect("node dir");
        std::fs::write(dir.join("node.toml"), &deu_toml).expect("node.toml");
        let config = NodeConfig::load(&dir.join("node.toml")).expect("node.toml");
        let ctx = ValidationContext::for_today(config.country);
        let entries = u32::from(DATASETS) * revisions;
        {
            let node = Node::open(config.clone()).expect("open node");
            ingest_file(&file, ctx, false, &mut &*node, &mut |_| {}).expect("ingest");
            for _ in 0..revisions {
                for month in 1..=DATASETS {
                    node.publish(PublishRequest::new(Cube::Flows, Period::Month(fx.year, month)))
                        .expect("publish");
                }
            }
        }
        // A fresh process's view of the store: nothing indexed yet.
        let node = open_again(&config);
        let (first, cold) = timed(|| node.status().expect("status"));
        assert_eq!(first.feeds[0].seq, u64::from(entries));
        let mut times: Vec<f64> = (0..21).map(|_| timed(|| node.status().expect("status")).1).collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        line(
            &format!("status with {entries} entries"),
            format!(
                "cold {:.1} ms (verifies each entry once), warm median {:.2} ms",
                cold * 1e3,
                median * 1e3
            ),
        );
        warm.push(median);
    }
    let ratio = warm[1] / warm[0];
    line(
        "TARGET warm status, 1,000 entries within 2x of 10",
        format!("{ratio:.2}x -> {}", verdict(ratio <= 2.0)),
    );
}

/// Opens the node again once the previous handle has let go of the store.
fn open_again(config: &NodeConfig) -> std::sync::Arc<Node> {
    let started = std::time::Instant::now();
    loop {
        match Node::open(config.clone()) {
            Ok(node) => return node,
            Err(e) if started.elapsed().as_secs() < 10 => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("reopen node: {e}"),
        }
    }
}

//! Real nodes in this process: a `LocalCluster` started in a temporary directory
//! ([`start_cluster`], or [`start_cluster_with`] for options of its own), a few hundred
//! hand-built records whose partner countries are other members (so flows have mirror pairs),
//! and a node's feed heads.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use accord::cluster::{ClusterOptions, LocalCluster};
use accord::date::Date;
use accord::model::Country;
use accord::model::{Cube, Period};
use accord::node::{Node, PublishRequest, Published};
use accord::record::{EventType, Reason, Record, Sex};
use accord::store::IngestOutcome;
use tempfile::TempDir;

use super::logs;

/// Parses member codes, panicking on a typo in the test itself.
pub fn countries(codes: &[&str]) -> Vec<Country> {
    codes
        .iter()
        .map(|c| Country::parse(c).unwrap_or_else(|| panic!("{c:?} is not a country code")))
        .collect()
}

/// A running cluster and the temporary directory that holds its PKI, configs and stores. The
/// directory outlives the nodes: call [`TestCluster::shutdown`] at the end of a test.
pub struct TestCluster {
    pub cluster: LocalCluster,
    /// Kept only so the directory is removed after the nodes stop.
    pub dir: TempDir,
}

impl Deref for TestCluster {
    type Target = LocalCluster;
    fn deref(&self) -> &LocalCluster {
        &self.cluster
    }
}

impl DerefMut for TestCluster {
    fn deref_mut(&mut self) -> &mut LocalCluster {
        &mut self.cluster
    }
}

impl TestCluster {
    /// The running node `i`. Borrowed on purpose: a test that kept an `Arc<Node>` clone across
    /// `stop(i)` would keep the store open and the restart would fail on sled's lock.
    pub fn running(&self, i: usize) -> &Arc<Node> {
        self.cluster
            .node(i)
            .unwrap_or_else(|| panic!("node {i} ({}) is not running", self.cluster.nodes[i].country))
    }

    /// Indices of the nodes that are running.
    pub fn running_indices(&self) -> Vec<usize> {
        (0..self.cluster.nodes.len())
            .filter(|&i| self.cluster.node(i).is_some())
            .collect()
    }

    /// Every member's code, in node order.
    pub fn members(&self) -> Vec<Country> {
        self.cluster.nodes.iter().map(|n| n.country).collect()
    }

    /// Stops every node, then removes the directory.
    pub async fn shutdown(self) {
        self.cluster.shutdown().await.expect("cluster shutdown");
        drop(self.dir);
    }
}

/// Options for nodes of `codes`, wired by `peered` (`accord::cluster::full_mesh` or `line`),
/// each pulling from its peers every `sync_interval_secs` (jittered) and at once on an
/// Announce; the rest as `accord demo` has it. A test changes the rest with
/// `ClusterOptions { consortium_edit: ..., ..cluster_options(...) }`.
pub fn cluster_options(
    codes: &[&str],
    peered: fn(usize, usize, usize) -> bool,
    sync_interval_secs: u64,
) -> ClusterOptions {
    ClusterOptions {
        countries: countries(codes),
        peered,
        sync_interval_secs,
        consortium_edit: None,
        dashboard: false,
    }
}

/// Starts real nodes with [`cluster_options`] in a fresh temporary directory.
pub async fn start_cluster(
    codes: &[&str],
    peered: fn(usize, usize, usize) -> bool,
    sync_interval_secs: u64,
) -> TestCluster {
    start_cluster_with(cluster_options(codes, peered, sync_interval_secs)).await
}

/// Starts real nodes with `options` in a fresh temporary directory.
pub async fn start_cluster_with(options: ClusterOptions) -> TestCluster {
    logs::init();
    let dir = tempfile::tempdir().expect("temporary directory");
    let cluster = LocalCluster::start(dir.path(), &options)
        .await
        .unwrap_or_else(|e| panic!("starting a cluster of {:?}: {e}", options.countries));
    TestCluster { cluster, dir }
}

/// `count` valid records of `country` in `year`, deterministic in `seed`: a quarter each of
/// immigration, emigration (partner countries cycle through `partners`, durations long enough
/// to count), asylum applications and residence permits. Event ids start with the country and
/// seed, so batches with different seeds never replace each other.
pub fn synthetic_records(country: Country, partners: &[Country], year: i32, count: usize, seed: u64) -> Vec<Record> {
    assert!(!partners.is_empty(), "flows need at least one partner country");
    assert!(
        !partners.contains(&country),
        "a partner country is never the node's own"
    );
    let others = countries(&["SYR", "AFG", "UKR", "IND"]);
    (0..count)
        .map(|i| {
            let partner = partners[i % partners.len()];
            let event_type = EventType::ALL[i % 4];
            let citizenship = match event_type {
                // Most movers between members are citizens of one of the two countries.
                EventType::Immigration if i % 3 == 0 => partner,
                EventType::Emigration if i % 3 == 0 => country,
                _ => others[(i / 4) % others.len()],
            };
            let flow = matches!(event_type, EventType::Immigration | EventType::Emigration);
            Record {
                event_id: format!("{country}-{seed}-{i}"),
                person_id: format!("{country}-person-{seed}-{}", i / 2),
                event_type,
                event_date: Date {
                    year,
                    month: (i % 12) as u8 + 1,
                    day: (i % 28) as u8 + 1,
                },
                citizenship,
                country_of_birth: Some(citizenship),
                partner_country: flow.then_some(partner),
                sex: if i % 2 == 0 { Sex::F } else { Sex::M },
                birth_year: Some(year - 18 - (i % 50) as i32),
                reason: match event_type {
                    EventType::ResidencePermit => Reason::ALL[(i / 4) % 4],
                    EventType::AsylumApplication => Reason::Protection,
                    _ => Reason::Unknown,
                },
                duration_months: flow.then_some(12 + (i % 24) as u32),
            }
        })
        .collect()
}

/// Ingests [`synthetic_records`] into `node` (partners: every other member of its consortium)
/// through the store, as `accord ingest` does, and flushes.
pub fn ingest_synthetic(node: &Node, year: i32, count: usize, seed: u64) -> IngestOutcome {
    let me = node.country();
    let partners: Vec<Country> = node
        .config()
        .consortium
        .members
        .iter()
        .map(|m| m.country)
        .filter(|c| *c != me)
        .collect();
    let records = synthetic_records(me, &partners, year, count, seed);
    let outcome = node.ingest(&records).unwrap_or_else(|e| panic!("{me}: ingest: {e}"));
    node.flush().unwrap_or_else(|e| panic!("{me}: flush: {e}"));
    assert_eq!(outcome.stored, count as u64, "{me}: every record stored");
    outcome
}

/// Publishes `cube` for `period` as `accord publish` does through the admin socket: sign and
/// store the entry, then announce our heads to every peer so they pull at once.
pub async fn publish_and_announce(node: &Arc<Node>, cube: Cube, period: Period, audience: &[Country]) -> Published {
    let published = node
        .publish(PublishRequest::new(cube, period).to(audience.to_vec()))
        .unwrap_or_else(|e| panic!("{}: publish {cube} {period}: {e}", node.country()));
    node.syncer().announce_all().await;
    published
}

/// A node's feed heads: publisher code → (seq, header digest).
pub fn heads_of(node: &Node) -> BTreeMap<String, (u64, [u8; 32])> {
    node.heads()
        .unwrap_or_else(|e| panic!("{}: heads: {e}", node.country()))
        .into_iter()
        .map(|(publisher, head)| (publisher.to_string(), (head.seq, head.digest)))
        .collect()
}

/// The heads a set of publications should leave: each publisher's latest seq and digest.
pub fn expected_heads<'a>(published: impl IntoIterator<Item = &'a Published>) -> BTreeMap<String, (u64, [u8; 32])> {
    let mut heads = BTreeMap::new();
    for p in published {
        let entry = heads.entry(p.publisher.to_string()).or_insert((p.seq, p.digest));
        if p.seq >= entry.0 {
            *entry = (p.seq, p.digest);
        }
    }
    heads
}

/// Short, readable heads for failure messages: `DEU:2:ab12cd34`.
pub fn describe_heads(heads: &BTreeMap<String, (u64, [u8; 32])>) -> String {
    heads
        .iter()
        .map(|(p, (seq, digest))| format!("{p}:{seq}:{}", accord::hex::encode(&digest[..4])))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Ok` when every running node holds exactly `expected` heads; otherwise names each node that
/// differs and what it holds.
pub fn all_hold_heads(cluster: &TestCluster, expected: &BTreeMap<String, (u64, [u8; 32])>) -> Result<(), String> {
    let mut differing = Vec::new();
    for i in cluster.running_indices() {
        let held = heads_of(cluster.running(i));
        if &held != expected {
            differing.push(format!(
                "{} holds [{}]",
                cluster.nodes[i].country,
                describe_heads(&held)
            ));
        }
    }
    if differing.is_empty() {
        Ok(())
    } else {
        Err(format!("want [{}]; {}", describe_heads(expected), differing.join("; ")))
    }
}

//! Issue 26: a member voting in a loop. FRA signs N different proposals for the next version and
//! offers each to DEU's node twice, as a header first and then whole (the path that once kept
//! them all). Measured: what the node keeps, what the offers cost, and the time to open the node
//! again (start-up reads every governance entry held). A second run puts N proposals straight
//! into a store, past the bound (as a node before the bound kept them), to show that start-up is
//! linear in what is held.

use std::path::{Path, PathBuf};

use accord::config::NodeConfig;
use accord::dataset::publish::{sign_governance, EntryParams};
use accord::dataset::{Governance, Head, Limits, Placement};
use accord::node::Node;
use accord::store::Store;
use ring::signature::Ed25519KeyPair;

use super::{country, line, section, timed, Fixture};

pub fn run(fx: &mut Fixture) {
    section("governance (issue 26): votes in a loop, header first then whole; start-up");
    let pki = fx.pki();
    let template = std::fs::read_to_string(fx.dir.path().join("deu/node.toml")).expect("DEU's node.toml");
    for n in [300usize, 3_000] {
        let config = fresh(fx.dir.path(), &template, &format!("loop-{n}"));
        let node = open(&config);
        let entries = proposals(&pki, &node, n);
        let (kept, secs) = timed(|| {
            let mut kept = 0;
            for entry in &entries {
                let mut header = entry.clone();
                header.payload.clear();
                header.has_payload = false;
                let _ = node.accept(header);
                if let Ok((_, Placement::Append)) = node.accept(entry.clone()) {
                    kept += 1;
                }
            }
            kept
        });
        line(
            &format!("{n} proposals offered header first, then whole"),
            format!(
                "{kept} kept, {} refused; {:.0} ms for all {} offers",
                n - kept,
                secs * 1e3,
                2 * n
            ),
        );
        drop(node);
        let (_, secs) = timed(|| open(&config));
        line(
            &format!("  start-up after {n} attempted votes"),
            format!("{:.0} ms", secs * 1e3),
        );
    }
    for n in [1_000usize, 3_000] {
        let config = fresh(fx.dir.path(), &template, &format!("held-{n}"));
        let node = open(&config);
        let entries = proposals(&pki, &node, n);
        let consortium = node.consortium();
        drop(node);
        let data = config.parent().expect("node directory").join("data");
        let store = Store::open(&data, country("DEU"), consortium.definition).expect("store");
        for entry in entries {
            let verified = accord::dataset::verify(entry, &consortium, &Limits::default()).expect("verifies");
            store.accept(&verified).expect("stored");
        }
        store.flush().expect("flush");
        drop(store);
        let (node, secs) = timed(|| open(&config));
        line(
            &format!("start-up with {n} proposals held (past the bound)"),
            format!(
                "{:.0} ms ({:.0} µs per entry); {} of them count",
                secs * 1e3,
                secs * 1e6 / n as f64,
                node.governance().pending.len()
            ),
        );
    }
}

/// A node directory of its own, with DEU's configuration.
fn fresh(root: &Path, template: &str, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("node directory");
    let config = dir.join("node.toml");
    std::fs::write(&config, template).expect("node.toml");
    config
}

fn open(config: &Path) -> std::sync::Arc<Node> {
    Node::open(NodeConfig::load(config).expect("node.toml")).expect("node opens")
}

/// `n` proposals by FRA for the next version, each a different document, chained.
fn proposals(pki: &Path, node: &Node, n: usize) -> Vec<accord::proto::Entry> {
    let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&std::fs::read(pki.join("fra.sign.pk8")).expect("FRA's key"))
        .expect("key");
    let current = node.governance().current().clone();
    let text = accord::consortium::canonical_toml(&current.document);
    let mut head: Option<Head> = None;
    (0..n)
        .map(|i| {
            let document = text.replace(
                "asymmetry_flag = 0.2\n",
                &format!("asymmetry_flag = 0.{}\n", 10_000 + i),
            );
            let entry = sign_governance(
                country("FRA"),
                &Governance::Proposal {
                    version: current.version + 1,
                    parent: current.digest,
                    document,
                },
                EntryParams {
                    head,
                    created_at: accord::date::unix_now(),
                    audience: Vec::new(),
                    key: &key,
                },
            );
            head = Some(Head {
                seq: i as u64 + 1,
                digest: accord::dataset::envelope::sha256(&entry.envelope.as_ref().expect("envelope").payload),
            });
            entry
        })
        .collect()
}

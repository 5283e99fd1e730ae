//! Issue 2: ingest a million synthetic records from CSV into a fresh store, beside raw sled
//! inserting as many keys of the same sizes in the same run. Targets: at least 60% of the raw
//! sled rate, peak RSS at most 500 MB. The time is broken down into the CSV parse + validate pass
//! alone, the two HMACs per record alone, and the store batches alone (records already in
//! memory), so a miss can be explained from sub-timings.

use std::path::Path;
use std::time::Instant;

use accord::config::NodeConfig;
use accord::consortium::Definition;
use accord::ingest::{ingest_file, BATCH_SIZE};
use accord::reader::{RecordReader, Row};
use accord::record::validate::ValidationContext;
use accord::record::Record;
use accord::store::Store;
use ring::hmac;
use serde_json::json;

use super::{country, line, num, path_str, peak_rss_mib, rss_mib, run_child, section, thousands, timed, verdict};
use super::{Fixture, Rng};

/// DuckDB loading CSV into a persistent table on this machine (STACK.md), rows/s.
const DUCKDB_ROWS_PER_SEC: f64 = 780_000.0;
/// `ingest` flushes every this many batches; the baselines do the same.
const FLUSH_EVERY: usize = 100;
/// A stored record's value size (see `store::StoredRecord`).
const RECORD_VALUE_BYTES: usize = 53;

pub fn run(fx: &mut Fixture) {
    section("ingest (issue 2): 1M records, CSV -> store");
    let (file, rows) = fx.records();
    let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
    line(
        "input file",
        format!("{} rows, {:.0} MB", thousands(rows as f64), bytes as f64 / 1e6),
    );

    let ctx = ValidationContext::for_today(country("DEU"));
    let (valid, parse_secs) = timed(|| {
        RecordReader::open(&file, ctx)
            .expect("open records")
            .filter(|r| matches!(r, Ok(Row::Valid(_))))
            .count() as u64
    });
    assert_eq!(valid, rows, "every synthetic row is valid");
    line(
        "CSV parse + validate pass alone",
        format!("{parse_secs:.2} s ({} rows/s)", thousands(rows as f64 / parse_secs)),
    );

    let hmac_secs = hmac_pair_secs(rows);
    line(
        "2 x HMAC-SHA256 per record alone",
        format!("{hmac_secs:.2} s ({} records/s)", thousands(rows as f64 / hmac_secs)),
    );

    let toml = fx.node_toml("DEU");
    let full = run_child("ingest-file", &[path_str(&toml), path_str(&file)]);
    let full_secs = num(&full, "secs");
    fx.ingest_secs = Some(full_secs);
    let full_rate = rows as f64 / full_secs;
    line(
        "ingest_file (two passes) into Store::open",
        format!(
            "{full_secs:.2} s ({} rows/s): validate pass {:.2} s, store pass {:.2} s",
            thousands(full_rate),
            num(&full, "validate_secs"),
            num(&full, "store_secs")
        ),
    );
    let full_rss = num(&full, "peak_rss_mib");
    line(
        "  peak RSS / store on disk",
        format!("{full_rss:.0} MiB / {:.0} MB", num(&full, "disk_bytes") / 1e6),
    );

    let scratch = fx.dir.path().join("store-only");
    let store_only = run_child("store-only", &[path_str(&file), path_str(&scratch)]);
    let store_secs = num(&store_only, "secs");
    let store_rate = rows as f64 / store_secs;
    line(
        "Store::ingest alone (records in memory)",
        format!(
            "{store_secs:.2} s ({} rows/s); peak RSS {:.0} MiB of which records in memory {:.0} MiB",
            thousands(store_rate),
            num(&store_only, "peak_rss_mib"),
            num(&store_only, "rss_before_mib")
        ),
    );
    let _ = std::fs::remove_dir_all(&scratch);

    let raw_dir = fx.dir.path().join("raw-sled");
    let raw = run_child("raw-sled", &[path_str(&raw_dir), &rows.to_string()]);
    let raw_secs = num(&raw, "secs");
    let raw_rate = rows as f64 / raw_secs;
    line(
        "raw sled: batches of 1,000 inserts, 15 B keys, 53 B",
        format!(
            "{raw_secs:.2} s ({} keys/s), peak RSS {:.0} MiB",
            thousands(raw_rate),
            num(&raw, "peak_rss_mib")
        ),
    );
    let _ = std::fs::remove_dir_all(&raw_dir);

    let share = full_rate / raw_rate;
    line(
        "TARGET ingest >= 60% of raw sled rate",
        format!("{:.0}% -> {}", 100.0 * share, verdict(share >= 0.6)),
    );
    line(
        "  (store pass alone vs raw sled)",
        format!("{:.0}%", 100.0 * store_rate / raw_rate),
    );
    line(
        "TARGET peak RSS <= 500 MB",
        format!(
            "{:.0} MB -> {}",
            full_rss * 1.048_576,
            verdict(full_rss * 1.048_576 <= 500.0)
        ),
    );
    line(
        "vs DuckDB CSV into a persistent table (~780k rows/s)",
        format!("{:.0}%", 100.0 * full_rate / DUCKDB_ROWS_PER_SEC),
    );
    line(
        "time shares of the full ingest",
        format!(
            "parse+validate x2 {:.0}%, HMAC {:.0}%, rest of store work {:.0}%",
            100.0 * 2.0 * parse_secs / full_secs,
            100.0 * hmac_secs / full_secs,
            100.0 * (full_secs - 2.0 * parse_secs - hmac_secs).max(0.0) / full_secs
        ),
    );
}

/// The two HMACs `Store::ingest` computes per record (pseudonym, then cell key), over ids
/// shaped like the synthetic ones.
fn hmac_pair_secs(rows: u64) -> f64 {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]);
    let people: Vec<String> = (0..rows)
        .map(|i| format!("P{:016x}", i.wrapping_mul(0x9e37_79b9)))
        .collect();
    let events: Vec<String> = (0..rows).map(|i| format!("DEU-{:09}", i + 1)).collect();
    let start = Instant::now();
    let mut sink = 0u8;
    for (person, event) in people.iter().zip(&events) {
        let pseudonym = hmac::sign(&key, person.as_bytes());
        let mut msg = Vec::with_capacity(48 + event.len());
        msg.extend_from_slice(b"accord cell key\0");
        msg.extend_from_slice(event.as_bytes());
        msg.extend_from_slice(pseudonym.as_ref());
        sink ^= hmac::sign(&key, &msg).as_ref()[0];
    }
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    secs
}

/// Child: `ingest_file` into the store of the node whose node.toml is `args[0]`.
pub fn child_ingest_file(args: &[String]) -> serde_json::Value {
    let config = NodeConfig::load(Path::new(&args[0])).expect("node.toml");
    let file = Path::new(&args[1]);
    let store = Store::open(&config.data_dir, config.country, config.consortium.definition).expect("open store");
    let ctx = ValidationContext::for_today(config.country);
    let start = Instant::now();
    let mut first_store_progress: Option<f64> = None;
    let mut sink = &store;
    let report = ingest_file(file, ctx, false, &mut sink, &mut |p| {
        if p.pass == "storing" && first_store_progress.is_none() {
            first_store_progress = Some(start.elapsed().as_secs_f64());
        }
    })
    .expect("ingest");
    let secs = start.elapsed().as_secs_f64();
    // The first storing progress comes after one batch of the store pass.
    let validate_secs = first_store_progress.unwrap_or(0.0);
    json!({
        "records": report.outcome.stored,
        "secs": secs,
        "validate_secs": validate_secs,
        "store_secs": secs - validate_secs,
        "peak_rss_mib": peak_rss_mib(),
        "disk_bytes": store.size_on_disk(),
    })
}

/// Child: read every record into memory, then time `Store::ingest` alone over a fresh store in
/// `args[1]`, in `ingest`'s batch and flush sizes.
pub fn child_store_only(args: &[String]) -> serde_json::Value {
    let deu = country("DEU");
    let records: Vec<Record> = RecordReader::open(Path::new(&args[0]), ValidationContext::for_today(deu))
        .expect("open records")
        .filter_map(|r| match r {
            Ok(Row::Valid(r)) => Some(r),
            _ => None,
        })
        .collect();
    let rss_before = rss_mib();
    let store = Store::open(Path::new(&args[1]), deu, Definition::default()).expect("open store");
    let start = Instant::now();
    for (i, batch) in records.chunks(BATCH_SIZE).enumerate() {
        store.ingest(batch).expect("ingest batch");
        if (i + 1) % FLUSH_EVERY == 0 {
            store.flush().expect("flush");
        }
    }
    store.flush().expect("flush");
    json!({
        "secs": start.elapsed().as_secs_f64(),
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    })
}

/// Child: the raw sled baseline: `args[1]` keys `r:DEU-000000001`… with 53-byte values into a
/// fresh sled database in `args[0]` (same cache size as the store), `apply_batch` of 1,000
/// inserts, flushed as `ingest` flushes.
pub fn child_raw_sled(args: &[String]) -> serde_json::Value {
    let n: u64 = args[1].parse().expect("key count");
    let db = sled::Config::new()
        .path(&args[0])
        .cache_capacity(accord::store::CACHE_BYTES)
        .open()
        .expect("open sled");
    let tree = db.open_tree("accord").expect("open tree");
    let mut rng = Rng(1);
    let start = Instant::now();
    let mut batches = 0usize;
    let mut next = 0u64;
    while next < n {
        let mut batch = sled::Batch::default();
        for i in next..(next + BATCH_SIZE as u64).min(n) {
            let mut value = [0u8; RECORD_VALUE_BYTES];
            for chunk in value.chunks_mut(8) {
                let bytes = rng.next().to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            batch.insert(format!("r:DEU-{:09}", i + 1).as_bytes(), value.as_slice());
        }
        tree.apply_batch(batch).expect("apply_batch");
        next += BATCH_SIZE as u64;
        batches += 1;
        if batches % FLUSH_EVERY == 0 {
            db.flush().expect("flush");
        }
    }
    db.flush().expect("flush");
    json!({
        "secs": start.elapsed().as_secs_f64(),
        "peak_rss_mib": peak_rss_mib(),
    })
}

//! The suite's shared parts: argument dispatch, the fixture the benchmarks share (one consortium,
//! one synthetic file of a million records, the store it is ingested into), child processes for
//! memory-sensitive measurements, peak-RSS readings, and hand-built datasets. Timing is plain
//! `std::time::Instant`; every figure is printed as it is measured.

mod attack;
mod attest;
mod convergence;
mod daemon_ingest;
mod daemon_view;
mod dashboard;
mod estimates;
mod federation;
mod fidelity;
mod governance;
mod ingest;
mod load;
mod publish;
mod scale;
mod sdmx;
mod status;
mod view;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use accord::config::NodeConfig;
use accord::date::Date;
use accord::model::Country;
use accord::model::{Cell, CellValue};
use accord::node::Node;
use accord::synth::{synthesize, SynthOptions};
use tempfile::TempDir;

/// Records in the ingest file (at least; the generator's count is approximate).
pub const RECORDS: u64 = 1_000_000;
/// Seed of every synthetic file, so runs are comparable.
pub const SEED: u64 = 2024;

const USAGE: &str =
    "usage: cargo bench --bench ingest -- [ingest|publish|verify|view|status|daemon-view|daemon-ingest|load|attack|convergence|fidelity|estimates|attest|dashboard|sdmx|scale|federation|governance|all]";

pub fn main() {
    // `cargo bench` appends `--bench`; flags are not ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.first().map(String::as_str) == Some("child") {
        child_main(&args[1..]);
        return;
    }
    let what = args.first().map(String::as_str).unwrap_or("all");
    let mut fx = Fixture::new();
    print_machine();
    let started = Instant::now();
    match what {
        "ingest" => ingest::run(&mut fx),
        "publish" => publish::run_publish(&mut fx),
        "verify" => publish::run_verify(&mut fx),
        "view" => view::run(&mut fx),
        "status" => status::run(&mut fx),
        "daemon-view" => daemon_view::run(&mut fx),
        "daemon-ingest" => daemon_ingest::run(&mut fx),
        "load" => load::run(&mut fx),
        "attack" => attack::run(&mut fx),
        "convergence" => convergence::run(&mut fx),
        "fidelity" => fidelity::run(&mut fx),
        "estimates" => estimates::run(&mut fx),
        "attest" => attest::run(&mut fx),
        "dashboard" => dashboard::run(&mut fx),
        "sdmx" => sdmx::run(&mut fx),
        "scale" => scale::run(&mut fx),
        "federation" => federation::run(&mut fx),
        "governance" => governance::run(&mut fx),
        "all" => {
            ingest::run(&mut fx);
            publish::run_publish(&mut fx);
            publish::run_verify(&mut fx);
            view::run(&mut fx);
            status::run(&mut fx);
            daemon_view::run(&mut fx);
            daemon_ingest::run(&mut fx);
            load::run(&mut fx);
            attack::run(&mut fx);
            convergence::run(&mut fx);
            fidelity::run(&mut fx);
            estimates::run(&mut fx);
            attest::run(&mut fx);
            dashboard::run(&mut fx);
            sdmx::run(&mut fx);
            scale::run(&mut fx);
            federation::run(&mut fx);
            governance::run(&mut fx);
        }
        other => {
            eprintln!("unknown benchmark {other:?}\n{USAGE}");
            std::process::exit(2);
        }
    }
    println!("\n[{what}] finished in {:.1} s", started.elapsed().as_secs_f64());
}

/// Jobs run in a child process; each prints one `RESULT <json>` line.
fn child_main(args: &[String]) {
    let job = args.first().map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(1)..];
    let result = match job {
        "ingest-file" => ingest::child_ingest_file(rest),
        "store-only" => ingest::child_store_only(rest),
        "raw-sled" => ingest::child_raw_sled(rest),
        "view" => view::child_view(rest),
        "scale" => scale::child_scale(rest),
        other => {
            eprintln!("unknown child job {other:?}");
            std::process::exit(2);
        }
    };
    println!("RESULT {result}");
}

/// Runs `job` in a fresh process of this binary and returns its result.
pub fn run_child(job: &str, args: &[&str]) -> serde_json::Value {
    let exe = std::env::current_exe().expect("own executable path");
    let output = Command::new(exe)
        .arg("child")
        .arg(job)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn child benchmark");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!("child {job} failed ({}):\n{stdout}", output.status);
    }
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("child {job} printed no RESULT line:\n{stdout}"));
    serde_json::from_str(line).expect("child result is JSON")
}

/// A field of a child's result as a number.
pub fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("child result lacks number {key:?}: {v}"))
}

/// Peak resident set of this process so far, MiB (`VmHWM`).
pub fn peak_rss_mib() -> f64 {
    proc_status_kib("VmHWM:") / 1024.0
}

/// Current resident set of this process, MiB (`VmRSS`).
pub fn rss_mib() -> f64 {
    proc_status_kib("VmRSS:") / 1024.0
}

fn proc_status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// Runs `f` and returns its result and the seconds it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

pub fn country(code: &str) -> Country {
    Country::parse(code).unwrap_or_else(|| panic!("{code} is a country code"))
}

pub fn section(title: &str) {
    println!("\n== {title} ==");
}

pub fn line(name: &str, value: impl std::fmt::Display) {
    println!("  {name:<52} {value}");
}

/// `123456.7` → `123,457`.
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Target verdict: `met` or `MISSED`.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn print_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    println!(
        "machine: {cores} cores ({model}), {:.1} GiB RAM",
        mem_kib / 1024.0 / 1024.0
    );
}

/// What the benchmarks share, built lazily so each can also run alone.
pub struct Fixture {
    pub dir: TempDir,
    /// The year the synthetic events fall in (last year: no event may be after today).
    pub year: i32,
    pki: Option<PathBuf>,
    records: Option<(PathBuf, u64)>,
    /// Seconds the full two-pass ingest took, once it ran.
    pub ingest_secs: Option<f64>,
    /// Directory of the view benchmark's dataset payloads, once publish built them.
    pub view_inputs: Option<PathBuf>,
}

/// Consortium members of the shared fixture.
pub const MEMBERS: [&str; 2] = ["DEU", "FRA"];

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("accord-bench-")
            .tempdir()
            .expect("temporary directory");
        Fixture {
            dir,
            year: Date::today().year - 1,
            pki: None,
            records: None,
            ingest_secs: None,
            view_inputs: None,
        }
    }

    /// Example PKI and consortium for DEU and FRA.
    pub fn pki(&mut self) -> PathBuf {
        if let Some(p) = &self.pki {
            return p.clone();
        }
        let pki = self.dir.path().join("pki");
        accord::certs::generate(&accord::certs::CertsOptions {
            out: pki.clone(),
            countries: MEMBERS.iter().map(|c| country(c)).collect(),
            days: 30,
            force: true,
        })
        .expect("generate example PKI");
        for code in MEMBERS {
            write_node_toml(self.dir.path(), code);
        }
        self.pki = Some(pki.clone());
        pki
    }

    /// DEU's synthetic record file (at least [`RECORDS`] rows) and its row count.
    pub fn records(&mut self) -> (PathBuf, u64) {
        if let Some(r) = &self.records {
            return r.clone();
        }
        // The generator's count is approximate: ask for a little more than needed.
        let mut requested = RECORDS + RECORDS / 25;
        loop {
            let out = self.dir.path().join("records");
            let opts = SynthOptions {
                countries: MEMBERS.iter().map(|c| country(c)).collect(),
                year: self.year,
                records: requested,
                seed: SEED,
                out,
                registers: accord::synth::Registers::Plain,
            };
            let (summary, secs) = timed(|| synthesize(&opts, &mut |_| {}).expect("synthesize"));
            let (_, path, rows) = summary.files[0].clone();
            let all: u64 = summary.files.iter().map(|f| f.2).sum();
            line(
                &format!("synth {} records per country", thousands(requested as f64)),
                format!(
                    "{:.1} s for {} rows; DEU file {} rows",
                    secs,
                    thousands(all as f64),
                    thousands(rows as f64)
                ),
            );
            if rows >= RECORDS {
                self.records = Some((path.clone(), rows));
                return (path, rows);
            }
            requested = requested * RECORDS / rows.max(1) + 10_000;
        }
    }

    /// The path of a member's node.toml (in `<dir>/<code>/`, data in `<dir>/<code>/data`).
    pub fn node_toml(&mut self, code: &str) -> PathBuf {
        self.pki();
        self.dir.path().join(code.to_lowercase()).join("node.toml")
    }

    /// Opens a member's node (its store must not be open elsewhere).
    pub fn open_node(&mut self, code: &str) -> Arc<Node> {
        let config = NodeConfig::load(&self.node_toml(code)).expect("load node.toml");
        Node::open(config).expect("open node")
    }

    /// DEU's store holds the million records (ingesting them in a child if no benchmark has).
    pub fn ensure_ingested(&mut self) {
        if self.ingest_secs.is_some() {
            return;
        }
        let (file, _) = self.records();
        let toml = self.node_toml("DEU");
        let r = run_child("ingest-file", &[path_str(&toml), path_str(&file)]);
        self.ingest_secs = Some(num(&r, "secs"));
    }
}

fn write_node_toml(dir: &Path, code: &str) {
    let lower = code.to_lowercase();
    let node_dir = dir.join(&lower);
    std::fs::create_dir_all(&node_dir).expect("node directory");
    let toml = format!(
        "country = \"{code}\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\nconsortium = \"../pki/consortium.toml\"\n\n\
         [tls]\nca = \"../pki/ca.pem\"\ncert = \"../pki/{lower}.pem\"\nkey = \"../pki/{lower}.key\"\ncrls = []\n\n\
         [signing]\nkey = \"../pki/{lower}.sign.pk8\"\n"
    );
    std::fs::write(node_dir.join("node.toml"), toml).expect("write node.toml");
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A small deterministic generator (SplitMix64) for hand-built datasets.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` distinct `flows` cells, sorted, drawn from 2 directions × 60 partners × 40 citizenships ×
/// 2 sexes × 19 age bands; about one in ten confidential, the rest 5–500.
pub fn flows_cells(n: usize, seed: u64) -> Vec<Cell> {
    let countries: Vec<Country> = Country::all_iso().take(60).collect();
    let (directions, sexes) = (["IN", "OUT"], ["F", "M"]);
    let bands = accord::model::AGE_BANDS;
    let total = 2 * 60 * 40 * 2 * bands.len();
    assert!(n <= total, "at most {total} distinct cells");
    let mut rng = Rng(seed);
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < n {
        chosen.insert(rng.below(total as u64) as usize);
    }
    let mut cells: Vec<Cell> = chosen
        .into_iter()
        .map(|mut i| {
            let band = bands[i % bands.len()];
            i /= bands.len();
            let sex = sexes[i % 2];
            i /= 2;
            let citizenship = countries[i % 40];
            i /= 40;
            let partner = countries[i % 60];
            i /= 60;
            let value = if rng.below(10) == 0 {
                CellValue::Confidential
            } else {
                CellValue::Value(5 + rng.below(496))
            };
            Cell {
                key: vec![
                    directions[i].to_string(),
                    partner.to_string(),
                    citizenship.to_string(),
                    sex.to_string(),
                    band.to_string(),
                ],
                value,
            }
        })
        .collect();
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    cells
}

//! Command-line arguments and dispatch. Admin commands (`ingest`, `publish`, `sync`, `view`,
//! `status`, `export`, `check`) run the node's `Operations`: through its admin socket when a
//! node is running, on the store directly otherwise ([`commands`]).

/// `print!` for command output: a reader that goes away early (`accord view | head`) ends the
/// process quietly instead of with a panic.
macro_rules! out {
    ($($arg:tt)*) => { crate::cli::write_out(format_args!($($arg)*)) };
}

/// `println!` counterpart of [`out!`].
macro_rules! outln {
    () => { crate::cli::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

mod commands;
mod progress;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use accord::model::{Country, Cube, Period};
use accord::reconcile::Format;

#[derive(Parser)]
#[command(
    name = "accord",
    version,
    about = "A secure node for sharing signed, disclosure-controlled migration statistics"
)]
pub struct Args {
    /// Log filter (also RUST_LOG), e.g. `info`, `accord=debug`.
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum CertsAction {
    /// Revoke a member's TLS certificate: creates or updates DIR/crl.pem, signed by DIR/ca.key
    /// (earlier revocations in it are kept). Nodes list the file under [tls] crls.
    Revoke {
        /// The CA directory (`ca.pem`, `ca.key`, `<code>.pem`), as written by `accord certs`.
        #[arg(long)]
        dir: PathBuf,
        /// The member whose certificate `<code>.pem` is revoked.
        #[arg(long)]
        country: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Example CA, TLS certificates and keys, signing keys and consortium.toml (tests and demos);
    /// `certs revoke` revokes a member's certificate.
    #[command(args_conflicts_with_subcommands = true)]
    Certs {
        #[command(subcommand)]
        action: Option<CertsAction>,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Member codes, e.g. DEU,FRA,ITA.
        #[arg(long, value_delimiter = ',')]
        countries: Vec<String>,
        /// Validity of the certificates and signing keys, in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Run the node daemon.
    Serve {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Ingest record files (.csv, .jsonl).
    Ingest {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// Record files; the format follows the extension (.csv or .jsonl).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Store the valid rows and write the rejected ones to <file>.rejected.csv.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Publish a signed dataset for a cube and period.
    Publish {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// flows, asylum or permits.
        #[arg(long, value_parser = cube_arg)]
        cube: Cube,
        /// A year (2024), a quarter (2024-Q2) or a month (2024-05).
        #[arg(long, value_parser = period_arg)]
        period: Period,
        /// Members allowed the payload (default: every member).
        #[arg(long, value_delimiter = ',', value_parser = member_arg)]
        audience: Vec<Country>,
        /// What this flows dataset does not report (SPEC §2), repeatable: a whole direction
        /// (`OUT`) or some partners (`IN:AUT,EST`). Those sides read as missing, not zero.
        #[arg(long, value_name = "DIR[:CODES]")]
        unreported: Vec<String>,
    },
    /// Pull from every peer now and print what came.
    Sync {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the common view.
    View {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// Only this cube: flows, asylum or permits.
        #[arg(long, value_parser = cube_arg)]
        cube: Option<Cube>,
        /// Only this period, e.g. 2024, 2024-Q2, 2024-05.
        #[arg(long, value_parser = period_arg)]
        period: Option<Period>,
        /// Only flows from this country (alpha-3).
        #[arg(long, value_parser = country_arg)]
        origin: Option<Country>,
        /// Only flows into this country (alpha-3).
        #[arg(long, value_parser = country_arg)]
        destination: Option<Country>,
        /// table, csv, json or sdmx-csv.
        #[arg(long, default_value = "table", value_parser = format_arg)]
        format: Format,
        /// The view as it was on this node at an RFC 3339 time (e.g. 2026-12-07T18:10:25Z):
        /// from the entries it had accepted by then, with that view's digest.
        #[arg(long, value_parser = instant_arg)]
        as_of: Option<i64>,
    },
    /// Records by type, feeds, peers, forks and the view digest.
    Status {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// text or json.
        #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
        format: StatusFormat,
    },
    /// Show a consortium version (default: the one in force): its canonical document, digest
    /// and the approvals that put it in force. With --format toml, stdout is exactly the
    /// document whose SHA-256 is the digest.
    Consortium {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The version to show (default: the one in force).
        #[arg(long)]
        version: Option<u64>,
        /// toml or json.
        #[arg(long, value_enum, default_value_t = ConsortiumFormat::Toml)]
        format: ConsortiumFormat,
    },
    /// Sign a proposal for the next consortium version: the whole next document (SPEC §11).
    Propose {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The next consortium document (TOML).
        #[arg(long)]
        change: PathBuf,
    },
    /// Sign this member's approval of a proposed consortium version (SPEC §11).
    Approve {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The version approved (the one after the version in force).
        #[arg(long)]
        version: u64,
        /// The digest of the proposed document, as `status` lists it.
        #[arg(long, value_parser = digest_arg)]
        digest: [u8; 32],
    },
    /// Write one feed entry (envelope and payload if held) to a file.
    Export {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The member whose feed holds the entry.
        #[arg(long, value_parser = member_arg)]
        publisher: Country,
        /// The entry's sequence number in that feed.
        #[arg(long)]
        seq: u64,
        /// File to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check offline, against a consortium file: an exported entry, or a certified view
    /// (a directory written by `accord certify`): which members attested that very view, and
    /// when each of its entries was first witnessed.
    Verify {
        /// The consortium file (consortium.toml) with the members' signing keys.
        #[arg(long)]
        consortium: PathBuf,
        /// A file written by `accord export`, or a directory written by `accord certify`.
        file: PathBuf,
    },
    /// Write the view with the attestations over its digest into a new directory (SPEC §12),
    /// for `accord verify` anywhere, offline.
    Certify {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The directory to create (must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a consistent backup of the node (records, aggregates, feeds, evidence and the node
    /// secret) to a new file, mode 0600, signed with the node's signing key; online through the
    /// admin socket while the node runs.
    Backup {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// The backup file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Fill an empty data_dir from a backup signed by one of this member's keys, re-verify every
    /// entry and check the aggregates; on any failure data_dir is left as it was.
    Restore {
        /// The node config (node.toml) of the node to restore.
        #[arg(long)]
        config: PathBuf,
        /// The backup file.
        file: PathBuf,
    },
    /// Recompute aggregates from records and compare with the live ones.
    Check {
        /// The node config (node.toml).
        #[arg(long)]
        config: PathBuf,
        /// First migrate a store written by an earlier Accord to this build's format, after
        /// backing it up to data_dir/store-format-N.backup (node stopped).
        #[arg(long)]
        migrate: bool,
        /// First rebuild the aggregates from the records if the consortium changed its
        /// harmonised definition (node stopped).
        #[arg(long)]
        rebuild: bool,
    },
    /// Synthetic records for a set of countries, plus truth.csv.
    Synth {
        /// Member codes, e.g. DEU,FRA,ITA.
        #[arg(long, value_delimiter = ',')]
        countries: Vec<String>,
        /// The year of the events.
        #[arg(long)]
        year: i32,
        /// Approximate records per country.
        #[arg(long)]
        records: u64,
        /// Same seed, same records.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Directory for <code>.csv per country and truth.csv.
        #[arg(long)]
        out: PathBuf,
        /// How each member's registers see the moves (SPEC §15): `drawn` (classes drawn from
        /// the seed, written to registers.toml), `plain` (no classes: every move seen at most
        /// once), or a consortium.toml whose [members.measurement] classes to use.
        #[arg(long, default_value = "drawn", value_name = "drawn|plain|FILE")]
        registers: String,
    },
    /// The whole system on one machine: three nodes, ingest, publish, sync, common view.
    Demo {
        /// Synthetic records per country.
        #[arg(long, default_value_t = 60_000)]
        records: u64,
        /// Seed of the synthetic records.
        #[arg(long, default_value_t = 2024)]
        seed: u64,
        /// Also publish monthly flows and keep the nodes running with their web dashboards
        /// (loopback URLs printed) until Ctrl-C.
        #[arg(long)]
        dashboard: bool,
    },
}

/// `status --format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsortiumFormat {
    Toml,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

// Value parsers: a bad value is a usage mistake (one line, exit code 2), named by clap with
// the option it was given to.
fn digest_arg(text: &str) -> Result<[u8; 32], String> {
    accord::hex::decode(text)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "not a SHA-256 digest (64 hex characters)".to_string())
}

fn cube_arg(text: &str) -> Result<Cube, String> {
    Cube::parse(text).ok_or_else(|| "not a cube (flows, asylum, permits)".to_string())
}

fn period_arg(text: &str) -> Result<Period, String> {
    Period::parse(text).ok_or_else(|| "not a period (2024, 2024-Q2, 2024-05)".to_string())
}

fn instant_arg(text: &str) -> Result<i64, String> {
    accord::date::parse_instant_millis(text)
        .ok_or_else(|| "not an RFC 3339 time (2026-12-07T18:10:25Z, 2026-12-07T19:10:25+01:00)".to_string())
}

fn country_arg(text: &str) -> Result<Country, String> {
    Country::parse(text).ok_or_else(|| "not a country code (ISO 3166-1 alpha-3)".to_string())
}

fn member_arg(text: &str) -> Result<Country, String> {
    Country::parse(text)
        .filter(|c| c.is_iso())
        .ok_or_else(|| "not a member code (ISO 3166-1 alpha-3)".to_string())
}

fn format_arg(text: &str) -> Result<Format, String> {
    Format::parse(text).ok_or_else(|| "not a format (table, csv, json, sdmx-csv)".to_string())
}

pub fn init_logging(args: &Args) {
    let default = match args.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    let filter = args
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: an operator's log file stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn countries(list: &[String], what: &str) -> Result<Vec<Country>> {
    if list.is_empty() {
        bail!("{what}: give at least one country code");
    }
    list.iter()
        .map(|c| {
            Country::parse(c.trim())
                .filter(|c| c.is_iso())
                .with_context(|| format!("{what}: not an ISO 3166-1 alpha-3 code: {c:?}"))
        })
        .collect()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a command; the exit code on success (non-zero when the command reports a failure,
/// e.g. `check` finding differences).
pub fn run(args: Args) -> Result<i32> {
    match args.command {
        Command::Certs {
            action: Some(CertsAction::Revoke { dir, country }),
            ..
        } => {
            let member = countries(&[country], "--country")?[0];
            let cert = dir.join(format!("{}.pem", member.lower()));
            let crl = dir.join("crl.pem");
            accord::certs::revoke(&dir, &cert, &crl)?;
            outln!(
                "revoked {member} ({}) in {}; nodes that list it under [tls] crls refuse it once they load it",
                cert.display(),
                crl.display()
            );
            Ok(0)
        }
        Command::Certs {
            action: None,
            out,
            countries: list,
            days,
            force,
        } => {
            let out = out.context("certs: --out DIR is required (or `certs revoke --dir DIR --country CODE`)")?;
            let countries = countries(&list, "--countries")?;
            let summary = accord::certs::generate(&accord::certs::CertsOptions {
                out: out.clone(),
                countries,
                days,
                force,
            })?;
            outln!(
                "wrote CA, {} member certificates and signing keys, and {} (valid {} to {})",
                summary.members.len(),
                summary.consortium.display(),
                summary.valid_from,
                summary.valid_until
            );
            Ok(0)
        }
        Command::Serve { config } => commands::serve(&config),
        Command::Ingest {
            config,
            files,
            skip_invalid,
        } => commands::ingest(&config, &files, skip_invalid),
        Command::Publish {
            config,
            cube,
            period,
            audience,
            unreported,
        } => commands::publish(
            &config,
            accord::node::PublishRequest {
                cube,
                period,
                audience,
                unreported,
            },
        ),
        Command::Sync { config } => commands::sync(&config),
        Command::View {
            config,
            cube,
            period,
            origin,
            destination,
            format,
            as_of,
        } => commands::view(
            &config,
            accord::reconcile::ViewFilter {
                cube,
                period,
                origin,
                destination,
            },
            format,
            as_of,
        ),
        Command::Status { config, format } => commands::status(&config, format == StatusFormat::Json),
        Command::Consortium {
            config,
            version,
            format,
        } => commands::consortium(&config, version, format == ConsortiumFormat::Json),
        Command::Propose { config, change } => commands::propose(&config, &change),
        Command::Approve {
            config,
            version,
            digest,
        } => commands::approve(&config, version, digest),
        Command::Export {
            config,
            publisher,
            seq,
            out,
        } => commands::export(&config, publisher, seq, &out),
        Command::Check {
            config,
            migrate,
            rebuild,
        } => commands::check(&config, migrate, rebuild),
        Command::Backup { config, out } => commands::backup(&config, &out),
        Command::Restore { config, file } => commands::restore(&config, &file),
        Command::Certify { config, out } => commands::certify(&config, &out),
        Command::Verify { consortium, file } if file.is_dir() => commands::verify_bundle(&consortium, &file),
        Command::Verify { consortium, file } => {
            let c = accord::consortium::Consortium::load(&consortium)?;
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let v = accord::export::verify_file(&bytes, &c).with_context(|| format!("{}", file.display()))?;
            outln!("{}", accord::report::export_valid(&v));
            Ok(0)
        }
        Command::Synth {
            countries: list,
            year,
            records,
            seed,
            out,
            registers,
        } => {
            let countries = countries(&list, "--countries")?;
            let registers = match registers.as_str() {
                "drawn" => accord::synth::Registers::Drawn,
                "plain" => accord::synth::Registers::Plain,
                file => {
                    let consortium = accord::consortium::Consortium::load(std::path::Path::new(file))
                        .with_context(|| format!("--registers {file}: not drawn, plain or a consortium file"))?;
                    accord::synth::Registers::Declared(
                        consortium.members.iter().map(|m| (m.country, m.measurement)).collect(),
                    )
                }
            };
            let total = records * countries.len() as u64;
            let bar = progress::Bar::new(total, "records");
            let opts = accord::synth::SynthOptions {
                countries,
                year,
                records,
                seed,
                out,
                registers,
            };
            let started = std::time::Instant::now();
            let summary = accord::synth::synthesize(&opts, &mut |n| bar.set(n))?;
            bar.finish();
            let written: u64 = summary.files.iter().map(|f| f.2).sum();
            outln!(
                "wrote {written} records in {} files and {} ({} true moves) in {:.1} s",
                summary.files.len(),
                summary.truth.display(),
                summary.moves,
                started.elapsed().as_secs_f64()
            );
            if let Some(registers) = &summary.registers {
                outln!(
                    "the registers' measurement classes (SPEC §15) are in {}",
                    registers.display()
                );
            }
            Ok(0)
        }
        Command::Demo {
            records,
            seed,
            dashboard,
        } => {
            let rt = runtime()?;
            let options = accord::demo::DemoOptions {
                records,
                seed,
                dashboard,
                ..Default::default()
            };
            let mut out = std::io::stdout();
            rt.block_on(accord::demo::run(options, &mut out))?;
            Ok(0)
        }
    }
}

/// Writes command output to stdout. A closed pipe means the reader has all it wanted: exit 0
/// without a word. Any other write failure is reported on one line.
pub(crate) fn write_out(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("writing output: {e}");
        std::process::exit(1);
    }
}

/// clap's usage error (several lines: the error, the arguments it names, usage, a hint) as one
/// line: `the following required arguments were not provided: --period <PERIOD> (try --help)`.
pub fn one_line_usage_error(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    let text = parts.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text} (try --help)")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn usage_errors_become_one_line() {
        let error = Args::try_parse_from(["accord", "publish", "--config", "n.toml", "--cube", "flows"])
            .err()
            .expect("a missing argument");
        let line = one_line_usage_error(&error.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--period"), "{line}");
        assert!(line.ends_with("(try --help)"), "{line}");
        assert!(!line.starts_with("error:"), "{line}");
    }
}

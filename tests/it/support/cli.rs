//! The `accord` binary as an operator runs it: one finished run kept whole for failure
//! messages (`Run`), a temporary site with an example PKI and node configs (`Site`), `accord
//! serve` daemons of its members (`Member`, `Daemon`), and small file helpers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tempfile::TempDir;

use super::{eventually_blocking, last_year};

pub const BIN: &str = env!("CARGO_BIN_EXE_accord");

/// The header every SPEC record file has (SPEC §1), in the order `accord synth` writes it.
pub const RECORD_COLUMNS: &str = "event_id,person_id,event_type,event_date,citizenship,country_of_birth,\
partner_country,sex,birth_year,reason,duration_months";

/// The first columns of `view --format csv --cube flows` (SPEC §8).
pub const FLOWS_CSV_HEADER: &str = "origin,destination,period,citizenship,sex,age_band,sender_reported,sender_status,\
receiver_reported,receiver_status,reconciled,asymmetry,flag,rule";

// ---------------------------------------------------------------- running the binary

/// One finished run of the binary, kept whole so a failing assertion can show everything.
pub struct Run {
    pub command: String,
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The command, its exit status, stdout and stderr, for failure messages.
    pub fn details(&self) -> String {
        format!(
            "command: {}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}\n---",
            self.command,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts exit code 0.
    pub fn success(self) -> Run {
        assert!(self.output.status.success(), "expected success\n{}", self.details());
        self
    }

    /// Asserts a non-zero exit code (not a crash by signal) and a reason on stderr that is not
    /// a panic.
    pub fn failure(self) -> Run {
        let code = self.output.status.code();
        assert!(
            matches!(code, Some(c) if c != 0),
            "expected a non-zero exit code\n{}",
            self.details()
        );
        assert!(
            !self.stderr().trim().is_empty(),
            "expected a reason on stderr\n{}",
            self.details()
        );
        assert!(
            !self.stderr().contains("panicked"),
            "the command panicked\n{}",
            self.details()
        );
        self
    }

    /// Asserts stdout contains `needle`.
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout().contains(needle),
            "expected {needle:?} on stdout\n{}",
            self.details()
        );
        self
    }

    /// Asserts a one-line reason on stderr that contains every one of `needles`.
    pub fn reason_has(&self, needles: &[&str]) -> &Run {
        let reason = self.one_line_reason();
        for needle in needles {
            assert!(
                reason.contains(needle),
                "expected {needle:?} in the reason\n{}",
                self.details()
            );
        }
        self
    }

    /// Asserts stderr is exactly one line (SPEC §6: a one-line reason) and returns it.
    pub fn one_line_reason(&self) -> String {
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected a one-line reason on stderr\n{}",
            self.details()
        );
        lines[0].to_string()
    }
}

/// A temporary working directory with an example PKI in `pki/` (`accord certs`). Commands run
/// with this directory as their working directory and get relative paths, so messages name
/// files the way an operator typed them.
pub struct Site {
    pub dir: TempDir,
}

impl Site {
    pub fn new(countries: &str) -> Site {
        let site = Site {
            dir: TempDir::new().expect("temp dir"),
        };
        site.ok(&format!("certs --out pki --countries {countries}"));
        site
    }

    /// A site with no PKI: the test brings its own.
    pub fn empty() -> Site {
        Site {
            dir: TempDir::new().expect("temp dir"),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Runs `accord` with the arguments in `line` (split on whitespace; paths here have none).
    pub fn run(&self, line: &str) -> Run {
        let output = self
            .command(line)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Run {
            command: format!("accord {line}"),
            output,
        }
    }

    pub fn ok(&self, line: &str) -> Run {
        self.run(line).success()
    }

    pub fn fails(&self, line: &str) -> Run {
        self.run(line).failure()
    }

    pub fn command(&self, line: &str) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(line.split_whitespace())
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        command
    }

    pub fn write(&self, relative: &str, contents: &str) {
        std::fs::write(self.path(relative), contents).unwrap_or_else(|e| panic!("cannot write {relative}: {e}"));
    }

    pub fn write_bytes(&self, relative: &str, contents: &[u8]) {
        std::fs::write(self.path(relative), contents).unwrap_or_else(|e| panic!("cannot write {relative}: {e}"));
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
    }

    /// Writes `<name>.toml` for `country` (lower-case code for the PKI files) with its store in
    /// `<name>/`, no peers, and returns the file name.
    pub fn node_config(&self, country: &str, name: &str) -> String {
        let code = country.to_lowercase();
        let port = free_port();
        let file = format!("{name}.toml");
        self.write(
            &file,
            &format!(
                "country = \"{country}\"\ndata_dir = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\n\
                 consortium = \"pki/consortium.toml\"\n\n[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/{code}.pem\"\n\
                 key = \"pki/{code}.key\"\ncrls = []\n\n[signing]\nkey = \"pki/{code}.sign.pk8\"\n"
            ),
        );
        file
    }

    /// `ports`: the exchange port and the metrics port.
    pub fn member(&self, code: &'static str, (port, metrics_port): (u16, u16), peer: &str, peer_port: u16) -> Member {
        let lower = code.to_lowercase();
        let peer_lower = peer.to_lowercase();
        let config = format!("{lower}.toml");
        let text = format!(
            "country = \"{code}\"\ndata_dir = \"{lower}\"\nlisten = \"127.0.0.1:{port}\"\n\
             metrics_listen = \"127.0.0.1:{metrics_port}\"\n\
             consortium = \"pki/consortium.toml\"\n\n[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/{lower}.pem\"\n\
             key = \"pki/{lower}.key\"\ncrls = []\n\n[signing]\nkey = \"pki/{lower}.sign.pk8\"\n\n\
             [sync]\ninterval_secs = 2\n\n[[peers]]\ncountry = \"{peer}\"\n\
             endpoint = \"https://127.0.0.1:{peer_port}\"\ntls_name = \"{peer_lower}.accord\"\n"
        );
        self.write(&config, &text);
        Member {
            code,
            config,
            data_dir: self.dir.path().join(&lower),
            metrics_port: Some(metrics_port),
        }
    }

    /// A member whose node config the test wrote itself: `config` in this site, with its store
    /// in `data_dir` (relative to the site) and no metrics port.
    pub fn configured(&self, code: &'static str, config: &str, data_dir: &str) -> Member {
        Member {
            code,
            config: config.to_string(),
            data_dir: self.path(data_dir),
            metrics_port: None,
        }
    }

    /// A site with an example PKI for DEU and FRA, their synthetic records (2,000 each, from
    /// `seed`) in `records/`, and a node config for each naming the other as its peer.
    pub fn two_members(seed: u64) -> (Site, [Member; 2]) {
        let site = Site::new("DEU,FRA");
        let year = last_year();
        site.ok(&format!(
            "synth --countries DEU,FRA --year {year} --records 2000 --seed {seed} --out records"
        ));
        let ports = free_ports(4);
        let codes = ["DEU", "FRA"];
        let members = [0, 1].map(|i| site.member(codes[i], (ports[i], ports[2 + i]), codes[1 - i], ports[1 - i]));
        (site, members)
    }

    /// Starts `accord serve` for `member` in this site.
    pub fn start(&self, member: &Member) -> Daemon {
        Daemon::start(self.dir.path(), member)
    }

    /// Starts `accord serve` for `member` and waits until its admin socket answers, so commands
    /// that follow go through the node.
    pub fn serve(&self, member: &Member) -> Daemon {
        let mut daemon = self.start(member);
        eventually_blocking(&format!("{} listens on its admin socket", member.code), || {
            if !daemon.running() {
                panic!("{} exited at start\n{}", member.code, daemon.log());
            }
            if member.socket().exists() {
                Ok(())
            } else {
                Err(daemon.log())
            }
        });
        daemon
    }

    /// `accord synth` for DEU, FRA and ITA into `out`, with plain registers: every record of
    /// a move carries the duration its register reports, which the tests of definitions rely on
    /// (registers drawn from measurement classes may count by their own rule, durations unknown).
    pub fn synth(&self, records: u64, seed: u64, out: &str) {
        let year = last_year().to_string();
        let (records, seed) = (records.to_string(), seed.to_string());
        self.ok(&format!(
            "synth --countries DEU,FRA,ITA --year {year} --records {records} --seed {seed} --out {out} --registers plain"
        ));
    }

    /// `accord status --format json`, parsed, once its view is current: a running node reports
    /// the latest view it computed, which lags for a moment behind entries just accepted.
    pub fn status(&self, config: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let run = self.ok(&format!("status --config {config} --format json"));
            let status: serde_json::Value = serde_json::from_str(&run.stdout())
                .unwrap_or_else(|e| panic!("status is not JSON: {e}\n{}", run.details()));
            if status["view_current"] == true || std::time::Instant::now() > deadline {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Records held, by event type, from `status`.
    pub fn record_counts(&self, config: &str) -> BTreeMap<String, u64> {
        let status = self.status(config);
        let records = status["records"]
            .as_object()
            .unwrap_or_else(|| panic!("status has no records object: {status}"));
        records
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or_else(|| panic!("count {k} is {v}"))))
            .collect()
    }

    pub fn total_records(&self, config: &str) -> u64 {
        self.record_counts(config).values().sum()
    }

    /// A node holding DEU's records, with `flows` for last year published as seq 1. Returns the
    /// node config file.
    pub fn published_deu(&self) -> String {
        self.synth(2000, 7, "records");
        let config = self.node_config("DEU", "deu");
        self.ok(&format!("ingest --config {config} records/deu.csv"));
        let period = last_year().to_string();
        self.ok(&format!("publish --config {config} --cube flows --period {period}"));
        config
    }
}

// ---------------------------------------------------------------- daemons

/// One member's files in the site: its node config (`<code>.toml`) and its store (`<code>/`).
pub struct Member {
    pub code: &'static str,
    pub config: String,
    pub data_dir: PathBuf,
    /// Where `/metrics` is served, when the config says.
    pub metrics_port: Option<u16>,
}

impl Member {
    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("admin.sock")
    }

    /// The HTTP status line and body of a GET on the member's metrics port.
    pub fn http_get(&self, path: &str) -> (String, String) {
        let port = self
            .metrics_port
            .unwrap_or_else(|| panic!("{} serves no metrics", self.code));
        let answer = super::http::get(([127, 0, 0, 1], port).into(), path, "127.0.0.1", &[]);
        (answer.status_line, answer.body)
    }

    /// The value of an unlabelled metric on `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let (status, body) = self.http_get("/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
    }
}

/// An `accord serve` child process. Dropping it kills the daemon, so a failing test leaves no
/// process behind; its stdout and stderr go to files shown by `log`.
pub struct Daemon {
    pub code: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(dir: &Path, member: &Member) -> Daemon {
        Daemon::start_with(dir, member, |_| {})
    }

    /// [`Daemon::start`] with the command adjusted by `adjust` first (e.g. a `pre_exec` that
    /// lowers the child's file limit).
    pub fn start_with(dir: &Path, member: &Member, adjust: impl FnOnce(&mut Command)) -> Daemon {
        let log = dir.join(format!("{}.log", member.code));
        let out = std::fs::File::create(&log).expect("daemon log");
        let err = out.try_clone().expect("daemon log");
        let mut command = Command::new(BIN);
        adjust(&mut command);
        let child = command
            .args(["serve", "--config", &member.config])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn accord serve");
        Daemon {
            code: member.code,
            child,
            log,
        }
    }

    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- {} daemon log\n{text}---", self.code)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(kill.success(), "kill -TERM {pid} failed");
        eventually_blocking(&format!("{} exits after SIGTERM", self.code), || {
            match self.child.try_wait().expect("try_wait") {
                Some(status) => Ok(status),
                None => Err(self.log()),
            }
        })
    }

    /// SIGHUP: reload the TLS files.
    pub fn hangup(&self) {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-HUP", &pid]).status().expect("run kill");
        assert!(kill.success(), "kill -HUP {pid} failed");
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs (it was not restarted behind the test's back).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, as a crash or a power cut would stop it: no shutdown, no final flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `count` ports free a moment ago on 127.0.0.1, distinct from each other (all are held until
/// every one is chosen).
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// A port free a moment ago on 127.0.0.1 (the CLI never binds it without a daemon).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Data rows of a CSV file (lines after the header).
pub fn data_rows(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines().skip(1).filter(|l| !l.is_empty()).count() as u64
}

/// Bytes under `dir`, recursively (0 if it does not exist yet).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn is_hex_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

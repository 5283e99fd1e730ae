//! What the integration tests share, one module per kind of harness:
//!
//! - [`cli`]: the `accord` binary as an operator runs it: one finished run kept whole for
//!   failure messages (`Run`), a temporary site with an example PKI and node configs (`Site`),
//!   and `accord serve` child processes (`Member`, `Daemon`);
//! - [`cluster`]: real nodes in this process (`TestCluster`, `start_cluster`), synthetic records
//!   and feed heads;
//! - [`governance`]: every node's consortium version, digests and pending proposals;
//! - [`http`]: one plain HTTP GET (metrics, dashboard, SDMX), streamed answers joined;
//! - [`hostile`]: a cluster with a victim and a member that turns hostile, clients that
//!   misbehave at the TLS layer, entries signed by hand, and a malicious member's `Exchange`;
//! - [`logs`]: the one tracing subscriber of the test binary, and the lines a test's own nodes
//!   logged.
//!
//! And here: [`eventually`] (async) and [`eventually_blocking`], which wait for a condition
//! instead of sleeping for a guessed time.
//!
//! Every test runs in this one process, on threads side by side: nothing here changes what the
//! process shares (working directory, environment, resource limits), except
//! [`raise_file_limit`], which only ever raises a limit; a child process gets its own settings
//! through its `Command`.

pub mod cli;
pub mod cluster;
pub mod governance;
pub mod hostile;
pub mod http;
pub mod logs;

use std::time::{Duration, Instant};

use accord::date::Date;

/// How long anything that should happen "soon" (convergence, a daemon starting or stopping, a
/// log line) may take: generous, for a loaded two-core machine running a debug build and other
/// tests beside it.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How often [`eventually`] and [`eventually_blocking`] check again.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` every 100 ms until it returns `Ok`, and returns its value; panics after
/// [`DEADLINE`] with `what` and the last state the check reported.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let waiting = Waiting::start(what);
    loop {
        match waiting.judge(check()) {
            Some(value) => return value,
            None => tokio::time::sleep(POLL).await,
        }
    }
}

/// [`eventually`] for a test without a runtime: sleeps the thread between checks.
pub fn eventually_blocking<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let waiting = Waiting::start(what);
    loop {
        match waiting.judge(check()) {
            Some(value) => return value,
            None => std::thread::sleep(POLL),
        }
    }
}

/// The polling both kinds of `eventually` share: when to stop, and how to fail.
struct Waiting<'a> {
    what: &'a str,
    started: Instant,
}

impl<'a> Waiting<'a> {
    fn start(what: &'a str) -> Waiting<'a> {
        Waiting {
            what,
            started: Instant::now(),
        }
    }

    /// The value once the check passed; `None` to check again; a panic past the deadline.
    fn judge<T>(&self, outcome: Result<T, String>) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(last) if self.started.elapsed() >= DEADLINE => {
                panic!("{}: not within {DEADLINE:?}; last observed:\n{last}", self.what)
            }
            Err(_) => None,
        }
    }
}

/// Last calendar year: complete, and never in the future for record validation.
pub fn last_year() -> i32 {
    Date::today().year - 1
}

/// Raises this process's soft limit on open files to its hard limit, for tests that hold many
/// sockets at once (floods, strangers). The limit is the whole test binary's, so it is only
/// ever raised: a test never lowers what another one relies on. (A node under a low limit runs
/// as a child process, limited there.)
pub fn raise_file_limit() {
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit are given a valid rlimit on this thread's stack.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0, "getrlimit");
            if limit.rlim_cur < limit.rlim_max {
                limit.rlim_cur = limit.rlim_max;
                assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0, "setrlimit");
            }
        }
    });
}

/// The body of `GET path` on a loopback HTTP listener (a dashboard), read to its end.
pub fn http_body(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the answer");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(response)
}

/// `status` of a node once its view covers every entry accepted: a node run as a daemon (as
/// the in-process clusters run theirs) reports the latest view it computed, which lags for a
/// moment behind entries just accepted.
pub trait SettledStatus {
    fn settled_status(&self) -> Result<accord::node::Status, String>;
}

impl SettledStatus for accord::node::Node {
    fn settled_status(&self) -> Result<accord::node::Status, String> {
        self.settle().map_err(|e| e.to_string())?;
        self.status().map_err(|e| e.to_string())
    }
}

//! Attacks on a node's listeners and on the operator's revocation step, against a real
//! `accord serve` child process: half-sent HTTP requests flooding the dashboard and metrics
//! ports of a node under a 1,024 file limit (the gRPC listener must keep answering members and
//! the half-open sockets must be closed), and OPERATIONS.md's revocation steps followed
//! literally (`accord certs revoke`, the CRL listed under `[tls] crls`, SIGHUP): the revoked
//! member's open connection is closed and its new ones refused, an honest member is still
//! served, and a reload that cannot be applied is refused by name with the settings in use kept.
//! And the gRPC listener itself run out of descriptors: it pauses and goes on accepting.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord::tls::TlsFiles;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::support::cli::*;
use crate::support::hostile::{member, member_files};
use crate::support::{eventually_blocking, raise_file_limit};

// ------------------------------------------------------------------ a member's gRPC calls

/// The TLS files `accord certs` issued to `code` in the site's PKI.
fn files(site: &Site, code: &str) -> TlsFiles {
    member_files(&site.path("pki"), member(code))
}

/// A gRPC health check by member `code` against DEU on `port`, on a new connection.
async fn health(site: &Site, code: &str, port: u16) -> Result<(), String> {
    let config = accord::tls::client_config(&files(site, code), member("DEU")).map_err(|e| e.to_string())?;
    let channel = accord::tls::channel(
        &format!("https://127.0.0.1:{port}"),
        Some("deu.accord"),
        config,
        member("DEU"),
    )
    .map_err(|e| e.to_string())?;
    check(&mut HealthClient::new(channel)).await
}

async fn check(client: &mut HealthClient<Channel>) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(10), client.check(HealthCheckRequest::default())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(format!("{status:?}")),
        Err(_) => Err("no answer within 10 s".into()),
    }
}

/// A health client of member `code` bound to one TLS connection to DEU on `port`: it never
/// dials again, so once the node closes that connection every call fails.
async fn one_connection(site: &Site, code: &str, port: u16) -> HealthClient<Channel> {
    let config = accord::tls::client_config(&files(site, code), member("DEU")).expect("client config");
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("deu.accord").expect("name");
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let only = Arc::new(Mutex::new(Some(TokioIo::new(tls))));
    let connector = tower::service_fn(move |_: Uri| {
        let stream = only.lock().unwrap_or_else(|p| p.into_inner()).take();
        async move { stream.ok_or_else(|| std::io::Error::other("this client dials only once")) }
    });
    let channel = Endpoint::from_static("http://deu.accord")
        .connect_with_connector(connector)
        .await
        .expect("channel over the one connection");
    HealthClient::new(channel)
}

// ------------------------------------------------------------------ the node under test

/// DEU's config in a site with a PKI for `countries`, with `extra` lines at its top; returns
/// the member and its exchange port. Its one peer, FRA, is never started.
fn deu(site: &Site, extra: &str) -> (Member, u16) {
    let ports = free_ports(3);
    let deu = site.member("DEU", (ports[0], ports[1]), "FRA", ports[2]);
    let text = site.read(&deu.config);
    site.write(&deu.config, &format!("{extra}{text}"));
    (deu, ports[0])
}

fn wait_started(daemon: &mut Daemon) {
    eventually_blocking("DEU started", || {
        if !daemon.running() {
            panic!("DEU exited\n{}", daemon.log());
        }
        let log = daemon.log();
        if log.contains("node started") {
            Ok(())
        } else {
            Err(log)
        }
    });
}

/// Waits until the daemon's log holds `needle` more than `before` times.
fn wait_logged(daemon: &Daemon, needle: &str, before: usize) -> String {
    eventually_blocking(&format!("the log says {needle:?}"), || {
        let log = daemon.log();
        if log.matches(needle).count() > before {
            Ok(log)
        } else {
            Err(log)
        }
    })
}

// ------------------------------------------------------------------ file limits and floods

/// Lowers the child's soft and hard file limit to `limit` before it runs `accord serve`.
fn limit_files(command: &mut std::process::Command, limit: u64) {
    // SAFETY: between fork and exec only `setrlimit`, which is async-signal-safe, is called.
    unsafe {
        command.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The soft limit on open files of process `pid`.
fn soft_file_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a file limit");
    line.split_whitespace().nth(3).expect("soft limit").to_string()
}

/// `count` connections to `port`, each with a request head that never ends (no blank line);
/// with `mute`, every other connection sends nothing at all.
fn half_sent(port: u16, count: usize, mute: bool) -> Vec<TcpStream> {
    (0..count)
        .map(|i| {
            let mut s =
                TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connection {i} to {port}: {e}"));
            if !(mute && i % 2 == 1) {
                // The node may have answered 503 and closed already; the write may then fail.
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            }
            s
        })
        .collect()
}

/// How the node ended a flood's connections.
#[derive(Debug, Default)]
struct Closed {
    /// Answered 503 (over the cap) before closing.
    busy: usize,
    /// Closed without an answer (the header-read deadline).
    silent: usize,
    /// Still open at the deadline.
    open: usize,
    /// When, after the flood began, the last closing was seen.
    last: Duration,
}

/// Reads every socket to its end (EOF or reset) until `deadline`.
fn wait_closed(sockets: Vec<TcpStream>, began: Instant, deadline: Instant) -> Closed {
    let mut closed = Closed::default();
    for mut s in sockets {
        let mut seen = Vec::new();
        let ended = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            s.set_read_timeout(Some(left)).expect("read timeout");
            let mut buf = [0; 512];
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break false
                }
                Err(_) => break true,
            }
        };
        if !ended {
            closed.open += 1;
            continue;
        }
        closed.last = closed.last.max(began.elapsed());
        if seen.starts_with(b"HTTP/1.1 503") {
            closed.busy += 1;
        } else {
            closed.silent += 1;
        }
    }
    closed
}

/// Which listener a flood goes to.
#[derive(Debug, Clone, Copy)]
enum Port {
    Dashboard,
    Metrics,
}

/// Floods a listener of a DEU node under a 1,024 file limit with `count` half-sent requests;
/// a member's health check must answer within 1 s meanwhile, and every socket be closed within
/// 30 s.
fn flood(which: Port, count: usize) {
    raise_file_limit();
    let site = Site::new("DEU,FRA");
    let dashboard = free_port();
    let (deu, grpc) = deu(&site, &format!("dashboard_listen = \"127.0.0.1:{dashboard}\"\n"));
    let port = match which {
        Port::Dashboard => dashboard,
        Port::Metrics => deu.metrics_port.expect("DEU serves metrics"),
    };
    let mut daemon = Daemon::start_with(site.dir.path(), &deu, |c| limit_files(c, 1024));
    wait_started(&mut daemon);
    assert_eq!(soft_file_limit(daemon.pid()), "1024");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    eventually_blocking("FRA's health check answers before the flood", || {
        runtime.block_on(health(&site, "FRA", grpc))
    });

    let began = Instant::now();
    // On the metrics port, half the connections never send a byte: they too must be closed.
    let sockets = half_sent(port, count, matches!(which, Port::Metrics));
    let connected = began.elapsed();
    let asked = Instant::now();
    let answer = runtime.block_on(health(&site, "FRA", grpc));
    let took = asked.elapsed();
    let closed = wait_closed(sockets, began, began + Duration::from_secs(30));
    eprintln!(
        "{count} half-sent requests on the {which:?} port: connected in {connected:?}; health check {answer:?} \
         in {took:?}; {closed:?}"
    );
    assert_eq!(answer, Ok(()), "{}", daemon.log());
    assert!(
        took < Duration::from_secs(1),
        "the health check took {took:?}\n{}",
        daemon.log()
    );
    assert_eq!(
        closed.open,
        0,
        "sockets still open after 30 s: {closed:?}\n{}",
        daemon.log()
    );
    assert!(daemon.running(), "{}", daemon.log());
    assert!(!daemon.log().contains("Too many open files"), "{}", daemon.log());
}

/// SPEC §13/§14, issue 26: 1,100 half-sent requests on the dashboard port of a node limited to
/// 1,024 files; a member's health check answers within 1 s and the node closes them all
/// within 30 s.
#[test]
fn half_sent_requests_on_the_dashboard_port_neither_starve_members_nor_stay_open() {
    flood(Port::Dashboard, 1100);
}

/// The same on the metrics port, with fewer sockets, half of which send nothing at all.
#[test]
fn half_sent_requests_on_the_metrics_port_neither_starve_members_nor_stay_open() {
    flood(Port::Metrics, 300);
}

/// Strangers from 24 loopback addresses hold 16 TLS handshakes each open on the gRPC port of a
/// node limited to 160 files: more than it has descriptors, so `accept` fails (`EMFILE`). The
/// listener pauses and retries instead of ending: once the strangers leave, a member's health
/// check is answered again, by the same process.
#[test]
fn the_grpc_listener_outlives_running_out_of_descriptors() {
    raise_file_limit();
    let site = Site::new("DEU,FRA");
    let (deu, grpc) = deu(&site, "");
    let mut daemon = Daemon::start_with(site.dir.path(), &deu, |c| limit_files(c, 160));
    wait_started(&mut daemon);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    eventually_blocking("FRA's health check answers", || {
        runtime.block_on(health(&site, "FRA", grpc))
    });

    let strangers = runtime.block_on(async {
        let mut sockets = Vec::new();
        for source in 0..24u8 {
            for _ in 0..16 {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket
                    .bind(std::net::SocketAddr::from(([127, 0, 0, 2 + source], 0)))
                    .expect("bind a loopback source");
                sockets.push(socket.connect(([127, 0, 0, 1], grpc).into()).await.expect("connect"));
            }
        }
        sockets
    });
    wait_logged(&daemon, "accepting a TCP connection failed", 0);
    drop(strangers);
    eventually_blocking("FRA's health check answers after the strangers left", || {
        runtime.block_on(health(&site, "FRA", grpc))
    });
    wait_logged(&daemon, "accepting TCP connections again", 0);
    assert!(daemon.running(), "{}", daemon.log());
    assert_eq!(daemon.log().matches("node started").count(), 1, "never restarted");
}

// ------------------------------------------------------------------ revocation

/// OPERATIONS.md "Revocation", followed literally against a running `accord serve`: FRA and
/// ITA hold open connections to DEU; `accord certs revoke --dir pki --country FRA` writes
/// `pki/crl.pem`, DEU's `node.toml` lists it under `[tls] crls`, and SIGHUP. FRA's open
/// connection is closed within 5 s and its new connections refused; ITA is still served, on
/// its open connection and on new ones. Then reloads that cannot be applied (node.toml broken,
/// a listed CRL missing) are refused by name and the CRL stays in force; a change outside
/// `[tls]` is named as needing a restart while the `[tls]` change beside it is applied.
#[test]
fn revocation_as_operations_md_gives_it_closes_the_revoked_members_connection() {
    let site = Site::new("DEU,FRA,ITA");
    let (deu, grpc) = deu(&site, "");
    let mut daemon = site.start(&deu);
    wait_started(&mut daemon);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    eventually_blocking("ITA's health check answers", || {
        runtime.block_on(health(&site, "ITA", grpc))
    });
    let mut fra_open = runtime.block_on(one_connection(&site, "FRA", grpc));
    let mut ita_open = runtime.block_on(one_connection(&site, "ITA", grpc));
    // Each client is served again on its one connection, as long as nothing changes.
    for _ in 0..2 {
        assert_eq!(runtime.block_on(check(&mut fra_open)), Ok(()));
        assert_eq!(runtime.block_on(check(&mut ita_open)), Ok(()));
    }

    // The steps.
    site.ok("certs revoke --dir pki --country FRA");
    let good = site.read(&deu.config).replace("crls = []", "crls = [\"pki/crl.pem\"]");
    site.write(&deu.config, &good);
    daemon.hangup();
    let hangup = Instant::now();

    // FRA's open connection is closed: calls on it fail (it never dials again).
    let (closed_after, error) = runtime.block_on(async {
        loop {
            if let Err(error) = check(&mut fra_open).await {
                return (hangup.elapsed(), error);
            }
            assert!(
                hangup.elapsed() < Duration::from_secs(5),
                "FRA's open connection still served 5 s after SIGHUP\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    eprintln!("FRA's open connection closed {closed_after:?} after SIGHUP: {error}");
    let log = wait_logged(&daemon, "crls: added pki/crl.pem", 0);
    assert!(log.contains("SIGHUP: reloaded [tls] from deu.toml"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("closing an established connection") && l.contains("FRA")),
        "{log}"
    );
    let refused = runtime.block_on(health(&site, "FRA", grpc));
    assert!(refused.is_err(), "FRA's new connection was served\n{}", daemon.log());
    assert_eq!(runtime.block_on(check(&mut ita_open)), Ok(()), "ITA's open connection");
    assert_eq!(
        runtime.block_on(health(&site, "ITA", grpc)),
        Ok(()),
        "ITA's new connection"
    );

    // node.toml broken: refused by name, the CRL stays in force.
    let refusal = "SIGHUP: TLS files not reloaded";
    site.write(&deu.config, &format!("{good}\n[tls\n"));
    daemon.hangup();
    let log = wait_logged(&daemon, refusal, 0);
    assert!(
        log.lines().any(|l| l.contains(refusal) && l.contains("deu.toml")),
        "{log}"
    );
    assert!(
        runtime.block_on(health(&site, "FRA", grpc)).is_err(),
        "FRA let in after a refused reload"
    );
    assert_eq!(runtime.block_on(health(&site, "ITA", grpc)), Ok(()));

    // A listed CRL missing: refused naming the key, the CRL in use stays.
    site.write(
        &deu.config,
        &good.replace(
            "crls = [\"pki/crl.pem\"]",
            "crls = [\"pki/crl.pem\", \"pki/missing.pem\"]",
        ),
    );
    daemon.hangup();
    let log = wait_logged(&daemon, refusal, 1);
    assert!(
        log.lines()
            .any(|l| l.contains(refusal) && l.contains("tls.crls[1]") && l.contains("pki/missing.pem")),
        "{log}"
    );
    assert!(
        runtime.block_on(health(&site, "FRA", grpc)).is_err(),
        "FRA let in after a refused reload"
    );

    // A change outside [tls] is named, and the [tls] change beside it applied: the CRL removed
    // lets FRA in again.
    site.write(
        &deu.config,
        &good
            .replace("crls = [\"pki/crl.pem\"]", "crls = []")
            .replace("interval_secs = 2", "interval_secs = 5"),
    );
    daemon.hangup();
    let log = wait_logged(&daemon, "crls: removed pki/crl.pem", 0);
    assert!(
        log.contains("SIGHUP: sync changed in deu.toml but takes effect only on restart"),
        "{log}"
    );
    assert_eq!(
        runtime.block_on(health(&site, "FRA", grpc)),
        Ok(()),
        "FRA after the CRL is removed"
    );
    assert!(daemon.running());
    assert_eq!(daemon.log().matches("node started").count(), 1, "never restarted");
    for line in daemon
        .log()
        .lines()
        .filter(|l| l.contains("SIGHUP") || l.contains("closing an"))
    {
        eprintln!("{line}");
    }
}

//! The `accord` binary with running daemons: two `accord serve` processes (DEU and FRA, peered
//! over mutual TLS on 127.0.0.1) driven by the admin commands through their admin sockets, then
//! stopped with SIGTERM; and `accord demo`. These tests pin what an operator relies on (SPEC §6,
//! §9): the admin socket exists with mode 0600 while a node runs and is gone after it stops,
//! admin commands reach the running node, a publication reaches the peer, SIGTERM is a clean exit
//! with everything persisted, `/metrics` counts what came, and the demo's nodes agree. On failure a test prints the command,
//! its exit status, stdout and stderr, and the daemons' logs.

use std::path::Path;

use crate::support::cli::{is_hex_digest, Daemon, Run, Site};
use crate::support::{eventually_blocking, last_year};

/// The feeds of a `status --format json` as (publisher, seq, digest).
fn feeds(status: &serde_json::Value) -> Vec<(String, u64, String)> {
    status["feeds"]
        .as_array()
        .unwrap_or_else(|| panic!("status has no feeds array: {status}"))
        .iter()
        .map(|f| {
            (
                f["publisher"].as_str().unwrap_or_default().to_string(),
                f["seq"].as_u64().unwrap_or_default(),
                f["digest"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn total_records(status: &serde_json::Value) -> u64 {
    let records = status["records"].as_object().expect("records object");
    records.values().map(|v| v.as_u64().expect("a count")).sum()
}

#[cfg(unix)]
fn socket_mode(path: &Path) -> u32 {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(meta.file_type().is_socket(), "{} is a Unix socket", path.display());
    meta.permissions().mode() & 0o777
}

// ---------------------------------------------------------------- tests

#[test]
fn two_daemons_serve_admin_commands_exchange_and_stop_cleanly_on_sigterm() {
    let (site, [deu, fra]) = Site::two_members(5);
    let mut deu_daemon = site.start(&deu);
    let mut fra_daemon = site.start(&fra);
    let logs = |d: &Daemon, f: &Daemon| format!("{}\n{}", d.log(), f.log());

    for member in [&deu, &fra] {
        eventually_blocking(&format!("{} admin socket appears", member.code), || {
            if member.socket().exists() {
                Ok(())
            } else {
                Err(logs(&deu_daemon, &fra_daemon))
            }
        });
        // Through the socket: a direct open would say "not running" (or fail on the store lock).
        let status = site.ok(&format!("status --config {}", member.config));
        assert!(
            !status.stdout().contains("not running"),
            "status reached the running node\n{}",
            status.details()
        );
        #[cfg(unix)]
        assert_eq!(
            socket_mode(&member.socket()),
            0o600,
            "mode of {}",
            member.socket().display()
        );
    }

    let rows = std::fs::read_to_string(site.dir.path().join("records/deu.csv"))
        .expect("deu.csv")
        .lines()
        .skip(1)
        .count() as u64;
    let ingest = site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    assert!(
        ingest.stdout().contains(&format!("stored {rows} records")),
        "ingest through the socket stores every row\n{}",
        ingest.details()
    );
    let year = last_year();
    let publish = site.ok(&format!("publish --config {} --cube flows --period {year}", deu.config));
    let digest = publish
        .stdout()
        .split_whitespace()
        .find(|w| is_hex_digest(w))
        .unwrap_or_else(|| panic!("publish prints the entry digest\n{}", publish.details()))
        .to_string();
    assert!(
        publish.stdout().contains("as seq 1") && !publish.stdout().contains("no node running"),
        "the running node published seq 1\n{}",
        publish.details()
    );

    let deu_status = site.status(&deu.config);
    assert_eq!(total_records(&deu_status), rows, "records by type: {deu_status}");
    let expected_feed = vec![("DEU".to_string(), 1, digest.clone())];
    assert_eq!(feeds(&deu_status), expected_feed, "DEU's feed after publishing");

    // The announcement (or the sync loop) brings DEU's entry to FRA.
    let fra_status = eventually_blocking("FRA holds DEU's feed", || {
        let status = site.status(&fra.config);
        if feeds(&status) == expected_feed {
            Ok(status)
        } else {
            Err(format!("FRA status: {status}\n{}", logs(&deu_daemon, &fra_daemon)))
        }
    });
    assert_eq!(
        fra_status["view_digest"], deu_status["view_digest"],
        "the same accepted datasets give the same view on both nodes"
    );
    assert_eq!(total_records(&fra_status), 0, "records never leave DEU: {fra_status}");

    for (member, peer) in [(&deu, "FRA"), (&fra, "DEU")] {
        let sync = site.ok(&format!("sync --config {}", member.config));
        let lines: Vec<String> = sync.stdout().lines().map(str::to_owned).collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with(&format!("{peer}: ")) && lines[0].contains("new entries"),
            "one line for the one peer\n{}",
            sync.details()
        );
    }
    // Prometheus text on metrics_listen: FRA accepted DEU's entry, and DEU is up.
    assert!(fra.metric("accord_datasets_accepted_total") >= 1.0);
    assert!(fra.metric("accord_sync_rounds_total") >= 1.0);
    assert_eq!(fra.metric("accord_peers_up"), 1.0);
    assert_eq!(
        deu.metric("accord_datasets_accepted_total"),
        0.0,
        "FRA published nothing"
    );
    assert_eq!(fra.http_get("/other").0, "HTTP/1.1 404 Not Found");

    let check = site.ok(&format!("check --config {}", deu.config));
    assert!(
        check.stdout().contains(&format!("agree with {rows} records")),
        "check through the socket\n{}",
        check.details()
    );

    // SPEC §12 through the CLI: once both attest the view, `certify` on FRA (through its socket)
    // writes a bundle that `verify` checks with the consortium file alone.
    eventually_blocking("FRA's status names DEU and FRA in attested_by", || {
        let status = site.status(&fra.config);
        if status["attested_by"] == serde_json::json!(["DEU", "FRA"]) {
            Ok(())
        } else {
            Err(format!("FRA status: {status}"))
        }
    });
    let certify = site.ok(&format!("certify --config {} --out certified", fra.config));
    assert!(
        certify.stdout().contains("attested by 2 (DEU, FRA)"),
        "{}",
        certify.details()
    );
    let verify = site.ok("verify --consortium pki/consortium.toml certified");
    assert!(
        verify.stdout().contains("attested by 2 members: DEU at ")
            && verify.stdout().contains("entry DEU seq 1 flows")
            && verify.stdout().contains("witnessed by FRA at "),
        "{}",
        verify.details()
    );
    let again = site.run(&format!("certify --config {} --out certified", fra.config));
    assert!(
        !again.output.status.success() && again.stderr().contains("not empty"),
        "certify never writes into a bundle already there\n{}",
        again.details()
    );

    for daemon in [&mut deu_daemon, &mut fra_daemon] {
        let status = daemon.terminate();
        assert_eq!(
            status.code(),
            Some(0),
            "{} exits 0 on SIGTERM\n{}",
            daemon.code,
            daemon.log()
        );
    }
    for member in [&deu, &fra] {
        assert!(
            !member.socket().exists(),
            "{} removed its admin socket on shutdown",
            member.code
        );
    }

    // No daemon: status opens the store directly and finds everything persisted.
    let direct = site.ok(&format!("status --config {}", deu.config));
    assert!(
        direct.stdout().contains("not running"),
        "status opened the store directly\n{}",
        direct.details()
    );
    let after = site.status(&deu.config);
    assert_eq!(total_records(&after), rows, "records persisted: {after}");
    assert_eq!(feeds(&after), expected_feed, "DEU's feed persisted");
    assert_eq!(
        after["view_digest"], deu_status["view_digest"],
        "same view after restart"
    );
    assert_eq!(feeds(&site.status(&fra.config)), expected_feed, "FRA kept DEU's entry");
}

#[test]
fn demo_runs_three_nodes_that_agree_on_the_view() {
    let site = Site::empty();
    let run = site.run("demo --records 3000");
    assert!(run.output.status.success(), "demo exits 0\n{}", run.details());
    let out = run.stdout();
    assert!(
        out.contains("All 3 nodes agree"),
        "demo says the nodes agree\n{}",
        run.details()
    );
    let digests: Vec<(&str, &str)> = out
        .lines()
        .skip_while(|l| !l.starts_with("View digest per node"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(code), Some(digest), None) if is_hex_digest(digest) => Some((code, digest)),
                _ => None,
            }
        })
        .collect();
    let codes: Vec<&str> = digests.iter().map(|d| d.0).collect();
    assert_eq!(codes, ["DEU", "FRA", "ITA"], "one digest per node\n{}", run.details());
    assert!(
        digests.iter().all(|d| d.1 == digests[0].1),
        "all digests equal\n{}",
        run.details()
    );
}

/// Eight `accord publish` at once through a running node: each reads the feed head and appends
/// under one lock, so all succeed with consecutive seqs and the node never forks its own feed.
#[test]
fn parallel_publishes_through_a_running_node_get_consecutive_seqs() {
    let (site, [deu, _fra]) = Site::two_members(5);
    let daemon = site.start(&deu);
    eventually_blocking("DEU admin socket appears", || {
        if deu.socket().exists() {
            Ok(())
        } else {
            Err(daemon.log())
        }
    });
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    let year = last_year();
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..=8)
            .map(|month| {
                let line = format!(
                    "publish --config {} --cube flows --period {year}-{month:02}",
                    deu.config
                );
                let site = &site;
                scope.spawn(move || site.run(&line))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("publish thread")).collect()
    });
    let mut seqs = Vec::new();
    for run in &runs {
        assert!(
            run.output.status.success(),
            "every publish succeeds\n{}\n{}",
            run.details(),
            daemon.log()
        );
        let seq = run
            .stdout()
            .split_once(" as seq ")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("publish names its seq\n{}", run.details()));
        seqs.push(seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>(), "consecutive seqs, none repeated");
    let status = site.status(&deu.config);
    assert_eq!(
        feeds(&status)
            .iter()
            .map(|(p, s, _)| (p.as_str(), *s))
            .collect::<Vec<_>>(),
        vec![("DEU", 8)],
        "{status}"
    );
    assert_eq!(
        status["forks"],
        serde_json::json!([]),
        "no fork of its own feed: {status}"
    );
    assert_eq!(status["equivocating"], serde_json::json!([]), "{status}");
}

/// `accord certs revoke` (SPEC §14) through to the exchange: FRA's certificate revoked in
/// `pki/crl.pem`, which DEU lists under `[tls] crls`; FRA's pulls from DEU are refused at the
/// TLS handshake, and FRA's own node refuses to start with the CRL that revokes it.
#[test]
fn a_member_revoked_with_certs_revoke_is_refused_by_a_node_that_loads_the_crl() {
    let (site, [deu, fra]) = Site::two_members(17);
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    let year = last_year();
    site.ok(&format!("publish --config {} --cube flows --period {year}", deu.config));
    site.ok("certs revoke --dir pki --country FRA")
        .stdout_has("revoked FRA (pki/fra.pem) in pki/crl.pem");
    let text = site.read(&deu.config).replace("crls = []", "crls = [\"pki/crl.pem\"]");
    site.write(&deu.config, &text);

    let d = site.start(&deu);
    eventually_blocking("DEU daemon started", || {
        if deu.socket().exists() {
            Ok(())
        } else {
            Err(d.log())
        }
    });
    let sync = site.run(&format!("sync --config {}", fra.config));
    let out = format!("{}{}", sync.stdout(), sync.stderr());
    assert!(!sync.output.status.success(), "FRA's pull must fail:\n{out}");
    assert!(out.contains("DEU"), "{out}");
    eventually_blocking("DEU logs the refusal", || {
        let log = d.log();
        if log.contains("Revoked") || log.contains("revoked") {
            Ok(())
        } else {
            Err(log)
        }
    });
    assert!(
        site.status(&fra.config)["feeds"]
            .as_array()
            .is_some_and(|f| f.is_empty()),
        "nothing reached FRA"
    );

    // FRA's own node, given the CRL, refuses to start, naming it.
    let text = site.read(&fra.config).replace("crls = []", "crls = [\"pki/crl.pem\"]");
    site.write(&fra.config, &text);
    site.fails(&format!("serve --config {}", fra.config))
        .reason_has(&["revoked", "pki/crl.pem"]);
}

/// `/healthz` and `/ready` on `metrics_listen` (SPEC §14): ready once the node and a peer are
/// up; a CRL past its next update makes it 503 with that reason, while `/healthz` still answers;
/// so does a TLS certificate on disk that has expired.
#[test]
fn ready_says_why_not_when_a_crl_is_out_of_date_or_the_certificate_has_expired() {
    let (site, [deu, fra]) = Site::two_members(19);
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    site.ok(&format!(
        "publish --config {} --cube flows --period {}",
        deu.config,
        last_year()
    ));
    let mut d = site.start(&deu);
    let f = site.start(&fra);
    eventually_blocking("both daemons started", || {
        if d.log().contains("node started") && f.log().contains("node started") {
            Ok(())
        } else {
            Err(format!("{}\n{}", d.log(), f.log()))
        }
    });
    assert_eq!(
        deu.http_get("/healthz"),
        ("HTTP/1.1 200 OK".to_string(), "alive\n".to_string())
    );
    eventually_blocking("DEU ready", || match deu.http_get("/ready") {
        (status, body) if status == "HTTP/1.1 200 OK" && body == "ready\n" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    // The gauges of SPEC §14, labelled by what the consortium names.
    let (_, metrics) = deu.http_get("/metrics");
    let gauge = |line: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in /metrics:\n{metrics}"))
    };
    let now = accord::date::unix_now();
    assert!(gauge("accord_certificate_expiry_timestamp_seconds{certificate=\"tls\"}") > now);
    assert!(gauge("accord_certificate_expiry_timestamp_seconds{certificate=\"ca\"}") > now);
    assert!(gauge("accord_certificate_expiry_timestamp_seconds{certificate=\"signing\"}") > now);
    assert_eq!(gauge("accord_feed_head_seq{publisher=\"DEU\"}"), 1);
    assert!(gauge("accord_peer_last_success_timestamp_seconds{peer=\"FRA\"}") > now - 60);
    d.terminate();

    // A CRL from the consortium CA whose next update is one second after it was made.
    openssl_crl(&site, "1", "pki/stale-crl.pem");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let text = site
        .read(&deu.config)
        .replace("crls = []", "crls = [\"pki/stale-crl.pem\"]");
    site.write(&deu.config, &text);
    let d = site.start(&deu);
    eventually_blocking("DEU started again", || {
        if deu.socket().exists() {
            Ok(())
        } else {
            Err(d.log())
        }
    });
    eventually_blocking("DEU not ready, naming the CRL", || match deu.http_get("/ready") {
        (status, body)
            if status == "HTTP/1.1 503 Service Unavailable"
                && body.contains("not ready: CRL pki/stale-crl.pem is past its next update") =>
        {
            Ok(())
        }
        other => Err(format!("{other:?}")),
    });
    assert_eq!(deu.http_get("/healthz").0, "HTTP/1.1 200 OK");
    // And the stale CRL is enforced: DEU lets no one in under it.
    let refused = site.run(&format!("sync --config {}", fra.config));
    assert!(!refused.output.status.success(), "{}", refused.details());

    // DEU's certificate, reissued by the CA with the same names and key but already past its
    // end (openssl: valid for 0 days), replaces the one on disk.
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(site.dir.path())
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "x509",
        "-x509toreq",
        "-in",
        "pki/deu.pem",
        "-key",
        "pki/deu.key",
        "-copy_extensions",
        "copy",
        "-out",
        "deu.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "deu.csr",
        "-CA",
        "pki/ca.pem",
        "-CAkey",
        "pki/ca.key",
        "-copy_extensions",
        "copy",
        "-days",
        "0",
        "-out",
        "pki/deu-expired.pem",
    ]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    std::fs::rename(site.path("pki/deu-expired.pem"), site.path("pki/deu.pem")).expect("replace the certificate");
    eventually_blocking("DEU not ready, naming its expired certificate", || {
        match deu.http_get("/ready") {
            (status, body)
                if status == "HTTP/1.1 503 Service Unavailable"
                    && body.contains("not ready: TLS certificate pki/deu.pem expired at") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(deu.http_get("/healthz").0, "HTTP/1.1 200 OK");
}

/// SPEC §14: `status` warns 30 days before the TLS certificate or the signing key expires.
#[test]
fn status_warns_of_certificates_and_keys_that_expire_within_30_days() {
    let site = Site::empty();
    site.ok("certs --out pki --countries DEU,FRA --days 10");
    let config = site.node_config("DEU", "deu");
    let text = site.ok(&format!("status --config {config}")).stdout();
    assert!(
        text.contains("WARNING: TLS certificate pki/deu.pem expires at"),
        "{text}"
    );
    assert!(
        text.contains("WARNING: signing key pki/deu.sign.pk8 expires at"),
        "{text}"
    );
    assert!(text.contains("renew it"), "{text}");
    let json = site.status(&config);
    assert!(json["expiring"].as_array().is_some_and(|e| e.len() >= 2), "{json}");

    let site = Site::new("DEU,FRA");
    let config = site.node_config("DEU", "deu");
    assert!(!site
        .ok(&format!("status --config {config}"))
        .stdout()
        .contains("WARNING"));
}

/// An empty CRL from the site's CA, written to `out`, valid for `seconds`.
fn openssl_crl(site: &Site, seconds: &str, out: &str) {
    let gen = site.path("crlgen");
    std::fs::create_dir_all(&gen).expect("crlgen dir");
    std::fs::write(gen.join("index.txt"), "").expect("index");
    std::fs::write(gen.join("crlnumber"), "01\n").expect("crlnumber");
    std::fs::write(
        gen.join("ca.cnf"),
        "[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = crlgen/index.txt\ncrlnumber = crlgen/crlnumber\ndefault_md = sha256\n",
    )
    .expect("ca.cnf");
    let openssl = std::process::Command::new("openssl")
        .args(["ca", "-config", "crlgen/ca.cnf", "-gencrl", "-crlsec", seconds])
        .args(["-keyfile", "pki/ca.key", "-cert", "pki/ca.pem", "-out", out])
        .current_dir(site.dir.path())
        .output()
        .expect("run openssl");
    assert!(openssl.status.success(), "{}", String::from_utf8_lossy(&openssl.stderr));
}

/// SPEC §14 revocation without a restart: DEU runs with a CRL that revokes nobody; FRA pulls
/// from it; `certs revoke` adds FRA to the CRL and SIGHUP makes the same DEU process reload
/// it; FRA's next pull is refused.
#[test]
fn a_member_revoked_and_sighup_is_refused_without_a_restart() {
    let (site, [deu, fra]) = Site::two_members(23);
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    site.ok(&format!(
        "publish --config {} --cube flows --period {}",
        deu.config,
        last_year()
    ));
    openssl_crl(&site, "2592000", "pki/crl.pem");
    let text = site.read(&deu.config).replace("crls = []", "crls = [\"pki/crl.pem\"]");
    site.write(&deu.config, &text);
    let mut d = site.start(&deu);
    eventually_blocking("DEU started", || {
        let log = d.log();
        if log.contains("node started") {
            Ok(())
        } else {
            Err(log)
        }
    });
    site.ok(&format!("sync --config {}", fra.config));
    assert_eq!(site.status(&fra.config)["feeds"].as_array().map(Vec::len), Some(1));

    site.ok("certs revoke --dir pki --country FRA");
    d.hangup();
    eventually_blocking("DEU reloads its TLS files", || {
        let log = d.log();
        if log.contains("SIGHUP: reloaded") {
            Ok(())
        } else {
            Err(log)
        }
    });
    let refused = site.run(&format!("sync --config {}", fra.config));
    assert!(!refused.output.status.success(), "{}", refused.details());
    assert!(d.running(), "the same DEU process, never restarted");
    assert_eq!(d.log().matches("node started").count(), 1);

    // A CRL that does not load is refused on SIGHUP; the one in use stays.
    site.write("pki/crl.pem", "not a CRL\n");
    d.hangup();
    eventually_blocking("DEU keeps its TLS files", || {
        let log = d.log();
        if log.contains("TLS files not reloaded") {
            Ok(())
        } else {
            Err(log)
        }
    });
    assert!(!site
        .run(&format!("sync --config {}", fra.config))
        .output
        .status
        .success());
}

//! Prometheus text metrics on `metrics_listen` `/metrics`: datasets accepted and rejected by
//! reason, sync rounds and their duration, peers up. A minimal HTTP/1 responder: one request
//! per connection, no dependencies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Node;
use crate::exchange::sync::{PeerSync, SyncError};

/// Counters kept by a running node.
#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    rejected: Mutex<BTreeMap<String, u64>>,
    sync_rounds: AtomicU64,
    sync_failures: AtomicU64,
    sync_micros: AtomicU64,
    peers_up: Mutex<BTreeMap<String, bool>>,
}

impl Metrics {
    /// Records one pull from `peer`: its duration, entries accepted, rejections by reason, and
    /// whether the peer is up.
    pub fn record_round(&self, peer: &str, took: Duration, result: &Result<PeerSync, SyncError>) {
        self.sync_rounds.fetch_add(1, Ordering::Relaxed);
        self.sync_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.set_peer_up(peer, result.is_ok());
        match result {
            Ok(s) => {
                self.accepted.fetch_add(s.appended, Ordering::Relaxed);
                let mut rejected = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
                for reason in &s.rejected {
                    *rejected.entry(reason_kind(reason)).or_default() += 1;
                }
            }
            Err(_) => {
                self.sync_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn set_peer_up(&self, peer: &str, up: bool) {
        self.peers_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer.to_string(), up);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# TYPE accord_datasets_accepted_total counter");
        let _ = writeln!(
            s,
            "accord_datasets_accepted_total {}",
            self.accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# TYPE accord_datasets_rejected_total counter");
        for (reason, n) in self.rejected.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(s, "accord_datasets_rejected_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(s, "# TYPE accord_sync_rounds_total counter");
        let _ = writeln!(
            s,
            "accord_sync_rounds_total {}",
            self.sync_rounds.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# TYPE accord_sync_failures_total counter");
        let _ = writeln!(
            s,
            "accord_sync_failures_total {}",
            self.sync_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# TYPE accord_sync_seconds_total counter");
        let _ = writeln!(
            s,
            "accord_sync_seconds_total {:.6}",
            self.sync_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let peers = self.peers_up.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(s, "# TYPE accord_peers_up gauge");
        let _ = writeln!(s, "accord_peers_up {}", peers.values().filter(|u| **u).count());
        s
    }
}

/// The kind of a rejection ("DEU seq 3: signature does not verify: …" → "signature does not
/// verify"), safe as a Prometheus label value.
fn reason_kind(reason: &str) -> String {
    let after_seq = reason.split_once(": ").map_or(reason, |(_, r)| r);
    let kind = after_seq.split([':', '(', ',']).next().unwrap_or(after_seq).trim();
    kind.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '_')
        .collect()
}

/// Serves `/metrics` until `stop` changes.
pub async fn serve(node: Arc<Node>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        let conn = tokio::select! {
            _ = stop.changed() => return,
            c = listener.accept() => c,
        };
        let Ok((mut stream, _)) = conn else { continue };
        let node = node.clone();
        tokio::spawn(async move {
            let head = read_head(&mut stream).await;
            let request = String::from_utf8_lossy(&head);
            let (status, body) = if request.starts_with("GET /metrics ") {
                ("200 OK", node.metrics.render())
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The request line and headers, read up to the blank line that ends them (a client may send
/// them in several segments; answering early and closing with unread bytes would reset the
/// connection under the response). At most 8 KiB and 5 s; whatever came by then is judged.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while head.len() < 8192 && !ends_head(&head) {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    head
}

/// Whether the bytes hold the blank line after the headers (`\r\n\r\n`, or bare `\n\n`).
fn ends_head(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w == b"\r\n\r\n") || bytes.windows(2).any(|w| w == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_ends_at_a_blank_line() {
        assert!(ends_head(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(ends_head(b"GET /metrics HTTP/1.0\n\n"));
        assert!(!ends_head(b"GET /metrics HTTP/1.1\r\nHost: a\r\n"));
    }

    #[test]
    fn rejections_are_counted_by_kind_and_peers_tracked() {
        let m = Metrics::default();
        let sync = PeerSync {
            appended: 3,
            rejected: vec![
                "DEU seq 4: signature does not verify: publisher DEU, key ab".into(),
                "FRA seq 1: payload digest does not match the header".into(),
                "DEU seq 5: signature does not verify: publisher DEU, key cd".into(),
            ],
            ..PeerSync::default()
        };
        m.record_round("FRA", Duration::from_millis(1500), &Ok(sync));
        m.record_round(
            "ITA",
            Duration::from_millis(500),
            &Err(SyncError::Rpc {
                peer: crate::record::Country::parse("ITA").unwrap(),
                message: "down".into(),
            }),
        );
        let text = m.render();
        assert!(text.contains("accord_datasets_accepted_total 3\n"), "{text}");
        assert!(
            text.contains("accord_datasets_rejected_total{reason=\"signature does not verify\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("accord_datasets_rejected_total{reason=\"payload digest does not match the header\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("accord_sync_rounds_total 2\n"), "{text}");
        assert!(text.contains("accord_sync_failures_total 1\n"), "{text}");
        assert!(text.contains("accord_sync_seconds_total 2.000000\n"), "{text}");
        assert!(text.contains("accord_peers_up 1\n"), "{text}");
    }
}

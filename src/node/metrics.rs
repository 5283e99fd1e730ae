//! The node's counters, rendered as Prometheus text: datasets accepted and rejected by reason,
//! sync rounds and their duration, peers up. Label values come only from the consortium
//! (peer codes) and the fixed [`RejectReason`] set, never from a peer's bytes. The daemon
//! serves them on `metrics_listen` `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::exchange::{PeerSync, SyncError};
use crate::model::Country;

/// Counters kept by a running node.
#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    sync_rounds: AtomicU64,
    sync_failures: AtomicU64,
    sync_micros: AtomicU64,
    peers_up: Mutex<BTreeMap<Country, bool>>,
}

impl Metrics {
    /// Records one pull from `peer`: its duration, entries accepted, rejections by reason, and
    /// whether the peer is up.
    pub fn record_round(&self, peer: Country, took: Duration, result: &Result<PeerSync, SyncError>) {
        self.sync_rounds.fetch_add(1, Ordering::Relaxed);
        self.sync_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.set_peer_up(peer, result.is_ok());
        match result {
            Ok(s) => {
                self.accepted.fetch_add(s.appended, Ordering::Relaxed);
                let mut rejected = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
                for (reason, n) in &s.rejected_by_reason {
                    *rejected.entry(reason.label()).or_default() += n;
                }
            }
            Err(_) => {
                self.sync_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn set_peer_up(&self, peer: Country, up: bool) {
        self.peers_up.lock().unwrap_or_else(|p| p.into_inner()).insert(peer, up);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{RejectReason, Rejection};

    fn rejection(reason: RejectReason, detail: &str) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }

    #[test]
    fn rejections_are_counted_by_kind_and_peers_tracked() {
        let m = Metrics::default();
        let mut sync = PeerSync {
            appended: 3,
            ..PeerSync::default()
        };
        for r in [
            rejection(
                RejectReason::Invalid("bad_signature"),
                "DEU seq 4: signature does not verify",
            ),
            rejection(
                RejectReason::Invalid("payload_digest"),
                "FRA seq 1: payload digest does not match",
            ),
            rejection(
                RejectReason::Invalid("bad_signature"),
                "DEU seq 5: signature does not verify",
            ),
            rejection(RejectReason::UnknownPublisher, "head for unknown publisher \"ZZZ{}\""),
        ] {
            sync.reject(r);
        }
        m.record_round(Country::parse("FRA").unwrap(), Duration::from_millis(1500), &Ok(sync));
        m.record_round(
            Country::parse("ITA").unwrap(),
            Duration::from_millis(500),
            &Err(SyncError::Rpc {
                peer: Country::parse("ITA").unwrap(),
                message: "down".into(),
            }),
        );
        let text = m.render();
        assert!(text.contains("accord_datasets_accepted_total 3\n"), "{text}");
        assert!(
            text.contains("accord_datasets_rejected_total{reason=\"bad_signature\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("accord_datasets_rejected_total{reason=\"payload_digest\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("accord_datasets_rejected_total{reason=\"unknown_publisher\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("ZZZ"), "a peer's text became a label: {text}");
        assert!(text.contains("accord_sync_rounds_total 2\n"), "{text}");
        assert!(text.contains("accord_sync_failures_total 1\n"), "{text}");
        assert!(text.contains("accord_sync_seconds_total 2.000000\n"), "{text}");
        assert!(text.contains("accord_peers_up 1\n"), "{text}");
    }
}

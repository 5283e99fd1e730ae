//! The node's counters, in a `prometheus-client` registry rendered as OpenMetrics text:
//! datasets accepted and rejected by reason, sync rounds and their duration, peers up. Label
//! values come only from the fixed [`RejectReason`](crate::io::exchange::RejectReason) set, never
//! from a peer's bytes. The daemon serves them on `metrics_listen` `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::domain::model::Country;
use crate::io::exchange::{PeerSync, SyncError};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    /// One of the fixed rejection labels.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabel {
    /// `tls`, `ca` or `signing`.
    certificate: &'static str,
}

/// A member's code: the label values come from the consortium (configured peers, publishers
/// whose entries verified), never from what a peer sends.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PublisherLabel {
    publisher: String,
}

/// Counters kept by a running node.
pub struct Metrics {
    certificate_expiry: Family<CertificateLabel, Gauge>,
    peer_last_success: Family<PeerLabel, Gauge>,
    feed_head_seq: Family<PublisherLabel, Gauge>,
    registry: Registry,
    accepted: Counter,
    rejected: Family<ReasonLabel, Counter>,
    sync_rounds: Counter,
    sync_failures: Counter,
    sync_seconds: Counter<f64, AtomicU64>,
    peers_up: Gauge,
    /// Each configured peer's state at its last pull, for `peers_up`.
    peer_states: Mutex<BTreeMap<Country, bool>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let accepted = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let sync_rounds = Counter::default();
        let sync_failures = Counter::default();
        let sync_seconds = Counter::<f64, AtomicU64>::default();
        let peers_up = Gauge::default();
        let certificate_expiry = Family::<CertificateLabel, Gauge>::default();
        let peer_last_success = Family::<PeerLabel, Gauge>::default();
        let feed_head_seq = Family::<PublisherLabel, Gauge>::default();
        registry.register(
            "accord_certificate_expiry_timestamp_seconds",
            "When the node's TLS certificate, the consortium CA and its signing key expire",
            certificate_expiry.clone(),
        );
        registry.register(
            "accord_peer_last_success_timestamp_seconds",
            "When the last pull from each peer succeeded",
            peer_last_success.clone(),
        );
        registry.register(
            "accord_feed_head_seq",
            "The head seq held of each publisher's feed",
            feed_head_seq.clone(),
        );
        registry.register(
            "accord_datasets_accepted",
            "Entries accepted from peers",
            accepted.clone(),
        );
        registry.register(
            "accord_datasets_rejected",
            "Entries and heads refused, by reason",
            rejected.clone(),
        );
        registry.register("accord_sync_rounds", "Pulls from peers", sync_rounds.clone());
        registry.register("accord_sync_failures", "Pulls that failed", sync_failures.clone());
        registry.register("accord_sync_seconds", "Time spent pulling", sync_seconds.clone());
        registry.register("accord_peers_up", "Peers whose last pull succeeded", peers_up.clone());
        Metrics {
            certificate_expiry,
            peer_last_success,
            feed_head_seq,
            registry,
            accepted,
            rejected,
            sync_rounds,
            sync_failures,
            sync_seconds,
            peers_up,
            peer_states: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    /// Records one pull from `peer`: its duration, entries accepted, rejections by reason, and
    /// whether the peer is up.
    pub fn record_round(&self, peer: Country, took: Duration, result: &Result<PeerSync, SyncError>) {
        self.sync_rounds.inc();
        self.sync_seconds.inc_by(took.as_secs_f64());
        self.set_peer_up(peer, result.is_ok());
        match result {
            Ok(s) => {
                self.peer_last_success
                    .get_or_create(&PeerLabel { peer: peer.to_string() })
                    .set(crate::domain::date::unix_now());
                self.accepted.inc_by(s.appended);
                for (reason, n) in &s.rejected_by_reason {
                    self.rejected
                        .get_or_create(&ReasonLabel { reason: reason.label() })
                        .inc_by(*n);
                }
            }
            Err(_) => {
                self.sync_failures.inc();
            }
        }
    }

    pub fn set_peer_up(&self, peer: Country, up: bool) {
        let mut states = self.peer_states.lock().unwrap_or_else(|p| p.into_inner());
        states.insert(peer, up);
        self.peers_up.set(states.values().filter(|u| **u).count() as i64);
    }

    /// `which` (`tls`, `ca` or `signing`) expires at `at` (Unix seconds).
    pub fn set_certificate_expiry(&self, which: &'static str, at: i64) {
        self.certificate_expiry
            .get_or_create(&CertificateLabel { certificate: which })
            .set(at);
    }

    /// The head seq held of `publisher`'s feed.
    pub fn set_head(&self, publisher: Country, seq: u64) {
        self.feed_head_seq
            .get_or_create(&PublisherLabel {
                publisher: publisher.to_string(),
            })
            .set(i64::try_from(seq).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text of every counter.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::exchange::{RejectReason, Rejection};

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
        assert!(text.contains("accord_sync_seconds_total 2.0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with EOF: {text}");
        assert!(text.contains("accord_peers_up 1\n"), "{text}");
    }
}

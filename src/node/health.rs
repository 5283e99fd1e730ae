//! Readiness (SPEC §14): whether this node can do its work now, and if not, why — what a load
//! balancer or an orchestrator asks on `/ready`, and what an operator reads in the 503 body.

use ring::signature::KeyPair;

use super::Node;
use crate::domain::date::format_timestamp;

/// How long before an expiry `status` starts to warn (SPEC §14).
pub const EXPIRY_WARNING_SECS: i64 = 30 * 86_400;

impl Node {
    /// When the TLS certificate, the CA and this node's signing key expire: (`tls`, `ca` or
    /// `signing`; the file; Unix time), for those that have an end (a key may have none).
    pub fn expiries(&self) -> Vec<(&'static str, String, i64)> {
        let config = self.config();
        let tls = self.tls_files();
        let mut out = Vec::new();
        if let Ok(x) = crate::io::tls::expiries(&tls) {
            out.push(("tls", format!("TLS certificate {}", tls.cert.display()), x.certificate));
            out.push(("ca", format!("CA certificate {}", tls.ca.display()), x.ca));
        }
        let public = self.signing.public_key().as_ref();
        if let Some(until) = self
            .consortium()
            .member(self.country())
            .and_then(|m| m.keys.iter().find(|k| k.public_key[..] == *public))
            .and_then(|k| k.valid_until)
        {
            out.push((
                "signing",
                format!("signing key {}", config.signing_key.display()),
                until,
            ));
        }
        out
    }

    /// The TLS certificate, CA and signing key that expire within [`EXPIRY_WARNING_SECS`] of
    /// `now` (or already have), one line each.
    pub fn expiring(&self, now: i64) -> Vec<String> {
        let mut out = Vec::new();
        for (_, what, at) in self.expiries() {
            if at <= now {
                out.push(format!("{what} expired at {}", format_timestamp(at)));
            } else if at - now <= EXPIRY_WARNING_SECS {
                out.push(format!(
                    "{what} expires at {} (in {} days): renew it",
                    format_timestamp(at),
                    (at - now) / 86_400
                ));
            }
        }
        out
    }

    /// Sets the gauges read from files and the store (certificate expiries, feed heads) just
    /// before `/metrics` is rendered.
    pub fn refresh_gauges(&self) {
        let metrics = self.metrics();
        for (kind, _, at) in self.expiries() {
            metrics.set_certificate_expiry(kind, at);
        }
        if let Ok(heads) = self.store.heads() {
            for (publisher, head) in heads {
                metrics.set_head(publisher, head.seq);
            }
        }
    }

    /// The reasons this node is not ready at `now` (Unix seconds); empty when it is: the store
    /// answers, its TLS certificate and the CA are in date, no CRL is past its next update,
    /// its signing key is valid now under the consortium, and, once peers have been tried, at
    /// least one of them was reachable on its last attempt.
    pub fn unready(&self, now: i64) -> Vec<String> {
        let config = self.config();
        let tls = self.tls_files();
        let mut reasons = Vec::new();
        if let Err(e) = self.store.head(self.country()) {
            reasons.push(format!("store: {e}"));
        }
        match crate::io::tls::expiries(&tls) {
            Ok(x) => {
                if x.certificate <= now {
                    reasons.push(format!(
                        "TLS certificate {} expired at {}",
                        tls.cert.display(),
                        format_timestamp(x.certificate)
                    ));
                }
                if x.ca <= now {
                    reasons.push(format!(
                        "CA certificate {} expired at {}",
                        tls.ca.display(),
                        format_timestamp(x.ca)
                    ));
                }
                for (path, next) in x.crls {
                    if let Some(next) = next.filter(|n| *n <= now) {
                        reasons.push(format!(
                            "CRL {} is past its next update ({}): fetch a current one",
                            path.display(),
                            format_timestamp(next)
                        ));
                    }
                }
            }
            Err(e) => reasons.push(format!("TLS files: {e}")),
        }
        let public = self.signing.public_key().as_ref();
        let valid = self
            .consortium()
            .member(self.country())
            .is_some_and(|m| m.keys.iter().any(|k| k.public_key[..] == *public && k.valid_at(now)));
        if !valid {
            reasons.push(format!(
                "signing key {} is not valid now under the consortium",
                config.signing_key.display()
            ));
        }
        let mut tried = 0;
        let mut failures = Vec::new();
        for peer in &config.peers {
            if let Ok(s) = self.store.peer_status(peer.country) {
                if s.last_attempt.is_some() {
                    tried += 1;
                    if let Some(e) = s.last_error {
                        failures.push(format!("{}: {e}", peer.country));
                    }
                }
            }
        }
        if tried > 0 && failures.len() == tried {
            reasons.push(format!("no peer reachable ({})", failures.join("; ")));
        }
        reasons
    }
}

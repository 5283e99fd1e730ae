//! `accord status`: what an operator needs to see at a glance (SPEC §6: at least `country`,
//! `records`, `feeds`, `peers`, `forks`, `view_digest`). Typed; `report` renders it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Node, NodeError};
use crate::domain::date::format_timestamp;
use crate::domain::hex;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub country: String,
    pub consortium: String,
    pub test_only: bool,
    pub disclosure: String,
    pub records: BTreeMap<String, u64>,
    pub feeds: Vec<FeedStatus>,
    pub peers: Vec<PeerReport>,
    pub forks: Vec<ForkReport>,
    pub equivocating: Vec<String>,
    pub view_digest: String,
    /// Whether `view_digest` covers every entry accepted. On a daemon `status` reports the
    /// latest view computed, which lags for a moment behind entries just accepted.
    pub view_current: bool,
    /// Stored entries that no longer verify under the consortium in force, left out of the view.
    pub left_out: Vec<String>,
    pub store_bytes: u64,
    /// The TLS certificate, the CA or the signing key, where one expires within 30 days.
    pub expiring: Vec<String>,
    /// The consortium version in force, and the SHA-256 of its canonical document.
    pub consortium_version: u64,
    pub consortium_digest: String,
    /// Proposals for the next version, not in force yet.
    pub proposals: Vec<ProposalReport>,
    /// Members that approved two documents for one version (SPEC §11), one line each: their
    /// votes for that version count for nothing; the signed entries stay as evidence.
    pub governance_equivocations: Vec<String>,
    /// Members whose latest attestation carries this view digest and consortium version
    /// (SPEC §12).
    pub attested_by: Vec<String>,
    /// Each member's registers as the estimates fitted them (SPEC §15); empty without
    /// estimates.
    pub measurement: Vec<MeasurementReport>,
}

/// One register of one member as the estimates see it: what the consortium declares, and the
/// coverage fitted from the data, so a statistician can see why an estimate moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasurementReport {
    pub member: String,
    /// `emigration` (the member's OUT side) or `immigration` (its IN side).
    pub direction: String,
    pub declared_undercount: String,
    pub accuracy: String,
    pub duration_months: u32,
    pub duration_factor: f64,
    /// A reference member's register anchors the scale and keeps its declared prior.
    pub reference: bool,
    /// Pair totals compared with a reference member's reports.
    pub compared: u64,
    /// The undercount class the reports fit best.
    pub fitted_undercount: String,
    /// The fitted coverage and its 95% interval (three decimals).
    pub coverage: f64,
    pub coverage_lower: f64,
    pub coverage_upper: f64,
}

impl MeasurementReport {
    pub fn of(f: &crate::domain::reconcile::Fitted) -> MeasurementReport {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        MeasurementReport {
            member: f.member.to_string(),
            direction: f.flow.as_str().to_string(),
            declared_undercount: f.declared.undercount.as_str().to_string(),
            accuracy: f.declared.accuracy.as_str().to_string(),
            duration_months: f.declared.duration_months,
            duration_factor: f.duration_factor,
            reference: f.reference,
            compared: f.compared as u64,
            fitted_undercount: f.class.as_str().to_string(),
            coverage: round(f.coverage),
            coverage_lower: round(f.coverage_lower),
            coverage_upper: round(f.coverage_upper),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProposalReport {
    pub version: u64,
    pub digest: String,
    pub proposer: String,
    /// Members who approved it so far.
    pub approvals: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedStatus {
    pub publisher: String,
    pub seq: u64,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerReport {
    pub country: String,
    pub endpoint: String,
    pub last_attempt: Option<String>,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub entries_received: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForkReport {
    pub publisher: String,
    pub seq: u64,
    pub held: String,
    pub conflicting: String,
}

/// One consortium version as `accord consortium` shows it (SPEC §11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsortiumVersion {
    pub version: u64,
    /// SHA-256 of `document`, hex.
    pub digest: String,
    /// The canonical TOML of the document.
    pub document: String,
    /// Who proposed it; `None` for genesis.
    pub proposer: Option<String>,
    /// The members whose approvals put it in force.
    pub approvals: Vec<String>,
    /// The version in force now.
    pub in_force: u64,
}

impl Node {
    /// Consortium version `version` (`None`: the one in force).
    pub fn consortium_version(&self, version: Option<u64>) -> Result<ConsortiumVersion, NodeError> {
        let governance = self.governance();
        let in_force = governance.current().version;
        let wanted = version.unwrap_or(in_force);
        let v = governance
            .versions
            .iter()
            .find(|v| v.version == wanted)
            .ok_or_else(|| {
                NodeError::Request(format!(
                    "consortium version {wanted} is not known here: versions 1 to {in_force} have been in force"
                ))
            })?;
        Ok(ConsortiumVersion {
            version: v.version,
            digest: hex::encode(&v.digest),
            document: crate::domain::consortium::canonical_toml(&v.document),
            proposer: v.proposer.map(|p| p.to_string()),
            approvals: v.approvals.iter().map(ToString::to_string).collect(),
            in_force,
        })
    }

    pub fn status(&self) -> Result<Status, NodeError> {
        let records = self
            .store
            .record_counts()?
            .into_iter()
            .map(|(t, n)| (t.as_str().to_string(), n))
            .collect();
        let feeds = self
            .store
            .heads()?
            .into_iter()
            .map(|(p, h)| FeedStatus {
                publisher: p.to_string(),
                seq: h.seq,
                digest: hex::encode(&h.digest),
            })
            .collect();
        let mut peers = Vec::new();
        for p in &self.config.peers {
            let s = self.store.peer_status(p.country)?;
            peers.push(PeerReport {
                country: p.country.to_string(),
                endpoint: p.endpoint.clone(),
                last_attempt: s.last_attempt.map(format_timestamp),
                last_success: s.last_success.map(format_timestamp),
                last_error: s.last_error,
                entries_received: s.entries_received,
            });
        }
        let forks: Vec<ForkReport> = self
            .store
            .forks()?
            .into_iter()
            .map(|f| ForkReport {
                publisher: f.publisher.to_string(),
                seq: f.seq,
                held: hex::encode(&f.held),
                conflicting: hex::encode(&f.conflicting),
            })
            .collect();
        let mut equivocating: Vec<String> = forks.iter().map(|f| f.publisher.clone()).collect();
        equivocating.dedup();
        let c = self.consortium();
        let governance = self.governance();
        // One view for the whole report: while entries arrive, asking for the view again could
        // give a newer one, and the digest, the measurement and who attests it would disagree.
        let reported = self.reported_view()?;
        let (view, view_digest) = (reported.view, reported.digest);
        let proposals = governance
            .pending
            .iter()
            .map(|p| ProposalReport {
                version: p.version,
                digest: hex::encode(&p.digest),
                proposer: p.proposer.to_string(),
                approvals: p.approvals.iter().map(ToString::to_string).collect(),
            })
            .collect();
        Ok(Status {
            country: self.country().to_string(),
            consortium: c.name.clone(),
            test_only: c.test_only,
            disclosure: c.disclosure.method().to_string(),
            records,
            feeds,
            peers,
            forks,
            equivocating,
            view_digest: hex::encode(&view_digest),
            view_current: reported.current,
            measurement: view.measurement.iter().map(MeasurementReport::of).collect(),
            left_out: self.left_out()?.iter().map(ToString::to_string).collect(),
            store_bytes: self.store.size_on_disk(),
            expiring: self.expiring(crate::domain::date::unix_now()),
            consortium_version: governance.current().version,
            consortium_digest: hex::encode(&governance.current().digest),
            proposals,
            attested_by: self.attesting_view(&view_digest)?,
            governance_equivocations: governance
                .equivocations
                .iter()
                .map(|e| {
                    let digests: Vec<String> = e.digests.iter().map(|d| hex::encode(d)).collect();
                    format!(
                        "{} approved {} documents for version {}: {}",
                        e.member,
                        e.digests.len(),
                        e.version,
                        digests.join(", ")
                    )
                })
                .collect(),
        })
    }
}

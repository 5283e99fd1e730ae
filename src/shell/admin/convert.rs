//! Typed results to and from their admin protocol messages: the one place both directions of
//! each conversion live, so a field added to one side is added to the other here.

use crate::domain::model::Country;
use crate::node::{FeedStatus, ForkReport, MeasurementReport, OpError, PeerPull, PeerReport, ProposalReport, Status};
use crate::proto;

impl From<Status> for proto::StatusReply {
    fn from(s: Status) -> proto::StatusReply {
        proto::StatusReply {
            country: s.country,
            consortium: s.consortium,
            test_only: s.test_only,
            disclosure: s.disclosure,
            records: s.records.into_iter().collect(),
            feeds: s
                .feeds
                .into_iter()
                .map(|f| proto::FeedStatus {
                    publisher: f.publisher,
                    seq: f.seq,
                    digest: f.digest,
                })
                .collect(),
            peers: s
                .peers
                .into_iter()
                .map(|p| proto::PeerReport {
                    country: p.country,
                    endpoint: p.endpoint,
                    last_attempt: p.last_attempt,
                    last_success: p.last_success,
                    last_error: p.last_error,
                    entries_received: p.entries_received,
                })
                .collect(),
            forks: s
                .forks
                .into_iter()
                .map(|f| proto::ForkReport {
                    publisher: f.publisher,
                    seq: f.seq,
                    held: f.held,
                    conflicting: f.conflicting,
                })
                .collect(),
            equivocating: s.equivocating,
            view_digest: s.view_digest,
            view_current: s.view_current,
            left_out: s.left_out,
            store_bytes: s.store_bytes,
            expiring: s.expiring,
            consortium_version: s.consortium_version,
            consortium_digest: s.consortium_digest,
            proposals: s
                .proposals
                .into_iter()
                .map(|p| proto::ProposalReport {
                    version: p.version,
                    digest: p.digest,
                    proposer: p.proposer,
                    approvals: p.approvals,
                })
                .collect(),
            governance_equivocations: s.governance_equivocations,
            attested_by: s.attested_by,
            measurement: s
                .measurement
                .into_iter()
                .map(|m| proto::MeasurementReport {
                    member: m.member,
                    direction: m.direction,
                    declared_undercount: m.declared_undercount,
                    accuracy: m.accuracy,
                    duration_months: m.duration_months,
                    duration_factor: m.duration_factor,
                    reference: m.reference,
                    compared: m.compared,
                    fitted_undercount: m.fitted_undercount,
                    coverage: m.coverage,
                    coverage_lower: m.coverage_lower,
                    coverage_upper: m.coverage_upper,
                })
                .collect(),
        }
    }
}

impl From<proto::StatusReply> for Status {
    fn from(s: proto::StatusReply) -> Status {
        Status {
            country: s.country,
            consortium: s.consortium,
            test_only: s.test_only,
            disclosure: s.disclosure,
            records: s.records.into_iter().collect(),
            feeds: s
                .feeds
                .into_iter()
                .map(|f| FeedStatus {
                    publisher: f.publisher,
                    seq: f.seq,
                    digest: f.digest,
                })
                .collect(),
            peers: s
                .peers
                .into_iter()
                .map(|p| PeerReport {
                    country: p.country,
                    endpoint: p.endpoint,
                    last_attempt: p.last_attempt,
                    last_success: p.last_success,
                    last_error: p.last_error,
                    entries_received: p.entries_received,
                })
                .collect(),
            forks: s
                .forks
                .into_iter()
                .map(|f| ForkReport {
                    publisher: f.publisher,
                    seq: f.seq,
                    held: f.held,
                    conflicting: f.conflicting,
                })
                .collect(),
            equivocating: s.equivocating,
            view_digest: s.view_digest,
            view_current: s.view_current,
            left_out: s.left_out,
            store_bytes: s.store_bytes,
            expiring: s.expiring,
            consortium_version: s.consortium_version,
            consortium_digest: s.consortium_digest,
            proposals: s
                .proposals
                .into_iter()
                .map(|p| ProposalReport {
                    version: p.version,
                    digest: p.digest,
                    proposer: p.proposer,
                    approvals: p.approvals,
                })
                .collect(),
            governance_equivocations: s.governance_equivocations,
            attested_by: s.attested_by,
            measurement: s
                .measurement
                .into_iter()
                .map(|m| MeasurementReport {
                    member: m.member,
                    direction: m.direction,
                    declared_undercount: m.declared_undercount,
                    accuracy: m.accuracy,
                    duration_months: m.duration_months,
                    duration_factor: m.duration_factor,
                    reference: m.reference,
                    compared: m.compared,
                    fitted_undercount: m.fitted_undercount,
                    coverage: m.coverage,
                    coverage_lower: m.coverage_lower,
                    coverage_upper: m.coverage_upper,
                })
                .collect(),
        }
    }
}

impl From<PeerPull> for proto::PeerPull {
    fn from(p: PeerPull) -> proto::PeerPull {
        proto::PeerPull {
            peer: p.peer.to_string(),
            appended: p.appended,
            forks: p.forks,
            gaps: p.gaps,
            rejected: p.rejected,
            rejected_total: p.rejected_total,
            failed: p.error.is_some(),
            error: p.error.unwrap_or_default(),
        }
    }
}

impl TryFrom<proto::PeerPull> for PeerPull {
    type Error = OpError;

    fn try_from(p: proto::PeerPull) -> Result<PeerPull, OpError> {
        let peer = Country::parse(&p.peer).ok_or_else(|| OpError::Remote("the node's reply has a bad peer".into()))?;
        Ok(PeerPull {
            peer,
            appended: p.appended,
            forks: p.forks,
            gaps: p.gaps,
            rejected: p.rejected,
            rejected_total: p.rejected_total,
            error: p.failed.then_some(p.error),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_status_crosses_the_socket_unchanged() {
        let status = Status {
            country: "DEU".into(),
            consortium: "c".into(),
            test_only: true,
            disclosure: "threshold".into(),
            records: BTreeMap::from([("immigration".to_string(), 3)]),
            feeds: vec![FeedStatus {
                publisher: "DEU".into(),
                seq: 2,
                digest: "ab".into(),
            }],
            peers: vec![PeerReport {
                country: "FRA".into(),
                endpoint: "https://127.0.0.1:1".into(),
                last_attempt: Some("t".into()),
                last_success: None,
                last_error: Some("down".into()),
                entries_received: 4,
            }],
            forks: vec![ForkReport {
                publisher: "ITA".into(),
                seq: 1,
                held: "aa".into(),
                conflicting: "bb".into(),
            }],
            equivocating: vec!["ITA".into()],
            view_digest: "cd".into(),
            view_current: true,
            expiring: vec!["TLS certificate pki/deu.pem expires 2027-01-01T00:00:00Z".into()],
            left_out: vec!["FRA seq 1: gone".into()],
            store_bytes: 99,
            consortium_version: 2,
            consortium_digest: "ef".into(),
            proposals: vec![ProposalReport {
                version: 3,
                digest: "01".into(),
                proposer: "ESP".into(),
                approvals: vec!["DEU".into(), "ESP".into()],
            }],
            governance_equivocations: vec!["ITA approved 2 documents for version 3: aa, bb".into()],
            attested_by: vec!["DEU".into(), "FRA".into()],
            measurement: vec![MeasurementReport {
                member: "FRA".into(),
                direction: "emigration".into(),
                declared_undercount: "low".into(),
                accuracy: "high".into(),
                duration_months: 6,
                duration_factor: 0.73,
                reference: false,
                compared: 4,
                fitted_undercount: "high".into(),
                coverage: 0.47,
                coverage_lower: 0.39,
                coverage_upper: 0.56,
            }],
        };
        let back = Status::from(proto::StatusReply::from(status.clone()));
        assert_eq!(format!("{back:?}"), format!("{status:?}"));
    }

    #[test]
    fn a_pull_crosses_the_socket_unchanged() {
        let pull = PeerPull {
            rejected: vec!["x".into()],
            rejected_total: 5,
            error: Some("down".into()),
            ..PeerPull::new(Country::parse("FRA").unwrap())
        };
        assert_eq!(PeerPull::try_from(proto::PeerPull::from(pull.clone())).unwrap(), pull);
    }
}

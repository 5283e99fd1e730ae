//! Building a signed entry from a dataset: encode the payload, commit to it in a header chained
//! to the feed's head, and sign the header. Pure apart from the caller's clock value.

use ring::signature::Ed25519KeyPair;

use super::codec::EntryHeader;
use super::envelope::{sha256, sign};
use super::feed::Head;
use super::Dataset;
use crate::domain::model::Country;
use crate::proto;

/// Everything a new entry needs besides the dataset.
pub struct EntryParams<'a> {
    /// The feed's current head, if the feed has entries.
    pub head: Option<Head>,
    pub created_at: i64,
    pub audience: Vec<Country>,
    pub key: &'a Ed25519KeyPair,
}

/// Signs `dataset` as the next entry of its publisher's feed.
pub fn sign_entry(dataset: &Dataset, params: EntryParams<'_>) -> proto::Entry {
    let payload = dataset.encode();
    let mut audience = params.audience;
    audience.sort();
    audience.dedup();
    let header = EntryHeader {
        publisher: dataset.publisher,
        seq: params.head.map_or(1, |h| h.seq + 1),
        prev: params.head.map(|h| h.digest),
        subject: super::Subject::Dataset {
            cube: dataset.cube,
            period: dataset.period,
        },
        created_at: params.created_at,
        audience,
        payload_sha256: sha256(&payload),
        payload_size: payload.len() as u64,
    };
    proto::Entry {
        envelope: Some(sign(header.encode(), params.key)),
        payload,
        has_payload: true,
    }
}

/// Signs a governance act (SPEC §11) as the next entry of `publisher`'s feed. Governance
/// entries have no audience: every member receives them.
pub fn sign_governance(publisher: Country, act: &super::Governance, params: EntryParams<'_>) -> proto::Entry {
    let payload = act.encode();
    let subject = match act {
        super::Governance::Proposal { .. } => super::Subject::Proposal,
        super::Governance::Approval { .. } => super::Subject::Approval,
    };
    let header = EntryHeader {
        publisher,
        seq: params.head.map_or(1, |h| h.seq + 1),
        prev: params.head.map(|h| h.digest),
        subject,
        created_at: params.created_at,
        audience: Vec::new(),
        payload_sha256: sha256(&payload),
        payload_size: payload.len() as u64,
    };
    proto::Entry {
        envelope: Some(sign(header.encode(), params.key)),
        payload,
        has_payload: true,
    }
}

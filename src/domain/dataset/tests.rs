//! Hostile-input tests for verification and chaining: every way an entry can be wrong is
//! rejected with its own error.

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::envelope::{key_id, pae, sign, PAYLOAD_TYPE};
use super::feed::place;
use super::publish::{sign_entry, EntryParams};
use super::*;
use crate::domain::consortium::{Consortium, Member, SigningKey};
use crate::domain::consortium::{Definition, Disclosure, Reconcile};
use crate::domain::model::{Cell, CellValue, Cube, Period};
use crate::proto;

const NOW: i64 = 1_750_000_000;

fn keypair() -> Ed25519KeyPair {
    let pk8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap()
}

pub(super) fn country(c: &str) -> Country {
    Country::parse(c).unwrap()
}

pub(super) struct Fixture {
    consortium: Consortium,
    deu: Ed25519KeyPair,
    fra: Ed25519KeyPair,
}

pub(super) fn fixture() -> Fixture {
    let deu = keypair();
    let fra = keypair();
    let member = |c: &str, k: &Ed25519KeyPair| Member {
        country: country(c),
        keys: vec![SigningKey {
            public_key: k.public_key().as_ref().try_into().unwrap(),
            valid_from: NOW - 1000,
            valid_until: Some(NOW + 1000),
            retired_after_seq: None,
        }],
        measurement: Default::default(),
    };
    let consortium = Consortium {
        name: "t".into(),
        test_only: true,
        definition: Definition::default(),
        disclosure: Disclosure::default(),
        reconcile: Reconcile::default(),
        quorum: crate::domain::consortium::Quorum::default(),
        sharing: crate::domain::consortium::SharingDefault::All,
        agreements: Vec::new(),
        forks: Vec::new(),
        estimates: Default::default(),
        members: vec![member("DEU", &deu), member("FRA", &fra), member("ITA", &keypair())],
    };
    Fixture { consortium, deu, fra }
}

pub(super) fn dataset(publisher: &str) -> Dataset {
    Dataset {
        publisher: country(publisher),
        cube: Cube::Flows,
        period: Period::Year(2024),
        definition: Definition::default(),
        disclosure: Disclosure::Threshold { k: 5 },
        cells: vec![
            Cell {
                key: vec!["IN".into(), "FRA".into(), "SYR".into(), "F".into(), "Y20-24".into()],
                value: CellValue::Value(12),
            },
            Cell {
                key: vec!["OUT".into(), "ITA".into(), "DEU".into(), "M".into(), "UNK".into()],
                value: CellValue::Confidential,
            },
        ],
        unreported: Default::default(),
    }
}

fn entry(f: &Fixture) -> proto::Entry {
    sign_entry(
        &dataset("DEU"),
        EntryParams {
            head: None,
            created_at: NOW,
            audience: vec![],
            key: &f.deu,
        },
    )
}

pub(super) fn check(f: &Fixture, e: proto::Entry) -> Result<VerifiedEntry, VerifyError> {
    verify(e, &f.consortium, &Limits::default())
}

/// Re-signs modified header bytes with `key`.
fn resign(e: &mut proto::Entry, header: &EntryHeader, key: &Ed25519KeyPair) {
    e.envelope = Some(sign(header.encode(), key));
}

#[test]
fn a_good_entry_verifies_and_exposes_its_dataset() {
    let f = fixture();
    let v = check(&f, entry(&f)).unwrap();
    assert_eq!(v.header().publisher, country("DEU"));
    assert_eq!(v.header().seq, 1);
    assert_eq!(v.dataset().cloned(), Some(dataset("DEU")));
}

#[test]
fn dsse_pae_matches_the_spec_test_vector() {
    // From the DSSE protocol specification.
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
}

#[test]
fn a_flipped_bit_anywhere_is_rejected() {
    let f = fixture();
    let good = entry(&f);
    let env = good.envelope.clone().unwrap();
    for i in 0..env.payload.len() * 8 {
        let mut e = good.clone();
        e.envelope.as_mut().unwrap().payload[i / 8] ^= 1 << (i % 8);
        assert!(check(&f, e).is_err(), "header bit {i}");
    }
    for i in 0..64 * 8 {
        let mut e = good.clone();
        e.envelope.as_mut().unwrap().signatures[0].sig[i / 8] ^= 1 << (i % 8);
        assert!(
            matches!(check(&f, e), Err(VerifyError::BadSignature { .. })),
            "sig bit {i}"
        );
    }
    for i in 0..good.payload.len() * 8 {
        let mut e = good.clone();
        e.payload[i / 8] ^= 1 << (i % 8);
        assert_eq!(check(&f, e).unwrap_err(), VerifyError::PayloadDigest, "payload bit {i}");
    }
}

#[test]
fn wrong_payload_type() {
    let f = fixture();
    let mut e = entry(&f);
    e.envelope.as_mut().unwrap().payload_type = "application/json".into();
    assert!(matches!(check(&f, e), Err(VerifyError::WrongPayloadType(_))));
}

#[test]
fn signature_by_another_member_or_claiming_another_publisher() {
    let f = fixture();
    // FRA signs a header that claims DEU published it.
    let e = sign_entry(
        &dataset("DEU"),
        EntryParams {
            head: None,
            created_at: NOW,
            audience: vec![],
            key: &f.fra,
        },
    );
    let err = check(&f, e).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { publisher, .. } if publisher == country("DEU")));
    assert!(
        err.to_string()
            .starts_with("signature does not verify: publisher DEU, key "),
        "{err}"
    );
    // A dataset claiming FRA inside an entry DEU signed.
    let mut e = entry(&f);
    let fra_payload = dataset("FRA").encode();
    let mut h = EntryHeader::decode(&e.envelope.as_ref().unwrap().payload).unwrap();
    h.payload_sha256 = super::envelope::sha256(&fra_payload);
    h.payload_size = fra_payload.len() as u64;
    resign(&mut e, &h, &f.deu);
    e.payload = fra_payload;
    assert!(matches!(
        check(&f, e),
        Err(VerifyError::PayloadMismatch { field: "publisher", .. })
    ));
}

#[test]
fn key_outside_its_window() {
    let f = fixture();
    for t in [NOW - 5000, NOW + 5000] {
        let e = sign_entry(
            &dataset("DEU"),
            EntryParams {
                head: None,
                created_at: t,
                audience: vec![],
                key: &f.deu,
            },
        );
        assert!(matches!(check(&f, e), Err(VerifyError::KeyOutsideWindow { .. })), "{t}");
    }
}

#[test]
fn rotated_keys_verify_history() {
    let mut f = fixture();
    let new_key = keypair();
    let deu = f
        .consortium
        .members
        .iter_mut()
        .find(|m| m.country == country("DEU"))
        .unwrap();
    deu.keys[0].valid_until = Some(NOW);
    deu.keys.push(SigningKey {
        public_key: new_key.public_key().as_ref().try_into().unwrap(),
        valid_from: NOW,
        valid_until: None,
        retired_after_seq: None,
    });
    let old = sign_entry(
        &dataset("DEU"),
        EntryParams {
            head: None,
            created_at: NOW - 10,
            audience: vec![],
            key: &f.deu,
        },
    );
    let new = sign_entry(
        &dataset("DEU"),
        EntryParams {
            head: None,
            created_at: NOW + 10,
            audience: vec![],
            key: &new_key,
        },
    );
    assert!(check(&f, old).is_ok());
    assert!(check(&f, new).is_ok());
    let stale = sign_entry(
        &dataset("DEU"),
        EntryParams {
            head: None,
            created_at: NOW + 10,
            audience: vec![],
            key: &f.deu,
        },
    );
    assert!(matches!(check(&f, stale), Err(VerifyError::KeyOutsideWindow { .. })));
}

#[test]
fn unknown_publisher() {
    let f = fixture();
    let e = sign_entry(
        &dataset("ESP"),
        EntryParams {
            head: None,
            created_at: NOW,
            audience: vec![],
            key: &f.deu,
        },
    );
    assert_eq!(check(&f, e).unwrap_err(), VerifyError::UnknownPublisher(country("ESP")));
}

#[test]
fn duplicate_and_missing_signatures() {
    let f = fixture();
    let mut e = entry(&f);
    let s = e.envelope.as_ref().unwrap().signatures[0].clone();
    e.envelope.as_mut().unwrap().signatures.push(s);
    assert!(matches!(check(&f, e), Err(VerifyError::DuplicateSignature(_))));
    let mut e = entry(&f);
    e.envelope.as_mut().unwrap().signatures.clear();
    assert_eq!(check(&f, e).unwrap_err(), VerifyError::Unsigned);
}

#[test]
fn oversized_and_truncated_entries() {
    let f = fixture();
    let limits = Limits {
        max_payload_bytes: 10,
        ..Limits::default()
    };
    let err = verify(entry(&f), &f.consortium, &limits).unwrap_err();
    assert!(err.to_string().contains("max_payload_bytes"), "{err}");
    let mut e = entry(&f);
    e.payload.truncate(e.payload.len() - 3);
    assert!(matches!(check(&f, e), Err(VerifyError::PayloadSize { .. })));
    let mut e = entry(&f);
    let p = &mut e.envelope.as_mut().unwrap().payload;
    p.truncate(p.len() - 5);
    assert!(check(&f, e).is_err());
    let mut e = entry(&f);
    e.envelope = None;
    assert_eq!(check(&f, e).unwrap_err(), VerifyError::MissingEnvelope);
}

/// Signs an arbitrary (possibly insane) dataset payload under a correct header.
pub(super) fn with_payload(f: &Fixture, d: proto::Dataset) -> proto::Entry {
    use prost::Message;
    let payload = d.encode_to_vec();
    let h = EntryHeader {
        publisher: country("DEU"),
        seq: 1,
        prev: None,
        subject: super::Subject::Dataset {
            cube: Cube::Flows,
            period: Period::Year(2024),
        },
        created_at: NOW,
        audience: vec![],
        payload_sha256: super::envelope::sha256(&payload),
        payload_size: payload.len() as u64,
    };
    proto::Entry {
        envelope: Some(sign(h.encode(), &f.deu)),
        payload,
        has_payload: true,
    }
}

fn proto_dataset() -> proto::Dataset {
    use prost::Message;
    proto::Dataset::decode(dataset("DEU").encode().as_slice()).unwrap()
}

#[test]
fn insane_cells_are_rejected_even_when_signed() {
    let f = fixture();
    let mut d = proto_dataset();
    d.cells.reverse();
    assert!(matches!(
        check(&f, with_payload(&f, d)),
        Err(VerifyError::Decode(DecodeError::CellsUnsorted { index: 1 }))
    ));
    let mut d = proto_dataset();
    let c = d.cells[0].clone();
    d.cells.insert(0, c);
    assert!(matches!(
        check(&f, with_payload(&f, d)),
        Err(VerifyError::Decode(DecodeError::CellsUnsorted { .. }))
    ));
    let mut d = proto_dataset();
    d.cells[1].value = 3;
    assert!(matches!(
        check(&f, with_payload(&f, d)),
        Err(VerifyError::Decode(DecodeError::ValueOnConfidentialCell { index: 1 }))
    ));
    let mut d = proto_dataset();
    d.cells[0].key[1] = "FRX".into();
    assert!(matches!(
        check(&f, with_payload(&f, d)),
        Err(VerifyError::Decode(DecodeError::BadCell { .. }))
    ));
    let mut d = proto_dataset();
    d.cube = "tourism".into();
    assert!(check(&f, with_payload(&f, d)).is_err());
    assert!(check(&f, with_payload(&f, proto_dataset())).is_ok());
}

#[test]
fn header_without_payload_still_verifies() {
    let f = fixture();
    let mut e = sign_entry(
        &dataset("DEU"),
        EntryParams {
            head: None,
            created_at: NOW,
            audience: vec![country("FRA")],
            key: &f.deu,
        },
    );
    e.payload.clear();
    e.has_payload = false;
    let v = check(&f, e).unwrap();
    assert_eq!(v.dataset().cloned(), None);
    assert!(v.header().admits(country("FRA")));
    assert!(v.header().admits(country("DEU")));
    assert!(!v.header().admits(country("ITA")));
}

#[test]
fn key_ids_are_hints_only() {
    let f = fixture();
    let mut e = entry(&f);
    e.envelope.as_mut().unwrap().signatures[0].keyid = "0000000000000000".into();
    assert!(check(&f, e).is_ok());
    assert_eq!(key_id(f.deu.public_key().as_ref()).len(), 16);
    assert_eq!(PAYLOAD_TYPE, "application/vnd.accord.entry-header.v1+protobuf");
}

#[test]
fn chain_placement() {
    let f = fixture();
    let first = check(&f, entry(&f)).unwrap();
    assert_eq!(
        place(None, Some(NOW), None, first.header(), first.digest()),
        Placement::Append
    );
    let head = Head {
        seq: 1,
        digest: first.digest(),
    };
    assert_eq!(
        place(
            Some(head),
            Some(NOW),
            Some(first.digest()),
            first.header(),
            first.digest()
        ),
        Placement::Replay
    );
    // A different seq-1 header: a fork.
    let other = sign_entry(
        &dataset("DEU"),
        EntryParams {
            head: None,
            created_at: NOW + 1,
            audience: vec![],
            key: &f.deu,
        },
    );
    let other = check(&f, other).unwrap();
    assert_eq!(
        place(
            Some(head),
            Some(NOW),
            Some(first.digest()),
            other.header(),
            other.digest()
        ),
        Placement::Fork { held: first.digest() }
    );
    // seq 2 chained to seq 1: appended; chained to the other history: broken.
    let second = sign_entry(
        &dataset("DEU"),
        EntryParams {
            head: Some(head),
            created_at: NOW,
            audience: vec![],
            key: &f.deu,
        },
    );
    let second = check(&f, second).unwrap();
    assert_eq!(second.header().seq, 2);
    assert_eq!(
        place(Some(head), Some(NOW), None, second.header(), second.digest()),
        Placement::Append
    );
    let wrong = Head {
        seq: 1,
        digest: other.digest(),
    };
    assert_eq!(
        place(Some(wrong), Some(NOW), None, second.header(), second.digest()),
        Placement::BrokenChain
    );
    // seq 2 claiming a time before seq 1's: refused, however well it chains and is signed.
    assert_eq!(
        place(Some(head), Some(NOW + 1), None, second.header(), second.digest()),
        Placement::Backdated { previous: NOW + 1 }
    );
    // seq 2 onto an empty feed: a gap.
    assert_eq!(
        place(None, Some(NOW), None, second.header(), second.digest()),
        Placement::Gap { expected: 1 }
    );
}

/// SPEC §10 entry sanity, hostile: a key valid only in an old window signs today an entry for
/// a recent period, dated inside the window. The signature is good and the key was valid at
/// the claimed time; the date is impossible, and that alone refuses it.
#[test]
fn an_entry_dated_before_its_period_began_is_refused() {
    let f = fixture();
    let mut d = dataset("DEU");
    d.period = Period::Month(2025, 5);
    let may = Period::Month(2025, 5).start_unix();
    for created_at in [may - 1, may, may - 400 * 86_400] {
        let e = sign_entry(
            &d,
            EntryParams {
                head: None,
                created_at,
                audience: vec![],
                key: &f.deu,
            },
        );
        let err = check(&f, e).unwrap_err();
        assert!(matches!(err, VerifyError::CreatedBeforePeriod { .. }), "{err:?}");
        assert_eq!(err.label(), "created_before_period");
        assert!(err.to_string().contains("before its period 2025-05 began"), "{err}");
    }
    let e = sign_entry(
        &d,
        EntryParams {
            head: None,
            created_at: NOW,
            audience: vec![],
            key: &f.deu,
        },
    );
    assert!(check(&f, e).is_ok(), "made during the period, under a key valid then");
    assert_eq!(Period::Year(1970).start_unix(), 0);
    assert_eq!(
        Period::Quarter(2024, 2).start_unix(),
        Period::Month(2024, 4).start_unix()
    );
}

#[test]
fn an_entry_from_more_than_five_minutes_ahead_is_refused_on_arrival() {
    let f = fixture();
    let signed = |created_at| {
        sign_entry(
            &dataset("DEU"),
            EntryParams {
                head: None,
                created_at,
                audience: vec![],
                key: &f.deu,
            },
        )
    };
    let now = NOW - 1_000;
    let err = verify_at(signed(now + 301), &f.consortium, &Limits::default(), now).unwrap_err();
    assert!(matches!(err, VerifyError::CreatedInFuture { .. }), "{err:?}");
    assert_eq!(err.label(), "created_in_future");
    assert!(verify_at(signed(now + 300), &f.consortium, &Limits::default(), now).is_ok());
    // Once accepted, the entry is re-verified without the clock: the view never depends on it.
    assert!(check(&f, signed(now + 301)).is_ok());
}

fn governance_entry(f: &Fixture, act: &Governance) -> proto::Entry {
    super::publish::sign_governance(
        country("DEU"),
        act,
        EntryParams {
            head: None,
            created_at: NOW,
            audience: vec![],
            key: &f.deu,
        },
    )
}

#[test]
fn governance_entries_verify_with_their_act_and_the_key_that_signed() {
    let f = fixture();
    let proposal = Governance::Proposal {
        version: 2,
        parent: [7; 32],
        document: "name = \"next\"\n".into(),
    };
    let approval = Governance::Approval {
        version: 2,
        digest: [9; 32],
    };
    for (act, subject) in [(&proposal, Subject::Proposal), (&approval, Subject::Approval)] {
        let v = check(&f, governance_entry(&f, act)).unwrap();
        assert_eq!(v.header().subject, subject);
        assert_eq!(v.header().dataset(), None);
        assert_eq!(v.governance(), Some(act));
        assert_eq!(v.dataset(), None);
        assert_eq!(v.signer().as_slice(), f.deu.public_key().as_ref());
    }
    // A dataset entry's header has no kind field at all: entries signed before governance
    // existed keep their exact bytes and digests.
    use prost::Message;
    let header = proto::EntryHeader::decode(entry(&f).envelope.unwrap().payload.as_slice()).unwrap();
    assert_eq!(header.kind, "");
    assert!(check(&f, entry(&f)).unwrap().governance().is_none());
}

#[test]
fn hostile_governance_entries_are_refused_even_when_signed() {
    use prost::Message;
    let f = fixture();
    let approval = Governance::Approval {
        version: 2,
        digest: [9; 32],
    };
    let good = governance_entry(&f, &approval);
    let header_bytes = good.envelope.clone().unwrap().payload;
    let resigned = |edit: &dyn Fn(&mut proto::EntryHeader), payload: Vec<u8>| {
        let mut h = proto::EntryHeader::decode(header_bytes.as_slice()).unwrap();
        h.payload_sha256 = super::envelope::sha256(&payload).to_vec();
        h.payload_size = payload.len() as u64;
        edit(&mut h);
        proto::Entry {
            envelope: Some(sign(h.encode_to_vec(), &f.deu)),
            payload,
            has_payload: true,
        }
    };
    let payload = approval.encode();
    let refused = |e: proto::Entry, field: &str| {
        let err = check(&f, e).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    };
    refused(resigned(&|h| h.kind = "decree".into(), payload.clone()), "kind");
    refused(resigned(&|h| h.cube = "flows".into(), payload.clone()), "cube");
    refused(resigned(&|h| h.period = "2024".into(), payload.clone()), "period");
    refused(
        resigned(&|h| h.audience = vec!["FRA".into()], payload.clone()),
        "audience",
    );
    // Versions below 2, digests of the wrong length, payloads of another kind.
    let low = proto::Approval {
        version: 1,
        digest: vec![9; 32],
    }
    .encode_to_vec();
    refused(resigned(&|_| {}, low), "approvals start at version 2");
    let short = proto::Approval {
        version: 2,
        digest: vec![9; 31],
    }
    .encode_to_vec();
    refused(resigned(&|_| {}, short), "31 bytes");
    let proposal = proto::Proposal {
        version: 1,
        parent: vec![0; 32],
        document: String::new(),
    }
    .encode_to_vec();
    refused(
        resigned(&|h| h.kind = "proposal".into(), proposal),
        "proposals start at version 2",
    );
    refused(resigned(&|_| {}, b"\xff\xff\xff".to_vec()), "malformed approval");
    // A governance payload swapped under a good header fails the digest.
    let mut swapped = good.clone();
    swapped.payload = Governance::Approval {
        version: 3,
        digest: [9; 32],
    }
    .encode();
    assert_eq!(check(&f, swapped).unwrap_err(), VerifyError::PayloadDigest);
}

#[test]
fn a_retired_key_signs_nothing_after_its_last_seq_whatever_the_date() {
    let mut f = fixture();
    let new_key = keypair();
    let deu = f
        .consortium
        .members
        .iter_mut()
        .find(|m| m.country == country("DEU"))
        .unwrap();
    deu.keys[0].retired_after_seq = Some(1);
    deu.keys.push(SigningKey {
        public_key: new_key.public_key().as_ref().try_into().unwrap(),
        valid_from: NOW - 1000,
        valid_until: None,
        retired_after_seq: None,
    });
    let first = entry(&f);
    let at_seq = |seq: u64, key: &Ed25519KeyPair| {
        let head = Head {
            seq: seq - 1,
            digest: [1; 32],
        };
        sign_entry(
            &dataset("DEU"),
            EntryParams {
                head: Some(head),
                created_at: NOW,
                audience: vec![],
                key,
            },
        )
    };
    assert!(check(&f, first).is_ok(), "seq 1 is within the retired key's range");
    let err = check(&f, at_seq(2, &f.deu)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::KeyRetired {
                seq: 2,
                retired_after_seq: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.label(), "key_retired");
    assert!(check(&f, at_seq(2, &new_key)).is_ok(), "the new key signs seq 2");
}

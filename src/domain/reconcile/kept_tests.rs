//! A refreshed view is the view computed afresh: random consortia of flows datasets (values,
//! confidential cells, totals, cells that cannot be placed, unreported sides, other definitions
//! and disclosure methods, two periods), then random new revisions and withdrawals, one or
//! several at a time.

use proptest::prelude::*;

use super::*;
use crate::domain::consortium::{Disclosure, Rule};
use crate::domain::dataset::unreported::Scope;
use crate::domain::model::{Cell, CellValue};
use crate::domain::reconcile::compute_current;
use crate::domain::reconcile::test_support::{country, dataset};

const MEMBERS: [&str; 4] = ["DEU", "FRA", "ITA", "POL"];
/// A partner outside the members: its side is always missing.
const OUTSIDER: &str = "USA";

fn periods() -> [Period; 2] {
    [Period::Year(2024), Period::Month(2024, 3)]
}

/// One cell of a member's flows dataset: direction, partner, citizenship, value.
fn arb_cell() -> impl Strategy<Value = Cell> {
    (
        prop::sample::select(vec!["OUT", "IN", "SIDEWAYS"]),
        prop::sample::select(vec!["DEU", "FRA", "ITA", "POL", OUTSIDER]),
        prop::sample::select(vec!["_T", "SYR", "UKR"]),
        prop::sample::select(vec!["_T", "F"]),
        prop_oneof![(0u64..30).prop_map(CellValue::Value), Just(CellValue::Confidential)],
    )
        .prop_map(|(direction, partner, citizenship, sex, value)| Cell {
            key: [direction, partner, citizenship, sex, "_T"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            value,
        })
}

/// A member's flows dataset for a period, revision `seq`.
fn arb_dataset(publisher: Country, period: Period, seq: u64) -> impl Strategy<Value = AcceptedDataset> {
    (
        prop::collection::vec(arb_cell(), 0..12),
        0u8..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(cells, unreported, cell_key, long)| {
            let cells = cells
                .into_iter()
                .filter(|c| c.key[1] != publisher.as_str() || c.key[0] == "SIDEWAYS")
                .collect();
            let mut d = dataset(publisher, seq, Cube::Flows, period, cells);
            match unreported {
                0 => d.dataset.unreported.inbound = Scope::All,
                1 => d.dataset.unreported.outbound = Scope::Partners([country("FRA")].into()),
                _ => {}
            }
            if cell_key {
                d.dataset.disclosure = Disclosure::CellKey {
                    max_noise: 2,
                    variance: 1.0,
                    small_count: 5,
                };
            }
            if long {
                d.dataset.definition.min_duration_months = 3;
            }
            d
        })
}

/// Every member's dataset for each period, each present or not.
fn arb_world(seq: u64) -> impl Strategy<Value = Vec<Option<AcceptedDataset>>> {
    let slots: Vec<_> = MEMBERS
        .iter()
        .flat_map(|m| periods().map(|p| (country(m), p)))
        .map(|(m, p)| prop::option::weighted(0.8, arb_dataset(m, p, seq)))
        .collect();
    slots
}

fn settings(rule: u8) -> Reconcile {
    Reconcile {
        rule: [Rule::Receiving, Rule::Sending, Rule::Max, Rule::Mean][usize::from(rule % 4)],
        ..Reconcile::default()
    }
}

fn key(d: &AcceptedDataset) -> (Country, Cube, Period) {
    (d.publisher, d.dataset.cube, d.dataset.period)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_refreshed_view_is_the_view_computed_afresh(
        before in arb_world(1),
        rounds in prop::collection::vec((arb_world(2), prop::collection::vec(0usize..8, 1..4)), 1..4),
        rule in 0u8..4,
    ) {
        let settings = settings(rule);
        let mut current: BTreeMap<(Country, Cube, Period), AcceptedDataset> =
            before.into_iter().flatten().map(|d| (key(&d), d)).collect();
        let mut kept = Kept::compute(current.values(), &settings);
        prop_assert_eq!(&**kept.view(), &compute_current(current.values(), &settings));
        for (round, (next, slots)) in rounds.into_iter().enumerate() {
            // Some slots change: a new revision, or the dataset leaves the view.
            let mut changes = Vec::new();
            for slot in slots {
                let (member, period) = (country(MEMBERS[slot / 2]), periods()[slot % 2]);
                let k = (member, Cube::Flows, period);
                if changes.iter().any(|(c, _): &(_, Option<AcceptedDataset>)| *c == k) {
                    continue;
                }
                let mut new = next[slot].clone();
                if let Some(d) = &mut new {
                    d.seq = 2 + round as u64;
                    d.digest[0] = round as u8;
                    current.insert(k, d.clone());
                } else {
                    current.remove(&k);
                }
                changes.push((k, new));
            }
            let keys: Vec<Change> = changes.iter().map(|(k, d)| (*k, d.is_some())).collect();
            let new: BTreeMap<_, _> = changes.into_iter().filter_map(|(k, d)| Some((k, d?))).collect();
            let load = |k| new.get(&k).cloned().ok_or("not changed");
            let refreshed = kept
                .refresh(&keys, &settings, load)
                .expect("every changed dataset reads")
                .expect("flows changes are followed");
            let afresh = compute_current(current.values(), &settings);
            prop_assert_eq!(&refreshed, &afresh);
            prop_assert_eq!(refreshed.digest(), afresh.digest());
            kept.keep(Arc::new(refreshed));
        }
    }
}

#[test]
fn a_change_it_does_not_follow_is_refused_and_changes_nothing() {
    let deu = country("DEU");
    let flows = dataset(deu, 1, Cube::Flows, Period::Year(2024), Vec::new());
    let settings = Reconcile::default();
    let mut kept = Kept::compute([&flows], &settings);
    let before = kept.view().clone();
    let asylum = dataset(deu, 2, Cube::Asylum, Period::Year(2024), Vec::new());
    let unread = |_| -> Result<AcceptedDataset, &str> { panic!("nothing is read for a refused change") };
    assert!(kept
        .refresh(&[(key(&asylum), true)], &settings, unread)
        .unwrap()
        .is_none());
    let other = Reconcile {
        rule: Rule::Max,
        ..Reconcile::default()
    };
    assert!(kept.refresh(&[(key(&flows), false)], &other, unread).unwrap().is_none());
    assert!(Arc::ptr_eq(kept.view(), &before));
    // Still followed afterwards: nothing was half changed.
    let view = kept
        .refresh(&[(key(&flows), false)], &settings, unread)
        .unwrap()
        .unwrap();
    assert_eq!(view, compute_current(Vec::<AcceptedDataset>::new(), &settings));
}

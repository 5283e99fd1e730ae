//! Tests of `compute`: pairing, rules, confidentiality, missing sides, revisions, totals, notes.

use super::test_support::*;
use super::*;
use crate::domain::consortium::{Definition, Disclosure, UnknownDuration};
use crate::domain::model::{CellValue, Cube, Period};

fn row_key(origin: Country, destination: Country, citizenship: &str) -> MirrorKey {
    MirrorKey {
        pair: PairKey {
            origin,
            destination,
            period: year(),
        },
        citizenship: Code::new(citizenship).unwrap(),
        sex: Code::new("F").unwrap(),
        age_band: Code::new("Y20-24").unwrap(),
    }
}

fn pair(origin: Country, destination: Country) -> PairKey {
    PairKey {
        origin,
        destination,
        period: year(),
    }
}

fn with_rule(rule: Rule) -> Reconcile {
    Reconcile { rule, ..settings() }
}

#[test]
fn sender_comes_from_out_and_receiver_from_in() {
    let deu_set = flows(deu(), 1, &[out(fra(), "FRA", 10), inn(fra(), "DEU", 3)]);
    let fra_set = flows(fra(), 1, &[inn(deu(), "FRA", 8), out(deu(), "DEU", 4)]);
    let view = compute(&[deu_set.clone(), fra_set.clone()], &settings());
    assert_eq!(view.rows.len(), 2);
    let deu_to_fra = &view.rows[&row_key(deu(), fra(), "FRA")];
    assert_eq!(
        deu_to_fra.sender,
        Side {
            reported: Reported::Value(10),
            source: Some(Arc::new(Source::of(&deu_set)))
        }
    );
    assert_eq!(
        deu_to_fra.receiver,
        Side {
            reported: Reported::Value(8),
            source: Some(Arc::new(Source::of(&fra_set)))
        }
    );
    let fra_to_deu = &view.rows[&row_key(fra(), deu(), "DEU")];
    assert_eq!(fra_to_deu.sender.reported, Reported::Value(4));
    assert_eq!(fra_to_deu.sender.source.as_ref().map(|s| s.publisher), Some(fra()));
    assert_eq!(fra_to_deu.receiver.reported, Reported::Value(3));
    assert_eq!(fra_to_deu.receiver.source.as_ref().map(|s| s.publisher), Some(deu()));
}

#[test]
fn every_rule_picks_its_figure() {
    use Reported::{Confidential, Missing, Value};
    let cases = [
        // (sender, receiver, receiving, sending, max, mean)
        (Value(10), Value(7), Some(7), Some(10), Some(10), Some(9)), // 8.5 rounds up
        (Value(10), Value(8), Some(8), Some(10), Some(10), Some(9)),
        (Value(3), Confidential, Some(3), Some(3), Some(3), Some(3)),
        (Missing, Value(5), Some(5), Some(5), Some(5), Some(5)),
        (Confidential, Missing, None, None, None, None),
        (Value(0), Value(1), Some(1), Some(0), Some(1), Some(1)),
        // A confidential cell is at least one move: a zero on the other side cannot replace it.
        (Value(0), Confidential, None, None, None, None),
        (Confidential, Value(0), None, None, None, None),
        (
            Value(u64::MAX),
            Value(u64::MAX),
            Some(u64::MAX),
            Some(u64::MAX),
            Some(u64::MAX),
            Some(u64::MAX),
        ),
    ];
    for (sender, receiver, receiving, sending, max, mean) in cases {
        assert_eq!(
            reconcile_figure(Rule::Receiving, sender, receiver),
            receiving,
            "{sender:?} {receiver:?}"
        );
        assert_eq!(
            reconcile_figure(Rule::Sending, sender, receiver),
            sending,
            "{sender:?} {receiver:?}"
        );
        assert_eq!(
            reconcile_figure(Rule::Max, sender, receiver),
            max,
            "{sender:?} {receiver:?}"
        );
        assert_eq!(
            reconcile_figure(Rule::Mean, sender, receiver),
            mean,
            "{sender:?} {receiver:?}"
        );
    }
}

#[test]
fn the_view_applies_its_rule_to_rows() {
    let input = [
        flows(deu(), 1, &[out(fra(), "FRA", 10)]),
        flows(fra(), 1, &[inn(deu(), "FRA", 7)]),
    ];
    let key = row_key(deu(), fra(), "FRA");
    let figures: Vec<Option<u64>> = Rule::ALL
        .into_iter()
        .map(|rule| compute(&input, &with_rule(rule)).rows[&key].reconciled)
        .collect();
    assert_eq!(figures, [Some(7), Some(10), Some(10), Some(9)]);
    assert_eq!(compute(&input, &with_rule(Rule::Max)).rule, Rule::Max);
}

#[test]
fn confidential_sides_never_contribute_a_value() {
    let view = compute(
        &[
            flows(
                deu(),
                1,
                &[confidential("OUT", fra(), "FRA"), confidential("OUT", fra(), "SYR")],
            ),
            flows(fra(), 1, &[inn(deu(), "FRA", 5), confidential("IN", deu(), "SYR")]),
        ],
        &with_rule(Rule::Sending),
    );
    let fra_row = &view.rows[&row_key(deu(), fra(), "FRA")];
    assert_eq!(fra_row.sender.reported, Reported::Confidential);
    assert_eq!(fra_row.reconciled, Some(5), "sending falls back to the receiver");
    assert_eq!(fra_row.asymmetry, None);
    assert!(!fra_row.flag);
    let syr_row = &view.rows[&row_key(deu(), fra(), "SYR")];
    assert_eq!(syr_row.reconciled, None);
    assert_eq!(syr_row.reconciled_status(), "C");
}

#[test]
fn missing_means_no_dataset_and_an_absent_cell_means_zero() {
    let deu_set = flows(deu(), 1, &[out(fra(), "SYR", 6), out(ita(), "SYR", 9)]);
    let fra_set = flows(fra(), 3, &[inn(deu(), "FRA", 2)]);
    let view = compute(&[deu_set, fra_set.clone()], &settings());
    // FRA published flows for 2024 but no SYR cell: zero, with FRA's dataset as the source.
    let to_fra = &view.rows[&row_key(deu(), fra(), "SYR")];
    assert_eq!(
        to_fra.receiver,
        Side {
            reported: Reported::Value(0),
            source: Some(Arc::new(Source::of(&fra_set)))
        }
    );
    assert_eq!(to_fra.reconciled, Some(0));
    assert_eq!(to_fra.asymmetry, Some(-1.0));
    // ITA published nothing: missing, no source, and receiving falls back to the sender.
    let to_ita = &view.rows[&row_key(deu(), ita(), "SYR")];
    assert_eq!(
        to_ita.receiver,
        Side {
            reported: Reported::Missing,
            source: None
        }
    );
    assert_eq!(to_ita.reconciled, Some(9));
    assert_eq!(to_ita.asymmetry, None);
    // The DEU→FRA FRA-citizen row exists because the receiver has a cell; the sender's is zero.
    assert_eq!(
        view.rows[&row_key(deu(), fra(), "FRA")].sender.reported,
        Reported::Value(0)
    );
    // A flows dataset for another period does not count for 2024.
    let quarter = dataset(ita(), 1, Cube::Flows, Period::Quarter(2024, 1), vec![]);
    let view = compute(&[flows(deu(), 1, &[out(ita(), "SYR", 9)]), quarter], &settings());
    assert_eq!(
        view.rows[&row_key(deu(), ita(), "SYR")].receiver.reported,
        Reported::Missing
    );
}

#[test]
fn asymmetry_and_its_flag() {
    let input = [
        flows(
            deu(),
            1,
            &[out(fra(), "FRA", 10), out(fra(), "ITA", 10), out(fra(), "SYR", 0)],
        ),
        flows(
            fra(),
            1,
            &[inn(deu(), "FRA", 8), inn(deu(), "ITA", 13), inn(deu(), "SYR", 0)],
        ),
    ];
    let view = compute(&input, &settings());
    let at_threshold = &view.rows[&row_key(deu(), fra(), "FRA")];
    assert_eq!(at_threshold.asymmetry, Some(-0.2));
    assert!(!at_threshold.flag, "exactly at the threshold is not past it");
    let past = &view.rows[&row_key(deu(), fra(), "ITA")];
    assert!((past.asymmetry.unwrap() - 3.0 / 13.0).abs() < 1e-12);
    assert!(past.flag);
    assert_eq!(
        view.rows[&row_key(deu(), fra(), "SYR")].asymmetry,
        None,
        "0 vs 0 has no asymmetry"
    );

    let lenient = compute(
        &input,
        &Reconcile {
            asymmetry_flag: 0.25,
            ..settings()
        },
    );
    assert!(!lenient.rows[&row_key(deu(), fra(), "ITA")].flag);
}

#[test]
fn the_highest_seq_wins_whatever_the_order() {
    let old = flows(deu(), 1, &[out(fra(), "FRA", 10)]);
    let new = flows(deu(), 4, &[out(fra(), "FRA", 12)]);
    let key = row_key(deu(), fra(), "FRA");
    for input in [vec![old.clone(), new.clone()], vec![new.clone(), old.clone()]] {
        let view = compute(&input, &settings());
        assert_eq!(
            view.rows[&key].sender,
            Side {
                reported: Reported::Value(12),
                source: Some(Arc::new(Source::of(&new)))
            }
        );
        assert_eq!(view.inputs[&(deu(), Cube::Flows, year())].seq, 4);
    }
    // A revision of another cube or period does not supersede this one.
    let asylum = dataset(deu(), 5, Cube::Asylum, year(), vec![]);
    let view = compute(&[new.clone(), asylum], &settings());
    assert_eq!(view.rows[&key].sender.reported, Reported::Value(12));
}

#[test]
fn a_duplicated_seq_resolves_to_the_smaller_digest() {
    let mut low = flows(deu(), 2, &[out(fra(), "FRA", 1)]);
    let mut high = flows(deu(), 2, &[out(fra(), "FRA", 2)]);
    low.digest = [1; 32];
    high.digest = [2; 32];
    let key = row_key(deu(), fra(), "FRA");
    for input in [vec![low.clone(), high.clone()], vec![high.clone(), low.clone()]] {
        assert_eq!(
            compute(&input, &settings()).rows[&key].sender.reported,
            Reported::Value(1)
        );
    }
}

#[test]
fn pair_totals_sum_published_cells_and_say_what_they_leave_out() {
    let view = compute(
        &[
            flows(
                deu(),
                1,
                &[
                    out(fra(), "FRA", 10),
                    out(fra(), "ITA", 20),
                    confidential("OUT", fra(), "SYR"),
                ],
            ),
            flows(fra(), 1, &[inn(deu(), "FRA", 12), inn(deu(), "SYR", 7)]),
        ],
        &settings(),
    );
    let total = &view.pairs[&pair(deu(), fra())];
    assert_eq!(total.sender.reported, Reported::Value(30));
    assert_eq!(total.sender.withheld, 1);
    assert!(total.sender.incomplete());
    assert_eq!(
        total.receiver.reported,
        Reported::Value(19),
        "FRA's absent ITA cell counts as zero"
    );
    assert!(!total.receiver.incomplete());
    // Receiving: 12 + 0 + 7.
    assert_eq!(total.reconciled, Some(19));
    assert_eq!(total.reconciled_withheld, 0);
    assert!((total.asymmetry.unwrap() - (19.0 - 30.0) / 30.0).abs() < 1e-12);
    assert!(total.flag);
    assert_eq!(total.sender.source.map(|s| s.publisher), Some(deu()));
    assert_eq!(view.pairs.len(), 1);
}

#[test]
fn a_total_of_only_confidential_cells_is_confidential() {
    let view = compute(&[flows(deu(), 1, &[confidential("OUT", ita(), "SYR")])], &settings());
    let total = &view.pairs[&pair(deu(), ita())];
    assert_eq!(total.sender.reported, Reported::Confidential);
    assert_eq!(total.sender.withheld, 1);
    assert_eq!(total.receiver.reported, Reported::Missing);
    assert_eq!(total.reconciled, None);
    assert_eq!(total.reconciled_withheld, 1);
    assert_eq!(total.reconciled_status(), "C");
}

#[test]
fn a_side_with_only_confidential_cells_and_zeros_is_confidential_not_zero() {
    // DEU withholds its one OUT cell to FRA; FRA publishes a cell DEU lacks, which DEU reads as
    // zero. DEU's total must still say confidential, not 0 (which would also flag the pair).
    let view = compute(
        &[
            flows(deu(), 1, &[confidential("OUT", fra(), "SYR")]),
            flows(fra(), 1, &[inn(deu(), "AFG", 6), confidential("IN", deu(), "SYR")]),
        ],
        &settings(),
    );
    let total = &view.pairs[&pair(deu(), fra())];
    assert_eq!(total.sender.reported, Reported::Confidential);
    assert_eq!(total.sender.withheld, 1);
    assert_eq!(total.receiver.reported, Reported::Value(6));
    assert_eq!(total.asymmetry, None);
    assert!(!total.flag);
    let afg = &view.rows[&row_key(deu(), fra(), "AFG")];
    assert_eq!(afg.sender.reported, Reported::Value(0));
    assert_eq!(afg.reconciled, Some(6));
    // A side that published the dataset and nothing for the pair reads zero.
    let view = compute(
        &[
            flows(deu(), 1, &[out(ita(), "SYR", 9)]),
            flows(fra(), 1, &[inn(deu(), "AFG", 6)]),
        ],
        &settings(),
    );
    assert_eq!(view.pairs[&pair(deu(), fra())].sender.reported, Reported::Value(0));
}

#[test]
fn pairs_with_different_definitions_or_disclosure_get_notes() {
    let deu_set = flows(deu(), 1, &[out(fra(), "FRA", 10)]);
    let mut fra_set = flows(fra(), 1, &[inn(deu(), "FRA", 8)]);
    fra_set.dataset.definition = Definition {
        min_duration_months: 6,
        unknown_duration: UnknownDuration::Exclude,
    };
    fra_set.dataset.disclosure = Disclosure::CellKey {
        max_noise: 2,
        variance: 1.5,
        small_count: 3,
    };
    let view = compute(&[deu_set, fra_set], &settings());
    let texts: Vec<&str> = view.notes.iter().map(|n| n.text.as_str()).collect();
    assert!(
        texts.contains(
            &"DEU and FRA use different definitions: min_duration 12 vs 6 months; unknown durations count vs exclude"
        ),
        "{texts:?}"
    );
    assert!(texts.contains(&"DEU and FRA use different disclosure methods: threshold (k=5) vs cell-key (max_noise 2, variance 1.5, small_count 3)"), "{texts:?}");
    assert!(
        texts.contains(&"FRA figures are perturbed (cell-key method): cells need not add up to the perturbed totals"),
        "{texts:?}"
    );
    assert!(view.notes.iter().all(|n| n.pair == Some(pair(deu(), fra()))));

    let same = compute(
        &[
            flows(deu(), 1, &[out(fra(), "FRA", 10)]),
            flows(fra(), 1, &[inn(deu(), "FRA", 8)]),
        ],
        &settings(),
    );
    assert!(same.notes.is_empty(), "{:?}", same.notes);
}

#[test]
fn unreadable_cells_are_left_out_with_a_note() {
    let view = compute(
        &[flows(
            deu(),
            1,
            &[
                cell(&["OUT", "FRX", "SYR", "F", "Y20-24"], CellValue::Value(3)),
                cell(&["SIDEWAYS", "FRA", "SYR", "F", "Y20-24"], CellValue::Value(3)),
                cell(&["OUT", "DEU", "SYR", "F", "Y20-24"], CellValue::Value(3)),
                cell(&["OUT", "FRA"], CellValue::Value(3)),
            ],
        )],
        &settings(),
    );
    assert!(view.rows.is_empty());
    assert_eq!(view.notes.len(), 4);
    assert!(view.notes.iter().any(|n| n.text.contains("unknown partner \"FRX\"")));
    assert!(view
        .notes
        .iter()
        .all(|n| n.pair.is_none() && n.text.starts_with("DEU flows 2024 (seq 1): cell")));
}

#[test]
fn asylum_and_permits_sit_side_by_side() {
    let view = compute(
        &[
            dataset(
                deu(),
                1,
                Cube::Asylum,
                year(),
                vec![cell(&["SYR", "M", "Y20-24"], CellValue::Value(40))],
            ),
            dataset(
                fra(),
                2,
                Cube::Asylum,
                year(),
                vec![cell(&["AFG", "F", "Y0-4"], CellValue::Confidential)],
            ),
            dataset(
                ita(),
                1,
                Cube::Asylum,
                Period::Year(2023),
                vec![cell(&["SYR", "M", "Y20-24"], CellValue::Value(9))],
            ),
        ],
        &settings(),
    );
    assert!(view.rows.is_empty() && view.pairs.is_empty());
    let keys: Vec<(Period, Vec<String>)> = view
        .side_by_side
        .keys()
        .map(|k| (k.period, k.dimensions.clone()))
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0].0, Period::Year(2023));
    let syr_2024 = SideBySideKey {
        cube: Cube::Asylum,
        period: year(),
        dimensions: vec!["SYR".into(), "M".into(), "Y20-24".into()],
    };
    let entries = &view.side_by_side[&syr_2024];
    assert_eq!(
        entries.keys().copied().collect::<Vec<_>>(),
        [deu(), fra()],
        "ITA published 2023 only"
    );
    assert_eq!(entries[&deu()].reported, Reported::Value(40));
    assert_eq!(entries[&fra()].reported, Reported::Value(0));
    assert_eq!(entries[&fra()].source.seq, 2);
}

#[test]
fn hex_is_lower_case() {
    assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    assert_eq!(hex(&[]), "");
}

#[test]
fn published_totals_are_the_pair_totals_exactly() {
    let total = |direction: &str, partner: Country, value: CellValue| {
        cell(&[direction, partner.as_str(), "_T", "_T", "_T"], value)
    };
    let view = compute(
        &[
            // DEU publishes 30 + a confidential cell, and its total 33.
            flows(
                deu(),
                1,
                &[
                    out(fra(), "FRA", 10),
                    out(fra(), "ITA", 20),
                    confidential("OUT", fra(), "SYR"),
                    total("OUT", fra(), CellValue::Value(33)),
                    total("OUT", ita(), CellValue::Confidential),
                ],
            ),
            // FRA publishes margins but nothing from ITA: its total for ITA is 0.
            flows(
                fra(),
                1,
                &[
                    inn(deu(), "FRA", 12),
                    confidential("IN", deu(), "SYR"),
                    total("IN", deu(), CellValue::Value(36)),
                ],
            ),
            // ITA publishes no margins (a dataset from before them): its side is summed.
            flows(ita(), 1, &[inn(deu(), "FRA", 7), confidential("IN", deu(), "SYR")]),
        ],
        &settings(),
    );
    let deu_fra = &view.pairs[&pair(deu(), fra())];
    assert_eq!(deu_fra.sender.reported, Reported::Value(33));
    assert_eq!(deu_fra.receiver.reported, Reported::Value(36));
    assert!(deu_fra.sender.published && !deu_fra.sender.incomplete());
    assert_eq!(
        deu_fra.reconciled,
        Some(36),
        "receiving: the receiver's published total"
    );
    assert!((deu_fra.asymmetry.unwrap() - 3.0 / 36.0).abs() < 1e-12);
    // The totals are not rows.
    assert!(view.rows.iter().all(|(key, _)| key.citizenship.as_str() != "_T"));

    let deu_ita = &view.pairs[&pair(deu(), ita())];
    assert_eq!(deu_ita.sender.reported, Reported::Confidential);
    assert!(deu_ita.sender.published);
    assert_eq!(deu_ita.receiver.reported, Reported::Value(7), "ITA's side is summed");
    assert_eq!(deu_ita.receiver.withheld, 1);
    assert!(!deu_ita.receiver.published);

    // FRA's margins name no pair with ITA: zero, not missing.
    let fra_ita = compute(
        &[
            flows(
                fra(),
                1,
                &[total("IN", deu(), CellValue::Value(5)), inn(deu(), "FRA", 5)],
            ),
            flows(
                ita(),
                1,
                &[
                    cell(&["IN", "FRA", "_T", "_T", "_T"], CellValue::Value(9)),
                    inn(fra(), "ITA", 9),
                ],
            ),
        ],
        &settings(),
    );
    let pair_total = &fra_ita.pairs[&pair(fra(), ita())];
    assert_eq!(pair_total.sender.reported, Reported::Value(0));
    assert_eq!(pair_total.receiver.reported, Reported::Value(9));
    assert_eq!(pair_total.reconciled, Some(9));
}

#[test]
fn an_unreported_side_is_missing_not_zero_and_the_rule_falls_back() {
    let total = |direction: &str, partner: Country, value: u64| {
        cell(
            &[direction, partner.as_str(), "_T", "_T", "_T"],
            CellValue::Value(value),
        )
    };
    // DEU reports no emigration at all and no immigration from ITA; FRA and ITA report both.
    let mut deu_flows = flows(deu(), 1, &[inn(fra(), "FRA", 8), total("IN", fra(), 8)]);
    deu_flows.dataset.unreported.add_argument("OUT", deu()).unwrap();
    deu_flows.dataset.unreported.add_argument("IN:ITA", deu()).unwrap();
    let inputs = [
        deu_flows,
        flows(
            fra(),
            1,
            &[
                inn(deu(), "DEU", 11),
                total("IN", deu(), 11),
                out(deu(), "FRA", 6),
                total("OUT", deu(), 6),
            ],
        ),
        flows(ita(), 1, &[out(deu(), "ITA", 9), total("OUT", deu(), 9)]),
    ];
    let view = compute(&inputs, &with_rule(Rule::Sending));

    // DEU -> FRA: DEU's OUT side is missing (not 0), so `sending` falls back to FRA's 11.
    let row = &view.rows.get(&row_key(deu(), fra(), "DEU")).unwrap();
    assert_eq!(row.sender.reported, Reported::Missing);
    // The dataset that declared the side unreported stays its provenance.
    assert_eq!(row.sender.source.as_deref().map(|s| s.publisher), Some(deu()));
    assert_eq!(row.reconciled, Some(11));
    let deu_fra = &view.pairs[&pair(deu(), fra())];
    assert_eq!(deu_fra.sender.reported, Reported::Missing);
    assert_eq!(deu_fra.reconciled, Some(11));
    assert_eq!(deu_fra.asymmetry, None);
    // ITA -> DEU: DEU's IN side from ITA is missing; ITA's 9 stands.
    let ita_deu = &view.pairs[&pair(ita(), deu())];
    assert_eq!(ita_deu.receiver.reported, Reported::Missing);
    assert_eq!(ita_deu.reconciled, Some(9));
    // FRA -> DEU is reported by both: DEU's 8 beside FRA's 6.
    let fra_deu = &view.pairs[&pair(fra(), deu())];
    assert_eq!(
        (fra_deu.sender.reported, fra_deu.receiver.reported),
        (Reported::Value(6), Reported::Value(8))
    );
    // The notes say why, and the scope is part of what the view's digest covers.
    assert!(view
        .notes
        .iter()
        .any(|n| n.pair == Some(pair(deu(), fra())) && n.text.contains("DEU does not report emigration to FRA")));
    // SDMX-CSV says so too: an observation with no value and OBS_STATUS L (not collected).
    let sdmx = super::render(&view, &ViewFilter::default(), super::Format::SdmxCsv);
    assert!(
        sdmx.lines()
            .any(|l| l == "dataflow,ACCORD:MIGR_FLOWS(1.0),I,DEU,FRA,OUT,2024,DEU,F,Y20-24,,L,F,,"),
        "{sdmx}"
    );
    let mut reported_everything = inputs.clone();
    reported_everything[0].dataset.unreported = Default::default();
    let as_zero = compute(&reported_everything, &with_rule(Rule::Sending));
    assert_eq!(
        as_zero.pairs[&pair(deu(), fra())].reconciled,
        Some(0),
        "without the scope, a zero"
    );
    assert_ne!(view.digest(), as_zero.digest());
}

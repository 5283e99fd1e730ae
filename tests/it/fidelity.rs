//! Fidelity of the reconciliation rules against the synthetic truth: with a fixed seed and the
//! default consortium settings, preferring the receiving country's figure must be closer to the
//! true flows than preferring the sender's (emigration is under-reported: people don't
//! deregister). Runs the real path: synth → ingest into a store → live aggregates → disclosure
//! control → datasets → view.

use accord::aggregate::disclosure::protect;
use accord::consortium::{Definition, Disclosure, Reconcile, Rule};
use accord::dataset::envelope::sha256;
use accord::dataset::{AcceptedDataset, Dataset};
use accord::date::Date;
use accord::ingest::ingest_file;
use accord::model::Country;
use accord::model::{Cube, Period};
use accord::reconcile::{compute, pair_total_mape, read_truth};
use accord::record::validate::ValidationContext;
use accord::store::Store;
use accord::synth::{synthesize, SynthOptions};

#[test]
fn receiving_beats_sending_on_default_settings() {
    let dir = tempfile::tempdir().unwrap();
    let countries: Vec<Country> = ["DEU", "FRA", "ITA", "POL"]
        .iter()
        .map(|c| Country::parse(c).unwrap())
        .collect();
    let year = Date::today().year - 1;
    let summary = synthesize(
        &SynthOptions {
            countries: countries.clone(),
            year,
            records: 15_000,
            seed: 11,
            out: dir.path().join("records"),
            registers: accord::synth::Registers::Plain,
        },
        &mut |_| {},
    )
    .unwrap();
    let period = Period::Year(year);
    let mut accepted = Vec::new();
    for (country, file, _) in &summary.files {
        let store = Store::open(&dir.path().join(country.lower()), *country, Definition::default()).unwrap();
        ingest_file(
            file,
            ValidationContext::for_today(*country),
            false,
            &mut &store,
            &mut |_| {},
        )
        .unwrap();
        let cells = protect(
            &Disclosure::default(),
            store.period_tallies(Cube::Flows, period).unwrap(),
        );
        assert!(!cells.is_empty(), "{country} published no flows");
        let dataset = Dataset {
            publisher: *country,
            cube: Cube::Flows,
            period,
            definition: Definition::default(),
            disclosure: Disclosure::default(),
            cells,
            unreported: Default::default(),
        };
        accepted.push(AcceptedDataset {
            publisher: *country,
            seq: 1,
            digest: sha256(&dataset.encode()),
            dataset,
        });
    }
    let view = compute(&accepted, &Reconcile::default());
    let truth = read_truth(&std::fs::read_to_string(&summary.truth).unwrap(), period).unwrap();
    let errors = pair_total_mape(&view, &truth);
    let mape = |rule: Rule| errors.iter().find(|(r, _)| *r == rule).map(|(_, e)| *e).unwrap();
    assert_eq!(errors.len(), 4, "{errors:?}");
    let (receiving, sending) = (mape(Rule::Receiving), mape(Rule::Sending));
    eprintln!("pair-total MAPE by rule: {errors:?}");
    assert!(
        receiving < sending,
        "receiving {receiving:.2}% should beat sending {sending:.2}%: {errors:?}"
    );
    assert!(receiving.is_finite() && receiving < 50.0, "{errors:?}");
}

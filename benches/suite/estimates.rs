//! Issue 29: the modelled estimates (SPEC §15) against the truth, beside every fixed rule.
//! `accord synth` draws each member's registers from measurement classes (coverage from the
//! class prior, a duration rule, per-corridor scatter by accuracy); each member's records go
//! through the real path (ingest into a sled store, live aggregates with margins, threshold
//! disclosure control, a dataset), the view is computed and finished under a consortium that
//! declares the classes (`reconcile::under`), and its pair totals are scored against
//! `truth.csv`: MAPE of the estimate and of each rule, and the share of pairs whose 95% interval
//! holds the truth. Scenarios: several seeds with the true classes declared; one member's
//! class declared wrong; members counting without a duration minimum and permanent moves only.
//! Also the estimates' share of the view's time.

use std::collections::BTreeMap;

use accord::aggregate::disclosure::protect;
use accord::aggregate::margins;
use accord::consortium::{
    Accuracy, Consortium, Definition, Disclosure, EstimateMethod, Estimates, Measurement, Member, Reconcile, Register,
    SigningKey, Undercount,
};
use accord::dataset::envelope::sha256;
use accord::dataset::{AcceptedDataset, Dataset};
use accord::ingest::ingest_file;
use accord::model::{Country, Cube, Period};
use accord::reconcile::{compute, estimate_fidelity, pair_total_mape, read_truth, under, ConsortiumRef};
use accord::record::validate::ValidationContext;
use accord::store::Store;
use accord::synth::{synthesize, Registers, SynthOptions, SynthSummary};

use super::{country, line, section, timed, Fixture};

const MEMBERS: [&str; 8] = ["DEU", "FRA", "ITA", "ESP", "POL", "NLD", "SWE", "AUT"];
/// Records per member file.
const RECORDS: u64 = 40_000;

/// One scenario: the true classes, and what the consortium declares instead for some members.
struct Scenario {
    name: &'static str,
    seed: u64,
    /// Members whose true classes are set (the rest drawn from the seed).
    truth: Vec<(&'static str, Measurement)>,
    /// Members whose declared classes differ from the truth.
    declared: Vec<(&'static str, Measurement)>,
    /// Every register accurate (s = 0.27): how far the estimate gets where the registers'
    /// scatter is small.
    accurate: bool,
}

fn register(undercount: Undercount, accuracy: Accuracy, duration_months: u32) -> Register {
    Register {
        undercount,
        accuracy,
        duration_months,
    }
}

fn scenarios() -> Vec<Scenario> {
    let truly_high = Measurement {
        emigration: register(Undercount::High, Accuracy::High, 12),
        immigration: register(Undercount::High, Accuracy::Low, 12),
    };
    // What POL declares: its emigration register as if it missed little.
    let declared_low = Measurement {
        emigration: register(Undercount::Low, Accuracy::High, 12),
        ..truly_high
    };
    let mut out: Vec<Scenario> = (1..=3)
        .map(|seed| Scenario {
            name: "classes drawn, declared as drawn",
            seed,
            truth: Vec::new(),
            declared: Vec::new(),
            accurate: false,
        })
        .collect();
    out.push(Scenario {
        name: "POL truly high undercount, declares low",
        seed: 4,
        truth: vec![("POL", truly_high)],
        declared: vec![("POL", declared_low)],
        accurate: false,
    });
    out.push(Scenario {
        name: "ITA counts without a minimum, SWE permanent moves only",
        seed: 5,
        truth: vec![
            (
                "ITA",
                Measurement {
                    emigration: register(Undercount::Medium, Accuracy::Low, 0),
                    immigration: register(Undercount::Low, Accuracy::High, 0),
                },
            ),
            (
                "SWE",
                Measurement {
                    emigration: register(Undercount::Low, Accuracy::High, 60),
                    immigration: register(Undercount::Medium, Accuracy::Low, 60),
                },
            ),
        ],
        declared: Vec::new(),
        accurate: false,
    });
    for seed in [1, 2] {
        out.push(Scenario {
            name: "as drawn, but every register accurate",
            seed,
            truth: Vec::new(),
            declared: Vec::new(),
            accurate: true,
        });
    }
    out
}

pub fn run(fx: &mut Fixture) {
    section("estimates (issue 29): the SPEC §15 estimate and every rule against truth.csv");
    line(
        "input",
        format!(
            "{} members, {RECORDS} records each, threshold k = 5 with margins",
            MEMBERS.len()
        ),
    );
    let mut worst_ratio: f64 = 0.0;
    let mut coverage_range = (f64::INFINITY, f64::NEG_INFINITY);
    for scenario in scenarios() {
        let countries: Vec<Country> = MEMBERS.iter().map(|c| country(c)).collect();
        let drawn = Registers::Drawn;
        let truth_classes: BTreeMap<Country, Measurement> = countries
            .iter()
            .map(|&c| {
                let set = scenario
                    .truth
                    .iter()
                    .find(|(code, _)| country(code) == c)
                    .map(|(_, m)| *m);
                let mut classes = set.unwrap_or_else(|| drawn.classes(scenario.seed, c).expect("drawn classes"));
                if scenario.accurate {
                    classes.emigration.accuracy = Accuracy::High;
                    classes.immigration.accuracy = Accuracy::High;
                }
                (c, classes)
            })
            .collect();
        let out = fx
            .dir
            .path()
            .join(format!("estimates-{}-{}", scenario.seed, scenario.accurate));
        let summary = synthesize(
            &SynthOptions {
                countries: countries.clone(),
                year: fx.year,
                records: RECORDS,
                seed: scenario.seed,
                out: out.clone(),
                registers: Registers::Declared(truth_classes.clone()),
            },
            &mut |_| {},
        )
        .expect("synthesize");
        let period = Period::Year(fx.year);
        let accepted = published(&summary, &out, period);
        let mut declared = truth_classes.clone();
        for (code, wrong) in &scenario.declared {
            declared.insert(country(code), *wrong);
        }
        let consortium = consortium(&declared);
        let (mut view, view_secs) = timed(|| compute(&accepted, &Reconcile::default()));
        let ((), estimate_secs) = timed(|| under(&mut view, ConsortiumRef::default(), &consortium));
        let truth = read_truth(&std::fs::read_to_string(&summary.truth).expect("truth.csv"), period).expect("truth");
        let rules = pair_total_mape(&view, &truth);
        let ceiling = oracle(
            &view,
            &truth,
            &truth_classes,
            summary.registers.as_ref().expect("registers.toml"),
        );
        let fidelity = estimate_fidelity(&view, &truth).expect("scored pairs");
        let (best_rule, best) = rules
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("rules scored");
        let ratio = fidelity.mape / best;
        worst_ratio = worst_ratio.max(ratio);
        coverage_range = (
            coverage_range.0.min(fidelity.covered),
            coverage_range.1.max(fidelity.covered),
        );
        let reference: Vec<String> = consortium.estimates.reference.iter().map(Country::to_string).collect();
        line(
            &format!("seed {}: {}", scenario.seed, scenario.name),
            format!("{} pairs, reference {}", fidelity.pairs, reference.join(",")),
        );
        line(
            "  MAPE by rule",
            rules
                .iter()
                .map(|(r, e)| format!("{} {e:.1}%", r.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        );
        line(
            "  estimate MAPE / best rule",
            format!(
                "{:.1}% / {:.1}% ({}) = {ratio:.2}x (target <= 0.75x)",
                fidelity.mape,
                best,
                best_rule.as_str()
            ),
        );
        line(
            "  the same with the true coverages (the ceiling)",
            format!("{ceiling:.1}% = {:.2}x the best rule", ceiling / best),
        );
        line(
            "  95% intervals holding the truth",
            format!("{:.1}% (target 90-98%)", 100.0 * fidelity.covered),
        );
        if let Some(pol) = view.measurement.iter().find(|f| f.member == country("POL")) {
            if !scenario.declared.is_empty() {
                line(
                    "  POL emigration: declared / fitted class, coverage",
                    format!(
                        "{} / {}, {:.2} [{:.2}, {:.2}]",
                        pol.declared.undercount.as_str(),
                        pol.class.as_str(),
                        pol.coverage,
                        pol.coverage_lower,
                        pol.coverage_upper
                    ),
                );
            }
        }
        line(
            "  view / estimates time",
            format!(
                "{:.1} ms / {:.2} ms ({:.1}% of the view, target < 10%)",
                view_secs * 1e3,
                estimate_secs * 1e3,
                100.0 * estimate_secs / view_secs
            ),
        );
    }
    cost_at(fx, &EU27);
    line(
        "worst estimate / best rule over the scenarios",
        format!("{worst_ratio:.2}x (target <= 0.75x)"),
    );
    line(
        "interval coverage over the scenarios",
        format!(
            "{:.1}% to {:.1}% (target 90-98%)",
            100.0 * coverage_range.0,
            100.0 * coverage_range.1
        ),
    );
}

/// A consortium declaring `classes`, asking for imem-lite estimates anchored on the members
/// with the best immigration registers, as a consortium would pick them
/// ([`accord::demo::reference_members`]).
fn consortium(classes: &BTreeMap<Country, Measurement>) -> Consortium {
    let declared: Vec<(Country, Measurement)> = classes.iter().map(|(c, m)| (*c, *m)).collect();
    let reference = accord::demo::reference_members(&declared);
    Consortium {
        name: "estimates bench".into(),
        test_only: true,
        definition: Definition::default(),
        disclosure: Disclosure::default(),
        reconcile: Reconcile::default(),
        quorum: Default::default(),
        sharing: accord::consortium::SharingDefault::All,
        agreements: Vec::new(),
        forks: Vec::new(),
        estimates: Estimates {
            method: EstimateMethod::ImemLite,
            reference,
        },
        members: classes
            .iter()
            .enumerate()
            .map(|(i, (&country, &measurement))| Member {
                country,
                keys: vec![SigningKey {
                    public_key: [i as u8; 32],
                    valid_from: 0,
                    valid_until: None,
                    retired_after_seq: None,
                }],
                measurement,
            })
            .collect(),
    }
}

/// The estimate an oracle would make, knowing each register's drawn coverage (from the comments
/// of `registers.toml`) and its true accuracy and duration factor: the precision-weighted mean
/// of the sides corrected exactly. What is left is the registers' per-corridor scatter, which no
/// estimator can remove: the ceiling the estimate is judged against. MAPE in percent over the
/// same pairs.
fn oracle(
    view: &accord::reconcile::View,
    truth: &accord::reconcile::fidelity::Truth,
    classes: &BTreeMap<Country, Measurement>,
    registers: &std::path::Path,
) -> f64 {
    use accord::reconcile::estimate::prior::{accuracy_sd, duration_factor};
    let text = std::fs::read_to_string(registers).expect("registers.toml");
    let mut coverage: BTreeMap<Country, (f64, f64)> = BTreeMap::new();
    let mut current = None;
    for l in text.lines() {
        if let Some(code) = l.strip_prefix("country = \"") {
            current = Country::parse(code.trim_end_matches('"'));
        }
        if let Some(rest) = l.strip_prefix("# coverage drawn: emigration ") {
            let (e, i) = rest.split_once(", immigration ").expect("both coverages");
            coverage.insert(
                current.expect("a country first"),
                (e.parse().expect("number"), i.parse().expect("number")),
            );
        }
    }
    let (mut error, mut n) = (0.0, 0usize);
    for ((origin, destination, period), &t) in truth {
        let key = accord::reconcile::PairKey {
            origin: *origin,
            destination: *destination,
            period: *period,
        };
        let (Some(total), Some(co), Some(cd)) = (view.pairs.get(&key), coverage.get(origin), coverage.get(destination))
        else {
            continue;
        };
        if t == 0 || total.estimate.is_none() {
            continue;
        }
        let (mut precision, mut weighted) = (0.0, 0.0);
        for (reported, c, register) in [
            (total.sender.reported, co.0, classes[origin].emigration),
            (total.receiver.reported, cd.1, classes[destination].immigration),
        ] {
            if let accord::reconcile::Reported::Value(z) = reported {
                let z = (z as f64).max(0.5);
                let variance = accuracy_sd(register.accuracy).powi(2) + 1.0 / z;
                weighted += (z.ln() - f64::ln(c) + duration_factor(register.duration_months).ln()) / variance;
                precision += 1.0 / variance;
            }
        }
        if precision > 0.0 {
            error += ((weighted / precision).exp() - t as f64).abs() / t as f64;
            n += 1;
        }
    }
    100.0 * error / n.max(1) as f64
}

/// The 27 members of SPEC §15's Eurostat comparison.
const EU27: [&str; 27] = [
    "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL", "ITA", "LVA",
    "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE",
];

/// The estimates' share of the view's time for a consortium of `members` (10,000 records each,
/// classes drawn), median of five.
fn cost_at(fx: &Fixture, members: &[&str]) {
    let countries: Vec<Country> = members.iter().map(|c| country(c)).collect();
    let out = fx.dir.path().join(format!("estimates-cost-{}", members.len()));
    let summary = synthesize(
        &SynthOptions {
            countries: countries.clone(),
            year: fx.year,
            records: 10_000,
            seed: 27,
            out: out.clone(),
            registers: Registers::Drawn,
        },
        &mut |_| {},
    )
    .expect("synthesize");
    let period = Period::Year(fx.year);
    let accepted = published(&summary, &out, period);
    let classes: BTreeMap<Country, Measurement> = countries
        .iter()
        .map(|&c| (c, Registers::Drawn.classes(27, c).expect("drawn classes")))
        .collect();
    let consortium = consortium(&classes);
    let mut runs: Vec<(f64, f64, usize)> = (0..5)
        .map(|_| {
            let (mut view, view_secs) = timed(|| compute(&accepted, &Reconcile::default()));
            let ((), estimate_secs) = timed(|| under(&mut view, ConsortiumRef::default(), &consortium));
            (view_secs, estimate_secs, view.pairs.len())
        })
        .collect();
    runs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (view_secs, estimate_secs, pairs) = runs[2];
    line(
        &format!("cost at {} members (10,000 records each)", members.len()),
        format!(
            "{pairs} pair totals: view {:.1} ms, estimates {:.2} ms = {:.1}% of the view (target < 10%)",
            view_secs * 1e3,
            estimate_secs * 1e3,
            100.0 * estimate_secs / view_secs
        ),
    );
}

/// Each member's `flows` for `period` as the real path makes it: its file ingested into a sled
/// store under `out`, the live aggregates with margins, threshold disclosure control, a dataset.
fn published(summary: &SynthSummary, out: &std::path::Path, period: Period) -> Vec<AcceptedDataset> {
    summary
        .files
        .iter()
        .map(|(member, file, _)| {
            let store = Store::open(&out.join(member.lower()), *member, Definition::default()).expect("open store");
            ingest_file(
                file,
                ValidationContext::for_today(*member),
                false,
                &mut &store,
                &mut |_| {},
            )
            .expect("ingest");
            let tallies =
                margins::with_totals(Cube::Flows, store.period_tallies(Cube::Flows, period).expect("tallies"));
            let dataset = Dataset {
                publisher: *member,
                cube: Cube::Flows,
                period,
                definition: Definition::default(),
                disclosure: Disclosure::default(),
                cells: protect(&Disclosure::default(), tallies),
                unreported: Default::default(),
            };
            AcceptedDataset {
                publisher: *member,
                seq: 1,
                digest: sha256(&dataset.encode()),
                dataset,
            }
        })
        .collect()
}

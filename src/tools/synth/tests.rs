//! Tests for the generator: determinism, validity of every field, sizes, and the invariants
//! that tie the files to the true moves and to `truth.csv`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;

use super::model::{World, LONG_TERM_MONTHS, MAX_EMIGRATION_DELAY, MAX_IMMIGRATION_DELAY};
use super::*;
use crate::domain::record::{Reason, Sex};

const TODAY: Date = Date {
    year: 2026,
    month: 6,
    day: 1,
};

fn codes(list: &[&str]) -> Vec<Country> {
    list.iter().map(|c| Country::parse(c).unwrap()).collect()
}

fn options(out: &Path, seed: u64, records: u64) -> SynthOptions {
    SynthOptions {
        countries: codes(&["DEU", "FRA", "ITA"]),
        year: 2024,
        records,
        seed,
        out: out.to_path_buf(),
        registers: Registers::Plain,
    }
}

fn run(opts: &SynthOptions, today: Date) -> SynthSummary {
    synthesize_as_of(opts, today, &mut |_| {}).unwrap()
}

fn read(path: &Path) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().clone();
    let rows = reader.records().map(|r| r.unwrap()).collect();
    (header, rows)
}

fn day(text: &str) -> i64 {
    Date::parse(text).unwrap().day_number()
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = run(&options(a.path(), 42, 1500), TODAY);
    let second = run(&options(b.path(), 42, 1500), TODAY);
    run(&options(c.path(), 43, 1500), TODAY);
    assert_eq!(first.moves, second.moves);
    for name in ["deu.csv", "fra.csv", "ita.csv", "truth.csv"] {
        let bytes = fs::read(a.path().join(name)).unwrap();
        assert!(bytes.len() > 1000, "{name} is nearly empty");
        assert_eq!(
            bytes,
            fs::read(b.path().join(name)).unwrap(),
            "{name} differs between runs"
        );
        assert_ne!(bytes, fs::read(c.path().join(name)).unwrap(), "{name} ignores the seed");
    }
}

#[test]
fn every_record_passes_the_field_rules() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&options(dir.path(), 7, 3000), TODAY);
    let (first, last) = (day("2024-01-01"), day("2024-12-31"));
    let (mut unknown_citizenship, mut empty_birth_year, mut empty_duration, mut empty_reason) = (0, 0, 0, 0);
    for (reporter, path, count) in &summary.files {
        assert_eq!(path, &dir.path().join(format!("{}.csv", reporter.lower())));
        let (header, rows) = read(path);
        assert_eq!(header.iter().collect::<Vec<_>>(), COLUMNS);
        assert_eq!(rows.len() as u64, *count);
        let mut ids = HashSet::new();
        for row in &rows {
            let field = |name: &str| &row[COLUMNS.iter().position(|c| *c == name).unwrap()];
            let id = field("event_id");
            assert!(id.starts_with(&format!("{reporter}-")) && id.len() <= 64, "{id}");
            assert!(ids.insert(id.to_string()), "duplicate event id {id}");
            let person = field("person_id");
            assert!(person.len() == 17 && person.starts_with('P'), "{person}");
            assert!(person[1..].bytes().all(|b| b.is_ascii_hexdigit()), "{person}");
            let event_type = EventType::parse(field("event_type")).unwrap();
            let date = Date::parse(field("event_date")).unwrap();
            assert!((first..=last).contains(&date.day_number()), "{date} outside 2024");
            let citizenship = Country::parse(field("citizenship")).unwrap();
            unknown_citizenship += usize::from(!citizenship.is_iso());
            if !field("country_of_birth").is_empty() {
                Country::parse(field("country_of_birth")).unwrap();
            }
            let partner = field("partner_country");
            match event_type {
                EventType::Immigration | EventType::Emigration => {
                    let partner = Country::parse(partner).unwrap();
                    assert!(partner.is_iso() && partner != *reporter, "partner {partner}");
                }
                EventType::AsylumApplication | EventType::ResidencePermit => {
                    assert_eq!(partner, "")
                }
            }
            Sex::parse(field("sex")).unwrap();
            match field("birth_year") {
                "" => empty_birth_year += 1,
                text => assert!(text.parse::<i32>().unwrap() <= date.year),
            }
            let reason = Reason::parse(field("reason")).unwrap();
            empty_reason += usize::from(reason == Reason::Unknown);
            match field("duration_months") {
                "" => empty_duration += 1,
                text => {
                    text.parse::<u32>().unwrap();
                }
            }
        }
    }
    // A share of unknown fields, as real registers send.
    for (what, count) in [
        ("unknown citizenships", unknown_citizenship),
        ("empty birth years", empty_birth_year),
        ("empty durations", empty_duration),
        ("empty reasons", empty_reason),
    ] {
        assert!(count > 20, "only {count} {what}");
    }
}

#[test]
fn files_have_about_the_requested_size_and_mix() {
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    let summary = synthesize_as_of(&options(dir.path(), 11, 4000), TODAY, &mut |n| reports.push(n)).unwrap();
    let mut total = 0;
    for (reporter, path, count) in &summary.files {
        assert!(
            (3200..=4800).contains(count),
            "{reporter}: {count} records for 4000 asked"
        );
        let (_, rows) = read(path);
        let local = rows
            .iter()
            .filter(|r| matches!(&r[2], "asylum_application" | "residence_permit"))
            .count() as f64;
        let share = local / rows.len() as f64;
        assert!(
            (0.17..=0.33).contains(&share),
            "{reporter}: asylum and permits are {share:.2}"
        );
        total += count;
    }
    // Progress: every 10 000 records, then the final total.
    assert_eq!(reports.last(), Some(&total));
    assert_eq!(reports[..reports.len() - 1], [10_000]);
}

/// A true move as the test sees it: corridor, true day, true duration.
struct TrueMove {
    origin: Country,
    destination: Country,
    day: i64,
    duration_months: u32,
}

fn true_moves(opts: &SynthOptions, today: Date) -> HashMap<String, TrueMove> {
    let world = World::build(
        &opts.countries,
        &opts.registers,
        opts.year,
        opts.records,
        opts.seed,
        today,
    );
    let mut moves = HashMap::new();
    for corridor in &world.corridors {
        for month in &world.months {
            for number in 0..world.move_count(corridor, month) {
                let m = world.move_at(corridor, month, number);
                let person = format!("P{:016x}", m.person);
                let true_move = TrueMove {
                    origin: corridor.origin,
                    destination: corridor.destination,
                    day: m.day,
                    duration_months: m.duration_months,
                };
                assert!(moves.insert(person, true_move).is_none(), "person id reused");
            }
        }
    }
    moves
}

#[test]
fn records_and_truth_agree_with_the_true_moves() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 5, 3000);
    let summary = run(&opts, TODAY);
    let moves = true_moves(&opts, TODAY);
    let (first, last) = (day("2024-01-01"), day("2024-12-31"));
    let members: HashSet<Country> = opts.countries.iter().copied().collect();

    // truth.csv is exactly the long-term true moves dated in the year, by month.
    let (header, rows) = read(&summary.truth);
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        ["origin", "destination", "month", "moves"]
    );
    let mut expected: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for m in moves.values() {
        if (first..=last).contains(&m.day) && m.duration_months >= LONG_TERM_MONTHS {
            let month = Date::from_day_number(m.day).unwrap().to_string()[..7].to_string();
            *expected
                .entry((m.origin.to_string(), m.destination.to_string(), month))
                .or_default() += 1;
        }
    }
    let found: Vec<((String, String, String), u64)> = rows
        .iter()
        .map(|r| {
            (
                (r[0].to_string(), r[1].to_string(), r[2].to_string()),
                r[3].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        expected.into_iter().collect::<Vec<_>>(),
        "truth.csv (sorted) differs"
    );
    assert_eq!(
        summary.moves,
        moves.values().filter(|m| (first..=last).contains(&m.day)).count() as u64
    );
    // Some true cells are small enough to be confidential, others are not.
    assert!(found.iter().any(|(_, n)| *n < 5) && found.iter().any(|(_, n)| *n >= 5));
    let mut truth_by_pair: HashMap<(String, String), u64> = HashMap::new();
    for ((origin, destination, _), n) in &found {
        *truth_by_pair.entry((origin.clone(), destination.clone())).or_default() += n;
    }

    // Every movement record is a true move of the right corridor, reported on or after the true
    // date and within the register's delay; registers never invent moves. So the immigration
    // records of long-term moves that truly happened in the year can never exceed the truth (the
    // raw count of immigration rows can: it also holds short stays and moves from late last year).
    let mut long_term_arrivals: HashMap<(String, String), u64> = HashMap::new();
    let (mut emigration_rows, mut immigration_rows, mut crossed_year, mut crossed_month) = (0, 0, 0, 0);
    let mut persons_by_side: HashMap<String, u8> = HashMap::new();
    for (reporter, path, _) in &summary.files {
        for row in read(path).1 {
            let event_type = EventType::parse(&row[2]).unwrap();
            if !matches!(event_type, EventType::Immigration | EventType::Emigration) {
                continue;
            }
            let true_move = moves
                .get(&row[1])
                .unwrap_or_else(|| panic!("{} is no true move", &row[1]));
            let partner = Country::parse(&row[6]).unwrap();
            let reported = day(&row[3]);
            let delay = reported - true_move.day;
            let side = if event_type == EventType::Immigration {
                assert_eq!((true_move.origin, true_move.destination), (partner, *reporter));
                assert!((0..=MAX_IMMIGRATION_DELAY).contains(&delay), "delay {delay}");
                if members.contains(&partner) {
                    immigration_rows += 1;
                }
                if (first..=last).contains(&true_move.day) && true_move.duration_months >= LONG_TERM_MONTHS {
                    *long_term_arrivals
                        .entry((partner.to_string(), reporter.to_string()))
                        .or_default() += 1;
                }
                crossed_year += usize::from(true_move.day < first);
                crossed_month += usize::from(
                    Date::from_day_number(true_move.day).unwrap().month != Date::parse(&row[3]).unwrap().month,
                );
                1
            } else {
                assert_eq!((true_move.origin, true_move.destination), (*reporter, partner));
                assert!((0..=MAX_EMIGRATION_DELAY).contains(&delay), "delay {delay}");
                if members.contains(&partner) {
                    emigration_rows += 1;
                }
                2
            };
            *persons_by_side.entry(row[1].to_string()).or_default() |= side;
        }
    }
    for (pair, arrivals) in &long_term_arrivals {
        let truth = truth_by_pair.get(pair).copied().unwrap_or(0);
        assert!(
            *arrivals <= truth,
            "{pair:?}: {arrivals} long-term arrivals, truth {truth}"
        );
    }
    // The same person shows up in the origin's and the destination's files.
    assert!(persons_by_side.values().filter(|&&s| s == 3).count() > 100);
    // Registration delays carry moves across month and year ends.
    assert!(
        crossed_year > 0 && crossed_month > 100,
        "{crossed_year} {crossed_month}"
    );
    // Departures are under-registered relative to arrivals.
    assert!(
        (emigration_rows as f64) < 0.9 * immigration_rows as f64,
        "{emigration_rows} emigration rows vs {immigration_rows} immigration rows"
    );
}

#[test]
fn reported_durations_cluster_around_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&options(dir.path(), 3, 3000), TODAY);
    let (_, rows) = read(&summary.files[0].1);
    let durations: Vec<u32> = rows
        .iter()
        .filter(|r| &r[2] == "immigration")
        .filter_map(|r| r[10].parse().ok())
        .collect();
    let share = |range: std::ops::RangeInclusive<u32>| {
        durations.iter().filter(|d| range.contains(d)).count() as f64 / durations.len() as f64
    };
    assert!(share(9..=15) > 0.3, "near threshold {:.2}", share(9..=15));
    assert!(share(0..=11) > 0.2, "short stays {:.2}", share(0..=11));
    assert!(share(24..=u32::MAX) > 0.2, "long stays {:.2}", share(24..=u32::MAX));
}

#[test]
fn the_current_year_stops_at_today() {
    let dir = tempfile::tempdir().unwrap();
    let today = Date {
        year: 2024,
        month: 3,
        day: 15,
    };
    let summary = run(&options(dir.path(), 9, 2000), today);
    for (_, path, count) in &summary.files {
        assert!(*count > 500, "{count}");
        for row in read(path).1 {
            assert!(Date::parse(&row[3]).unwrap() <= today, "{} after today", &row[3]);
        }
    }
    for row in read(&summary.truth).1 {
        assert!(["2024-01", "2024-02", "2024-03"].contains(&&row[2]), "{}", &row[2]);
    }
}

#[test]
fn impossible_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let with = |list: &[&str], year: i32| SynthOptions {
        countries: codes(list),
        year,
        ..options(dir.path(), 1, 10)
    };
    let refuse = |opts: SynthOptions| synthesize_as_of(&opts, TODAY, &mut |_| {}).unwrap_err();
    assert!(matches!(refuse(with(&["DEU"], 2024)), SynthError::TooFewCountries(1)));
    assert!(
        matches!(refuse(with(&["DEU", "FRA", "DEU"], 2024)), SynthError::DuplicateCountry(c) if c.as_str() == "DEU")
    );
    assert!(matches!(
        refuse(with(&["DEU", "XXX"], 2024)),
        SynthError::NotACountry(_)
    ));
    assert!(matches!(
        refuse(with(&["DEU", "FRA"], 2027)),
        SynthError::YearOutOfRange {
            year: 2027,
            latest: 2026
        }
    ));
    assert!(matches!(
        refuse(with(&["DEU", "FRA"], 1899)),
        SynthError::YearOutOfRange { .. }
    ));
    // An output path under a regular file cannot be created; the error names it.
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"x").unwrap();
    let opts = SynthOptions {
        out: blocker.join("out"),
        ..with(&["DEU", "FRA"], 2024)
    };
    let message = refuse(opts).to_string();
    assert!(
        message.contains(&blocker.join("out").display().to_string()),
        "{message}"
    );
}

/// Registers drawn from measurement classes (SPEC §15) miss, over-count and count by their
/// own duration rules as their classes say: against the truth, a register in the high
/// undercount class reports less than one in the low class, one without a duration minimum
/// more, and one counting permanent moves only much less.
#[test]
fn registers_from_classes_report_the_truth_as_their_classes_say() {
    use crate::domain::consortium::{Accuracy, Measurement, Register, Undercount};
    let register = |undercount, duration_months| Register {
        undercount,
        accuracy: Accuracy::High,
        duration_months,
    };
    let classes = |emigration| Measurement {
        emigration,
        immigration: register(Undercount::Low, 12),
    };
    let given: BTreeMap<Country, Measurement> = [
        ("DEU", classes(register(Undercount::Low, 12))),
        ("FRA", classes(register(Undercount::High, 12))),
        ("ITA", classes(register(Undercount::Low, 0))),
        ("POL", classes(register(Undercount::Low, 60))),
    ]
    .into_iter()
    .map(|(c, m)| (Country::parse(c).unwrap(), m))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let opts = SynthOptions {
        countries: given.keys().copied().collect(),
        registers: Registers::Declared(given.clone()),
        ..options(dir.path(), 3, 20_000)
    };
    let summary = run(&opts, TODAY);
    let members: HashSet<Country> = given.keys().copied().collect();

    // Emigration records to other members that the 12-month definition counts, against the true
    // long-term moves, per member.
    let mut truth: HashMap<Country, f64> = HashMap::new();
    for row in read(&summary.truth).1 {
        let (origin, destination) = (Country::parse(&row[0]).unwrap(), Country::parse(&row[1]).unwrap());
        if members.contains(&destination) {
            *truth.entry(origin).or_default() += row[3].parse::<f64>().unwrap();
        }
    }
    let mut ratio: HashMap<String, f64> = HashMap::new();
    for (reporter, path, _) in &summary.files {
        let counted = read(path)
            .1
            .iter()
            .filter(|r| &r[2] == "emigration" && members.contains(&Country::parse(&r[6]).unwrap()))
            .filter(|r| r[10].is_empty() || r[10].parse::<u32>().unwrap() >= 12)
            .count() as f64;
        ratio.insert(reporter.to_string(), counted / truth[reporter]);
    }
    let (deu, fra, ita, pol) = (ratio["DEU"], ratio["FRA"], ratio["ITA"], ratio["POL"]);
    assert!(fra < 0.8 * deu, "high undercount: FRA {fra:.2} against DEU {deu:.2}");
    assert!(
        ita > 1.3 * deu,
        "no duration minimum: ITA {ita:.2} against DEU {deu:.2}"
    );
    assert!(
        pol < 0.6 * deu,
        "permanent moves only: POL {pol:.2} against DEU {deu:.2}"
    );

    // registers.toml declares each member's true classes in consortium.toml's words.
    let text = fs::read_to_string(summary.registers.expect("registers.toml written")).unwrap();
    assert_eq!(text.lines().filter(|l| *l == "[members.measurement]").count(), 4);
    let fra_part = &text[text.find("country = \"FRA\"").unwrap()..text.find("country = \"ITA\"").unwrap()];
    assert!(
        fra_part.contains("emigration_undercount = \"high\"") && fra_part.contains("emigration_duration_months = 12")
    );
    // Plain registers write no classes.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = run(&options(plain_dir.path(), 3, 500), TODAY);
    assert!(plain.registers.is_none());
}

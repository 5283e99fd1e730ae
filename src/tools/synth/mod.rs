//! `accord synth` (SPEC §6): plausible record files for a set of countries, all drawn from one set
//! of true person moves, plus `truth.csv` with the true long-term flows. Each move is an
//! emigration event at its origin and an immigration event at its destination, seen through
//! imperfect registers: departures under-reported, arrivals registered late (across month and year
//! ends), durations noisy near the 12-month threshold, some fields unknown. Asylum applications and
//! residence permits fill out each file. Output depends only on the options (and today's date,
//! which no event may pass), byte for byte. This module must never write anything but synthetic
//! values: no identifier it emits may look like a real one.
//!
//! - [`model`]: the true world and the registers' view of it (pure).
//! - [`registers`]: the members' registers from the measurement classes (SPEC §15).
//! - [`calibrate`]: corridor rates sized to the requested number of records.
//! - [`draw`]: the distributions of counts, attributes and register noise.
//! - [`output`]: CSV spelling of events.
//! - [`rng`]: the keyed random streams everything is drawn from.

mod calibrate;
mod draw;
mod model;
mod output;
mod registers;
mod rng;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::domain::date::Date;
use crate::domain::model::Country;
use crate::domain::record::{EventType, COLUMNS};
use model::{Event, Member, World, LONG_TERM_MONTHS};
use output::CsvFile;

/// The header of `truth.csv`.
pub const TRUTH_COLUMNS: [&str; 4] = ["origin", "destination", "month", "moves"];

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// The member countries; each gets a file. At least two, distinct, real countries.
    pub countries: Vec<Country>,
    /// The year the events fall in (1900 up to the current year).
    pub year: i32,
    /// Approximate number of records per country file.
    pub records: u64,
    /// Same seed, same options (and same day, for the current year) → byte-identical files.
    pub seed: u64,
    /// The output directory, created if missing.
    pub out: PathBuf,
    /// How the members' registers see the moves (SPEC §15).
    pub registers: Registers,
}

pub use registers::Registers;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// Per country, in the order given: its file and the number of records in it.
    pub files: Vec<(Country, PathBuf, u64)>,
    /// The `truth.csv` path.
    pub truth: PathBuf,
    /// `registers.toml`, the classes the registers were drawn from; none for plain registers.
    pub registers: Option<PathBuf>,
    /// True moves dated in the year (any duration) that involve at least one member.
    pub moves: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Flows between members need at least two of them.
    #[error("synth needs at least two countries, got {0}")]
    TooFewCountries(usize),
    /// The same country was listed twice.
    #[error("country {0} is listed twice")]
    DuplicateCountry(Country),
    /// `XXX` and `XXA` are valid citizenships but cannot be reporting countries.
    #[error("{0} is not a real country and cannot report records")]
    NotACountry(Country),
    /// Event dates must lie between 1900-01-01 and today.
    #[error("year {year} is outside 1900..={latest} (events may not be dated after today)")]
    YearOutOfRange { year: i32, latest: i32 },
    /// The output directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    /// An output file could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// Generates the files. `progress` is called with the running total of records written, about
/// every 10 000 records and once at the end.
pub fn synthesize(opts: &SynthOptions, progress: &mut dyn FnMut(u64)) -> Result<SynthSummary, SynthError> {
    synthesize_as_of(opts, Date::today(), progress)
}

const PROGRESS_EVERY: u64 = 10_000;

/// [`synthesize`] with today's date given, so tests do not depend on the clock.
fn synthesize_as_of(
    opts: &SynthOptions,
    today: Date,
    progress: &mut dyn FnMut(u64),
) -> Result<SynthSummary, SynthError> {
    check(opts, today)?;
    std::fs::create_dir_all(&opts.out).map_err(|source| SynthError::CreateDir {
        path: opts.out.clone(),
        source,
    })?;
    let world = World::build(
        &opts.countries,
        &opts.registers,
        opts.year,
        opts.records,
        opts.seed,
        today,
    );
    let mut tally = Tally {
        truth: BTreeMap::new(),
        moves: 0,
        written: 0,
        next_report: PROGRESS_EVERY,
        progress,
    };
    let mut files = Vec::with_capacity(world.members.len());
    for member in &world.members {
        let path = opts.out.join(format!("{}.csv", member.country.lower()));
        let rows = write_country(&world, member, &path, &mut tally)?;
        files.push((member.country, path, rows));
    }
    let truth = opts.out.join("truth.csv");
    write_truth(&truth, &tally.truth)?;
    let drawn: Vec<_> = world
        .members
        .iter()
        .filter_map(|m| m.registers.map(|(classes, drawn)| (m.country, classes, drawn)))
        .collect();
    let registers = if drawn.is_empty() {
        None
    } else {
        let path = opts.out.join("registers.toml");
        std::fs::write(&path, registers::describe(&drawn)).map_err(|source| SynthError::Write {
            path: path.clone(),
            source,
        })?;
        Some(path)
    };
    (tally.progress)(tally.written);
    Ok(SynthSummary {
        files,
        truth,
        registers,
        moves: tally.moves,
    })
}

/// Running totals across the files.
struct Tally<'a> {
    /// (origin, destination, year, month) → true long-term moves.
    truth: BTreeMap<(Country, Country, i32, u8), u64>,
    /// True moves dated in the year.
    moves: u64,
    written: u64,
    next_report: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl Tally<'_> {
    fn count_written(&mut self) {
        self.written += 1;
        if self.written == self.next_report {
            (self.progress)(self.written);
            self.next_report += PROGRESS_EVERY;
        }
    }
}

/// Writes one member's file and returns its number of records. Moves are counted into the
/// truth once, by the member that owns their corridor: the origin if it is a member, else the
/// destination.
fn write_country(world: &World, member: &Member, path: &Path, tally: &mut Tally<'_>) -> Result<u64, SynthError> {
    let reporter = member.country;
    let mut file = CsvFile::create(path, &COLUMNS)?;
    let corridors = world.corridors_of(reporter);
    // Month by month, so the file reads roughly in date order.
    for month in &world.months {
        for &index in &corridors {
            let corridor = &world.corridors[index];
            let outbound = corridor.origin == reporter;
            let owner = outbound || !world.is_member(corridor.origin);
            for number in 0..world.move_count(corridor, month) {
                let true_move = world.move_at(corridor, month, number);
                if owner && month.in_year {
                    tally.moves += 1;
                    if true_move.duration_months >= LONG_TERM_MONTHS {
                        let date =
                            Date::from_day_number(true_move.day).expect("synthetic moves fall in the years asked for");
                        let cell = (corridor.origin, corridor.destination, date.year, date.month);
                        *tally.truth.entry(cell).or_default() += 1;
                    }
                }
                let (report, event_type, partner, extra) = if outbound {
                    (
                        true_move.emigration,
                        EventType::Emigration,
                        corridor.destination,
                        true_move.extra[0],
                    )
                } else {
                    (
                        true_move.immigration,
                        EventType::Immigration,
                        corridor.origin,
                        true_move.extra[1],
                    )
                };
                let Some(report) = report.filter(|r| world.reportable(r.day)) else {
                    continue;
                };
                for copy in 0..=u64::from(extra) {
                    let person = match copy {
                        0 => true_move.person,
                        // An over-counting register's further records are of "other" people.
                        n => rng::key(&[true_move.person, rng::TAG_EXTRA, n]),
                    };
                    let event = Event {
                        person,
                        event_type,
                        day: report.day,
                        citizenship: true_move.citizenship,
                        country_of_birth: true_move.country_of_birth,
                        partner_country: Some(partner),
                        sex: true_move.sex,
                        birth_year: true_move.birth_year,
                        reason: report.reason,
                        duration_months: report.duration_months,
                    };
                    file.write_event(reporter, &event)?;
                    tally.count_written();
                }
            }
        }
        if !month.in_year {
            continue;
        }
        for kind in [EventType::AsylumApplication, EventType::ResidencePermit] {
            for number in 0..world.local_count(member, month, kind) {
                let event = world.local_event(member, month, kind, number);
                if world.reportable(event.day) {
                    file.write_event(reporter, &event)?;
                    tally.count_written();
                }
            }
        }
    }
    file.finish()
}

/// Writes `truth.csv`, sorted by origin, destination and month (the map's order).
fn write_truth(path: &Path, truth: &BTreeMap<(Country, Country, i32, u8), u64>) -> Result<(), SynthError> {
    let mut file = CsvFile::create(path, &TRUTH_COLUMNS)?;
    for ((origin, destination, year, month), count) in truth {
        let month = format!("{year:04}-{month:02}");
        file.write_fields(&[origin.as_str(), destination.as_str(), &month, &count.to_string()])?;
    }
    file.finish().map(|_| ())
}

/// Rejects options that cannot give valid records.
fn check(opts: &SynthOptions, today: Date) -> Result<(), SynthError> {
    if opts.countries.len() < 2 {
        return Err(SynthError::TooFewCountries(opts.countries.len()));
    }
    for (i, &country) in opts.countries.iter().enumerate() {
        if !country.is_iso() {
            return Err(SynthError::NotACountry(country));
        }
        if opts.countries[..i].contains(&country) {
            return Err(SynthError::DuplicateCountry(country));
        }
    }
    if !(1900..=today.year).contains(&opts.year) {
        return Err(SynthError::YearOutOfRange {
            year: opts.year,
            latest: today.year,
        });
    }
    Ok(())
}

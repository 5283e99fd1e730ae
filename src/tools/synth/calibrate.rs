//! How big the synthetic world is: each member's register quality, the daily rate of true moves
//! on every corridor, and the months moves are drawn in, calibrated so that each member's file
//! comes out near the requested size. Pure; must never do I/O or read the clock.

use super::model::{Corridor, Member, Month, World, ASYLUM_ORIGINS, LONG_TERM_MONTHS, PERMIT_ORIGINS};
use super::registers::{self, Registers};
use super::rng::{key, SplitMix64, TAG_CORRIDOR, TAG_MEMBER, TAG_OUTSIDE, TAG_PAIR};
use crate::domain::date::{days_in_month, Date};
use crate::domain::model::Country;
use crate::domain::reconcile::estimate::prior::Flow;

/// A corridor this small (moves per year) keeps some true cells under the confidentiality
/// threshold whatever the requested size.
const TINY_CORRIDOR_PER_YEAR: f64 = 24.0;
/// Share of a member's migration records that flow between members, for the member with the
/// strongest member corridors; the rest are flows with the rest of the world.
const MEMBER_SHARE_CAP: f64 = 0.6;

/// Partners outside the consortium, roughly by weight of their flows with Europe; also the
/// pool of third-country citizenships.
const OUTSIDE_PARTNERS: [&str; 24] = [
    "USA", "GBR", "UKR", "CHE", "TUR", "IND", "ROU", "POL", "CHN", "MAR", "BRA", "NGA", "PHL", "SYR", "ALB", "SRB",
    "AFG", "RUS", "VNM", "PAK", "EGY", "CAN", "AUS", "COL",
];
impl World {
    /// Builds the world for distinct, real member countries and a year not after `today`'s
    /// (the caller checks both). Rates are calibrated so each member's file holds about
    /// `records` events.
    pub(super) fn build(
        countries: &[Country],
        registers: &Registers,
        year: i32,
        records: u64,
        seed: u64,
        today: Date,
    ) -> World {
        let first_day = Date { year, month: 1, day: 1 }.day_number();
        let last_day = Date {
            year,
            month: 12,
            day: 31,
        }
        .day_number()
        .min(today.day_number());
        // Days of the year on which events can happen; rates are per day so that a partial
        // (current) year still yields about the requested number of records.
        let active_days = (last_day - first_day + 1).max(1) as f64;
        let target = records as f64;

        let members: Vec<Member> = countries
            .iter()
            .map(|&country| Member::draw(seed, country, registers, target / active_days))
            .collect();
        // Expected records per day each member should get from moves; the rest of its file
        // is asylum applications and permits.
        let move_targets: Vec<f64> = members
            .iter()
            .map(|m| target / active_days - m.asylum_daily - m.permit_daily)
            .collect();

        let pairs = member_pairs(seed, &members, &move_targets);
        let mut corridors: Vec<Corridor> = pairs
            .iter()
            .map(|&(o, d, rate)| corridor(seed, members[o].country, members[d].country, rate, &members))
            .collect();
        // The rest of each member's flows go to and come from a handful of outside countries.
        let outside = outside_partners(&members);
        for (c, member) in members.iter().enumerate() {
            let remaining = (move_targets[c] - expected_records(c, &members, &pairs)).max(0.0);
            for (origin, destination, rate) in outside_flows(seed, member, &outside, remaining) {
                corridors.push(corridor(seed, origin, destination, rate, &members));
            }
        }
        corridors.sort_by_key(|c| (c.origin, c.destination));

        World {
            members,
            corridors,
            months: window(year, last_day),
            first_day,
            last_day,
            seed,
            outside,
            asylum_origins: parse_list(&ASYLUM_ORIGINS),
            permit_origins: parse_list(&PERMIT_ORIGINS),
        }
    }
}

impl Member {
    /// A member's register quality and its daily rate of asylum and permit events, given the
    /// daily rate of records its file should have.
    fn draw(seed: u64, country: Country, registers: &Registers, daily_records: f64) -> Member {
        let mut rng = SplitMix64::new(key(&[seed, TAG_MEMBER, code(country)]));
        let mut emigration_coverage = 0.6 + 0.2 * rng.unit();
        let mut immigration_coverage = 0.9 + 0.08 * rng.unit();
        let local = daily_records * (0.2 + 0.1 * rng.unit());
        let asylum_part = 0.3 + 0.3 * rng.unit();
        let registers = registers.classes(seed, country).map(|classes| {
            let drawn = [
                registers::draw(seed, country, Flow::Emigration, classes.emigration),
                registers::draw(seed, country, Flow::Immigration, classes.immigration),
            ];
            (classes, drawn)
        });
        if let Some((_, [emigration, immigration])) = &registers {
            emigration_coverage = emigration.coverage;
            immigration_coverage = immigration.coverage;
        }
        Member {
            country,
            emigration_coverage,
            immigration_coverage,
            registers,
            asylum_daily: local * asylum_part,
            permit_daily: local * (1.0 - asylum_part),
        }
    }
}

/// Daily move rates between members, as (origin index, destination index, rate). Skewed sizes
/// give a few big corridors and many small ones; both directions of a pair share a size, since
/// big corridors carry people both ways. One scale fits all pairs so that no member gets more
/// than [`MEMBER_SHARE_CAP`] of its move records from other members.
fn member_pairs(seed: u64, members: &[Member], move_targets: &[f64]) -> Vec<(usize, usize, f64)> {
    let mut pairs = Vec::new();
    for (a, first) in members.iter().enumerate() {
        for (b, second) in members.iter().enumerate().skip(a + 1) {
            let mut rng = SplitMix64::new(key(&[seed, TAG_PAIR, code(first.country), code(second.country)]));
            let u = rng.unit();
            let big = if rng.chance(0.25) { 4.0 } else { 1.0 };
            let size = (0.05 + u * u * u) * big;
            pairs.push((a, b, size * (0.5 + rng.unit())));
            pairs.push((b, a, size * (0.5 + rng.unit())));
        }
    }
    let scale = (0..members.len())
        .map(|c| MEMBER_SHARE_CAP * move_targets[c] / expected_records(c, members, &pairs))
        .fold(f64::INFINITY, f64::min);
    let scale = if scale.is_finite() { scale } else { 0.0 };
    for pair in &mut pairs {
        pair.2 *= scale;
    }
    if let Some(smallest) = (0..pairs.len()).min_by(|&a, &b| pairs[a].2.total_cmp(&pairs[b].2)) {
        pairs[smallest].2 = pairs[smallest].2.min(TINY_CORRIDOR_PER_YEAR / 365.25);
    }
    pairs
}

/// The records per day member `c` can expect from member corridors with these rates.
fn expected_records(c: usize, members: &[Member], pairs: &[(usize, usize, f64)]) -> f64 {
    pairs
        .iter()
        .map(|&(o, d, rate)| {
            if o == c {
                rate * members[c].emigration_coverage
            } else if d == c {
                rate * members[c].immigration_coverage
            } else {
                0.0
            }
        })
        .sum()
}

/// A member's corridors with 6 to 12 outside countries, as (origin, destination, daily rate),
/// sized to give `daily_records` expected records per day.
fn outside_flows(seed: u64, member: &Member, outside: &[Country], daily_records: f64) -> Vec<(Country, Country, f64)> {
    let mut rng = SplitMix64::new(key(&[seed, TAG_OUTSIDE, code(member.country)]));
    let mut pool = outside.to_vec();
    let wanted = (6 + rng.below(7) as usize).min(pool.len());
    let mut chosen = Vec::with_capacity(wanted);
    for i in 0..wanted {
        // A partial Fisher–Yates shuffle: which partners is uniform, their sizes are not.
        let j = i + rng.below((pool.len() - i) as u64) as usize;
        pool.swap(i, j);
        let u = rng.unit();
        let size = 0.02 + u * u;
        // Arrivals outnumber departures on most corridors, as in most of Europe.
        let arrivals = size * (0.8 + 0.6 * rng.unit());
        let departures = size * (0.5 + 0.5 * rng.unit());
        chosen.push((pool[i], arrivals, departures));
    }
    let per_unit: f64 = chosen
        .iter()
        .map(|&(_, arrivals, departures)| {
            arrivals * member.immigration_coverage + departures * member.emigration_coverage
        })
        .sum();
    let unit = if per_unit > 0.0 { daily_records / per_unit } else { 0.0 };
    chosen
        .into_iter()
        .flat_map(|(partner, arrivals, departures)| {
            [
                (partner, member.country, unit * arrivals),
                (member.country, partner, unit * departures),
            ]
        })
        .collect()
}

/// The months moves are drawn in: October of the year before (so registration delays of up to
/// 90 days carry moves into the year) to December, each clipped to `last_day`.
fn window(year: i32, last_day: i64) -> Vec<Month> {
    let mut months = Vec::new();
    for (y, m) in (10..=12).map(|m| (year - 1, m)).chain((1..=12).map(|m| (year, m))) {
        let first = Date {
            year: y,
            month: m,
            day: 1,
        }
        .day_number();
        let end = (first + i64::from(days_in_month(y, m)) - 1).min(last_day);
        if first <= end {
            months.push(Month {
                first_day: first,
                days: (end - first + 1) as u32,
                in_year: y == year,
                key: (i64::from(y) * 12 + i64::from(m)) as u64,
            });
        }
    }
    months
}

fn corridor(seed: u64, origin: Country, destination: Country, daily_rate: f64, members: &[Member]) -> Corridor {
    let member = |country: Country| members.iter().find(|m| m.country == country);
    // (how many times a move is counted, the duration rule) of one side's register.
    let register = |country: Country, flow: Flow| match member(country) {
        None => (0.0, LONG_TERM_MONTHS),
        Some(m) => match &m.registers {
            None => (
                match flow {
                    Flow::Emigration => m.emigration_coverage,
                    Flow::Immigration => m.immigration_coverage,
                },
                LONG_TERM_MONTHS,
            ),
            Some((_, drawn)) => {
                let drawn = drawn[flow as usize];
                (registers::counted(seed, origin, destination, flow, drawn), drawn.rule)
            }
        },
    };
    let (emigration_coverage, emigration_rule) = register(origin, Flow::Emigration);
    let (immigration_coverage, immigration_rule) = register(destination, Flow::Immigration);
    Corridor {
        origin,
        destination,
        daily_rate,
        emigration_coverage,
        immigration_coverage,
        emigration_rule,
        immigration_rule,
        key: key(&[seed, TAG_CORRIDOR, code(origin), code(destination)]),
    }
}

/// Outside partners that are not members; topped up from the full ISO list when the members
/// happen to cover most of the usual ones.
fn outside_partners(members: &[Member]) -> Vec<Country> {
    let is_member = |c: &Country| members.iter().any(|m| m.country == *c);
    let mut list: Vec<Country> = parse_list(&OUTSIDE_PARTNERS)
        .into_iter()
        .filter(|c| !is_member(c))
        .collect();
    for country in Country::all_iso() {
        if list.len() >= 12 {
            break;
        }
        if !is_member(&country) && !list.contains(&country) {
            list.push(country);
        }
    }
    list
}

pub(super) fn parse_list(codes: &[&str]) -> Vec<Country> {
    codes.iter().filter_map(|c| Country::parse(c)).collect()
}

pub(super) fn code(country: Country) -> u64 {
    let [a, b, c] = country.bytes();
    u64::from_be_bytes([0, 0, 0, 0, 0, a, b, c])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_code_is_a_real_country() {
        for list in [&OUTSIDE_PARTNERS[..], &ASYLUM_ORIGINS[..], &PERMIT_ORIGINS[..]] {
            let parsed = parse_list(list);
            assert_eq!(parsed.len(), list.len(), "{list:?}");
            assert!(parsed.iter().all(|c| c.is_iso()));
        }
    }

    #[test]
    fn outside_partners_never_include_members_and_stay_plentiful() {
        let today = Date {
            year: 2026,
            month: 6,
            day: 1,
        };
        let members = parse_list(&OUTSIDE_PARTNERS[..20]);
        let world = World::build(&members, &Registers::Plain, 2024, 1000, 1, today);
        assert!(world.outside.len() >= 12);
        assert!(world.outside.iter().all(|c| !members.contains(c)));
        for corridor in &world.corridors {
            assert_ne!(corridor.origin, corridor.destination);
            assert!(members.contains(&corridor.origin) || members.contains(&corridor.destination));
        }
    }
}

//! The synthetic true world: how many people a corridor carries each month, who moves, and how
//! each country's registers see (or miss) each move ([`super::calibrate`] sets the rates).
//! Everything here is a pure function of the options and the seed; any single move or event can
//! be recomputed from its coordinates (corridor, month, number), which is what lets the origin's
//! and the destination's files agree without holding the moves in memory. Must never do I/O or
//! read the clock (today is passed in).

use super::calibrate::code;
use super::draw::{
    draw_birth_year, draw_move_reason, draw_sex, draw_true_duration, jittered, noisy_duration, pick, pick_other,
};
use super::registers::Drawn;
use super::rng::{key, SplitMix64, TAG_COUNT, TAG_LOCAL};
use crate::domain::consortium::Measurement;
use crate::domain::date::Date;
use crate::domain::model::Country;
use crate::domain::record::{EventType, Reason, Sex};

/// The UN long-term threshold the truth file counts by.
pub(super) const LONG_TERM_MONTHS: u32 = 12;
/// The longest registration delay at the destination, in days.
pub(super) const MAX_IMMIGRATION_DELAY: i64 = 90;
/// The longest deregistration delay at the origin, in days.
pub(super) const MAX_EMIGRATION_DELAY: i64 = 14;
/// Citizenships of asylum applicants, most frequent first.
pub(super) const ASYLUM_ORIGINS: [&str; 16] = [
    "SYR", "AFG", "VEN", "COL", "TUR", "IRQ", "PAK", "BGD", "NGA", "ERI", "SOM", "GEO", "MAR", "IRN", "TUN", "GIN",
];
/// Citizenships of residence permit holders, most frequent first.
pub(super) const PERMIT_ORIGINS: [&str; 16] = [
    "UKR", "IND", "CHN", "USA", "BRA", "MAR", "TUR", "PHL", "VNM", "EGY", "ALB", "SRB", "NGA", "PAK", "RUS", "GBR",
];

/// A reporting country and how its registers behave.
pub(super) struct Member {
    pub(super) country: Country,
    /// Probability that a departure is deregistered (people often don't).
    pub(super) emigration_coverage: f64,
    /// Probability that an arrival is registered.
    pub(super) immigration_coverage: f64,
    /// The registers' classes and what was drawn from them (emigration, immigration); none
    /// for plain registers.
    pub(super) registers: Option<(Measurement, [Drawn; 2])>,
    pub(super) asylum_daily: f64,
    pub(super) permit_daily: f64,
}

/// An ordered pair of countries with a steady daily rate of true moves.
pub(super) struct Corridor {
    pub(super) origin: Country,
    pub(super) destination: Country,
    pub(super) daily_rate: f64,
    /// How many times the origin's register counts a move, on average: at most 1 for plain
    /// registers, above 1 where a register over-counts the corridor; zero when the origin is
    /// not a member (nobody reports there).
    pub(super) emigration_coverage: f64,
    pub(super) immigration_coverage: f64,
    /// The registers' duration rules: 12 lets the harmonised definition decide from reported
    /// durations; any other counts the moves staying at least that long, durations unknown.
    pub(super) emigration_rule: u32,
    pub(super) immigration_rule: u32,
    pub(super) key: u64,
}

/// A calendar month of the window, clipped to today.
pub(super) struct Month {
    pub(super) first_day: i64,
    pub(super) days: u32,
    /// Whether the month belongs to the requested year (the window starts three months
    /// earlier so that registration delays carry moves into the year).
    pub(super) in_year: bool,
    pub(super) key: u64,
}

/// One person's true move and what each side's register made of it.
pub(super) struct Move {
    pub(super) person: u64,
    pub(super) day: i64,
    pub(super) citizenship: Country,
    pub(super) country_of_birth: Option<Country>,
    pub(super) sex: Sex,
    pub(super) birth_year: Option<i32>,
    pub(super) duration_months: u32,
    /// `None` when the origin never learned of the departure.
    pub(super) emigration: Option<Report>,
    /// `None` when the destination never registered the arrival.
    pub(super) immigration: Option<Report>,
    /// Further records the origin's and the destination's registers hold of this move (an
    /// over-counting register): each a record of someone else, as registers that count twice
    /// do not know it.
    pub(super) extra: [u32; 2],
}

/// A register's view of a move.
#[derive(Clone, Copy)]
pub(super) struct Report {
    pub(super) day: i64,
    pub(super) duration_months: Option<u32>,
    pub(super) reason: Reason,
}

/// One record as it will be written.
pub(super) struct Event {
    pub(super) person: u64,
    pub(super) event_type: EventType,
    pub(super) day: i64,
    pub(super) citizenship: Country,
    pub(super) country_of_birth: Option<Country>,
    pub(super) partner_country: Option<Country>,
    pub(super) sex: Sex,
    pub(super) birth_year: Option<i32>,
    pub(super) reason: Reason,
    pub(super) duration_months: Option<u32>,
}

/// Everything needed to recompute any move or event: members, corridors and the months of the
/// window.
pub(super) struct World {
    pub(super) members: Vec<Member>,
    /// Sorted by (origin, destination).
    pub(super) corridors: Vec<Corridor>,
    pub(super) months: Vec<Month>,
    /// The first and last day an event may carry: 1 January, and 31 December or today.
    pub(super) first_day: i64,
    pub(super) last_day: i64,
    pub(super) seed: u64,
    pub(super) outside: Vec<Country>,
    pub(super) asylum_origins: Vec<Country>,
    pub(super) permit_origins: Vec<Country>,
}

impl World {
    pub(super) fn is_member(&self, country: Country) -> bool {
        self.members.iter().any(|m| m.country == country)
    }

    /// Whether an event on this day may be written: inside the year and not after today.
    pub(super) fn reportable(&self, day: i64) -> bool {
        (self.first_day..=self.last_day).contains(&day)
    }

    /// Indices of the corridors a country reports on (it is origin or destination).
    pub(super) fn corridors_of(&self, country: Country) -> Vec<usize> {
        (0..self.corridors.len())
            .filter(|&i| {
                let c = &self.corridors[i];
                c.origin == country || c.destination == country
            })
            .collect()
    }

    /// How many true moves a corridor carries in a month.
    pub(super) fn move_count(&self, corridor: &Corridor, month: &Month) -> u64 {
        let mut rng = SplitMix64::new(key(&[corridor.key, month.key, TAG_COUNT]));
        jittered(corridor.daily_rate * f64::from(month.days), &mut rng)
    }

    /// The `number`th true move of a corridor in a month, with both registers' reports.
    pub(super) fn move_at(&self, corridor: &Corridor, month: &Month, number: u64) -> Move {
        let mut rng = SplitMix64::new(key(&[corridor.key, month.key, number]));
        let person = rng.next_u64();
        let day = month.first_day + rng.below(u64::from(month.days)) as i64;
        let (origin, destination) = (corridor.origin, corridor.destination);
        let u = rng.unit();
        let citizenship = if u < 0.70 {
            origin
        } else if u < 0.82 {
            // Nationals of the destination coming home.
            destination
        } else if u < 0.97 {
            let third = pick(&self.outside, &mut rng).unwrap_or(origin);
            if third == destination {
                origin
            } else {
                third
            }
        } else if u < 0.985 {
            Country::UNKNOWN
        } else {
            Country::STATELESS
        };
        let country_of_birth = if citizenship.is_iso() {
            let u = rng.unit();
            if u < 0.85 {
                Some(citizenship)
            } else if u < 0.95 {
                Some(if citizenship == origin {
                    pick(&self.outside, &mut rng).unwrap_or(origin)
                } else {
                    origin
                })
            } else {
                None
            }
        } else {
            rng.chance(0.5).then_some(origin)
        };
        let sex = draw_sex(&mut rng, 0.49, 0.49);
        let year = day_of(day).year;
        let birth_year = draw_birth_year(&mut rng, year);
        let duration_months = draw_true_duration(&mut rng);
        let reason = draw_move_reason(&mut rng);

        let (seen_out, extra_out) = seen(corridor.emigration_coverage, &mut rng);
        let counts_out = duration_months >= corridor.emigration_rule || corridor.emigration_rule == LONG_TERM_MONTHS;
        let emigration = (seen_out && counts_out).then(|| Report {
            day: day + rng.below(MAX_EMIGRATION_DELAY as u64 + 1) as i64,
            duration_months: reported_duration(corridor.emigration_rule, || {
                noisy_duration(&mut rng, duration_months, 0.2, 0.5)
            }),
            reason: if rng.chance(0.25) { reason } else { Reason::Unknown },
        });
        let (seen_in, extra_in) = seen(corridor.immigration_coverage, &mut rng);
        let counts_in = duration_months >= corridor.immigration_rule || corridor.immigration_rule == LONG_TERM_MONTHS;
        let immigration = (seen_in && counts_in).then(|| {
            let u = rng.unit();
            let delay = if u < 0.6 {
                rng.below(15)
            } else if u < 0.9 {
                15 + rng.below(31)
            } else {
                46 + rng.below((MAX_IMMIGRATION_DELAY - 45) as u64)
            };
            Report {
                day: day + delay as i64,
                duration_months: reported_duration(corridor.immigration_rule, || {
                    noisy_duration(&mut rng, duration_months, 0.12, 0.6)
                }),
                reason: if rng.chance(0.75) { reason } else { Reason::Unknown },
            }
        });
        let extra = [
            if emigration.is_some() { extra_out } else { 0 },
            if immigration.is_some() { extra_in } else { 0 },
        ];
        Move {
            person,
            day,
            citizenship,
            country_of_birth,
            sex,
            birth_year,
            duration_months,
            emigration,
            immigration,
            extra,
        }
    }

    /// How many asylum applications or residence permits a member records in a month.
    pub(super) fn local_count(&self, member: &Member, month: &Month, kind: EventType) -> u64 {
        let daily = match kind {
            EventType::AsylumApplication => member.asylum_daily,
            EventType::ResidencePermit => member.permit_daily,
            EventType::Immigration | EventType::Emigration => 0.0,
        };
        let mut rng = SplitMix64::new(self.local_key(member, month, kind, TAG_COUNT));
        jittered(daily * f64::from(month.days), &mut rng)
    }

    /// The `number`th asylum application or residence permit of a member in a month.
    pub(super) fn local_event(&self, member: &Member, month: &Month, kind: EventType, number: u64) -> Event {
        let mut rng = SplitMix64::new(self.local_key(member, month, kind, number));
        let person = rng.next_u64();
        let day = month.first_day + rng.below(u64::from(month.days)) as i64;
        let asylum = kind == EventType::AsylumApplication;
        let u = rng.unit();
        let citizenship = if asylum && u < 0.03 {
            Country::STATELESS
        } else if u < 0.05 {
            Country::UNKNOWN
        } else {
            let pool = if asylum {
                &self.asylum_origins
            } else {
                &self.permit_origins
            };
            pick_other(pool, member.country, &mut rng).unwrap_or(Country::UNKNOWN)
        };
        let country_of_birth = (citizenship.is_iso() && rng.chance(0.85)).then_some(citizenship);
        let sex = if asylum {
            draw_sex(&mut rng, 0.32, 0.66)
        } else {
            draw_sex(&mut rng, 0.47, 0.52)
        };
        let birth_year = draw_birth_year(&mut rng, day_of(day).year);
        let (reason, duration_months) = if asylum {
            (
                if rng.chance(0.6) {
                    Reason::Protection
                } else {
                    Reason::Unknown
                },
                None,
            )
        } else {
            let u = rng.unit();
            let reason = match u {
                u if u < 0.35 => Reason::Work,
                u if u < 0.65 => Reason::Family,
                u if u < 0.80 => Reason::Education,
                u if u < 0.88 => Reason::Protection,
                u if u < 0.92 => Reason::Other,
                _ => Reason::Unknown,
            };
            let validity = [12, 24, 36, 60][rng.below(4) as usize];
            (reason, (!rng.chance(0.2)).then_some(validity))
        };
        Event {
            person,
            event_type: kind,
            day,
            citizenship,
            country_of_birth,
            partner_country: None,
            sex,
            birth_year,
            reason,
            duration_months,
        }
    }

    fn local_key(&self, member: &Member, month: &Month, kind: EventType, number: u64) -> u64 {
        key(&[
            self.seed,
            TAG_LOCAL,
            code(member.country),
            u64::from(kind.code()),
            month.key,
            number,
        ])
    }
}

/// Whether a register sees a move, and how many further records it makes of it, when it counts
/// each move of the corridor `counted` times on average. Below 1 this is one draw, exactly as
/// plain registers have always drawn.
fn seen(counted: f64, rng: &mut SplitMix64) -> (bool, u32) {
    let whole = counted.floor();
    let times = whole as u32 + u32::from(rng.chance(counted - whole));
    (times > 0, times.saturating_sub(1))
}

/// The duration a register reports: noisy under the 12-month rule, unknown under any other (the
/// register counts the move by its own rule and never learns how long the stay was).
fn reported_duration(rule: u32, noisy: impl FnOnce() -> Option<u32>) -> Option<u32> {
    if rule == LONG_TERM_MONTHS {
        noisy()
    } else {
        None
    }
}

/// The date of a synthetic day number: the model only draws days in the years asked for, which
/// `generate` checks are real years.
pub(super) fn day_of(day: i64) -> Date {
    Date::from_day_number(day).expect("synthetic days fall in the years asked for")
}

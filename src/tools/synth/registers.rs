//! How each member's registers see the true moves (SPEC §15): from the measurement classes a
//! consortium declares. Per member and direction, a coverage drawn from the undercount class's
//! prior, a duration rule (which moves the register counts at all: those staying at least that
//! long, their durations unknown to it) and an accuracy: per corridor, the register's count
//! scatters around its coverage by exp(e), e ~ N(0, s²), so some corridors are over-counted (a
//! register that counts a move twice, or someone who never moved). So `truth.csv` differs from
//! both reports the way real registers do, and the estimates have something to correct.
//!
//! `Plain` keeps the registers the synthetic world had before classes: every move seen at most
//! once, durations reported with noise, coverage 0.6–0.8 for departures and 0.9–0.98 for
//! arrivals.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::calibrate::code;
use super::draw::share_at_least;
use super::rng::{key, SplitMix64};
use crate::domain::consortium::{Accuracy, Measurement, Register, Undercount, DURATION_RULES};
use crate::domain::model::Country;
use crate::domain::reconcile::estimate::prior::{accuracy_sd, coverage_prior, duration_factor, Flow};

/// Which registers the members have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Registers {
    /// Registers without classes (see the module documentation).
    Plain,
    /// Each member's classes drawn from the seed.
    #[default]
    Drawn,
    /// The classes given (e.g. what a consortium file declares); members not listed drawn.
    Declared(BTreeMap<Country, Measurement>),
}

const TAG_CLASSES: u64 = 11;
const TAG_COVERAGE: u64 = 12;
const TAG_SCATTER: u64 = 13;
/// No register counts a corridor more than this many times over.
const MAX_COUNTED: f64 = 3.0;

/// One register of one member, as drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Drawn {
    pub(super) coverage: f64,
    /// s, the scatter of its count per corridor.
    pub(super) sd: f64,
    /// It counts moves staying at least this long (12: the harmonised definition decides, from
    /// the durations it reports).
    pub(super) rule: u32,
    /// What its rule does to its count beyond the moves staying that long, so that against the
    /// 12-month truth it counts 1/R times as many (R: SPEC §15's duration factor): registers
    /// without a minimum also count visitors who never were migrants, and so on.
    pub(super) rule_scale: f64,
}

impl Registers {
    /// The classes of `country`'s registers; none for plain registers.
    pub fn classes(&self, seed: u64, country: Country) -> Option<Measurement> {
        match self {
            Registers::Plain => None,
            Registers::Drawn => Some(draw_classes(seed, country)),
            Registers::Declared(given) => Some(
                given
                    .get(&country)
                    .copied()
                    .unwrap_or_else(|| draw_classes(seed, country)),
            ),
        }
    }
}

/// A member's classes: each undercount class and accuracy about equally often, the 12-month
/// rule for most registers and each other rule for some.
fn draw_classes(seed: u64, country: Country) -> Measurement {
    let mut rng = SplitMix64::new(key(&[seed, TAG_CLASSES, code(country)]));
    let mut register = || {
        let undercount = [Undercount::Low, Undercount::Medium, Undercount::High][rng.below(3) as usize];
        let accuracy = if rng.chance(0.5) { Accuracy::High } else { Accuracy::Low };
        let duration_months = if rng.chance(0.6) {
            12
        } else {
            [0, 3, 6, 60][rng.below(4) as usize]
        };
        Register {
            undercount,
            accuracy,
            duration_months,
        }
    };
    Measurement {
        emigration: register(),
        immigration: register(),
    }
}

/// `country`'s register for `flow` under its classes: the coverage drawn from the class's prior
/// (log-normal with the prior's moments), at most 0.99.
pub(super) fn draw(seed: u64, country: Country, flow: Flow, register: Register) -> Drawn {
    let prior = coverage_prior(flow, register.undercount);
    let mut rng = SplitMix64::new(key(&[seed, TAG_COVERAGE, code(country), flow as u64]));
    let coverage = libm::exp(prior.mean + libm::sqrt(prior.variance) * normal(&mut rng)).min(0.99);
    let rule = if DURATION_RULES.contains(&register.duration_months) {
        register.duration_months
    } else {
        12
    };
    let rule_scale = if rule == 12 {
        1.0
    } else {
        share_at_least(12) / (duration_factor(rule) * share_at_least(rule))
    };
    Drawn {
        coverage,
        sd: accuracy_sd(register.accuracy),
        rule,
        rule_scale,
    }
}

/// How many times, on average, a register counts each move of one corridor: its coverage
/// scattered by exp(e), e ~ N(0, s²), drawn once per corridor and direction.
pub(super) fn counted(seed: u64, origin: Country, destination: Country, flow: Flow, register: Drawn) -> f64 {
    let mut rng = SplitMix64::new(key(&[seed, TAG_SCATTER, code(origin), code(destination), flow as u64]));
    (register.coverage * register.rule_scale * libm::exp(register.sd * normal(&mut rng))).min(MAX_COUNTED)
}

/// A standard normal draw (Box–Muller), with `libm` so every platform draws the same.
fn normal(rng: &mut SplitMix64) -> f64 {
    let u = 1.0 - rng.unit(); // in (0, 1]
    let v = rng.unit();
    libm::sqrt(-2.0 * libm::log(u)) * libm::cos(2.0 * std::f64::consts::PI * v)
}

/// `registers.toml`: each member's true classes as `[members.measurement]` tables a
/// consortium file can declare, with the coverage drawn as a comment.
pub(super) fn describe(members: &[(Country, Measurement, [Drawn; 2])]) -> String {
    let mut out = String::from(
        "# The registers `accord synth` drew (SPEC §15). A member's [members.measurement] below is\n\
         # its true class: declare it in consortium.toml (under that member's [[members]]) for the\n\
         # estimates to start from the truth, or declare another to see the data find it.\n",
    );
    for (country, m, [emigration, immigration]) in members {
        let _ = writeln!(out, "\n[[members]]\ncountry = \"{country}\"");
        let _ = writeln!(
            out,
            "# coverage drawn: emigration {:.3}, immigration {:.3}",
            emigration.coverage, immigration.coverage
        );
        let _ = writeln!(out, "[members.measurement]");
        for (name, r) in [("emigration", m.emigration), ("immigration", m.immigration)] {
            let _ = writeln!(out, "{name}_undercount = \"{}\"", r.undercount.as_str());
            let _ = writeln!(out, "{name}_accuracy = \"{}\"", r.accuracy.as_str());
            let _ = writeln!(out, "{name}_duration_months = {}", r.duration_months);
        }
    }
    out
}

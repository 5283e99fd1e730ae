//! Modelled estimates (SPEC §15): for each pair total, a figure of the true flow with a 95%
//! interval, from both reports corrected by what the consortium agreed about each member's
//! registers. A pure function of the view's pair totals and the consortium document, so it is
//! part of the view and its digest like every other figure.
//!
//! The model (IMEM's measurement model in closed form): a report z of a true flow y has
//! ln z = ln y + ln c − ln R + e, e ~ N(0, s²), with the register's coverage c (prior from its
//! undercount class), duration factor R and accuracy s ([`prior`]).
//!
//! 1. **Coverage from the data.** Each register that is not a reference member's is compared
//!    with the reference members' reports of the same pairs: every pair total both report gives
//!    an observation of its ln c (its report against the reference's corrected one), weighted by
//!    the precision of the two reports. The observations' mean meets the prior as a mixture: the
//!    declared class with weight 0.8 and the other two classes 0.1 each, each updated in closed
//!    form and weighted by how well it explains the data. So a member whose declared class is
//!    wrong is moved to the class its reports show, while one near its class keeps it. Only the
//!    coarsest periods published (years, else quarters, else months) are compared, so a move is
//!    never counted twice.
//! 2. **The estimate.** Each published side of a pair total gives ln y = ln z − ln c + ln R with
//!    variance Var(ln c) + s² + 1/z (the last for the count's own noise); the estimate is their
//!    precision-weighted mean, its interval ±1.96 standard deviations, both exponentiated and
//!    rounded to whole persons. A confidential or missing side adds nothing, and a total that
//!    leaves out confidential cells is no report of the pair; a one-sided pair has the one
//!    side's (wider) interval.
//!
//! Bit-identical everywhere: the pairs are visited in key order, the members in code order, and
//! every logarithm and exponential is `libm`'s (pure Rust), never the platform's.

pub mod prior;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::domain::consortium::{EstimateMethod, Estimates, Member, Register, Undercount};
use crate::domain::model::{Country, Period};

use super::{PairKey, PairTotal, Reported, SideTotal};
pub use prior::Flow;
use prior::{coverage_prior, duration_factor, Declared, LogNormal};

/// z = 0 is read as half a person, so a published zero still says "few" on the log scale.
const ZERO_AS: f64 = 0.5;
/// The 97.5% quantile of the standard normal.
const Z95: f64 = 1.959_963_984_540_054;
/// The prior weight of the declared class; the other two share the rest.
const DECLARED_WEIGHT: f64 = 0.8;

/// A pair total's estimate and its 95% interval, in whole persons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub value: u64,
    pub lower: u64,
    pub upper: u64,
}

/// One register as the estimator fitted it: what a statistician reads to see why a figure moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub member: Country,
    pub flow: Flow,
    /// What the consortium declares.
    pub declared: Register,
    /// A reference member's register keeps its declared prior.
    pub reference: bool,
    /// Pair totals compared with a reference member's reports.
    pub compared: usize,
    /// The class that explains the reports best (the declared one without comparisons).
    pub class: Undercount,
    /// Coverage exp(E ln c) and its 95% interval.
    pub coverage: f64,
    pub coverage_lower: f64,
    pub coverage_upper: f64,
    pub duration_factor: f64,
}

/// Every register's fitted coverage and every pair total's estimate, under `estimates` (none
/// when the method is `none`). `pairs` gets its estimates in place.
pub fn apply(pairs: &mut BTreeMap<PairKey, PairTotal>, estimates: &Estimates, members: &[Member]) -> Vec<Fitted> {
    for total in pairs.values_mut() {
        total.estimate = None;
    }
    if estimates.method == EstimateMethod::None {
        return Vec::new();
    }
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_by_key(|m| m.country);
    let declared: BTreeMap<(Country, Flow), (Register, Declared)> = members
        .iter()
        .flat_map(|m| {
            [
                (Flow::Emigration, m.measurement.emigration),
                (Flow::Immigration, m.measurement.immigration),
            ]
            .map(|(flow, register)| ((m.country, flow), (register, Declared::of(flow, register))))
        })
        .collect();
    let observations = compare(pairs, &declared, &estimates.reference);
    let mut fitted: BTreeMap<(Country, Flow), (LogNormal, Fitted)> = BTreeMap::new();
    for (&(member, flow), &(register, model)) in &declared {
        let reference = estimates.reference.contains(&member);
        let seen = observations.get(&(member, flow)).filter(|_| !reference);
        let (posterior, class) = match seen {
            Some(seen) => mixture(flow, register.undercount, seen),
            None => (model.prior, register.undercount),
        };
        let sd = libm::sqrt(posterior.variance);
        fitted.insert(
            (member, flow),
            (
                posterior,
                Fitted {
                    member,
                    flow,
                    declared: register,
                    reference,
                    compared: seen.map_or(0, |s| s.count),
                    class,
                    coverage: libm::exp(posterior.mean),
                    coverage_lower: libm::exp(posterior.mean - Z95 * sd),
                    coverage_upper: libm::exp(posterior.mean + Z95 * sd),
                    duration_factor: duration_factor(register.duration_months),
                },
            ),
        );
    }
    for (pair, total) in pairs.iter_mut() {
        let sides = [
            (&total.sender, pair.origin, Flow::Emigration),
            (&total.receiver, pair.destination, Flow::Immigration),
        ];
        let mut precision = 0.0;
        let mut weighted = 0.0;
        for (side, member, flow) in sides {
            let (Some(z), Some((coverage, _)), Some((_, model))) =
                (report(side), fitted.get(&(member, flow)), declared.get(&(member, flow)))
            else {
                continue;
            };
            let z = z.max(ZERO_AS);
            let mean = libm::log(z) - coverage.mean + model.log_duration;
            let variance = coverage.variance + model.noise + 1.0 / z;
            precision += 1.0 / variance;
            weighted += mean / variance;
        }
        if precision > 0.0 {
            let mean = weighted / precision;
            let sd = libm::sqrt(1.0 / precision);
            total.estimate = Some(Estimate {
                value: whole(libm::exp(mean)),
                lower: whole(libm::exp(mean - Z95 * sd)),
                upper: whole(libm::exp(mean + Z95 * sd)),
            });
        }
    }
    fitted.into_values().map(|(_, f)| f).collect()
}

/// A side's published figure, when it is a report of the whole pair.
fn report(side: &SideTotal) -> Option<f64> {
    match side.reported {
        Reported::Value(z) if !side.incomplete() => Some(z as f64),
        _ => None,
    }
}

/// Rounded to whole persons, within what a count can be.
fn whole(x: f64) -> u64 {
    libm::round(x.clamp(0.0, 1e15)) as u64
}

/// The observations of one register's ln c, summed as a precision-weighted mean.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    count: usize,
    /// Σ w.
    precision: f64,
    /// Σ w·o.
    weighted: f64,
    /// Σ w·Var(ln c of the reference): the reference's own uncertainty, shared by every
    /// observation, so it does not shrink with their number.
    shared: f64,
}

impl Seen {
    fn mean(&self) -> f64 {
        self.weighted / self.precision
    }

    fn variance(&self) -> f64 {
        1.0 / self.precision + self.shared / self.precision
    }
}

/// Step 1's observations: each register that is not a reference's against the reference
/// members' reports of the same pair totals, in the coarsest periods published.
fn compare(
    pairs: &BTreeMap<PairKey, PairTotal>,
    declared: &BTreeMap<(Country, Flow), (Register, Declared)>,
    reference: &[Country],
) -> BTreeMap<(Country, Flow), Seen> {
    let rank = |p: Period| match p {
        Period::Year(_) => 0,
        Period::Quarter(..) => 1,
        Period::Month(..) => 2,
    };
    let coarsest = pairs.keys().map(|k| rank(k.period)).min();
    let mut seen: BTreeMap<(Country, Flow), Seen> = BTreeMap::new();
    for (pair, total) in pairs {
        if Some(rank(pair.period)) != coarsest {
            continue;
        }
        let (Some(sent), Some(received)) = (report(&total.sender), report(&total.receiver)) else {
            continue;
        };
        if sent <= 0.0 || received <= 0.0 {
            continue;
        }
        let sender = (pair.origin, Flow::Emigration, sent);
        let receiver = (pair.destination, Flow::Immigration, received);
        for ((member, flow, z), (anchor, anchor_flow, anchor_z)) in [(sender, receiver), (receiver, sender)] {
            if reference.contains(&member) || !reference.contains(&anchor) {
                continue;
            }
            let (Some((_, own)), Some((_, other))) =
                (declared.get(&(member, flow)), declared.get(&(anchor, anchor_flow)))
            else {
                continue;
            };
            // ln y as the reference sees it, then this register's ln c against it.
            let log_y = libm::log(anchor_z) - other.prior.mean + other.log_duration;
            let observed = libm::log(z) + own.log_duration - log_y;
            let w = 1.0 / (own.noise + other.noise + 1.0 / z + 1.0 / anchor_z);
            let s = seen.entry((member, flow)).or_default();
            s.count += 1;
            s.precision += w;
            s.weighted += w * observed;
            s.shared += w * other.prior.variance;
        }
    }
    seen
}

/// The posterior of ln c under the class mixture prior, collapsed to its mean and variance,
/// and the class with the largest posterior weight.
fn mixture(flow: Flow, declared: Undercount, seen: &Seen) -> (LogNormal, Undercount) {
    let (observed, data_variance) = (seen.mean(), seen.variance());
    let classes = [Undercount::Low, Undercount::Medium, Undercount::High];
    let parts = classes.map(|class| {
        let prior = coverage_prior(flow, class);
        let weight = if class == declared {
            DECLARED_WEIGHT
        } else {
            (1.0 - DECLARED_WEIGHT) / 2.0
        };
        // How well the class explains the observed mean: N(observed; prior mean, both variances).
        let spread = prior.variance + data_variance;
        let log_weight = libm::log(weight)
            - 0.5 * libm::log(spread)
            - 0.5 * (observed - prior.mean) * (observed - prior.mean) / spread;
        let precision = 1.0 / prior.variance + 1.0 / data_variance;
        let mean = (prior.mean / prior.variance + observed / data_variance) / precision;
        (log_weight, mean, 1.0 / precision)
    });
    let top = parts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let weights = parts.map(|p| libm::exp(p.0 - top));
    let sum: f64 = weights.iter().sum();
    let mean: f64 = (0..3).map(|i| weights[i] * parts[i].1).sum::<f64>() / sum;
    let second: f64 = (0..3)
        .map(|i| weights[i] * (parts[i].2 + parts[i].1 * parts[i].1))
        .sum::<f64>()
        / sum;
    let best = (0..3).fold(0, |best, i| if weights[i] > weights[best] { i } else { best });
    (
        LogNormal {
            mean,
            variance: (second - mean * mean).max(1e-12),
        },
        classes[best],
    )
}

//! The measurement model's fixed parts (SPEC §15): the coverage priors of each undercount class
//! on the log scale, the duration factors and the accuracy of each register. Coverage c of a
//! class is Beta(a, b); the model works with ln c, whose mean and variance are
//! ψ(a) − ψ(a + b) and ψ1(a) − ψ1(a + b) (digamma and trigamma). Everything here is basic IEEE
//! arithmetic and `libm`'s pure-Rust logarithm, so every platform computes the same bits.

use crate::domain::consortium::{Accuracy, Register, Undercount};

/// Which of a member's registers: emigration (its `OUT` side) or immigration (its `IN` side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flow {
    Emigration,
    Immigration,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Emigration => "emigration",
            Flow::Immigration => "immigration",
        }
    }
}

/// A normal distribution on the log scale, by mean and variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormal {
    pub mean: f64,
    pub variance: f64,
}

/// The Beta parameters of the low and high undercount classes (SPEC §15).
fn beta(flow: Flow, class: Undercount) -> Option<(f64, f64)> {
    match (flow, class) {
        (Flow::Emigration, Undercount::Low) => Some((44.95, 16.96)),
        (Flow::Emigration, Undercount::High) => Some((32.14, 38.52)),
        (Flow::Immigration, Undercount::Low) => Some((57.49, 8.07)),
        (Flow::Immigration, Undercount::High) => Some((44.56, 20.89)),
        (_, Undercount::Medium) => None,
    }
}

/// The prior of ln c for a class: from its Beta for `low` and `high`; `medium` halfway
/// between them on the log scale, with the larger of their variances.
pub fn coverage_prior(flow: Flow, class: Undercount) -> LogNormal {
    let of = |(a, b): (f64, f64)| LogNormal {
        mean: digamma(a) - digamma(a + b),
        variance: trigamma(a) - trigamma(a + b),
    };
    match beta(flow, class) {
        Some(ab) => of(ab),
        None => {
            let low = coverage_prior(flow, Undercount::Low);
            let high = coverage_prior(flow, Undercount::High);
            LogNormal {
                mean: 0.5 * (low.mean + high.mean),
                variance: low.variance.max(high.variance),
            }
        }
    }
}

/// R: how many moves a register counts under its duration rule against the 12-month
/// definition (a register without a minimum counts short stays too: z = y c / R).
pub fn duration_factor(months: u32) -> f64 {
    match months {
        0 => 0.53,
        3 => 0.63,
        6 => 0.73,
        60 => 2.26,
        // 12 and anything the consortium check lets through.
        _ => 1.0,
    }
}

/// s: the standard deviation of a register's report around its coverage, on the log scale.
pub fn accuracy_sd(accuracy: Accuracy) -> f64 {
    match accuracy {
        Accuracy::High => 0.27,
        Accuracy::Low => 0.77,
    }
}

/// The parts of the model one register contributes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Declared {
    pub prior: LogNormal,
    /// ln R.
    pub log_duration: f64,
    /// s².
    pub noise: f64,
}

impl Declared {
    pub fn of(flow: Flow, register: Register) -> Declared {
        let s = accuracy_sd(register.accuracy);
        Declared {
            prior: coverage_prior(flow, register.undercount),
            log_duration: libm::log(duration_factor(register.duration_months)),
            noise: s * s,
        }
    }
}

/// ψ(x) for x > 0: the recurrence up to 10, then the asymptotic series (error below 1e-14).
pub fn digamma(mut x: f64) -> f64 {
    let mut result = 0.0;
    while x < 10.0 {
        result -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    result + libm::log(x)
        - 0.5 / x
        - f * (1.0 / 12.0 - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f * (1.0 / 132.0)))))
}

/// ψ1(x) for x > 0: the recurrence up to 10, then the asymptotic series.
pub fn trigamma(mut x: f64) -> f64 {
    let mut result = 0.0;
    while x < 10.0 {
        result += 1.0 / (x * x);
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    result
        + 1.0 / x
        + f / 2.0
        + f / x * (1.0 / 6.0 - f * (1.0 / 30.0 - f * (1.0 / 42.0 - f * (1.0 / 30.0 - f * 5.0 / 66.0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_and_trigamma_match_known_values() {
        // ψ(1) = −γ, ψ1(1) = π²/6, ψ(0.5) = −γ − 2 ln 2.
        let gamma = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + gamma).abs() < 1e-12);
        assert!((trigamma(1.0) - std::f64::consts::PI.powi(2) / 6.0).abs() < 1e-12);
        assert!((digamma(0.5) + gamma + 2.0 * std::f64::consts::LN_2).abs() < 1e-12);
        // ψ(x + 1) = ψ(x) + 1/x across the switch to the series.
        for x in [3.7, 9.5, 9.99, 44.95] {
            assert!((digamma(x + 1.0) - digamma(x) - 1.0 / x).abs() < 1e-12, "{x}");
            assert!((trigamma(x) - trigamma(x + 1.0) - 1.0 / (x * x)).abs() < 1e-12, "{x}");
        }
    }

    #[test]
    fn class_priors_have_the_means_spec_15_gives() {
        // exp(E ln c) is close to (a little below) the Beta mean.
        for (flow, class, mean) in [
            (Flow::Emigration, Undercount::Low, 0.73),
            (Flow::Emigration, Undercount::High, 0.45),
            (Flow::Immigration, Undercount::Low, 0.88),
            (Flow::Immigration, Undercount::High, 0.68),
        ] {
            let prior = coverage_prior(flow, class);
            let c = libm::exp(prior.mean + prior.variance / 2.0);
            assert!((c - mean).abs() < 0.006, "{flow:?} {class:?}: {c}");
            assert!(prior.variance > 0.0 && prior.variance < 0.05);
        }
        let low = coverage_prior(Flow::Emigration, Undercount::Low);
        let high = coverage_prior(Flow::Emigration, Undercount::High);
        let medium = coverage_prior(Flow::Emigration, Undercount::Medium);
        assert_eq!(medium.mean, 0.5 * (low.mean + high.mean));
        assert_eq!(medium.variance, low.variance.max(high.variance));
    }
}

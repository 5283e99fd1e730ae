//! The probability distributions of the synthetic world: how many moves a month brings, and
//! each person's attributes and each register's noise. Pure functions of a random stream; must
//! never keep state between draws, so any draw can be recomputed alone.

use super::rng::SplitMix64;
use crate::domain::model::Country;
use crate::domain::record::{Reason, Sex};

/// A count with mean `mean`: the mean jittered by ±20 % (months differ), then rounded at random
/// so small corridors still see their fractional moves. Only basic IEEE arithmetic (no libm), so
/// every platform draws the same counts.
pub(super) fn jittered(mean: f64, rng: &mut SplitMix64) -> u64 {
    let jittered = mean * (0.8 + 0.4 * rng.unit());
    let whole = jittered.floor();
    whole as u64 + u64::from(rng.chance(jittered - whole))
}

/// An element of the list, earlier ones more often (the lists are ordered by weight).
pub(super) fn pick(list: &[Country], rng: &mut SplitMix64) -> Option<Country> {
    let u = rng.unit();
    list.get((u * u * list.len() as f64) as usize).copied()
}

/// As [`pick`], but never `avoid`.
pub(super) fn pick_other(list: &[Country], avoid: Country, rng: &mut SplitMix64) -> Option<Country> {
    let u = rng.unit();
    let index = (u * u * list.len() as f64) as usize;
    let chosen = list.get(index).copied()?;
    if chosen != avoid {
        return Some(chosen);
    }
    list.get((index + 1) % list.len()).copied().filter(|&c| c != avoid)
}

pub(super) fn draw_sex(rng: &mut SplitMix64, female: f64, male: f64) -> Sex {
    let u = rng.unit();
    if u < female {
        Sex::F
    } else if u < female + male {
        Sex::M
    } else if u < female + male + 0.005 {
        Sex::X
    } else {
        Sex::U
    }
}

/// Working-age adults dominate, with children and older movers; 3 % of birth years unknown.
pub(super) fn draw_birth_year(rng: &mut SplitMix64, event_year: i32) -> Option<i32> {
    let u = rng.unit();
    let age = if u < 0.15 {
        rng.below(18)
    } else if u < 0.90 {
        18 + rng.below(16) + rng.below(16)
    } else {
        50 + rng.below(36)
    };
    (!rng.chance(0.03)).then_some(event_year - age as i32)
}

/// Short stays, a large band within ±3 months of the 12-month threshold, and long stays.
pub(super) fn draw_true_duration(rng: &mut SplitMix64) -> u32 {
    let u = rng.unit();
    let months = if u < 0.22 {
        1 + rng.below(11)
    } else if u < 0.60 {
        9 + rng.below(7)
    } else if u < 0.95 {
        16 + rng.below(105)
    } else {
        121 + rng.below(240)
    };
    months as u32
}

/// The share of true moves staying at least `months` under [`draw_true_duration`], exactly.
pub(super) fn share_at_least(months: u32) -> f64 {
    // (probability, first, last month) of each band draw_true_duration draws uniformly from.
    const BANDS: [(f64, u32, u32); 4] = [(0.22, 1, 11), (0.38, 9, 15), (0.35, 16, 120), (0.05, 121, 360)];
    BANDS
        .iter()
        .map(|&(p, first, last)| {
            let from = months.max(first);
            if from > last {
                0.0
            } else {
                p * f64::from(last - from + 1) / f64::from(last - first + 1)
            }
        })
        .sum()
}

pub(super) fn draw_move_reason(rng: &mut SplitMix64) -> Reason {
    match rng.unit() {
        u if u < 0.35 => Reason::Work,
        u if u < 0.60 => Reason::Family,
        u if u < 0.75 => Reason::Education,
        u if u < 0.82 => Reason::Protection,
        u if u < 0.90 => Reason::Other,
        _ => Reason::Unknown,
    }
}

/// A register's duration: sometimes missing, often exact, otherwise off by up to 3 months
/// (intentions change; registers round).
pub(super) fn noisy_duration(rng: &mut SplitMix64, truth: u32, missing: f64, exact: f64) -> Option<u32> {
    if rng.chance(missing) {
        return None;
    }
    if rng.chance(exact) {
        return Some(truth);
    }
    let offset = 1 + rng.below(3) as u32;
    Some(if rng.chance(0.5) {
        truth + offset
    } else {
        truth.saturating_sub(offset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_staying_at_least_a_duration_matches_the_draws() {
        let mut rng = SplitMix64::new(7);
        let draws: Vec<u32> = (0..200_000).map(|_| draw_true_duration(&mut rng)).collect();
        for months in [0, 1, 3, 6, 12, 60, 121, 361] {
            let seen = draws.iter().filter(|&&d| d >= months).count() as f64 / draws.len() as f64;
            assert!(
                (seen - share_at_least(months)).abs() < 0.005,
                "{months}: {seen} against {}",
                share_at_least(months)
            );
        }
        assert!((share_at_least(0) - 1.0).abs() < 1e-12 && share_at_least(361) == 0.0);
    }

    #[test]
    fn counts_keep_their_mean_even_when_small() {
        let mut rng = SplitMix64::new(3);
        for mean in [0.3, 2.5, 40.0] {
            let total: u64 = (0..20_000).map(|_| jittered(mean, &mut rng)).sum();
            let average = total as f64 / 20_000.0;
            assert!((average - mean).abs() < mean * 0.03, "{mean}: {average}");
        }
    }

    #[test]
    fn pick_other_never_returns_the_avoided_country() {
        let list: Vec<Country> = ["SYR", "AFG", "TUR"].iter().filter_map(|c| Country::parse(c)).collect();
        let mut rng = SplitMix64::new(9);
        for _ in 0..1000 {
            assert_ne!(pick_other(&list, list[0], &mut rng), Some(list[0]));
        }
        assert_eq!(pick_other(&list[..1], list[0], &mut rng), None);
    }

    #[test]
    fn register_durations_stay_within_three_months_of_the_truth() {
        let mut rng = SplitMix64::new(5);
        let (mut missing, mut exact) = (0, 0);
        for _ in 0..10_000 {
            match noisy_duration(&mut rng, 12, 0.2, 0.5) {
                None => missing += 1,
                Some(12) => exact += 1,
                Some(other) => assert!((9..=15).contains(&other), "{other}"),
            }
        }
        assert!((1_800..2_200).contains(&missing), "{missing}");
        assert!((3_800..4_200).contains(&exact), "{exact}");
    }
}

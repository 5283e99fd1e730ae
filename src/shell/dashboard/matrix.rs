//! Which members the flows matrix shows, and in what order, so that a consortium of up to 193
//! members (SPEC §17) stays readable: the members an analyst lists (a region, a group of
//! partners), else every member up to [`MATRIX_MEMBERS`], else the largest that many; ordered by
//! code, by size (what a member sends and receives in the period shown) or by asymmetry (the
//! mean absolute asymmetry of its pairs, largest first).

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::model::Country;

/// Past this many members, a matrix with no members listed shows the largest this many.
pub const MATRIX_MEMBERS: usize = 40;

/// How the matrix orders its rows and columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Code,
    Size,
    Asymmetry,
}

impl Sort {
    /// The query string's `sort`: empty or `code`, `size`, `asymmetry`.
    pub fn parse(text: &str) -> Option<Sort> {
        match text {
            "" | "code" => Some(Sort::Code),
            "size" => Some(Sort::Size),
            "asymmetry" => Some(Sort::Asymmetry),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Code => "code",
            Sort::Size => "size",
            Sort::Asymmetry => "asymmetry",
        }
    }
}

/// What the analyst asked the matrix for: the members listed (none: all) and the order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    pub members: BTreeSet<Country>,
    pub sort: Sort,
}

/// One pair of the period shown: the figure the matrix shows and the asymmetry of its sides.
pub type PairFigures = BTreeMap<(Country, Country), (Option<u64>, Option<f64>)>;

/// The members the matrix shows, in order, and whether the largest were kept because there
/// were more than [`MATRIX_MEMBERS`] and none was listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub order: Vec<Country>,
    pub capped: bool,
}

/// The rows and columns for `members` (those publishing flows) given the period's `pairs`.
/// Listed members that publish no flows are left out.
pub fn shown(members: &BTreeSet<Country>, pairs: &PairFigures, choice: &Choice) -> Shown {
    let mut size: BTreeMap<Country, u64> = BTreeMap::new();
    let mut asymmetry: BTreeMap<Country, (f64, u32)> = BTreeMap::new();
    for ((origin, destination), (figure, asym)) in pairs {
        for member in [origin, destination] {
            let s = size.entry(*member).or_default();
            *s = s.saturating_add(figure.unwrap_or(0));
            if let Some(a) = asym {
                let entry = asymmetry.entry(*member).or_default();
                entry.0 += a.abs();
                entry.1 += 1;
            }
        }
    }
    let size_of = |c: &Country| size.get(c).copied().unwrap_or(0);
    let asymmetry_of = |c: &Country| asymmetry.get(c).map_or(0.0, |(sum, n)| sum / f64::from(*n));
    let by_size = |order: &mut Vec<Country>| order.sort_by(|a, b| size_of(b).cmp(&size_of(a)).then(a.cmp(b)));
    let mut order: Vec<Country> = if choice.members.is_empty() {
        members.iter().copied().collect()
    } else {
        members.intersection(&choice.members).copied().collect()
    };
    let capped = choice.members.is_empty() && order.len() > MATRIX_MEMBERS;
    if capped {
        by_size(&mut order);
        order.truncate(MATRIX_MEMBERS);
    }
    match choice.sort {
        Sort::Code => order.sort(),
        Sort::Size => by_size(&mut order),
        Sort::Asymmetry => order.sort_by(|a, b| asymmetry_of(b).total_cmp(&asymmetry_of(a)).then(a.cmp(b))),
    }
    Shown { order, capped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Country {
        Country::parse(code).expect("country")
    }

    fn pairs() -> PairFigures {
        [
            (("DEU", "FRA"), (Some(100), Some(0.1))),
            (("FRA", "DEU"), (Some(50), Some(-0.9))),
            (("ITA", "DEU"), (Some(10), Some(0.2))),
            (("DEU", "ITA"), (None, None)),
        ]
        .into_iter()
        .map(|((o, d), v)| ((c(o), c(d)), v))
        .collect()
    }

    #[test]
    fn the_matrix_orders_by_code_size_or_asymmetry_and_keeps_the_members_listed() {
        let members: BTreeSet<Country> = ["DEU", "FRA", "ITA"].into_iter().map(c).collect();
        let order = |members_listed: &[&str], sort: Sort| {
            let choice = Choice {
                members: members_listed.iter().map(|m| c(m)).collect(),
                sort,
            };
            shown(&members, &pairs(), &choice)
                .order
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&[], Sort::Code), ["DEU", "FRA", "ITA"]);
        // DEU sends and receives 160, FRA 150, ITA 10.
        assert_eq!(order(&[], Sort::Size), ["DEU", "FRA", "ITA"]);
        // FRA: (0.1 + 0.9) / 2 = 0.5; DEU: (0.1 + 0.9 + 0.2) / 3 = 0.4; ITA 0.2.
        assert_eq!(order(&[], Sort::Asymmetry), ["FRA", "DEU", "ITA"]);
        // A listed group; a listed code that publishes no flows is left out.
        assert_eq!(order(&["ITA", "FRA", "ESP"], Sort::Code), ["FRA", "ITA"]);
    }

    #[test]
    fn past_the_limit_the_largest_members_are_shown() {
        let members: BTreeSet<Country> = Country::all_iso().take(MATRIX_MEMBERS + 10).collect();
        // Each member sends its index to the first: the largest members are the last codes.
        let first = *members.iter().next().expect("a member");
        let pairs: PairFigures = members
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, m)| ((*m, first), (Some(i as u64), None)))
            .collect();
        let all = shown(&members, &pairs, &Choice::default());
        assert!(all.capped);
        assert_eq!(all.order.len(), MATRIX_MEMBERS);
        assert!(all.order.contains(&first), "the first receives from all: the largest");
        let smallest = members.iter().nth(1).expect("a member");
        assert!(!all.order.contains(smallest), "{smallest} sends 1");
        assert!(all.order.windows(2).all(|w| w[0] < w[1]), "by code");
        // Listing members lifts the limit.
        let listed = Choice {
            members: members.iter().take(45).copied().collect(),
            sort: Sort::Code,
        };
        let chosen = shown(&members, &pairs, &listed);
        assert!(!chosen.capped);
        assert_eq!(chosen.order.len(), 45);
    }
}

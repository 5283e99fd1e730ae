//! What a `flows` dataset does not report (SPEC §2): not reported is not zero. Real registers
//! cover some directions and partners only; a dataset names the rest, inside its signed payload,
//! so the view reads those sides as missing (`M`) instead of as a reported zero. Inside what a
//! dataset reports, an absent cell is still zero.
//!
//! The scope is kept canonical (directions IN before OUT, partners sorted and unique, a whole
//! direction with no partner list), so the same declaration always encodes to the same bytes.

use std::collections::BTreeSet;

use crate::domain::model::Country;

/// One direction's unreported part: nothing, some partners, or every partner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    Reported,
    Partners(BTreeSet<Country>),
    All,
}

impl Scope {
    fn covers(&self, partner: Country) -> bool {
        match self {
            Scope::Reported => false,
            Scope::Partners(partners) => partners.contains(&partner),
            Scope::All => true,
        }
    }

    fn merge(&mut self, other: Scope) {
        *self = match (std::mem::take(self), other) {
            (Scope::All, _) | (_, Scope::All) => Scope::All,
            (Scope::Reported, other) | (other, Scope::Reported) => other,
            (Scope::Partners(mut a), Scope::Partners(b)) => {
                a.extend(b);
                Scope::Partners(a)
            }
        };
    }
}

/// The unreported scope of a `flows` dataset: per direction (`IN` = immigration by previous
/// residence, `OUT` = emigration by next residence).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unreported {
    pub inbound: Scope,
    pub outbound: Scope,
}

/// Why an `--unreported` argument does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--unreported {argument:?}: {reason} (expected IN, OUT, IN:AUT,EST or OUT:FRA)")]
pub struct UnreportedError {
    pub argument: String,
    pub reason: String,
}

impl Unreported {
    /// Reports everything.
    pub fn none() -> Unreported {
        Unreported::default()
    }

    pub fn is_empty(&self) -> bool {
        self.inbound == Scope::Reported && self.outbound == Scope::Reported
    }

    /// Whether the side `direction` (`"IN"` or `"OUT"`) towards `partner` is outside what the
    /// dataset reports.
    pub fn covers(&self, direction: &str, partner: Country) -> bool {
        match direction {
            "IN" => self.inbound.covers(partner),
            "OUT" => self.outbound.covers(partner),
            _ => false,
        }
    }

    /// Whether a cell key (`direction, partner, ...`) falls outside what the dataset reports.
    pub fn covers_key(&self, key: &[String]) -> bool {
        match key {
            [direction, partner, ..] => Country::parse(partner).is_some_and(|p| self.covers(direction, p)),
            _ => false,
        }
    }

    /// Parses one `--unreported` argument (`OUT`, `IN:AUT,EST`) and adds it to this scope.
    /// `publisher` may not name itself as a partner.
    pub fn add_argument(&mut self, argument: &str, publisher: Country) -> Result<(), UnreportedError> {
        let error = |reason: String| UnreportedError {
            argument: argument.to_string(),
            reason,
        };
        let (direction, partners) = match argument.split_once(':') {
            None => (argument, None),
            Some((direction, list)) => (direction, Some(list)),
        };
        let scope = match partners {
            None => Scope::All,
            Some(list) => {
                let mut partners = BTreeSet::new();
                for code in list.split(',') {
                    let partner = Country::parse(code.trim())
                        .filter(|c| c.is_iso())
                        .ok_or_else(|| error(format!("{code:?} is not an ISO 3166 alpha-3 country code")))?;
                    if partner == publisher {
                        return Err(error(format!("{partner} is this node's own country")));
                    }
                    partners.insert(partner);
                }
                Scope::Partners(partners)
            }
        };
        match direction {
            "IN" => self.inbound.merge(scope),
            "OUT" => self.outbound.merge(scope),
            other => return Err(error(format!("direction {other:?} is neither IN nor OUT"))),
        }
        Ok(())
    }

    /// The arguments that give this scope back, in canonical order (`IN...` before `OUT...`).
    pub fn arguments(&self) -> Vec<String> {
        [("IN", &self.inbound), ("OUT", &self.outbound)]
            .into_iter()
            .filter_map(|(direction, scope)| match scope {
                Scope::Reported => None,
                Scope::All => Some(direction.to_string()),
                Scope::Partners(p) => Some(format!(
                    "{direction}:{}",
                    p.iter().map(Country::to_string).collect::<Vec<_>>().join(",")
                )),
            })
            .collect()
    }

    /// The scope as (direction, partners) pairs, canonical order; no partners = the whole
    /// direction. This is what the signed payload carries.
    pub fn entries(&self) -> Vec<(&'static str, Vec<Country>)> {
        [("IN", &self.inbound), ("OUT", &self.outbound)]
            .into_iter()
            .filter_map(|(direction, scope)| match scope {
                Scope::Reported => None,
                Scope::All => Some((direction, Vec::new())),
                Scope::Partners(p) => Some((direction, p.iter().copied().collect())),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dataset::tests::{check, dataset, fixture, with_payload};
    use crate::domain::dataset::{Dataset, VerifyError};
    use crate::domain::model::Cube;
    use crate::proto;

    fn country(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    #[test]
    fn arguments_merge_into_one_canonical_scope() {
        let deu = country("DEU");
        let mut scope = Unreported::none();
        scope.add_argument("IN:EST,AUT", deu).unwrap();
        scope.add_argument("IN:AUT,FRA", deu).unwrap();
        scope.add_argument("OUT:ITA", deu).unwrap();
        scope.add_argument("OUT", deu).unwrap();
        assert_eq!(scope.arguments(), ["IN:AUT,EST,FRA", "OUT"]);
        assert!(scope.covers("IN", country("EST")) && !scope.covers("IN", country("ITA")));
        assert!(scope.covers("OUT", country("ITA")) && scope.covers("OUT", country("POL")));
        let key = |k: &str| k.split(',').map(str::to_string).collect::<Vec<_>>();
        assert!(scope.covers_key(&key("IN,AUT,_T,_T,_T")) && !scope.covers_key(&key("IN,POL,SYR,F,Y20-24")));
        assert!(Unreported::none().is_empty() && !scope.is_empty());
    }

    #[test]
    fn bad_arguments_are_named() {
        let deu = country("DEU");
        let mut scope = Unreported::none();
        for (argument, reason) in [
            ("UP", "neither IN nor OUT"),
            ("IN:AUT,12", "not an ISO 3166"),
            ("OUT:DEU", "own country"),
            ("IN:", "not an ISO 3166"),
            ("IN:XXX", "not an ISO 3166"),
        ] {
            let error = scope.add_argument(argument, deu).unwrap_err().to_string();
            assert!(
                error.contains(argument) && error.contains(reason),
                "{argument}: {error}"
            );
        }
        assert!(scope.is_empty(), "a refused argument adds nothing");
    }

    #[test]
    fn an_unreported_scope_round_trips_and_only_its_canonical_form_is_accepted() {
        let f = fixture();
        let deu = country("DEU");
        // A dataset that does not report emigration at all, nor immigration from AUT and EST.
        let mut declared = dataset("DEU");
        declared.cells.retain(|c| c.key[0] != "OUT");
        declared.unreported.add_argument("OUT", deu).unwrap();
        declared.unreported.add_argument("IN:EST,AUT", deu).unwrap();
        let decoded = Dataset::decode(&declared.encode(), 100).unwrap();
        assert_eq!(decoded, declared);
        assert_eq!(decoded.unreported.arguments(), ["IN:AUT,EST", "OUT"]);

        let with = |edit: &dyn Fn(&mut proto::Dataset)| {
            use prost::Message;
            let mut d = proto::Dataset::decode(declared.encode().as_slice()).unwrap();
            edit(&mut d);
            check(&f, with_payload(&f, d))
        };
        assert!(with(&|_| {}).is_ok());
        type Edit<'a> = &'a dyn Fn(&mut proto::Dataset);
        let refused: [(&str, Edit); 7] = [
            ("OUT before IN", &|d| d.unreported.reverse()),
            ("a direction twice", &|d| d.unreported[1].direction = "IN".into()),
            ("an unknown direction", &|d| d.unreported[1].direction = "UP".into()),
            ("partners unsorted", &|d| d.unreported[0].partners.reverse()),
            ("the publisher as partner", &|d| {
                d.unreported[0].partners[0] = "DEU".into()
            }),
            ("a cell inside the scope", &|d| d.cells[0].key[0] = "OUT".into()),
            ("a scope on another cube", &|d| {
                d.cube = "asylum".into();
                d.dimensions = Cube::Asylum.dimensions().iter().map(|s| s.to_string()).collect();
                d.cells.clear();
            }),
        ];
        for (what, edit) in refused {
            assert!(matches!(with(edit), Err(VerifyError::Decode(_))), "{what}: accepted");
        }
    }
}

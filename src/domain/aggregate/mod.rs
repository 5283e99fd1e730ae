//! Aggregates: which cube cell a record counts in (SPEC §2), and disclosure control (SPEC §3).
//!
//! Each stored record contributes to at most one cell of one cube, at month granularity, so a
//! quarter or a year is a sum of months. A cell is identified by a compact binary [`CellKey`]
//! (the store keeps live counts under it) and carries the count and the sum of its records'
//! cell keys. Pure: this module never touches the store.

pub mod audit;
pub mod disclosure;
pub mod margins;

use crate::domain::consortium::Definition;
use crate::domain::model::Country;
use crate::domain::model::{Cube, AGE_BANDS};
use crate::domain::record::{EventType, Reason, Sex};

/// The age band index for the age reached in the event's year (event year − birth year).
pub fn age_band(event_year: i32, birth_year: Option<i32>) -> u8 {
    match birth_year {
        None => 18,
        Some(b) => {
            let age = event_year - b;
            if age < 0 {
                18
            } else {
                (age / 5).min(17) as u8
            }
        }
    }
}

/// The fields of a record that aggregation needs (what the store keeps, minus identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub event_type: EventType,
    pub year: i32,
    pub month: u8,
    pub citizenship: Country,
    pub partner: Option<Country>,
    pub sex: Sex,
    pub birth_year: Option<i32>,
    pub reason: Reason,
    pub duration_months: Option<u32>,
}

/// Binary key of one cube cell in one month: cube, year (BE), month, then the dimensions.
/// Byte order sorts by cube, then time, then dimensions, so a period is a key range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey(pub Vec<u8>);

impl CellKey {
    /// The cell a record counts in under `definition`, if any.
    pub fn of(facts: &Facts, definition: &Definition) -> Option<CellKey> {
        let mut k = Vec::with_capacity(13);
        let band = age_band(facts.year, facts.birth_year);
        let push_time = |k: &mut Vec<u8>, cube: Cube| {
            k.push(cube.code());
            k.extend_from_slice(&(facts.year as u16).to_be_bytes());
            k.push(facts.month);
        };
        match facts.event_type {
            EventType::Immigration | EventType::Emigration => {
                if !definition.counts(facts.duration_months) {
                    return None;
                }
                let partner = facts.partner?;
                push_time(&mut k, Cube::Flows);
                k.push(u8::from(facts.event_type == EventType::Emigration));
                k.extend_from_slice(&partner.bytes());
                k.extend_from_slice(&facts.citizenship.bytes());
                k.push(facts.sex.code());
                k.push(band);
            }
            EventType::AsylumApplication => {
                push_time(&mut k, Cube::Asylum);
                k.extend_from_slice(&facts.citizenship.bytes());
                k.push(facts.sex.code());
                k.push(band);
            }
            EventType::ResidencePermit => {
                push_time(&mut k, Cube::Permits);
                k.extend_from_slice(&facts.citizenship.bytes());
                k.push(facts.reason.code());
            }
        }
        Some(CellKey(k))
    }

    /// The prefix of all cells of `cube` in `year`/`month`.
    pub fn month_prefix(cube: Cube, year: i32, month: u8) -> Vec<u8> {
        let mut k = vec![cube.code()];
        k.extend_from_slice(&(year as u16).to_be_bytes());
        k.push(month);
        k
    }

    pub fn cube(&self) -> Option<Cube> {
        self.0.first().and_then(|&c| Cube::from_code(c))
    }

    /// The dimension values as published (in `Cube::dimensions()` order), or `None` if the
    /// bytes are not a valid key.
    pub fn dimensions(&self) -> Option<Vec<String>> {
        let cube = self.cube()?;
        let d = self.0.get(4..)?;
        let country = |b: &[u8]| -> Option<String> { Some(Country::from_bytes(b.try_into().ok()?)?.to_string()) };
        let sex = |b: u8| Sex::from_code(b).map(|s| s.as_str().to_string());
        let band = |b: u8| AGE_BANDS.get(usize::from(b)).map(|s| s.to_string());
        match cube {
            Cube::Flows if d.len() == 9 => Some(vec![
                (if d[0] == 1 { "OUT" } else { "IN" }).to_string(),
                country(&d[1..4])?,
                country(&d[4..7])?,
                sex(d[7])?,
                band(d[8])?,
            ]),
            Cube::Asylum if d.len() == 5 => Some(vec![country(&d[0..3])?, sex(d[3])?, band(d[4])?]),
            Cube::Permits if d.len() == 4 => {
                Some(vec![country(&d[0..3])?, Reason::from_code(d[3])?.as_str().to_string()])
            }
            _ => None,
        }
    }
}

/// A cell's live state: how many records count in it and the sum of their cell keys (the
/// cell-key method's cell key is this sum mod 256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub count: i64,
    pub key_sum: i64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.count += other.count;
        self.key_sum += other.key_sum;
    }

    pub fn is_zero(&self) -> bool {
        self.count == 0 && self.key_sum == 0
    }

    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.count.to_be_bytes());
        b[8..].copy_from_slice(&self.key_sum.to_be_bytes());
        b
    }

    pub fn decode(bytes: &[u8]) -> Option<Tally> {
        let b: &[u8; 16] = bytes.try_into().ok()?;
        Some(Tally {
            count: i64::from_be_bytes(b[..8].try_into().ok()?),
            key_sum: i64::from_be_bytes(b[8..].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consortium::UnknownDuration;

    fn facts(event_type: EventType, duration: Option<u32>) -> Facts {
        Facts {
            event_type,
            year: 2024,
            month: 5,
            citizenship: Country::parse("SYR").unwrap(),
            partner: Country::parse("FRA"),
            sex: Sex::F,
            birth_year: Some(1990),
            reason: Reason::Work,
            duration_months: duration,
        }
    }

    #[test]
    fn age_bands_follow_the_eurostat_convention() {
        assert_eq!(AGE_BANDS[usize::from(age_band(2024, Some(2024)))], "Y0-4");
        assert_eq!(AGE_BANDS[usize::from(age_band(2024, Some(2020)))], "Y0-4");
        assert_eq!(AGE_BANDS[usize::from(age_band(2024, Some(2019)))], "Y5-9");
        assert_eq!(AGE_BANDS[usize::from(age_band(2024, Some(1940)))], "Y80-84");
        assert_eq!(AGE_BANDS[usize::from(age_band(2024, Some(1939)))], "Y_GE85");
        assert_eq!(AGE_BANDS[usize::from(age_band(2024, None))], "UNK");
    }

    #[test]
    fn flows_follow_the_harmonised_definition() {
        let def = Definition {
            min_duration_months: 12,
            unknown_duration: UnknownDuration::Exclude,
        };
        assert!(CellKey::of(&facts(EventType::Immigration, Some(11)), &def).is_none());
        assert!(CellKey::of(&facts(EventType::Immigration, None), &def).is_none());
        let k = CellKey::of(&facts(EventType::Emigration, Some(12)), &def).unwrap();
        assert_eq!(k.dimensions().unwrap(), ["OUT", "FRA", "SYR", "F", "Y30-34"]);
        let count = Definition {
            unknown_duration: UnknownDuration::Count,
            ..def
        };
        let k = CellKey::of(&facts(EventType::Immigration, None), &count).unwrap();
        assert_eq!(k.dimensions().unwrap()[0], "IN");
        assert!(k.0.starts_with(&CellKey::month_prefix(Cube::Flows, 2024, 5)));
    }

    #[test]
    fn asylum_and_permits_ignore_duration() {
        let def = Definition::default();
        let a = CellKey::of(&facts(EventType::AsylumApplication, Some(1)), &def).unwrap();
        assert_eq!(a.dimensions().unwrap(), ["SYR", "F", "Y30-34"]);
        let p = CellKey::of(&facts(EventType::ResidencePermit, None), &def).unwrap();
        assert_eq!(p.dimensions().unwrap(), ["SYR", "work"]);
        assert_eq!(p.cube(), Some(Cube::Permits));
    }

    #[test]
    fn tally_round_trips() {
        let t = Tally {
            count: -3,
            key_sum: 700,
        };
        assert_eq!(Tally::decode(&t.encode()), Some(t));
        assert_eq!(Tally::decode(&[1, 2]), None);
    }
}

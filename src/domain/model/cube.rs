//! Cubes, periods, dimension values and published cells (SPEC §2, §4): names, dimensions, the
//! months a period covers, and the shape of a cell after disclosure control.

use std::fmt;

/// The three published cubes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cube {
    Flows,
    Asylum,
    Permits,
}

impl Cube {
    pub const ALL: [Cube; 3] = [Cube::Flows, Cube::Asylum, Cube::Permits];

    pub fn as_str(self) -> &'static str {
        match self {
            Cube::Flows => "flows",
            Cube::Asylum => "asylum",
            Cube::Permits => "permits",
        }
    }

    pub fn parse(text: &str) -> Option<Cube> {
        Cube::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// Dimension names, in the order cell keys hold them.
    pub fn dimensions(self) -> &'static [&'static str] {
        match self {
            Cube::Flows => &["direction", "partner", "citizenship", "sex", "age_band"],
            Cube::Asylum => &["citizenship", "sex", "age_band"],
            Cube::Permits => &["citizenship", "reason"],
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Cube> {
        Cube::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for Cube {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A publication period: a year, a quarter or a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Year(i32),
    Quarter(i32, u8),
    Month(i32, u8),
}

impl Period {
    /// Parses `2024`, `2024-Q2` or `2024-05`.
    pub fn parse(text: &str) -> Option<Period> {
        let year_of = |s: &str| -> Option<i32> {
            (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
        };
        match text.split_once('-') {
            None => year_of(text).map(Period::Year),
            Some((y, rest)) => {
                let year = year_of(y)?;
                if let Some(q) = rest.strip_prefix('Q') {
                    let q: u8 = (q.len() == 1).then(|| q.parse().ok())??;
                    (1..=4).contains(&q).then_some(Period::Quarter(year, q))
                } else {
                    let m: u8 =
                        (rest.len() == 2 && rest.bytes().all(|b| b.is_ascii_digit())).then(|| rest.parse().ok())??;
                    (1..=12).contains(&m).then_some(Period::Month(year, m))
                }
            }
        }
    }

    pub fn year(self) -> i32 {
        match self {
            Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) => y,
        }
    }

    /// The first day of the period (UTC), as Unix seconds.
    pub fn start_unix(self) -> i64 {
        let month = *self.months().start();
        crate::domain::date::Date {
            year: self.year(),
            month,
            day: 1,
        }
        .day_number()
            * 86_400
    }

    /// The months (1–12) of `year()` this period covers.
    pub fn months(self) -> std::ops::RangeInclusive<u8> {
        match self {
            Period::Year(_) => 1..=12,
            Period::Quarter(_, q) => (q - 1) * 3 + 1..=q * 3,
            Period::Month(_, m) => m..=m,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
        }
    }
}

/// Age bands: `Y0-4` … `Y80-84`, `Y_GE85`, `UNK`.
pub const AGE_BANDS: [&str; 19] = [
    "Y0-4", "Y5-9", "Y10-14", "Y15-19", "Y20-24", "Y25-29", "Y30-34", "Y35-39", "Y40-44", "Y45-49", "Y50-54", "Y55-59",
    "Y60-64", "Y65-69", "Y70-74", "Y75-79", "Y80-84", "Y_GE85", "UNK",
];

/// One published cell value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CellValue {
    Value(u64),
    /// 0 < count < k: withheld, flag `C`.
    Confidential,
}

/// One cell: the cube's dimension values (in `Cube::dimensions()` order) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub key: Vec<String>,
    pub value: CellValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_print() {
        for text in ["2024", "2024-Q2", "2024-05", "1999-12"] {
            assert_eq!(Period::parse(text).unwrap().to_string(), text);
        }
        for bad in ["24", "2024-Q5", "2024-Q0", "2024-13", "2024-5", "2024-00", "x024", ""] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
        assert_eq!(Period::parse("2024-Q2").unwrap().months(), 4..=6);
        assert_eq!(Period::parse("2024").unwrap().months(), 1..=12);
    }
}

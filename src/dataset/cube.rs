//! Cubes and periods (SPEC §2): names, dimensions and the months a period covers.

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

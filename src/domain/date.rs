//! Calendar dates: parsing `YYYY-MM-DD` strictly, checking a date is real, and converting
//! between civil dates and day numbers (days since 1970-01-01, proleptic Gregorian). The calendar
//! is the maintained `time` crate's; this module fixes Accord's text forms (exactly
//! `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ`, no leap second) and keeps every conversion total.

use std::time::{SystemTime, UNIX_EPOCH};

/// The Julian day number of 1970-01-01, the origin of day numbers.
const UNIX_JULIAN_DAY: i64 = 2_440_588;

/// A real calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Parses exactly `YYYY-MM-DD` and checks the day exists (leap years included).
    pub fn parse(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        let year = digits(0..4)? as i32;
        let month = digits(5..7)? as u8;
        let day = digits(8..10)? as u8;
        let month_of_year = time::Month::try_from(month).ok()?;
        time::Date::from_calendar_date(year, month_of_year, day).ok()?;
        Some(Date { year, month, day })
    }

    /// Days since 1970-01-01 (negative before).
    pub fn day_number(self) -> i64 {
        let date = time::Month::try_from(self.month)
            .ok()
            .and_then(|m| time::Date::from_calendar_date(self.year, m, self.day).ok())
            .expect("a Date holds a real date of years 0000-9999");
        i64::from(date.to_julian_day()) - UNIX_JULIAN_DAY
    }

    /// The date of a day number, `None` outside the years -9999 to 9999.
    pub fn from_day_number(days: i64) -> Option<Date> {
        let julian = i32::try_from(days.checked_add(UNIX_JULIAN_DAY)?).ok()?;
        let date = time::Date::from_julian_day(julian).ok()?;
        Some(Date {
            year: date.year(),
            month: u8::from(date.month()),
            day: date.day(),
        })
    }

    /// Today in UTC.
    pub fn today() -> Date {
        Date::from_day_number(unix_now().div_euclid(86_400)).expect("the clock reads a year before 10000")
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The number of days in `month` (1-12) of `year`; 0 for a month that does not exist.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    time::Month::try_from(month).map_or(0, |m| m.length(year))
}

/// Parses a validity bound: `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`; Unix seconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let date = Date::parse(date)?;
    let mut secs = date.day_number() * 86_400;
    if let Some(t) = time {
        let t = t.strip_suffix('Z')?;
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() != 3 {
            return None;
        }
        let n = |s: &str, max: i64| -> Option<i64> {
            let v: i64 = s.parse().ok()?;
            (s.len() == 2 && (0..=max).contains(&v)).then_some(v)
        };
        // No leap second: Unix time has none, so `:60` would read as the next minute's `:00`
        // (two texts for one time) and 9999-12-31T23:59:60Z as a year this parser refuses.
        secs += n(parts[0], 23)? * 3600 + n(parts[1], 59)? * 60 + n(parts[2], 59)?;
    }
    Some(secs)
}

/// Parses an RFC 3339 instant into milliseconds since the Unix epoch (SPEC §16 `asOf`,
/// `updatedAfter`): `YYYY-MM-DD` (midnight UTC), or `YYYY-MM-DDTHH:MM:SS`, optional fraction
/// (digits past the millisecond are dropped), then `Z` or an offset `+HH:MM`/`-HH:MM`. A `+`
/// that a query string turned into a space is read as `+`.
pub fn parse_instant_millis(text: &str) -> Option<i64> {
    let Some((date, time)) = text.split_once(['T', 't']) else {
        return parse_timestamp(text).map(|s| s * 1000);
    };
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-', ' '])?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        if h > 23 || m > 59 || off.len() != 6 {
            return None;
        }
        (c, sign * (h * 3600 + m * 60))
    };
    let (whole, fraction) = match clock.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (w, f),
        Some(_) => return None,
        None => (clock, ""),
    };
    let secs = parse_timestamp(&format!("{date}T{whole}Z"))?;
    let millis: i64 = format!("{:0<3}", &fraction[..fraction.len().min(3)]).parse().ok()?;
    Some((secs - offset_secs) * 1000 + millis)
}

/// Formats milliseconds since the Unix epoch as RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_instant_millis(millis: i64) -> String {
    let secs = format_timestamp(millis.div_euclid(1000));
    match secs.strip_suffix('Z') {
        Some(s) => format!("{s}.{:03}Z", millis.rem_euclid(1000)),
        None => secs,
    }
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`; a time outside the years -9999 to 9999
/// (only a peer's claim can be one) as `@` and its seconds.
pub fn format_timestamp(secs: i64) -> String {
    let Some(date) = Date::from_day_number(secs.div_euclid(86_400)) else {
        return format!("@{secs}");
    };
    let rem = secs.rem_euclid(86_400);
    format!("{date}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc3339_instants_to_the_millisecond() {
        let base = parse_timestamp("2026-12-07T18:10:25Z").unwrap() * 1000;
        for (text, want) in [
            ("2026-12-07T18:10:25Z", Some(base)),
            ("2026-12-07T18:10:25.5Z", Some(base + 500)),
            ("2026-12-07T18:10:25.123456Z", Some(base + 123)),
            ("2026-12-07T19:10:25+01:00", Some(base)),
            ("2026-12-07T19:10:25 01:00", Some(base)),
            ("2026-12-07T17:10:25.250-01:00", Some(base + 250)),
            ("2026-12-07", Some(parse_timestamp("2026-12-07").unwrap() * 1000)),
            ("2026-12-07T18:10:25", None),
            ("2026-12-07T18:10:25.Z", None),
            ("2026-12-07T18:10:25+1:00", None),
            ("2026-12-07T25:10:25Z", None),
            ("yesterday", None),
        ] {
            assert_eq!(parse_instant_millis(text), want, "{text}");
        }
        assert_eq!(format_instant_millis(base + 7), "2026-12-07T18:10:25.007Z");
        assert_eq!(parse_instant_millis(&format_instant_millis(base + 7)), Some(base + 7));
    }

    #[test]
    fn parses_real_dates_only() {
        assert_eq!(
            Date::parse("2024-02-29"),
            Some(Date {
                year: 2024,
                month: 2,
                day: 29
            })
        );
        assert_eq!(Date::parse("2023-02-29"), None);
        assert_eq!(Date::parse("1900-02-29"), None);
        assert_eq!(Date::parse("2000-02-29").map(|d| d.day), Some(29));
        assert_eq!(Date::parse("2024-13-01"), None);
        assert_eq!(Date::parse("2024-04-31"), None);
        assert_eq!(Date::parse("2024-4-01"), None);
        assert_eq!(
            (
                days_in_month(2024, 2),
                days_in_month(2100, 2),
                days_in_month(2023, 4),
                days_in_month(2023, 13)
            ),
            (29, 28, 30, 0)
        );
        assert_eq!(Date::parse("2024/04/01"), None);
        assert_eq!(Date::parse("+024-04-01"), None);
    }

    #[test]
    fn day_numbers_round_trip() {
        assert_eq!(Date::parse("1970-01-01").unwrap().day_number(), 0);
        assert_eq!(Date::parse("2000-03-01").unwrap().day_number(), 11_017);
        for n in [-30_000i64, -1, 0, 1, 11_016, 20_000, 60_000] {
            assert_eq!(Date::from_day_number(n).unwrap().day_number(), n);
        }
        assert_eq!(Date::from_day_number(-719_468), Date::parse("0000-03-01"));
        assert_eq!(Date::from_day_number(i64::MAX), None);
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400));
        assert_eq!(parse_timestamp("1970-01-01T01:00:05Z"), Some(3605));
        assert_eq!(parse_timestamp("1970-01-01T25:00:00Z"), None);
        assert_eq!(parse_timestamp("2026-12-31T23:59:60Z"), None);
        assert_eq!(format_timestamp(86_400 + 3605), "1970-01-02T01:00:05Z");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            parse_timestamp("9999-12-31T23:59:59Z").map(format_timestamp).as_deref(),
            Some("9999-12-31T23:59:59Z")
        );
        assert_eq!(format_timestamp(i64::MAX), format!("@{}", i64::MAX));
    }
}

//! Field rules of SPEC §1: from the raw text of one record ([`RawRecord`]) to a typed
//! [`Record`], or the first [`FieldError`] in column order. Pure functions, no I/O; "today" and
//! the node's own country come in through [`ValidationContext`] so every rule is testable.
//! Error messages must never quote `person_id` (the raw identifier may not reach logs), and
//! nothing here trims or otherwise repairs a value: a value is accepted as written or rejected.
//!
//! Decisions where SPEC leaves room (each is a rule, tested below):
//! - Leading or trailing whitespace in any field is an error, never trimmed: silent trimming
//!   hides broken exports (fixed-width padding, stray separators).
//! - "Printable" for `event_id` means no control characters, no invisible format characters
//!   (zero-width spaces, bidi controls, BOM, soft hyphen) and no whitespace other than the
//!   ASCII space; interior spaces and non-ASCII letters are allowed. Length counts characters.
//! - `person_id`: non-empty, at most 256 characters, same character rules as `event_id`.
//! - `partner_country` accepts `XXX` (unknown residence is common in registers) but not `XXA`:
//!   "stateless" is a citizenship, not a place of residence.
//! - `birth_year` must lie within 130 years before the event year (nobody is older; a wrong
//!   century is a typing error); `duration_months` in 0..=1200 (100 years).
//!   Both are plain ASCII digits: no sign, no decimals, no exponent.

use std::fmt;

use super::{EventType, FieldError, Reason, Record, Sex, COLUMNS};
use crate::domain::date::Date;
use crate::domain::model::Country;

/// Longest accepted `event_id`, in characters (SPEC §1).
pub const MAX_EVENT_ID_CHARS: usize = 64;
/// Longest accepted `person_id`, in characters: generous for any register's identifier, small
/// enough that a mangled row cannot smuggle a blob into memory and the HMAC.
pub const MAX_PERSON_ID_CHARS: usize = 256;
/// Earliest accepted event date (SPEC §1).
pub const EARLIEST_EVENT_DATE: Date = Date {
    year: 1900,
    month: 1,
    day: 1,
};
/// Largest accepted age in the event's year: longer than any recorded human life.
pub const MAX_AGE_YEARS: i32 = 130;
/// Largest accepted `duration_months`: a century is longer than any stay or absence.
pub const MAX_DURATION_MONTHS: u32 = 1200;

/// One record exactly as read: every field as text, empty when absent. Field names and order
/// are those of [`COLUMNS`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawRecord {
    pub event_id: String,
    pub person_id: String,
    pub event_type: String,
    pub event_date: String,
    pub citizenship: String,
    pub country_of_birth: String,
    pub partner_country: String,
    pub sex: String,
    pub birth_year: String,
    pub reason: String,
    pub duration_months: String,
}

impl RawRecord {
    /// The text of the field called `name` (one of [`COLUMNS`]); empty for an unknown name.
    pub fn field(&self, name: &str) -> &str {
        COLUMNS
            .iter()
            .position(|column| *column == name)
            .map_or("", |index| self.fields()[index])
    }

    /// All fields in [`COLUMNS`] order, as a CSV writer wants them.
    pub fn fields(&self) -> [&str; 11] {
        [
            &self.event_id,
            &self.person_id,
            &self.event_type,
            &self.event_date,
            &self.citizenship,
            &self.country_of_birth,
            &self.partner_country,
            &self.sex,
            &self.birth_year,
            &self.reason,
            &self.duration_months,
        ]
    }

    /// The field at `index` in [`COLUMNS`], for readers that map columns to fields once.
    pub(crate) fn field_at_mut(&mut self, index: usize) -> Option<&mut String> {
        let field = match index {
            0 => &mut self.event_id,
            1 => &mut self.person_id,
            2 => &mut self.event_type,
            3 => &mut self.event_date,
            4 => &mut self.citizenship,
            5 => &mut self.country_of_birth,
            6 => &mut self.partner_country,
            7 => &mut self.sex,
            8 => &mut self.birth_year,
            9 => &mut self.reason,
            10 => &mut self.duration_months,
            _ => return None,
        };
        Some(field)
    }

    /// The text form of a validated record, as written back to CSV: empty strings for absent
    /// values, `reason` by name (so `unknown` is written out, which reads back the same).
    pub fn from_record(record: &Record) -> RawRecord {
        let optional_country = |c: Option<Country>| c.map(|c| c.to_string()).unwrap_or_default();
        RawRecord {
            event_id: record.event_id.clone(),
            person_id: record.person_id.clone(),
            event_type: record.event_type.as_str().to_string(),
            event_date: record.event_date.to_string(),
            citizenship: record.citizenship.to_string(),
            country_of_birth: optional_country(record.country_of_birth),
            partner_country: optional_country(record.partner_country),
            sex: record.sex.as_str().to_string(),
            birth_year: record.birth_year.map(|y| y.to_string()).unwrap_or_default(),
            reason: record.reason.as_str().to_string(),
            duration_months: record.duration_months.map(|d| d.to_string()).unwrap_or_default(),
        }
    }
}

/// Debug output hides `person_id`, so logging a rejected row cannot leak the raw identifier.
impl fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("RawRecord");
        for (name, value) in COLUMNS.iter().zip(self.fields()) {
            if *name == "person_id" {
                out.field(name, &"<redacted>");
            } else {
                out.field(name, &value);
            }
        }
        out.finish()
    }
}

/// What validation needs to know beyond the record itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationContext {
    /// The node's own country: never a valid `partner_country`.
    pub own_country: Country,
    /// No event may be dated after this day.
    pub today: Date,
}

impl ValidationContext {
    /// A context for records ingested now (today in UTC).
    pub fn for_today(own_country: Country) -> ValidationContext {
        ValidationContext {
            own_country,
            today: Date::today(),
        }
    }
}

/// Checks every SPEC §1 rule and returns the typed record, or the first failing field in
/// [`COLUMNS`] order.
pub fn validate_fields(raw: &RawRecord, ctx: &ValidationContext) -> Result<Record, FieldError> {
    let event_id = identifier("event_id", &raw.event_id, MAX_EVENT_ID_CHARS, true)?;
    let person_id = identifier("person_id", &raw.person_id, MAX_PERSON_ID_CHARS, false)?;
    let event_type = event_type(&raw.event_type)?;
    let event_date = event_date(&raw.event_date, ctx.today)?;
    let citizenship = required("citizenship", &raw.citizenship).and_then(|text| country("citizenship", text))?;
    let country_of_birth = optional_country("country_of_birth", &raw.country_of_birth)?;
    let partner_country = partner_country(&raw.partner_country, event_type, ctx.own_country)?;
    let sex = sex(&raw.sex)?;
    let birth_year = birth_year(&raw.birth_year, event_date.year)?;
    let reason = reason(&raw.reason)?;
    let duration_months = duration_months(&raw.duration_months)?;
    Ok(Record {
        event_id: event_id.to_string(),
        person_id: person_id.to_string(),
        event_type,
        event_date,
        citizenship,
        country_of_birth,
        partner_country,
        sex,
        birth_year,
        reason,
        duration_months,
    })
}

/// A value for an error message: quoted and escaped as Rust debug strings are (so control
/// characters show as `\t`, `\u{0}`), and cut short so a mangled field cannot flood a log.
fn quoted(text: &str) -> String {
    const SHOWN_CHARS: usize = 40;
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// A required field: rejects emptiness and surrounding whitespace.
fn required<'a>(field: &'static str, text: &'a str) -> Result<&'a str, FieldError> {
    if text.is_empty() {
        return Err(FieldError::new(field, "required value is missing"));
    }
    surrounding_whitespace(field, text, true)?;
    Ok(text)
}

/// `show_value` is false for `person_id`, whose raw text must stay out of messages.
fn surrounding_whitespace(field: &'static str, text: &str, show_value: bool) -> Result<(), FieldError> {
    if text.trim() == text {
        return Ok(());
    }
    let message = if show_value {
        format!("leading or trailing whitespace in {}", quoted(text))
    } else {
        "leading or trailing whitespace".to_string()
    };
    Err(FieldError::new(field, message))
}

/// Characters that are not visible or that change how text around them is shown.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// `event_id` and `person_id`: required, printable, bounded length.
fn identifier<'a>(
    field: &'static str,
    text: &'a str,
    max_chars: usize,
    show_value: bool,
) -> Result<&'a str, FieldError> {
    if text.is_empty() {
        return Err(FieldError::new(field, "required value is missing"));
    }
    surrounding_whitespace(field, text, show_value)?;
    if let Some(bad) = text.chars().find(|c| is_invisible(*c)) {
        let message = format!("contains a control or invisible character (U+{:04X})", u32::from(bad));
        return Err(FieldError::new(field, message));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(FieldError::new(
            field,
            format!("longer than {max_chars} characters ({chars})"),
        ));
    }
    Ok(text)
}

fn event_type(text: &str) -> Result<EventType, FieldError> {
    let text = required("event_type", text)?;
    EventType::parse(text).ok_or_else(|| {
        let message = format!(
            "unknown event type {} (expected immigration, emigration, asylum_application or residence_permit)",
            quoted(text)
        );
        FieldError::new("event_type", message)
    })
}

fn event_date(text: &str, today: Date) -> Result<Date, FieldError> {
    let text = required("event_date", text)?;
    let date = Date::parse(text).ok_or_else(|| {
        FieldError::new(
            "event_date",
            format!("not a real date in YYYY-MM-DD form: {}", quoted(text)),
        )
    })?;
    if date > today {
        return Err(FieldError::new(
            "event_date",
            format!("{date} is after today ({today})"),
        ));
    }
    if date < EARLIEST_EVENT_DATE {
        return Err(FieldError::new(
            "event_date",
            format!("{date} is before {EARLIEST_EVENT_DATE}"),
        ));
    }
    Ok(date)
}

fn country(field: &'static str, text: &str) -> Result<Country, FieldError> {
    if let Some(code) = Country::parse(text) {
        return Ok(code);
    }
    let hint = if Country::parse(&text.to_ascii_uppercase()).is_some() {
        " (codes are upper case)"
    } else {
        ""
    };
    Err(FieldError::new(
        field,
        format!("unknown country code {}{hint}", quoted(text)),
    ))
}

fn optional_country(field: &'static str, text: &str) -> Result<Option<Country>, FieldError> {
    if text.is_empty() {
        return Ok(None);
    }
    surrounding_whitespace(field, text, true)?;
    country(field, text).map(Some)
}

fn partner_country(text: &str, event_type: EventType, own: Country) -> Result<Option<Country>, FieldError> {
    const FIELD: &str = "partner_country";
    let partner = optional_country(FIELD, text)?;
    match (partner, event_type) {
        (None, EventType::Immigration) => Err(FieldError::new(
            FIELD,
            "required for immigration (the previous country of residence)",
        )),
        (None, EventType::Emigration) => Err(FieldError::new(
            FIELD,
            "required for emigration (the next country of residence)",
        )),
        (Some(code), _) if code == own => Err(FieldError::new(
            FIELD,
            format!("\"{code}\" is this node's own country; the partner must be another country"),
        )),
        (Some(code), _) if code == Country::STATELESS => Err(FieldError::new(
            FIELD,
            "\"XXA\" (stateless) is not a country of residence; use \"XXX\" if unknown",
        )),
        _ => Ok(partner),
    }
}

fn sex(text: &str) -> Result<Sex, FieldError> {
    let text = required("sex", text)?;
    Sex::parse(text).ok_or_else(|| {
        FieldError::new(
            "sex",
            format!("unknown sex code {} (expected F, M, X or U)", quoted(text)),
        )
    })
}

/// Plain ASCII digits only, at most `max_digits` of them (so parsing cannot overflow).
fn digits(text: &str, max_digits: usize) -> Option<u32> {
    let plain = !text.is_empty() && text.len() <= max_digits && text.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| text.parse().ok()).flatten()
}

fn birth_year(text: &str, event_year: i32) -> Result<Option<i32>, FieldError> {
    const FIELD: &str = "birth_year";
    if text.is_empty() {
        return Ok(None);
    }
    surrounding_whitespace(FIELD, text, true)?;
    let year = digits(text, 4)
        .and_then(|y| i32::try_from(y).ok())
        .ok_or_else(|| FieldError::new(FIELD, format!("not a year: {}", quoted(text))))?;
    if year > event_year {
        return Err(FieldError::new(
            FIELD,
            format!("{year} is after the event year {event_year}"),
        ));
    }
    if event_year - year > MAX_AGE_YEARS {
        return Err(FieldError::new(
            FIELD,
            format!("{year} is more than {MAX_AGE_YEARS} years before the event year {event_year}"),
        ));
    }
    Ok(Some(year))
}

fn reason(text: &str) -> Result<Reason, FieldError> {
    if !text.is_empty() {
        surrounding_whitespace("reason", text, true)?;
    }
    Reason::parse(text).ok_or_else(|| {
        let message = format!(
            "unknown reason {} (expected work, family, education, protection, other, unknown or empty)",
            quoted(text)
        );
        FieldError::new("reason", message)
    })
}

fn duration_months(text: &str) -> Result<Option<u32>, FieldError> {
    const FIELD: &str = "duration_months";
    if text.is_empty() {
        return Ok(None);
    }
    surrounding_whitespace(FIELD, text, true)?;
    let months = digits(text, 6).ok_or_else(|| {
        FieldError::new(
            FIELD,
            format!("not a non-negative whole number of months: {}", quoted(text)),
        )
    })?;
    if months > MAX_DURATION_MONTHS {
        return Err(FieldError::new(
            FIELD,
            format!("{months} months is more than the maximum of {MAX_DURATION_MONTHS}"),
        ));
    }
    Ok(Some(months))
}

#[cfg(test)]
mod tests;

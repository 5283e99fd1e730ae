//! Records: one migration event as an agency supplies it (SPEC §1), and the rules that make it
//! valid. This module parses and validates; it never stores anything and never pseudonymises
//! (the store does that, so a raw `person_id` only ever lives in memory).
//!
//! - [`validate`]: field rules, from raw text fields to a typed [`Record`].
//!
//! Reading records from files is [`crate::io::reader`]'s.

pub mod validate;

use crate::domain::model::Country;

use crate::domain::date::Date;

/// The SPEC §1 column names, in the order Accord writes them.
pub const COLUMNS: [&str; 11] = [
    "event_id",
    "person_id",
    "event_type",
    "event_date",
    "citizenship",
    "country_of_birth",
    "partner_country",
    "sex",
    "birth_year",
    "reason",
    "duration_months",
];

/// Fields whose values identify a person: named in errors and logs, never quoted (SPEC §10).
pub const SENSITIVE_FIELDS: [&str; 1] = ["person_id"];

/// One validated migration event. `person_id` is still the raw identifier here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub event_id: String,
    pub person_id: String,
    pub event_type: EventType,
    pub event_date: Date,
    pub citizenship: Country,
    pub country_of_birth: Option<Country>,
    /// Required for immigration and emigration; never the node's own country.
    pub partner_country: Option<Country>,
    pub sex: Sex,
    pub birth_year: Option<i32>,
    pub reason: Reason,
    pub duration_months: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    Immigration,
    Emigration,
    AsylumApplication,
    ResidencePermit,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::Immigration,
        EventType::Emigration,
        EventType::AsylumApplication,
        EventType::ResidencePermit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Immigration => "immigration",
            EventType::Emigration => "emigration",
            EventType::AsylumApplication => "asylum_application",
            EventType::ResidencePermit => "residence_permit",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<EventType> {
        EventType::ALL.get(usize::from(code)).copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sex {
    F,
    M,
    X,
    U,
}

impl Sex {
    pub const ALL: [Sex; 4] = [Sex::F, Sex::M, Sex::X, Sex::U];

    pub fn as_str(self) -> &'static str {
        match self {
            Sex::F => "F",
            Sex::M => "M",
            Sex::X => "X",
            Sex::U => "U",
        }
    }

    pub fn parse(text: &str) -> Option<Sex> {
        Sex::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Sex> {
        Sex::ALL.get(usize::from(code)).copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    Work,
    Family,
    Education,
    Protection,
    Other,
    Unknown,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::Work,
        Reason::Family,
        Reason::Education,
        Reason::Protection,
        Reason::Other,
        Reason::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Work => "work",
            Reason::Family => "family",
            Reason::Education => "education",
            Reason::Protection => "protection",
            Reason::Other => "other",
            Reason::Unknown => "unknown",
        }
    }

    /// Empty text means `unknown` (SPEC §1).
    pub fn parse(text: &str) -> Option<Reason> {
        if text.is_empty() {
            return Some(Reason::Unknown);
        }
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(code)).copied()
    }
}

/// A record-level validation failure: which field and what is wrong with it. The reader adds
/// file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

//! Table-driven tests of every SPEC §1 field rule.

use super::*;

fn ctx() -> ValidationContext {
    ValidationContext {
        own_country: Country::parse("FRA").unwrap(),
        today: Date::parse("2026-06-15").unwrap(),
    }
}

fn valid_raw() -> RawRecord {
    RawRecord {
        event_id: "FRA-2024-000001".into(),
        person_id: "P123456".into(),
        event_type: "immigration".into(),
        event_date: "2024-03-31".into(),
        citizenship: "DEU".into(),
        country_of_birth: "DEU".into(),
        partner_country: "DEU".into(),
        sex: "F".into(),
        birth_year: "1990".into(),
        reason: "work".into(),
        duration_months: "24".into(),
    }
}

fn with(changes: &[(&str, &str)]) -> RawRecord {
    let mut raw = valid_raw();
    for (name, value) in changes {
        let index = COLUMNS.iter().position(|c| c == name).unwrap();
        *raw.field_at_mut(index).unwrap() = value.to_string();
    }
    raw
}

#[test]
fn baseline_record_is_typed_correctly() {
    let record = validate_fields(&valid_raw(), &ctx()).unwrap();
    assert_eq!(record.event_id, "FRA-2024-000001");
    assert_eq!(record.person_id, "P123456");
    assert_eq!(record.event_type, EventType::Immigration);
    assert_eq!(
        record.event_date,
        Date {
            year: 2024,
            month: 3,
            day: 31
        }
    );
    assert_eq!(record.citizenship.as_str(), "DEU");
    assert_eq!(record.country_of_birth.map(|c| c.to_string()), Some("DEU".into()));
    assert_eq!(record.partner_country.map(|c| c.to_string()), Some("DEU".into()));
    assert_eq!(record.sex, Sex::F);
    assert_eq!(record.birth_year, Some(1990));
    assert_eq!(record.reason, Reason::Work);
    assert_eq!(record.duration_months, Some(24));
}

/// Each case changes some fields of the valid baseline; `None` means the record is valid.
/// Field changes to the valid baseline, and the expected (field, message), `None` if valid.
type Case = (
    &'static [(&'static str, &'static str)],
    Option<(&'static str, &'static str)>,
);

const CASES: &[Case] = &[
    // event_id
    (&[("event_id", "x")], None),
    (&[("event_id", "dossier 42/Ünal-é")], None),
    (&[("event_id", "")], Some(("event_id", "required value is missing"))),
    (&[("event_id", " E1")], Some(("event_id", "leading or trailing whitespace in \" E1\""))),
    (&[("event_id", "E1\t2")], Some(("event_id", "contains a control or invisible character (U+0009)"))),
    (&[("event_id", "E1\u{200B}")], Some(("event_id", "contains a control or invisible character (U+200B)"))),
    (&[("event_id", "E\u{00A0}1")], Some(("event_id", "contains a control or invisible character (U+00A0)"))),
    (&[("event_id", "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé")], None),
    (
        &[("event_id", "12345678901234567890123456789012345678901234567890123456789012345")],
        Some(("event_id", "longer than 64 characters (65)")),
    ),
    // person_id: its value never appears in a message
    (&[("person_id", "secret 7")], None),
    (&[("person_id", "")], Some(("person_id", "required value is missing"))),
    (&[("person_id", "secret ")], Some(("person_id", "leading or trailing whitespace"))),
    (&[("person_id", "sec\nret")], Some(("person_id", "contains a control or invisible character (U+000A)"))),
    // event_type
    (&[("event_type", "residence_permit"), ("partner_country", "")], None),
    (&[("event_type", "asylum_application"), ("partner_country", "")], None),
    (&[("event_type", "emigration")], None),
    (&[("event_type", "")], Some(("event_type", "required value is missing"))),
    (
        &[("event_type", "Immigration")],
        Some((
            "event_type",
            "unknown event type \"Immigration\" (expected immigration, emigration, asylum_application or residence_permit)",
        )),
    ),
    // event_date
    (&[("event_date", "2026-06-15")], None),
    (&[("event_date", "1900-01-01"), ("birth_year", "1899")], None),
    (&[("event_date", "2024-02-29")], None),
    (&[("event_date", "2023-02-29")], Some(("event_date", "not a real date in YYYY-MM-DD form: \"2023-02-29\""))),
    (&[("event_date", "2024-3-31")], Some(("event_date", "not a real date in YYYY-MM-DD form: \"2024-3-31\""))),
    (&[("event_date", "2026-06-16")], Some(("event_date", "2026-06-16 is after today (2026-06-15)"))),
    (&[("event_date", "1899-12-31"), ("birth_year", "")], Some(("event_date", "1899-12-31 is before 1900-01-01"))),
    (&[("event_date", "")], Some(("event_date", "required value is missing"))),
    // citizenship
    (&[("citizenship", "XXX")], None),
    (&[("citizenship", "XXA")], None),
    (&[("citizenship", "FRA")], None),
    (&[("citizenship", "FRX")], Some(("citizenship", "unknown country code \"FRX\""))),
    (&[("citizenship", "deu")], Some(("citizenship", "unknown country code \"deu\" (codes are upper case)"))),
    (&[("citizenship", "DEU ")], Some(("citizenship", "leading or trailing whitespace in \"DEU \""))),
    (&[("citizenship", "")], Some(("citizenship", "required value is missing"))),
    // country_of_birth
    (&[("country_of_birth", "")], None),
    (&[("country_of_birth", "XXA")], None),
    (&[("country_of_birth", "FRA")], None),
    (&[("country_of_birth", "DE")], Some(("country_of_birth", "unknown country code \"DE\""))),
    (&[("country_of_birth", " ")], Some(("country_of_birth", "leading or trailing whitespace in \" \""))),
    // partner_country
    (&[("partner_country", "XXX")], None),
    (&[("event_type", "asylum_application"), ("partner_country", "SYR")], None),
    (
        &[("partner_country", "")],
        Some(("partner_country", "required for immigration (the previous country of residence)")),
    ),
    (
        &[("event_type", "emigration"), ("partner_country", "")],
        Some(("partner_country", "required for emigration (the next country of residence)")),
    ),
    (
        &[("partner_country", "FRA")],
        Some(("partner_country", "\"FRA\" is this node's own country; the partner must be another country")),
    ),
    (
        &[("event_type", "residence_permit"), ("partner_country", "FRA")],
        Some(("partner_country", "\"FRA\" is this node's own country; the partner must be another country")),
    ),
    (
        &[("partner_country", "XXA")],
        Some(("partner_country", "\"XXA\" (stateless) is not a country of residence; use \"XXX\" if unknown")),
    ),
    (&[("event_type", "residence_permit"), ("partner_country", "ZZZ")], Some(("partner_country", "unknown country code \"ZZZ\""))),
    // sex
    (&[("sex", "M")], None),
    (&[("sex", "X")], None),
    (&[("sex", "U")], None),
    (&[("sex", "f")], Some(("sex", "unknown sex code \"f\" (expected F, M, X or U)"))),
    (&[("sex", "")], Some(("sex", "required value is missing"))),
    // birth_year
    (&[("birth_year", "")], None),
    (&[("birth_year", "2024")], None),
    (&[("birth_year", "1894")], None),
    (&[("event_date", "1900-06-01"), ("birth_year", "1860")], None),
    (&[("birth_year", "2025")], Some(("birth_year", "2025 is after the event year 2024"))),
    (&[("birth_year", "1893")], Some(("birth_year", "1893 is more than 130 years before the event year 2024"))),
    (&[("birth_year", "0985")], Some(("birth_year", "985 is more than 130 years before the event year 2024"))),
    (&[("birth_year", "1990.0")], Some(("birth_year", "not a year: \"1990.0\""))),
    (&[("birth_year", "-1990")], Some(("birth_year", "not a year: \"-1990\""))),
    (&[("birth_year", "99999999999")], Some(("birth_year", "not a year: \"99999999999\""))),
    // reason
    (&[("reason", "")], None),
    (&[("reason", "unknown")], None),
    (&[("reason", "protection")], None),
    (
        &[("reason", "job")],
        Some(("reason", "unknown reason \"job\" (expected work, family, education, protection, other, unknown or empty)")),
    ),
    (&[("reason", "work ")], Some(("reason", "leading or trailing whitespace in \"work \""))),
    // duration_months
    (&[("duration_months", "")], None),
    (&[("duration_months", "0")], None),
    (&[("duration_months", "1200")], None),
    (&[("duration_months", "1201")], Some(("duration_months", "1201 months is more than the maximum of 1200"))),
    (&[("duration_months", "-3")], Some(("duration_months", "not a non-negative whole number of months: \"-3\""))),
    (&[("duration_months", "12m")], Some(("duration_months", "not a non-negative whole number of months: \"12m\""))),
];

#[test]
fn every_rule_accepts_and_rejects() {
    for (changes, expected) in CASES {
        let outcome = validate_fields(&with(changes), &ctx());
        match expected {
            None => assert!(outcome.is_ok(), "{changes:?}: {outcome:?}"),
            Some((field, message)) => {
                let error = outcome.expect_err(&format!("{changes:?} should be invalid"));
                assert_eq!((error.field, error.message.as_str()), (*field, *message), "{changes:?}");
            }
        }
    }
}

#[test]
fn empty_optionals_become_none_and_unknown() {
    let raw = with(&[
        ("country_of_birth", ""),
        ("birth_year", ""),
        ("reason", ""),
        ("duration_months", ""),
        ("event_type", "asylum_application"),
        ("partner_country", ""),
    ]);
    let record = validate_fields(&raw, &ctx()).unwrap();
    assert_eq!(record.country_of_birth, None);
    assert_eq!(record.partner_country, None);
    assert_eq!(record.birth_year, None);
    assert_eq!(record.reason, Reason::Unknown);
    assert_eq!(record.duration_months, None);
}

#[test]
fn first_error_in_column_order_wins() {
    let raw = with(&[("citizenship", "FRX"), ("sex", "Q"), ("event_type", "moved")]);
    assert_eq!(validate_fields(&raw, &ctx()).unwrap_err().field, "event_type");
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "Z".repeat(500);
    let error = validate_fields(&with(&[("citizenship", &long)]), &ctx()).unwrap_err();
    assert_eq!(error.message, format!("unknown country code \"{}\"…", "Z".repeat(40)));
}

#[test]
fn person_id_never_appears_in_messages_or_debug() {
    for value in ["  topsecret", "topsecret\u{7}", &"topsecret".repeat(40)] {
        let raw = with(&[("person_id", value)]);
        let error = validate_fields(&raw, &ctx()).unwrap_err();
        assert_eq!(error.field, "person_id");
        assert!(!error.to_string().contains("topsecret"), "{error}");
        assert!(!format!("{raw:?}").contains("topsecret"));
    }
}

#[test]
fn from_record_round_trips() {
    let raws = [
        valid_raw(),
        with(&[
            ("event_type", "residence_permit"),
            ("partner_country", ""),
            ("country_of_birth", ""),
            ("birth_year", ""),
            ("reason", "unknown"),
            ("duration_months", ""),
        ]),
    ];
    for raw in raws {
        let record = validate_fields(&raw, &ctx()).unwrap();
        assert_eq!(RawRecord::from_record(&record), raw);
    }
    // An empty reason is written back as its name, which validates to the same record.
    let record = validate_fields(&with(&[("reason", "")]), &ctx()).unwrap();
    assert_eq!(RawRecord::from_record(&record).reason, "unknown");
}

#[test]
fn field_lookup_by_name() {
    let raw = valid_raw();
    assert_eq!(raw.field("citizenship"), "DEU");
    assert_eq!(raw.field("duration_months"), "24");
    assert_eq!(raw.field("no_such_field"), "");
    for (index, name) in COLUMNS.iter().enumerate() {
        assert_eq!(raw.field(name), raw.fields()[index]);
    }
}

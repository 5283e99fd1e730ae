//! Reader and writer tests over real files in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use crate::domain::date::Date;
use crate::domain::model::Country;
use crate::domain::record::{EventType, Reason, Sex, COLUMNS};

fn ctx() -> ValidationContext {
    ValidationContext {
        own_country: Country::parse("FRA").unwrap(),
        today: Date::parse("2026-06-15").unwrap(),
    }
}

fn write_file(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const HEADER: &str =
    "event_id,person_id,event_type,event_date,citizenship,country_of_birth,partner_country,sex,birth_year,reason,duration_months";

fn good_row(id: &str) -> String {
    format!("{id},P-{id},immigration,2024-05-02,DEU,DEU,DEU,F,1990,work,24")
}

fn read_all(path: &Path) -> Vec<Row> {
    RecordReader::open(path, ctx()).unwrap().map(Result::unwrap).collect()
}

fn invalid(row: &Row) -> &Rejected {
    match row {
        Row::Invalid(rejected) => rejected,
        Row::Valid(record) => panic!("expected a rejected row, got {record:?}"),
    }
}

fn valid(row: &Row) -> &Record {
    match row {
        Row::Valid(record) => record,
        Row::Invalid(rejected) => panic!("expected a valid row, got {}", rejected.error),
    }
}

#[test]
fn format_follows_extension() {
    assert_eq!(
        RecordFormat::from_path(Path::new("a/fra.csv")).unwrap(),
        RecordFormat::Csv
    );
    assert_eq!(
        RecordFormat::from_path(Path::new("FRA.CSV")).unwrap(),
        RecordFormat::Csv
    );
    assert_eq!(
        RecordFormat::from_path(Path::new("x.jsonl")).unwrap(),
        RecordFormat::JsonLines
    );
    assert_eq!(
        RecordFormat::from_path(Path::new("x.ndjson")).unwrap(),
        RecordFormat::JsonLines
    );
    let error = RecordFormat::from_path(Path::new("data/fra.txt")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "data/fra.txt: unsupported file type (expected a .csv, .jsonl or .ndjson file)"
    );
}

#[test]
fn csv_columns_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut header: Vec<&str> = COLUMNS.to_vec();
    header.reverse();
    let row = "36,family,1985,M,DEU,,ITA,2024-02-10,emigration,P-9,E9";
    let path = write_file(
        dir.path(),
        "fra.csv",
        format!("{}\n{row}\n", header.join(",")).as_bytes(),
    );
    let rows = read_all(&path);
    assert_eq!(rows.len(), 1);
    let record = valid(&rows[0]);
    assert_eq!(record.event_id, "E9");
    assert_eq!(record.person_id, "P-9");
    assert_eq!(record.event_type, EventType::Emigration);
    assert_eq!(
        record.event_date,
        Date {
            year: 2024,
            month: 2,
            day: 10
        }
    );
    assert_eq!(record.citizenship.as_str(), "ITA");
    assert_eq!(record.country_of_birth, None);
    assert_eq!(record.partner_country.map(|c| c.to_string()), Some("DEU".into()));
    assert_eq!(record.sex, Sex::M);
    assert_eq!(record.birth_year, Some(1985));
    assert_eq!(record.reason, Reason::Family);
    assert_eq!(record.duration_months, Some(36));
}

#[test]
fn header_errors_name_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let missing = HEADER.replace(",sex", "").replace(",reason", "");
    let path = write_file(dir.path(), "missing.csv", format!("{missing}\n").as_bytes());
    let error = RecordReader::open(&path, ctx()).err().unwrap().to_string();
    assert!(
        error.starts_with(&format!(
            "{}:1: header: missing columns sex, reason (expected",
            path.display()
        )),
        "{error}"
    );

    let path = write_file(dir.path(), "unknown.csv", format!("{HEADER},comment\n").as_bytes());
    let error = RecordReader::open(&path, ctx()).err().unwrap().to_string();
    assert!(
        error.starts_with(&format!("{}:1: header: unknown column \"comment\" (", path.display())),
        "{error}"
    );

    let typo = HEADER.replace("citizenship", "citizenshp");
    let path = write_file(dir.path(), "typo.csv", format!("{typo}\n").as_bytes());
    let error = RecordReader::open(&path, ctx()).err().unwrap().to_string();
    assert!(
        error.contains("header: unknown column \"citizenshp\"; missing column citizenship ("),
        "{error}"
    );

    let path = write_file(dir.path(), "twice.csv", format!("{HEADER},sex\n").as_bytes());
    let error = RecordReader::open(&path, ctx()).err().unwrap().to_string();
    assert!(error.contains("header: duplicate column \"sex\" ("), "{error}");

    let path = write_file(dir.path(), "empty.csv", b"");
    let error = RecordReader::open(&path, ctx()).err().unwrap();
    assert!(matches!(error, ReadError::Header { .. }), "{error}");
}

#[test]
fn record_error_display_is_exact() {
    let error = RecordError {
        file: "fra.csv".into(),
        line: 1042,
        field: Some("citizenship"),
        message: "unknown country code \"FRX\"".into(),
    };
    assert_eq!(
        error.to_string(),
        "fra.csv:1042: citizenship: unknown country code \"FRX\""
    );
    assert_eq!(error.reason(), "citizenship: unknown country code \"FRX\"");
    let whole_row = RecordError {
        field: None,
        line: 7,
        message: "not valid UTF-8".into(),
        ..error
    };
    assert_eq!(whole_row.to_string(), "fra.csv:7: not valid UTF-8");
}

#[test]
fn bad_row_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = good_row("E2").replace(",DEU,DEU,DEU,", ",FRX,DEU,DEU,");
    let contents = format!("{HEADER}\n{}\n{bad}\n{}\n", good_row("E1"), good_row("E3"));
    let path = write_file(dir.path(), "name.csv", contents.as_bytes());
    let rows = read_all(&path);
    assert_eq!(rows.len(), 3);
    assert_eq!(valid(&rows[0]).event_id, "E1");
    assert_eq!(valid(&rows[2]).event_id, "E3");
    let rejected = invalid(&rows[1]);
    assert_eq!(rejected.line, 3);
    assert_eq!(rejected.raw.citizenship, "FRX");
    assert_eq!(rejected.raw.event_id, "E2");
    assert_eq!(
        rejected.error.to_string(),
        format!("{}:3: citizenship: unknown country code \"FRX\"", path.display())
    );
}

#[test]
fn csv_line_numbers_survive_crlf_blank_lines_and_quoted_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |id: &str| good_row(id).replace(",F,", ",Q,");
    // Line 1 header, 2 good, 3 blank, 4-5 a quoted newline, 6 bad, 7 blank (CRLF), 8 bad.
    let contents = format!(
        "\u{feff}{HEADER}\r\n{}\r\n\r\n\"E\nX\",P,immigration,2024-05-02,DEU,,DEU,F,,,\r\n{}\r\n\r\n{}",
        good_row("E1"),
        bad("E6"),
        bad("E8")
    );
    let path = write_file(dir.path(), "crlf.csv", contents.as_bytes());
    let rows = read_all(&path);
    assert_eq!(rows.len(), 4);
    assert_eq!(
        valid(&rows[0]).duration_months,
        Some(24),
        "the \\r is not part of the last field"
    );
    let quoted = invalid(&rows[1]);
    assert_eq!((quoted.line, quoted.error.field), (4, Some("event_id")));
    assert_eq!(
        (invalid(&rows[2]).line, invalid(&rows[2]).raw.event_id.as_str()),
        (6, "E6")
    );
    assert_eq!(
        (invalid(&rows[3]).line, invalid(&rows[3]).raw.event_id.as_str()),
        (8, "E8")
    );
}

#[test]
fn structural_row_problems_are_row_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut contents = format!("{HEADER}\n{},extra\nshort,row\n", good_row("E1")).into_bytes();
    contents.extend_from_slice(b"E3,P3,immigration,2024-05-02,DEU,DEU,DEU,F,1990,w\xFFrk,24\n");
    contents.extend_from_slice(format!("{}\n", good_row("E4")).as_bytes());
    let path = write_file(dir.path(), "fra.csv", &contents);
    let rows = read_all(&path);
    assert_eq!(rows.len(), 4);
    let extra = invalid(&rows[0]);
    assert_eq!(extra.error.reason(), "expected 11 fields as in the header, found 12");
    assert_eq!((extra.line, extra.raw.duration_months.as_str()), (2, "24"));
    let short = invalid(&rows[1]);
    assert_eq!(short.error.reason(), "expected 11 fields as in the header, found 2");
    assert_eq!(
        (short.raw.event_id.as_str(), short.raw.person_id.as_str()),
        ("short", "row")
    );
    let utf8 = invalid(&rows[2]);
    assert_eq!(
        (utf8.line, utf8.error.reason().as_str()),
        (4, "reason: not valid UTF-8")
    );
    assert_eq!(valid(&rows[3]).event_id, "E4");
}

#[test]
fn unclosed_quote_stops_reading_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut contents = format!("{HEADER}\n{}\n\"E2,unclosed\n", good_row("E1"));
    let filler = format!("{}\n", good_row("E9"));
    while (contents.len() as u64) < 2 * MAX_RECORD_BYTES {
        contents.push_str(&filler);
    }
    let path = write_file(dir.path(), "broken.csv", contents.as_bytes());
    let mut reader = RecordReader::open(&path, ctx()).unwrap();
    assert_eq!(valid(&reader.next().unwrap().unwrap()).event_id, "E1");
    let error = reader.next().unwrap().unwrap_err();
    assert!(matches!(error, ReadError::RecordTooLong { line: 3, .. }), "{error}");
    assert!(reader.next().is_none(), "reading stops after a fatal error");
}

#[test]
fn jsonl_happy_path() {
    let dir = tempfile::tempdir().unwrap();
    let contents = concat!(
        r#"{"event_id":"J1","person_id":"P1","event_type":"immigration","event_date":"2024-01-31","citizenship":"ITA","country_of_birth":"","partner_country":"ITA","sex":"M","birth_year":1980,"reason":"work","duration_months":12}"#,
        "\n\n   \n",
        r#"{"duration_months":"6","event_id":"J2","person_id":"P2","event_type":"residence_permit","event_date":"2024-02-01","citizenship":"XXA","sex":"X","birth_year":null,"reason":null}"#,
        "\r\n",
    );
    let path = write_file(dir.path(), "fra.ndjson", contents.as_bytes());
    let mut reader = RecordReader::open(&path, ctx()).unwrap();
    let first = reader.next().unwrap().unwrap();
    assert_eq!(valid(&first).birth_year, Some(1980));
    assert_eq!(valid(&first).duration_months, Some(12));
    assert_eq!(valid(&first).country_of_birth, None);
    let second = reader.next().unwrap().unwrap();
    let second = valid(&second);
    assert_eq!(
        (second.event_id.as_str(), second.citizenship),
        ("J2", Country::STATELESS)
    );
    assert_eq!(
        (second.birth_year, second.reason, second.duration_months),
        (None, Reason::Unknown, Some(6))
    );
    assert!(reader.next().is_none());
    assert_eq!(reader.bytes_read(), reader.total_bytes());
    assert_eq!(reader.total_bytes(), contents.len() as u64);
}

#[test]
fn jsonl_errors_are_row_errors_with_physical_lines() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"event_id":"J1","person_id":"P1","event_type":"asylum_application","event_date":"2024-01-31","citizenship":"SYR","sex":"F"}"#;
    let lines = [
        good.replace(r#""sex":"F""#, r#""sex":"F","note":"x""#),
        good.replace(r#""sex":"F""#, r#""sex":"F","birth_year":1990.5"#),
        good.replace(r#""citizenship":"SYR""#, r#""citizenship":760"#),
        good.replace(r#""citizenship":"SYR""#, r#""citizenship":"FRX""#),
        good.replace(r#""citizenship":"SYR","#, ""),
        good.replace(r#""sex":"F""#, r#""sex":"F","sex":"M""#),
        good.replace(r#""sex":"F"}"#, r#""sex":"F""#),
        "[1,2]".to_string(),
        good.replace(r#""sex":"F""#, r#""sex":"F","duration_months":-4"#),
        good.to_string(),
    ];
    let contents = format!("{}\n", lines.join("\n\n"));
    let path = write_file(dir.path(), "fra.jsonl", contents.as_bytes());
    let rows = read_all(&path);
    assert_eq!(rows.len(), lines.len());
    let reasons: Vec<(u64, String)> = rows[..9]
        .iter()
        .map(|row| (invalid(row).line, invalid(row).error.reason()))
        .collect();
    let expected = [
        (1, "note: unknown key, not a record field"),
        (
            3,
            "birth_year: expected an integer or a string, found the number 1990.5",
        ),
        (5, "citizenship: expected a string, found the number 760"),
        (7, "citizenship: unknown country code \"FRX\""),
        (9, "citizenship: required value is missing"),
        (11, "sex: key appears twice"),
        (
            13,
            &*format!("invalid JSON at column {}: EOF while parsing an object", lines[6].len()),
        ),
        (
            15,
            "not a JSON object of record fields: invalid type: sequence, expected a JSON object",
        ),
        (17, "duration_months: not a non-negative whole number of months: \"-4\""),
    ];
    let expected: Vec<(u64, String)> = expected.iter().map(|(l, r)| (*l, r.to_string())).collect();
    assert_eq!(reasons, expected);
    assert_eq!(invalid(&rows[3]).raw.citizenship, "FRX");
    assert_eq!(valid(&rows[9]).event_id, "J1");
    assert_eq!(
        invalid(&rows[3]).error.to_string(),
        format!("{}:7: citizenship: unknown country code \"FRX\"", path.display())
    );
}

#[test]
fn jsonl_overlong_and_non_utf8_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"event_id":"J1","person_id":"P1","event_type":"asylum_application","event_date":"2024-01-31","citizenship":"SYR","sex":"F"}"#;
    let mut contents = vec![b'"'; MAX_RECORD_BYTES as usize + 10];
    contents.extend_from_slice(b"\n{\"event_id\":\"\xFF\"}\n");
    contents.extend_from_slice(good.as_bytes());
    let path = write_file(dir.path(), "big.jsonl", &contents);
    let mut reader = RecordReader::open(&path, ctx()).unwrap();
    let rows: Vec<Row> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(
        invalid(&rows[0]).error.reason(),
        format!("line longer than {MAX_RECORD_BYTES} bytes")
    );
    assert_eq!(
        (invalid(&rows[1]).line, invalid(&rows[1]).error.reason().as_str()),
        (2, "not valid UTF-8")
    );
    assert_eq!(valid(&rows[2]).event_id, "J1");
    assert_eq!(reader.bytes_read(), contents.len() as u64);
}

#[test]
fn rejected_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let bad = good_row("E2").replace(",DEU,DEU,DEU,", ",FRX,DEU,DEU,");
    let quoted = "\"E,3\",P3,immigration,2024-05-02,DEU,DEU,DEU,Q,1990,work,24";
    let contents = format!("{HEADER}\n{}\n{bad}\n{quoted}\n", good_row("E1"));
    let input = write_file(dir.path(), "fra.csv", contents.as_bytes());
    let mut writer = RejectedWriter::create(&input).unwrap();
    let mut rejected = Vec::new();
    for row in read_all(&input) {
        if let Row::Invalid(r) = row {
            writer.write(&r).unwrap();
            rejected.push(r);
        }
    }
    let written = writer.finish().unwrap();
    assert_eq!(written, dir.path().join("fra.csv.rejected.csv"));
    assert_eq!(written, rejected_path(&input));

    let mut back = csv::Reader::from_path(&written).unwrap();
    let header: Vec<String> = back.headers().unwrap().iter().map(str::to_string).collect();
    let mut expected_header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    expected_header.extend(["line".to_string(), "error".to_string()]);
    assert_eq!(header, expected_header);
    let rows: Vec<csv::StringRecord> = back.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    for (row, original) in rows.iter().zip(&rejected) {
        let fields: Vec<&str> = row.iter().collect();
        assert_eq!(&fields[..11], &original.raw.fields()[..]);
        assert_eq!(fields[11], original.line.to_string());
        assert_eq!(fields[12], original.error.reason());
    }
    assert_eq!(&rows[0][12], "citizenship: unknown country code \"FRX\"");
    assert_eq!((&rows[1][0], &rows[1][11]), ("E,3", "4"));
}

#[cfg(unix)]
#[test]
fn rejected_file_is_no_more_exposed_than_its_input() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let input = write_file(dir.path(), "fra.csv", HEADER.as_bytes());
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o640)).unwrap();
    let path = RejectedWriter::create(&input).unwrap().finish().unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o640);
}

fn synthetic_record(n: u32) -> Record {
    let countries = ["DEU", "ITA", "ESP", "POL", "SYR", "XXX"];
    let country = Country::parse(countries[n as usize % countries.len()]).unwrap();
    let event_type = EventType::ALL[n as usize % 4];
    Record {
        event_id: format!("E{n:08}"),
        person_id: format!("P{}", n / 2),
        event_type,
        event_date: Date::from_day_number(19_000 + i64::from(n % 700)).unwrap(),
        citizenship: country,
        country_of_birth: (n % 3 != 0).then_some(country),
        partner_country: (n % 5 != 0 || event_type.code() < 2).then_some(country),
        sex: Sex::ALL[n as usize % 4],
        birth_year: (n % 7 != 0).then_some(1950 + (n % 50) as i32),
        reason: Reason::ALL[n as usize % 6],
        duration_months: (n % 11 != 0).then_some(n % 60),
    }
}

#[test]
fn written_records_read_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic.csv");
    let records: Vec<Record> = (0..500).map(synthetic_record).collect();
    let mut writer = CsvRecordWriter::create(&path).unwrap();
    for record in &records {
        writer.write(record).unwrap();
    }
    writer.finish().unwrap();
    let back: Vec<Record> = read_all(&path).iter().map(|row| valid(row).clone()).collect();
    assert_eq!(back, records);
}

#[test]
fn large_file_streams_to_the_end() {
    const ROWS: u32 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.csv");
    let mut writer = CsvRecordWriter::create(&path).unwrap();
    for n in 0..ROWS {
        writer.write(&synthetic_record(n)).unwrap();
    }
    writer.finish().unwrap();
    // One hand-written bad row at the end, to see a line number deep into the file.
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(file, "{}", good_row("LAST").replace(",F,", ",Q,")).unwrap();
    drop(file);

    let mut reader = RecordReader::open(&path, ctx()).unwrap();
    let (mut valid_rows, mut last_error) = (0u32, None);
    for row in reader.by_ref() {
        match row.unwrap() {
            Row::Valid(_) => valid_rows += 1,
            Row::Invalid(rejected) => last_error = Some(rejected.error),
        }
    }
    assert_eq!(valid_rows, ROWS);
    let last_error = last_error.unwrap();
    assert_eq!((last_error.line, last_error.field), (u64::from(ROWS) + 2, Some("sex")));
    assert_eq!(reader.bytes_read(), reader.total_bytes());
    assert_eq!(reader.total_bytes(), std::fs::metadata(&path).unwrap().len());
}

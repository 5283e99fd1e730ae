//! JSON Lines rows: one JSON object per line, keys named as the SPEC columns. Turns each line
//! into a [`RawRow`]; never validates field values (the caller does) and never holds more than
//! one line of at most [`MAX_RECORD_BYTES`] in memory.
//!
//! Values are JSON strings; `birth_year` and `duration_months` may also be JSON integers; `null`
//! or an absent key means empty (so a missing required field fails its field rule). Unknown or
//! duplicate keys reject the line: JSON parsers differ on duplicates, so we refuse to guess.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::{RawRow, ReadError, MAX_RECORD_BYTES};
use crate::domain::record::validate::RawRecord;
use crate::domain::record::{COLUMNS, SENSITIVE_FIELDS};

const BUFFER_BYTES: usize = 64 * 1024;

/// Fields that accept a JSON integer as well as a string.
const INTEGER_FIELDS: [&str; 2] = ["birth_year", "duration_months"];

pub(super) struct JsonlRows {
    file: String,
    input: BufReader<File>,
    /// Bytes consumed so far: exact, since lines are taken from the buffer one by one.
    consumed: u64,
    line: u64,
    /// Reused for every line.
    buffer: Vec<u8>,
}

impl JsonlRows {
    pub(super) fn new(file: &str, handle: File) -> JsonlRows {
        JsonlRows {
            file: file.to_string(),
            input: BufReader::with_capacity(BUFFER_BYTES, handle),
            consumed: 0,
            line: 0,
            buffer: Vec::new(),
        }
    }

    pub(super) fn bytes_read(&self) -> u64 {
        self.consumed
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        loop {
            self.buffer.clear();
            let limit = MAX_RECORD_BYTES as usize;
            let (consumed, overflowed) = match read_line_bounded(&mut self.input, &mut self.buffer, limit) {
                Ok(read) => read,
                Err(error) => return Some(Err(ReadError::io(&self.file, error))),
            };
            if consumed == 0 {
                return None;
            }
            self.consumed += consumed;
            self.line += 1;
            let line = self.line;
            if overflowed {
                let message = format!("line longer than {MAX_RECORD_BYTES} bytes");
                return Some(Ok(RawRow {
                    line,
                    raw: RawRecord::default(),
                    problem: Some((None, message)),
                }));
            }
            let mut text: &[u8] = &self.buffer;
            text = text.strip_suffix(b"\n").unwrap_or(text);
            text = text.strip_suffix(b"\r").unwrap_or(text);
            if line == 1 {
                text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok(parse_line(line, text)));
        }
    }
}

/// Appends one line (with its `\n`, if any) to `out`, keeping at most `limit` bytes of it but
/// always consuming the whole line. Returns the bytes consumed and whether the line was cut.
fn read_line_bounded(input: &mut impl BufRead, out: &mut Vec<u8>, limit: usize) -> io::Result<(u64, bool)> {
    let mut consumed = 0u64;
    let mut overflowed = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok((consumed, overflowed));
        }
        let (chunk, line_done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let room = limit.saturating_sub(out.len());
        if chunk.len() > room {
            overflowed = true;
        }
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let taken = chunk.len();
        input.consume(taken);
        consumed += taken as u64;
        if line_done {
            return Ok((consumed, overflowed));
        }
    }
}

fn parse_line(line: u64, bytes: &[u8]) -> RawRow {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return RawRow {
            line,
            raw: RawRecord::default(),
            problem: Some((None, "not valid UTF-8".to_string())),
        };
    };
    match serde_json::from_str::<JsonLine>(text) {
        Ok(JsonLine { raw, problem }) => RawRow { line, raw, problem },
        Err(error) => {
            let message = json_error_message(&error);
            RawRow {
                line,
                raw: RawRecord::default(),
                problem: Some((None, message)),
            }
        }
    }
}

/// serde_json's message without its "at line 1 column N" (the line is always 1 here, and the
/// physical line is already in the error's prefix).
fn json_error_message(error: &serde_json::Error) -> String {
    let mut detail = error.to_string();
    if let Some(cut) = detail.rfind(" at line ") {
        detail.truncate(cut);
    }
    if error.is_data() {
        format!("not a JSON object of record fields: {detail}")
    } else {
        format!("invalid JSON at column {}: {detail}", error.column())
    }
}

/// One parsed line: the fields read, and the first problem met.
struct JsonLine {
    raw: RawRecord,
    problem: Option<(Option<&'static str>, String)>,
}

impl<'de> Deserialize<'de> for JsonLine {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JsonLine, D::Error> {
        deserializer.deserialize_map(LineVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = JsonLine;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonLine, A::Error> {
        let mut raw = RawRecord::default();
        let mut problem = None;
        let mut seen = [false; COLUMNS.len()];
        while let Some(key) = map.next_key::<String>()? {
            let Some(index) = COLUMNS.iter().position(|c| *c == key) else {
                map.next_value::<IgnoredAny>()?;
                // Named like a field (`extra: unknown key`) when it reads as one.
                let named = if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    key
                } else {
                    format!("{key:?}")
                };
                problem.get_or_insert((None, format!("{named}: unknown key, not a record field")));
                continue;
            };
            let field = COLUMNS[index];
            if seen[index] {
                map.next_value::<IgnoredAny>()?;
                problem.get_or_insert((Some(field), "key appears twice".to_string()));
                continue;
            }
            seen[index] = true;
            match field_text(field, map.next_value::<Value>()?) {
                Ok(text) => {
                    if let Some(slot) = raw.field_at_mut(index) {
                        *slot = text;
                    }
                }
                Err(message) => {
                    problem.get_or_insert((Some(field), message));
                }
            }
        }
        Ok(JsonLine { raw, problem })
    }
}

/// What sort of JSON value `value` is, without its contents.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::String(_) => "a string",
        Value::Null => "null",
    }
}

/// The text of one JSON value for `field`, or why that kind of value is not accepted there.
fn field_text(field: &str, value: Value) -> Result<String, String> {
    let integers = INTEGER_FIELDS.contains(&field);
    match value {
        Value::String(text) => Ok(text),
        Value::Null => Ok(String::new()),
        Value::Number(number) if integers && (number.is_i64() || number.is_u64()) => Ok(number.to_string()),
        // A raw identifier exported as a number (national numbers often are) is named by its
        // kind only: its digits would be the identifier itself.
        other if SENSITIVE_FIELDS.contains(&field) => Err(format!("expected a string, found {}", kind(&other))),
        other => {
            let found = match &other {
                Value::Number(number) => format!("the number {number}"),
                Value::Bool(flag) => format!("{flag}"),
                Value::Array(_) => "an array".to_string(),
                Value::Object(_) => "an object".to_string(),
                Value::String(_) | Value::Null => "a string".to_string(),
            };
            let expected = if integers { "an integer or a string" } else { "a string" };
            Err(format!("expected {expected}, found {found}"))
        }
    }
}

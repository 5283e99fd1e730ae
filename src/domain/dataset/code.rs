//! A dimension value held inline: every value SPEC §2 allows (`OUT`, `DEU`, `F`, `Y80-84`,
//! `protection`, ...) is a short ASCII code, so the common view keys its half a million mirror
//! rows with these instead of heap strings. It orders exactly as the text does, so anything sorted
//! or digested by code is sorted and digested as the strings would be.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;

/// Longest value a [`Code`] holds; the longest SPEC value is `protection` (10).
pub const CODE_CAPACITY: usize = 15;

/// A short printable-ASCII code, stored inline (16 bytes, `Copy`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    /// The text, zero-padded after `len` bytes.
    bytes: [u8; CODE_CAPACITY],
    len: u8,
}

impl Code {
    /// The code for `text`; none when it is longer than [`CODE_CAPACITY`] or not printable ASCII.
    pub fn new(text: &str) -> Option<Code> {
        if text.len() > CODE_CAPACITY || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return None;
        }
        let mut bytes = [0; CODE_CAPACITY];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Code {
            bytes,
            len: text.len() as u8,
        })
    }

    /// The empty code: sorts before every other.
    pub const EMPTY: Code = Code {
        bytes: [0; CODE_CAPACITY],
        len: 0,
    };

    pub fn as_str(&self) -> &str {
        // Only `new` fills the bytes, and it admits ASCII alone.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Deref for Code {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Ord for Code {
    fn cmp(&self, other: &Code) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Code {
    fn partial_cmp(&self, other: &Code) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_every_spec_value_and_reads_back() {
        for text in [
            "OUT",
            "IN",
            "DEU",
            "XXA",
            "F",
            "U",
            "Y0-4",
            "Y80-84",
            "Y_GE85",
            "UNK",
            "protection",
            "",
        ] {
            let code = Code::new(text).unwrap();
            assert_eq!(code.as_str(), text);
            assert_eq!(code, text);
            assert_eq!(format!("{code}"), text);
            assert_eq!(format!("{code:?}"), format!("{text:?}"));
        }
        assert_eq!(std::mem::size_of::<Code>(), 16);
    }

    #[test]
    fn refuses_long_or_non_ascii_text() {
        assert!(Code::new("sixteen-chars-xx").is_none());
        assert!(Code::new(&"x".repeat(CODE_CAPACITY)).is_some());
        assert!(Code::new("Ü").is_none());
        assert!(Code::new("a\0b").is_none());
        assert!(Code::new("a\nb").is_none());
    }

    #[test]
    fn orders_exactly_as_the_text() {
        let texts = [
            "", "A", "AB", "ABC", "B", "Y0-4", "Y10-14", "Y5-9", "Y_GE85", "UNK", "a", "Z",
        ];
        for a in texts {
            for b in texts {
                let (ca, cb) = (Code::new(a).unwrap(), Code::new(b).unwrap());
                assert_eq!(ca.cmp(&cb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(ca == cb, a == b);
            }
        }
        assert!(Code::EMPTY < Code::new("A").unwrap());
    }
}

//! The text of an attestation (SPEC §12): what a member states it holds and computes, one
//! fact per line, in a fixed order, so the same state always gives the same bytes.
//!
//! ```text
//! accord-attestation/1
//! member DEU
//! consortium 2 <consortium digest, hex>
//! head DEU 3 <header digest, hex>      (one per publisher held, by code)
//! fork ITA 2 <held digest> <other>     (one per publisher found equivocating, by code)
//! view <view digest, hex>
//! time 2026-12-04T06:40:00Z
//! ```

use crate::domain::date::{format_timestamp, parse_timestamp};
use crate::domain::hex;
use crate::domain::model::Country;

/// The first line of every attestation.
pub const FORMAT: &str = "accord-attestation/1";
/// Heads an attestation may list: bounded by what a consortium can have.
pub const MAX_HEADS: usize = 1024;

/// What one member attests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub member: Country,
    pub consortium_version: u64,
    pub consortium_digest: [u8; 32],
    /// (publisher, seq, header digest), sorted by publisher, one each.
    pub heads: Vec<(Country, u64, [u8; 32])>,
    /// Fork evidence held: (publisher, seq, digest held, conflicting digest), sorted by
    /// publisher, one each. A member reading it fetches whichever header it lacks, so a split
    /// view reaches members that never sync with the two sides.
    pub forks: Vec<Fork>,
    pub view: [u8; 32],
    /// Unix seconds.
    pub time: i64,
}

/// Two signed headers one publisher gave for one seq, as an attestation names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fork {
    pub publisher: Country,
    pub seq: u64,
    pub held: [u8; 32],
    pub conflicting: [u8; 32],
}

/// Why a text is not an attestation; the line is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attestation line {line}: {reason}")]
pub struct BodyError {
    pub line: usize,
    pub reason: String,
}

impl Attestation {
    /// The note text (ends with a newline, no blank line).
    pub fn text(&self) -> String {
        let mut out = format!(
            "{FORMAT}\nmember {}\nconsortium {} {}\n",
            self.member,
            self.consortium_version,
            hex::encode(&self.consortium_digest)
        );
        for (publisher, seq, digest) in &self.heads {
            out.push_str(&format!("head {publisher} {seq} {}\n", hex::encode(digest)));
        }
        for f in &self.forks {
            out.push_str(&format!(
                "fork {} {} {} {}\n",
                f.publisher,
                f.seq,
                hex::encode(&f.held),
                hex::encode(&f.conflicting)
            ));
        }
        out.push_str(&format!(
            "view {}\ntime {}\n",
            hex::encode(&self.view),
            format_timestamp(self.time)
        ));
        out
    }

    /// The signed-note key name an attestation by `member` is signed under.
    pub fn key_name(member: Country) -> String {
        format!("accord.member/{member}")
    }

    /// Reads an attestation text back; exactly the form [`Attestation::text`] writes.
    pub fn parse(text: &str) -> Result<Attestation, BodyError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let mut next = |what: &str| -> Result<(usize, Vec<&str>), BodyError> {
            let (n, line) = lines.next().ok_or(BodyError {
                line: 0,
                reason: format!("ends before the {what} line"),
            })?;
            Ok((n, line.split(' ').collect()))
        };
        let bad = |line: usize, reason: &str| BodyError {
            line,
            reason: reason.to_string(),
        };
        let digest = |line: usize, text: &str| -> Result<[u8; 32], BodyError> {
            hex::decode(text)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad(line, "not a SHA-256 digest in hex"))
        };
        let country = |line: usize, text: &str| {
            Country::parse(text)
                .filter(|c| c.is_iso())
                .ok_or_else(|| bad(line, "not a member code"))
        };
        let (n, first) = next("format")?;
        if first != [FORMAT] {
            return Err(bad(n, "not an accord-attestation/1"));
        }
        let (n, member) = next("member")?;
        let member = match member.as_slice() {
            ["member", code] => country(n, code)?,
            _ => return Err(bad(n, "expected `member CODE`")),
        };
        let (n, consortium) = next("consortium")?;
        let (consortium_version, consortium_digest) = match consortium.as_slice() {
            ["consortium", v, d] => (v.parse().map_err(|_| bad(n, "not a version"))?, digest(n, d)?),
            _ => return Err(bad(n, "expected `consortium VERSION DIGEST`")),
        };
        let mut heads: Vec<(Country, u64, [u8; 32])> = Vec::new();
        let mut forks: Vec<Fork> = Vec::new();
        let view = loop {
            let (n, fields) = next("view")?;
            match fields.as_slice() {
                ["head", _, _, _] if !forks.is_empty() => return Err(bad(n, "a head after a fork line")),
                ["fork", p, s, held, other] => {
                    if forks.len() == MAX_HEADS {
                        return Err(bad(n, "too many forks"));
                    }
                    let p = country(n, p)?;
                    if forks.last().is_some_and(|f| f.publisher >= p) {
                        return Err(bad(n, "forks out of order or repeated"));
                    }
                    forks.push(Fork {
                        publisher: p,
                        seq: s.parse().map_err(|_| bad(n, "not a seq"))?,
                        held: digest(n, held)?,
                        conflicting: digest(n, other)?,
                    });
                }
                ["head", p, s, d] => {
                    if heads.len() == MAX_HEADS {
                        return Err(bad(n, "too many heads"));
                    }
                    let p = country(n, p)?;
                    if heads.last().is_some_and(|(last, _, _)| *last >= p) {
                        return Err(bad(n, "heads out of order or repeated"));
                    }
                    heads.push((p, s.parse().map_err(|_| bad(n, "not a seq"))?, digest(n, d)?));
                }
                ["view", d] => break digest(n, d)?,
                _ => return Err(bad(n, "expected `head ...`, `fork ...` or `view DIGEST`")),
            }
        };
        let (n, time) = next("time")?;
        let time = match time.as_slice() {
            ["time", t] => parse_timestamp(t).ok_or_else(|| bad(n, "not a time"))?,
            _ => return Err(bad(n, "expected `time ...`")),
        };
        if let Some((n, _)) = lines.next() {
            return Err(bad(n, "text after the time line"));
        }
        let parsed = Attestation {
            member,
            consortium_version,
            consortium_digest,
            heads,
            forks,
            view,
            time,
        };
        // Only the canonical form is an attestation: one state, one text.
        if parsed.text() != text {
            return Err(bad(0, "not in canonical form"));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    fn sample() -> Attestation {
        Attestation {
            member: c("DEU"),
            consortium_version: 2,
            consortium_digest: [1; 32],
            heads: vec![(c("DEU"), 3, [2; 32]), (c("FRA"), 1, [3; 32])],
            forks: vec![Fork {
                publisher: c("ITA"),
                seq: 2,
                held: [5; 32],
                conflicting: [6; 32],
            }],
            view: [4; 32],
            time: 1_796_000_000,
        }
    }

    #[test]
    fn an_attestation_reads_back_from_its_text() {
        let a = sample();
        let text = a.text();
        assert!(text.starts_with("accord-attestation/1\nmember DEU\nconsortium 2 0101"));
        assert!(text.contains(&format!("\nhead FRA 1 {}\n", "03".repeat(32))));
        assert!(text.ends_with("\ntime 2026-11-30T00:53:20Z\n"), "{text}");
        assert_eq!(Attestation::parse(&text).unwrap(), a);
        assert_eq!(Attestation::key_name(c("DEU")), "accord.member/DEU");
    }

    #[test]
    fn anything_but_the_canonical_text_is_refused_with_its_line() {
        let text = sample().text();
        let cases = [
            (text.replace("accord-attestation/1", "accord-attestation/2"), 1),
            (text.replace("member DEU", "member XX"), 2),
            (text.replace("consortium 2", "consortium two"), 3),
            (text.replace("head DEU 3", "head DEU x"), 4),
            (text.replace("head FRA", "head DEU"), 5),
            (text.replace("fork ITA 2", "fork ITA two"), 6),
            (
                text.replace("\nview ", &format!("\nfork FRA 1 {0} {0}\nview ", "07".repeat(32))),
                7,
            ),
            (
                text.replace("\nview ", &format!("\nhead POL 1 {}\nview ", "07".repeat(32))),
                7,
            ),
            (text.replace("\ntime ", "\nwhen "), 8),
            (format!("{text}extra\n"), 9),
            (text.replace("view 04", "view 4"), 7),
        ];
        for (bad, line) in cases {
            let err = Attestation::parse(&bad).unwrap_err();
            assert_eq!(err.line, line, "{bad:?}: {err}");
        }
        let spaced = text.replace("member DEU", "member  DEU");
        assert!(Attestation::parse(&spaced).is_err());
        let heads: String = (0..=MAX_HEADS).map(|_| "head DEU 1 x\n").collect();
        assert!(Attestation::parse(&format!(
            "accord-attestation/1\nmember DEU\nconsortium 1 {}\n{heads}",
            "00".repeat(32)
        ))
        .is_err());
    }
}

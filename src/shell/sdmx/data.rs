//! SDMX observations read from the common view (SPEC §16), and the parts of a data query that
//! select them: the key (`A.DEU+FRA..`), the periods and `updatedAfter`. Read only: every
//! figure is the one `accord view` prints for the same row.
//!
//! `MIG_FLOWS_MIRROR` gives each view row (pair totals included, `_T` in the breakdown) up to
//! three observations, `SENDER`, `RECEIVER` and `RECONCILED`, and each pair total with a
//! modelled estimate three more, `ESTIMATE`, `ESTIMATE_LOWER`, `ESTIMATE_UPPER` (`OBS_STATUS`
//! `E`). `MIG_FLOWS_REPORTED`, `MIG_ASYLUM` and `MIG_PERMITS` give each published side one
//! observation, with the signed entry it came from. A confidential figure has no value and
//! `CONF_STATUS` `C`; a missing side has no observation; a total that leaves out confidential
//! cells says how many in `WITHHELD`.

use crate::domain::dataset::Code;
use crate::domain::model::{Country, Cube, Period};
use crate::domain::reconcile::{flow_lines, side_by_side_rows, FlowLine, LineSide, Reported, Source, View, ViewFilter};

use super::structure::Flow;

/// One observation: its key (one code per dimension of its flow, `TIME_PERIOD` apart), period,
/// value and attribute values (one per attribute of its flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obs {
    pub key: Vec<Code>,
    pub period: Period,
    pub value: Option<u64>,
    pub attributes: Vec<Option<String>>,
}

/// The key of a data query: per dimension, the codes asked for (none: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFilter(Vec<Option<Vec<String>>>);

impl KeyFilter {
    /// Parses the SDMX 2.1 key syntax for `flow`: `all`, or one part per dimension separated by
    /// `.`, each empty (any code) or codes joined by `+`.
    pub fn parse(flow: Flow, text: &str) -> Result<KeyFilter, String> {
        let dims = flow.dimensions();
        if text.is_empty() || text == "all" || text == "ALL" {
            return Ok(KeyFilter(vec![None; dims.len()]));
        }
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() != dims.len() {
            return Err(format!(
                "the key {text:?} has {} parts; {} has {} dimensions ({})",
                parts.len(),
                flow.id(),
                dims.len(),
                dims.iter().map(|(d, _)| *d).collect::<Vec<_>>().join(".")
            ));
        }
        let mut out = Vec::with_capacity(parts.len());
        for (part, (dim, _)) in parts.iter().zip(dims) {
            if part.is_empty() {
                out.push(None);
                continue;
            }
            let codes: Vec<String> = part.split('+').map(str::to_string).collect();
            if let Some(bad) = codes.iter().find(|c| !valid_id(c)) {
                return Err(format!("{dim}: {bad:?} is not an SDMX code"));
            }
            out.push(Some(codes));
        }
        Ok(KeyFilter(out))
    }

    fn admits(&self, i: usize, code: &str) -> bool {
        self.0
            .get(i)
            .and_then(Option::as_ref)
            .is_none_or(|codes| codes.iter().any(|c| c == code))
    }

    /// The one code asked for at dimension `i`, when exactly one is.
    fn only(&self, i: usize) -> Option<&str> {
        match self.0.get(i)? {
            Some(codes) if codes.len() == 1 => Some(&codes[0]),
            _ => None,
        }
    }

    pub fn admits_key(&self, key: &[Code]) -> bool {
        key.iter().enumerate().all(|(i, c)| self.admits(i, c))
    }
}

/// SDMX's IDType: letters, digits, `_`, `@`, `$`, `-`.
pub fn valid_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'$' | b'-'))
}

/// `startPeriod`/`endPeriod` as Unix seconds: an observation counts when its period starts in
/// `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub start: i64,
    pub end: i64,
}

impl Default for Periods {
    fn default() -> Periods {
        Periods {
            start: i64::MIN,
            end: i64::MAX,
        }
    }
}

impl Periods {
    /// Reads `startPeriod` and `endPeriod`: `2024`, `2024-S1`, `2024-Q2`, `2024-05` or
    /// `2024-05-17`; the end is inclusive of its whole period.
    pub fn parse(start: Option<&str>, end: Option<&str>) -> Result<Periods, String> {
        let mut out = Periods::default();
        if let Some(s) = start {
            out.start = bounds(s)
                .ok_or_else(|| format!("startPeriod: not a period {s:?} (2024, 2024-Q2, 2024-05, 2024-05-17)"))?
                .0;
        }
        if let Some(e) = end {
            out.end = bounds(e)
                .ok_or_else(|| format!("endPeriod: not a period {e:?} (2024, 2024-Q2, 2024-05, 2024-05-17)"))?
                .1;
        }
        Ok(out)
    }

    pub fn admits(&self, period: Period) -> bool {
        let start = period.start_unix();
        self.start <= start && start < self.end
    }
}

/// The first second of `text`'s period and the first second after it.
fn bounds(text: &str) -> Option<(i64, i64)> {
    use crate::domain::date::Date;
    let day = |y: i32, m: u8, d: u8| {
        Date {
            year: y,
            month: m,
            day: d,
        }
        .day_number()
            * 86_400
    };
    let month_span = |y: i32, first: u8, months: u8| {
        let next = first + months;
        let end = if next > 12 {
            day(y + 1, next - 12, 1)
        } else {
            day(y, next, 1)
        };
        (day(y, first, 1), end)
    };
    if let Some(p) = Period::parse(text) {
        let months = p.months();
        return Some(month_span(p.year(), *months.start(), months.end() - months.start() + 1));
    }
    if let Some((y, s)) = text.split_once("-S") {
        let y: i32 = (y.len() == 4).then(|| y.parse().ok())??;
        return match s {
            "1" => Some(month_span(y, 1, 6)),
            "2" => Some(month_span(y, 7, 6)),
            _ => None,
        };
    }
    let d = Date::parse(text)?;
    let start = d.day_number() * 86_400;
    Some((start, start + 86_400))
}

/// `A`, `Q` or `M`.
pub fn freq(period: Period) -> Code {
    let f = match period {
        Period::Year(_) => "A",
        Period::Quarter(..) => "Q",
        Period::Month(..) => "M",
    };
    Code::new(f).unwrap_or(Code::EMPTY)
}

fn code(text: &str) -> Code {
    Code::new(text).unwrap_or(Code::EMPTY)
}

fn country(c: Country) -> Code {
    code(c.as_str())
}

/// What reading stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany {
    pub limit: u64,
}

/// When this node accepted the entry a source names (milliseconds since the Unix epoch).
pub type AcceptedAt<'a> = &'a dyn Fn(&Source) -> i64;

/// Which observations a query selects, besides the key.
pub struct Select<'a> {
    pub key: &'a KeyFilter,
    pub periods: Periods,
    /// `updatedAfter`: only observations drawn from an entry this node accepted after then
    /// (milliseconds since the Unix epoch), read through `accepted_at`.
    pub updated_after: Option<(i64, AcceptedAt<'a>)>,
    pub limit: u64,
}

impl Select<'_> {
    fn fresh(&self, sources: &[Option<&Source>]) -> bool {
        match self.updated_after {
            None => true,
            Some((t, accepted_at)) => sources.iter().flatten().any(|s| accepted_at(s) > t),
        }
    }
}

/// The observations of `flow` in `view` that `select` admits, in view order, at most
/// `select.limit` of them.
pub fn observations(view: &View, flow: Flow, select: &Select<'_>) -> Result<Vec<Obs>, TooMany> {
    let mut out = Vec::new();
    for_each_block(view, flow, select, &mut |block| {
        if (out.len() + block.len()) as u64 > select.limit {
            return Err(TooMany { limit: select.limit });
        }
        out.extend(block);
        Ok(())
    })?;
    Ok(out)
}

/// Hands the observations of `flow` in `view` that `select` admits to `f`, in view order, a
/// block at a time: each `flows` pair (origin and destination, every period) is one block, so
/// every series is whole in one block and a whole view is never held as observations at once;
/// `asylum` and `permits` (no partner dimension) are one block each.
pub fn for_each_block<E>(
    view: &View,
    flow: Flow,
    select: &Select<'_>,
    f: &mut dyn FnMut(Vec<Obs>) -> Result<(), E>,
) -> Result<(), E> {
    match flow {
        Flow::Mirror | Flow::Reported => {
            // A key naming one origin or one destination reads only those pairs.
            let (o, d) = match flow {
                Flow::Mirror => (1, 2),
                _ => (usize::MAX, usize::MAX),
            };
            let filter = ViewFilter {
                cube: Some(Cube::Flows),
                period: None,
                origin: select.key.only(o).and_then(Country::parse),
                destination: select.key.only(d).and_then(Country::parse),
            };
            let mut block = Vec::new();
            let mut current = None;
            for line in flow_lines(view, &filter) {
                let pair = (line.pair.origin, line.pair.destination);
                if current != Some(pair) {
                    if !block.is_empty() {
                        f(std::mem::take(&mut block))?;
                    }
                    current = Some(pair);
                }
                if !select.periods.admits(line.pair.period) {
                    continue;
                }
                if flow == Flow::Mirror {
                    block.extend(mirror(&line, select));
                } else {
                    block.extend(reported(&line, select));
                }
            }
            if !block.is_empty() {
                f(block)?;
            }
        }
        Flow::Asylum | Flow::Permits => {
            let cube = if flow == Flow::Asylum {
                Cube::Asylum
            } else {
                Cube::Permits
            };
            let filter = ViewFilter {
                cube: Some(cube),
                ..ViewFilter::default()
            };
            let mut block = Vec::new();
            for (key, entries) in side_by_side_rows(view, &filter) {
                if key.cube != cube || !select.periods.admits(key.period) {
                    continue;
                }
                for (publisher, entry) in entries {
                    let mut k = vec![freq(key.period), country(*publisher)];
                    k.extend(key.dimensions.iter().map(|d| code(d)));
                    if !select.key.admits_key(&k) || !select.fresh(&[Some(&entry.source)]) {
                        continue;
                    }
                    block.extend(published(k, key.period, entry.reported, None, &entry.source));
                }
            }
            if !block.is_empty() {
                f(block)?;
            }
        }
    }
    Ok(())
}

/// A published figure with its status and provenance attributes (the `REPORTED`-style flows).
fn published(
    key: Vec<Code>,
    period: Period,
    reported: Reported,
    withheld: Option<u64>,
    source: &Source,
) -> Option<Obs> {
    let (value, conf) = match reported {
        Reported::Value(v) => (Some(v), "F"),
        Reported::Confidential => (None, "C"),
        Reported::Missing => return None,
    };
    Some(Obs {
        key,
        period,
        value,
        attributes: vec![
            Some("A".to_string()),
            Some(conf.to_string()),
            withheld.filter(|w| *w > 0).map(|w| w.to_string()),
            Some(source.publisher.to_string()),
            Some(source.seq.to_string()),
            Some(crate::domain::hex::encode(&source.digest)),
        ],
    })
}

fn reported(line: &FlowLine<'_>, select: &Select<'_>) -> Vec<Obs> {
    let pair = line.pair;
    let [citizenship, sex, age] = line.breakdown_fields();
    let mut out = Vec::new();
    for (side, reporter, direction, partner) in [
        (line.sender, pair.origin, "OUT", pair.destination),
        (line.receiver, pair.destination, "IN", pair.origin),
    ] {
        let Some(source) = side.source else { continue };
        let key = vec![
            freq(pair.period),
            country(reporter),
            code(direction),
            country(partner),
            code(citizenship),
            code(sex),
            code(age),
        ];
        if !select.key.admits_key(&key) || !select.fresh(&[Some(source)]) {
            continue;
        }
        out.extend(published(key, pair.period, side.reported, side.withheld, source));
    }
    out
}

fn mirror(line: &FlowLine<'_>, select: &Select<'_>) -> Vec<Obs> {
    let pair = line.pair;
    let [citizenship, sex, age] = line.breakdown_fields();
    let key = |measure: &str| {
        vec![
            freq(pair.period),
            country(pair.origin),
            country(pair.destination),
            code(citizenship),
            code(sex),
            code(age),
            code(measure),
        ]
    };
    let both = [line.sender.source, line.receiver.source];
    if !select.fresh(&both) {
        return Vec::new();
    }
    let asymmetry = line.asymmetry.map(|a| format!("{a:.4}"));
    let flag = Some(if line.flag { "1" } else { "0" }.to_string());
    let mut out = Vec::new();
    let mut add =
        |measure: &str, value: Option<u64>, obs_status: &str, conf: &str, withheld: Option<u64>, row: bool| {
            let key = key(measure);
            if !select.key.admits_key(&key) {
                return;
            }
            out.push(Obs {
                key,
                period: pair.period,
                value,
                attributes: vec![
                    Some(obs_status.to_string()),
                    Some(conf.to_string()),
                    withheld.filter(|w| *w > 0).map(|w| w.to_string()),
                    if row { asymmetry.clone() } else { None },
                    if row { flag.clone() } else { None },
                ],
            });
        };
    let side = |s: LineSide<'_>| match s.reported {
        Reported::Value(v) => Some((Some(v), "F", s.withheld)),
        Reported::Confidential => Some((None, "C", s.withheld)),
        Reported::Missing => None,
    };
    for (measure, s) in [("SENDER", line.sender), ("RECEIVER", line.receiver)] {
        if let Some((value, conf, withheld)) = side(s) {
            add(measure, value, "A", conf, withheld, true);
        }
    }
    match (line.reconciled, line.reconciled_status) {
        (Some(v), _) => add("RECONCILED", Some(v), "A", "F", line.reconciled_withheld, true),
        (None, "C") => add("RECONCILED", None, "A", "C", line.reconciled_withheld, true),
        _ => {}
    }
    if let Some(e) = line.estimate {
        add("ESTIMATE", Some(e.value), "E", "F", None, false);
        add("ESTIMATE_LOWER", Some(e.lower), "E", "F", None, false);
        add("ESTIMATE_UPPER", Some(e.upper), "E", "F", None, false);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sdmx_key_syntax_and_refuses_a_wrong_length() {
        let k = KeyFilter::parse(Flow::Mirror, "A.DEU+FRA....._T.RECONCILED").unwrap_err();
        assert!(k.contains("8 parts") && k.contains("7 dimensions"), "{k}");
        let k = KeyFilter::parse(Flow::Mirror, "A.DEU+FRA.ITA.._T..RECONCILED").unwrap();
        let key = |o: &str| -> Vec<Code> {
            ["A", o, "ITA", "SYR", "_T", "Y0-4", "RECONCILED"]
                .iter()
                .map(|c| code(c))
                .collect()
        };
        assert!(k.admits_key(&key("DEU")) && k.admits_key(&key("FRA")));
        assert!(!k.admits_key(&key("ESP")));
        assert_eq!(k.only(2), Some("ITA"));
        assert_eq!(k.only(1), None);
        assert!(KeyFilter::parse(Flow::Mirror, "all").unwrap().admits_key(&key("ESP")));
        assert!(KeyFilter::parse(Flow::Permits, "A.DEU.<x>.").is_err());
    }

    #[test]
    fn periods_bound_by_the_start_of_each_period() {
        let p = Periods::parse(Some("2024-Q2"), Some("2024-05")).unwrap();
        assert!(p.admits(Period::Month(2024, 4)) && p.admits(Period::Month(2024, 5)));
        assert!(!p.admits(Period::Month(2024, 6)) && !p.admits(Period::Month(2024, 3)));
        assert!(p.admits(Period::Quarter(2024, 2)) && !p.admits(Period::Year(2024)));
        let y = Periods::parse(Some("2024"), Some("2024")).unwrap();
        assert!(y.admits(Period::Year(2024)) && y.admits(Period::Month(2024, 12)) && !y.admits(Period::Year(2025)));
        let s = Periods::parse(Some("2024-S2"), Some("2024-12-31")).unwrap();
        assert!(s.admits(Period::Quarter(2024, 3)) && !s.admits(Period::Quarter(2024, 2)));
        assert!(Periods::parse(Some("2024-W03"), None).is_err());
        assert!(Periods::parse(None, Some("soon")).unwrap_err().contains("endPeriod"));
    }
}

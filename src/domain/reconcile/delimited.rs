//! CSV and SDMX-CSV output. Never prints a confidential or missing figure as a number: its value
//! field is empty and a status column says why.
//!
//! # CSV
//! `flows`: the SPEC §8 columns, the SPEC §15 estimate columns `estimate,estimate_lower,
//! estimate_upper` (on total rows, when the consortium asks for estimates; empty otherwise),
//! then provenance and completeness columns:
//! `sender_publisher,sender_seq,sender_digest,receiver_publisher,receiver_seq,receiver_digest,
//! reconciled_status,sender_withheld,receiver_withheld,reconciled_withheld`. `reconciled_status`
//! is empty, `C` (a confidential side kept the figure back) or `M`; the `*_withheld` columns, on
//! total rows only, count what the total leaves out: a side's confidential cells (empty when the
//! side is missing), and the rows without a reconciled figure. Each pair's `_T` total row comes
//! first.
//! `asylum`/`permits`: long format `cube,period,<dimensions>,publisher,reported,status,seq,digest`.
//!
//! # SDMX-CSV 2.0
//! Columns `STRUCTURE,STRUCTURE_ID,ACTION`, the dimensions, then `OBS_VALUE,OBS_STATUS,
//! CONF_STATUS`; `STRUCTURE` is `dataflow`, `ACTION` is `I` (information). One observation per
//! reported side of each row (pair totals are margins and are not published as observations):
//! - `flows` → `ACCORD:MIGR_FLOWS(1.0)`, dimensions `REF_AREA` (the reporting country: origin for
//!   the sender's side, destination for the receiver's), `COUNTERPART_AREA` (the other country),
//!   `FLOW` (`OUT` for the sender, `IN` for the receiver), `TIME_PERIOD`, `CITIZENSHIP`, `SEX`,
//!   `AGE`;
//! - `asylum` → `ACCORD:MIGR_ASYLUM(1.0)`: `REF_AREA`, `TIME_PERIOD`, `CITIZENSHIP`, `SEX`, `AGE`;
//! - `permits` → `ACCORD:MIGR_PERMITS(1.0)`: `REF_AREA`, `TIME_PERIOD`, `CITIZENSHIP`, `REASON`.
//!
//! A published value (including the zero a published dataset implies for an absent cell) has
//! `OBS_STATUS` `A` (normal) and `CONF_STATUS` `F` (free); a confidential one has an empty
//! `OBS_VALUE`, `OBS_STATUS` `A` and `CONF_STATUS` `C` (never 0). A side whose member published
//! nothing is omitted; a side its dataset declares unreported (SPEC §2) has an empty
//! `OBS_VALUE` and `OBS_STATUS` `L` (missing value, not collected).
//! `flows` has two more columns, the attributes `LOWER_BOUND` and `UPPER_BOUND`: each pair
//! total's modelled estimate (SPEC §15) is an observation of its own, `REF_AREA` the origin,
//! `COUNTERPART_AREA` the destination, `FLOW` `EST`, `_T` in the breakdown, `OBS_STATUS` `E`
//! (estimated value), its 95% interval in the two attributes (empty on reported observations).

use crate::domain::model::Cube;

use std::io::{self, Write};

use super::lines::{asymmetry_text, flow_lines, side_by_side_rows, value_text, LineSide};
use super::{hex, Reported, View, ViewFilter};

/// The SPEC §8 columns, in order; provenance follows.
pub const FLOWS_COLUMNS: [&str; 14] = [
    "origin",
    "destination",
    "period",
    "citizenship",
    "sex",
    "age_band",
    "sender_reported",
    "sender_status",
    "receiver_reported",
    "receiver_status",
    "reconciled",
    "asymmetry",
    "flag",
    "rule",
];

/// The modelled estimate and its 95% interval (SPEC §15), right after `rule`.
pub const ESTIMATE_COLUMNS: [&str; 3] = ["estimate", "estimate_lower", "estimate_upper"];

const FLOWS_EXTRA_COLUMNS: [&str; 10] = [
    "sender_publisher",
    "sender_seq",
    "sender_digest",
    "receiver_publisher",
    "receiver_seq",
    "receiver_digest",
    "reconciled_status",
    "sender_withheld",
    "receiver_withheld",
    "reconciled_withheld",
];

pub(super) fn flows_csv(view: &View, filter: &ViewFilter, to: &mut dyn Write) -> io::Result<()> {
    let mut out = Records::new(to);
    let header: Vec<&str> = FLOWS_COLUMNS
        .iter()
        .chain(ESTIMATE_COLUMNS.iter())
        .chain(FLOWS_EXTRA_COLUMNS.iter())
        .copied()
        .collect();
    out.push(&header)?;
    for line in flow_lines(view, filter) {
        let [citizenship, sex, age_band] = line.breakdown_fields();
        let mut fields = vec![
            line.pair.origin.to_string(),
            line.pair.destination.to_string(),
            line.pair.period.to_string(),
            citizenship.to_string(),
            sex.to_string(),
            age_band.to_string(),
            value_text(line.sender.reported),
            line.sender.reported.status().to_string(),
            value_text(line.receiver.reported),
            line.receiver.reported.status().to_string(),
            line.reconciled.map(|v| v.to_string()).unwrap_or_default(),
            asymmetry_text(line.asymmetry),
            if line.flag { "1" } else { "0" }.to_string(),
            view.rule.as_str().to_string(),
        ];
        fields.extend(match line.estimate {
            Some(e) => [e.value, e.lower, e.upper].map(|v| v.to_string()),
            None => Default::default(),
        });
        fields.extend(provenance(&line.sender));
        fields.extend(provenance(&line.receiver));
        fields.push(line.reconciled_status.to_string());
        fields.push(withheld_text(&line.sender));
        fields.push(withheld_text(&line.receiver));
        fields.push(line.reconciled_withheld.map(|n| n.to_string()).unwrap_or_default());
        out.push(&fields)?;
    }
    out.finish()
}

fn provenance(side: &LineSide) -> [String; 3] {
    match side.source {
        Some(s) => [s.publisher.to_string(), s.seq.to_string(), hex(&s.digest)],
        None => Default::default(),
    }
}

fn withheld_text(side: &LineSide) -> String {
    side.withheld.map(|n| n.to_string()).unwrap_or_default()
}

pub(super) fn side_by_side_csv(view: &View, filter: &ViewFilter, cube: Cube, to: &mut dyn Write) -> io::Result<()> {
    let mut out = Records::new(to);
    let mut header = vec!["cube", "period"];
    header.extend(cube.dimensions());
    header.extend(["publisher", "reported", "status", "seq", "digest"]);
    out.push(&header)?;
    for (key, entries) in side_by_side_rows(view, filter).filter(|(key, _)| key.cube == cube) {
        for (publisher, entry) in entries {
            let mut fields = vec![cube.as_str().to_string(), key.period.to_string()];
            fields.extend(key.dimensions.iter().cloned());
            fields.extend([
                publisher.to_string(),
                value_text(entry.reported),
                entry.reported.status().to_string(),
                entry.source.seq.to_string(),
                hex(&entry.source.digest),
            ]);
            out.push(&fields)?;
        }
    }
    out.finish()
}

/// The SDMX-CSV header before the dimensions, and the values that open every observation.
const SDMX_LEAD: [&str; 3] = ["STRUCTURE", "STRUCTURE_ID", "ACTION"];
const SDMX_TAIL: [&str; 3] = ["OBS_VALUE", "OBS_STATUS", "CONF_STATUS"];
/// `flows` attributes: a modelled estimate's 95% interval (SPEC §15), empty on reports.
const SDMX_INTERVAL: [&str; 2] = ["LOWER_BOUND", "UPPER_BOUND"];
const FLOWS_STRUCTURE: &str = "ACCORD:MIGR_FLOWS(1.0)";

pub(super) fn flows_sdmx(view: &View, filter: &ViewFilter, to: &mut dyn Write) -> io::Result<()> {
    let dimensions = [
        "REF_AREA",
        "COUNTERPART_AREA",
        "FLOW",
        "TIME_PERIOD",
        "CITIZENSHIP",
        "SEX",
        "AGE",
    ];
    let mut out = Records::new(to);
    let header: Vec<&str> = SDMX_LEAD
        .iter()
        .chain(&dimensions)
        .chain(SDMX_TAIL.iter())
        .chain(SDMX_INTERVAL.iter())
        .copied()
        .collect();
    out.push(&header)?;
    for line in flow_lines(view, filter) {
        let pair = line.pair;
        let Some(key) = line.breakdown else {
            // A pair total is a margin, not an observation; its modelled estimate is one.
            if let Some(e) = line.estimate {
                let mut fields = vec!["dataflow".to_string(), FLOWS_STRUCTURE.to_string(), "I".to_string()];
                fields.extend([
                    pair.origin.to_string(),
                    pair.destination.to_string(),
                    "EST".to_string(),
                    pair.period.to_string(),
                    "_T".to_string(),
                    "_T".to_string(),
                    "_T".to_string(),
                    e.value.to_string(),
                    "E".to_string(),
                    "F".to_string(),
                    e.lower.to_string(),
                    e.upper.to_string(),
                ]);
                out.push(&fields)?;
            }
            continue;
        };
        for (side, reporter, counterpart, flow) in [
            (line.sender, pair.origin, pair.destination, "OUT"),
            (line.receiver, pair.destination, pair.origin, "IN"),
        ] {
            let dims = [
                reporter.to_string(),
                counterpart.to_string(),
                flow.to_string(),
                pair.period.to_string(),
                key.citizenship.to_string(),
                key.sex.to_string(),
                key.age_band.to_string(),
            ];
            let declared = side.source.is_some();
            push_observation(
                &mut out,
                FLOWS_STRUCTURE,
                &dims,
                (side.reported, declared),
                SDMX_INTERVAL.len(),
            )?;
        }
    }
    out.finish()
}

pub(super) fn side_by_side_sdmx(view: &View, filter: &ViewFilter, cube: Cube, to: &mut dyn Write) -> io::Result<()> {
    let (structure, dimensions): (&str, &[&str]) = match cube {
        Cube::Asylum => (
            "ACCORD:MIGR_ASYLUM(1.0)",
            &["REF_AREA", "TIME_PERIOD", "CITIZENSHIP", "SEX", "AGE"],
        ),
        Cube::Permits => (
            "ACCORD:MIGR_PERMITS(1.0)",
            &["REF_AREA", "TIME_PERIOD", "CITIZENSHIP", "REASON"],
        ),
        Cube::Flows => return flows_sdmx(view, filter, to),
    };
    let mut out = sdmx_header(dimensions, to)?;
    for (key, entries) in side_by_side_rows(view, filter).filter(|(key, _)| key.cube == cube) {
        for (publisher, entry) in entries {
            let mut dims = vec![publisher.to_string(), key.period.to_string()];
            dims.extend(key.dimensions.iter().cloned());
            push_observation(&mut out, structure, &dims, (entry.reported, true), 0)?;
        }
    }
    out.finish()
}

fn sdmx_header<'w>(dimensions: &[&str], to: &'w mut dyn Write) -> io::Result<Records<&'w mut dyn Write>> {
    let mut out = Records::new(to);
    let header: Vec<&str> = SDMX_LEAD
        .iter()
        .chain(dimensions)
        .chain(SDMX_TAIL.iter())
        .copied()
        .collect();
    out.push(&header)?;
    Ok(out)
}

/// One SDMX observation, with `empty` attribute fields after it. A missing side is no
/// observation, unless a dataset declared it unreported (SPEC §2): then it is one with no value
/// and `OBS_STATUS` `L` (missing value: data exist but were not collected).
fn push_observation(
    out: &mut Records<impl Write>,
    structure: &str,
    dimensions: &[String],
    side: (Reported, bool),
    empty: usize,
) -> io::Result<()> {
    let (value, obs_status, conf_status) = match side {
        (Reported::Value(v), _) => (v.to_string(), "A", "F"),
        (Reported::Confidential, _) => (String::new(), "A", "C"),
        (Reported::Missing, true) => (String::new(), "L", "F"),
        (Reported::Missing, false) => return Ok(()),
    };
    let mut fields = vec!["dataflow".to_string(), structure.to_string(), "I".to_string()];
    fields.extend(dimensions.iter().cloned());
    fields.extend([value, obs_status.to_string(), conf_status.to_string()]);
    fields.extend(std::iter::repeat_n(String::new(), empty));
    out.push(&fields)
}

/// CSV output through the `csv` writer (RFC 4180 quoting where a field needs it, `\n` line
/// ends), written as it is produced.
struct Records<W: Write>(csv::Writer<W>);

impl<W: Write> Records<W> {
    fn new(out: W) -> Records<W> {
        Records(
            csv::WriterBuilder::new()
                .flexible(true)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(out),
        )
    }

    fn push<S: AsRef<str>>(&mut self, fields: &[S]) -> io::Result<()> {
        self.0
            .write_record(fields.iter().map(|f| f.as_ref()))
            .map_err(io::Error::other)
    }

    fn finish(mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reconcile::test_support::*;
    use crate::domain::reconcile::{compute, render, Format};

    fn csv_lines(view: &View, filter: &ViewFilter) -> Vec<String> {
        render(view, filter, Format::Csv).lines().map(str::to_string).collect()
    }

    #[test]
    fn flows_csv_header_and_total_row() {
        let view = compute(
            &[
                flows(deu(), 1, &[out(fra(), "FRA", 10), out(fra(), "SYR", 6)]),
                flows(fra(), 2, &[inn(deu(), "FRA", 8)]),
            ],
            &settings(),
        );
        let lines = csv_lines(&view, &ViewFilter::default());
        assert!(lines[0].starts_with(
            "origin,destination,period,citizenship,sex,age_band,sender_reported,sender_status,receiver_reported,receiver_status,reconciled,asymmetry,flag,rule,"
        ));
        assert!(lines[0].starts_with(&FLOWS_COLUMNS.join(",")));
        assert!(lines[0]
            .contains(",sender_publisher,sender_seq,sender_digest,receiver_publisher,receiver_seq,receiver_digest"));
        // The total: sender 16, receiver 8 (SYR absent = 0), reconciled 8 + 0 under receiving.
        let fra_digest = hex(&fake_digest(fra(), 2, Cube::Flows, year()));
        assert!(
            lines[1].starts_with("DEU,FRA,2024,_T,_T,_T,16,,8,,8,-0.5000,1,receiving,,,,DEU,1,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with(&format!(",FRA,2,{fra_digest},,0,0,0")),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("DEU,FRA,2024,FRA,F,Y20-24,10,,8,,8,-0.2000,0,receiving,,,,"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("DEU,FRA,2024,SYR,F,Y20-24,6,,0,,0,-1.0000,1,receiving,"),
            "{}",
            lines[3]
        );
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn status_columns_leave_values_empty() {
        let view = compute(&[flows(deu(), 1, &[confidential("OUT", ita(), "FRA")])], &settings());
        let lines = csv_lines(&view, &ViewFilter::default());
        // Sender confidential, receiver (ITA) published nothing: C and M, no values.
        assert!(
            lines[2].starts_with("DEU,ITA,2024,FRA,F,Y20-24,,C,,M,,,0,receiving,,,,DEU,1,"),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with(",,,,C,,,"), "{}", lines[2]);
        // The total has nothing to sum on either side and says one cell was withheld.
        assert!(
            lines[1].starts_with("DEU,ITA,2024,_T,_T,_T,,C,,M,,,0,receiving,"),
            "{}",
            lines[1]
        );
        // ITA's side is missing, so it has no withheld count; the one row has no reconciled figure.
        assert!(lines[1].ends_with(",C,1,,1"), "{}", lines[1]);
    }

    #[test]
    fn filter_selects_pairs() {
        let view = compute(
            &[flows(deu(), 1, &[out(fra(), "FRA", 10), out(ita(), "ITA", 7)])],
            &settings(),
        );
        let only_ita = ViewFilter {
            destination: Some(ita()),
            ..ViewFilter::default()
        };
        let lines = csv_lines(&view, &only_ita);
        assert_eq!(lines.len(), 3);
        assert!(lines[1..].iter().all(|l| l.starts_with("DEU,ITA,2024,")));
    }

    #[test]
    fn side_by_side_csv_is_long() {
        let view = compute(
            &[
                dataset(
                    deu(),
                    1,
                    Cube::Permits,
                    year(),
                    vec![cell(&["SYR", "work"], crate::domain::model::CellValue::Value(12))],
                ),
                dataset(
                    fra(),
                    4,
                    Cube::Permits,
                    year(),
                    vec![cell(&["SYR", "family"], crate::domain::model::CellValue::Confidential)],
                ),
            ],
            &settings(),
        );
        let filter = ViewFilter {
            cube: Some(Cube::Permits),
            ..ViewFilter::default()
        };
        let lines = csv_lines(&view, &filter);
        assert_eq!(
            lines[0],
            "cube,period,citizenship,reason,publisher,reported,status,seq,digest"
        );
        let fra_digest = hex(&fake_digest(fra(), 4, Cube::Permits, year()));
        assert_eq!(
            lines[1],
            format!(
                "permits,2024,SYR,family,DEU,0,,1,{}",
                hex(&fake_digest(deu(), 1, Cube::Permits, year()))
            )
        );
        assert_eq!(lines[2], format!("permits,2024,SYR,family,FRA,,C,4,{fra_digest}"));
        assert!(lines[3].starts_with("permits,2024,SYR,work,DEU,12,,1,"));
        assert!(lines[4].starts_with("permits,2024,SYR,work,FRA,0,,4,"));
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn sdmx_flows_header_and_confidential_observation() {
        let view = compute(
            &[
                flows(deu(), 1, &[confidential("OUT", fra(), "SYR")]),
                flows(fra(), 1, &[inn(deu(), "SYR", 7)]),
            ],
            &settings(),
        );
        let text = render(&view, &ViewFilter::default(), Format::SdmxCsv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "STRUCTURE,STRUCTURE_ID,ACTION,REF_AREA,COUNTERPART_AREA,FLOW,TIME_PERIOD,CITIZENSHIP,SEX,AGE,OBS_VALUE,OBS_STATUS,CONF_STATUS,LOWER_BOUND,UPPER_BOUND"
        );
        assert_eq!(
            lines[1],
            "dataflow,ACCORD:MIGR_FLOWS(1.0),I,DEU,FRA,OUT,2024,SYR,F,Y20-24,,A,C,,"
        );
        assert_eq!(
            lines[2],
            "dataflow,ACCORD:MIGR_FLOWS(1.0),I,FRA,DEU,IN,2024,SYR,F,Y20-24,7,A,F,,"
        );
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn sdmx_omits_missing_sides() {
        let view = compute(&[flows(deu(), 1, &[out(ita(), "SYR", 9)])], &settings());
        let text = render(&view, &ViewFilter::default(), Format::SdmxCsv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            "dataflow,ACCORD:MIGR_FLOWS(1.0),I,DEU,ITA,OUT,2024,SYR,F,Y20-24,9,A,F,,"
        );
    }

    #[test]
    fn sdmx_gives_each_estimate_its_own_observation_with_its_interval() {
        let mut view = compute(
            &[
                flows(deu(), 1, &[out(fra(), "SYR", 9)]),
                flows(fra(), 1, &[inn(deu(), "SYR", 12)]),
            ],
            &settings(),
        );
        let pair = *view.pairs.keys().next().unwrap();
        view.pairs.get_mut(&pair).unwrap().estimate = Some(super::super::Estimate {
            value: 14,
            lower: 8,
            upper: 25,
        });
        let text = render(&view, &ViewFilter::default(), Format::SdmxCsv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "dataflow,ACCORD:MIGR_FLOWS(1.0),I,DEU,FRA,EST,2024,_T,_T,_T,14,E,F,8,25"
        );
        assert_eq!(lines.len(), 4, "the estimate, then the two reported sides");
        assert!(lines[2..].iter().all(|l| l.ends_with(",,")));
    }

    #[test]
    fn fields_that_need_quotes_get_them() {
        let mut bytes = Vec::new();
        let mut out = Records::new(&mut bytes);
        out.push(&["a,b", "say \"hi\"", "plain", "two\nlines", ""]).unwrap();
        out.finish().unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",plain,\"two\nlines\",\n"
        );
    }
}

//! `view --format json`: one object with `digest` (of the whole view, whatever the filter),
//! `consortium_version` and `consortium_digest` (the version it was computed under), `rule`, `asymmetry_flag`, `rows` (each pair's total, then its rows, with the CSV column names),
//! `side_by_side` and `notes`. Field order is fixed by the structs below, never by a map.

use serde::Serialize;

use super::digest::ppm;
use super::lines::{flow_lines, side_by_side_rows, FlowLine, LineSide};
use super::{hex, View, ViewFilter};

#[derive(Serialize)]
struct Document<'a> {
    digest: String,
    consortium_version: u64,
    consortium_digest: String,
    rule: &'static str,
    asymmetry_flag: f64,
    rows: Vec<Row<'a>>,
    side_by_side: Vec<SideBySideRow<'a>>,
    notes: Vec<NoteRow<'a>>,
}

#[derive(Serialize)]
struct Row<'a> {
    origin: String,
    destination: String,
    period: String,
    citizenship: &'a str,
    sex: &'a str,
    age_band: &'a str,
    sender_reported: Option<u64>,
    sender_status: &'static str,
    receiver_reported: Option<u64>,
    receiver_status: &'static str,
    reconciled: Option<u64>,
    asymmetry: Option<f64>,
    flag: bool,
    rule: &'static str,
    /// The modelled estimate and its 95% interval (SPEC §15); null on detail rows and without
    /// estimates.
    estimate: Option<u64>,
    estimate_lower: Option<u64>,
    estimate_upper: Option<u64>,
    sender_publisher: Option<String>,
    sender_seq: Option<u64>,
    sender_digest: Option<String>,
    receiver_publisher: Option<String>,
    receiver_seq: Option<u64>,
    receiver_digest: Option<String>,
    reconciled_status: &'static str,
    /// Confidential cells a total leaves out; null on detail rows.
    sender_withheld: Option<u64>,
    receiver_withheld: Option<u64>,
    /// Rows a total's reconciled figure leaves out; null on detail rows.
    reconciled_withheld: Option<u64>,
}

#[derive(Serialize)]
struct SideBySideRow<'a> {
    cube: &'static str,
    period: String,
    dimensions: Vec<(&'static str, &'a str)>,
    entries: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    publisher: String,
    reported: Option<u64>,
    status: &'static str,
    seq: u64,
    digest: String,
}

#[derive(Serialize)]
struct NoteRow<'a> {
    origin: Option<String>,
    destination: Option<String>,
    period: Option<String>,
    text: &'a str,
}

pub(super) fn render(view: &View, filter: &ViewFilter) -> String {
    let rule = view.rule.as_str();
    let document = Document {
        digest: hex(&view.digest()),
        consortium_version: view.consortium.version,
        consortium_digest: hex(&view.consortium.digest),
        rule,
        asymmetry_flag: view.asymmetry_flag,
        rows: flow_lines(view, filter).map(|line| row(&line, rule)).collect(),
        side_by_side: side_by_side_rows(view, filter)
            .map(|(key, entries)| SideBySideRow {
                cube: key.cube.as_str(),
                period: key.period.to_string(),
                dimensions: key
                    .cube
                    .dimensions()
                    .iter()
                    .copied()
                    .zip(key.dimensions.iter().map(String::as_str))
                    .collect(),
                entries: entries
                    .iter()
                    .map(|(publisher, entry)| Entry {
                        publisher: publisher.to_string(),
                        reported: entry.reported.value(),
                        status: entry.reported.status(),
                        seq: entry.source.seq,
                        digest: hex(&entry.source.digest),
                    })
                    .collect(),
            })
            .collect(),
        notes: view
            .notes
            .iter()
            .filter(|note| note.pair.is_none_or(|pair| filter.admits_pair(&pair)))
            .map(|note| NoteRow {
                origin: note.pair.map(|p| p.origin.to_string()),
                destination: note.pair.map(|p| p.destination.to_string()),
                period: note.pair.map(|p| p.period.to_string()),
                text: &note.text,
            })
            .collect(),
    };
    // Plain structs with string keys and finite numbers: serialising into a String cannot fail
    // (asymmetries are finite ratios of integers with a positive denominator, and the threshold
    // comes from a validated config). The fallback is still valid JSON.
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".to_string())
}

fn row<'a>(line: &FlowLine<'a>, rule: &'static str) -> Row<'a> {
    let [citizenship, sex, age_band] = line.breakdown_fields();
    let (sender_publisher, sender_seq, sender_digest) = provenance(&line.sender);
    let (receiver_publisher, receiver_seq, receiver_digest) = provenance(&line.receiver);
    Row {
        origin: line.pair.origin.to_string(),
        destination: line.pair.destination.to_string(),
        period: line.pair.period.to_string(),
        citizenship,
        sex,
        age_band,
        sender_reported: line.sender.reported.value(),
        sender_status: line.sender.reported.status(),
        receiver_reported: line.receiver.reported.value(),
        receiver_status: line.receiver.reported.status(),
        reconciled: line.reconciled,
        // The digest's precision (parts per million), so JSON and digest agree.
        asymmetry: line.asymmetry.map(|a| ppm(a) as f64 / 1_000_000.0),
        flag: line.flag,
        rule,
        estimate: line.estimate.map(|e| e.value),
        estimate_lower: line.estimate.map(|e| e.lower),
        estimate_upper: line.estimate.map(|e| e.upper),
        sender_publisher,
        sender_seq,
        sender_digest,
        receiver_publisher,
        receiver_seq,
        receiver_digest,
        reconciled_status: line.reconciled_status,
        sender_withheld: line.sender.withheld,
        receiver_withheld: line.receiver.withheld,
        reconciled_withheld: line.reconciled_withheld,
    }
}

fn provenance(side: &LineSide) -> (Option<String>, Option<u64>, Option<String>) {
    match side.source {
        Some(s) => (Some(s.publisher.to_string()), Some(s.seq), Some(hex(&s.digest))),
        None => (None, None, None),
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::model::{CellValue, Cube};
    use crate::domain::reconcile::test_support::*;
    use crate::domain::reconcile::{compute, hex, render, Format, ViewFilter};

    #[test]
    fn json_has_digest_rule_and_rows() {
        let view = compute(
            &[
                flows(deu(), 1, &[out(fra(), "FRA", 10)]),
                flows(fra(), 1, &[inn(deu(), "FRA", 8)]),
                dataset(
                    ita(),
                    2,
                    Cube::Asylum,
                    year(),
                    vec![cell(&["SYR", "M", "Y20-24"], CellValue::Value(30))],
                ),
            ],
            &settings(),
        );
        let only_flows = ViewFilter {
            cube: Some(Cube::Flows),
            ..ViewFilter::default()
        };
        let parsed: serde_json::Value = serde_json::from_str(&render(&view, &only_flows, Format::Json)).unwrap();
        assert_eq!(parsed["digest"], hex(&view.digest()));
        assert_eq!(parsed["rule"], "receiving");
        let rows = parsed["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["citizenship"], "_T");
        assert_eq!(rows[1]["sender_reported"], 10);
        assert_eq!(rows[1]["receiver_reported"], 8);
        assert_eq!(rows[1]["reconciled"], 8);
        assert_eq!(rows[1]["asymmetry"], -0.2);
        assert_eq!(rows[1]["flag"], false);
        assert_eq!(rows[1]["sender_seq"], 1);
        assert_eq!(rows[1]["sender_withheld"], serde_json::Value::Null);
        assert_eq!(parsed["side_by_side"].as_array().unwrap().len(), 0);

        // The digest is the whole view's, whatever the filter.
        let all: serde_json::Value =
            serde_json::from_str(&render(&view, &ViewFilter::default(), Format::Json)).unwrap();
        assert_eq!(all["digest"], parsed["digest"]);
        let asylum = &all["side_by_side"][0];
        assert_eq!(asylum["cube"], "asylum");
        assert_eq!(asylum["dimensions"][0], serde_json::json!(["citizenship", "SYR"]));
        assert_eq!(asylum["entries"][0]["publisher"], "ITA");
        assert_eq!(asylum["entries"][0]["reported"], 30);
    }

    #[test]
    fn confidential_and_missing_are_null_with_status() {
        let view = compute(&[flows(deu(), 1, &[confidential("OUT", ita(), "SYR")])], &settings());
        let parsed: serde_json::Value =
            serde_json::from_str(&render(&view, &ViewFilter::default(), Format::Json)).unwrap();
        let row = &parsed["rows"][1];
        assert_eq!(row["sender_reported"], serde_json::Value::Null);
        assert_eq!(row["sender_status"], "C");
        assert_eq!(row["receiver_status"], "M");
        assert_eq!(row["receiver_publisher"], serde_json::Value::Null);
        assert_eq!(row["reconciled_status"], "C");
        assert_eq!(row["asymmetry"], serde_json::Value::Null);
        assert!(parsed["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["text"] == "ITA published no flows for 2024: receiver side missing"));
    }
}

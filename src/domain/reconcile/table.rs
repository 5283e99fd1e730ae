//! `view --format table`: aligned text for a terminal. A header line with the rule, threshold
//! and digest; `flows` pairs (each total, then its rows) with `!` on flagged lines; then one
//! side-by-side table per cube and period; then the notes. Confidential shows as `C`, missing as
//! `-`, and a total that leaves out confidential cells carries `*`. With estimates (SPEC §15) the
//! flows table has one more column, each total's estimate and its 95% interval.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::domain::model::Country;
use crate::domain::model::{Cube, Period};

use super::lines::{asymmetry_text, flow_lines, side_by_side_rows, FlowLine, LineSide};
use super::{hex, Reported, SideBySideEntry, SideBySideKey, View, ViewFilter};

type SideBySideRow<'a> = (&'a SideBySideKey, &'a BTreeMap<Country, SideBySideEntry>);

pub(super) fn render(view: &View, filter: &ViewFilter) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail, so the fmt::Results below are ignored on purpose.
    let _ = writeln!(
        out,
        "Common view · rule {} · flag when |asymmetry| > {:.4} · digest {}",
        view.rule.as_str(),
        view.asymmetry_flag,
        hex(&view.digest())
    );

    if filter.shows_flows() {
        let lines = flow_lines(view, filter).collect::<Vec<_>>();
        let _ = writeln!(
            out,
            "\nflows: {} pairs, sender = origin's OUT, receiver = destination's IN",
            view.pairs.keys().filter(|p| filter.admits_pair(p)).count()
        );
        if lines.is_empty() {
            out.push_str("(no rows)\n");
        } else {
            out.push_str(&flows_table(&lines));
            if lines.iter().any(|l| {
                l.sender.withheld.unwrap_or(0) + l.receiver.withheld.unwrap_or(0) + l.reconciled_withheld.unwrap_or(0)
                    > 0
            }) {
                out.push_str("* total leaves out confidential cells\n");
            }
        }
    }

    let mut groups: BTreeMap<(Cube, Period), Vec<SideBySideRow<'_>>> = BTreeMap::new();
    for (key, entries) in side_by_side_rows(view, filter) {
        groups.entry((key.cube, key.period)).or_default().push((key, entries));
    }
    for ((cube, period), rows) in groups {
        let _ = writeln!(out, "\n{cube} {period}: side by side per publisher");
        let publishers: BTreeSet<Country> = rows.iter().flat_map(|(_, entries)| entries.keys().copied()).collect();
        let mut header: Vec<String> = cube.dimensions().iter().map(|d| d.to_string()).collect();
        header.extend(publishers.iter().map(Country::to_string));
        let mut table = vec![header];
        for (key, entries) in rows {
            let mut line = key.dimensions.clone();
            line.extend(publishers.iter().map(|p| match entries.get(p) {
                Some(entry) => cell_text(entry.reported),
                None => "-".to_string(),
            }));
            table.push(line);
        }
        let dims = cube.dimensions().len();
        let right: Vec<bool> = (0..dims + publishers.len()).map(|i| i >= dims).collect();
        out.push_str(&aligned(&table, &right));
    }

    let notes: Vec<_> = view
        .notes
        .iter()
        .filter(|n| n.pair.is_none_or(|p| filter.admits_pair(&p)))
        .collect();
    if !notes.is_empty() {
        out.push_str("\nnotes:\n");
        for note in notes {
            let _ = match note.pair {
                Some(p) => writeln!(out, "  {} → {} {}: {}", p.origin, p.destination, p.period, note.text),
                None => writeln!(out, "  {}", note.text),
            };
        }
    }
    out
}

fn flows_table(lines: &[FlowLine<'_>]) -> String {
    // The modelled estimates (SPEC §15), on total lines, when the consortium asks for them.
    let estimates = lines.iter().any(|l| l.estimate.is_some());
    let header = [
        "!",
        "origin",
        "dest",
        "period",
        "citizenship",
        "sex",
        "age",
        "sender",
        "receiver",
        "reconciled",
        "asymmetry",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    if estimates {
        table[0].push("estimate [95%]".to_string());
    }
    for line in lines {
        let [citizenship, sex, age] = line.breakdown_fields();
        table.push(vec![
            if line.flag { "!" } else { "" }.to_string(),
            line.pair.origin.to_string(),
            line.pair.destination.to_string(),
            line.pair.period.to_string(),
            citizenship.to_string(),
            sex.to_string(),
            age.to_string(),
            side_text(&line.sender),
            side_text(&line.receiver),
            match line.reconciled {
                Some(v) if line.reconciled_withheld.unwrap_or(0) > 0 => format!("{v}*"),
                Some(v) => v.to_string(),
                None if line.reconciled_status == "C" => "C".to_string(),
                None => "-".to_string(),
            },
            asymmetry_text(line.asymmetry),
        ]);
        if estimates {
            let text = line
                .estimate
                .map(|e| format!("{} [{}, {}]", e.value, e.lower, e.upper))
                .unwrap_or_default();
            table.last_mut().expect("a line was pushed").push(text);
        }
    }
    let right: Vec<bool> = (0..header.len() + usize::from(estimates)).map(|i| i >= 7).collect();
    aligned(&table, &right)
}

fn side_text(side: &LineSide) -> String {
    let mut text = cell_text(side.reported);
    if side.withheld.unwrap_or(0) > 0 && side.reported != Reported::Confidential {
        text.push('*');
    }
    text
}

fn cell_text(reported: Reported) -> String {
    match reported {
        Reported::Value(v) => v.to_string(),
        Reported::Confidential => "C".to_string(),
        Reported::Missing => "-".to_string(),
    }
}

/// Pads columns to a common width; `right[i]` right-aligns column `i` (numbers).
fn aligned(table: &[Vec<String>], right: &[bool]) -> String {
    let columns = table.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            table
                .iter()
                .filter_map(|row| row.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::domain::reconcile::test_support::*;
    use crate::domain::reconcile::{compute, hex, render, Format, ViewFilter};

    #[test]
    fn table_marks_flags_confidential_and_missing() {
        let view = compute(
            &[
                flows(
                    deu(),
                    1,
                    &[
                        out(fra(), "FRA", 10),
                        confidential("OUT", fra(), "SYR"),
                        out(ita(), "ITA", 5),
                    ],
                ),
                flows(fra(), 1, &[inn(deu(), "FRA", 4), inn(deu(), "SYR", 6)]),
            ],
            &settings(),
        );
        let text = render(&view, &ViewFilter::default(), Format::Table);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("rule receiving") && lines[0].contains(&hex(&view.digest())),
            "{}",
            lines[0]
        );
        let fields = |prefix: &[&str]| -> Vec<String> {
            let found = lines
                .iter()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|f| {
                    let f = if f.first() == Some(&"!") { &f[1..] } else { &f[..] };
                    f.starts_with(prefix)
                })
                .unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"));
            found.iter().map(|s| s.to_string()).collect()
        };
        // Sender total 10 (one confidential cell left out), receiver 10: not flagged.
        assert_eq!(
            fields(&["DEU", "FRA", "2024", "_T"]),
            ["DEU", "FRA", "2024", "_T", "_T", "_T", "10*", "10", "10", "0.0000"]
        );
        assert_eq!(
            fields(&["DEU", "FRA", "2024", "FRA"]),
            ["!", "DEU", "FRA", "2024", "FRA", "F", "Y20-24", "10", "4", "4", "-0.6000"]
        );
        assert_eq!(
            fields(&["DEU", "FRA", "2024", "SYR"]),
            ["DEU", "FRA", "2024", "SYR", "F", "Y20-24", "C", "6", "6"]
        );
        assert_eq!(
            fields(&["DEU", "ITA", "2024", "ITA"]),
            ["DEU", "ITA", "2024", "ITA", "F", "Y20-24", "5", "-", "5"]
        );
        assert!(text.contains("* total leaves out confidential cells"));
        assert!(text.contains("ITA published no flows for 2024: receiver side missing"));
        assert!(!text.contains("estimate"), "no estimates, no column");

        // With estimates, each total line ends with its estimate and interval.
        let mut view = view;
        let pair = *view.pairs.keys().next().unwrap();
        view.pairs.get_mut(&pair).unwrap().estimate = Some(super::super::Estimate {
            value: 12,
            lower: 7,
            upper: 20,
        });
        let text = render(&view, &ViewFilter::default(), Format::Table);
        let header = text
            .lines()
            .find(|l| l.contains("origin") && l.contains("reconciled"))
            .unwrap();
        assert!(header.trim_end().ends_with("estimate [95%]"), "{header}");
        let total = text.lines().find(|l| l.contains(" _T ")).unwrap();
        assert!(total.trim_end().ends_with("12 [7, 20]"), "{total}");
    }

    #[test]
    fn side_by_side_table_has_a_column_per_publisher() {
        use crate::domain::model::{CellValue, Cube};
        let view = compute(
            &[
                dataset(
                    deu(),
                    1,
                    Cube::Asylum,
                    year(),
                    vec![cell(&["SYR", "M", "Y20-24"], CellValue::Value(40))],
                ),
                dataset(
                    fra(),
                    1,
                    Cube::Asylum,
                    year(),
                    vec![cell(&["SYR", "M", "Y20-24"], CellValue::Confidential)],
                ),
            ],
            &settings(),
        );
        let filter = ViewFilter {
            cube: Some(Cube::Asylum),
            ..ViewFilter::default()
        };
        let text = render(&view, &filter, Format::Table);
        assert!(text.contains("asylum 2024: side by side per publisher"), "{text}");
        let header = text.lines().find(|l| l.starts_with("citizenship")).unwrap();
        assert!(header.ends_with("DEU  FRA"), "{header}");
        let row = text.lines().find(|l| l.starts_with("SYR")).unwrap();
        assert!(row.ends_with("40    C"), "{row}");
        assert!(!text.contains("flows:"));
    }
}

//! Disclosure across publications (SPEC §10), through real nodes: DEU publishes overlapping
//! periods and a revision of a month after a late registration, FRA pulls them, and an analyst
//! at FRA subtracts every combination of the figures exported from FRA's node. No count in
//! (0, k) may come out, and DEU's operator is told which cells were suppressed to prevent it.

use std::collections::BTreeMap;

use accord::model::{CellValue, Period};

use crate::support::cli::{Member, Site};
use crate::support::{eventually_blocking, last_year};

const K: i64 = 5;

/// One immigration record into DEU from FRA: citizenship `citizenship`, sex `sex`, on `date`.
fn record(id: &str, date: &str, citizenship: &str, sex: &str) -> String {
    format!("{id},P-{id},immigration,{date},{citizenship},{citizenship},FRA,{sex},1990,work,24\n")
}

const HEADER: &str = "event_id,person_id,event_type,event_date,citizenship,country_of_birth,partner_country,sex,birth_year,reason,duration_months\n";

/// The figures of one cell across DEU's entries: (entry seq, period months, exact value or
/// `None` for `C`); an absent cell is a published 0.
type Figures = Vec<(u64, u16, Option<i64>)>;

fn months(period: Period) -> u16 {
    period.months().fold(0, |m, month| m | 1 << (month - 1))
}

/// Every combination of the figures with coefficients −1, 0 or 1 whose months form a set (each
/// month counted once or not at all): the set's count, or a change between revisions when no
/// month is left. The first that is a count in (0, k), if any.
fn subtract_everything(figures: &Figures) -> Option<String> {
    let exact: Vec<(u64, u16, i64)> = figures.iter().filter_map(|(s, m, v)| v.map(|v| (*s, *m, v))).collect();
    let n = exact.len();
    let mut pick = vec![0i64; n];
    loop {
        let mut coefficients = [0i64; 12];
        let mut value = 0;
        for (c, (_, m, v)) in pick.iter().zip(&exact) {
            for (i, slot) in coefficients.iter_mut().enumerate() {
                if m & (1 << i) != 0 {
                    *slot += c;
                }
            }
            value += c * v;
        }
        if pick.iter().any(|c| *c != 0)
            && coefficients.iter().all(|c| *c == 0 || *c == 1)
            && value.abs() > 0
            && value.abs() < K
        {
            let used: Vec<String> = pick
                .iter()
                .zip(&exact)
                .filter(|(c, _)| **c != 0)
                .map(|(c, (s, _, v))| format!("{c:+} x seq {s} ({v})"))
                .collect();
            return Some(format!("{} = {value}", used.join(" ")));
        }
        // Next combination, counting in base 3 over {−1, 0, 1}.
        let mut i = 0;
        loop {
            if i == n {
                return None;
            }
            pick[i] = match pick[i] {
                -1 => 0,
                0 => 1,
                _ => -1,
            };
            if pick[i] != -1 {
                break;
            }
            i += 1;
        }
    }
}

fn export_all(site: &Site, fra: &Member, last: u64) -> Vec<(u64, Period, BTreeMap<Vec<String>, CellValue>)> {
    let consortium = accord::consortium::Consortium::load(&site.path("pki/consortium.toml")).expect("consortium");
    (1..=last)
        .map(|seq| {
            let out = format!("deu-{seq}.json");
            site.ok(&format!(
                "export --config {} --publisher DEU --seq {seq} --out {out}",
                fra.config
            ));
            let bytes = std::fs::read(site.path(&out)).expect("export");
            let verified = accord::export::verify_file(&bytes, &consortium).expect("verifies");
            let dataset = verified.dataset().expect("payload").clone();
            let cells = dataset.cells.into_iter().map(|c| (c.key, c.value)).collect();
            (seq, dataset.period, cells)
        })
        .collect()
}

#[test]
fn overlapping_periods_and_revisions_disclose_nothing_to_a_peer() {
    let (site, [deu, fra]) = Site::two_members(31);
    let y = last_year();
    // One small cell (SYR, F): 5 in January, 2 in February, none in March; one large (TUR, M).
    let mut csv = HEADER.to_string();
    for i in 0..5 {
        csv += &record(&format!("S-JAN-{i}"), &format!("{y}-01-1{i}"), "SYR", "F");
    }
    for i in 0..2 {
        csv += &record(&format!("S-FEB-{i}"), &format!("{y}-02-1{i}"), "SYR", "F");
    }
    for (month, n) in [(1, 9), (2, 8), (3, 7)] {
        for i in 0..n {
            csv += &record(
                &format!("T-{month}-{i}"),
                &format!("{y}-{month:02}-0{}", i + 1),
                "TUR",
                "M",
            );
        }
    }
    site.write("deu-records.csv", &csv);
    site.ok(&format!("ingest --config {} deu-records.csv", deu.config));

    // The order of the issue: January, February, Q1, March; then a late registration in
    // January and January again.
    let publish = |period: &str| {
        site.ok(&format!(
            "publish --config {} --cube flows --period {period}",
            deu.config
        ))
        .stdout()
    };
    assert!(!publish(&format!("{y}-01")).contains("protect"));
    // February's small cell and the large one would give the small one exactly beside the
    // published total (10 − 8 = 2): the large one goes out as `C` too.
    let feb = publish(&format!("{y}-02"));
    assert!(
        feb.contains("(3 cells, 2 confidential, 1 of them to protect earlier publications)"),
        "{feb}"
    );
    let q1 = publish(&format!("{y}-Q1"));
    assert!(
        q1.contains("(3 cells, 2 confidential, 2 of them to protect earlier publications)"),
        "{q1}"
    );
    publish(&format!("{y}-03"));
    site.write(
        "late.csv",
        &format!("{HEADER}{}", record("S-JAN-LATE", &format!("{y}-01-25"), "SYR", "F")),
    );
    site.ok(&format!("ingest --config {} late.csv", deu.config));
    let revision = publish(&format!("{y}-01"));
    // The revised small cell (6, one more than published) and the large one beside the total.
    assert!(
        revision.contains("(3 cells, 2 confidential, 2 of them to protect earlier publications)"),
        "{revision}"
    );

    // FRA pulls everything from a running DEU.
    let d = site.start(&deu);
    eventually_blocking("DEU daemon started", || {
        if deu.socket().exists() {
            Ok(())
        } else {
            Err(d.log())
        }
    });
    site.ok(&format!("sync --config {}", fra.config));
    let entries = export_all(&site, &fra, 5);

    let keys: std::collections::BTreeSet<Vec<String>> =
        entries.iter().flat_map(|(_, _, c)| c.keys().cloned()).collect();
    assert_eq!(keys.len(), 3, "two cells and the table's total: {keys:?}");
    for key in &keys {
        let figures: Figures = entries
            .iter()
            .map(|(seq, period, cells)| {
                let value = match cells.get(key) {
                    None => Some(0),
                    Some(CellValue::Value(v)) => Some(*v as i64),
                    Some(CellValue::Confidential) => None,
                };
                (*seq, months(*period), value)
            })
            .collect();
        assert_eq!(subtract_everything(&figures), None, "{key:?}: {figures:?}");
    }
    // The small cell is C in Q1 and in the revised January.
    let syr = keys.iter().find(|k| k.contains(&"SYR".to_string())).expect("SYR cell");
    assert_eq!(entries[2].2.get(syr), Some(&CellValue::Confidential));
    assert_eq!(entries[4].2.get(syr), Some(&CellValue::Confidential));
    // Where the total is exact, the large cell goes out as `C` beside the small one, so the
    // total minus the exact cells never leaves one confidential cell alone. The revised
    // January's total (one more than the first) is itself `C`.
    let tur = keys.iter().find(|k| k.contains(&"TUR".to_string())).expect("TUR cell");
    let total = keys.iter().find(|k| k.contains(&"_T".to_string())).expect("total");
    for (seq, period, cells) in &entries {
        if let Some(CellValue::Value(_)) = cells.get(total) {
            let confidential = cells
                .iter()
                .filter(|(k, v)| *k != total && **v == CellValue::Confidential)
                .count();
            assert_ne!(confidential, 1, "seq {seq} {period}: {cells:?}");
        }
    }
    assert_eq!(entries[2].2.get(tur), Some(&CellValue::Confidential));
    assert_eq!(entries[4].2.get(total), Some(&CellValue::Confidential));

    // Without the audit, the same figures would have given February away: the attacker is real.
    let unaudited: Figures = vec![
        (1, 0b001, Some(5)),
        (2, 0b010, None),
        (3, 0b111, Some(7)),
        (4, 0b100, Some(0)),
    ];
    assert!(subtract_everything(&unaudited).is_some_and(|s| s.ends_with("= 2")));
    let revised: Figures = vec![(1, 0b001, Some(5)), (5, 0b001, Some(6))];
    assert!(subtract_everything(&revised).is_some_and(|s| s.ends_with("= 1")));
}

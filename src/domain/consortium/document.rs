//! The canonical encoding of a consortium document and its digest. The encoding is TOML that
//! `consortium.toml` parsing reads back to the same document: fixed key order, members sorted by
//! code, each member's keys sorted by (`valid_from`, `public_key`), times as
//! `YYYY-MM-DDTHH:MM:SSZ`, no comments. So comments, spacing and order in the file a member
//! edits never change the digest, and `accord consortium --format toml | sha256sum` prints it.

use std::fmt::Write;

use ring::digest::{digest as sha256, SHA256};

use crate::domain::consortium::{Consortium, Disclosure};
use crate::domain::date::format_timestamp;
use crate::domain::hex;

/// A TOML string literal (escaped as the TOML spec requires).
fn string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// A TOML float that reads back to the same `f64`.
fn float(value: f64) -> String {
    toml::Value::Float(value).to_string()
}

/// The canonical TOML of `consortium` (see the module documentation).
pub fn canonical_toml(consortium: &Consortium) -> String {
    // Writing to a String cannot fail.
    let mut out = String::new();
    let _ = writeln!(out, "name = {}", string(&consortium.name));
    let _ = writeln!(out, "test_only = {}", consortium.test_only);
    let d = &consortium.definition;
    let _ = writeln!(out, "\n[definitions]");
    let _ = writeln!(out, "min_duration_months = {}", d.min_duration_months);
    let _ = writeln!(out, "unknown_duration = {}", string(d.unknown_duration.as_str()));
    let _ = writeln!(out, "\n[disclosure]");
    let _ = writeln!(out, "method = {}", string(consortium.disclosure.method()));
    match consortium.disclosure {
        Disclosure::Threshold { k } => {
            let _ = writeln!(out, "threshold = {k}");
        }
        Disclosure::CellKey {
            max_noise,
            variance,
            small_count,
        } => {
            let _ = writeln!(out, "max_noise = {max_noise}");
            let _ = writeln!(out, "variance = {}", float(variance));
            let _ = writeln!(out, "small_count = {small_count}");
        }
        Disclosure::None => {}
    }
    let r = &consortium.reconcile;
    let _ = writeln!(out, "\n[reconcile]");
    let _ = writeln!(out, "rule = {}", string(r.rule.as_str()));
    let _ = writeln!(out, "asymmetry_flag = {}", float(r.asymmetry_flag));
    let _ = writeln!(out, "\n[governance]");
    let _ = writeln!(out, "quorum = {}", string(consortium.quorum.as_str()));
    let _ = writeln!(out, "\n[sharing]");
    let _ = writeln!(out, "default = {}", string(consortium.sharing.as_str()));
    for a in &consortium.agreements {
        let list = |items: Vec<&str>| format!("[{}]", items.into_iter().map(string).collect::<Vec<_>>().join(", "));
        let _ = writeln!(out, "\n[[agreements]]");
        let _ = writeln!(out, "name = {}", string(&a.name));
        let _ = writeln!(
            out,
            "parties = {}",
            list(a.parties.iter().map(|p| p.as_str()).collect())
        );
        let _ = writeln!(out, "cubes = {}", list(a.cubes.iter().map(|c| c.as_str()).collect()));
        let _ = writeln!(out, "from = {}", string(&format_timestamp(a.from)));
        let _ = writeln!(out, "until = {}", string(&format_timestamp(a.until)));
    }
    // Written only when present, so documents without forks keep the digests they had.
    let mut forks: Vec<_> = consortium.forks.iter().collect();
    forks.sort_by_key(|f| (f.publisher, f.seq));
    for f in forks {
        let _ = writeln!(out, "\n[[forks]]");
        let _ = writeln!(out, "publisher = {}", string(f.publisher.as_str()));
        let _ = writeln!(out, "seq = {}", f.seq);
        let _ = writeln!(out, "keep = {}", string(&hex::encode(&f.keep)));
    }
    // Written only when declared, so documents from before estimates keep their digests.
    if !consortium.estimates.is_default() {
        let e = &consortium.estimates;
        let _ = writeln!(out, "\n[estimates]");
        let _ = writeln!(out, "method = {}", string(e.method.as_str()));
        let reference: Vec<String> = e.reference.iter().map(|c| string(c.as_str())).collect();
        let _ = writeln!(out, "reference = [{}]", reference.join(", "));
    }
    let mut members: Vec<_> = consortium.members.iter().collect();
    members.sort_by_key(|m| m.country);
    for member in members {
        let _ = writeln!(out, "\n[[members]]");
        let _ = writeln!(out, "country = {}", string(member.country.as_str()));
        if !member.measurement.is_default() {
            let _ = writeln!(out, "\n[members.measurement]");
            for (name, r) in [
                ("emigration", member.measurement.emigration),
                ("immigration", member.measurement.immigration),
            ] {
                let _ = writeln!(out, "{name}_undercount = {}", string(r.undercount.as_str()));
                let _ = writeln!(out, "{name}_accuracy = {}", string(r.accuracy.as_str()));
                let _ = writeln!(out, "{name}_duration_months = {}", r.duration_months);
            }
        }
        let mut keys: Vec<_> = member.keys.iter().collect();
        keys.sort_by_key(|k| (k.valid_from, k.public_key));
        for key in keys {
            let _ = writeln!(out, "\n[[members.keys]]");
            let _ = writeln!(out, "public_key = {}", string(&hex::encode(&key.public_key)));
            let _ = writeln!(out, "valid_from = {}", string(&format_timestamp(key.valid_from)));
            if let Some(until) = key.valid_until {
                let _ = writeln!(out, "valid_until = {}", string(&format_timestamp(until)));
            }
            if let Some(last) = key.retired_after_seq {
                let _ = writeln!(out, "retired_after_seq = {last}");
            }
        }
    }
    out
}

/// SHA-256 of [`canonical_toml`]: the document's digest.
pub fn digest(consortium: &Consortium) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(sha256(&SHA256, canonical_toml(consortium).as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const FILE: &str = r#"
# the example consortium, as an operator might have typed it
name = "accord \"example\""
test_only = true
[reconcile]
asymmetry_flag = 0.15
rule = "mean"
[sharing]
default = "agreements"
[[agreements]]
name = "DEU-FRA flows"
parties = ["FRA", "DEU", "FRA"]
cubes = ["flows"]
from = "2026-01-01"
until = "2027-01-01"
[disclosure]
method = "cell-key"
variance = 0.3
max_noise = 3
[[members]]
country = "FRA"
[[members.keys]]
public_key = "f7b82653056be2d5bebc09ddb1b7dae45cf53c5c4342d60443ec8d64aa846156"
valid_from = "2026-11-29"
valid_until = "2036-11-26T12:00:00Z"
[[members]]
country = "DEU"
[[members.keys]]
public_key = "8a710249e643058a6d35bdeaa504367c189058bbbb080ff7817f56ef78daa5f7"
valid_from = "2027-01-01"
[[members.keys]]
public_key = "b405295d4b0df61b32353a582925e7f438861c33a19d1560826b3d3833d9f340"
valid_from = "2026-11-29"
valid_until = "2027-01-01"
retired_after_seq = 41
"#;

    fn parse(text: &str) -> Consortium {
        Consortium::parse(Path::new("consortium.toml"), text).unwrap()
    }

    #[test]
    fn the_canonical_form_reads_back_to_the_same_document_and_is_a_fixed_point() {
        let parsed = parse(FILE);
        let canonical = canonical_toml(&parsed);
        let again = parse(&canonical);
        assert_eq!(canonical_toml(&again), canonical);
        assert_eq!(digest(&again), digest(&parsed));
        // Same members, keys and settings; only the order is canonical.
        assert_eq!(again.name, parsed.name);
        assert_eq!(again.disclosure, parsed.disclosure);
        assert_eq!(again.reconcile, parsed.reconcile);
        let codes: Vec<_> = again.members.iter().map(|m| m.country.to_string()).collect();
        assert_eq!(codes, ["DEU", "FRA"]);
        let deu = again
            .member(crate::domain::model::Country::parse("DEU").unwrap())
            .unwrap();
        assert!(
            deu.keys[0].valid_from < deu.keys[1].valid_from,
            "keys sorted by valid_from"
        );
        for member in &parsed.members {
            let mut keys = member.keys.clone();
            keys.sort_by_key(|k| (k.valid_from, k.public_key));
            assert_eq!(again.member(member.country).unwrap().keys, keys);
        }
        assert!(
            canonical.starts_with("name = 'accord \"example\"'\ntest_only = true\n"),
            "{canonical}"
        );
    }

    #[test]
    fn comments_spacing_and_order_do_not_change_the_digest_and_any_setting_does() {
        let base = digest(&parse(FILE));
        let reordered = FILE.replace("# the example consortium, as an operator might have typed it\n", "\n\n");
        assert_eq!(digest(&parse(&reordered)), base);
        for (from, to) in [
            ("asymmetry_flag = 0.15", "asymmetry_flag = 0.150001"),
            ("rule = \"mean\"", "rule = \"max\""),
            ("rule = \"mean\"", "rule = \"mean\"\n[governance]\nquorum = \"all\""),
            ("max_noise = 3", "max_noise = 4"),
            ("retired_after_seq = 41", "retired_after_seq = 42"),
            ("default = \"agreements\"", "default = \"all\""),
            ("cubes = [\"flows\"]", "cubes = [\"flows\", \"asylum\"]"),
            ("until = \"2027-01-01\"", "until = \"2027-01-02\""),
            (
                "valid_until = \"2036-11-26T12:00:00Z\"",
                "valid_until = \"2036-11-26T12:00:01Z\"",
            ),
            (
                "test_only = true",
                "test_only = true\n[definitions]\nmin_duration_months = 6",
            ),
            ("name = \"accord \\\"example\\\"\"", "name = \"accord\""),
        ] {
            let changed = FILE.replace(from, to);
            assert_ne!(changed, FILE, "{from}");
            assert_ne!(digest(&parse(&changed)), base, "{from} -> {to}");
        }
    }

    const KEEP: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    #[test]
    fn a_kept_branch_is_part_of_the_document_and_its_digest_and_reads_back() {
        let base = parse(FILE);
        let with = format!("{FILE}[[forks]]\npublisher = \"DEU\"\nseq = 3\nkeep = \"{KEEP}\"\n");
        let parsed = parse(&with);
        let deu = crate::domain::model::Country::parse("DEU").unwrap();
        assert_eq!(parsed.branch_kept(deu, 3), Some([1; 32]));
        assert_eq!(parsed.branch_kept(deu, 2), None);
        assert_ne!(digest(&parsed), digest(&base));
        let canonical = canonical_toml(&parsed);
        assert!(canonical.contains(&format!("[[forks]]\npublisher = \"DEU\"\nseq = 3\nkeep = \"{KEEP}\"\n")));
        assert_eq!(canonical_toml(&parse(&canonical)), canonical);
        // A document without forks writes no forks section: its digest is the one it had.
        assert!(!canonical_toml(&base).contains("forks"));
    }

    #[test]
    fn a_kept_branch_that_is_not_well_formed_is_refused_naming_the_field() {
        for (fork, field) in [
            (
                format!("publisher = \"XX\"\nseq = 1\nkeep = \"{KEEP}\""),
                "forks[0].publisher",
            ),
            (
                format!("publisher = \"DEU\"\nseq = 0\nkeep = \"{KEEP}\""),
                "forks[0].seq",
            ),
            (
                "publisher = \"DEU\"\nseq = 1\nkeep = \"0101\"".to_string(),
                "forks[0].keep",
            ),
        ] {
            let text = format!("{FILE}[[forks]]\n{fork}\n");
            let error = Consortium::parse(Path::new("consortium.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{error}");
        }
        let twice = format!("{FILE}[[forks]]\npublisher = \"DEU\"\nseq = 1\nkeep = \"{KEEP}\"\n[[forks]]\npublisher = \"DEU\"\nseq = 1\nkeep = \"{KEEP}\"\n");
        let error = Consortium::parse(Path::new("consortium.toml"), &twice)
            .unwrap_err()
            .to_string();
        assert!(error.contains("a second branch for DEU seq 1"), "{error}");
    }

    #[test]
    fn estimates_and_measurement_classes_are_part_of_the_document_and_checked() {
        let base = parse(FILE);
        assert!(base.estimates.is_default() && base.members.iter().all(|m| m.measurement.is_default()));
        let canonical_base = canonical_toml(&base);
        assert!(!canonical_base.contains("estimates") && !canonical_base.contains("measurement"));
        let with = FILE.replace(
            "[[members]]\ncountry = \"DEU\"\n",
            "[[members]]\ncountry = \"DEU\"\n[members.measurement]\nemigration_undercount = \"high\"\nimmigration_duration_months = 3\n",
        ) + "[estimates]\nmethod = \"imem-lite\"\nreference = [\"FRA\", \"DEU\"]\n";
        let parsed = parse(&with);
        let deu = parsed
            .member(crate::domain::model::Country::parse("DEU").unwrap())
            .unwrap();
        assert_eq!(
            deu.measurement.emigration.undercount,
            crate::domain::consortium::Undercount::High
        );
        assert_eq!(deu.measurement.immigration.duration_months, 3);
        assert_eq!(
            deu.measurement.immigration.undercount,
            crate::domain::consortium::Undercount::Medium
        );
        assert_eq!(
            parsed.estimates.method,
            crate::domain::consortium::EstimateMethod::ImemLite
        );
        let codes: Vec<String> = parsed.estimates.reference.iter().map(|c| c.to_string()).collect();
        assert_eq!(codes, ["DEU", "FRA"], "sorted");
        let canonical = canonical_toml(&parsed);
        assert_eq!(canonical_toml(&parse(&canonical)), canonical, "a fixed point");
        assert_eq!(digest(&parse(&canonical)), digest(&parsed));
        assert_ne!(digest(&parsed), digest(&base));
        let other_class = with.replace("emigration_undercount = \"high\"", "emigration_undercount = \"low\"");
        assert_ne!(
            digest(&parse(&other_class)),
            digest(&parsed),
            "a class is part of the digest"
        );

        for (from, to, field) in [
            ("method = \"imem-lite\"", "method = \"imem\"", "estimates.method"),
            (
                "reference = [\"FRA\", \"DEU\"]",
                "reference = [\"FRA\", \"POL\"]",
                "estimates.reference[1]",
            ),
            (
                "reference = [\"FRA\", \"DEU\"]",
                "reference = [\"FRA\", \"FRA\"]",
                "estimates.reference[1]",
            ),
            (
                "emigration_undercount = \"high\"",
                "emigration_undercount = \"huge\"",
                "members[1].measurement.emigration_undercount",
            ),
            (
                "immigration_duration_months = 3",
                "immigration_duration_months = 24",
                "members[1].measurement.immigration_duration_months",
            ),
            (
                "immigration_duration_months = 3",
                "immigration_accuracy = \"medium\"",
                "members[1].measurement.immigration_accuracy",
            ),
            (
                "immigration_duration_months = 3",
                "immigration_coverage = 0.5",
                "immigration_coverage",
            ),
        ] {
            let text = with.replace(from, to);
            assert_ne!(text, with, "{from}");
            let error = Consortium::parse(Path::new("consortium.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{to}: {error}");
        }
    }
}

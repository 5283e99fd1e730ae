//! What the operator reads: the text of every node command's result (`status`, `sync`,
//! `publish`, `check`, and in [`lines`] the one-line confirmations of the others), rendered from
//! the typed results of [`node::Operations`](crate::node::Operations). The one place the output
//! of node commands is built; the CLI and the demo print what it returns. (The tools' commands,
//! `certs` and `synth`, which sit above the shells, say their one line in the CLI.)

pub mod lines;

pub use lines::*;

use crate::io::store::CheckReport;
use crate::node::{PeerPull, Published, Status};

/// One line on a publish.
pub fn published_line(p: &Published) -> String {
    let suppressed = match p.suppressed {
        0 => String::new(),
        n => format!(", {n} of them to protect earlier publications"),
    };
    format!(
        "published {} {} {} as seq {} ({} cells, {} confidential{suppressed}), digest {}\n",
        p.publisher,
        p.cube,
        p.period,
        p.seq,
        p.cells,
        p.confidential,
        crate::domain::hex::encode(&p.digest)
    )
}

/// A sync round, one line per peer, and the one-line reason when a peer failed.
pub fn sync_text(pulls: &[PeerPull]) -> (String, Option<String>) {
    let mut text = String::new();
    let mut failures = Vec::new();
    for pull in pulls {
        let peer = pull.peer;
        match &pull.error {
            None => {
                text.push_str(&format!("{peer}: {} new entries", pull.appended));
                if pull.forks > 0 {
                    text.push_str(&format!(", {} FORKS detected", pull.forks));
                }
                if pull.gaps > 0 {
                    text.push_str(&format!(", {} feeds with gaps", pull.gaps));
                }
                for r in &pull.rejected {
                    text.push_str(&format!("\n  rejected: {r}"));
                }
                let unlisted = pull.rejected_total.saturating_sub(pull.rejected.len() as u64);
                if unlisted > 0 {
                    text.push_str(&format!("\n  rejected: {unlisted} more, not listed"));
                }
            }
            Some(detail) => {
                failures.push(format!("{peer}: {detail}"));
                text.push_str(&format!("{peer}: failed: {detail}"));
            }
        }
        text.push('\n');
    }
    if pulls.is_empty() {
        text.push_str("no peers configured\n");
    }
    // One line for stderr: how many peers failed, and the first one's error.
    let reason = failures.first().map(|first| {
        format!(
            "sync failed with {} of {} peers; {}",
            failures.len(),
            pulls.len(),
            first.replace('\n', " ")
        )
    });
    (text, reason)
}

/// The check report as text, and whether it found differences.
pub fn check_text(report: &CheckReport) -> (String, Option<String>) {
    if report.differences.is_empty() {
        return (
            format!(
                "aggregates agree with {} records ({} cells)\n",
                report.records, report.cells
            ),
            None,
        );
    }
    let mut t = format!(
        "{} differences between records and aggregates:\n",
        report.differences.len()
    );
    for d in &report.differences {
        t.push_str(d);
        t.push('\n');
    }
    let reason = format!(
        "check found {} differences between the records and the aggregates (listed on stdout)",
        report.differences.len()
    );
    (t, Some(reason))
}

/// `status --format json`.
pub fn status_json(status: &Status) -> String {
    serde_json::to_string_pretty(status).unwrap_or_default()
}

/// One governance act as `verify` names it.
pub fn governance_line(g: &crate::domain::dataset::Governance) -> String {
    match g {
        crate::domain::dataset::Governance::Proposal { version, parent, .. } => {
            format!(
                "proposes version {version} after the version with digest {}",
                crate::domain::hex::encode(parent)
            )
        }
        crate::domain::dataset::Governance::Approval { version, digest } => {
            format!(
                "approves version {version} with digest {}",
                crate::domain::hex::encode(digest)
            )
        }
    }
}

/// `status` as text.
pub fn status_text(status: &Status) -> String {
    let mut s = format!("country      {}\nconsortium   {}", status.country, status.consortium);
    if status.test_only {
        s.push_str("  (TEST ONLY: not for real data)");
    }
    s.push_str(&format!("\ndisclosure   {}\nrecords     ", status.disclosure));
    for (t, n) in &status.records {
        s.push_str(&format!(" {t}={n}"));
    }
    s.push_str(&format!(
        "\nversion      {} (consortium digest {})",
        status.consortium_version, status.consortium_digest
    ));
    for e in &status.governance_equivocations {
        s.push_str(&format!("\n  EQUIVOCATION (governance): {e}"));
    }
    for p in &status.proposals {
        s.push_str(&format!(
            "\n  proposed   version {} by {} (digest {}), approved by {}",
            p.version,
            p.proposer,
            p.digest,
            if p.approvals.is_empty() {
                "nobody yet".to_string()
            } else {
                p.approvals.join(", ")
            }
        ));
    }
    s.push_str(&format!(
        "\nstore        {} bytes\nview digest  {}{}\nattested by  {}\nfeeds",
        status.store_bytes,
        status.view_digest,
        if status.view_current {
            ""
        } else {
            " (being updated: entries accepted since)"
        },
        if status.attested_by.is_empty() {
            "(nobody yet)".to_string()
        } else {
            status.attested_by.join(", ")
        }
    ));
    if status.feeds.is_empty() {
        s.push_str("        (none)");
    }
    for f in &status.feeds {
        s.push_str(&format!("\n  {} seq {} digest {}", f.publisher, f.seq, f.digest));
    }
    s.push_str("\npeers");
    if status.peers.is_empty() {
        s.push_str("        (none)");
    }
    for p in &status.peers {
        s.push_str(&format!(
            "\n  {} {} last success {} entries {}",
            p.country,
            p.endpoint,
            p.last_success.as_deref().unwrap_or("never"),
            p.entries_received
        ));
        if let Some(e) = &p.last_error {
            s.push_str(&format!("\n    last error: {e}"));
        }
    }
    for e in &status.expiring {
        s.push_str(&format!("\nWARNING: {e}"));
    }
    if !status.left_out.is_empty() {
        s.push_str("\nleft out of the view (no longer verify under the consortium in force)");
        for l in &status.left_out {
            s.push_str(&format!("\n  {l}"));
        }
    }
    s.push_str("\nforks");
    if status.forks.is_empty() {
        s.push_str("        (none)");
    }
    for f in &status.forks {
        s.push_str(&format!(
            "\n  EQUIVOCATION: {} seq {}: held {} conflicting {}",
            f.publisher, f.seq, f.held, f.conflicting
        ));
    }
    if !status.measurement.is_empty() {
        s.push_str("\nmeasurement (estimates, SPEC §15)");
    }
    for m in &status.measurement {
        s.push_str(&format!(
            "\n  {} {:<11} declared {} undercount, {} accuracy, {} months (R {}){}; coverage {:.3} [{:.3}, {:.3}], fits {}{}",
            m.member,
            m.direction,
            m.declared_undercount,
            m.accuracy,
            m.duration_months,
            m.duration_factor,
            if m.reference { ", reference" } else { "" },
            m.coverage,
            m.coverage_lower,
            m.coverage_upper,
            m.fitted_undercount,
            if m.compared > 0 {
                format!(" ({} pairs against the reference)", m.compared)
            } else {
                String::new()
            }
        ));
    }
    s.push('\n');
    s
}

/// `accord verify` of a certified view: the members that attested it, and each entry's
/// witnessed time.
pub fn certified(r: &crate::io::certify::Report) -> String {
    use crate::domain::date::format_timestamp;
    let mut out = format!(
        "valid: view {} under consortium version {} ({}), certified by {}\n",
        crate::domain::hex::encode(&r.view_digest),
        r.consortium_version,
        &crate::domain::hex::encode(&r.consortium_digest)[..16],
        r.certified_by
    );
    out.push_str(&format!(
        "attested by {} members: {}\n",
        r.attested.len(),
        r.attested
            .iter()
            .map(|a| format!("{} at {}", a.member, format_timestamp(a.time)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(if r.document_is_trusted {
        "consortium document: the consortium file given\n"
    } else {
        "consortium document: NOT the consortium file given; the attesting members vouch for it\n"
    });
    out.push_str(&format!(
        "view files: {} recomputed from {} signed entries, identical\n",
        r.view_files,
        r.entries.len()
    ));
    for e in &r.entries {
        let witnessed = match &e.witness {
            Some(w) => format!("witnessed by {} at {}", w.member, format_timestamp(w.time)),
            None => "not witnessed by another member in this bundle".to_string(),
        };
        out.push_str(&format!(
            "entry {} seq {} {} {}: created {}, {witnessed}\n",
            e.publisher,
            e.seq,
            e.cube,
            e.period,
            format_timestamp(e.created_at)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Country;

    #[test]
    fn a_pull_with_more_refusals_than_kept_says_how_many_more() {
        let pull = PeerPull {
            rejected: vec!["head for unknown publisher \"ZZZ\"".into(); 64],
            rejected_total: 10_000,
            ..PeerPull::new(Country::parse("FRA").unwrap())
        };
        let (text, failure) = sync_text(&[pull]);
        assert!(failure.is_none());
        assert_eq!(text.lines().count(), 2 + 64, "{text}");
        assert!(text.contains("rejected: 9936 more, not listed"), "{text}");
    }

    #[test]
    fn a_failed_peer_gives_the_one_line_reason() {
        let ok = PeerPull {
            appended: 2,
            ..PeerPull::new(Country::parse("FRA").unwrap())
        };
        let down = PeerPull {
            error: Some("connection refused\nretry".into()),
            ..PeerPull::new(Country::parse("ITA").unwrap())
        };
        let (text, failure) = sync_text(&[ok, down]);
        assert_eq!(text, "FRA: 2 new entries\nITA: failed: connection refused\nretry\n");
        assert_eq!(
            failure.as_deref(),
            Some("sync failed with 1 of 2 peers; ITA: connection refused retry")
        );
    }
}

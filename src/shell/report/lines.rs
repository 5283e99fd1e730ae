//! The one-line confirmations of the node's commands (ingest, publish, propose, approve, export,
//! backup, certify, restore, migrate, rebuild) and the notes printed beside a view: each a
//! function of the typed result, so the CLI only prints.

use std::path::Path;

use crate::domain::dataset::VerifiedEntry;
use crate::domain::reconcile::Format;
use crate::io::ingest::FileReport;
use crate::io::store::{BackupSummary, Migrated, Rebuilt};
use crate::node::{CertifySummary, ConsortiumVersion, Restored};

/// A file stored, in `secs` seconds.
pub fn ingested(file: &Path, report: &FileReport, secs: f64) -> String {
    let outcome = report.outcome;
    let mut line = format!(
        "{}: stored {} records ({} replaced earlier ones) in {:.1} s, {:.0} records/s",
        file.display(),
        outcome.stored,
        outcome.replaced,
        secs,
        outcome.stored as f64 / secs.max(1e-9)
    );
    if let Some(r) = &report.rejected_file {
        line.push_str(&format!(
            "; {} rejected rows written to {}",
            report.rejected,
            r.display()
        ));
    }
    line
}

/// A file refused whole, with why.
pub fn ingest_rejected(file: &Path, reason: &str) -> String {
    format!("{}: rejected, nothing stored: {reason}", file.display())
}

/// After a publish on the store alone.
pub const PUBLISHED_OFFLINE: &str = "(no node running: peers receive it at their next sync with this node's daemon)";

/// After `status` on the store alone.
pub const STATUS_OFFLINE: &str = "node         not running (store opened directly)";

/// Before a CSV view of every cube: which one it shows.
pub fn view_cube_note(format: Format) -> String {
    format!(
        "note: {} shows flows; --cube asylum or --cube permits for the others",
        format.as_str()
    )
}

/// A stored entry left out of the view.
pub fn left_out_note(entry: &str) -> String {
    format!("note: left out of the view (no longer verifies under the consortium in force): {entry}")
}

/// The line above a consortium document (on stderr, so stdout is the document alone).
pub fn consortium_header(c: &ConsortiumVersion) -> String {
    format!(
        "# consortium version {} ({}), digest {}, {}",
        c.version,
        if c.version == c.in_force {
            "in force".to_string()
        } else {
            format!("version {} is in force", c.in_force)
        },
        c.digest,
        match &c.proposer {
            None => "genesis".to_string(),
            Some(p) => format!("proposed by {p}, approved by {}", c.approvals.join(", ")),
        }
    )
}

/// A proposal made; `in_force` is the version in force after it.
pub fn proposed(version: u64, digest: &[u8; 32], in_force: u64) -> String {
    let digest = crate::domain::hex::encode(digest);
    if in_force == version {
        format!("proposed version {version} (digest {digest}): in force now, the proposal alone is a quorum")
    } else {
        format!(
            "proposed version {version} (digest {digest}); version {in_force} stays in force until a quorum of its members approves: accord approve --version {version} --digest {digest}"
        )
    }
}

/// An approval given.
pub fn approved(version: u64, digest: &[u8; 32], in_force: u64) -> String {
    format!(
        "approved version {version} (digest {}); version {in_force} is in force",
        crate::domain::hex::encode(digest)
    )
}

/// An entry exported to `out`.
pub fn exported(publisher: crate::domain::model::Country, seq: u64, out: &Path) -> String {
    format!("wrote {publisher} seq {seq} to {}", out.display())
}

/// An exported entry checked offline.
pub fn export_valid(v: &VerifiedEntry) -> String {
    let h = v.header();
    let what = match h.dataset() {
        Some((cube, period)) => format!("{cube} {period}"),
        None => h.subject.kind().to_string(),
    };
    format!(
        "valid: {} seq {} {what} created {} digest {}{}",
        h.publisher,
        h.seq,
        crate::domain::date::format_timestamp(h.created_at),
        crate::domain::hex::encode(&v.digest()),
        match (v.dataset(), v.governance()) {
            (Some(d), _) => format!(", payload verified ({} cells)", d.cells.len()),
            (None, Some(g)) => format!(", {}", super::governance_line(g)),
            (None, None) => ", header only (payload not included)".to_string(),
        }
    )
}

/// A backup written to `out`.
pub fn backed_up(s: &BackupSummary, out: &Path) -> String {
    format!(
        "backed up {} keys ({} bytes) to {}: mode 0600, it holds the node secret and pseudonymised records; keep it as you keep the signing key",
        s.keys,
        s.bytes,
        out.display()
    )
}

/// A certified bundle written to `out`.
pub fn certify_written(s: &CertifySummary, out: &Path) -> String {
    format!(
        "certified view {} in {}: {} files, {} entries, attested by {} ({}), {} witnessing attestations",
        crate::domain::hex::encode(&s.view_digest),
        out.display(),
        s.written.files,
        s.written.entries,
        s.attested_by.len(),
        s.attested_by.join(", "),
        s.written.witnesses
    )
}

/// A backup restored from `file` into `data_dir`, with the migration it needed, if any.
pub fn restored(r: &Restored, file: &Path, data_dir: &Path) -> String {
    let mut text = String::new();
    if let Some(from) = r.migrated_from {
        text.push_str(&format!(
            "migrated the restored store from format {from} to format {}\n",
            crate::io::store::FORMAT_VERSION
        ));
    }
    text.push_str(&format!(
        "restored {} keys ({} bytes) from {} into {}; {} entries verified again ({} left out under the consortium in force)",
        r.keys,
        r.bytes,
        file.display(),
        data_dir.display(),
        r.entries,
        r.left_out
    ));
    text
}

/// `check --migrate`: what it did, one line per step.
pub fn migrated(m: Option<&Migrated>) -> String {
    let Some(m) = m else {
        return format!(
            "the store already has format {}; nothing to migrate",
            crate::io::store::FORMAT_VERSION
        );
    };
    let mut text = String::new();
    if let Some(backup) = &m.backup {
        text.push_str(&format!(
            "backed up the format {} store to {} (restore it with `accord restore` into an empty data_dir to undo)\n",
            m.from,
            backup.display()
        ));
    }
    text.push_str(&format!(
        "migrated the store from format {} to format {} ({} values rewritten)",
        m.from, m.to, m.rewritten
    ));
    text
}

/// `check --rebuild`: what it did.
pub fn rebuilt(r: Option<&Rebuilt>) -> String {
    match r {
        Some(r) => format!(
            "rebuilt {} aggregate cells from {} records: {} (was {})",
            r.cells, r.records, r.to, r.from
        ),
        None => "aggregates already follow the consortium's definition; nothing to rebuild".to_string(),
    }
}

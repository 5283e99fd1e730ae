//! Reloading on SIGHUP: `node.toml`'s `[tls]` section is read again, with the files it names,
//! and put in use for new connections both ways; established connections whose client
//! certificate the new CA or CRLs refuse are closed (`tls::incoming_reloadable` checks each
//! again), and outgoing clients are dropped so the next pull dials under the new files. All of
//! `[tls]` loads or none of it is applied: a `node.toml` that does not parse, a file missing or
//! unusable leaves the settings in use as they were, and the log names what was refused. The
//! log names each change (`crls: added pki/crl.pem`). Keys outside `[tls]` are never applied
//! here: a change to one is named as taking effect on restart. This module parses no
//! configuration (that is `config`) and builds no TLS configuration (that is `tls`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::io::exchange::Syncer;
use crate::io::tls::{ServerTls, TlsFiles};
use crate::node::Node;

/// The TLS files in use and a digest of what each held when loaded, so a reload can say which
/// changed even when its path did not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InUse {
    files: TlsFiles,
    digests: BTreeMap<PathBuf, [u8; 32]>,
}

impl InUse {
    /// Reads the files' digests now (an unreadable file has none; loading it has failed or
    /// will fail anyway, with its own message).
    fn read(files: TlsFiles) -> InUse {
        let paths = [&files.ca, &files.cert, &files.key].into_iter().chain(&files.crls);
        let digests = paths
            .filter_map(|p| {
                let bytes = std::fs::read(p).ok()?;
                let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
                let mut out = [0; 32];
                out.copy_from_slice(digest.as_ref());
                Some((p.clone(), out))
            })
            .collect();
        InUse { files, digests }
    }

    fn changed(&self, other: &InUse, path: &Path) -> bool {
        self.digests.get(path) != other.digests.get(path)
    }
}

/// What changed from `old` to `new`, one line each: `cert: a.pem -> b.pem`, `ca: ca.pem
/// changed` (same path, other content), `crls: added c.pem`, `crls: removed c.pem`.
fn changes(old: &InUse, new: &InUse) -> Vec<String> {
    let mut out = Vec::new();
    for (name, was, is) in [
        ("ca", &old.files.ca, &new.files.ca),
        ("cert", &old.files.cert, &new.files.cert),
        ("key", &old.files.key, &new.files.key),
    ] {
        if was != is {
            out.push(format!("{name}: {} -> {}", was.display(), is.display()));
        } else if old.changed(new, is) {
            out.push(format!("{name}: {} changed", is.display()));
        }
    }
    for crl in &new.files.crls {
        if !old.files.crls.contains(crl) {
            out.push(format!("crls: added {}", crl.display()));
        } else if old.changed(new, crl) {
            out.push(format!("crls: {} changed", crl.display()));
        }
    }
    for crl in &old.files.crls {
        if !new.files.crls.contains(crl) {
            out.push(format!("crls: removed {}", crl.display()));
        }
    }
    out
}

/// A reload that can be applied: the new server configuration, the files behind it, and the
/// keys outside `[tls]` that changed (not applied).
struct Loaded {
    tls: ServerTls,
    in_use: InUse,
    restart_needed: Vec<String>,
}

/// Reads `node.toml`'s `[tls]` section and builds the server configuration from it; the error
/// is the one-line reason to log (it names the file and the key or the TLS file at fault).
fn load(node: &Node) -> Result<Loaded, String> {
    let reload = node.config().reload_tls().map_err(|e| e.to_string())?;
    let tls = crate::io::tls::server_tls(&reload.tls).map_err(|e| e.to_string())?;
    Ok(Loaded {
        tls,
        in_use: InUse::read(reload.tls),
        restart_needed: reload.restart_needed,
    })
}

/// On each of `hangups` (SIGHUP) until `stop` changes: loads `[tls]` (see the module doc), and when it loads,
/// sends the new server configuration on `tls` and points `node` and `syncer` at the new files.
pub(super) async fn on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    node: Arc<Node>,
    syncer: Arc<Syncer>,
    tls: watch::Sender<ServerTls>,
    mut stop: watch::Receiver<bool>,
) {
    let n = node.clone();
    let mut in_use = match tokio::task::spawn_blocking(move || InUse::read(n.tls_files())).await {
        Ok(in_use) => in_use,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the TLS files in use: TLS files reload only on restart");
            return;
        }
    };
    let file = node.config().file.display().to_string();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            got = hangups.recv() => {
                if got.is_none() {
                    return;
                }
            }
        }
        let n = node.clone();
        let loaded = match tokio::task::spawn_blocking(move || load(&n)).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(reason)) => {
                tracing::error!("SIGHUP: TLS files not reloaded, the ones in use stay: {reason}");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: reload task failed; the TLS files in use stay");
                continue;
            }
        };
        let changed = changes(&in_use, &loaded.in_use);
        // Established connections are checked again under the new verifier as this arrives.
        let _ = tls.send(loaded.tls);
        node.use_tls_files(loaded.in_use.files.clone());
        syncer.use_tls(loaded.in_use.files.clone()).await;
        in_use = loaded.in_use;
        if changed.is_empty() {
            tracing::info!("SIGHUP: reloaded [tls] from {file}: nothing changed");
        } else {
            // Each connection closed for it is named by `tls` in a line of its own.
            tracing::info!("SIGHUP: reloaded [tls] from {file}: {}", changed.join(", "));
        }
        for key in loaded.restart_needed {
            tracing::warn!(
                "SIGHUP: {key} changed in {file} but takes effect only on restart (the [tls] section was applied)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_use(ca: &str, crls: &[&str], digests: &[(&str, u8)]) -> InUse {
        InUse {
            files: TlsFiles {
                ca: ca.into(),
                cert: "deu.pem".into(),
                key: "deu.key".into(),
                crls: crls.iter().map(PathBuf::from).collect(),
            },
            digests: digests.iter().map(|(p, d)| (PathBuf::from(p), [*d; 32])).collect(),
        }
    }

    #[test]
    fn each_change_is_named() {
        let old = in_use(
            "ca.pem",
            &["old.pem", "kept.pem"],
            &[("ca.pem", 1), ("kept.pem", 1), ("deu.pem", 1)],
        );
        let new = in_use(
            "ca-2.pem",
            &["kept.pem", "crl.pem"],
            &[("ca-2.pem", 1), ("kept.pem", 2), ("crl.pem", 1), ("deu.pem", 3)],
        );
        assert_eq!(
            changes(&old, &new),
            vec![
                "ca: ca.pem -> ca-2.pem",
                "cert: deu.pem changed",
                "crls: kept.pem changed",
                "crls: added crl.pem",
                "crls: removed old.pem",
            ]
        );
        assert!(changes(&old, &old).is_empty());
    }
}

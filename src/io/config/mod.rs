//! Node and consortium configuration (SPEC §7): reading both files (bounded in size), and
//! parsing and validating `node.toml`; the consortium's sections are checked in
//! `domain::consortium`. Errors name the file, the key and the problem. Relative paths are
//! resolved against the file that holds them. This module reads files; it never opens the
//! store or a socket.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::domain::config::ConfigError;
use crate::domain::config::{country, invalid, syntax};
use crate::domain::consortium::parse_public_key;
use crate::domain::consortium::Consortium;
use crate::domain::model::Country;
use crate::io::tls::TlsFiles;

/// The largest `node.toml` or consortium file read: 1 MiB, as for a proposed consortium
/// document (SPEC §11). Real ones are a few kilobytes; the size is checked before the file is
/// read, so a huge file costs nothing.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads a configuration file whole, refusing one over [`MAX_CONFIG_BYTES`] first.
fn read_bounded(file: &Path) -> Result<String, ConfigError> {
    let read = |source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    };
    let handle = std::fs::File::open(file).map_err(read)?;
    let size = handle.metadata().map_err(read)?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            file: file.to_path_buf(),
            size,
            limit: MAX_CONFIG_BYTES,
        });
    }
    let mut text = String::new();
    // `take` too: a file that grows after the size was read is still read no further.
    std::io::Read::read_to_string(&mut std::io::Read::take(handle, MAX_CONFIG_BYTES + 1), &mut text).map_err(read)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            file: file.to_path_buf(),
            size: text.len() as u64,
            limit: MAX_CONFIG_BYTES,
        });
    }
    Ok(text)
}

fn read_toml<T: for<'de> Deserialize<'de>>(file: &Path) -> Result<T, ConfigError> {
    let text = read_bounded(file)?;
    toml::from_str(&text).map_err(|e| syntax(file, &text, &e))
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.parent().unwrap_or(Path::new(".")).join(p)
    }
}

// ---------------------------------------------------------------- node.toml

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeToml {
    country: String,
    data_dir: String,
    listen: String,
    consortium: String,
    /// The genesis document's digest the consortium agreed on (SPEC §11), hex.
    consortium_sha256: Option<String>,
    /// This node's country is not in the consortium file: it joins through a proposal.
    #[serde(default)]
    joining: bool,
    tls: TlsToml,
    signing: SigningToml,
    #[serde(default)]
    sync: SyncToml,
    #[serde(default)]
    peers: Vec<PeerToml>,
    metrics_listen: Option<String>,
    dashboard_listen: Option<String>,
    sdmx_max_observations: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsToml {
    ca: String,
    cert: String,
    key: String,
    #[serde(default)]
    crls: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningToml {
    key: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SyncToml {
    interval_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerToml {
    country: String,
    endpoint: String,
    tls_name: Option<String>,
}

/// A peer this node pulls from and announces to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub country: Country,
    /// `https://host:port`.
    pub endpoint: String,
    /// The DNS name to verify when the endpoint is an IP address.
    pub tls_name: Option<String>,
}

/// The most observations one SDMX data query returns unless `sdmx_max_observations` says
/// otherwise: a whole 27-member year with every measure fits.
pub const DEFAULT_SDMX_MAX_OBSERVATIONS: u64 = 2_000_000;

/// A validated `node.toml`.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub file: PathBuf,
    pub country: Country,
    pub data_dir: PathBuf,
    pub listen: std::net::SocketAddr,
    pub consortium_path: PathBuf,
    pub consortium: Consortium,
    /// `consortium_sha256`: the node refuses to open unless the consortium file's canonical
    /// digest is this one.
    pub consortium_sha256: Option<[u8; 32]>,
    pub tls: TlsFiles,
    pub signing_key: PathBuf,
    pub sync_interval: std::time::Duration,
    pub peers: Vec<Peer>,
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The read-only web dashboard (SPEC §13): a loopback address only.
    pub dashboard_listen: Option<std::net::SocketAddr>,
    /// The most observations one SDMX data query may return (SPEC §16); a query for more is
    /// answered 413. Default [`DEFAULT_SDMX_MAX_OBSERVATIONS`].
    pub sdmx_max_observations: u64,
    /// Every top-level key of the file but `[tls]`, as read at load: a reload compares it with
    /// the file as it is then, to name what changed and takes effect only on restart.
    outside_tls: toml::Table,
}

/// What a reload (SIGHUP) takes from `node.toml`: the `[tls]` section, checked as at start, and
/// the top-level keys outside it whose value changed since the node loaded the file (those
/// take effect only on restart).
#[derive(Debug, Clone)]
pub struct TlsReload {
    pub tls: TlsFiles,
    pub restart_needed: Vec<String>,
}
/// Resolves a path `key` of `file` names and checks it can be opened now, so a wrong path is
/// reported against the line that holds it rather than later by the component that reads it.
fn readable(file: &Path, key: &str, path: &str) -> Result<PathBuf, ConfigError> {
    let resolved = resolve(file, path);
    match std::fs::File::open(&resolved) {
        Ok(_) => Ok(resolved),
        Err(e) => Err(invalid(file, key, format!("cannot read {}: {e}", resolved.display()))),
    }
}

/// The default anti-entropy interval.
pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 30;

/// Reads `node.toml` whole, as at start (syntax, types, unknown keys), and returns it typed
/// and as a table of its top-level keys without `[tls]`.
fn read_node_toml(file: &Path) -> Result<(NodeToml, toml::Table), ConfigError> {
    let raw: NodeToml = read_toml(file)?;
    let mut table: toml::Table = read_toml(file)?;
    table.remove("tls");
    Ok((raw, table))
}

/// The `[tls]` section's files, resolved against `file` and each checked readable.
fn tls_files(file: &Path, tls: &TlsToml) -> Result<TlsFiles, ConfigError> {
    Ok(TlsFiles {
        ca: readable(file, "tls.ca", &tls.ca)?,
        cert: readable(file, "tls.cert", &tls.cert)?,
        key: readable(file, "tls.key", &tls.key)?,
        crls: (tls.crls.iter().enumerate())
            .map(|(i, c)| readable(file, &format!("tls.crls[{i}]"), c))
            .collect::<Result<_, _>>()?,
    })
}

impl NodeConfig {
    /// The same configuration over another data directory (a restore's staging directory).
    pub fn with_data_dir(self, data_dir: PathBuf) -> NodeConfig {
        NodeConfig { data_dir, ..self }
    }

    /// Loads `node.toml` and the consortium file it names, and checks them together.
    pub fn load(file: &Path) -> Result<NodeConfig, ConfigError> {
        let (raw, outside_tls) = read_node_toml(file)?;
        let me = country(file, "country", &raw.country)?;
        let listen = raw
            .listen
            .parse()
            .map_err(|_| invalid(file, "listen", format!("not an address:port: {:?}", raw.listen)))?;
        let metrics_listen = match &raw.metrics_listen {
            None => None,
            Some(m) => Some(
                m.parse()
                    .map_err(|_| invalid(file, "metrics_listen", format!("not an address:port: {m:?}")))?,
            ),
        };
        let dashboard_listen = match &raw.dashboard_listen {
            None => None,
            Some(d) => {
                let addr: std::net::SocketAddr = d
                    .parse()
                    .map_err(|_| invalid(file, "dashboard_listen", format!("not an address:port: {d:?}")))?;
                // The dashboard shows the view to whoever reaches it: loopback only, and an
                // agency that wants it elsewhere puts its own authenticating proxy in front.
                if !addr.ip().is_loopback() {
                    return Err(invalid(
                        file,
                        "dashboard_listen",
                        format!("{d:?} is not a loopback address: the dashboard has no login, so it listens on 127.0.0.1 or [::1] only; put an authenticating proxy in front for remote access"),
                    ));
                }
                Some(addr)
            }
        };
        let sdmx_max_observations = match raw.sdmx_max_observations {
            None => DEFAULT_SDMX_MAX_OBSERVATIONS,
            Some(0) => return Err(invalid(file, "sdmx_max_observations", "must be at least 1".to_string())),
            Some(n) => n,
        };
        let consortium_path = readable(file, "consortium", &raw.consortium)?;
        let consortium = Consortium::load(&consortium_path)?;
        // A member-to-be runs a node to approve the version that adds it (SPEC §11); it says
        // so with `joining = true`, so a mistyped country is still caught here. Peers need not
        // be members of the file: members list a member-to-be before its version is in force,
        // and the node judges membership under the version in force.
        if consortium.member(me).is_none() && !raw.joining {
            return Err(invalid(
                file,
                "country",
                format!(
                    "{me} is not a member of consortium {} (a node that joins through a proposal says joining = true)",
                    consortium_path.display()
                ),
            ));
        }
        let interval = raw.sync.interval_secs.unwrap_or(DEFAULT_SYNC_INTERVAL_SECS);
        if interval == 0 {
            return Err(invalid(file, "sync.interval_secs", "must be at least 1"));
        }
        let mut peers = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, p) in raw.peers.iter().enumerate() {
            let key = format!("peers[{i}]");
            let pc = country(file, &format!("{key}.country"), &p.country)?;
            if pc == me {
                return Err(invalid(
                    file,
                    format!("{key}.country"),
                    "a node cannot peer with itself",
                ));
            }
            if !seen.insert(pc) {
                return Err(invalid(file, format!("{key}.country"), format!("{pc} is listed twice")));
            }
            if !p.endpoint.starts_with("https://") {
                return Err(invalid(
                    file,
                    format!("{key}.endpoint"),
                    format!("must be https://host:port, got {:?}", p.endpoint),
                ));
            }
            peers.push(Peer {
                country: pc,
                endpoint: p.endpoint.clone(),
                tls_name: p.tls_name.clone(),
            });
        }
        let tls = tls_files(file, &raw.tls)?;
        let signing_key = readable(file, "signing.key", &raw.signing.key)?;
        let consortium_sha256 = match &raw.consortium_sha256 {
            None => None,
            Some(text) => Some(parse_public_key(text).ok_or_else(|| {
                invalid(
                    file,
                    "consortium_sha256",
                    "must be 64 hex characters (a SHA-256 digest)",
                )
            })?),
        };
        Ok(NodeConfig {
            file: file.to_path_buf(),
            country: me,
            data_dir: resolve(file, &raw.data_dir),
            listen,
            consortium_path,
            consortium,
            consortium_sha256,
            tls,
            signing_key,
            sync_interval: std::time::Duration::from_secs(interval),
            peers,
            metrics_listen,
            dashboard_listen,
            sdmx_max_observations,
            outside_tls,
        })
    }

    /// Reads this node's `node.toml` again for a reload: its `[tls]` section with the checks and
    /// messages of [`NodeConfig::load`] (each file the section names must be readable, named by
    /// its key, e.g. `tls.crls[1]`; what the files hold is for `tls` to judge), and the names of the top-level keys outside `[tls]` whose value is not the one
    /// loaded at start (sorted), which a reload does not apply.
    pub fn reload_tls(&self) -> Result<TlsReload, ConfigError> {
        let (raw, outside_tls) = read_node_toml(&self.file)?;
        let tls = tls_files(&self.file, &raw.tls)?;
        let keys: BTreeSet<&String> = outside_tls.keys().chain(self.outside_tls.keys()).collect();
        let restart_needed = keys
            .into_iter()
            .filter(|k| outside_tls.get(*k) != self.outside_tls.get(*k))
            .cloned()
            .collect();
        Ok(TlsReload { tls, restart_needed })
    }

    /// The admin socket path.
    pub fn admin_socket(&self) -> PathBuf {
        self.data_dir.join("admin.sock")
    }
}

impl Consortium {
    /// Reads and parses a consortium file (`consortium.toml`, SPEC §7, §11).
    pub fn load(file: &Path) -> Result<Consortium, ConfigError> {
        Consortium::parse(file, &read_bounded(file)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consortium::{Definition, Disclosure, Rule, SigningKey};

    const KEY_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const KEY_B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn parse(text: &str) -> Result<Consortium, ConfigError> {
        Consortium::parse(Path::new("consortium.toml"), text)
    }

    fn member(code: &str, key: &str) -> String {
        format!("[[members]]\ncountry = \"{code}\"\n[[members.keys]]\npublic_key = \"{key}\"\nvalid_from = \"2024-01-01\"\n")
    }

    /// A proposed document (`node::governance` parses it with `Consortium::parse`) or a file of
    /// one huge line: the error quotes excerpts only, whatever the line holds.
    #[test]
    fn errors_on_a_huge_line_quote_an_excerpt() {
        let long = "x".repeat(900_000);
        let cases = [
            format!("name = {long}\n"),
            format!("name = \"t\"\nbogus = \"{long}\"\n"),
            format!("name = \"t\"\n{}", member(&long, KEY_A)),
            format!("name = \"t\"\n[disclosure]\nmethod = \"{long}\"\n"),
        ];
        for text in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.starts_with("consortium.toml: ") && err.contains('…'), "{err}");
            assert!(
                err.len() < 1_000,
                "{} bytes: {}",
                err.len(),
                crate::domain::excerpt::excerpt(&err)
            );
        }
    }

    #[test]
    fn defaults_apply() {
        let c = parse(&format!("name = \"t\"\n{}", member("DEU", KEY_A))).unwrap();
        assert_eq!(c.definition, Definition::default());
        assert_eq!(c.disclosure, Disclosure::Threshold { k: 5 });
        assert_eq!(c.reconcile.rule, Rule::Receiving);
        assert!(!c.test_only);
        assert_eq!(c.members[0].keys[0].public_key, [0x11; 32]);
        let c = parse(&format!(
            "name = \"t\"\n[disclosure]\nmethod = \"cell-key\"\n{}",
            member("DEU", KEY_A)
        ))
        .unwrap();
        assert_eq!(
            c.disclosure,
            Disclosure::CellKey {
                max_noise: 2,
                variance: 1.0,
                small_count: 5
            },
            "counts below the default threshold are never shown exact"
        );
    }

    #[test]
    fn rejects_bad_consortia_with_the_key_named() {
        let cases = [
            (format!("name = \"t\"\n{}{}", member("DEU", KEY_A), member("DEU", KEY_B)), "duplicate member DEU"),
            (format!("name = \"t\"\n{}", member("DEU", "abc")), "members[0].keys[0].public_key"),
            (format!("name = \"t\"\n{}{}", member("DEU", KEY_A), member("FRA", KEY_A)), "listed twice"),
            (format!("name = \"t\"\n{}", member("FRX", KEY_A)), "members[0].country"),
            (format!("name = \"t\"\n[disclosure]\nmethod = \"none\"\n{}", member("DEU", KEY_A)), "test_only"),
            (format!("name = \"t\"\n[disclosure]\nthreshold = 2\n{}", member("DEU", KEY_A)), "disclosure.threshold: 2 is below the floor of 3"),
            (
                format!("name = \"t\"\n[disclosure]\nmethod = \"cell-key\"\nmax_noise = 1\n{}", member("DEU", KEY_A)),
                "disclosure.max_noise: 1 is below the floor of 2",
            ),
            (
                format!("name = \"t\"\n[disclosure]\nmethod = \"cell-key\"\nsmall_count = 0\n{}", member("DEU", KEY_A)),
                "disclosure.small_count: 0 is below the floor of 3",
            ),
            (format!("name = \"t\"\n[reconcile]\nrule = \"median\"\n{}", member("DEU", KEY_A)), "reconcile.rule"),
            (format!("name = \"t\"\nbogus = 1\n{}", member("DEU", KEY_A)), "bogus"),
            ("name = \"t\"\n".to_string(), "at least one member"),
            (
                format!("name = \"t\"\n[[members]]\ncountry = \"DEU\"\n[[members.keys]]\npublic_key = \"{KEY_A}\"\nvalid_from = \"2025-01-01\"\nvalid_until = \"2024-01-01\"\n"),
                "must be after valid_from",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
            assert!(err.starts_with("consortium.toml"), "{err}");
        }
    }

    /// A node.toml with its consortium file and empty stand-ins for the files it names (config
    /// checks only that they can be opened; what they hold is for `tls` and `node`).
    fn node_dir(dir: &Path, tls: &str, sync: u64) -> PathBuf {
        for f in ["ca.pem", "deu.pem", "deu.key", "crl.pem", "deu.sign.pk8"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        std::fs::write(
            dir.join("consortium.toml"),
            format!("name = \"t\"\n{}", member("DEU", KEY_A)),
        )
        .unwrap();
        let file = dir.join("node.toml");
        std::fs::write(
            &file,
            format!(
                "country = \"DEU\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:7000\"\nconsortium = \"consortium.toml\"\n\
                 [tls]\nca = \"ca.pem\"\ncert = \"deu.pem\"\nkey = \"deu.key\"\n{tls}\n\
                 [signing]\nkey = \"deu.sign.pk8\"\n[sync]\ninterval_secs = {sync}\n"
            ),
        )
        .unwrap();
        file
    }

    #[test]
    fn a_reload_reads_tls_and_names_what_else_changed() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = node_dir(dir.path(), "crls = []", 30);
        let config = NodeConfig::load(&file).unwrap();
        assert!(config.tls.crls.is_empty());

        node_dir(dir.path(), "crls = [\"crl.pem\"]", 30);
        let reload = config.reload_tls().unwrap();
        assert_eq!(reload.tls.crls, vec![dir.path().join("crl.pem")]);
        assert_eq!(reload.tls, NodeConfig::load(&file).unwrap().tls);
        assert!(reload.restart_needed.is_empty(), "{:?}", reload.restart_needed);

        node_dir(dir.path(), "crls = [\"crl.pem\"]", 5);
        assert_eq!(config.reload_tls().unwrap().restart_needed, vec!["sync".to_string()]);

        // The messages of start: the key and the file at fault.
        node_dir(dir.path(), "crls = [\"crl.pem\", \"missing.pem\"]", 30);
        let err = config.reload_tls().unwrap_err().to_string();
        assert!(
            err.contains("node.toml: tls.crls[1]: cannot read") && err.contains("missing.pem"),
            "{err}"
        );
        std::fs::write(&file, "[tls\n").unwrap();
        let err = config.reload_tls().unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
        assert!(err.to_string().starts_with(&file.display().to_string()), "{err}");
    }

    #[test]
    fn key_windows() {
        let k = SigningKey {
            public_key: [0; 32],
            valid_from: 100,
            valid_until: Some(200),
            retired_after_seq: None,
        };
        assert!(!k.valid_at(99));
        assert!(k.valid_at(100));
        assert!(k.valid_at(199));
        assert!(!k.valid_at(200));
    }
}

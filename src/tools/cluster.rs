//! A local cluster: several real nodes in one process on 127.0.0.1 ephemeral ports, each with
//! its own data directory, node.toml, certificates from one example CA, and real mutual-TLS
//! servers. Used by `accord demo` and by the cluster tests; operators run separate
//! `accord serve` processes instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::domain::model::Country;
use crate::io::config::NodeConfig;
use crate::node::Node;
use crate::shell::daemon::{self, DaemonError};
use crate::tools::certs::{self, CertsOptions};

/// Cluster set-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("certificates: {0}")]
    Certs(#[from] certs::CertsError),
    #[error("{0}")]
    Config(#[from] crate::io::config::ConfigError),
    #[error("{0}")]
    Node(#[from] crate::node::NodeError),
    #[error("{0}")]
    Daemon(#[from] DaemonError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// One node of a local cluster.
pub struct LocalNode {
    pub country: Country,
    pub config_path: PathBuf,
    pub addr: std::net::SocketAddr,
    /// Where the node serves its dashboard, when the cluster was started with dashboards.
    pub dashboard: Option<std::net::SocketAddr>,
    running: Option<Running>,
}

struct Running {
    node: Arc<Node>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), DaemonError>>,
}

/// How the cluster's nodes are wired and configured.
pub struct ClusterOptions {
    pub countries: Vec<Country>,
    /// Whether node `i` lists node `j` as a peer.
    pub peered: fn(usize, usize, usize) -> bool,
    pub sync_interval_secs: u64,
    /// Replaces lines of the generated consortium.toml, e.g. to pick a disclosure method.
    pub consortium_edit: Option<ConsortiumEdit>,
    /// Whether every node serves its dashboard (SPEC §13) on a free loopback port.
    pub dashboard: bool,
}

/// A rewrite of the generated consortium.toml.
pub type ConsortiumEdit = std::sync::Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Every node peers with every other.
pub fn full_mesh(i: usize, j: usize, _n: usize) -> bool {
    i != j
}

/// Each node peers only with its neighbours in a line.
pub fn line(i: usize, j: usize, _n: usize) -> bool {
    i.abs_diff(j) == 1
}

/// A running local cluster.
pub struct LocalCluster {
    pub dir: PathBuf,
    pub pki: PathBuf,
    pub nodes: Vec<LocalNode>,
}

impl LocalCluster {
    /// Generates the PKI and configs under `dir` and starts every node.
    pub async fn start(dir: &Path, options: &ClusterOptions) -> Result<LocalCluster, ClusterError> {
        let pki = dir.join("pki");
        certs::generate(&CertsOptions {
            out: pki.clone(),
            countries: options.countries.clone(),
            days: 30,
            force: true,
        })?;
        if let Some(edit) = &options.consortium_edit {
            let path = pki.join("consortium.toml");
            let text = std::fs::read_to_string(&path).map_err(io(path.display().to_string()))?;
            std::fs::write(&path, edit(&text)).map_err(io(path.display().to_string()))?;
        }
        let mut listeners = Vec::new();
        for _ in &options.countries {
            let l = crate::io::tls::listen(([127, 0, 0, 1], 0).into()).map_err(io("bind 127.0.0.1:0"))?;
            listeners.push(l);
        }
        let addrs: Vec<_> = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<_, _>>()
            .map_err(io("local addr"))?;
        let n = options.countries.len();
        // A country the (edited) consortium file leaves out runs as a member-to-be.
        let genesis = crate::domain::consortium::Consortium::load(&pki.join("consortium.toml"))?;
        let mut nodes = Vec::new();
        for (i, &country) in options.countries.iter().enumerate() {
            let node_dir = dir.join(country.lower());
            std::fs::create_dir_all(&node_dir).map_err(io(node_dir.display().to_string()))?;
            let code = country.lower();
            let mut toml = format!(
                "country = \"{country}\"\ndata_dir = \"data\"\nlisten = \"{}\"\nconsortium = \"../pki/consortium.toml\"\n\n\
                 [tls]\nca = \"../pki/ca.pem\"\ncert = \"../pki/{code}.pem\"\nkey = \"../pki/{code}.key\"\ncrls = []\n\n\
                 [signing]\nkey = \"../pki/{code}.sign.pk8\"\n\n[sync]\ninterval_secs = {}\n",
                addrs[i], options.sync_interval_secs
            );
            if genesis.member(country).is_none() {
                toml.insert_str(0, "joining = true\n");
            }
            let dashboard = if options.dashboard {
                let addr = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map_err(io("dashboard port"))?;
                toml.insert_str(0, &format!("dashboard_listen = \"{addr}\"\n"));
                Some(addr)
            } else {
                None
            };
            for (j, &peer) in options.countries.iter().enumerate() {
                if (options.peered)(i, j, n) {
                    toml.push_str(&format!(
                        "\n[[peers]]\ncountry = \"{peer}\"\nendpoint = \"https://{}\"\ntls_name = \"{}.accord\"\n",
                        addrs[j],
                        peer.lower()
                    ));
                }
            }
            let config_path = node_dir.join("node.toml");
            std::fs::write(&config_path, toml).map_err(io(config_path.display().to_string()))?;
            nodes.push(LocalNode {
                country,
                config_path,
                addr: addrs[i],
                dashboard,
                running: None,
            });
        }
        let mut cluster = LocalCluster {
            dir: dir.to_path_buf(),
            pki,
            nodes,
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            cluster.launch(i, listener)?;
        }
        Ok(cluster)
    }

    fn launch(&mut self, i: usize, listener: TcpListener) -> Result<(), ClusterError> {
        let config = NodeConfig::load(&self.nodes[i].config_path)?;
        let node = Node::open(config)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon::run(node.clone(), listener, async move {
            let _ = stopped.await;
        }));
        self.nodes[i].running = Some(Running { node, stop, task });
        Ok(())
    }

    /// The node `i`'s state (while it runs).
    pub fn node(&self, i: usize) -> Option<&Arc<Node>> {
        self.nodes[i].running.as_ref().map(|r| &r.node)
    }

    /// Stops node `i` gracefully and releases its store.
    pub async fn stop(&mut self, i: usize) -> Result<(), ClusterError> {
        if let Some(r) = self.nodes[i].running.take() {
            let _ = r.stop.send(());
            let result = r.task.await.map_err(|e| ClusterError::Io {
                what: "node task".into(),
                source: std::io::Error::other(e),
            })?;
            // The store closes when the last reference goes; wait for in-flight tasks to drop theirs.
            let mut node = r.node;
            for _ in 0..200 {
                match Arc::try_unwrap(node) {
                    Ok(n) => {
                        drop(n);
                        break;
                    }
                    Err(still_shared) => {
                        node = still_shared;
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                }
            }
            result?;
        }
        Ok(())
    }

    /// Restarts a stopped node on its old address.
    pub async fn restart(&mut self, i: usize) -> Result<(), ClusterError> {
        let listener =
            crate::io::tls::listen(self.nodes[i].addr).map_err(io(format!("rebind {}", self.nodes[i].addr)))?;
        self.launch(i, listener)
    }

    /// Stops every node.
    pub async fn shutdown(mut self) -> Result<(), ClusterError> {
        for i in 0..self.nodes.len() {
            self.stop(i).await?;
        }
        Ok(())
    }
}

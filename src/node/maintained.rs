//! The view kept up to date in the background on a daemon (SPEC §17): a thread computes the
//! view whenever an accepted entry (or a new consortium version) changes what it is built from,
//! so `status` reads the latest view computed and never computes one itself, however many
//! members sync at once. Operations an operator runs through the admin socket wait for the
//! view they changed ([`Node::settle`]), so what they print next is current.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{current, Node, NodeError};
use crate::domain::consortium::Version;
use crate::domain::reconcile::{under, ConsortiumRef, Kept, View};

/// How long the maintainer waits after a failed computation before it tries again (a store
/// error is logged, not retried in a loop).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The view a daemon keeps between computations, with what it was computed from, so the next
/// computation after a new `flows` revision recomputes only the pairs it touches.
pub(super) struct KeptView {
    kept: Kept,
    revisions: current::Snapshot,
    /// The consortium version it was computed under (its document's digest).
    consortium: [u8; 32],
}

/// Stops the maintainer when dropped, and waits for its thread to end.
pub struct ViewMaintainer {
    node: Arc<Node>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ViewMaintainer {
    fn drop(&mut self) {
        self.node.current.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The view `status` reports, with whether it covers every entry accepted.
pub(super) struct Reported {
    pub view: Arc<View>,
    pub digest: [u8; 32],
    pub current: bool,
}

impl Node {
    /// Starts keeping the view up to date on a thread of its own, from now until the returned
    /// handle is dropped. From then on `status` reads the latest view computed.
    pub fn maintain_view(self: &Arc<Self>) -> std::io::Result<ViewMaintainer> {
        self.maintained.store(true, Ordering::Relaxed);
        let node = self.clone();
        let thread = std::thread::Builder::new().name("accord-view".into()).spawn(move || {
            // Waking on every change is enough; the timeout only bounds how long a missed
            // wake-up could delay the view.
            while node.current.wait_for_change(Duration::from_secs(60)) {
                if let Err(e) = node.view_and_digest() {
                    tracing::error!(error = %e, "cannot compute the view");
                    std::thread::sleep(RETRY_AFTER);
                }
            }
        })?;
        Ok(ViewMaintainer {
            node: self.clone(),
            thread: Some(thread),
        })
    }

    /// Returns once the view covers every entry accepted so far (computing it here if no
    /// maintainer does). For operations run by an operator, whose next command should see what
    /// they changed.
    pub fn settle(&self) -> Result<(), NodeError> {
        self.view_and_digest().map(|_| ())
    }

    /// The view of `snapshot` under `version`: refreshed from the view kept when only `flows`
    /// datasets changed since under the same version, otherwise computed afresh; kept for the
    /// next time either way.
    pub(super) fn refreshed(
        &self,
        kept: &mut Option<KeptView>,
        snapshot: &current::Snapshot,
        version: &Version,
    ) -> Result<Arc<View>, NodeError> {
        let settings = &version.document.reconcile;
        let consortium = ConsortiumRef {
            version: version.version,
            digest: version.digest,
        };
        if let Some(k) = kept.as_mut().filter(|k| k.consortium == version.digest) {
            let (changes, read) = current::changes(&self.store, snapshot, &k.revisions, &self.limits);
            let refreshed = match k.kept.refresh(&changes, settings, read) {
                Ok(refreshed) => refreshed,
                Err(e) => {
                    // What is kept may be half changed: the next computation starts afresh.
                    *kept = None;
                    return Err(e);
                }
            };
            if let Some(mut view) = refreshed {
                under(&mut view, consortium, &version.document);
                let view = Arc::new(view);
                k.kept.keep(view.clone());
                k.revisions = snapshot.revisions();
                return Ok(view);
            }
        }
        // The old view goes before the new one is computed: never two at once.
        *kept = None;
        let mut failure = None;
        let datasets = current::datasets(&self.store, snapshot, &self.limits)
            .map_while(|loaded| loaded.map_err(|e| failure = Some(e)).ok());
        let mut fresh = Kept::compute(datasets, settings);
        if let Some(e) = failure {
            return Err(e);
        }
        fresh.finish(|view| under(view, consortium, &version.document));
        let view = fresh.view().clone();
        *kept = Some(KeptView {
            kept: fresh,
            revisions: snapshot.revisions(),
            consortium: version.digest,
        });
        Ok(view)
    }

    /// The view `status` reports: on a daemon, the latest one computed (current or not);
    /// elsewhere, the current one, computed if needed.
    pub(super) fn reported_view(&self) -> Result<Reported, NodeError> {
        if self.maintained.load(Ordering::Relaxed) {
            if let Some((view, digest, current)) = self.current.latest() {
                return Ok(Reported { view, digest, current });
            }
            // No view yet since start: the maintainer is computing the first one, and this
            // waits for it (one computation at a time).
        }
        let (view, digest) = self.view_and_digest()?;
        Ok(Reported {
            view,
            digest,
            current: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;
    use crate::domain::date::Date;
    use crate::domain::model::{Country, Cube, Period};
    use crate::domain::record::{EventType, Reason, Record, Sex};
    use crate::io::config::NodeConfig;
    use crate::node::PublishRequest;
    use crate::tools::certs::{generate, CertsOptions};

    /// DEU's node over a fresh example PKI, holding a few hundred records of 2024.
    fn node(dir: &std::path::Path) -> Arc<Node> {
        let pki = dir.join("pki");
        generate(&CertsOptions {
            out: pki.clone(),
            countries: ["DEU", "FRA"].iter().map(|c| Country::parse(c).unwrap()).collect(),
            days: 30,
            force: true,
        })
        .unwrap();
        let config = dir.join("node.toml");
        std::fs::write(
            &config,
            "country = \"DEU\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\nconsortium = \"pki/consortium.toml\"\n\n\
             [tls]\nca = \"pki/ca.pem\"\ncert = \"pki/deu.pem\"\nkey = \"pki/deu.key\"\ncrls = []\n\n\
             [signing]\nkey = \"pki/deu.sign.pk8\"\n",
        )
        .unwrap();
        let node = Node::open(NodeConfig::load(&config).unwrap()).unwrap();
        let records: Vec<Record> = (0..400u32)
            .map(|i| Record {
                event_id: format!("E{i}"),
                person_id: format!("person-{i}"),
                event_type: [EventType::Immigration, EventType::Emigration][(i % 2) as usize],
                event_date: Date {
                    year: 2024,
                    month: 1 + (i % 12) as u8,
                    day: 1 + (i % 28) as u8,
                },
                citizenship: Country::parse("FRA").unwrap(),
                country_of_birth: None,
                partner_country: Country::parse("FRA"),
                sex: Sex::ALL[(i % 2) as usize],
                birth_year: Some(1980 + (i % 3) as i32),
                reason: Reason::ALL[0],
                duration_months: Some(24),
            })
            .collect();
        node.ingest(&records).unwrap();
        node
    }

    /// Polls `status` until its view is current (a test deadline, not a timing).
    fn current_status(node: &Node) -> crate::node::Status {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = node.status().unwrap();
            if s.view_current {
                return s;
            }
            assert!(Instant::now() < deadline, "the maintained view never became current");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn status_reads_the_latest_view_and_never_computes_one() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path());
        let _maintainer = node.maintain_view().unwrap();
        node.publish(PublishRequest::new(Cube::Flows, Period::Year(2024)))
            .unwrap();
        let before = current_status(&node);
        assert_eq!(
            before.view_digest,
            crate::domain::hex::encode(&node.view_digest().unwrap())
        );

        // A view computation that does not end (held here): an entry arrives meanwhile.
        let computing = node.computing.lock().unwrap();
        node.publish(PublishRequest::new(Cube::Flows, Period::Month(2024, 3)))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let n = node.clone();
        std::thread::spawn(move || tx.send(n.status().map(|s| (s.view_digest, s.view_current))));
        let answered = rx.recv_timeout(Duration::from_secs(30));
        let (digest, current) = answered
            .expect("status answered while the view was being computed")
            .unwrap();
        assert_eq!(digest, before.view_digest, "the latest view computed");
        assert!(!current, "and it says the view lags behind the entry just accepted");

        // The computation ends: the maintainer brings the view up to date by itself.
        drop(computing);
        let after = current_status(&node);
        assert_ne!(after.view_digest, before.view_digest);
        assert_eq!(
            after.view_digest,
            crate::domain::hex::encode(&node.view_digest().unwrap())
        );
        // The maintainer refreshed the view it kept (a flows revision): the same view as one
        // computed afresh from every dataset.
        let (afresh, digest) = node.view_as_of(i64::MAX / 2).unwrap();
        assert_eq!(after.view_digest, crate::domain::hex::encode(&digest));
        assert_eq!(*node.view().unwrap(), afresh);
    }

    #[test]
    fn without_a_maintainer_status_computes_the_current_view() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path());
        let empty = node.status().unwrap();
        node.publish(PublishRequest::new(Cube::Flows, Period::Year(2024)))
            .unwrap();
        let s = node.status().unwrap();
        assert!(s.view_current);
        assert_ne!(s.view_digest, empty.view_digest);
        assert_eq!(s.view_digest, crate::domain::hex::encode(&node.view_digest().unwrap()));
    }
}

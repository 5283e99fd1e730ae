//! The daemon's side of anti-entropy: one client per configured peer, reused across rounds,
//! and what the last complete pull from each peer saw ([`sync::Seen`](super::sync::Seen)), so a
//! quiet round asks each peer one small question (SPEC §17). Pulls run a few peers at a time;
//! announcements tell every peer that this node has new heads.

use std::sync::Arc;

use tonic::transport::Channel;

use super::sync::{announce, client, pull_after, NotesTurn, PeerSync, Seen, SyncError, MAX_CONCURRENT_PULLS};
use super::{blocking, Feeds};
use crate::domain::date::unix_now;
use crate::domain::model::Country;
use crate::io::config::Peer;
use crate::io::tls::TlsFiles;
use crate::proto::exchange_client::ExchangeClient;

/// Clients for every configured peer, reused across rounds (channels reconnect lazily).
pub struct Syncer {
    feeds: Arc<dyn Feeds>,
    peers: Vec<Peer>,
    /// The files new connections dial with; a reload replaces them ([`Syncer::use_tls`]).
    tls: std::sync::RwLock<TlsFiles>,
    clients: tokio::sync::Mutex<std::collections::HashMap<Country, ExchangeClient<Channel>>>,
    /// What the last pull from each peer saw, so a quiet round asks one small question.
    seen: std::sync::Mutex<std::collections::HashMap<Country, Seen>>,
    /// One pull at a time reads the attestations new to this node.
    notes_turn: NotesTurn,
}

impl Syncer {
    pub fn new(feeds: Arc<dyn Feeds>, peers: Vec<Peer>, tls: TlsFiles) -> Syncer {
        Syncer {
            feeds,
            peers,
            tls: std::sync::RwLock::new(tls),
            clients: tokio::sync::Mutex::new(std::collections::HashMap::new()),
            seen: std::sync::Mutex::new(std::collections::HashMap::new()),
            notes_turn: NotesTurn::default(),
        }
    }

    /// Dials with `files` from now on (SIGHUP reloaded the `[tls]` section; the same paths
    /// when only the files' content changed): the cached clients are dropped, so no pull goes
    /// out under the previous certificate, key, CA or CRLs.
    pub async fn use_tls(&self, files: TlsFiles) {
        // The client lock first: a pull building a client meanwhile builds it from one set.
        let mut clients = self.clients.lock().await;
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = files;
        clients.clear();
    }

    async fn client_for(&self, peer: &Peer) -> Result<ExchangeClient<Channel>, SyncError> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&peer.country) {
            return Ok(c.clone());
        }
        let files = self.tls.read().unwrap_or_else(|p| p.into_inner()).clone();
        let c = client(&files, peer)?;
        clients.insert(peer.country, c.clone());
        Ok(c)
    }

    /// Pulls from one configured peer; every pull, periodic or asked for, counts in the metrics.
    pub async fn pull_from(&self, peer: Country) -> Result<PeerSync, SyncError> {
        let Some(p) = self.peers.iter().find(|p| p.country == peer).cloned() else {
            return Err(SyncError::Rpc {
                peer,
                message: "not a configured peer".into(),
            });
        };
        match self.client_for(&p).await {
            Ok(mut client) => {
                let seen = self.seen_of(peer);
                let (result, next) = pull_after(&self.feeds, &p, &mut client, seen, &self.notes_turn).await;
                self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(peer, next);
                result
            }
            Err(e) => {
                let result = Err(e);
                let f = self.feeds.clone();
                blocking(move || {
                    f.pulled(peer, unix_now(), std::time::Duration::ZERO, &result);
                    result
                })
                .await
            }
        }
    }

    fn seen_of(&self, peer: Country) -> Seen {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&peer)
            .copied()
            .unwrap_or_default()
    }

    /// Pulls from every configured peer, [`MAX_CONCURRENT_PULLS`] at a time, and returns each
    /// outcome in the configured order.
    pub async fn pull_all(&self) -> Vec<(Country, Result<PeerSync, SyncError>)> {
        use futures_util::stream::{self, StreamExt};
        // Several peers at once, so one slow peer does not hold up the others; the results in
        // the configured order.
        let countries: Vec<Country> = self.peers.iter().map(|p| p.country).collect();
        let mut out: Vec<(usize, Country, Result<PeerSync, SyncError>)> =
            stream::iter(countries.into_iter().enumerate())
                .map(|(i, peer)| async move { (i, peer, self.pull_from(peer).await) })
                .buffer_unordered(MAX_CONCURRENT_PULLS)
                .collect()
                .await;
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, peer, result)| (peer, result)).collect()
    }

    /// Announces our heads to every peer in a task on `tasks`, which gives up when `stop`
    /// changes: the daemon awaits every such task at shutdown.
    pub fn announce_on(
        self: &Arc<Self>,
        tasks: &tokio_util::task::TaskTracker,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) {
        let (syncer, mut stop) = (self.clone(), stop.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = syncer.announce_all() => {}
                _ = stop.changed() => {}
            }
        });
    }

    /// Announces our heads to every peer; failures are logged and otherwise ignored (the
    /// periodic pull covers them).
    pub async fn announce_all(&self) {
        for p in self.peers.clone() {
            match self.client_for(&p).await {
                Ok(mut c) => {
                    if let Err(e) = announce(&self.feeds, &mut c, p.country).await {
                        tracing::debug!(peer = %p.country, error = %e, "announce failed");
                    }
                }
                Err(e) => tracing::warn!(peer = %p.country, error = %e, "no client for peer"),
            }
        }
    }
}

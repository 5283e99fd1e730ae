//! The node's index of current datasets: for every (publisher, cube, period), the latest
//! accepted revision that verifies under the consortium in force, plus the view over them and
//! its digest, kept until an accepted entry changes them. Every stored entry is verified once, when
//! the index is first needed (a daemon builds it at start); after that, entries placed by
//! [`Node::accept`](super::Node::accept) and `publish` update it, so `status` does not
//! re-verify or recompute the view when nothing arrived.
//!
//! A daemon keeps the view up to date in the background ([`Index::wait_for_change`] wakes its
//! maintainer when an entry changes the index), so `status` reads the latest view computed
//! ([`Index::latest`]) and never computes one itself.
//!
//! An entry that no longer verifies (the consortium removed its key or its publisher) is named
//! in [`LeftOut`] and left out of the view: it is the consortium's decision, never a failure.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::NodeError;
use crate::domain::consortium::InForce;
use crate::domain::dataset::{verify, AcceptedDataset, Dataset, EntryHeader, Limits, Placement, VerifiedEntry};
use crate::domain::model::{Country, Cube, Period};
use crate::domain::reconcile::View;
use crate::io::store::{Store, StoreError};

/// A stored entry left out of the view because it no longer verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub publisher: String,
    pub seq: u64,
    pub reason: String,
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} seq {}: {}", self.publisher, self.seq, self.reason)
    }
}

type Key = (Country, Cube, Period);

/// The current revision of one dataset: its seq and header digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Revision {
    seq: u64,
    digest: [u8; 32],
}

struct State {
    latest: BTreeMap<Key, Revision>,
    left_out: Vec<LeftOut>,
    /// Names this content of `latest`: it grows with every change, and a rebuilt index takes a
    /// new one, so a view computed from an older snapshot is never taken as current.
    generation: u64,
}

/// A view computed from the snapshot of `generation`, with its digest.
type Computed = (u64, Arc<View>, [u8; 32]);

#[derive(Default)]
struct Inner {
    /// `None` until first needed, and again after [`Index::reset`].
    state: Option<State>,
    /// The last generation handed out: generations never repeat, even across a reset.
    generations: u64,
    /// The latest view computed, current or not: what `status` reads on a daemon.
    last: Option<Computed>,
    /// Set when the maintainer is to stop.
    stopped: bool,
}

impl Inner {
    fn next_generation(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }

    /// Whether the latest view computed is the view of the index as it is.
    fn current(&self) -> bool {
        matches!((&self.state, &self.last), (Some(s), Some((g, _, _))) if s.generation == *g)
    }
}

/// What the view is computed from at one moment.
pub(super) struct Snapshot {
    pub generation: u64,
    /// The view of this generation, when it was computed already.
    pub cached: Option<(Arc<View>, [u8; 32])>,
    latest: Vec<(Key, Revision)>,
}

/// The index; empty until first needed.
#[derive(Default)]
pub(super) struct Index {
    inner: Mutex<Inner>,
    /// Signalled whenever the index changes or the maintainer is to stop.
    changed: Condvar,
}

impl Index {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, built from the store on first use. The lock is held while building, so an
    /// entry placed meanwhile waits and is applied to the finished index.
    fn built<'a>(
        &'a self,
        store: &Store,
        in_force: &InForce,
        limits: &Limits,
    ) -> Result<MutexGuard<'a, Inner>, NodeError> {
        let mut guard = self.lock();
        if guard.state.is_none() {
            let mut state = build(store, in_force, limits, None)?;
            state.generation = guard.next_generation();
            guard.state = Some(state);
        }
        Ok(guard)
    }

    /// The entries left out, building the index first if it is not yet (the daemon asks at
    /// start, so the first `status` is quick and entries left out are logged once).
    pub fn left_out(&self, store: &Store, in_force: &InForce, limits: &Limits) -> Result<Vec<LeftOut>, NodeError> {
        Ok(state(&self.built(store, in_force, limits)?).left_out.clone())
    }

    /// Forgets everything: the next use rebuilds from the store (under a new consortium version).
    pub fn reset(&self) {
        self.lock().state = None;
        self.changed.notify_all();
    }

    /// Follows an entry the store just placed. Before the index is built there is nothing to
    /// follow: building reads the store, which already holds the entry.
    pub fn placed(&self, v: &VerifiedEntry, placement: Placement) {
        if matches!(placement, Placement::Fork { .. }) {
            // A publisher found equivocating: its entries from the fork on leave the view.
            self.reset();
            return;
        }
        if !matches!(placement, Placement::Append | Placement::Replay) || v.dataset().is_none() {
            return;
        }
        let h = v.header();
        let Some((cube, period)) = h.dataset() else { return };
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(state) = inner.state.as_mut() else { return };
        let revision = Revision {
            seq: h.seq,
            digest: v.digest(),
        };
        let slot = state.latest.entry((h.publisher, cube, period)).or_insert(revision);
        if slot.seq <= revision.seq {
            *slot = revision;
            inner.generations += 1;
            state.generation = inner.generations;
            self.changed.notify_all();
        }
    }

    pub fn snapshot(&self, store: &Store, in_force: &InForce, limits: &Limits) -> Result<Snapshot, NodeError> {
        let guard = self.built(store, in_force, limits)?;
        let s = state(&guard);
        Ok(Snapshot {
            generation: s.generation,
            cached: guard
                .last
                .as_ref()
                .filter(|(g, _, _)| *g == s.generation)
                .map(|(_, view, digest)| (view.clone(), *digest)),
            latest: s.latest.iter().map(|(k, r)| (*k, *r)).collect(),
        })
    }

    /// Keeps `view` as the view of `generation`, unless a later one is kept already. It is
    /// kept even when an entry has changed the index since: it is then the latest view, not
    /// the current one.
    pub fn cache_view(&self, generation: u64, view: Arc<View>, digest: [u8; 32]) {
        let mut guard = self.lock();
        if guard.last.as_ref().is_none_or(|(g, _, _)| *g < generation) {
            guard.last = Some((generation, view, digest));
        }
        drop(guard);
        self.changed.notify_all();
    }

    /// The latest view computed and its digest, and whether it is current (no entry has
    /// changed the index since its snapshot). `None` before the first view is computed.
    pub fn latest(&self) -> Option<(Arc<View>, [u8; 32], bool)> {
        let guard = self.lock();
        let current = guard.current();
        guard
            .last
            .as_ref()
            .map(|(_, view, digest)| (view.clone(), *digest, current))
    }

    /// Waits until the latest view computed is not the view of the index (or there is none),
    /// or until `timeout` passes. Returns `false` once [`Index::stop`] was called.
    pub fn wait_for_change(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |inner| !inner.stopped && inner.current())
            .unwrap_or_else(|p| p.into_inner());
        !guard.stopped
    }

    /// Stops the maintainer: every wait returns.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}

/// The built state behind a guard that [`Index::built`] filled.
fn state<'a>(guard: &'a MutexGuard<'_, Inner>) -> &'a State {
    guard
        .state
        .as_ref()
        .expect("Index::built fills the state before returning the guard")
}

impl Snapshot {
    /// Only what the view was computed from: the revision of each dataset.
    pub fn revisions(&self) -> Snapshot {
        Snapshot {
            generation: self.generation,
            cached: None,
            latest: self.latest.clone(),
        }
    }
}

/// The datasets whose current revision in `now` is not the one in `earlier` (each key, and
/// whether `now` has a dataset for it), for a refresh of the view computed from `earlier`; and
/// a reader of those new revisions from the store, one at a time.
pub(super) fn changes<'a>(
    store: &'a Store,
    now: &Snapshot,
    earlier: &Snapshot,
    limits: &'a Limits,
) -> (
    Vec<crate::domain::reconcile::Change>,
    impl FnMut(Key) -> Result<AcceptedDataset, NodeError> + 'a,
) {
    let before: BTreeMap<Key, Revision> = earlier.latest.iter().copied().collect();
    let after: BTreeMap<Key, Revision> = now.latest.iter().copied().collect();
    let new: BTreeMap<Key, Revision> = after
        .iter()
        .filter(|(key, revision)| before.get(key) != Some(revision))
        .map(|(key, revision)| (*key, *revision))
        .collect();
    let mut changed: Vec<crate::domain::reconcile::Change> = new.keys().map(|key| (*key, true)).collect();
    changed.extend(
        before
            .keys()
            .filter(|key| !after.contains_key(key))
            .map(|key| (*key, false)),
    );
    let read = move |key: Key| {
        let revision = *new.get(&key).ok_or_else(|| {
            NodeError::Request(format!("{} {} {}: not among the changed datasets", key.0, key.1, key.2))
        })?;
        load(store, key.0, revision, limits)
    };
    (changed, read)
}

/// One current dataset, read from the store.
fn load(store: &Store, publisher: Country, revision: Revision, limits: &Limits) -> Result<AcceptedDataset, NodeError> {
    let corrupt = || StoreError::Corrupt {
        path: store.path().to_path_buf(),
        key: format!("f:{publisher}/{}", revision.seq),
    };
    let entry = store.entry(publisher, revision.seq)?.ok_or_else(corrupt)?;
    let dataset = Dataset::decode(&entry.payload, limits.max_cells).map_err(|_| corrupt())?;
    Ok(AcceptedDataset {
        publisher,
        seq: revision.seq,
        digest: revision.digest,
        dataset,
    })
}

/// Reads the datasets of a snapshot from the store, one at a time as the iterator is driven.
/// They were verified when accepted (or when the index was built); the store is this node's
/// own, so they are only decoded here.
pub(super) fn datasets<'a>(
    store: &'a Store,
    snapshot: &'a Snapshot,
    limits: &'a Limits,
) -> impl Iterator<Item = Result<AcceptedDataset, NodeError>> + 'a {
    snapshot
        .latest
        .iter()
        .map(move |((publisher, _, _), revision)| load(store, *publisher, *revision, limits))
}

/// What the view was computed from on this node at `t` (milliseconds since the Unix epoch):
/// the entries accepted by then, verified under `in_force` (the versions in force then).
/// Fork evidence is what the node holds now: a publisher later found equivocating is left out
/// from its fork on, in every vintage.
pub(super) fn as_of(store: &Store, in_force: &InForce, limits: &Limits, t: i64) -> Result<Snapshot, NodeError> {
    let state = build(store, in_force, limits, Some(t))?;
    Ok(Snapshot {
        generation: 0,
        cached: None,
        latest: state.latest.into_iter().collect(),
    })
}

/// Verifies every stored entry once under the consortium in force; with `accepted_by`, only the
/// entries this node had accepted by then (SPEC §16 vintages).
fn build(store: &Store, in_force: &InForce, limits: &Limits, accepted_by: Option<i64>) -> Result<State, NodeError> {
    let mut latest: BTreeMap<Key, Revision> = BTreeMap::new();
    let mut left_out = Vec::new();
    // SPEC §12: once a publisher is known to have signed two entries for one seq, its entries
    // from that seq on are left out of the view on every node, whichever branch it holds, so
    // honest nodes that hold different branches still compute one view.
    let mut forked: BTreeMap<Country, u64> = BTreeMap::new();
    for fork in store.forks()? {
        let seq = forked.entry(fork.publisher).or_insert(fork.seq);
        *seq = (*seq).min(fork.seq);
    }
    // Until a consortium version keeps one branch: then a node whose feed is that branch
    // shows it again (a node holding the other sets it aside and fetches the kept one).
    let document = &in_force.current().document;
    let mut settled = Vec::new();
    for (publisher, from) in &forked {
        for kept in document
            .forks
            .iter()
            .filter(|k| k.publisher == *publisher && k.seq <= *from)
        {
            if store.header_digest(*publisher, kept.seq)? == Some(kept.keep) {
                settled.push(*publisher);
            }
        }
    }
    forked.retain(|publisher, _| !settled.contains(publisher));
    for entry in store.all_entries() {
        let entry = entry?;
        let header = entry
            .envelope
            .as_ref()
            .and_then(|env| EntryHeader::decode(&env.payload).ok());
        if header.as_ref().is_some_and(|h| h.dataset().is_none()) {
            continue;
        }
        if let (Some(t), Some(h)) = (accepted_by, &header) {
            if store.accepted_at(h.publisher, h.seq)?.unwrap_or(0) > t {
                continue;
            }
        }
        if let Some((h, from)) = header
            .as_ref()
            .and_then(|h| forked.get(&h.publisher).map(|from| (h, *from)))
            .filter(|(h, from)| h.seq >= *from)
        {
            left_out.push(LeftOut {
                publisher: h.publisher.to_string(),
                seq: h.seq,
                reason: format!(
                    "{} signed two different entries for seq {from}: its entries from seq {from} on are left out until the consortium names the branch to keep",
                    h.publisher
                ),
            });
            continue;
        }
        let claimed = header.as_ref().map(|h| (h.publisher.to_string(), h.seq));
        let consortium = match &header {
            Some(h) => in_force.document_for(h.publisher, h.created_at),
            None => &in_force.current().document,
        };
        match verify(entry, consortium, limits) {
            Ok(v) => {
                let h = v.header();
                if let (Some(_), Some((cube, period))) = (v.dataset(), h.dataset()) {
                    let revision = Revision {
                        seq: h.seq,
                        digest: v.digest(),
                    };
                    let slot = latest.entry((h.publisher, cube, period)).or_insert(revision);
                    if slot.seq < revision.seq {
                        *slot = revision;
                    }
                }
            }
            Err(e) => {
                let (publisher, seq) = claimed.unwrap_or_else(|| ("?".into(), 0));
                tracing::warn!(%publisher, seq, reason = %e, "stored entry no longer verifies: left out of the view");
                left_out.push(LeftOut {
                    publisher,
                    seq,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(State {
        latest,
        left_out,
        generation: 0,
    })
}

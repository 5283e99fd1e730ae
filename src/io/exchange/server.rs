//! The Exchange service: Heads, Fetch and Announce for authenticated peers. Audiences are
//! enforced here: a caller outside an entry's audience gets the signed header without payload.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch, Semaphore};
use tokio_stream::Stream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

use super::announce::AnnounceSender;
use super::{blocking, store_status, Feeds, MAX_ATTESTATIONS, MAX_ATTESTATIONS_BYTES, MAX_FETCH_ENTRIES};
use crate::domain::dataset::EntryHeader;
use crate::domain::model::Country;
use crate::io::tls::peer_member;
use crate::proto;
use crate::proto::exchange_server::Exchange;

/// Serves this node's feeds to peers.
pub struct ExchangeService {
    feeds: Arc<dyn Feeds>,
    /// Pull requests for the sync loop (from Announce).
    announced: AnnounceSender,
    /// The daemon's tracker and stop signal: Fetch streams run on them.
    tasks: TaskTracker,
    stop: watch::Receiver<bool>,
    /// Fetch streams each member may have open at once, across all its connections. Keys are
    /// authenticated members only, so the map is bounded by the consortium.
    fetch_slots: std::sync::Mutex<HashMap<Country, Arc<Semaphore>>>,
}

/// Fetch streams one member may have open at once, across all its connections: each holds at
/// most two entries in memory, so a member reading slowly (or not at all) costs a bounded buffer.
pub const MAX_FETCH_STREAMS_PER_MEMBER: usize = 16;

/// The longest one Fetch stream may take, however slowly the caller reads.
pub const FETCH_STREAM_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

impl ExchangeService {
    pub fn new(
        feeds: Arc<dyn Feeds>,
        announced: AnnounceSender,
        tasks: TaskTracker,
        stop: watch::Receiver<bool>,
    ) -> ExchangeService {
        ExchangeService {
            feeds,
            announced,
            tasks,
            stop,
            fetch_slots: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The caller's member code from its certificate; it must be a consortium member, or a
    /// member-to-be that the proposal with the current members' quorum adds (`Caller::prospective`).
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        // A refusal is logged: the caller passed TLS with a consortium certificate, so its
        // operator is someone this node's operator may need to talk to.
        let peer = request.remote_addr();
        let member = peer_member(request).inspect_err(|status| {
            tracing::warn!(
                ?peer,
                reason = status.message(),
                "caller refused: certificate names no member"
            );
        })?;
        if self.feeds.is_member(member) {
            return Ok(Caller {
                member,
                prospective: false,
            });
        }
        if self.feeds.is_prospective(member) {
            return Ok(Caller {
                member,
                prospective: true,
            });
        }
        tracing::warn!(?peer, %member, "caller refused: not a consortium member");
        Err(Status::permission_denied(format!(
            "{member} is not a consortium member"
        )))
    }
}

/// Who calls: a member, or a member-to-be that sees headers only (and governance entries
/// whole), until the version that adds it is in force.
#[derive(Debug, Clone, Copy)]
struct Caller {
    member: Country,
    prospective: bool,
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<proto::Entry, Status>> + Send>>;

#[tonic::async_trait]
impl Exchange for ExchangeService {
    async fn heads(&self, request: Request<proto::HeadsRequest>) -> Result<Response<proto::HeadsResponse>, Status> {
        self.caller(&request)?;
        // Read before the heads: a feed changed in between shows in the next summary.
        let summary = self.feeds.feeds_summary();
        if request.get_ref().known.as_slice() == summary.as_slice() {
            return Ok(Response::new(proto::HeadsResponse {
                heads: Vec::new(),
                summary: summary.to_vec(),
                unchanged: true,
            }));
        }
        let feeds = self.feeds.clone();
        let heads = blocking(move || feeds.heads())
            .await
            .map_err(store_status)?
            .into_iter()
            .map(|(p, h)| proto::Head {
                publisher: p.to_string(),
                seq: h.seq,
                digest: h.digest.to_vec(),
            })
            .collect();
        Ok(Response::new(proto::HeadsResponse {
            heads,
            summary: summary.to_vec(),
            unchanged: false,
        }))
    }

    type FetchStream = EntryStream;

    async fn fetch(&self, request: Request<proto::FetchRequest>) -> Result<Response<EntryStream>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let publisher = Country::parse(&req.publisher).filter(|c| c.is_iso()).ok_or_else(|| {
            // Quote a bounded prefix: the reply must not grow with whatever the caller sent.
            let shown: String = req.publisher.chars().take(16).collect();
            let more = if req.publisher.chars().count() > 16 { "…" } else { "" };
            Status::invalid_argument(format!("publisher: not a country code: {shown:?}{more}"))
        })?;
        if req.from_seq == 0 || req.to_seq < req.from_seq {
            return Err(Status::invalid_argument(format!(
                "bad range {}..={}",
                req.from_seq, req.to_seq
            )));
        }
        let count = req.to_seq - req.from_seq + 1;
        if count > MAX_FETCH_ENTRIES {
            return Err(Status::resource_exhausted(format!(
                "range of {count} entries exceeds the limit max_fetch_entries ({MAX_FETCH_ENTRIES})"
            )));
        }
        let slot = {
            let mut slots = self.fetch_slots.lock().unwrap_or_else(|p| p.into_inner());
            let member = slots
                .entry(caller.member)
                .or_insert_with(|| Arc::new(Semaphore::new(MAX_FETCH_STREAMS_PER_MEMBER)));
            member.clone().try_acquire_owned().map_err(|_| {
                Status::resource_exhausted(format!(
                    "{} has {MAX_FETCH_STREAMS_PER_MEMBER} Fetch streams open, the limit max_fetch_streams_per_member",
                    caller.member
                ))
            })?
        };
        if !req.digest.is_empty() {
            // One header by its digest, asked for as fork evidence: the header alone proves the
            // fork, so the payload never goes with it; the read holds a stream slot like any.
            let digest: [u8; 32] = req
                .digest
                .as_slice()
                .try_into()
                .map_err(|_| Status::invalid_argument(format!("digest: {} bytes, not 32", req.digest.len())))?;
            if req.from_seq != req.to_seq {
                return Err(Status::invalid_argument(
                    "a digest names one entry: from_seq must equal to_seq",
                ));
            }
            let (feeds, seq) = (self.feeds.clone(), req.from_seq);
            let read = move || {
                Ok(feeds.entry_with_digest(publisher, seq, &digest)?.map(|mut e| {
                    e.payload.clear();
                    e.has_payload = false;
                    e
                }))
            };
            let found = blocking(read).await.map_err(store_status)?;
            let stream = tokio_stream::iter(found.into_iter().map(move |e| {
                let _held = &slot;
                Ok(e)
            }));
            return Ok(Response::new(Box::pin(stream)));
        }
        // Entries are read off the async workers one at a time and handed over as the caller
        // reads them: a slow reader holds at most one entry queued (and one in flight) and no
        // thread, the whole stream has a deadline, and the task stops with the daemon.
        let (tx, rx) = mpsc::channel(1);
        let (feeds, mut stop) = (self.feeds.clone(), self.stop.clone());
        let deadline = tokio::time::Instant::now() + FETCH_STREAM_DEADLINE;
        self.tasks.spawn(async move {
            let _slot = slot;
            for seq in req.from_seq..=req.to_seq {
                let f = feeds.clone();
                let read = move || Ok(f.entry(publisher, seq)?.map(|entry| for_caller(&*f, entry, caller)));
                let item = match blocking(read).await {
                    Ok(Some(entry)) => Ok(entry),
                    Ok(None) => break,
                    Err(e) => Err(store_status(e)),
                };
                tokio::select! {
                    sent = tx.send(item) => if sent.is_err() { break },
                    _ = tokio::time::sleep_until(deadline) => {
                        tracing::warn!(peer = %caller.member, "fetch stream past its deadline: closed");
                        break;
                    }
                    _ = stop.wait_for(|stopping| *stopping) => break,
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn attestations(
        &self,
        request: Request<proto::AttestationsRequest>,
    ) -> Result<Response<proto::AttestationsResponse>, Status> {
        let caller = self.caller(&request)?;
        if caller.prospective {
            return Ok(Response::new(proto::AttestationsResponse::default()));
        }
        // Read before the notes: a note kept in between shows in the next summary.
        let summary = self.feeds.attestations_summary();
        let request = request.into_inner();
        if request.known.as_slice() == summary.as_slice() {
            return Ok(Response::new(proto::AttestationsResponse {
                notes: Vec::new(),
                summary: summary.to_vec(),
                unchanged: true,
            }));
        }
        if !request.known.is_empty() {
            // The caller asked whether anything changed since an answer it read: it has, and
            // the caller asks again with the times it holds. Sending every note here would
            // send each one again to every peer in every round with a change.
            return Ok(Response::new(proto::AttestationsResponse {
                notes: Vec::new(),
                summary: Vec::new(),
                unchanged: false,
            }));
        }
        // What the caller holds already: one time per member, bounded like the answer.
        let held: HashMap<Country, i64> = request
            .held
            .iter()
            .take(MAX_ATTESTATIONS)
            .filter_map(|h| Some((Country::parse(&h.member)?, h.time)))
            .collect();
        let feeds = self.feeds.clone();
        let notes = blocking(move || feeds.attestations()).await.map_err(store_status)?;
        let notes = notes
            .into_iter()
            .filter(|note| {
                let newer = crate::domain::attest::open(note)
                    .ok()
                    .and_then(|(text, _)| crate::domain::attest::Attestation::parse(text).ok())
                    .map(|a| held.get(&a.member).is_none_or(|t| a.time > *t));
                newer.unwrap_or(false)
            })
            .collect::<Vec<_>>();
        // Within what a caller reads: the rest comes on the next pull, once these are held;
        // an answer cut short carries no summary, so the caller asks in full next time.
        let mut budget = MAX_ATTESTATIONS_BYTES - 64 * 1024;
        let newer = notes.len();
        let notes: Vec<String> = notes
            .into_iter()
            .take(MAX_ATTESTATIONS)
            .take_while(|note| {
                let fits = note.len() + 8 <= budget;
                budget = budget.saturating_sub(note.len() + 8);
                fits
            })
            .collect();
        let whole = notes.len() == newer;
        Ok(Response::new(proto::AttestationsResponse {
            notes,
            summary: if whole { summary.to_vec() } else { Vec::new() },
            unchanged: false,
        }))
    }

    async fn announce(
        &self,
        request: Request<proto::AnnounceRequest>,
    ) -> Result<Response<proto::AnnounceResponse>, Status> {
        let caller = self.caller(&request)?;
        tracing::debug!(peer = %caller.member, heads = request.get_ref().heads.len(), "announce received");
        // Queued once per member until the sync loop takes it: announcing in a loop gains nothing.
        self.announced.announce(caller.member);
        Ok(Response::new(proto::AnnounceResponse {}))
    }
}

/// The entry as `caller` may see it: the payload only where the caller is in the audience, and
/// for a member-to-be only on governance entries.
fn for_caller<F: Feeds + ?Sized>(feeds: &F, mut entry: proto::Entry, caller: Caller) -> proto::Entry {
    let admitted = entry
        .envelope
        .as_ref()
        .and_then(|env| EntryHeader::decode(&env.payload).ok())
        .is_some_and(|h| feeds.may_receive(&h, caller.member) && (!caller.prospective || h.dataset().is_none()));
    if !admitted {
        entry.payload.clear();
        entry.has_payload = false;
    }
    entry
}

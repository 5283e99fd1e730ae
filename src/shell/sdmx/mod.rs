//! SDMX RESTful web services 2.1 on the dashboard's listener (SPEC §16): any statistical tool
//! (pysdmx, sdmx1, rsdmx, .Stat Suite, Excel plug-ins) reads a node's dataflows, their data
//! structures and codelists, and queries a key of the common view, as of now or as of any
//! moment this node lived through (`asOf`), with each revision's history (`includeHistory`).
//!
//! Read-only and bounded like the dashboard it shares a listener with (loopback only, the same
//! guard): [`query`] reads the request (pure), [`data`] selects observations from the view,
//! [`write`] and [`structure`] write the messages. No request renders more than
//! `sdmx_max_observations` observations (413), `includeHistory` reads at most
//! [`MAX_VINTAGES`] revisions, and one vintage (`asOf`, `includeHistory`) is computed at a
//! time (503 for the others meanwhile).

pub mod data;
pub mod query;
pub mod structure;
pub mod write;
mod xml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::domain::date::format_instant_millis;
use crate::domain::model::Country;
use crate::domain::reconcile::{Source, View};
use crate::node::Node;

use data::{observations, Select};
use query::{DataQuery, Query, SdmxError, STRUCTURE_TYPE};
use write::{DataSet, DataSetMeta, Meta, Writer};

/// The most revisions one `includeHistory` query reads (each is a view of its own).
pub const MAX_VINTAGES: usize = 64;

/// The SDMX routes, to merge into the dashboard's router.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/sdmx/2.1/{*path}", get(handle))
        .route("/sdmx/2.1", get(index))
        .route("/sdmx/2.1/", get(index))
}

async fn index() -> Response {
    error(SdmxError::no_results(
        "SDMX 2.1 REST: ask for dataflow, datastructure, codelist, conceptscheme or data/{flowRef}/{key}",
    ))
}

async fn handle(
    State(node): State<Arc<Node>>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params: Vec<(String, String)> = match serde_urlencoded::from_str(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return error(SdmxError::syntax(format!("query string: {e}"))),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .map(str::to_string);
    let query = match query::parse(&path, &params, accept.as_deref()) {
        Ok(q) => q,
        Err(e) => return error(e),
    };
    match query {
        Query::Data(q) if !q.include_history => stream(node, q).await,
        query => {
            let answered = tokio::task::spawn_blocking(move || answer(&node, query)).await;
            match answered {
                Ok(Ok((content_type, body))) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
                Ok(Err(e)) => error(e),
                Err(e) => error(SdmxError::internal(e.to_string())),
            }
        }
    }
}

/// Bytes gathered before a piece of a streamed answer is sent.
const CHUNK: usize = 64 * 1024;

/// Answers a data query as a stream: the observations are counted first (so a query over the
/// bound or without results gets its SDMX error, not half a message), then written a pair at a
/// time into a channel of a few chunks that the client drains at its own pace.
async fn stream(node: Arc<Node>, q: DataQuery) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let (ready, decided) = tokio::sync::oneshot::channel::<Result<&'static str, SdmxError>>();
    tokio::task::spawn_blocking(move || {
        let (view, digest) = match current_or_as_of(&node, q.as_of) {
            Ok(v) => v,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let accepted = match acceptance(&node, &view, &q) {
            Ok(a) => a,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let accepted_at = |s: &Source| accepted.get(&(s.publisher, s.seq)).copied().unwrap_or(0);
        let select = selection(&node, &q, &accepted_at);
        let mut count = 0u64;
        let counted = data::for_each_block(&view, q.flow, &select, &mut |block| {
            count += block.len() as u64;
            if count > select.limit {
                return Err(too_large(select.limit));
            }
            Ok(())
        });
        let verdict = counted.and_then(|()| {
            if count == 0 {
                Err(no_results(&q))
            } else {
                Ok(q.format.content_type())
            }
        });
        let failed = verdict.is_err();
        if ready.send(verdict).is_err() || failed {
            return;
        }
        let mut writer = Writer::new(meta(&node, &q));
        let mut buffer = writer.head(&[DataSetMeta {
            digest,
            consortium: view.consortium,
            valid_from: None,
        }]);
        buffer.push_str(&writer.open(0));
        // A client that went away closes the channel: the writing stops there.
        let sent = data::for_each_block::<()>(&view, q.flow, &select, &mut |block| {
            buffer.push_str(&writer.block(&block));
            if buffer.len() >= CHUNK {
                tx.blocking_send(Ok(std::mem::take(&mut buffer))).map_err(|_| ())?;
            }
            Ok(())
        });
        if sent.is_ok() {
            buffer.push_str(&writer.close());
            buffer.push_str(&writer.tail());
            let _ = tx.blocking_send(Ok(buffer));
        }
    });
    match decided.await {
        Ok(Ok(content_type)) => (
            [(header::CONTENT_TYPE, content_type)],
            axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
            .into_response(),
        Ok(Err(e)) => error(e),
        Err(_) => error(SdmxError::internal("the query's worker stopped")),
    }
}

/// An SDMX-ML 2.1 error message with its HTTP status.
fn error(e: SdmxError) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<mes:Error xmlns:mes=\"http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message\" \
         xmlns:com=\"http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common\"><mes:ErrorMessage code=\"{}\"><com:Text xml:lang=\"en\">{}</com:Text></mes:ErrorMessage></mes:Error>\n",
        e.code,
        xml::esc(&e.message)
    );
    (
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn header_xml(id: &str, prepared: &str, sender: Country) -> String {
    format!(
        "<mes:ID>{id}</mes:ID><mes:Test>false</mes:Test><mes:Prepared>{prepared}</mes:Prepared><mes:Sender id=\"{sender}\"/>"
    )
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The header fields and layout every message of `q` shares.
fn meta(node: &Node, q: &DataQuery) -> Meta {
    let now = now_millis();
    Meta {
        flow: q.flow,
        format: q.format,
        obs_dim: q.obs_dim,
        detail: q.detail,
        id: format!("ACCORD-{}-{now}", node.country()),
        prepared: format_instant_millis(now),
        sender: node.country().to_string(),
    }
}

fn too_large(limit: u64) -> SdmxError {
    SdmxError::too_large(format!(
        "the query selects more than {limit} observations (sdmx_max_observations): narrow the key or the periods"
    ))
}

fn no_results(q: &DataQuery) -> SdmxError {
    SdmxError::no_results(format!("no observations of {} match the query", q.flow.id()))
}

fn internal(e: crate::node::NodeError) -> SdmxError {
    SdmxError::internal(e.to_string())
}

/// The view now, or as of `t`, with its digest.
fn current_or_as_of(node: &Node, as_of: Option<i64>) -> Result<(Arc<View>, [u8; 32]), SdmxError> {
    match as_of {
        None => Ok((node.view().map_err(internal)?, node.view_digest().map_err(internal)?)),
        Some(t) => {
            let _slot = vintage_slot()?;
            let (v, d) = node.view_as_of(t).map_err(internal)?;
            Ok((Arc::new(v), d))
        }
    }
}

/// One vintage computed at a time: each verifies every entry and builds a whole view, so a
/// client (or another user of the host) sending many `asOf` or `includeHistory` queries at once
/// gets 503 for all but one instead of every core.
fn vintage_slot() -> Result<std::sync::MutexGuard<'static, ()>, SdmxError> {
    static VINTAGE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    match VINTAGE.try_lock() {
        Ok(guard) => Ok(guard),
        Err(std::sync::TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => Err(SdmxError::unavailable(
            "another asOf or includeHistory query is being computed: try again shortly",
        )),
    }
}

/// When this node accepted each input of `view`, for `updatedAfter`: read once per input, not
/// once per observation (empty without `updatedAfter`).
fn acceptance(node: &Node, view: &View, q: &DataQuery) -> Result<BTreeMap<(Country, u64), i64>, SdmxError> {
    let mut accepted = BTreeMap::new();
    if q.updated_after.is_some() {
        for source in view.inputs.values() {
            let at = node
                .accepted_at(source.publisher, source.seq)
                .map_err(internal)?
                .unwrap_or(0);
            accepted.insert((source.publisher, source.seq), at);
        }
    }
    Ok(accepted)
}

fn selection<'a>(node: &Node, q: &'a DataQuery, accepted_at: data::AcceptedAt<'a>) -> Select<'a> {
    Select {
        key: &q.key,
        periods: q.periods,
        updated_after: q.updated_after.map(|t| (t, accepted_at)),
        limit: node.config().sdmx_max_observations,
    }
}

/// Answers a structure query, or a data query held whole (`includeHistory`): the content type
/// and body.
pub fn answer(node: &Node, query: Query) -> Result<(&'static str, String), SdmxError> {
    match query {
        Query::Structure(selection) => {
            let now = now_millis();
            let header = header_xml(
                &format!("ACCORD-{}-{now}", node.country()),
                &format_instant_millis(now),
                node.country(),
            );
            let body = structure::structure_message(&selection, &header, &node.consortium());
            Ok((STRUCTURE_TYPE, body))
        }
        Query::Data(q) => {
            let datasets = if q.include_history {
                history(node, &q)?
            } else {
                let (view, digest) = current_or_as_of(node, q.as_of)?;
                vec![dataset(node, &view, digest, &q, None)?]
            };
            if datasets.iter().all(|d| d.obs.is_empty()) {
                return Err(no_results(&q));
            }
            Ok((q.format.content_type(), write::render(meta(node, &q), &datasets)))
        }
    }
}

/// The observations of `q` in `view` as one dataset held whole.
fn dataset(
    node: &Node,
    view: &View,
    digest: [u8; 32],
    q: &DataQuery,
    valid_from: Option<i64>,
) -> Result<DataSet, SdmxError> {
    let accepted = acceptance(node, view, q)?;
    let accepted_at = |s: &Source| accepted.get(&(s.publisher, s.seq)).copied().unwrap_or(0);
    let select = selection(node, q, &accepted_at);
    let obs = observations(view, q.flow, &select).map_err(|too| too_large(too.limit))?;
    Ok(DataSet {
        meta: DataSetMeta {
            digest,
            consortium: view.consortium,
            valid_from,
        },
        obs,
    })
}

/// `includeHistory`: one dataset per revision that changed the selected observations, each the
/// view as of the moment this node accepted that revision.
fn history(node: &Node, q: &DataQuery) -> Result<Vec<DataSet>, SdmxError> {
    let _slot = vintage_slot()?;
    let mut times = node.acceptance_times().map_err(internal)?;
    if let Some(t) = q.as_of {
        times.retain(|x| *x <= t);
    }
    if let Some(t) = q.updated_after {
        times.retain(|x| *x > t);
    }
    if times.len() > MAX_VINTAGES {
        return Err(SdmxError::too_large(format!(
            "includeHistory would read {} revisions (at most {MAX_VINTAGES}): narrow it with updatedAfter or asOf",
            times.len()
        )));
    }
    let mut out: Vec<DataSet> = Vec::new();
    let mut total = 0u64;
    for t in times {
        let (view, digest) = node.view_as_of(t).map_err(internal)?;
        let plain = DataQuery {
            updated_after: None,
            ..q.clone()
        };
        let ds = dataset(node, &view, digest, &plain, Some(t))?;
        if out.last().is_some_and(|last| last.obs == ds.obs) || (out.is_empty() && ds.obs.is_empty()) {
            continue;
        }
        total += ds.obs.len() as u64;
        if total > node.config().sdmx_max_observations {
            return Err(too_large(node.config().sdmx_max_observations));
        }
        out.push(ds);
    }
    Ok(out)
}

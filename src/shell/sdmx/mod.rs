//! SDMX RESTful web services 2.1 on the dashboard's listener (SPEC §16): any statistical tool
//! (pysdmx, sdmx1, rsdmx, .Stat Suite, Excel plug-ins) reads a node's dataflows, their data
//! structures and codelists, and queries a key of the common view, as of now or as of any
//! moment this node lived through (`asOf`), with each revision's history (`includeHistory`).
//!
//! Read-only and bounded like the dashboard it shares a listener with (loopback only, the same
//! guard): [`query`] reads the request (pure), [`data`] selects observations from the view,
//! [`write`] and [`structure`] write the messages. No request renders more than
//! `sdmx_max_observations` observations (413), and `includeHistory` reads at most
//! [`MAX_VINTAGES`] revisions.

pub mod data;
pub mod query;
pub mod structure;
pub mod write;
mod xml;

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
use write::{DataSet, Message};

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
    let answered = tokio::task::spawn_blocking(move || answer(&node, query)).await;
    match answered {
        Ok(Ok((content_type, body))) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Ok(Err(e)) => error(e),
        Err(e) => error(SdmxError::internal(e.to_string())),
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

/// Answers a parsed query over `node`: the content type and body.
pub fn answer(node: &Node, query: Query) -> Result<(&'static str, String), SdmxError> {
    let now = now_millis();
    let id = format!("ACCORD-{}-{now}", node.country());
    let prepared = format_instant_millis(now);
    match query {
        Query::Structure(selection) => {
            let consortium = node.consortium();
            let body =
                structure::structure_message(&selection, &header_xml(&id, &prepared, node.country()), &consortium);
            Ok((STRUCTURE_TYPE, body))
        }
        Query::Data(q) => {
            let datasets = if q.include_history {
                history(node, &q)?
            } else {
                let (view, digest) = match q.as_of {
                    None => (node.view().map_err(internal)?, node.view_digest().map_err(internal)?),
                    Some(t) => {
                        let (v, d) = node.view_as_of(t).map_err(internal)?;
                        (Arc::new(v), d)
                    }
                };
                vec![dataset(node, &view, digest, &q, None)?]
            };
            if datasets.iter().all(|d| d.obs.is_empty()) {
                return Err(SdmxError::no_results(format!(
                    "no observations of {} match the query",
                    q.flow.id()
                )));
            }
            let message = Message {
                flow: q.flow,
                datasets,
                obs_dim: q.obs_dim,
                detail: q.detail,
                id,
                prepared,
                sender: node.country().to_string(),
            };
            let body = match q.format {
                query::DataFormat::StructureSpecific => write::structure_specific(&message),
                query::DataFormat::Csv => write::csv(&message),
                query::DataFormat::Json => write::json(&message),
            };
            Ok((q.format.content_type(), body))
        }
    }
}

fn internal(e: crate::node::NodeError) -> SdmxError {
    SdmxError::internal(e.to_string())
}

/// The observations of `q` in `view` as one dataset.
fn dataset(
    node: &Node,
    view: &View,
    digest: [u8; 32],
    q: &DataQuery,
    valid_from: Option<i64>,
) -> Result<DataSet, SdmxError> {
    // When this node accepted each input: read once per input, not once per observation.
    let mut accepted: BTreeMap<(Country, u64), i64> = BTreeMap::new();
    if q.updated_after.is_some() {
        for source in view.inputs.values() {
            let at = node
                .accepted_at(source.publisher, source.seq)
                .map_err(internal)?
                .unwrap_or(0);
            accepted.insert((source.publisher, source.seq), at);
        }
    }
    let accepted_at = |s: &Source| accepted.get(&(s.publisher, s.seq)).copied().unwrap_or(0);
    let select = Select {
        key: &q.key,
        periods: q.periods,
        updated_after: q.updated_after.map(|t| (t, &accepted_at as data::AcceptedAt<'_>)),
        limit: node.config().sdmx_max_observations,
    };
    let obs = observations(view, q.flow, &select).map_err(|too| {
        SdmxError::too_large(format!(
            "the query selects more than {} observations (sdmx_max_observations): narrow the key or the periods",
            too.limit
        ))
    })?;
    Ok(DataSet {
        obs,
        digest,
        consortium: view.consortium,
        valid_from,
    })
}

/// `includeHistory`: one dataset per revision that changed the selected observations, each the
/// view as of the moment this node accepted that revision.
fn history(node: &Node, q: &DataQuery) -> Result<Vec<DataSet>, SdmxError> {
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
            return Err(SdmxError::too_large(format!(
                "the history holds more than {} observations (sdmx_max_observations): narrow the key or the periods",
                node.config().sdmx_max_observations
            )));
        }
        out.push(ds);
    }
    Ok(out)
}

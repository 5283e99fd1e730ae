//! The read-only web dashboard (SPEC §13), served by the daemon on `dashboard_listen`
//! (loopback only): an overview for operators, the flows matrix (a group of members or the
//! largest, ordered by code, size or asymmetry: `matrix`), pairs, monthly series and
//! breakdowns for analysts, asylum and permits side by side, downloads of what each page shows,
//! and the JSON of `accord status` and `accord view` at `/api/status` and `/api/view`.
//!
//! Pages are rendered on the server from the node's cached view (aggregates first; a pair's
//! rows only when that pair is chosen; side-by-side rows a page at a time), with minijinja
//! templates and one embedded chart library (Chart.js, pinned, MIT): nothing is fetched at run
//! time. Every page names the view digest it was drawn from.
//!
//! The dashboard holds no credentials and changes nothing, but it shows the view to whoever
//! reaches it: it answers only requests whose `Host` is a loopback name (so a web page
//! elsewhere cannot read it through DNS rebinding), and sends a strict Content-Security-Policy.

mod matrix;
mod pages;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::value::Serde;
use minijinja::Environment;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::domain::model::{Country, Cube, Period};
use crate::domain::reconcile::{render, Format, ViewFilter};
use crate::node::Node;
pub use matrix::{Choice, Sort};

pub use pages::{Flows, SideBySide, ROWS_PER_PAGE};

/// The Chart.js build embedded, its version and SHA-256 (checked by a test).
pub const CHART_JS: &[u8] = include_bytes!("../../../assets/chart.js/chart.umd.min.js");
pub const CHART_JS_VERSION: &str = "4.6.1";
pub const CHART_JS_SHA256: &str = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2";
const CHART_JS_LICENSE: &str = include_str!("../../../assets/chart.js/LICENSE.md");
const CSS: &str = include_str!("../../../assets/dashboard.css");
const JS: &str = include_str!("../../../assets/dashboard.js");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("overview.html", include_str!("templates/overview.html")),
            ("flows.html", include_str!("templates/flows.html")),
            ("side.html", include_str!("templates/side.html")),
        ] {
            // The templates are part of the binary; a syntax error is caught by the tests.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "dashboard template does not parse");
            }
        }
        env
    })
}

/// The dashboard's routes over `node`.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/flows", get(flows))
        .route("/side", get(side))
        .route("/download", get(download))
        .route("/api/status", get(api_status))
        .route("/api/view", get(api_view))
        .route(
            "/assets/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", CSS.as_bytes()) }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS.as_bytes()) }),
        )
        .route(
            "/assets/chart.js/chart.umd.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", CHART_JS) }),
        )
        .route(
            "/assets/chart.js/LICENSE.md",
            get(|| async { asset("text/plain; charset=utf-8", CHART_JS_LICENSE.as_bytes()) }),
        )
        .merge(crate::shell::sdmx::routes())
        .layer(axum::middleware::from_fn(guard))
        .with_state(node)
}

/// Serves the dashboard on `listener` until `stop` changes, within the deadlines and the cap
/// every HTTP listener of the node has (`crate::io::http`).
pub async fn serve(node: Arc<Node>, listener: TcpListener, stop: watch::Receiver<bool>) {
    crate::io::http::serve(
        listener,
        router(node),
        crate::io::http::Limits::default(),
        "dashboard",
        stop,
    )
    .await;
}

/// Whether `host` (a `Host` header) names this machine's loopback: `localhost`, `127.0.0.1`,
/// `[::1]`, with or without a port.
pub fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses requests for another host (DNS rebinding) and sets the security headers.
async fn guard(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "the Accord dashboard answers on loopback names only (localhost, 127.0.0.1, [::1])\n",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages and data change with every accepted entry: never cached. Assets say otherwise.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// An embedded file: fixed for the life of the binary, so the browser may keep it an hour.
fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// An error page: what went wrong, as text.
fn failure(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// Runs `work` off the async threads (the node reads its store and may compute the view).
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, Response> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(message)) => Err(failure(StatusCode::INTERNAL_SERVER_ERROR, message)),
        Err(e) => Err(failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

fn html(template: &str, context: minijinja::Value) -> Response {
    match templates().get_template(template).and_then(|t| t.render(context)) {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("dashboard page {template}: {e}"),
        ),
    }
}

/// What a view page or download asks for in its query string (every field optional): the part
/// of the view, the download format and the side-by-side page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub filter: ViewFilter,
    /// `csv`, `sdmx-csv` or empty; only downloads read it, and check it there.
    pub format: String,
    /// The side-by-side page, from 0.
    pub page: usize,
    /// The flows matrix shows the modelled estimates (SPEC §15) instead of the rule's figures.
    pub estimates: bool,
    /// The members the flows matrix shows (none: all, or the largest past a limit) and its
    /// order.
    pub matrix: Choice,
}

/// The query string's fields as sent, before they are checked.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct QueryFields {
    cube: String,
    period: String,
    origin: String,
    destination: String,
    format: String,
    page: usize,
    show: String,
    members: String,
    sort: String,
}

/// Reads a view page's or download's query string as every handler does: form-urlencoded
/// fields (serde_urlencoded, as axum's `Query` reads them), the filter checked as `accord view`
/// checks its arguments. One pure function, so the fuzz target runs what the handlers run; an
/// error names the bad field.
pub fn parse_filters(query: &str) -> Result<Filters, String> {
    let q: QueryFields = serde_urlencoded::from_str(query).map_err(|e| format!("query string: {e}"))?;
    let filter = crate::shell::admin::view_args(&q.cube, &q.period, &q.origin, &q.destination, "json")
        .map(|(filter, _)| filter)
        .map_err(|e| e.replace("--", ""))?;
    let estimates = match q.show.as_str() {
        "" | "reconciled" => false,
        "estimate" => true,
        other => return Err(format!("show: \"reconciled\" or \"estimate\", not {other:?}")),
    };
    let sort = Sort::parse(&q.sort).ok_or_else(|| {
        format!(
            "sort: \"code\", \"size\" or \"asymmetry\", not {:?}",
            crate::domain::excerpt::excerpt(&q.sort)
        )
    })?;
    let members = q
        .members
        .split([',', ' '])
        .filter(|m| !m.is_empty())
        .map(|m| {
            Country::parse(m)
                .ok_or_else(|| format!("members: not a member code: {:?}", crate::domain::excerpt::excerpt(m)))
        })
        .collect::<Result<BTreeSet<Country>, String>>()?;
    Ok(Filters {
        filter,
        format: q.format,
        page: q.page,
        estimates,
        matrix: Choice { members, sort },
    })
}

/// The query string of the filters that are set (values are codes, digits and dashes, so
/// nothing needs escaping); [`parse_filters`] reads it back to the same filter.
pub fn filter_query(filter: &ViewFilter) -> String {
    let mut parts = Vec::new();
    if let Some(c) = filter.cube {
        parts.push(format!("cube={c}"));
    }
    if let Some(p) = filter.period {
        parts.push(format!("period={p}"));
    }
    if let Some(o) = filter.origin {
        parts.push(format!("origin={o}"));
    }
    if let Some(d) = filter.destination {
        parts.push(format!("destination={d}"));
    }
    parts.join("&")
}

/// What every page's header shows.
fn header_context(node: &Node, page: &str, title: &str) -> Result<minijinja::Value, String> {
    let digest = node.view_digest().map_err(|e| e.to_string())?;
    Ok(minijinja::context! {
        country => node.country().to_string(),
        page => page,
        title => title,
        view_digest => crate::domain::hex::encode(&digest),
        consortium_version => node.governance().current().version,
    })
}

async fn overview(State(node): State<Arc<Node>>) -> Response {
    let page = blocking(move || {
        let status = node.status().map_err(|e| e.to_string())?;
        let now = crate::domain::date::unix_now();
        let expiries: Vec<minijinja::Value> = node
            .expiries()
            .into_iter()
            .map(|(_, what, at)| {
                minijinja::context! {
                    what => what,
                    at => crate::domain::date::format_timestamp(at),
                    soon => at - now <= crate::node::EXPIRY_WARNING_SECS,
                }
            })
            .collect();
        let base = header_context(&node, "overview", "overview")?;
        Ok(minijinja::context! { status => Serde(status), expiries => expiries, ..base })
    })
    .await;
    match page {
        Ok(context) => html("overview.html", context),
        Err(r) => r,
    }
}

async fn flows(State(node): State<Arc<Node>>, RawQuery(query): RawQuery) -> Response {
    let q = match parse_filters(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e),
    };
    let (filter, estimates, choice) = (q.filter, q.estimates, q.matrix);
    let page = blocking(move || {
        let view = node.view().map_err(|e| e.to_string())?;
        let f = Flows::build(
            &view,
            filter.period,
            filter.origin,
            filter.destination,
            estimates,
            &choice,
        );
        let shown = ViewFilter {
            cube: Some(Cube::Flows),
            period: f.period.as_deref().and_then(Period::parse),
            ..filter
        };
        let series_json = serde_json::to_string(&f.series).unwrap_or_default();
        let base = header_context(&node, "flows", "flows")?;
        Ok(minijinja::context! { f => Serde(f), series_json => series_json, query => filter_query(&shown), ..base })
    })
    .await;
    match page {
        Ok(context) => html("flows.html", context),
        Err(r) => r,
    }
}

async fn side(State(node): State<Arc<Node>>, RawQuery(query): RawQuery) -> Response {
    let q = match parse_filters(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e),
    };
    let filter = q.filter;
    let cube = match filter.cube {
        Some(c @ (Cube::Asylum | Cube::Permits)) => c,
        _ => return failure(StatusCode::BAD_REQUEST, "cube: asylum or permits".into()),
    };
    let page = q.page;
    let rendered = blocking(move || {
        let view = node.view().map_err(|e| e.to_string())?;
        let s = SideBySide::build(&view, cube, filter.period, page);
        let shown = ViewFilter {
            cube: Some(cube),
            period: s.period.as_deref().and_then(Period::parse),
            ..Default::default()
        };
        let base = header_context(&node, cube.as_str(), cube.as_str())?;
        Ok(minijinja::context! { s => Serde(s), query => filter_query(&shown), ..base })
    })
    .await;
    match rendered {
        Ok(context) => html("side.html", context),
        Err(r) => r,
    }
}

/// The CSV or SDMX-CSV of what a page shows, as `accord view` writes it for the same filters.
async fn download(State(node): State<Arc<Node>>, RawQuery(query): RawQuery) -> Response {
    let q = match parse_filters(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e),
    };
    let filter = q.filter;
    let Some(_slot) = render_slot() else {
        return busy();
    };
    let (format, extension) = match q.format.as_str() {
        "csv" | "" => (Format::Csv, "csv"),
        "sdmx-csv" => (Format::SdmxCsv, "sdmx.csv"),
        other => {
            return failure(
                StatusCode::BAD_REQUEST,
                format!("format: csv or sdmx-csv, not {other:?}"),
            )
        }
    };
    let body = blocking(move || Ok(render(&*node.view().map_err(|e| e.to_string())?, &filter, format))).await;
    match body {
        Ok(text) => {
            let cube = filter.cube.unwrap_or(Cube::Flows);
            let period = filter.period.map(|p| format!("-{p}")).unwrap_or_default();
            let disposition = format!("attachment; filename=\"accord-{cube}{period}.{extension}\"");
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                text,
            )
                .into_response()
        }
        Err(r) => r,
    }
}

async fn api_status(State(node): State<Arc<Node>>) -> Response {
    match blocking(move || node.status().map_err(|e| e.to_string())).await {
        Ok(status) => json(crate::shell::report::status_json(&status)),
        Err(r) => r,
    }
}

/// `accord view --format json` for the same filters, byte for byte.
async fn api_view(State(node): State<Arc<Node>>, RawQuery(query): RawQuery) -> Response {
    let q = match parse_filters(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e),
    };
    let filter = q.filter;
    let Some(_slot) = render_slot() else {
        return busy();
    };
    match blocking(move || Ok(render(&*node.view().map_err(|e| e.to_string())?, &filter, Format::Json))).await {
        Ok(text) => json(text),
        Err(r) => r,
    }
}

/// Whole-view renders (`/api/view`, `/download`) at once: each holds the rendered text of up to
/// the whole view in memory, so a reader cannot multiply that by opening many requests.
const MAX_RENDERS: usize = 2;

fn render_slot() -> Option<tokio::sync::SemaphorePermit<'static>> {
    static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_RENDERS);
    RENDERS.try_acquire().ok()
}

fn busy() -> Response {
    failure(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{MAX_RENDERS} views are being rendered already: try again in a moment"),
    )
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

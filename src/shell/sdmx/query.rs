//! Reading an SDMX RESTful 2.1 request (SPEC §16): the path under `/sdmx/2.1/`, the query
//! string and the `Accept` header, into a [`Query`] or the SDMX error that answers it. Pure, so
//! every refusal is tested without a socket: 400 for bad syntax, 404 for a structure or flow
//! that does not exist, 406 for a format nobody here writes, 501 for what SDMX defines and
//! Accord does not serve.

use super::data::{valid_id, KeyFilter, Periods};
use super::structure::{Codelist, Flow, Selection, AGENCY, VERSION};
use super::write::{Detail, ObsDim};

/// An SDMX error: the HTTP status, SDMX's error code and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdmxError {
    pub status: u16,
    pub code: u16,
    pub message: String,
}

impl SdmxError {
    pub fn no_results(message: impl Into<String>) -> SdmxError {
        SdmxError {
            status: 404,
            code: 100,
            message: message.into(),
        }
    }

    pub fn syntax(message: impl Into<String>) -> SdmxError {
        SdmxError {
            status: 400,
            code: 140,
            message: message.into(),
        }
    }

    pub fn not_acceptable(message: impl Into<String>) -> SdmxError {
        SdmxError {
            status: 406,
            code: 406,
            message: message.into(),
        }
    }

    pub fn too_large(message: impl Into<String>) -> SdmxError {
        SdmxError {
            status: 413,
            code: 510,
            message: message.into(),
        }
    }

    pub fn not_implemented(message: impl Into<String>) -> SdmxError {
        SdmxError {
            status: 501,
            code: 501,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> SdmxError {
        SdmxError {
            status: 503,
            code: 503,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> SdmxError {
        SdmxError {
            status: 500,
            code: 500,
            message: message.into(),
        }
    }
}

/// How a data message is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    StructureSpecific,
    Csv,
    Json,
}

impl DataFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            DataFormat::StructureSpecific => "application/vnd.sdmx.structurespecificdata+xml; version=2.1",
            DataFormat::Csv => "application/vnd.sdmx.data+csv; version=1.0.0; charset=utf-8",
            DataFormat::Json => "application/vnd.sdmx.data+json; version=1.0.0; charset=utf-8",
        }
    }
}

pub const STRUCTURE_TYPE: &str = "application/vnd.sdmx.structure+xml; version=2.1";

/// A data query.
#[derive(Debug, Clone)]
pub struct DataQuery {
    pub flow: Flow,
    pub key: KeyFilter,
    pub periods: Periods,
    pub updated_after: Option<i64>,
    pub include_history: bool,
    pub as_of: Option<i64>,
    pub obs_dim: ObsDim,
    pub detail: Detail,
    pub format: DataFormat,
}

/// A request the node answers.
#[derive(Debug, Clone)]
pub enum Query {
    Structure(Selection),
    Data(DataQuery),
}

/// The structure resources served.
const STRUCTURES: [&str; 4] = ["dataflow", "datastructure", "codelist", "conceptscheme"];
/// Resources SDMX 2.1 defines that a node does not serve (501, not 404).
const UNSERVED: [&str; 19] = [
    "metadata",
    "schema",
    "availableconstraint",
    "metadatastructure",
    "metadataflow",
    "provisionagreement",
    "structure",
    "categoryscheme",
    "contentconstraint",
    "actualconstraint",
    "allowedconstraint",
    "attachementconstraint",
    "categorisation",
    "hierarchicalcodelist",
    "agencyscheme",
    "dataproviderscheme",
    "dataconsumerscheme",
    "organisationunitscheme",
    "process",
];

/// Reads a request: `path` after `/sdmx/2.1/`, the decoded query parameters, `Accept`.
pub fn parse(path: &str, params: &[(String, String)], accept: Option<&str>) -> Result<Query, SdmxError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let resource = segments[0];
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if resource == "data" {
        return parse_data(&segments[1..], param, accept).map(Query::Data);
    }
    if STRUCTURES.contains(&resource) {
        structure_format(param("format"), accept)?;
        return parse_structure(resource, &segments[1..], param).map(Query::Structure);
    }
    if UNSERVED.contains(&resource) {
        return Err(SdmxError::not_implemented(format!(
            "{resource} queries are not served here; a node serves dataflow, datastructure, codelist, conceptscheme and data"
        )));
    }
    Err(SdmxError::no_results(format!(
        "no SDMX resource {resource:?}; a node serves dataflow, datastructure, codelist, conceptscheme and data under /sdmx/2.1/"
    )))
}

/// Whether `wanted` (a path segment or `all`) admits `actual`.
fn matches(wanted: Option<&&str>, actual: &str) -> bool {
    match wanted {
        None => true,
        Some(w) => *w == "all" || *w == "*" || *w == actual || (*w == "latest" && !actual.is_empty()),
    }
}

fn parse_structure<'a>(
    resource: &str,
    segments: &[&str],
    param: impl Fn(&str) -> Option<&'a str>,
) -> Result<Selection, SdmxError> {
    if segments.len() > 3 {
        return Err(SdmxError::not_implemented(
            "item queries (a fourth path segment) are not served; ask for the whole scheme",
        ));
    }
    for s in segments {
        if !(valid_id(s) || s.contains(['+', '.', ','])) {
            return Err(SdmxError::syntax(format!("{s:?} is not an SDMX ID")));
        }
    }
    let (agency, id, version) = (segments.first(), segments.get(1), segments.get(2));
    let flows: Vec<Flow> = Flow::ALL
        .into_iter()
        .filter(|f| matches(agency, AGENCY) && matches(id, f.id()) && matches(version, VERSION))
        .collect();
    let mut selection = Selection::default();
    match resource {
        "dataflow" => selection.flows = flows.clone(),
        "datastructure" => selection.structures = flows.clone(),
        "codelist" => {
            selection.codelists = Codelist::ALL
                .into_iter()
                .filter(|c| matches(agency, c.agency()) && matches(id, c.id()) && matches(version, c.version()))
                .collect()
        }
        _ => selection.concepts = matches(agency, AGENCY) && matches(id, "CS_MIGRATION") && matches(version, VERSION),
    }
    if selection.is_empty() {
        return Err(SdmxError::no_results(format!("no {resource} {}", segments.join("/"))));
    }
    let references = param("references").unwrap_or("none");
    let users = |pick: &dyn Fn(Flow) -> bool| -> Vec<Flow> { Flow::ALL.into_iter().filter(|f| pick(*f)).collect() };
    match (resource, references) {
        (_, "none") => {}
        ("dataflow", "children" | "datastructure") => selection.structures = selection.flows.clone(),
        ("dataflow", "descendants" | "all") => {
            selection.structures = selection.flows.clone();
            selection = selection.with_children();
        }
        ("dataflow", "codelist" | "conceptscheme") => {
            let with = Selection {
                structures: selection.flows.clone(),
                ..Selection::default()
            }
            .with_children();
            if references == "codelist" {
                selection.codelists = with.codelists;
            } else {
                selection.concepts = true;
            }
        }
        ("datastructure", "children" | "descendants") => selection = selection.with_children(),
        ("datastructure", "all") => {
            selection = selection.with_children();
            selection.flows = selection.structures.clone();
        }
        ("datastructure", "parents" | "parentsandsiblings" | "dataflow") => selection.flows = selection.structures.clone(),
        ("datastructure", "codelist") => {
            let with = selection.clone().with_children();
            selection.codelists = with.codelists;
        }
        ("datastructure", "conceptscheme") => selection.concepts = true,
        ("codelist", "parents" | "parentsandsiblings" | "all" | "datastructure") => {
            let chosen = selection.codelists.clone();
            selection.structures = users(&|f| f.codelists().iter().any(|c| chosen.contains(c)));
        }
        ("conceptscheme", "parents" | "parentsandsiblings" | "all" | "datastructure") => {
            selection.structures = Flow::ALL.to_vec()
        }
        (_, "children" | "descendants" | "parents" | "parentsandsiblings" | "all" | "dataflow" | "datastructure" | "codelist" | "conceptscheme") => {}
        (_, other) => {
            return Err(SdmxError::syntax(format!(
                "references: {other:?} is not one of none, parents, parentsandsiblings, children, descendants, all or a structure type"
            )))
        }
    }
    match param("detail").unwrap_or("full") {
        "full" | "allstubs" | "referencestubs" | "allcompletestubs" | "referencecompletestubs" | "referencepartial" => {
        }
        other => {
            return Err(SdmxError::syntax(format!(
                "detail: {other:?} is not a structure detail"
            )))
        }
    }
    Ok(selection)
}

fn structure_format(format: Option<&str>, accept: Option<&str>) -> Result<(), SdmxError> {
    if let Some(f) = format {
        return match f {
            "structure" | "sdmx-ml" | "xml" => Ok(()),
            other => Err(SdmxError::not_acceptable(format!(
                "format={other}: structures are written as SDMX-ML 2.1 (format=structure)"
            ))),
        };
    }
    let Some(accept) = accept else { return Ok(()) };
    let ok = media_types(accept).any(|m| {
        matches!(
            m.as_str(),
            "application/vnd.sdmx.structure+xml" | "application/xml" | "text/xml" | "application/*" | "text/*" | "*/*"
        )
    });
    if ok {
        Ok(())
    } else {
        Err(SdmxError::not_acceptable(format!(
            "Accept: {accept}: structures are written as {STRUCTURE_TYPE}"
        )))
    }
}

/// The media types of an `Accept` header, parameters dropped, lower case, in order.
fn media_types(accept: &str) -> impl Iterator<Item = String> + '_ {
    accept
        .split(',')
        .map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty())
}

fn data_format(format: Option<&str>, accept: Option<&str>) -> Result<DataFormat, SdmxError> {
    if let Some(f) = format {
        return match f {
            "structurespecificdata" | "structurespecific" => Ok(DataFormat::StructureSpecific),
            "csvdata" | "csv" | "sdmx-csv" => Ok(DataFormat::Csv),
            "jsondata" | "json" | "sdmx-json" => Ok(DataFormat::Json),
            "genericdata" | "generictimeseriesdata" | "structurespecifictimeseriesdata" => {
                Err(SdmxError::not_acceptable(format!(
                    "format={f}: data is written as structurespecificdata, csvdata or jsondata"
                )))
            }
            other => Err(SdmxError::syntax(format!(
                "format: {other:?} is not structurespecificdata, csvdata or jsondata"
            ))),
        };
    }
    let Some(accept) = accept else {
        return Ok(DataFormat::StructureSpecific);
    };
    for m in media_types(accept) {
        match m.as_str() {
            "application/vnd.sdmx.structurespecificdata+xml"
            | "application/xml"
            | "text/xml"
            | "application/*"
            | "*/*" => return Ok(DataFormat::StructureSpecific),
            "application/vnd.sdmx.data+csv" | "text/csv" | "text/*" => return Ok(DataFormat::Csv),
            "application/vnd.sdmx.data+json" | "application/json" => return Ok(DataFormat::Json),
            _ => {}
        }
    }
    Err(SdmxError::not_acceptable(format!(
        "Accept: {accept}: data is written as application/vnd.sdmx.structurespecificdata+xml;version=2.1, \
         application/vnd.sdmx.data+csv;version=1.0.0 or application/vnd.sdmx.data+json;version=1.0.0"
    )))
}

fn parse_data<'a>(
    segments: &[&str],
    param: impl Fn(&str) -> Option<&'a str>,
    accept: Option<&str>,
) -> Result<DataQuery, SdmxError> {
    let Some(flow_ref) = segments.first().filter(|s| !s.is_empty()) else {
        return Err(SdmxError::syntax("data queries name a dataflow: data/{flowRef}/{key}"));
    };
    if segments.len() > 3 {
        return Err(SdmxError::syntax(
            "data/{flowRef}/{key}/{providerRef}: too many path segments",
        ));
    }
    let parts: Vec<&str> = flow_ref.split(',').collect();
    let (agency, id, version) = match parts.as_slice() {
        [id] => (AGENCY, *id, "latest"),
        [agency, id] => (*agency, *id, "latest"),
        [agency, id, version] => (*agency, *id, *version),
        _ => {
            return Err(SdmxError::syntax(format!(
                "flowRef {flow_ref:?}: AGENCY,ID,VERSION at most"
            )))
        }
    };
    if !parts.iter().all(|p| valid_id(p) || p.contains('.')) {
        return Err(SdmxError::syntax(format!(
            "flowRef {flow_ref:?} is not an SDMX reference"
        )));
    }
    let flow = Flow::parse(id)
        .filter(|_| matches!(agency, AGENCY | "all") && matches!(version, VERSION | "latest" | "all"))
        .ok_or_else(|| {
            SdmxError::no_results(format!(
                "no dataflow {flow_ref}; the dataflows are {}",
                Flow::ALL.map(|f| format!("{AGENCY},{},{VERSION}", f.id())).join(", ")
            ))
        })?;
    let key = KeyFilter::parse(flow, segments.get(1).copied().unwrap_or("all")).map_err(SdmxError::syntax)?;
    if let Some(provider) = segments.get(2) {
        if !matches!(*provider, "all" | "ALL" | AGENCY) && !provider.starts_with("ACCORD,") {
            return Err(SdmxError::no_results(format!("no data provider {provider:?}")));
        }
    }
    for unsupported in ["firstNObservations", "lastNObservations"] {
        if param(unsupported).is_some() {
            return Err(SdmxError::not_implemented(format!(
                "{unsupported} is not supported; use startPeriod and endPeriod"
            )));
        }
    }
    let periods = Periods::parse(param("startPeriod"), param("endPeriod")).map_err(SdmxError::syntax)?;
    let instant = |name: &str| -> Result<Option<i64>, SdmxError> {
        param(name)
            .map(|t| {
                crate::domain::date::parse_instant_millis(t).ok_or_else(|| {
                    SdmxError::syntax(format!("{name}: not an RFC 3339 time {t:?} (2026-12-07T18:10:25Z)"))
                })
            })
            .transpose()
    };
    let include_history = match param("includeHistory").unwrap_or("false") {
        "false" => false,
        "true" => true,
        other => {
            return Err(SdmxError::syntax(format!(
                "includeHistory: true or false, not {other:?}"
            )))
        }
    };
    let obs_dim = match param("dimensionAtObservation") {
        None => ObsDim::Time,
        Some(d) => ObsDim::parse(flow, d).ok_or_else(|| {
            SdmxError::syntax(format!(
                "dimensionAtObservation: {d:?} is not TIME_PERIOD, AllDimensions or a dimension of {}",
                flow.id()
            ))
        })?,
    };
    let detail = match param("detail") {
        None => Detail::Full,
        Some(d) => Detail::parse(d).ok_or_else(|| {
            SdmxError::syntax(format!("detail: {d:?} is not full, dataonly, serieskeysonly or nodata"))
        })?,
    };
    let format = data_format(param("format"), accept)?;
    if include_history && format != DataFormat::StructureSpecific {
        return Err(SdmxError::not_implemented(
            "includeHistory is served as SDMX-ML (one dataset per revision); CSV and JSON have no place for it",
        ));
    }
    Ok(DataQuery {
        flow,
        key,
        periods,
        updated_after: instant("updatedAfter")?,
        include_history,
        as_of: instant("asOf")?,
        obs_dim,
        detail,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(path: &str, params: &[(&str, &str)], accept: Option<&str>) -> Result<Query, SdmxError> {
        let params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse(path, &params, accept)
    }

    fn status(r: Result<Query, SdmxError>) -> u16 {
        r.map(|_| 200).unwrap_or_else(|e| e.status)
    }

    #[test]
    fn structure_queries_select_what_they_name_and_their_references() {
        let Ok(Query::Structure(s)) = ask("dataflow", &[], None) else {
            panic!()
        };
        assert_eq!(s.flows, Flow::ALL.to_vec());
        assert!(s.structures.is_empty());
        let Ok(Query::Structure(s)) = ask(
            "dataflow/ACCORD/MIG_FLOWS_MIRROR/latest",
            &[("references", "all")],
            None,
        ) else {
            panic!()
        };
        assert_eq!(
            (s.flows.clone(), s.structures.clone()),
            (vec![Flow::Mirror], vec![Flow::Mirror])
        );
        assert!(s.codelists.contains(&Codelist::Measure) && s.concepts);
        let Ok(Query::Structure(s)) = ask(
            "datastructure/ACCORD/MIG_FLOWS_REPORTED",
            &[("references", "children")],
            None,
        ) else {
            panic!()
        };
        assert!(s.codelists.contains(&Codelist::Direction) && !s.codelists.contains(&Codelist::Measure));
        let Ok(Query::Structure(s)) = ask("codelist/SDMX/CL_FREQ/2.1", &[], None) else {
            panic!()
        };
        assert_eq!(s.codelists, vec![Codelist::Freq]);
        assert_eq!(status(ask("codelist/ACCORD/CL_FREQ", &[], None)), 404);
        assert_eq!(status(ask("dataflow/ACCORD/NOPE", &[], None)), 404);
        assert_eq!(status(ask("dataflow", &[("references", "cousins")], None)), 400);
        assert_eq!(status(ask("categoryscheme", &[], None)), 501);
        assert_eq!(status(ask("codelist/SDMX/CL_FREQ/2.1/A", &[], None)), 501);
        assert_eq!(status(ask("nothing", &[], None)), 404);
        assert_eq!(status(ask("dataflow", &[], Some("application/json"))), 406);
        assert_eq!(status(ask("dataflow", &[], Some("application/xml;q=0.9, */*"))), 200);
    }

    #[test]
    fn data_queries_read_the_flow_key_parameters_and_format() {
        let Ok(Query::Data(q)) = ask(
            "data/ACCORD,MIG_FLOWS_MIRROR,1.0/A.FRA.DEU.._T.._T",
            &[
                ("startPeriod", "2024"),
                ("dimensionAtObservation", "AllDimensions"),
                ("detail", "dataonly"),
            ],
            Some("application/vnd.sdmx.data+csv;version=1.0.0"),
        ) else {
            panic!()
        };
        assert_eq!(
            (q.flow, q.obs_dim, q.detail, q.format),
            (Flow::Mirror, ObsDim::All, Detail::DataOnly, DataFormat::Csv)
        );
        let Ok(Query::Data(q)) = ask(
            "data/MIG_FLOWS_REPORTED",
            &[("format", "jsondata"), ("asOf", "2026-12-07T10:00:00Z")],
            None,
        ) else {
            panic!()
        };
        assert_eq!((q.flow, q.format), (Flow::Reported, DataFormat::Json));
        assert!(q.as_of.is_some());
        for (path, params, accept, want) in [
            ("data/MIG_NOPE", vec![], None, 404),
            ("data/OTHER,MIG_FLOWS_MIRROR", vec![], None, 404),
            ("data/MIG_FLOWS_MIRROR/A.FRA", vec![], None, 400),
            (
                "data/MIG_FLOWS_MIRROR/all",
                vec![("startPeriod", "next year")],
                None,
                400,
            ),
            (
                "data/MIG_FLOWS_MIRROR/all",
                vec![("updatedAfter", "yesterday")],
                None,
                400,
            ),
            ("data/MIG_FLOWS_MIRROR/all", vec![("lastNObservations", "1")], None, 501),
            ("data/MIG_FLOWS_MIRROR/all", vec![("format", "genericdata")], None, 406),
            (
                "data/MIG_FLOWS_MIRROR/all",
                vec![],
                Some("application/vnd.sdmx.genericdata+xml;version=2.1"),
                406,
            ),
            (
                "data/MIG_FLOWS_MIRROR/all",
                vec![("includeHistory", "true"), ("format", "csvdata")],
                None,
                501,
            ),
            (
                "data/MIG_FLOWS_MIRROR/all",
                vec![("dimensionAtObservation", "COLOUR")],
                None,
                400,
            ),
            ("data/MIG_FLOWS_MIRROR/all/OTHER", vec![], None, 404),
            ("data", vec![], None, 400),
        ] {
            assert_eq!(status(ask(path, &params, accept)), want, "{path} {params:?} {accept:?}");
        }
    }
}

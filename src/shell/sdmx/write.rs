//! The data messages of SPEC §16: SDMX-ML 2.1 StructureSpecificData (the default), SDMX-CSV
//! 1.0 and SDMX-JSON 1.0, from the observations [`super::data`] selected, written piece by
//! piece ([`Writer`]): a whole-view answer goes out one pair's observations at a time, so the
//! node never holds the message whole. One message may hold
//! several datasets (`includeHistory`: one per revision, each with the time this node accepted
//! it as `validFromDate`). The header's `DataSetID` is the digest of the first dataset's view;
//! each dataset's view digest and consortium version are annotations of the dataset in
//! SDMX-JSON and the header's `Source` in SDMX-ML (see [`provenance`]).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::domain::dataset::Code;
use crate::domain::date::format_instant_millis;
use crate::domain::hex;
use crate::domain::reconcile::ConsortiumRef;

use super::data::Obs;
use super::query::DataFormat;
use super::structure::{Flow, AGENCY, VERSION};
use super::xml::{esc, Xml};

/// Which dimension the observations run along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObsDim {
    Time,
    /// A flat list: every dimension on each observation.
    All,
    /// One of the flow's dimensions (an index into `Flow::dimensions`).
    Dim(usize),
}

impl ObsDim {
    pub fn parse(flow: Flow, text: &str) -> Option<ObsDim> {
        match text {
            "TIME_PERIOD" => Some(ObsDim::Time),
            "AllDimensions" => Some(ObsDim::All),
            d => flow.dimensions().iter().position(|(id, _)| *id == d).map(ObsDim::Dim),
        }
    }

    fn id(self, flow: Flow) -> &'static str {
        match self {
            ObsDim::Time => "TIME_PERIOD",
            ObsDim::All => "AllDimensions",
            ObsDim::Dim(i) => flow.dimensions()[i].0,
        }
    }
}

/// SDMX's `detail` parameter for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Full,
    DataOnly,
    SeriesKeysOnly,
    NoData,
}

impl Detail {
    pub fn parse(text: &str) -> Option<Detail> {
        match text {
            "full" => Some(Detail::Full),
            "dataonly" => Some(Detail::DataOnly),
            "serieskeysonly" => Some(Detail::SeriesKeysOnly),
            "nodata" => Some(Detail::NoData),
            _ => None,
        }
    }

    fn observations(self) -> bool {
        matches!(self, Detail::Full | Detail::DataOnly)
    }

    fn attributes(self) -> bool {
        matches!(self, Detail::Full | Detail::NoData)
    }
}

/// What a dataset was drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSetMeta {
    /// The digest of the view the observations were read from.
    pub digest: [u8; 32],
    pub consortium: ConsortiumRef,
    /// When this node accepted the revision that made this dataset (milliseconds since the
    /// Unix epoch): set on the datasets of `includeHistory`.
    pub valid_from: Option<i64>,
}

/// One dataset of a message, held whole (`includeHistory`, tests).
#[derive(Debug, Clone)]
pub struct DataSet {
    pub meta: DataSetMeta,
    pub obs: Vec<Obs>,
}

/// What every message of a query shares: its flow, layout and header.
#[derive(Debug, Clone)]
pub struct Meta {
    pub flow: Flow,
    pub format: DataFormat,
    pub obs_dim: ObsDim,
    pub detail: Detail,
    /// The message ID, the time it was prepared (RFC 3339) and the sending member.
    pub id: String,
    pub prepared: String,
    pub sender: String,
}

/// Every dimension value of `o` (the flow's dimensions, then `TIME_PERIOD`).
fn dimension_values(o: &Obs) -> Vec<String> {
    let mut v: Vec<String> = o.key.iter().map(Code::to_string).collect();
    v.push(o.period.to_string());
    v
}

/// The dimension IDs in key order, `TIME_PERIOD` last.
fn dimension_ids(flow: Flow) -> Vec<&'static str> {
    let mut ids: Vec<&str> = flow.dimensions().iter().map(|(d, _)| *d).collect();
    ids.push("TIME_PERIOD");
    ids
}

/// The observations grouped by series key (every dimension but `at`), in key order; within a
/// series, by the value of `at`.
fn series(obs: &[Obs], at: usize) -> BTreeMap<Vec<String>, Vec<(String, &Obs)>> {
    let mut out: BTreeMap<Vec<String>, Vec<(String, &Obs)>> = BTreeMap::new();
    for o in obs {
        let mut values = dimension_values(o);
        let along = values.remove(at);
        out.entry(values).or_default().push((along, o));
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out
}

fn structure_id(flow: Flow) -> String {
    format!("{AGENCY}_{}_{}", flow.id(), VERSION.replace('.', "_"))
}

fn namespace(flow: Flow, obs_dim: ObsDim) -> String {
    format!(
        "urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure={AGENCY}:{}({VERSION}):ObsLevelDim:{}",
        flow.id(),
        obs_dim.id(flow)
    )
}

/// What each dataset was drawn from: the view digest and the consortium version. SDMX-ML 2.1
/// would carry it as annotations of the dataset, but sdmx1 (2.28) refuses a message whose
/// dataset has annotations, so the header's `Source` says it (SDMX-JSON keeps them as
/// annotations of the dataset).
fn provenance(datasets: &[DataSetMeta]) -> String {
    datasets
        .iter()
        .map(|ds| {
            let when = ds
                .valid_from
                .map(|t| format!(" as of {}", format_instant_millis(t)))
                .unwrap_or_default();
            format!(
                "Accord common view {}{when}, consortium version {} ({})",
                hex::encode(&ds.digest),
                ds.consortium.version,
                hex::encode(&ds.consortium.digest)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where SDMX-JSON numbers the values it has seen: dimension and attribute values are written
/// as indexes into lists sent after the observations.
#[derive(Default)]
struct JsonIndex {
    dimensions: Vec<Vec<String>>,
    attributes: Vec<Vec<String>>,
}

fn index_of(list: &mut Vec<String>, v: &str) -> usize {
    match list.iter().position(|x| x == v) {
        Some(i) => i,
        None => {
            list.push(v.to_string());
            list.len() - 1
        }
    }
}

/// Writes one message in pieces: [`Writer::head`], then per dataset [`Writer::open`], any
/// number of [`Writer::block`]s (each holding whole series) and [`Writer::close`], then
/// [`Writer::tail`]. Each call returns the text to send next.
pub struct Writer {
    meta: Meta,
    json: JsonIndex,
    /// Observations written into the open dataset (SDMX-JSON separates them with commas).
    written: u64,
    datasets: Vec<DataSetMeta>,
}

impl Writer {
    pub fn new(meta: Meta) -> Writer {
        let ids = dimension_ids(meta.flow).len();
        let attrs = meta.flow.attributes().len();
        Writer {
            json: JsonIndex {
                dimensions: vec![Vec::new(); ids],
                attributes: vec![Vec::new(); attrs],
            },
            meta,
            written: 0,
            datasets: Vec::new(),
        }
    }

    /// The message's opening: its header names `datasets` (all of them, first to last).
    pub fn head(&mut self, datasets: &[DataSetMeta]) -> String {
        self.datasets = datasets.to_vec();
        let m = &self.meta;
        let flow = m.flow;
        match m.format {
            DataFormat::StructureSpecific => {
                let ns = namespace(flow, m.obs_dim);
                let mut x = Xml::new();
                x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                x.raw(&format!(
                    "<message:StructureSpecificData xmlns:message=\"http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message\" \
                     xmlns:common=\"http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common\" \
                     xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                     xmlns:ss=\"http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/structurespecific\" \
                     xmlns:ns1=\"{ns}\">"
                ));
                x.raw(&format!(
                    "<message:Header><message:ID>{}</message:ID><message:Test>false</message:Test><message:Prepared>{}</message:Prepared><message:Sender id=\"{}\"/>",
                    esc(&m.id),
                    esc(&m.prepared),
                    esc(&m.sender)
                ));
                x.raw(&format!(
                    "<message:Structure structureID=\"{}\" namespace=\"{ns}\" dimensionAtObservation=\"{}\"><common:Structure><Ref agencyID=\"{AGENCY}\" id=\"{}\" version=\"{VERSION}\"/></common:Structure></message:Structure>",
                    structure_id(flow),
                    m.obs_dim.id(flow),
                    flow.id()
                ));
                if let Some(first) = datasets.first() {
                    x.raw(&format!(
                        "<message:DataSetID>{}</message:DataSetID>",
                        hex::encode(&first.digest)
                    ));
                }
                x.raw(&format!(
                    "<message:Source xml:lang=\"en\">{}</message:Source></message:Header>",
                    esc(&provenance(datasets))
                ));
                x.finish()
            }
            DataFormat::Csv => {
                let mut header: Vec<&str> = vec!["DATAFLOW"];
                header.extend(dimension_ids(flow));
                header.push("OBS_VALUE");
                if m.detail.attributes() {
                    header.extend(flow.attributes().iter().map(|(id, _)| *id));
                }
                csv_line(&header)
            }
            DataFormat::Json => {
                let header = json!({
                    "id": m.id,
                    "test": false,
                    "prepared": m.prepared,
                    "sender": {"id": m.sender},
                });
                format!("{{\"header\":{header},\"dataSets\":[")
            }
        }
    }

    /// Opens the `index`th dataset.
    pub fn open(&mut self, index: usize) -> String {
        self.written = 0;
        let ds = self.datasets.get(index).copied();
        match self.meta.format {
            DataFormat::StructureSpecific => {
                let valid_from = ds
                    .and_then(|d| d.valid_from)
                    .map(|t| format!(" validFromDate=\"{}\"", format_instant_millis(t)))
                    .unwrap_or_default();
                format!(
                    "<message:DataSet ss:dataScope=\"DataStructure\" xsi:type=\"ns1:DataSetType\" ss:structureRef=\"{}\" action=\"Information\"{valid_from}>",
                    structure_id(self.meta.flow)
                )
            }
            DataFormat::Csv => String::new(),
            DataFormat::Json => {
                let mut open = String::from(if index > 0 { "," } else { "" });
                open.push_str("{\"action\":\"Information\",");
                // Annotations 2i and 2i+1 of the structure are this dataset's.
                open.push_str(&format!("\"annotations\":[{},{}],", 2 * index, 2 * index + 1));
                if let Some(t) = ds.and_then(|d| d.valid_from) {
                    open.push_str(&format!("\"validFrom\":\"{}\",", format_instant_millis(t)));
                }
                open.push_str("\"observations\":{");
                open
            }
        }
    }

    /// Observations of the open dataset; every series they hold is whole in `obs`.
    pub fn block(&mut self, obs: &[Obs]) -> String {
        match self.meta.format {
            DataFormat::StructureSpecific => self.xml_block(obs),
            DataFormat::Csv => self.csv_block(obs),
            DataFormat::Json => self.json_block(obs),
        }
    }

    pub fn close(&mut self) -> String {
        match self.meta.format {
            DataFormat::StructureSpecific => "</message:DataSet>".to_string(),
            DataFormat::Csv => String::new(),
            DataFormat::Json => "}}".to_string(),
        }
    }

    pub fn tail(&mut self) -> String {
        match self.meta.format {
            DataFormat::StructureSpecific => "</message:StructureSpecificData>\n".to_string(),
            DataFormat::Csv => String::new(),
            DataFormat::Json => format!("],\"structure\":{}}}\n", self.json_structure()),
        }
    }

    fn xml_block(&mut self, obs: &[Obs]) -> String {
        let (flow, detail) = (self.meta.flow, self.meta.detail);
        let ids = dimension_ids(flow);
        let at = match self.meta.obs_dim {
            ObsDim::Time => Some(ids.len() - 1),
            ObsDim::Dim(i) => Some(i),
            ObsDim::All => None,
        };
        let mut x = Xml::new();
        match at {
            Some(at) => {
                for (key, list) in series(obs, at) {
                    let mut series_ids = ids.clone();
                    let along = series_ids.remove(at);
                    x.raw("<Series");
                    for (id, v) in series_ids.iter().zip(&key) {
                        x.raw(&format!(" {id}=\"{}\"", esc(v)));
                    }
                    if !detail.observations() {
                        x.raw("/>");
                        continue;
                    }
                    x.raw(">");
                    for (value, o) in list {
                        x.raw(&format!("<Obs {along}=\"{}\"", esc(&value)));
                        obs_rest(&mut x, flow, o, detail);
                    }
                    x.raw("</Series>");
                }
            }
            None if detail.observations() => {
                for o in obs {
                    x.raw("<Obs");
                    for (id, v) in ids.iter().zip(dimension_values(o)) {
                        x.raw(&format!(" {id}=\"{}\"", esc(&v)));
                    }
                    obs_rest(&mut x, flow, o, detail);
                }
            }
            None => {}
        }
        x.finish()
    }

    fn csv_block(&mut self, obs: &[Obs]) -> String {
        let dataflow = format!("{AGENCY}:{}({VERSION})", self.meta.flow.id());
        let mut out = String::new();
        for o in obs {
            let mut fields = vec![dataflow.clone()];
            fields.extend(dimension_values(o));
            fields.push(o.value.map(|v| v.to_string()).unwrap_or_default());
            if self.meta.detail.attributes() {
                fields.extend(o.attributes.iter().map(|a| a.clone().unwrap_or_default()));
            }
            out.push_str(&csv_line(&fields));
        }
        out
    }

    fn json_block(&mut self, obs: &[Obs]) -> String {
        let mut out = String::new();
        for o in obs {
            let key: Vec<String> = dimension_values(o)
                .iter()
                .enumerate()
                .map(|(i, v)| index_of(&mut self.json.dimensions[i], v).to_string())
                .collect();
            let mut entry = vec![o.value.map_or(Value::Null, |v| json!(v))];
            if self.meta.detail.attributes() {
                for (i, a) in o.attributes.iter().enumerate() {
                    entry.push(
                        a.as_ref()
                            .map_or(Value::Null, |a| json!(index_of(&mut self.json.attributes[i], a))),
                    );
                }
            }
            if self.written > 0 {
                out.push(',');
            }
            self.written += 1;
            out.push_str(&format!("{}:{}", json!(key.join(":")), Value::Array(entry)));
        }
        out
    }

    /// SDMX-JSON's `structure`: every dimension at the observation level, the values seen.
    fn json_structure(&self) -> Value {
        let flow = self.meta.flow;
        let values = |vals: &[String]| vals.iter().map(|v| json!({"id": v, "name": v})).collect::<Vec<_>>();
        let dimensions: Vec<Value> = dimension_ids(flow)
            .iter()
            .zip(&self.json.dimensions)
            .enumerate()
            .map(|(i, (id, vals))| {
                if *id == "TIME_PERIOD" {
                    json!({"id": id, "name": id, "role": "time", "values": values(vals)})
                } else {
                    json!({"id": id, "name": id, "keyPosition": i, "values": values(vals)})
                }
            })
            .collect();
        let attributes: Vec<Value> = if self.meta.detail.attributes() {
            flow.attributes()
                .iter()
                .zip(&self.json.attributes)
                .map(|((id, _), vals)| json!({"id": id, "name": id, "values": values(vals)}))
                .collect()
        } else {
            Vec::new()
        };
        let annotations: Vec<Value> = self
            .datasets
            .iter()
            .flat_map(|ds| {
                [
                    json!({"type": "ACCORD_VIEW_DIGEST", "title": hex::encode(&ds.digest)}),
                    json!({"type": "ACCORD_CONSORTIUM_VERSION", "title": format!("{} {}", ds.consortium.version, hex::encode(&ds.consortium.digest))}),
                ]
            })
            .collect();
        json!({
            "links": [{"rel": "datastructure", "urn": format!("urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure={AGENCY}:{}({VERSION})", flow.id())}],
            "name": flow.name(),
            "dimensions": {"dataSet": [], "series": [], "observation": dimensions},
            "attributes": {"dataSet": [], "series": [], "observation": attributes},
            "annotations": annotations,
        })
    }
}

/// One CSV record (RFC 4180 quoting where a field needs it), `\n`-terminated.
fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(fields.iter().map(|f| f.as_ref()));
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// An observation's value and attributes, and the end of its element.
fn obs_rest(x: &mut Xml, flow: Flow, o: &Obs, detail: Detail) {
    if let Some(v) = o.value {
        x.raw(&format!(" OBS_VALUE=\"{v}\""));
    }
    if detail.attributes() {
        for ((id, _), value) in flow.attributes().iter().zip(&o.attributes) {
            if let Some(v) = value {
                x.raw(&format!(" {id}=\"{}\"", esc(v)));
            }
        }
    }
    x.raw("/>");
}

/// A whole message of datasets held in memory, as one text.
pub fn render(meta: Meta, datasets: &[DataSet]) -> String {
    let mut w = Writer::new(meta);
    let metas: Vec<DataSetMeta> = datasets.iter().map(|d| d.meta).collect();
    let mut out = w.head(&metas);
    for (i, ds) in datasets.iter().enumerate() {
        out.push_str(&w.open(i));
        out.push_str(&w.block(&ds.obs));
        out.push_str(&w.close());
    }
    out.push_str(&w.tail());
    out
}

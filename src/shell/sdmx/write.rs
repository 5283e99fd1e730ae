//! The data messages of SPEC §16: SDMX-ML 2.1 StructureSpecificData (the default), SDMX-CSV
//! 1.0 and SDMX-JSON 1.0, from the observations [`super::data`] selected. One message may hold
//! several datasets (`includeHistory`: one per revision, each with the time this node accepted
//! it as `validFromDate`). The header's `DataSetID` is the digest of the first dataset's view;
//! each dataset's view digest and consortium version are annotations of the dataset in
//! SDMX-JSON and the header's `Source` in SDMX-ML (see [`provenance`]).

use std::collections::BTreeMap;

use crate::domain::dataset::Code;
use crate::domain::date::format_instant_millis;
use crate::domain::hex;
use crate::domain::reconcile::ConsortiumRef;

use super::data::Obs;
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

/// One dataset of a message.
#[derive(Debug, Clone)]
pub struct DataSet {
    pub obs: Vec<Obs>,
    /// The digest of the view the observations were read from.
    pub digest: [u8; 32],
    pub consortium: ConsortiumRef,
    /// When this node accepted the revision that made this dataset (milliseconds since the
    /// Unix epoch): set on the datasets of `includeHistory`.
    pub valid_from: Option<i64>,
}

/// A data message: its flow, datasets and how to lay them out.
#[derive(Debug, Clone)]
pub struct Message {
    pub flow: Flow,
    pub datasets: Vec<DataSet>,
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

/// `name="value"` for each present attribute of `o`.
fn attribute_markup(flow: Flow, o: &Obs) -> String {
    let mut s = String::new();
    for ((id, _), value) in flow.attributes().iter().zip(&o.attributes) {
        if let Some(v) = value {
            s.push_str(&format!(" {id}=\"{}\"", esc(v)));
        }
    }
    s
}

/// SDMX-ML 2.1 StructureSpecificData.
pub fn structure_specific(m: &Message) -> String {
    let flow = m.flow;
    let ids = dimension_ids(flow);
    let at = match m.obs_dim {
        ObsDim::Time => Some(ids.len() - 1),
        ObsDim::Dim(i) => Some(i),
        ObsDim::All => None,
    };
    let sid = structure_id(flow);
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
        "<message:Structure structureID=\"{sid}\" namespace=\"{ns}\" dimensionAtObservation=\"{}\"><common:Structure><Ref agencyID=\"{AGENCY}\" id=\"{}\" version=\"{VERSION}\"/></common:Structure></message:Structure>",
        m.obs_dim.id(flow),
        flow.id()
    ));
    if let Some(first) = m.datasets.first() {
        x.raw(&format!(
            "<message:DataSetID>{}</message:DataSetID>",
            hex::encode(&first.digest)
        ));
    }
    x.raw(&format!(
        "<message:Source xml:lang=\"en\">{}</message:Source>",
        esc(&provenance(&m.datasets))
    ));
    x.raw("</message:Header>");
    for ds in &m.datasets {
        let valid_from = ds
            .valid_from
            .map(|t| format!(" validFromDate=\"{}\"", format_instant_millis(t)))
            .unwrap_or_default();
        x.raw(&format!(
            "<message:DataSet ss:dataScope=\"DataStructure\" xsi:type=\"ns1:DataSetType\" ss:structureRef=\"{sid}\" action=\"Information\"{valid_from}>"
        ));
        match at {
            Some(at) => {
                for (key, list) in series(&ds.obs, at) {
                    let mut series_ids = ids.clone();
                    let along = series_ids.remove(at);
                    x.raw("<Series");
                    for (id, v) in series_ids.iter().zip(&key) {
                        x.raw(&format!(" {id}=\"{}\"", esc(v)));
                    }
                    if !m.detail.observations() {
                        x.raw("/>");
                        continue;
                    }
                    x.raw(">");
                    for (value, o) in list {
                        x.raw(&format!("<Obs {along}=\"{}\"", esc(&value)));
                        obs_rest(&mut x, flow, o, m.detail);
                    }
                    x.raw("</Series>");
                }
            }
            None if m.detail.observations() => {
                for o in &ds.obs {
                    x.raw("<Obs");
                    for (id, v) in ids.iter().zip(dimension_values(o)) {
                        x.raw(&format!(" {id}=\"{}\"", esc(&v)));
                    }
                    obs_rest(&mut x, flow, o, m.detail);
                }
            }
            None => {}
        }
        x.raw("</message:DataSet>");
    }
    x.raw("</message:StructureSpecificData>\n");
    x.finish()
}

/// An observation's value and attributes, and the end of its element.
fn obs_rest(x: &mut Xml, flow: Flow, o: &Obs, detail: Detail) {
    if let Some(v) = o.value {
        x.raw(&format!(" OBS_VALUE=\"{v}\""));
    }
    if detail.attributes() {
        x.raw(&attribute_markup(flow, o));
    }
    x.raw("/>");
}

/// What each dataset was drawn from: the view digest and the consortium version. SDMX-ML 2.1
/// would carry it as annotations of the dataset, but sdmx1 (2.28) refuses a message whose
/// dataset has annotations, so the header's `Source` says it (SDMX-JSON keeps them as
/// annotations of the dataset).
fn provenance(datasets: &[DataSet]) -> String {
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

/// SDMX-CSV 1.0: `DATAFLOW`, the dimensions, `OBS_VALUE`, the attributes; one line per
/// observation of every dataset.
pub fn csv(m: &Message) -> String {
    let flow = m.flow;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let mut header: Vec<&str> = vec!["DATAFLOW"];
    header.extend(dimension_ids(flow));
    header.push("OBS_VALUE");
    if m.detail.attributes() {
        header.extend(flow.attributes().iter().map(|(id, _)| *id));
    }
    // Writing to a Vec cannot fail.
    let _ = w.write_record(&header);
    let dataflow = format!("{AGENCY}:{}({VERSION})", flow.id());
    for ds in &m.datasets {
        for o in &ds.obs {
            let mut fields = vec![dataflow.clone()];
            fields.extend(dimension_values(o));
            fields.push(o.value.map(|v| v.to_string()).unwrap_or_default());
            if m.detail.attributes() {
                fields.extend(o.attributes.iter().map(|a| a.clone().unwrap_or_default()));
            }
            let _ = w.write_record(&fields);
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// SDMX-JSON 1.0 data, every dimension at the observation level: `observations` keyed by the
/// index of each dimension's value, each `[value, attribute indices...]`.
pub fn json(m: &Message) -> String {
    use serde_json::{json, Value};
    let flow = m.flow;
    let ids = dimension_ids(flow);
    let mut values: Vec<Vec<String>> = vec![Vec::new(); ids.len()];
    let attrs = flow.attributes();
    let mut attr_values: Vec<Vec<String>> = vec![Vec::new(); attrs.len()];
    let index = |list: &mut Vec<String>, v: &str| -> usize {
        match list.iter().position(|x| x == v) {
            Some(i) => i,
            None => {
                list.push(v.to_string());
                list.len() - 1
            }
        }
    };
    let mut datasets = Vec::new();
    for ds in &m.datasets {
        let mut observations = serde_json::Map::new();
        for o in &ds.obs {
            let key: Vec<String> = dimension_values(o)
                .iter()
                .enumerate()
                .map(|(i, v)| index(&mut values[i], v).to_string())
                .collect();
            let mut entry = vec![o.value.map_or(Value::Null, |v| json!(v))];
            if m.detail.attributes() {
                for (i, a) in o.attributes.iter().enumerate() {
                    entry.push(a.as_ref().map_or(Value::Null, |a| json!(index(&mut attr_values[i], a))));
                }
            }
            observations.insert(key.join(":"), Value::Array(entry));
        }
        let mut set = json!({
            "action": "Information",
            "annotations": [0, 1],
            "observations": observations,
        });
        if let Some(t) = ds.valid_from {
            set["validFrom"] = json!(format_instant_millis(t));
        }
        datasets.push(set);
    }
    let dimensions: Vec<Value> = ids
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(i, (id, vals))| {
            let mut d = json!({
                "id": id,
                "name": id,
                "keyPosition": i,
                "values": vals.iter().map(|v| json!({"id": v, "name": v})).collect::<Vec<_>>(),
            });
            if *id == "TIME_PERIOD" {
                d["role"] = json!("time");
                d.as_object_mut().map(|o| o.remove("keyPosition"));
            }
            d
        })
        .collect();
    let attributes: Vec<Value> = attrs
        .iter()
        .zip(&attr_values)
        .map(|((id, _), vals)| {
            json!({"id": id, "name": id, "values": vals.iter().map(|v| json!({"id": v, "name": v})).collect::<Vec<_>>()})
        })
        .collect();
    let first = m.datasets.first();
    let annotations = first
        .map(|ds| {
            vec![
                json!({"type": "ACCORD_VIEW_DIGEST", "title": hex::encode(&ds.digest)}),
                json!({"type": "ACCORD_CONSORTIUM_VERSION", "title": format!("{} {}", ds.consortium.version, hex::encode(&ds.consortium.digest))}),
            ]
        })
        .unwrap_or_default();
    let message = json!({
        "header": {
            "id": m.id,
            "test": false,
            "prepared": m.prepared,
            "sender": {"id": m.sender},
        },
        "dataSets": datasets,
        "structure": {
            "links": [{"rel": "datastructure", "urn": format!("urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure={AGENCY}:{}({VERSION})", flow.id())}],
            "name": flow.name(),
            "dimensions": {"dataSet": [], "series": [], "observation": dimensions},
            "attributes": {"dataSet": [], "series": [], "observation": if m.detail.attributes() { attributes } else { Vec::new() }},
            "annotations": annotations,
        },
    });
    let mut text = message.to_string();
    text.push('\n');
    text
}

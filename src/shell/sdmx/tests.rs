//! The SDMX messages read back with an XML parser, against the SDMX-ML 2.1 schema's rules that
//! clients depend on: namespaces, element order, IDs, references that resolve inside the
//! message, and data that names only what its structure defines.

use roxmltree::{Document, Node as XmlNode};

use super::data::{for_each_block, observations, KeyFilter, Periods, Select};
use super::query::DataFormat;
use super::structure::{structure_message, Codelist, Flow, Selection};
use super::write::{render, DataSet, DataSetMeta, Detail, Meta, ObsDim, Writer};
use crate::domain::consortium::{Consortium, EstimateMethod, Estimates};
use crate::domain::model::Country;
use crate::domain::reconcile::test_support::{self, confidential, flows, inn, out, settings};
use crate::domain::reconcile::{compute, under, ConsortiumRef, View};

const MES: &str = "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message";
const STR: &str = "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure";
const COM: &str = "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common";

fn c(code: &str) -> Country {
    Country::parse(code).unwrap()
}

fn consortium() -> Consortium {
    test_support::consortium(
        &["DEU", "FRA", "ITA"],
        Estimates {
            method: EstimateMethod::ImemLite,
            reference: vec![c("DEU")],
        },
    )
}

/// DEU, FRA and ITA report each other; DEU withholds one cell.
fn view() -> View {
    let mut view = compute(
        &[
            flows(
                c("DEU"),
                1,
                &[
                    confidential("OUT", c("FRA"), "SYR"),
                    out(c("FRA"), "DEU", 40),
                    inn(c("ITA"), "ITA", 90),
                ],
            ),
            flows(
                c("FRA"),
                1,
                &[
                    inn(c("DEU"), "SYR", 7),
                    inn(c("DEU"), "DEU", 44),
                    out(c("ITA"), "FRA", 12),
                ],
            ),
            flows(c("ITA"), 1, &[out(c("DEU"), "ITA", 80), inn(c("FRA"), "FRA", 15)]),
        ],
        &settings(),
    );
    under(
        &mut view,
        ConsortiumRef {
            version: 2,
            digest: [9; 32],
        },
        &consortium(),
    );
    view
}

fn meta(flow: Flow, format: DataFormat, obs_dim: ObsDim) -> Meta {
    Meta {
        flow,
        format,
        obs_dim,
        detail: Detail::Full,
        id: "ACCORD-DEU-1".into(),
        prepared: "2026-12-07T18:00:00.000Z".into(),
        sender: "DEU".into(),
    }
}

fn all(view: &View, flow: Flow) -> Vec<super::data::Obs> {
    let key = KeyFilter::parse(flow, "all").unwrap();
    let select = Select {
        key: &key,
        periods: Periods::default(),
        updated_after: None,
        limit: 10_000,
    };
    observations(view, flow, &select).unwrap()
}

fn element_children<'a, 'i>(n: XmlNode<'a, 'i>) -> Vec<XmlNode<'a, 'i>> {
    n.children().filter(|c| c.is_element()).collect()
}

/// SDMX's IDType.
fn is_id(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_@$-".contains(&b))
}

#[test]
fn structure_messages_follow_the_schema_order_and_resolve_every_reference() {
    let selection = Selection {
        flows: Flow::ALL.to_vec(),
        structures: Flow::ALL.to_vec(),
        ..Selection::default()
    }
    .with_children();
    let text = structure_message(&selection, "<mes:ID>T1</mes:ID><mes:Test>false</mes:Test><mes:Prepared>2026-12-07T18:00:00Z</mes:Prepared><mes:Sender id=\"DEU\"/>", &consortium());
    let doc = Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(
        (root.tag_name().namespace(), root.tag_name().name()),
        (Some(MES), "Structure")
    );
    let parts: Vec<&str> = element_children(root).iter().map(|n| n.tag_name().name()).collect();
    assert_eq!(parts, ["Header", "Structures"]);
    let structures = element_children(root)[1];
    let order: Vec<&str> = element_children(structures)
        .iter()
        .map(|n| n.tag_name().name())
        .collect();
    // The schema's sequence; sdmx1 links a DSD to codelists only when they come before it.
    assert_eq!(order, ["Dataflows", "Codelists", "Concepts", "DataStructures"]);

    let mut codelists = Vec::new();
    let mut concepts = Vec::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        if let Some(id) = n.attribute("id") {
            assert!(is_id(id), "{id:?} is not an IDType");
        }
        match n.tag_name().name() {
            // References are unqualified in SDMX-ML 2.1.
            "Ref" => assert_eq!(n.tag_name().namespace(), None, "Ref in a namespace"),
            "Codelist" => codelists.push((
                n.attribute("agencyID").unwrap().to_string(),
                n.attribute("id").unwrap().to_string(),
                n.attribute("version").unwrap().to_string(),
            )),
            "Concept" => concepts.push(n.attribute("id").unwrap().to_string()),
            _ => {}
        }
        if matches!(
            n.tag_name().name(),
            "Code" | "Dataflow" | "Codelist" | "DataStructure" | "ConceptScheme"
        ) {
            // Annotations, then Name, then the rest.
            let names: Vec<&str> = element_children(n).iter().map(|c| c.tag_name().name()).collect();
            let name_at = names.iter().position(|x| *x == "Name").expect("a Name");
            assert!(names[..name_at].iter().all(|x| *x == "Annotations"), "{names:?}");
            assert_eq!(element_children(n)[name_at].tag_name().namespace(), Some(COM));
        }
    }
    assert_eq!(codelists.len(), Codelist::ALL.len());
    for r in doc.descendants().filter(|n| n.has_tag_name("Ref")) {
        match r.attribute("class") {
            Some("Codelist") => {
                let wanted = (
                    r.attribute("agencyID").unwrap().to_string(),
                    r.attribute("id").unwrap().to_string(),
                    r.attribute("version").unwrap().to_string(),
                );
                assert!(codelists.contains(&wanted), "{wanted:?} is not in the message");
            }
            Some("Concept") => {
                assert!(r.attribute("maintainableParentVersion").is_some());
                assert!(concepts.contains(&r.attribute("id").unwrap().to_string()));
            }
            _ => {}
        }
    }
    // Dimensions numbered from 1 in key order, the time dimension last.
    for dsd in doc.descendants().filter(|n| n.has_tag_name((STR, "DataStructure"))) {
        let list = dsd
            .descendants()
            .find(|n| n.has_tag_name((STR, "DimensionList")))
            .unwrap();
        let dims = element_children(list);
        for (i, d) in dims.iter().enumerate() {
            assert_eq!(d.attribute("position"), Some((i + 1).to_string().as_str()));
        }
        assert_eq!(dims.last().unwrap().tag_name().name(), "TimeDimension");
        let flow = Flow::parse(dsd.attribute("id").unwrap()).unwrap();
        assert_eq!(dims.len(), flow.dimensions().len() + 1);
    }
    // Members carry their definitions and measurement classes on their area code.
    let deu = doc
        .descendants()
        .find(|n| n.has_tag_name((STR, "Code")) && n.attribute("id") == Some("DEU"))
        .unwrap();
    let types: Vec<&str> = deu
        .descendants()
        .filter(|n| n.has_tag_name((COM, "AnnotationType")))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        types.contains(&"ACCORD_DEFINITION") && types.contains(&"ACCORD_MEASUREMENT_EMIGRATION"),
        "{types:?}"
    );
}

#[test]
fn data_messages_name_only_what_their_structure_defines() {
    let view = view();
    for flow in [Flow::Mirror, Flow::Reported] {
        for obs_dim in [ObsDim::Time, ObsDim::All, ObsDim::Dim(1)] {
            let obs = all(&view, flow);
            assert!(!obs.is_empty());
            let ds = DataSet {
                meta: DataSetMeta {
                    digest: view.digest(),
                    consortium: view.consortium,
                    valid_from: None,
                },
                obs,
            };
            let text = render(meta(flow, DataFormat::StructureSpecific, obs_dim), &[ds]);
            let doc = Document::parse(&text).expect("well-formed XML");
            let header = element_children(doc.root_element())[0];
            let fields: Vec<&str> = element_children(header).iter().map(|n| n.tag_name().name()).collect();
            assert_eq!(
                fields,
                ["ID", "Test", "Prepared", "Sender", "Structure", "DataSetID", "Source"]
            );
            assert_eq!(
                element_children(header)[5].text(),
                Some(crate::domain::hex::encode(&view.digest()).as_str())
            );
            let mut allowed: Vec<&str> = flow.dimensions().iter().map(|(d, _)| *d).collect();
            allowed.extend(["TIME_PERIOD", "OBS_VALUE"]);
            allowed.extend(flow.attributes().iter().map(|(a, _)| *a));
            let mut confidential = 0;
            let mut estimated = 0;
            for n in doc
                .descendants()
                .filter(|n| n.has_tag_name("Series") || n.has_tag_name("Obs"))
            {
                assert_eq!(n.tag_name().namespace(), None, "Series and Obs are unqualified");
                for a in n.attributes() {
                    assert!(
                        allowed.contains(&a.name()),
                        "{} is not in the structure of {}",
                        a.name(),
                        flow.id()
                    );
                }
                if n.attribute("CONF_STATUS") == Some("C") {
                    confidential += 1;
                    assert_eq!(
                        n.attribute("OBS_VALUE"),
                        None,
                        "a confidential observation has no value"
                    );
                }
                if n.attribute("OBS_STATUS") == Some("E") {
                    estimated += 1;
                }
            }
            assert!(confidential > 0, "{text}");
            assert_eq!(estimated > 0, flow == Flow::Mirror, "estimates only in the mirror view");
        }
    }
}

#[test]
fn a_message_written_pair_by_pair_is_the_message_held_whole() {
    let view = view();
    for format in [DataFormat::Csv, DataFormat::Json, DataFormat::StructureSpecific] {
        let obs = all(&view, Flow::Mirror);
        let ds_meta = DataSetMeta {
            digest: view.digest(),
            consortium: view.consortium,
            valid_from: None,
        };
        let whole = render(
            meta(Flow::Mirror, format, ObsDim::All),
            &[DataSet { meta: ds_meta, obs }],
        );
        let mut w = Writer::new(meta(Flow::Mirror, format, ObsDim::All));
        let mut streamed = w.head(&[ds_meta]);
        streamed.push_str(&w.open(0));
        let key = KeyFilter::parse(Flow::Mirror, "all").unwrap();
        let select = Select {
            key: &key,
            periods: Periods::default(),
            updated_after: None,
            limit: 10_000,
        };
        let mut blocks = 0;
        for_each_block::<()>(&view, Flow::Mirror, &select, &mut |block| {
            blocks += 1;
            streamed.push_str(&w.block(&block));
            Ok(())
        })
        .unwrap();
        streamed.push_str(&w.close());
        streamed.push_str(&w.tail());
        assert_eq!(blocks, view.pairs.len(), "one block per pair");
        assert_eq!(streamed, whole, "{format:?}");
        if format == DataFormat::Json {
            let v: serde_json::Value = serde_json::from_str(&streamed).expect("JSON");
            let n = v["dataSets"][0]["observations"].as_object().unwrap().len();
            assert_eq!(n, all(&view, Flow::Mirror).len());
            assert_eq!(v["structure"]["dimensions"]["observation"].as_array().unwrap().len(), 8);
        }
    }
}

#[test]
fn one_vintage_is_computed_at_a_time() {
    let first = super::vintage_slot().expect("the slot is free");
    let refused = super::vintage_slot().expect_err("a second vintage waits its turn");
    assert_eq!(refused.status, 503);
    drop(first);
    assert!(super::vintage_slot().is_ok(), "free again once the first is done");
}

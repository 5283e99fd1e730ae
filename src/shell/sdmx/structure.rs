//! What a node's SDMX REST endpoint describes (SPEC §16): the four dataflows of agency `ACCORD`,
//! their data structure definitions, the codelists and the concept scheme they use, as fixed
//! tables here, and the SDMX-ML 2.1 structure message that carries any selection of them.
//!
//! The names are the contract clients are written against once: dataflow, DSD and dimension IDs
//! never change with the data. Codes follow SDMX's global codelists where one exists (`CL_FREQ`,
//! `CL_OBS_STATUS`, `CL_CONF_STATUS`, agency `SDMX`); areas are ISO 3166-1 alpha-3 (with `XXX`
//! unknown, `XXA` stateless and `_T` total); the rest are Accord's codes as `accord view` prints
//! them. Each member's harmonised definition and declared measurement classes (SPEC §15) travel
//! as annotations on its area code.

use crate::domain::consortium::{Consortium, Register};
use crate::domain::model::{Country, AGE_BANDS};

use super::xml::{esc, Xml};

pub const AGENCY: &str = "ACCORD";
pub const VERSION: &str = "1.0";
const CONCEPTS: &str = "CS_MIGRATION";

/// One of the dataflows a node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flow {
    /// The common view: both reports, the reconciled figure and the estimate per pair.
    Mirror,
    /// Each member's published `flows` cells.
    Reported,
    Asylum,
    Permits,
}

/// How an attribute's value is represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    Coded(Codelist),
    /// Free text (digests, counts).
    Text,
}

impl Flow {
    pub const ALL: [Flow; 4] = [Flow::Mirror, Flow::Reported, Flow::Asylum, Flow::Permits];

    /// The dataflow ID; its data structure definition has the same ID.
    pub fn id(self) -> &'static str {
        match self {
            Flow::Mirror => "MIG_FLOWS_MIRROR",
            Flow::Reported => "MIG_FLOWS_REPORTED",
            Flow::Asylum => "MIG_ASYLUM",
            Flow::Permits => "MIG_PERMITS",
        }
    }

    pub fn parse(id: &str) -> Option<Flow> {
        Flow::ALL.into_iter().find(|f| f.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self {
            Flow::Mirror => {
                "Migration flows, mirror view: sender's and receiver's reports, reconciled figure and modelled estimate"
            }
            Flow::Reported => "Migration flows as each member published them",
            Flow::Asylum => "Asylum applications as each member published them",
            Flow::Permits => "Residence permits as each member published them",
        }
    }

    /// The dimensions before `TIME_PERIOD`, in key order.
    pub fn dimensions(self) -> &'static [(&'static str, Codelist)] {
        use Codelist::*;
        match self {
            Flow::Mirror => &[
                ("FREQ", Freq),
                ("ORIGIN", Area),
                ("DESTINATION", Area),
                ("CITIZENSHIP", Area),
                ("SEX", Sex),
                ("AGE", Age),
                ("MEASURE", Measure),
            ],
            Flow::Reported => &[
                ("FREQ", Freq),
                ("REPORTER", Area),
                ("DIRECTION", Direction),
                ("PARTNER", Area),
                ("CITIZENSHIP", Area),
                ("SEX", Sex),
                ("AGE", Age),
            ],
            Flow::Asylum => &[
                ("FREQ", Freq),
                ("REPORTER", Area),
                ("CITIZENSHIP", Area),
                ("SEX", Sex),
                ("AGE", Age),
            ],
            Flow::Permits => &[
                ("FREQ", Freq),
                ("REPORTER", Area),
                ("CITIZENSHIP", Area),
                ("REASON", Reason),
            ],
        }
    }

    /// The observation-level attributes, in the order an observation holds their values.
    pub fn attributes(self) -> &'static [(&'static str, Attr)] {
        use Attr::*;
        match self {
            Flow::Mirror => &[
                ("OBS_STATUS", Coded(Codelist::ObsStatus)),
                ("CONF_STATUS", Coded(Codelist::ConfStatus)),
                ("WITHHELD", Text),
                ("ASYMMETRY", Text),
                ("ASYMMETRY_FLAG", Coded(Codelist::Flag)),
            ],
            Flow::Reported | Flow::Asylum | Flow::Permits => &[
                ("OBS_STATUS", Coded(Codelist::ObsStatus)),
                ("CONF_STATUS", Coded(Codelist::ConfStatus)),
                ("WITHHELD", Text),
                ("ENTRY_PUBLISHER", Text),
                ("ENTRY_SEQ", Text),
                ("ENTRY_DIGEST", Text),
            ],
        }
    }

    /// The codelists its structure uses, each once.
    pub fn codelists(self) -> Vec<Codelist> {
        let mut out: Vec<Codelist> = self.dimensions().iter().map(|(_, c)| *c).collect();
        out.extend(self.attributes().iter().filter_map(|(_, a)| match a {
            Attr::Coded(c) => Some(*c),
            Attr::Text => None,
        }));
        out.sort();
        out.dedup();
        out
    }
}

/// A codelist the structures use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Codelist {
    Freq,
    Area,
    Sex,
    Age,
    Measure,
    Direction,
    Reason,
    ObsStatus,
    ConfStatus,
    Flag,
}

impl Codelist {
    pub const ALL: [Codelist; 10] = [
        Codelist::Freq,
        Codelist::Area,
        Codelist::Sex,
        Codelist::Age,
        Codelist::Measure,
        Codelist::Direction,
        Codelist::Reason,
        Codelist::ObsStatus,
        Codelist::ConfStatus,
        Codelist::Flag,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Codelist::Freq => "CL_FREQ",
            Codelist::Area => "CL_AREA",
            Codelist::Sex => "CL_SEX",
            Codelist::Age => "CL_AGE",
            Codelist::Measure => "CL_MIRROR_MEASURE",
            Codelist::Direction => "CL_DIRECTION",
            Codelist::Reason => "CL_REASON",
            Codelist::ObsStatus => "CL_OBS_STATUS",
            Codelist::ConfStatus => "CL_CONF_STATUS",
            Codelist::Flag => "CL_FLAG",
        }
    }

    /// SDMX's global codelists keep their agency and version; the others are Accord's.
    pub fn agency(self) -> &'static str {
        match self {
            Codelist::Freq | Codelist::ObsStatus | Codelist::ConfStatus => "SDMX",
            _ => AGENCY,
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Codelist::Freq => "2.1",
            Codelist::ObsStatus => "2.2",
            Codelist::ConfStatus => "1.3",
            _ => VERSION,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codelist::Freq => "Frequency",
            Codelist::Area => "Areas (ISO 3166-1 alpha-3)",
            Codelist::Sex => "Sex",
            Codelist::Age => "Age band (age reached in the event's year)",
            Codelist::Measure => "Mirror measure",
            Codelist::Direction => "Direction of the move",
            Codelist::Reason => "Reason for the residence permit",
            Codelist::ObsStatus => "Observation status",
            Codelist::ConfStatus => "Confidentiality status",
            Codelist::Flag => "Flag",
        }
    }

    /// The codes (ID, name), in order.
    pub fn codes(self) -> Vec<(String, String)> {
        let fixed = |codes: &[(&str, &str)]| codes.iter().map(|(c, n)| (c.to_string(), n.to_string())).collect();
        match self {
            Codelist::Freq => fixed(&[("A", "Annual"), ("Q", "Quarterly"), ("M", "Monthly")]),
            Codelist::Area => Country::all_iso()
                .map(|c| (c.to_string(), c.to_string()))
                .chain([
                    ("XXX".to_string(), "Unknown".to_string()),
                    ("XXA".to_string(), "Stateless".to_string()),
                    ("_T".to_string(), "Total".to_string()),
                ])
                .collect(),
            Codelist::Sex => fixed(&[
                ("F", "Female"),
                ("M", "Male"),
                ("X", "Other"),
                ("U", "Unknown"),
                ("_T", "Total"),
            ]),
            Codelist::Age => AGE_BANDS
                .iter()
                .map(|a| (a.to_string(), age_name(a)))
                .chain([("_T".to_string(), "Total".to_string())])
                .collect(),
            Codelist::Measure => fixed(&[
                (
                    "SENDER",
                    "As the origin (sender) reports it: its emigration to the destination",
                ),
                (
                    "RECEIVER",
                    "As the destination (receiver) reports it: its immigration from the origin",
                ),
                ("RECONCILED", "The figure the consortium's rule chose"),
                ("ESTIMATE", "Modelled estimate (SPEC §15)"),
                ("ESTIMATE_LOWER", "Lower bound of the estimate's 95% interval"),
                ("ESTIMATE_UPPER", "Upper bound of the estimate's 95% interval"),
            ]),
            Codelist::Direction => fixed(&[("IN", "Immigration"), ("OUT", "Emigration")]),
            Codelist::Reason => fixed(&[
                ("work", "Work"),
                ("family", "Family"),
                ("education", "Education"),
                ("protection", "Protection"),
                ("other", "Other"),
                ("unknown", "Unknown"),
                ("_T", "Total"),
            ]),
            Codelist::ObsStatus => fixed(&[
                ("A", "Normal value"),
                ("E", "Estimated value"),
                ("L", "Missing value; data exist but were not collected"),
            ]),
            Codelist::ConfStatus => fixed(&[("C", "Confidential statistical information"), ("F", "Free")]),
            Codelist::Flag => fixed(&[
                ("0", "Not flagged"),
                ("1", "Asymmetry above the consortium's threshold"),
            ]),
        }
    }
}

fn age_name(band: &str) -> String {
    match band {
        "Y_GE85" => "85 years or over".to_string(),
        "UNK" => "Unknown".to_string(),
        b => format!("From {} years", b.trim_start_matches('Y').replace('-', " to ")),
    }
}

/// The concepts every structure names (ID, name).
const CONCEPT_NAMES: [(&str, &str); 21] = [
    ("FREQ", "Frequency"),
    ("ORIGIN", "Country of previous residence (origin of the move)"),
    ("DESTINATION", "Country of next residence (destination of the move)"),
    ("REPORTER", "Reporting member"),
    ("DIRECTION", "Direction"),
    ("PARTNER", "Partner country"),
    ("CITIZENSHIP", "Citizenship"),
    ("SEX", "Sex"),
    ("AGE", "Age band"),
    ("REASON", "Reason"),
    ("MEASURE", "Measure"),
    ("TIME_PERIOD", "Time period"),
    ("OBS_VALUE", "Observation value"),
    ("OBS_STATUS", "Observation status"),
    ("CONF_STATUS", "Confidentiality status"),
    ("WITHHELD", "Confidential cells a total leaves out"),
    ("ASYMMETRY", "Asymmetry (receiver - sender) / max(receiver, sender)"),
    ("ASYMMETRY_FLAG", "Asymmetry above the consortium's threshold"),
    ("ENTRY_PUBLISHER", "Publisher of the signed entry"),
    (
        "ENTRY_SEQ",
        "Sequence number of the signed entry in its publisher's feed",
    ),
    ("ENTRY_DIGEST", "SHA-256 of the signed entry header"),
];

/// What a structure query asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub flows: Vec<Flow>,
    /// Data structure definitions.
    pub structures: Vec<Flow>,
    pub codelists: Vec<Codelist>,
    pub concepts: bool,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.structures.is_empty() && self.codelists.is_empty() && !self.concepts
    }

    /// Adds what the selected structures use (`references=children` and beyond).
    pub fn with_children(mut self) -> Selection {
        for f in &self.structures {
            self.codelists.extend(f.codelists());
        }
        self.codelists.sort();
        self.codelists.dedup();
        self.concepts |= !self.structures.is_empty();
        self
    }
}

fn urn(class: &str, agency: &str, id: &str, version: &str) -> String {
    let package = match class {
        "Dataflow" | "DataStructure" => "datastructure",
        "Codelist" => "codelist",
        _ => "conceptscheme",
    };
    format!("urn:sdmx:org.sdmx.infomodel.{package}.{class}={agency}:{id}({version})")
}

/// The SDMX-ML 2.1 structure message holding `selection`. `header` is the message header's
/// inner XML (ID, Test, Prepared, Sender).
pub fn structure_message(selection: &Selection, header: &str, consortium: &Consortium) -> String {
    let mut x = Xml::new();
    x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.raw(
        "<mes:Structure xmlns:mes=\"http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message\" \
         xmlns:str=\"http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure\" \
         xmlns:com=\"http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common\">",
    );
    x.raw("<mes:Header>");
    x.raw(header);
    x.raw("</mes:Header><mes:Structures>");
    if !selection.flows.is_empty() {
        x.raw("<str:Dataflows>");
        for f in &selection.flows {
            maintainable_open(&mut x, "Dataflow", AGENCY, f.id(), VERSION, f.name());
            x.raw("<str:Structure>");
            reference(&mut x, AGENCY, f.id(), VERSION, "datastructure", "DataStructure", None);
            x.raw("</str:Structure></str:Dataflow>");
        }
        x.raw("</str:Dataflows>");
    }
    if !selection.codelists.is_empty() {
        x.raw("<str:Codelists>");
        for c in &selection.codelists {
            codelist(&mut x, *c, consortium);
        }
        x.raw("</str:Codelists>");
    }
    if selection.concepts {
        x.raw("<str:Concepts>");
        maintainable_open(
            &mut x,
            "ConceptScheme",
            AGENCY,
            CONCEPTS,
            VERSION,
            "Concepts of Accord's migration statistics",
        );
        for (id, name) in CONCEPT_NAMES {
            let urn = format!("urn:sdmx:org.sdmx.infomodel.conceptscheme.Concept={AGENCY}:{CONCEPTS}({VERSION}).{id}");
            x.raw(&format!("<str:Concept id=\"{id}\" urn=\"{urn}\">"));
            name_element(&mut x, name);
            x.raw("</str:Concept>");
        }
        x.raw("</str:ConceptScheme></str:Concepts>");
    }
    if !selection.structures.is_empty() {
        x.raw("<str:DataStructures>");
        for f in &selection.structures {
            data_structure(&mut x, *f);
        }
        x.raw("</str:DataStructures>");
    }
    x.raw("</mes:Structures></mes:Structure>\n");
    x.finish()
}

fn maintainable_open(x: &mut Xml, class: &str, agency: &str, id: &str, version: &str, name: &str) {
    let urn = urn(class, agency, id, version);
    x.raw(&format!(
        "<str:{class} id=\"{id}\" urn=\"{urn}\" agencyID=\"{agency}\" version=\"{version}\" isFinal=\"true\">"
    ));
    name_element(x, name);
}

fn name_element(x: &mut Xml, name: &str) {
    x.raw(&format!("<com:Name xml:lang=\"en\">{}</com:Name>", esc(name)));
}

fn reference(x: &mut Xml, agency: &str, id: &str, version: &str, package: &str, class: &str, parent: Option<&str>) {
    match parent {
        Some(p) => x.raw(&format!(
            "<Ref id=\"{id}\" maintainableParentID=\"{p}\" maintainableParentVersion=\"{version}\" agencyID=\"{agency}\" package=\"{package}\" class=\"{class}\"/>"
        )),
        None => x.raw(&format!(
            "<Ref id=\"{id}\" version=\"{version}\" agencyID=\"{agency}\" package=\"{package}\" class=\"{class}\"/>"
        )),
    }
}

fn codelist(x: &mut Xml, c: Codelist, consortium: &Consortium) {
    maintainable_open(x, "Codelist", c.agency(), c.id(), c.version(), c.name());
    let prefix = format!(
        "urn:sdmx:org.sdmx.infomodel.codelist.Code={}:{}({})",
        c.agency(),
        c.id(),
        c.version()
    );
    for (code, name) in c.codes() {
        x.raw(&format!(
            "<str:Code id=\"{}\" urn=\"{prefix}.{}\">",
            esc(&code),
            esc(&code)
        ));
        if c == Codelist::Area {
            if let Some(member) = Country::parse(&code).and_then(|country| consortium.member(country)) {
                member_annotations(x, consortium, &member.measurement);
            }
        }
        name_element(x, &name);
        x.raw("</str:Code>");
    }
    x.raw("</str:Codelist>");
}

/// A member's harmonised definition and declared measurement classes (SPEC §15), as annotations
/// on its area code.
fn member_annotations(x: &mut Xml, consortium: &Consortium, measurement: &crate::domain::consortium::Measurement) {
    let definition = &consortium.definition;
    let register = |r: &Register| {
        format!(
            "undercount {}; accuracy {}; duration {} months",
            r.undercount.as_str(),
            r.accuracy.as_str(),
            r.duration_months
        )
    };
    let annotations = [
        (
            "ACCORD_MEMBER",
            "A member of the consortium: publishes signed datasets to the common view".to_string(),
        ),
        (
            "ACCORD_DEFINITION",
            format!(
                "Long-term migration: a stay or absence of at least {} months; unknown durations: {}",
                definition.min_duration_months,
                definition.unknown_duration.as_str()
            ),
        ),
        ("ACCORD_MEASUREMENT_EMIGRATION", register(&measurement.emigration)),
        ("ACCORD_MEASUREMENT_IMMIGRATION", register(&measurement.immigration)),
    ];
    x.raw("<com:Annotations>");
    for (kind, text) in annotations {
        x.raw(&format!(
            "<com:Annotation><com:AnnotationType>{kind}</com:AnnotationType><com:AnnotationText xml:lang=\"en\">{}</com:AnnotationText></com:Annotation>",
            esc(&text)
        ));
    }
    x.raw("</com:Annotations>");
}

fn concept_identity(x: &mut Xml, id: &str) {
    x.raw("<str:ConceptIdentity>");
    reference(x, AGENCY, id, VERSION, "conceptscheme", "Concept", Some(CONCEPTS));
    x.raw("</str:ConceptIdentity>");
}

fn enumeration(x: &mut Xml, c: Codelist) {
    x.raw("<str:LocalRepresentation><str:Enumeration>");
    reference(x, c.agency(), c.id(), c.version(), "codelist", "Codelist", None);
    x.raw("</str:Enumeration></str:LocalRepresentation>");
}

fn data_structure(x: &mut Xml, f: Flow) {
    maintainable_open(x, "DataStructure", AGENCY, f.id(), VERSION, f.name());
    let component = |kind: &str, id: &str| {
        format!(
            "urn:sdmx:org.sdmx.infomodel.datastructure.{kind}={AGENCY}:{}({VERSION}).{id}",
            f.id()
        )
    };
    x.raw("<str:DataStructureComponents>");
    x.raw(&format!(
        "<str:DimensionList id=\"DimensionDescriptor\" urn=\"{}\">",
        component("DimensionDescriptor", "DimensionDescriptor")
    ));
    let dims = f.dimensions();
    for (i, (id, c)) in dims.iter().enumerate() {
        x.raw(&format!(
            "<str:Dimension id=\"{id}\" urn=\"{}\" position=\"{}\">",
            component("Dimension", id),
            i + 1
        ));
        concept_identity(x, id);
        enumeration(x, *c);
        x.raw("</str:Dimension>");
    }
    x.raw(&format!(
        "<str:TimeDimension id=\"TIME_PERIOD\" urn=\"{}\" position=\"{}\">",
        component("TimeDimension", "TIME_PERIOD"),
        dims.len() + 1
    ));
    concept_identity(x, "TIME_PERIOD");
    x.raw("<str:LocalRepresentation><str:TextFormat textType=\"ObservationalTimePeriod\"/></str:LocalRepresentation></str:TimeDimension>");
    x.raw("</str:DimensionList>");
    x.raw(&format!(
        "<str:AttributeList id=\"AttributeDescriptor\" urn=\"{}\">",
        component("AttributeDescriptor", "AttributeDescriptor")
    ));
    for (id, attr) in f.attributes() {
        x.raw(&format!(
            "<str:Attribute id=\"{id}\" urn=\"{}\" assignmentStatus=\"Conditional\">",
            component("DataAttribute", id)
        ));
        concept_identity(x, id);
        match attr {
            Attr::Coded(c) => enumeration(x, *c),
            Attr::Text => {
                x.raw("<str:LocalRepresentation><str:TextFormat textType=\"String\"/></str:LocalRepresentation>")
            }
        }
        x.raw("<str:AttributeRelationship><str:PrimaryMeasure><Ref id=\"OBS_VALUE\"/></str:PrimaryMeasure></str:AttributeRelationship></str:Attribute>");
    }
    x.raw("</str:AttributeList>");
    x.raw(&format!(
        "<str:MeasureList id=\"MeasureDescriptor\" urn=\"{}\"><str:PrimaryMeasure id=\"OBS_VALUE\" urn=\"{}\">",
        component("MeasureDescriptor", "MeasureDescriptor"),
        component("PrimaryMeasure", "OBS_VALUE")
    ));
    concept_identity(x, "OBS_VALUE");
    x.raw("<str:LocalRepresentation><str:TextFormat textType=\"Integer\"/></str:LocalRepresentation></str:PrimaryMeasure></str:MeasureList>");
    x.raw("</str:DataStructureComponents></str:DataStructure>");
}

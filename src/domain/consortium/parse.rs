//! `consortium.toml` (SPEC §7, §11): the consortium document every member starts from, parsed
//! section by section into [`Consortium`] with every value checked; errors name the file, the
//! key and the problem. Pure: `io::config` reads the file.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::BranchKept;
use super::{
    Accuracy, Agreement, Consortium, Definition, Disclosure, EstimateMethod, Estimates, Measurement, Member, Quorum,
    Reconcile, Rule, SharingDefault, SigningKey, Undercount, UnknownDuration, DURATION_RULES,
};
use crate::domain::config::{
    country, floor, invalid, syntax, ConfigError, MIN_MAX_NOISE, MIN_SMALL_COUNT, MIN_THRESHOLD,
};
use crate::domain::date;
use crate::domain::model::Cube;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsortiumToml {
    name: String,
    #[serde(default)]
    test_only: bool,
    #[serde(default)]
    definitions: DefinitionsToml,
    #[serde(default)]
    disclosure: DisclosureToml,
    #[serde(default)]
    reconcile: ReconcileToml,
    #[serde(default)]
    governance: GovernanceToml,
    #[serde(default)]
    sharing: SharingToml,
    #[serde(default)]
    agreements: Vec<AgreementToml>,
    #[serde(default)]
    forks: Vec<ForkToml>,
    #[serde(default)]
    estimates: EstimatesToml,
    #[serde(default)]
    members: Vec<MemberToml>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EstimatesToml {
    method: Option<String>,
    #[serde(default)]
    reference: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MeasurementToml {
    emigration_undercount: Option<String>,
    immigration_undercount: Option<String>,
    emigration_accuracy: Option<String>,
    immigration_accuracy: Option<String>,
    emigration_duration_months: Option<u32>,
    immigration_duration_months: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForkToml {
    publisher: String,
    seq: u64,
    keep: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SharingToml {
    default: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgreementToml {
    name: String,
    parties: Vec<String>,
    cubes: Vec<String>,
    from: String,
    until: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GovernanceToml {
    quorum: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DefinitionsToml {
    min_duration_months: Option<u32>,
    unknown_duration: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DisclosureToml {
    method: Option<String>,
    threshold: Option<u32>,
    max_noise: Option<u32>,
    variance: Option<f64>,
    small_count: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReconcileToml {
    rule: Option<String>,
    asymmetry_flag: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberToml {
    country: String,
    #[serde(default)]
    keys: Vec<KeyToml>,
    measurement: Option<MeasurementToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyToml {
    public_key: String,
    valid_from: String,
    valid_until: Option<String>,
    retired_after_seq: Option<u64>,
}

impl Consortium {
    /// Parses consortium text (`Consortium::load` reads the file; `accord verify` and tests
    /// parse text); `file` is only used in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Consortium, ConfigError> {
        let raw: ConsortiumToml = toml::from_str(text).map_err(|e| syntax(file, text, &e))?;
        Consortium::from_toml(file, raw)
    }

    fn from_toml(file: &Path, raw: ConsortiumToml) -> Result<Consortium, ConfigError> {
        if raw.name.trim().is_empty() {
            return Err(invalid(file, "name", "must not be empty"));
        }
        // Section by section, in the file's order: the first fault is the one named.
        let definition = definition(file, &raw.definitions)?;
        let disclosure = disclosure(file, raw.test_only, &raw.disclosure)?;
        let reconcile = reconcile(file, &raw.reconcile)?;
        let quorum = quorum(file, &raw.governance)?;
        let members = members(file, &raw.members)?;
        let sharing = sharing(file, &raw.sharing)?;
        let agreements = agreements(file, &raw.agreements, &members)?;
        let forks = forks(file, &raw.forks)?;
        let estimates = estimates(file, &raw.estimates, &members)?;
        Ok(Consortium {
            name: raw.name,
            test_only: raw.test_only,
            definition,
            disclosure,
            reconcile,
            quorum,
            sharing,
            agreements,
            forks,
            estimates,
            members,
        })
    }
}

/// `[estimates]` (SPEC §15): the method and the reference members, each a member, none twice.
fn estimates(file: &Path, raw: &EstimatesToml, members: &[Member]) -> Result<Estimates, ConfigError> {
    let method = match raw.method.as_deref() {
        None => EstimateMethod::None,
        Some(s) => EstimateMethod::parse(s).ok_or_else(|| {
            invalid(
                file,
                "estimates.method",
                format!("must be \"imem-lite\" or \"none\", got {s:?}"),
            )
        })?,
    };
    let mut reference = Vec::new();
    for (i, code) in raw.reference.iter().enumerate() {
        let key = format!("estimates.reference[{i}]");
        let member = country(file, &key, code)?;
        if !members.iter().any(|m| m.country == member) {
            return Err(invalid(file, key, format!("{member} is not a member")));
        }
        if reference.contains(&member) {
            return Err(invalid(file, key, format!("{member} is listed twice")));
        }
        reference.push(member);
    }
    reference.sort();
    Ok(Estimates { method, reference })
}

/// `[members.measurement]` (SPEC §15): each direction's undercount class, accuracy and duration
/// rule, defaults where a key is absent.
fn measurement(file: &Path, member: &str, raw: Option<&MeasurementToml>) -> Result<Measurement, ConfigError> {
    let mut out = Measurement::default();
    let Some(raw) = raw else {
        return Ok(out);
    };
    let key = |name: &str| format!("{member}.measurement.{name}");
    for (register, undercount, accuracy, duration, name) in [
        (
            &mut out.emigration,
            &raw.emigration_undercount,
            &raw.emigration_accuracy,
            raw.emigration_duration_months,
            "emigration",
        ),
        (
            &mut out.immigration,
            &raw.immigration_undercount,
            &raw.immigration_accuracy,
            raw.immigration_duration_months,
            "immigration",
        ),
    ] {
        if let Some(s) = undercount {
            register.undercount = Undercount::parse(s).ok_or_else(|| {
                invalid(
                    file,
                    key(&format!("{name}_undercount")),
                    format!("must be \"low\", \"medium\" or \"high\", got {s:?}"),
                )
            })?;
        }
        if let Some(s) = accuracy {
            register.accuracy = Accuracy::parse(s).ok_or_else(|| {
                invalid(
                    file,
                    key(&format!("{name}_accuracy")),
                    format!("must be \"high\" or \"low\", got {s:?}"),
                )
            })?;
        }
        if let Some(months) = duration {
            if !DURATION_RULES.contains(&months) {
                return Err(invalid(
                    file,
                    key(&format!("{name}_duration_months")),
                    format!("must be 0 (none), 3, 6, 12 or 60 (permanent), got {months}"),
                ));
            }
            register.duration_months = months;
        }
    }
    Ok(out)
}

/// `[definitions]`: the harmonised definition of long-term migration.
fn definition(file: &Path, raw: &DefinitionsToml) -> Result<Definition, ConfigError> {
    let defaults = Definition::default();
    let definition = Definition {
        min_duration_months: raw.min_duration_months.unwrap_or(defaults.min_duration_months),
        unknown_duration: match raw.unknown_duration.as_deref() {
            None => defaults.unknown_duration,
            Some(s) => UnknownDuration::parse(s).ok_or_else(|| {
                invalid(
                    file,
                    "definitions.unknown_duration",
                    format!("must be \"count\" or \"exclude\", got {s:?}"),
                )
            })?,
        },
    };
    Ok(definition)
}

/// `[disclosure]`: the method and its parameters, floors refused unless `test_only`.
fn disclosure(file: &Path, test_only: bool, d: &DisclosureToml) -> Result<Disclosure, ConfigError> {
    let disclosure = match d.method.as_deref().unwrap_or("threshold") {
        "threshold" => {
            let k = d.threshold.unwrap_or(5);
            if k < 1 {
                return Err(invalid(file, "disclosure.threshold", "must be at least 1"));
            }
            floor(file, test_only, "disclosure.threshold", k, MIN_THRESHOLD)?;
            Disclosure::Threshold { k }
        }
        "cell-key" => {
            let max_noise = d.max_noise.unwrap_or(2);
            let variance = d.variance.unwrap_or(1.0);
            // Counts below 5 are "small" as under the default threshold: never shown exact.
            let small_count = d.small_count.unwrap_or(5);
            if !(1..=20).contains(&max_noise) {
                return Err(invalid(file, "disclosure.max_noise", "must be between 1 and 20"));
            }
            if !(variance > 0.0 && variance <= 100.0) {
                return Err(invalid(file, "disclosure.variance", "must be in (0, 100]"));
            }
            if small_count > 100 {
                return Err(invalid(file, "disclosure.small_count", "must be at most 100"));
            }
            floor(file, test_only, "disclosure.max_noise", max_noise, MIN_MAX_NOISE)?;
            floor(file, test_only, "disclosure.small_count", small_count, MIN_SMALL_COUNT)?;
            Disclosure::CellKey {
                max_noise,
                variance,
                small_count,
            }
        }
        "none" => {
            if !test_only {
                return Err(invalid(
                    file,
                    "disclosure.method",
                    "\"none\" is allowed only on a consortium with test_only = true",
                ));
            }
            Disclosure::None
        }
        other => {
            return Err(invalid(
                file,
                "disclosure.method",
                format!("must be \"threshold\", \"cell-key\" or \"none\", got {other:?}"),
            ))
        }
    };
    Ok(disclosure)
}

/// `[reconcile]`: the fixed rule and the asymmetry flag.
fn reconcile(file: &Path, raw: &ReconcileToml) -> Result<Reconcile, ConfigError> {
    let rd = Reconcile::default();
    let reconcile = Reconcile {
        rule: match raw.rule.as_deref() {
            None => rd.rule,
            Some(s) => Rule::parse(s).ok_or_else(|| {
                invalid(
                    file,
                    "reconcile.rule",
                    format!("must be receiving, sending, max or mean, got {s:?}"),
                )
            })?,
        },
        asymmetry_flag: raw.asymmetry_flag.unwrap_or(rd.asymmetry_flag),
    };
    if !(reconcile.asymmetry_flag >= 0.0 && reconcile.asymmetry_flag <= 1.0) {
        return Err(invalid(file, "reconcile.asymmetry_flag", "must be between 0 and 1"));
    }
    Ok(reconcile)
}

/// `[governance]`: the quorum.
fn quorum(file: &Path, raw: &GovernanceToml) -> Result<Quorum, ConfigError> {
    let quorum = match raw.quorum.as_deref() {
        None => Quorum::default(),
        Some(s) => Quorum::parse(s).ok_or_else(|| {
            invalid(
                file,
                "governance.quorum",
                format!("must be \"majority\", \"two-thirds\" or \"all\", got {s:?}"),
            )
        })?,
    };
    Ok(quorum)
}

/// `[[members]]`: at least one, no duplicate, each with its signing keys (no key listed twice).
fn members(file: &Path, raw: &[MemberToml]) -> Result<Vec<Member>, ConfigError> {
    if raw.is_empty() {
        return Err(invalid(file, "members", "at least one member is required"));
    }
    let mut members: Vec<Member> = Vec::new();
    let mut all_keys = BTreeSet::new();
    for (i, m) in raw.iter().enumerate() {
        let key = format!("members[{i}]");
        let code = country(file, &format!("{key}.country"), &m.country)?;
        if members.iter().any(|x| x.country == code) {
            return Err(invalid(
                file,
                format!("{key}.country"),
                format!("duplicate member {code}"),
            ));
        }
        if m.keys.is_empty() {
            return Err(invalid(
                file,
                format!("{key}.keys"),
                format!("member {code} has no signing key"),
            ));
        }
        let mut keys = Vec::new();
        for (j, k) in m.keys.iter().enumerate() {
            let kk = format!("{key}.keys[{j}]");
            let public_key = parse_public_key(&k.public_key).ok_or_else(|| {
                invalid(
                    file,
                    format!("{kk}.public_key"),
                    "must be 64 hex characters (a raw Ed25519 public key)",
                )
            })?;
            if !all_keys.insert(public_key) {
                return Err(invalid(
                    file,
                    format!("{kk}.public_key"),
                    "the same key is listed twice",
                ));
            }
            let valid_from = date::parse_timestamp(&k.valid_from).ok_or_else(|| {
                invalid(
                    file,
                    format!("{kk}.valid_from"),
                    format!("not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ): {:?}", k.valid_from),
                )
            })?;
            let valid_until = match &k.valid_until {
                None => None,
                Some(u) => Some(date::parse_timestamp(u).ok_or_else(|| {
                    invalid(
                        file,
                        format!("{kk}.valid_until"),
                        format!("not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ): {u:?}"),
                    )
                })?),
            };
            if valid_until.is_some_and(|u| u <= valid_from) {
                return Err(invalid(file, format!("{kk}.valid_until"), "must be after valid_from"));
            }
            keys.push(SigningKey {
                public_key,
                valid_from,
                valid_until,
                retired_after_seq: k.retired_after_seq,
            });
        }
        let measurement = measurement(file, &key, m.measurement.as_ref())?;
        members.push(Member {
            country: code,
            keys,
            measurement,
        });
    }
    Ok(members)
}

/// `[sharing]`: what a cube reaches by default.
fn sharing(file: &Path, raw: &SharingToml) -> Result<SharingDefault, ConfigError> {
    let sharing = match raw.default.as_deref() {
        None => SharingDefault::All,
        Some(s) => SharingDefault::parse(s).ok_or_else(|| {
            invalid(
                file,
                "sharing.default",
                format!("must be \"all\" or \"agreements\", got {s:?}"),
            )
        })?,
    };
    Ok(sharing)
}

/// `[[forks]]`: the branch the members chose to keep for a fork, one per publisher and seq.
fn forks(file: &Path, raw: &[ForkToml]) -> Result<Vec<BranchKept>, ConfigError> {
    let mut forks: Vec<BranchKept> = Vec::new();
    for (i, f) in raw.iter().enumerate() {
        let key = format!("forks[{i}]");
        let publisher = country(file, &format!("{key}.publisher"), &f.publisher)?;
        if f.seq == 0 {
            return Err(invalid(file, format!("{key}.seq"), "feeds start at seq 1"));
        }
        let keep = crate::domain::hex::decode(&f.keep)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid(file, format!("{key}.keep"), "not a header digest (64 hex digits)"))?;
        if forks.iter().any(|k| k.publisher == publisher && k.seq == f.seq) {
            return Err(invalid(
                file,
                key,
                format!("a second branch for {publisher} seq {}", f.seq),
            ));
        }
        forks.push(BranchKept {
            publisher,
            seq: f.seq,
            keep,
        });
    }
    forks.sort_by_key(|f| (f.publisher, f.seq));
    Ok(forks)
}

/// `[[agreements]]`, each checked: a name, two or more parties that are members, known cubes,
/// and a window that ends after it starts.
fn agreements(file: &Path, raw: &[AgreementToml], members: &[Member]) -> Result<Vec<Agreement>, ConfigError> {
    let mut out = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let key = format!("agreements[{i}]");
        if a.name.trim().is_empty() {
            return Err(invalid(file, format!("{key}.name"), "must not be empty"));
        }
        let mut parties = Vec::new();
        for (j, p) in a.parties.iter().enumerate() {
            let code = country(file, &format!("{key}.parties[{j}]"), p)?;
            if !members.iter().any(|m| m.country == code) {
                return Err(invalid(
                    file,
                    format!("{key}.parties[{j}]"),
                    format!("{code} is not a member"),
                ));
            }
            parties.push(code);
        }
        parties.sort();
        parties.dedup();
        if parties.len() < 2 {
            return Err(invalid(
                file,
                format!("{key}.parties"),
                "an agreement needs two or more parties",
            ));
        }
        let mut cubes = Vec::new();
        for (j, c) in a.cubes.iter().enumerate() {
            let cube = Cube::parse(c).ok_or_else(|| {
                invalid(
                    file,
                    format!("{key}.cubes[{j}]"),
                    format!("not a cube (flows, asylum, permits): {c:?}"),
                )
            })?;
            cubes.push(cube);
        }
        cubes.sort_by_key(|c| c.as_str());
        cubes.dedup();
        if cubes.is_empty() {
            return Err(invalid(file, format!("{key}.cubes"), "name at least one cube"));
        }
        let time = |field: &str, text: &str| {
            date::parse_timestamp(text).ok_or_else(|| {
                invalid(
                    file,
                    format!("{key}.{field}"),
                    format!("not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ): {text:?}"),
                )
            })
        };
        let (from, until) = (time("from", &a.from)?, time("until", &a.until)?);
        if until <= from {
            return Err(invalid(file, format!("{key}.until"), "must be after from"));
        }
        out.push(Agreement {
            name: a.name.clone(),
            parties,
            cubes,
            from,
            until,
        });
    }
    out.sort_by(|a, b| (&a.name, a.from).cmp(&(&b.name, b.from)));
    Ok(out)
}

pub(crate) fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let bytes = crate::domain::hex::decode(text)?;
    bytes.try_into().ok()
}

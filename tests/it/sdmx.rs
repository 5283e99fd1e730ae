//! SDMX REST and vintages (SPEC §16) as a statistician's tools meet them: two `accord serve`
//! daemons publish, one revises, and the other node's dashboard listener answers SDMX 2.1
//! structure and data queries with the figures `accord view` prints, as of now and as of
//! before the revision; `accord view --as-of` gives the digest the node had then. Independent
//! clients (the Python packages sdmx1 and pysdmx, installed by `.ci/run`) read the same node
//! through `tests/clients/sdmx_client.py`; pysdmx also validates every SDMX-ML message against
//! the SDMX 2.1 XML schemas it ships.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::support::cli::{free_port, Site};
use crate::support::http;
use crate::support::{eventually_blocking, last_year};

/// `GET path` with `accept`: the status, the content type and the body.
fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let accept = accept.map(|a| format!("Accept: {a}"));
    let headers: Vec<&str> = accept.iter().map(String::as_str).collect();
    let answer = http::get(addr, path, &addr.to_string(), &headers);
    (answer.status, answer.header("content-type"), answer.body)
}

/// The value of XML attribute `name` in `element` (one element's text).
fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let at = element.find(&format!(" {name}=\""))? + name.len() + 3;
    element[at..].split('"').next()
}

/// The `<Obs .../>` elements of a StructureSpecificData body, each with its series' attributes
/// before its own.
fn observations(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for series in body.split("<Series ").skip(1) {
        let (head, rest) = series.split_once('>').unwrap_or((series, ""));
        for obs in rest.split("<Obs ").skip(1) {
            out.push(format!("{head} {}", obs.split("/>").next().unwrap_or("")));
        }
    }
    out
}

fn digest_between(body: &str, open: &str, close: &str) -> String {
    body.split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map(|(d, _)| d.to_string())
        .unwrap_or_default()
}

fn json_digest(site: &Site, config: &str, extra: &str) -> String {
    let out = site
        .ok(&format!("view --config {config} --format json {extra}"))
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&out).expect("view json");
    v["digest"].as_str().expect("digest").to_string()
}

/// The Python that has the independent SDMX clients: `ACCORD_SDMX_PYTHON`, or the virtual
/// environment `.ci/run` makes in `target/sdmx-venv`.
fn client_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ACCORD_SDMX_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sdmx-venv/bin/python");
    venv.exists().then_some(venv)
}

#[test]
fn sdmx_clients_read_the_view_and_its_vintages() {
    let (site, [deu, fra]) = Site::two_members(31);
    let port = free_port();
    let text = site.read(&deu.config);
    site.write(
        &deu.config,
        &format!("dashboard_listen = \"127.0.0.1:{port}\"\nsdmx_max_observations = 1000\n{text}"),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (_deu_daemon, _fra_daemon) = (site.serve(&deu), site.serve(&fra));
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    site.ok(&format!("ingest --config {} records/fra.csv", fra.config));
    let year = last_year();
    site.ok(&format!("publish --config {} --cube flows --period {year}", deu.config));
    site.ok(&format!("publish --config {} --cube flows --period {year}", fra.config));
    let holds = |seq: u64| {
        eventually_blocking(&format!("DEU holds FRA's seq {seq}"), || {
            let status = site.status(&deu.config);
            let feeds = status["feeds"].as_array().cloned().unwrap_or_default();
            if feeds.iter().any(|f| f["publisher"] == "FRA" && f["seq"] == seq) {
                Ok(())
            } else {
                Err(status.to_string())
            }
        })
    };
    holds(1);
    let before = json_digest(&site, &deu.config, "");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let t1 = accord::date::format_instant_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    let pair = format!("--cube flows --period {year} --origin FRA --destination DEU");
    let csv_before = site
        .ok(&format!("view --config {} {pair} --format csv", deu.config))
        .stdout();

    // FRA revises its year with more records: DEU's view changes.
    site.ok(&format!(
        "synth --countries FRA,DEU --year {year} --records 600 --seed 77 --out more"
    ));
    site.ok(&format!("ingest --config {} more/fra.csv", fra.config));
    site.ok(&format!("publish --config {} --cube flows --period {year}", fra.config));
    holds(2);
    let after = json_digest(&site, &deu.config, "");
    assert_ne!(before, after, "the revision changed the view");

    // Vintages: the view as of t1 is the one DEU had then, to the digest; as of a moment still
    // to come it is the view now.
    assert_eq!(json_digest(&site, &deu.config, &format!("--as-of {t1}")), before);
    assert_eq!(json_digest(&site, &deu.config, "--as-of 2999-01-01T00:00:00Z"), after);
    assert_eq!(
        site.ok(&format!(
            "view --config {} {pair} --format csv --as-of {t1}",
            deu.config
        ))
        .stdout(),
        csv_before
    );
    site.fails(&format!("view --config {} --as-of yesterday", deu.config))
        .reason_has(&["--as-of", "RFC 3339"]);

    // Structure: dataflows, the DSD with its codelists and concepts (before it, as clients need).
    let (status, content_type, flows) = get(addr, "/sdmx/2.1/dataflow/ACCORD/all/latest", None);
    assert_eq!(status, 200, "{flows}");
    assert!(
        content_type.starts_with("application/vnd.sdmx.structure+xml"),
        "{content_type}"
    );
    for id in ["MIG_FLOWS_MIRROR", "MIG_FLOWS_REPORTED", "MIG_ASYLUM", "MIG_PERMITS"] {
        assert!(flows.contains(&format!("<str:Dataflow id=\"{id}\"")), "{id} in {flows}");
    }
    let (status, _, dsd) = get(
        addr,
        "/sdmx/2.1/datastructure/ACCORD/MIG_FLOWS_MIRROR/latest?references=children",
        None,
    );
    assert_eq!(status, 200, "{dsd}");
    let position = |needle: &str| dsd.find(needle).unwrap_or_else(|| panic!("{needle} in {dsd}"));
    assert!(position("<str:Codelists>") < position("<str:Concepts>"));
    assert!(position("<str:Concepts>") < position("<str:DataStructures>"));
    let dims: Vec<&str> = dsd
        .split("<str:Dimension id=\"")
        .skip(1)
        .map(|d| d.split('"').next().unwrap_or(""))
        .collect();
    assert_eq!(
        dims,
        ["FREQ", "ORIGIN", "DESTINATION", "CITIZENSHIP", "SEX", "AGE", "MEASURE"]
    );
    assert!(dsd.contains("<str:TimeDimension id=\"TIME_PERIOD\""));
    for code in [
        "SENDER",
        "RECEIVER",
        "RECONCILED",
        "ESTIMATE",
        "ESTIMATE_LOWER",
        "ESTIMATE_UPPER",
    ] {
        assert!(
            dsd.contains(&format!("Code=ACCORD:CL_MIRROR_MEASURE(1.0).{code}\"")),
            "{code}"
        );
    }
    // Each member's definitions and measurement classes as annotations on its area code.
    let deu_code = digest_between(&dsd, "<str:Code id=\"DEU\"", "</str:Code>");
    assert!(
        deu_code.contains("ACCORD_DEFINITION") && deu_code.contains("ACCORD_MEASUREMENT_IMMIGRATION"),
        "{deu_code}"
    );

    // Data: the pair total of FRA to DEU, as `accord view` prints it, now and as of t1.
    let csv_now = site
        .ok(&format!("view --config {} {pair} --format csv", deu.config))
        .stdout();
    for (csv, as_of, digest) in [
        (&csv_now, String::new(), &after),
        (&csv_before, format!("&asOf={t1}"), &before),
    ] {
        let total: Vec<&str> = csv
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|r| r.len() > 10 && r[3..6] == ["_T", "_T", "_T"])
            .expect("a total row");
        let path = format!(
            "/sdmx/2.1/data/ACCORD,MIG_FLOWS_MIRROR,1.0/A.FRA.DEU._T._T._T.SENDER+RECEIVER+RECONCILED?startPeriod={year}&endPeriod={year}{as_of}"
        );
        let (status, content_type, body) = get(addr, &path, None);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            content_type.starts_with("application/vnd.sdmx.structurespecificdata+xml"),
            "{content_type}"
        );
        assert_eq!(
            &digest_between(&body, "<message:DataSetID>", "</message:DataSetID>"),
            digest
        );
        let obs = observations(&body);
        assert_eq!(obs.len(), 3, "{body}");
        for (measure, column) in [("SENDER", 6), ("RECEIVER", 8), ("RECONCILED", 10)] {
            let o = obs
                .iter()
                .find(|o| attr(o, "MEASURE") == Some(measure))
                .unwrap_or_else(|| panic!("{measure} in {body}"));
            // A confidential figure is empty in CSV and has no OBS_VALUE (and CONF_STATUS C).
            assert_eq!(
                attr(o, "OBS_VALUE").unwrap_or(""),
                total[column],
                "{measure}: {o} against {total:?}"
            );
            assert_eq!(attr(o, "CONF_STATUS") == Some("C"), total[column].is_empty(), "{o}");
            assert_eq!(attr(o, "TIME_PERIOD"), Some(year.to_string().as_str()));
        }
    }

    // A confidential side has no value and CONF_STATUS C, in the reported flow too.
    let (_, _, reported) = get(
        addr,
        &format!("/sdmx/2.1/data/MIG_FLOWS_REPORTED/A.DEU.IN.FRA...?startPeriod={year}"),
        None,
    );
    let reported_obs = observations(&reported);
    assert!(!reported_obs.is_empty(), "{reported}");
    for o in &reported_obs {
        assert_eq!(attr(o, "ENTRY_PUBLISHER"), Some("DEU"), "{o}");
        match attr(o, "CONF_STATUS") {
            Some("C") => assert_eq!(attr(o, "OBS_VALUE"), None, "{o}"),
            Some("F") => assert!(attr(o, "OBS_VALUE").is_some(), "{o}"),
            other => panic!("CONF_STATUS {other:?} in {o}"),
        }
    }

    // updatedAfter: only what FRA's revision (accepted after t1) changed.
    let (status, _, updated) = get(
        addr,
        &format!("/sdmx/2.1/data/MIG_FLOWS_REPORTED/A..OUT....?updatedAfter={t1}"),
        None,
    );
    assert_eq!(status, 200, "{updated}");
    let updated_obs = observations(&updated);
    assert!(!updated_obs.is_empty());
    assert!(updated_obs
        .iter()
        .all(|o| attr(o, "ENTRY_PUBLISHER") == Some("FRA") && attr(o, "ENTRY_SEQ") == Some("2")));
    // includeHistory: one dataset per revision, each valid from when DEU accepted it.
    let (status, _, history) = get(
        addr,
        "/sdmx/2.1/data/MIG_FLOWS_MIRROR/A.FRA.DEU._T._T._T.RECONCILED?includeHistory=true",
        None,
    );
    assert_eq!(status, 200, "{history}");
    let valid_from: Vec<&str> = history
        .split("validFromDate=\"")
        .skip(1)
        .map(|v| v.split('"').next().unwrap_or(""))
        .collect();
    assert!(valid_from.len() >= 2, "{history}");
    assert!(valid_from.windows(2).all(|w| w[0] < w[1]), "{valid_from:?}");
    assert!(
        *valid_from.last().unwrap() > t1.as_str() && valid_from[0] < t1.as_str(),
        "{valid_from:?} around {t1}"
    );

    // SDMX-CSV 1.0 and SDMX-JSON 1.0.
    let (status, content_type, csv) = get(
        addr,
        "/sdmx/2.1/data/MIG_FLOWS_MIRROR/A.FRA.DEU._T._T._T.RECONCILED",
        Some("application/vnd.sdmx.data+csv;version=1.0.0"),
    );
    assert_eq!(status, 200, "{csv}");
    assert!(
        content_type.starts_with("application/vnd.sdmx.data+csv"),
        "{content_type}"
    );
    assert!(
        csv.starts_with(
            "DATAFLOW,FREQ,ORIGIN,DESTINATION,CITIZENSHIP,SEX,AGE,MEASURE,TIME_PERIOD,OBS_VALUE,OBS_STATUS"
        ),
        "{csv}"
    );
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("ACCORD:MIG_FLOWS_MIRROR(1.0),A,FRA,DEU,_T,_T,_T,RECONCILED,")),
        "{csv}"
    );
    let (status, _, json) = get(
        addr,
        "/sdmx/2.1/data/MIG_FLOWS_MIRROR/A.FRA.DEU._T._T._T.RECONCILED?format=jsondata",
        None,
    );
    assert_eq!(status, 200, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).expect("SDMX-JSON");
    assert_eq!(
        json["dataSets"][0]["observations"].as_object().map(|o| o.len()),
        Some(1),
        "{json}"
    );

    // Errors as SDMX says: status code and an SDMX-ML error message.
    for (path, accept, want) in [
        ("/sdmx/2.1/data/MIG_NOTHING", None, 404),
        (
            "/sdmx/2.1/data/MIG_FLOWS_MIRROR/A.FRA.DEU._T._T._T.RECONCILED?startPeriod=1999&endPeriod=1999",
            None,
            404,
        ),
        ("/sdmx/2.1/data/MIG_FLOWS_MIRROR/A.FRA", None, 400),
        ("/sdmx/2.1/data/MIG_FLOWS_MIRROR?asOf=tomorrow", None, 400),
        (
            "/sdmx/2.1/data/MIG_FLOWS_MIRROR",
            Some("application/vnd.sdmx.genericdata+xml;version=2.1"),
            406,
        ),
        ("/sdmx/2.1/data/MIG_FLOWS_MIRROR", None, 413),
        ("/sdmx/2.1/categoryscheme", None, 501),
    ] {
        let (status, content_type, body) = get(addr, path, accept);
        assert_eq!(status, want, "{path}: {}", &body[..body.len().min(2000)]);
        assert!(content_type.starts_with("application/xml"), "{content_type}");
        assert!(body.contains("<mes:ErrorMessage code=\""), "{body}");
    }

    // The independent clients: sdmx1 reads the structure and the pair's data, pysdmx reads the
    // SDMX-CSV back; both must show what `accord view` shows.
    let Some(python) = client_python() else {
        assert!(
            std::env::var_os("ACCORD_REQUIRE_SDMX_CLIENT").is_none(),
            "ACCORD_REQUIRE_SDMX_CLIENT is set but no Python with sdmx1 is found (run .ci/run, or set ACCORD_SDMX_PYTHON)"
        );
        eprintln!("sdmx clients: no target/sdmx-venv (made by .ci/run) and no ACCORD_SDMX_PYTHON: the independent client part is skipped");
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/sdmx_client.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(format!("http://{addr}/sdmx/2.1"))
        .arg(year.to_string())
        .output()
        .expect("run the SDMX client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sdmx_client.py failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: serde_json::Value = serde_json::from_str(&stdout).expect("client JSON");
    let total: Vec<&str> = csv_now
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r.len() > 10 && r[3..6] == ["_T", "_T", "_T"])
        .expect("a total row");
    for (measure, column) in [("SENDER", 6), ("RECEIVER", 8), ("RECONCILED", 10)] {
        // Confidential: no value, which both clients read as null (NaN).
        let want: Option<f64> = total[column].parse().ok();
        assert_eq!(client["sdmx1"][measure].as_f64(), want, "sdmx1 {measure}: {client}");
        assert_eq!(
            client["pysdmx_csv"][measure].as_f64(),
            want,
            "pysdmx {measure}: {client}"
        );
        assert_eq!(
            client["pysdmx_xml"][measure].as_f64(),
            want,
            "pysdmx XML {measure}: {client}"
        );
    }
}

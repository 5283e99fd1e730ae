"""Reads an Accord node through SDMX REST 2.1 with clients written elsewhere: sdmx1 (structure and
StructureSpecificData) and pysdmx (SDMX-CSV 1.0). Run by tests/it/sdmx.rs with the Python of the
virtual environment .ci/run makes.

Usage: sdmx_client.py BASE_URL YEAR
Prints one JSON document: the FRA to DEU pair total of YEAR per measure as each client read it.
Exits 1 naming the check that failed.
"""
import json
import logging
import sys
import warnings

import requests
import sdmx
from sdmx.model import common

warnings.simplefilter("ignore")
logging.getLogger("sdmx").setLevel(logging.ERROR)

FLOW = "MIG_FLOWS_MIRROR"
DIMS = ["FREQ", "ORIGIN", "DESTINATION", "CITIZENSHIP", "SEX", "AGE", "MEASURE", "TIME_PERIOD"]
MEASURES = ["SENDER", "RECEIVER", "RECONCILED"]


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(1)


def main():
    base, year = sys.argv[1].rstrip("/"), sys.argv[2]
    # sdmx1 takes the source id as the default agency of structure queries.
    sdmx.add_source({"id": "ACCORD", "url": base, "name": "Accord node"}, override=True)
    client = sdmx.Client("ACCORD")
    out = {}

    flows = client.dataflow()
    ids = sorted(flows.dataflow)
    if not {"MIG_FLOWS_MIRROR", "MIG_FLOWS_REPORTED"} <= set(ids):
        fail(f"dataflows: {ids}")
    out["dataflows"] = ids

    structure = client.datastructure(FLOW, params={"references": "children"})
    dsd = structure.structure[FLOW]
    dims = [d.id for d in dsd.dimensions]
    if dims != DIMS or not isinstance(dsd.dimensions[-1], common.TimeDimension):
        fail(f"dimensions: {dims}")
    for d in dsd.dimensions:
        if isinstance(d, common.TimeDimension):
            continue
        codes = d.local_representation.enumerated
        if codes is None or codes.is_external_reference or len(codes) == 0:
            fail(f"dimension {d.id}: its codelist is not in the structure message")
    measure_codes = [c.id for c in dsd.dimensions.get("MEASURE").local_representation.enumerated]
    if not set(MEASURES + ["ESTIMATE", "ESTIMATE_LOWER", "ESTIMATE_UPPER"]) <= set(measure_codes):
        fail(f"CL_MIRROR_MEASURE: {measure_codes}")
    area = structure.codelist["CL_AREA"]
    annotated = sorted(c.id for c in area if any(str(a.type) == "ACCORD_DEFINITION" for a in c.annotations))
    if annotated != ["DEU", "FRA"]:
        fail(f"members annotated on CL_AREA: {annotated}")
    out["dimensions"] = dims

    key = {"FREQ": "A", "ORIGIN": "FRA", "DESTINATION": "DEU", "CITIZENSHIP": "_T", "SEX": "_T", "AGE": "_T",
           "MEASURE": "+".join(MEASURES)}
    data = client.data(FLOW, key=key, params={"startPeriod": year, "endPeriod": year}, dsd=dsd)
    read = {}
    for ds in data.data:
        for series_key, observations in ds.series.items():
            measure = str(series_key.values["MEASURE"].value)
            for o in observations:
                if str(o.dimension.values["TIME_PERIOD"].value) != year:
                    fail(f"{measure}: a period outside {year}")
                read[measure] = None if o.value is None else float(o.value)
    out["sdmx1"] = read
    frame = sdmx.to_pandas(data)
    if len(frame) != len(read):
        fail(f"to_pandas: {len(frame)} rows for {len(read)} observations")

    # SDMX-CSV 1.0, read back by pysdmx.
    from pysdmx.io import read_sdmx

    path = f"{base}/data/{FLOW}/A.FRA.DEU._T._T._T.{'+'.join(MEASURES)}?startPeriod={year}&endPeriod={year}"
    csv = requests.get(path, headers={"Accept": "application/vnd.sdmx.data+csv;version=1.0.0"}, timeout=30)
    csv.raise_for_status()
    message = read_sdmx(csv.text)
    frame = message.data[0].data
    read_back = {}
    for _, row in frame.iterrows():
        value = row["OBS_VALUE"]
        read_back[str(row["MEASURE"])] = None if value is None or value == "" or value != value else float(value)
    out["pysdmx_csv"] = read_back

    # pysdmx validates SDMX-ML against the SDMX 2.1 XML schemas it ships: the structure
    # messages and the StructureSpecificData must pass, and the data read with the DSD must
    # give the same figures.
    from pysdmx.io import get_datasets

    for url in [
        f"{base}/dataflow/ACCORD/all/latest",
        f"{base}/datastructure/ACCORD/all/latest?references=all",
        f"{base}/codelist/all/all/latest",
        f"{base}/conceptscheme/ACCORD/CS_MIGRATION/1.0",
    ]:
        answer = requests.get(url, timeout=30)
        answer.raise_for_status()
        read_sdmx(answer.text, validate=True)
    reported_dsd = requests.get(f"{base}/datastructure/ACCORD/MIG_FLOWS_REPORTED/latest?references=children", timeout=30).text
    reported = requests.get(
        f"{base}/data/MIG_FLOWS_REPORTED/A.DEU.IN.FRA...?dimensionAtObservation=AllDimensions", timeout=30
    ).text
    if len(get_datasets(reported, structure=reported_dsd, validate=True)[0].data) == 0:
        fail("MIG_FLOWS_REPORTED: no observations read")
    dsd_text = requests.get(f"{base}/datastructure/ACCORD/{FLOW}/latest?references=children", timeout=30).text
    path = f"{base}/data/{FLOW}/A.FRA.DEU._T._T._T.{'+'.join(MEASURES)}?startPeriod={year}&endPeriod={year}"
    data_text = requests.get(path, timeout=30).text
    datasets = get_datasets(data_text, structure=dsd_text, validate=True)
    read_xml = {}
    for _, row in datasets[0].data.iterrows():
        value = row.get("OBS_VALUE")
        read_xml[str(row["MEASURE"])] = None if value is None or value == "" or value != value else float(value)
    out["pysdmx_xml"] = read_xml

    # Errors as SDMX says: 404 for a flow that is not there, 400 for a key of the wrong length,
    # 501 for a resource not served; sdmx1 raises on each, and the body is an SDMX error message.
    for url, want in [
        (f"{base}/data/MIG_NOTHING", 404),
        (f"{base}/data/{FLOW}/A.FRA", 400),
        (f"{base}/categoryscheme", 501),
    ]:
        answer = requests.get(url, timeout=30)
        if answer.status_code != want or b"ErrorMessage" not in answer.content:
            fail(f"{url}: {answer.status_code}, not {want} with an SDMX error message")
    try:
        client.data("MIG_NOTHING")
        fail("sdmx1 read a dataflow that is not there")
    except requests.exceptions.HTTPError as e:
        if e.response.status_code != 404:
            fail(f"sdmx1: {e}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Every Flux query of the Grafana dashboard, run against a real InfluxDB 2 on data the sink writes.

The dataset is encoded by the InfluxDB sink's own encoders (`sentinel.stores.influx_schema`), so the
dashboard is checked against exactly what `sentinel run` writes. Queries are interpolated the way
Grafana does it: dashboard variables (`${network}`, `${zone}`) by text, then the Flux macros
(`v.timeRangeStart`, `v.timeRangeStop`, `v.windowPeriod`, `v.defaultBucket`, ...) with the rule of
Grafana's backend (pkg/tsdb/influxdb/flux/macros.go: every `word.macroName` is replaced, whatever the
word before the dot).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import influxdb_client
import pytest
from influxdb_client.client.write_api import SYNCHRONOUS

from alerts.model import Alert, AlertChange
from sentinel.catalog import parse_catalog_csv
from sentinel.detections import Detection
from sentinel.readings import Batch
from sentinel.severity import Severity
from sentinel.stores.influx_schema import ReadingsEncoder, encode_alert_changes, encode_detections

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "lifeline.json").read_text(encoding="utf-8"))

T0 = datetime(2025, 3, 1, tzinfo=UTC)  # the dataset's first minute; the queried range is T0 .. T0 + 1 h
NS = 10**9
MINUTES = 30  # readings per sensor, one a minute


def at(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp() * NS)


# ---- Grafana's interpolation ---------------------------------------------------------------------------

_MACRO = re.compile(r"([a-zA-Z]+)\.([a-zA-Z]+)", re.M)


def grafana_interpolate(query: str, *, variables: dict[str, str], start: datetime, stop: datetime,
                        window: str, bucket: str, org: str) -> str:
    for name, value in variables.items():  # templateSrv.replace: ${name} and $name
        query = query.replace("${" + name + "}", value)
        query = re.sub(r"\$" + name + r"\b", value, query)
    macros = {
        "timeRangeStart": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timeRangeStop": stop.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "windowPeriod": window,
        "bucket": f'"{bucket}"',
        "defaultBucket": f'"{bucket}"',
        "organization": f'"{org}"',
    }
    for m in list(_MACRO.finditer(query)):
        if m.group(2) in macros:
            query = query.replace(m.group(0), macros[m.group(2)])
    assert "$" not in query, f"unresolved template variable in:\n{query}"
    return query


def test_interpolation_follows_grafana() -> None:
    q = 'from(bucket: v.defaultBucket) |> range(start: v.timeRangeStart, stop: v.timeRangeStop) ' \
        '|> filter(fn: (r) => r.zone == "${zone}" and r.network == "$network") ' \
        '|> aggregateWindow(every: v.windowPeriod, fn: mean)'
    out = grafana_interpolate(q, variables={"zone": "DMA1", "network": "water"}, start=T0,
                              stop=T0 + timedelta(hours=1), window="1m0s", bucket="b", org="o")
    assert out == ('from(bucket: "b") |> range(start: 2025-03-01T00:00:00Z, stop: 2025-03-01T01:00:00Z) '
                   '|> filter(fn: (r) => r.zone == "DMA1" and r.network == "water") '
                   '|> aggregateWindow(every: 1m0s, fn: mean)')


# ---- the dashboard's queries -------------------------------------------------------------------------


def _panels(panels: list[dict]) -> Iterator[dict]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def dashboard_queries() -> dict[str, str]:
    """Every query, keyed by what it shows: `var:<name>`, `readings:<quantity>`, `detections`,
    `alerts:zone` (the zone's open alerts) and `alerts:city` (open alerts per network/zone)."""
    out: dict[str, str] = {}
    for var in DASHBOARD["templating"]["list"]:
        if var["type"] == "query":
            out[f"var:{var['name']}"] = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
    for panel in _panels(DASHBOARD["panels"]):
        for target in panel.get("targets", []):
            q = target["query"]
            m = re.search(r'r\._measurement == "(\w+)"', q)
            assert m, f"panel {panel['title']!r}: no measurement filter"
            if m.group(1) == "readings":
                key = "readings:" + re.search(r'r\.quantity == "(\w+)"', q).group(1)
            elif m.group(1) == "alerts":
                key = "alerts:zone" if "${zone}" in q else "alerts:city"
            else:
                key = m.group(1)
            assert key not in out, f"two queries show {key}"
            out[key] = q
    return out


QUERIES = dashboard_queries()


def test_the_dashboard_has_every_view() -> None:
    assert set(QUERIES) == {"var:network", "var:zone", "readings:pressure", "readings:flow",
                            "readings:gas_concentration", "detections", "alerts:zone", "alerts:city"}


# ---- a small known dataset, written with the sink's encoders -------------------------------------------

CATALOG = parse_catalog_csv("""sensor_id,network,zone,quantity,unit
W1-P1,water,DMA1,pressure,kPa
W1-P2,water,DMA1,pressure,kPa
W1-F1,water,DMA1,flow,m3/h
W2-P1,water,DMA2,pressure,kPa
G1-L1,gas,GD1,gas_concentration,%LEL
G1-P1,gas,GD1,pressure,kPa
H1-T1,heat,LOOP1,temperature,degC
""")


def reading_value(sensor: str, minute: int) -> float:
    return {"W1-P1": 300.0 + minute, "W1-P2": 310.5, "W1-F1": 42.0 + minute / 4, "W2-P1": 280.0,
            "G1-L1": minute * 1.5, "G1-P1": 5.1, "H1-T1": 70.0}[sensor]


def readings_lines() -> list[str]:
    ids = [s.sensor_id for s in CATALOG.sensors]
    sensor, time_ns, value = [], [], []
    for minute in range(MINUTES):
        for sid in ids:
            sensor.append(CATALOG.index[sid])
            time_ns.append(at(minute))
            value.append(reading_value(sid, minute))
    return ReadingsEncoder(CATALOG).encode(Batch.of(sensor, time_ns, value))


def detection(rule: str, kind: str, sid: str | None, zone: str, minute: int, transition: str,
              severity: Severity | None, network: str = "water") -> Detection:
    return Detection(rule_id=rule, kind=kind, network=network, zone=zone, subject=sid or zone, sensor_id=sid,
                     time_ns=at(minute), transition=transition, severity=severity, value=123.4, score=2.5,
                     message=f"{rule} {transition}")


DETECTIONS = [
    detection("water-pressure-low", "threshold", "W1-P1", "DMA1", 10, "raised", Severity.YELLOW),
    detection("water-pressure-low", "threshold", "W1-P1", "DMA1", 12, "escalated", Severity.ORANGE),
    detection("water-pressure-low", "threshold", "W1-P1", "DMA1", 20, "cleared", None),
    detection("water-zone-balance", "zone_balance", None, "DMA1", 15, "raised", Severity.RED),
    detection("gas-lel", "threshold", "G1-L1", "GD1", 15, "raised", Severity.ORANGE, network="gas"),
]


def change(alert_id: str, network: str, zone: str, rule: str, subject: str, minute: float, what: str,
           state: str, severity: Severity, actor: str | None = None) -> AlertChange:
    alert = Alert(alert_id=alert_id, rule_id=rule, kind="threshold", network=network, zone=zone, subject=subject,
                  sensor_id=subject, severity=severity, state=state, started_ns=at(0), updated_ns=at(minute),
                  value=1.5, message=f"{rule} on {subject} 告警")
    return AlertChange(alert, what, at(minute), actor)


ALERT_CHANGES = [
    # resolved inside the range: not open
    change("a1", "water", "DMA1", "water-pressure-low", "W1-P1", 10, "opened", "firing", Severity.YELLOW),
    change("a1", "water", "DMA1", "water-pressure-low", "W1-P1", 12, "escalated", "firing", Severity.ORANGE),
    change("a1", "water", "DMA1", "water-pressure-low", "W1-P1", 20, "cleared", "firing", Severity.ORANGE),
    change("a1", "water", "DMA1", "water-pressure-low", "W1-P1", 35, "resolved", "resolved", Severity.ORANGE),
    # open: acknowledged red, and a yellow one
    change("a2", "water", "DMA1", "water-zone-balance", "DMA1", 15, "opened", "firing", Severity.RED),
    change("a2", "water", "DMA1", "water-zone-balance", "DMA1", 18, "acknowledged", "acknowledged", Severity.RED,
           actor="duty-engineer"),
    change("a3", "water", "DMA1", "water-sensor-silent", "W1-F1", 25, "opened", "firing", Severity.YELLOW),
    # DMA2: one opened in the range, one two days before it and still open (the 30-day look-back)
    change("a4", "water", "DMA2", "water-pressure-low", "W2-P1", 16, "opened", "firing", Severity.YELLOW),
    change("a7", "water", "DMA2", "water-sensor-stuck", "W2-P1", -2 * 24 * 60, "opened", "firing", Severity.YELLOW),
    # gas: escalated to red
    change("a5", "gas", "GD1", "gas-lel", "G1-L1", 15, "opened", "firing", Severity.ORANGE),
    change("a5", "gas", "GD1", "gas-lel", "G1-L1", 17, "escalated", "firing", Severity.RED),
    # heat: opened and resolved: the loop has no open alert
    change("a6", "heat", "LOOP1", "heat-pressure-drop", "H1-T1", 5, "opened", "firing", Severity.YELLOW),
    change("a6", "heat", "LOOP1", "heat-pressure-drop", "H1-T1", 9, "resolved", "resolved", Severity.YELLOW),
    # after the range: must not count
    change("a8", "water", "DMA1", "water-pressure-surge", "W1-P2", 90, "opened", "firing", Severity.ORANGE),
]


@pytest.fixture(scope="module")
def dataset(influxdb: Any) -> Iterator[tuple[Any, str]]:
    """A bucket of its own in the test server's org, holding the dataset above; deleted afterwards."""
    client = influxdb_client.InfluxDBClient(url=influxdb.url, token=influxdb.token, org=influxdb.org, timeout=30_000)
    buckets = client.buckets_api()
    name = f"grafana-{uuid.uuid4().hex[:12]}"
    bucket = buckets.create_bucket(bucket_name=name, org=influxdb.org)
    try:
        lines = readings_lines() + encode_detections(DETECTIONS) + encode_alert_changes(ALERT_CHANGES)
        client.write_api(write_options=SYNCHRONOUS).write(bucket=name, org=influxdb.org, record=lines,
                                                            write_precision="ns")
        yield client, name
    finally:
        buckets.delete_bucket(bucket)
        client.close()


def run(dataset: tuple[Any, str], influxdb: Any, key: str, network: str, zone: str) -> list[dict]:
    """The query shown as `key` for this network and zone, as rows (dicts without Flux's bookkeeping)."""
    client, bucket = dataset
    # window 1m0s: what Grafana sends for a 1-minute interval (Go's Duration.String)
    flux = grafana_interpolate(QUERIES[key], variables={"network": network, "zone": zone}, start=T0,
                               stop=T0 + timedelta(hours=1), window="1m0s", bucket=bucket, org=influxdb.org)
    tables = client.query_api().query(flux, org=influxdb.org)
    return [{k: v for k, v in rec.values.items() if k not in ("result", "table")}
            for table in tables for rec in table.records]


VIEWS_WITH_DATA = {
    ("water", "DMA1"): {"var:network", "var:zone", "readings:pressure", "readings:flow", "detections",
                        "alerts:zone", "alerts:city"},
    ("gas", "GD1"): {"var:network", "var:zone", "readings:pressure", "readings:gas_concentration",
                     "detections", "alerts:zone", "alerts:city"},
    ("heat", "LOOP1"): {"var:network", "var:zone", "alerts:city"},
}


@pytest.mark.parametrize(("network", "zone"), sorted(VIEWS_WITH_DATA))
@pytest.mark.parametrize("key", sorted(QUERIES))
def test_every_query_runs_and_has_data_where_it_should(dataset, influxdb, key: str, network: str,
                                                       zone: str) -> None:
    rows = run(dataset, influxdb, key, network, zone)  # a Flux error raises here
    if key in VIEWS_WITH_DATA[(network, zone)]:
        assert rows, f"{key} shows nothing for {network}/{zone}"
    else:
        assert rows == [], f"{key} should show nothing for {network}/{zone}: {rows[:3]}"


def test_variables_list_networks_and_the_zones_of_the_chosen_network(dataset, influxdb) -> None:
    assert sorted(r["_value"] for r in run(dataset, influxdb, "var:network", "", "")) == ["gas", "heat", "water"]
    assert sorted(r["_value"] for r in run(dataset, influxdb, "var:zone", "water", "")) == ["DMA1", "DMA2"]
    assert sorted(r["_value"] for r in run(dataset, influxdb, "var:zone", "gas", "")) == ["GD1"]


def series(rows: list[dict], label: str) -> dict[str, list[tuple[datetime, float]]]:
    out: dict[str, list[tuple[datetime, float]]] = {}
    for r in rows:
        out.setdefault(r[label], []).append((r["_time"], r["_value"]))
    return {k: sorted(v) for k, v in out.items()}


def test_readings_panels_show_each_sensor_of_the_zone_in_canonical_units(dataset, influxdb) -> None:
    pressure = series(run(dataset, influxdb, "readings:pressure", "water", "DMA1"), "sensor")
    assert set(pressure) == {"W1-P1", "W1-P2"}  # not W2-P1 (other zone) nor G1-P1 (other network)
    # 1-minute windows over 1-minute readings: each window's mean is its reading, stamped at the window's end
    assert pressure["W1-P1"] == [(T0 + timedelta(minutes=m + 1), reading_value("W1-P1", m)) for m in range(MINUTES)]
    flow = series(run(dataset, influxdb, "readings:flow", "water", "DMA1"), "sensor")
    assert set(flow) == {"W1-F1"} and [v for _, v in flow["W1-F1"]] == [reading_value("W1-F1", m)
                                                                        for m in range(MINUTES)]
    gas = series(run(dataset, influxdb, "readings:gas_concentration", "gas", "GD1"), "sensor")
    assert set(gas) == {"G1-L1"} and gas["G1-L1"][-1][1] == reading_value("G1-L1", MINUTES - 1)
    rows = run(dataset, influxdb, "readings:pressure", "water", "DMA1")
    assert {k for r in rows for k in r} == {"_time", "_value", "sensor"}  # one series per sensor, named by it


def test_detections_panel_follows_each_rule_and_subject_through_its_grades(dataset, influxdb) -> None:
    rows = run(dataset, influxdb, "detections", "water", "DMA1")
    grades: dict[tuple[str, str], list[int]] = {}
    for r in sorted(rows, key=lambda r: r["_time"]):
        grades.setdefault((r["rule"], r["subject"]), []).append(r["_value"])
    assert grades == {("water-pressure-low", "W1-P1"): [1, 2, 0], ("water-zone-balance", "DMA1"): [3]}


def test_open_alerts_table_lists_the_last_change_of_each_unresolved_alert(dataset, influxdb) -> None:
    rows = run(dataset, influxdb, "alerts:zone", "water", "DMA1")
    # a1 was resolved, a8 changed after the range; worst grade first
    assert [(r["alert_id"], r["severity"], r["state"], r["change"]) for r in rows] == [
        ("a2", 3, "acknowledged", "acknowledged"), ("a3", 1, "firing", "opened")]
    assert rows[0]["actor"] == "duty-engineer" and rows[0]["_time"] == T0 + timedelta(minutes=18)
    assert rows[0]["message"] == "water-zone-balance on DMA1 告警"
    # the look-back: a7 opened two days before the range and is still open
    assert [r["alert_id"] for r in run(dataset, influxdb, "alerts:zone", "water", "DMA2")] == ["a4", "a7"]
    assert run(dataset, influxdb, "alerts:zone", "heat", "LOOP1") == []


def test_city_panel_counts_open_alerts_per_network_and_zone(dataset, influxdb) -> None:
    rows = run(dataset, influxdb, "alerts:city", "water", "DMA1")  # the city view ignores the selection
    assert [(r["network"], r["zone"], r["open"], r["worst"]) for r in rows] == [
        ("water", "DMA1", 2, 3), ("gas", "GD1", 1, 3), ("water", "DMA2", 2, 1)]


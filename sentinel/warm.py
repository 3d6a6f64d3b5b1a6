"""Warm start from InfluxDB: a restart without a state file need not mean hours of blindness.

`warm_start` reads the last N hours of ``readings`` back from InfluxDB (Flux, pivoted to one row per
reading) and feeds them to the engine in event-time order, one time window at a time (memory stays
bounded), as `sentinel.learn` does with a file; history has already alerted once. The state it leaves
is the state an engine that saw those readings live would have, so detections on new data agree
(tests/test_influx_warm.py pins this). Readings the original engine dropped as out of order are, read
back in time order, accepted; with in-order input the two are identical.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
from influxdb_client import InfluxDBClient
from influxdb_client.domain.dialect import Dialect

from rules.engine import Engine, EngineState
from sentinel.catalog import Catalog
from sentinel.learn import Learned, feed
from sentinel.readings import NS, Batch
from sentinel.stores.influx_schema import READINGS

log = logging.getLogger(__name__)

HOUR_NS = 3600 * NS
WINDOW_NS = 6 * HOUR_NS  # per query: ~50 ms of overhead each, and 5,000 sensors x 6 h is ~360k rows in memory
_DIALECT = Dialect(header=True, delimiter=",", comment_prefix="#", annotations=[], date_time_format="RFC3339Nano")


def readings_flux(bucket: str, start_ns: int, stop_ns: int) -> str:
    """Flux for the readings in [start, stop): one row per reading, oldest first."""
    return f'''from(bucket: "{bucket}")
  |> range(start: time(v: {int(start_ns)}), stop: time(v: {int(stop_ns)}))
  |> filter(fn: (r) => r._measurement == "{READINGS}" and (r._field == "value" or r._field == "quality"))
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> keep(columns: ["_time", "sensor", "value", "quality"])
  |> group()
  |> sort(columns: ["_time"])'''


def _ns(stamps: list[str]) -> np.ndarray:
    """RFC3339Nano UTC stamps ("...Z") to int64 ns."""
    return np.array([s.removesuffix("Z") for s in stamps], dtype="datetime64[ns]").astype(np.int64)


def query_readings(client: InfluxDBClient, org: str, bucket: str, catalog: Catalog, start_ns: int,
                   stop_ns: int) -> Batch:
    """Readings of this catalog's sensors in [start_ns, stop_ns) as one Batch in event-time order.

    A reading without a value field (NaN when written) comes back as NaN; sensors no longer in the
    catalog are skipped."""
    rows = client.query_api().query_csv(readings_flux(bucket, start_ns, stop_ns), org=org, dialect=_DIALECT)
    cols: dict[str, int] = {}
    times: list[str] = []
    sensors: list[int] = []
    values: list[float] = []
    quality: list[int] = []
    index = catalog.index
    for row in rows:
        if len(row) < 3:
            continue
        if row[1] == "result":  # a header (one per table schema)
            cols = {name: i for i, name in enumerate(row)}
            continue
        i = index.get(row[cols["sensor"]])
        if i is None:
            continue
        v = row[cols["value"]] if "value" in cols else ""
        q = row[cols["quality"]] if "quality" in cols else ""
        times.append(row[cols["_time"]])
        sensors.append(i)
        values.append(float(v) if v else float("nan"))
        quality.append(int(q) if q else 0)
    if not times:
        return Batch.empty()
    t = _ns(times)
    order = np.argsort(t, kind="stable")  # the server sorted already; cheap insurance across header blocks
    return Batch.of(np.asarray(sensors)[order], t[order], np.asarray(values)[order], np.asarray(quality)[order])


def history(client: InfluxDBClient, org: str, bucket: str, catalog: Catalog, start_ns: int, stop_ns: int,
            window_ns: int = WINDOW_NS) -> Iterator[Batch]:
    """The readings in [start_ns, stop_ns), one event-time window per Batch."""
    for lo in range(int(start_ns), int(stop_ns), int(window_ns)):
        batch = query_readings(client, org, bucket, catalog, lo, min(lo + window_ns, stop_ns))
        if len(batch):
            yield batch


def warm_start(engine: Engine, state: EngineState, client: InfluxDBClient, org: str, bucket: str, hours: float,
               *, now_ns: int | None = None, window_ns: int = WINDOW_NS) -> Learned:
    """Run the last `hours` of readings (before `now_ns`, default: now) through `engine` on `state`.

    Detections are discarded; the state is updated in place."""
    stop = time.time_ns() if now_ns is None else int(now_ns)
    start = stop - int(hours * HOUR_NS)
    result = feed(engine, state, history(client, org, bucket, engine.catalog, start, stop, window_ns))
    log.info("warm start: %d readings from the last %g h of InfluxDB bucket %r in %.1f s", result.readings, hours,
             bucket, result.seconds)
    return result

"""When a store refuses data (InfluxDB down and its disk spool full), nothing is evaluated or acknowledged
past what was kept: the same batch can be retried later and gives the same answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.loader import load_rules
from sentinel.embedded_broker import free_port
from sentinel.pipeline import Pipeline
from sentinel.stores.base import StoreFull
from sentinel.stores.influx import InfluxStore
from simulators import demo_scenario, generate


def test_a_full_store_refuses_before_the_engine_sees_the_batch(tmp_path: Path) -> None:
    result = generate(demo_scenario(seed=4))
    catalog = result.sensor_catalog()
    batch = result.to_batch()
    down = InfluxStore(f"http://127.0.0.1:{free_port()}", "sentinel", "sentinel", "token", catalog,
                       spool_dir=tmp_path / "spool", flush_interval_s=0, retry_budget_s=0.2, max_retries=1,
                       spool_max_bytes=64)  # nothing listens there, and the spool holds almost nothing
    pipeline = Pipeline(catalog, load_rules(), store=down)
    before = pipeline.state.watermark
    with pytest.raises(StoreFull):
        pipeline.process(batch)
    assert pipeline.state.watermark == before and pipeline.counters.readings_in == 0
    reference = Pipeline(catalog, load_rules())
    retried = Pipeline(catalog, load_rules(), state=pipeline.state)
    assert retried.process(batch).detections == reference.process(batch).detections

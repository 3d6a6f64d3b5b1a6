"""One pipeline per zone (the Faust path's unit) answers exactly as one pipeline over every zone."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest

from ingest.kafka_codec import encode_readings, encode_tick, zone_records
from rules.loader import load_rules
from sentinel.pipeline import Pipeline
from sentinel.readings import Batch
from sentinel.scaleout.zoned import Message, ZonedProcessor
from simulators.scenario import default_scenario
from simulators.synthetic import generate

CHUNK = 5_000


@cache
def _sim() -> tuple:
    """Six synthetic days through the default rules, night flow judging from the first week (the default
    waits a week for each weekday) so that this zone rule fires and is compared too."""
    result = generate(default_scenario(seed=11, days=6))
    rules = load_rules()
    rules = dataclasses.replace(rules, rules=tuple(
        r.model_copy(update={"unseen_weekday": "day_type"}) if r.id == "water-night-flow" else r for r in rules.rules))
    return result.sensor_catalog(), result.to_batch(), rules


def _single(catalog, batch, rules) -> tuple[list, list]:
    pipe = Pipeline(catalog, rules)
    dets, changes = [], []
    for chunk in batch.split(CHUNK):
        out = pipe.process(chunk)
        dets += out.detections
        changes += out.changes
    return dets, changes


def _zoned(catalog, batch, rules, *, restart_every_chunk: bool) -> tuple[list, list, ZonedProcessor]:
    """Feed zones as a Kafka producer would: each chunk's readings per zone key, then a tick to every zone."""
    proc = ZonedProcessor(catalog, rules)
    table: dict[str, bytes] = {}
    dets, changes = [], []
    high = None
    for chunk in batch.split(CHUNK):
        high = int(chunk.time_ns.max()) if high is None else max(high, int(chunk.time_ns.max()))
        per_zone = {k.decode(): [Message(v, "test")] for k, v in zone_records(catalog, chunk)}
        for key in catalog.zones:
            msgs = [*per_zone.get(key, []), Message(encode_tick(high), "test")]
            out = proc.process(key, table.get(key), msgs)
            table[key] = out.state
            dets += out.detections
            changes += out.changes
        if restart_every_chunk:  # a new worker each time: everything it knows comes from the table
            proc = ZonedProcessor(catalog, rules)
    return dets, changes, proc


def _canon(dets: list, changes: list) -> tuple[list, list]:
    return (sorted((d.time_ns, d.rule_id, d.subject, d.transition, d.severity, d.message) for d in dets),
            sorted((c.time_ns, c.alert.alert_id, c.change, c.alert.state) for c in changes))


@pytest.mark.parametrize("restart_every_chunk", [False, True], ids=["one-worker", "state-from-table-only"])
def test_zone_pipelines_give_the_single_process_answer(restart_every_chunk: bool) -> None:
    catalog, batch, rules = _sim()
    want = _canon(*_single(catalog, batch, rules))
    got_d, got_c, _ = _zoned(catalog, batch, rules, restart_every_chunk=restart_every_chunk)
    got = _canon(got_d, got_c)
    assert len(want[0]) > 20, "the scenario must make the rules fire"
    fired = {d[1] for d in want[0]}
    assert {"water-zone-balance", "water-night-flow", "gas-sensor-silent", "heat-makeup-rise"} <= fired
    assert got[0] == want[0]
    assert got[1] == want[1]


def test_a_zone_gone_quiet_is_still_swept_by_ticks() -> None:
    catalog, batch, rules = _sim()
    key = catalog.zones[0]
    members = [i for i, s in enumerate(catalog.sensors) if f"{s.network}/{s.zone}" == key]
    first = batch.take(np.isin(batch.sensor, members) & (batch.time_ns < batch.time_ns[0] + 3600 * 10**9))
    proc = ZonedProcessor(catalog, rules)
    rec = dict(zone_records(catalog, first))[key.encode()]
    out = proc.process(key, None, [Message(rec, "t")])
    assert not [d for d in out.detections if d.kind == "deadman"]
    later = int(first.time_ns.max()) + 6 * 3600 * 10**9  # the rest of the city went on for six hours
    out = proc.process(key, out.state, [Message(encode_tick(later), "t")])
    silent = {d.subject for d in out.detections if d.kind == "deadman" and d.transition == "raised"}
    assert silent, "every sensor of the quiet zone is overdue"
    assert silent <= {catalog.sensors[i].sensor_id for i in members}


def test_bad_messages_become_dead_letters_and_the_zone_goes_on() -> None:
    catalog, batch, rules = _sim()
    key = catalog.zones[0]
    sid = next(s.sensor_id for s in catalog.sensors if f"{s.network}/{s.zone}" == key)
    stranger = next(s.sensor_id for s in catalog.sensors if f"{s.network}/{s.zone}" != key)
    t0 = int(batch.time_ns[0])
    good = encode_readings([sid], np.array([t0]), np.array([1.0]), np.array([0], dtype=np.uint8))
    mixed = encode_readings([sid, stranger, "NOPE"], np.array([t0 + 60 * 10**9] * 3), np.array([1.0, 2.0, 3.0]),
                            np.zeros(3, dtype=np.uint8))
    msgs = [Message(b"{not json", "readings[0]@1"), Message(b'{"sensor": ["x"], "t": [1]}', "readings[0]@2"),
            Message(good, "readings[0]@3"), Message(mixed, "readings[0]@4")]
    out = ZonedProcessor(catalog, rules).process(key, None, msgs)
    reasons = [(d.source, d.field, d.reason) for d in out.dead_letters]
    assert reasons[0][0] == "readings[0]@1" and "undecodable JSON" in reasons[0][2]
    assert reasons[1][:2] == ("readings[0]@2", "v") and "missing field" in reasons[1][2]
    assert reasons[2][:2] == ("readings[0]@4", "sensor")
    assert "unknown sensor(s) NOPE" in reasons[2][2] and f"{stranger} not in zone {key}" in reasons[2][2]
    assert out.readings is not None and len(out.readings) == 2  # the good reading and the mixed one's own
    assert isinstance(out.readings, Batch) and set(out.readings.sensor) == {catalog.index[sid]}


def test_an_unknown_zone_key_is_dead_lettered_without_state() -> None:
    catalog, _, rules = _sim()
    out = ZonedProcessor(catalog, rules).process("water/NOWHERE", None, [Message(b"{}", "readings[2]@9")])
    assert out.state is None
    assert [(d.field, d.source) for d in out.dead_letters] == [("key", "readings[2]@9")]

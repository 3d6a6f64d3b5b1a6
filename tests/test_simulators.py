"""The synthetic simulators: reproducible by seed, labelled events with the signatures rules look for,
units that convert to plausible canonical values, and replay files that parse back exactly."""

from __future__ import annotations

import csv
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.catalog import parse_catalog_csv
from sentinel.readings import parse_time
from simulators import (
    EVENT_COLUMNS,
    EVENT_KINDS,
    EventSpec,
    Scenario,
    SimResult,
    WaterSpec,
    default_scenario,
    demo_scenario,
    dump_scenario,
    generate,
    load_scenario,
    read_events,
    write_replay,
)
from simulators.events import LabelledEvent
from simulators.files import readings_wide_csv
from simulators.publish import MessagePlan
from simulators.scenario import parse_duration

NS = 1_000_000_000
MIN = 60 * NS
EXAMPLE = Path(__file__).resolve().parents[1] / "simulators" / "scenarios" / "example.yaml"


@pytest.fixture(scope="module")
def week() -> SimResult:
    return generate(default_scenario(seed=0, days=7))


@pytest.fixture(scope="module")
def quiet(week: SimResult) -> SimResult:
    """The same week without events: the counterfactual every event signature is measured against."""
    return generate(week.scenario.model_copy(update={"events": []}))


def canonical(r: SimResult, sensor_id: str) -> tuple[np.ndarray, np.ndarray]:
    t, v = r.series(sensor_id)
    return t, r.sensor_catalog().to_canonical(np.full(len(v), r.index(sensor_id)), v)


def paired(a: SimResult, b: SimResult, sensor_id: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Canonical values of one sensor in two runs at the timestamps both have inside [start, end)."""
    ta, va = canonical(a, sensor_id)
    tb, vb = canonical(b, sensor_id)
    common = np.intersect1d(ta[(ta >= start) & (ta < end)], tb)
    return va[np.isin(ta, common)], vb[np.isin(tb, common)]


def ids(r: SimResult, zone: str, *, role: str | None = None, quantity: str | None = None) -> list[str]:
    return [s.sensor_id for s in r.catalog if s.zone == zone and role in (None, s.role)
            and quantity in (None, s.quantity)]


def of_kind(r: SimResult, kind: str) -> list[LabelledEvent]:
    events = [e for e in r.events if e.kind == kind]
    assert events, f"the default week has no {kind} event"
    return events


def mean_net_inflow(r: SimResult, zone: str) -> float:
    inflow = sum(canonical(r, s)[1].mean() for s in ids(r, zone, role="inlet"))
    return float(inflow - sum(canonical(r, s)[1].mean() for s in ids(r, zone, role="outlet")))


def zone_inflow(r: SimResult, zone: str, start: int, end: int) -> float:
    """Mean total inlet flow (m3/h) over [start, end)."""
    total = 0.0
    for s in ids(r, zone, role="inlet"):
        t, v = canonical(r, s)
        total += float(v[(t >= start) & (t < end)].mean())
    return total


# -- reproducibility ---------------------------------------------------------------------------------


def test_same_seed_reproduces_every_array_and_label(week: SimResult) -> None:
    again = generate(default_scenario(seed=0, days=7))
    assert again.catalog == week.catalog
    assert again.events == week.events
    for col in ("time_ns", "sensor", "value"):
        assert np.array_equal(getattr(again.readings, col), getattr(week.readings, col))


def test_different_seeds_give_different_data_and_events(week: SimResult) -> None:
    other = generate(default_scenario(seed=1, days=7))
    assert not np.array_equal(other.readings.value[:1000], week.readings.value[:1000])
    assert [(e.zone, e.start_ns) for e in other.events] != [(e.zone, e.start_ns) for e in week.events]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_any_seed_places_labels_inside_the_run_without_overlap(seed: int) -> None:
    r = generate(default_scenario(seed=seed, days=2))
    start = int(r.scenario.start.timestamp()) * NS
    end = start + int(r.scenario.duration) * NS
    assert {e.kind for e in r.events} == set(EVENT_KINDS)
    for e in r.events:
        assert start <= e.start_ns < e.end_ns <= end
    assert_no_overlap(r.events)


def assert_no_overlap(events: list[LabelledEvent]) -> None:
    for zone in {e.zone for e in events}:
        spans = sorted((e.start_ns, e.end_ns) for e in events if e.zone == zone)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans)), zone


# -- catalog and labels ------------------------------------------------------------------------------


def test_default_week_covers_three_networks_with_two_zones_and_named_sensors(week: SimResult) -> None:
    zones = {(s.network, s.zone) for s in week.catalog}
    assert zones == {("water", "DMA1"), ("water", "DMA2"), ("heat", "LOOP1"), ("heat", "LOOP2"),
                     ("gas", "GD1"), ("gas", "GD2")}
    by_id = {s.sensor_id: s for s in week.catalog}
    assert by_id["W-DMA1-P01"].role == "internal" and by_id["W-DMA1-P01"].quantity == "pressure"
    assert by_id["W-DMA1-FI01"].role == "inlet" and by_id["W-DMA1-FO01"].role == "outlet"
    assert {by_id["H-LOOP1-PS01"].role, by_id["H-LOOP1-PR01"].role} == {"supply", "return"}
    assert by_id["H-LOOP1-MU01"].role == "makeup"
    assert by_id["G-GD1-PI01"].role == "inlet" and by_id["G-GD1-M01"].unit == "%LEL"
    assert by_id["G-GD1-M01"].role == "space"
    assert by_id["W-DMA1-FI01"].interval_s == 60 and by_id["W-DMA1-P01"].interval_s == 300


def test_default_week_labels_every_event_kind_without_overlap(week: SimResult) -> None:
    assert {e.kind for e in week.events} == set(EVENT_KINDS)
    assert_no_overlap(week.events)
    zone_of = {s.sensor_id: s.zone for s in week.catalog}
    for e in week.events:
        assert e.description
        if e.kind in ("sensor_stuck", "sensor_dropout", "gas_rise"):
            assert zone_of[e.sensor_id] == e.zone
        if e.kind != "sensor_dropout":
            assert e.magnitude is not None


def test_events_change_readings_only_inside_their_labelled_windows(week: SimResult, quiet: SimResult) -> None:
    for s in week.catalog:
        windows = [e for e in week.events if e.zone == s.zone]
        t, v = week.series(s.sensor_id)
        tq, vq = quiet.series(s.sensor_id)
        outside, outside_q = np.ones(len(t), bool), np.ones(len(tq), bool)
        for e in windows:
            outside &= ~e.covers(t)
            outside_q &= ~e.covers(tq)
        assert np.array_equal(t[outside], tq[outside_q]), s.sensor_id
        assert np.array_equal(v[outside], vq[outside_q]), s.sensor_id


# -- event signatures ----------------------------------------------------------------------------------


def test_burst_adds_its_labelled_flow_and_drops_every_zone_pressure(week: SimResult,
                                                                     quiet: SimResult) -> None:
    for e in of_kind(week, "burst"):
        burst_flow = e.magnitude * mean_net_inflow(quiet, e.zone)
        after = (e.start_ns + 2 * MIN, e.start_ns + 30 * MIN)
        extra = zone_inflow(week, e.zone, *after) - zone_inflow(quiet, e.zone, *after)
        assert extra == pytest.approx(burst_flow, rel=0.15)
        for sid in ids(week, e.zone, quantity="pressure"):  # all loggers, whatever their unit
            with_burst, without = paired(week, quiet, sid, *after)
            assert len(with_burst) and (with_burst < without).all(), sid


def test_demo_shows_a_night_burst_as_a_step_in_inflow_after_ten_minutes() -> None:
    demo = generate(demo_scenario())
    (burst,) = demo.events
    assert burst.start_ns - int(demo.scenario.start.timestamp()) * NS == 10 * MIN
    before = zone_inflow(demo, "DMA1", burst.start_ns - 10 * MIN, burst.start_ns)
    after = zone_inflow(demo, "DMA1", burst.start_ns + 2 * MIN, burst.start_ns + 12 * MIN)
    assert after > 1.2 * before
    t, p_before = canonical(demo, "W-DMA1-P01")
    assert p_before[(t >= burst.start_ns + 2 * MIN) & (t < burst.end_ns)].max() < \
        p_before[t < burst.start_ns].min()


def night_minimum(r: SimResult, zone: str) -> dict[int, float]:
    """Minimum night flow per local (UTC+8) day: lowest 02:00-04:00 zone inflow, summed over inlets."""
    series = [canonical(r, s) for s in ids(r, zone, role="inlet")]
    common = series[0][0]
    for t, _ in series[1:]:
        common = np.intersect1d(common, t)
    total = sum(v[np.isin(t, common)] for t, v in series)
    local_s = common // NS + 8 * 3600
    day, hour = local_s // 86400, (local_s % 86400) / 3600
    night = (hour >= 2) & (hour < 4)
    return {int(d): float(total[night & (day == d)].min()) for d in np.unique(day[night])}


def test_slow_leak_grows_night_after_night_in_the_minimum_night_flow(week: SimResult,
                                                                     quiet: SimResult) -> None:
    for e in of_kind(week, "slow_leak"):
        with_leak, without = night_minimum(week, e.zone), night_minimum(quiet, e.zone)
        nights = [d for d in with_leak  # local days whose 02:00-04:00 lies inside the leak window
                  if e.start_ns <= (d * 86400 - 6 * 3600) * NS and (d * 86400 - 4 * 3600) * NS <= e.end_ns]
        assert len(nights) >= 2
        excess = [with_leak[d] - without[d] for d in nights]
        assert all(b > a for a, b in itertools.pairwise(excess)), excess
        assert excess[-1] > 0.3 * e.magnitude * mean_net_inflow(quiet, e.zone)


def test_pressure_surge_keeps_several_readings_elevated(week: SimResult, quiet: SimResult) -> None:
    for e in of_kind(week, "pressure_surge"):
        rises = []
        for sid in ids(week, e.zone, quantity="pressure"):
            surged, normal = paired(week, quiet, sid, e.start_ns, e.end_ns)
            rises.append(surged / normal - 1)
            assert rises[-1].max() > 0.02, sid  # the transient reaches every logger of the zone
        strongest = max(rises, key=lambda r: r.max())
        assert strongest.max() > 0.5 * e.magnitude
        assert (strongest > 0.02).sum() >= 3


def test_low_pressure_sags_zone_pressures_by_the_labelled_fraction(week: SimResult, quiet: SimResult) -> None:
    for e in of_kind(week, "low_pressure"):
        assert 0.2 <= e.magnitude <= 0.4
        quarter = (e.end_ns - e.start_ns) // 4
        for sid in ids(week, e.zone, quantity="pressure"):
            sagged, normal = paired(week, quiet, sid, e.start_ns + quarter, e.end_ns - quarter)
            assert np.median(1 - sagged / normal) == pytest.approx(e.magnitude, abs=0.04), sid


def test_stuck_sensor_repeats_one_value_for_hours_and_healthy_ones_never_do(week: SimResult,
                                                                           quiet: SimResult) -> None:
    shortest = min(e.end_ns - e.start_ns for e in of_kind(week, "sensor_stuck"))
    for e in of_kind(week, "sensor_stuck"):
        t, v = week.series(e.sensor_id)
        stuck = v[e.covers(t)]
        assert len(stuck) >= 3 and (stuck == e.magnitude).all()
    for s in quiet.catalog:
        t, v = quiet.series(s.sensor_id)
        changes = np.flatnonzero(np.diff(v) != 0)
        longest_repeat = np.diff(t[np.r_[0, changes + 1, len(t) - 1]]).max()
        assert longest_repeat < shortest, s.sensor_id


def test_dropout_sensor_sends_nothing_inside_its_window(week: SimResult) -> None:
    for e in of_kind(week, "sensor_dropout"):
        t, _ = week.series(e.sensor_id)
        assert not e.covers(t).any()
        assert (t < e.start_ns).any() and (t >= e.end_ns).any()


def test_gas_rise_climbs_past_20_lel_within_minutes_from_a_near_zero_background(week: SimResult) -> None:
    for e in of_kind(week, "gas_rise"):
        t, lel = week.series(e.sensor_id)
        inside = e.covers(t)
        any_rise = np.any([g.covers(t) for g in week.events if g.sensor_id == e.sensor_id], axis=0)
        assert lel[~any_rise].max() < 5.0
        assert lel[inside].max() > max(20.0, 0.8 * e.magnitude)
        first_high = t[inside & (lel > 0.5 * e.magnitude)][0]
        assert first_high - e.start_ns <= 15 * MIN


def test_makeup_rise_multiplies_makeup_flow_with_slight_pressure_loss(week: SimResult,
                                                                      quiet: SimResult) -> None:
    for e in of_kind(week, "makeup_rise"):
        (makeup,) = ids(week, e.zone, role="makeup")
        half = (e.start_ns + e.end_ns) // 2
        leaking, normal = paired(week, quiet, makeup, half, e.end_ns - 10 * MIN)
        assert np.median(leaking) > 0.7 * e.magnitude * np.median(normal)
        for sid in ids(week, e.zone, quantity="pressure"):
            p, p0 = paired(week, quiet, sid, half, e.end_ns - 10 * MIN)
            assert 0.0 < np.median(1 - p / p0) < 0.05, sid


# -- units ---------------------------------------------------------------------------------------------


def test_values_in_each_sensors_own_unit_convert_to_plausible_canonical_values(quiet: SimResult) -> None:
    units: dict[tuple[str, str], set[str]] = {(s.network, s.quantity): set() for s in quiet.catalog}
    for s in quiet.catalog:
        units[(s.network, s.quantity)].add(s.unit)
    assert units[("water", "pressure")] == {"m", "kPa"} and units[("water", "flow")] == {"m3/h", "L/s"}
    # normal operation in canonical units (kPa, m3/h, degC, %LEL), whatever unit each sensor reports in
    plausible = {("water", "pressure"): (100, 800), ("heat", "pressure"): (150, 900),
                 ("gas", "pressure"): (150, 450), ("heat", "temperature"): (35, 96),
                 ("gas", "gas_concentration"): (0, 5), ("water", "flow"): (0, 1500),
                 ("heat", "flow"): (0, 1000), ("gas", "flow"): (0, 5000)}
    batch = quiet.to_batch()
    for i, s in enumerate(quiet.catalog):
        lo, hi = plausible[(s.network, s.quantity)]
        v = batch.value[batch.sensor == i]
        assert lo <= v.min() and v.max() <= hi, (s.sensor_id, s.unit, v.min(), v.max())


def test_water_use_is_lowest_at_02_to_04_local_and_rises_later_on_weekends(quiet: SimResult) -> None:
    t, flow = canonical(quiet, "W-DMA1-FI01")
    local_s = t // NS + 8 * 3600  # the default scenario's Asia/Shanghai clock, starting Monday 00:00
    hour = (local_s % 86400) // 3600
    weekend = (local_s // 86400 + 3) % 7 >= 5
    for days in (~weekend, weekend):
        profile = np.array([flow[days & (hour == h)].mean() for h in range(24)])
        assert int(profile.argmin()) in (2, 3)
        assert profile[6:12].max() > 1.8 * profile.min() and profile[17:22].max() > 1.8 * profile.min()
    weekday_am = np.array([flow[~weekend & (hour == h)].mean() for h in range(5, 12)])
    weekend_am = np.array([flow[weekend & (hour == h)].mean() for h in range(5, 12)])
    assert weekend_am.argmax() > weekday_am.argmax()


def test_heat_loop_runs_70_to_95_supply_and_25_to_35_kelvin_cooler_return(quiet: SimResult) -> None:
    supply, ret = canonical(quiet, "H-LOOP1-TS01"), canonical(quiet, "H-LOOP1-TR01")
    common = np.intersect1d(supply[0], ret[0])
    ts, tr = supply[1][np.isin(supply[0], common)], ret[1][np.isin(ret[0], common)]
    assert ts.min() >= 69.5 and ts.max() <= 95.5
    assert (ts - tr).min() >= 24.5 and (ts - tr).max() <= 35.5


# -- files ---------------------------------------------------------------------------------------------


def test_replay_files_parse_back_to_the_generated_data(week: SimResult, tmp_path: Path) -> None:
    paths = write_replay(week, tmp_path)
    catalog = parse_catalog_csv(paths["catalog.csv"].read_text())
    assert catalog.sensors == tuple(week.catalog)
    with open(paths["readings.csv"], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time", "sensor_id", "value"]
    assert len(rows) - 1 == len(week.readings)
    assert all(r[0].endswith("Z") for r in rows[1:100])
    times = np.array([parse_time(r[0]) for r in rows[1:]], dtype=np.int64)
    assert np.array_equal(times, week.readings.time_ns)
    assert [catalog.index[r[1]] for r in rows[1:]] == week.readings.sensor.tolist()
    assert np.array_equal(np.array([float(r[2]) for r in rows[1:]]), week.readings.value)
    with open(paths["events.csv"], newline="") as f:
        assert tuple(csv.DictReader(f).fieldnames or ()) == EVENT_COLUMNS
    assert read_events(paths["events.csv"]) == week.events
    assert load_scenario(paths["scenario.yaml"]) == week.scenario


def test_wide_form_has_a_row_per_time_and_empty_cells_where_nothing_was_reported() -> None:
    demo = generate(demo_scenario().model_copy(update={"missing_rate": 0.05}))
    rows = list(csv.reader(readings_wide_csv(demo).splitlines()))
    assert rows[0] == ["time", *(s.sensor_id for s in demo.catalog)]
    cells = [c for r in rows[1:] for c in r[1:]]
    assert len(rows) - 1 == len(np.unique(demo.readings.time_ns))
    assert sum(c != "" for c in cells) == len(demo.readings)


def test_writing_a_default_week_takes_well_under_a_few_seconds(week: SimResult, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    generate(week.scenario)
    t1 = time.perf_counter()
    write_replay(week, tmp_path, wide=True)
    t2 = time.perf_counter()
    assert t1 - t0 < 2.0 and t2 - t1 < 3.0


# -- scenarios -----------------------------------------------------------------------------------------


def test_example_yaml_loads_round_trips_and_keeps_its_explicit_events() -> None:
    sc = load_scenario(EXAMPLE)
    assert Scenario.model_validate(yaml.safe_load(dump_scenario(sc))) == sc
    r = generate(sc)
    burst = next(e for e in r.events if e.kind == "burst")
    assert (burst.zone, burst.magnitude) == ("DMA1", 0.25)
    assert burst.start_ns == parse_time("2025-03-03T19:00:00Z")  # start + 1d3h
    assert burst.end_ns - burst.start_ns == 5 * 3600 * NS
    gas = next(e for e in r.events if e.kind == "gas_rise")
    assert (gas.zone, gas.sensor_id) == ("GD1", "G-GD1-M02")


@pytest.mark.parametrize(("text", "seconds"), [("3d", 259200), ("1d6h", 108000), ("90m", 5400),
                                                ("45s", 45), ("2.5h", 9000), (300, 300), ("300", 300)])
def test_durations_read_as_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("event", "message"), [
    (EventSpec(kind="gas_rise", zone="DMA1"), "cannot happen in water"),
    (EventSpec(kind="burst", zone="DMA9"), "unknown zone"),
    (EventSpec(kind="burst", sensor_id="W-DMA1-P01"), "takes no sensor_id"),
    (EventSpec(kind="burst", zone="DMA1", start=3000.0, duration=3600.0), "falls outside"),
])
def test_impossible_events_are_refused_with_a_reason(event: EventSpec, message: str) -> None:
    sc = demo_scenario().model_copy(update={"events": [event]})
    with pytest.raises(ValueError, match=message):
        generate(sc)


def test_overlapping_explicit_events_in_one_zone_are_refused() -> None:
    sc = demo_scenario().model_copy(update={"events": [
        EventSpec(kind="burst", zone="DMA1", start=600.0, duration=600.0),
        EventSpec(kind="low_pressure", zone="DMA1", start=900.0, duration=600.0)]})
    with pytest.raises(ValueError, match="overlaps"):
        generate(sc)


def test_jitter_and_loss_are_seeded_and_bounded() -> None:
    sc = Scenario(start="2025-01-06T00:00:00Z", duration="1d", seed=3, water=WaterSpec(zones=1),
                  jitter_s=20, missing_rate=0.01)
    a, b = generate(sc), generate(sc)
    assert np.array_equal(a.readings.time_ns, b.readings.time_ns)
    t, _ = a.series("W-DMA1-FI01")
    late = (t - parse_time("2025-01-06T00:00:00Z")) % (60 * NS)
    assert late.max() <= 20 * NS and len(np.unique(late)) > 10
    assert 0.98 * 1440 <= len(t) < 1440


# -- MQTT message plan (no broker needed) ----------------------------------------------------------------


def test_batches_hold_one_zone_within_one_window_and_cover_every_reading() -> None:
    day = generate(default_scenario(seed=0, days=1))
    network_of = {s.zone: s.network for s in day.catalog}
    plan = MessagePlan(day, batch=True, max_batch=10, batch_window_s=60)
    for msg in list(plan)[:2000]:
        body = json.loads(msg.payload)["readings"]
        root, _data, network, zone, leaf = msg.topic.split("/")
        assert (root, network, leaf) == ("sentinel", network_of[zone], "batch") and 1 <= len(body) <= 10
        assert {r["sensor_id"].split("-")[1] for r in body} == {zone}
        assert {parse_time(r["time"]) // (60 * NS) for r in body} == {msg.due_ns // (60 * NS)}
        assert set(body[0]) == {"sensor_id", "time", "value", "unit"}
    assert sum(m.readings for m in plan) == len(day.readings)
    single = next(iter(MessagePlan(day, batch=False)))
    assert single.topic == f"sentinel/data/water/DMA1/{json.loads(single.payload)['sensor_id']}"

"""Detection benchmark plumbing: the scenario suite, the per-case scorer, pooling into tables, and the
Markdown/JSON report. Everything is built by hand here (no simulation, no replay), so each expectation
can be checked with a pencil."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.detection import scores, suite
from bench.detection.__main__ import calendar_of
from bench.detection.table import render_markdown
from sentinel.backtest import AlertSpan, EventOutcome
from sentinel.events import LabelledEvent
from simulators.dispatch import engine_of
from tests.helpers import T0, catalog

S = 10**9
MIN = 60 * S
HOUR = 3600 * S
DAY = 86400 * S
WEEK_S = 7 * 86400


def flow(sensor_id: str, zone: str, role: str) -> dict:
    return {"sensor_id": sensor_id, "network": "water", "zone": zone, "quantity": "flow", "unit": "m3/h",
            "role": role, "interval_s": 300}


def pressure(sensor_id: str, zone: str) -> dict:
    return {"sensor_id": sensor_id, "network": "water", "zone": zone, "quantity": "pressure", "unit": "m",
            "interval_s": 300}


def event(event_id: str, zone: str, kind: str, start_ns: int, end_ns: int, description: str = "",
          network: str = "water") -> LabelledEvent:
    return LabelledEvent(event_id, network, zone, kind, start_ns, end_ns, description=description)


def alert(alert_id: str, zone: str, start_ns: int, end_ns: int | None, rule_id: str = "zone_flow",
          network: str = "water") -> AlertSpan:
    return AlertSpan(alert_id, rule_id, network, zone, None, "warning", start_ns, end_ns)


def outcome(kind: str, description: str, ttd_s: float | None, network: str = "water") -> EventOutcome:
    """An outcome as the scorer reports it: detected when it has a time to detect."""
    ev = event(f"{kind}-{description}-{ttd_s}", "DMA1", kind, T0, T0 + HOUR, description, network)
    return EventOutcome(ev, ttd_s is not None, ttd_s, None, int(ttd_s is not None))


def case_result(label: str, outcomes: list[EventOutcome], *, network: str = "water", zones: int = 1,
                span_s: float = WEEK_S, alerts: int = 0, false: int = 0, benign: int = 0) -> scores.CaseResult:
    spans = [alert(f"{label}-A{i}", "DMA1", T0 + i * HOUR, None, network=network) for i in range(alerts)]
    return scores.CaseResult(label, network, zones, span_s, outcomes, spans, spans[:false], benign)


# --- the suite --------------------------------------------------------------------------------------------

SUITE_NAMES = {"ltown-4w", "hanoi-4w", "gas-week", "heat-week"}


def load_with_own_loader(path: Path):
    engine = engine_of(path)
    if engine == "wntr":
        from simulators.water_wntr import load_wntr_scenario

        return load_wntr_scenario(path)
    if engine == "pandapipes-gas":
        from simulators.gas_pandapipes import load_scenario

        return load_scenario(path)
    if engine == "pandapipes-heat":
        from simulators.heat_pandapipes import load_scenario

        return load_scenario(path)
    raise AssertionError(f"{path.name}: unexpected engine {engine!r} in the detection suite")


def test_held_out_and_development_cases_cover_the_same_scenarios() -> None:
    held_out = suite.cases()
    dev = suite.cases(dev=True)
    assert {c.name for c in held_out} == {c.name for c in dev} == SUITE_NAMES
    assert len(held_out) == 8  # two held-out seeds per file
    for c in dev:  # the file's own seed first, then the extra ones
        assert c.seed in (suite.dev_seed(c.scenario), *suite.MORE_DEVELOPMENT.get(c.scenario, ()))


def test_no_held_out_seed_is_a_development_seed() -> None:
    dev = {c.label for c in suite.cases(dev=True)}
    assert dev == {"ltown-4w@7", "ltown-4w@8", "ltown-4w@9", "hanoi-4w@11", "hanoi-4w@12", "hanoi-4w@13",
                   "gas-week@11", "heat-week@5"}
    assert not dev & {c.label for c in suite.cases()}


def test_a_held_out_seed_equal_to_the_development_seed_is_refused(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = tmp_path / "leaky.yaml"
    scenario.write_text("name: leaky\nseed: 3\n", encoding="utf-8")
    monkeypatch.setattr(suite, "SUITE", {scenario: (2, 3)})
    with pytest.raises(ValueError, match=r"development seed\(s\) \[3\]"):
        suite.cases()


def test_a_held_out_seed_equal_to_an_extra_development_seed_is_refused(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = tmp_path / "leaky.yaml"
    scenario.write_text("name: leaky\nseed: 3\n", encoding="utf-8")
    monkeypatch.setattr(suite, "SUITE", {scenario: (4, 5)})
    monkeypatch.setattr(suite, "MORE_DEVELOPMENT", {scenario: (5,)})
    with pytest.raises(ValueError, match=r"development seed\(s\) \[5\]"):
        suite.cases()


@pytest.mark.parametrize("path", list(suite.SUITE), ids=lambda p: p.name)
def test_every_suite_file_validates_with_its_engines_loader(path: Path) -> None:
    assert path.is_file()
    sc = load_with_own_loader(path)
    assert sc.seed == suite.dev_seed(path)
    assert sc.name in SUITE_NAMES


def test_only_keeps_matching_scenarios() -> None:
    hanoi = suite.cases(only="hanoi")
    assert [c.label for c in hanoi] == ["hanoi-4w@1201", "hanoi-4w@1202"]
    assert suite.cases(only="no-such-network") == []


def test_case_key_follows_seed_scenario_and_simulators(tmp_path: Path) -> None:
    case = suite.cases(only="hanoi")[0]
    key = suite.case_key(case, "digest-a")
    assert len(key) == 12 and int(key, 16) >= 0
    assert suite.case_key(suite.Case(case.name, case.scenario, case.seed), "digest-a") == key  # stable
    assert suite.case_key(suite.Case(case.name, case.scenario, case.seed + 1), "digest-a") != key
    assert suite.case_key(case, "digest-b") != key
    edited = tmp_path / case.scenario.name
    edited.write_bytes(case.scenario.read_bytes() + b"# edited\n")
    assert suite.case_key(suite.Case(case.name, edited, case.seed), "digest-a") != key


def test_simulator_digest_is_stable_between_calls() -> None:
    digest = suite.simulator_digest()
    assert len(digest) == 64 and suite.simulator_digest() == digest


def test_a_new_hydraulics_library_invalidates_cached_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = suite.simulator_digest()
    real = suite.importlib.metadata.version
    monkeypatch.setattr(suite.importlib.metadata, "version",
                        lambda name: "99.0" if name == "wntr" else real(name))
    assert suite.simulator_digest() != digest


def _refuse_to_simulate(*args, **kwargs):
    raise RuntimeError("simulated although the run is cached")


def test_simulated_returns_a_cached_run_without_simulating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulators.dispatch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(simulators.dispatch, "simulate_file", _refuse_to_simulate)
    case = suite.cases(only="hanoi")[0]
    root = tmp_path / "lifeline-sentinel" / "bench-detection"
    assert suite.cache_root() == root
    cached = root / f"hanoi-4w-s1201-{suite.case_key(case, suite.simulator_digest())}"
    cached.mkdir(parents=True)
    (cached / "done").write_text("ok\n")

    assert suite.simulated(case, show_progress=False) == (cached, True)  # default: the simulators' digest
    other = root / f"hanoi-4w-s1201-{suite.case_key(case, 'pinned')}"
    other.mkdir()
    (other / "done").write_text("ok\n")
    assert suite.simulated(case, simulators="pinned", show_progress=False) == (other, True)


def test_a_run_without_its_done_marker_is_simulated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulators.dispatch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(simulators.dispatch, "simulate_file", _refuse_to_simulate)
    case = suite.cases(only="hanoi")[0]
    half_written = suite.cache_root() / f"hanoi-4w-s1201-{suite.case_key(case, 'pinned')}"
    half_written.mkdir(parents=True)
    (half_written / "readings.csv").write_text("time,sensor_id,value\n")
    with pytest.raises(RuntimeError, match="simulated although"):
        suite.simulated(case, simulators="pinned", show_progress=False)


# --- one case: outcomes, false and benign alerts ------------------------------------------------------------

TWO_ZONES = catalog(flow("F1", "DMA1", "inlet"), pressure("P1", "DMA1"), flow("F2", "DMA2", "inlet"))
BURST = event("E1", "DMA1", "burst", T0 + 2 * HOUR, T0 + 4 * HOUR, "medium burst on the trunk main")
SLOW = event("E2", "DMA2", "slow_leak", T0 + DAY, T0 + 3 * DAY, "large incipient leak at a service pipe")
HYDRANT = event("H1", "DMA2", "hydrant_draw", T0 + 10 * HOUR, T0 + 11 * HOUR, "fire hydrant draws 30 m3/h")
CASE_ALERTS = [
    alert("A1", "DMA1", T0 + 2 * HOUR + 5 * MIN, T0 + 3 * HOUR),  # the burst, 5 min after it starts
    alert("A2", "DMA2", T0 + 10 * HOUR + 10 * MIN, T0 + 10 * HOUR + 40 * MIN),  # during the hydrant draw
    alert("A3", "DMA1", T0 + 12 * HOUR, None),  # after the burst's end + 1 h grace: nothing to explain it
]


def scored_case(anomalies: list[LabelledEvent] | None = None) -> scores.CaseResult:
    return scores.score_case("toy@1", TWO_ZONES, [BURST, SLOW], [HYDRANT] if anomalies is None else anomalies,
                             CASE_ALERTS, span_s=WEEK_S, grace_s=3600)


def test_score_case_matches_alerts_to_events() -> None:
    res = scored_case()
    assert (res.label, res.network, res.zones, res.span_s) == ("toy@1", "water", 2, WEEK_S)
    burst, slow = res.outcomes
    assert burst.event is BURST and burst.detected and burst.time_to_detect_s == 300.0
    assert burst.first_alert is not None and burst.first_alert.alert_id == "A1"
    assert slow.event is SLOW and not slow.detected and slow.time_to_detect_s is None
    assert [a.alert_id for a in res.false_alerts] == ["A2", "A3"]
    assert res.benign_alerts == 1  # A2 only: A3 is in another zone than the hydrant
    assert [a.alert_id for a in res.alerts] == ["A1", "A2", "A3"]
    assert res.truth is None and res.inflow is None


def test_each_false_alert_is_listed_with_what_it_fell_on() -> None:
    holiday = event("H2", "*", "holiday", T0 + 11 * HOUR, T0 + 11 * HOUR + 30 * MIN)
    res = scored_case([HYDRANT, holiday])
    assert res.false_during == [("hydrant_draw",), ("holiday",)]  # A2 in the draw's zone; A3 by the city-wide holiday
    a2, a3 = scores.false_alert_list([res])
    assert a2 == {"run": "toy@1", "rule": "zone_flow", "zone": "water/DMA2", "sensor": None,
                  "severity": "warning", "start": "2025-01-01T10:10:00Z", "hours": 0.5, "during": ["hydrant_draw"]}
    assert a3["hours"] is None and a3["during"] == ["holiday"]  # still open when the run ended
    assert [r["during"] for r in scores.false_alert_list([scored_case([])])] == [[], []]


def test_benign_anomalies_count_across_zones_when_unzoned_and_through_the_grace() -> None:
    holiday = event("H2", "*", "holiday", T0 + 11 * HOUR, T0 + 11 * HOUR + 30 * MIN)  # A3 starts 30 min after
    assert scored_case([holiday]).benign_alerts == 1  # A3, within the hour of grace; A2 (10:10-10:40) ends before
    assert scored_case([HYDRANT, holiday]).benign_alerts == 2
    assert scored_case([]).benign_alerts == 0
    gas_hydrant = event("H3", "DMA2", "hydrant_draw", HYDRANT.start_ns, HYDRANT.end_ns, network="gas")
    assert scored_case([gas_hydrant]).benign_alerts == 0  # same zone name, other network


# --- pooling outcomes into per-kind rows -------------------------------------------------------------------

RUN_1 = case_result("w@1", [
    outcome("burst", "small burst", 600.0),
    outcome("burst", "medium burst", 120.0),
    outcome("burst", "large burst", None),
    outcome("slow_leak", "large incipient leak", 7200.0),
], zones=4)
RUN_2 = case_result("w@2", [
    outcome("burst", "small burst", 1200.0),
    outcome("burst", "medium burst", 0.0),
    outcome("burst", "burst near the reservoir", 300.0),  # no size: counted once, in the "all" row only
    outcome("slow_leak", "small incipient leak", None),
    outcome("pressure_surge", "small surge", 30.0),  # not a leak kind: never split by size
], zones=4)


def test_kind_rows_pool_runs_into_all_and_per_size_rows() -> None:
    rows = scores.kind_rows([RUN_1, RUN_2])
    assert [(r.network, r.kind, r.size, r.events, r.detected) for r in rows] == [
        ("water", "burst", None, 6, 5),
        ("water", "burst", "small", 2, 2),
        ("water", "burst", "medium", 2, 2),
        ("water", "burst", "large", 1, 0),
        ("water", "pressure_surge", None, 1, 1),
        ("water", "slow_leak", None, 2, 1),
        ("water", "slow_leak", "small", 1, 0),
        ("water", "slow_leak", "large", 1, 1),
    ]
    bursts, small, medium, large = rows[:4]
    assert bursts.recall == pytest.approx(5 / 6)
    assert sorted(bursts.ttd_s) == [0.0, 120.0, 300.0, 600.0, 1200.0]
    assert bursts.within(900) == pytest.approx(4 / 6)  # 0, 120, 300 and 600 s of six events
    assert bursts.within(600) == pytest.approx(4 / 6)  # the bound is inclusive
    assert bursts.pct(50) == 300.0
    assert bursts.pct(90) == pytest.approx(960.0)  # 600 + 0.6 * (1200 - 600)
    assert small.within(900) == 0.5 and small.pct(50) == 900.0
    assert medium.within(900) == 1.0
    assert large.recall == 0.0 and large.within(900) == 0.0 and large.pct(50) is None


def test_kind_rows_without_sizes_and_negative_times_clamped() -> None:
    early = case_result("w@3", [EventOutcome(event("E", "DMA1", "burst", T0, T0 + HOUR, "small burst"), True,
                                             -60.0, None, 1)])
    rows = scores.kind_rows([RUN_1, early], by_size=False)
    assert [(r.kind, r.size, r.events, r.detected) for r in rows] == [("burst", None, 4, 3), ("slow_leak", None, 1, 1)]
    assert sorted(rows[0].ttd_s) == [0.0, 120.0, 600.0]
    empty = scores.KindRow("water", "burst", None)
    assert empty.recall is None and empty.within(900) is None and empty.pct(50) is None


def test_size_of_reads_the_descriptions_first_word() -> None:
    assert scores.size_of(event("E", "Z", "burst", 0, 1, "medium burst on main 12")) == "medium"
    assert scores.size_of(event("E", "Z", "burst", 0, 1, "mediumish burst")) is None
    assert scores.size_of(event("E", "Z", "burst", 0, 1, "a large burst")) is None


# --- false alerts per network ------------------------------------------------------------------------------

def test_false_alerts_per_zone_week_and_precision() -> None:
    results = [
        case_result("w@1", [], zones=4, span_s=WEEK_S, alerts=10, false=2, benign=1),
        case_result("w@2", [], zones=4, span_s=2 * WEEK_S, alerts=5, false=3),
        case_result("g@1", [], network="gas", zones=2, span_s=WEEK_S / 2),
    ]
    gas, water = scores.false_alerts(results)
    assert (gas.network, gas.alerts, gas.false, gas.benign, gas.zone_weeks) == ("gas", 0, 0, 0, 1.0)
    assert gas.precision is None and gas.per_zone_week == 0.0
    assert (water.network, water.alerts, water.false, water.benign) == ("water", 15, 5, 1)
    assert water.zone_weeks == pytest.approx(12.0)  # 4 zones x 1 week + 4 zones x 2 weeks
    assert water.per_zone_week == pytest.approx(5 / 12)
    assert water.precision == pytest.approx(10 / 15)
    assert scores.false_by_rule(results) == {"zone_flow": 5}


# --- LeakDB's grid ------------------------------------------------------------------------------------------

UTC8 = 8 * 3600
START = 1_746_374_400 * S  # 2025-05-04T16:00:00Z = 2025-05-05 00:00 at UTC+8
STEPS = 12 * 48
LEAK_DAY = 11
GRID_CATALOG = catalog(
    flow("IN1", "DMA1", "inlet"), flow("OUT1", "DMA1", "outlet"),  # DMA1: net inflow 8, then 11 with the leak
    flow("IN2", "DMA2", "inlet"),  # DMA2: inflow 8, then 10 without any leak (demand growth, +25%)
    pressure("P3", "DMA3"),  # DMA3: no flow meters, so no inflow and no MNF alarms
)
GRID_EVENTS = [
    event("L1", "DMA1", "slow_leak", START + LEAK_DAY * DAY, START + 12 * DAY, "large incipient leak"),
    event("S1", "DMA1", "pressure_surge", START + 5 * DAY, START + 5 * DAY + HOUR, "medium surge"),
]
GRID_ALERTS = [
    alert("Z1", "DMA1", START + LEAK_DAY * DAY + HOUR, None),  # open to the end of the run
    alert("D1", "DMA1", START + 3 * DAY, START + 3 * DAY + 2 * HOUR, rule_id="dead"),  # sensor health: no alarm
]
RULE_KINDS = {"zone_flow": "night_flow", "dead": "deadman"}


def grid_readings() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = START + np.arange(STEPS, dtype=np.int64) * 1800 * S
    leak = t >= START + LEAK_DAY * DAY
    series = {"IN1": np.where(leak, 13.0, 10.0), "OUT1": np.full(STEPS, 2.0), "IN2": np.where(leak, 10.0, 8.0)}
    sensor = np.concatenate([np.full(STEPS, GRID_CATALOG.index[sid]) for sid in series])
    return sensor, np.tile(t, len(series)), np.concatenate(list(series.values()))


def grid_case() -> scores.CaseResult:
    last_ns = START + 12 * DAY
    res = scores.score_case("grid@1", GRID_CATALOG, GRID_EVENTS, [], GRID_ALERTS, span_s=12 * 86400, grace_s=1800)
    sensor, time_ns, value = grid_readings()
    # first_ns an hour after local midnight: the grid still starts at midnight
    scores.add_leakdb_grid(res, GRID_CATALOG, GRID_EVENTS, GRID_ALERTS, RULE_KINDS, sensor, time_ns, value,
                           first_ns=START + HOUR, last_ns=last_ns, utc_offset_s=UTC8, grace_s=1800)
    return res


def test_leakdb_grid_labels_alarms_mask_and_inflow() -> None:
    res = grid_case()
    assert GRID_CATALOG.zones == ("water/DMA1", "water/DMA2", "water/DMA3")
    for grid in (res.truth, res.alarms, res.mask, res.inflow):
        assert grid is not None and grid.shape == (3, STEPS)
    leak_from = LEAK_DAY * 48
    assert np.flatnonzero(res.truth[0]).tolist() == list(range(leak_from, STEPS))
    assert not res.truth[1:].any()
    # Z1 opens at 01:00 on day 11 (step 2 of the day); the deadman alert on day 3 raises no alarm
    assert np.flatnonzero(res.alarms[0]).tolist() == list(range(leak_from + 2, STEPS))
    assert not res.alarms[1:].any()
    # the surge (00:00-01:00 on day 5) plus 30 min of grace masks three steps of DMA1
    assert np.flatnonzero(~res.mask[0]).tolist() == [5 * 48, 5 * 48 + 1, 5 * 48 + 2]
    assert res.mask[1:].all()
    assert res.inflow[0, :leak_from].tolist() == [8.0] * leak_from
    assert res.inflow[0, leak_from:].tolist() == [11.0] * 48
    assert res.inflow[1, :leak_from].tolist() == [8.0] * leak_from and res.inflow[1, -1] == 10.0
    assert np.isnan(res.inflow[2]).all()


def test_the_last_day_counts_when_the_last_reading_is_a_step_before_the_end() -> None:
    """Simulators stop one step before the scenario's end; that last day still belongs to the grid, and
    grid steps after the last reading are left out of the confusion matrix."""
    sensor, time_ns, value = grid_readings()
    last = int(time_ns.max())
    assert last == START + 12 * DAY - 1800 * S
    res = scores.score_case("grid@2", GRID_CATALOG, GRID_EVENTS, [], GRID_ALERTS, span_s=12 * 86400, grace_s=1800)
    scores.add_leakdb_grid(res, GRID_CATALOG, GRID_EVENTS, GRID_ALERTS, RULE_KINDS, sensor, time_ns, value,
                           first_ns=START, last_ns=last - 3 * 1800 * S, utc_offset_s=UTC8, grace_s=1800)
    assert res.truth is not None and res.truth.shape == (3, STEPS) and res.truth[0, -1] == 1
    assert res.mask is not None and not res.mask[:, -3:].any() and res.mask[1:, :-3].all()


def test_leakdb_rows_compare_ours_with_the_mnf_baseline() -> None:
    rows = scores.leakdb_rows([grid_case(), case_result("no-grid", [])])  # runs without a grid are left out
    assert list(rows) == ["Lifeline Sentinel (default rules)", "LeakDB MNF baseline, gamma 0.10",
                          "LeakDB MNF baseline, gamma 0.20", "LeakDB MNF baseline, gamma 0.30"]
    counted = 3 * STEPS - 3  # three zones, less DMA1's three masked steps
    ours = rows["Lifeline Sentinel (default rules)"]
    # alarms on 46 of the leak's 48 steps, none outside it
    assert (ours.tp, ours.fn, ours.fp, ours.tn) == (46, 2, 0, counted - 48)
    assert ours.tpr == pytest.approx(46 / 48) and ours.tnr == 1.0
    assert ours.f1 == pytest.approx(92 / 94)
    # the leak runs to the series end: window = 48 steps (tw = 47), first alarm 2 steps in
    assert ours.faults == 1 and ours.sed == pytest.approx(2 / (1 + math.exp(5 * 2 / 47)))
    # day 11's night minimum against the first ten days' 8.0: DMA1 +3 (37.5%), DMA2 +2 (25%)
    for gamma in ("0.10", "0.20"):  # both flag day 11 in DMA1 (the leak) and DMA2 (no leak)
        mnf = rows[f"LeakDB MNF baseline, gamma {gamma}"]
        assert (mnf.tp, mnf.fn, mnf.fp, mnf.tn) == (48, 0, 48, counted - 96)
        assert mnf.tpr == 1.0 and mnf.tnr == pytest.approx((counted - 96) / (counted - 48))
        assert mnf.f1 == pytest.approx(2 / 3) and mnf.sed == 1.0
    strict = rows["LeakDB MNF baseline, gamma 0.30"]  # 25% < 30%: only DMA1's day 11
    assert (strict.tp, strict.fn, strict.fp, strict.tn) == (48, 0, 0, counted - 48)
    assert strict.tpr == strict.tnr == strict.f1 == strict.sed == 1.0
    assert scores.leakdb_rows([RUN_1, RUN_2]) == {}


# --- the report -------------------------------------------------------------------------------------------

def test_render_markdown_tables_and_json_summary() -> None:
    results = [RUN_1, RUN_2, grid_case()]
    text, summary = render_markdown(results, seeds="held-out")
    assert text.startswith("Detection benchmark, 3 runs (held-out seeds): w@1, w@2, grid@1\n")
    assert "| network | event kind | size | events | detected | median TTD | p90 TTD |" in text
    # bursts only come from RUN_1 and RUN_2; median 300 s, p90 960 s
    assert "| water | burst | all | 6 | 5 (83%) | 5 min | 16 min |" in text
    # slow leaks: RUN_1's (2 h), RUN_2's (missed), the grid's (Z1, 1 h after the leak began)
    assert "| water | slow_leak | all | 3 | 2 (67%) | 1.5 h | 1.9 h |" in text
    # false alerts: only the grid's deadman alert (D1) matches no event; 4 + 4 + 3 * 12/7 zone-weeks
    assert "| water | 2 | 50% | 1 | 0 | 13.1 | 0.08 |" in text
    assert "False alerts by rule: dead 1" in text
    assert "| detector | TPR | TNR | F1 | early-detection score |" in text
    assert "| Lifeline Sentinel (default rules) | 96% | 100% | 98% | 89% |" in text
    assert "| LeakDB MNF baseline, gamma 0.30 | 100% | 100% | 100% | 100% |" in text
    assert "| bursts detected within 15 min: at least 95% | 67% | no |" in text
    assert "| slow leaks detected within 48 h: at least 80% | 67% | no |" in text
    assert "| at most 1 false alert per zone-week (worst network) | 0.08 | yes |" in text
    assert "| LeakDB F1 above LeakDB MNF baseline, gamma 0.30 (100%) | 98% | no |" in text
    # what moving a deadline would give: bursts found at 0, 2, 5, 10 and 20 minutes, one of six missed
    assert ("Bursts detected by deadline (the target's is 15 min):\n\n| 5 min | 10 min | 15 min | 20 min | 30 min "
            "| 1.0 h |\n|---|---|---|---|---|---|\n| 50% | 67% | 67% | 83% | 83% | 83% |") in text
    assert "| 24.0 h | 36.0 h | 48.0 h | 60.0 h | 72.0 h | 96.0 h |" in text

    decoded = json.loads(json.dumps(summary))
    assert decoded["seeds"] == "held-out" and decoded["runs"] == ["w@1", "w@2", "grid@1"]
    burst_target, slow_target, false_target, f1_target, sed_target = decoded["targets"]
    assert burst_target == {"target": "bursts detected within 15 min", "required": 0.95,
                            "measured": pytest.approx(4 / 6), "met": False}
    assert slow_target["measured"] == pytest.approx(2 / 3) and slow_target["met"] is False
    assert false_target["measured"] == pytest.approx(1 / (8 + 36 / 7)) and false_target["met"] is True
    assert f1_target["baseline_detector"] == "LeakDB MNF baseline, gamma 0.30"
    assert f1_target["measured"] == pytest.approx(92 / 94) and f1_target["met"] is False
    assert sed_target["target"] == "LeakDB early-detection score above the MNF baseline at its best F1"
    assert set(decoded["leakdb"]) == set(scores.leakdb_rows(results))
    assert decoded["false_by_rule"] == {"dead": 1}
    assert decoded["detected_by_deadline_s"]["burst"]["1200"] == pytest.approx(5 / 6)
    assert decoded["detected_by_deadline_s"]["slow_leak"]["86400"] == pytest.approx(2 / 3)


def test_render_markdown_meets_targets_and_skips_leakdb_without_grids() -> None:
    fast = case_result("fast@1", [outcome("burst", "small burst", 60.0), outcome("slow_leak", "small leak", 3600.0)],
                       zones=2, alerts=3, false=3)
    text, summary = render_markdown([fast], seeds="development")
    assert "LeakDB" not in text and summary["leakdb"] == {}
    assert "| bursts detected within 15 min: at least 95% | 100% | yes |" in text
    assert "| slow leaks detected within 48 h: at least 80% | 100% | yes |" in text
    assert "| at most 1 false alert per zone-week (worst network) | 1.50 | no |" in text  # 3 in 2 zone-weeks
    assert [t["met"] for t in summary["targets"]] == [True, True, False]
    json.dumps(summary)


# --- holidays ---------------------------------------------------------------------------------------------

def test_calendar_of_gives_local_dates_of_holidays_only() -> None:
    def at(iso: str) -> int:
        return int(datetime.datetime.fromisoformat(iso).timestamp()) * S

    anomalies = [
        event("H1", "DMA1", "holiday", at("2025-05-21T16:00:00+00:00"), at("2025-05-22T16:00:00+00:00")),
        event("H2", "DMA2", "holiday", at("2025-05-21T16:00:00+00:00"), at("2025-05-22T16:00:00+00:00")),
        event("H3", "DMA1", "holiday", at("2025-05-01T15:59:00+00:00"), at("2025-05-02T15:59:00+00:00")),
        event("X1", "DMA1", "hydrant_draw", at("2025-05-10T02:00:00+00:00"), at("2025-05-10T03:00:00+00:00")),
    ]
    assert calendar_of(anomalies, 8) == (datetime.date(2025, 5, 1), datetime.date(2025, 5, 22))
    assert calendar_of(anomalies[:1], 0) == (datetime.date(2025, 5, 21),)
    assert calendar_of(anomalies[3:], 8) == ()


def test_an_alert_during_two_events_of_a_zone_detects_the_one_that_began_last() -> None:
    leak = event("L1", "DMA1", "slow_leak", T0, T0 + 3 * DAY, "large incipient leak at a service pipe")
    burst = event("B1", "DMA1", "burst", T0 + DAY, T0 + DAY + 2 * HOUR, "small burst on a service pipe")
    fingerprint = alert("A1", "DMA1", T0 + DAY + 10 * MIN, T0 + DAY + 2 * HOUR)  # the burst's alarm
    excess = alert("A2", "DMA1", T0 + 2 * DAY, None)  # after the burst's end and grace: the leak's
    res = scores.score_case("toy@1", TWO_ZONES, [leak, burst], [], [fingerprint, excess], span_s=WEEK_S,
                            grace_s=3600)
    found = {o.event.event_id: o for o in res.outcomes}
    assert found["B1"].first_alert is fingerprint and found["B1"].matched_alerts == 1
    assert found["L1"].first_alert is excess and found["L1"].time_to_detect_s == 2 * DAY / 1e9
    assert res.false_alerts == []


def test_a_leak_rules_alarm_starting_during_a_burst_in_a_leaking_zone_detects_the_leak() -> None:
    leak = event("L1", "DMA1", "slow_leak", T0, T0 + 3 * DAY, "large incipient leak at a service pipe")
    burst = event("B1", "DMA1", "burst", T0 + DAY, T0 + DAY + 2 * HOUR, "small burst on a service pipe")
    excess = alert("A1", "DMA1", T0 + DAY + HOUR, None, rule_id="water-inflow-excess")
    kinds = {"water-inflow-excess": "inflow_excess"}
    res = scores.score_case("toy@1", TWO_ZONES, [leak, burst], [], [excess], span_s=WEEK_S, grace_s=3600,
                            rule_kinds=kinds)
    found = {o.event.event_id: o for o in res.outcomes}
    assert found["L1"].first_alert is excess and not found["B1"].detected
    # without the rules' kinds the alarm goes to the event that began last
    res = scores.score_case("toy@1", TWO_ZONES, [leak, burst], [], [excess], span_s=WEEK_S, grace_s=3600)
    assert {o.event.event_id for o in res.outcomes if o.detected} == {"B1"}


def test_a_burst_alarm_during_a_slow_leak_with_no_burst_is_a_false_alert_not_a_find() -> None:
    """A slow leak grows over days and makes no step the fingerprint could see: its alarm hours into one,
    when the leak is a fraction of a per cent of the zone's demand, is noise, and the leak is found when a
    leak rule finds it. Other rules (zone balance) still detect whatever event they start in, and a leak
    rule's alarm during a burst is the burst's water."""
    leak = event("L1", "DMA1", "slow_leak", T0, T0 + 3 * DAY, "large incipient leak at a service pipe")
    fingerprint = alert("A1", "DMA1", T0 + 2 * HOUR, T0 + 3 * HOUR, rule_id="water-burst-fingerprint")
    excess = alert("A2", "DMA1", T0 + 2 * DAY, None, rule_id="water-inflow-excess")
    balance = alert("A3", "DMA1", T0 + DAY, T0 + DAY + HOUR, rule_id="water-zone-balance")
    kinds = {"water-burst-fingerprint": "burst_fingerprint", "water-inflow-excess": "inflow_excess",
             "water-zone-balance": "zone_balance"}
    res = scores.score_case("toy@1", TWO_ZONES, [leak], [], [fingerprint, excess], span_s=WEEK_S, grace_s=3600,
                            rule_kinds=kinds)
    (found,) = res.outcomes
    assert found.first_alert is excess and found.time_to_detect_s == 2 * DAY / 1e9
    assert res.false_alerts == [fingerprint]
    res = scores.score_case("toy@1", TWO_ZONES, [leak], [], [balance], span_s=WEEK_S, grace_s=3600,
                            rule_kinds=kinds)
    assert res.outcomes[0].first_alert is balance and res.false_alerts == []
    burst = event("B1", "DMA1", "burst", T0, T0 + 6 * HOUR, "medium burst on a main")
    night = alert("A4", "DMA1", T0 + 3 * HOUR, T0 + DAY, rule_id="water-night-flow")
    res = scores.score_case("toy@1", TWO_ZONES, [burst], [], [night], span_s=WEEK_S, grace_s=3600,
                            rule_kinds={"water-night-flow": "night_flow"})
    assert res.outcomes[0].first_alert is night and res.false_alerts == []


def test_a_drop_in_the_inflow_finds_a_meter_reading_low_but_never_a_burst_it_follows() -> None:
    """A burst or leak only raises the inflow: the drop rule's alarm at its repair is not a find (and it is
    false when nothing else happened), while during a meter fault overlapping the repair it finds the fault."""
    burst = event("B1", "DMA1", "burst", T0, T0 + 2 * HOUR, "medium burst on a main")
    meter = event("S1", "DMA1", "sensor_offset", T0 + HOUR, T0 + 5 * HOUR, "FI01 reads -30 m3/h off")
    drop = alert("A1", "DMA1", T0 + 2 * HOUR + 10 * MIN, T0 + 3 * HOUR, rule_id="water-inflow-drop")
    kinds = {"water-inflow-drop": "inflow_drop"}
    res = scores.score_case("toy@1", TWO_ZONES, [burst], [], [drop], span_s=WEEK_S, grace_s=3600, rule_kinds=kinds)
    assert not res.outcomes[0].detected and res.false_alerts == [drop]
    res = scores.score_case("toy@1", TWO_ZONES, [burst, meter], [], [drop], span_s=WEEK_S, grace_s=3600,
                            rule_kinds=kinds)
    found = {o.event.event_id: o.detected for o in res.outcomes}
    assert found == {"B1": False, "S1": True} and res.false_alerts == []
    valve = event("V1", "DMA1", "low_pressure", T0 + 2 * HOUR, T0 + 4 * HOUR, "PRV set-point lowered")
    res = scores.score_case("toy@1", TWO_ZONES, [meter, valve], [], [drop], span_s=WEEK_S, grace_s=3600,
                            rule_kinds=kinds)
    assert {o.event.event_id: o.detected for o in res.outcomes} == {"S1": True, "V1": False}  # meant for meters

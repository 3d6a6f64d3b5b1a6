"""Leakage accounting toward the 9 % target: hand-computed cases, the simulator's labelled slow leak, the
command line with its stores, and the page in a real browser."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sentinel.catalog import load_catalog
from sentinel.cli import main
from sentinel.errors import InputErrors
from sentinel.events import load_events
from sentinel.leakage import DAY_NS, NS, ZoneSeries, account, daily_leakage, night_day_factor, weekly
from sentinel.leakage_config import LeakageConfig, ZoneSettings, parse_leakage_config
from sentinel.leakage_series import zone_series
from sentinel.leakage_store import encode_leakage, read_leakage_sqlite, write_leakage_influx
from sentinel.readings import QUALITY_BAD, Batch
from sentinel.stores.sqlite import SQLiteStore
from simulators.files import write_replay
from simulators.scenario import DEFAULT_START, EventSpec, Scenario, WaterSpec
from simulators.synthetic import generate
from tests.helpers import catalog, series_batch

STEP = 900.0  # 15-minute buckets: 96 a day, 02:00-04:00 local is buckets 8..15
PER_DAY = 96
T0 = 1_736_092_800 * NS  # 2025-01-05T16:00Z: 2025-01-06 00:00 local (UTC+8), a Monday
NIGHT = slice(8, 16)
REPO = Path(__file__).resolve().parents[1]


def settings(**kw: object) -> ZoneSettings:
    return ZoneSettings.model_validate(kw)


def series(net: np.ndarray, pressure: np.ndarray | None = None) -> ZoneSeries:
    return ZoneSeries("DMA1", T0, STEP, np.asarray(net, dtype=float), pressure)


def day_profile(night: float, day: float) -> np.ndarray:
    """One day's net inflow: `night` m3/h in 02:00-04:00, `day` m3/h elsewhere."""
    x = np.full(PER_DAY, day)
    x[NIGHT] = night
    return x


def one(s: ZoneSeries, zs: ZoneSettings, target: float = 9.0):
    (d,) = daily_leakage(s, zs, utc_offset_h=8.0, target_pct=target)
    return d


# -- hand-computed cases ---------------------------------------------------------------------------


def test_a_constant_leak_gives_the_exact_share() -> None:
    # nobody uses water at night: MNF is the leak (10 m3/h); by day 90 m3/h more is used
    d = one(series(day_profile(10.0, 100.0)), settings(ndf={"method": "fixed"}))
    inflow = 10.0 * 2 + 100.0 * 22  # m3
    assert d.status == "ok" and d.day == "2025-01-06"
    assert d.mnf_m3h == 10.0 and d.mnf_at_ns == T0 + 2 * 3600 * NS
    assert d.ndf_h == 24.0 and d.ndf_source == "fixed"
    assert d.leakage_m3 == pytest.approx(240.0) and d.inflow_m3 == pytest.approx(inflow)
    assert d.share_pct == pytest.approx(100 * 240.0 / inflow)  # 10.81 %
    assert d.above_target is True
    assert one(series(day_profile(10.0, 100.0)), settings(ndf={"method": "fixed"}), target=11.0).above_target is False


def test_mnf_is_the_lowest_bucket_inside_the_night_window_only() -> None:
    x = day_profile(30.0, 100.0)
    x[9] = 25.0  # 02:15-02:30: the minimum
    x[20] = 5.0  # 05:00, outside the window: not the night minimum
    d = one(series(x), settings(ndf={"method": "fixed"}))
    assert d.mnf_m3h == 25.0 and d.mnf_at_ns == T0 + (2 * 3600 + 900) * NS
    later = one(series(x), settings(night_window=["04:30", "05:30"], ndf={"method": "fixed"}))
    assert later.mnf_m3h == 5.0


@pytest.mark.parametrize(("night_use", "use_m3h"), [
    ({"method": "none"}, 0.0),
    ({"method": "per_property", "litres_per_property_h": 1.7, "properties": 2000}, 3.4),
    ({"method": "per_property", "litres_per_property_h": 1.7, "properties": 2000, "extra_m3h": 1.1}, 4.5),
    ({"method": "fraction_of_mnf", "fraction": 0.25}, 5.0),
    ({"method": "absolute", "m3h": 2.0}, 2.0),
])
def test_legitimate_night_use_is_subtracted_from_the_mnf(night_use: dict, use_m3h: float) -> None:
    d = one(series(day_profile(20.0, 100.0)), settings(night_use=night_use, ndf={"method": "fixed", "hours": 20}))
    assert d.night_use_m3h == pytest.approx(use_m3h)
    assert d.leakage_m3 == pytest.approx((20.0 - use_m3h) * 20.0)
    assert d.ndf_h == 20.0


def test_night_use_above_the_mnf_is_zero_leakage_with_a_note_not_a_negative_one() -> None:
    d = one(series(day_profile(2.0, 100.0)), settings(night_use={"method": "absolute", "m3h": 3.0}))
    assert d.leakage_m3 == 0.0 and d.share_pct == 0.0 and "exceeds MNF" in d.note


def half_and_half(high: float, low: float) -> np.ndarray:
    """Zone pressure: `high` from 00:00 to 12:00 (so at night), `low` from 12:00 to 24:00."""
    return np.r_[np.full(PER_DAY // 2, high), np.full(PER_DAY // 2, low)]


@pytest.mark.parametrize(("n1", "ndf"), [(1.0, 12 + 12 * 0.8), (1.5, 12 + 12 * 0.8**1.5)])
def test_ndf_from_pressure_follows_favad(n1: float, ndf: float) -> None:
    p = half_and_half(50.0, 40.0)  # kPa; the afternoon at 80 % of the night pressure
    assert night_day_factor(p, 50.0, n1, 0.25) == pytest.approx(ndf)  # 21.6 h / 20.59 h
    d = one(series(day_profile(10.0, 100.0), p), settings(ndf={"method": "pressure", "n1": n1}))
    assert d.ndf_source == "pressure" and d.p_night_kpa == 50.0
    assert d.ndf_h == pytest.approx(ndf) and d.leakage_m3 == pytest.approx(10.0 * ndf)
    # auto uses pressure when there is some; fixed ignores it
    assert one(series(day_profile(10.0, 100.0), p), settings(ndf={"n1": n1})).ndf_h == pytest.approx(ndf)
    assert one(series(day_profile(10.0, 100.0), p), settings(ndf={"method": "fixed"})).ndf_h == 24.0


def test_ndf_takes_each_logger_against_its_own_night_pressure() -> None:
    # two loggers at different heads with the same daily swing; the second is silent all afternoon:
    # averaging raw pressures would jump when it drops out, per-logger ratios do not
    p = np.stack([half_and_half(50.0, 40.0), half_and_half(30.0, 24.0)])
    p[1, 60:] = np.nan
    d = one(series(day_profile(10.0, 100.0), p), settings(ndf={"n1": 1.0}))
    assert d.ndf_h == pytest.approx(21.6) and d.p_night_kpa == pytest.approx(40.0)


def test_too_little_pressure_falls_back_to_the_fixed_hours_and_says_so() -> None:
    p = half_and_half(50.0, 40.0)
    p[30:] = np.nan
    d = one(series(day_profile(10.0, 100.0), p), settings(ndf={"hours": 23}))
    assert d.ndf_h == 23.0 and d.ndf_source == "fixed" and "pressure covers 31%" in d.note


def test_days_without_data_are_reported_missing_not_zero() -> None:
    good = day_profile(10.0, 100.0)
    gap_day = np.full(PER_DAY, np.nan)
    dark_night = good.copy()
    dark_night[NIGHT] = np.nan  # the night window lost, the rest there (95 % of a day would pass)
    thin = good.copy()
    thin[30:50] = np.nan  # 79 % of the day
    holed = good.copy()
    holed[40:44] = np.nan  # an hour by day: filled with the day's mean
    s = ZoneSeries("DMA1", T0, STEP, np.concatenate([good, gap_day, dark_night, thin, holed]))
    days = daily_leakage(s, settings(ndf={"method": "fixed"}), utc_offset_h=8.0, target_pct=9.0)
    assert [d.status for d in days] == ["ok", "missing", "incomplete", "incomplete", "ok"]
    assert [d.day for d in days] == ["2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10"]
    for d in days[1:4]:
        assert d.leakage_m3 is None and d.share_pct is None and d.inflow_m3 is None and d.above_target is None
    assert "night window 02:00-04:00 has 0 of 8" in days[2].note and "covers 79%" in days[3].note
    assert days[4].inflow_m3 == pytest.approx((8 * 10.0 + 84 * 100.0) / 92 * 24)  # the gap at the day's mean
    (week,) = weekly(days, 9.0)
    assert (week.days_ok, week.days_not_ok) == (2, 3)
    assert week.leakage_m3 == pytest.approx(days[0].leakage_m3 + days[4].leakage_m3)
    assert week.inflow_m3 == pytest.approx(days[0].inflow_m3 + days[4].inflow_m3)


def test_weeks_are_iso_weeks_of_local_days_and_share_is_volume_weighted() -> None:
    days = [day_profile(10.0, 100.0)] * 7 + [day_profile(20.0, 200.0)] * 2  # Mon..Sun, then Mon, Tue
    cfg = LeakageConfig.model_validate({"defaults": {"ndf": {"method": "fixed"}}})
    r = account({"DMA1": series(np.concatenate(days))}, cfg, utc_offset_h=8.0, step_s=STEP)
    assert [w.period for w in r.weeks] == ["2025-W02", "2025-W03"]
    assert [w.days_ok for w in r.weeks] == [7, 2]
    w3 = r.weeks[1]
    assert w3.share_pct == pytest.approx(100 * 2 * 480 / (2 * (40 + 200 * 22)))
    (total,) = r.totals
    assert total.leakage_m3 == pytest.approx(7 * 240 + 2 * 480)
    assert r.above_target() == ["DMA1"]


# -- readings -> zone series ----------------------------------------------------------------------


def test_zone_series_is_inlets_minus_outlets_in_canonical_units_with_a_stale_hold() -> None:
    cat = catalog(
        {"sensor_id": "IN1", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h", "role": "inlet"},
        {"sensor_id": "IN2", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "L/s", "role": "inlet"},
        {"sensor_id": "OUT", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h", "role": "outlet"},
        {"sensor_id": "P1", "network": "water", "zone": "DMA1", "quantity": "pressure", "unit": "m"},
        {"sensor_id": "H1", "network": "heat", "zone": "L1", "quantity": "flow", "unit": "m3/h", "role": "inlet"})
    n = 2 * 24 * 60  # two days of minutes from local midnight
    cols = {"IN1": np.full(n, 50.0), "IN2": np.full(n, 5.0), "OUT": np.full(n, 20.0), "P1": np.full(n, 40.0),
            "H1": np.full(n, 9.0)}
    b = series_batch(cat, cols, step_ns=60 * NS, t0=T0)
    b = Batch.of(b.sensor, b.time_ns, cat.to_canonical(b.sensor, b.value), b.quality)
    drop = (b.sensor == cat.index["OUT"]) & (b.time_ns >= T0 + 6 * 3600 * NS) & (b.time_ns < T0 + 9 * 3600 * NS)
    bad = (b.sensor == cat.index["IN1"]) & (b.time_ns < T0 + 3600 * NS)
    b = Batch(b.sensor[~drop], b.time_ns[~drop], b.value[~drop],
              np.where(bad[~drop], QUALITY_BAD, 0).astype(np.uint8))
    b.value[(b.sensor == cat.index["IN1"]) & (b.time_ns < T0 + 3600 * NS)] = 1e6  # bad quality: never used
    (s,) = zone_series(cat, b, step_s=STEP, stale_s=3600.0, utc_offset_h=8.0).values()
    assert s.zone == "DMA1" and s.start_ns == T0 and len(s.net_m3h) == 2 * PER_DAY
    assert np.isnan(s.net_m3h[:4]).all()  # IN1's first hour is bad quality: no net inflow
    assert s.net_m3h[4] == pytest.approx(50 + 18 - 20)  # 5 L/s = 18 m3/h
    assert np.isfinite(s.net_m3h[24:28]).all() and np.isnan(s.net_m3h[28:36]).all()  # held 1 h, then unknown
    assert s.pressure_kpa.shape == (1, 2 * PER_DAY) and s.pressure_kpa[0, 0] == pytest.approx(40 * 9.80665)


# -- config ---------------------------------------------------------------------------------------


def test_config_merges_zone_blocks_over_the_defaults() -> None:
    cfg = parse_leakage_config("target_pct: 9\ndefaults:\n  night_use: {method: fraction_of_mnf, fraction: 0.2}\n"
                               "  ndf: {method: fixed, hours: 22}\nzones:\n  DMA1:\n    ndf: {n1: 1.5}\n"
                               "  DMA2:\n    night_use: {method: absolute, m3h: 4}\n")
    dma1, dma2, other = cfg.for_zone("DMA1"), cfg.for_zone("DMA2"), cfg.for_zone("DMA9")
    assert (dma1.ndf.method, dma1.ndf.hours, dma1.ndf.n1) == ("fixed", 22.0, 1.5)
    assert dma1.night_use.method == "fraction_of_mnf" and dma2.night_use.rate_m3h(50.0) == 4.0
    assert other == cfg.defaults


def test_config_errors_name_file_line_and_field() -> None:
    text = ("target_pct: 9\ndefaults:\n  ndf: {n1: 3}\nzones:\n  DMA1:\n    night_window: ['04:00', '02:00']\n"
            "  DMA2:\n    night_use: {method: per_property, properties: 300}\n")
    with pytest.raises(InputErrors) as exc:
        parse_leakage_config(text, "leak.yaml")
    msg = str(exc.value)
    assert "leak.yaml:3: defaults.ndf.n1: Input should be less than or equal to 2.5" in msg
    assert "leak.yaml:6: zones.DMA1.night_window: night_window must end after it starts" in msg
    assert "leak.yaml:8: zones.DMA2.night_use.litres_per_property_h: Field required" in msg
    cfg = parse_leakage_config("zones:\n  DMA1: {}\n  DMA7: {}\n", "leak.yaml")
    with pytest.raises(InputErrors, match=r"leak.yaml:3: zones.DMA7: no water zone 'DMA7'"):
        cfg.check_zones({"DMA1", "DMA2"})


def test_the_shipped_example_config_is_valid() -> None:
    cfg = parse_leakage_config((REPO / "deploy" / "leakage.example.yaml").read_text(encoding="utf-8"))
    assert cfg.target_pct == 9.0 and cfg.zones


# -- against the simulator ------------------------------------------------------------------------

LEAK_START, LEAK_DAYS = 1, 4  # opens at local midnight on Tuesday, repaired at midnight before Saturday
WEEKDAYS = slice(0, 5)


def leak_week(leakage_fraction: float = 0.12, events: bool = True) -> Scenario:
    """Two DMAs for a week; DMA1 gets a 5 % slow leak, one of DMA2's inlet meters goes quiet on Sunday."""
    return Scenario(
        name="leak-week", seed=11, start=DEFAULT_START, duration=7 * 86400.0,
        water=WaterSpec(zones=2, inlets=2, outlets=1, pressure_loggers=4, leakage_fraction=leakage_fraction),
        events=[EventSpec(kind="slow_leak", zone="DMA1", start=f"{LEAK_START}d", duration=f"{LEAK_DAYS}d",
                          magnitude=0.05),
                EventSpec(kind="sensor_dropout", sensor_id="W-DMA2-FI01", start="6d30m", duration="5h")]
        if events else [])


def account_sim(result, config: LeakageConfig):
    return account(zone_series(result.sensor_catalog(), result.to_batch(), step_s=STEP, stale_s=3600.0,
                               utc_offset_h=8.0), config, utc_offset_h=8.0, step_s=STEP)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("leak-week")
    write_replay(generate(leak_week()), out)
    return out


@pytest.fixture(scope="module")
def true_night_use() -> LeakageConfig:
    """The simulator's own night use: what the same zones draw at 02:00-04:00 with no leakage at all (its
    demand is scaled by 1 - 12 % when leakage is on). Its background leakage does not follow pressure
    (NDF 24 h). Weekday nights: weekend nights draw ~6 % less, which one number per zone cannot follow."""
    dry = account_sim(generate(leak_week(leakage_fraction=0.0, events=False)),
                      LeakageConfig.model_validate({"defaults": {"ndf": {"method": "fixed"}}}))
    use = {z: 0.88 * float(np.median([d.mnf_m3h for d in dry.days if d.zone == z][WEEKDAYS]))
           for z in ("DMA1", "DMA2")}
    return LeakageConfig.model_validate({"defaults": {"ndf": {"method": "fixed"}}, "zones": {
        z: {"night_use": {"method": "absolute", "m3h": u}} for z, u in use.items()}})


def compute(directory: Path, config: LeakageConfig):
    from ingest.replay import read_replay

    cat = load_catalog(directory / "catalog.csv")
    batch = read_replay(directory / "readings.csv", cat).batch
    return account(zone_series(cat, batch, step_s=STEP, stale_s=3600.0, utc_offset_h=8.0), config,
                   utc_offset_h=8.0, step_s=STEP)


def of(result, zone: str, field: str = "share_pct") -> list:
    return [getattr(d, field) for d in result.days if d.zone == zone]


def test_with_the_true_night_use_the_estimate_recovers_the_simulated_background(sim_dir: Path,
                                                                                true_night_use: LeakageConfig) -> None:
    r = compute(sim_dir, true_night_use)
    background = of(r, "DMA2")[WEEKDAYS] + of(r, "DMA1")[:LEAK_START]
    assert all(9.5 < s < 15.0 for s in background), background  # the simulator's 12 %, day to day ±2
    assert abs(np.mean(background) - 12.0) < 1.0
    assert r.above_target() == ["DMA1", "DMA2"]  # 12 % is above the 9 % target


def test_a_labelled_slow_leak_raises_its_zones_share_and_the_clean_zone_stays_put(
        sim_dir: Path, true_night_use: LeakageConfig) -> None:
    (leak,) = [e for e in load_events(sim_dir / "events.csv") if e.kind == "slow_leak"]
    assert (leak.zone, leak.start_ns, leak.end_ns) == ("DMA1", T0 + LEAK_START * DAY_NS,
                                                       T0 + (LEAK_START + LEAK_DAYS) * DAY_NS)
    r = compute(sim_dir, true_night_use)
    twin = account_sim(generate(leak_week(events=False)), true_night_use)  # the same week without events
    share, share0 = of(r, "DMA1"), of(twin, "DMA1")
    during = slice(LEAK_START, LEAK_START + LEAK_DAYS)
    outside = share[:LEAK_START] + share[LEAK_START + LEAK_DAYS:]
    # on its own: the leak's nights stand out of the zone's week, and climb
    assert max(share[during]) > max(outside) + 1.0, share
    assert np.polyfit(np.arange(LEAK_DAYS), share[during], 1)[0] > 0.5  # percentage points a day
    # against the same week without the leak: nothing changes outside its window; inside, the MNF rises by
    # the leak's flow at that night's minimum, which grows linearly from the labelled start
    assert outside == share0[:LEAK_START] + share0[LEAK_START + LEAK_DAYS:]
    rise = np.diff(share[during]) - np.diff(share0[during])
    assert (rise > 0.5).all() and share[during][-1] - share0[during][-1] > 3.0
    mnf_up = np.array(of(r, "DMA1", "mnf_m3h")[during]) - np.array(of(twin, "DMA1", "mnf_m3h")[during])
    elapsed = np.array(of(r, "DMA1", "mnf_at_ns")[during]) + STEP / 2 * NS - leak.start_ns
    rate = mnf_up[1:] / elapsed[1:]  # m3/h per ns of leak age: one growth rate (the first night is ~0)
    assert np.ptp(rate) < 0.05 * rate.mean() and mnf_up[0] < 0.05 * mnf_up[-1]
    # the clean zone: near its background all week, its lost Sunday reported as such
    assert all(9.5 < s < 15.0 for s in of(r, "DMA2")[WEEKDAYS])
    assert of(r, "DMA2", "status")[-1] == "incomplete" and of(r, "DMA2")[-1] is None
    assert [w.days_not_ok for w in r.totals] == [0, 1]


# -- command line, stores, page ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_file() -> Path:
    """The shipped example: its zones DMA1 and DMA2 are the simulator's."""
    return REPO / "deploy" / "leakage.example.yaml"


def test_cli_prints_the_table_and_writes_json_page_and_store_rows(sim_dir: Path, config_file: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = ["report", "leakage", "--catalog", str(sim_dir / "catalog.csv"), "--readings",
            str(sim_dir / "readings.csv"), "--config", str(config_file)]
    db, page = tmp_path / "s.sqlite", tmp_path / "leak.html"
    assert main([*args, "--out", str(page), "--write-db", str(db)]) == 0
    out, err = capsys.readouterr()
    assert "DMA1       2025-01-06" in out and "2025-W02" in out and "target 目标: leakage below 9%" in out
    assert "incomplete  (net inflow covers" in out  # DMA2's dropout day
    assert f"leakage_daily: 14 row(s) in {db}" in err and page.exists()

    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["target_pct"] == 9.0 and len(doc["days"]) == 14 and len(doc["weeks"]) == 2
    gap = next(d for d in doc["days"] if d["status"] != "ok")
    assert gap["zone"] == "DMA2" and gap["share_pct"] is None and gap["leakage_m3"] is None
    rows = read_leakage_sqlite(db)
    assert len(rows) == 14 and {r["zone"] for r in rows} == {"DMA1", "DMA2"}
    for row, day in zip(rows, doc["days"], strict=True):
        assert (row["zone"], row["day"], row["status"]) == (day["zone"], day["day"], day["status"])
        assert row["share_pct"] == day["share_pct"] and row["target_pct"] == 9.0
    assert main([*args, "--write-db", str(db)]) == 0  # recomputing overwrites, never duplicates
    assert len(read_leakage_sqlite(db)) == 14


def test_cli_reads_the_sqlite_store_as_well_as_a_replay_file(sim_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from ingest.replay import read_replay

    cat = load_catalog(sim_dir / "catalog.csv")
    db = tmp_path / "store.sqlite"
    with SQLiteStore(db, cat) as store:
        store.write_readings(read_replay(sim_dir / "readings.csv", cat).batch)
    base = ["report", "leakage", "--catalog", str(sim_dir / "catalog.csv"), "--json"]
    assert main([*base, "--readings", str(sim_dir / "readings.csv")]) == 0
    from_file = json.loads(capsys.readouterr().out)["days"]
    assert main([*base, "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out)["days"] == from_file


def test_cli_refuses_a_config_naming_a_zone_the_catalog_lacks(sim_dir: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("zones:\n  DMA1: {}\n  DMA-X:\n    ndf: {method: fixed}\n", encoding="utf-8")
    assert main(["report", "leakage", "--catalog", str(sim_dir / "catalog.csv"), "--readings",
                 str(sim_dir / "readings.csv"), "--config", str(cfg)]) == 2
    assert f"{cfg}:3: zones.DMA-X: no water zone 'DMA-X' in the catalog" in capsys.readouterr().err


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_the_page_renders_one_line_per_zone_against_the_target_in_chromium(
        sim_dir: Path, config_file: Path, tmp_path: Path, chromium: str) -> None:
    page = tmp_path / "leak.html"
    assert main(["report", "leakage", "--catalog", str(sim_dir / "catalog.csv"), "--readings",
                 str(sim_dir / "readings.csv"), "--config", str(config_file), "--out", str(page)]) == 0

    def browser(*args: str) -> str:
        return subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                              capture_output=True, text=True, timeout=120, check=True).stdout

    dom = browser("--dump-dom", page.as_uri())
    assert dom.count('class="zone-line"') == 2
    assert 'data-zone="DMA1"' in dom and 'data-zone="DMA2"' in dom
    assert dom.count('id="target-line"') == 1 and "目标 target 9%" in dom
    assert dom.count('class="point"') == 13 and dom.count('class="missing"') == 1  # DMA2's lost day
    assert dom.count('class="volume-bar"') == 13 and "漏损率" in dom
    shot = tmp_path / "leak.png"
    browser("--window-size=1200,1000", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 10_000


# -- InfluxDB -------------------------------------------------------------------------------------


def test_influx_points_carry_status_and_leave_unknown_numbers_out() -> None:
    s = ZoneSeries("DMA1", T0, STEP, np.concatenate([day_profile(10.0, 100.0), np.full(PER_DAY, np.nan)]))
    days = daily_leakage(s, settings(ndf={"method": "fixed"}), utc_offset_h=8.0, target_pct=9.0)
    ok, gap = encode_leakage(days, 9.0)
    assert ok.startswith("leakage,network=water,zone=DMA1 status=\"ok\",note=\"\",coverage=1.0,target_pct=9.0,")
    assert "leakage_m3=240.0" in ok and "above_target=true" in ok and ok.endswith(f" {T0}")
    assert gap == f'leakage,network=water,zone=DMA1 status="missing",note="no net inflow data",coverage=0.0,' \
                  f'target_pct=9.0 {T0 + DAY_NS}'


def test_leakage_points_land_in_a_real_influxdb(influxdb, influx_bucket: str, tmp_path: Path) -> None:
    from sentinel.catalog import Catalog
    from tests.conftest_influx import store_for

    s = ZoneSeries("DMA1", T0, STEP, np.concatenate([day_profile(10.0, 100.0), np.full(PER_DAY, np.nan)]))
    days = daily_leakage(s, settings(ndf={"method": "fixed"}), utc_offset_h=8.0, target_pct=9.0)
    with store_for(influxdb, influx_bucket, Catalog.from_sensors([]), tmp_path / "spool") as store:
        assert write_leakage_influx(store, days, 9.0) == 2
        assert write_leakage_influx(store, days, 9.0) == 2  # again: overwrites
        assert store.stats()["written"] == 4 and not store.stats()["spooled"]
    recs = influxdb.query(f'from(bucket: "{influx_bucket}") |> range(start: 0) '
                          '|> filter(fn: (r) => r._measurement == "leakage")')
    got = {(r.get_time().timestamp(), r.get_field()): r.get_value() for r in recs}
    t0, t1 = T0 / NS, (T0 + DAY_NS) / NS
    assert got[(t0, "status")] == "ok" and math.isclose(got[(t0, "share_pct")], days[0].share_pct)
    assert got[(t0, "above_target")] is True
    assert got[(t1, "status")] == "missing" and (t1, "share_pct") not in got
    assert len([k for k in got if k[1] == "status"]) == 2


def test_sqlite_rows_of_a_missing_day_hold_null_not_zero(tmp_path: Path) -> None:
    from sentinel.leakage_store import write_leakage_sqlite

    s = ZoneSeries("DMA1", T0, STEP, np.concatenate([day_profile(10.0, 100.0), np.full(PER_DAY, np.nan)]))
    days = daily_leakage(s, settings(ndf={"method": "fixed"}), utc_offset_h=8.0, target_pct=9.0)
    write_leakage_sqlite(tmp_path / "s.sqlite", days, 9.0)
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        rows = conn.execute("SELECT day, status, leakage_m3, share_pct, above_target FROM leakage_daily").fetchall()
    assert rows == [("2025-01-06", "ok", 240.0, days[0].share_pct, 1), ("2025-01-07", "missing", None, None, None)]


def test_cli_writes_the_leakage_measurement_to_influxdb(influxdb, influx_bucket: str, sim_dir: Path, config_file: Path,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in {"URL": influxdb.url, "ORG": influxdb.org, "BUCKET": influx_bucket, "TOKEN": influxdb.token,
                       "SPOOL_DIR": str(tmp_path / "spool")}.items():
        monkeypatch.setenv(f"SENTINEL_INFLUX_{key}", value)
    assert main(["report", "leakage", "--catalog", str(sim_dir / "catalog.csv"), "--readings",
                 str(sim_dir / "readings.csv"), "--config", str(config_file), "--write-influx", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "InfluxDB: 14 leakage point(s) written" in err
    want = {(d["zone"], d["start_ns"]): d for d in json.loads(out)["days"]}
    recs = influxdb.query(f'from(bucket: "{influx_bucket}") |> range(start: 0) '
                          '|> filter(fn: (r) => r._measurement == "leakage" and r._field == "status")')
    got = {(r.values["zone"], round(r.get_time().timestamp()) * NS): r.get_value() for r in recs}
    assert got == {k: d["status"] for k, d in want.items()}

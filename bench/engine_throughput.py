"""Engine throughput on 10,000 sensors: threshold + rate-of-change + EWMA rules together.

Baseline, measured in the same run: a plain per-reading Python loop applying the same three rules
with the same semantics (hold time, hysteresis, window, EWMA with warm-up). Prints medians over
repeats, the ratio, memory per sensor, and ends with one JSON line.

    python -m bench.engine_throughput [--sensors 10000] [--steps 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import tracemalloc

import numpy as np

from rules.engine import Engine
from rules.loader import RuleSet
from rules.schema import RuleFile, Settings
from sentinel.catalog import Catalog, Sensor
from sentinel.readings import Batch

RULES = {
    "rules": [
        {"id": "low", "kind": "threshold", "low": 200.0, "hysteresis": 5.0, "for": "2m"},
        {"id": "drop", "kind": "rate_of_change", "change": 30.0, "within": "5m", "max_points": 8},
        {"id": "dev", "kind": "ewma", "z": 6.0, "min_deviation": 5.0,
         "baseline": {"warmup": 20, "halflife": "1d", "min_sigma": 0.5}},
    ]
}
T0 = 1_735_689_600 * 10**9
STEP = 60 * 10**9


def make(n_sensors: int, steps: int, seed: int = 1) -> tuple[Catalog, list[Batch]]:
    cat = Catalog.from_sensors(
        Sensor(sensor_id=f"P{i:05d}", network="water", zone=f"Z{i % 200}", quantity="pressure", unit="kPa",
               interval_s=60) for i in range(n_sensors))
    rng = np.random.default_rng(seed)
    idx = np.arange(n_sensors)
    batches = []
    for k in range(steps):
        v = 300 + rng.normal(0, 2, n_sensors)
        if k > steps // 2:
            v[: n_sensors // 100] -= 60  # 1% of sensors see a burst
        batches.append(Batch.of(idx, np.full(n_sensors, T0 + k * STEP), v))
    return cat, batches


def python_loop(batches: list[Batch], n: int) -> int:
    """The same three rules, one reading at a time, in plain Python."""
    hold, hyst, low = 120 * 10**9, 5.0, 200.0
    within, change, depth = 300 * 10**9, 30.0, 8
    alpha = 1.0 - 0.5 ** (1.0 / (86400 / 60))
    lvl_low, since = [0] * n, [None] * n
    ring: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    lvl_drop = [0] * n
    mean, var, cnt, lvl_dev = [0.0] * n, [0.0] * n, [0] * n, [0] * n
    fired = 0
    for b in batches:
        for s, t, v in zip(b.sensor.tolist(), b.time_ns.tolist(), b.value.tolist(), strict=True):
            # threshold with hold and hysteresis
            raw = 1 if v < (low + hyst if lvl_low[s] else low) else 0
            if raw > lvl_low[s]:
                since[s] = since[s] if since[s] is not None else t
                if t - since[s] >= hold:
                    lvl_low[s], since[s] = 1, None
                    fired += 1
            else:
                since[s] = None
                if raw < lvl_low[s]:
                    lvl_low[s] = 0
            # rate of change over a window
            r = ring[s]
            ref = next((pv for pt, pv in r if pt >= t - within), None)
            amount = (ref - v) if ref is not None else 0.0
            raw = 1 if amount > change else 0
            if raw != lvl_drop[s]:
                fired += raw
                lvl_drop[s] = raw
            r.append((t, v))
            if len(r) > depth:
                r.pop(0)
            # EWMA deviation
            sd = max(math.sqrt(var[s]), 0.5)
            dev = v - mean[s]
            raw = 1 if cnt[s] >= 20 and abs(dev) >= 5.0 and abs(dev) / sd > 6.0 else 0
            if raw != lvl_dev[s]:
                fired += raw
                lvl_dev[s] = raw
            if raw == 0:
                a = max(alpha, 1.0 / (cnt[s] + 1))
                incr = a * dev
                mean[s] += incr
                var[s] = (1 - a) * (var[s] + dev * incr)
                cnt[s] += 1
    return fired


def build_engine(cat: Catalog) -> Engine:
    rf = RuleFile.model_validate(RULES)
    return Engine(cat, RuleSet(Settings(), tuple(rf.rules), ()))


def engine_run(eng: Engine, batches: list[Batch]) -> int:
    st = eng.new_state()
    raised = 0
    for b in batches:
        raised += sum(d.transition == "raised" for d in eng.step(st, b).detections)
    return raised


def state_bytes(cat: Catalog) -> int:
    rf = RuleFile.model_validate(RULES)
    eng = Engine(cat, RuleSet(Settings(), tuple(rf.rules), ()))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    st = eng.new_state()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del st
    return after - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cat, batches = make(args.sensors, args.steps)
    total = args.sensors * args.steps
    eng_times, loop_times = [], []
    eng = build_engine(cat)  # compiling rules against the catalog is start-up, not throughput
    for r in range(args.repeats):
        t0 = time.perf_counter()
        a = engine_run(eng, batches)
        eng_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = python_loop(batches, args.sensors)
        loop_times.append(time.perf_counter() - t0)
        print(f"repeat {r + 1}/{args.repeats}: engine {total / eng_times[-1]:,.0f}/s ({a} raised), "
              f"python loop {total / loop_times[-1]:,.0f}/s ({b} raised)", flush=True)
    eng_rate = total / statistics.median(eng_times)
    loop_rate = total / statistics.median(loop_times)
    per_sensor = state_bytes(cat) / args.sensors
    print(f"engine: {eng_rate:,.0f} readings/s (median of {args.repeats}); python loop: {loop_rate:,.0f}/s; "
          f"ratio {eng_rate / loop_rate:.1f}x; state {per_sensor:.0f} bytes/sensor for 3 rules")
    print(json.dumps({"bench": "engine_throughput", "sensors": args.sensors, "readings": total,
                      "engine_readings_per_s": round(eng_rate), "python_loop_readings_per_s": round(loop_rate),
                      "ratio": round(eng_rate / loop_rate, 2), "state_bytes_per_sensor": round(per_sensor),
                      "engine_raised": a, "loop_raised": b}))


if __name__ == "__main__":
    main()

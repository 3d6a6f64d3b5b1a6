"""What commissioning from history buys: the same week of the synthetic preset, judged cold and judged from a
state learned on the ten days before it.

`simulators/scenarios/commissioned.yaml` is the preset's networks over seventeen days with every drawn event
in the last seven. Per seed, the first ten days are learned (`sentinel.learn`, as `sentinel learn` does)
and the last seven replayed twice through the default rules: from the learned state, and cold (the
baseline, as a new deployment without history would run). Both are scored against the same labelled
events. Prints detections per event kind, false alerts per zone-week and median time to detect for both,
the ratio of events found, and one JSON line.

    python -m bench.commissioning [--seeds 101-105]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rules import snapshot
from rules.loader import load_rules
from sentinel.backtest import score
from sentinel.catalog import load_catalog
from sentinel.events import load_events
from sentinel.learn import learn_file
from sentinel.readings import iso
from sentinel.replay_run import ReplayOutcome, replay
from simulators.dispatch import simulate_file, write_result

SCENARIO = Path(__file__).resolve().parents[1] / "simulators" / "scenarios" / "commissioned.yaml"
HISTORY_DAYS = 10


@dataclass
class Tally:
    """Events found, per kind, over the seeds; false alerts and zone-weeks; times to detect."""

    events: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    false: int = 0
    false_by_rule: dict[str, int] = field(default_factory=dict)
    zone_weeks: float = 0.0
    ttd_s: list[float] = field(default_factory=list)

    def add(self, report: dict) -> None:
        for kind, k in report["by_kind"].items():
            self.events[kind] = self.events.get(kind, 0) + k["events"]
            self.found[kind] = self.found.get(kind, 0) + k["detected"]
        self.false += report["false_alerts"]
        for rule, n in report["false_alerts_by_rule"].items():
            self.false_by_rule[rule] = self.false_by_rule.get(rule, 0) + n
        self.zone_weeks += report["zone_weeks"]
        self.ttd_s += report["times_to_detect_s"]

    @property
    def total(self) -> tuple[int, int]:
        return sum(self.found.values()), sum(self.events.values())


def split(readings: Path, at: str, history: Path, live: Path) -> None:
    """Readings before `at` (ISO, sorts as text) to `history`, the rest to `live`: long form, or wide form
    (a row per time), whose rows also begin with their time."""
    head, *rows = readings.read_text(encoding="utf-8").splitlines()
    history.write_text("\n".join([head, *(r for r in rows if r < at)]) + "\n", encoding="utf-8")
    live.write_text("\n".join([head, *(r for r in rows if r >= at)]) + "\n", encoding="utf-8")


def judge(out: ReplayOutcome, events: list, zones: int) -> dict:
    spans = out.alert_spans()
    report, outcomes = score(events, spans, zones=zones, span_s=out.span_s,
                             rule_kinds={d.rule_id: d.kind for d in out.detections})
    report["zone_weeks"] = zones * out.span_s / (7 * 86400)
    report["times_to_detect_s"] = [o.time_to_detect_s for o in outcomes if o.detected]
    return report


def run_seed(seed: int, work: Path) -> tuple[dict, dict]:
    """(cold report, learned report) for one seed."""
    d = work / f"s{seed}"
    result = simulate_file(SCENARIO, seed=seed, show_progress=False)
    write_result(result, d)
    at_ns = int(result.scenario.start.timestamp()) * 10**9 + HISTORY_DAYS * 86400 * 10**9
    split(d / "readings.csv", iso(at_ns), d / "history.csv", d / "live.csv")
    catalog, rules = load_catalog(d / "catalog.csv"), load_rules(None)
    taught = learn_file(catalog, rules, d / "history.csv")
    snapshot.save(d / "learned.state", taught.state, engine=taught.engine)
    events = [e for e in load_events(d / "events.csv") if e.end_ns > at_ns]
    zones = len(catalog.zones)
    cold = replay(catalog, d / "live.csv", rules, show_progress=False)
    warm = replay(catalog, d / "live.csv", rules, show_progress=False, from_state=d / "learned.state")
    return judge(cold, events, zones), judge(warm, events, zones)


def parse_seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="101-105", help="seed range, e.g. 101-105")
    args = p.parse_args(argv)
    cold, warm = Tally(), Tally()
    with tempfile.TemporaryDirectory(prefix="sentinel-commissioning-") as tmp:
        for seed in parse_seeds(args.seeds):
            c, w = run_seed(seed, Path(tmp))
            cold.add(c)
            warm.add(w)
            print(f"seed {seed}: cold {c['detected']}/{c['events']} found, {c['false_alerts']} false; "
                  f"learned {w['detected']}/{w['events']} found, {w['false_alerts']} false", flush=True)
    print("\n| event kind | events | cold start | learned from 10 days |\n|---|---|---|---|")
    for kind in sorted(warm.events):
        print(f"| {kind} | {warm.events[kind]} | {cold.found.get(kind, 0)} | {warm.found.get(kind, 0)} |")
    (cf, n), (wf, _) = cold.total, warm.total

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs) / 60:.1f} min" if xs else "n/a"

    print(f"| all | {n} | {cf} ({100 * cf / n:.0f} %) | {wf} ({100 * wf / n:.0f} %) |")
    print(f"\nfalse alerts: cold {cold.false} ({cold.false / cold.zone_weeks:.2f} per zone-week), learned "
          f"{warm.false} ({warm.false / warm.zone_weeks:.2f}); median time to detect: cold {med(cold.ttd_s)}, "
          f"learned {med(warm.ttd_s)}; events found, learned / cold: {wf / max(cf, 1):.2f}")
    for name, t in (("cold", cold), ("learned", warm)):
        print(f"false alerts by rule, {name}: " + (", ".join(f"{r} {n}" for r, n in sorted(
            t.false_by_rule.items(), key=lambda kv: -kv[1])) or "none"))
    print(json.dumps({"bench": "commissioning", "seeds": args.seeds, "events": n, "found_cold": cf,
                      "found_learned": wf, "ratio": wf / max(cf, 1), "false_cold": cold.false,
                      "false_learned": warm.false, "false_by_rule_cold": cold.false_by_rule,
                      "false_by_rule_learned": warm.false_by_rule, "by_kind": {k: {"events": warm.events[k],
                                                                  "cold": cold.found.get(k, 0),
                                                                  "learned": warm.found.get(k, 0)}
                                                              for k in sorted(warm.events)}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

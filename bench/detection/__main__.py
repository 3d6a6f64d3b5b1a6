"""`python -m bench.detection`: simulate the suite (cached), replay it through the rules, print the scores.

Options: --dev runs the development seeds instead of the held-out ones; --only NAME keeps matching
scenarios; --rules FILE... scores other rule files; --out DIR keeps per-run HTML timelines and a JSON
of every number and every false alert (with the labelled event or benign anomaly it fell on); --grace
sets how long after an event's end an alert still counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
from pathlib import Path

from bench.detection import scores, suite
from bench.detection.table import render_markdown
from rules.durations import parse_duration
from rules.loader import load_rules


def calendar_of(anomalies, utc_offset_h: float) -> tuple[datetime.date, ...]:
    """The local dates of the scenario's holidays (benign anomalies of kind `holiday`)."""
    tz = datetime.timezone(datetime.timedelta(hours=utc_offset_h))
    return tuple(sorted({datetime.datetime.fromtimestamp(a.start_ns / 1e9, tz).date()
                         for a in anomalies if a.kind == "holiday"}))


def run_case(case: suite.Case, ruleset, rule_kinds: dict[str, str], *, grace_s: float, out_dir: Path | None,
             simulators: str) -> scores.CaseResult:
    from ingest.replay import read_replay
    from sentinel.catalog import load_catalog
    from sentinel.events import load_events
    from sentinel.replay_run import replay

    t0 = time.perf_counter()
    directory, cached = suite.simulated(case, simulators=simulators)
    t_sim = time.perf_counter() - t0
    catalog = load_catalog(directory / "catalog.csv")
    events = load_events(directory / "events.csv")
    anomalies = load_events(directory / "anomalies.csv") if (directory / "anomalies.csv").exists() else []
    holidays = calendar_of(anomalies, ruleset.settings.utc_offset_h)
    if holidays:  # a utility lists its public holidays in the rules' settings; the scenario's are the city's
        ruleset = dataclasses.replace(ruleset, settings=ruleset.settings.model_copy(update={"holidays": holidays}))
    t1 = time.perf_counter()
    out = replay(catalog, directory / "readings.csv", ruleset, show_progress=False)
    spans = out.alert_spans()
    res = scores.score_case(case.label, catalog, events, anomalies, spans, span_s=out.span_s, grace_s=grace_s,
                            rule_kinds=rule_kinds)
    if res.network == "water":
        data = read_replay(directory / "readings.csv", catalog)
        b = data.batch
        scores.add_leakdb_grid(res, catalog, events, spans, rule_kinds, b.sensor, b.time_ns, b.value,
                               first_ns=out.first_ns, last_ns=out.last_ns,
                               utc_offset_s=int(ruleset.settings.utc_offset_h * 3600), grace_s=grace_s)
    if out_dir is not None:
        from sentinel.report import write_replay_report

        out_dir.mkdir(parents=True, exist_ok=True)
        write_replay_report(out_dir / f"{case.label}.html", catalog, out, [*events, *anomalies], title=case.label)
    detected = sum(o.detected for o in res.outcomes)
    print(f"  {case.label:24s} simulated {'(cached)' if cached else f'in {t_sim:.0f} s'}, replayed in "
          f"{time.perf_counter() - t1:.1f} s: {detected}/{len(res.outcomes)} events detected, "
          f"{len(res.false_alerts)} false alert(s)", file=sys.stderr, flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__.splitlines()[0])
    ap.add_argument("--dev", action="store_true", help="the development seeds (what the rules were tuned on)")
    ap.add_argument("--only", help="only scenarios whose name contains this")
    ap.add_argument("--rules", nargs="+", help="rule files (default: the shipped defaults)")
    ap.add_argument("--grace", default="1h", help="an alert this long after an event's end still counts")
    ap.add_argument("--out", type=Path, help="write per-run HTML timelines and scores.json here")
    args = ap.parse_args(argv)
    ruleset = load_rules(args.rules)
    rule_kinds = {r.id: r.kind for r in ruleset.rules}
    grace_s = parse_duration(args.grace)
    cases = suite.cases(dev=args.dev, only=args.only)
    print(f"detection benchmark: {len(cases)} run(s), {'development' if args.dev else 'held-out'} seeds; "
          f"simulations cached in {suite.cache_root()}", file=sys.stderr, flush=True)
    simulators = suite.simulator_digest()
    results = [run_case(c, ruleset, rule_kinds, grace_s=grace_s, out_dir=args.out, simulators=simulators)
               for c in cases]
    text, summary = render_markdown(results, seeds="development" if args.dev else "held-out")
    print(text)
    if args.out:
        (args.out / "scores.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        print(f"per-run timelines and scores.json in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`sentinel` command line: demo, run, replay, backtest, learn, simulate, rules check."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

from rules.durations import parse_duration
from rules.loader import RuleSet, load_rules
from sentinel.catalog import Catalog, load_catalog
from sentinel.errors import InputError, InputErrors, fail
from sentinel.readings import iso
from sentinel.replay_run import ReplayOutcome


def _rules(paths: list[str] | None) -> RuleSet:
    return load_rules([Path(p) for p in paths] if paths else None)


def cmd_rules_check(args: argparse.Namespace) -> int:
    try:
        ruleset = _rules(args.files)
    except InputErrors as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    catalog = load_catalog(args.catalog) if args.catalog else None
    from rules.engine import Engine

    engine = Engine(catalog, ruleset) if catalog else None
    subjects = {c.detector.rule.id: len(c.detector.subjects) for c in engine.rules} if engine else {}
    for rule in ruleset.rules:
        extra = f" -> {subjects.get(rule.id, 0)} subject(s)" if engine else ""
        state = "" if rule.enabled else " (disabled)"
        print(f"ok  {rule.id:40s} {rule.kind:15s} {rule.severity.label:6s}{state}{extra}")
    unmatched = engine.unmatched if engine else []
    print(f"{len(ruleset.rules)} rule(s) in {len(ruleset.sources)} file(s): valid")
    if unmatched:
        print(f"warning: no subjects in this catalog for: {', '.join(unmatched)}", file=sys.stderr)
    return 0


def _store(args: argparse.Namespace, catalog: Catalog):
    if not getattr(args, "db", None):
        return None
    from sentinel.stores.sqlite import SQLiteStore

    return SQLiteStore(args.db, catalog)


def _print_alerts(alerts, stream=sys.stdout) -> None:
    for a in alerts:
        end = iso(a.resolved_ns) if a.resolved_ns else "open"
        print(f"{iso(a.started_ns)} .. {end:20s} [{a.severity.label.upper():6s} {a.severity.grade_zh}] "
              f"{a.network}/{a.zone} {a.subject}: {a.rule_id}: {a.message}", file=stream)


def _replay(args: argparse.Namespace) -> tuple[Catalog, ReplayOutcome]:
    """Load the catalog and rules named on the command line and replay the readings through them."""
    from sentinel.replay_run import replay

    catalog = load_catalog(args.catalog)
    out = replay(catalog, args.readings, _rules(args.rules), store=_store(args, catalog),
                 batch_size=args.batch_size, resolve_after_s=args.resolve_after, show_progress=not args.quiet,
                 from_state=args.from_state)
    return catalog, out


def _write_report(args: argparse.Namespace, catalog: Catalog, out: ReplayOutcome, events=()) -> None:
    if args.report:
        from sentinel.report import write_replay_report

        write_replay_report(args.report, catalog, out, events, title=Path(args.readings).name)
        print(f"report: {args.report}", file=sys.stderr)


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        catalog, out = _replay(args)
    except (InputError, InputErrors, OSError) as exc:
        return fail(exc)
    if args.json:
        print(json.dumps({"counters": out.counters.as_dict(), "alerts": [a.to_dict() for a in out.alerts],
                          "detections": [d.to_dict() for d in out.detections]}, ensure_ascii=False, indent=1))
    else:
        _print_alerts(out.alerts)
        print(f"{len(out.alerts)} alert(s), {len(out.detections)} detection(s); "
              f"counters: {json.dumps(out.counters.as_dict(), ensure_ascii=False)}")
    _write_report(args, catalog, out)
    return 0


def write_alerts_csv(path: str | Path, spans) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["alert_id", "rule", "network", "zone", "sensor_id", "severity", "start", "end"])
        for a in spans:
            w.writerow([a.alert_id, a.rule_id, a.network, a.zone, a.sensor_id or "", a.severity,
                        iso(a.start_ns), iso(a.end_ns) if a.end_ns else ""])


def cmd_backtest(args: argparse.Namespace) -> int:
    from sentinel.backtest import score
    from sentinel.events import load_events

    try:
        events = load_events(args.events)
        anomalies = load_events(args.anomalies) if args.anomalies else []
        catalog, out = _replay(args)
    except (InputError, InputErrors, OSError) as exc:
        return fail(exc)
    if args.from_state:  # what ended in the learned history was not replayed: neither found nor missed
        past = [e for e in events if e.end_ns <= out.first_ns]
        events = [e for e in events if e.end_ns > out.first_ns]
        anomalies = [e for e in anomalies if e.end_ns > out.first_ns]
        if past:
            print(f"{len(past)} event(s) ended before the replayed readings begin (in the history the state "
                  "learned from): not scored", file=sys.stderr)
    _write_report(args, catalog, out, [*events, *anomalies])
    spans = out.alert_spans()
    report, outcomes = score(events, spans, zones=len(catalog.zones), span_s=out.span_s,
                             grace_s=parse_duration(args.grace), anomalies=anomalies,
                             rule_kinds={d.rule_id: d.kind for d in out.detections})
    if args.alerts_out:
        write_alerts_csv(args.alerts_out, spans)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    for o in outcomes:
        ev = o.event
        if o.detected:
            status = f"detected after {o.time_to_detect_s / 60:7.1f} min by {o.first_alert.rule_id}"
        else:
            status = "MISSED"
        print(f"{ev.event_id:12s} {ev.kind:16s} {ev.network}/{ev.zone:10s} {iso(ev.start_ns)}  {status}")

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.0f}%"

    med = report["median_time_to_detect_s"]
    print(f"\nevents {report['events']}, detected {report['detected']} (recall {pct(report['recall'])}), "
          f"alerts {report['alerts']} (precision {pct(report['precision'])}), false alerts "
          f"{report['false_alerts']} ({report['false_alerts_per_zone_week']:.2f} per zone-week"
          + (f"; {report['false_alerts_on_benign_anomalies']} on benign anomalies" if args.anomalies else "")
          + "), median time to "
          f"detect {'n/a' if med is None else f'{med / 60:.1f} min'}")
    for kind, k in report["by_kind"].items():
        m = k["median_time_to_detect_s"]
        print(f"  {kind:16s} {k['detected']}/{k['events']} detected, median "
              f"{'n/a' if m is None else f'{m / 60:.1f} min'}")
    if report["false_alerts_by_rule"]:
        print("  false alerts by rule: " + ", ".join(f"{r} {n}" for r, n in report["false_alerts_by_rule"].items()))
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from sentinel.stores.sqlite import SQLiteStore

    if not Path(args.db).exists():
        return fail(FileNotFoundError(f"no store at {args.db}"))
    with SQLiteStore(args.db) as store:
        alerts = store.alerts(None if args.state == "all" else args.state)
        if args.state == "open":
            alerts = [a for a in store.alerts() if a.state != "resolved"]
        if args.json:
            print(json.dumps([a.to_dict() for a in alerts], ensure_ascii=False, indent=1))
        else:
            _print_alerts(alerts)
            print(f"{len(alerts)} alert(s); store: {store.counts()}")
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from sentinel.stores.sqlite import SQLiteStore

    if not Path(args.db).exists():
        return fail(FileNotFoundError(f"no store at {args.db}"))
    with SQLiteStore(args.db) as store:
        for letter in store.dead_letters(args.limit):
            print(f"{iso(letter.received_ns)} {letter.describe()}  payload: {letter.payload[:120]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sentinel", description="Lifeline Sentinel 管网哨兵: water, heat and gas "
                                "network monitoring")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    rules = sub.add_parser("rules", help="work with rule files").add_subparsers(dest="rules_cmd", required=True)
    check = rules.add_parser("check", help="validate rule files; exits non-zero on any error")
    check.add_argument("files", nargs="*", help="rule files (default: the shipped defaults)")
    check.add_argument("--catalog", help="also show how many sensors/zones each rule selects")
    check.set_defaults(func=cmd_rules_check)
    from sentinel.rules_test_cli import add_rules_test_command
    add_rules_test_command(rules)

    def replay_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--catalog", required=True, help="sensor catalog (CSV or YAML)")
        sp.add_argument("--readings", required=True, help="readings CSV, long or wide form")
        sp.add_argument("--rules", nargs="+", help="rule files (default: shipped defaults)")
        sp.add_argument("--db", help="also write everything to this SQLite file")
        sp.add_argument("--batch-size", type=int, default=5000)
        sp.add_argument("--resolve-after", type=parse_duration, default=900.0,
                        help="auto-resolve an alert once cleared this long (default 15m)")
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        sp.add_argument("--report", help="write an HTML page with alerts over time (and labelled events)")
        sp.add_argument("--from-state", help="start from this saved state (`sentinel learn`, or a processor's "
                        "--state file) instead of cold")

    rp = sub.add_parser("replay", help="run rules over recorded readings")
    replay_args(rp)
    rp.set_defaults(func=cmd_replay)

    bt = sub.add_parser("backtest", help="replay and score alerts against labelled events")
    replay_args(bt)
    bt.add_argument("--events", required=True, help="events CSV: event_id,network,zone,kind,start,end")
    bt.add_argument("--grace", default="1h", help="an alert up to this long after an event's end still counts")
    bt.add_argument("--alerts-out", help="write every alert as CSV for other scorers")
    bt.add_argument("--anomalies", help="benign anomalies CSV (same columns as events; the simulator's "
                    "anomalies.csv): count the false alerts they raised")
    bt.set_defaults(func=cmd_backtest)

    from sentinel.learn_cli import add_learn_command
    add_learn_command(sub)

    from sentinel.influx_cli import add_influx_commands
    al = sub.add_parser("alerts", help="list alerts kept in a SQLite store")
    al.add_argument("--db", default="sentinel.sqlite")
    al.add_argument("--state", choices=["open", "firing", "acknowledged", "resolved", "all"], default="open")
    al.add_argument("--json", action="store_true")
    al.set_defaults(func=cmd_alerts)

    dl = sub.add_parser("dead-letters", help="the newest dead letters in a SQLite store, with their reasons")
    dl.add_argument("--db", default="sentinel.sqlite")
    dl.add_argument("--limit", type=int, default=50)
    dl.set_defaults(func=cmd_dead_letters)

    from sentinel.live_cli import add_live_commands

    add_live_commands(sub)
    add_influx_commands(sub)
    from sentinel.scaleout.cli import add_scaleout_commands

    add_scaleout_commands(sub)
    from sentinel.console.cli import add_console_commands

    add_console_commands(sub)
    from sentinel.leakage_cli import add_report_commands

    add_report_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

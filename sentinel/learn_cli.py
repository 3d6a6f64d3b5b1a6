"""`sentinel learn`: commission from a SCADA export, so the live processor does not start blind."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sentinel.deadletter import DeadLetter
from sentinel.errors import InputError, InputErrors, fail
from sentinel.readings import iso

SHOWN_DEAD_LETTERS = 5


def print_dead_letters(letters: Sequence[DeadLetter]) -> None:
    """The first few lines a history file could not give, with their reasons, on stderr."""
    for letter in letters[:SHOWN_DEAD_LETTERS]:
        print(f"dead letter: {letter.describe()}", file=sys.stderr)
    if len(letters) > SHOWN_DEAD_LETTERS:
        print(f"... and {len(letters) - SHOWN_DEAD_LETTERS:,} more dead letters", file=sys.stderr)


def _old_book(path: Path) -> dict | None:
    """The alert book of a state file being replaced: kept in the new one, so that the processor starting
    from it clears those alerts (its rules no longer hold them raised) rather than leave them open."""
    from rules import snapshot

    if not path.exists():
        return None
    try:
        extra = snapshot.extra_of(path.read_bytes())
    except Exception as exc:  # not a state file after all: nothing to carry over
        print(f"warning: {path}: not read as a saved state ({type(exc).__name__}); replaced", file=sys.stderr)
        return None
    return (extra or {}).get("alerts")


def cmd_learn(args: argparse.Namespace) -> int:
    from rules import snapshot
    from rules.loader import load_rules
    from sentinel.catalog import load_catalog
    from sentinel.learn import learn_file, weekday_rules
    from sentinel.progress import Progress

    out = Path(args.state)
    if out.exists() and not args.force:
        print(f"error: {out} exists (a running processor's state, with its open alerts?); "
              "pass --force to replace it", file=sys.stderr)
        return 2
    try:
        catalog = load_catalog(args.catalog)
        ruleset = load_rules([Path(p) for p in args.rules] if args.rules else None)
        reading = Progress("reading", enabled=not args.quiet)
        learning = Progress("learning", enabled=not args.quiet)
        result = learn_file(catalog, ruleset, args.readings, batch_size=args.batch_size,
                            on_read=reading.update, on_fed=learning.update)
    except (InputError, InputErrors, OSError) as exc:
        return fail(exc)
    learning.done()
    learned = result.learned
    print_dead_letters(result.dead_letters)
    if not learned.readings:
        print(f"error: {args.readings}: no readings of this catalog's sensors; nothing learned, {out} not written",
              file=sys.stderr)
        return 2
    snapshot.save(out, result.state, {"alerts": book} if (book := _old_book(out)) else None,
                  engine=result.engine)
    weekly = weekday_rules(result.engine)
    days = (learned.last_ns - learned.first_ns) / 86400e9
    if args.json:
        print(json.dumps({
            "state": str(out), "bytes": out.stat().st_size, "readings": learned.readings,
            "dead_letters": len(result.dead_letters), "first": iso(learned.first_ns), "last": iso(learned.last_ns),
            "weekday_rules": weekly,
            "zones": [{"zone": c.zone, "days": c.days, "weekdays_missing": c.missing, "ready": c.ready}
                      for c in result.coverage],
        }, ensure_ascii=False, indent=1))
        return 0
    print(f"learned {learned.readings:,} readings ({result.form} form, {len(result.dead_letters):,} dead letters) "
          f"from {iso(learned.first_ns)} to {iso(learned.last_ns)} ({days:.1f} days)")
    print(f"state: {out} ({out.stat().st_size / 1024:,.0f} kB); go live from it: "
          f"sentinel run --catalog {args.catalog} --state {out}" + (f" --rules {' '.join(args.rules)}" if args.rules
                                                                    else ""))
    if result.coverage:
        print(f"judged against the same weekday ({', '.join(weekly)}): a zone's weekday once it has been seen, "
              "then once the rule has learned its spread (the share learned, 100 %: judging at every hour)")
        for c in result.coverage:
            seen = f"weekdays not seen: {' '.join(c.missing)}" if c.missing else "every weekday seen"
            ready = "".join(f"; {rule} {100 * share:.0f} %" for rule, share in c.ready.items())
            print(f"  {c.zone:24s} {c.days:3d} day(s) of its boundary flow meters, {seen}{ready}")
    return 0


def add_learn_command(sub: argparse._SubParsersAction) -> None:
    lp = sub.add_parser("learn", help="learn the rules' baselines from recorded readings (commissioning) and "
                        "write the state file `sentinel run --state` starts from")
    lp.add_argument("--catalog", required=True, help="sensor catalog (CSV or YAML)")
    lp.add_argument("--readings", required=True, help="history: readings CSV, long or wide form, e.g. a SCADA export")
    lp.add_argument("--rules", nargs="+", help="rule files (default: shipped defaults); run must use the same")
    lp.add_argument("--state", required=True, help="state file to write")
    lp.add_argument("--force", action="store_true", help="replace an existing state file (its open alerts are "
                    "kept, and clear when the processor starts from the new one)")
    lp.add_argument("--batch-size", type=int, default=5000)
    lp.add_argument("--json", action="store_true", help="print JSON")
    lp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    lp.set_defaults(func=cmd_learn)

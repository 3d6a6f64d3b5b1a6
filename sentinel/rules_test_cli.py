"""`sentinel rules test FILE...`: unit tests for rule files, like `promtool test rules`.

Prints one line per test case and a summary (or JSON with --json); exit code 0 when everything passed,
1 when a case failed, 2 when a test file is invalid. The work is done by rules.testing; this module only
presents its results.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from rules.testing import CaseResult, FileResult, RunResult, run_files


def _case_lines(c: CaseResult, show_alerts: bool) -> list[str]:
    status = "PASS" if c.passed else "FAIL"
    out = [f"  {status}  {c.name}  (line {c.line}, {c.readings:,} readings, {c.seconds:.2f} s)"]
    for p in c.problems:
        out.append(f"        {c.file}:{p.line}: {c.name!r}: {p.message}")
    if c.alerts and (show_alerts or not c.passed):
        out.append(f"        alerts opened ({len(c.alerts)}):")
        out += [f"          {a['rule']} {a['network']}/{a['zone']} {a['subject']} {a['grade']} ({a['grade_zh']}) "
                f"opened {a['opened_offset']} ({a['opened']}), {a['state']}" for a in c.alerts]
    elif not c.alerts and not c.passed:
        out.append("        no alert opened")
    return out


def _file_lines(f: FileResult, show_alerts: bool) -> list[str]:
    if f.invalid:
        return [f"INVALID  {f.file}", *(f"  {e}" for e in f.errors)]
    out = [f.file]
    for c in f.cases:
        out += _case_lines(c, show_alerts)
    return out


def render_text(result: RunResult, show_alerts: bool = False) -> str:
    lines: list[str] = []
    for f in result.files:
        lines += _file_lines(f, show_alerts)
    s = result.summary()
    verdict = "SUCCESS" if result.exit_code == 0 else "FAILED"
    invalid = f", {s['invalid_files']} invalid file(s)" if s["invalid_files"] else ""
    lines.append(f"{verdict}: {s['files']} file(s), {s['cases']} test case(s): {s['passed']} passed, "
                 f"{s['failed']} failed{invalid}")
    return "\n".join(lines)


def cmd_rules_test(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    result = run_files(args.files)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=1), file=out)
    else:
        print(render_text(result, show_alerts=args.alerts), file=out)
    return result.exit_code


def add_rules_test_command(rules_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `test` under `sentinel rules`."""
    p = rules_subparsers.add_parser(
        "test", help="unit-test rule files against inputs and expected alerts (rules/tests/README.md)",
        description="Replay each test case's input through the real pipeline and compare the alerts it "
                    "opens with the expected ones. Exit 0: all passed; 1: a case failed; 2: an invalid test "
                    "file.")
    p.add_argument("files", nargs="+", metavar="TESTFILE", help="rule test files (YAML)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--alerts", action="store_true", help="list the alerts every case opened (failed cases "
                   "always do)")
    p.set_defaults(func=cmd_rules_test)
    return p

"""`sentinel report leakage`: daily leakage per water zone (DMA) from minimum night flow, against the target.

Reads a replay file or a SQLite store, prints the table (or JSON), and optionally writes the HTML page,
the `leakage_daily` table of a SQLite store and the `leakage` measurement of InfluxDB. The night window's
local time, the bucket and the stale hold come from the rules' settings (`--rules`, default the shipped
ones) unless the leakage config sets them, so the report and the live night-flow rule see the same night.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel.errors import InputError, InputErrors, fail

if TYPE_CHECKING:
    from sentinel.leakage import LeakageResult


def add_report_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `report leakage` on the top-level `sentinel` subcommands."""
    report = subparsers.add_parser("report", help="reports computed from recorded or stored readings")
    sub = report.add_subparsers(dest="report_cmd", required=True)
    lk = sub.add_parser("leakage", help="daily leakage per water zone from minimum night flow, vs the 9%% target")
    lk.add_argument("--catalog", required=True, help="sensor catalog (CSV or YAML)")
    src = lk.add_mutually_exclusive_group(required=True)
    src.add_argument("--readings", help="readings CSV, long or wide form")
    src.add_argument("--db", help="read the readings from this SQLite store instead")
    lk.add_argument("--config", help="leakage settings YAML (see deploy/leakage.example.yaml)")
    lk.add_argument("--rules", nargs="+", help="rule files whose settings give utc_offset_h, zone_bucket and "
                    "zone_stale (default: shipped defaults)")
    lk.add_argument("--out", help="write the HTML page here")
    lk.add_argument("--json", action="store_true", help="print JSON instead of the table")
    lk.add_argument("--write-db", help="upsert the daily figures into this SQLite store's leakage_daily table")
    lk.add_argument("--write-influx", action="store_true",
                    help="write the daily figures to InfluxDB's `leakage` measurement (SENTINEL_INFLUX_* settings)")
    lk.set_defaults(func=cmd_report_leakage)


def _compute(args: argparse.Namespace) -> LeakageResult:
    from ingest.replay import read_replay
    from rules.loader import load_rules
    from sentinel.catalog import load_catalog
    from sentinel.leakage import account
    from sentinel.leakage_config import DAY_S, load_leakage_config
    from sentinel.leakage_series import water_zones, zone_series
    from sentinel.leakage_store import read_store_readings

    catalog = load_catalog(args.catalog)
    config = load_leakage_config(args.config)
    zones = water_zones(catalog)
    config.check_zones({s.zone for s in catalog.sensors if s.network == "water"})
    settings = load_rules([Path(p) for p in args.rules] if args.rules else None).settings
    offset = settings.utc_offset_h if config.utc_offset_h is None else config.utc_offset_h
    step = config.bucket or settings.zone_bucket
    stale = config.stale or settings.zone_stale
    if step < 60 or DAY_S % step:
        raise InputError(f"bucket {step:g}s must be at least 1m and divide a day; set `bucket:` in the leakage config",
                         source=args.config, field="bucket")
    if args.db:
        batch = read_store_readings(args.db, catalog, sorted(i for z in zones.values() for v in z.values() for i in v))
        dead = 0
    else:
        data = read_replay(args.readings, catalog)
        batch, dead = data.batch, len(data.dead_letters)
    series = zone_series(catalog, batch, step_s=step, stale_s=stale, utc_offset_h=offset)
    result = account(series, config, utc_offset_h=offset, step_s=step)
    meterless = sorted({s.zone for s in catalog.sensors if s.network == "water"} - set(zones))
    if meterless:
        result.notes.append(f"no inlet flow meter, so not accounted: {', '.join(meterless)}")
    if zones and not series:
        result.notes.append("no readings of the water zones' meters")
    if dead:
        result.notes.append(f"{dead} reading row(s) could not be used (dead letters; see `sentinel replay`)")
    return result


def cmd_report_leakage(args: argparse.Namespace) -> int:
    try:
        result = _compute(args)
    except (InputError, InputErrors, OSError, ValueError) as exc:
        return fail(exc)
    from sentinel.leakage_report import format_table, write_leakage_report

    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(format_table(result))
    if args.out:
        source = args.readings or args.db
        write_leakage_report(args.out, result, title=f"Leakage 漏损 · {Path(source).name}")
        print(f"report: {args.out}", file=sys.stderr)
    if args.write_db:
        from sentinel.leakage_store import write_leakage_sqlite

        n = write_leakage_sqlite(args.write_db, result.days, result.target_pct)
        print(f"leakage_daily: {n} row(s) in {args.write_db}", file=sys.stderr)
    if args.write_influx:
        return _write_influx(result)
    return 0


def _write_influx(result: LeakageResult) -> int:
    from sentinel.catalog import Catalog
    from sentinel.leakage_store import write_leakage_influx
    from sentinel.settings import Settings
    from sentinel.stores.influx import from_settings

    try:
        store = from_settings(Settings(), Catalog.from_sensors([]))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with store:
        n = write_leakage_influx(store, result.days, result.target_pct)
        stats = store.stats()
    if stats["spooled"] or stats["rejected"]:
        print(f"InfluxDB: {n} point(s) handed over, {stats['spooled']} spooled, {stats['rejected']} rejected "
              f"({stats['last_error']})", file=sys.stderr)
        return 1
    print(f"InfluxDB: {n} leakage point(s) written", file=sys.stderr)
    return 0

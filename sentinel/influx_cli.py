"""`sentinel influx init` and `sentinel influx check`: set up and inspect the InfluxDB side through its API.

`init` is idempotent - it creates what is missing and updates what differs, never duplicates: the raw
bucket (if missing), the long-retention bucket for 1-minute means (default ``sentinel_1m``, 400 days)
and a Flux task (Tasks API) that every minute aggregates ``readings`` into 1-minute means there. The
task recomputes the last `--lookback` of whole minutes on every run, so points that arrive late (from
the spool after an outage) are folded in; same series + time overwrites.

Configuration comes from the SENTINEL_INFLUX_* settings; flags override. The token comes only from
SENTINEL_INFLUX_TOKEN or a token file (never a flag: it would show in the process list) and is never
printed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from rules.durations import parse_duration
from sentinel.stores.influx_schema import (
    ALERTS,
    DEAD_LETTERS,
    DETECTIONS,
    DOWNSAMPLE_EVERY,
    DOWNSAMPLE_RETENTION_DAYS,
    DOWNSAMPLE_TASK,
    READINGS,
)

COUNT_FIELD = {READINGS: "quality", DETECTIONS: "severity", ALERTS: "state", DEAD_LETTERS: "detail"}


@dataclass(frozen=True)
class Target:
    url: str
    org: str
    bucket: str
    token: str  # plain: only ever handed to the client


def _flux_duration(seconds: float) -> str:
    return f"{int(seconds)}s"


def downsample_flux(name: str, org: str, bucket: str, target: str, every_s: float, lookback_s: float,
                    offset_s: float = 5.0) -> str:
    """The task: mean of `readings`.value per whole minute over the last `lookback_s`, written to `target`
    with the same tags, timestamped at the minute's start."""
    every, lookback = _flux_duration(every_s), _flux_duration(lookback_s)
    return f'''import "date"

option task = {{name: "{name}", every: {every}, offset: {_flux_duration(offset_s)}}}

stop = date.truncate(t: now(), unit: 1m)
start = date.sub(d: {lookback}, from: stop)

from(bucket: "{bucket}")
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "{READINGS}" and r._field == "value")
    |> aggregateWindow(every: 1m, fn: mean, createEmpty: false, timeSrc: "_start")
    |> to(bucket: "{target}", org: "{org}")
'''


def _client(t: Target):
    from influxdb_client import InfluxDBClient

    return InfluxDBClient(url=t.url, token=t.token, org=t.org, timeout=30_000)


def _org_id(client, org: str) -> str:
    orgs = client.organizations_api().find_organizations(org=org)
    if not orgs:
        raise LookupError(f"InfluxDB has no organization {org!r}")
    return orgs[0].id


def _retention_s(bucket) -> int:
    rules = bucket.retention_rules or []
    return int(rules[0].every_seconds or 0) if rules else 0


def find_bucket(client, org_id: str, name: str):
    """The bucket called `name`, or None (the API answers 404 rather than an empty list)."""
    from influxdb_client.rest import ApiException

    try:
        found = client.buckets_api().find_buckets(name=name, org_id=org_id).buckets
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found[0] if found else None


def ensure_bucket(client, org_id: str, name: str, retention_s: int | None) -> str:
    """Create `name` if missing; set its retention when `retention_s` is given (0 = forever).
    Returns "created", "updated" or "unchanged"."""
    from influxdb_client.domain.bucket_retention_rules import BucketRetentionRules

    api = client.buckets_api()
    bucket = find_bucket(client, org_id, name)
    rules = [BucketRetentionRules(type="expire", every_seconds=retention_s)] if retention_s else []
    if bucket is None:
        api.create_bucket(bucket_name=name, org=org_id, retention_rules=rules,
                          description="Lifeline Sentinel")
        return "created"
    if retention_s is None or _retention_s(bucket) == retention_s:
        return "unchanged"
    bucket.retention_rules = rules
    api.update_bucket(bucket)
    return "updated"


def ensure_task(client, org_id: str, name: str, flux: str) -> tuple[str, str]:
    """Create or update the task called `name` (extra copies of it are deleted): (action, task id)."""
    from influxdb_client.domain.task_create_request import TaskCreateRequest
    from influxdb_client.domain.task_update_request import TaskUpdateRequest

    api = client.tasks_api()
    found = [t for t in api.find_tasks(name=name, org_id=org_id) if t.name == name]
    if not found:
        task = api.create_task(task_create_request=TaskCreateRequest(
            org_id=org_id, flux=flux, status="active", description="Lifeline Sentinel: 1-minute means"))
        return "created", task.id
    keep, *extra = found
    for t in extra:
        api.delete_task(t.id)
    if keep.flux == flux and keep.status == "active" and not extra:
        return "unchanged", keep.id
    api.update_task_request(keep.id, TaskUpdateRequest(flux=flux, status="active"))
    return "updated", keep.id


# -- commands --------------------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> Target:
    from sentinel.settings import Settings
    from sentinel.stores.influx import resolve_token

    s = Settings()
    token_file = args.token_file or s.influx_token_file
    token = None if args.token_file else s.influx_token
    return Target(args.url or s.influx_url, args.org or s.influx_org, args.bucket or s.influx_bucket,
                  resolve_token(token, token_file).get_secret_value())


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def _api_error(exc: Exception, t: Target) -> str:
    status = getattr(exc, "status", None)
    if status in (401, 403):
        return (f"InfluxDB at {t.url} refused the token for org {t.org!r} / bucket {t.bucket!r} (HTTP {status}); "
                "check SENTINEL_INFLUX_TOKEN or the token file")
    return f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"


def cmd_init(args: argparse.Namespace) -> int:
    from sentinel.settings import Settings

    try:
        t = _target(args)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    target = args.downsample_bucket or Settings().influx_downsample_bucket
    retention_s = int(parse_duration(args.retention))
    flux = downsample_flux(args.task_name, t.org, t.bucket, target, parse_duration(args.every),
                           parse_duration(args.lookback))
    try:
        with _client(t) as client:
            org_id = _org_id(client, t.org)
            print(f"bucket {t.bucket!r}: {ensure_bucket(client, org_id, t.bucket, None)}")
            print(f"bucket {target!r} (retention {args.retention}): "
                  f"{ensure_bucket(client, org_id, target, retention_s)}")
            action, task_id = ensure_task(client, org_id, args.task_name, flux)
            print(f"task {args.task_name!r} ({task_id}, every {args.every}, {t.bucket} -> {target}): {action}")
    except Exception as exc:
        return _fail(_api_error(exc, t))
    return 0


def count_points(client, org: str, bucket: str, hours: float) -> dict[str, int]:
    """Points per measurement in the last `hours` (0: all time)."""
    start = f"-{int(hours * 3600)}s" if hours > 0 else "0"
    cond = " or ".join(f'(r._measurement == "{m}" and r._field == "{f}")' for m, f in COUNT_FIELD.items())
    flux = (f'from(bucket: "{bucket}") |> range(start: {start}) |> filter(fn: (r) => {cond}) '
            '|> group(columns: ["_measurement"]) |> count()')
    counts = dict.fromkeys(COUNT_FIELD, 0)
    for table in client.query_api().query(flux, org=org):
        for rec in table.records:
            counts[rec.get_measurement()] = int(rec.get_value())
    return counts


def cmd_check(args: argparse.Namespace) -> int:
    from sentinel.settings import Settings

    try:
        t = _target(args)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    target = args.downsample_bucket or Settings().influx_downsample_bucket
    problems = 0
    with _client(t) as client:
        if not client.ping():
            return _fail(f"InfluxDB at {t.url} does not answer /ping")
        print(f"InfluxDB {t.url}: pass ({client.version()})")
        try:
            org_id = _org_id(client, t.org)
            print(f"token: accepted for org {t.org!r}")
            for name, required in ((t.bucket, True), (target, False)):
                found = find_bucket(client, org_id, name)
                if found is not None:
                    days = _retention_s(found) / 86400
                    print(f"bucket {name!r}: present, retention {f'{days:g} days' if days else 'forever'}")
                else:
                    print(f"bucket {name!r}: MISSING (run `sentinel influx init`)")
                    problems += required
            tasks = [x for x in client.tasks_api().find_tasks(name=args.task_name, org_id=org_id)
                     if x.name == args.task_name]
            if tasks:
                task = tasks[0]
                last = f"last run {task.last_run_status}" if task.last_run_status else "no run yet"
                print(f"task {task.name!r}: {task.status}, every {task.every}, {last}")
            else:
                print(f"task {args.task_name!r}: MISSING (run `sentinel influx init`)")
            counts = count_points(client, t.org, t.bucket, args.hours)
            span = f"last {args.hours:g} h" if args.hours > 0 else "all time"
            print(f"points in {t.bucket!r} ({span}): " + ", ".join(f"{m} {n:,}" for m, n in counts.items()))
        except Exception as exc:
            print(f"error: {_api_error(exc, t)}", file=sys.stderr)
            return 1
    return 1 if problems else 0


def add_influx_commands(sub: argparse._SubParsersAction) -> None:
    influx = sub.add_parser("influx", help="InfluxDB: create buckets and the downsampling task, check health")
    cmds = influx.add_subparsers(dest="influx_cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help="default SENTINEL_INFLUX_URL")
        p.add_argument("--org", help="default SENTINEL_INFLUX_ORG")
        p.add_argument("--bucket", help="raw bucket; default SENTINEL_INFLUX_BUCKET")
        p.add_argument("--token-file", help="file holding the token; default SENTINEL_INFLUX_TOKEN(_FILE)")
        p.add_argument("--downsample-bucket", help="default SENTINEL_INFLUX_DOWNSAMPLE_BUCKET (sentinel_1m)")
        p.add_argument("--task-name", default=DOWNSAMPLE_TASK)

    init = cmds.add_parser("init", help="create/update buckets and the 1-minute downsampling task (idempotent)")
    common(init)
    init.add_argument("--retention", default=f"{DOWNSAMPLE_RETENTION_DAYS}d",
                      help="retention of the downsampled bucket (default 400d)")
    init.add_argument("--every", default=DOWNSAMPLE_EVERY, help="how often the task runs (default 1m)")
    init.add_argument("--lookback", default="15m",
                      help="whole minutes recomputed on every run, to fold in late points (default 15m)")
    init.set_defaults(func=cmd_init)

    check = cmds.add_parser("check", help="health, token, buckets, task, point counts; non-zero on a problem")
    common(check)
    check.add_argument("--hours", type=float, default=24.0, help="count points of the last N hours (0: all)")
    check.set_defaults(func=cmd_check)

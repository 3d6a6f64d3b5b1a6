"""Live commands: `sentinel run` (the processor), `sentinel demo`, `sentinel simulate`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel.errors import InputError, InputErrors

if TYPE_CHECKING:
    from sentinel.catalog import Catalog
    from sentinel.console.server import ConsoleServer
    from sentinel.settings import Settings
    from sentinel.wiring import LiveApp

log = logging.getLogger(__name__)


def cmd_run(args: argparse.Namespace) -> int:
    from sentinel.catalog import load_catalog
    from sentinel.settings import Settings
    from sentinel.wiring import build_live

    overrides = {k: v for k, v in {
        "catalog": args.catalog, "rules": args.rules, "db": args.db, "state": args.state,
        "mqtt_host": args.mqtt_host, "mqtt_port": args.mqtt_port, "mqtt_username": args.mqtt_username,
        "mqtt_client_id": args.client_id, "mqtt_shared_group": args.shared_group, "webhook_url": args.webhook,
        "console": args.console, "console_ops_db": args.console_ops_db, "routing": args.routing,
    }.items() if v is not None}
    settings = Settings(**overrides)
    if settings.catalog is None:
        print("error: no catalog (--catalog or SENTINEL_CATALOG)", file=sys.stderr)
        return 2
    try:
        catalog = load_catalog(settings.catalog)
        app = build_live(settings, catalog)
    except (InputError, InputErrors, OSError) as exc:
        print(f"error:\n{exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: app.runner.stop())
    signal.signal(signal.SIGINT, lambda *_: app.runner.stop())
    console = _start_console(settings, app, catalog) if settings.console else None
    app.runner.source.start()
    try:
        app.runner.run()
    finally:
        if console is not None:
            console.stop()
        app.close()
    log.info("stopped: %s", app.runner.pipeline.counters.as_dict())
    return 0


def _start_console(settings: Settings, app: LiveApp, catalog: Catalog) -> ConsoleServer:
    """The operator console beside the processor: it reads the SQLite store, acts through the loop."""
    from sentinel.console.embed import start_in_process

    if "sqlite" not in settings.store:
        raise SystemExit("error: the console reads the SQLite store: SENTINEL_STORE must include sqlite")
    return start_in_process(app.runner, catalog, store_path=settings.db, ops_db=settings.console_ops_db,
                            listen=settings.console, rule_files=settings.rules, silences=app.silences,
                            resolve_after_s=settings.resolve_after_s,
                            cookie_secure=settings.console_secure_cookie)


def cmd_demo(args: argparse.Namespace) -> int:
    import os

    from sentinel.demo import run_demo

    if not args.verbose:  # the demo speaks for itself; connection chatter only with -v
        logging.getLogger().setLevel(logging.WARNING)

    def auth(prefix: str) -> tuple[str, str] | None:
        user = os.environ.get(f"{prefix}_USERNAME")
        return (user, os.environ.get(f"{prefix}_PASSWORD", "")) if user else None

    return run_demo(workdir=Path(args.workdir) if args.workdir else None, mqtt=args.mqtt, embedded=args.embedded,
                    seed=args.seed, speed=args.speed, processor_auth=auth("SENTINEL_MQTT"),
                    device_auth=auth("SENTINEL_DEVICE"))


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.dispatch import simulate_file, write_result
    from simulators.publish import publish
    from simulators.scenario import default_scenario, preset
    from simulators.synthetic import generate

    if args.scenario:
        result = simulate_file(args.scenario, seed=args.seed)
    elif args.preset == "default" and args.days is not None:
        result = generate(default_scenario(seed=args.seed or 0, days=args.days))
    else:
        result = generate(preset(args.preset, seed=args.seed or 0))
    print(f"generated {len(result.readings):,} readings of {len(result.catalog)} sensors with "
          f"{len(result.events)} labelled events", file=sys.stderr)
    if args.out:
        paths = write_result(result, args.out, wide=args.wide)
        print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    if args.mqtt:
        host, _, port = args.mqtt.rpartition(":")

        def show(p) -> None:
            print(f"published {p.readings_sent:,}/{p.readings_total:,} readings, {p.messages_acked:,} acked",
                  file=sys.stderr)

        publish(result, host or "127.0.0.1", int(port), speed=args.speed, shift_to_now=args.shift_to_now,
                username=args.username, password=args.password, progress=show, batch=not args.single)
    if not args.out and not args.mqtt:
        print("nothing to do: give --out DIR and/or --mqtt HOST:PORT", file=sys.stderr)
        return 2
    return 0


def add_live_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="the live processor: MQTT in, rules, SQLite store, notifiers "
                         "(flags override SENTINEL_* environment variables)")
    run.add_argument("--catalog")
    run.add_argument("--rules", nargs="+")
    run.add_argument("--db")
    run.add_argument("--state", help="state file for warm restarts (engine baselines and open alerts)")
    run.add_argument("--mqtt-host")
    run.add_argument("--mqtt-port", type=int)
    run.add_argument("--mqtt-username", help="password via SENTINEL_MQTT_PASSWORD")
    run.add_argument("--client-id")
    run.add_argument("--shared-group", help="join a shared subscription to split the stream between processors")
    run.add_argument("--webhook", help="POST alert changes as JSON to this URL")
    run.add_argument("--routing", help="routing YAML: grouping, inhibition, escalation, receivers")
    run.add_argument("--console", metavar="HOST:PORT", help="serve the operator console and API here")
    run.add_argument("--console-ops-db", help="the console's users, audit trail, silences (SENTINEL_CONSOLE_OPS_DB)")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="simulated burst -> MQTT -> engine -> alert, on this machine")
    demo.add_argument("--workdir", help="where the catalog and SQLite store go (default: a temp dir)")
    demo.add_argument("--mqtt", help="use this broker HOST:PORT instead of starting one (credentials from "
                      "SENTINEL_MQTT_USERNAME/PASSWORD and SENTINEL_DEVICE_USERNAME/PASSWORD)")
    demo.add_argument("--embedded", action="store_true", help="use the embedded broker even if Mosquitto exists")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--speed", type=float, default=120.0, help="data time / wall time (default 120x)")
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("simulate", help="synthetic water/heat/gas data with labelled events")
    sim.add_argument("--scenario", help="scenario YAML (see simulators/scenarios/example.yaml)")
    sim.add_argument("--preset", choices=["default", "demo"], default="default")
    sim.add_argument("--seed", type=int)
    sim.add_argument("--days", type=float)
    sim.add_argument("--out", help="write catalog.csv, readings.csv, events.csv here")
    sim.add_argument("--wide", action="store_true", help="also write readings_wide.csv")
    sim.add_argument("--mqtt", help="publish to this broker HOST:PORT")
    sim.add_argument("--speed", type=float, default=0.0, help="1 = real time, 60 = 60x, 0 = as fast as possible")
    sim.add_argument("--shift-to-now", action="store_true")
    sim.add_argument("--single", action="store_true", help="one reading per message instead of batches")
    sim.add_argument("--username")
    sim.add_argument("--password")
    sim.set_defaults(func=cmd_simulate)

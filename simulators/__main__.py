"""Command line: `python -m simulators generate ...` writes a replay set, `... publish ...` sends to MQTT."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from simulators.files import write_replay
from simulators.publish import PublishProgress, publish
from simulators.scenario import PRESETS, Scenario, default_scenario, load_scenario, preset
from simulators.synthetic import generate


def _scenario(args: argparse.Namespace) -> Scenario:
    if args.scenario:
        sc = load_scenario(args.scenario)
        return sc if args.seed is None else sc.model_copy(update={"seed": args.seed})
    if args.preset == "default" and args.days is not None:
        return default_scenario(seed=args.seed or 0, days=args.days)
    return preset(args.preset, seed=args.seed or 0)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("generate", "publish"):
        p = sub.add_parser(name)
        p.add_argument("--scenario", help="scenario YAML (default: a built-in preset)")
        p.add_argument("--preset", choices=sorted(PRESETS), default="default")
        p.add_argument("--seed", type=int)
        p.add_argument("--days", type=float, help="length of the default preset")
    g = sub.choices["generate"]
    g.add_argument("--out", required=True, help="directory for catalog.csv, readings.csv, events.csv")
    g.add_argument("--wide", action="store_true", help="also write readings_wide.csv")
    p = sub.choices["publish"]
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--speed", type=float, default=0.0, help="1 = real time, 60 = 60x, 0 = no pacing")
    p.add_argument("--shift-to-now", action="store_true", help="map the data's start to now")
    p.add_argument("--single", action="store_true", help="one reading per message instead of zone batches")
    p.add_argument("--client-id", default="sentinel-sim")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    result = generate(_scenario(args))
    t1 = time.perf_counter()
    print(f"generated {len(result.readings)} readings of {len(result.catalog)} sensors, "
          f"{len(result.events)} events in {t1 - t0:.2f} s", file=sys.stderr)
    if args.command == "generate":
        paths = write_replay(result, args.out, wide=args.wide)
        print(f"wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - t1:.2f} s",
              file=sys.stderr)
        return 0

    def show(p: PublishProgress) -> None:
        print(f"\r{p.messages_sent}/{p.messages_total} messages, {p.readings_sent} readings, "
              f"{p.messages_acked} acked", end="", file=sys.stderr)

    try:  # Ctrl-C interrupts publish(), whose cleanup disconnects from the broker
        final = publish(result, args.host, args.port, batch=not args.single, speed=args.speed,
                        shift_to_now=args.shift_to_now, client_id=args.client_id, progress=show)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    print(f"\ndone: {final.messages_acked} messages acknowledged in {final.elapsed_s:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

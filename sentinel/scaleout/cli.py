"""Commands of the Kafka path: `sentinel worker`, `sentinel bridge`, `sentinel kafka init|publish|learn`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from sentinel.errors import InputError, InputErrors, fail
from sentinel.readings import iso

log = logging.getLogger(__name__)


def _settings(args: argparse.Namespace, **extra: object):
    from sentinel.settings import Settings

    overrides = {k: v for k, v in {
        "catalog": getattr(args, "catalog", None), "rules": getattr(args, "rules", None),
        "kafka_bootstrap": getattr(args, "kafka", None), "kafka_partitions": getattr(args, "partitions", None),
        "kafka_prefix": getattr(args, "prefix", None), **extra,
    }.items() if v is not None}
    return Settings(**overrides)


def _catalog(settings) -> object:
    from sentinel.catalog import load_catalog

    if settings.catalog is None:
        raise InputError("no catalog (--catalog or SENTINEL_CATALOG)")
    return load_catalog(settings.catalog)


def cmd_worker(args: argparse.Namespace) -> int:
    from rules.loader import load_rules
    from sentinel.scaleout.topics import Topics, ensure_topics_sync
    from sentinel.scaleout.worker import StoreThread, WorkerConfig, build_app
    from sentinel.wiring import build_notifiers, build_store

    extra = {"db": args.db, "worker_app_id": args.app_id, "store": args.store}
    if args.no_sink:
        extra["worker_sink"] = False
    try:
        s = _settings(args, **extra)
        catalog = _catalog(s)
        ruleset = load_rules(s.rules or None)
    except (InputError, InputErrors, OSError) as exc:
        print(f"error:\n{exc}", file=sys.stderr)
        return 2
    cfg = WorkerConfig.from_settings(s)
    ensure_topics_sync(cfg.bootstrap, Topics(s.kafka_prefix).all, cfg.partitions, cfg.replication)
    store = StoreThread(lambda: build_store(s, catalog)) if cfg.sink else None
    notifiers = build_notifiers(s, console=None) if cfg.sink else []
    app = build_app(cfg, catalog, ruleset, store=store, notifiers=notifiers)
    import faust

    worker = faust.Worker(app, loglevel=logging.getLevelName(logging.getLogger().level).lower(), quiet=True,
                          redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        if store is not None:
            store.close()
    return 0


def cmd_bridge(args: argparse.Namespace) -> int:
    from ingest.decoders import Decoder
    from ingest.kafka_bridge import KafkaBridge
    from ingest.kafka_publish import ZoneProducer
    from ingest.mqtt_source import MqttSource
    from ingest.topics import TopicScheme
    from sentinel.heartbeat import Heartbeat
    from sentinel.scaleout.topics import Topics, ensure_topics_sync

    extra = {"mqtt_host": args.mqtt_host, "mqtt_port": args.mqtt_port, "mqtt_username": args.mqtt_username,
             "mqtt_client_id": args.client_id, "mqtt_shared_group": args.shared_group}
    try:
        s = _settings(args, **extra)
        catalog = _catalog(s)
    except (InputError, InputErrors, OSError) as exc:
        print(f"error:\n{exc}", file=sys.stderr)
        return 2
    topics = Topics(s.kafka_prefix)
    ensure_topics_sync(s.kafka_bootstrap, topics.all, s.kafka_partitions, s.kafka_replication)
    scheme = TopicScheme(s.mqtt_prefix)
    source = MqttSource(s.mqtt_host, s.mqtt_port, client_id=s.mqtt_client_id, shared_group=s.mqtt_shared_group,
                        username=s.mqtt_username,
                        password=s.mqtt_password.get_secret_value() if s.mqtt_password else None,
                        protocol=s.mqtt_protocol, scheme=scheme, max_pending=max(1000, s.poll_max))
    producer = ZoneProducer(s.kafka_bootstrap, catalog, topics, tick_every_s=s.kafka_tick_every_s,
                            client_id=s.mqtt_client_id, timeout_s=s.kafka_timeout_s)
    bridge = KafkaBridge(source, Decoder(catalog, scheme, max_future_s=s.max_future_s), producer,
                         poll_max=s.poll_max, poll_timeout_s=s.poll_timeout_s, stats_every_s=s.stats_every_s,
                         heartbeat=Heartbeat(s.heartbeat_file))
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop())
    signal.signal(signal.SIGINT, lambda *_: bridge.stop())

    async def main() -> None:
        await producer.start()
        try:
            await bridge.run()
        finally:
            await producer.stop()

    source.start()
    log.info("bridge: MQTT %s:%d -> Kafka %s (%s), %d zones", s.mqtt_host, s.mqtt_port, s.kafka_bootstrap,
             topics.readings, len(catalog.zones))
    try:
        asyncio.run(main())
    finally:
        source.stop()
    log.info("bridge stopped: %d messages, %d readings, %d dead letters", bridge.messages, bridge.readings,
             bridge.dead_letters)
    return 0


def cmd_kafka_init(args: argparse.Namespace) -> int:
    from sentinel.scaleout.topics import Topics, ensure_topics_sync

    s = _settings(args)
    topics = Topics(s.kafka_prefix)
    ensure_topics_sync(s.kafka_bootstrap, topics.all, s.kafka_partitions, s.kafka_replication)
    print(f"topics ready on {s.kafka_bootstrap}: {', '.join(topics.all)} ({s.kafka_partitions} partitions)")
    return 0


def cmd_kafka_publish(args: argparse.Namespace) -> int:
    """A replay file onto the readings topic, as the bridge would send it (zone keys, ticks)."""
    from ingest.kafka_publish import ZoneProducer
    from ingest.replay import read_replay
    from sentinel.progress import Progress
    from sentinel.scaleout.topics import Topics, ensure_topics_sync

    try:
        s = _settings(args)
        catalog = _catalog(s)
    except (InputError, InputErrors, OSError) as exc:
        print(f"error:\n{exc}", file=sys.stderr)
        return 2
    topics = Topics(s.kafka_prefix)
    ensure_topics_sync(s.kafka_bootstrap, topics.all, s.kafka_partitions, s.kafka_replication)

    reading = Progress("reading", enabled=not args.quiet)
    data = read_replay(Path(args.readings), catalog, progress=lambda done, total: reading.update(done, total))
    reading.done(f"{len(data.batch):,} readings, {len(data.dead_letters)} dead letters")

    async def main() -> int:
        producer = ZoneProducer(s.kafka_bootstrap, catalog, topics, tick_every_s=s.kafka_tick_every_s)
        progress = Progress("publish", enabled=not args.quiet)
        async with producer:
            if data.dead_letters:
                await producer.send_dead_letters(data.dead_letters)
            for chunk in data.batch.split(args.batch_size):
                await producer.send_batch(chunk)
                await producer.tick(force=args.tick_every_batch)
                progress.update(producer.readings, len(data.batch))
            await producer.tick(force=True)
        progress.done()
        print(f"published {producer.readings} readings in {producer.records} records, {producer.ticks} ticks, "
              f"{len(data.dead_letters)} dead letters to {topics.readings} on {s.kafka_bootstrap}")
        return 0

    return asyncio.run(main())


def cmd_kafka_learn(args: argparse.Namespace) -> int:
    """Commission the workers from history: each zone's learned state onto the zone-state changelog."""
    from aiokafka.errors import KafkaError

    from ingest.replay import read_replay
    from rules.loader import load_rules
    from sentinel.learn_cli import print_dead_letters
    from sentinel.progress import Progress
    from sentinel.scaleout.learn import (
        alert_books,
        group_members,
        learn_zones,
        read_changelog,
        workers_wrote,
        write_changelog,
    )
    from sentinel.scaleout.topics import Topics, changelog_topic, ensure_topics_sync

    try:
        s = _settings(args, worker_app_id=args.app_id)
        catalog = _catalog(s)
        ruleset = load_rules(s.rules or None)
    except (InputError, InputErrors, OSError) as exc:
        return fail(exc)
    app, bootstrap, topic = s.worker_app_id, s.kafka_bootstrap, changelog_topic(s.worker_app_id)

    def running() -> str | None:
        n = asyncio.run(group_members(bootstrap, app, s.kafka_timeout_s))
        return (f"{n} worker(s) of app {app!r} are running: they hold their zones in memory and would not see "
                "the learned state, then overwrite it; stop them first") if n else None

    try:
        if refusal := running():
            print(f"error: {refusal}", file=sys.stderr)
            return 2
        ensure_topics_sync(bootstrap, Topics(s.kafka_prefix).all, s.kafka_partitions, s.kafka_replication)
        ensure_topics_sync(bootstrap, (topic,), s.kafka_partitions, s.kafka_replication,
                           configs={"cleanup.policy": "compact"})
        saved = asyncio.run(read_changelog(bootstrap, topic, s.kafka_timeout_s))
        if workers_wrote(saved) and not args.force:
            print(f"error: workers of app {app!r} have evaluated readings with the state in {topic}; pass --force "
                  "to replace each zone's state with the learned one (their open alerts then clear on start)",
                  file=sys.stderr)
            return 2
        reading = Progress("reading", enabled=not args.quiet)
        data = read_replay(Path(args.readings), catalog, progress=lambda done, total: reading.update(done, total))
        reading.done(f"{len(data.batch):,} readings, {len(data.dead_letters):,} dead letters")
        print_dead_letters(data.dead_letters)
        if not len(data.batch):
            print(f"error: {args.readings}: no readings of this catalog's sensors; nothing learned", file=sys.stderr)
            return 2
        learning = Progress("learning", enabled=not args.quiet)
        states = learn_zones(catalog, ruleset, data.batch, resolve_after_s=s.resolve_after_s,
                             books=alert_books(saved, catalog), progress=learning.update)
        learning.done()
        if refusal := running():  # started while we learned
            print(f"error: {refusal}; nothing written", file=sys.stderr)
            return 2
        asyncio.run(write_changelog(bootstrap, topic, states, s.kafka_timeout_s))
    except (InputError, InputErrors, OSError) as exc:
        return fail(exc)
    except (KafkaError, RuntimeError) as exc:  # broker away, partition counts that differ, a state too large
        print(f"error: Kafka at {bootstrap}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    t = data.batch.time_ns
    print(f"learned {len(data.batch):,} readings from {iso(int(t[0]))} to {iso(int(t[-1]))}; {len(states)} zone "
          f"state(s), {sum(map(len, states.values())) / 1024:,.0f} kB, written to {topic} on {bootstrap}. "
          f"Workers started with --app-id {app} begin from them.")
    return 0


def add_scaleout_commands(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser, *, catalog: bool = True) -> None:
        if catalog:
            p.add_argument("--catalog", help="sensor catalog (CSV or YAML); default SENTINEL_CATALOG")
        p.add_argument("--kafka", help="Kafka bootstrap host:port (SENTINEL_KAFKA_BOOTSTRAP, 127.0.0.1:9092)")
        p.add_argument("--partitions", type=int, help="partitions per topic (SENTINEL_KAFKA_PARTITIONS, 8)")
        p.add_argument("--prefix", help="topic prefix (SENTINEL_KAFKA_PREFIX, sentinel)")

    w = sub.add_parser("worker", help="a Faust worker: zone pipelines on its share of the Kafka partitions")
    common(w)
    w.add_argument("--rules", nargs="*", help="rule files (default: the shipped defaults)")
    w.add_argument("--app-id", help="Faust app id; workers with the same id share the zones")
    w.add_argument("--db", help="SQLite store of the sink (SENTINEL_DB)")
    w.add_argument("--store", help='"sqlite", "influx" or "sqlite,influx" (SENTINEL_STORE)')
    w.add_argument("--no-sink", action="store_true", help="only evaluate; leave the output topics to others")
    w.set_defaults(func=cmd_worker)

    b = sub.add_parser("bridge", help="MQTT -> Kafka: sensor messages onto the readings topic, keyed by zone")
    common(b)
    b.add_argument("--mqtt-host")
    b.add_argument("--mqtt-port", type=int)
    b.add_argument("--mqtt-username")
    b.add_argument("--client-id")
    b.add_argument("--shared-group", help="MQTT shared subscription group, to run several bridges")
    b.set_defaults(func=cmd_bridge)

    k = sub.add_parser("kafka", help="Kafka topics of the scale-out").add_subparsers(dest="kafka_cmd", required=True)
    ki = k.add_parser("init", help="create the topics (idempotent; checks partition counts)")
    common(ki, catalog=False)
    ki.set_defaults(func=cmd_kafka_init)
    kp = k.add_parser("publish", help="send a replay file to the readings topic (zone keys and ticks)")
    common(kp)
    kp.add_argument("--readings", required=True, help="replay CSV (long or wide)")
    kp.add_argument("--batch-size", type=int, default=5000)
    kp.add_argument("--tick-every-batch", action="store_true",
                    help="tick after every batch, not every SENTINEL_KAFKA_TICK_EVERY_S")
    kp.add_argument("-q", "--quiet", action="store_true")
    kp.set_defaults(func=cmd_kafka_publish)
    kl = k.add_parser("learn", help="commission the workers from history: each zone's learned state where "
                      "they restore it (before they first start)")
    common(kl)
    kl.add_argument("--readings", required=True, help="history: replay CSV (long or wide), e.g. a SCADA export")
    kl.add_argument("--rules", nargs="+", help="rule files (default: the shipped defaults); workers must use the same")
    kl.add_argument("--app-id", help="the workers' Faust app id (SENTINEL_WORKER_APP_ID)")
    kl.add_argument("--force", action="store_true", help="replace the state stopped workers left (their open "
                    "alerts are kept in it, and clear when a worker restores it)")
    kl.add_argument("-q", "--quiet", action="store_true")
    kl.set_defaults(func=cmd_kafka_learn)

"""Assembly of the live processor from settings: one place that knows every concrete adapter."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import partial
from typing import TextIO

import paho.mqtt.client as mqtt

from alerts.notifiers import ConsoleNotifier, MqttNotifier, Notifier, ThreadedNotifier, WebhookNotifier
from alerts.routing.silences import SilenceBook
from ingest.decoders import Decoder
from ingest.mqtt_source import MqttSource
from ingest.topics import TopicScheme
from rules.loader import load_rules
from sentinel.catalog import Catalog
from sentinel.live import LiveRunner
from sentinel.pipeline import Pipeline
from sentinel.rules_watch import RulesWatcher
from sentinel.settings import Settings
from sentinel.stores.base import Store
from sentinel.stores.sqlite import SQLiteStore

log = logging.getLogger(__name__)


@dataclass
class LiveApp:
    runner: LiveRunner
    alert_client: mqtt.Client | None = None
    closers: list = field(default_factory=list)
    silences: SilenceBook = field(default_factory=SilenceBook)  # what the console edits, routing honours

    def close(self) -> None:
        self.runner.source.stop()
        self.runner.pipeline.close()
        if self.alert_client is not None:
            self.alert_client.loop_stop()
            self.alert_client.disconnect()


def _alert_client(s: Settings) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"{s.mqtt_client_id}-alerts-{os.getpid()}")
    if s.mqtt_username:
        client.username_pw_set(s.mqtt_username, s.mqtt_password.get_secret_value() if s.mqtt_password else None)
    client.reconnect_delay_set(1, 30)
    client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=30)
    client.loop_start()
    return client


def build_store(s: Settings, catalog: Catalog) -> Store:
    """The stores `s.store` names: SQLite alone (the default), InfluxDB alone, or both behind a MultiStore
    (SQLite first: the console reads it). Points InfluxDB rejects become dead letters in SQLite when it is
    there, else in InfluxDB's own `dead_letters` measurement."""
    stores: list[Store] = []
    sqlite = SQLiteStore(s.db, catalog) if "sqlite" in s.store else None
    if sqlite is not None:
        stores.append(sqlite)
    if "influx" in s.store:
        from sentinel.stores.influx import from_settings

        influx = from_settings(s, catalog, on_dead_letter=sqlite.write_dead_letters if sqlite else None)
        if sqlite is None:
            influx.on_dead_letter = influx.write_dead_letters
        stores.append(influx)
    if len(stores) == 1:
        return stores[0]
    from sentinel.stores.multi import MultiStore

    return MultiStore(*stores)


def _warm(s: Settings, pipeline: Pipeline) -> None:
    """Learn baselines from recent InfluxDB history (only when no state file was restored)."""
    from influxdb_client import InfluxDBClient

    from sentinel.stores.influx import resolve_token
    from sentinel.warm import warm_start

    token = resolve_token(s.influx_token, s.influx_token_file).get_secret_value()
    with InfluxDBClient(url=s.influx_url, token=token, org=s.influx_org, timeout=int(s.influx_timeout_s * 1000)) as c:
        try:
            warm_start(pipeline.engine, pipeline.state, c, s.influx_org, s.influx_bucket, s.influx_warm_hours)
        except Exception as exc:  # a cold start is worse than a warm one, not fatal
            log.error("warm start from InfluxDB failed, starting cold: %s: %s", type(exc).__name__, exc)
            pipeline.state = pipeline.engine.new_state()


def _notifiers(s: Settings, console: TextIO | None,
               silences: SilenceBook | None = None) -> tuple[list[Notifier], mqtt.Client | None]:
    notifiers: list[Notifier] = [ConsoleNotifier(stream=console)]
    alert_client = None
    if s.publish_alerts:
        alert_client = _alert_client(s)
        notifiers.append(MqttNotifier(alert_client, prefix=TopicScheme(s.mqtt_prefix).alerts_root))
    webhook_url = s.webhook_url.get_secret_value() if s.webhook_url is not None else ""
    if webhook_url:
        notifiers.append(ThreadedNotifier(WebhookNotifier(webhook_url), name="webhook"))
    if s.routing is not None:
        notifiers.append(build_routing(s, alert_client, silences))
    return notifiers, alert_client


def build_routing(s: Settings, mqtt_client: mqtt.Client | None, silences: SilenceBook | None) -> Notifier:
    """Routing from `s.routing`: senders built from its receivers (MQTT ones through the alert client),
    a delivery journal, state kept across restarts, and its clock ticking on a thread of its own."""
    from alerts.routing import RoutingNotifier, SqliteJournal, load_routing
    from alerts.senders import build_sender

    assert s.routing is not None
    ruleset = load_rules(s.rules or None)
    config = load_routing(s.routing, rule_ids={r.id for r in ruleset.rules})
    journal_path = s.deliveries_db or s.db.with_name(s.db.stem + "-deliveries.sqlite")
    routing = RoutingNotifier.from_config(config, partial(build_sender, mqtt_client=mqtt_client),
                                          silences=silences, journal=SqliteJournal(journal_path),
                                          state_path=s.routing_state)
    routing.run_ticks()
    log.info("routing alerts by %s (%d receivers; deliveries journal %s)", s.routing, len(config.receivers),
             journal_path)
    return routing


def build_notifiers(s: Settings, console: TextIO | None = None) -> list[Notifier]:
    """The notifiers the settings ask for (console always; MQTT alert topic; webhook; routing)."""
    return _notifiers(s, console)[0]


def build_live(s: Settings, catalog: Catalog, *, console: TextIO | None = None) -> LiveApp:
    ruleset = load_rules(s.rules or None)
    scheme = TopicScheme(s.mqtt_prefix)
    silences = SilenceBook()
    notifiers, alert_client = _notifiers(s, console, silences)
    store = build_store(s, catalog)
    pipeline = Pipeline(catalog, ruleset, store=store, notifiers=notifiers, resolve_after_s=s.resolve_after_s)
    source = MqttSource(s.mqtt_host, s.mqtt_port, client_id=s.mqtt_client_id, shared_group=s.mqtt_shared_group,
                        username=s.mqtt_username,
                        password=s.mqtt_password.get_secret_value() if s.mqtt_password else None,
                        protocol=s.mqtt_protocol, scheme=scheme, max_pending=max(1000, s.poll_max))
    watcher = RulesWatcher(list(s.rules)) if s.rules else None
    decoder = Decoder(catalog, scheme, max_future_s=s.max_future_s)
    runner = LiveRunner(pipeline, source, decoder, watcher=watcher, state_path=s.state,
                        poll_max=s.poll_max, poll_timeout_s=s.poll_timeout_s, stats_every_s=s.stats_every_s,
                        state_every_s=s.state_every_s)
    if not runner.restore_state() and s.influx_warm_hours > 0 and "influx" in s.store:
        _warm(s, pipeline)
    log.info("sentinel: %d sensors in %d zones, %d rules, MQTT %s:%d (%s), store %r", len(catalog),
             len(catalog.zones), len(ruleset.enabled()), s.mqtt_host, s.mqtt_port,
             scheme.shared_readings_filter(s.mqtt_shared_group) if s.mqtt_shared_group else scheme.readings_filter(),
             store)
    return LiveApp(runner, alert_client, silences=silences)

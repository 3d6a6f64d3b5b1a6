"""Alert routing: who is told what and when (grouping, inhibition, silences, escalation), and delivery.

`config` loads the routing file, `router` decides (pure, no I/O), `dispatch` delivers and records,
`silences` holds operators' mutes, `journal` keeps every delivery attempt.
"""

from alerts.routing.config import RouteNode, RoutingConfig, build_senders, compile_routes, load_routing, parse_routing
from alerts.routing.dispatch import Dispatcher, RoutingNotifier
from alerts.routing.journal import DeliveryJournal, DeliveryRecord, MemoryJournal, SqliteJournal
from alerts.routing.router import Router
from alerts.routing.silences import Silence, SilenceBook

__all__ = [
    "DeliveryJournal", "DeliveryRecord", "Dispatcher", "MemoryJournal", "RouteNode", "Router", "RoutingConfig",
    "RoutingNotifier", "Silence", "SilenceBook", "SqliteJournal", "build_senders", "compile_routes",
    "load_routing", "parse_routing",
]

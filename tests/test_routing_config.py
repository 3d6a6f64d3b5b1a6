"""A routing file is where a typo means nobody is woken up: every mistake must be refused with file, line
and field, and the shipped example must load against the shipped rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts.notification import Notification
from alerts.routing.config import build_senders, compile_routes, load_routing, parse_routing
from rules.loader import load_rules
from sentinel.errors import InputErrors
from sentinel.readings import NS

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "routing.example.yaml"
DEFAULT_RULE_IDS = {r.id for r in load_rules().rules}

VALID = """\
receivers:
  ops: {type: webhook, url: "http://127.0.0.1:9/ops"}
  duty: {type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=x", secret: SECx}
route:
  receivers: [ops]
  group_by: [network, zone]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - match: {network: gas, grade: red}
      receivers: [duty]
      group_wait: 0
"""


def errors_of(text: str, **kw: Any) -> list[str]:
    with pytest.raises(InputErrors) as exc:
        parse_routing(text, "routing.yaml", **kw)
    return [str(e) for e in exc.value.errors]


def test_the_shipped_example_loads_against_the_shipped_rules() -> None:
    config = load_routing(EXAMPLE, rule_ids=DEFAULT_RULE_IDS)
    tree = compile_routes(config)
    assert tree.receivers == ("ops-webhook",) and tree.group_by == ("network", "zone")
    assert {"duty-dingtalk", "duty-mail", "ops-webhook"} <= set(config.receivers)
    assert config.inhibit[0].source.rule == ("water-burst-pressure-drop",)
    assert config.escalate[0].after == 600


def test_children_inherit_what_they_do_not_set() -> None:
    tree = compile_routes(parse_routing(VALID))
    (gas,) = tree.children
    assert (gas.id, gas.receivers, gas.group_by) == ("0.0", ("duty",), ("network", "zone"))
    assert (gas.group_wait_ns, gas.group_interval_ns, gas.repeat_interval_ns) == (0, 300 * NS, 4 * 3600 * NS)


def test_an_unknown_receiver_is_refused_where_it_is_named() -> None:
    text = VALID.replace("receivers: [duty]", "receivers: [duty, duty-phone]")
    assert errors_of(text) == [
        "routing.yaml:12: route.routes[0].receivers[1]: unknown receiver 'duty-phone'; "
        "defined receivers: duty, ops"]


def test_escalation_receivers_must_exist_too() -> None:
    text = VALID + "escalate:\n  - match: {grade: red}\n    after: 10m\n    receivers: [duty-mail]\n"
    assert errors_of(text) == ["routing.yaml:17: escalate[0].receivers[0]: unknown receiver 'duty-mail'; "
                               "defined receivers: duty, ops"]


def test_a_bad_duration_is_located() -> None:
    (err,) = errors_of(VALID.replace("group_interval: 5m", "group_interval: 5 minutes"))
    assert err.startswith("routing.yaml:8: route.group_interval: '5 minutes' is not a duration")


def test_an_unknown_key_is_located_and_the_known_ones_listed() -> None:
    (err,) = errors_of(VALID.replace("{network: gas, grade: red}", "{network: gas, severity: red}"))
    assert err == ("routing.yaml:11: route.routes[0].match.severity: unknown key 'severity'; "
                   "expected one of network, zone, grade, rule, kind, subject, sensor_id")
    (err,) = errors_of(VALID.replace("  group_wait: 30s", "  group_wiat: 30s"))
    assert err.startswith("routing.yaml:7: route.group_wiat: unknown key 'group_wiat'; expected one of match,")


def test_a_rule_id_that_no_rule_has_is_refused_when_rules_are_given() -> None:
    text = VALID + ("inhibit:\n  - source: {rule: water-burst-pressure-drop}\n"
                    "    target: {rule: water-low-pressure}\n    equal: [network, zone]\n")
    assert errors_of(text, rule_ids=DEFAULT_RULE_IDS) == [
        "routing.yaml:16: inhibit[0].target.rule[0]: no rule with id 'water-low-pressure' is loaded; "
        "check the spelling"]
    parse_routing(text)  # without the rules at hand it cannot be checked


def test_grades_networks_kinds_and_labels_are_checked() -> None:
    text = VALID.replace("{network: gas, grade: red}", "{network: steam, grade: purple, kind: spike}")
    text = text.replace("group_by: [network, zone]", "group_by: [network, district]")
    assert [e.split(": ", 2)[1:] for e in errors_of(text)] == [
        ["route.group_by[1]", "'district' is not a label; use one of network, zone, rule, kind, subject, sensor_id"],
        ["route.routes[0].match.network", "unknown network 'steam'; use water, heat or gas"],
        ["route.routes[0].match.grade", "unknown severity 'purple'; use yellow, orange or red (三级/二级/一级)"],
        ["route.routes[0].match.kind", "unknown rule kind 'spike'; use one of threshold, rate_of_change, ewma, "
                                       "cusum, deadman, flatline, night_flow, zone_balance, burst_fingerprint, "
                                       "inflow_drop, peer_deviation, inflow_excess"],
    ]


def test_a_receiver_defined_twice_is_an_error_not_a_silent_override() -> None:
    text = VALID.replace("  duty: {type: dingtalk", "  ops: {type: email, host: x}\n  duty: {type: dingtalk")
    assert errors_of(text) == ["routing.yaml:3: duplicate key 'ops'"]


def test_the_root_route_takes_everything_and_needs_a_receiver() -> None:
    text = VALID.replace("  receivers: [ops]\n  group_by", "  match: {zone: DMA1}\n  group_by")
    assert [e.split(": ", 2)[1] for e in errors_of(text)] == ["route.receivers", "route.match"]


def test_a_receiver_needs_a_type() -> None:
    assert errors_of(VALID.replace("{type: webhook, url:", "{url:")) == [
        "routing.yaml:2: receivers.ops: a receiver is a mapping with a `type` "
        "(webhook, dingtalk, wecom, feishu, email, mqtt)"]


def test_not_yaml_and_missing_files_are_located() -> None:
    (err,) = errors_of("route:\n  receivers: [ops\n")
    assert err.startswith("routing.yaml:3: not valid YAML")
    with pytest.raises(InputErrors, match=r"nowhere\.yaml: cannot read"):
        load_routing("nowhere.yaml")


class _Sender:
    kind = "webhook"

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        if not str(spec.get("url", "")).startswith("http"):
            raise ValueError("url must be http(s)")
        self.name, self.spec, self.closed = name, spec, False

    def describe(self) -> str:
        return "test"

    def send(self, notification: Notification) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_senders_are_built_from_the_specs_and_refusals_are_located() -> None:
    senders = build_senders(parse_routing(VALID), _Sender)
    assert sorted(senders) == ["duty", "ops"] and senders["ops"].spec["url"] == "http://127.0.0.1:9/ops"
    assert senders["duty"].name == "duty"
    bad = parse_routing(VALID.replace('url: "http://127.0.0.1:9/ops"', "url: ftp://x"), "routing.yaml")
    with pytest.raises(InputErrors) as exc:
        build_senders(bad, _Sender)
    assert str(exc.value) == "routing.yaml:2: receivers.ops: url must be http(s)"

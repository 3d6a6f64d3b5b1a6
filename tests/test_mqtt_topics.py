"""The topic scheme: build/parse round trips, and readings filters that can never match alerts."""

from __future__ import annotations

import pytest
from paho.mqtt.client import topic_matches_sub

from ingest.topics import DEFAULT_SCHEME, ReadingTopic, TopicError, TopicScheme, shared

S = DEFAULT_SCHEME


def test_documented_defaults() -> None:
    assert S.reading_topic("water", "dma1", "P1") == "sentinel/data/water/dma1/P1"
    assert S.batch_topic("heat", "sub-3") == "sentinel/data/heat/sub-3/batch"
    assert S.lp_topic("gas", "st.1") == "sentinel/data/gas/st.1/lp"
    assert S.alerts_topic("water", "dma1") == "sentinel/alerts/water/dma1"
    assert S.readings_filter() == "sentinel/data/+/+/+"
    assert S.shared_readings_filter("proc") == "$share/proc/sentinel/data/+/+/+"
    assert S.alerts_filter() == "sentinel/alerts/#"


def test_parse_round_trip() -> None:
    assert S.parse("sentinel/data/water/dma1/P1") == ReadingTopic("water", "dma1", "P1")
    rt = S.parse(S.reading_topic("gas", "st1", "CH4:1"))
    assert (rt.kind, rt.sensor_id) == ("reading", "CH4:1")
    batch = S.parse(S.batch_topic("water", "z"))
    assert (batch.kind, batch.sensor_id) == ("batch", None)
    assert S.parse(S.lp_topic("water", "z")).kind == "lp"


@pytest.mark.parametrize("topic", [
    "sentinel/alerts/water/dma1",  # alerts are not readings
    "sentinel/data/water/dma1",  # too short
    "sentinel/data/water/dma1/P1/x",  # too long
    "sentinel/data/sewage/dma1/P1",  # unknown network
    "sentinel/data/water//P1",  # empty level
    "sentinel/data/water/dma 1/P1",
    "other/data/water/dma1/P1",
])
def test_parse_rejects(topic: str) -> None:
    with pytest.raises(TopicError):
        S.parse(topic)
    assert not S.is_readings(topic)


def test_readings_filter_never_matches_alerts() -> None:
    alerts = [S.alerts_topic("water", "dma1"), "sentinel/alerts/water/dma1/burst", "sentinel/alerts/x/y/z"]
    for f in (S.readings_filter(), "sentinel/data/water/+/+"):
        assert topic_matches_sub(f, S.reading_topic("water", "dma1", "P1"))
        assert not any(topic_matches_sub(f, a) for a in alerts)
    assert all(topic_matches_sub(S.alerts_filter(), a) for a in alerts)
    assert not topic_matches_sub(S.alerts_filter(), S.reading_topic("water", "dma1", "P1"))


def test_builders_refuse_what_would_break_the_scheme() -> None:
    for bad in ("a/b", "+", "#", "", "has space"):
        with pytest.raises(TopicError):
            S.reading_topic("water", "dma1", bad)
        with pytest.raises(TopicError):
            S.alerts_topic("water", bad)
    with pytest.raises(TopicError, match="reserved"):
        S.reading_topic("water", "dma1", "batch")
    with pytest.raises(TopicError, match="unknown network"):
        S.batch_topic("steam", "z")
    with pytest.raises(TopicError):
        shared("sentinel/data/+/+/+", "a/b")


def test_custom_prefix() -> None:
    s = TopicScheme("city-a/sentinel")
    assert s.readings_filter() == "city-a/sentinel/data/+/+/+"
    assert s.parse("city-a/sentinel/data/water/z/P1").sensor_id == "P1"
    with pytest.raises(TopicError):
        s.parse("sentinel/data/water/z/P1")
    for bad in ("", "a//b", "a/+", "$SYS", "a/"):
        with pytest.raises(TopicError):
            TopicScheme(bad)

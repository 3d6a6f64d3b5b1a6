"""The InfluxDB schema as line protocol: exact lines, lossless floats, escaping, and encoding speed."""

from __future__ import annotations

import time

import numpy as np

from alerts.lifecycle import AlertBook
from sentinel.catalog import Catalog, Sensor
from sentinel.deadletter import DeadLetter
from sentinel.detections import Detection
from sentinel.readings import NS, QUALITY_BAD, Batch
from sentinel.severity import Severity
from sentinel.stores.influx_schema import (
    ReadingsEncoder,
    encode_alert_changes,
    encode_dead_letters,
    encode_detections,
    escape_tag,
    measurement_of,
    string_field,
)

T0 = 1_735_689_600 * NS
CATALOG = Catalog.from_sensors([
    Sensor(sensor_id="W-DMA1-P01", network="water", zone="DMA1", quantity="pressure", unit="bar"),
    Sensor(sensor_id="G-N1-CH4", network="gas", zone="N1", quantity="gas_concentration", unit="%LEL"),
])


def test_a_reading_is_one_point_keyed_by_its_event_time() -> None:
    (line,) = ReadingsEncoder(CATALOG).encode(Batch.of([0], [T0], [312.25]))
    assert line == ("readings,network=water,quantity=pressure,sensor=W-DMA1-P01,zone=DMA1 "
                    "value=312.25,quality=0i 1735689600000000000")


def test_floats_survive_the_text_bit_for_bit() -> None:
    tricky = [0.1, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308, 1e-300, 123456789.12345679, 2.0**53 + 2]
    lines = ReadingsEncoder(CATALOG).encode(Batch.of([0] * len(tricky), T0 + np.arange(len(tricky)), tricky))
    back = [float(ln.split("value=")[1].split(",")[0]) for ln in lines]
    assert np.array_equal(np.array(back).view(np.int64), np.array(tricky).view(np.int64))


def test_nan_and_inf_keep_the_point_without_a_value_field() -> None:
    lines = ReadingsEncoder(CATALOG).encode(
        Batch.of([1, 1, 1], [T0, T0 + 1, T0 + 2], [np.nan, np.inf, 2.5], [QUALITY_BAD, 0, 1]))
    assert lines[0] == "readings,network=gas,quantity=gas_concentration,sensor=G-N1-CH4,zone=N1 quality=2i " \
                       f"{T0}"
    assert "value" not in lines[1] and lines[1].endswith(f"quality=0i {T0 + 1}")
    assert "value=2.5,quality=1i" in lines[2]


def test_escaping_keeps_one_point_per_line() -> None:
    assert escape_tag("a b,c=d") == r"a\ b\,c\=d"
    assert escape_tag("ends with\\") == r"ends\ with"  # a trailing backslash would eat the separator
    assert string_field('say "hi"\\\nbye') == r'"say \"hi\"\\\nbye"'
    det = Detection("burst", "rate_of_change", "water", "DMA 1", "P,1", "P,1", T0, "raised", Severity.RED,
                    -42.5, 3.0, 'pressure fell "fast"\nsecond line')
    (line,) = encode_detections([det])
    assert "\n" not in line
    assert line.startswith(r"detections,kind=rate_of_change,network=water,rule=burst,subject=P\,1,"
                           r"transition=raised,zone=DMA\ 1 severity=3i,value=-42.5,score=3.0,")
    assert measurement_of(line) == "detections"
    assert measurement_of(r"my\ m,t=1 v=1 1") == r"my\ m"


def test_detections_grade_is_an_integer_and_cleared_is_zero() -> None:
    raised = Detection("gas-high", "threshold", "gas", "N1", "G-N1-CH4", "G-N1-CH4", T0, "raised", Severity.ORANGE,
                       22.0, float("nan"), "gas 22 %LEL")
    cleared = Detection("gas-high", "threshold", "gas", "N1", "G-N1-CH4", "G-N1-CH4", T0 + NS, "cleared", None,
                        3.0, 0.5, "back to normal")
    a, b = encode_detections([raised, cleared])
    assert "severity=2i" in a and "score=" not in a  # NaN fields are left out
    assert "severity=0i" in b and ",transition=cleared," in b


def test_alert_changes_carry_state_grade_and_actor() -> None:
    book = AlertBook(resolve_after_s=600)
    det = Detection("gas-high", "threshold", "gas", "N1", "G-N1-CH4", "G-N1-CH4", T0, "raised", Severity.RED,
                    30.0, 1.0, "gas 30 %LEL")
    (opened,) = book.apply([det], T0)
    ack = book.acknowledge(opened.alert.alert_id, "li.na", "on my way", T0 + 60 * NS)
    first, second = encode_alert_changes([opened, ack])
    assert first.startswith(f"alerts,alert_id={opened.alert.alert_id},change=opened,network=gas,rule=gas-high,"
                            "subject=G-N1-CH4,zone=N1 ")
    assert 'state="firing",severity=3i,value=30.0,message="gas 30 %LEL",actor=""' in first
    assert ',change=acknowledged,' in second and 'state="acknowledged"' in second and 'actor="li.na"' in second
    assert second.endswith(str(T0 + 60 * NS))


def test_dead_letters_of_one_batch_never_share_a_timestamp() -> None:
    letters = [DeadLetter.of("mqtt:sentinel/data/water/DMA1/P9", "unknown sensor: P9", b'{"value": 1}', T0),
               DeadLetter.of("mqtt:sentinel/data/water/DMA1/P9", "unknown sensor: P9", b'{"value": 2}', T0),
               DeadLetter.of("readings.csv:12", "bad time: '2025-13-01'", "x", T0, field="time")]
    lines = encode_dead_letters(letters)
    assert [ln.rsplit(" ", 1)[1] for ln in lines] == [str(T0), str(T0 + 1), str(T0 + 2)]
    assert lines[0].startswith(r"dead_letters,origin=mqtt,reason=unknown\ sensor ")
    assert 'detail="unknown sensor: P9"' in lines[0] and r'payload="{\"value\": 1}"' in lines[0]
    assert lines[2].startswith(r"dead_letters,origin=readings.csv,reason=bad\ time ") and 'field="time"' in lines[2]


def test_100k_readings_encode_well_under_half_a_second() -> None:
    n_sensors = 5000
    cat = Catalog.from_sensors(
        Sensor(sensor_id=f"P{i:05d}", network="water", zone=f"DMA{i // 100:02d}", quantity="pressure", unit="kPa")
        for i in range(n_sensors))
    rng = np.random.default_rng(0)
    batch = Batch.of(rng.integers(0, n_sensors, 100_000), T0 + np.arange(100_000) * 10**6,
                     rng.normal(300, 30, 100_000))
    enc = ReadingsEncoder(cat)
    best = min(_timed(lambda: enc.encode(batch)) for _ in range(3))
    print(f"\nLP encoding: 100k readings in {best * 1000:.0f} ms ({100_000 / best / 1e6:.2f} M lines/s)")
    assert best < 0.5


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t

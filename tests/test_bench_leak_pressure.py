"""The pressure check beside the ideal observer: a logger pulled down after a leak's onset is found and
judged against its own day-to-day spread; days with labelled events are not taken as leak-free."""

from __future__ import annotations

import numpy as np

from bench.detection.leak_pressure import departures, largest_shift, p_value, quiet_onsets
from rules.calendar import DAY_NS
from sentinel.events import LabelledEvent

STEPS_PER_DAY = 288
LOGGERS = ["P1", "P2", "P3", "P4"]


def zone_pressures(days: int, *, drop_kpa: float, onset_day: int, seed: int = 3) -> tuple[np.ndarray, ...]:
    """Four loggers on a shared diurnal swing, each with its own day-to-day wobble (0.2 kPa); from
    `onset_day` on, P3 sits `drop_kpa` lower (the leak is by it)."""
    rng = np.random.default_rng(seed)
    step = np.arange(days * STEPS_PER_DAY)
    day, hour = step // STEPS_PER_DAY, (step % STEPS_PER_DAY) // 12
    swing = 20 * np.sin(2 * np.pi * step / STEPS_PER_DAY)[:, None]
    wobble = rng.normal(0, 0.2, (days, len(LOGGERS)))[day]
    pressure = 300 + np.array([0, 5, -8, 12]) + swing + wobble + rng.normal(0, 0.5, (len(step), len(LOGGERS)))
    pressure[day >= onset_day, 2] -= drop_kpa
    return departures(pressure), hour, day


def test_a_logger_pulled_down_by_a_leak_stands_out_and_an_unmoved_zone_does_not() -> None:
    dep, hour, day = zone_pressures(14, drop_kpa=2.0, onset_day=8)
    shift = largest_shift(dep, hour, day, 8, (2, 4), LOGGERS)
    assert shift is not None and shift.logger == "P3"
    assert shift.kpa < -1.5 and shift.t < -4  # 2 kPa against a 0.2 kPa day-to-day spread
    calm = largest_shift(*zone_pressures(14, drop_kpa=0.0, onset_day=8), 8, (2, 4), LOGGERS)
    assert calm is not None and abs(calm.t) < 4


def test_departures_take_out_what_moves_every_logger_alike() -> None:
    pressure = np.array([[300.0, 310.0, 320.0], [340.0, 350.0, 360.0]])  # the source head rose 40 kPa
    assert departures(pressure).tolist() == [[-10.0, 0.0, 10.0], [-10.0, 0.0, 10.0]]


def test_leak_free_onsets_skip_spans_with_anything_labelled_in_the_zone_or_city_wide() -> None:
    def ev(zone: str, kind: str, day: int) -> LabelledEvent:
        return LabelledEvent("E", "water", zone, kind, day * DAY_NS, day * DAY_NS + DAY_NS // 2)

    assert quiet_onsets([], "DMA1", 0, 14) == list(range(7, 12))  # six days before, three after
    assert quiet_onsets([ev("DMA1", "burst", 12)], "DMA1", 0, 14) == list(range(7, 10))
    assert quiet_onsets([ev("DMA2", "burst", 12)], "DMA1", 0, 14) == list(range(7, 12))  # another zone
    assert quiet_onsets([ev("DMA2", "holiday", 3)], "DMA1", 0, 14) == list(range(10, 12))  # a holiday is everywhere


def test_p_value_counts_the_leak_itself_among_the_leak_free_onsets() -> None:
    assert p_value(-3.0, [1.0, 2.0, 3.5]) == 0.5
    assert p_value(9.0, [1.0, 2.0, 3.5]) == 0.25

"""The rule file schema. Every field an engineer can write is declared here, with its meaning."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from rules.durations import parse_duration
from sentinel.severity import Severity

Duration = Annotated[float, BeforeValidator(parse_duration)]
StrList = Annotated[tuple[str, ...], BeforeValidator(lambda v: (v,) if isinstance(v, str) else v)]


def _parse_severity(v: object) -> object:
    return Severity.parse(v) if isinstance(v, str) else v


SeverityField = Annotated[Severity, BeforeValidator(_parse_severity)]


def _levels(v: object) -> object:
    """`high: 50` or `high: {yellow: 20, red: 50}` (grade -> threshold)."""
    if v is None or isinstance(v, int | float):
        return v
    if isinstance(v, dict):
        return {Severity.parse(str(k)) if not isinstance(k, Severity) else k: val for k, val in v.items()}
    raise ValueError("expected a number or a mapping of grade (yellow/orange/red) to a number")


Levels = Annotated[float | dict[Severity, float] | None, BeforeValidator(_levels)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Selector(Strict):
    """Which sensors (or zones) a rule watches; every given field must match, lists mean any-of."""

    network: StrList = ()
    zone: StrList = ()
    quantity: StrList = ()
    role: StrList = ()
    sensor_id: StrList = ()
    tags: StrList = ()

    @field_validator("network")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in v if n not in ("water", "heat", "gas")]
        if bad:
            raise ValueError(f"unknown network {bad[0]!r}; use water, heat or gas")
        return v

    @field_validator("quantity")
    @classmethod
    def _quantities(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        known = ("pressure", "flow", "temperature", "gas_concentration", "level")
        bad = [q for q in v if q not in known]
        if bad:
            raise ValueError(f"unknown quantity {bad[0]!r}; use one of {', '.join(known)}")
        return v


_NOT_LEARNED = {"explained_by"}  # options that shape alerts, not what a rule learns: editing them keeps its state


class RuleBase(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.\-]*$", max_length=96)
    description: str = ""
    enabled: bool = True
    select: Selector = Selector()
    severity: SeverityField = Severity.YELLOW
    hold: Duration = Field(default=0.0, alias="for", description="how long the condition must hold")

    def fingerprint(self) -> str:
        """Identifies the rule's definition; unchanged rules keep their learned state across reloads.
        Options left at their defaults are not part of it, so a release that adds an option (with a
        default that keeps the old behaviour) does not throw away every zone's learning."""
        blob = json.dumps(self.model_dump(mode="json", exclude_defaults=True, exclude=_NOT_LEARNED), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ThresholdRule(RuleBase):
    """Value above `high` or below `low` (each a number or grade -> number), with hysteresis."""

    kind: Literal["threshold"]
    high: Levels = None
    low: Levels = None
    hysteresis: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _one_side(self) -> ThresholdRule:
        if self.high is None and self.low is None:
            raise ValueError("a threshold rule needs `high`, `low` or both")
        for side, worse in (("high", "higher"), ("low", "lower")):
            levels = getattr(self, side)
            if isinstance(levels, dict):
                ordered = [levels[g] for g in sorted(levels)]
                rising = all(a < b for a, b in pairwise(ordered))
                falling = all(a > b for a, b in pairwise(ordered))
                if not (rising if side == "high" else falling):
                    raise ValueError(f"`{side}` limits must get {worse} from yellow to orange to red")
        return self


class RateOfChangeRule(RuleBase):
    """Value changes by at least `change` within `within` (e.g. pressure falls 30 kPa in 10 min: a burst)."""

    kind: Literal["rate_of_change"]
    change: Levels
    within: Duration = Field(gt=0)
    direction: Literal["falling", "rising", "either"] = "falling"
    max_points: int = Field(default=32, ge=2, le=256)

    @field_validator("change")
    @classmethod
    def _positive(cls, v: float | dict | None) -> float | dict | None:
        values = v.values() if isinstance(v, dict) else [v]
        if any(x is None or x <= 0 for x in values):
            raise ValueError("`change` must be a positive amount (direction says which way)")
        return v


class BaselineParams(Strict):
    """A learned per-sensor (or per-zone) EWMA mean and variance, optionally per hour of day."""

    halflife: Duration = Field(default=86400.0 * 3, gt=0, description="event time for the weight to halve")
    warmup: int = Field(default=48, ge=2, description="readings per profile slot before scoring")
    profile: Literal["none", "hour_of_day", "weekday_weekend_hour", "hour_of_week"] = "none"
    min_sigma: float = Field(default=0.0, ge=0, description="floor on the learned std dev")
    learn_within: float | None = Field(
        default=None, gt=0, description="once a slot is ready, readings more than this many std devs off its "
        "mean do not teach it (a burst's first minutes, before any alarm, would otherwise widen the spread "
        "that judges it); none: every reading teaches. Only for series whose level is followed elsewhere "
        "(residuals): a lasting shift of more than about twice this is never learned")


class EwmaRule(RuleBase):
    """Deviation from the learned baseline in standard deviations (z), beyond `min_deviation`."""

    kind: Literal["ewma"]
    z: Levels = 4.0
    direction: Literal["high", "low", "either"] = "either"
    min_deviation: float = Field(default=0.0, ge=0)
    baseline: BaselineParams = BaselineParams()


class CusumRule(RuleBase):
    """Two-sided CUSUM on standardised residuals against a slowly learned baseline: slow drifts, leaks."""

    kind: Literal["cusum"]
    k: float = Field(default=0.5, ge=0, description="slack, in standard deviations")
    h: Levels = 10.0
    direction: Literal["high", "low", "either"] = "high"
    baseline: BaselineParams = BaselineParams(halflife=86400.0 * 14, profile="hour_of_day")


class DeadmanRule(RuleBase):
    """No reading for `missing` expected intervals (the catalog's interval_s), or for `after`."""

    kind: Literal["deadman"]
    missing: float = Field(default=3.0, gt=0)
    after: Duration | None = None


class FlatlineRule(RuleBase):
    """A stuck sensor: the value has not changed by more than `tolerance` for `duration`."""

    kind: Literal["flatline"]
    duration: Duration = Field(gt=0)
    tolerance: float = Field(default=0.0, ge=0)
    min_readings: int = Field(default=4, ge=2)
    above: float | None = Field(default=None, description="only runs above this value (a gas detector "
                                "reading a steady 0 in clean air is healthy)")


class NightFlowRule(RuleBase):
    """Minimum night flow of a zone (inlets - outlets) against its own learned nightly baseline."""

    kind: Literal["night_flow"]
    window: tuple[str, str] = ("02:00", "04:00")
    increase: Levels = Field(default=0.2, description="relative increase over baseline (0.2 = +20%)")
    min_increase: float = Field(default=0.0, ge=0, description="absolute floor in m3/h")
    warmup_nights: int = Field(default=3, ge=1)
    halflife_nights: float = Field(default=7.0, gt=0)
    reference: Literal["day_type", "weekday"] = Field(
        default="day_type", description="day_type: one baseline for weekday and one for weekend nights; "
        "weekday: the same weekday's recent nights (holidays as Sundays), day_type until one is learned")
    reference_weeks: int = Field(default=3, ge=1, le=8, description="same-weekday nights kept (weekday)")
    unseen_weekday: Literal["day_type", "skip"] = Field(
        default="day_type", description="weekday: what a night is judged against before its weekday has been "
        "learned: the weekday/weekend baseline, or nothing (skip: no alarm in a zone's first week, when a "
        "weekday whose nights run higher, such as Friday in some networks, would be a false one)")
    explained_by: tuple[str, ...] = Field(
        default=(), description="zone rules whose alarm explains a night's excess: a night raised while one of "
        "them stood in the zone as its minimum was read is that event's water (a burst running through the "
        "night) and clears when they all have; the next night is judged afresh")

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, v: object) -> object:
        if isinstance(v, str) and "-" in v:
            v = tuple(p.strip() for p in v.split("-", 1))
        for part in v if isinstance(v, list | tuple) else ():
            h, _, m = str(part).partition(":")
            if not (h.isdigit() and m.isdigit() and 0 <= int(h) <= 24 and 0 <= int(m) < 60):
                raise ValueError(f"window times are HH:MM local time, got {part!r}")
        return v


class ZoneBalanceRule(RuleBase):
    """Zone net inflow (inlets - outlets) per bucket against its learned profile, in z and ratio."""

    kind: Literal["zone_balance"]
    z: Levels = 4.0
    min_ratio: float = Field(default=0.1, ge=0, description="and at least this share above the baseline")
    baseline: BaselineParams = BaselineParams(profile="hour_of_day", warmup=6)


class ZoneStepRule(RuleBase):
    """What the step rules share: a zone's net inflow against the same time of day on earlier days of the
    same type, today's offset followed quickly, the last `window` buckets judged together in learned
    standard deviations of their summed step (rules/detectors/burst_fingerprint.py)."""

    z: Levels = 5.0
    min_ratio: float = Field(default=0.05, ge=0, description="inflow step at least this share of the expected")
    history: Duration = Field(default=86400.0 * 14, ge=86400.0 * 2, description="days of zone history kept")
    min_days: int = Field(default=3, ge=1, description="same-type days in the history before scoring")
    reference: Literal["day_type", "weekday"] = Field(
        default="day_type", description="day_type: earlier weekdays, or weekend days and holidays; weekday: "
        "the same weekday only (holidays as Sundays), judged once `min_days` of them are in the history")
    level_halflife: Duration = Field(
        default=900.0, gt=0, description="how fast today's offset is followed; the window is judged against it "
        "as it stood before the window, so it can be quick: a zone's demand wanders within the hour")
    window: int = Field(default=2, ge=1, le=12, description="buckets whose step is summed and judged together")
    max_pause: Duration = Field(
        default=6 * 3600.0, gt=0, description="longest learning pause during an alarm, or while the inflow is "
        "clearly off the other way (a fall for the fingerprint, a rise for the drop)")
    scale: BaselineParams = Field(
        default=BaselineParams(profile="hour_of_day", halflife=86400.0 * 7, warmup=36, learn_within=4.0),
        description="the window step's spread per hour of day; a `scale:` block replaces this whole default, so "
        "write `learn_within: 4` (and the profile) in it to keep them")

    @field_validator("z")
    @classmethod
    def _graded(cls, v: float | dict | None) -> float | dict | None:
        values = v.values() if isinstance(v, dict) else [v]
        if not values or any(x is None or x <= 0 for x in values):
            raise ValueError("`z` needs at least one limit above 0 (sigma of the window's evidence)")
        return v


class BurstFingerprintRule(ZoneStepRule):
    """A burst's fingerprint in one zone: net inflow steps up against the same time of day on earlier days
    of the same type (weekday or weekend) while the zone's pressures step down, both scored in learned
    standard deviations and summed; graded on that sum (z) and located at the logger that dropped most."""

    kind: Literal["burst_fingerprint"]
    pressure_weight: float = Field(default=1.0, ge=0, description="0 scores the inflow alone")


class InflowDropRule(ZoneStepRule):
    """A zone's net inflow falling abruptly against the same time of day on earlier days: an inlet meter
    reading low, a closed valve cutting the supply, or a large user stopping. The same step statistic as
    the burst fingerprint, downwards; the zone's pressures tell which (unchanged, fell, rose)."""

    kind: Literal["inflow_drop"]
    z: Levels = 6.0
    min_ratio: float = Field(default=0.1, ge=0, description="inflow drop at least this share of the expected")
    window: int = Field(default=3, ge=1, le=12, description="buckets whose step is summed and judged together")


class InflowExcessRule(RuleBase):
    """Steady extra inflow of a zone over its weekly profile: each day may run busier or quieter (a scale of
    the profile), and what no scale explains, the same extra m3/h at 3 a.m. as at the morning peak, is the
    leak. Fitted over a sliding window (two days), graded in learned standard deviations of the estimate."""

    kind: Literal["inflow_excess"]
    z: Levels = 5.0
    min_ratio: float = Field(default=0.02, ge=0, description="and at least this share of the zone's usual inflow")
    window: Duration = Field(default=2 * 86400.0, ge=86400.0, le=7 * 86400.0, description="the span fitted, "
                             "ending now: at least a day, so nights and peaks pin the excess down")
    every: Duration = Field(default=3600.0, gt=0, le=86400.0, description="how often the fit is redone")
    weeks: int = Field(default=3, ge=1, le=8, description="weeks of history; the profile is their median")
    trim: float = Field(default=4.0, gt=0, description="residuals beyond this many robust sigmas are left out "
                        "of the fit (a hydrant draw, a burst: hours, not a steady excess)")
    trim_max: Duration = Field(default=8 * 3600.0, gt=0, description="outliers lasting longer than this are a "
                               "lasting change (kept in the fit), not hours of something else")
    min_sigma: float = Field(default=0.003, gt=0, description="floor on the estimate's spread, as a share")
    baseline_fits: int = Field(default=24, ge=1, description="fits made before judging (its spread warms up)")
    halflife: Duration = Field(default=7 * 86400.0, gt=0, description="how fast the estimate's spread is learned")
    max_pause: Duration = Field(default=7 * 86400.0, gt=0, description="after this long without a normal fit "
                                "the profile learns again: a lasting change becomes the new normal")
    scale: Literal["daily", "drift"] = Field(
        default="daily", description="daily: one demand scale per day, blended between middays; drift: a scale "
        "wandering by `drift` with a correlation time of `drift_time`, weighed out of the excess (GLS)")
    drift: float = Field(default=0.03, gt=0, le=0.5, description="drift: the demand scale's spread, as a share")
    drift_time: Duration = Field(default=86400.0, gt=0, description="drift: how long the scale's wander lasts")

    @model_validator(mode="after")
    def _drift_options_need_drift(self) -> InflowExcessRule:
        stray = sorted({"drift", "drift_time"} & self.model_fields_set) if self.scale != "drift" else []
        if stray:
            verb = "apply" if len(stray) > 1 else "applies"
            raise ValueError(f"{' and '.join(f'`{o}`' for o in stray)} {verb} only with `scale: drift`")
        return self


class PeerDeviationRule(RuleBase):
    """A pressure logger parting from the other loggers of its zone: its difference to their median
    against that difference's learned profile per hour of day, in standard deviations, smoothed."""

    kind: Literal["peer_deviation"]
    z: Levels = 4.0
    min_shift: float = Field(default=10.0, ge=0, description="and at least this far (kPa) from the usual difference")
    min_peers: int = Field(default=2, ge=1, description="other loggers in the zone needed for a median")
    smooth: Duration = Field(default=3600.0, gt=0, description="half-life of the smoothing of z and the shift")
    model: Literal["median", "regression"] = Field(
        default="median", description="median: against the median of the other loggers; regression: against "
        "what a learned linear fit on the others predicts (loggers that move apart with load, such as a heat "
        "substation's supply and return, or a logger on the far side of a pump)")
    model_halflife: Duration = Field(default=86400.0 * 7, gt=0, description="regression: how fast the fit forgets")
    baseline: BaselineParams = BaselineParams(halflife=86400.0 * 7, warmup=24, profile="hour_of_day", min_sigma=1.0)


Rule = Annotated[
    ThresholdRule | RateOfChangeRule | EwmaRule | CusumRule | DeadmanRule | FlatlineRule | NightFlowRule
    | ZoneBalanceRule | BurstFingerprintRule | InflowDropRule | PeerDeviationRule | InflowExcessRule,
    Field(discriminator="kind"),
]

RULE_KINDS = ("threshold", "rate_of_change", "ewma", "cusum", "deadman", "flatline", "night_flow",
              "zone_balance", "burst_fingerprint", "inflow_drop", "peer_deviation", "inflow_excess")


class Settings(Strict):
    """Engine-wide settings; the first file that sets them wins, later files must agree."""

    utc_offset_h: float = Field(default=8.0, ge=-12, le=14, description="local time for night windows")
    zone_bucket: Duration = Field(default=900.0, gt=0, description="zone flow aggregation step")
    zone_lateness: Duration = Field(default=900.0, ge=0, description="wait this long for late readings")
    zone_stale: Duration = Field(default=3600.0, gt=0, description="hold a meter's last value this long")
    holidays: tuple[_dt.date, ...] = Field(default=(), description="local dates that run on the weekend pattern")


class RuleFile(Strict):
    version: Literal[1] = 1
    settings: Settings | None = None
    rules: list[Rule] = Field(default_factory=list)

"""The sensor catalog: one source of truth, canonical units, and errors an engineer can act on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentinel.catalog import load_catalog, parse_catalog_csv
from sentinel.errors import InputErrors

CSV = """sensor_id,network,zone,quantity,unit,role,interval_s,lat,lon
P1,water,DMA1,pressure,bar,,300,31.8,117.2
P2,water,DMA1,pressure,m,,300,,
P3,gas,GD1,pressure,MPa,inlet,60,,
F1,water,DMA1,flow,L/s,inlet,60,,
F2,water,DMA1,flow,m3/s,outlet,60,,
M1,gas,GD1,gas_concentration,ppm,space,60,,
T1,heat,LOOP1,temperature,K,supply,300,,
"""


def test_units_convert_to_one_canonical_unit_per_quantity() -> None:
    cat = parse_catalog_csv(CSV)
    idx = np.arange(len(cat))
    raw = np.array([3.0, 30.0, 0.4, 10.0, 0.01, 2500.0, 353.15])
    canon = cat.to_canonical(idx, raw)
    np.testing.assert_allclose(canon, [300.0, 294.1995, 400.0, 36.0, 36.0, 5.0, 80.0], rtol=1e-6)
    assert [cat.canonical_unit(i) for i in (0, 3, 5, 6)] == ["kPa", "m3/h", "%LEL", "degC"]


def test_roles_zones_and_coordinates_are_kept() -> None:
    cat = parse_catalog_csv(CSV)
    assert cat.get("F2").role == "outlet" and cat.get("P1").role == "internal"
    assert cat.zones == ("gas/GD1", "heat/LOOP1", "water/DMA1")
    assert cat.get("P1").lat == 31.8


def test_every_bad_row_is_reported_with_line_and_field() -> None:
    bad = CSV + ("P1,water,DMA1,pressure,kPa\nX1,sewer,Z,pressure,kPa\nX2,water,Z,pressure,furlong\n"
                 "X3,water,Z,flow,m3/h,,-5\n")
    with pytest.raises(InputErrors) as info:
        parse_catalog_csv(bad, "cat.csv")
    text = str(info.value)
    assert "cat.csv:9: sensor_id: duplicate sensor_id 'P1' (first on line 2)" in text
    assert "cat.csv:10: network:" in text
    assert "cat.csv:11:" in text and "unknown unit 'furlong' for pressure" in text
    assert "cat.csv:12: interval_s:" in text


def test_missing_columns_are_named() -> None:
    with pytest.raises(InputErrors, match="missing column"):
        parse_catalog_csv("sensor_id,network,zone\nP1,water,DMA1\n")


def test_yaml_catalog_errors_point_at_the_sensor(tmp_path: Path) -> None:
    path = tmp_path / "cat.yaml"
    path.write_text("sensors:\n  - {sensor_id: P1, network: water, zone: DMA1, quantity: pressure, unit: kPa}\n"
                    "  - sensor_id: P2\n    network: water\n    zone: DMA1\n    quantity: pressure\n    unit: parsec\n")
    with pytest.raises(InputErrors) as info:
        load_catalog(path)
    assert f"{path}:3:" in str(info.value) and "parsec" in str(info.value)
    path.write_text("sensors:\n  - {sensor_id: P1, network: water, zone: DMA1, quantity: pressure, unit: kPa,"
                    " tags: [critical, hospital]}\n")
    assert load_catalog(path).get("P1").tags == ("critical", "hospital")

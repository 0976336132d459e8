"""The housing table's schema is the one source of truth: the validator, the simulator and the EDA helpers follow it."""
from __future__ import annotations

import pytest

from mlops_course import eda, schema
from mlops_course.schema import CAPS, COLUMNS, SCHEMA, SPECS, TARGET

pytestmark = pytest.mark.data


def test_every_column_is_described_once_in_order():
    assert [c.name for c in SCHEMA] == COLUMNS and len(SPECS) == len(COLUMNS) == 10
    assert all(c.description for c in SCHEMA)
    assert all(c.dtype in ("float64", "str") for c in SCHEMA)


def test_bounds_are_consistent():
    for c in SCHEMA:
        if c.dtype == "float64":
            assert (c.ge is None) != (c.gt is None), f"{c.name}: exactly one lower bound"
        if c.cap is not None:
            assert c.le == c.cap, f"{c.name}: the cap is the largest allowed value"
    assert SPECS["ocean_proximity"].categories and SPECS["ocean_proximity"].unit is None
    assert next(iter(CAPS)) == TARGET


def test_the_pandera_schema_is_built_from_it():
    from mlops_course.validate import housing_schema
    pa_schema = housing_schema()
    assert list(pa_schema.columns) == COLUMNS
    for c in SCHEMA:
        assert pa_schema.columns[c.name].nullable == c.nullable


def test_the_simulator_respects_it():
    import numpy as np

    from mlops_course.simulator import HousingMarket
    df = HousingMarket(seed=0).sample(2_000)
    for c in SCHEMA:
        s = df[c.name].dropna()
        if c.ge is not None:
            assert (s >= c.ge).all(), c.name
        if c.le is not None:
            assert (s <= c.le).all(), c.name
        if c.integer:
            assert np.all(s % 1 == 0), c.name
        if c.categories:
            assert set(s) <= set(c.categories)


def test_units_of_the_eda_helpers_come_from_it():
    assert eda.UNITS == {c.name: c.unit for c in SCHEMA if c.unit}
    assert schema.__all__ and "Column" in schema.__all__

"""The housing schema: every kind of bad table fails with one `DataValidationError` naming column, rule and rows."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from mlops_course.data import COLUMNS, DataSourceError, HousingMarket
from mlops_course.validate import DataValidationError, housing_schema, read_housing_csv, validate_housing


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return HousingMarket(seed=3).sample(300)


def _fails(df: pd.DataFrame, *fragments: str) -> DataValidationError:
    "Validation fails and the message contains every fragment."
    with pytest.raises(DataValidationError) as info:
        validate_housing(df)
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in message:\n{msg}"
    return info.value


def test_a_good_table_passes_unchanged(good):
    copy = good.copy()
    assert validate_housing(good) is good
    pd.testing.assert_frame_equal(good, copy)


def test_schema_is_a_pandera_schema():
    import pandera.pandas as pa
    schema = housing_schema()
    assert isinstance(schema, pa.DataFrameSchema) and list(schema.columns) == COLUMNS


def test_missing_column(good):
    err = _fails(good.drop(columns="households"), "'households'", "column is present")
    assert err.failures[0]["column"] == "households"


def test_renamed_column(good):
    _fails(good.rename(columns={"median_income": "income"}), "'median_income'", "column is present",
           "'income'", "no unexpected columns")


def test_wrong_dtype(good):
    bad = good.copy()
    bad["total_rooms"] = bad["total_rooms"].astype(str)
    bad.loc[4, "total_rooms"] = "lots"
    _fails(bad, "'total_rooms'", "dtype float64", "lots")


def test_negative_counts(good):
    bad = good.copy()
    bad.loc[[5, 17], "population"] = [-3.0, -40.0]
    err = _fails(bad, "'population'", "greater_than_or_equal_to(1)", "2 failing rows", "row 5: -3.0", "row 17: -40.0")
    assert err.failures[0]["rows"] == [5, 17]


def test_non_integer_count(good):
    bad = good.copy()
    bad.loc[9, "households"] = 12.5
    _fails(bad, "'households'", "integer_valued", "row 9: 12.5")


def test_coordinates_outside_california(good):
    bad = good.copy()
    bad.loc[2, "latitude"] = 51.5
    bad.loc[3, "longitude"] = -0.12
    _fails(bad, "'latitude'", "in_range(32.5, 42.1)", "row 2: 51.5", "'longitude'", "row 3: -0.12")


def test_bedrooms_more_than_rooms(good):
    bad = good.copy()
    bad.loc[11, "total_bedrooms"] = bad.loc[11, "total_rooms"] + 10
    _fails(bad, "total_bedrooms <= total_rooms", "row 11: total_bedrooms=")


def test_unknown_category(good):
    bad = good.copy()
    bad.loc[7, "ocean_proximity"] = "NEAR LAKE"
    _fails(bad, "'ocean_proximity'", "isin", "row 7: 'NEAR LAKE'")


def test_income_in_dollars_is_caught(good):
    bad = good.copy()
    bad.loc[0, "median_income"] *= 10_000
    _fails(bad, "'median_income'", "less_than_or_equal_to(15.0001)", "row 0:")


def test_missing_values_only_where_allowed(good):
    ok = good.copy()
    ok.loc[:20, "total_bedrooms"] = np.nan
    validate_housing(ok)
    bad = good.copy()
    bad.loc[6, "median_house_value"] = np.nan
    _fails(bad, "'median_house_value'", "not_nullable")


def test_empty_table(good):
    _fails(good.iloc[:0], "no rows")


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="expects a pandas DataFrame"):
        validate_housing([1, 2, 3])


def test_several_problems_reported_at_once(good):
    bad = good.drop(columns="households").copy()
    bad.loc[1, "population"] = -1.0
    err = _fails(bad, "2 problem(s)", "'households'", "'population'")
    assert {f["column"] for f in err.failures} == {"households", "population"}


def test_message_has_no_library_traceback(good):
    bad = good.copy()
    bad.loc[5, "population"] = -3.0
    with pytest.raises(DataValidationError) as info:
        validate_housing(bad)
    assert info.value.__suppress_context__ and info.value.__cause__ is None


# --- read_housing_csv ---------------------------------------------------------------------------------------------

def test_read_good_csv_and_gzip(good, tmp_path):
    good.to_csv(tmp_path / "h.csv", index=False)
    pd.testing.assert_frame_equal(read_housing_csv(tmp_path / "h.csv"), good)
    with gzip.open(tmp_path / "h.csv.gz", "wt") as f:
        good.to_csv(f, index=False)
    pd.testing.assert_frame_equal(read_housing_csv(tmp_path / "h.csv.gz"), good)


def test_integer_counts_are_widened_not_rejected(good, tmp_path):
    ints = good.dropna().astype({"total_rooms": int, "population": int}).reset_index(drop=True)
    ints.to_csv(tmp_path / "ints.csv", index=False)
    df = read_housing_csv(tmp_path / "ints.csv")
    assert df["total_rooms"].dtype == np.float64


def test_missing_file(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist.*MLOPS_COURSE_DATA_SOURCE"):
        read_housing_csv(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataValidationError, match="is empty"):
        read_housing_csv(tmp_path / "empty.csv")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(DataValidationError, match="has no columns"):
        read_housing_csv(tmp_path / "blank.csv")


def test_header_only_file(tmp_path):
    (tmp_path / "header.csv").write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(DataValidationError, match="no rows"):
        read_housing_csv(tmp_path / "header.csv")


def test_not_a_csv(tmp_path):
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataValidationError, match="not a readable CSV|not a housing CSV"):
        read_housing_csv(tmp_path / "binary.csv")
    (tmp_path / "page.csv").write_text("<html><body>Not found</body></html>\n")
    with pytest.raises(DataValidationError, match="not a housing CSV"):
        read_housing_csv(tmp_path / "page.csv")


def test_csv_with_a_bad_value_names_the_file(good, tmp_path):
    bad = good.copy()
    bad.loc[8, "housing_median_age"] = 99.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataValidationError, match=r"bad\.csv breaks the housing schema[\s\S]*housing_median_age[\s\S]*row 8: 99\.0"):
        read_housing_csv(tmp_path / "bad.csv")

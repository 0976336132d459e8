"""Unit tests of mlops_course.eda: summaries, caps, correlations, SQL errors, plots."""
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from mlops_course import eda  # noqa: E402
from mlops_course.data import CAPS  # noqa: E402
from mlops_course.eda import (  # noqa: E402
    SQLError,
    axis_label,
    capped_shares,
    plot_by_category,
    plot_correlations,
    plot_distributions,
    plot_geo,
    sql,
    summarize,
    target_correlations,
)

TARGET = "median_house_value"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def small() -> pd.DataFrame:
    "Six districts with the housing columns: one missing bedroom count, one capped value, one capped age."
    return pd.DataFrame({
        "longitude": [-122.2, -122.3, -118.2, -118.4, -121.0, -117.1],
        "latitude": [37.9, 37.8, 34.1, 34.0, 38.5, 32.7],
        "housing_median_age": [41.0, 52.0, 15.0, 30.0, 8.0, 25.0],
        "total_rooms": [880.0, 7099.0, 1467.0, 1274.0, 3000.0, 2000.0],
        "total_bedrooms": [129.0, 1106.0, np.nan, 235.0, 600.0, 400.0],
        "population": [322.0, 2401.0, 496.0, 558.0, 1500.0, 900.0],
        "households": [126.0, 1138.0, 177.0, 219.0, 520.0, 330.0],
        "median_income": [8.3252, 8.3014, 7.2574, 5.6431, 2.1, 3.5],
        "median_house_value": [452600.0, 500001.0, 352100.0, 341300.0, 90000.0, 180000.0],
        "ocean_proximity": ["NEAR BAY", "NEAR BAY", "<1H OCEAN", "<1H OCEAN", "INLAND", "NEAR OCEAN"],
    })


# --- summarize ----------------------------------------------------------------------------------

def test_summarize_one_row_per_column(small):
    s = summarize(small)
    assert list(s.index) == list(small.columns)
    assert list(s.columns) == ["dtype", "missing", "missing_pct", "min", "median", "max", "n_unique"]
    assert s.loc["total_bedrooms", "missing"] == 1
    assert s.loc["total_bedrooms", "missing_pct"] == pytest.approx(100 / 6, abs=0.01)
    assert s.loc["median_house_value", "max"] == 500001.0
    assert s.loc["housing_median_age", "median"] == pytest.approx(27.5)
    assert s.loc["ocean_proximity", "dtype"] == "object"
    assert s.loc["ocean_proximity", "n_unique"] == 4
    assert np.isnan(s.loc["ocean_proximity", "min"])


def test_summarize_bool_and_empty_frames():
    s = summarize(pd.DataFrame({"flag": [True, False, True]}))
    assert s.loc["flag", "n_unique"] == 2 and np.isnan(s.loc["flag", "median"])
    empty = summarize(pd.DataFrame({"x": pd.Series([], dtype=float)}))
    assert empty.loc["x", "missing"] == 0 and empty.loc["x", "missing_pct"] == 0.0


def test_summarize_rejects_non_frames():
    with pytest.raises(TypeError, match="expects a pandas DataFrame, got list"):
        summarize([1, 2, 3])


# --- capped_shares ------------------------------------------------------------------------------

def test_capped_shares_counts_rows_at_the_caps(small):
    c = capped_shares(small)
    assert list(c.index) == list(CAPS)
    assert c.loc[TARGET, "n_capped"] == 1 and c.loc[TARGET, "share"] == pytest.approx(1 / 6)
    assert c.loc["housing_median_age", "n_capped"] == 1
    assert c.loc["median_income", "n_capped"] == 0
    assert c.loc[TARGET, "cap"] == 500_001.0


def test_capped_shares_ignores_missing_and_counts_above_cap():
    c = capped_shares(pd.DataFrame({"v": [1.0, 5.0, 7.0, np.nan]}), caps={"v": 5.0})
    assert c.loc["v", "n_capped"] == 2 and c.loc["v", "share"] == pytest.approx(2 / 3)


def test_capped_shares_names_absent_columns(small):
    with pytest.raises(KeyError, match="median_income"):
        capped_shares(small.drop(columns="median_income"))


# --- labels and correlations ----------------------------------------------------------------------

def test_axis_label():
    assert axis_label(TARGET) == "median_house_value (USD)"
    assert axis_label("something_else") == "something_else"


def test_target_correlations_ranked_by_absolute_value(small):
    r = target_correlations(small)
    assert TARGET not in r.index
    assert set(r.index) == set(small.select_dtypes("number").columns) - {TARGET}
    assert list(r.abs()) == sorted(r.abs(), reverse=True)
    assert r.index[0] == "median_income"
    expected = small.select_dtypes("number").corr(method="spearman")[TARGET]
    assert r["latitude"] == pytest.approx(expected["latitude"])


def test_target_correlations_errors(small):
    with pytest.raises(ValueError, match="method must be one of"):
        target_correlations(small, method="cosine")
    with pytest.raises(KeyError, match="not_there"):
        target_correlations(small, target="not_there")
    with pytest.raises(TypeError, match="not numeric"):
        target_correlations(small, target="ocean_proximity")


# --- sql ------------------------------------------------------------------------------------------

def test_sql_queries_dataframes(small):
    out = sql("SELECT ocean_proximity, count(*) AS n FROM h GROUP BY ALL ORDER BY n DESC, ocean_proximity", h=small)
    assert isinstance(out, pd.DataFrame)
    assert out["n"].sum() == len(small)
    assert out.iloc[0].tolist() == ["<1H OCEAN", 2]


def test_sql_joins_two_tables(small):
    lookup = pd.DataFrame({"ocean_proximity": ["NEAR BAY", "<1H OCEAN", "INLAND", "NEAR OCEAN"],
                           "coastal": [True, True, False, True]})
    out = sql("SELECT coastal, count(*) AS n FROM h JOIN c USING (ocean_proximity) GROUP BY coastal ORDER BY coastal",
              h=small, c=lookup)
    assert out["n"].tolist() == [1, 5]


def test_sql_bad_column_names_the_problem_and_the_tables(small):
    with pytest.raises(SQLError) as info:
        sql("SELECT median_house_valu FROM h", h=small)
    msg = str(info.value)
    assert "median_house_valu" in msg and "Binder" in msg
    assert "Tables available: h(longitude" in msg
    assert "Query:\nSELECT median_house_valu FROM h" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_sql_syntax_error_and_unknown_table(small):
    with pytest.raises(SQLError, match="syntax error"):
        sql("SELEC * FROM h", h=small)
    with pytest.raises(SQLError, match="nope"):
        sql("SELECT * FROM nope", h=small)


def test_sql_sees_only_the_tables_passed(small):
    hidden = small  # a local DataFrame DuckDB could otherwise find by its variable name  # noqa: F841
    with pytest.raises(SQLError, match="Tables available: none"):
        sql("SELECT * FROM hidden")


def test_sql_input_errors(small):
    assert issubclass(SQLError, ValueError)
    with pytest.raises(ValueError, match="empty"):
        sql("   ", h=small)
    with pytest.raises(TypeError, match="table 't' must be a pandas DataFrame, not list"):
        sql("SELECT 1", t=[1, 2])


# --- plots ----------------------------------------------------------------------------------------

def test_plot_geo_returns_labelled_axes(small):
    ax = plot_geo(small)
    assert isinstance(ax, Axes)
    assert ax.get_title() == "Districts coloured by median_house_value, size ∝ population"
    assert ax.get_xlabel() == "longitude (°)" and ax.get_ylabel() == "latitude (°)"
    points = ax.collections[0]
    assert len(points.get_offsets()) == len(small)
    np.testing.assert_allclose(points.get_array(), small[TARGET])
    assert len(ax.figure.axes) == 2  # the axes and its colour bar
    assert ax.figure.axes[1].get_ylabel() == "median_house_value (USD)"


def test_plot_geo_draws_into_given_axes_and_checks_columns(small):
    fig, ax = plt.subplots()
    assert plot_geo(small, ax=ax, column="median_income", size=None) is ax
    assert ax.get_title() == "Districts coloured by median_income"
    with pytest.raises(KeyError, match="latitude"):
        plot_geo(small.drop(columns="latitude"))


def test_plot_distributions_one_axes_per_column(small):
    cols = [TARGET, "median_income", "population", "latitude"]
    axes = plot_distributions(small, cols, bins=5, ncols=3)
    assert len(axes) == len(cols) and all(isinstance(a, Axes) for a in axes)
    assert [a.get_title() for a in axes] == cols
    assert axes[0].get_xlabel() == "median_house_value (USD)" and axes[0].get_ylabel() == "rows"
    assert len(axes[0].get_figure().axes) == len(cols)  # the two unused grid cells are removed
    assert axes[0].get_legend() is not None and axes[2].get_legend() is None  # caps marked on capped columns


def test_plot_distributions_errors(small):
    with pytest.raises(KeyError, match="nope"):
        plot_distributions(small, ["nope"])
    with pytest.raises(ValueError, match="no numeric column"):
        plot_distributions(small[["ocean_proximity"]])


def test_plot_correlations(small):
    ax = plot_correlations(small, method="pearson")
    assert isinstance(ax, Axes)
    assert ax.get_title() == "Pearson correlation of the numeric columns"
    assert ax.get_xlabel() and ax.get_ylabel()
    with pytest.raises(ValueError, match="method must be one of"):
        plot_correlations(small, method="cosine")
    with pytest.raises(ValueError, match="at least two numeric columns"):
        plot_correlations(small[["ocean_proximity", TARGET]])


def test_plot_by_category_orders_by_median(small):
    ax = plot_by_category(small)
    assert ax.get_title() == "median_house_value by ocean_proximity"
    assert ax.get_xlabel() == "ocean_proximity" and ax.get_ylabel() == "median_house_value (USD)"
    labels = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
    assert labels == ["INLAND", "NEAR OCEAN", "<1H OCEAN", "NEAR BAY"]
    with pytest.raises(KeyError, match="ocean_proximity"):
        plot_by_category(small.drop(columns="ocean_proximity"))


# --- module contract and calibration ----------------------------------------------------------------

def test_import_is_light():
    code = ("import sys, mlops_course.eda; "
            "print(','.join(m for m in ('matplotlib', 'seaborn', 'duckdb', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing mlops_course.eda imported heavy libraries: {out}"


def test_public_api():
    for name in ["summarize", "capped_shares", "plot_geo", "plot_distributions", "plot_correlations",
                 "target_correlations", "plot_by_category", "sql", "SQLError", "axis_label"]:
        assert name in eda.__all__


def test_real_table_calibration(shared_csv):
    real = pd.read_csv(shared_csv)
    c = capped_shares(real)
    assert c["n_capped"].to_dict() == {"housing_median_age": 1273, "median_income": 49, TARGET: 965}
    s = summarize(real)
    assert s["missing"].to_dict()["total_bedrooms"] == 207 and s["missing"].sum() == 207
    assert target_correlations(real).index[0] == "median_income"


def test_on_the_simulated_table():
    from mlops_course.data import COLUMNS, HousingMarket

    df = HousingMarket(seed=42).sample(n=3_000)
    s = summarize(df)
    assert list(s.index) == COLUMNS and s.loc["total_bedrooms", "missing"] > 0
    c = capped_shares(df)
    assert (c["n_capped"] > 0).all() and (c["share"] < 0.2).all()
    assert target_correlations(df).index[0] == "median_income"
    out = sql("SELECT ocean_proximity, count(*) AS n FROM h GROUP BY ALL", h=df)
    assert out["n"].sum() == len(df)

"""The housing data API: the simulator's schema, determinism, realism against the real table, drift scenarios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlops_course.data import (
    CAPS,
    COLUMNS,
    FEATURES,
    NEW_CATEGORY,
    NUMERIC_COLUMNS,
    OCEAN_CATEGORIES,
    SCENARIOS,
    TARGET,
    HousingMarket,
    calibration_path,
    load_calibration,
    load_housing,
)
from mlops_course.validate import validate_housing

SEED = 42


@pytest.fixture(scope="module")
def real_table(shared_csv) -> pd.DataFrame:
    return pd.read_csv(shared_csv)


@pytest.fixture(scope="module")
def market() -> HousingMarket:
    return HousingMarket(seed=SEED)


@pytest.fixture(scope="module")
def sim(market) -> pd.DataFrame:
    return market.sample()


# --- schema and determinism -------------------------------------------------------------------------------------

def test_constants():
    assert COLUMNS[-1] == "ocean_proximity" and len(COLUMNS) == 10
    assert NUMERIC_COLUMNS == COLUMNS[:-1]
    assert TARGET == "median_house_value" and TARGET not in FEATURES and len(FEATURES) == 9
    assert OCEAN_CATEGORIES == ["<1H OCEAN", "INLAND", "NEAR OCEAN", "NEAR BAY", "ISLAND"]


def test_sample_schema_and_dtypes(sim):
    assert list(sim.columns) == COLUMNS
    assert len(sim) == 20_640
    assert all(sim[c].dtype == np.float64 for c in NUMERIC_COLUMNS)
    assert sim["ocean_proximity"].dtype == object
    assert set(sim["ocean_proximity"]) <= set(OCEAN_CATEGORIES)
    assert isinstance(sim.index, pd.RangeIndex)


def test_sample_passes_the_schema(sim):
    assert validate_housing(sim) is sim


def test_sample_invariants(sim):
    b = sim.dropna(subset=["total_bedrooms"])
    assert (b["total_bedrooms"] <= b["total_rooms"]).all()
    assert (sim["households"] <= sim["population"]).all()
    for c in ["housing_median_age", "total_rooms", "population", "households"]:
        assert (sim[c] % 1 == 0).all(), c
    assert sim[NUMERIC_COLUMNS].drop(columns="total_bedrooms").notna().all().all()
    for c, cap in CAPS.items():
        assert sim[c].max() == cap, c


def test_sample_is_deterministic(market):
    a, b = market.sample(500), HousingMarket(seed=SEED).sample(500)
    pd.testing.assert_frame_equal(a, b)
    assert not HousingMarket(seed=SEED + 1).sample(500).equals(a)


def test_batch_is_deterministic(market):
    for scenario in SCENARIOS:
        a = market.batch(7, scenario=scenario, n=300)
        pd.testing.assert_frame_equal(a, HousingMarket(seed=SEED).batch(7, scenario=scenario, n=300))
        assert list(a.columns) == COLUMNS and len(a) == 300
    assert not market.batch(7, n=300).equals(market.batch(8, n=300))


def test_scenarios_share_the_months_base_rows(market):
    "Abrupt scenarios change only their own columns of the month's base batch."
    base = market.batch(8, "none", n=400)
    for scenario in ["inflation", "new_category", "unit_bug", "missing_spike"]:
        drifted = market.batch(8, scenario, n=400)
        untouched = [c for c in COLUMNS if c not in SCENARIOS[scenario]["columns"]]
        pd.testing.assert_frame_equal(base[untouched], drifted[untouched])


def test_bad_arguments_fail_clearly(market):
    with pytest.raises(ValueError, match="unknown scenario 'bogus'.*inflation"):
        market.batch(1, scenario="bogus")
    with pytest.raises(ValueError, match="month must be an integer >= 0"):
        market.batch(-1)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        market.sample(0)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        market.sample(2.5)


def test_packaged_calibration_is_package_data():
    p = calibration_path()
    assert p.is_file() and p.parent.name == "calibration"
    params = load_calibration()
    assert params["columns"] == NUMERIC_COLUMNS and params["categories"] == OCEAN_CATEGORIES
    assert len(params["weights"]) == len(params["means"]) == len(params["covariances"])
    assert p.stat().st_size < 300_000, "the calibration holds fitted parameters only, not data"


def test_load_housing_simulated(monkeypatch, tmp_path):
    from mlops_course.config import get_settings
    monkeypatch.setenv("MLOPS_COURSE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("MLOPS_COURSE_DATA_SOURCE", "simulated")
    monkeypatch.setenv("MLOPS_COURSE_SEED", "7")
    get_settings.cache_clear()
    try:
        df = load_housing()
        pd.testing.assert_frame_equal(df, HousingMarket(seed=7).sample(20_640))
    finally:
        get_settings.cache_clear()


def test_load_housing_csv_path(monkeypatch, tmp_path, market):
    from mlops_course.config import get_settings
    path = tmp_path / "mine.csv"
    market.sample(200).to_csv(path, index=False)
    monkeypatch.setenv("MLOPS_COURSE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("MLOPS_COURSE_DATA_SOURCE", str(path))
    get_settings.cache_clear()
    try:
        df = load_housing()
        assert len(df) == 200 and list(df.columns) == COLUMNS
    finally:
        get_settings.cache_clear()


def test_fit_recalibrates_from_a_table(market):
    "The estimator contract: fit learns `params_`, returns self, and the fitted market resembles its input."
    small = market.sample(3_000)
    fitted = HousingMarket(seed=1).fit(small, n_components=4, n_knots=101)
    assert fitted.params_["columns"] == NUMERIC_COLUMNS
    out = fitted.sample(3_000)
    assert list(out.columns) == COLUMNS
    assert stats.ks_2samp(small["median_income"], out["median_income"]).statistic < 0.1


# --- realism against the real table (needs ../shared/data/california_housing.csv) ---------------------------------

def test_ks_per_column(real_table, sim):
    ks = {c: stats.ks_2samp(real_table[c].dropna(), sim[c].dropna()).statistic for c in NUMERIC_COLUMNS}
    bad = {c: round(v, 3) for c, v in ks.items() if v > 0.10}
    assert not bad, f"KS statistic above 0.10: {bad}"


def test_spearman_matrix(real_table, sim):
    diff = (real_table[NUMERIC_COLUMNS].corr("spearman") - sim[NUMERIC_COLUMNS].corr("spearman")).abs()
    assert diff.to_numpy().max() <= 0.15, f"max Spearman difference {diff.to_numpy().max():.3f}\n{diff.round(2)}"


def test_category_shares(real_table, sim):
    real = real_table["ocean_proximity"].value_counts(normalize=True)
    fake = sim["ocean_proximity"].value_counts(normalize=True).reindex(real.index, fill_value=0)
    assert ((real - fake).abs() * 100).max() <= 3, pd.DataFrame({"real": real, "sim": fake})
    assert 0 < fake["ISLAND"] < 0.002, "ISLAND must exist and stay rare"


def test_missing_and_capped_shares(real_table, sim):
    pairs = {"missing total_bedrooms": (real_table["total_bedrooms"].isna().mean(), sim["total_bedrooms"].isna().mean())}
    for c, cap in CAPS.items():
        pairs[f"{c} == {cap}"] = ((real_table[c] == cap).mean(), (sim[c] == cap).mean())
    bad = {k: (round(100 * r, 2), round(100 * s, 2)) for k, (r, s) in pairs.items() if abs(r - s) > 0.01}
    assert not bad, f"shares (real %, simulated %) more than 1 point apart: {bad}"


def _model():
    "The week-02 model when it exists, else an equivalent scikit-learn pipeline."
    try:
        from mlops_course.train import build_model
        return build_model(seed=SEED)
    except ImportError:
        from sklearn.compose import make_column_transformer
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder
        pre = make_column_transformer((SimpleImputer(strategy="median"), NUMERIC_COLUMNS[:-1]),
                                      (OneHotEncoder(handle_unknown="ignore"), ["ocean_proximity"]))
        return make_pipeline(pre, HistGradientBoostingRegressor(max_iter=300, random_state=SEED))


def test_train_on_simulated_test_on_real(real_table, sim):
    from sklearn.metrics import r2_score
    model = _model().fit(sim[FEATURES], sim[TARGET])
    r2 = r2_score(real_table[TARGET], model.predict(real_table[FEATURES]))
    assert r2 >= 0.6, f"R² on the real table of a model trained on the simulator: {r2:.3f}"


# --- drift scenarios ------------------------------------------------------------------------------------------

def _pvalues(ref: pd.DataFrame, batch: pd.DataFrame) -> dict[str, float]:
    "KS p-value per numeric column, chi-square for the category and for the missing share of total_bedrooms."
    p = {c: stats.ks_2samp(ref[c].dropna(), batch[c].dropna()).pvalue for c in NUMERIC_COLUMNS}
    cats = sorted(set(ref["ocean_proximity"]) | set(batch["ocean_proximity"]))
    counts = [[(d["ocean_proximity"] == k).sum() for k in cats] for d in (ref, batch)]
    p["ocean_proximity"] = stats.chi2_contingency(counts)[1]
    na = [[d["total_bedrooms"].isna().sum(), d["total_bedrooms"].notna().sum()] for d in (ref, batch)]
    p["total_bedrooms missing"] = stats.chi2_contingency(na)[1]
    return p


@pytest.mark.parametrize("month", [1, 4, 6, 12])
def test_no_drift_is_not_detected(market, sim, month):
    p = _pvalues(sim, market.batch(month, "none"))
    assert min(p.values()) >= 0.01, {k: round(v, 4) for k, v in p.items() if v < 0.01}


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "none"])
def test_scenario_is_detectable_from_its_documented_month(market, sim, scenario):
    spec = SCENARIOS[scenario]
    month = spec["detectable_from"]
    p = _pvalues(sim, market.batch(month, scenario))
    for col in spec["columns"]:
        key = "total_bedrooms missing" if scenario == "missing_spike" else col
        assert p[key] < 0.01, f"{scenario}: {key} not detectable at month {month} (p = {p[key]:.4f})"
    before = spec["onset"] - 1
    pd.testing.assert_frame_equal(market.batch(before, scenario), market.batch(before, "none"))


def test_new_category_and_unit_bug_break_the_schema(market):
    from mlops_course.validate import DataValidationError
    with pytest.raises(DataValidationError, match=f"ocean_proximity.*isin.*{NEW_CATEGORY}"):
        validate_housing(market.batch(SCENARIOS["new_category"]["onset"], "new_category"))
    with pytest.raises(DataValidationError, match="median_income.*less_than_or_equal_to"):
        validate_housing(market.batch(SCENARIOS["unit_bug"]["onset"], "unit_bug"))
    for scenario in ["none", "inflation", "income_shift", "missing_spike"]:
        validate_housing(market.batch(12, scenario))


def test_importing_and_sampling_stay_light():
    "Heavy libraries are imported where they are needed (calibration, validation), not to import or to sample."
    import subprocess
    import sys
    code = ("import sys, mlops_course.data as d, mlops_course.validate; d.HousingMarket(1).batch(3, 'unit_bug', n=50); "
            "print(sorted(m for m in ('sklearn', 'scipy', 'pandera', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "none"])
def test_documented_month_is_the_first_detectable_one(market, sim, scenario):
    "`detectable_from` is the *first* month a 2,000-row batch of the course seed is detectable, not any later one."
    spec = SCENARIOS[scenario]
    before = spec["detectable_from"] - 1
    p = _pvalues(sim, market.batch(before, scenario))
    for col in spec["columns"]:
        key = "total_bedrooms missing" if scenario == "missing_spike" else col
        assert p[key] >= 0.01, f"{scenario}: {key} already detectable at month {before} (p = {p[key]:.4f})"


def test_imports_flow_one_way():
    "schema -> validate, simulator -> data: the validator and the simulator never import the loader (no cycle)."
    import subprocess
    import sys
    code = ("import sys, mlops_course.validate, mlops_course.simulator; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('mlops_course.'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "mlops_course.data" not in loaded, loaded
    assert "mlops_course.schema" in loaded


def test_every_error_of_the_data_stage_is_a_course_error():
    from mlops_course import data, eda, features, simulator, train, validate
    from mlops_course.errors import CourseError
    errors = [data.DataSourceError, validate.DataValidationError, simulator.SimulatorError, eda.SQLError,
              eda.MissingColumnError, features.FeatureError, train.ModelError]
    assert all(issubclass(e, CourseError) for e in errors)
    assert issubclass(validate.DataValidationError, ValueError) and issubclass(data.DataSourceError, RuntimeError)
    with pytest.raises(CourseError, match="unknown scenario"):
        HousingMarket(seed=1).batch(1, "earthquake")

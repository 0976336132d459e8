"""Week 02 features: splits without leakage, the input contract, the ratio transformer, the preprocessor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError

from mlops_course.data import FEATURES, NEW_CATEGORY, TARGET, HousingMarket
from mlops_course.features import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    RatioFeatures,
    SelectFeatures,
    build_preprocessor,
    check_features,
    income_band,
    split_data,
)

SEED = 42


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return HousingMarket(seed=SEED).sample(n=3_000)


# --- income bands and splits ------------------------------------------------------------------------------------

def test_income_band_edges_and_missing():
    s = pd.Series([0.0, 1.5, 1.51, 3.0, 4.5, 6.0, 6.01, 15.0001, np.nan, -1.0])
    assert income_band(s).tolist() == [1, 1, 2, 2, 3, 4, 5, 5, 0, 0]


def test_split_sizes_disjoint_and_complete(table):
    train, val, test = split_data(table, seed=SEED)
    assert (len(train), len(val), len(test)) == (1_800, 600, 600)
    idx = [set(p.index) for p in (train, val, test)]
    assert not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2]), "a district is in two sets"
    assert idx[0] | idx[1] | idx[2] == set(table.index)
    assert list(train.columns) == list(table.columns)


def test_split_is_seeded(table):
    a, b, c = split_data(table, seed=1), split_data(table, seed=1), split_data(table, seed=2)
    assert all(x.index.equals(y.index) for x, y in zip(a, b, strict=True))
    assert not a.test.index.equals(c.test.index)


def test_split_default_seed_comes_from_settings(table):
    from mlops_course.config import get_settings
    assert split_data(table).test.index.equals(split_data(table, seed=get_settings().seed).test.index)


def test_split_is_stratified_on_income_band(table):
    share = lambda d: income_band(d["median_income"]).value_counts(normalize=True)  # noqa: E731
    ref = share(table)
    for part in split_data(table, seed=SEED):
        assert (share(part).reindex(ref.index, fill_value=0) - ref).abs().max() < 0.01


def test_split_returns_copies(table):
    train, _, _ = split_data(table, seed=SEED)
    train.loc[train.index[0], "median_income"] = -99.0
    assert (table["median_income"] != -99.0).all()


def test_split_custom_sizes(table):
    train, val, test = split_data(table, seed=SEED, test_size=0.1, val_size=0.3)
    assert (len(train), len(val), len(test)) == (1_800, 900, 300)


@pytest.mark.parametrize("sizes", [(0.0, 0.2), (0.5, 0.5), (1.2, 0.1), (0.2, -0.1)])
def test_split_rejects_bad_sizes(table, sizes):
    with pytest.raises(ValueError, match="test_size and val_size"):
        split_data(table, test_size=sizes[0], val_size=sizes[1])


def test_split_rejects_bad_input(table):
    with pytest.raises(TypeError, match="DataFrame"):
        split_data(table.to_numpy())
    with pytest.raises(ValueError, match="too few"):
        split_data(table.head(2))
    with pytest.raises(ValueError, match="'median_income'.*stratify=False"):
        split_data(table.drop(columns=["median_income"]))
    assert sum(map(len, split_data(table.drop(columns=["median_income"]), stratify=False))) == len(table)


def test_split_falls_back_with_a_warning_when_a_band_is_tiny(table):
    tiny = pd.concat([table[income_band(table["median_income"]) == 3].head(40),
                      table[income_band(table["median_income"]) == 5].head(1)])
    with pytest.warns(UserWarning, match="cannot stratify"):
        parts = split_data(tiny, seed=SEED)
    assert sum(map(len, parts)) == len(tiny)


# --- the input contract -------------------------------------------------------------------------------------------

def test_check_features_accepts_the_table_and_names_problems(table):
    assert check_features(table) is table
    with pytest.raises(ValueError, match=r"'households' is missing; 'median_income' is missing"):
        check_features(table.drop(columns=["median_income", "households"]))
    bad = table.assign(total_rooms=table["total_rooms"].astype(str), ocean_proximity=1.0, population=True)
    with pytest.raises(ValueError) as e:
        check_features(bad)
    msg = str(e.value)
    assert "'total_rooms' has dtype object, expected numbers" in msg
    assert "'population' has dtype bool" in msg
    assert "'ocean_proximity' has dtype float64, expected text" in msg
    with pytest.raises(TypeError, match="DataFrame"):
        check_features(table.to_numpy())


def test_check_features_accepts_ints_categories_and_strings(table):
    ok = table.assign(households=table["households"].fillna(0).astype(int),
                      ocean_proximity=table["ocean_proximity"].astype("category"))
    check_features(ok)
    check_features(table.assign(ocean_proximity=table["ocean_proximity"].astype("string")))


def test_select_features_orders_and_drops_extra_columns(table):
    shuffled = table[list(reversed(table.columns))].assign(extra=1)
    step = SelectFeatures().fit(shuffled)
    out = step.transform(shuffled)
    assert list(out.columns) == FEATURES
    assert list(step.get_feature_names_out()) == FEATURES
    with pytest.raises(ValueError, match="'latitude' is missing"):
        step.transform(table.drop(columns=["latitude"]))


def test_select_features_must_be_fitted(table):
    with pytest.raises(NotFittedError):
        SelectFeatures().transform(table)


# --- RatioFeatures: the estimator contract --------------------------------------------------------------------------

@pytest.fixture
def toy() -> pd.DataFrame:
    return pd.DataFrame({"total_rooms": [10.0, 6.0, 8.0], "total_bedrooms": [2.0, np.nan, 4.0],
                         "population": [8.0, 3.0, 2.0], "households": [4.0, 0.0, 2.0]})


def test_ratio_values_and_zero_denominator(toy):
    out = RatioFeatures().fit_transform(toy)
    np.testing.assert_allclose(out["rooms_per_household"], [2.5, np.nan, 4.0])
    np.testing.assert_allclose(out["bedrooms_per_room"], [0.2, np.nan, 0.5])
    np.testing.assert_allclose(out["population_per_household"], [2.0, np.nan, 1.0])
    assert not np.isinf(out.to_numpy()).any()
    pd.testing.assert_frame_equal(out[toy.columns], toy)  # the inputs pass through untouched


def test_ratio_estimator_contract(toy):
    r = RatioFeatures(ratios=(("a", "population", "households"),))
    assert r.get_params() == {"ratios": (("a", "population", "households"),)}
    assert not [k for k in vars(r) if k.endswith("_")], "__init__ must not learn anything"
    assert r.fit(toy) is r
    assert list(r.feature_names_in_) == list(toy.columns) and r.n_features_in_ == 4
    assert list(r.get_feature_names_out()) == [*toy.columns, "a"]
    c = clone(r)
    assert c.get_params() == r.get_params() and not hasattr(c, "feature_names_in_")
    with pytest.raises(NotFittedError):
        RatioFeatures().transform(toy)


def test_ratio_accepts_arrays_after_fitting_on_a_frame(toy):
    r = RatioFeatures().fit(toy)
    pd.testing.assert_frame_equal(r.transform(toy.to_numpy()), r.transform(toy))
    with pytest.raises(TypeError, match="DataFrame"):
        RatioFeatures().fit(toy.to_numpy())
    with pytest.raises(ValueError, match=r"\['households'\]"):
        RatioFeatures().fit(toy.drop(columns=["households"]))


# --- the preprocessor -------------------------------------------------------------------------------------------

def test_column_lists_come_from_the_data_module():
    assert NUMERIC_FEATURES + CATEGORICAL_FEATURES == FEATURES
    assert CATEGORICAL_FEATURES == ["ocean_proximity"] and TARGET not in NUMERIC_FEATURES


def test_preprocessor_output(table):
    train, val, _ = split_data(table, seed=SEED)
    pre = build_preprocessor()
    assert isinstance(pre, ColumnTransformer)
    pre.fit(train)
    names = list(pre.get_feature_names_out())
    assert {"rooms_per_household", "bedrooms_per_room", "population_per_household"} <= set(names)
    assert [n for n in names if n.startswith("ocean_proximity_")], names
    out = pre.transform(val)
    assert out.shape == (len(val), len(names)) and not np.isnan(out).any()
    n_num = len(NUMERIC_FEATURES) + 3
    np.testing.assert_allclose(pre.transform(train)[:, :n_num].mean(axis=0), 0, atol=1e-9)


def test_preprocessor_learns_from_train_only(table):
    train, _, _ = split_data(table, seed=SEED)
    pre = build_preprocessor().fit(train)
    names = list(pre.get_feature_names_out())
    imputer = pre.named_transformers_["num"].named_steps["impute"]
    assert imputer.statistics_[names.index("total_bedrooms")] == train["total_bedrooms"].median()
    scaler = pre.named_transformers_["num"].named_steps["scale"]
    assert scaler.mean_[names.index("median_income")] == pytest.approx(train["median_income"].mean())


def test_preprocessor_ignores_unknown_categories(table):
    pre = build_preprocessor().fit(table)
    n_cat = len(pre.named_transformers_["cat"].get_feature_names_out())
    out = pre.transform(table.head(5).assign(ocean_proximity=NEW_CATEGORY))
    assert out[:, -n_cat:].sum() == 0


def test_preprocessor_imputes_any_missing_number(table):
    pre = build_preprocessor().fit(table)
    holes = table.head(20).copy()
    holes.loc[holes.index[:5], ["median_income", "households"]] = np.nan
    assert not np.isnan(pre.transform(holes)).any()


def test_preprocessor_without_scaling(table):
    pre = build_preprocessor(scale=False).fit(table)
    col = list(pre.get_feature_names_out()).index("median_income")
    np.testing.assert_allclose(pre.transform(table)[:, col], table["median_income"])

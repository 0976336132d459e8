"""Week 02 train: model pipelines, metrics, reports, and behavioural tests of the housing model."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlops_course.data import FEATURES, NEW_CATEGORY, TARGET, HousingMarket
from mlops_course.features import split_data
from mlops_course.train import (
    CLASSIFIER_KINDS,
    DEFAULT_MODEL,
    MODEL_KINDS,
    X_y,
    build_classifier,
    build_model,
    classification_metrics,
    evaluate,
    evaluation_report,
    plot_residuals,
    regression_metrics,
    train_model,
)

SEED = 42


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    "Gradient boosting spins OpenMP threads; on a shared 2-core runner one thread per test process is faster."
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def splits():
    return split_data(HousingMarket(seed=SEED).sample(n=4_000), seed=SEED)


@pytest.fixture(scope="module")
def model(splits):
    return train_model(splits.train, DEFAULT_MODEL, seed=SEED)


@pytest.fixture(scope="module")
def baseline(splits):
    return train_model(splits.train, "mean")


# --- building models ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_build_model_is_a_seeded_pipeline(kind):
    m = build_model(kind, seed=7)
    assert isinstance(m, Pipeline)
    assert [name for name, _ in m.steps] == ["check", "preprocess", "regressor"]
    reg = m.named_steps["regressor"]
    if "random_state" in reg.get_params():
        assert reg.random_state == 7
    if "n_jobs" in reg.get_params():
        assert reg.n_jobs in (None, 1, 2), "2 cores at most (None means 1)"


def test_default_model_and_seed():
    from mlops_course.config import get_settings
    assert DEFAULT_MODEL in MODEL_KINDS and DEFAULT_MODEL in ("hgb", "forest")
    assert build_model().named_steps["regressor"].random_state == get_settings().seed


def test_build_model_params_and_errors():
    assert build_model("ridge", alpha=3.0).named_steps["regressor"].alpha == 3.0
    assert build_model("tree", max_depth=4).named_steps["regressor"].max_depth == 4
    with pytest.raises(ValueError, match="unknown model kind 'svm'.*'hgb'"):
        build_model("svm")
    with pytest.raises(ValueError, match=r"has no parameter \['depth'\]"):
        build_model("tree", depth=4)


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_build_classifier(kind):
    m = build_classifier(kind)
    assert [name for name, _ in m.steps] == ["check", "preprocess", "classifier"]
    with pytest.raises(ValueError, match="unknown model kind"):
        build_classifier("forest")


def test_training_is_deterministic(splits):
    for kind, params in [("forest", {"n_estimators": 10}), ("hgb", {"max_iter": 30})]:
        a = train_model(splits.train, kind, seed=SEED, **params).predict(splits.val)
        b = train_model(splits.train, kind, seed=SEED, **params).predict(splits.val)
        np.testing.assert_allclose(a, b, rtol=1e-12)  # forest threads may sum trees in another order


def test_pipeline_works_with_clone_search_and_pickle(splits):
    from sklearn.model_selection import GridSearchCV
    X, y = X_y(splits.train)
    search = GridSearchCV(build_model("ridge"), {"regressor__alpha": [0.1, 10.0]}, cv=2).fit(X, y)
    assert search.best_params_["regressor__alpha"] in (0.1, 10.0)
    fitted = search.best_estimator_
    assert not hasattr(clone(fitted).named_steps["check"], "feature_names_in_")
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(splits.val), fitted.predict(splits.val))
    assert list(fitted.feature_names_in_) == FEATURES


# --- inputs ---------------------------------------------------------------------------------------------------------

def test_X_y(splits):
    X, y = X_y(splits.train.assign(extra=1))
    assert list(X.columns) == FEATURES and y.name == TARGET and len(X) == len(y) == len(splits.train)
    with pytest.raises(ValueError, match="no target column 'median_house_value'"):
        X_y(splits.train.drop(columns=[TARGET]))
    with pytest.raises(ValueError, match="2 rows have no 'median_house_value'"):
        X_y(splits.train.assign(**{TARGET: [np.nan, np.nan, *splits.train[TARGET].iloc[2:]]}))
    with pytest.raises(ValueError, match="'median_house_value' has dtype object"):
        X_y(splits.train.assign(**{TARGET: splits.train[TARGET].astype(str)}))


def test_fit_and_predict_name_bad_columns(splits, baseline):
    with pytest.raises(ValueError, match="'median_income' is missing"):
        build_model("linear").fit(splits.train.drop(columns=["median_income"]), splits.train[TARGET])
    with pytest.raises(ValueError, match="'median_income' is missing"):
        baseline.predict(splits.val.drop(columns=["median_income"]))
    with pytest.raises(ValueError, match="'housing_median_age' has dtype object, expected numbers"):
        baseline.predict(splits.val.assign(housing_median_age=splits.val["housing_median_age"].astype(str)))
    with pytest.raises(TypeError, match="DataFrame"):
        baseline.predict(splits.val[FEATURES].to_numpy())


# --- metrics and reports --------------------------------------------------------------------------------------------

def test_regression_metrics_values():
    m = regression_metrics([100.0, 200.0, 300.0], [110.0, 190.0, 330.0])
    assert set(m) == {"rmse", "mae", "r2", "mape"} and all(isinstance(v, float) for v in m.values())
    assert m["rmse"] == pytest.approx(np.sqrt(1100 / 3))
    assert m["mae"] == pytest.approx(50 / 3)
    assert m["r2"] == pytest.approx(1 - 1100 / 20_000)
    assert m["mape"] == pytest.approx(0.25 / 3)
    perfect = regression_metrics(pd.Series([1.0, 2.0]), np.array([1.0, 2.0]))
    assert perfect["rmse"] == 0 and perfect["r2"] == 1


def test_regression_metrics_errors():
    with pytest.raises(ValueError, match="same length"):
        regression_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-empty"):
        regression_metrics([], [])
    with pytest.raises(ValueError, match="NaN"):
        regression_metrics([1.0, 2.0], [1.0, np.nan])


def test_classification_metrics_values():
    m = classification_metrics([1, 1, 1, 0, 0], [1, 1, 0, 1, 0])
    assert m == pytest.approx({"accuracy": 0.6, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    assert classification_metrics([1, 0], [0, 0])["precision"] == 0.0  # no positive prediction: 0, no warning
    with pytest.raises(ValueError, match="same length"):
        classification_metrics([1, 0], [1])


def test_evaluate_and_report(splits, model, baseline):
    m = evaluate(model, splits.val)
    assert m == regression_metrics(splits.val[TARGET], model.predict(splits.val))
    report = evaluation_report({"mean": baseline, DEFAULT_MODEL: model}, splits.val)
    assert list(report.index) == [DEFAULT_MODEL, "mean"] and report.index.name == "model"
    assert list(report.columns) == ["rmse", "mae", "r2", "mape"]
    with pytest.raises(ValueError, match="at least one model"):
        evaluation_report({}, splits.val)


def test_plot_residuals(splits, model):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plot_residuals(splits.val[TARGET], model.predict(splits.val), title="hgb")
    assert [ax.get_title() for ax in fig.axes] == ["hgb: actual vs predicted", "hgb: residuals"]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    plt.close(fig)


def test_logistic_beats_the_majority_class(splits):
    X, y = X_y(splits.train)
    Xv, yv = X_y(splits.val)
    threshold = y.median()
    scores = {kind: classification_metrics(yv > threshold, build_classifier(kind).fit(X, y > threshold).predict(Xv))
              for kind in CLASSIFIER_KINDS}
    assert scores["logistic"]["accuracy"] > scores["majority"]["accuracy"] + 0.2
    assert scores["logistic"]["f1"] > 0.7


# --- behavioural tests of the week-02 model -------------------------------------------------------------------------

def test_invariance_to_row_order_batching_and_extra_columns(splits, model):
    X = splits.val[FEATURES]
    p = pd.Series(model.predict(X), index=X.index)
    shuffled = X.sample(frac=1, random_state=SEED)
    np.testing.assert_allclose(model.predict(shuffled), p.loc[shuffled.index])
    np.testing.assert_allclose(model.predict(X[list(reversed(FEATURES))].assign(note="x")), p)
    np.testing.assert_allclose([model.predict(X.iloc[[i]])[0] for i in range(5)], p.iloc[:5])


def test_directional_higher_income_higher_value(splits, model):
    X = splits.val[FEATURES]
    base = model.predict(X)
    richer = model.predict(X.assign(median_income=X["median_income"] * 1.25))
    poorer = model.predict(X.assign(median_income=X["median_income"] * 0.8))
    assert richer.mean() > base.mean() > poorer.mean()
    assert (richer > base).mean() > 0.7, "most districts should be predicted more valuable when richer"


def test_directional_linear_model_income_coefficient(splits):
    linear = train_model(splits.train, "linear")
    names = list(linear[:-1].get_feature_names_out())
    assert linear.named_steps["regressor"].coef_[names.index("median_income")] > 0


def test_minimum_functionality_beats_the_mean_baseline(splits, model, baseline):
    ours, mean = evaluate(model, splits.val), evaluate(baseline, splits.val)
    assert abs(mean["r2"]) < 0.02
    assert ours["rmse"] < 0.65 * mean["rmse"], (ours, mean)
    assert ours["r2"] > 0.6 and ours["mape"] < 0.35, ours
    assert evaluate(train_model(splits.train, "linear"), splits.val)["rmse"] < 0.8 * mean["rmse"]


def test_predictions_are_plausible_and_robust_to_messy_rows(splits, model):
    X = splits.val[FEATURES]
    p = model.predict(X)
    assert np.isfinite(p).all() and 10_000 < np.median(p) < 500_001
    messy = X.head(3).assign(ocean_proximity=NEW_CATEGORY, total_bedrooms=np.nan)
    assert np.isfinite(model.predict(messy)).all()


def test_default_model_on_the_real_table(shared_csv):
    train, val, test = split_data(pd.read_csv(shared_csv), seed=SEED)
    r2 = evaluate(train_model(train, DEFAULT_MODEL, seed=SEED), test)["r2"]
    assert r2 >= 0.78, f"the week-02 model should explain most of the variance of real prices, R² = {r2:.3f}"

"""Model families, each a scikit-learn Pipeline: preprocessing (median-imputed, scaled numbers;
one-hot categories) then the estimator, for classification or regression.

| family | estimator                         | incremental update (``retrain strategy=incremental``)       |
|--------|-----------------------------------|-------------------------------------------------------------|
| xgboost| XGBClassifier / XGBRegressor      | training continuation: ``n_more`` boosting rounds on new data |
| sgd    | SGDClassifier (log loss) / SGDRegressor | ``partial_fit`` epochs on new data                    |
| hgb    | HistGradientBoosting*             | ``warm_start``: ``n_more`` iterations on new data            |
| rf     | RandomForest*                     | ``warm_start``: ``n_more`` trees grown on new data           |

An incremental update keeps the preprocessing as it was fitted. Categories it never saw are the
documented policy's business (``on_unseen_category``): ``error`` (the default) fails naming the
column and values; ``ignore`` encodes them as all-zero, as the one-hot encoder does at predict time.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FAMILIES = ("xgboost", "sgd", "hgb", "rf")
UNSEEN_POLICIES = ("error", "ignore")


class IncrementalError(ValueError):
    pass


def task_of(label: pd.Series) -> str:
    """``binary``, ``multiclass`` or ``regression``, from the label's values."""
    if pd.api.types.is_float_dtype(label) and label.nunique() > 20:
        return "regression"
    return "binary" if label.nunique() <= 2 else "multiclass"


def build(
    family: str, task: str, features: pd.DataFrame, params: dict[str, Any] | None = None, seed: int = 0
) -> Pipeline:
    if family not in FAMILIES:
        raise ValueError(f"family={family!r} is not valid. Allowed: {', '.join(FAMILIES)}. Pass -P family=xgboost.")
    return Pipeline([("prep", preprocessor(features)), ("model", estimator(family, task, params or {}, seed))])


def preprocessor(features: pd.DataFrame) -> ColumnTransformer:
    categorical = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    numeric = [c for c in features.columns if c not in categorical]
    return ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ]
    )


def estimator(family: str, task: str, params: dict[str, Any], seed: int) -> Any:
    regression = task == "regression"
    if family == "xgboost":
        import xgboost

        base = {
            "n_estimators": 200,
            "max_depth": 5,
            "learning_rate": 0.1,
            "subsample": 0.9,
            "n_jobs": 2,
            "random_state": seed,
            "tree_method": "hist",
        }
        return (xgboost.XGBRegressor if regression else xgboost.XGBClassifier)(**{**base, **params})
    if family == "sgd":
        from sklearn.linear_model import SGDClassifier, SGDRegressor

        if regression:
            return SGDRegressor(**{"random_state": seed, **params})
        return SGDClassifier(**{"loss": "log_loss", "random_state": seed, **params})
    if family == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        return (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(
            **{"max_iter": 200, "random_state": seed, **params}
        )
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    return (RandomForestRegressor if regression else RandomForestClassifier)(
        **{"n_estimators": 200, "n_jobs": 2, "random_state": seed, **params}
    )


def family_of(pipeline: Pipeline) -> str:
    name = type(pipeline.named_steps["model"]).__name__
    for prefix, family in (("XGB", "xgboost"), ("SGD", "sgd"), ("HistGradientBoosting", "hgb"), ("RandomForest", "rf")):
        if name.startswith(prefix):
            return family
    raise IncrementalError(f"the model is a {name}, which no family of this project builds")


def unseen_categories(pipeline: Pipeline, features: pd.DataFrame) -> dict[str, list[str]]:
    """Per categorical column, the values the fitted preprocessing never saw."""
    prep = pipeline.named_steps["prep"]
    columns = next(cols for name, _, cols in prep.transformers_ if name == "cat")
    if not columns:
        return {}
    encoder = prep.named_transformers_["cat"].named_steps["onehot"]
    found = {}
    for column, known in zip(columns, encoder.categories_):
        new = sorted(set(features[column].dropna().astype(str)) - {str(k) for k in known})
        if new:
            found[column] = new
    return found


def incremental(
    pipeline: Pipeline, features: pd.DataFrame, label: pd.Series, n_more: int, on_unseen_category: str = "error"
) -> Pipeline:
    """A copy of the fitted pipeline, updated on the new data by the family's own mechanism."""
    if on_unseen_category not in UNSEEN_POLICIES:
        raise ValueError(
            f"on_unseen_category={on_unseen_category!r} is not valid. Allowed: {', '.join(UNSEEN_POLICIES)}."
        )
    unseen = unseen_categories(pipeline, features)
    if unseen and on_unseen_category == "error":
        column, values = next(iter(unseen.items()))
        raise IncrementalError(
            f"column {column!r}: values {values} were not in the parent's training data, and an incremental update "
            "keeps the parent's encoding. Pass -P on_unseen_category=ignore to encode them as unknown, or use "
            "strategy=rehearsal or full, which learn them."
        )
    updated = copy.deepcopy(pipeline)
    encoded = updated.named_steps["prep"].transform(features)
    model = updated.named_steps["model"]
    family = family_of(updated)
    if family == "xgboost":
        booster = model.get_booster()
        model.set_params(n_estimators=n_more)
        model.fit(encoded, label, xgb_model=booster)
    elif family == "sgd":
        for _ in range(max(n_more, 1)):
            model.partial_fit(encoded, label, **({"classes": model.classes_} if hasattr(model, "classes_") else {}))
    elif family == "hgb":
        model.set_params(warm_start=True, max_iter=model.n_iter_ + n_more, early_stopping=False)
        model.fit(encoded, label)
    else:
        model.set_params(warm_start=True, n_estimators=len(model.estimators_) + n_more)
        model.fit(encoded, label)
    return updated


def stratified_sample(frame: pd.DataFrame, target: str, rows: int, seed: int, task: str) -> pd.DataFrame:
    """About ``rows`` rows keeping each class's share (plain random sampling for regression)."""
    rows = min(rows, len(frame))
    if task == "regression" or rows >= len(frame):
        return frame.sample(n=rows, random_state=seed)
    fraction = rows / len(frame)
    picked = frame.groupby(target, group_keys=False).sample(frac=fraction, random_state=seed)
    return picked.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def score(task: str, pipeline: Pipeline, features: pd.DataFrame, label: pd.Series) -> dict[str, float]:
    """The task's metrics; ``score`` is the one to compare (ROC AUC, accuracy or R²)."""
    from sklearn import metrics

    if task == "regression":
        predicted = pipeline.predict(features)
        r2 = float(metrics.r2_score(label, predicted))
        return {"score": r2, "r2": r2, "rmse": float(np.sqrt(metrics.mean_squared_error(label, predicted)))}
    predicted = pipeline.predict(features)
    out = {"accuracy": float(metrics.accuracy_score(label, predicted))}
    if task == "binary" and label.nunique() == 2:
        out["roc_auc"] = float(metrics.roc_auc_score(label, pipeline.predict_proba(features)[:, 1]))
        out["score"] = out["roc_auc"]
    else:
        out["score"] = out["accuracy"]
    return out

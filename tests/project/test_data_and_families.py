"""The scenario generator, data checks, and each family's incremental update (in-process)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from projects import data, families, scenario


def test_the_scenario_is_seeded_and_drifts():
    assert scenario.week(3, 8).equals(scenario.week(3, 8))
    assert not scenario.week(3, 8).equals(scenario.week(3, 8, seed=8))
    first, last = scenario.week(0, 8), scenario.week(7, 8)
    assert last.distance_km.mean() > first.distance_km.mean() * 1.3
    assert (last.route_type == "urban").mean() > (first.route_type == "urban").mean()
    # The relationship shifts: traffic separates late from on-time deliveries more in the last week.
    gap = [w[w.delayed == 1].traffic_index.mean() - w[w.delayed == 0].traffic_index.mean() for w in (first, last)]
    assert gap[1] > gap[0]
    assert "mountain" not in set(last.route_type)
    assert "mountain" in set(scenario.week(6, 8, new_route_week=6).route_type)


def test_the_generator_command_writes_one_file_per_week(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "projects.data",
            "truck-delay",
            "--weeks",
            "3",
            "--rows-per-week",
            "50",
            "--format",
            "csv",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote 3 weeks of 50 deliveries" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["week_00.csv", "week_01.csv", "week_02.csv"]
    loaded = data.load(str(tmp_path / "week_0*.csv"), "delayed")
    assert len(loaded.frame) == 150 and loaded.frame.equals(data.load(str(tmp_path / "week_0*.csv"), "delayed").frame)


def frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["x", "y"], n), "y": rng.integers(0, 2, n)})


@pytest.mark.parametrize(
    "change, target, words",
    [
        (lambda f: f, "label", "column 'label': the target is not a column"),
        (lambda f: f.assign(c=7), "y", "column 'c': it is constant (7)"),
        (lambda f: f.assign(c=None), "y", "column 'c': every value is null"),
        (lambda f: f.assign(y=f.y.where(f.index > 2)), "y", "column 'y': the target has 3 null values"),
    ],
)
def test_bad_data_fails_with_the_column_and_the_reason(change, target, words):
    with pytest.raises(data.DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        data.check(change(frame()), target)


@pytest.mark.parametrize(
    "source, words",
    [
        ("sklearn:nope", "sklearn:nope is not a known dataset"),
        ("scenario:truck-delay?week=1", "unknown options ['week']"),
        ("/nowhere/*.parquet", "matches no file"),
    ],
)
def test_bad_sources_say_what_is_allowed(source, words):
    with pytest.raises(data.DataError, match=words.replace("[", r"\[").replace("]", r"\]")):
        data.load(source, "delayed")


def test_sklearn_datasets_load_with_their_target():
    loaded = data.load("sklearn:breast_cancer", "target")
    assert loaded.frame.shape == (569, 31) and families.task_of(loaded.label) == "binary"
    assert families.task_of(data.load("sklearn:diabetes", "target").label) == "regression"


@pytest.mark.parametrize("family", families.FAMILIES)
def test_every_family_updates_incrementally_and_leaves_the_parent_alone(family):
    old, new = scenario.week(0, 8, rows=400), scenario.week(7, 8, rows=400)
    x_old, y_old = old.drop(columns=["delayed"]), old.delayed
    params = {"n_estimators": 20} if family in ("xgboost", "rf") else {}
    parent = families.build(family, "binary", x_old, params).fit(x_old, y_old)
    before = parent.predict_proba(x_old)
    child = families.incremental(parent, new.drop(columns=["delayed"]), new.delayed, n_more=10)
    assert np.array_equal(parent.predict_proba(x_old), before)
    assert not np.allclose(child.predict_proba(x_old), before)
    grown = {
        "xgboost": lambda m: m.get_booster().num_boosted_rounds(),
        "rf": lambda m: len(m.estimators_),
        "hgb": lambda m: m.n_iter_,
        "sgd": lambda m: m.t_,
    }
    assert grown[family](child.named_steps["model"]) > grown[family](parent.named_steps["model"])


def test_an_unseen_category_is_refused_or_ignored_as_documented():
    old = scenario.week(0, 8, rows=300)
    new = scenario.week(6, 8, rows=300, new_route_week=6)
    old_x = old.drop(columns=["delayed"])
    parent = families.build("sgd", "binary", old_x).fit(old_x, old.delayed)
    assert families.unseen_categories(parent, new) == {"route_type": ["mountain"]}
    with pytest.raises(families.IncrementalError, match=r"column 'route_type': values \['mountain'\]"):
        families.incremental(parent, new.drop(columns=["delayed"]), new.delayed, 1)
    child = families.incremental(parent, new.drop(columns=["delayed"]), new.delayed, 1, on_unseen_category="ignore")
    assert len(child.predict(new.drop(columns=["delayed"]))) == 300


def test_data_is_read_from_s3_through_boto3(aws, tmp_path):
    """``s3://`` data goes through boto3's standard configuration (here: the sandbox's endpoint)."""
    week = scenario.week(1, 8, rows=120)
    week.to_parquet(tmp_path / "week.parquet", index=False)
    aws("s3").create_bucket(Bucket="training-data")
    aws("s3").upload_file(str(tmp_path / "week.parquet"), "training-data", "truck/week_01.parquet")
    loaded = data.load("s3://training-data/truck/week_01.parquet", "delayed")
    assert loaded.frame.equals(week)
    with pytest.raises(Exception, match="NoSuchKey"):
        data.load("s3://training-data/truck/missing.parquet", "delayed")


def test_a_source_that_knows_its_label_uses_it_by_default(tmp_path):
    assert data.load("sklearn:breast_cancer").target == "target"
    assert data.load("scenario:truck-delay?weeks=0&rows=50").target == "delayed"
    scenario.week(0, 8, rows=50).to_csv(tmp_path / "week.csv", index=False)
    assert data.load(str(tmp_path / "week.csv")).target == "delayed"  # the scenario's weeks, written to a file
    frame().to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(
        data.DataError,
        match=r"other.csv does not say which column is the label \(columns: a, b, y\)"
        r"\. Pass -P target=<label column>\.",
    ):
        data.load(str(tmp_path / "other.csv"))
    assert data.load(str(tmp_path / "other.csv"), "y").target == "y"


@pytest.mark.parametrize("module", ["train", "tune"])
def test_a_data_error_ends_with_its_one_line_message_and_no_traceback(module):
    done = subprocess.run(
        [sys.executable, "-m", f"projects.{module}", "--data", "sklearn:nope"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"python -m projects.{module}: error: column '(source)': sklearn:nope is not a known dataset. "
        f"Use one of: {', '.join('sklearn:' + n for n in data.SKLEARN)}."
    ]


def test_a_logged_models_requirements_are_mlflows_without_optional_imports(tmp_path):
    """``tracking.requirements`` against MLflow's own inference, which loads the saved model in a
    subprocess and lists what it imported: the same packages at the same versions, less pytest and
    rich (scikit-learn's test helpers import them when they are installed, and only then). The xgboost
    family holds both kinds of class: scikit-learn's preprocessing and xgboost's classifier."""
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_pip_requirements

    from projects import tracking

    frame = data.load("scenario:truck-delay?weeks=0-1&rows=600")
    pipeline = families.build("xgboost", "binary", frame.features).fit(frame.features, frame.label)
    ours = tracking.requirements(pipeline)
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        pipeline, str(path), skops_trusted_types=tracking.trusted_types(pipeline), pip_requirements=ours
    )
    inferred = set(infer_pip_requirements(str(path), "sklearn"))
    assert set(ours) <= inferred and {r.split("==")[0] for r in inferred - set(ours)} <= {"pytest", "rich"}
    assert any(r.startswith("xgboost") for r in ours)  # a class in the pickle, not a flavor's own
    assert (path / "requirements.txt").read_text().splitlines()[1:] == ours  # after MLflow's own pin
    rows = frame.features.head(3)
    assert mlflow.pyfunc.load_model(str(path)).predict(rows).tolist() == pipeline.predict(rows).tolist()

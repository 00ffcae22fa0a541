"""A deployment's ``monitor`` section: how often its traffic is compared with the serving
version's training baseline, and what drift starts.

::

    deployments:
      truck-delay-prod:
        model: truck-delay
        stage: Production
        config: {data_capture_config: {...}}   # the endpoint must capture its requests
        monitor:
          every: 1h                 # how often (30s, 15m, 1h, 1d); the first run is one period after start
          window: 1h                # the first round's lookback (default: every); later rounds read
                                    # the traffic since the round before, so none is missed
          alpha: 0.01               # monitor's parameters (optional): alpha, threshold, categorical_threshold
          on_drift: retrain         # log (default): record the verdict; retrain: retrain, evaluate, promote
          retrain:                  # `mlflow run <project> -e retrain` parameters; new_data is required
            new_data: s3://my-data/labelled/recent/
            strategy: rehearsal
          evaluate:                 # `-e evaluate` parameters; data is required; promote_to is the rule's
            data: s3://my-data/labelled/holdout/
            max_regression: 0.0
          project: .                # the MLflow project (default: the policy file's directory)
          experiment: drift-loop    # where the runs go (default: drift-loop)

Each step is an MLflow run of the project's entry point, tagged with the deployment and the run
before it (``loop.parent_run_id``), so the chain monitor -> retrain -> evaluate reads back from
MLflow. A promotion is a registry change like any other: the controller then deploys the new
version with the rule's rollout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MONITOR_KEYS = (
    "every",
    "window",
    "alpha",
    "threshold",
    "categorical_threshold",
    "on_drift",
    "retrain",
    "evaluate",
    "project",
    "experiment",
)
ON_DRIFT = ("log", "retrain")
LOOP_SETS = {"retrain": {"base_model", "registered_model"}, "evaluate": {"challenger", "champion", "promote_to"}}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)")  # monitor's window takes the same (a unit always)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Monitor:
    every: float  # seconds
    window: str
    on_drift: str = "log"
    project: str = "."
    experiment: str = "drift-loop"
    monitor: dict[str, Any] = field(default_factory=dict)  # alpha, threshold, categorical_threshold
    retrain: dict[str, Any] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=dict)


Fail = Callable[[str, str, str, str], Exception]


def seconds(text: Any) -> float | None:
    """``30s``, ``15m``, ``1h``, ``1d`` in seconds; None when it is none of them."""
    match = _DURATION.fullmatch(str(text).strip())
    return float(match.group(1)) * _SECONDS[match.group(2)] if match else None


def parse(values: Any, policy_file: str, fail: Fail) -> Monitor:
    """The ``monitor`` section of a rule; ``fail(key, problem, allowed, fix)`` makes the error."""
    if not isinstance(values, dict):
        raise fail(
            "monitor",
            f"monitor={values!r} is not a mapping",
            "a mapping of " + ", ".join(MONITOR_KEYS),
            "See the README.",
        )
    unknown = sorted(set(values) - set(MONITOR_KEYS))
    if unknown:
        raise fail("monitor", f"monitor: unknown key(s) {unknown}", ", ".join(MONITOR_KEYS), "Remove or rename them.")
    every = seconds(values.get("every"))
    if every is None or every < 1:
        raise fail(
            "monitor",
            f"monitor: every={values.get('every')!r} is not a period",
            "a duration of at least 1 s: 30s, 15m, 1h, 1d",
            "Write `every: 1h`.",
        )
    window = str(values.get("window", values["every"]))
    length = seconds(window)
    if length is None or length <= 0 or length > 31 * 86400:
        raise fail(
            "monitor",
            f"monitor: window={window!r} is not a window monitor reads",
            "a duration above zero and up to 31d: 30m, 1h, 1d",
            "Write `window: 1h`.",
        )
    on_drift = values.get("on_drift", "log")
    if on_drift not in ON_DRIFT:
        raise fail(
            "monitor",
            f"monitor: on_drift={on_drift!r} is not an action",
            ", ".join(ON_DRIFT),
            "Write `on_drift: retrain` to retrain, evaluate and promote, or `log`.",
        )
    steps = {}
    for step, data_key in (("retrain", "new_data"), ("evaluate", "data")):
        params = values.get(step) or {}
        if not isinstance(params, dict):
            raise fail(
                "monitor", f"monitor: {step}={params!r} is not a mapping", f"{step} parameters", "See the README."
            )
        if on_drift == "retrain" and not params.get(data_key):
            raise fail(
                "monitor",
                f"monitor: on_drift: retrain needs {step}.{data_key} (labelled rows: captured traffic has no labels)",
                "a data source: a path, s3://..., or scenario:...",
                f"Add `{step}: {{{data_key}: s3://bucket/labelled/}}`.",
            )
        owned = sorted(set(params) & LOOP_SETS[step])
        if owned:
            raise fail(
                "monitor",
                f"monitor: {step} sets {owned}, which the loop sets itself",
                f"the step's other parameters (not {', '.join(sorted(LOOP_SETS[step]))})",
                "Remove them: the loop starts from the serving version and promotes to the rule's stage or alias.",
            )
        steps[step] = {str(k): v for k, v in params.items()}
    project = str(values.get("project", "."))
    if "://" not in project:  # a local project: relative to the policy file, and it must have an MLproject
        path = (Path(policy_file).resolve().parent / project).resolve()
        if not (path / "MLproject").is_file():
            raise fail(
                "monitor",
                f"monitor: project={project!r} ({path}) has no MLproject file",
                "the directory of this suite's MLflow project (or a git URI)",
                "Set `project:` to the checkout that holds MLproject.",
            )
        project = str(path)
        _check_parameters(path / "MLproject", steps, fail)
    return Monitor(
        every=every,
        window=window,
        on_drift=on_drift,
        project=project,
        experiment=str(values.get("experiment", "drift-loop")),
        monitor={k: values[k] for k in ("alpha", "threshold", "categorical_threshold") if k in values},
        retrain=steps["retrain"],
        evaluate=steps["evaluate"],
    )


def _check_parameters(mlproject: Path, steps: dict[str, dict[str, Any]], fail: Fail) -> None:
    """The retrain and evaluate parameters against the project's entry points (MLflow would pass an
    unknown one on, and the step would fail only after a drift verdict)."""
    import difflib

    import yaml

    entries = (yaml.safe_load(mlproject.read_text()) or {}).get("entry_points") or {}
    for step, params in steps.items():
        known = set((entries.get(step) or {}).get("parameters") or {}) - LOOP_SETS[step]
        for name in params:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                raise fail(
                    "monitor",
                    f"monitor: {step}.{name} is not a parameter of the project's {step} entry point ({mlproject})",
                    ", ".join(sorted(known)),
                    (f"Did you mean {close[0]!r}? " if close else "") + "Use the entry point's parameter names.",
                )


def check_capture(config: dict[str, Any], fail: Fail) -> None:
    """A monitored endpoint must capture its requests (DataCaptureConfig with Input)."""
    capture = config.get("data_capture_config") or {}
    if isinstance(capture, str):
        import json

        try:
            capture = json.loads(capture)
        except ValueError:
            capture = {}
    modes = {o.get("CaptureMode") for o in capture.get("CaptureOptions") or [] if isinstance(o, dict)}
    if not capture.get("EnableCapture") or "Input" not in modes:
        raise fail(
            "monitor",
            "monitor reads the endpoint's captured requests, and config.data_capture_config does not capture them "
            f"({'absent' if not capture else capture})",
            "config.data_capture_config with EnableCapture: true and a CaptureOptions entry {CaptureMode: Input}",
            "Add data_capture_config to the rule's config (see the README), or remove `monitor`.",
        )

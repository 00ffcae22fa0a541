"""What MLflow tracking costs a tuning trial, and how trials scale with workers on PostgreSQL.

    python benchmarks/tuning.py [--trials 32] [--rounds 5] [--rows 2000] [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/test]

1. Overhead: the same seeded study (``projects.tune.Objective``, xgboost with pruning, weeks 0-3
   of the scenario: the ``tune`` entry point's defaults) runs in one process with Optuna alone
   (in-memory storage) and with one nested MLflow run per trial logged to a real ``mlflow server``
   (sqlite) started here, alternated for ``--rounds`` rounds (medians reported). The sampler is
   seeded, so both try the same parameters and prune the same trials; the difference per trial
   is what tracking costs. Goal: under 10%. Measured in two layouts:

   * **the server on a core of its own** (each trial fits with 1 thread, so one of the two cores
     is the server's): the production layout, where the tracking server runs on another host and
     the tuning process pays only for its own calls;
   * **the server on the trials' cores** (each trial fits with 2 threads, as ``tune`` does on this
     2-core machine): every millisecond the server works is taken from a trial's threads.

   Then the trial-run writers side by side (tracked, server on its own core): MLflow's client
   (``ClientTrialRuns``) against the REST writer ``tune`` uses (``RestTrialRuns``), as the tuning
   process's CPU per trial.
2. Workers: the tracked study again, on PostgreSQL storage, with 1 and then 2 worker threads
   (``n_workers``), reported as trials per minute.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import mlflow
import optuna
import requests
from requests.adapters import HTTPAdapter
from sklearn.model_selection import train_test_split
from urllib3.util.retry import Retry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from projects import data as data_mod  # noqa: E402
from projects import trial_runs, tune  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    session = requests.Session()
    session.mount(
        "http://",
        HTTPAdapter(
            max_retries=Retry(total=120, connect=120, backoff_factor=0.1, backoff_max=0.5, status_forcelist=(502, 503))
        ),
    )
    session.get(f"http://127.0.0.1:{port}/health", timeout=5).raise_for_status()
    return server, f"http://127.0.0.1:{port}"


def run_study(
    objective_args: tuple,
    trials: int,
    workers: int,
    storage: str | None,
    tracked: bool,
    threads: int | None = None,
    writer: type | None = None,
) -> tuple[float, list, float]:
    """Wall seconds for ``trials`` trials, the trials (read before a PostgreSQL study is deleted),
    and the CPU seconds this process spent (the tuning client's own cost, without the server's).
    ``threads``: each trial's fitting threads (default: the cores shared among the workers);
    ``writer``: the trial-run writer class (default: what ``tune`` picks for the server)."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    study = (
        tune.study(name, storage, seed=0)
        if storage
        else optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=0),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=20),
        )
    )
    parent = mlflow.start_run(run_name=name) if tracked else None
    objective = tune.Objective(
        *objective_args, parent.info.experiment_id if parent else None, parent.info.run_id if parent else None, workers
    )
    if threads is not None:
        objective.threads = threads
    if tracked and writer is not None:
        objective.runs = writer(mlflow.get_tracking_uri())
    started, cpu = time.perf_counter(), time.process_time()
    study.optimize(objective, n_trials=trials, n_jobs=workers)
    objective.flush()  # every trial's run written: part of the tracked time
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if parent:
        mlflow.end_run()
    done = study.trials
    if storage:
        optuna.delete_study(study_name=name, storage=storage)
    return seconds, done, cpu


def overhead(objective_args: tuple, trials: int, rounds: int, threads: int) -> dict[str, float]:
    """Median ms per trial, alone and tracked, alternated round by round so drift hits both alike."""
    seen: dict[bool, list] = {False: [], True: []}
    for _ in range(rounds):
        for tracked in (False, True):
            seen[tracked].append(run_study(objective_args, trials, 1, None, tracked, threads=threads))
    same = all([t.params for t in a[1]] == [t.params for t in b[1]] for a, b in zip(seen[False], seen[True]))
    assert same, "the seeded study tried other parameters with tracking: the comparison would not be like for like"
    alone, tracked = (statistics.median(r[0] for r in seen[t]) / trials * 1000 for t in (False, True))
    return {"alone": alone, "tracked": tracked, "ratio": tracked / alone}


def writers(objective_args: tuple, trials: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Wall and tuning-process CPU ms per trial with each trial-run writer (server on its own core)."""
    kinds = {"MlflowClient": trial_runs.ClientTrialRuns, "REST": trial_runs.RestTrialRuns}
    seen: dict[str, list] = {k: [] for k in ("alone", *kinds)}
    for _ in range(rounds):
        seen["alone"].append(run_study(objective_args, trials, 1, None, False, threads=1))
        for kind, writer in kinds.items():
            seen[kind].append(run_study(objective_args, trials, 1, None, True, threads=1, writer=writer))
    return {
        kind: (
            statistics.median(r[0] for r in runs) / trials * 1000,
            statistics.median(r[2] for r in runs) / trials * 1000,
        )
        for kind, runs in seen.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds with and without tracking")
    parser.add_argument("--rows", type=int, default=2000, help="deliveries per week (weeks 0-3)")
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # each parent run's end would print its URL
    dataset = data_mod.load(f"scenario:truck-delay?weeks=0-3&rows={args.rows}", "delayed")
    train, valid = train_test_split(dataset.frame, test_size=0.25, random_state=0, stratify=dataset.label)
    objective_args = ("xgboost", "binary", train, valid, "delayed", 0, 10)
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_server(Path(tmp))
        try:
            mlflow.set_tracking_uri(url)
            mlflow.set_experiment("tuning-benchmark")
            run_study(objective_args, 2, 1, None, True)  # warm-up: imports, first connections
            print(
                f"{args.trials} trials, xgboost on {len(train)} rows, median of {args.rounds} alternated rounds "
                "(the seeded study tries the same trials both ways)"
            )
            print("layout                        | Optuna alone ms/trial | tracked ms/trial | tracked/alone | goal")
            for label, threads in (("server on a core of its own", 1), ("server on the trials' cores", 2)):
                o = overhead(objective_args, args.trials, args.rounds, threads)
                print(
                    f"{label:<29} | {o['alone']:21.1f} | {o['tracked']:16.1f} | {o['ratio']:12.3f}x | "
                    f"{'met' if o['ratio'] < 1.10 else 'not met'} (< 1.100x)"
                )
            measured = writers(objective_args, args.trials, args.rounds)
            print(
                "trial-run writer (server on its own core) | wall ms/trial | vs alone | tuning-process CPU ms/trial | vs alone"
            )
            for kind in ("alone", "MlflowClient", "REST"):
                wall, cpu = measured[kind]
                print(
                    f"{kind:<41} | {wall:13.1f} | {wall / measured['alone'][0]:7.3f}x | {cpu:27.1f} | "
                    f"{cpu / measured['alone'][1]:7.3f}x"
                )
            for workers in (1, 2):
                seconds, trials, _ = run_study(objective_args, args.trials, workers, args.postgres, True)
                pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
                print(
                    f"PostgreSQL, {workers} worker(s): {args.trials / seconds * 60:6.1f} trials per minute "
                    f"({pruned} pruned)"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()

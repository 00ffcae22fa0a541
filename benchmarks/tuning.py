"""What MLflow tracking costs a tuning trial, and how trials scale with workers on PostgreSQL.

    python benchmarks/tuning.py [--trials 32] [--rounds 5] [--rows 2000] [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/test]

1. Overhead: the same seeded study (``projects.tune.Objective``, xgboost with pruning, weeks 0-3
   of the scenario) runs in one process with Optuna alone (in-memory storage) and with one nested
   MLflow run per trial logged to a real ``mlflow server`` (sqlite) started here, alternated for
   ``--rounds`` rounds (medians reported). The sampler is seeded, so both try the same parameters
   and prune the same trials; the difference per trial is what tracking costs. Goal: under 10%.
   On a 2-core machine the tracking server shares the cores with the trials, so its own work
   counts against tracking here.
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
from projects import tune  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=Retry(total=120, connect=120, backoff_factor=0.1, backoff_max=0.5,
                                                          status_forcelist=(502, 503))))
    session.get(f"http://127.0.0.1:{port}/health", timeout=5).raise_for_status()
    return server, f"http://127.0.0.1:{port}"


def run_study(objective_args: tuple, trials: int, workers: int, storage: str | None, tracked: bool) -> tuple[float, list, float]:
    """Wall seconds for ``trials`` trials, the trials (read before a PostgreSQL study is deleted),
    and the CPU seconds this process spent (the tuning client's own cost, without the server's)."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    study = tune.study(name, storage, seed=0) if storage else optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=20))
    parent = mlflow.start_run(run_name=name) if tracked else None
    objective = tune.Objective(*objective_args, parent.info.experiment_id if parent else None,
                               parent.info.run_id if parent else None, workers)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds with and without tracking")
    parser.add_argument("--rows", type=int, default=2000, help="deliveries per week (weeks 0-3)")
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dataset = data_mod.load(f"scenario:truck-delay?weeks=0-3&rows={args.rows}", "delayed")
    train, valid = train_test_split(dataset.frame, test_size=0.25, random_state=0, stratify=dataset.label)
    objective_args = ("xgboost", "binary", train, valid, "delayed", 0, 10)
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_server(Path(tmp))
        try:
            mlflow.set_tracking_uri(url)
            mlflow.set_experiment("tuning-benchmark")
            run_study(objective_args, 2, 1, None, True)  # warm-up: imports, first connections
            rounds = {False: [], True: []}
            for _ in range(args.rounds):  # alternated, so drift hits both alike
                for tracked in (False, True):
                    rounds[tracked].append(run_study(objective_args, args.trials, 1, None, tracked))
            alone, tracked = (statistics.median(r[0] for r in rounds[t]) for t in (False, True))
            cpu_alone, cpu_tracked = (statistics.median(r[2] for r in rounds[t]) for t in (False, True))
            same = all([t.params for t in a[1]] == [t.params for t in b[1]] for a, b in zip(rounds[False], rounds[True]))
            print(f"{args.trials} trials, xgboost on {len(train)} rows, median of {args.rounds} alternated rounds "
                  f"(same trials both ways: {same})")
            print(f"Optuna alone:        {alone / args.trials * 1000:8.1f} ms per trial")
            print(f"with MLflow tracking:{tracked / args.trials * 1000:8.1f} ms per trial "
                  f"(+{(tracked - alone) / args.trials * 1000:.1f} ms, {tracked / alone - 1:+.1%}; goal < +10%)")
            print(f"client CPU per trial: {cpu_alone / args.trials * 1000:.1f} ms alone, "
                  f"{cpu_tracked / args.trials * 1000:.1f} ms tracked ({cpu_tracked / cpu_alone - 1:+.1%}): what "
                  "tracking costs the tuning process when the server runs elsewhere")
            for workers in (1, 2):
                seconds, trials, _ = run_study(objective_args, args.trials, workers, args.postgres, True)
                pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
                print(f"PostgreSQL, {workers} worker(s): {args.trials / seconds * 60:6.1f} trials per minute "
                      f"({pruned} pruned)")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()

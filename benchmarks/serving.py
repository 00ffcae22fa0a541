"""Serving benchmark: our runtime against ``mlflow models serve``, side by side in one run.

    python benchmarks/serving.py [--seconds 3] [--alternate 3] [--previous GIT_REF] [--quick]
                                 [--models pipeline,linear30,trees100] [--clients own,wrk]
                                 [--only throughput|ping|mme]

Throughput, on three models saved with MLflow and a signature: the suite's scikit-learn pipeline
(3 columns: scaling, one-hot, logistic regression), a logistic regression over the 30 features of
``sklearn:breast_cancer``, and a random forest over 100 features. Both servers run and are loaded
in turns (``--alternate`` rounds per cell, the order rotated each round, so drift in the machine's
speed hits both), each at 1 and 2 workers, with 1-row JSON requests (and 100-row ones on the
pipeline) at 1, 16 and 64 keep-alive connections, from two clients: ``wrk`` (Debian's package,
the independent load generator) and our closed-loop client (benchmarks/loadgen.py). Reports
requests/s, p50 and p99 of each server's median round, and the median and range of the per-round
ratios ours/baseline. Per model also: the in-process floor (decode + pyfunc predict + encode of a
1-row request, without HTTP) against a single request's p50 over HTTP (``wrk``, 1 connection, 1
worker), and the per-request decode cost when 16 such requests are decoded together.
``--previous GIT_REF`` adds our runtime as it was at that commit (from a git worktree) as a third
server in the same rounds, so a change to the runtime is measured against what it replaced.

Health checks under load: both servers with 2 workers and a slow model (one that sleeps 0.5 s,
and one that computes in Python for 0.5 s, holding the GIL), kept busy by 8 connections of
predictions, while one client sends ``GET /ping`` after ``GET /ping``; reports the ping p50, p99 and
max (SageMaker's limit is 2 s; ours should stay under 50 ms at p99).

Multi-model reload consistency (ours only: MLflow has no multi-model server): with 2 and 4 workers,
rounds of unload and reload of one model name from another URL, each followed by invokes on fresh
connections; counts answers from the model that was replaced (stale answers; must be 0).

The clients share the machine's cores with the servers (2 cores here), so absolute numbers are
lower than on a dedicated load generator; both servers pay the same.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.loadgen import post, run_load  # noqa: E402
from benchmarks.wrk import run_wrk, wrk_path  # noqa: E402
from tests.serving.conftest import delivery_frame, save_pyfunc_model, save_sklearn_model, start_runtime  # noqa: E402

BIN = Path(sys.executable).parent


def split_body(frame) -> bytes:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()


def payload(rows: int) -> bytes:
    frame, _ = delivery_frame(n=rows, seed=11)
    return split_body(frame)


def save_linear30(path: Path) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    features, label = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(features, label)
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(features, model.predict(features)))
    return path


def linear30_body(rows: int) -> bytes:
    from sklearn.datasets import load_breast_cancer

    return split_body(load_breast_cancer(as_frame=True).data.head(rows))


def trees100_frame(n: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    return pd.DataFrame(rng.normal(size=(n, 100)), columns=[f"f{i}" for i in range(100)])


def save_trees100(path: Path) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    features = trees100_frame(2000)
    label = (features.f0 + features.f1 - features.f2 > 0).astype(int)
    model = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0).fit(features, label)
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(features, model.predict(features)),
        skops_trusted_types=["sklearn.tree._tree.Tree"],  # our own model, saved here
    )
    return path


# name: (description, save(path), body(rows), rows per request measured)
MODELS = {
    "pipeline": ("scikit-learn pipeline, 3 columns", save_sklearn_model, payload, (1, 100)),
    "linear30": ("logistic regression, 30 features", save_linear30, linear30_body, (1,)),
    "trees100": (
        "random forest, 100 features, 50 trees",
        save_trees100,
        lambda rows: split_body(trees100_frame(rows)),
        (1,),
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, model: Path, workers: int, previous: Path | None = None) -> tuple[subprocess.Popen, int]:
    """Start ``kind``: ``ours``, ``baseline`` (``mlflow models serve``) or ``previous`` (our
    runtime from the source tree ``previous``, a git worktree of an earlier commit, put first on
    ``PYTHONPATH`` so it shadows the editable install)."""
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    if kind == "previous":
        assert previous is not None
        env["PYTHONPATH"] = str(previous)
        command = [sys.executable, "-c", "from mlflow_plugins.cli import cli; cli()", "serve"]
        command += ["--model-dir", str(model), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    elif kind == "ours":
        command = [
            str(BIN / "mlflow-sagemaker-ops"),
            "serve",
            "--model-dir",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    else:
        command = [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--env-manager",
            "local",
            "--workers",
            str(workers),
        ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    session = requests.Session()
    session.mount(
        "http://",
        HTTPAdapter(
            max_retries=Retry(
                total=200, connect=200, status=200, backoff_factor=0.05, backoff_max=0.5, status_forcelist=(502, 503)
            )
        ),
    )
    assert session.get(f"http://127.0.0.1:{port}/ping", timeout=10).status_code == 200
    return process, port


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def _request(body: bytes):
    from mlflow_plugins.serving.http import Request

    return Request("POST", "/invocations", "", {"content-type": "application/json"}, body)


class Floor:
    """The in-process floor: decoding plus predict plus encoding one request, as the runtime does
    it (what any server must do), without HTTP. Sampled right before each single-connection round
    of our server, so each round's latency is compared with a floor of the same moment (this
    machine's speed drifts by a third within minutes)."""

    def __init__(self, model: Path, body: bytes) -> None:
        from mlflow_plugins.serving.model import ServedModel

        self.served = ServedModel(model)
        self.request = _request(body)

    def sample(self, seconds: float = 1.0) -> float:
        """p50 seconds over ``seconds`` of back-to-back calls."""
        from mlflow_plugins.serving.model import invoke

        timings: list[float] = []
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at or len(timings) < 5:
            started = time.perf_counter()
            assert invoke(self.served, self.request, None).status == 200
            timings.append(time.perf_counter() - started)
        return sorted(timings)[len(timings) // 2]


def batch_decode(model: Path, body: bytes, batch: int = 16, iterations: int = 200) -> float:
    """p50 seconds per request of decoding ``batch`` queued requests together, as a worker does
    (each body read, then one frame built for the group)."""
    from mlflow_plugins.serving import codec
    from mlflow_plugins.serving.model import ServedModel, decode

    served = ServedModel(model)
    requests_ = [_request(body) for _ in range(batch)]
    timings = []
    for _ in range(iterations):
        started = time.perf_counter()
        invocations = [decode(served, request) for request in requests_]
        if invocations[0].rows is not None:
            codec.frame([invocation.rows for invocation in invocations], served.schema)
        timings.append((time.perf_counter() - started) / batch)
    return sorted(timings)[len(timings) // 2]


def ping_latencies(port: int, seconds: float) -> list[float]:
    """Sequential GET /ping on one keep-alive connection for ``seconds``; each latency in seconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            connection.request("GET", "/ping")
            reply = connection.getresponse()
            reply.read()
            if reply.status == 200:
                latencies.append(time.perf_counter() - started)
    finally:
        connection.close()
    return latencies


def ping_under_load(scratch: Path, seconds: float) -> list[tuple[str, str, list[float], int]]:
    """Ping latencies while 2 workers predict a slow model, for each kind of slow and each server."""
    rows = []
    for label, cls_name in (("sleeps 0.5 s", "Sleepy"), ("computes 0.5 s", "Busy")):
        model = save_pyfunc_model(scratch / cls_name, cls_name)
        slow = post("/invocations", json.dumps({"dataframe_records": [{"seconds": 0.5}]}).encode())
        for kind in ("baseline", "ours"):
            process, port = start(kind, model, 2)
            try:
                done: dict[str, object] = {}
                busy = threading.Thread(target=lambda: done.update(load=run_load(port, slow, 8, seconds + 1, 0.5)))
                busy.start()
                time.sleep(1.0)  # the 8 connections are predicting on both workers
                latencies = ping_latencies(port, seconds)
                busy.join()
                rows.append((label, kind, latencies, len(done["load"].latencies)))
            finally:
                stop(process)
    return rows


def report_pings(rows: list) -> None:
    print()
    print("/ping while 2 workers predict a slow model (8 connections of predictions):")
    print()
    print("| model | server | pings | p50 ms | p99 ms | max ms | predictions answered meanwhile |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, kind, latencies, predictions in rows:
        ordered = sorted(latencies)
        p99 = ordered[min(int(0.99 * len(ordered)), len(ordered) - 1)]
        print(
            f"| {label} | {kind} | {len(ordered)} | {statistics.median(ordered) * 1000:.1f} | {p99 * 1000:.1f} "
            f"| {ordered[-1] * 1000:.1f} | {predictions} |"
        )


def mme_reload_consistency(scratch: Path, rounds: int, invokes: int) -> list[tuple[int, int, int, int, float]]:
    """For 2 and 4 workers: (workers, answers, stale answers, errors, p50 seconds of unload + load)."""
    import requests

    urls = {tag: str(save_pyfunc_model(scratch / f"marker-{tag}", "Marker", tag)) for tag in ("a", "b")}
    body = json.dumps({"dataframe_records": [{"x": 1}]})
    close = {"Connection": "close"}
    results = []
    for workers in (2, 4):
        server = start_runtime("--multi-model", "--workers", str(workers))
        answers = stale = errors = 0
        reloads = []
        try:
            server.wait_ready()
            requests.post(server.url + "/models", json={"model_name": "w", "url": urls["a"]}, headers=close)
            for round_ in range(rounds):
                tag = "ab"[(round_ + 1) % 2]
                started = time.perf_counter()
                requests.delete(server.url + "/models/w", headers=close)
                loaded = requests.post(
                    server.url + "/models", json={"model_name": "w", "url": urls[tag]}, headers=close
                )
                reloads.append(time.perf_counter() - started)
                assert loaded.status_code == 200, loaded.text
                for _ in range(invokes):
                    reply = requests.post(
                        server.url + "/models/w/invoke",
                        data=body,
                        headers={**close, "Content-Type": "application/json"},
                    )
                    answers += 1
                    if reply.status_code != 200:
                        errors += 1
                    elif reply.json()["predictions"] != [tag]:
                        stale += 1
        finally:
            server.stop()
        results.append((workers, answers, stale, errors, statistics.median(reloads)))
    return results


def report_mme(rows: list) -> None:
    print()
    print("Multi-model reload consistency (unload + load from another URL, then invokes on fresh connections):")
    print()
    print("| workers | invokes after reloads | stale answers | errors | unload + load p50 ms |")
    print("|---:|---:|---:|---:|---:|")
    for workers, answers, stale, errors, reload in rows:
        print(f"| {workers} | {answers} | {stale} | {errors} | {reload * 1000:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument("--quick", action="store_true", help="1 and 16 connections, 1-row requests only")
    parser.add_argument("--only", choices=("throughput", "ping", "mme"), help="run one part")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"throughput models, comma-separated (of {', '.join(MODELS)})"
    )
    parser.add_argument("--clients", default="wrk,own", help="load generators: wrk, own (benchmarks/loadgen.py)")
    parser.add_argument("--rounds", type=int, default=20, help="MME reload rounds per worker count")
    parser.add_argument(
        "--alternate", type=int, default=3, help="throughput rounds per server and cell, the servers taking turns"
    )
    parser.add_argument(
        "--previous", metavar="GIT_REF", help="also measure our runtime as it was at GIT_REF (a git worktree)"
    )
    args = parser.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = sorted(set(args.models) - set(MODELS)) + sorted(set(args.clients) - {"wrk", "own"})
    if unknown:
        parser.error(f"unknown model or client: {', '.join(unknown)}. Models: {', '.join(MODELS)}; clients: wrk, own")
    if "wrk" in args.clients:
        wrk_path()
    with tempfile.TemporaryDirectory() as scratch:
        if args.only in (None, "throughput"):
            throughput(args)
        if args.only in (None, "ping"):
            report_pings(ping_under_load(Path(scratch), max(args.seconds, 3.0) * 2))
        if args.only in (None, "mme"):
            report_mme(mme_reload_consistency(Path(scratch), args.rounds, 16))


def worktree(ref: str, into: Path) -> Path:
    """A detached git worktree of ``ref`` (the runtime as it was), for ``--previous``."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), ref], check=True)
    return into


def load(client: str, port: int, body: bytes, conns: int, seconds: float):
    if client == "wrk":
        return run_wrk(port, "/invocations", body, conns, seconds)
    return run_load(port, post("/invocations", body), conns, seconds)


def throughput(args: argparse.Namespace) -> None:
    """Each cell ``--alternate`` times, the servers taking turns (all kept running, the order
    rotated each round), so a machine whose speed drifts during the run slows each alike; a cell
    reports each server's median round and the median of the per-round ratios."""
    conns_set = (1, 16) if args.quick else (1, 16, 64)
    kinds = ("baseline", "ours", "previous") if args.previous else ("baseline", "ours")
    with tempfile.TemporaryDirectory() as scratch:
        previous = worktree(args.previous, Path(scratch) / "previous") if args.previous else None
        try:
            for name in args.models:
                description, save, body_of, rows_set = MODELS[name]
                rows_set = (1,) if args.quick else rows_set
                model = save(Path(scratch) / name)
                bodies = {rows: body_of(rows) for rows in rows_set}
                one = bodies[1]
                floor = Floor(model, one)
                cells = measure(args, model, bodies, rows_set, conns_set, kinds, previous, floor)
                report(name, description, cells, batch_decode(model, one), args.previous)
        finally:
            if previous is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(previous)], check=False)


def measure(
    args, model: Path, bodies: dict, rows_set: tuple, conns_set: tuple, kinds: tuple, previous, floor: Floor
) -> dict:
    """(workers, rows, conns, client) -> {kind: the rounds' results}; the single-connection cells
    of 1 worker and 1 row also hold ``"floor"``: the in-process floor sampled before each round."""
    cells: dict[tuple, dict[str, list]] = {}
    for workers in (1, 2):
        servers = {kind: start(kind, model, workers, previous) for kind in kinds}
        try:
            for rows in rows_set:
                for conns in conns_set:
                    for client in args.clients:
                        rounds: dict[str, list] = {kind: [] for kind in kinds}
                        for round_ in range(args.alternate):
                            shift = round_ % len(kinds)
                            for kind in kinds[shift:] + kinds[:shift]:
                                if kind == "ours" and (workers, rows, conns) == (1, 1, 1):
                                    rounds.setdefault("floor", []).append(floor.sample())
                                rounds[kind].append(load(client, servers[kind][1], bodies[rows], conns, args.seconds))
                        cells[(workers, rows, conns, client)] = rounds
        finally:
            for process, _ in servers.values():
                stop(process)
    return cells


def report(name: str, description: str, cells: dict, decode_s: float, previous: str | None) -> None:
    def median_round(measured: list):
        return sorted(measured, key=lambda r: r.rps)[len(measured) // 2]

    def ratios(mine: list, base: list) -> list[float]:
        return [m.rps / b.rps if b.rps else float("nan") for m, b in zip(mine, base)]

    rounds = len(next(iter(next(iter(cells.values())).values())))
    print()
    print(f"## {name}: {description}")
    print()
    print(
        f"Each cell: {rounds} round(s) per server, alternated; the median round; ratio = median of the rounds' ratios."
    )
    print()
    head = "| workers | rows | conns | client | baseline req/s | ours req/s | ours p50 / p99 ms "
    head += "| ours/baseline | ratio range |"
    if previous:
        head += f" previous ({previous}) req/s | ours/previous |"
    print(head)
    print("|" + "---:|" * (head.count("|") - 1))
    for (workers, rows, conns, client), measured in cells.items():
        base, ours = median_round(measured["baseline"]), median_round(measured["ours"])
        cell = ratios(measured["ours"], measured["baseline"])
        line = (
            f"| {workers} | {rows} | {conns} | {client} | {base.rps:.0f} | {ours.rps:.0f} "
            f"| {ours.p50 * 1000:.2f} / {ours.percentile(99) * 1000:.1f} "
            f"| {statistics.median(cell):.2f}x | {min(cell):.2f}x to {max(cell):.2f}x |"
        )
        if previous:
            before = median_round(measured["previous"])
            line += f" {before.rps:.0f} | {statistics.median(ratios(measured['ours'], measured['previous'])):.2f}x |"
        print(line)
        errors = {kind: sum(r.errors for r in runs) for kind, runs in measured.items() if kind != "floor"}
        if any(errors.values()):
            print(f"|   | errors: {errors} | | | | | | | |")
    print()
    for client in sorted({key[3] for key in cells}, reverse=True):
        single = cells[(1, 1, 1, client)]
        floors, latencies = single["floor"], [r.p50 for r in single["ours"]]
        gaps = [latency - low for latency, low in zip(latencies, floors)]
        print(
            f"{name}, single request ({client}, 1 connection, 1 worker, p50 per round): "
            f"{' '.join(f'{x * 1000:.2f}' for x in latencies)} ms; in-process floor sampled before each round: "
            f"{' '.join(f'{x * 1000:.2f}' for x in floors)} ms; difference, median of the rounds: "
            f"{statistics.median(gaps) * 1000:.2f} ms"
        )
    own = cells.get((1, 1, 1, "own"))
    if own is not None:  # our client reads each answer's Server-Timing: the worker's own time for it
        gaps = [
            statistics.median([latency - server for latency, server in zip(r.latencies, r.server)])
            for r in own["ours"]
            if r.server and len(r.server) == len(r.latencies)
        ]
        if gaps:
            print(
                f"{name}, single request (own, 1 connection, 1 worker): HTTP and queueing beyond the worker's own "
                f"time (latency minus Server-Timing, same request, p50 per round): "
                f"{' '.join(f'{x * 1000:.2f}' for x in gaps)} ms"
            )
    print(f"{name}: decode per request when 16 requests are decoded together: {decode_s * 1000:.3f} ms")


if __name__ == "__main__":
    main()

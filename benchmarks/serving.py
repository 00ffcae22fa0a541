"""Serving benchmark: our runtime against ``mlflow models serve``, side by side in one run.

    python benchmarks/serving.py [--seconds 3] [--alternate 3] [--previous GIT_REF] [--quick]
                                 [--only throughput|ping|mme]

Same model (a scikit-learn pipeline saved with MLflow), same machine, both servers running and
loaded in turns (``--alternate`` rounds per cell, the order flipped each round, so drift in the
machine's speed hits both), each at 1 and 2 workers, with 1-row and 100-row JSON requests at 1, 16
and 64 keep-alive connections, from the same closed-loop client (benchmarks/loadgen.py). Reports
requests/s, p50 and p99 of each server's median round, and the median and range of the per-round
ratios ours/baseline; also the in-process floor: parsing plus pyfunc predict, without HTTP.
``--previous GIT_REF`` adds our runtime as it was at that commit (from a git worktree) as a third
server in the same rounds, so a change to the runtime is measured against what it replaced.

Health checks under load: both servers with 2 workers and a slow model (one that sleeps 0.5 s,
and one that computes in Python for 0.5 s, holding the GIL), kept busy by 8 connections of
predictions, while one client sends ``GET /ping`` after ``GET /ping``; reports the ping p50, p99 and
max (SageMaker's limit is 2 s; ours should stay under 50 ms at p99).

Multi-model reload consistency (ours only: MLflow has no multi-model server): with 2 and 4 workers,
rounds of unload and reload of one model name from another URL, each followed by invokes on fresh
connections; counts answers from the model that was replaced (stale answers; must be 0).

The client shares the machine's cores with the servers (2 cores here), so absolute numbers are
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
from tests.serving.conftest import delivery_frame, save_pyfunc_model, save_sklearn_model, start_runtime  # noqa: E402

BIN = Path(sys.executable).parent


def payload(rows: int) -> bytes:
    frame, _ = delivery_frame(n=rows, seed=11)
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()


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


def floor(model: Path, body: bytes, iterations: int = 2000) -> float:
    """p50 seconds of parsing plus predict plus encoding, in process (what any server must do)."""
    from mlflow_plugins.serving import codec
    from mlflow_plugins.serving.model import ServedModel

    served = ServedModel(model)
    timings = []
    for _ in range(iterations):
        started = time.perf_counter()
        parsed = codec.decode(body, "application/json", served.metadata, served.schema)
        codec.encode(served.predict(parsed.data, parsed.params), codec.JSON)
        timings.append(time.perf_counter() - started)
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
    parser.add_argument("--rounds", type=int, default=20, help="MME reload rounds per worker count")
    parser.add_argument(
        "--alternate", type=int, default=3, help="throughput rounds per server and cell, the servers taking turns"
    )
    parser.add_argument(
        "--previous", metavar="GIT_REF", help="also measure our runtime as it was at GIT_REF (a git worktree)"
    )
    args = parser.parse_args()
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


def throughput(args: argparse.Namespace) -> None:
    """Each cell ``--alternate`` times, the servers taking turns (all kept running, the order
    rotated each round), so a machine whose speed drifts during the run slows each alike; a cell
    reports each server's median round and the median of the per-round ratios."""
    rows_set = (1,) if args.quick else (1, 100)
    conns_set = (1, 16) if args.quick else (1, 16, 64)
    kinds = ("baseline", "ours", "previous") if args.previous else ("baseline", "ours")
    with tempfile.TemporaryDirectory() as scratch:
        previous = worktree(args.previous, Path(scratch) / "previous") if args.previous else None
        try:
            model = save_sklearn_model(Path(scratch) / "model")
            bodies = {rows: post("/invocations", payload(rows)) for rows in rows_set}
            floors = {rows: floor(model, payload(rows)) for rows in rows_set}
            results: dict[tuple, object] = {}
            ratios: dict[tuple, list[float]] = {}
            for workers in (1, 2):
                servers = {kind: start(kind, model, workers, previous) for kind in kinds}
                try:
                    for rows in rows_set:
                        for conns in conns_set:
                            rounds: dict[str, list] = {kind: [] for kind in kinds}
                            for round_ in range(args.alternate):
                                shift = round_ % len(kinds)
                                for kind in kinds[shift:] + kinds[:shift]:
                                    rounds[kind].append(run_load(servers[kind][1], bodies[rows], conns, args.seconds))
                            for kind, measured in rounds.items():
                                results[(kind, workers, rows, conns)] = sorted(measured, key=lambda r: r.rps)[
                                    len(measured) // 2
                                ]
                                ratios[(kind, workers, rows, conns)] = [
                                    mine.rps / base.rps for mine, base in zip(measured, rounds["baseline"])
                                ]
                finally:
                    for process, _ in servers.values():
                        stop(process)
        finally:
            if previous is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(previous)], check=False)
    report(results, floors, rows_set, conns_set, ratios, args.previous)


def report(results: dict, floors: dict, rows_set: tuple, conns_set: tuple, ratios: dict, previous: str | None) -> None:
    print(
        "In-process floor (parse + predict + encode, p50): "
        + ", ".join(f"{rows} row(s) {floors[rows] * 1000:.2f} ms" for rows in rows_set)
    )
    print()
    rounds = len(next(iter(ratios.values())))
    print(
        f"Each cell: {rounds} round(s) per server, alternated; the median round; ratio = median of the rounds' ratios."
    )
    print()
    head = "| workers | rows | conns | baseline req/s | baseline p50 / p99 ms | ours req/s | ours p50 / p99 ms "
    head += "| ours/baseline req/s | ratio range |"
    if previous:
        head += f" previous ({previous}) req/s | previous/baseline | ours/previous |"
    print(head)
    print("|" + "---:|" * (head.count("|") - 1))
    for workers in (1, 2):
        for rows in rows_set:
            for conns in conns_set:
                base, ours = results[("baseline", workers, rows, conns)], results[("ours", workers, rows, conns)]
                cell = ratios[("ours", workers, rows, conns)]
                line = (
                    f"| {workers} | {rows} | {conns} | {base.rps:.0f} "
                    f"| {base.p50 * 1000:.1f} / {base.percentile(99) * 1000:.1f} | {ours.rps:.0f} "
                    f"| {ours.p50 * 1000:.2f} / {ours.percentile(99) * 1000:.1f} "
                    f"| {statistics.median(cell):.2f}x | {min(cell):.2f}x to {max(cell):.2f}x |"
                )
                if previous:
                    before = results[("previous", workers, rows, conns)]
                    old = ratios[("previous", workers, rows, conns)]
                    line += (
                        f" {before.rps:.0f} | {statistics.median(old):.2f}x "
                        f"| {statistics.median([o / p for o, p in zip(cell, old)]):.2f}x |"
                    )
                print(line)
                if base.errors or ours.errors:
                    print(f"|   | errors: baseline {base.errors}, ours {ours.errors} | | | | | | | |")
    one = results[("ours", 1, 1, 1)]
    print()
    print(
        f"Single-connection p50, ours (1 worker, 1 row): {one.p50 * 1000:.2f} ms; "
        f"floor {floors[1] * 1000:.2f} ms; difference {(one.p50 - floors[1]) * 1000:.2f} ms"
    )
    two = results[("ours", 2, 1, 1)]
    base_two = results[("baseline", 2, 1, 1)]
    print(
        f"Keep-alive with 2 workers, 1 connection, 1 row: ours p50 {two.p50 * 1000:.2f} ms, "
        f"baseline p50 {base_two.p50 * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()

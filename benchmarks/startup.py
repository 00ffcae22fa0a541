"""What the -t sagemaker override (mlflow_sagemaker_ops.pth) adds to interpreter start.

    python benchmarks/startup.py [--runs 60]

In fresh interpreters started with -S, processes the other .pth files of site-packages first (an
editable install's finder among them), then times ``site.addpackage`` on ours alone: exactly what
the override adds to every start. Also reports whole ``python -c pass`` starts with and without it,
interleaved with and without, which are noisier (about 1 ms between rounds here). Goal: under 1 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

SITE = Path(sysconfig.get_paths()["purelib"])
PTH = SITE / "mlflow_sagemaker_ops.pth"
PROBE = f"""
import site, time
known = set()
for name in sorted(p.name for p in __import__('pathlib').Path({str(SITE)!r}).glob('*.pth')):
    if name != {PTH.name!r}:
        site.addpackage({str(SITE)!r}, name, known)
started = time.perf_counter()
site.addpackage({str(SITE)!r}, {PTH.name!r}, known)
print(time.perf_counter() - started)
"""


def hook_ms(runs: int) -> float:
    return (
        statistics.median(
            float(
                subprocess.run([sys.executable, "-S", "-c", PROBE], capture_output=True, text=True, check=True).stdout
            )
            for _ in range(runs)
        )
        * 1000
    )


def one_start() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def start_ms(runs: int) -> tuple[float, float]:
    """Median whole starts with and without the .pth, interleaved so drift hits both alike."""
    with_pth, without = [], []
    for _ in range(runs):
        with_pth.append(one_start())
        shutil.move(PTH, PTH.with_suffix(".off"))
        try:
            without.append(one_start())
        finally:
            shutil.move(PTH.with_suffix(".off"), PTH)
    return statistics.median(with_pth) * 1000, statistics.median(without) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    if not PTH.exists():
        raise SystemExit(f"{PTH} is not installed: pip install -e . first")
    print(
        f"processing mlflow_sagemaker_ops.pth at start: {hook_ms(args.runs):.3f} ms (median of {args.runs}; goal < 1 ms)"
    )
    with_pth, without = start_ms(args.runs)
    print(f"whole start, python -c pass: {with_pth:.2f} ms with, {without:.2f} ms without (noisy)")


if __name__ == "__main__":
    main()

"""``wrk`` (Debian's package), the independent HTTP load generator, driven from Python.

    result = run_wrk(port, "/invocations", body, connections=16, seconds=3)

A Lua script posts ``body`` on every request and prints wrk's own summary as one JSON line
(requests, duration, socket errors, non-2xx answers, latency percentiles), which this parses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "%(content_type)s"
local f = io.open("%(body)s", "rb")
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "non_2xx": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int  # socket errors plus non-2xx answers
    p50: float  # seconds
    p99: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if q != 99:
            raise ValueError(f"wrk reports p50 and p99 here, not p{q}")
        return self.p99


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed. Install it with: sudo apt-get install -y wrk (Debian's package)")
    return found


def run_wrk(
    port: int, path: str, body: bytes, connections: int, seconds: float, content_type: str = "application/json"
) -> WrkResult:
    """One wrk run: ``connections`` keep-alive connections on ``min(2, connections)`` threads, for
    ``seconds`` rounded to whole seconds (wrk takes no fractions)."""
    with tempfile.TemporaryDirectory() as scratch:
        body_file = Path(scratch) / "body"
        body_file.write_bytes(body)
        script = Path(scratch) / "post.lua"
        script.write_text(SCRIPT % {"content_type": content_type, "body": body_file})
        command = [
            wrk_path(),
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            str(script),
        ]
        out = subprocess.run(
            [*command, f"http://127.0.0.1:{port}{path}"], check=True, capture_output=True, text=True
        ).stdout
    summary = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    return WrkResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        errors=summary["socket_errors"] + summary["non_2xx"],
        p50=summary["p50_us"] / 1e6,
        p99=summary["p99_us"] / 1e6,
    )

"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending the next
request when the previous answer arrives, for a fixed time. Bounded in time, loopback only."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds
    server: list[float] = field(default_factory=list)  # seconds, from each answer's Server-Timing app;dur
    errors: int = 0
    elapsed: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


def post(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def _connection(port: int, request: bytes, stop_at: float, measure_from: float, result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, server = 0, None
            for line in head.split(b"\r\n"):
                name = line[:15].lower()
                if name == b"content-length:":
                    length = int(line[15:])
                elif name == b"server-timing: ":
                    server = _duration(line[15:])
            await reader.readexactly(length)
            if started >= measure_from:
                if status == 200:
                    result.latencies.append(time.perf_counter() - started)
                    if server is not None:
                        result.server.append(server)
                else:
                    result.errors += 1
    finally:
        writer.close()


def _duration(value: bytes) -> float | None:
    """Seconds from a ``Server-Timing`` value's ``dur`` (milliseconds), if it has one."""
    for part in value.split(b";"):
        if part.strip().startswith(b"dur="):
            return float(part.strip()[4:]) / 1000
    return None


async def _run(port: int, request: bytes, connections: int, seconds: float, warmup: float) -> LoadResult:
    result = LoadResult()
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    await asyncio.gather(*(_connection(port, request, stop_at, measure_from, result) for _ in range(connections)))
    result.elapsed = time.perf_counter() - measure_from
    return result


def run_load(port: int, request: bytes, connections: int, seconds: float = 3.0, warmup: float = 0.5) -> LoadResult:
    try:
        import uvloop

        return uvloop.run(_run(port, request, connections, seconds, warmup))
    except ImportError:
        return asyncio.run(_run(port, request, connections, seconds, warmup))

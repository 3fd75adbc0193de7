"""Submitting through the HTTP API against the SDK's own submit, measured in one run on one Redis.

    python bench/api.py [--tasks 2000] [--latency-samples 300] [--concurrency 8]

Both sides submit the same request and stop at the task id (no workers run: this measures the
door, not the pipeline). The SDK calls `Client.submit` (one store script); the API side sends
`POST /v1/tasks` to one `parjanya api` process over keep-alive HTTP/1.1 connections, one per
submitting thread, with a minimal client (`RawHttp`) so that the caller's HTTP library does not
take the server's CPU. Latency is one submission at a time; throughput is N submissions from
--concurrency threads, the median of three batches, with latency samples taken between them.
Medians everywhere: this machine is shared and noisy, so the API process's CPU per submission is
printed too (read from /proc), which other load barely moves. The last line is

    api_vs_sdk submit_p50_ratio=<api p50 / sdk p50> throughput_ratio=<api tasks/s / sdk tasks/s>
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "src"))

from redis import asyncio as aioredis  # noqa: E402

from parjanya.client import Client  # noqa: E402
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from parjanya.store.apikeys import ApiKeyStore  # noqa: E402
from procs import cpu_seconds  # noqa: E402

ROUNDS = 3
REQUEST = {"prompt": "Rename the variable tmp to total in cart.py.", "max_tier": "low"}

#: Builds one thread's submit function (a connection per thread); it returns the task id.
Submitter = Callable[[], Callable[[], str]]


def _measure(make: Submitter, tasks: int, samples: int, concurrency: int) -> tuple[float, float]:
    one = make()
    for _ in range(50):
        one()  # warms connections, imports and the server's first requests
    throughputs, latencies = [], []
    with ThreadPoolExecutor(concurrency) as pool:
        submitters = list(pool.map(lambda _: make(), range(concurrency)))
        share = tasks // concurrency
        for _ in range(ROUNDS):
            started = time.perf_counter()
            ids = pool.map(lambda s: [s() for _ in range(share)], submitters)
            done = sum(len(batch) for batch in ids)
            throughputs.append(done / (time.perf_counter() - started))
            for _ in range(samples):
                t0 = time.perf_counter()
                one()
                latencies.append(time.perf_counter() - t0)
    return statistics.median(throughputs), statistics.median(latencies)


def sdk_submitter(client: Client) -> Submitter:
    return lambda: lambda: client.submit(REQUEST).id


class RawHttp:
    """A minimal keep-alive HTTP/1.1 client: one pre-encoded request, the response's status and
    body. Python's http.client costs the caller about as much CPU per request as the server's
    route, on the same two cores; a caller in Go or curl pays almost none, so this one does not."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def send(self, request: bytes) -> tuple[int, bytes]:
        try:
            return self._exchange(request)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self.close()  # idle past the server's keep-alive: reconnect, once
            return self._exchange(request)

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            body += chunk
        return int(head[9:12]), body

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def api_submitter(port: int, key: str) -> Submitter:
    body = json.dumps(REQUEST).encode()
    request = (
        b"POST /v1/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer " + key.encode() + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    def make() -> Callable[[], str]:
        connection = RawHttp(port)

        def submit() -> str:
            status, payload = connection.send(request)
            if status != 202:
                raise RuntimeError(f"POST /v1/tasks answered {status}: {payload[:200]!r}")
            return str(json.loads(payload)["id"])

        return submit

    return make


def start_api(url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "PARJANYA_BROKER_URL": url}
    with (tmp / "api.log").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "parjanya", "api", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"the API did not start:\n{(tmp / 'api.log').read_text()[-2000:]}")


async def _bench_key(url: str) -> str:
    client = aioredis.Redis.from_url(url)
    try:
        return (await ApiKeyStore(client).create("bench", rate_per_minute=10**9)).key
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        given = os.environ.get("PARJANYA_BENCH_REDIS_URL")
        broker = None if given else EmbeddedRedis(free_port(), tmp / "redis", appendonly=False)
        url = given or broker.start().url  # type: ignore[union-attr]
        api, port = start_api(url, tmp)
        # A key as a tenant's would be, with a rate the bench never reaches: the API side pays
        # for the key check and the per-key rate limit on every request, as in production.
        key = asyncio.run(_bench_key(url))
        try:
            with Client(url) as client:
                sdk_tps, sdk_p50 = _measure(
                    sdk_submitter(client), args.tasks, args.latency_samples, args.concurrency
                )
            cpu_before = cpu_seconds(api.pid)
            api_tps, api_p50 = _measure(
                api_submitter(port, key), args.tasks, args.latency_samples, args.concurrency
            )
            cpu_after = cpu_seconds(api.pid)
        finally:
            api.terminate()
            api.wait(30)
            if broker is not None:
                broker.stop()
    print(f"sdk_submit      throughput={sdk_tps:8.1f} tasks/s  p50={sdk_p50 * 1000:7.3f} ms")
    print(f"api_submit      throughput={api_tps:8.1f} tasks/s  p50={api_p50 * 1000:7.3f} ms")
    if cpu_before is not None and cpu_after is not None:
        # CPU the API process spent per submission (its share of warm-up and latency samples
        # included): unlike the ratios, barely moved by what else runs on the machine.
        share = args.tasks // args.concurrency * args.concurrency
        per_submit = (cpu_after - cpu_before) / (50 + ROUNDS * (share + args.latency_samples))
        print(f"api_cpu         per_submit={per_submit * 1e6:7.0f} us")
    print(
        f"api_vs_sdk submit_p50_ratio={api_p50 / sdk_p50:.2f} "
        f"throughput_ratio={api_tps / sdk_tps:.2f}"
    )


if __name__ == "__main__":
    main()

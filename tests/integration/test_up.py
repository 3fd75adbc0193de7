"""`parjanya up` itself, as a new user runs it, with the official `openai` client in front of it.

Nothing is configured but what keeps it apart from anything else on the host: its own Redis
(`PARJANYA_BROKER_URL` on a free port where nothing listens, so `up` starts an embedded one), its
own data directory, and its own API and metrics ports; no Flower, no demo. The client uses the key
`up` made for the `default` tenant; the API's log (a file, so JSON lines) shows the request by its
route, without the prompt. A SIGINT (Ctrl-C) must then stop every process `up` started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from openai import OpenAI

from parjanya.runtime.embedded_redis import free_port

pytestmark = pytest.mark.integration


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    output: Path
    data_dir: Path
    api: str

    def tail(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]


def _wait_up(up: Up, timeout_s: float = 90) -> str:
    """The key `up` printed and kept, once /readyz says every pool is live."""
    key_file = up.data_dir / "api-key"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert up.process.poll() is None, f"parjanya up exited:\n{up.tail()}"
        try:
            ready = httpx.get(f"{up.api}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready and key_file.exists() and "Running." in up.output.read_text(errors="replace"):
            return key_file.read_text().strip()
        time.sleep(0.25)
    raise AssertionError(f"parjanya up was not ready in {timeout_s}s:\n{up.tail()}")


def _free_range(width: int) -> int:
    """A port with the `width - 1` above it free too (the metrics ports of five processes)."""
    for _ in range(50):
        base = free_port()
        if base + width <= 65_535 and all(_free(base + i) for i in range(1, width)):
            return base
    raise RuntimeError("no free range of ports")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    # Defaults only: no PARJANYA_* of the test session (its broker, config or sim) leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARJANYA_")}
    data_dir = tmp_path / "data"
    env.update(
        PARJANYA_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
        PARJANYA_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
    )
    api_port, metrics_base = free_port(), _free_range(5)
    argv = [sys.executable, "-m", "parjanya", "up", "--demo", "0", "--no-flower"]
    argv += ["--tier-concurrency", "8", "--api-port", str(api_port)]
    argv += ["--metrics-port-base", str(metrics_base)]
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    running = Up(process, output, data_dir, f"http://127.0.0.1:{api_port}")
    try:
        yield running
    finally:
        if process.poll() is None:  # the test failed before stopping it: leave nothing behind
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait(timeout=10)


def test_the_openai_client_gets_a_completion_from_parjanya_up(up: Up) -> None:
    key = _wait_up(up)
    children = psutil.Process(up.process.pid).children(recursive=True)
    names = " ".join(" ".join(c.cmdline()) for c in children)
    for part in ("parjanya sim", "--classifier", "--tier low", "--tier mid", "--tier high"):
        assert part in names, part
    assert "parjanya api" in names and "redis-server" in names and "flower" not in names

    with OpenAI(base_url=f"{up.api}/v1", api_key=key, max_retries=0, timeout=60) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="parjanya-auto",
            messages=[{"role": "user", "content": "Fix the typo in the up-test README title."}],
        )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.total_tokens > 0
    task_id = raw.headers["x-parjanya-task-id"]
    assert raw.headers["x-parjanya-status"] == "succeeded"
    assert raw.headers["x-parjanya-tier"] in ("low", "mid", "high")
    assert 1 <= float(raw.headers["x-parjanya-complexity"]) <= 10
    assert int(raw.headers["x-parjanya-escalations"]) >= 0
    assert float(raw.headers["x-parjanya-cost-usd"]) > 0
    assert completion.id == f"chatcmpl-{task_id}"
    extra: dict[str, Any] = completion.model_extra or {}
    assert extra["parjanya"]["task_id"] == task_id
    assert extra["parjanya"]["tier_path"][-1] == raw.headers["x-parjanya-tier"]

    # The API's log (a file: JSON lines) has the request, by route, with no prompt text.
    api_log = up.data_dir / "logs" / "api.log"
    deadline = time.monotonic() + 10
    while not any(task_id in line for line in api_log.read_text().splitlines()):
        assert time.monotonic() < deadline, api_log.read_text()[-2000:]
        time.sleep(0.1)
    events = [json.loads(line) for line in api_log.read_text().splitlines() if line.strip()]
    (chat,) = [e for e in events if e["event"] == "request" and e.get("task_id") == task_id]
    assert (chat["route"], chat["status"], chat["tenant"]) == (
        "/v1/chat/completions",
        200,
        "default",
    )
    assert "up-test README" not in api_log.read_text()

    up.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert up.process.wait(timeout=60) == 0, up.tail()
    assert "stopped." in up.tail()
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [" ".join(c.cmdline()) for c in left]

"""The simulated provider over a real loopback socket: ASGI app, uvicorn, and a child process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from parjanya.sim import SimConfig, SimServer, difficulty_marker, error_marker, prompt_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(latency_scale=0, seed=3)) as server:
        yield server


@pytest.fixture()
def http(own_sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own_sim.base_url, timeout=5.0) as client:
        client.post("/_sim/reset").raise_for_status()
        yield client


def _chat(model: str, prompt: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "logprobs": True}


def test_completion_over_a_socket(own_sim: SimServer, http: httpx.Client) -> None:
    assert own_sim.api_base == f"{own_sim.base_url}/v1" and own_sim.port > 0
    response = http.post("/v1/chat/completions", json=_chat("sim-large", "Hello over TCP"))
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"].startswith("[sim-large] ")
    assert body["choices"][0]["logprobs"]["content"]
    models = http.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == [
        "sim-small",
        "sim-medium",
        "sim-large",
        "sim-local",
    ]
    assert http.get("/healthz").json()["status"] == "ok"
    weak = http.post(
        "/v1/chat/completions", json=_chat("sim-small", f"Hard {difficulty_marker(0.99)}")
    )
    assert weak.status_code == 200


def test_faults_and_stats_over_a_socket(http: httpx.Client) -> None:
    update = {"models": {"sim-medium": {"outage": True}}, "default": {"retry_after_s": 2}}
    assert http.post("/_sim/faults", json=update).status_code == 200
    assert http.post("/_sim/faults", json={"default": {"typo": 1}}).status_code == 400
    assert http.post("/v1/chat/completions", json=_chat("sim-medium", "p")).status_code == 503
    limited = http.post("/v1/chat/completions", json=_chat("sim-small", f"p {error_marker(429)}"))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    malformed = http.post(
        "/v1/chat/completions", json=_chat("sim-small", f"p {error_marker('malformed')}")
    )
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    with pytest.raises(httpx.ReadTimeout):
        http.post(
            "/v1/chat/completions",
            json=_chat("sim-small", f"p {error_marker('timeout')}"),
            timeout=0.3,
        )
    stats = http.get("/_sim/stats").json()
    assert stats["total"] == 4
    assert stats["per_prompt"][prompt_key("p")]["total"] == 1  # the key is the exact message text
    assert stats["per_prompt"][prompt_key(f"p {error_marker(429)}")]["by_status"] == {"429": 1}
    assert stats["by_status"] == {"503": 1, "429": 1, "200": 1, "504": 1}
    assert stats["by_fault"] == {"503": 1, "429": 1, "malformed": 1, "timeout": 1}
    assert http.get("/_sim/faults").json()["effective"]["sim-medium"]["outage"] is True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_child_process_reads_env_config_and_flags(tmp_path: Path) -> None:
    port = _free_port()
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"models": {"sim-small": {"rate_500": 1.0}}}))
    env = {**os.environ, **SimConfig(seed=5, latency_scale=3.0).to_env()}
    command = [sys.executable, "-m", "parjanya.sim", "--port", str(port)]
    command += ["--latency-scale", "0", "--fault-config", str(faults)]
    child = subprocess.Popen(command, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 8
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise
                time.sleep(0.05)
        small = httpx.post(f"{base}/v1/chat/completions", json=_chat("sim-small", "x"))
        large = httpx.post(f"{base}/v1/chat/completions", json=_chat("sim-large", "x"))
        assert (small.status_code, large.status_code) == (500, 200)
    finally:
        child.terminate()
        child.wait(timeout=10)

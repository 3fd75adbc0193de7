"""The operator's commands, run as an operator would: as processes, against the real cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai import AuthenticationError, OpenAI

from parjanya.runtime.embedded_redis import free_port, is_listening

from .conftest import Cluster, SimControl

pytestmark = pytest.mark.integration


def _run(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parjanya", *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_submit_wait_status_and_dlq_commands(cluster: Cluster, sim_control: SimControl) -> None:
    done = _run(cluster, "submit", "Write a docstring for parse_date.", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["tier_path"]

    status = _run(cluster, "status", result["id"], "--json")
    assert json.loads(status.stdout)["id"] == result["id"]
    assert _run(cluster, "status", "no-such-id").returncode == 1

    sim_control.set_faults({"default": {"outage": True}})
    dead = json.loads(_run(cluster, "submit", "Sort these imports.", "--wait", "--json").stdout)
    assert dead["status"] == "dead_lettered"
    listed = json.loads(_run(cluster, "dlq", "list", "--json").stdout)
    assert dead["id"] in [e["id"] for e in listed]
    shown = _run(cluster, "dlq", "show", dead["id"])
    assert shown.returncode == 0 and '"attempts"' in shown.stdout

    sim_control.reset()
    replayed = _run(cluster, "dlq", "replay", dead["id"])
    assert replayed.returncode == 0 and "replayed" in replayed.stdout
    again = _run(cluster, "dlq", "replay", dead["id"])
    assert again.returncode == 1  # no longer dead: a second replay is refused
    waited = _run(cluster, "status", dead["id"], "--json")
    deadline = time.monotonic() + 30
    while json.loads(waited.stdout)["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.3)
        waited = _run(cluster, "status", dead["id"], "--json")
    assert _run(cluster, "dlq", "purge", "--yes").returncode == 0


def _children_of(broker_url: str) -> list[int]:
    """Live processes started with this broker URL in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"PARJANYA_BROKER_URL={broker_url}".encode() in environ:
            found.append(int(entry.name))
    return found


def test_submit_file_validates_first_then_watches_and_sums_up(
    cluster: Cluster, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "Say hi."}\n{"prompt": "x", "max_tier": "huge"}\n')
    refused = _run(cluster, "submit", "--file", str(bad))
    assert refused.returncode == 2
    assert "line 2, field max_tier" in refused.stdout and "nothing was submitted" in refused.stdout

    tasks = tmp_path / "tasks.jsonl"
    lines = [
        {"prompt": "Rename tmp to total in utils.py."},
        {"prompt": "Fix the typo in the README title.", "max_tier": "low"},
        {"prompt": "Summarise the changelog in one line.", "min_tier": "mid"},
    ]
    tasks.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    done = _run(cluster, "submit", "--file", str(tasks), "--json", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["submitted"] == 3 and [t["line"] for t in report["tasks"]] == [1, 2, 3]
    assert all(t["status"] == "succeeded" for t in report["tasks"])
    assert report["tasks"][1]["tier_path"] == ["low"] and report["tasks"][2]["tier_path"] == ["mid"]
    total = report["summary"]["total"]
    assert total["tasks"] == 3 and total["cost_usd"] > 0 and total["latency_p50_s"] > 0

    shown = _run(cluster, "submit", "--file", str(tasks), timeout=120)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "3/3" in shown.stdout and "batch summary" in shown.stdout and "total" in shown.stdout


def test_up_starts_everything_and_sigterm_stops_every_child(tmp_path: Path) -> None:
    broker_url = f"redis://127.0.0.1:{free_port()}/0"
    env = {
        **os.environ,
        "PARJANYA_BROKER_URL": broker_url,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    env.pop("PARJANYA_CONFIG", None)
    api = f"http://127.0.0.1:{(api_port := free_port())}/v1"  # its own: another run may hold :8000
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "parjanya",
                "up",
                "--demo",
                "6",
                "--no-flower",
                "--sim-latency-scale",
                "0.1",
                "--api-port",
                str(api_port),
                "--metrics-port-base",
                str(free_port()),
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 150
        while "Running." not in log.read_text():
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert "started an embedded redis-server" in text and "demo results" in text
        assert is_listening(broker_url)
        assert len(_children_of(broker_url)) >= 5
        # No setup: `up` made a key for the default tenant, printed it, and the API takes it.
        key = (tmp_path / ".parjanya" / "api-key").read_text().strip()
        assert key.startswith("pj_") and key in text and "OpenAI(base_url=" in text
        with OpenAI(base_url=api, api_key=key, max_retries=5) as sdk:
            assert "parjanya-auto" in [m.id for m in sdk.models.list()]
        with (
            OpenAI(base_url=api, api_key="pj_0_x", max_retries=0) as bad,
            pytest.raises(AuthenticationError),
        ):
            bad.models.list()
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=90) == 0, log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
    time.sleep(0.5)
    assert not is_listening(broker_url)
    assert _children_of(broker_url) == []
    data = tmp_path / ".parjanya" / "redis"
    assert (data / "appendonly.aof").exists() or (data / "appendonlydir").exists()  # 6.x / 7.x

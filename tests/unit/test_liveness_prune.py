"""Heartbeats of workers killed without a chance to remove their own are pruned (`worker/liveness.py`)
at worker start and by `parjanya alive`; the living workers' are kept."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parjanya.cli.main import app
from parjanya.tasks import lifecycle
from parjanya.worker.context import WorkerContext
from parjanya.worker.liveness import PRUNE_AFTER, default_dir, default_path, prune
from parjanya.worker.process import WorkerProcess

HOST = socket.gethostname()
STALE_S = 30.0


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped (as after a kill -9)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _beat(directory: Path, name: str, *, age_s: float = 0.0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps({"ok": True, "pid": 1, "at": time.time() - age_s}))
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


@pytest.fixture
def alive_dir(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    directory = default_dir(tmp_path)
    dead = _dead_pid()
    files = {
        "dead pid": _beat(directory, f"{HOST}-{dead}.json"),
        "dead pid, half written": _beat(directory, f"{HOST}-{dead}.tmp"),
        "this process": _beat(directory, f"{HOST}-{os.getpid()}.json"),
        "other host, fresh": _beat(directory, "elsewhere-1.json", age_s=STALE_S),
        "other host, abandoned": _beat(directory, "elsewhere-2.json", age_s=11 * STALE_S),
        "this host, live pid, abandoned": _beat(
            directory, f"{HOST}-{os.getppid()}.json", age_s=11 * STALE_S
        ),
        "not a heartbeat": _beat(directory, f"{HOST}-{dead}.txt", age_s=11 * STALE_S),
    }
    return tmp_path, files


ABANDONED = {
    "dead pid",
    "dead pid, half written",
    "other host, abandoned",
    "this host, live pid, abandoned",
}


def test_prune_removes_the_heartbeats_no_worker_will_refresh(
    alive_dir: tuple[Path, dict[str, Path]],
) -> None:
    data_dir, files = alive_dir
    removed = prune(default_dir(data_dir), PRUNE_AFTER * STALE_S)
    assert sorted(removed) == sorted(files[name] for name in ABANDONED)
    assert {name for name, path in files.items() if not path.exists()} == ABANDONED
    assert prune(default_dir(data_dir), PRUNE_AFTER * STALE_S) == []  # idempotent
    assert prune(data_dir / "nowhere", 1.0) == []  # no directory yet: nothing to do


def test_parjanya_alive_prunes_and_still_answers_for_the_file_it_was_given(
    alive_dir: tuple[Path, dict[str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, files = alive_dir
    monkeypatch.setenv("PARJANYA_DATA_DIR", str(data_dir))
    mine = files["this process"]
    result = CliRunner().invoke(app, ["alive", str(mine)])
    assert result.exit_code == 0, result.output
    assert {name for name, path in files.items() if not path.exists()} == ABANDONED
    # a dead worker's file, asked about: the probe fails on it, and it is gone afterwards
    ghost = _beat(default_dir(data_dir), f"{HOST}-{_dead_pid()}.json", age_s=2 * STALE_S)
    result = CliRunner().invoke(app, ["alive", str(ghost)])
    assert result.exit_code == 1 and "old" in result.output and not ghost.exists()


def test_a_worker_prunes_when_it_starts_its_heartbeat(
    worker_ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker_ctx.settings = worker_ctx.settings.model_copy(update={"data_dir": tmp_path})
    dead = _beat(default_dir(tmp_path), f"{HOST}-{_dead_pid()}.json")
    process = WorkerProcess(worker_ctx.app)
    lifecycle._start_liveness(process, worker_ctx)
    try:
        assert not dead.exists() and default_path(tmp_path).exists()
    finally:
        assert process.running.liveness is not None
        process.running.liveness.stop()

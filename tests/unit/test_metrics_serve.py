"""A pool's exposition: its registry (in memory, or merged from forked processes' files), the
HTTP server, and the one re-execution that switches a prefork pool to multiprocess mode."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from parjanya.metrics_serve import (
    MULTIPROC_ENV,
    build_registry,
    multiprocess_relaunch,
    pool_dir,
    remove_pool_dir,
    serve,
)


class Fixed:
    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("parjanya_test_fixed", "A test series.", labels=["queue"])
        family.add_metric(["q"], 7.0)
        yield family


def test_in_memory_mode_serves_this_process_series_and_the_extra_collectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    registry = build_registry(Fixed())
    names = {family.name for family in registry.collect()}
    assert {"parjanya_tasks", "parjanya_task_latency_seconds", "parjanya_test_fixed"} <= names


def test_multiprocess_mode_merges_what_other_processes_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = (
        "from parjanya import metrics\n"
        "metrics.TASKS.labels('low', 'succeeded').inc(3)\n"
        "metrics.COMPLEXITY.labels('mid').observe(5.0)\n"
    )
    for _ in range(2):  # two children, as a prefork pool has
        subprocess.run(
            [sys.executable, "-c", child],
            env={**_env(), MULTIPROC_ENV: str(tmp_path)},
            check=True,
            timeout=120,
        )
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    registry = build_registry()
    assert (
        registry.get_sample_value("parjanya_tasks_total", {"tier": "low", "status": "succeeded"})
        == 6
    )
    assert registry.get_sample_value("parjanya_complexity_score_count", {"tier": "mid"}) == 2


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}


def test_the_server_answers_on_the_port_it_bound() -> None:
    exposition = serve(build_registry(Fixed()), "127.0.0.1", 0)
    assert exposition is not None
    try:
        body = httpx.get(exposition.url, timeout=10).text
        assert 'parjanya_test_fixed{queue="q"} 7.0' in body
    finally:
        exposition.close()


def test_a_taken_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve(build_registry(), "127.0.0.1", port) is None
    assert "no metrics served here" in caplog.text


def test_a_prefork_pool_relaunches_once_into_its_own_emptied_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    stale = pool_dir(tmp_path, "intake", os.getpid())
    stale.mkdir(parents=True)
    (stale / "counter_123.db").write_bytes(b"left by a dead process with our pid")

    relaunch = multiprocess_relaunch(tmp_path, "intake")

    assert relaunch is not None
    argv, env = relaunch
    assert argv == sys.orig_argv
    assert Path(env[MULTIPROC_ENV]) == stale.resolve() and list(stale.iterdir()) == []
    monkeypatch.setenv(MULTIPROC_ENV, env[MULTIPROC_ENV])
    assert multiprocess_relaunch(tmp_path, "intake") is None  # the relaunched process runs on
    remove_pool_dir(tmp_path, "intake")
    assert not stale.exists()

"""What a worker decides once at start: dispatch strategy, hooks, topology; and liveness, hand-back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from parjanya.aio import LoopThread
from parjanya.app import create_app
from parjanya.config import ParjanyaConfig, ReliabilityConfig, Settings
from parjanya.schema import HopMessage, TaskRequest, TaskStatus
from parjanya.store import TaskStore
from parjanya.worker.context import WorkerContext, build_context
from parjanya.worker.dispatch import Dispatcher
from parjanya.worker.guard import launch
from parjanya.worker.liveness import EXIT_DEAF, Liveness, Watched, exit_deaf, read
from parjanya.worker.strategy import AsyncDispatch, BlockingDispatch, strategy_for
from parjanya.worker.topology import Unservable, check_topology

from .conftest import submit


def test_the_dispatch_strategy_is_chosen_once_from_config() -> None:
    assert isinstance(strategy_for(ReliabilityConfig(tier_dispatch="async")), AsyncDispatch)
    blocking = strategy_for(ReliabilityConfig(tier_dispatch="blocking"))
    assert isinstance(blocking, BlockingDispatch)
    assert not blocking.feeds_tier_queues and blocking.celery_threads(None, 4) == 8
    assert AsyncDispatch().celery_threads(500, 4) == 4  # -c is calls in flight there


def test_in_flight_and_admitting_threads_come_from_config_with_an_env_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = ParjanyaConfig()
    assert config.reliability.max_inflight == 1000 and config.reliability.admitting_threads == 4
    monkeypatch.setenv("PARJANYA_MAX_INFLIGHT", "40")
    settings = Settings()
    assert settings.max_inflight == 40 and settings.admitting_threads is None
    ctx = build_context(settings, config, create_app(settings, config))
    ctx.loop  # noqa: B018 (the dispatcher needs the loop)
    assert ctx.dispatcher.max_inflight == 40


def test_the_chaos_hook_is_installed_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ParjanyaConfig()
    plain = build_context(Settings(), config, create_app(Settings(), config))
    assert plain.before_hop is None
    monkeypatch.setenv("PARJANYA_CHAOS_KILL_ON", "KILL-ME")
    drill = build_context(Settings(), config, create_app(Settings(), config))
    assert drill.before_hop is not None
    drill.before_hop(TaskRequest(prompt="harmless"))  # no marker: nothing happens


@pytest.mark.parametrize(
    ("broker", "result", "feeder_batch", "refused"),
    [
        ("redis://a/0", None, 64, None),
        ("redis://a/0", "redis://a/1", 64, None),
        ("redis://a/0", "redis://b:6380/0", 64, None),
        ("amqp://guest@rabbit//", "redis://a/1", 0, None),
        ("amqp://guest@rabbit//", "redis://a/1", 64, None),  # RabbitMQ feeders (amqp_feeder.py)
        ("sqs://key@queue", "redis://a/1", 64, "feeder_batch: 0"),
        ("sqs://key@queue", "redis://a/1", 0, None),
        ("redis://a/0", "postgres://db/x", 64, "store must be Redis"),
    ],
)
def test_a_broker_and_store_a_worker_cannot_serve_are_refused_at_start(
    broker: str, result: str | None, feeder_batch: int, refused: str | None
) -> None:
    settings = Settings(broker_url=broker, result_url=result)
    config = ParjanyaConfig(reliability=ReliabilityConfig(feeder_batch=feeder_batch))
    if refused is None:
        check_topology(settings, config)
    else:
        with pytest.raises(Unservable, match=refused):
            check_topology(settings, config)


def test_a_hop_admitted_at_shutdown_is_handed_back_to_the_store_at_once(
    worker_ctx: WorkerContext, store: TaskStore
) -> None:
    task_id = submit(store)
    claim = store.claim(
        HopMessage(task_id=task_id, hop=0, stage="intake"),
        holding=TaskStatus.running,
        lease_ttl_s=30,
        max_deliveries=5,
    )
    loop = LoopThread()
    try:
        worker_ctx.dispatcher = Dispatcher(loop, max_inflight=1)
        worker_ctx.dispatcher.close()
        ran: list[str] = []

        async def handler(*_: object) -> None:
            ran.append("ran")

        launch(worker_ctx, HopMessage(task_id=task_id, hop=0, stage="intake"), claim, handler)
    finally:
        loop.stop()
    assert ran == []
    assert store.get(task_id).status == TaskStatus.queued  # type: ignore[union-attr]
    assert worker_ctx.leases._held == set()  # no lease left renewing


def test_liveness_refreshes_the_heartbeat_while_feeders_poll_and_reports_a_dead_thread(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alive" / "w.json"
    now = [100.0]
    dead: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    polled = [100.0]
    liveness = Liveness(path, 30.0, on_dead=dead.append, clock=lambda: now[0])
    liveness.watch(Watched("feeder q", thread, polled=lambda: polled[0]))
    assert liveness.beat()["ok"] and read(path, 30.0)[0]
    now[0] = 140.0  # the feeder has not polled for 40 s: stuck
    report = liveness.beat()
    assert not report["ok"] and report["stale"] == ["feeder q"] and dead == []
    stale = json.loads(path.read_text())
    assert stale["ok"]  # not refreshed: the file ages until the probe fails
    polled[0] = 140.0
    stop.set()
    thread.join()
    assert not liveness.beat()["ok"] and dead == ["feeder q"]


def test_the_liveness_probe_fails_on_an_old_a_bad_or_a_missing_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    assert not read(path, 30)[0]
    path.write_text(json.dumps({"ok": True, "at": time.time() - 60, "pid": 1}))
    assert not read(path, 30)[0]
    path.write_text(json.dumps({"ok": False, "at": time.time(), "dead": ["feeder"]}))
    assert not read(path, 30)[0]
    path.write_text("not json")
    assert not read(path, 30)[0]
    path.write_text(json.dumps({"ok": True, "at": time.time(), "pid": 1}))
    ok, why = read(path, 30)
    assert ok and why.startswith("alive: pid 1")


def test_a_deaf_worker_asks_celery_to_stop_with_a_non_zero_status() -> None:
    from celery.worker import state

    deaf = threading.Event()
    timer = exit_deaf("feeder parjanya.tier.low", deaf, grace_s=3600)
    try:
        assert state.should_stop == EXIT_DEAF != 0
        assert timer.is_alive()  # the hard exit, should the warm shutdown hang
        assert deaf.is_set()
    finally:
        timer.cancel()
        state.should_stop = None

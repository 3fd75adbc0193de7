"""The dispatcher's lone-hop mode, on a real event loop and real threads (RELIABILITY T3)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from parjanya.aio import LoopThread
from parjanya.tasks.dispatch import Dispatcher, DispatcherClosed, HopTurnedAway


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    loop = LoopThread()
    dispatcher = Dispatcher(loop, max_inflight=8)
    yield dispatcher
    assert dispatcher.drain(timeout_s=5)
    loop.stop()


def _job(gate: threading.Event, log: list[str], name: str) -> Callable[[], asyncio.Future[None]]:
    async def job() -> None:
        log.append(f"{name} start")
        while not gate.is_set():
            await asyncio.sleep(0.005)
        log.append(f"{name} end")

    return job  # type: ignore[return-value]


def _in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_lone_hop_waits_for_the_running_ones_and_nothing_starts_beside_it(
    dispatcher: Dispatcher,
) -> None:
    first_done, lone_done = threading.Event(), threading.Event()
    log: list[str] = []
    dispatcher.submit(_job(first_done, log, "neighbour"))
    _until(lambda: log == ["neighbour start"])
    thread, errors = _in_thread(lambda: dispatcher.submit(_job(lone_done, log, "lone"), alone=True))
    _until(lambda: dispatcher.alone)
    with pytest.raises(HopTurnedAway):  # waiting to run alone: a newcomer is turned away
        dispatcher.submit(_job(first_done, log, "newcomer"))
    time.sleep(0.05)
    assert log == ["neighbour start"]  # and the lone hop has not started beside the neighbour
    first_done.set()
    thread.join(timeout=5)
    _until(lambda: "lone start" in log)
    assert log[:3] == ["neighbour start", "neighbour end", "lone start"]
    with pytest.raises(HopTurnedAway):  # running alone: still nothing beside it
        dispatcher.submit(_job(first_done, log, "newcomer"))
    with pytest.raises(HopTurnedAway):  # nor a second lone hop
        dispatcher.submit(_job(first_done, log, "second lone"), alone=True)
    lone_done.set()
    _until(lambda: not dispatcher.alone and dispatcher.inflight == 0)
    dispatcher.submit(_job(first_done, log, "after"))
    _until(lambda: "after end" in log)
    assert errors == [] and "newcomer start" not in log and "second lone start" not in log


def test_a_lone_hop_waits_for_other_threads_still_admitting(dispatcher: Dispatcher) -> None:
    """A hop claimed by another thread either starts first or is turned away: never held beside."""
    claimed, lone_done = threading.Event(), threading.Event()
    log: list[str] = []

    def other_admitter() -> None:
        with dispatcher.admitting(timeout_s=5):
            claimed.wait(timeout=5)  # the claim round trip, still in progress
            dispatcher.submit(_job(threading.Event(), log, "held"))

    admitter, admitter_errors = _in_thread(other_admitter)
    _until(lambda: bool(dispatcher._admitting))
    lone_thread, lone_errors = _in_thread(
        lambda: dispatcher.submit(_job(lone_done, log, "lone"), alone=True)
    )
    _until(lambda: dispatcher.alone)
    time.sleep(0.05)
    assert "lone start" not in log  # it waits for the other admission to end
    claimed.set()
    admitter.join(timeout=5)
    lone_thread.join(timeout=5)
    assert [type(e) for e in admitter_errors] == [HopTurnedAway]
    _until(lambda: "lone start" in log)
    assert "held start" not in log and lone_errors == []
    lone_done.set()


def test_closing_turns_away_a_hop_waiting_to_run_alone(dispatcher: Dispatcher) -> None:
    running = threading.Event()
    dispatcher.submit(_job(running, [], "neighbour"))
    thread, errors = _in_thread(
        lambda: dispatcher.submit(_job(threading.Event(), [], "lone"), alone=True)
    )
    _until(lambda: dispatcher.alone)
    dispatcher.close()
    thread.join(timeout=5)
    assert [type(e) for e in errors] == [DispatcherClosed] and not dispatcher.alone
    running.set()

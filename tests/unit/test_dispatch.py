"""The dispatcher on a real event loop and real threads: slots, backlog, lone hops.

Lone hops are the defence of docs/RELIABILITY.md T3.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from parjanya.aio import LoopThread
from parjanya.worker.dispatch import SHUTTING_DOWN, SOMEONE_ALONE, Dispatcher


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    loop = LoopThread()
    dispatcher = Dispatcher(loop, max_inflight=2, backlog=1)
    yield dispatcher
    assert dispatcher.drain(timeout_s=5)
    loop.stop()


class Hops:
    """Jobs that log their start and end, each held until its own event is set."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.log: list[str] = []
        self.given_back: list[tuple[str, str]] = []
        self.gates: dict[str, threading.Event] = {}

    def job(self, name: str, *, calls_over: bool = False) -> Callable[[], Awaitable[None]]:
        gate = self.gates.setdefault(name, threading.Event())

        async def run() -> None:
            self.log.append(f"{name} start")
            if calls_over:  # as a tier hop whose model calls are done, before it commits
                self.dispatcher.calls_over()
            while not gate.is_set():
                await asyncio.sleep(0.002)
            self.log.append(f"{name} end")

        return run

    def submit(self, name: str, *, alone: bool = False, calls_over: bool = False) -> None:
        self.dispatcher.submit(
            self.job(name, calls_over=calls_over),
            give_back=lambda reason: self.given_back.append((name, reason)),
            alone=alone,
        )

    def finish(self, name: str) -> None:
        self.gates[name].set()


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.002)


def _in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_a_finished_hop_starts_the_next_admitted_one_and_a_full_backlog_blocks(
    dispatcher: Dispatcher,
) -> None:
    hops = Hops(dispatcher)
    for name in ("a", "b", "c"):  # two slots and a backlog of one: all three are admitted
        hops.submit(name)
    _until(lambda: hops.log == ["a start", "b start"])
    assert dispatcher.inflight == 3 and dispatcher.room == 0
    blocked = _in_thread(lambda: hops.submit("d"))
    time.sleep(0.05)
    assert blocked.is_alive()  # back-pressure on a Celery thread
    hops.finish("a")
    _until(lambda: "c start" in hops.log)  # started on the loop, by a's end, not by a thread
    blocked.join(timeout=5)
    for name in "bcd":
        hops.finish(name)
    _until(lambda: "d end" in hops.log)
    assert dispatcher.peak == 2 and hops.given_back == []


def test_a_lone_hop_waits_for_the_admitted_ones_and_nothing_starts_beside_it(
    dispatcher: Dispatcher,
) -> None:
    hops = Hops(dispatcher)
    hops.submit("neighbour")
    _until(lambda: hops.log == ["neighbour start"])
    lone = _in_thread(lambda: hops.submit("lone", alone=True))
    _until(lambda: dispatcher.alone)
    hops.submit("newcomer")  # waiting to run alone: a newcomer goes back
    time.sleep(0.05)
    assert hops.log == ["neighbour start"] and dispatcher.room == 0
    hops.finish("neighbour")
    lone.join(timeout=5)
    _until(lambda: "lone start" in hops.log)
    assert hops.log[:3] == ["neighbour start", "neighbour end", "lone start"]
    hops.submit("late")  # running alone: still nothing beside it
    hops.submit("second lone", alone=True)  # nor a second lone hop
    hops.finish("lone")
    _until(lambda: not dispatcher.alone and dispatcher.inflight == 0)
    hops.submit("after")
    hops.finish("after")
    _until(lambda: "after end" in hops.log)
    assert hops.given_back == [
        ("newcomer", SOMEONE_ALONE),
        ("late", SOMEONE_ALONE),
        ("second lone", SOMEONE_ALONE),
    ]


def test_a_lone_hop_waits_for_other_threads_still_admitting(dispatcher: Dispatcher) -> None:
    """A hop claimed by another thread either is admitted first or goes back: never held beside."""
    hops = Hops(dispatcher)
    claimed = threading.Event()

    def other_admitter() -> None:
        with dispatcher.admitting(timeout_s=5):
            claimed.wait(timeout=5)  # the claim round trip, still in progress
            hops.submit("held")

    admitter = _in_thread(other_admitter)
    _until(lambda: bool(dispatcher._admitting))
    lone = _in_thread(lambda: hops.submit("lone", alone=True))
    _until(lambda: dispatcher.alone)
    time.sleep(0.05)
    assert "lone start" not in hops.log  # it waits for the other admission to end
    claimed.set()
    admitter.join(timeout=5)
    lone.join(timeout=5)
    _until(lambda: "lone start" in hops.log)
    assert "held start" not in hops.log and hops.given_back == [("held", SOMEONE_ALONE)]
    hops.finish("lone")


def test_closing_gives_back_what_has_not_started(dispatcher: Dispatcher) -> None:
    hops = Hops(dispatcher)
    for name in ("a", "b", "waiting"):
        hops.submit(name)
    _until(lambda: hops.log == ["a start", "b start"])
    lone = _in_thread(lambda: hops.submit("lone", alone=True))
    _until(lambda: dispatcher.alone)
    dispatcher.close()
    lone.join(timeout=5)
    hops.submit("after close")
    assert sorted(hops.given_back) == [
        ("after close", SHUTTING_DOWN),
        ("lone", SHUTTING_DOWN),
        ("waiting", SHUTTING_DOWN),
    ]
    assert not dispatcher.alone and dispatcher.inflight == 2  # running hops carry on
    hops.finish("a")
    hops.finish("b")


def test_a_second_close_returns_only_once_the_first_has_given_everything_back(
    dispatcher: Dispatcher,
) -> None:
    """The SIGTERM hook closes in a thread; the shutdown hook closes again, then drains and exits:
    it must not exit while the first close is still giving hops back (tasks/lifecycle.py)."""
    giving_back, release = threading.Event(), threading.Event()
    given_back: list[str] = []
    hops = Hops(dispatcher)
    hops.submit("a")
    hops.submit("b")
    _until(lambda: hops.log == ["a start", "b start"])

    def slow_give_back(reason: str) -> None:  # the store write of a hand-back, held
        giving_back.set()
        release.wait(timeout=5)
        given_back.append(reason)

    dispatcher.submit(hops.job("waiting"), give_back=slow_give_back)
    first = _in_thread(dispatcher.close)
    assert giving_back.wait(timeout=5)
    second = _in_thread(dispatcher.close)
    time.sleep(0.05)
    assert second.is_alive() and given_back == []
    release.set()
    second.join(timeout=5)
    assert given_back == [SHUTTING_DOWN]
    first.join(timeout=5)
    hops.finish("a")
    hops.finish("b")


def test_a_hop_whose_calls_are_over_gives_its_slot_to_the_next_while_it_commits() -> None:
    """A slot bounds model calls: a hop judging and committing does not hold one, and the
    finishing stage is bounded too (`max_finishing`), past which hops keep their slots."""
    loop = LoopThread()
    dispatcher = Dispatcher(loop, max_inflight=1, backlog=3, max_finishing=1)
    hops = Hops(dispatcher)
    try:
        for name in ("a", "b", "c"):
            hops.submit(name, calls_over=True)
        # a finishes beside b, which calls; b's calls_over finds the finishing stage full
        _until(lambda: hops.log == ["a start", "b start"])
        assert dispatcher.inflight == 3
        time.sleep(0.05)
        assert hops.log == ["a start", "b start"]  # b kept its slot: c waits
        hops.finish("a")
        _until(lambda: hops.log == ["a start", "b start", "a end"])
        time.sleep(0.05)
        assert "c start" not in hops.log  # b still holds the one slot
        hops.finish("b")
        _until(lambda: hops.log[-1] == "c start")
        hops.finish("c")
        assert dispatcher.drain(timeout_s=5)
        assert dispatcher.inflight == 0 and dispatcher.room == 4
    finally:
        loop.stop()


def test_calls_over_outside_a_hop_of_the_dispatcher_changes_nothing(
    dispatcher: Dispatcher,
) -> None:
    async def elsewhere() -> int:
        dispatcher.calls_over()  # a task the dispatcher did not start (blocking dispatch, say)
        return dispatcher.inflight

    assert dispatcher.loop.run(elsewhere()) == 0
    assert dispatcher.room == 3


def test_a_lone_hop_waits_for_hops_still_finishing(dispatcher: Dispatcher) -> None:
    hops = Hops(dispatcher)
    hops.submit("a", calls_over=True)
    _until(lambda: hops.log == ["a start"])
    lone = _in_thread(lambda: hops.submit("suspect", alone=True))
    time.sleep(0.05)
    assert hops.log == ["a start"]  # a holds no slot, but it is still in the process
    hops.finish("a")
    _until(lambda: hops.log == ["a start", "a end", "suspect start"])
    lone.join(timeout=5)
    hops.finish("suspect")

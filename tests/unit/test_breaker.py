"""The circuit breaker: the pure state machine on a fake clock, then the middleware over both stores."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import fakeredis
import pytest
import typer
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from parjanya.cli import breakers as breakers_cli
from parjanya.config import BreakerConfig, Deployment, ParjanyaConfig, TierConfig
from parjanya.providers.base import (
    AuthError,
    BadRequest,
    ChatRequest,
    ChatResponse,
    CircuitOpen,
    ConnectFailed,
    ContentFiltered,
    ContextTooLong,
    DeploymentDisabled,
    InternalError,
    LocalRateLimited,
    MalformedResponse,
    ProviderTimeout,
    RateLimited,
    ServerError,
)
from parjanya.resilience.breaker import (
    BreakerEvent,
    BreakerMiddleware,
    Outcome,
    classify_outcome,
    default_probe_lease_s,
    force_close,
)
from parjanya.resilience.breaker_metrics import record_transition
from parjanya.resilience.breaker_state import (
    BreakerRecord,
    admit,
    release_probe,
    settle_probe,
    trip,
    trip_reason,
)
from parjanya.resilience.breaker_store import BreakerStore, MemoryBreakerStore, RedisBreakerStore
from parjanya.schema import ChatMessage

REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hi")], max_tokens=8)
CONFIG = BreakerConfig(failure_threshold=3, reset_after_s=30.0)
LEASE_S = 10.0
T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def deployment(name: str | None = None) -> Deployment:
    return Deployment(
        name=name or f"unit-{uuid.uuid4().hex[:8]}",
        base_url="http://127.0.0.1:9/v1",
        model="m",
        price_in_per_mtok=0,
        price_out_per_mtok=0,
        context_window=1000,
    )


# --- the pure state machine --------------------------------------------------------------------


def test_closed_lets_every_call_through_without_a_write() -> None:
    decision = admit(BreakerRecord(), T0, CONFIG, probe_id="p", lease_s=LEASE_S)
    assert decision.verdict == "allow" and decision.write is None


def test_open_refuses_until_the_reset_timer_then_one_caller_claims_the_probe() -> None:
    opened = trip(BreakerRecord(failures=3), T0)
    early = admit(opened, T0 + 29, CONFIG, probe_id="p", lease_s=LEASE_S)
    assert early.verdict == "refuse" and early.retry_in_s == pytest.approx(1.0)
    due = admit(opened, T0 + 30, CONFIG, probe_id="p", lease_s=LEASE_S)
    assert due.verdict == "probe" and due.write is not None and due.change is not None
    assert (due.change.previous, due.change.state) == ("open", "half_open")
    assert due.write.state == "half_open" and due.write.probe_id == "p"
    assert due.write.probe_until == T0 + 30 + LEASE_S


def test_half_open_refuses_while_the_probe_lease_is_live_and_hands_it_over_after() -> None:
    held = BreakerRecord(state="half_open", probe_id="a", probe_until=T0 + LEASE_S)
    busy = admit(held, T0 + 1, CONFIG, probe_id="b", lease_s=LEASE_S)
    assert busy.verdict == "refuse" and busy.retry_in_s == pytest.approx(LEASE_S - 1)
    expired = admit(held, T0 + LEASE_S, CONFIG, probe_id="b", lease_s=LEASE_S)
    assert expired.verdict == "probe" and expired.change is None  # still half-open: no event
    assert expired.write is not None and expired.write.probe_id == "b"
    freed = admit(
        release_probe(held, probe_id="a") or held, T0 + 1, CONFIG, probe_id="c", lease_s=1
    )
    assert freed.verdict == "probe"


def test_the_probe_closes_or_reopens_and_a_foreign_probe_changes_nothing() -> None:
    held = BreakerRecord(state="half_open", version=4, failures=3, probe_id="a", probe_until=T0)
    closed = settle_probe(held, T0 + 1, probe_id="a", healthy=True)
    assert closed is not None and closed[0] == BreakerRecord(version=4)
    reopened = settle_probe(held, T0 + 1, probe_id="a", healthy=False)
    assert reopened is not None and reopened[0].state == "open" and reopened[0].opened_at == T0 + 1
    assert settle_probe(held, T0, probe_id="someone-else", healthy=True) is None
    assert release_probe(held, probe_id="someone-else") is None
    assert release_probe(BreakerRecord(), probe_id="a") is None


def test_trip_rules_consecutive_and_rate() -> None:
    assert trip_reason(BreakerRecord(failures=2), CONFIG) is None
    assert trip_reason(BreakerRecord(failures=3), CONFIG) == "3 consecutive failures"
    assert trip_reason(BreakerRecord(state="open", failures=9), CONFIG) is None
    rated = BreakerConfig(failure_threshold=100, failure_rate=0.5, min_calls=10)
    assert trip_reason(BreakerRecord(window_calls=9, window_failures=9), rated) is None
    assert trip_reason(BreakerRecord(window_calls=10, window_failures=4), rated) is None
    reason = trip_reason(BreakerRecord(window_calls=10, window_failures=5), rated)
    assert reason is not None and reason.startswith("failure rate 50% over 10 calls")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, Outcome.SUCCESS),
        (BadRequest("x", deployment="d"), Outcome.SUCCESS),
        (ContextTooLong("x", deployment="d"), Outcome.SUCCESS),
        (ContentFiltered("x", deployment="d"), Outcome.SUCCESS),
        (ServerError("x", deployment="d", status=503), Outcome.FAILURE),
        (ProviderTimeout("x", deployment="d"), Outcome.FAILURE),
        (ConnectFailed("x", deployment="d"), Outcome.FAILURE),
        (MalformedResponse("x", deployment="d"), Outcome.FAILURE),
        (RateLimited("x", deployment="d"), Outcome.IGNORED),
        (AuthError("x", deployment="d"), Outcome.IGNORED),
        (CircuitOpen("x", deployment="d"), Outcome.IGNORED),
        (LocalRateLimited("x", deployment="d", wait_s=1), Outcome.IGNORED),
        (DeploymentDisabled("x", deployment="d"), Outcome.IGNORED),
        (InternalError("x", deployment="d"), Outcome.IGNORED),
        (ValueError("bug"), Outcome.IGNORED),
        (asyncio.CancelledError(), Outcome.IGNORED),
    ],
)
def test_which_errors_count(error: BaseException | None, outcome: Outcome) -> None:
    assert classify_outcome(error) is outcome


# --- the middleware over both stores -------------------------------------------------------------

StoreFactory = Callable[[FakeClock], BreakerStore]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    if request.param == "memory":
        return MemoryBreakerStore
    server = fakeredis.FakeServer()
    return lambda clock: RedisBreakerStore(fakeredis.FakeAsyncRedis(server=server), clock=clock)


class Harness:
    """A breaker on a fake clock, with a call that does whatever the test sets."""

    def __init__(self, store: BreakerStore, config: BreakerConfig = CONFIG) -> None:
        self.store = store
        self.events: list[BreakerEvent] = []
        self.breaker = BreakerMiddleware(
            store, config, listeners=[self.events.append], probe_lease_s=LEASE_S
        )
        self.deployment = deployment()
        self.calls = 0

    async def call(self, error: BaseException | None = None, delay: float = 0.0) -> str:
        """One call through the breaker: 'ok', the error type it raised, or 'refused'."""

        async def endpoint(d: Deployment, r: ChatRequest) -> ChatResponse:
            self.calls += 1
            if delay:
                await asyncio.sleep(delay)
            if error is not None:
                raise error
            return ChatResponse(text="ok", model="m", deployment=d.name)

        try:
            await self.breaker(self.deployment, REQUEST, endpoint)
        except CircuitOpen:
            return "refused"
        except Exception as exc:
            return type(exc).__name__
        finally:
            await self.breaker.settled()  # calls here are sequential: each outcome is filed first
        return "ok"

    async def fail(self, times: int = 1) -> None:
        for _ in range(times):
            await self.call(ServerError("down", deployment="d", status=503))

    async def state(self) -> str:
        return (await self.store.load(self.deployment.name)).record.state

    def transitions(self) -> list[tuple[str, str]]:
        return [(e.previous, e.state) for e in self.events]


def run(make_store: StoreFactory, body: Callable[[Harness, FakeClock], Any], **config: Any) -> None:
    clock = FakeClock()

    async def go() -> None:
        harness = Harness(make_store(clock), CONFIG.model_copy(update=config))
        await body(harness, clock)

    asyncio.run(go())


def test_consecutive_failures_open_it_for_every_caller(make_store: StoreFactory) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(2)
        assert await h.state() == "closed"
        await h.fail()
        assert await h.state() == "open" and h.transitions() == [("closed", "open")]
        assert h.events[0].reason == "3 consecutive failures" and h.events[0].at == T0
        calls = h.calls
        assert await h.call() == "refused" and h.calls == calls  # no call made

    run(make_store, body)


def test_a_success_resets_the_count_and_ignored_errors_neither_count_nor_reset(
    make_store: StoreFactory,
) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(2)
        await h.call()
        await h.fail(2)
        assert await h.state() == "closed"
        for error in (
            RateLimited("slow down", deployment="d"),
            AuthError("key", deployment="d"),
            LocalRateLimited("budget", deployment="d", wait_s=1),
            CircuitOpen("inner", deployment="d"),
            ValueError("bug"),
        ):
            assert await h.call(error) != "ok"
        snap = await h.store.load(h.deployment.name)
        assert snap.record.state == "closed" and snap.record.failures == 2
        await h.call(BadRequest("bad", deployment="d"))  # the deployment answered: healthy
        assert (await h.store.load(h.deployment.name)).record.failures == 0

    run(make_store, body)


def test_half_open_probe_success_closes_it(make_store: StoreFactory) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(3)
        clock.advance(29.9)
        assert await h.call() == "refused"
        clock.advance(0.1)
        assert await h.call() == "ok"
        assert await h.state() == "closed"
        assert h.transitions() == [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
        ]
        await h.fail(2)  # counting starts afresh after closing
        assert await h.state() == "closed"

    run(make_store, body)


def test_half_open_probe_failure_reopens_it_with_a_new_timer(make_store: StoreFactory) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(3)
        clock.advance(30)
        assert await h.call(ProviderTimeout("slow", deployment="d")) == "ProviderTimeout"
        snap = await h.store.load(h.deployment.name)
        assert snap.record.state == "open" and snap.record.opened_at == T0 + 30
        clock.advance(29)
        assert await h.call() == "refused"
        clock.advance(1)
        assert await h.call() == "ok"
        assert h.transitions()[-3:] == [
            ("half_open", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
        ]

    run(make_store, body)


def test_half_open_lets_exactly_one_of_twenty_concurrent_callers_through(
    make_store: StoreFactory,
) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(3)
        clock.advance(30)
        calls = h.calls
        outcomes = await asyncio.gather(*(h.call(delay=0.05) for _ in range(20)))
        assert h.calls - calls == 1
        assert sorted(outcomes) == ["ok"] + ["refused"] * 19
        assert await h.state() == "closed"
        assert h.transitions().count(("open", "half_open")) == 1

    run(make_store, body)


def test_an_abandoned_probe_lease_runs_out_and_its_late_outcome_is_ignored(
    make_store: StoreFactory,
) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(3)
        clock.advance(30)
        stuck = asyncio.Event()

        async def hangs(d: Deployment, r: ChatRequest) -> ChatResponse:
            await stuck.wait()
            raise ServerError("late", deployment=d.name, status=500)

        dead = asyncio.create_task(h.breaker(h.deployment, REQUEST, hangs))  # a worker that hangs
        await asyncio.sleep(0.01)
        assert await h.call() == "refused"  # the probe is held
        clock.advance(LEASE_S)
        assert await h.call() == "ok"  # the lease ran out: a new probe, which closes it
        stuck.set()
        with pytest.raises(ServerError):
            await dead
        assert await h.state() == "closed"  # the abandoned probe's failure was dropped
        assert (await h.store.load(h.deployment.name)).record.failures == 0

    run(make_store, body)


def test_a_probe_that_ends_without_a_verdict_releases_it(make_store: StoreFactory) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(3)
        clock.advance(30)
        assert await h.call(RateLimited("429", deployment="d")) == "RateLimited"
        snap = await h.store.load(h.deployment.name)
        assert snap.record.state == "half_open" and snap.record.probe_id == ""
        assert await h.call() == "ok"  # the next caller probes at once
        assert await h.state() == "closed"

    run(make_store, body)


def test_failure_rate_opens_it_once_min_calls_are_seen(make_store: StoreFactory) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        for i in range(9):  # alternate, so never 100 consecutive, 5/9 failed
            await (h.fail() if i % 2 == 0 else h.call())
            clock.advance(0.5)
        assert await h.state() == "closed"  # below min_calls
        await h.call()  # 10 calls, 5 failed: 50% trips it
        assert await h.state() == "open"
        assert h.events[-1].reason.startswith("failure rate 50% over 10 calls")

    run(make_store, body, failure_threshold=100, failure_rate=0.5, min_calls=10, window_s=10)


def test_failure_rate_forgets_calls_older_than_the_window(make_store: StoreFactory) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(9)
        clock.advance(11)
        await h.fail()  # 1 call in the window, not 10
        snap = await h.store.load(h.deployment.name, 10)
        assert snap.record.state == "closed"
        assert (snap.record.window_calls, snap.record.window_failures) == (1, 1)

    run(make_store, body, failure_threshold=100, failure_rate=0.5, min_calls=10, window_s=10)


def test_an_outcome_from_before_a_transition_is_not_counted(make_store: StoreFactory) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        slow = asyncio.create_task(h.call(ServerError("x", deployment="d"), delay=0.05))
        await asyncio.sleep(0.01)
        await h.fail(3)  # opens while `slow` is in flight
        await force_close(h.store, h.deployment.name)  # and is closed again, at a new version
        assert await slow == "ServerError"  # admitted under the old version: dropped
        assert (await h.store.load(h.deployment.name)).record.failures == 0

    run(make_store, body)


def test_force_close_resets_an_open_breaker(make_store: StoreFactory) -> None:
    async def body(h: Harness, clock: FakeClock) -> None:
        await h.fail(3)
        before = await force_close(h.store, h.deployment.name)
        assert before.record.state == "open"
        assert await h.call() == "ok"

    run(make_store, body)


def test_redis_store_on_the_server_clock() -> None:
    async def go() -> None:
        store = RedisBreakerStore(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()))
        h = Harness(store)
        await h.fail(3)
        snap = await store.load(h.deployment.name)
        assert snap.record.state == "open" and snap.record.opened_at == pytest.approx(
            snap.now, abs=5
        )
        assert await h.call() == "refused"

    asyncio.run(go())


class BrokenStore:
    async def load(self, deployment: str, window_s: float = 0.0) -> Any:
        raise ConnectionError("redis is down")

    count = swap = load


def test_an_unreachable_store_fails_open() -> None:
    h = Harness(BrokenStore())  # type: ignore[arg-type]
    assert asyncio.run(h.call()) == "ok"
    assert asyncio.run(h.call(ServerError("x", deployment="d"))) == "ServerError"


def test_listeners_see_each_transition_and_a_broken_one_is_skipped() -> None:
    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("listener bug")

    async def go() -> Harness:
        h = Harness(MemoryBreakerStore(FakeClock()))
        h.breaker.listeners = [broken, record_transition, h.events.append]
        await h.fail(3)
        return h

    h = asyncio.run(go())
    assert h.transitions() == [("closed", "open")]
    sample = REGISTRY.get_sample_value(
        "parjanya_breaker_transitions_total", {"deployment": h.deployment.name, "state": "open"}
    )
    assert sample == 1.0


def test_default_probe_lease_covers_a_retried_call() -> None:
    assert default_probe_lease_s(deployment()) >= 2 * deployment().timeout_s


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_lists_and_resets_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    server = fakeredis.FakeServer()
    down, fine = deployment("cli-down"), deployment("cli-fine")
    config = ParjanyaConfig(
        tiers={
            "low": TierConfig(deployments=[down, fine]),
            "mid": TierConfig(deployments=[deployment("cli-mid")]),
            "high": TierConfig(deployments=[deployment("cli-high")]),
        }
    )

    async def open_it() -> None:
        h = Harness(RedisBreakerStore(fakeredis.FakeAsyncRedis(server=server)))
        h.deployment = down
        await h.fail(5)

    asyncio.run(open_it())
    monkeypatch.setattr(breakers_cli, "get_config", lambda: config)
    monkeypatch.setattr(
        breakers_cli, "_connect", lambda url: fakeredis.FakeAsyncRedis(server=server)
    )
    app = typer.Typer()
    app.command()(breakers_cli.breakers)
    runner = CliRunner()

    listed = runner.invoke(app, ["--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["deployment"]: row for row in json.loads(listed.output)}
    assert rows["cli-down"]["state"] == "open" and rows["cli-down"]["consecutive_failures"] == 3
    assert rows["cli-down"]["opened_at"] is not None and rows["cli-fine"]["state"] == "closed"
    assert len(rows) == 4

    table = runner.invoke(app, [])
    assert table.exit_code == 0 and "cli-down" in table.output and "open" in table.output

    reset = runner.invoke(app, ["--reset", "cli-down"])
    assert reset.exit_code == 0 and "closed (was open)" in reset.output
    after = json.loads(runner.invoke(app, ["--json"]).output)
    assert {row["state"] for row in after} == {"closed"}

    assert runner.invoke(app, ["--reset", "nope"]).exit_code == 1

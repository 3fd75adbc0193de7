"""RELIABILITY scenarios again, with the store apart from the broker (`PARJANYA_RESULT_URL` on db 1).

The scenarios are the ones of `test_reliability.py`, collected here a second time: kill -9, the
connection blip, the broker's own kill -9, the rolling SIGTERM and poison. This module gives the
first two a broker of its own and a cluster whose store is another database of it; the last three
start their own broker and, through `store_db`, put their store on its database 1. Either way
`PARJANYA_RESULT_URL` is set for the test process, so every `Client` they build reads that store.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parjanya import keys
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.sim.server import SimServer

from .conftest import Cluster, make_cluster
from .test_reliability import (  # noqa: F401 (collected again here, with the store apart)
    test_a_connection_blip_mid_call_runs_nothing_twice,
    test_a_rolling_restart_under_load_loses_nothing_and_runs_nothing_twice,
    test_a_task_that_kills_its_worker_every_time_is_dead_lettered_as_poison,
    test_broker_kill_9_with_aof_loses_nothing_queued_or_running,
    test_kill_9_of_an_async_tier_pool_mid_call_then_restart_gives_exactly_one_result,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def store_db() -> int:
    """The scenarios that start a broker of their own keep the store on its database 1."""
    return 1


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("apart-redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url(own_server: EmbeddedRedis) -> str:
    """The broker (this module's own server, db 0); overrides the session-wide one here."""
    return own_server.url


@pytest.fixture(scope="module")
def store_url(own_server: EmbeddedRedis) -> Iterator[str]:
    url = own_server.url.rsplit("/", 1)[0] + "/1"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PARJANYA_RESULT_URL", url)  # every Client of these tests reads this store
        yield url


@pytest.fixture(scope="module")
def small_cluster(
    redis_url: str, store_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    running = make_cluster(redis_url, sim, tmp_path_factory.mktemp("apart"))
    running.env["PARJANYA_RESULT_URL"] = store_url
    with running.serving("intake", "low"):
        yield running


def test_the_store_really_is_apart(redis_url: str, store_url: str, small_cluster: Cluster) -> None:
    from parjanya.client import Client

    with Client(redis_url, config=small_cluster.config) as client:
        assert client.settings.store_url == store_url != redis_url
        done = client.submit({"prompt": "Fix the typo in NOTES.", "max_tier": "low"}).result(30)
        assert done.status.value == "succeeded"
        assert client.store.redis.exists(keys.task(done.id))

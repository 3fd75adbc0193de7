"""`sentinel://` URLs as Celery users write them, and the clients built from them."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis
from redis.sentinel import SentinelConnectionPool

from parjanya.connect import async_redis_client, parse_sentinel_url, redis_client
from parjanya.safeurl import mask_url

URL = (
    "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26380;"
    "sentinel://10.0.0.3?master_name=parjanya&sentinel_password=pw"
)


def test_a_sentinel_url_names_every_sentinel_the_primary_and_its_database() -> None:
    spec = parse_sentinel_url(URL)
    assert spec.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379))
    assert spec.master_name == "parjanya"
    assert spec.db == 2
    assert spec.password == "s3cret"
    assert spec.sentinel_kwargs == {"password": "pw"}


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("sentinel://10.0.0.1:26379", "master_name"),
        ("sentinel://10.0.0.1:26379;redis://10.0.0.2?master_name=m", "sentinel://host:port"),
        ("sentinel://10.0.0.1:26379/zero?master_name=m", "database"),
    ],
)
def test_a_sentinel_url_that_cannot_reach_a_primary_is_refused_by_name(
    url: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_sentinel_url(url)


def test_the_sync_client_asks_the_sentinels_for_the_named_primary() -> None:
    client = redis_client(URL, socket_timeout=3)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "parjanya"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "s3cret"
    assert pool.connection_kwargs["socket_timeout"] == 3


def test_a_capped_async_client_waits_for_a_connection_instead_of_failing() -> None:
    plain = async_redis_client("redis://127.0.0.1:1/0", max_connections=8)
    assert isinstance(plain.connection_pool, aioredis.BlockingConnectionPool)
    assert plain.connection_pool.max_connections == 8
    sentinel = async_redis_client(URL, max_connections=8)
    assert isinstance(sentinel.connection_pool, aioredis.BlockingConnectionPool)
    assert sentinel.connection_pool.service_name == "parjanya"  # type: ignore[attr-defined]


def test_a_plain_url_is_redis_pys_own() -> None:
    client = redis_client("redis://127.0.0.1:6390/3", socket_timeout=2)
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_kwargs["db"] == 3


def test_the_password_of_a_sentinel_url_is_never_shown() -> None:
    shown = mask_url(URL)
    assert "s3cret" not in shown
    assert shown.endswith("sentinel_password=********")

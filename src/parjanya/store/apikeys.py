"""API keys and tenants' webhook secrets in Redis: a key is stored only as its SHA-256.

A key is `pj_<id>_<secret>`: the id is public (it names the key in `parjanya keys list` and
`revoke`), the secret is 192 random bits. It is looked up by the SHA-256 of the whole key, so the
store holds nothing a caller could present; a key this long needs no slow hash (there is nothing
to guess), and one digest per request is cheap. The plaintext is shown once, at creation.

A tenant's webhook signing secret must be readable to sign with, so it is stored as is: it is
created with the tenant's first key (or the first callback a tenant's task owes) and shown by
`parjanya keys create` and `parjanya keys secret`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from redis import asyncio as aioredis

from parjanya import keys

__all__ = ["DEFAULT_TENANT", "ApiKey", "ApiKeyStore", "NewKey", "digest_of"]

#: The tenant of `parjanya up`'s local key, and whose secret signs callbacks of tenant-less tasks.
DEFAULT_TENANT = "default"
_PREFIX = "pj_"


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """What the store knows of a key: never the key itself."""

    id: str
    tenant: str
    rate_per_minute: int | None  # None: the configured `api.key_rate_per_minute`
    created_at: float


@dataclass(frozen=True)
class NewKey:
    key: str  # the plaintext, shown once
    record: ApiKey
    webhook_secret: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ApiKeyStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def create(self, tenant: str, *, rate_per_minute: int | None = None) -> NewKey:
        key_id = secrets.token_hex(4)
        key = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        record = ApiKey(key_id, tenant, rate_per_minute, time.time())
        digest = digest_of(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.api_key(digest),
                mapping={"id": key_id, "tenant": tenant, "rate": str(rate_per_minute or "")},
            )
            pipe.hset(keys.API_KEYS, key_id, json.dumps({**asdict(record), "digest": digest}))
            await pipe.execute()
        return NewKey(key, record, await self.webhook_secret(tenant))

    async def lookup(self, key: str) -> ApiKey | None:
        """The key's record, or None for a key that does not exist (or was revoked)."""
        if not key.startswith(_PREFIX):
            return None
        raw = await self.redis.hgetall(keys.api_key(digest_of(key)))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        rate = fields.get("rate") or None
        return ApiKey(fields["id"], fields["tenant"], int(rate) if rate else None, 0.0)

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        records = []
        for raw in (await self.redis.hgetall(keys.API_KEYS)).values():
            data = json.loads(raw)
            data.pop("digest", None)
            if tenant is None or data["tenant"] == tenant:
                records.append(ApiKey(**data))
        return sorted(records, key=lambda r: (r.tenant, r.created_at))

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Delete a key by its id; None when there is no such key."""
        raw = await self.redis.hget(keys.API_KEYS, key_id)
        if raw is None:
            return None
        data = json.loads(raw)
        digest = data.pop("digest")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.api_key(digest))
            pipe.hdel(keys.API_KEYS, key_id)
            await pipe.execute()
        return ApiKey(**data)

    async def webhook_secret(self, tenant: str) -> str:
        """The tenant's signing secret, created on first use (every process agrees on it)."""
        name = keys.webhook_secret(tenant)
        await self.redis.set(name, "whsec_" + secrets.token_urlsafe(32), nx=True)
        return _text(await self.redis.get(name))

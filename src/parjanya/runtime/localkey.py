"""The API key `parjanya up` prints, so the API works with no setup (as Jupyter prints a token).

The key's plaintext is kept in `<data dir>/api-key` (readable by its owner only), because the
store keeps only its digest: a restart reuses the key while the store still knows it, and makes
a new one (for the `default` tenant) when it does not.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from parjanya.config import Settings
from parjanya.connect import async_redis_client
from parjanya.store.apikeys import DEFAULT_TENANT, ApiKeyStore

__all__ = ["key_file", "local_key"]


def key_file(settings: Settings) -> Path:
    return settings.data_dir / "api-key"


async def _local_key(settings: Settings, path: Path) -> tuple[str, bool]:
    client = async_redis_client(settings.store_url, socket_timeout=None)
    try:
        store = ApiKeyStore(client)
        if path.exists():
            kept = path.read_text().strip()
            if kept and await store.lookup(kept) is not None:
                return kept, False
        created = await store.create(DEFAULT_TENANT)
    finally:
        await client.aclose()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(created.key + "\n")
    return created.key, True


def local_key(settings: Settings) -> tuple[str, bool]:
    """The local key and whether it was just created."""
    return asyncio.run(_local_key(settings, key_file(settings)))

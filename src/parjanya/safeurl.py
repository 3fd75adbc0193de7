"""URLs as they may be shown: the password masked, the way Celery masks its broker URL.

A broker or store URL carries its password (`redis://:secret@host:6379/0`), and it is exactly what
a command, a log line or an error wants to show. Everything that shows one passes it through
`mask_url` first. It is Celery's own `sanitize_url` (user kept, password replaced, multi-host and
Sentinel lists handled, malformed input never half-parsed), plus the `password=` query parameter
that redis-py also reads. `mask_urls_in` does the same for URLs inside free text, such as an
exception's message, where no parser can be trusted to find where the URL ends.
"""

from __future__ import annotations

import re

from celery.app.utils import sanitize_url  # type: ignore[attr-defined]  # not in celery-types

__all__ = ["MASK", "mask_url", "mask_urls_in"]

MASK = "********"

#: `password=...` (or `pass`, `passwd`, and prefixed ones like `sentinel_password`) in a query
#: string or key=value list.
_QUERY_SECRET = re.compile(r"(?i)([?&;](?:\w+_)?pass(?:word|wd)?=)[^&;#\s]*")
#: `scheme://user:password@` anywhere in a text; the user part may be empty.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]*:)[^\s@/]*@")


def mask_url(url: str) -> str:
    """`url` with any password replaced by `MASK`; a URL without one comes back unchanged."""
    return _QUERY_SECRET.sub(rf"\g<1>{MASK}", str(sanitize_url(url, mask=MASK)))


def mask_urls_in(text: str) -> str:
    """`text` with the password of every URL in it replaced by `MASK`."""
    return _QUERY_SECRET.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}@", text))

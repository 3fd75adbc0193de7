"""The signature on a callback: HMAC-SHA256 over `<timestamp>.<body>`, Stripe's scheme.

    Parjanya-Signature: t=1733380000,v1=5f2b...e9

`v1` is the hex HMAC-SHA256 of the bytes `f"{t}."` + the raw body, keyed with the tenant's
webhook secret (`whsec_...`, its UTF-8 bytes as they are). The timestamp is signed with the body,
so a receiver that also refuses old timestamps (`tolerance_s`) refuses a replayed callback; the
`Parjanya-Event-Id` header is the same on every retry of one delivery, so it deduplicates.
Several `v1=` entries may appear (a secret being rotated): one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "Parjanya-Signature"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Parjanya-Signature` header value for `body` sent at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """True when `header` signs exactly `body` with `secret` within `tolerance_s` of now."""
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)

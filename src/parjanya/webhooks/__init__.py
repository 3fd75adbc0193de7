"""Result callbacks: a task's `callback_url` gets a signed POST of its result when it ends.

`signing` (the header, and `verify` for receivers), `addresses` (where a callback may go),
`outbox` (what is owed, in the store) and `sender` (the loop every worker runs).
"""

from parjanya.webhooks.signing import SIGNATURE_HEADER, sign, verify

__all__ = ["SIGNATURE_HEADER", "sign", "verify"]

"""What happens to a prompt with PII in it: `routing.pii_action`, decided once as a strategy.

| action    | routing                                          | what leaves for the provider      |
|-----------|--------------------------------------------------|-----------------------------------|
| `record`  | as without PII (the kinds are recorded)          | the prompt as given               |
| `redact`  | as without PII                                   | each item masked as `[EMAIL_1]`...|
| `private` | private deployments only (next tier up that has  | the prompt as given, to a private |
|           | one; none within the task's tiers: refused)      | deployment only                   |

Under `redact` every item gets a numbered placeholder (the same item, the same placeholder, in
every message), and the answer has each placeholder that comes back replaced by the original, so
"write to [EMAIL_1]" reaches the caller as "write to ana@example.com" while the provider never saw
the address. Under `private` the classifier routes to a tier with a private deployment and the
balancer's filter stage (`capabilities.FilterStage`) keeps the call on private deployments; an
escalation to a tier without one calls nothing there.

`conceal` is what logs and listings print instead of prompt text, unless
`governance.privacy.log_prompts` allows it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from parjanya.classify.pii import PATTERNS, PiiPattern
from parjanya.schema import ChatMessage

__all__ = [
    "PII_HANDLING",
    "Masking",
    "PiiHandling",
    "Private",
    "Record",
    "Redact",
    "conceal",
    "pii_handling",
]

PiiAction = Literal["record", "redact", "private"]


@dataclass
class Masking:
    """The placeholders of one request: placeholder -> original, and the way back."""

    originals: dict[str, str] = field(default_factory=dict)
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)

    def mask(self, text: str) -> str:
        for entry in PATTERNS:
            text = entry.pattern.sub(lambda m, e=entry: self._replace(e, m), text)  # type: ignore[misc]
        return text

    def _replace(self, entry: PiiPattern, match: re.Match[str]) -> str:
        if not entry.valid(match):
            return match.group(0)
        whole = match.group(0)
        if entry.mask_group:
            offset = match.start()
            start, end = match.span("value")
            value = whole[start - offset : end - offset]
            return whole[: start - offset] + self._placeholder(entry, value) + whole[end - offset :]
        return self._placeholder(entry, whole)

    def _placeholder(self, entry: PiiPattern, value: str) -> str:
        key = (entry.kind, value)
        if key not in self._by_value:
            count = sum(1 for kind, _ in self._by_value if kind == entry.kind) + 1
            placeholder = f"{entry.mask[:-1]}_{count}]"
            self._by_value[key] = placeholder
            self.originals[placeholder] = value
        return self._by_value[key]

    def restore(self, text: str) -> str:
        """`text` with every placeholder of this request that came back put back as it was."""
        for placeholder, original in self.originals.items():
            text = text.replace(placeholder, original)
        return text


Restore = Callable[[str], str]


def _unchanged(text: str) -> str:
    return text


class PiiHandling(Protocol):
    """One `pii_action`: whether the task is held to private deployments, and what is sent."""

    @property
    def private_only(self) -> bool: ...

    def outbound(self, messages: Sequence[ChatMessage]) -> tuple[list[ChatMessage], Restore]: ...


class Record:
    """Today's behaviour: the PII kinds are recorded with the decision; the prompt goes as is."""

    private_only = False

    def outbound(self, messages: Sequence[ChatMessage]) -> tuple[list[ChatMessage], Restore]:
        return list(messages), _unchanged


class Private:
    """Only private deployments may see the prompt; it goes to them unchanged."""

    private_only = True

    def outbound(self, messages: Sequence[ChatMessage]) -> tuple[list[ChatMessage], Restore]:
        return list(messages), _unchanged


class Redact:
    """Masked before it leaves; the answer's placeholders are put back."""

    private_only = False

    def outbound(self, messages: Sequence[ChatMessage]) -> tuple[list[ChatMessage], Restore]:
        masking = Masking()
        masked = [m.model_copy(update={"content": masking.mask(m.content)}) for m in messages]
        return masked, masking.restore


PII_HANDLING: dict[PiiAction, PiiHandling] = {
    "record": Record(),
    "redact": Redact(),
    "private": Private(),
}


def pii_handling(action: PiiAction) -> PiiHandling:
    return PII_HANDLING[action]


def conceal(text: str | None, allowed: bool) -> str | None:
    """What a log line or a listing shows of prompt text: the text when config allows it, else
    its size and a short hash (enough to match two reports of one prompt, not to read it)."""
    if text is None or allowed:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]
    return f"<{len(text)} chars, sha256 {digest}>"

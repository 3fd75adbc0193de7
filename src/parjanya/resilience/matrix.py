"""The fallback decision matrix: what a tier does after each kind of failure, in one table.

Seed 003's matrix, made exact. Each `error_type` of the provider error tree maps to one `Action`;
the action says whether the same deployment may be tried again (`retries`, within the budget of
`RetryConfig.budgets[error_type]`, default 1, and `RetryConfig.max_attempts` overall) and what the
chain does once that deployment is given up:

    error_type            action            same deployment again          then
    rate_limited          WAIT_RETRY_AFTER  Retry-After ≤ max_retry_after_s  next deployment
                                            (+ jitter), else backoff; a
                                            longer Retry-After: never
    timeout               RETRY             backoff, budget (2: one retry)  next deployment
    server_error          RETRY             backoff, budget (1: none)       next deployment
    malformed_response    RETRY             backoff, budget (2: one retry)  next deployment
    connect_failed        RETRY             backoff, budget                 next deployment
    context_too_long      LARGER_WINDOW     never                           only larger windows; if
                                                                            none, truncate (policy)
    content_filtered      OTHER_PROVIDER    never                           skip its provider+host
    auth_error            DISABLE           never                           disable, alert, next
    bad_request           NEXT              never                           next deployment
    internal              NEXT              never                           next deployment
    circuit_open          REFUSED           never (no call was made)        next at once, no sleep
    rate_limited_local    REFUSED           never                           next at once, no sleep
    deployment_disabled   REFUSED           never                           next at once, no sleep
    budget_exhausted      REFUSED           never (the task's budget_usd    next at once: a cheaper
                                            would not cover it; no call)    one may still fit
    no_eligible_deployment REFUSED          never (none meets the task's    next at once (the tier
                                            constraints or privacy)         ends with the reason)

Anything not in the table is looked up by its class (any other `Refused` is REFUSED) and otherwise
treated as `internal`. This module only answers questions; `retry.py` asks it whether and how long
to wait, `fallback.py` asks it where to go next.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from parjanya.config import RetryConfig
from parjanya.providers.base import ProviderError, Refused

__all__ = ["MATRIX", "Action", "Rule", "budget", "error_type_of", "rule_for"]


class Action(StrEnum):
    WAIT_RETRY_AFTER = "wait_retry_after"  # honour Retry-After if short, else back off; budgeted
    RETRY = "retry"  # back off (full jitter) and try the same deployment again; budgeted
    NEXT = "next"  # the next deployment at once
    LARGER_WINDOW = "larger_window"  # only deployments with a larger window; truncate if none
    OTHER_PROVIDER = "other_provider"  # skip the rest of this provider+host, try the others
    DISABLE = "disable"  # mark the deployment disabled (shared, with a TTL), alert, next
    REFUSED = "refused"  # a local guard said no before any call: next at once, no sleep

    @property
    def retries(self) -> bool:
        """Whether the same deployment may be tried again (within its budget)."""
        return self in (Action.WAIT_RETRY_AFTER, Action.RETRY)


@dataclass(frozen=True)
class Rule:
    error_type: str
    action: Action
    urgency: str  # seed 003's "fallback urgency", for people reading a history or a dashboard


#: The one table. Change behaviour here, not with a branch in fallback.py or retry.py.
MATRIX: dict[str, Rule] = {
    rule.error_type: rule
    for rule in (
        Rule("rate_limited", Action.WAIT_RETRY_AFTER, "medium"),
        Rule("timeout", Action.RETRY, "high"),
        Rule("server_error", Action.RETRY, "medium"),
        Rule("malformed_response", Action.RETRY, "low"),
        Rule("connect_failed", Action.RETRY, "high"),
        Rule("context_too_long", Action.LARGER_WINDOW, "n/a"),
        Rule("content_filtered", Action.OTHER_PROVIDER, "low"),
        Rule("auth_error", Action.DISABLE, "critical"),
        Rule("bad_request", Action.NEXT, "low"),
        Rule("internal", Action.NEXT, "low"),
        Rule("circuit_open", Action.REFUSED, "high"),
        Rule("rate_limited_local", Action.REFUSED, "medium"),
        Rule("deployment_disabled", Action.REFUSED, "critical"),
        Rule("budget_exhausted", Action.REFUSED, "medium"),  # governance/budgets.py
        Rule("no_eligible_deployment", Action.REFUSED, "medium"),  # governance/scope.py
    )
}

_REFUSED = Rule("refused", Action.REFUSED, "high")


def error_type_of(error: BaseException) -> str:
    """The taxonomy name of `error`; anything outside the tree is "internal"."""
    return error.error_type if isinstance(error, ProviderError) else "internal"


def rule_for(error: BaseException) -> Rule:
    """The row for `error`: by error_type, else by class (a new `Refused` kind), else internal."""
    rule = MATRIX.get(error_type_of(error))
    if rule is not None:
        return rule
    if isinstance(error, Refused):
        return _REFUSED
    return MATRIX["internal"]


def budget(policy: RetryConfig, error_type: str) -> int:
    """Tries of one deployment that end in `error_type` before giving it up.

    Only retrying actions read `RetryConfig.budgets` (default 1 when missing); the others are one
    try whatever the config says, since a second one would fail the same way.
    """
    rule = MATRIX.get(error_type)
    if rule is None or not rule.action.retries:
        return 1
    return max(1, policy.budgets.get(error_type, 1))

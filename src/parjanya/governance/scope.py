"""What one tier hop is held to: its task's needs, its purse, and what its PII handling sends.

Built once per hop from the stored request and result (`hop_scope`), then active around the tier
call (`HopScope.active`: the balancer's filter stage reads the needs, the spend middleware the
purse) and asked once more after it (`hold`): an escalation the task's budget cannot pay for is
not started. Under `budget_usd` a hop whose every call was refused, or an escalation that could not
be paid for after a failed tier, ends the task `failed` with error type `budget_exhausted`; after a
doubtful answer the task finishes with that answer, flagged `low_confidence`, and says why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from parjanya.config import ParjanyaConfig
from parjanya.escalation import Decision, Escalate, Finish, GiveUp
from parjanya.governance.budgets import Purse, cheapest, paying, tenant_name
from parjanya.governance.capabilities import Needs, eligible, needs_for, requiring
from parjanya.governance.privacy import Restore, pii_handling
from parjanya.providers.base import ChatRequest, ChatResponse, Refused
from parjanya.queues import Tier
from parjanya.resilience.fallback import TierCall
from parjanya.schema import Attempt, ChatMessage, TaskRequest, TaskResult, utcnow

__all__ = ["HopScope", "Stop", "hop_scope"]


class NoEligibleDeployment(Refused):
    """The task's hard constraints left no deployment of the tier to call."""

    error_type = "no_eligible_deployment"


@dataclass(frozen=True)
class Stop:
    """The task's budget ends it here: no further call or hop is paid for."""

    reason: str


@dataclass
class HopScope:
    needs: Needs
    purse: Purse
    messages: list[ChatMessage]  # what leaves for the provider (masked under `redact`)
    restore: Restore

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        with requiring(self.needs), paying(self.purse):
            yield

    def answer(self, response: ChatResponse) -> ChatResponse:
        """The response with any placeholder the provider echoed put back (under `redact`)."""
        calls = [
            c.model_copy(update={"arguments": self.restore(c.arguments)})
            for c in response.tool_calls
        ]
        return response.model_copy(
            update={"text": self.restore(response.text), "tool_calls": calls}
        )

    def account(self, call: TierCall, tier: Tier, hop: int) -> None:
        """A tier that called nothing because the filter stage left nothing says why, so the
        task's history and its final error name the constraints, not a bare failure."""
        if call.attempts or call.response is not None or not self.needs.excluded:
            return
        why = "; ".join(f"{name}: {reason}" for name, reason in self.needs.excluded.items())
        error = NoEligibleDeployment(
            f"no deployment of {tier} may serve this task ({why})", deployment="-"
        )
        now = utcnow()
        call.errors.append(error)
        call.attempts.append(
            Attempt(
                hop=hop,
                stage=tier,
                tier=tier,
                outcome="error",
                error_type=error.error_type,
                error=str(error),
                started_at=now,
                finished_at=now,
            )
        )

    def hold(
        self, decision: Decision, doc: TaskResult, chat: ChatRequest, config: ParjanyaConfig
    ) -> Decision | Stop:
        """`decision`, unless the task's budget cannot pay for it."""
        purse = self.purse
        if isinstance(decision, Escalate):
            deployments = config.tiers[decision.to].deployments
            expected = config.routing.expected_output_tokens
            estimate = cheapest(eligible(deployments, self.needs) or deployments, chat, expected)
            if purse.covers(estimate):
                return decision
            why = (
                f"budget_usd ${purse.budget_usd:.6g}: spent ${purse.spent:.6g}; escalation to "
                f"{decision.to} (about ${estimate:.6g}) not started"
            )
            if decision.reason == "failover":
                return Stop(why)
            if doc.routing is not None:
                doc.routing.reasons.append(why)
            return Finish(low_confidence=True)
        if isinstance(decision, GiveUp) and purse.refused:
            return Stop(purse.refused[-1])
        return decision


def hop_scope(
    config: ParjanyaConfig, request: TaskRequest, doc: TaskResult, tier: Tier
) -> HopScope:
    handling = pii_handling(config.routing.pii_action)
    pii = bool(doc.complexity and doc.complexity.pii)
    tokens = doc.routing.estimated_input_tokens if doc.routing else 0
    messages, restore = handling.outbound(request.chat_messages())
    return HopScope(
        needs=needs_for(request, tokens, private_only=pii and handling.private_only),
        purse=Purse(
            tenant=tenant_name(request.tenant or doc.tenant),
            budget_usd=request.budget_usd,
            spent=round(sum(a.cost_usd for a in doc.attempts), 10),
            shadow=doc.shadow_of is not None,
        ),
        messages=messages,
        restore=restore,
    )

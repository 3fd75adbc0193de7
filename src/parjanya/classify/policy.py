"""Turn a complexity score and a request's constraints into a tier, and say why at every step.

The score picks a starting tier; then each rule in `RULES`, in order, may move the tier, narrow
the range escalation may use later, or refuse the task. A rule is a small function that reads the
draft and appends a sentence to `reasons` whenever it changes something, so a stored decision
explains itself. A new policy is one more function and one more entry in `RULES`.

Ranks (0 = low ... 2 = high) are used internally so "at least" and "at most" are plain `max`/`min`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from parjanya.config import ParjanyaConfig, Thresholds, Weights
from parjanya.governance.capabilities import explain, needs_for, tiers_serving
from parjanya.governance.privacy import pii_handling
from parjanya.queues import TIERS, Tier, tier_rank
from parjanya.schema import Complexity, DimensionScores, RoutingDecision, TaskRequest

DIMENSIONS: tuple[str, ...] = ("structural", "cognitive", "context", "ambiguity", "risk")

#: The weighted sum of dimensions (0..10) maps affinely onto the 1..10 score the thresholds use:
#: score = 1 + 0.9 * sum. Affine rather than clamped so every dimension point moves the score and
#: a 0 request lands on 1, the bottom of the scale, instead of a dead zone below it.
SCORE_FLOOR = 1.0
SCORE_SLOPE = 0.9


class PolicyRejection(Exception):
    """No tier satisfies the request's policy (budget, context size, tier bounds); says which."""


def complexity_score(dimensions: DimensionScores, weights: Weights) -> float:
    weighted: float = sum(getattr(dimensions, name) * getattr(weights, name) for name in DIMENSIONS)
    return round(min(10.0, max(SCORE_FLOOR, SCORE_FLOOR + SCORE_SLOPE * weighted)), 2)


def tier_for_score(score: float, thresholds: Thresholds) -> Tier:
    """The lowest tier whose threshold covers the score."""
    if score <= thresholds.low:
        return "low"
    if score <= thresholds.mid:
        return "mid"
    return "high"


@dataclass(slots=True)
class Draft:
    """A decision in progress: the tier so far, and the range it and later escalation must keep."""

    request: TaskRequest
    config: ParjanyaConfig
    input_tokens: int
    tier: int
    floor: int = 0
    ceiling: int = len(TIERS) - 1
    reasons: list[str] = field(default_factory=list)
    pii: list[str] = field(default_factory=list)

    def move_to(self, rank: int, why: str) -> None:
        if rank != self.tier:
            self.reasons.append(f"{why}: {TIERS[self.tier]} -> {TIERS[rank]}")
            self.tier = rank


Rule = Callable[[Draft], None]


def request_bounds(draft: Draft) -> None:
    """The caller's explicit min_tier / max_tier."""
    request = draft.request
    if request.min_tier is not None:
        draft.floor = tier_rank(request.min_tier)
        if draft.tier < draft.floor:
            draft.move_to(draft.floor, f"request min_tier={request.min_tier}")
    if request.max_tier is not None:
        draft.ceiling = tier_rank(request.max_tier)
        if draft.tier > draft.ceiling:
            draft.move_to(draft.ceiling, f"request max_tier={request.max_tier}")


def sla_policy(draft: Draft) -> None:
    """The configured bounds of the request's SLA class; an explicit request bound wins."""
    sla = draft.request.sla
    policy = draft.config.routing.sla.get(sla.value)
    if policy is None:
        return
    if policy.min_tier is not None:
        wanted = tier_rank(policy.min_tier)
        if wanted > draft.ceiling:
            draft.reasons.append(
                f"SLA {sla} asks for at least {policy.min_tier}, but the request's "
                f"max_tier={TIERS[draft.ceiling]} wins"
            )
        draft.floor = max(draft.floor, min(wanted, draft.ceiling))
        if draft.tier < draft.floor:
            draft.move_to(draft.floor, f"SLA {sla} requires at least {TIERS[draft.floor]}")
    if policy.max_tier is not None:
        wanted = tier_rank(policy.max_tier)
        if wanted < draft.floor:
            draft.reasons.append(
                f"SLA {sla} caps at {policy.max_tier}, but min_tier={TIERS[draft.floor]} wins"
            )
        draft.ceiling = min(draft.ceiling, max(wanted, draft.floor))
        if draft.tier > draft.ceiling:
            draft.move_to(draft.ceiling, f"SLA {sla} allows at most {TIERS[draft.ceiling]}")


def context_window(draft: Draft) -> None:
    """Input plus the requested output must fit some deployment's window in the tier."""
    needed = draft.input_tokens + draft.request.max_output_tokens
    windows = [_largest_window(draft.config, tier) for tier in TIERS]
    fitting = [rank for rank, window in enumerate(windows) if window >= needed]
    if not fitting:
        raise PolicyRejection(
            f"about {needed} tokens (input {draft.input_tokens} + output "
            f"{draft.request.max_output_tokens}) exceed every deployment's context window "
            f"(largest {max(windows)}); split the task or send less context"
        )
    lowest = fitting[0]
    if lowest > draft.ceiling:
        raise PolicyRejection(
            f"about {needed} tokens need a {TIERS[lowest]} deployment (window "
            f"{windows[lowest]}), but this request may use at most {TIERS[draft.ceiling]} "
            f"(window {windows[draft.ceiling]})"
        )
    draft.floor = max(draft.floor, lowest)
    if draft.tier < draft.floor:
        draft.move_to(
            draft.floor,
            f"about {needed} tokens exceed the {TIERS[draft.tier]} context window "
            f"({windows[draft.tier]})",
        )


def budget(draft: Draft) -> None:
    """With budget_usd set, stay on tiers whose cheapest deployment the budget covers."""
    limit = draft.request.budget_usd
    if limit is None:
        return
    output_tokens = min(
        draft.request.max_output_tokens, draft.config.routing.expected_output_tokens
    )
    costs = [
        _cheapest_call(draft.config, tier, draft.input_tokens, output_tokens) for tier in TIERS
    ]
    allowed = range(draft.floor, draft.ceiling + 1)
    affordable = [rank for rank in allowed if costs[rank] <= limit]
    if not affordable:
        raise PolicyRejection(
            f"budget ${limit:.6g} is below the estimated cost of every allowed tier "
            f"(cheapest: {TIERS[draft.floor]} at ${costs[draft.floor]:.6g} for about "
            f"{draft.input_tokens} input + {output_tokens} output tokens)"
        )
    if max(affordable) < draft.ceiling:
        draft.ceiling = max(affordable)
        draft.reasons.append(
            f"budget ${limit:.6g} caps escalation at {TIERS[draft.ceiling]} "
            f"(${costs[draft.ceiling]:.6g} per call)"
        )
    if draft.tier not in affordable:
        cheaper = [rank for rank in affordable if rank < draft.tier]
        target = max(cheaper) if cheaper else min(affordable)
        draft.move_to(
            target,
            f"budget ${limit:.6g} does not cover {TIERS[draft.tier]} (${costs[draft.tier]:.6g})",
        )


def matching(draft: Draft) -> None:
    """The tier must have a deployment that meets the task's hard constraints (and, for PII under
    `pii_action: private`, is private): the next tier up that has one, else a refusal."""
    private = bool(draft.pii) and pii_handling(draft.config.routing.pii_action).private_only
    needs = needs_for(draft.request, draft.input_tokens, private_only=private)
    if needs.window_only:  # windows are the `context_window` rule's, already applied
        return
    serving = [r for r in tiers_serving(draft.config, needs) if draft.tier <= r <= draft.ceiling]
    if not serving:
        tiers = TIERS[draft.tier : draft.ceiling + 1]
        deployments = [d for t in tiers for d in draft.config.tiers[t].deployments]
        raise PolicyRejection(
            f"no deployment of tiers {'/'.join(tiers)} may serve this task "
            f"({explain(deployments, needs)})"
        )
    why = "the hard constraints" + (" (private: PII)" if private else "")
    draft.move_to(serving[0], why)
    if serving[-1] < draft.ceiling:
        draft.ceiling = serving[-1]
        draft.reasons.append(f"{why} allow escalation up to {TIERS[draft.ceiling]}")


#: Applied in order; each may move the tier, narrow [floor, ceiling], or raise PolicyRejection.
RULES: tuple[Rule, ...] = (request_bounds, sla_policy, context_window, budget, matching)


def decide(
    complexity: Complexity,
    request: TaskRequest,
    config: ParjanyaConfig,
    input_tokens: int,
    rules: tuple[Rule, ...] = RULES,
) -> RoutingDecision:
    """The routed tier, the highest tier escalation may use, and the reasons for both."""
    thresholds = config.routing.thresholds
    start = tier_for_score(complexity.score, thresholds)
    draft = Draft(
        request=request,
        config=config,
        input_tokens=input_tokens,
        tier=tier_rank(start),
        pii=list(complexity.pii),
    )
    draft.reasons.append(
        f"complexity {complexity.score:.2f} -> {start} "
        f"(low <= {thresholds.low:g} < mid <= {thresholds.mid:g} < high)"
    )
    for rule in rules:
        rule(draft)
    if complexity.pii:
        draft.reasons.append(
            f"contains {', '.join(complexity.pii)} (pii_action={config.routing.pii_action})"
        )
    return RoutingDecision(
        tier=TIERS[draft.tier],
        complexity=complexity,
        reasons=draft.reasons,
        max_tier=TIERS[draft.ceiling],
        estimated_input_tokens=input_tokens,
    )


def _largest_window(config: ParjanyaConfig, tier: Tier) -> int:
    return max(deployment.context_window for deployment in config.tiers[tier].deployments)


def _cheapest_call(config: ParjanyaConfig, tier: Tier, tokens_in: int, tokens_out: int) -> float:
    return min(d.cost_usd(tokens_in, tokens_out) for d in config.tiers[tier].deployments)

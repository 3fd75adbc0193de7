"""Governance: which work runs, when, where and at what cost (SLA admission, deadlines,
shedding, tenant budgets, privacy, capability matching, consensus)."""

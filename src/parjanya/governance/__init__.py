"""Governance: tenant budgets, privacy, capability matching, consensus (and SLA admission)."""

"""Governance policies: which work runs, when, where and at what cost."""

"""The Celery tasks. Each is a thin adapter: decode, claim, call plain functions, commit, publish."""

"""The HTTP API: task routes, OpenAI-compatible chat completions, health. See `create_app`."""

from parjanya.api.app import create_app

__all__ = ["create_app"]

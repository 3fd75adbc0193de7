"""Process-wide logging: structured events, JSON for machines, readable columns in a terminal.

structlog renders every line of a process in one format: Parjanya's own events (structlog's
fast path, see `configure_logging`) and the stdlib records of Celery, kombu and Parjanya's
`logging` calls (`ProcessorFormatter` on the root handler). The format is decided once at start
(`LogFormat`): `console` in a terminal, `json` otherwise, or forced by `PARJANYA_LOG_FORMAT`.
JSON lines carry `timestamp` (UTC, ISO 8601), `level`, `logger` and `event`, then the event's
own fields.

Prompt text never reaches a log by default: the hop events carry no text fields at all
(`observe/hops.py`), and `drop_text_fields` replaces any field named like request or answer text
(`prompt`, `messages`, `content`, `output`, ...) with `[hidden]` in every event, unless
`show_text=True` (`PARJANYA_LOG_TEXT=1`, for debugging on a machine that may hold such text).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "json", "console"]

#: Event fields that could hold request or answer text; dropped unless text is shown on purpose.
TEXT_FIELDS = frozenset(
    {"prompt", "messages", "content", "output", "answer", "text", "completion", "system"}
)


def drop_text_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Hide fields that may carry prompt or answer text (a structlog processor)."""
    for name in TEXT_FIELDS.intersection(event):
        event[name] = "[hidden]"
    return event


def resolve_format(fmt: LogFormat, stream: TextIO) -> Literal["json", "console"]:
    """`auto`: readable columns on a terminal, JSON lines anywhere else (files, pipes, Docker)."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


def _pre_chain(show_text: bool) -> list[Processor]:
    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not show_text:
        chain.append(drop_text_fields)
    return chain


def renderer(fmt: Literal["json", "console"]) -> list[Processor]:
    if fmt == "json":
        return [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    return [structlog.dev.ConsoleRenderer(colors=False, sort_keys=False)]


def configure_logging(
    fmt: LogFormat = "auto",
    *,
    level: str | int = "INFO",
    show_text: bool = False,
    stream: TextIO | None = None,
) -> Literal["json", "console"]:
    """Route every logger of this process to `stream` in one format; returns the format.

    Parjanya's own events (`structlog.get_logger`) take structlog's fast path: a filtering bound
    logger (an event below `level` costs one no-op call) that renders and writes the line itself,
    with no stdlib record in between; the hop log writes one per hop, on the event loop. Stdlib
    records (Celery, kombu, Parjanya's `logging` calls) go through the root handler and the same
    processors (`ProcessorFormatter`). Idempotent: the root logger's handlers are replaced, not
    added to, so calling it again (a test, a re-exec) does not double every line.
    """
    out = stream or sys.stderr
    chosen = resolve_format(fmt, out)
    pre_chain = _pre_chain(show_text)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *pre_chain],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *renderer(chosen),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    structlog.configure(
        processors=[*pre_chain, *renderer(chosen)],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
    return chosen


def get_logger(name: str) -> Any:
    """A structlog logger whose events carry `logger=<name>`, like the stdlib records beside them."""
    return structlog.get_logger().bind(logger=name)


def _logging_is_configured(**_: object) -> None:
    return None


def keep_logging() -> None:
    """Tell Celery that logging is configured: with a `setup_logging` receiver connected, a
    worker (and each prefork child) keeps the handlers of `configure_logging` instead of its own."""
    from celery import signals

    signals.setup_logging.connect(_logging_is_configured, weak=False, dispatch_uid="parjanya-logs")

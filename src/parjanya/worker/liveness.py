"""Is this worker alive and serving? A heartbeat file a probe can read, and an exit when it is not.

A process can be up, answer pings and take no work: a feeder thread that died left its tier queue
with no consumer at all (Celery's had been cancelled). The PID says nothing about that. So every
thread a worker cannot serve without (feeders, the lease renewer) is watched here:

- a watched thread that has died ends the process with `EXIT_DEAF`, through Celery's own warm
  shutdown (hops not started are handed back) and, should that hang, `os._exit` after a grace
  period: a supervisor (Kubernetes, compose, systemd) then starts a fresh one;
- while every feeder has polled its queue within `reliability.liveness_stale_s`, the monitor
  rewrites the heartbeat file every third of that. `parjanya alive FILE` (an exec probe) exits 0
  when the file is fresh and says ok, 1 otherwise; a pool stuck in a poll stops refreshing it.

The file is JSON: `{"ok": true, "pid": ..., "at": <unix time>, "stale": [...], "polled": {...}}`.

A worker removes its file when it stops, but a `kill -9` (an OOM kill) leaves it behind, and the
default directory (`<data dir>/alive/`) would fill with the heartbeats of dead workers. `prune`
removes the ones no worker will refresh again: on this host, those whose pid is gone; on any
host, those older than `PRUNE_AFTER` liveness periods. Every worker prunes at start, and so does
`parjanya alive`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("parjanya.liveness")

#: Exit status of a worker that found itself deaf (EX_SOFTWARE).
EXIT_DEAF = 70

#: A heartbeat older than this many `liveness_stale_s` is abandoned, whatever its host: a live
#: worker rewrites its file every third of one, and one that stopped rewriting it fails its probe
#: from the first on, so ten leave the probe's answer of a merely stuck worker alone for a while.
PRUNE_AFTER = 10


def default_dir(data_dir: Path) -> Path:
    return data_dir / "alive"


def default_path(data_dir: Path) -> Path:
    return default_dir(data_dir) / f"{socket.gethostname()}-{os.getpid()}.json"


def pid_running(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def prune(
    directory: Path,
    max_age_s: float,
    *,
    now: Callable[[], float] = time.time,
    running: Callable[[int], bool] = pid_running,
) -> list[Path]:
    """Remove the heartbeats (and half-written `.tmp` files) in `directory` that no worker will
    refresh again: named for this host and a pid that is gone, or older than `max_age_s`."""
    if not directory.is_dir():
        return []
    host = socket.gethostname()
    removed = []
    for path in directory.iterdir():
        if path.suffix not in (".json", ".tmp"):
            continue
        name_host, _, pid = path.stem.rpartition("-")
        try:
            gone = name_host == host and pid.isdigit() and not running(int(pid))
            if gone or now() - path.stat().st_mtime > max_age_s:
                path.unlink()
                removed.append(path)
        except OSError:  # removed meanwhile by another pruner, or not ours to remove
            continue
    if removed:
        log.info("removed %d abandoned heartbeats from %s", len(removed), directory)
    return removed


@dataclass
class Watched:
    name: str
    thread: threading.Thread
    #: When the thread last polled its queue (monotonic), or None if it does not poll.
    polled: Callable[[], float] | None = None
    #: True once the thread is being stopped on purpose (its end is then no death).
    stopping: Callable[[], bool] = lambda: False


class Liveness:
    def __init__(
        self,
        path: Path,
        stale_s: float,
        *,
        on_dead: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.stale_s, self.on_dead, self.clock = path, stale_s, on_dead, clock
        self.watched: list[Watched] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="parjanya-liveness", daemon=True)

    def watch(self, watched: Watched) -> None:
        self.watched.append(watched)

    def check(self) -> dict[str, Any]:
        """One look at every watched thread; a dead one is reported to `on_dead` (once)."""
        now = self.clock()
        dead = [w.name for w in self.watched if not w.thread.is_alive() and not w.stopping()]
        polled = {w.name: round(now - w.polled(), 3) for w in self.watched if w.polled is not None}
        stale = [name for name, age in polled.items() if age > self.stale_s]
        report = {
            "ok": not dead and not stale,
            "pid": os.getpid(),
            "at": time.time(),
            "dead": dead,
            "stale": stale,
            "polled": polled,
        }
        if dead:
            self.on_dead(", ".join(dead))
        return report

    def beat(self) -> dict[str, Any]:
        """Check, and refresh the heartbeat file only while everything is well."""
        report = self.check()
        if report["ok"]:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".tmp")
            partial.write_text(json.dumps(report))
            partial.replace(self.path)
        else:
            log.error("worker not serving: dead %s, stale %s", report["dead"], report["stale"])
        return report

    def _loop(self) -> None:
        while not self._stop.wait(self.stale_s / 3):
            try:
                self.beat()
            except Exception:
                log.exception("liveness check failed")

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.path.unlink(missing_ok=True)


def read(path: Path, max_age_s: float) -> tuple[bool, str]:
    """For `parjanya alive`: is the heartbeat at `path` fresh and ok? And why not."""
    try:
        report = json.loads(path.read_text())
        age = time.time() - float(report["at"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"no readable heartbeat at {path}: {exc}"
    if age > max_age_s:
        return False, f"heartbeat is {age:.1f}s old (limit {max_age_s:.1f}s)"
    if not report.get("ok"):
        return False, f"worker reports dead {report.get('dead')} stale {report.get('stale')}"
    return True, f"alive: pid {report.get('pid')}, heartbeat {age:.1f}s old"


def exit_deaf(reason: str, deaf: threading.Event, *, grace_s: float = 45.0) -> threading.Timer:
    """End a worker that cannot serve: Celery's warm shutdown with `EXIT_DEAF`, then a hard exit.

    `deaf` is set first (the worker process's, `worker/process.py`): Celery's `worker_main`
    returns instead of exiting with its status, and `parjanya worker` then exits `EXIT_DEAF`."""
    from celery.worker import state

    deaf.set()
    log.critical("a thread this worker needs has died (%s); exiting for a restart", reason)
    setattr(state, "should_stop", EXIT_DEAF)  # noqa: B010 (the stubs type it None)
    timer = threading.Timer(grace_s, os._exit, args=(EXIT_DEAF,))
    timer.daemon = True
    timer.start()
    return timer

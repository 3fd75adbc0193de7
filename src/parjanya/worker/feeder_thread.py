"""What every batch feeder shares: one daemon thread that comes round until it is stopped.

The Redis feeder (`worker/feeder.py`) pops lists and the RabbitMQ one (`worker/amqp_feeder.py`)
consumes a channel, but both run the same loop: note when it last came round (`last_poll`, which
the liveness check reads: a busy pool is not a deaf one, `worker/liveness.py`), do one round, and
never let an exception end the thread (log it, wait a second, go on).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager, nullcontext

from parjanya.worker.admission import Admission

log = logging.getLogger("parjanya.feeder")


def no_wait() -> AbstractContextManager[None]:
    """The default `admitting()` of a feeder: nothing to wait for before a pop and its claims."""
    return nullcontext()


class FeederThread:
    """A feeder's thread, its stop flag and its last poll; subclasses say what one round is."""

    def __init__(self, admission: Admission, name: str) -> None:
        self.admission = admission
        self.queue = admission.queue
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"{name}-{self.queue}", daemon=True)
        self.last_poll = time.monotonic()

    @property
    def admitted(self) -> int:
        return self.admission.admitted

    def stopping(self) -> bool:
        return self._stop.is_set()

    def polled_at(self) -> float:
        return self.last_poll

    def start(self) -> None:
        self.thread.start()

    def stop(self, *, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            self.thread.join(timeout=5)

    def round(self) -> None:
        """One round of the loop: read the queue, admit what there is room for."""
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.last_poll = time.monotonic()
            try:
                self.round()
            except Exception:
                log.exception("feeder could not read %s; retrying", self.queue)
                self._stop.wait(1.0)

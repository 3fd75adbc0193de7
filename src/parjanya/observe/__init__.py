"""What ops see of a hop: one record per hop, told to observers (logs, Flower's task events,
optional tracing); and the process-wide log setup. Nothing here reads a prompt."""

from parjanya.observe.hops import HopEnd, HopObserver, HopObservers, HopStart, outcome_of

__all__ = ["HopEnd", "HopObserver", "HopObservers", "HopStart", "outcome_of"]

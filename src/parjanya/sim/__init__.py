"""A simulated model provider speaking OpenAI chat completions and Anthropic messages: a test double.

It stands in for real model APIs in tests, benchmarks and the demo. Three models of rising
capability and latency (`sim-small`, `sim-medium`, `sim-large`) answer a prompt well exactly when
their capability reaches the prompt's hidden difficulty, which is computed here independently of
Parjanya's classifier. Faults (429, 500, timeouts, malformed bodies, outages) are injected by
seeded random draws or by `[[sim:...]]` markers in the prompt, which also force a context-too-long
error, a content-filter stop, or a tool call. Every call lands in a ledger that tests can query.
Both APIs (`/v1/chat/completions`, `/v1/messages`) share models, markers, faults and ledger.

Use `SimProvider(config).mock_transport()` for socket-free tests, `SimServer` for a loopback
server in a thread, and `serve()` / `run_cli()` for a foreground process.
"""

from parjanya.sim.config import ENV_VAR, SimConfig
from parjanya.sim.difficulty import difficulty
from parjanya.sim.exchange import SimResponse
from parjanya.sim.faults import Fault, FaultKnobs, FaultPatch, FaultsConfig, FaultsUpdate
from parjanya.sim.handler import SimProvider
from parjanya.sim.ledger import Ledger, prompt_key
from parjanya.sim.markers import (
    MarkerError,
    Markers,
    difficulty_marker,
    error_marker,
    latency_marker,
    parse_markers,
    tool_marker,
)
from parjanya.sim.models import FixedLatency, LognormalLatency, SimModel, UniformLatency
from parjanya.sim.server import SimApp, SimServer, run_cli, serve

__all__ = [
    "ENV_VAR",
    "Fault",
    "FaultKnobs",
    "FaultPatch",
    "FaultsConfig",
    "FaultsUpdate",
    "FixedLatency",
    "Ledger",
    "LognormalLatency",
    "MarkerError",
    "Markers",
    "SimApp",
    "SimConfig",
    "SimModel",
    "SimProvider",
    "SimResponse",
    "SimServer",
    "UniformLatency",
    "difficulty",
    "difficulty_marker",
    "error_marker",
    "latency_marker",
    "parse_markers",
    "prompt_key",
    "run_cli",
    "serve",
    "tool_marker",
]

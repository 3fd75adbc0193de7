"""One clock for the Lua scripts of the shared breaker and rate-limit stores.

Limits and breaker timers are compared across every worker host, so by default a script reads the
Redis server's `TIME`: one clock for the cluster, and host clock skew cannot let one host spend
another's budget. Tests (and anyone who wants it) pass their own clock instead; the script then
uses the microseconds it is given. Times cross the Lua boundary as integer microseconds in strings:
Lua numbers are doubles, exact for integers up to 2**53 (about 285 years in µs), and Redis would
truncate a number reply to an integer anyway.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CLOCK", "Clock", "clock_arg", "seconds"]

Clock = Callable[[], float]

#: Lua prelude: `clock(ARGV[n])` is the given µs, or the server's time when given ''.
CLOCK = """
if redis.replicate_commands then redis.replicate_commands() end
local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function us(x) return string.format('%.0f', x) end
"""


def clock_arg(clock: Clock | None) -> str:
    """The script argument for `clock`: its reading in µs, or '' for the server's clock."""
    return "" if clock is None else str(round(clock() * 1e6))


def seconds(us: bytes | str | int) -> float:
    """A µs value that came back from a script, in seconds."""
    text = us.decode() if isinstance(us, bytes) else str(us)
    return int(text) / 1e6

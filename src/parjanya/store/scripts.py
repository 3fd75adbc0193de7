"""The store's state machine, as Lua scripts: each transition is one atomic compare-and-set.

A task hash holds: state, hop, stage, token (fencing), lease_until, deliveries and republishes of the
current hop, the request JSON, and `doc` (the TaskResult JSON). The broker only hints that a hop
should run; these scripts decide whether it may. See docs/RELIABILITY.md § Idempotency:

- CLAIM refuses terminal tasks (a redelivered message after commit does no work), stale hops (a copy
  of a message the task has moved past) and hops held under a live lease (a parallel copy); it counts
  deliveries so a hop that keeps killing its worker is dead-lettered instead of looping (RELEASE
  takes back the count of a hop handed back before it started).
- TRANSITION commits only while the caller's fencing token is current, so a worker presumed dead that
  wakes up late cannot overwrite the work of the one that replaced it. Terminal states absorb.
- CREATE and TRANSITION may push the next hop's queue message in the same step when the store and
  the broker share a Redis database (`broker.envelope`): the outbox and the enqueue are one write.
  (Never on a Redis Cluster: a queue is not in the task's hash slot, and a broker is not a cluster.)
- CANCEL ends a queued task at once (fenced on its hop and token, so a hop that moved on in the
  meantime is read again) and marks a held one `cancel_requested` (its result TTL): CLAIM and
  TRANSITION turn such a task `cancelled` at its next hop boundary instead of running or queueing
  another hop, and say so (CLAIM's `terminal` reply carries the doc, TRANSITION returns 2), so the
  worker that ended it counts it once (`worker/observe.py`).
- CLAIM and REAP end a task whose `deadline_at` has passed `expired` (counted) instead of running
  or republishing its hop: a task past its deadline is never executed late.
- Every terminal write (TRANSITION, the cancels of CLAIM and CANCEL, the expiries of CLAIM and
  REAP) of a task created with a `callback_url` adds it to the webhook outbox in the same step, so
  a result callback is owed exactly when the task ends, whatever ends it, and survives any
  process dying after that.
- REAP returns hops whose holder stopped renewing its lease, or that sat queued too long, to be
  republished (the outbox: the store, not the broker, remembers that a hop is owed).

Every script touches one task's keys and its shard's (`keys.py`), all in one Redis Cluster hash
slot. An optional key a call does not use is `keys.unused` (in the same slot), and whether it is
used is read from an argument, never from the key. The one exception is the copy of a dead letter
on its stage's dead-letter list (`parjanya.dlq.<stage>`, for queue-length tools): it is made only
on a plain Redis (the last argument of TRANSITION and DEAD_LETTER_RAW says so).
"""

from __future__ import annotations

_TERMINAL = """
local function is_terminal(s)
  return s == 'succeeded' or s == 'dead_lettered' or s == 'failed' or s == 'cancelled'
    or s == 'expired'
end
local function is_held(s)
  return s == 'classifying' or s == 'running'
end
"""

# Make a task terminal `cancelled` (its doc is left as the last hop wrote it; `state` is the truth)
# and wake its waiters, as TRANSITION does for every terminal state.
# A task created with a callback owes one now (score: when it is due; the sender's retries move it).
_OWE_CALLBACK = """
local function owe_callback(task, outbox, id, due)
  if redis.call('HEXISTS', task, 'callback') == 1 then redis.call('ZADD', outbox, due, id) end
end
"""

# Make a task terminal `cancelled` (its doc is left as the last hop wrote it; `state` is the truth)
# and wake its waiters, as TRANSITION does for every terminal state.
_END_CANCELLED = (
    _OWE_CALLBACK
    + """
local function end_cancelled(task, inflight, done, id, ttl, outbox)
  redis.call('HSET', task, 'state', 'cancelled', 'lease_until', 0)
  owe_callback(task, outbox, id, 0)
  redis.call('ZREM', inflight, id)
  redis.call('DEL', done)
  redis.call('RPUSH', done, 'cancelled')
  if ttl and ttl > 0 then
    redis.call('EXPIRE', task, ttl)
    redis.call('EXPIRE', done, ttl)
  end
end
"""
)

# Make a task terminal `expired`: its deadline_s passed before it was answered (the doc is left as
# the last hop wrote it, as for `cancelled`; the store's reader names the error). Counted.
_END_EXPIRED = (
    _OWE_CALLBACK
    + """
local function end_expired(task, inflight, done, counters, id, ttl, where, outbox)
  redis.call('HSET', task, 'state', 'expired', 'lease_until', 0)
  owe_callback(task, outbox, id, 0)
  redis.call('ZREM', inflight, id)
  redis.call('DEL', done)
  redis.call('RPUSH', done, 'expired')
  redis.call('HINCRBY', counters, 'expired', 1)
  redis.call('HINCRBY', counters, 'expired_' .. where, 1)
  if ttl and ttl > 0 then
    redis.call('EXPIRE', task, ttl)
    redis.call('EXPIRE', done, ttl)
  end
end
local function past_deadline(deadline_at, now)
  local at = tonumber(deadline_at or '0') or 0
  return at > 0 and now > at
end
"""
)

# KEYS: task, inflight, idempotency key (unused when none), queue list (unused when publishing after)
# ARGV: id, request, doc, deadline, idempotency ttl, request fingerprint ('' when no idempotency
#       key), queue message ('' when publishing after), SLA class, deadline_at (unix seconds the
#       task must be answered by; 0: none), callback url ('' when none)
CREATE = """
if ARGV[6] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then
    local sep = string.find(existing, '|', 1, true)
    local id = string.sub(existing, 1, sep - 1)
    local same = (string.sub(existing, sep + 1) == ARGV[6]) and 1 or 0
    return {'duplicate', id, same}
  end
  redis.call('SET', KEYS[3], ARGV[1] .. '|' .. ARGV[6], 'EX', ARGV[5])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'duplicate', ARGV[1], 1}
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'hop', 0, 'stage', 'intake', 'token', 0,
  'deliveries', 0, 'republishes', 0, 'lease_until', 0, 'request', ARGV[2], 'doc', ARGV[3],
  'sla', ARGV[8], 'deadline_at', ARGV[9])
if ARGV[10] and ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'callback', ARGV[10]) end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
if ARGV[7] ~= '' then redis.call('LPUSH', KEYS[4], ARGV[7]) end
return {'created', ARGV[1], 1}
"""

# KEYS: task, inflight, idempotency key (unused when none)
# ARGV: id, '1' when there is an idempotency key
# Undo a create whose publish failed, only if nobody has touched it since.
UNCREATE = """
local h = redis.call('HMGET', KEYS[1], 'state', 'hop', 'deliveries')
if h[1] == 'queued' and tonumber(h[2]) == 0 and tonumber(h[3]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  if ARGV[2] == '1' then redis.call('DEL', KEYS[3]) end
  return 1
end
return 0
"""

# KEYS: task, inflight, done, counters (the shard's), webhook outbox
# ARGV: id, hop, stage, now, lease ttl, max deliveries, holding state, ttl of an expired task
# A task this claim ends (cancel requested, deadline passed) is {'terminal', state, doc}; one that
# was terminal already is {'terminal', state}.
CLAIM = (
    _TERMINAL
    + _END_CANCELLED
    + _END_EXPIRED
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'hop', 'stage', 'lease_until', 'cancel_requested',
  'deadline_at')
local state = h[1]
if not state then return {'missing'} end
if is_terminal(state) then return {'terminal', state} end
if tonumber(h[2]) ~= tonumber(ARGV[2]) or h[3] ~= ARGV[3] then return {'stale', h[2]} end
local now = tonumber(ARGV[4])
if is_held(state) and tonumber(h[4]) > now then return {'busy', h[4]} end
if h[5] then
  end_cancelled(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(h[5]), KEYS[5])
  return {'terminal', 'cancelled', redis.call('HGET', KEYS[1], 'doc')}
end
if past_deadline(h[6], now) then
  end_expired(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(ARGV[8]), 'claim', KEYS[5])
  return {'terminal', 'expired', redis.call('HGET', KEYS[1], 'doc')}
end
local deliveries = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
local token = redis.call('HINCRBY', KEYS[1], 'token', 1)
local lease = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'state', ARGV[7], 'lease_until', tostring(lease))
redis.call('ZADD', KEYS[2], lease, ARGV[1])
local verdict = 'claimed'
if deliveries > tonumber(ARGV[6]) then verdict = 'poison' end
local body = redis.call('HMGET', KEYS[1], 'request', 'doc')
return {verdict, tostring(token), body[1], body[2], tostring(deliveries)}
"""
)

# KEYS: task, inflight
# ARGV: id, token, lease_until
# Returns 0 (superseded: another claim holds the hop), 1 (renewed) or 2 (not renewed: the task is
# no longer held, because this holder committed or gave it back, or the reaper took back a lapsed
# lease and nobody has claimed it since; this holder's commit still lands until somebody does).
HEARTBEAT = (
    _TERMINAL
    + """
local h = redis.call('HMGET', KEYS[1], 'token', 'state')
if h[1] ~= ARGV[2] then return 0 end
if not is_held(h[2]) then return 2 end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""
)

# KEYS: task, inflight
# ARGV: id, token
# Hand back a hop claimed but never started: the lease ends now, and the claim is not counted as a
# delivery (the count is evidence against the hop only when it ran in a worker that died).
RELEASE = (
    _TERMINAL
    + """
local h = redis.call('HMGET', KEYS[1], 'token', 'state')
if h[1] ~= ARGV[2] or not is_held(h[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'lease_until', 0)
redis.call('HINCRBY', KEYS[1], 'deliveries', -1)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
"""
)

# KEYS: task, inflight, done, dead-letter list (unused on a cluster), dead-letter index,
#       dead-letter entry, queue list of the next hop (unused when publishing after, or none),
#       webhook outbox
# ARGV: id, token, new state, new hop, new stage, doc, deadline, ttl (0: keep forever),
#       dead-letter entry JSON ('' when not dead-lettering), now, queue message ('' when none),
#       '1' to copy a dead letter onto the dead-letter list
# Returns 0 (fenced off, or terminal already), 1 (written as asked) or 2 (ended `cancelled`
# instead: the caller cancelled the task while this hop ran).
TRANSITION = (
    _TERMINAL
    + _OWE_CALLBACK
    + """
local h = redis.call('HMGET', KEYS[1], 'token', 'state', 'hop', 'cancel_requested')
if h[1] ~= ARGV[2] or is_terminal(h[2]) then return 0 end
local state = ARGV[3]
local ttl = tonumber(ARGV[8])
local written = 1
if h[4] and not is_terminal(state) then
  state = 'cancelled'  -- a hop boundary of a task the caller cancelled: queue nothing more
  ttl = tonumber(h[4])
  written = 2
end
redis.call('HSET', KEYS[1], 'state', state, 'doc', ARGV[6], 'lease_until', 0)
if tonumber(h[3]) ~= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'hop', ARGV[4], 'stage', ARGV[5], 'deliveries', 0, 'republishes', 0)
end
if is_terminal(state) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[3])
  redis.call('RPUSH', KEYS[3], state)
  owe_callback(KEYS[1], KEYS[8], ARGV[1], ARGV[10])
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', KEYS[3], ttl)
  else
    redis.call('PERSIST', KEYS[1])
  end
  if ARGV[9] ~= '' and state == ARGV[3] then
    redis.call('SET', KEYS[6], ARGV[9])
    redis.call('ZADD', KEYS[5], ARGV[10], ARGV[1])
    redis.call('HSET', KEYS[1], 'dlq_entry', ARGV[9])
    if ARGV[12] == '1' then
      redis.call('LPUSH', KEYS[4], ARGV[9])
      redis.call('HSET', KEYS[1], 'dlq_list', KEYS[4])
    end
  end
else
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
  if ARGV[11] ~= '' then redis.call('LPUSH', KEYS[7], ARGV[11]) end
end
return written
"""
)

# KEYS: dead-letter list (unused on a cluster), dead-letter index, dead-letter entry
# ARGV: entry JSON, now, id, '1' to copy it onto the dead-letter list
DEAD_LETTER_RAW = """
redis.call('SET', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] == '1' then redis.call('LPUSH', KEYS[1], ARGV[1]) end
return 1
"""

# KEYS: task, inflight, done, dead-letter index, dead-letter entry
# ARGV: id, expected hop, new doc, deadline, max replays
# Compare-and-set dead -> queued on a new hop: of two concurrent replays exactly one wins.
# The dead-letter list's copy (`dlq_list`, recorded only on a plain Redis) goes with it.
REPLAY = """
local h = redis.call('HMGET', KEYS[1], 'state', 'hop', 'dlq_entry', 'dlq_list', 'replays')
if h[1] ~= 'dead_lettered' or tonumber(h[2]) ~= tonumber(ARGV[2]) then return -1 end
local replays = tonumber(h[5] or '0')
if replays >= tonumber(ARGV[5]) then return -2 end
local hop = tonumber(h[2]) + 1
redis.call('HSET', KEYS[1], 'state', 'queued', 'hop', hop, 'stage', 'intake', 'deliveries', 0,
  'republishes', 0, 'lease_until', 0, 'doc', ARGV[3], 'replays', replays + 1)
redis.call('HDEL', KEYS[1], 'dlq_entry', 'dlq_list')
redis.call('PERSIST', KEYS[1])
redis.call('DEL', KEYS[3])
if h[3] and h[4] then redis.call('LREM', h[4], 0, h[3]) end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return hop
"""

# KEYS: task, inflight, done, counters (the shard's), webhook outbox
# ARGV: id, now, requeue after (s), ttl of an expired task
# A hop owed past its task's deadline is not republished: the task ends `expired` here.
REAP = (
    _TERMINAL
    + _END_EXPIRED
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'hop', 'stage', 'lease_until', 'sla',
  'deadline_at')
if not h[1] or is_terminal(h[1]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'gone'}
end
local now = tonumber(ARGV[2])
if past_deadline(h[6], now) and not (is_held(h[1]) and tonumber(h[4]) > now) then
  end_expired(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(ARGV[4]), 'reaper', KEYS[5])
  return {'expired', h[3], redis.call('HGET', KEYS[1], 'doc')}
end
if is_held(h[1]) then
  if tonumber(h[4]) > now then
    redis.call('ZADD', KEYS[2], h[4], ARGV[1])
    return {'alive'}
  end
  redis.call('HSET', KEYS[1], 'state', 'queued', 'lease_until', 0)
end
local n = redis.call('HINCRBY', KEYS[1], 'republishes', 1)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]) * math.pow(2, math.min(n - 1, 10)), ARGV[1])
return {'republish', h[2], h[3], tostring(n), h[5] or 'standard'}
"""
)

# KEYS: task, inflight, done, webhook outbox
# ARGV: id, expected hop, expected token, cancelled doc, ttl
# Queued: cancelled now, if the hop and token read with the doc are still current ('moved': read
# again). Held by a worker: marked, and ended at the hop boundary by CLAIM or TRANSITION.
CANCEL = (
    _TERMINAL
    + _END_CANCELLED
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'hop', 'token')
if not h[1] then return {'missing'} end
if is_terminal(h[1]) then return {'terminal', h[1]} end
if is_held(h[1]) then
  redis.call('HSET', KEYS[1], 'cancel_requested', ARGV[5])
  return {'requested', h[1]}
end
if h[2] ~= ARGV[2] or h[3] ~= ARGV[3] then return {'moved', h[1]} end
redis.call('HSET', KEYS[1], 'doc', ARGV[4])
end_cancelled(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[5]), KEYS[4])
return {'cancelled', 'cancelled'}
"""
)

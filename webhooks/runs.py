"""What keeps webhook runs from taking the slots billing and alerts need, and a run's heartbeat.

A worker consuming every queue (`make run`, compose's `worker`) shares its slots between webhook runs
and everything else. A run is short (services.DRAIN_BUDGET_SECONDS, then the endpoint is handed back
through the wake-up gate), but one POST to a receiver that hangs holds its slot for the whole timeout,
and two such receivers would hold two slots. So:

- **run slots, shared by every worker**: webhook runs may take at most the sum of the workers'
  allowances at once (`slots_allowed()` each: all but one of a worker's slots when it also consumes
  other queues, all of them on a webhooks-only pool; WEBHOOK_RUN_SLOTS overrides). The cap is a
  semaphore in Redis (`bb:…:webhooks:run-holders`, a sorted set of the runs holding a slot, each
  scored by its lease's end), taken and counted in one Lua script: lapsed holders (a killed worker's)
  are dropped, the worker that asks notes its own allowance (kept WORKER_SEEN_SECONDS, so a worker
  gone for good stops counting), and a run gets a slot while fewer runs hold one than the allowances
  add up to. A run takes its slot before it takes its endpoint.
- **a line for the slots**: a wake-up that finds none free puts its endpoint in line
  (`bb:…:webhooks:run-waiters`, a sorted set of endpoint ids scored by when each began to wait; one
  place each) in the same script, and frees the Celery slot without publishing anything: its place in
  line stands for its queued wake-up (Endpoint.wake_requested stays set). A run that ends hands its
  slot to the endpoint first in line (`slot_pass_on`: the task goes on with that endpoint under the
  same slot, no message, no queue) or, when its task has no time left for another run, reserves the
  slot for it and publishes its wake-up (`slot_give_back`). Polling every second instead cost 2,668
  empty runs of 2,771 in the soak, and the healthy endpoint's wait behind them. A killed worker's run
  never hands its slot on: the slot lapses with its lease, and the next wake-up that asks for a slot
  (typically the check on the killed run's endpoint, queued for just after its hold lapses) reserves
  it for the endpoint first in line and publishes that endpoint's wake-up before it may take a slot
  itself (the same script: slots free while endpoints wait go to them first, in line order); the
  sweeper does the same each tick (`waiters_hand_free_slots`) when no wake-up asks. The line is never
  the only record: a Redis restarted empty loses the line, and the wake-up gate lapsing
  (the next event) or the sweeper (rows overdue) wakes the endpoint, as for any lost message. So with two
  shared workers of two slots, two webhook runs may go at once wherever they land (a per-worker cap
  bounced a healthy endpoint's wake-up off the worker whose one webhook slot a hanging receiver held,
  while the other worker had its own free), and two slots always serve billing, alerts and the sweeps.
  On a cache that is not Redis (`make run`'s files: one worker) the slots are per-worker keys. Fail
  safe: without a cache that answers (a Redis restarting, a unit test calling a service directly)
  runs are not capped: the cap is an optimisation of latency, never a condition for delivery.
- **heartbeat**: a run holds its endpoint (Endpoint.run_lease_until) and its slot key under a short
  lease (WEBHOOK_RUN_LEASE_SECONDS) that a thread renews every third of it while the run lives, however
  long its POST waits; a killed worker stops renewing, and its endpoint is taken over within the lease.
  The run that takes it over also takes over at once the deliveries the killed run had claimed (their
  own claim's lease, WEBHOOK_LEASE_SECONDS, is a minute longer: services._claim says why that is safe).
  A renewal that fails is tried again at the next beat; one that finds the hold taken marks the run
  lost, and it stops before its next delivery.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import Endpoint

logger = logging.getLogger(__name__)

SLOT_KEY = "webhooks:run-slot:{worker}:{n}"  # a cache that is not Redis: one worker's own slots
HOLDERS_KEY = "webhooks:run-holders"  # sorted set: a run's token, scored by its lease's end (ms)
ALLOWANCE_KEY = "webhooks:run-allowance"  # hash: worker name → the slots its runs may take
SEEN_KEY = "webhooks:run-allowance-seen"  # sorted set: worker name, scored by when its allowance lapses
WAITERS_KEY = "webhooks:run-waiters"  # sorted set: endpoint ids waiting for a slot, scored by since when (ms)
HANDED = "handed:"  # a holder reserved for the endpoint whose id follows, until its run takes it
# A worker's allowance counts this long after it last asked for a slot (or started).
WORKER_SEEN_SECONDS = 30.0
# The semaphore's keys outlive their last use by this long (then Redis drops them).
KEYS_KEPT_SECONDS = 24 * 3600
# Without the shared semaphore (a cache that is not Redis: one worker's own slots), a wake-up that found
# no run slot free wakes its endpoint again this much later.
NO_SLOT_RETRY_SECONDS = 1.0

# Sets `now` (ms, the Redis server's clock, so workers' clocks need not agree).
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# KEYS: holders, allowances, seen. Drops lapsed holders and gone workers' allowances; sets `cap` (the
# live workers' allowances added up).
_CAP = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('HDEL', KEYS[2], gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local cap = 0
for _, slots in ipairs(redis.call('HVALS', KEYS[2])) do cap = cap + tonumber(slots) end
"""
# KEYS: holders, allowances, seen, waiters. ARGV: token ("" only registers the worker), lease ms, worker,
# its allowance, seen ms, keys kept ms, endpoint id ("": none), "hand" to hand on free slots. Returns
# {1 when the token now holds a slot else 0, the cap, then the ids of endpoints a slot was reserved for}.
# A slot reserved for the endpoint is its own. Else, with "hand", slots free while endpoints wait ahead
# of it in line (a killed run's, lapsed just now) are reserved for them first, in line order: the caller
# publishes their wake-ups. Then a run gets a slot while fewer runs hold one than the allowances add up
# to; else its endpoint takes its place in line (keeping an earlier place).
_TAKE = _NOW + """
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[3])
""" + _CAP + """
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[6]) end
if ARGV[1] == '' then return {0, cap} end
local answer = {0, cap}
local mine = ARGV[7] ~= '' and redis.call('ZREM', KEYS[1], '""" + HANDED + """' .. ARGV[7]) == 1
if not mine and ARGV[8] == 'hand' then
  while redis.call('ZCARD', KEYS[1]) < cap do
    local first = redis.call('ZRANGE', KEYS[4], 0, 0)
    if #first == 0 or first[1] == ARGV[7] then break end
    redis.call('ZREM', KEYS[4], first[1])
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), '""" + HANDED + """' .. first[1])
    answer[#answer + 1] = first[1]
  end
end
if mine or redis.call('ZCARD', KEYS[1]) < cap then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  if ARGV[7] ~= '' then redis.call('ZREM', KEYS[4], ARGV[7]) end
  answer[1] = 1
  return answer
end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[4], 'NX', now, ARGV[7]) end
return answer
"""
# KEYS: holders, allowances, seen, waiters. ARGV: token, lease ms, "keep" or "reserve". The run holding
# `token` ends: the endpoint first in line (if any, and the cap still has room for the slot) gets it,
# under the same token ("keep": the caller goes on with it) or reserved in its name ("reserve": its
# wake-up is published). Returns that endpoint's id, or false when the slot was freed.
_PASS = _NOW + _CAP + """
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= cap then return false end
local first = redis.call('ZPOPMIN', KEYS[4])
if #first == 0 then return false end
local holder = ARGV[1]
if ARGV[3] ~= 'keep' then holder = '""" + HANDED + """' .. first[1] end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), holder)
return first[1]
"""
# KEYS: holders, allowances, seen, waiters. ARGV: lease ms. The sweeper's safety net: slots free while
# endpoints wait (a killed run's slot lapsed, a worker joined) are reserved for the first in line;
# returns their ids.
_HAND_FREE = _NOW + _CAP + """
local handed = {}
while redis.call('ZCARD', KEYS[1]) < cap do
  local first = redis.call('ZPOPMIN', KEYS[4])
  if #first == 0 then break end
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), '""" + HANDED + """' .. first[1])
  handed[#handed + 1] = first[1]
end
return handed
"""
# KEYS: holders. ARGV: token, lease ms. Pushes the token's lease on (adds it back if the holders were
# lost with a Redis restart: the run is still going).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""


# This worker's name and how many slots its runs may take; set in the worker's main process before its
# pool is forked (brightback_site.celery), 0 outside a worker.
@dataclass
class _Worker:
    name: str = ""
    slots: int = 0


_worker = _Worker()


def slots_allowed(*, concurrency: int, queues: Iterable[str]) -> int:
    """How many of a worker's `concurrency` slots webhook runs may take, given the queues it consumes
    (none when it does not consume `webhooks`: a pool for the other queues adds nothing to the cap)."""
    if "webhooks" not in set(queues):
        return 0
    if settings.WEBHOOK_RUN_SLOTS:
        return min(settings.WEBHOOK_RUN_SLOTS, concurrency)
    if set(queues) <= {"webhooks"}:
        return concurrency
    return max(1, concurrency - 1)


def worker_started(*, name: str, concurrency: int, queues: Iterable[str]) -> None:
    """Note this worker's name and allowance (inherited by its pool processes), and count its allowance
    in the shared cap at once, before its first run asks."""
    _worker.name, _worker.slots = name, slots_allowed(concurrency=concurrency, queues=queues)
    if _worker.name and _worker.slots:
        try:
            _semaphore("")
        except Exception:  # noqa: BLE001 - its first run registers it
            logger.debug("could not note this worker's webhook run slots", exc_info=True)


def lease_seconds() -> float:
    return settings.WEBHOOK_RUN_LEASE_SECONDS


@dataclass
class Slot:
    key: str = ""  # empty: runs are not capped here (no worker, no cache)
    token: str = ""
    shared: bool = False  # a holder in the shared semaphore (else a per-worker key in the cache)


def _redis() -> Any | None:
    """The Redis client behind the default cache, or None when the cache is not Redis."""
    from django.core.cache import caches

    from brightback_site.cache import RedisCache

    cache = caches["default"]  # the backend itself (django.core.cache.cache is a proxy to it)
    if not isinstance(cache, RedisCache):
        return None
    return cache._cache.get_client(write=True)


def _keys() -> list[str]:
    from django.core.cache import cache

    return [cache.make_key(HOLDERS_KEY), cache.make_key(ALLOWANCE_KEY), cache.make_key(SEEN_KEY),
            cache.make_key(WAITERS_KEY)]


def _semaphore(token: str, *, endpoint_id: int | None = None,
               hand_on: Callable[[int], object] | None = None) -> tuple[bool, int] | None:
    """Ask the shared semaphore for a slot for `token` ("": only note this worker's allowance), on behalf
    of `endpoint_id` (put in line when none is free); returns whether it was taken and the cap. With
    `hand_on`, free slots go to the endpoints in line ahead of it first, each id passed to `hand_on`.
    None when the cache is not Redis. Raises when Redis does not answer."""
    client = _redis()
    if client is None:
        return None
    taken, cap, *handed = client.eval(
        _TAKE, 4, *_keys(), token, round(lease_seconds() * 1000), _worker.name, _worker.slots,
        round(WORKER_SEEN_SECONDS * 1000), KEYS_KEPT_SECONDS * 1000, "" if endpoint_id is None else str(endpoint_id),
        "" if hand_on is None else "hand")
    if hand_on is not None:
        for pk in handed:
            hand_on(int(pk))
    return bool(taken), int(cap)


def lines_up() -> bool:
    """Whether an endpoint refused a slot waits in line for one (the shared semaphore in Redis), rather
    than having to ask again (one worker's own slots in a cache that is not Redis)."""
    return _redis() is not None


def shared_cap() -> int | None:
    """How many webhook runs all workers may hold at once now (this worker's allowance noted first), or
    None without the shared semaphore (not a worker, a cache that is not Redis)."""
    if not _worker.name or not _worker.slots:
        return None
    answer = _semaphore("")
    return None if answer is None else answer[1]


def slot_take(*, endpoint_id: int | None = None, hand_on: Callable[[int], object] | None = None) -> Slot | None:
    """A run slot of the cap all workers share for a run of `endpoint_id` (the one reserved for it, if a
    run that ended handed it one), or None when runs already hold every one: the endpoint is then in
    line for the next slot a run frees (when `lines_up()`). With `hand_on` (the caller's way to publish
    an endpoint's wake-up), a slot free while endpoints wait ahead in line (a killed run's, lapsed) is
    reserved for the first of them, whose id is handed to `hand_on`, before this run may have one."""
    from django.core.cache import cache

    if not _worker.name or not _worker.slots:
        return Slot()
    token = f"{_worker.name}:{secrets.token_hex(8)}"
    try:
        shared = _semaphore(token, endpoint_id=endpoint_id, hand_on=hand_on)
        if shared is not None:
            return Slot(_keys()[0], token, shared=True) if shared[0] else None
        for n in range(_worker.slots):
            key = SLOT_KEY.format(worker=_worker.name, n=n)
            if cache.add(key, token, lease_seconds()):
                return Slot(key, token)
    except Exception:  # noqa: BLE001 - a cache that does not answer caps nothing
        logger.warning("webhook run slots unavailable; this run is not capped", exc_info=True)
        return Slot()
    return None


def slot_renew(slot: Slot) -> None:
    from django.core.cache import cache

    if not slot.key:
        return
    try:
        if slot.shared:
            client = _redis()
            if client is not None:
                client.eval(_RENEW, 1, slot.key, slot.token, round(lease_seconds() * 1000))
        elif not cache.touch(slot.key, lease_seconds()):
            cache.add(slot.key, slot.token, lease_seconds())  # the cache was emptied meanwhile
    except Exception:  # noqa: BLE001
        logger.debug("could not renew webhook run slot %s", slot.key, exc_info=True)


def _pass(slot: Slot, how: str) -> int | None:
    client = _redis()
    if client is None:
        return None
    first = client.eval(_PASS, 4, *_keys(), slot.token, round(lease_seconds() * 1000), how)
    return int(first) if first else None


def slot_pass_on(slot: Slot) -> int | None:
    """The run holding `slot` has ended: keep the slot for the endpoint first in line and return its id
    (the caller runs it next, under the same slot), or free the slot and return None when nobody
    waits (or the cap has shrunk)."""
    if not slot.key or not slot.shared:
        slot_give_back(slot)
        return None
    try:
        return _pass(slot, "keep")
    except Exception:  # noqa: BLE001 - it expires with its lease; the sweeper hands it on
        logger.debug("could not pass on webhook run slot %s", slot.key, exc_info=True)
        return None


def slot_give_back(slot: Slot) -> int | None:
    """Free `slot`; when an endpoint waits in line, the slot is reserved for it instead (until its run
    takes it, or for a lease) and its id returned: the caller publishes that endpoint's wake-up."""
    from django.core.cache import cache

    if not slot.key:
        return None
    try:
        if slot.shared:
            return _pass(slot, "reserve")
        if cache.get(slot.key) == slot.token:
            cache.delete(slot.key)
    except Exception:  # noqa: BLE001 - it expires with its lease
        logger.debug("could not give back webhook run slot %s", slot.key, exc_info=True)
    return None


def waiters_hand_free_slots() -> list[int]:
    """The sweeper's safety net for the line: reserve each slot that is free while endpoints wait (a
    killed run's slot lapsed without being handed on, a worker joined) for the first in line, and return
    their ids, for the caller to publish their wake-ups."""
    try:
        client = _redis()
        if client is None:
            return []
        return [int(pk) for pk in client.eval(_HAND_FREE, 4, *_keys(), round(lease_seconds() * 1000))]
    except Exception:  # noqa: BLE001 - the rows' own sweep is the last resort
        logger.debug("could not hand free webhook run slots to the endpoints in line", exc_info=True)
        return []


class Heartbeat:
    """Renews a run's hold on its endpoint and its slot key every third of the lease, from a thread of
    its own, until `stop`. `hold` is the run's current lease (the compare-and-set token); `lost` turns
    true when a renewal found the hold taken over (it lapsed: the database did not answer the renewals
    for a whole lease), and the run then stops before its next delivery: the next run takes over what
    it claimed (services._claim)."""

    def __init__(self, *, endpoint_id: int, hold: datetime, slot: Slot, since: datetime) -> None:
        self.endpoint_id, self.hold, self.slot = endpoint_id, hold, slot
        self.since = since  # when the run took the endpoint
        self.lock = threading.Lock()
        self.lost = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"webhook-run-{endpoint_id}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _beat(self) -> None:
        try:
            while not self._stopped.wait(lease_seconds() / 3):
                with self.lock:
                    if self._stopped.is_set():
                        return
                    try:
                        self._renew()
                    except Exception:  # noqa: BLE001 - the next beat tries again while the hold lasts
                        logger.exception("webhook run heartbeat for endpoint %s failed", self.endpoint_id)
                        connection.close()
                if self.lost:
                    return
        finally:
            connection.close()  # this thread's own database connection

    def _renew(self) -> None:
        renewed = timezone.now() + timedelta(seconds=lease_seconds())
        if Endpoint.objects.filter(pk=self.endpoint_id, run_lease_until=self.hold).update(run_lease_until=renewed):
            self.hold = renewed
        else:
            self.lost = True  # another run holds the endpoint (or it was deleted)
            logger.warning("webhook run lost its hold on endpoint %s", self.endpoint_id)
        slot_renew(self.slot)

    def stop(self) -> datetime:
        """Stop renewing; returns the hold as last renewed. Waits for a renewal in progress, but never
        longer than a lease (a renewal blocked on a row lock must not hold up the run's end)."""
        got = self.lock.acquire(timeout=lease_seconds())
        try:
            self._stopped.set()
            return self.hold
        finally:
            if got:
                self.lock.release()

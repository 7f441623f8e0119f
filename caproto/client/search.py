"""Name resolution: which server serves a channel name.

Searches go out in batches (one VERSION and as many SEARCH messages as fit in a datagram: the core's
`Broadcaster.search_datagrams`) to every address of the search list, and over TCP to every name server.
A name that gets no answer is searched again after a delay that doubles each time, from
:data:`FIRST_RETRY_DELAY` up to ``EPICS_CA_MAX_SEARCH_PERIOD`` (libca's back-off); a beacon anomaly (a
server that just appeared or restarted) makes every pending name due at once.

The schedule is plain data driven by the caller's clock: :meth:`SearchSchedule.due` says which names to
send now and :meth:`SearchSchedule.next_deadline` when to look again, so the back-off is testable without
sockets or sleeping.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Address = tuple[str, int]

FIRST_RETRY_DELAY = 0.032    # seconds before the first repeat; doubles on each further repeat


@dataclass(slots=True)
class _Pending:
    name: str
    search_id: int
    attempts: int = 0
    deadline: float = 0.0


@dataclass
class SearchSchedule:
    """Which names are unresolved, and when each is next due for a search.

    Names are kept in buckets by deadline. Thousands of names are added at the same moment (one
    ``get_pvs``), and the names searched in one `due` call that share a back-off step get the same next
    deadline: so a bucket holds many names and moving a name costs O(1), where a heap of names would cost
    O(log n) per name, which shows when connecting tens of thousands of channels.
    """
    max_period: float
    _pending: dict[int, _Pending] = field(default_factory=dict)        # by search id
    _buckets: dict[float, list[int]] = field(default_factory=dict)     # deadline -> search ids
    _deadlines: list[float] = field(default_factory=list)              # heap of the buckets' deadlines

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, search_id: int) -> bool:
        return search_id in self._pending

    def _bucket(self, deadline: float) -> list[int]:
        bucket = self._buckets.get(deadline)
        if bucket is None:
            bucket = self._buckets[deadline] = []
            heapq.heappush(self._deadlines, deadline)
        return bucket

    def add(self, name: str, search_id: int, now: float) -> None:
        """Search ``name`` (known to replies by ``search_id``) now, and again until :meth:`remove`."""
        self._pending[search_id] = _Pending(name, search_id, deadline=now)
        self._bucket(now).append(search_id)

    def remove(self, search_id: int) -> str | None:
        """Stop searching; the name, or None if it was not pending."""
        entry = self._pending.pop(search_id, None)
        return entry.name if entry else None

    def delay(self, attempts: int) -> float:
        """Seconds between search number ``attempts`` and the next one."""
        return min(FIRST_RETRY_DELAY * (2 ** min(attempts - 1, 40)), self.max_period)

    def due(self, now: float) -> list[tuple[str, int]]:
        """The (name, search id) pairs to send now; each is rescheduled with a longer delay."""
        found = []
        pending = self._pending
        deadlines = self._deadlines
        # (next deadline, its bucket) by search number: names searched together move together
        moves: dict[int, tuple[float, list[int]]] = {}
        while deadlines and deadlines[0] <= now:
            deadline = heapq.heappop(deadlines)
            for search_id in self._buckets.pop(deadline):
                entry = pending.get(search_id)
                if entry is None or entry.deadline != deadline:
                    continue  # removed, or moved by a reset or a second add
                attempts = entry.attempts = entry.attempts + 1
                move = moves.get(attempts)
                if move is None:
                    next_deadline = now + self.delay(attempts)
                    move = moves[attempts] = next_deadline, self._bucket(next_deadline)
                entry.deadline = move[0]
                move[1].append(search_id)
                found.append((entry.name, search_id))
        return found

    def next_deadline(self) -> float | None:
        deadlines = self._deadlines
        pending = self._pending
        while deadlines:
            deadline = deadlines[0]
            bucket = self._buckets[deadline]
            for index, search_id in enumerate(bucket):
                entry = pending.get(search_id)
                if entry is not None and entry.deadline == deadline:
                    # names that connected are dropped as they are met, so none is looked at twice
                    del bucket[:index]
                    return deadline
            heapq.heappop(deadlines)
            del self._buckets[deadline]
        return None

    def reset(self, now: float) -> None:
        """Make every pending name due now, with the back-off started over (a beacon anomaly)."""
        for entry in self._pending.values():
            entry.attempts = 0
            entry.deadline = now
        self._buckets = {now: list(self._pending)} if self._pending else {}
        self._deadlines = [now] if self._pending else []


@dataclass
class BeaconTracker:
    """Notices beacon anomalies: a server not heard from before, a server whose beacon ids start over
    (it restarted), or one whose beacons suddenly come much faster than before (servers ramp their beacon
    rate up again after a restart or a network change)."""
    _seen: dict[Address, tuple[int, float, float | None]] = field(default_factory=dict)

    def beacon(self, server: Address, beacon_id: int, now: float) -> bool:
        """Record a beacon of ``server``; True if it is an anomaly."""
        previous = self._seen.get(server)
        if previous is None:
            self._seen[server] = (beacon_id, now, None)
            return True
        last_id, last_time, last_interval = previous
        if beacon_id == last_id:
            return False  # the same beacon again, through another interface or repeater
        interval = now - last_time
        anomaly = beacon_id != (last_id + 1) & 0xFFFFFFFF or (
            last_interval is not None and interval < last_interval / 3)
        self._seen[server] = (beacon_id, now, interval)
        return anomaly

    def forget(self, server: Address) -> None:
        self._seen.pop(server, None)

"""Name resolution: which server serves a channel name.

Searches go out in batches (one VERSION and as many SEARCH messages as fit in a datagram) to every
address of the search list, and over TCP to every name server. A name that gets no answer is searched
again after a delay that doubles each time, from :data:`FIRST_RETRY_DELAY` up to
``EPICS_CA_MAX_SEARCH_PERIOD`` (libca's back-off); a beacon anomaly (a server that just appeared or
restarted) makes every pending name due at once.

The schedule is plain data driven by the caller's clock: :meth:`SearchSchedule.due` says which names to
send now and :meth:`SearchSchedule.next_deadline` when to look again, so the back-off is testable without
sockets or sleeping.
"""
from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from caproto.constants import CA_MINOR_VERSION, DONT_REPLY
from caproto.messages import Message, SearchRequest, VersionRequest

log = logging.getLogger(__name__)

Address = tuple[str, int]

FIRST_RETRY_DELAY = 0.032    # seconds before the first repeat; doubles on each further repeat
# libca's largest search datagram (MAX_UDP_SEND): fits in one Ethernet frame with room for headers.
MAX_DATAGRAM = 1024


@dataclass
class _Pending:
    name: str
    search_id: int
    attempts: int = 0
    deadline: float = 0.0


@dataclass
class SearchSchedule:
    """Which names are unresolved, and when each is next due for a search."""
    max_period: float
    _pending: dict[int, _Pending] = field(default_factory=dict)   # by search id
    _heap: list[tuple[float, int, int]] = field(default_factory=list)  # (deadline, attempts, search id)

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, search_id: int) -> bool:
        return search_id in self._pending

    def add(self, name: str, search_id: int, now: float) -> None:
        """Search ``name`` (known to replies by ``search_id``) now, and again until :meth:`remove`."""
        entry = _Pending(name, search_id, deadline=now)
        self._pending[search_id] = entry
        heapq.heappush(self._heap, (now, 0, search_id))

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
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, attempts, search_id = heapq.heappop(heap)
            entry = self._pending.get(search_id)
            if entry is None or entry.deadline != deadline or entry.attempts != attempts:
                continue  # removed, or superseded by a reset
            entry.attempts += 1
            entry.deadline = now + self.delay(entry.attempts)
            heapq.heappush(heap, (entry.deadline, entry.attempts, search_id))
            found.append((entry.name, search_id))
        return found

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, attempts, search_id = heap[0]
            entry = self._pending.get(search_id)
            if entry is not None and entry.deadline == deadline and entry.attempts == attempts:
                return deadline
            heapq.heappop(heap)
        return None

    def reset(self, now: float) -> None:
        """Make every pending name due now, with the back-off started over (a beacon anomaly)."""
        self._heap.clear()
        for entry in self._pending.values():
            entry.attempts = 0
            entry.deadline = now
            self._heap.append((now, 0, entry.search_id))
        heapq.heapify(self._heap)


def search_batches(names: Iterable[tuple[str, int]], *, reply: int = DONT_REPLY,
                   limit: int = MAX_DATAGRAM) -> list[list[Message]]:
    """Datagram contents: VERSION then SEARCH messages, each batch at most ``limit`` bytes (or one search)."""
    version = VersionRequest(priority=0, version=CA_MINOR_VERSION)
    batches: list[list[Message]] = []
    current: list[Message] = [version]
    size = len(version.to_bytes())
    for name, search_id in names:
        message = SearchRequest(name=name, cid=search_id, version=CA_MINOR_VERSION, reply=reply)
        length = 16 + len(message.payload)
        if size + length > limit and len(current) > 1:
            batches.append(current)
            current, size = [version], 16
        current.append(message)
        size += length
    if len(current) > 1:
        batches.append(current)
    return batches


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

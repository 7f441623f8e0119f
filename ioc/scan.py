"""Scan lists: periodic scanning and event scanning (dbScan.c).

Periodic: one trio task per SCAN period processes its records on a drift-free schedule.

Event: records with SCAN "Event" join the list of the event their EVNT names; posting that event (an
``event`` record processing, :meth:`ScanLists.post_event`) has the list processed soon after, by the
event task, outside the poster's processing chain (the C IOC hands it to a callback thread). Events are
named; a name that reads as a number from 1 to 255 (after trimming blanks, "5", "5.7", "0x5") is the
numbered event of its integer part, and one below 1 is no event, as eventNameToHandle decides. Events
posted before the lists run (PINI processing) are dropped, as postEvent does before iocRun.

Records join and leave a list when the database loads them and whenever SCAN, PHAS, EVNT or PRIO is
written, so a SCAN put takes effect at the next tick. Within a list, records run in PHAS order, then in
the order they joined, as the C IOC's scan lists do.

An event's records form one list per PRIO, as in dbScan.c, and a post runs the lists in the order
postEvent queues their callbacks: LOW, MEDIUM, HIGH. (softIoc hands each list to the callback thread of
its priority; on a machine that does not schedule those threads by priority the lists race, so there the
order across priorities varies from post to post, but each list keeps its own order.)
"""
from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from caproto.convert import parse_double
from ioc.records.menus import MENUS

if TYPE_CHECKING:
    from ioc.database import Record

log = logging.getLogger(__name__)

SCAN_CHOICES = MENUS["menuScan"]
PASSIVE = SCAN_CHOICES.index("Passive")
EVENT = SCAN_CHOICES.index("Event")
IO_INTR = SCAN_CHOICES.index("I/O Intr")
# menuScan index -> period in seconds, for the periodic choices ("10 second" ... ".1 second").
PERIODS: dict[int, float] = {i: float(choice.split()[0]) for i, choice in enumerate(SCAN_CHOICES)
                             if choice.endswith(" second")}
# Numbered events (the EPICS 3.14 post_event(int) range).
MAX_EVENT_NUMBER = 255


def event_name(evnt: str) -> str | None:
    """eventNameToHandle: the event ``evnt`` names (the key of its scan list), or None for no event.

    Blanks around the name do not count. Text that reads as a number (a calc record's output, "3.0")
    with an integer part from 1 to 255 is that numbered event, named by the integer ("3"); from 0 to
    below 1 it is no event; other numbers and other text are event names as written.
    """
    name = evnt.strip()
    if not name:
        return None
    try:
        number = parse_double(name, allow_units=False)
    except ValueError:
        return name
    if not 0 <= number < MAX_EVENT_NUMBER + 1:   # NaN fails both comparisons: a name
        return name
    if number < 1:
        return None
    return str(math.floor(number))


class ScanLists:
    """The records of each periodic SCAN choice and of each event, and the tasks that process them."""

    def __init__(self, process: Callable[[Record], object]) -> None:
        self._process = process
        self._lists: dict[int, dict[Record, None]] = {scan: {} for scan in PERIODS}
        self._sorted: dict[int, list[Record] | None] = {scan: None for scan in PERIODS}
        self._wakeups: dict[int, trio.Event] = {scan: trio.Event() for scan in PERIODS}
        # event name -> its records in join order; a record's event is remembered so that it leaves the
        # list it joined whatever EVNT holds by then
        self._events: dict[str, dict[Record, None]] = {}
        self._event_sorted: dict[str, list[Record]] = {}
        self._event_of: dict[Record, str] = {}
        self._posted: collections.deque[str] = collections.deque()
        self._posted_wakeup = trio.Event()
        self._running = False

    def add(self, rec: Record) -> None:
        scan = rec.SCAN
        if scan in self._lists:
            self._lists[scan][rec] = None
            self._sorted[scan] = None
            self._wakeups[scan].set()
        elif scan == IO_INTR:
            # scanAdd: no device support here has get_ioint_info, so softIoc sets such a record Passive
            log.error("%s: scanAdd: I/O Intr not valid (no get_ioint_info)", rec.NAME)
            rec.SCAN = PASSIVE
        elif scan == EVENT:
            name = event_name(rec.EVNT)
            if name is not None:
                self._events.setdefault(name, {})[rec] = None
                self._event_sorted.pop(name, None)
                self._event_of[rec] = name

    def remove(self, rec: Record) -> None:
        scan = rec.SCAN
        if scan in self._lists and self._lists[scan].pop(rec, 0) is None:
            self._sorted[scan] = None
        name = self._event_of.pop(rec, None)
        if name is not None:
            members = self._events[name]
            del members[rec]
            self._event_sorted.pop(name, None)
            if not members:
                del self._events[name]

    def event_members(self, name: str) -> list[Record]:
        """The records of event ``name``'s lists (an event_name() result), in processing order: by PRIO
        (menuPriority's order, LOW first), then PHAS, then the order they joined."""
        ordered = self._event_sorted.get(name)
        if ordered is None:
            ordered = sorted(self._events.get(name, ()), key=lambda r: (r.PRIO, r.PHAS))
            self._event_sorted[name] = ordered
        return ordered

    def post_event(self, name: str | None) -> None:
        """postEvent: have event ``name``'s records processed soon (once per post). Nothing happens
        for no event (None), an event no record waits for, or before the lists run."""
        if name is None or not self._running or name not in self._events:
            return
        self._posted.append(name)
        self._posted_wakeup.set()

    def members(self, scan: int) -> list[Record]:
        ordered = self._sorted[scan]
        if ordered is None:
            ordered = sorted(self._lists[scan], key=lambda r: r.PHAS)  # stable: keeps join order
            self._sorted[scan] = ordered
        return ordered

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for scan, period in PERIODS.items():
                nursery.start_soon(self._periodic, scan, period)
            nursery.start_soon(self._event_scans)
            self._running = True
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._running = False

    async def _event_scans(self) -> None:
        while True:
            await self._posted_wakeup.wait()
            self._posted_wakeup = trio.Event()
            # One batch of posts per wakeup, with a checkpoint after it, so that records posting their
            # own event (an event record scanned by that event) share the loop instead of spinning.
            batch = list(self._posted)
            self._posted.clear()
            for name in batch:
                for rec in list(self.event_members(name)):
                    # a record that a processing earlier in the pass moved elsewhere is not processed
                    if self._event_of.get(rec) == name:
                        self._process(rec)
            await trio.sleep(0)

    async def _periodic(self, scan: int, period: float) -> None:
        while True:
            if not self._lists[scan]:
                # Idle until a record joins: an empty period costs nothing.
                self._wakeups[scan] = trio.Event()
                await self._wakeups[scan].wait()
            deadline = trio.current_time() + period
            while self._lists[scan]:
                await trio.sleep_until(deadline)
                for rec in list(self.members(scan)):
                    if rec.SCAN == scan:
                        self._process(rec)
                deadline += period
                now = trio.current_time()
                if deadline < now:
                    # Fell behind (a long processing pass): skip the missed ticks rather than burst.
                    log.debug("scan %s s overran by %.3f s", period, now - deadline)
                    deadline = now + period

"""Periodic scanning: one trio task per SCAN period processes its records on a drift-free schedule.

Records join and leave a period's list when the database loads them and whenever SCAN (or PHAS) is
written, so a SCAN put takes effect at the next tick. Within a period, records run in PHAS order, then in
the order they joined, as the C IOC's scan lists do.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

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


class ScanLists:
    """The records of each periodic SCAN choice, and the tasks that process them."""

    def __init__(self, process: Callable[[Record], object]) -> None:
        self._process = process
        self._lists: dict[int, dict[Record, None]] = {scan: {} for scan in PERIODS}
        self._sorted: dict[int, list[Record] | None] = {scan: None for scan in PERIODS}
        self._wakeups: dict[int, trio.Event] = {scan: trio.Event() for scan in PERIODS}

    def add(self, rec: Record) -> None:
        scan = rec.SCAN
        if scan in self._lists:
            self._lists[scan][rec] = None
            self._sorted[scan] = None
            self._wakeups[scan].set()

    def remove(self, rec: Record) -> None:
        scan = rec.SCAN
        if scan in self._lists and self._lists[scan].pop(rec, 0) is None:
            self._sorted[scan] = None

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
            task_status.started()

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

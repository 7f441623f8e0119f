"""motorutil: the motor module's motorUtil (``motorUtilInit(P)``) and the records of its motorUtil.db.

It watches DMOV of every motor record of the IOC and keeps ``$(P)moving`` (how many move),
``$(P)alldone`` (1 when none does) and ``$(P)movingDiff`` (``+NAME`` / ``-NAME`` of the last change)
up to date; writing ``stop`` to ``$(P)allstop`` stops every moving motor, then ``allstop`` is released.
The device's name is the prefix ``P``. Like the C task, it acts through puts of its own, outside the
processing that posted the change.
"""
from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

import numpy as np
import trio

from caproto.constants import DBE_ALARM, DBE_VALUE
from caproto.dbr import ChannelType
from caproto.errors import CAError
from ioc.config import ConfigError, DeviceSpec, Located, RecordSpec

if TYPE_CHECKING:
    from ioc.database import Database, FieldChannel

log = logging.getLogger(__name__)

__all__ = ["MotorUtil"]

_MOVING_DIFF_LENGTH = 62


class MotorUtil:
    """A ``motorutil`` device."""

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec
        self.prefix = spec.name
        self._db: Database | None = None
        self._motors: list[str] = []
        self._in_motion: list[bool] = []
        self._alldone = True
        self._moving_count = 0
        self._events: collections.deque[tuple[int, int]] = collections.deque()   # (motor index or -1, value)
        self._wake = trio.Event()

    @classmethod
    def from_spec(cls, spec: DeviceSpec) -> MotorUtil:
        extra = spec.fields or spec.sim
        if extra:
            located = next(iter(extra.values()))
            raise ConfigError(located.file, located.line, None,
                              f"device {spec.name}: motorutil takes no fields or sim settings")
        return cls(spec)

    def _spec(self, suffix: str, rtype: str, fields: dict[str, str]) -> RecordSpec:
        located = {name: Located(value, self.spec.file, self.spec.line) for name, value in fields.items()}
        return RecordSpec(self.prefix + suffix, rtype, located, self.spec.file, self.spec.line)

    def record_specs(self) -> list[RecordSpec]:
        p = self.prefix
        return [
            self._spec("allstop", "bo", {"ZNAM": "release", "ONAM": "stop", "DESC": "Stop All IOC motors."}),
            self._spec("alldone", "bi", {"ZNAM": "moving", "ONAM": "done", "INP": "1",
                                         "DESC": "All IOC motors done moving."}),
            self._spec("moving", "longout", {"DESC": "Motors moving count."}),
            self._spec("alldoneBlink", "calc", {"SCAN": ".5 second", "CALC": "A?0:!B", "INPA": f"{p}alldone",
                                                "INPB": f"{p}alldoneBlink"}),
            self._spec("movingDiff", "waveform", {"DESC": "Motor w/ last dmov change",
                                                  "NELM": str(_MOVING_DIFF_LENGTH), "FTVL": "CHAR"}),
        ]

    def attach(self, db: Database) -> None:
        self._db = db
        self._motors = [name for name, rec in db.records.items() if rec.rtype.name == "motor"]
        self._in_motion = [False] * len(self._motors)
        for index, name in enumerate(self._motors):
            self._watch(f"{name}.DMOV", index)
        self._watch(f"{self.prefix}allstop", -1)

    def _watch(self, pv: str, index: int) -> None:
        chan = self._channel(pv)

        def on_post(mask: int) -> None:
            # A CA monitor with the default mask: value and alarm changes.
            if mask & (DBE_VALUE | DBE_ALARM):
                self._events.append((index, int(getattr(chan.record, chan.field.name))))
                self._wake.set()

        chan.subscribe(on_post)

    def _channel(self, pv: str) -> FieldChannel:
        chan = self._db.lookup(pv)
        if chan is None:
            raise ConfigError(self.spec.file, self.spec.line, None, f"device {self.spec.name}: no PV {pv}")
        return chan

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while self._events:
                index, value = self._events.popleft()
                if index < 0:
                    self._allstop(value)
                else:
                    self._dmov(index, value)

    def _put(self, pv: str, data_type: ChannelType, values: object) -> None:
        try:
            self._db.put_field(self._channel(pv), data_type, values)
        except CAError as exc:
            # As the C task's ca_put: a refused put (DISP set, say) is reported, and the task goes on.
            log.warning("motorutil %s: put to %s refused: %s", self.prefix, pv, exc)

    def _dmov(self, index: int, dmov: int) -> None:
        self._in_motion[index] = not dmov
        count = sum(self._in_motion)
        alldone = count == 0
        if alldone != self._alldone:
            self._alldone = alldone
            self._put(f"{self.prefix}alldone", ChannelType.INT, np.array([int(alldone)], dtype=np.int16))
        if count != self._moving_count:
            self._moving_count = count
            self._put(f"{self.prefix}moving", ChannelType.LONG, np.array([count], dtype=np.int32))
            text = ("-" if dmov else "+") + self._motors[index]
            chars = np.frombuffer(text.encode()[:_MOVING_DIFF_LENGTH - 1] + b"\0", dtype=np.uint8)
            self._put(f"{self.prefix}movingDiff", ChannelType.CHAR, chars)

    def _allstop(self, value: int) -> None:
        if not value:
            return
        for name, moving in zip(self._motors, self._in_motion, strict=True):
            if moving:
                self._put(f"{name}.STOP", ChannelType.INT, np.array([1], dtype=np.int16))
        self._put(f"{self.prefix}allstop", ChannelType.INT, np.array([0], dtype=np.int16))

"""motorsim: one simulated motor axis serving a motor record, as the motor module's motorSim driver does.

:class:`Axis` is the simulation without I/O: a trajectory of constant-acceleration segments (a trapezoid,
or a triangle for short moves, at the speed and acceleration the record sends), the hard limit switches,
the home switch and the status word, all at times the caller passes in. :class:`MotorSim` is the device:
it builds the motor record, carries out the record's commands on the axis and, every ``tick`` seconds
while the axis moves, reports its status to the record (which processes only when something changed).

Positions, limits and the home switch are in controller steps (the record's raw units: RRBV).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from ioc.config import ConfigError, DeviceSpec, RecordSpec
from ioc.records import motor
from ioc.records.motor import Msta

from . import sim_number

if TYPE_CHECKING:
    from ioc.database import Database, Record

log = logging.getLogger(__name__)

__all__ = ["Axis", "MotorSim", "Segment", "TickStats", "plan_move", "plan_velocity", "SIM_SETTINGS"]

# sim: settings and their defaults (the motorSim driver's, for an axis that is not configured).
SIM_SETTINGS: dict[str, float] = {
    "high_limit": 10000.0,     # hard limit switches, in steps
    "low_limit": -10000.0,
    "home": 0.0,               # home switch position, in steps
    "start": 0.0,              # position at start-up, in steps
    "tick": 0.1,               # seconds between status updates while moving
}


# A phase shorter than this (seconds) is rounding, not motion.
_NEGLIGIBLE = 1e-12


# --- trajectories -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Segment:
    """Motion with constant acceleration from ``start`` for ``duration`` seconds (inf: for ever)."""
    start: float
    position: float
    velocity: float
    acceleration: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration

    def at(self, t: float) -> tuple[float, float]:
        """(position, velocity) at time ``t``."""
        dt = t - self.start
        return (self.position + self.velocity * dt + 0.5 * self.acceleration * dt * dt,
                self.velocity + self.acceleration * dt)


def _ramp(t: float, p: float, v: float, a: float, duration: float) -> tuple[Segment, float, float, float]:
    """A segment and the (time, position, velocity) it ends with."""
    seg = Segment(t, p, v, a, duration)
    end_p, end_v = seg.at(seg.end) if duration != math.inf else (p, v)
    return seg, seg.end, end_p, end_v


def plan_move(t: float, p: float, v: float, target: float, vmax: float, amax: float) -> list[Segment]:
    """The fastest motion from (``p``, ``v``) at time ``t`` to rest at ``target`` with |v| <= vmax,
    |a| = amax: brake first if moving away or too fast to stop in time; then accelerate, cruise (if the
    move is long enough to reach ``vmax``) and decelerate."""
    segments: list[Segment] = []
    distance = target - p
    if v != 0.0 and (v * distance <= 0.0 or v * v / (2.0 * amax) > abs(distance)):
        seg, t, p, _ = _ramp(t, p, v, -math.copysign(amax, v), abs(v) / amax)
        segments.append(seg)
        v = 0.0
        distance = target - p
    if distance == 0.0:
        return segments
    sign = math.copysign(1.0, distance)
    remaining, speed = abs(distance), abs(v)
    peak = min(vmax, math.sqrt(amax * remaining + 0.5 * speed * speed)) if speed <= vmax else vmax
    t1 = abs(peak - speed) / amax
    d1 = 0.5 * (speed + peak) * t1
    t3 = peak / amax
    d3 = 0.5 * peak * t3
    t2 = max(remaining - d1 - d3, 0.0) / peak
    for accel, duration in ((sign * amax if peak >= speed else -sign * amax, t1), (0.0, t2),
                            (-sign * amax, t3)):
        if duration > _NEGLIGIBLE:
            seg, t, p, v = _ramp(t, p, v, accel, duration)
            segments.append(seg)
    return segments


def plan_velocity(t: float, p: float, v: float, velocity: float, amax: float) -> list[Segment]:
    """Change speed to ``velocity`` at ``amax``, then keep it (for ever, unless it is 0)."""
    segments: list[Segment] = []
    if v != velocity:
        seg, t, p, v = _ramp(t, p, v, math.copysign(amax, velocity - v), abs(velocity - v) / amax)
        segments.append(seg)
    if velocity != 0.0:
        segments.append(Segment(t, p, velocity, 0.0, math.inf))
    return segments


# --- the axis -----------------------------------------------------------------------------------------------

class Axis:
    """A simulated axis (motorSimAxis): commands and :meth:`advance` take the current time."""

    def __init__(self, high_limit: float, low_limit: float, home: float, start: float = 0.0,
                 now: float = 0.0) -> None:
        self.high_limit = high_limit
        self.low_limit = low_limit
        self.home_position = home
        self.position = start           # in the axis's own steps; reported as position + offset
        self.velocity = 0.0
        self.offset = 0.0               # set_position moves the reported scale, not the switches
        # The route parameters persist from command to command; a 0 in a command keeps the last one.
        self.vmax = 1.0
        self.amax = 1.0
        self.homing = False
        self.homed = False
        self._time = now
        self._segments: list[Segment] = []
        self._rest: float | None = start    # where the current plan comes to rest (None: it never does)
        self._jog_velocity = 0.0

    # -- state ---------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return not self._segments

    def reported_position(self) -> float:
        return self.position + self.offset

    def msta(self) -> int:
        """The status word the driver reports."""
        bits = Msta(0)
        if self.velocity > 0.0:
            bits |= Msta.DIRECTION
        bits |= Msta.DONE if self.done else Msta.MOVING
        if self.position >= self.high_limit:
            bits |= Msta.PLUS_LS
        if self.position <= self.low_limit:
            bits |= Msta.MINUS_LS
        if self.position == self.home_position:
            bits |= Msta.HOME
        if self.homed:
            bits |= Msta.HOMED
        return int(bits)

    # -- motion ----------------------------------------------------------------------------------------
    def _follow(self, now: float) -> None:
        """Move along the plan to ``now``."""
        self._time = now
        while self._segments and self._segments[0].end <= now:
            self._segments.pop(0)
        if self._segments:
            self.position, self.velocity = self._segments[0].at(now)
        else:
            if self._rest is not None:
                self.position = self._rest
            self.velocity = 0.0

    def _plan(self, segments: list[Segment], rest: float | None) -> None:
        self._segments = segments
        self._rest = rest if segments else self.position
        if not segments:
            self.velocity = 0.0

    def _go_to(self, target: float) -> None:
        self._plan(plan_move(self._time, self.position, self.velocity, target, self.vmax, self.amax), target)

    def _run_at(self, velocity: float) -> None:
        self._jog_velocity = velocity
        segments = plan_velocity(self._time, self.position, self.velocity, velocity, self.amax)
        rest = None
        if velocity == 0.0:
            rest = segments[-1].at(segments[-1].end)[0] if segments else self.position
        self._plan(segments, rest)

    def advance(self, now: float) -> None:
        """One driver poll: follow the plan, then the home switch and the hard limits (motorSim process)."""
        last = self.position
        self._follow(now)
        if self.homing and (last - self.home_position) * (self.position - self.home_position) <= 0.0:
            # Crossed the home switch: go back to it and stop there.
            self.homing = False
            self.homed = True
            self._go_to(self.home_position)
        if self.position > self.high_limit and self.velocity > 0.0:
            if self.homing:
                self._run_at(-self._jog_velocity)      # a home search turns round at a limit
            else:
                self._go_to(self.high_limit)
        elif self.position < self.low_limit and self.velocity < 0.0:
            if self.homing:
                self._run_at(-self._jog_velocity)
            else:
                self._go_to(self.low_limit)

    def _set_route(self, velocity: float, acceleration: float) -> None:
        if velocity != 0.0:
            self.vmax = abs(velocity)
        if acceleration != 0.0:
            self.amax = abs(acceleration)

    def move(self, now: float, position: float, velocity: float, acceleration: float) -> bool:
        """Go to ``position`` (reported scale); False when a hard limit refuses the move."""
        self._follow(now)
        target = position - self.offset
        if (self.position >= self.high_limit and target > self.position) or \
                (self.position <= self.low_limit and target < self.position):
            return False
        self._set_route(velocity, acceleration)
        self._go_to(target)
        return True

    def jog(self, now: float, velocity: float, acceleration: float) -> bool:
        """Run at ``velocity`` (signed) until stopped; False when a hard limit refuses it."""
        self._follow(now)
        if (self.position > self.high_limit and velocity > 0.0) or \
                (self.position < self.low_limit and velocity < 0.0):
            return False
        if acceleration != 0.0:
            self.amax = abs(acceleration)
        self._run_at(velocity)
        return True

    def home(self, now: float, forward: bool, velocity: float, acceleration: float) -> bool:
        """Search for the home switch at ``velocity``, and come back to it at that speed.

        The C driver returns to the switch at the speed of the last move (1 step/s before the first):
        homing a motor that never moved took minutes. Here the home speed is the speed of both."""
        self._set_route(velocity, acceleration)
        accepted = self.jog(now, velocity if forward else -velocity, acceleration)
        self.homing = True
        self.homed = False
        return accepted

    def stop(self, now: float) -> None:
        """Decelerate to rest at the move acceleration."""
        self._follow(now)
        self._run_at(0.0)

    def set_position(self, now: float, position: float) -> None:
        """The current position is now called ``position`` (nothing moves)."""
        self._follow(now)
        self.offset = position - self.position


# --- the device ---------------------------------------------------------------------------------------------

@dataclass
class TickStats:
    """How late the status updates were, for the benchmark (seconds)."""
    count: int = 0
    total_lateness: float = 0.0
    max_lateness: float = 0.0
    overruns: int = 0
    samples: list[float] = field(default_factory=list, repr=False)
    keep_samples: bool = False

    def add(self, lateness: float) -> None:
        self.count += 1
        self.total_lateness += lateness
        self.max_lateness = max(self.max_lateness, lateness)
        if self.keep_samples:
            self.samples.append(lateness)


class MotorSim:
    """A ``motorsim`` device: one axis and its motor record."""

    def __init__(self, spec: DeviceSpec, settings: dict[str, float]) -> None:
        self.spec = spec
        self.name = spec.name
        self.tick = settings["tick"]
        self.axis = Axis(settings["high_limit"], settings["low_limit"], settings["home"], settings["start"])
        self.stats = TickStats()
        self.record: Record | None = None
        self._wake = trio.Event()
        self._report_due = False
        self._last_report: tuple[float, int] | None = None

    @classmethod
    def from_spec(cls, spec: DeviceSpec) -> MotorSim:
        for key, located in spec.sim.items():
            if key not in SIM_SETTINGS:
                raise ConfigError(located.file, located.line, None,
                                  f"device {spec.name}: unknown sim setting {key!r} "
                                  f"(motorsim takes: {', '.join(SIM_SETTINGS)})")
        settings = {key: sim_number(spec, key, default, positive=key == "tick")
                    for key, default in SIM_SETTINGS.items()}
        if settings["low_limit"] > settings["high_limit"]:
            located = spec.sim["low_limit"] if "low_limit" in spec.sim else spec.sim["high_limit"]
            raise ConfigError(located.file, located.line, None,
                              f"device {spec.name}: low_limit is above high_limit")
        return cls(spec, settings)

    # -- Device ----------------------------------------------------------------------------------------
    def record_specs(self) -> list[RecordSpec]:
        return [RecordSpec(self.name, "motor", dict(self.spec.fields), self.spec.file, self.spec.line)]

    def attach(self, db: Database) -> None:
        self.record = db.records[self.name]
        motor.attach(self.record, self, self.axis.reported_position(), self.axis.msta())

    async def run(self) -> None:
        deadline: float | None = None
        while True:
            if deadline is None:
                await self._wake.wait()
            else:
                with trio.move_on_at(deadline):
                    await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            if deadline is not None and now >= deadline:
                self.stats.add(now - deadline)
                self.axis.advance(now)
                self._report(force=False)
                deadline += self.tick
                if deadline <= now:
                    # Fell a whole tick behind: skip the missed updates rather than burst them.
                    self.stats.overruns += 1
                    deadline = now + self.tick
            if self._report_due:
                self._report_due = False
                self._report(force=True)
            if self.axis.done and not self._report_due:
                deadline = None
            elif deadline is None:
                deadline = now + self.tick

    def _report(self, force: bool) -> None:
        status = (self.axis.reported_position(), self.axis.msta())
        if not force and status == self._last_report:
            return
        self._last_report = status
        motor.report(self.record, status[0], status[1], self.axis.velocity)

    def _soon(self) -> None:
        """Report the status at once, from the device task (never inside the record's processing)."""
        self._report_due = True
        self._wake.set()

    # -- MotorDriver (the record's commands) ----------------------------------------------------------
    def move(self, position: float, velocity: float, base_velocity: float, acceleration: float) -> None:
        if not self.axis.move(trio.current_time(), position, velocity, acceleration):
            log.info("%s: move to %g refused at a hard limit", self.name, position)
        self._soon()

    def move_velocity(self, velocity: float, acceleration: float) -> None:
        if not self.axis.jog(trio.current_time(), velocity, acceleration):
            log.info("%s: jog refused at a hard limit", self.name)
        self._soon()

    def home(self, forward: bool, velocity: float, base_velocity: float, acceleration: float) -> None:
        if not self.axis.home(trio.current_time(), forward, velocity, acceleration):
            log.info("%s: home search refused at a hard limit", self.name)
        self._soon()

    def stop(self) -> None:
        self.axis.stop(trio.current_time())
        self._wake.set()

    def set_position(self, position: float) -> None:
        self.axis.set_position(trio.current_time(), position)

    def request_status(self) -> None:
        self._soon()

"""Simulated devices: what a ``devices:`` entry of an IOC declaration builds.

A device contributes records (as :class:`~ioc.config.RecordSpec`, so that they are validated and linked
like any other), is attached to its records once they exist (the moment device support's init_record
runs in the C IOC), and then runs as one task of the database until the IOC shuts down.

Device types: ``motorsim`` (one simulated motor axis serving a motor record, :mod:`ioc.devices.motorsim`)
and ``motorutil`` (the motor module's motorUtil: ``alldone``, ``allstop``, ``moving`` for every motor).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ioc.config import ConfigError, DeviceSpec, Located, RecordSpec

if TYPE_CHECKING:
    from ioc.database import Database

__all__ = ["Device", "DEVICE_TYPES", "make_device", "sim_number"]


class Device(Protocol):
    def record_specs(self) -> list[RecordSpec]:
        """The records this device serves (built and validated by the database)."""

    def attach(self, db: Database) -> None:
        """Bind to the built records, before their init_record runs."""

    async def run(self) -> None:
        """The device's task; runs until cancelled."""


def _motorsim(spec: DeviceSpec) -> Device:
    from .motorsim import MotorSim
    return MotorSim.from_spec(spec)


def _motorutil(spec: DeviceSpec) -> Device:
    from .motorutil import MotorUtil
    return MotorUtil.from_spec(spec)


DEVICE_TYPES: dict[str, Callable[[DeviceSpec], Device]] = {
    "motorsim": _motorsim,
    "motorutil": _motorutil,
}


def make_device(spec: DeviceSpec) -> Device:
    """The device a ``devices:`` entry declares; ConfigError for an unknown type or a bad setting."""
    factory = DEVICE_TYPES.get(spec.type)
    if factory is None:
        raise ConfigError(spec.file, spec.line, None,
                          f"device {spec.name}: unknown device type {spec.type!r} "
                          f"(known: {', '.join(sorted(DEVICE_TYPES))})")
    return factory(spec)


def sim_number(spec: DeviceSpec, key: str, default: float, *, positive: bool = False) -> float:
    """The number a ``sim:`` setting holds, or ``default``; ConfigError at its line if it is not one."""
    located: Located | None = spec.sim.get(key)
    if located is None:
        return default
    try:
        value = float(str(located.value))
    except ValueError:
        raise ConfigError(located.file, located.line, None,
                          f"device {spec.name}: sim setting {key!r} must be a number, "
                          f"not {located.value!r}") from None
    if positive and not value > 0:
        raise ConfigError(located.file, located.line, None,
                          f"device {spec.name}: sim setting {key!r} must be positive")
    return value

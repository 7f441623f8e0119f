"""event: a record that posts the event its VAL names each time it processes (eventRecord.c).

The records with SCAN "Event" and that event in EVNT are then processed (see ioc.scan). VAL is read
through INP (or SIOL in simulation) as a string; a put to VAL changes the event without processing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    SIMM_NO,
    SIMM_YES,
    constant,
    get_simm,
    init_simm,
    require_soft_device,
    simulate_now,
    simulation_fields,
    special_simm,
    stamp_simm,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

EVENT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.STRING, size=40, special=SPC.MOD),
    Field("EPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("INP", DBF.INLINK),
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.STRING, size=40)),
)

_DEVICES = ("Soft Channel",)


def init_event(rec: Record) -> None:
    require_soft_device(rec, _DEVICES)
    init_simm(rec)
    sval = constant(rec, "SIOL", DBF.STRING)
    if sval is not None:
        rec.SVAL = sval[:39]
    val = constant(rec, "INP", DBF.STRING)
    if val is not None:
        rec.VAL = val[:39]
        rec.UDF = 0


def _read_event(rec: Record) -> int | None:
    """readValue: VAL from INP, or from SIOL in simulation (none of it stops the event's post); -1 when
    the read failed."""
    if not rec.PACT:
        get_simm(rec)
    simm = rec.SIMM
    if simm == SIMM_NO:
        if rec.link_is_constant("INP"):
            return None
        value = rec.get_link("INP", DBF.STRING)
        if value is None:
            return -1
        rec.VAL = value
        rec.UDF = 0
        return None
    if simm == SIMM_YES:
        rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
        if not simulate_now(rec):
            return None
        rec.PACT = 0
        if not rec.link_is_constant("SIOL"):
            value = rec.get_link("SIOL", DBF.STRING)
            if value is None:
                return -1
            rec.SVAL = value
        rec.VAL = rec.SVAL
        rec.UDF = 0
        return None
    rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
    return -1


def process_event(rec: Record) -> int | None:
    pact = rec.PACT
    status = _read_event(rec)
    if rec.PACT and not pact:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    rec.db.post_event(rec.VAL)
    stamp_simm(rec, siol=True)
    # every processing posts VAL, changed or not
    rec.post("VAL", alarms.reset_alarms(rec) | DBE_VALUE)
    rec.fwd_link()
    rec.PACT = 0
    return status


def special_event(rec: Record, fld: Field, after: bool) -> None:
    # VAL's SPC_MOD only re-reads the event name, which process() takes from VAL each time
    special_simm(rec, fld, after)


register(RecordType(
    name="event",
    fields=EVENT_FIELDS,
    process=process_event,
    init=init_event,
    devices=_DEVICES,
    special=special_event,
))

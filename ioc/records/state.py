"""state: a 20-character string VAL that processing posts when it changed (stateRecord.c; deprecated in
EPICS Base, which points to stringin instead)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE
from ioc import alarms

from . import RecordType, register
from .common import COMMON_FIELDS
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

log = logging.getLogger(__name__)

STATE_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.STRING, size=20, pp=True),
    Field("OVAL", DBF.STRING, size=20, special=SPC.NOMOD),
)


def init_state(rec: Record) -> None:
    log.warning("record %s uses the deprecated record type \"state\" (EPICS Base suggests stringin)",
                rec.NAME)


def process_state(rec: Record) -> None:
    rec.UDF = 0
    rec.PACT = 1
    rec.stamp()
    mask = alarms.reset_alarms(rec)
    if rec.OVAL != rec.VAL:
        rec.post("VAL", mask | DBE_VALUE | DBE_LOG)
        rec.OVAL = rec.VAL
    rec.fwd_link()
    rec.PACT = 0


register(RecordType(
    name="state",
    fields=STATE_FIELDS,
    process=process_state,
    init=init_state,
    devices=(),
))

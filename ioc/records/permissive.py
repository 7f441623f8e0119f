"""permissive: a handshake between a client and a server program, VAL the button and WFLG the wait flag,
LABL the button's label; processing posts whichever of the two changed (permissiveRecord.c)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE
from ioc import alarms

from . import RecordType, register
from .common import COMMON_FIELDS
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

PERMISSIVE_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.USHORT, pp=True),
    Field("WFLG", DBF.USHORT, pp=True),
    Field("LABL", DBF.STRING, size=20, pp=True),
    Field("OVAL", DBF.USHORT, special=SPC.NOMOD),
    Field("OFLG", DBF.USHORT, special=SPC.NOMOD),
)


def process_permissive(rec: Record) -> None:
    rec.PACT = 1
    rec.UDF = 0
    rec.stamp()
    _monitor(rec)
    rec.fwd_link()
    rec.PACT = 0


def _monitor(rec: Record) -> None:
    mask = alarms.reset_alarms(rec) | DBE_VALUE | DBE_LOG
    changed_val = rec.OVAL != rec.VAL
    changed_flag = rec.OFLG != rec.WFLG
    rec.OVAL, rec.OFLG = rec.VAL, rec.WFLG
    # only a changed VAL or WFLG carries a new alarm state to its monitors
    if changed_val:
        rec.post("VAL", mask)
    if changed_flag:
        rec.post("WFLG", mask)


register(RecordType(
    name="permissive",
    fields=PERMISSIVE_FIELDS,
    process=process_permissive,
    devices=(),
))

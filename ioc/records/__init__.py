"""Record types: field tables (data) and the per-type behaviour the database calls (record support).

A record type is a :class:`RecordType`: its field table plus the hooks of EPICS record support (``rset``):
``init`` (init_record), ``process``, ``special``, and the metadata hooks a CA read asks for (units,
precision, display/control/alarm limits, enum strings). A hook left as ``None`` behaves as a NULL rset
entry does in the C IOC (see ``ioc.database``). New types (the motor record, ...) register themselves with
:func:`register`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

__all__ = ["DBF", "SPC", "Field", "RecordType", "RECORD_TYPES", "register", "record_type"]

Limits = tuple[float, float]                       # (upper, lower), as dbr_grDouble/ctrlDouble order them
AlarmLimits = tuple[float, float, float, float]    # (upper_alarm, upper_warning, lower_warning, lower_alarm)


@dataclass(frozen=True)
class RecordType:
    """One record type: what ``recordtype(x)`` declares plus its record support functions."""
    name: str
    fields: tuple[Field, ...]
    # process: None (or 0) on success, else a failure status that a CA put reports (dbPutField)
    process: Callable[[Record], int | None]
    # init_record (pass 1): runs once at load, after links are resolved; loads constant links etc.
    init: Callable[[Record], None] | None = None
    # DTYP choices (device support names); the first is the default.
    devices: tuple[str, ...] = ("Soft Channel",)
    # special(rec, field, after): called around a put to a field with SPC_MOD/LINCONV/CALC/RESET.
    # Raising CAError on the ``after=False`` call refuses the put.
    special: Callable[[Record, Field, bool], None] | None = None
    # cvt_dbaddr: (storage type, element count) of a field whose type the record decides (arrays, mbbo
    # VAL), or None to keep the table's type.
    cvt_dbaddr: Callable[[Record, Field], tuple[DBF, int] | None] | None = None
    # Whether cvt_dbaddr makes a field SPC_NOMOD for this record (compress VAL in LIFO mode): rsrv then
    # reports the channel unwritable. Asked once per channel, when a client first names the field.
    read_only: Callable[[Record, Field], bool] | None = None
    # Array fields (SPC_DBADDR): current element count (get_array_info) and the hook after a put
    # of n elements (put_array_info).
    get_array_count: Callable[[Record, Field], int] | None = None
    put_array_count: Callable[[Record, Field, int], None] | None = None
    # get_array_info of a STRING field that cvt_dbaddr keeps scalar (lsi/lso VAL and OVAL): how many
    # elements a read serves, whether as a string (at most 1) or as chars through "$" (at most SIZV).
    string_count: Callable[[Record, Field], int] | None = None
    # Metadata hooks of a CA read (get_units, get_precision, get_graphic_double, ...).
    units: Callable[[Record, Field], str] | None = None
    # get_precision: None leaves the caller's starting precision (a record that only knows some fields)
    precision: Callable[[Record, Field], int | None] | None = None
    graphic: Callable[[Record, Field], Limits | None] | None = None
    control: Callable[[Record, Field], Limits | None] | None = None
    alarm: Callable[[Record, Field], AlarmLimits | None] | None = None
    # get_enum_strs: the states a DBR_GR/CTRL_ENUM lists (their count is what clients see as no_str).
    enum_strs: Callable[[Record, Field], tuple[str, ...]] | None = None
    # get_enum_str: (state table, text for an index outside it) for reading an ENUM field as a string.
    enum_table: Callable[[Record, Field], tuple[tuple[str, ...], str]] | None = None
    # put_enum_str: the strings a put of text matches, by index (else a decimal index below the
    # enum_strs count is accepted).
    put_enum_table: Callable[[Record, Field], tuple[str, ...]] | None = None
    # Started once per record when the database starts running (iocRun): timers that init_record
    # requests (the histogram's SDEL watchdog), which cannot run before then.
    start: Callable[[Record], None] | None = None
    # Extra per-record state (not fields) the type keeps, with its initial value.
    state: dict[str, Any] = field(default_factory=dict)
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)
    link_fields: tuple[Field, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})
        object.__setattr__(self, "link_fields", tuple(f for f in self.fields if f.is_link))

    def links_here(self, field_name: str) -> bool:
        """Whether a link naming field ``field_name`` (without "$") of a record of this type is a database
        link: dbDbInitLink finds the field (RTYP, or one with storage: a NOACCESS field only when
        cvt_dbaddr gives it some). Otherwise softIoc makes it a CA link, which no server answers."""
        if field_name == "RTYP":
            return True
        fld = self.by_name.get(field_name)
        return fld is not None and (fld.dbf is not DBF.NOACCESS or self.cvt_dbaddr is not None)


RECORD_TYPES: dict[str, RecordType] = {}


def register(rtype: RecordType) -> RecordType:
    RECORD_TYPES[rtype.name] = rtype
    return rtype


_builtin_loaded = False


def record_type(name: str) -> RecordType | None:
    if not _builtin_loaded:
        _load_builtin()
    return RECORD_TYPES.get(name)


def _load_builtin() -> None:
    # Importing a family module registers its types. The import is deferred because the families use
    # ioc.alarms and friends, which import ioc.database's side of this package.
    global _builtin_loaded
    from . import (  # noqa: F401
        aa,
        analog,
        binary,
        calc,
        calcout,
        compress,
        event,
        fanout,
        histogram,
        int64,
        long,
        lstring,
        mbb,
        mbbdirect,
        motor,
        permissive,
        printf,
        sel,
        seq,
        state,
        string,
        subarray,
        waveform,
    )
    _builtin_loaded = True

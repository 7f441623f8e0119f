"""The record database: record instances, name -> channel resolution, puts, processing and posting.

This is the part of the C IOC that dbAccess.c, dbLink.c, dbEvent.c and rsrv's channel layer make up:

* :class:`Record` holds one record's fields as attributes (unset fields fall back to the type's defaults,
  so 100,000 records cost little) and offers record support the recGbl-style helpers (post, stamp,
  links, forward link).
* :class:`Database` builds records from an :class:`~ioc.config.IocConfig`, validates them, resolves
  links, runs PINI and periodic scans, and implements dbProcess / dbPutField / dbPut.
* :class:`FieldChannel` is what the CA server serves for ``REC.FIELD``: native type, element count,
  access rights, cached encoded reads, writes and subscriptions.
"""
from __future__ import annotations

import collections
import gc
import itertools
import logging
import math
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import trio

from caproto.constants import (
    DBE_ALARM,
    DBE_LOG,
    DBE_PROPERTY,
    DBE_VALUE,
    ECA,
    EPICS_EPOCH_OFFSET,
    MAX_ENUM_STATES,
    MAX_STRING_SIZE,
    AccessRights,
    AlarmSeverity,
    AlarmStatus,
)
from caproto.convert import (
    chars_to_string,
    convert_values,
    parse_double,
    parse_integer,
    plain_decimal_bytes,
    string_to_chars,
    values_for_put,
)
from caproto.dbr import (
    ChannelType,
    Metadata,
    decode_payload,
    decode_strings,
    encode_payload,
    family,
    native_type,
    promote,
    scalar_packer,
)
from caproto.errors import CAError

from . import alarms, scan
from .config import ConfigError, IocConfig, Located, RecordSpec
from .filters import FilteredChannel, FilterError, parse_suffix, split_field
from .links import Link, LinkError, Process, parse_link
from .records import RecordType, record_type
from .records.fields import (
    DBF,
    DBF_DTYPES,
    INTEGER_RANGE,
    LINK_TYPES,
    NATIVE_DBR,
    SPC,
    Field,
    FieldValueError,
    max_range,
)
from .records.menus import MENUS

if TYPE_CHECKING:
    from .devices import Device

log = logging.getLogger(__name__)

__all__ = ["Database", "FieldChannel", "Record", "Completion", "ProcessingFailed", "FieldValueError",
           "DBF_DTYPES"]

_FLOAT_DBFS = frozenset({DBF.FLOAT, DBF.DOUBLE})
_ENUM_DBFS = frozenset({DBF.ENUM, DBF.MENU, DBF.DEVICE})
# Links that the C IOC makes Channel Access links (dbCa), even to a record of the same IOC.
_CA_LINKS = frozenset({Process.CA, Process.CP, Process.CPP})
# dbPut's special() cases, as module constants: an Enum class's attribute read is slow in CPython 3.11
_SPC_SCAN, _SPC_DBADDR = SPC.SCAN, SPC.DBADDR
_SPC_HOOKED = (SPC.MOD, SPC.RESET, SPC.LINCONV, SPC.CALC)
# A link write of one value that needs no conversion: the field's DBF and the Python type it stores
_UNCONVERTED_SCALARS = {DBF.DOUBLE: float, DBF.LONG: int}
# Record types whose soft device support returns dbPutLink's status from its write, which process()
# returns: a put processing one whose OUT write fails is answered ECA_PUTFAIL. The soft supports of
# mbbo, longout and int64out return 0 (their "Async Soft Channel" ones the status); calcout, seq, fanout
# and dfanout return 0 whatever happens.
# Link text as a CHAR array ("REC.INP$"): PVLINK_STRINGSZ.
LINK_STRING_SIZE = 1024
# dbProcess: how many times a busy record may be asked to process before it raises SCAN/INVALID.
MAX_LOCK = 10
PASSIVE = scan.PASSIVE
# An IntEnum member costs a class-attribute lookup (about 100 ns) per use: the hot paths use plain ints.
_DBR_STRING = int(ChannelType.STRING)
_time_ns = time.time_ns
# Reads that _encode_scalar answers: for a scalar field of these DBF types, its own DBR type in the plain,
# STS and TIME forms (the value needs no conversion, the metadata is the record's STAT, SEVR and TIME).
_PLAIN, _STS, _TIME = 0, 1, 2
_FAST_READS: dict[DBF, dict[int, tuple[Callable[..., bytes], int]]] = {
    dbf: {int(promote(dbr, family_name)): (scalar_packer(promote(dbr, family_name)), kind)
          for family_name, kind in (("plain", _PLAIN), ("sts", _STS), ("time", _TIME))}
    for dbf, dbr in ((DBF.DOUBLE, ChannelType.DOUBLE), (DBF.LONG, ChannelType.LONG),
                     (DBF.SHORT, ChannelType.SHORT), (DBF.USHORT, ChannelType.LONG),
                     (DBF.ENUM, ChannelType.ENUM), (DBF.MENU, ChannelType.ENUM))}
_NO_FAST_READS: dict[int, tuple[Callable[..., bytes], int]] = {}
_UNBOUNDED = 1 << 16     # a string size no number's text reaches
_NAN4 = (math.nan, math.nan, math.nan, math.nan)
# RTYP is not a field of the table but a channel attribute (SPC_ATTRIBUTE) giving the record type.
_RTYP = Field("RTYP", DBF.STRING, size=40)


def epics_now() -> tuple[int, int]:
    """The current time as (seconds since the EPICS epoch, nanoseconds)."""
    ns = time.time_ns()
    secs, nsec = divmod(ns, 1_000_000_000)
    return secs - EPICS_EPOCH_OFFSET, nsec


# --- field values from configuration text (dbPutString) -------------------------------------------------

def parse_field_value(rtype: RecordType, fld: Field, raw: object, strict: bool = True) -> object:
    """The stored value for ``raw`` (str/int/float from a config file) in field ``fld``.

    Raises ValueError with a message naming what was expected.
    """
    dbf = fld.dbf
    if dbf in _FLOAT_DBFS and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    text = raw if isinstance(raw, str) else repr(raw) if isinstance(raw, float) else str(raw)
    if dbf is DBF.STRING:
        if len(text.encode("utf-8", "surrogateescape")) >= fld.size:
            raise ValueError(f"string {text!r} is longer than {fld.size - 1} characters")
        return text
    if dbf in LINK_TYPES:
        return parse_link(text, strict).canonical(forward=dbf is DBF.FWDLINK)
    if dbf is DBF.MENU:
        choices = MENUS[fld.menu]
        if text in choices:
            return choices.index(text)
        index = _parse_int(text, 0, 65535)
        if index is None:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return index
    if dbf is DBF.DEVICE:
        if text in rtype.devices:
            return rtype.devices.index(text)
        raise ValueError(f"device support {text!r} is not available for {rtype.name} "
                         f"(choices: {', '.join(rtype.devices)})")
    if dbf in _FLOAT_DBFS:
        if text.strip() == "":
            return 0.0
        try:
            return parse_double(text, allow_units=False)    # epicsParseFloat64: hex, inf and nan too
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if dbf is DBF.ENUM:
        index = _parse_int(text, 0, 65535, wrap=not strict)
        if index is None:
            # A state name: resolved once all fields (ZNAM, ZRST, ...) are set.
            return _StateName(text)
        return index
    if dbf in INTEGER_RANGE:
        lower, upper = INTEGER_RANGE[dbf]
        value = _parse_int(text, lower, upper, wrap=not strict)
        if value is None:
            raise ValueError(f"{text!r} is not an integer in [{lower}, {upper}]")
        return value
    raise ValueError(f"field {fld.name} cannot be set")


_UNPARSED = object()
# Fields whose CA native type holds their values exactly: a put of that type stores the number as sent.
# A scalar put of any of these CA types into a DOUBLE field converts exactly (float(x)), so it needs no
# conversion rules: catime and most clients put DBR_FLOAT/INT/LONG/CHAR into an ai/ao VAL.
def _as_float(unpack: Callable[[bytes], tuple]) -> Callable[[bytes], tuple]:
    def unpack_float(payload: bytes) -> tuple[float]:
        return (float(unpack(payload)[0]),)
    return unpack_float


_subscriber_keys = itertools.count()


# Record internals with class-level defaults, given to the instance by _warm_up.
_RECORD_INTERNALS = ("TIME", "_time_last", "_gen", "_chans", "_links", "_waiters", "_in_chain",
                     "_fwd_link_pending", "_notify_queue")


def _warm_up(rec: Record) -> None:
    """Copy the class-level defaults of every field into the record's instance dict.

    Records keep only the fields a configuration set (memory: most of 100,000 records never process),
    the rest read from their class. But an attribute that misses the instance dict takes CPython's slow
    path on every read, and processing reads dozens: a record that processes is given all of them once,
    which halves the cost of a CA put."""
    attrs = rec.__dict__
    for name, value in rec._warm_defaults.items():
        if name not in attrs:
            attrs[name] = value

# DBR types that db_access's dbChannel_put has no case for (TIME_STRING: it names DBR_TIME, an option
# bit, instead of a type, so that put always fails in the C IOC).
_UNPUTTABLE = frozenset({ChannelType.STSACK_STRING, ChannelType.CLASS_NAME, ChannelType.TIME_STRING})

# A DOUBLE field stores floats whatever numeric type the put carried.
_TO_DOUBLE_UNPACK: dict[int, Callable[[bytes], tuple]] = {
    ChannelType.DOUBLE: struct.Struct(">d").unpack_from,
    ChannelType.FLOAT: struct.Struct(">f").unpack_from,
    ChannelType.LONG: _as_float(struct.Struct(">i").unpack_from),
    ChannelType.INT: _as_float(struct.Struct(">h").unpack_from),
    ChannelType.CHAR: _as_float(struct.Struct(">B").unpack_from),
}

# special kinds that put() must handle (scan lists, record support's special())
# the masks as plain ints: IntFlag's | and & are Python calls, and subscribers test masks on every post
_VALUE_LOG = int(DBE_VALUE | DBE_LOG)
_PROPERTY = int(DBE_PROPERTY)
_SPECIAL_PUT = frozenset({SPC.SCAN, SPC.MOD, SPC.RESET, SPC.LINCONV, SPC.CALC})

_SCALAR_UNPACK: dict[DBF, Callable[[bytes], tuple]] = {
    DBF.DOUBLE: struct.Struct(">d").unpack_from,
    DBF.FLOAT: struct.Struct(">f").unpack_from,
    DBF.LONG: struct.Struct(">i").unpack_from,
    DBF.SHORT: struct.Struct(">h").unpack_from,
    DBF.MENU: struct.Struct(">H").unpack_from,
    DBF.ENUM: struct.Struct(">H").unpack_from,
}


def _link_text_as(source: Record, sfield: Field, dbf: DBF, count: int, long_string: bool) -> Any:
    """A link field read through a DB link. Only its "$" form reads: dbGet's getLinkValue gives the
    link's text as a DBR_STRING (39 characters), as chars up to its NUL (DBR_CHAR/UCHAR; a scalar read
    gets just the NUL), NaN as a DBR_DOUBLE, and nothing else. Without "$" the link is a scalar of a
    link type, which dbDbGetValue's conversions do not have: the read fails."""
    if not long_string:
        raise CAError(ECA.BADTYPE, f"{source.NAME}.{sfield.name} is a link field")
    text = getattr(source, sfield.name)
    if dbf is DBF.STRING:
        value = chars_to_string(string_to_chars(text, MAX_STRING_SIZE))
        return value if count == 1 else [value]
    if dbf is DBF.DOUBLE:
        return math.nan if count == 1 else np.array([math.nan])
    if dbf is DBF.CHAR or dbf is DBF.UCHAR:
        chars = string_to_chars(text, max(count, 1))
        if count == 1:
            return 0
        return chars[:int(np.flatnonzero(chars == 0)[0]) + 1].astype(DBF_DTYPES[dbf])
    raise CAError(ECA.BADTYPE, f"{source.NAME}.{sfield.name}$ cannot be read as {dbf.name}")


def _is_yaml(file: object) -> bool:
    """Whether a configuration file is YAML (checked strictly) rather than an EPICS .db file."""
    return str(file).endswith((".yaml", ".yml"))


def _sized_field(rec: Record, fld: Field) -> Field:
    """``fld`` as ``rec`` has it now: a link resolved before the record initialised names the field of
    its type's table, and a record that sizes its own fields (lsi/lso VAL) has replaced it by then."""
    return rec.rtype.by_name.get(fld.name, fld) if fld.dbf is DBF.NOACCESS else fld


class _StateName(str):
    """An ENUM field given as a state string in the config, resolved after the record is built."""


def _parse_int(text: str, lower: int, upper: int, wrap: bool = False) -> int | None:
    """A configured integer as dbPutStringNum reads it: C's prefixes (0x hex, 0 octal), the empty text
    as 0, None when it is no integer. ``wrap`` (a .db file, as softIoc's lax conversion): a number out of
    [lower, upper] is cast into it, two's complement; otherwise it is refused."""
    if text.strip() == "":
        return 0
    try:
        value = parse_integer(text, np.int64 if lower < 0 else np.uint64, allow_units=False, base=0)
    except ValueError:
        try:
            number = parse_double(text, allow_units=False)      # YAML's 2.0 or 1e3
        except ValueError:
            return None
        if not number.is_integer():
            return None
        value = int(number)
    if wrap:
        return (value - lower) % (upper - lower + 1) + lower
    return value if lower <= value <= upper else None


def _default_value(rtype: RecordType, fld: Field) -> object:
    if fld.dbf is DBF.NOACCESS:
        return None
    if fld.dbf is DBF.STRING or fld.dbf in LINK_TYPES:
        return fld.initial
    if not fld.initial:
        return 0.0 if fld.dbf in _FLOAT_DBFS else 0
    return parse_field_value(rtype, fld, fld.initial)


# --- records ---------------------------------------------------------------------------------------------

class Record:
    """One record. Fields are attributes named as in EPICS (``rec.VAL``, ``rec.HIHI``)."""

    rtype: ClassVar[RecordType]
    db: ClassVar[Database]
    # Per-instance internals, with class-level defaults so that records stay small.
    TIME: tuple[int, int] = (0, 0)
    _time_last: tuple[int, int] = (0, 0)
    _gen: int = 0
    _chans: dict[str, list[FieldChannel]] | None = None
    _links: dict[str, tuple[Link, Record | None, Field | None]] = {}
    # STRING field name -> (its text, the longer text a number put wrote): see Database._keep_overrun
    _overruns: dict[str, tuple[str, str]] = {}
    _waiters: list[trio.Event] | None = None
    _in_chain: bool = False     # being processed further up the current (synchronous) call chain
    # Set by record support whose processing goes on after process() returns without PACT (the motor
    # record while the motor moves): a put-callback then completes at the record's fwd_link().
    _fwd_link_pending: bool = False
    # Put-callbacks waiting for this busy record, in arrival order (dbNotify's restart list).
    _notify_queue: collections.deque[DeferredPut] | None = None
    # False until the record first processes; then every field has a value in the instance dict (see
    # Database._warm_up).
    _warm: bool = False
    _warm_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str) -> None:
        self.NAME = name

    def __repr__(self) -> str:
        return f"<{self.rtype.name} {self.NAME}>"

    # -- posting -------------------------------------------------------------------------------------
    def post(self, field: str, mask: int) -> None:
        """db_post_events for one field: every channel of it whose subscribers want ``mask``."""
        self._gen += 1
        chans = self._chans
        if chans is not None:
            for chan in chans.get(field, ()):
                if chan._subscribers:
                    chan.notify(mask)

    def post_all(self, mask: int) -> None:
        """db_post_events(rec, NULL, mask): every channel of the record (DBE_PROPERTY, DBE_ALARM)."""
        self._gen += 1
        if self._chans is None:
            return
        channels = [chan for chans in self._chans.values() for chan in chans if chan._subscribers]
        if len(channels) == 1:
            channels[0].notify(mask)
            return
        # db_post_events walks the record's subscriptions in the order they were made, whichever field
        # each watches (subscriber keys grow with time)
        subscribers = sorted((key, callback, select) for chan in channels
                             for key, (callback, select) in chan._subscribers.items())
        for _, callback, select in subscribers:
            if mask & select:
                callback(mask)

    def touch(self) -> None:
        """Mark the record changed without a post (cached reads are stale)."""
        self._gen += 1

    # -- record support helpers ----------------------------------------------------------------------
    def stamp(self) -> None:
        """recGblGetTimeStamp: TIME := now when TSE is 0; -2 (device time) leaves it to the device."""
        self._time_last = self.TIME
        if self._links and (entry := self._links.get("TSEL")) is not None:
            link, source, sfield = entry
            if source is None:
                if link.is_pv:
                    alarms.link_alarm(self, "TSEL")     # a link that never connects
            elif sfield is None:        # TSEL names the source's TIME: share its timestamp
                self.TIME = source.TIME
                return
            else:
                tse = self.db.read_link(self, "TSEL", link, source, sfield, DBF.SHORT, 1)
                if tse is not None:
                    self.TSE = tse
        tse = self.TSE
        if not tse:
            secs, nsec = divmod(_time_ns(), 1_000_000_000)     # epics_now(), inline: every processing stamps
            self.TIME = (secs - EPICS_EPOCH_OFFSET, nsec)
        elif tse != -2:
            # Any other TSE asks generalTime for an event time, and a softIoc has no event provider
            # (not even for -1, best time): TIME stays as it was.
            log.error("recGblGetTimeStampSimm: epicsTimeGetEvent failed, %s.TSE = %d", self.NAME, tse)

    def time_since_last_process(self) -> float:
        (s1, n1), (s0, n0) = self.TIME, self._time_last
        return (s1 - s0) + (n1 - n0) * 1e-9

    def set_sevr(self, stat: int, sevr: int, message: str = "") -> bool:
        return alarms.set_sevr(self, stat, sevr, message)

    def fwd_link(self) -> None:
        """recGblFwdLink: process the FLNK target, complete put-callbacks, honour RPRO."""
        if self._links and (entry := self._links.get("FLNK")) is not None and entry[1] is not None:
            self.db.scan_passive(self, entry[1])
        if self._waiters:
            for event in self._waiters:
                event.set()
            self._waiters = None
        if self.RPRO:
            self.RPRO = 0
            self.db.scan_once(self)
        self.PUTF = 0

    def link_is_constant(self, name: str) -> bool:
        entry = self._links.get(name)
        return entry is None or entry[0].is_constant

    def get_link(self, name: str, dbf: DBF, count: int = 1) -> Any:
        """dbGetLink: the value through input link ``name`` as ``dbf`` (a list when count > 1).

        Returns None for a constant or empty link (the field keeps its value). A failure raises the
        record's LINK/INVALID alarm and returns None, as dbGetLink does.
        """
        entry = self._links.get(name)
        if entry is None or entry[1] is None:
            if entry is not None and entry[0].is_pv:
                # a PV link whose record is not here: a CA link that never connects (dbCaGetLink)
                alarms.link_alarm(self, name)
            return None
        link, source, sfield = entry
        return self.db.read_link(self, name, link, source, sfield, dbf, count)

    def put_link(self, name: str, dbf: DBF, value: Any) -> int | None:
        """dbPutLink: write ``value`` (of ``dbf``) through output link ``name``; a failure status (the
        put was refused, or a target processed through the link failed) or None. A constant or empty
        link takes the write and succeeds."""
        entry = self._links.get(name)
        if entry is None or entry[1] is None:
            if entry is not None and entry[0].is_pv:
                # a PV link whose record is not here: a CA link that never connects (dbCaPutLink)
                alarms.link_alarm(self, name)
                return -1
            return None
        link, target, tfield = entry
        return self.db.write_link(self, name, link, target, tfield, dbf, value)

    def process(self) -> int | None:
        """Process this record now, as a scan or a device would (dbProcess); its status."""
        return self.db.process(self)


# --- put-callback completion -----------------------------------------------------------------------------

class ProcessingFailed(CAError):
    """A put that was stored, but whose processing returned a failure status (record support's process()
    failed: a link it reads or writes failed, SIMM out of range, ...). dbPutField returns that status, so
    rsrv answers a plain WRITE with an ERROR (ECA_PUTFAIL); a put-callback (dbNotify) ignores it and
    completes normally."""

    def __init__(self, record: str, status: int) -> None:
        super().__init__(ECA.PUTFAIL, f"{record}: processing failed (status {status})")
        self.status = status


class Completion:
    """A put whose processing continues asynchronously; ``await wait()`` returns when it is done."""

    def __init__(self, events: list[trio.Event]) -> None:
        self._events = events

    async def wait(self) -> None:
        for event in self._events:
            await event.wait()


class FailedCompletion(Completion):
    """A put-callback whose put failed but whose record processes asynchronously: it completes with the
    put's failure once that processing is done."""

    def __init__(self, processing: Completion, failure: CAError) -> None:
        super().__init__([])
        self._processing = processing
        self._failure = failure

    async def wait(self) -> None:
        await self._processing.wait()
        raise self._failure


class DeferredPut(Completion):
    """A put-callback to a record that is busy (processing asynchronously, or with put-callbacks queued
    before this one). As dbNotify does, the put itself waits for its turn (and for the record to finish
    processing), then writes and processes, and completes when that processing does."""

    def __init__(self, chan: FieldChannel, data_type: int, count: int, payload: bytes | memoryview) -> None:
        super().__init__([])
        self._put = (chan, data_type, count, bytes(payload))
        self._turn = trio.Event()       # set by the put-callback ahead of this one when it leaves
        rec = chan.record
        if rec._notify_queue is None:
            rec._notify_queue = collections.deque()
        rec._notify_queue.append(self)

    async def wait(self) -> None:
        chan, data_type, count, payload = self._put
        rec = chan.record
        queue = rec._notify_queue
        try:
            while True:
                if queue[0] is not self:
                    await self._turn.wait()
                    self._turn = trio.Event()
                elif rec.PACT or rec._fwd_link_pending:
                    done = trio.Event()             # set when the record's processing completes
                    if rec._waiters is None:
                        rec._waiters = []
                    rec._waiters.append(done)
                    await done.wait()
                else:
                    break
            try:
                completion = chan.write(data_type, count, payload)
            except ProcessingFailed:
                # dbNotify reports only a failed put, not a failed processing; it still waits for a
                # processing that goes on (a motor's move), which a plain put's failure does not return
                completion = rec.db._completion(rec) if rec.PACT or rec._fwd_link_pending else None
            except CAError as failure:
                # dbNotify processes the record all the same, then reports the put's failure
                processing = chan.process_after_failed_notify()
                if processing is None:
                    raise
                completion = FailedCompletion(processing, failure)
            if completion is not None:
                await completion.wait()
        finally:
            queue.remove(self)
            if queue:
                queue[0]._turn.set()




# lsi/lso/printf get_array_info: the length of VAL and OVAL (with the NUL, 0 while never set) is their
# element count for dbGet
_STRING_LENGTH_FIELDS = {("lsi", "VAL"): "LEN", ("lsi", "OVAL"): "OLEN",
                         ("lso", "VAL"): "LEN", ("lso", "OVAL"): "OLEN", ("printf", "VAL"): "LEN"}


# --- channels ----------------------------------------------------------------------------------------------

class FieldChannel:
    """One served PV (``REC.FIELD`` or ``REC.FIELD$``), shared by every client of that name."""

    __slots__ = ("name", "record", "field", "dbf", "native_type", "max_count", "access", "long_string",
                 "_cache", "_gen", "_subscribers", "_array", "_writable", "_unpack", "_direct",
                 "_plain", "_db", "_fname", "_is_val", "_post_on_put", "_process_on_put", "_link",
                 "_text_double", "_fast_reads", "_string_count", "queued_by_reference")

    _CHAR_TYPES: ClassVar[frozenset[int]] = frozenset((ChannelType.CHAR, ChannelType.STS_CHAR,
                                                       ChannelType.TIME_CHAR, ChannelType.GR_CHAR,
                                                       ChannelType.CTRL_CHAR))
    # the forms whose "current length" read of a long string ends at its NUL (measured against softIoc)
    _CHAR_CUT_TYPES: ClassVar[frozenset[int]] = frozenset((ChannelType.CHAR, ChannelType.TIME_CHAR))
    # the posts a subscriber gets when it does not say: all of them
    EVERY_EVENT: ClassVar[int] = int(DBE_VALUE | DBE_LOG | DBE_ALARM | DBE_PROPERTY)

    def __init__(self, name: str, record: Record, fld: Field, long_string: bool = False) -> None:
        self.name = name
        self.record = record
        self.field = fld
        self.long_string = long_string
        self._link = fld.is_link   # read as its text (getLinkValue), with or without "$"
        self._array = False
        rtype = record.rtype
        decided = rtype.cvt_dbaddr(record, fld) if rtype.cvt_dbaddr is not None and not long_string \
            else None
        if long_string:
            self.dbf = DBF.CHAR
            self.native_type = ChannelType.CHAR
            self.max_count = LINK_STRING_SIZE if fld.is_link else fld.size
        elif decided is not None:
            self.dbf, self.max_count = decided
            self.native_type = NATIVE_DBR[self.dbf]
            self._array = fld.special is SPC.DBADDR and rtype.get_array_count is not None
        else:
            self.dbf = fld.dbf
            self.native_type = NATIVE_DBR[fld.dbf]
            self.max_count = 1
        read_only = fld.read_only or (rtype.read_only is not None and rtype.read_only(record, fld))
        self.access = AccessRights.READ if read_only else AccessRights.READ_WRITE
        # dbEvent queues a copy of the posted value only for a one-element field that fits its
        # union native_value (8 bytes: no string, no link, no SPC_DBADDR array); a monitor update of any
        # other field reads the field when it is sent (ioc.tcp.Subscription).
        self.queued_by_reference = (self.max_count != 1 or fld.special is SPC.DBADDR or long_string
                                    or fld.is_link
                                    or (fld.dbf is DBF.STRING and (fld.size or MAX_STRING_SIZE) > 8))
        self._writable = not read_only
        # the served element count of a string the record sizes itself (lsi/lso VAL: LEN)
        self._string_count = rtype.string_count if fld.dbf is DBF.STRING else None
        self._unpack = None if long_string or self._array else _SCALAR_UNPACK.get(self.dbf)
        # a scalar field that a put just stores and posts (no scan list, special() or link handling)
        self._plain = not (long_string or self._array or fld.is_link or fld is _RTYP
                           or fld.special in _SPECIAL_PUT)
        # what put_scalar needs, looked up once
        self._db = record.db
        self._fname = fld.name
        self._is_val = fld.name == "VAL"
        self._post_on_put = not (fld.name == "VAL" and fld.pp)   # a PP VAL posts when processed
        self._process_on_put = fld.pp or fld.name == "PROC"
        # data_type -> unpack for scalar puts stored without conversion rules (none when read-only)
        self._direct: dict[int, Callable[[bytes], tuple]] = {}
        if self._unpack is not None and self._writable:
            if self.dbf is DBF.DOUBLE:
                self._direct = _TO_DOUBLE_UNPACK
            else:
                self._direct = {int(self.native_type): self._unpack}
        # a writable DOUBLE scalar: DBR_STRING puts (caput's default) are parsed on the fast path
        self._text_double = self._writable and self.dbf is DBF.DOUBLE and self._unpack is not None
        scalar = not (long_string or self._array or self._link or fld is _RTYP)
        self._fast_reads = _FAST_READS.get(self.dbf, _NO_FAST_READS) if scalar else _NO_FAST_READS
        self._cache: dict[tuple[int, int], tuple[bytes, int]] = {}
        self._gen = -1
        # keyed so that unsubscribing is O(1): a client may hold thousands of subscriptions on one PV
        self._subscribers: dict[int, tuple[Callable[[int], None], int]] = {}

    def __repr__(self) -> str:
        return f"<FieldChannel {self.name} {self.native_type.name}[{self.max_count}]>"

    # -- reads -----------------------------------------------------------------------------------------
    def read(self, data_type: int, count: int) -> tuple[bytes, int]:
        """(payload, element count) for a READ_NOTIFY/EVENT_ADD of ``data_type``; cached per post."""
        gen = self.record._gen
        if self._gen != gen:
            self._cache.clear()
            self._gen = gen
        key = (data_type, count)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._encode(data_type, count)
        return hit

    def read_metadata(self, data_type: int) -> bytes:
        """The metadata of ``data_type`` without any value (a plain READ of count 0): the payload padded
        to 8. Nothing is converted, so it never fails for a readable type."""
        return bytes(encode_payload(data_type, [], self._metadata(data_type), count=0))

    def logged(self) -> tuple:
        """What dbEvent copies into the event's field log when a field queued by value is posted: the
        value, the alarm status and severity, the time stamp."""
        rec = self.record
        return getattr(rec, self._fname), rec.STAT, rec.SEVR, rec.TIME

    def read_logged(self, data_type: int, count: int, logged: tuple) -> tuple[bytes, int]:
        """(payload, element count) of a monitor update from a field log (``logged()`` at the post), as
        dbGet reads it when the update is sent: the value, status, severity and time stamp as logged,
        the rest (units, precision, limits, enum strings, ACKT/ACKS, and so a value read as text) as
        the record has them now."""
        if logged == self.logged():
            return self.read(data_type, count)      # (nothing changed since: the shared, cached read)
        return self._encode_general(data_type, count, logged)

    def values(self) -> Any:
        """The field's current value sequence in its storage type (numpy array or list of str)."""
        rec, fld = self.record, self.field
        value = rec.rtype.name if fld is _RTYP else getattr(rec, fld.name)
        if self.long_string:
            return string_to_chars(value, self.max_count)
        if fld is _RTYP:
            return [value]
        if self._array:
            n = rec.rtype.get_array_count(rec, fld)
            return value[:n]
        if self.dbf is DBF.STRING or self.dbf in LINK_TYPES:
            return [value]
        return np.array([value], dtype=DBF_DTYPES[self.dbf])

    def link_chars(self, chars: np.ndarray, dbf: DBF, count: int) -> np.ndarray:
        """What dbGet gives a link reading this long-string ("$") channel: the LEN chars of a string the
        record sizes itself (lsi/lso); of a STRING field read as an array of DBR_CHAR, the chars up to
        the first NUL and that NUL, the last one asked for made a NUL."""
        if self._string_count is not None:
            return chars[:self._string_count(self.record, self.field)]
        if dbf is DBF.CHAR and count > 1:
            chars = np.array(chars[:count], copy=True)
            chars[-1] = 0
            return chars[:int(np.flatnonzero(chars == 0)[0]) + 1]
        return chars

    def _encode(self, data_type: int, count: int) -> tuple[bytes, int]:
        fast = self._fast_reads.get(data_type)
        if fast is not None and count <= 1:
            payload = self._encode_scalar(*fast)
            if payload is not None:
                return payload, 1
        return self._encode_general(data_type, count)

    def _encode_scalar(self, pack: Callable[..., bytes], kind: int) -> bytes | None:
        """One number of the field's own type, plain, STS or TIME: packed from the record without
        conversion rules or a Metadata (a monitor update costs this on every post). None when the stored
        value is not one the type holds as it is."""
        rec = self.record
        value = getattr(rec, self._fname)
        try:
            if kind == _PLAIN:
                return pack(value)
            if kind == _STS:
                return pack(rec.STAT, rec.SEVR, value)
            secs, nsec = rec.TIME
            return pack(rec.STAT, rec.SEVR, secs, nsec, value)
        except struct.error:
            return None

    def _encode_general(self, data_type: int, count: int, logged: tuple | None = None) -> tuple[bytes, int]:
        if not 0 <= data_type <= ChannelType.CLASS_NAME or data_type in (
                ChannelType.PUT_ACKT, ChannelType.PUT_ACKS):
            raise CAError(ECA.BADTYPE, f"{self.name}: DBR type {data_type} cannot be read")
        rec = self.record
        if self._link and data_type != ChannelType.CLASS_NAME:
            converted, out_count = self._link_value(data_type, getattr(rec, self.field.name),
                                                    count or self.max_count, count == 0)
            return encode_payload(data_type, converted, self._metadata(data_type), count=out_count), out_count
        if self.field is _RTYP and native_type(data_type) is ChannelType.CHAR:
            # getAttrValue: the type's name copied into as many chars as asked for (the channel's count
            # for "as many as there are": 1, or 40 through RTYP$), cut to leave room for its NUL; asked
            # for as many as there are, the chars up to the NUL are counted
            text = rec.rtype.name.encode()[:(count or self.max_count) - 1] + b"\0"
            out_count = count or len(text)
            return (encode_payload(data_type, np.frombuffer(text, dtype=np.uint8), self._metadata(data_type),
                                   count=out_count), out_count)
        if logged is None:
            values = [rec.rtype.name] if self.field is _RTYP else self.values()
        elif self.dbf is DBF.STRING:
            values = [logged[0]]
        else:
            values = np.array([logged[0]], dtype=DBF_DTYPES[self.dbf])
        available = len(values)
        if self._string_count is not None:
            # dbGet serves at most what get_array_info says: nothing at all while LEN is 0
            served = self._string_count(rec, self.field)
            if served < available:
                available = served
                values = values[:served]
        if 0 < count < available:
            # dbGet converts the elements asked for only: one after them that would not convert (a text
            # out of an ENUM's range, say) does not fail the read
            values = values[:count]
        if self.dbf is DBF.STRING and rec._overruns and native_type(data_type) is not ChannelType.STRING:
            overrun = rec._overruns.get(self.field.name)
            if overrun is not None and overrun[0] == values[0]:
                values = [overrun[1]]   # a number parsed from the field reads on past its end, to the NUL
        if data_type == ChannelType.CLASS_NAME:
            converted: Any = [rec.rtype.name]
        else:
            table, fallback = self._enum_table() if self.native_type is ChannelType.ENUM else ((), None)
            if (available and self.dbf is DBF.ENUM and rec.rtype.enum_table is None
                    and native_type(data_type) is ChannelType.STRING):
                # dbGet names an ENUM through the record's get_enum_str; a waveform of ENUMs has none
                raise CAError(ECA.GETFAIL, f"{self.name}: no enum strings to read as DBR_STRING")
            # the record type's name is text, also through RTYP$ (getAttrValue)
            source_type = ChannelType.STRING if self.field is _RTYP else self.native_type
            converted = convert_values(values, source_type, data_type,
                                       precision=self._precision(for_string=True),
                                       enum_strings=table, enum_fallback=fallback,
                                       string_enum=self.native_type is ChannelType.STRING
                                       and self._read_as_array(available))
        out_count = available if count == 0 else count
        if count == 0 and data_type == ChannelType.CLASS_NAME:
            # dbGet answers DBR_CLASS_NAME without counting elements: rsrv sends the field's capacity
            out_count = self.max_count
        if self.long_string and data_type in self._CHAR_TYPES and self._string_count is None:
            # dbGet of a long string as chars: NUL in the last element asked for; asked for "current
            # length", DBR_CHAR and TIME_CHAR stop after the first NUL, STS/GR/CTRL_CHAR send it all.
            # (Not for a string the record sizes itself: its field is NOACCESS in the record's
            # definition, which dbGet checks; it serves the LEN chars as they are.)
            n = min(out_count, available)
            converted = np.array(converted[:n], copy=True)
            if n:
                converted[n - 1] = 0
            if count == 0 and n and data_type in self._CHAR_CUT_TYPES:
                out_count = int(np.flatnonzero(converted == 0)[0]) + 1
                converted = converted[:out_count]
        return (encode_payload(data_type, converted, self._metadata(data_type, logged), count=out_count),
                out_count)

    def _read_as_array(self, available: int) -> bool:
        """Whether dbGet takes its array path (dbGetConvertRoutine) rather than the one-element fast
        path: get_array_info gave another length than 1."""
        if self._array:
            return available != 1
        length_field = _STRING_LENGTH_FIELDS.get((self.record.rtype.name, self._fname))
        return length_field is not None and getattr(self.record, length_field) != 1

    @staticmethod
    def _link_value(data_type: int, text: str, size: int, current: bool) -> tuple[Any, int]:
        """getLinkValue: (values, element count) of a link field's text read as ``data_type``, in a
        buffer of ``size`` elements; ``current`` when the client asked for the current length."""
        native = native_type(data_type)
        if native is ChannelType.STRING:
            return [chars_to_string(string_to_chars(text, MAX_STRING_SIZE))], 1 if current else size
        if native is ChannelType.DOUBLE:
            # what a CA link's dbCa asks for; a client reads NaN
            return np.array([math.nan]), 1 if current else size
        if native is ChannelType.CHAR:
            chars = string_to_chars(text, size)
            return chars, int(np.flatnonzero(chars == 0)[0]) + 1 if current else size
        raise CAError(ECA.GETFAIL, f"a link field cannot be read as {native.name}")

    def _precision(self, for_string: bool = False) -> int:
        """get_precision for a float field: the record's answer, else what the caller started with
        (getOptions zero-fills the struct; a number-to-string conversion starts from 6 digits)."""
        precision = 6 if for_string else 0
        rtype = self.record.rtype
        if self.dbf in _FLOAT_DBFS and rtype.precision is not None:
            answer = rtype.precision(self.record, self.field)
            if answer is not None:
                precision = answer
        return precision

    def _enum_table(self) -> tuple[tuple[str, ...], str | None]:
        rec, fld = self.record, self.field
        if self.dbf is DBF.MENU:
            return MENUS[fld.menu], None
        if self.dbf is DBF.DEVICE:
            # a record type without device support reads DTYP as an empty string
            return rec.rtype.devices, None if rec.rtype.devices else ""
        if rec.rtype.enum_table is not None:
            return rec.rtype.enum_table(rec, fld)
        return (), None

    def _enum_strings(self) -> tuple[str, ...]:
        rec, fld = self.record, self.field
        if self.dbf is DBF.MENU:
            return MENUS[fld.menu][:MAX_ENUM_STATES]
        if self.dbf is DBF.DEVICE:
            return rec.rtype.devices[:MAX_ENUM_STATES]
        if self.dbf is DBF.ENUM and rec.rtype.enum_strs is not None:
            return rec.rtype.enum_strs(rec, fld)
        return ()

    def _metadata(self, data_type: int, logged: tuple | None = None) -> Metadata | None:
        kind = family(data_type)
        if kind == "plain" and data_type != ChannelType.STSACK_STRING:
            return None
        rec = self.record
        if logged is None:
            status, severity, (secs, nsec) = rec.STAT, rec.SEVR, rec.TIME
        else:
            _, status, severity, (secs, nsec) = logged
        md = Metadata(status=status, severity=severity, secs=secs, nsec=nsec, ackt=rec.ACKT, acks=rec.ACKS)
        if kind in ("gr", "ctrl"):
            self._fill_display(md)
        return md

    def _fill_display(self, md: Metadata) -> None:
        """get_units / get_precision / get_graphic_double / get_control_double / get_alarm_double."""
        rec, fld, rtype = self.record, self.field, self.record.rtype
        if self.native_type is ChannelType.ENUM:
            md.enum_strings = self._enum_strings()
        md.units = rtype.units(rec, fld) if rtype.units is not None else ""
        md.precision = self._precision()
        natural = max_range(fld.dbf if not self._array else self.dbf)
        if rtype.graphic is not None:
            md.upper_disp_limit, md.lower_disp_limit = rtype.graphic(rec, fld) or natural
        if rtype.control is not None:
            md.upper_ctrl_limit, md.lower_ctrl_limit = rtype.control(rec, fld) or natural
        limits = (rtype.alarm(rec, fld) if rtype.alarm is not None else None) or _NAN4
        (md.upper_alarm_limit, md.upper_warning_limit, md.lower_warning_limit,
         md.lower_alarm_limit) = limits

    # -- writes ----------------------------------------------------------------------------------------
    def write(self, data_type: int, count: int, payload: bytes | memoryview,
              notify: bool = False) -> Completion | None:
        """A CA put: decode, convert, store, process if PP; CAError (nothing changed) when refused.

        ``notify``: a put-callback (WRITE_NOTIFY), which waits its turn while the record is busy."""
        if notify:
            rec = self.record
            if (rec.PACT or rec._fwd_link_pending or rec._notify_queue) and self._writable:
                return DeferredPut(self, data_type, count, payload)
        if count == 1:
            unpack = self._direct.get(data_type)
            if unpack is not None:
                # The common case (a scalar of the field's own type, or a number into a DOUBLE) needs no
                # conversion rules.
                try:
                    value = unpack(payload)[0]
                except struct.error:
                    raise CAError(ECA.BADCOUNT, f"{self.name}: payload too short") from None
                if self._plain:
                    return self._db.put_scalar(self, value, notify)
                return self._db.put_field(self, data_type, (value,), converted=True, notify=notify)
            if data_type == _DBR_STRING and self._text_double:
                # text into a DOUBLE scalar (caput's default): parse it here; text that does not parse
                # takes the general path below, which raises the C IOC's error for it.
                text = payload if type(payload) is bytes else bytes(payload)
                end = text.find(0)
                if end < 0:
                    end = min(len(text), MAX_STRING_SIZE)
                if end and plain_decimal_bytes(text, 0, end):
                    value = float(text[:end])
                else:
                    try:
                        value = parse_double(decode_strings(text, 1)[0]) if end else 0.0
                    except ValueError:
                        value = None
                if value is not None:
                    if self._plain:
                        return self._db.put_scalar(self, value, notify)
                    return self._db.put_field(self, data_type, (value,), converted=True, notify=notify)
        if not self._writable:
            raise CAError(ECA.NOWTACCESS, f"{self.name} is read-only")
        if not 0 <= data_type <= ChannelType.CLASS_NAME:
            raise CAError(ECA.BADTYPE, f"{self.name}: DBR type {data_type} cannot be written")
        if data_type in _UNPUTTABLE:
            raise CAError(ECA.PUTFAIL, f"{self.name}: DBR type {data_type} cannot be written")
        try:
            values, _ = decode_payload(data_type, count, payload)
        except Exception as exc:
            raise CAError(ECA.BADCOUNT, f"{self.name}: {exc}") from None
        if ChannelType.STS_STRING <= data_type <= ChannelType.CTRL_DOUBLE:
            data_type = native_type(data_type)    # db_access's dbChannel_put: the value, metadata ignored
        return self.record.db.put_field(self, data_type, values, notify=notify)

    def process_after_failed_notify(self) -> Completion | None:
        """After a put-callback whose put failed: the processing dbNotify does all the same (see
        ``Database.process_after_failed_notify``)."""
        return self._db.process_after_failed_notify(self)

    # -- subscriptions -------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[int], None], mask: int = EVERY_EVENT,
                  first: bool = False) -> Callable[[], None]:
        """``callback(dbe_mask)`` after every post of this field that ``mask`` selects, and with ``first``
        once now (a subscription's first update, whatever the mask); returns the unsubscribe function."""
        key = next(_subscriber_keys)
        self._subscribers[key] = (callback, mask)

        def unsubscribe() -> None:
            self._subscribers.pop(key, None)   # a second call finds nothing: harmless

        if first:
            callback(mask)
        return unsubscribe

    def notify(self, mask: int) -> None:
        for callback, select in list(self._subscribers.values()):
            if mask & select:
                callback(mask)


# --- the database ----------------------------------------------------------------------------------------

class Database:
    """All records of one IOC, and the processing engine."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.aliases: dict[str, str] = {}
        self._channels: dict[str, FieldChannel | None] = {}
        self._classes: dict[str, type[Record]] = {}
        self._scan = scan.ScanLists(self.process)
        self._once: collections.deque[Record] = collections.deque()
        self._once_wakeup = trio.Event()
        self._pini: list[Record] = []
        self._started: list[Record] = []     # records whose type has a start hook
        self._monitored: list[tuple[Record, Link]] = []
        # dbCaRun: CA/CP/CPP links connect only once PINI processing is over (iocBuild, then iocRun)
        self._ca_links_connected = False
        self._nursery: trio.Nursery | None = None
        self._parsed: dict[str, dict[tuple, object]] = {}   # record type -> (field, raw, type) -> value
        self._devices: list[Device] = []
        # PVs that a YAML configuration declares as served by other IOCs (`external_pvs:`)
        self._external_pvs: frozenset[str] = frozenset()

    # -- building -------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: IocConfig, *, skip_unsupported: bool = False) -> Database:
        """Build and validate the records of ``config``; ConfigError names the first bad field."""
        # Building creates millions of long-lived objects: the cyclic collector would rescan them all
        # many times over. Collect what is garbage before (cheap when load_config froze a large config),
        # build with the collector off, and freeze the result out of later collections without a scan:
        # building leaves no reference cycles behind (tests/test_config.py checks), so none is frozen.
        collecting = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            db = cls._build(config, skip_unsupported)
            db._parsed.clear()
            gc.freeze()
            return db
        finally:
            if collecting:
                gc.enable()

    @classmethod
    def _build(cls, config: IocConfig, skip_unsupported: bool) -> Database:
        db = cls()
        specs: list[tuple[Record, RecordSpec]] = []
        skipped: list[str] = []
        if config.devices:
            from .devices import make_device
            db._devices = [make_device(spec) for spec in config.devices]
        device_records = [spec for device in db._devices for spec in device.record_specs()]
        linked: list[tuple[Record, RecordSpec]] = []     # the records that may have links
        db._external_pvs = frozenset(config.external_pvs)
        records, aliases = db.records, db.aliases
        # By type name as written: the record class, its link fields' names, whether any has a default.
        classes: dict[str, tuple[type[Record], frozenset[str], bool]] = {}
        for spec in [*config.records, *device_records]:
            name = spec.name
            if name in records or name in aliases:
                raise ConfigError(spec.file, spec.line, None, f"duplicate name {name!r}")
            known = classes.get(spec.rtype)
            if known is None:
                rtype = record_type(spec.rtype)
                if rtype is None:
                    if skip_unsupported:
                        skipped.append(f"{name} ({spec.rtype})")
                        continue
                    raise ConfigError(spec.file, spec.line, None,
                                      f"record {name}: unsupported record type {spec.rtype!r}")
                known = classes[spec.rtype] = (db._record_class(rtype),
                                               frozenset(f.name for f in rtype.link_fields),
                                               any(f.initial for f in rtype.link_fields))
            record_class, link_names, default_links = known
            rec = records[name] = record_class(name)
            db._set_fields(rec, spec)
            for alias in spec.aliases:
                aliases[alias] = name
            specs.append((rec, spec))
            # Only configured fields and defaults can hold links yet.
            if default_links or not link_names.isdisjoint(spec.fields):
                linked.append((rec, spec))
        if skipped:
            log.warning("skipped records of unsupported types: %s", ", ".join(skipped))
        for rec, spec in linked:
            db._resolve_links(rec, spec)
        for device in db._devices:
            device.attach(db)
        for rec, spec in specs:
            db._init_record(rec, spec)
        return db

    def _record_class(self, rtype: RecordType) -> type[Record]:
        cls = self._classes.get(rtype.name)
        if cls is None:
            attrs: dict[str, Any] = {f.name: _default_value(rtype, f) for f in rtype.fields
                                     if f.dbf is not DBF.NOACCESS}
            attrs.update(rtype.state)
            warm = dict(attrs)
            warm.update((name, getattr(Record, name)) for name in _RECORD_INTERNALS)
            warm["_warm"] = True
            # the record type, its database and record support's process() in the instance dict too:
            # CPython 3.11 specialises neither a class attribute read through an instance nor a method
            # call on a dataclass's field
            warm.update(rtype=rtype, db=self, _process=rtype.process)
            attrs.update(rtype=rtype, db=self, _warm_defaults=warm, _process=rtype.process)
            cls = type(f"{rtype.name}Record", (Record,), attrs)
            self._classes[rtype.name] = cls
        return cls

    def add_record(self, rtype: RecordType, name: str) -> Record:
        rec = self._record_class(rtype)(name)
        self.records[name] = rec
        return rec

    def _set_fields(self, rec: Record, spec: RecordSpec) -> None:
        rtype = rec.rtype
        # Databases repeat the same few values (EGU "V", PREC 2, ...): parse each once per record type.
        parsed = self._parsed.get(rtype.name)
        if parsed is None:
            parsed = self._parsed[rtype.name] = {}
        # Fields are plain instance attributes (no descriptors): stored straight into the instance dict.
        attrs = rec.__dict__
        state_names: list[tuple[Field, _StateName, Located]] = []
        for name, located in spec.fields.items():
            raw = located.value
            key = (name, raw, raw.__class__)        # the class too: 1 and 1.0 read differently
            value = parsed.get(key, _UNPARSED)
            if value is _UNPARSED:
                value = self._parse_field(rtype, spec, name, located)
                if value.__class__ is _StateName:
                    state_names.append((rtype.by_name[name], value, located))
                    continue
                parsed[key] = value
            attrs[name] = value
            if name == "VAL":
                attrs["UDF"] = 0   # dbPutString to VAL clears UDF
        for fld, state, located in state_names:
            table = rtype.enum_table(rec, fld)[0] if rtype.enum_table is not None else ()
            if str(state) not in table:
                raise ConfigError(located.file, located.line, fld.name,
                                  f"record {spec.name}: {str(state)!r} is neither a state of this record "
                                  f"nor an index")
            setattr(rec, fld.name, table.index(str(state)))
            if fld.name == "VAL":
                rec.UDF = 0

    @staticmethod
    def _parse_field(rtype: RecordType, spec: RecordSpec, name: str, located: Located) -> object:
        """The value of one field of ``spec`` as configured; ConfigError if it cannot be set so."""
        fld = rtype.by_name.get(name)
        if fld is None or (fld.dbf is DBF.NOACCESS and rtype.cvt_dbaddr is None):
            raise ConfigError(located.file, located.line, name,
                              f"record {spec.name}: {rtype.name} has no field {name}")
        if fld.dbf is DBF.NOACCESS:
            raise ConfigError(located.file, located.line, name,
                              f"record {spec.name}: field {name} cannot be set in a configuration "
                              f"(use INP with a constant array)")
        if name in ("NAME", "RTYP"):
            raise ConfigError(located.file, located.line, name,
                              f"record {spec.name}: field {name} cannot be set")
        try:
            return parse_field_value(rtype, fld, located.value, strict=_is_yaml(located.file))
        except (ValueError, LinkError) as exc:
            raise ConfigError(located.file, located.line, name, f"record {spec.name}: {exc}") from None

    def _resolve_links(self, rec: Record, spec: RecordSpec) -> None:
        links: dict[str, tuple[Link, Record | None, Field | None]] = {}
        for fld in rec.rtype.link_fields:
            text = getattr(rec, fld.name)
            if not text:
                continue
            located = spec.fields.get(fld.name) or Located(text, spec.file, spec.line)
            # A database file means what it means to softIoc, where a PV not served here is a CA link
            # (to another IOC); a YAML configuration is checked strictly (a typo in a name is an error)
            # unless the link names a PV declared in `external_pvs:` or, naming no record of this IOC,
            # says it is a CA link.
            from_db = not _is_yaml(located.file)
            try:
                link = parse_link(text, strict=not from_db)
                listed = self._is_external(link)
                declared = listed or link.process is Process.CA
                entry = links[fld.name] = self._resolve(fld, link, external=from_db or declared,
                                                        external_field=from_db or listed)
            except (LinkError, ValueError) as exc:
                raise ConfigError(located.file, located.line, fld.name,
                                  f"record {spec.name}: {exc}") from None
            if entry[1] is None and entry[0].is_pv and not declared:
                log.warning("%s:%s: record %s: %s %r names no PV of this IOC: a CA link that never connects",
                            located.file, located.line, spec.name, fld.name, text)
        if links:
            rec._links = links

    def _is_external(self, link: Link) -> bool:
        """Whether ``external_pvs:`` declares the link's PV (as written, or its whole record)."""
        external = self._external_pvs
        if not external:
            return False
        return link.record in external or link.pv in external

    def _resolve(self, fld: Field, link: Link, external: bool = False,
                 external_field: bool | None = None) -> tuple[Link, Record | None, Field | None]:
        """(link, target record, target field); ``external``: a PV this IOC does not serve is a CA link
        that never connects, (link, None, None), instead of an error; ``external_field`` (default:
        ``external``) the same for a field that a record served here cannot be linked to."""
        if link.is_constant:
            return link, None, None     # a forward link too: dbParseLink takes a number anywhere
        name = self.aliases.get(link.record, link.record)
        target = self.records.get(name)
        if target is None and external:
            return link, None, None
        if target is None:
            raise LinkError(f"link {link.text!r}: no record named {link.record!r}")
        field_name = link.field.rstrip("$")
        tfield = _RTYP if field_name == "RTYP" else target.rtype.by_name.get(field_name)
        if fld.name == "TSEL" and field_name == "TIME":
            return link, target, tfield     # TSEL may name a record's TIME: take its timestamp
        if not target.rtype.links_here(field_name):
            if external if external_field is None else external_field:
                return link, None, None
            raise LinkError(f"link {link.text!r}: {target.rtype.name} record {name} has no field "
                            f"{field_name}")
        return link, target, tfield

    def _init_record(self, rec: Record, spec: RecordSpec) -> None:
        # iocInit: a record still undefined starts at its UDF severity (before device init may load a
        # constant and clear UDF, so such a record shows UDF/INVALID until it processes).
        if rec.UDF and rec.STAT == AlarmStatus.UDF:
            rec.SEVR = rec.UDFS
        if rec.rtype.init is not None:
            try:
                rec.rtype.init(rec)
            except FieldValueError as exc:
                located = spec.fields.get(exc.field) or Located(None, spec.file, spec.line)
                raise ConfigError(located.file, located.line, exc.field,
                                  f"record {spec.name}: {exc}") from None
        self._scan.add(rec)
        if rec.rtype.start is not None:
            self._started.append(rec)
        if rec.PINI == 1:
            self._pini.append(rec)
        for name, (link, source, sfield) in rec._links.items():
            if source is not None and link.monitored and rec.rtype.by_name[name].dbf is DBF.INLINK:
                self._monitor_link(rec, link, source, sfield)

    def _monitor_link(self, rec: Record, link: Link, source: Record, sfield: Field) -> None:
        # CP/CPP: a CA monitor (DBE_VALUE|DBE_ALARM) on the source that scans this record once per post.
        chan = self._channel_for(source, sfield, long_string=False)
        cpp = link.process.value == "CPP"
        self._monitored.append((rec, link))

        def on_post(mask: int) -> None:
            if mask & (DBE_VALUE | DBE_ALARM) and (not cpp or rec.SCAN == PASSIVE):
                self.scan_once(rec)

        chan.subscribe(on_post)

    # -- names ------------------------------------------------------------------------------------------
    def pv_names(self) -> list[str]:
        return list(self.records) + list(self.aliases)

    def lookup(self, pv_name: str) -> FieldChannel | None:
        """The channel for "REC", "REC.FIELD", "REC.FIELD$" (None when no such PV); cached.

        A name with channel filters ("REC.FIELD[2:5]", 'REC{"dbnd":{"abs":1}}', see ioc.filters) gets a
        new FilteredChannel each time: filter state belongs to one client's channel, as in the C IOC.
        """
        try:
            return self._channels[pv_name]
        except KeyError:
            pass
        chan = self._resolve_name(pv_name)
        if chan is not None and type(chan) is not FieldChannel:
            return chan     # a FilteredChannel: one per client channel, never shared
        # Cache misses too (bounded): searches for PVs of other IOCs repeat all the time.
        if chan is not None or len(self._channels) < 100_000:
            self._channels[pv_name] = chan
        return chan

    def name_exists(self, pv_name: str) -> bool:
        """Whether a search for ``pv_name`` is answered (dbChannelTest): the record part (up to the first
        dot) names a record or alias and the field part, an identifier, names one of its fields (none
        means VAL). What follows the field name ("$", filters) is not looked at: a search may succeed
        for a name that CREATE_CHAN then refuses."""
        record_name, _, rest = pv_name.partition(".")
        rec = self.records.get(self.aliases.get(record_name, record_name))
        if rec is None:
            return False
        if not rest:
            return "VAL" in rec.rtype.by_name
        field_name = split_field(rest)[0] or "VAL"
        return field_name == "RTYP" or field_name in rec.rtype.by_name

    def _resolve_name(self, pv_name: str) -> FieldChannel | None:
        record_name, _, rest = pv_name.partition(".")
        record_name = self.aliases.get(record_name, record_name)
        rec = self.records.get(record_name)
        if rec is None:
            return None
        # dbFindFieldPart: the field name is an identifier (none means VAL); "$", an array range and
        # JSON filters may follow.
        field_name, suffix = split_field(rest)
        field_name = field_name or "VAL"
        long_string = suffix == "$"
        specs: tuple = ()
        if suffix and not long_string:
            try:
                long_string, specs = parse_suffix(suffix)
            except FilterError as exc:
                log.warning("channel %r not created: %s", pv_name, exc)
                return None
        if specs:
            base = self._resolve_field(rec, field_name, long_string)
            return None if base is None else FilteredChannel(pv_name, base, specs)
        return self._resolve_field(rec, field_name, long_string)

    def _resolve_field(self, rec: Record, field_name: str, long_string: bool) -> FieldChannel | None:
        if field_name == "RTYP":
            return self._channel_for(rec, _RTYP, long_string)
        fld = rec.rtype.by_name.get(field_name)
        if fld is None:
            return None
        if fld.dbf is DBF.NOACCESS and not (rec.rtype.cvt_dbaddr is not None and fld.special is SPC.DBADDR):
            return None
        if long_string and not (fld.dbf is DBF.STRING or fld.is_link):
            return None
        return self._channel_for(rec, fld, long_string)

    def _channel_for(self, rec: Record, fld: Field, long_string: bool) -> FieldChannel:
        chans = rec._chans
        if chans is None:
            chans = rec._chans = {}
        existing = chans.setdefault(fld.name, [])
        for chan in existing:
            if chan.long_string == long_string:
                return chan
        suffix = "$" if long_string else ""
        chan = FieldChannel(f"{rec.NAME}.{fld.name}{suffix}", rec, _sized_field(rec, fld), long_string)
        existing.append(chan)
        return chan

    # -- running --------------------------------------------------------------------------------------
    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """PINI processing, then periodic scans and scan-once requests until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for rec in self._started:
                    rec.rtype.start(rec)
                for rec in sorted(self._pini, key=lambda r: r.PHAS):
                    self.process(rec)
                self._ca_links_connected = True
                # A CP/CPP link's first monitor update (its connection) processes the record once.
                for rec, link in self._monitored:
                    if link.process.value == "CP" or rec.SCAN == PASSIVE:
                        self.scan_once(rec)
                await nursery.start(self._scan.run)
                nursery.start_soon(self._run_once)
                for device in self._devices:
                    nursery.start_soon(device.run)
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``seconds`` (callbackRequestDelayed); dropped unless running."""
        if self._nursery is None:
            log.debug("no running database: delayed callback %r dropped", callback)
            return

        async def later() -> None:
            await trio.sleep(seconds)
            callback()

        self._nursery.start_soon(later)

    def set_scan(self, rec: Record, scan: int) -> None:
        """scanDelete, SCAN := scan, scanAdd, posting nothing (recGblCheckSimm's SSCN swap)."""
        self._scan.remove(rec)
        rec.SCAN = scan
        rec.touch()
        self._scan.add(rec)

    def scan_once(self, rec: Record) -> None:
        """scanOnce: process ``rec`` soon, outside the current processing chain."""
        self._once.append(rec)
        self._once_wakeup.set()

    def post_event(self, event: str | int) -> None:
        """postEvent / post_event: process, soon, the records whose SCAN is Event and whose EVNT names
        ``event`` (a name, or an event number 1..255); see ioc.scan.event_name."""
        self._scan.post_event(scan.event_name(str(event)))

    async def _run_once(self) -> None:
        while True:
            await self._once_wakeup.wait()
            self._once_wakeup = trio.Event()
            # One batch per wakeup, with a checkpoint between batches, so that records re-queueing each
            # other (a CP cycle) share the event loop with everything else instead of spinning.
            batch = list(self._once)
            self._once.clear()
            for rec in batch:
                self.process(rec)
            await trio.sleep(0)

    # -- processing (dbProcess, dbScanPassive) ---------------------------------------------------------
    def process(self, rec: Record) -> int | None:
        """dbProcess: process ``rec`` unless it is busy or disabled. Returns record support's status: None
        (or 0) for success, else the failure status that dbPutField hands to its caller."""
        if not rec._warm:
            _warm_up(rec)
        if rec.PACT:
            if rec.STAT == AlarmStatus.SCAN or rec.SEVR >= AlarmSeverity.INVALID:
                return
            rec.LCNT += 1
            if rec.LCNT <= MAX_LOCK:
                return
            rec.set_sevr(AlarmStatus.SCAN, AlarmSeverity.INVALID, "Async in progress")
            mask = alarms.reset_alarms(rec)
            rec.post("VAL", mask | DBE_VALUE | DBE_LOG)
            return None
        rec.LCNT = 0
        if rec._links and "SDIS" in rec._links:
            disa = rec.get_link("SDIS", DBF.SHORT)
            if disa is not None:
                rec.DISA = disa
            elif rec.DISA == rec.DISV:
                # disabled by the DISA the failed read left: dbProcess returns that read's status
                self._disabled(rec)
                return -1
        if rec.DISA == rec.DISV:
            self._disabled(rec)
            return None
        rec._in_chain = True
        process = rec._process      # read, then called: a method-call form would defeat specialisation
        try:
            status = process(rec)
        except Exception:
            # A bug in record support must not leave the record busy forever or stop the scan task.
            log.exception("processing %s failed", rec.NAME)
            rec.PACT = 0
            status = -1
        finally:
            rec._in_chain = False
        rec._gen += 1
        return status

    def resume(self, rec: Record) -> None:
        """Finish an asynchronous processing: a device whose record set PACT calls this when its work is
        done, and the record's process function runs again to complete (callbackRequestProcessCallback)."""
        rec._gen += 1
        rec._in_chain = True
        try:
            rec.rtype.process(rec)
        finally:
            rec._in_chain = False
        rec._gen += 1

    def _disabled(self, rec: Record) -> None:
        rec.RPRO = 0
        rec.PUTF = 0
        if rec._waiters:
            for event in rec._waiters:
                event.set()
            rec._waiters = None
        if rec.STAT == AlarmStatus.DISABLE:
            return
        rec.SEVR = rec.DISS
        rec.STAT = AlarmStatus.DISABLE
        rec.NSEV = rec.NSTA = 0
        rec.post("STAT", DBE_VALUE)
        rec.post("SEVR", DBE_VALUE)
        rec.post("VAL", DBE_VALUE | DBE_ALARM)

    def scan_passive(self, source: Record, target: Record) -> int | None:
        """dbScanPassive: process ``target`` for ``source`` if its SCAN is Passive; the status."""
        if target.SCAN != PASSIVE:
            return None
        return self.process_target(source, target)

    def process_target(self, source: Record, target: Record) -> int | None:
        """processTarget: ``source`` stays active while ``target`` processes; a busy target is not
        re-entered (that is what stops a link cycle). Returns the target's processing status."""
        saved = source.PACT
        source.PACT = 1
        if not target.PACT:
            target.PUTF = source.PUTF
        elif source.PUTF and target is not source and not target._in_chain:
            # busy with asynchronous processing started by someone else: process again when done
            target.PUTF = 0
            target.RPRO = 1
        try:
            return self.process(target)
        finally:
            source.PACT = saved

    # -- links ------------------------------------------------------------------------------------------
    def read_link(self, rec: Record, link_field: str, link: Link, source: Record, sfield: Field, dbf: DBF,
                  count: int) -> Any:
        """dbGetLink through ``rec``'s link field ``link_field``; None (and its alarm) when the read fails."""
        if not self._ca_links_connected and link.process in _CA_LINKS:
            alarms.link_alarm(rec, link_field)    # dbCaGetLink: not connected
            return None
        if link.pp and self.scan_passive(rec, source):
            # dbDbGetValue: a source that failed to process fails the read (dbGetLink's LINK alarm)
            alarms.link_alarm(rec, link_field)
            return None
        try:
            value = self._field_as(source, sfield, dbf, count, link.long_string)
        except CAError:
            alarms.link_alarm(rec, link_field)
            return None
        if source is not rec:
            alarms.inherit_sevr(link.ms, rec, source.STAT, source.SEVR)
        return value

    def link_channel(self, link: Link, record: Record, fld: Field) -> FieldChannel:
        """The channel a PV link to ``record``'s ``fld`` reads or writes: its "$" form (a CHAR array) when
        the link names the field with "$" and the field has one."""
        fld = _sized_field(record, fld)
        return self._channel_for(record, fld, link.long_string and (fld.dbf is DBF.STRING or fld.is_link))

    def _field_as(self, source: Record, sfield: Field, dbf: DBF, count: int, long_string: bool = False
                  ) -> Any:
        if sfield.is_link:
            return _link_text_as(source, sfield, dbf, count, long_string)
        if long_string:
            sfield = _sized_field(source, sfield)
            # getAttrValue gives RTYP$ as RTYP but for a char array
            long_string = sfield.dbf is DBF.STRING and (sfield is not _RTYP or dbf in (DBF.CHAR, DBF.UCHAR))
        chan = self._channel_for(source, sfield, long_string)
        values = chan.values()
        if chan.long_string:
            values = chan.link_chars(values, dbf, count)
        want = NATIVE_DBR[dbf]
        from_type = ChannelType.STRING if chan.dbf in LINK_TYPES else chan.native_type
        table, fallback = chan._enum_table() if chan.native_type is ChannelType.ENUM else ((), None)
        converted = convert_values(values, from_type, want, precision=chan._precision(for_string=True),
                                   enum_strings=table, enum_fallback=fallback)
        if count == 1:
            if len(converted) == 0:
                raise CAError(ECA.GETFAIL, "no elements")
            first = converted[0]
            return first if isinstance(first, str) else first.item()
        return converted[:count]

    def write_link(self, rec: Record, link_field: str, link: Link, target: Record, tfield: Field, dbf: DBF,
                   value: Any) -> int | None:
        """dbPutLink through ``rec``'s link field ``name`` (dbDbPutValue): dbPut into the target, pass the
        alarm on (MS), process the target if PP.

        Returns -1 when the put failed or (a DB link) the target's processing did, as dbPutLink does,
        after raising LINK/INVALID on ``rec`` (for its link field ``link_field``); None otherwise."""
        if not self._ca_links_connected and link.process in _CA_LINKS:
            alarms.link_alarm(rec, link_field)    # dbCaPutLink: not connected
            return -1
        if tfield is _RTYP or tfield.read_only or tfield.is_link or (
                target.rtype.read_only is not None and target.rtype.read_only(target, tfield)):
            # dbPut refuses the record type (an attribute), SPC_NOMOD fields (also those cvt_dbaddr
            # makes so) and link fields ("$" or not: only a CA put, dbPutFieldLink, converts into a link)
            alarms.link_alarm(rec, link_field)
            alarms.inherit_sevr(link.ms, target, rec.NSTA, rec.NSEV)
            return -1
        chan = self.link_channel(link, target, tfield)
        converted = False
        if type(value) is _UNCONVERTED_SCALARS.get(dbf) and chan.dbf is dbf and chan._plain:
            values: Any = (value,)      # stored as it is (an ao's OVAL into an ai's VAL, say)
            converted = True
        elif isinstance(value, str):
            values = [value]
        elif isinstance(value, (list, np.ndarray)):
            values = value
        else:
            values = np.array([value], dtype=DBF_DTYPES.get(dbf, np.float64))
        try:
            self.put(chan, NATIVE_DBR[dbf], values, converted)
        except CAError:
            alarms.link_alarm(rec, link_field)
            return -1
        finally:
            alarms.inherit_sevr(link.ms, target, rec.NSTA, rec.NSEV)
        # a CA link's write is a CA put: the target processes as for any client put to a PP field
        if tfield.name == "PROC" or (target.SCAN == PASSIVE and (
                link.pp or (tfield.pp and link.process in _CA_LINKS))):
            # dbCaPutLink only queues the put: the target's processing status stays with the CA server
            if self.process_target(rec, target) and link.process not in _CA_LINKS:
                alarms.link_alarm(rec, link_field)
                return -1
        return None

    # -- puts (dbPutField, dbPut) --------------------------------------------------------------------
    def put_field(self, chan: FieldChannel, data_type: int, values: Any,
                  converted: bool = False, notify: bool = False) -> Completion | None:
        """dbPutField: a CA put, with the record processed when the field is PP (or PROC).

        ``notify``: a put-callback (dbNotify), which processes after an alarm acknowledgement too."""
        rec, fld = chan.record, chan.field
        if fld is _RTYP:
            raise CAError(ECA.PUTFAIL, f"{chan.name} cannot be written")
        name = fld.name
        if rec.DISP and name != "DISP":
            raise CAError(ECA.PUTFAIL, f"{rec.NAME} has puts disabled (DISP)")
        if converted and chan._plain:
            return self.put_scalar(chan, values[0], notify)
        if fld.is_link and data_type in (ChannelType.PUT_ACKT, ChannelType.PUT_ACKS):
            # dbPutField hands a link field to dbPutFieldLink before dbPut could acknowledge an alarm,
            # and that takes text only
            raise CAError(ECA.PUTFAIL, f"{chan.name}: a link field takes no DBR type {data_type}")
        if data_type in (ChannelType.PUT_ACKT, ChannelType.PUT_ACKS):
            if data_type == ChannelType.PUT_ACKT:
                self._put_ackt(rec, int(values[0]))
            else:
                self._put_acks(rec, int(values[0]))
            if not (notify or name == "PROC"):
                return None     # dbPutField processes a PP field after a put of a value only
        elif fld.is_link:     # its text, with or without "$": dbPutFieldLink
            self._put_link_field(chan, data_type, values)
            return None
        else:
            self.put(chan, data_type, values, converted)
        if fld.name == "PROC" or (fld.pp and rec.SCAN == PASSIVE):
            if rec.PACT:
                rec.RPRO = 1
                return None
            rec.PUTF = 1
            return self._process_for_put(rec, notify)
        return None

    def put_scalar(self, chan: FieldChannel, value: Any, notify: bool = False) -> Completion | None:
        """put_field for a converted scalar of a field without special handling: put() inline, the
        hot path of CA puts."""
        rec = chan.record
        name = chan._fname
        if rec.DISP and name != "DISP":
            raise CAError(ECA.PUTFAIL, f"{rec.NAME} has puts disabled (DISP)")
        setattr(rec, name, value)
        rec._gen += 1
        if chan._is_val:
            rec.UDF = 0
        if chan._post_on_put:
            rec.post(name, _VALUE_LOG)
        if chan.field.prop:
            rec.post_all(_PROPERTY)
        if chan._process_on_put and (rec.SCAN == PASSIVE or name == "PROC"):
            if rec.PACT:
                rec.RPRO = 1
                return None
            rec.PUTF = 1
            return self._process_for_put(rec, notify)
        return None

    def process_after_failed_notify(self, chan: FieldChannel) -> Completion | None:
        """A put-callback whose put failed in dbPut (a value that does not convert, a DBR type dbPut does
        not take): dbNotify processes the record all the same when the field is PROC or PP on a passive
        record (db_put_process reports every put as done). Returns what the put-callback waits for."""
        rec, fld = chan.record, chan.field
        if rec.DISP and fld.name != "DISP":
            return None     # dbNotify's putDisabledType: no put, no processing
        if not (fld.name == "PROC" or (fld.pp and rec.SCAN == PASSIVE)):
            return None
        rec.PUTF = 1
        try:
            return self._process_for_put(rec, notify=True)
        except ProcessingFailed:
            return None     # dbNotify ignores dbProcess's status

    def _process_for_put(self, rec: Record, notify: bool) -> Completion | None:
        """Process ``rec`` for a put: what the put waits for while the record goes on processing; a
        failed processing raises ProcessingFailed, for a plain put also when the record goes on (a motor
        whose RLNK write failed as it started a move: dbPutField returns process()'s status), where a
        put-callback waits for the end of that processing (dbNotify ignores the status)."""
        status = self.process(rec)
        busy = rec.PACT or rec._fwd_link_pending
        if status and not (notify and busy):
            raise ProcessingFailed(rec.NAME, status)
        return self._completion(rec) if busy else None

    def _completion(self, rec: Record) -> Completion:
        # Asynchronous processing (a device set PACT): the put-callback completes with it.
        event = trio.Event()
        if rec._waiters is None:
            rec._waiters = []
        rec._waiters.append(event)
        return Completion([event])

    def put(self, chan: FieldChannel, data_type: int, values: Any, converted: bool = False) -> None:
        """dbPut: convert and store ``values`` (a decoded value sequence of ``data_type``) in the field,
        run the record's special handling, post the field (and DBE_PROPERTY for metadata fields)."""
        rec, fld, rtype = chan.record, chan.field, chan.record.rtype
        n = len(values)
        # (an SPC_DBADDR field takes dbPut's array path: no element converted, the rest of dbPut runs)
        array_path = chan._array or fld.special is _SPC_DBADDR
        # dbPut's scalar path with no element: LINK/INVALID and nothing stored, but the rest of dbPut runs
        # (the special handling after the put, UDF cleared, the posts)
        nothing = n < 1 and not array_path
        if nothing:
            rec.set_sevr(AlarmStatus.LINK, AlarmSeverity.INVALID)
        elif n < 1 and chan.dbf in _ENUM_DBFS and native_type(data_type) is ChannelType.STRING:
            # putStringEnum (and its menu and device kin) converts the first string whatever the count: with
            # none sent, the bytes after the request, the next request's header when one came with it,
            # which starts with a 0 (the high byte of its command): the empty string
            values = [""]
        if n > 1 and not converted and not chan.long_string:
            # dbPut takes its array path (as for any SPC_DBADDR field) for more than one element, and
            # converts no more than the field holds (a scalar: the first)
            array_path = True
            if n > chan.max_count:
                values = values[:chan.max_count]
        try:
            stored = () if nothing else (
                values if converted else self._convert_for_put(chan, data_type, values, array_path))
        except CAError as exc:
            partial = getattr(exc, "stored", None)
            if chan._array and partial is not None and len(partial):
                # dbConvert stores an array element by element: those before the one that failed stay
                # (NORD unchanged, nothing posted)
                count = min(len(partial), chan.max_count)
                getattr(rec, fld.name)[:count] = partial[:count]
                rec._gen += 1
            elif partial is not None and len(partial) and not chan.long_string:
                setattr(rec, fld.name, partial[0].item())
                rec._gen += 1
            raise
        special = fld.special
        if special is _SPC_SCAN:
            self._scan.remove(rec)
        elif special in _SPC_HOOKED and rtype.special is not None:
            rtype.special(rec, fld, False)
        if chan._array:
            count = min(len(stored), chan.max_count)
            array = getattr(rec, fld.name)
            array[:count] = stored[:count]
            rtype.put_array_count(rec, fld, count)
        elif chan.long_string:
            text = bytes(np.asarray(stored, dtype=np.uint8))
            if b"\0" not in text and not (chan._string_count is not None and fld.name in ("VAL", "OVAL")):
                # dbPut copies the characters over the string's buffer and adds no NUL: the rest of the
                # old text stays (lsi/lso VAL, SPC_DBADDR fields, end the string where the put does)
                text += getattr(rec, fld.name).encode("utf-8", "surrogateescape")[len(text):]
            text = text.split(b"\0", 1)[0]
            limit = LINK_STRING_SIZE if fld.is_link else fld.size
            setattr(rec, fld.name, text[:limit - 1].decode("utf-8", "surrogateescape"))
        elif len(stored):
            first = stored[0]
            setattr(rec, fld.name, first.item() if isinstance(first, np.generic) else first)
            if fld.dbf is DBF.STRING and (rec._overruns or not converted):
                self._keep_overrun(chan, data_type, values, first, converted)
        if special is _SPC_SCAN:
            self._scan.add(rec)
        elif special in _SPC_HOOKED and rtype.special is not None:
            try:
                rtype.special(rec, fld, True)
            except CAError:
                # as dbPut: the value stays stored, the put reports failure and posts nothing
                rec._gen += 1
                raise
        rec._gen += 1
        value_field = fld.name == "VAL"
        if value_field:
            rec.UDF = 0
        if not (value_field and fld.pp):
            rec.post(fld.name, _VALUE_LOG)
        if fld.prop:
            rec.post_all(_PROPERTY)

    def _keep_overrun(self, chan: FieldChannel, data_type: int, values: Any, text: str,
                      converted: bool) -> None:
        """A number put into a STRING field: cvt_d_st and its kin write the number's text without a bound,
        so a text longer than the field (" 9.900000000000e+01" in a 16-byte EGU) runs on into the memory
        after it. A DBR_STRING read stops at the field's size; a numeric read parses up to the NUL, and
        reads 99. Any other put to the field ends its text inside it."""
        rec, fld = chan.record, chan.field
        overruns = {name: pair for name, pair in rec._overruns.items() if name != fld.name}
        if not converted and native_type(data_type) is not ChannelType.STRING:
            full = self._convert_for_put(chan, data_type, values[:1], string_size=_UNBOUNDED)[0]
            if full != text:
                overruns[fld.name] = (text, full)
        rec._overruns = overruns

    def _convert_for_put(self, chan: FieldChannel, data_type: int, values: Any,
                         array_path: bool = False, string_size: int | None = None) -> Any:
        rec, fld = chan.record, chan.field
        if chan.long_string:
            return values_for_put(values, data_type, ChannelType.CHAR, field_dtype=np.uint8,
                                  array_field=True)
        dbf = chan.dbf
        kwargs: dict[str, Any] = {}
        if dbf in _ENUM_DBFS:
            if dbf is DBF.ENUM:
                strings = rec.rtype.enum_strs(rec, fld) if rec.rtype.enum_strs is not None else ()
                table = rec.rtype.put_enum_table(rec, fld) if rec.rtype.put_enum_table is not None else ()
                kwargs.update(enum_strings=table, enum_count=len(strings))
            else:
                kwargs.update(enum_strings=chan._enum_table()[0])
        if dbf is DBF.STRING:
            # cvt_d_st formats with the record's precision for that field, else 6 digits
            answer = rec.rtype.precision(rec, fld) if rec.rtype.precision is not None else None
            precision = 6 if answer is None else answer
            kwargs.update(string_size=string_size or fld.size or MAX_STRING_SIZE, precision=precision)
        elif chan.native_type is not ChannelType.STRING:
            kwargs.update(field_dtype=DBF_DTYPES[dbf])
            if dbf is DBF.ULONG:
                current = getattr(rec, fld.name)
                kwargs.update(current=current if chan._array else (current,))
        return values_for_put(values, data_type, chan.native_type, array_field=chan._array or array_path,
                              **kwargs)

    def _put_link_field(self, chan: FieldChannel, data_type: int, values: Any) -> None:
        """dbPutFieldLink: a new link text (a PV not served here makes a link that never connects)."""
        rec, fld = chan.record, chan.field
        if data_type == ChannelType.STRING and not len(values):
            # dbPutFieldLink parses the string whatever the count: with none sent, the bytes after the
            # request (the next request's header, as for putStringEnum in put: the empty string)
            values = [""]
        # dbPutFieldLink takes text only: a DBR_STRING, or DBR_CHARs whose last one is the NUL
        if not len(values) or not (data_type == ChannelType.STRING or (
                data_type == ChannelType.CHAR and int(values[-1]) == 0)):
            raise CAError(ECA.PUTFAIL, f"{chan.name}: a link takes text, not DBR type {data_type}")
        if data_type == ChannelType.CHAR:
            text = bytes(np.asarray(values, dtype=np.uint8)).split(b"\0", 1)[0].decode("latin-1")
        else:
            text = values_for_put(values, data_type, ChannelType.STRING)[0]
        try:
            # dbPutFieldLink: a PV this IOC does not have becomes a CA link (softIoc's dbCa)
            entry = self._resolve(fld, parse_link(text, strict=False), external=True)
        except (LinkError, ValueError) as exc:
            raise CAError(ECA.PUTFAIL, f"{chan.name}: {exc}") from None
        self._scan.remove(rec)
        links = dict(rec._links)
        links[fld.name] = entry
        rec._links = links
        setattr(rec, fld.name, entry[0].canonical(forward=fld.dbf is DBF.FWDLINK))
        if fld.special is SPC.MOD and rec.rtype.special is not None:
            rec.rtype.special(rec, fld, True)
        if entry[1] is not None and entry[0].monitored and fld.dbf is DBF.INLINK:
            self._monitor_link(rec, entry[0], entry[1], entry[2])
        self._scan.add(rec)
        rec.post(fld.name, DBE_VALUE | DBE_LOG)

    def _put_ackt(self, rec: Record, ackt: int) -> None:
        if ackt == rec.ACKT:
            return
        rec.ACKT = ackt
        rec.post("ACKT", DBE_VALUE | DBE_ALARM)
        if not rec.ACKT and rec.ACKS > rec.SEVR:
            rec.ACKS = rec.SEVR
            rec.post("ACKS", DBE_VALUE | DBE_ALARM)
        rec.post_all(DBE_ALARM)

    def _put_acks(self, rec: Record, acks: int) -> None:
        if acks >= rec.ACKS:
            rec.ACKS = 0
            rec.post("ACKS", DBE_VALUE | DBE_ALARM)
            rec.post_all(DBE_ALARM)


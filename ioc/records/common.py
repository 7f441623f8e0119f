"""dbCommon: the fields every record type starts with (EPICS Base 7 dbCommon.dbd, in declaration order)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from caproto.constants import EPICS_EPOCH_OFFSET, AlarmSeverity, AlarmStatus

from .fields import DBF, SPC, Field, FieldValueError

if TYPE_CHECKING:
    from ioc.database import Record

COMMON_FIELDS: tuple[Field, ...] = (
    Field("NAME", DBF.STRING, size=61, special=SPC.NOMOD),
    Field("DESC", DBF.STRING, size=41),
    Field("ASG", DBF.STRING, size=29, special=SPC.AS),
    Field("SCAN", DBF.MENU, menu="menuScan", special=SPC.SCAN),
    Field("PINI", DBF.MENU, menu="menuPini"),
    Field("PHAS", DBF.SHORT, special=SPC.SCAN),
    Field("EVNT", DBF.STRING, size=40, special=SPC.SCAN),
    Field("TSE", DBF.SHORT),
    Field("TSEL", DBF.INLINK),
    Field("DTYP", DBF.DEVICE),
    Field("DISV", DBF.SHORT, initial="1"),
    Field("DISA", DBF.SHORT),
    Field("SDIS", DBF.INLINK),
    Field("MLOK", DBF.NOACCESS, special=SPC.NOMOD),
    Field("MLIS", DBF.NOACCESS, special=SPC.NOMOD),
    Field("BKLNK", DBF.NOACCESS, special=SPC.NOMOD),
    Field("DISP", DBF.UCHAR),
    Field("PROC", DBF.UCHAR, pp=True),
    Field("STAT", DBF.MENU, menu="menuAlarmStat", initial="UDF", special=SPC.NOMOD),
    Field("SEVR", DBF.MENU, menu="menuAlarmSevr", special=SPC.NOMOD),
    Field("AMSG", DBF.STRING, size=40, special=SPC.NOMOD),
    Field("NSTA", DBF.MENU, menu="menuAlarmStat", special=SPC.NOMOD),
    Field("NSEV", DBF.MENU, menu="menuAlarmSevr", special=SPC.NOMOD),
    Field("NAMSG", DBF.STRING, size=40, special=SPC.NOMOD),
    Field("ACKS", DBF.MENU, menu="menuAlarmSevr", special=SPC.NOMOD),
    Field("ACKT", DBF.MENU, menu="menuYesNo", initial="YES", special=SPC.NOMOD),
    Field("DISS", DBF.MENU, menu="menuAlarmSevr"),
    Field("LCNT", DBF.UCHAR, special=SPC.NOMOD),
    Field("PACT", DBF.UCHAR, special=SPC.NOMOD),
    Field("PUTF", DBF.UCHAR, special=SPC.NOMOD),
    Field("RPRO", DBF.UCHAR, special=SPC.NOMOD),
    Field("ASP", DBF.NOACCESS, special=SPC.NOMOD),
    Field("PPN", DBF.NOACCESS, special=SPC.NOMOD),
    Field("PPNR", DBF.NOACCESS, special=SPC.NOMOD),
    Field("SPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("RSET", DBF.NOACCESS, special=SPC.NOMOD),
    Field("DSET", DBF.NOACCESS, special=SPC.NOMOD),
    Field("DPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("RDES", DBF.NOACCESS, special=SPC.NOMOD),
    Field("LSET", DBF.NOACCESS, special=SPC.NOMOD),
    Field("PRIO", DBF.MENU, menu="menuPriority", special=SPC.SCAN),
    Field("TPRO", DBF.UCHAR),
    Field("BKPT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("UDF", DBF.UCHAR, initial="1", pp=True),
    Field("UDFS", DBF.MENU, menu="menuAlarmSevr", initial="INVALID"),
    Field("TIME", DBF.NOACCESS, special=SPC.NOMOD),
    Field("UTAG", DBF.UINT64, special=SPC.NOMOD),
    Field("FLNK", DBF.FWDLINK),
)


# --- helpers shared by the record families ---------------------------------------------------------------

def limit_alarm_fields(dbf: DBF, severity_prop: bool = True) -> tuple[Field, ...]:
    """HIHI, LOLO, HIGH, LOW (of ``dbf``) and their severities HHSV ... LSV, as every record type with
    limit alarms declares them, in this order (the integer records' severities post no DBE_PROPERTY)."""
    limits = tuple(Field(name, dbf, pp=True, prop=True) for name in ("HIHI", "LOLO", "HIGH", "LOW"))
    return limits + tuple(Field(name, DBF.MENU, menu="menuAlarmSevr", pp=True, prop=severity_prop)
                          for name in ("HHSV", "LLSV", "HSV", "LSV"))


def simulation_fields(siol: DBF, sval: Field | None = None, simm_menu: str = "menuYesNo",
                      siol_after_sims: bool = False) -> tuple[Field, ...]:
    """The simulation mode's fields, as the record types with one declare them: SIOL (an INLINK, with the
    input records' ``sval`` after it, or an OUTLINK), SIML, SIMM (a ``simm_menu``), SIMS, then OLDSIMM,
    SSCN, SDLY and SIMPVT. aai, aao, lsi and lso declare SIOL after SIMS (``siol_after_sims``)."""
    siol_fields = (Field("SIOL", siol),) + ((sval,) if sval is not None else ())
    mode = (Field("SIML", DBF.INLINK), Field("SIMM", DBF.MENU, menu=simm_menu, special=SPC.MOD),
            Field("SIMS", DBF.MENU, menu="menuAlarmSevr"))
    return (mode + siol_fields if siol_after_sims else siol_fields + mode) + (
        Field("OLDSIMM", DBF.MENU, menu="menuSimm", special=SPC.NOMOD),
        Field("SSCN", DBF.MENU, menu="menuScan", initial="65535"),
        Field("SDLY", DBF.DOUBLE, initial="-1.0"),
        Field("SIMPVT", DBF.NOACCESS, special=SPC.NOMOD),
    )


SOFT_DEVICES = ("Soft Channel", "Raw Soft Channel", "Async Soft Channel")
# Fields of the analog records whose display/control limits are those of VAL.
ANALOG_LIMITED = frozenset({"VAL", "HIHI", "HIGH", "LOW", "LOLO", "LALM", "ALST", "MLST", "SVAL"})
NAN = math.nan


def device(rec: Record) -> str:
    """The DTYP choice of ``rec`` (its device support name)."""
    return rec.rtype.devices[rec.DTYP]


def unchecked_write(rec: Record, status: int | None) -> int | None:
    """The status of a write through OUT by the soft device supports of longout, mbbo and int64out:
    their "Soft Channel" (and mbbo's "Raw Soft Channel") return success whatever dbPutLink returned
    (devLoSoft.c, devMbboSoft.c, devI64outSoft.c); "Async Soft Channel" returns it."""
    return status if device(rec) == "Async Soft Channel" else None


def require_soft_device(rec: Record, supported: tuple[str, ...] = SOFT_DEVICES) -> None:
    name = device(rec)
    if name not in supported:
        raise FieldValueError("DTYP", f"device support {name!r} is not available in this IOC "
                                      f"(use one of: {', '.join(supported)})")


def constant(rec: Record, link_field: str, dbf: DBF) -> object | None:
    """recGblInitConstantLink: the value of a constant link as ``dbf``, or None if it holds none."""
    entry = rec._links.get(link_field)
    if entry is None or entry[1] is not None:
        return None
    value = entry[0].value
    if isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if value is None:
        return None
    if dbf is DBF.STRING:
        return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    try:
        number = float(value)
    except ValueError:
        return None
    if dbf in (DBF.DOUBLE, DBF.FLOAT):
        return number
    if math.isnan(number) or math.isinf(number):
        return None
    return int(number)


def analog_precision(rec: Record, fld: Field, full: frozenset[str] = frozenset({"VAL"})) -> int:
    """get_precision of ai/ao/calc/waveform: PREC, clamped to 0..15 except for the value fields."""
    prec = rec.PREC
    if fld.name in full:
        return prec
    if fld.dbf in (DBF.FLOAT, DBF.DOUBLE) and not 0 <= prec <= 15:
        return 15
    return prec


def value_alarm_limits(rec: Record, fld: Field) -> tuple[float, float, float, float] | None:
    """get_alarm_double for VAL: each limit, or NaN where its severity is NO_ALARM."""
    if fld.name != "VAL":
        return None
    return (rec.HIHI if rec.HHSV else NAN, rec.HIGH if rec.HSV else NAN,
            rec.LOW if rec.LSV else NAN, rec.LOLO if rec.LLSV else NAN)


def display_limits(fields: frozenset[str]):
    """A get_graphic/get_control hook giving (HOPR, LOPR) for ``fields``, the natural range otherwise."""
    def hook(rec: Record, fld: Field) -> tuple[float, float] | None:
        return (rec.HOPR, rec.LOPR) if fld.name in fields else None
    return hook


# --- simulation mode: SIML, SIMM, SIOL, SIMS, SDLY, SSCN (recGblInitSimm, recGblGetSimm, ...) ---------------

SIMM_NO, SIMM_YES, SIMM_RAW = 0, 1, 2     # menuSimm (waveform's menuYesNo shares NO and YES)
SSCN_UNSET = 65535                        # SSCN's initial value: simulation mode leaves SCAN alone
_DEVICE_TIME = -2                         # TSE epicsTimeEventDeviceTime


def c_unsigned(value: float, bits: int) -> int:
    """A double stored into an unsigned C integer the way the IOC's conversions do (x86-64): truncated
    toward zero through a 64-bit integer, then the low ``bits`` kept (NaN, infinities and doubles beyond
    the 64-bit range come out as 0)."""
    if not math.isfinite(value) or abs(value) >= 2.0 ** 63:
        return 0
    return int(value) & ((1 << bits) - 1)


def init_simm(rec: Record) -> None:
    """recGblInitSimm: a constant SIML sets SIMM when the record initialises."""
    if not rec.link_is_constant("SIML"):
        return
    save_simm(rec)
    simm = constant(rec, "SIML", DBF.DOUBLE)
    if simm is not None:
        rec.SIMM = c_unsigned(simm, 16)
    if rec.SSCN != SSCN_UNSET and rec.SIMM != rec.OLDSIMM:
        # before the scan lists exist: swapping the fields is all recGblCheckSimm amounts to here
        rec.SCAN, rec.SSCN = rec.SSCN, rec.SCAN


def get_simm(rec: Record) -> None:
    """recGblGetSimm, at the start of a processing: SIMM follows SIML.

    It reads with dbTryGetLink, so a failed read raises no LINK/INVALID alarm: SIMM keeps its value and
    only the pending status becomes LINK, and only while no severity is pending.
    """
    save_simm(rec)
    if not rec.link_is_constant("SIML"):
        pending = rec.NSTA, rec.NSEV, rec.NAMSG
        simm = rec.get_link("SIML", DBF.DOUBLE)
        if simm is None:
            rec.NSTA, rec.NSEV, rec.NAMSG = pending
            if not rec.NSEV:
                rec.NSTA = AlarmStatus.LINK
        else:
            rec.SIMM = c_unsigned(simm, 16)
    check_simm(rec)


def save_simm(rec: Record) -> None:
    """recGblSaveSimm: remember SIMM in OLDSIMM (only used, and only kept, when SSCN is set)."""
    if rec.SSCN != SSCN_UNSET:
        rec.OLDSIMM = rec.SIMM


def check_simm(rec: Record) -> None:
    """recGblCheckSimm: entering or leaving simulation swaps SCAN and SSCN (when SSCN is set)."""
    if rec.SSCN == SSCN_UNSET or rec.SIMM == rec.OLDSIMM:
        return
    scan = rec.SCAN
    rec.db.set_scan(rec, rec.SSCN)
    rec.SSCN = scan


def special_simm(rec: Record, fld: Field, after: bool) -> bool:
    """The SIMM part of special(): True when ``fld`` was SIMM (handled here)."""
    if fld.name != "SIMM":
        return False
    if after:
        check_simm(rec)
    else:
        save_simm(rec)
    return True


def simulate_now(rec: Record) -> bool:
    """Whether this pass reads or writes SIOL. With SDLY >= 0 the first pass only sets PACT and has the
    record processed again SDLY seconds later (callbackRequestProcessCallbackDelayed); that second pass,
    with PACT still set, does the I/O."""
    if rec.PACT or rec.SDLY < 0:
        return True
    rec.PACT = 1
    rec.db.call_later(rec.SDLY, lambda: rec.db.resume(rec))
    return False


def read_value(rec: Record, device_read: Callable[[Record], int | None],
               siol_read: Callable[[Record, int], int | None],
               modes: tuple[int, ...] = (SIMM_YES,), pending: int | None = None) -> int | None:
    """readValue of the input records: out of simulation the device's read; in simulation (a SIMM in
    ``modes``) SIMM/SIMS raised and ``siol_read(rec, simm)`` on the pass that does the I/O (with SDLY
    the second; the first returns ``pending``); any other SIMM raises SOFT/INVALID and fails (-1).
    Returns what the read returns: the record's status convention."""
    if not rec.PACT:
        get_simm(rec)
    simm = rec.SIMM
    if simm == SIMM_NO:
        return device_read(rec)
    if simm not in modes:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        return -1
    rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
    if not simulate_now(rec):
        return pending
    status = siol_read(rec, simm)
    rec.PACT = 0
    return status


def write_value(rec: Record, device_write: Callable[[Record], int | None],
                siol_write: Callable[[Record, int], int | None],
                modes: tuple[int, ...] = (SIMM_YES,)) -> int | None:
    """writeValue of the output records: out of simulation the device's write; in simulation (a SIMM in
    ``modes``) SIMM/SIMS raised and ``siol_write(rec, simm)`` on the pass that does the I/O (with SDLY
    the second); any other SIMM raises SOFT/INVALID and fails. Returns the write's failure status or
    None."""
    if not rec.PACT:
        get_simm(rec)
    simm = rec.SIMM
    if simm == SIMM_NO:
        return device_write(rec)
    if simm not in modes:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        return -1
    rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
    if not simulate_now(rec):
        return None
    status = siol_write(rec, simm)
    rec.PACT = 0
    return status


def read_state_siol(rec: Record, simm: int, raw_mask: int = 0xFFFFFFFF) -> int:
    """The SIOL read of bi and mbbi in simulation: SVAL, then VAL (YES: 2) or RVAL (RAW: 0) from it;
    -1 when the link failed."""
    if not read_simulation_value(rec):
        return -1
    rec.UDF = 0
    if simm == SIMM_YES:
        rec.VAL = rec.SVAL & 0xFFFF
        return 2
    rec.RVAL = rec.SVAL & raw_mask
    return 0


def write_state_siol(rec: Record, simm: int) -> int | None:
    """The SIOL write of bo and mbbo in simulation: VAL as an unsigned short, RAW: RVAL."""
    if simm == SIMM_YES:
        return rec.put_link("SIOL", DBF.USHORT, rec.VAL)
    return rec.put_link("SIOL", DBF.ULONG, rec.RVAL)


def read_simulation_value(rec: Record) -> bool:
    """dbGetLink(SIOL, DBR_ULONG, &SVAL) of bi/mbbi: False when the link failed (it raised LINK/INVALID);
    a constant SIOL reads nothing and succeeds, SVAL keeping its value."""
    if rec.link_is_constant("SIOL"):
        return True
    value = rec.get_link("SIOL", DBF.DOUBLE)
    if value is None:
        return False
    rec.SVAL = c_unsigned(value, 32)
    return True


def stamp_simm(rec: Record, siol: bool) -> None:
    """recGblGetTimeStampSimm: the processing's timestamp. In simulation with TSE = -2 (device time) it
    is SIOL's source's time for an input (``siol``), otherwise the current time."""
    rec.stamp()
    if rec.SIMM != SIMM_NO:
        simulated_time(rec, siol)


def device_time(rec: Record, link_field: str) -> None:
    """The soft device supports' device time: after a successful read through ``link_field``, with
    TSE = -2 and no TSEL link, TIME is the link source's (recGblGetTimeStamp then leaves it)."""
    if rec.TSE == _DEVICE_TIME and rec.link_is_constant("TSEL"):
        entry = rec._links.get(link_field)
        if entry is not None and entry[1] is not None:
            rec.TIME = entry[1].TIME


def simulated_time(rec: Record, siol: bool) -> None:
    """The simulation part of recGblGetTimeStampSimm, after ``rec.stamp()`` while SIMM is not NO."""
    if rec.TSE != _DEVICE_TIME:
        return
    tsel = rec._links.get("TSEL")
    if tsel is not None and tsel[1] is not None and tsel[2] is None:
        return      # TSEL names a record's TIME: that is the stamp whatever the mode
    entry = rec._links.get("SIOL") if siol else None
    if entry is not None and entry[1] is not None:
        rec.TIME = entry[1].TIME
    else:
        ns = time.time_ns()
        rec.TIME = (ns // 1_000_000_000 - EPICS_EPOCH_OFFSET, ns % 1_000_000_000)

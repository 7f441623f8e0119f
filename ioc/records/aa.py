"""aai and aao: array input and array output records, NELM elements of type FTVL with NORD of them valid
(aaiRecord.c, aaoRecord.c, devAaiSoft.c, devAaoSoft.c)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    SIMM_NO,
    SIMM_YES,
    analog_precision,
    device_time,
    get_simm,
    init_simm,
    require_soft_device,
    simulate_now,
    simulation_fields,
    special_simm,
    stamp_simm,
    write_value,
)
from .fields import DBF, SPC, Field
from .menus import MENUS
from .waveform import (
    FTVL_TYPES,
    array_count,
    array_cvt_dbaddr,
    array_limits,
    array_units,
    element_type,
    get_elements,
    load_constant,
    monitor_array,
    new_array,
    put_array_count,
)

if TYPE_CHECKING:
    from ioc.database import Record

_ARRAY_FIELDS: tuple[Field, ...] = (
    Field("NELM", DBF.ULONG, initial="1", special=SPC.NOMOD),
    Field("FTVL", DBF.MENU, menu="menuFtype", special=SPC.NOMOD),
    Field("NORD", DBF.ULONG, special=SPC.NOMOD),
    Field("BPTR", DBF.NOACCESS, special=SPC.NOMOD),
)
_DISPLAY_FIELDS: tuple[Field, ...] = (
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
)

AAI_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.NOACCESS, special=SPC.DBADDR, pp=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("INP", DBF.INLINK),
) + _DISPLAY_FIELDS + _ARRAY_FIELDS + (
    *simulation_fields(DBF.INLINK, siol_after_sims=True),
    Field("MPST", DBF.MENU, menu="aaiPOST"),
    Field("APST", DBF.MENU, menu="aaiPOST"),
    Field("HASH", DBF.ULONG),
)

AAO_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.NOACCESS, special=SPC.DBADDR, pp=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("OUT", DBF.OUTLINK),
    Field("DOL", DBF.INLINK),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
) + _DISPLAY_FIELDS + _ARRAY_FIELDS + (
    *simulation_fields(DBF.OUTLINK, siol_after_sims=True),
    Field("MPST", DBF.MENU, menu="aaoPOST"),
    Field("APST", DBF.MENU, menu="aaoPOST"),
    Field("HASH", DBF.ULONG),
)

_POST_ON_CHANGE = 1         # aaiPOST / aaoPOST: Always, On Change
_OMSL_CLOSED_LOOP = 1


def init_array(rec: Record) -> None:
    """Pass 0 of both: NELM at least 1, an FTVL past ENUM read as UCHAR, the buffer, NORD."""
    if rec.NELM <= 0:
        rec.NELM = 1
    if rec.FTVL >= len(FTVL_TYPES):
        rec.FTVL = MENUS["menuFtype"].index("UCHAR")
    rec.VAL = new_array(element_type(rec), rec.NELM)
    rec.NORD = 1 if rec.NELM == 1 else 0


def _load_link_array(rec: Record, link: str) -> None:
    """dbLoadLinkArray of a constant link (a scalar or a JSON array) into VAL, setting NORD."""
    entry = rec._links.get(link)
    if entry is None or entry[1] is not None or entry[0].value is None:
        return
    value = entry[0].value
    load_constant(rec, value if isinstance(value, list) else [value])


def _read_into_val(rec: Record, link: str) -> bool:
    """dbGetLink of up to NELM elements into VAL; NORD is what came."""
    values = get_elements(rec, link)
    if values is None:
        return False
    n = len(values)
    rec.VAL[:n] = values
    rec.NORD = n
    rec.UDF = 0
    return True


# --- aai -------------------------------------------------------------------------------------------------

def init_aai(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel",))
    init_array(rec)
    _load_link_array(rec, "INP")
    init_simm(rec)


def _read_aai(rec: Record) -> int | None:
    """read_aai of devAaiSoft: through SIOL in simulation, else INP; a constant link reads nothing.
    -1 when the link read failed."""
    link = "SIOL" if rec.SIMM == SIMM_YES else "INP"
    if rec.link_is_constant(link):
        return None
    nord = rec.NORD
    if not _read_into_val(rec, link):
        return -1
    device_time(rec, link)
    if nord != rec.NORD:
        rec.post("NORD", DBE_VALUE | DBE_LOG)
    return None


def process_aai(rec: Record) -> int | None:
    """aaiRecord.c process(): the status is readValue's, so a failed read (or a SIMM out of range)
    fails the processing, after the record has posted and fired its forward link."""
    pact = rec.PACT
    status = None
    if not pact:
        get_simm(rec)
        if rec.SIMM == SIMM_YES:
            rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
            if not simulate_now(rec):
                return None     # SDLY: processing completes later
        elif rec.SIMM != SIMM_NO:
            rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
            status = -1
    if rec.SIMM in (SIMM_NO, SIMM_YES) or pact:
        status = _read_aai(rec)
    rec.PACT = 1
    rec.UDF = 0
    stamp_simm(rec, siol=True)
    monitor_array(rec, on_change=_POST_ON_CHANGE)
    rec.fwd_link()
    rec.PACT = 0
    return status


register(RecordType(
    name="aai",
    fields=AAI_FIELDS,
    process=process_aai,
    init=init_aai,
    special=special_simm,
    cvt_dbaddr=array_cvt_dbaddr,
    get_array_count=array_count,
    put_array_count=put_array_count,
    units=array_units,
    precision=analog_precision,
    graphic=array_limits,
    control=array_limits,
    state={"hashed": None},     # see waveform.content_hash
))


# --- aao -------------------------------------------------------------------------------------------------

def init_aao(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel",))
    init_array(rec)
    if rec.link_is_constant("OUT"):
        rec.NORD = 0
    init_simm(rec)
    if rec.OMSL == _OMSL_CLOSED_LOOP:
        _load_link_array(rec, "DOL")


def _write_device(rec: Record, link: str) -> None:
    """write_aao of devAaoSoft: the NORD valid elements through ``link``; it returns success whatever
    dbPutLink returned (the link alarm stays)."""
    rec.put_link(link, element_type(rec), rec.VAL[:rec.NORD])


def _write_aao(rec: Record) -> int | None:
    """writeValue: the device's write to OUT, or to SIOL in simulation; -1 only for a SIMM out of
    range (the soft device's own write always succeeds)."""
    return write_value(rec, lambda rec: _write_device(rec, "OUT"),
                       lambda rec, simm: _write_device(rec, "SIOL"))


def process_aao(rec: Record) -> int | None:
    """aaoRecord.c process(): a failed DOL read ends the processing there with its status; otherwise
    the status is writeValue's."""
    pact = rec.PACT
    if not pact:
        rec.UDF = 0
        if (rec.OMSL == _OMSL_CLOSED_LOOP and not rec.link_is_constant("DOL")
                and not _read_into_val(rec, "DOL")):
            return -1   # no monitors, no forward link: aaoRecord.c returns at once
        # stamped before the write, so that a record fetching this one's TIME through TSEL sees it
        stamp_simm(rec, siol=False)
    status = _write_aao(rec)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    if pact:
        stamp_simm(rec, siol=False)
    monitor_array(rec, on_change=_POST_ON_CHANGE)
    rec.fwd_link()
    rec.PACT = 0
    return status


register(RecordType(
    name="aao",
    fields=AAO_FIELDS,
    process=process_aao,
    init=init_aao,
    special=special_simm,
    cvt_dbaddr=array_cvt_dbaddr,
    get_array_count=array_count,
    put_array_count=put_array_count,
    units=array_units,
    precision=analog_precision,
    graphic=array_limits,
    control=array_limits,
    state={"hashed": None},     # see waveform.content_hash
))

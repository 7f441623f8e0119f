"""motor: the motor record of the EPICS motor module (motorRecord.dbd, .cc), behaving as its C code does.

The record talks to its axis through a :class:`MotorDriver` (the motor dset's commands in controller steps)
and hears back through :func:`report` (the device support's status callback: position in steps and the
MSTA status word). A move does not leave the record active: process() returns at once with DMOV=0, the
device reports every update of the axis, and the report that shows the axis stopped sets DMOV=1, fires
the forward link and completes put-callbacks (``_fwd_link_pending`` tells the database to wait for it).

Work in progress is tracked in MIP with the C record's bits, fields to post in a per-record set (the C
record's MARK/UNMARK bit maps). Not simulated: encoders (UEIP), PID gains, deferred moves and the
"In-Position" retry mode, which need controller features the simulated axis does not have.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from caproto.constants import DBE_LOG, DBE_VALUE, ECA, AlarmSeverity, AlarmStatus
from caproto.errors import CAError
from ioc import alarms

from . import RecordType, record_type, register
from .common import COMMON_FIELDS, limit_alarm_fields
from .fields import DBF, SPC, Field, FieldValueError
from .menus import MENUS

if TYPE_CHECKING:
    from ioc.database import Record

__all__ = ["MOTOR_FIELDS", "MotorDriver", "Msta", "Mip", "attach", "report"]

MOTOR_MENUS: dict[str, tuple[str, ...]] = {
    "motorDIR": ("Pos", "Neg"),
    "motorSET": ("Use", "Set"),
    "motorMODE": ("Position", "Velocity"),
    "motorUEIP": ("No", "Yes"),
    "motorSPMG": ("Stop", "Pause", "Move", "Go"),
    "motorFOFF": ("Variable", "Frozen"),
    "motorTORQ": ("Disable", "Enable"),
    "motorSTUP": ("OFF", "ON", "BUSY"),
    "motorRMOD": ("Default", "Arithmetic", "Geometric", "In-Position"),
    "motorRSTM": ("Never", "Always", "NearZero", "Conditional"),
    "motorACCU": ("Use ACCL", "Use ACCS"),
}
for _name, _choices in MOTOR_MENUS.items():
    MENUS.setdefault(_name, _choices)

MOTOR_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VERS", DBF.FLOAT, initial="1", special=SPC.NOMOD),
    Field("OFF", DBF.DOUBLE, special=SPC.MOD, pp=True),
    Field("FOFF", DBF.MENU, menu="motorFOFF", special=SPC.MOD),
    Field("FOF", DBF.SHORT, special=SPC.MOD),
    Field("VOF", DBF.SHORT, special=SPC.MOD),
    Field("DIR", DBF.MENU, menu="motorDIR", special=SPC.MOD, pp=True),
    Field("SET", DBF.MENU, menu="motorSET"),
    Field("SSET", DBF.SHORT, special=SPC.MOD),
    Field("SUSE", DBF.SHORT, special=SPC.MOD),
    Field("VELO", DBF.DOUBLE, special=SPC.MOD),
    Field("VBAS", DBF.DOUBLE, special=SPC.MOD, prop=True),
    Field("VMAX", DBF.DOUBLE, special=SPC.MOD, prop=True),
    Field("S", DBF.DOUBLE, special=SPC.MOD),
    Field("SBAS", DBF.DOUBLE, special=SPC.MOD),
    Field("SMAX", DBF.DOUBLE, special=SPC.MOD),
    Field("ACCL", DBF.DOUBLE, initial="0.2", special=SPC.MOD),
    Field("ACCS", DBF.DOUBLE, special=SPC.MOD),
    Field("ACCU", DBF.MENU, menu="motorACCU", special=SPC.MOD),
    Field("BDST", DBF.DOUBLE, special=SPC.MOD),
    Field("BVEL", DBF.DOUBLE, special=SPC.MOD),
    Field("SBAK", DBF.DOUBLE, special=SPC.MOD),
    Field("BACC", DBF.DOUBLE, initial="0.5", special=SPC.MOD),
    Field("FRAC", DBF.FLOAT, initial="1", special=SPC.MOD),
    Field("OUT", DBF.OUTLINK, special=SPC.MOD),
    Field("CARD", DBF.SHORT, special=SPC.NOMOD),
    Field("RDBL", DBF.INLINK, special=SPC.MOD),
    Field("DOL", DBF.INLINK, special=SPC.MOD),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("RLNK", DBF.OUTLINK, special=SPC.MOD),
    Field("SREV", DBF.LONG, initial="200", special=SPC.MOD, pp=True),
    Field("UREV", DBF.DOUBLE, special=SPC.MOD, pp=True),
    Field("MRES", DBF.DOUBLE, special=SPC.MOD, pp=True, prop=True),
    Field("ERES", DBF.DOUBLE, special=SPC.MOD, pp=True),
    Field("RRES", DBF.DOUBLE),
    Field("UEIP", DBF.MENU, menu="motorUEIP", special=SPC.MOD, pp=True),
    Field("URIP", DBF.MENU, menu="motorUEIP", special=SPC.MOD, pp=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("RHLM", DBF.DOUBLE, special=SPC.NOMOD),
    Field("RLLM", DBF.DOUBLE, special=SPC.NOMOD),
    Field("HLM", DBF.DOUBLE, special=SPC.MOD, pp=True, prop=True),
    Field("LLM", DBF.DOUBLE, special=SPC.MOD, pp=True, prop=True),
    Field("DHLM", DBF.DOUBLE, special=SPC.MOD, pp=True, prop=True),
    Field("DLLM", DBF.DOUBLE, special=SPC.MOD, pp=True, prop=True),
    Field("HOPR", DBF.DOUBLE),
    Field("LOPR", DBF.DOUBLE),
    Field("HLS", DBF.SHORT, special=SPC.NOMOD),
    Field("LLS", DBF.SHORT, special=SPC.NOMOD),
    Field("RHLS", DBF.SHORT, special=SPC.NOMOD),
    Field("RLLS", DBF.SHORT, special=SPC.NOMOD),
    *limit_alarm_fields(DBF.DOUBLE, severity_prop=False),
    Field("HLSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("RDBD", DBF.DOUBLE, special=SPC.MOD),
    Field("SPDB", DBF.DOUBLE, special=SPC.MOD),
    Field("RCNT", DBF.SHORT, special=SPC.NOMOD),
    Field("RTRY", DBF.SHORT, initial="10"),
    Field("MISS", DBF.SHORT, special=SPC.NOMOD),
    Field("SPMG", DBF.MENU, menu="motorSPMG", initial="3", pp=True),
    Field("LSPG", DBF.MENU, menu="motorSPMG", initial="3", special=SPC.NOMOD),
    Field("STOP", DBF.SHORT, pp=True),
    Field("HOMF", DBF.SHORT, special=SPC.MOD, pp=True),
    Field("HOMR", DBF.SHORT, special=SPC.MOD, pp=True),
    Field("JOGF", DBF.SHORT, special=SPC.MOD, pp=True),
    Field("JOGR", DBF.SHORT, special=SPC.MOD, pp=True),
    Field("TWF", DBF.SHORT, special=SPC.MOD, pp=True),
    Field("TWR", DBF.SHORT, special=SPC.MOD, pp=True),
    Field("TWV", DBF.DOUBLE),
    Field("VAL", DBF.DOUBLE, special=SPC.MOD, pp=True),
    Field("LVAL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("DVAL", DBF.DOUBLE, special=SPC.MOD, pp=True),
    Field("LDVL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("RVAL", DBF.LONG, special=SPC.MOD, pp=True),
    Field("LRVL", DBF.LONG, special=SPC.NOMOD),
    Field("RLV", DBF.DOUBLE, special=SPC.MOD, pp=True),
    Field("LRLV", DBF.DOUBLE, special=SPC.NOMOD),
    Field("RBV", DBF.DOUBLE, special=SPC.NOMOD),
    Field("DRBV", DBF.DOUBLE, special=SPC.NOMOD),
    Field("DIFF", DBF.DOUBLE, special=SPC.NOMOD),
    Field("RDIF", DBF.LONG, special=SPC.NOMOD),
    Field("CDIR", DBF.SHORT, special=SPC.NOMOD),
    Field("RRBV", DBF.LONG, special=SPC.NOMOD),
    Field("RMP", DBF.LONG, special=SPC.NOMOD),
    Field("REP", DBF.LONG, special=SPC.NOMOD),
    Field("RVEL", DBF.LONG, special=SPC.NOMOD),
    Field("DMOV", DBF.SHORT, initial="1", special=SPC.NOMOD),
    Field("MOVN", DBF.SHORT, special=SPC.NOMOD),
    Field("MSTA", DBF.ULONG, special=SPC.NOMOD),
    Field("LVIO", DBF.SHORT, initial="1", special=SPC.NOMOD),
    Field("TDIR", DBF.SHORT, special=SPC.NOMOD),
    Field("ATHM", DBF.SHORT, special=SPC.NOMOD),
    Field("PP", DBF.SHORT, special=SPC.NOMOD),
    Field("MIP", DBF.USHORT, special=SPC.NOMOD),
    Field("MMAP", DBF.ULONG, special=SPC.NOMOD),
    Field("NMAP", DBF.ULONG, special=SPC.NOMOD),
    Field("DLY", DBF.DOUBLE, special=SPC.MOD),
    Field("CBAK", DBF.NOACCESS, special=SPC.NOMOD),
    Field("PCOF", DBF.DOUBLE, special=SPC.MOD),
    Field("ICOF", DBF.DOUBLE, special=SPC.MOD),
    Field("DCOF", DBF.DOUBLE, special=SPC.MOD),
    Field("CNEN", DBF.MENU, menu="motorTORQ", special=SPC.MOD, pp=True),
    Field("INIT", DBF.STRING, size=40),
    Field("PREM", DBF.STRING, size=40),
    Field("POST", DBF.STRING, size=40),
    Field("STOO", DBF.OUTLINK, special=SPC.MOD),
    Field("DINP", DBF.INLINK, special=SPC.MOD),
    Field("RINP", DBF.INLINK, special=SPC.MOD),
    Field("JVEL", DBF.DOUBLE, special=SPC.MOD),
    Field("JAR", DBF.DOUBLE, special=SPC.MOD),
    Field("LOCK", DBF.MENU, menu="menuYesNo", initial="NO"),
    Field("NTM", DBF.MENU, menu="menuYesNo", initial="YES"),
    Field("NTMF", DBF.USHORT, initial="2", special=SPC.MOD),
    Field("HVEL", DBF.DOUBLE, special=SPC.MOD),
    Field("STUP", DBF.MENU, menu="motorSTUP", initial="OFF", special=SPC.MOD, pp=True),
    Field("RMOD", DBF.MENU, menu="motorRMOD", initial="Default"),
    Field("ADEL", DBF.DOUBLE),
    Field("MDEL", DBF.DOUBLE),
    Field("ALST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("MLST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("SYNC", DBF.SHORT, pp=True),
    Field("IGSET", DBF.SHORT),
    Field("RSTM", DBF.MENU, menu="motorRSTM", initial="NearZero"),
)


class Msta(enum.IntFlag):
    """The MSTA status word a motor controller reports (motor.h msta_field)."""
    DIRECTION = 1 << 0      # last raw direction positive
    DONE = 1 << 1           # motion complete
    PLUS_LS = 1 << 2        # plus limit switch
    HOME = 1 << 3           # home switch
    SLIP = 1 << 4           # encoder slip enabled
    POSITION = 1 << 5       # position maintenance (closed loop) enabled
    SLIP_STALL = 1 << 6     # slip/stall detected
    ENCODER_HOME = 1 << 7
    ENCODER_PRESENT = 1 << 8
    PROBLEM = 1 << 9        # driver stopped polling
    MOVING = 1 << 10        # non-zero velocity
    GAIN_SUPPORT = 1 << 11
    COMM_ERROR = 1 << 12
    MINUS_LS = 1 << 13
    HOMED = 1 << 14


class Mip(enum.IntFlag):
    """MIP: the motion in progress, as the C record encodes it (0 = done)."""
    JOGF = 0x0001
    JOGR = 0x0002
    JOG_BL1 = 0x0004
    HOMF = 0x0008
    HOMR = 0x0010
    MOVE = 0x0020
    RETRY = 0x0040
    LOAD_P = 0x0080
    MOVE_BL = 0x0100
    STOP = 0x0200
    DELAY_REQ = 0x0400
    DELAY_ACK = 0x0800
    JOG_REQ = 0x1000
    JOG_STOP = 0x2000
    JOG_BL2 = 0x4000
    EXTERNAL = 0x8000


MIP_DONE = 0
MIP_JOG = Mip.JOGF | Mip.JOGR | Mip.JOG_BL1 | Mip.JOG_BL2
MIP_HOME = Mip.HOMF | Mip.HOMR
MIP_DELAY = Mip.DELAY_REQ | Mip.DELAY_ACK

_POS, _NEG = 0, 1                                    # motorDIR
_STOP, _PAUSE, _MOVE, _GO = 0, 1, 2, 3               # motorSPMG
_STUP_OFF, _STUP_ON, _STUP_BUSY = 0, 1, 2            # motorSTUP
_RMOD_IN_POSITION = 3
_ACCU_ACCS = 1
_OMSL_CLOSED_LOOP = 1
_VAL_LOG = DBE_VALUE | DBE_LOG
# The motorRecord.cc whose behaviour this follows; init_record puts it in VERS.
MOTOR_RECORD_VERSION = 7.4
# get_units answers in a dbr_units_size (8) buffer: at most 7 characters.
_UNITS_CHARS = 7


class MotorDriver(Protocol):
    """What the record asks of its axis (the motor dset's commands), in controller steps."""

    def move(self, position: float, velocity: float, base_velocity: float, acceleration: float) -> None:
        """MOVE_ABS + GO: go to ``position`` at up to ``velocity`` steps/s."""

    def move_velocity(self, velocity: float, acceleration: float) -> None:
        """JOG: run at ``velocity`` (signed) until stopped."""

    def home(self, forward: bool, velocity: float, base_velocity: float, acceleration: float) -> None:
        """HOME_FOR / HOME_REV: search for the home switch."""

    def stop(self) -> None:
        """STOP_AXIS: decelerate to rest."""

    def set_position(self, position: float) -> None:
        """LOAD_POS: the axis is now at ``position`` (it does not move)."""

    def request_status(self) -> None:
        """GET_INFO: report the status soon, even if nothing changed."""


# --- device support interface -------------------------------------------------------------------------------

def attach(rec: Record, driver: MotorDriver, position: float, msta: int) -> None:
    """Bind ``rec`` to its axis with the axis's current status (device support's init_record)."""
    rec.driver = driver
    rec.status = (position, msta, 0.0)
    rec.need_update = True


def report(rec: Record, position: float, msta: int, velocity: float = 0.0) -> None:
    """The axis's status callback: store it and process the record (devMotorAsyn statusCallback)."""
    rec.status = (position, msta, velocity)
    rec.need_update = True
    if not rec.PACT:
        rec.process()


# --- small helpers ------------------------------------------------------------------------------------------

def _nint(value: float) -> int:
    """The C record's NINT: round half away from zero."""
    return int(value + 0.5) if value > 0 else int(value - 0.5)


def _dir(rec: Record) -> int:
    return 1 if rec.DIR == _POS else -1


def _mark(rec: Record, *names: str) -> None:
    rec.marks.update(names)


def _unmark(rec: Record, name: str) -> None:
    rec.marks.discard(name)


def _limits_disabled(rec: Record) -> bool:
    return rec.DHLM == rec.DLLM == 0.0


def _user_cdir_sense(rec: Record) -> bool:
    """True when user and raw directions agree (DIR=Pos with MRES>=0, or DIR=Neg with MRES<0)."""
    return (rec.DIR == _POS) == (rec.MRES >= 0)


def _clear_buttons(rec: Record) -> None:
    for name in ("JOGF", "JOGR", "HOMF", "HOMR"):
        if getattr(rec, name):
            setattr(rec, name, 0)
            _mark(rec, name)


def _range_check(rec: Record, name: str, low: float, high: float) -> None:
    """Clamp a field to [low, high] (high 0 = no upper bound), posting it when changed."""
    value = getattr(rec, name)
    clamped = max(value, low)
    if high != 0.0:
        clamped = min(clamped, high)
    if clamped != value:
        setattr(rec, name, clamped)
        rec.post(name, _VAL_LOG)


def _set_if_changed(rec: Record, name: str, value: float) -> None:
    if getattr(rec, name) != value:
        setattr(rec, name, value)
        rec.post(name, _VAL_LOG)


def _acceleration_egu(rec: Record, velocity: float) -> float:
    """EGU/s² for a move at ``velocity``: from ACCS, or the ramp from VBAS in ACCL seconds."""
    speed = abs(velocity)
    if rec.ACCU == _ACCU_ACCS:
        return rec.ACCS
    if speed > rec.VBAS:
        return (speed - rec.VBAS) / rec.ACCL
    return speed / rec.ACCL


def _update_accs_from_accl(rec: Record) -> None:
    _set_if_changed(rec, "ACCS", (rec.VELO - rec.VBAS) / rec.ACCL if rec.VELO > rec.VBAS
                    else rec.VELO / rec.ACCL)


def _update_accl_from_accs(rec: Record) -> None:
    if rec.ACCS > 0.0:
        _set_if_changed(rec, "ACCL", (rec.VELO - rec.VBAS) / rec.ACCS if rec.VELO > rec.VBAS
                        else rec.VELO / rec.ACCS)


def _update_accel_from_velo(rec: Record) -> None:
    if rec.ACCU == _ACCU_ACCS:
        _update_accl_from_accs(rec)
    else:
        _update_accs_from_accl(rec)


def _enforce_min_retry_deadband(rec: Record) -> None:
    _set_if_changed(rec, "RDBD", max(rec.RDBD, abs(rec.MRES)))


def _set_userlimits(rec: Record) -> None:
    """User limits from dial limits, offset and direction."""
    if rec.DIR == _POS:
        rec.HLM, rec.LLM = rec.DHLM + rec.OFF, rec.DLLM + rec.OFF
    else:
        rec.HLM, rec.LLM = -rec.DLLM + rec.OFF, -rec.DHLM + rec.OFF
    _mark(rec, "HLM", "LLM")


def _set_raw_limit(rec: Record, high: bool, raw: float) -> None:
    """Record which controller limit (RHLM/RLLM) a dial limit became; a negative MRES swaps them."""
    if high != (rec.MRES < 0):
        rec.RHLM = raw
        _mark(rec, "RHLM")
    else:
        rec.RLLM = raw
        _mark(rec, "RLLM")


def _set_dial_highlimit(rec: Record) -> None:
    if rec.DIR == _POS:
        rec.HLM = rec.DHLM + rec.OFF
        _mark(rec, "HLM")
    else:
        rec.LLM = -rec.DHLM + rec.OFF
        _mark(rec, "LLM")
    _set_raw_limit(rec, True, rec.DHLM / rec.MRES)
    _mark(rec, "DHLM")


def _set_dial_lowlimit(rec: Record) -> None:
    if rec.DIR == _POS:
        rec.LLM = rec.DLLM + rec.OFF
        _mark(rec, "LLM")
    else:
        rec.HLM = -rec.DLLM + rec.OFF
        _mark(rec, "HLM")
    _set_raw_limit(rec, False, rec.DLLM / rec.MRES)
    _mark(rec, "DLLM")


def _set_user_highlimit(rec: Record) -> None:
    if rec.DIR == _POS:
        rec.DHLM = rec.HLM - rec.OFF
        _mark(rec, "DHLM")
        _set_raw_limit(rec, True, rec.DHLM / rec.MRES)
    else:
        rec.DLLM = -rec.HLM + rec.OFF
        _mark(rec, "DLLM")
        _set_raw_limit(rec, False, rec.DLLM / rec.MRES)
    _mark(rec, "HLM")


def _set_user_lowlimit(rec: Record) -> None:
    if rec.DIR == _POS:
        rec.DLLM = rec.LLM - rec.OFF
        _mark(rec, "DLLM")
        _set_raw_limit(rec, False, rec.DLLM / rec.MRES)
    else:
        rec.DHLM = -rec.LLM + rec.OFF
        _mark(rec, "DHLM")
        _set_raw_limit(rec, True, rec.DHLM / rec.MRES)
    _mark(rec, "LLM")


def _readback_raw(rec: Record) -> None:
    """RRBV/DRBV from the motor position, or from the readback link (URIP)."""
    if rec.URIP and not rec.link_is_constant("RDBL"):
        value = rec.get_link("RDBL", DBF.DOUBLE)
        if value is None:
            if rec.MIP != MIP_DONE:
                _clear_buttons(rec)     # a readback that fails stops the move
                rec.STOP = 1
                _mark(rec, "STOP")
            return
        rec.RRBV = _nint(value * rec.RRES / rec.MRES)
    else:
        rec.RRBV = rec.RMP
    rec.DRBV = rec.RRBV * rec.MRES


def _sync_target_position(rec: Record) -> None:
    """Targets := readbacks (a stop, SYNC)."""
    _readback_raw(rec)
    rec.RBV = rec.DRBV * _dir(rec) + rec.OFF
    rec.VAL = rec.LVAL = rec.RBV
    rec.DVAL = rec.LDVL = rec.DRBV
    rec.RVAL = rec.LRVL = _nint(rec.DVAL / rec.MRES)
    _mark(rec, "RRBV", "DRBV", "RBV", "VAL", "DVAL", "RVAL")


# --- device status ------------------------------------------------------------------------------------------

def _update_values(rec: Record) -> bool:
    """Take the axis's last report, if there is a new one (devMotorAsyn update_values)."""
    if not rec.need_update:
        return False
    position, msta, velocity = rec.status
    raw = math.floor(position + 0.5)
    if rec.RMP != raw:
        rec.RMP = raw
        rec.post("RMP", _VAL_LOG)
    if rec.REP != raw:
        rec.REP = raw
        rec.post("REP", _VAL_LOG)
    rec.MSTA = msta
    raw_velocity = math.floor(velocity)
    if rec.RVEL != raw_velocity:
        rec.RVEL = raw_velocity
        rec.post("RVEL", _VAL_LOG)
    rec.need_update = False
    return True


def _process_motor_info(rec: Record) -> None:
    """Readbacks, limit switches, MOVN and ATHM from the status word."""
    old = (rec.DRBV, rec.RBV, rec.RRBV, rec.TDIR, rec.MOVN, rec.HLS, rec.LLS, rec.ATHM)
    msta = rec.MSTA
    if rec.UEIP:
        rec.UEIP = 0            # there is no encoder to use
        rec.post("UEIP", _VAL_LOG)
    _readback_raw(rec)
    rec.RBV = _dir(rec) * rec.DRBV + rec.OFF
    rec.TDIR = int(bool(msta & Msta.DIRECTION))
    rec.RHLS = int(bool(msta & Msta.PLUS_LS))
    rec.RLLS = int(bool(msta & Msta.MINUS_LS))
    # A limit switch only counts when it is the one in the direction of the commanded motion.
    ls_active = (rec.RHLS and rec.CDIR) or (rec.RLLS and not rec.CDIR)
    if _user_cdir_sense(rec):
        rec.HLS, rec.LLS = rec.RHLS, rec.RLLS
    else:
        rec.HLS, rec.LLS = rec.RLLS, rec.RHLS
    if ls_active or msta & (Msta.DONE | Msta.PROBLEM):
        rec.MOVN = 0
        if ls_active or msta & Msta.PROBLEM:
            _clear_buttons(rec)
    else:
        rec.MOVN = 1
    rec.ATHM = int(bool(msta & Msta.HOME))
    new = (rec.DRBV, rec.RBV, rec.RRBV, rec.TDIR, rec.MOVN, rec.HLS, rec.LLS, rec.ATHM)
    for name, before, after in zip(("DRBV", "RBV", "RRBV", "TDIR", "MOVN", "HLS", "LLS", "ATHM"),
                                   old, new, strict=True):
        if before != after:
            _mark(rec, name)
    rec.DIFF = rec.DVAL - rec.DRBV
    rec.RDIF = _nint(rec.DIFF / rec.MRES)
    _mark(rec, "DIFF", "RDIF")


def _raw_limit_active(rec: Record) -> bool:
    return bool((rec.RHLS and rec.CDIR) or (rec.RLLS and not rec.CDIR))


# --- init_record --------------------------------------------------------------------------------------------

def _check_speed_and_resolution(rec: Record) -> None:
    """Reconcile the two ways speeds and resolution can be given (revolutions or EGU)."""
    if rec.SREV <= 0:
        rec.SREV = 200
    if rec.UREV != 0.0:
        rec.MRES = rec.UREV / rec.SREV
    if rec.MRES == 0.0:
        rec.MRES = 1.0
    if rec.UREV != rec.MRES * rec.SREV:
        rec.UREV = rec.MRES * rec.SREV
    urev = abs(rec.UREV)
    if rec.SMAX > 0.0:
        rec.VMAX = rec.SMAX * urev
    elif rec.VMAX > 0.0:
        rec.SMAX = rec.VMAX / urev
    else:
        rec.SMAX = rec.VMAX = 0.0
    if rec.SBAS != 0.0:
        _range_check(rec, "SBAS", 0.0, rec.SMAX)
        rec.VBAS = rec.SBAS * urev
    else:
        _range_check(rec, "VBAS", 0.0, rec.VMAX)
        rec.SBAS = rec.VBAS / urev
    if rec.S != 0.0:
        _range_check(rec, "S", rec.SBAS, rec.SMAX)
        rec.VELO = rec.S * urev
    else:
        _range_check(rec, "VELO", rec.VBAS, rec.VMAX)
        rec.S = rec.VELO / urev
    # Raw limits given in the database win over dial limits (RLLM/RHLM are the controller's).
    low_dial, high_dial = ("DLLM", "DHLM") if rec.MRES > 0 else ("DHLM", "DLLM")
    if rec.RLLM != 0.0:
        setattr(rec, low_dial, rec.RLLM * abs(rec.MRES))
    rec.RLLM = getattr(rec, low_dial) / abs(rec.MRES)
    if rec.RHLM != 0.0:
        setattr(rec, high_dial, rec.RHLM * abs(rec.MRES))
    rec.RHLM = getattr(rec, high_dial) / abs(rec.MRES)
    if rec.SBAK != 0.0:
        _range_check(rec, "SBAK", rec.SBAS, rec.SMAX)
        rec.BVEL = rec.SBAK * urev
    else:
        _range_check(rec, "BVEL", rec.VBAS, rec.VMAX)
        rec.SBAK = rec.BVEL / urev
    if rec.ACCS > 0.0:
        _update_accl_from_accs(rec)
    else:
        if rec.ACCL == 0.0:
            rec.ACCL = 0.1
        _update_accs_from_accl(rec)
    if rec.BACC == 0.0:
        rec.BACC = 0.1
    if rec.JVEL == 0.0:
        rec.JVEL = rec.VELO
    else:
        _range_check(rec, "JVEL", rec.VBAS, rec.VMAX)
    if rec.JAR == 0.0:
        rec.JAR = rec.VELO / rec.ACCL
    if rec.HVEL == 0.0:
        rec.HVEL = rec.VBAS
    else:
        _range_check(rec, "HVEL", rec.VBAS, rec.VMAX)


def init_motor(rec: Record) -> None:
    if rec.driver is None:
        raise FieldValueError("DTYP", "a motor record needs its axis: declare it under 'devices:' "
                                      "(type: motorsim), not under 'records:'")
    rec.marks = set()
    rec.VERS = MOTOR_RECORD_VERSION
    _check_speed_and_resolution(rec)
    _enforce_min_retry_deadband(rec)
    if rec.link_is_constant("DOL"):
        rec.UDF = 0
    _update_values(rec)
    if rec.ERES == 0.0:
        rec.ERES = rec.MRES
    _process_motor_info(rec)
    if rec.OMSL != _OMSL_CLOSED_LOOP:
        rec.VAL = rec.RBV
        rec.DVAL = rec.DRBV
        rec.RVAL = _nint(rec.DVAL / rec.MRES)
    _set_dial_highlimit(rec)
    _set_dial_lowlimit(rec)
    rec.DMOV = 1
    rec.MOVN = 0
    rec.LSPG = rec.SPMG = _GO
    rec.DIFF = rec.DVAL - rec.DRBV
    rec.RDIF = _nint(rec.DIFF / rec.MRES)
    rec.LVAL, rec.LDVL, rec.LRVL = rec.VAL, rec.DVAL, rec.RVAL
    rec.LVIO = int(not _limits_disabled(rec) and (
        rec.DRBV > rec.DHLM + rec.MRES or rec.DRBV < rec.DLLM - rec.MRES or rec.DLLM > rec.DHLM))
    _mark(rec, "MSTA")
    _monitor(rec)


# --- process ------------------------------------------------------------------------------------------------

def process_motor(rec: Record) -> int | None:
    """motorRecord.cc process(): its status is the RLNK write's (dbPutLink) when it gets that far; the
    early exits (a stop on a limit switch, the DLY wait) return success."""
    old_lvio, old_msta = rec.LVIO, rec.MSTA
    rec.PACT = 1
    callback = _update_values(rec)
    if rec.MSTA != old_msta:
        _mark(rec, "MSTA")
    if callback or rec.MIP & Mip.DELAY_ACK:
        # A report from the axis, or the end of the DLY wait (which continues one).
        callback = True
        if not _after_device_update(rec):
            _finish(rec, callback)
            return None

    # Soft limits while jogging or homing.
    if not _limits_disabled(rec):
        if rec.MIP & MIP_JOG:
            rec.LVIO = int(bool((rec.JOGF and rec.RBV > rec.HLM - rec.JVEL)
                                or (rec.JOGR and rec.RBV < rec.LLM + rec.JVEL)
                                or rec.DLLM > rec.DHLM))
        elif rec.MIP & MIP_HOME:
            rec.LVIO = 0
    else:
        rec.LVIO = 0
    if rec.LVIO != old_lvio:
        _mark(rec, "LVIO")
        if rec.LVIO and not rec.SET and not rec.IGSET:
            rec.STOP = 1
            _mark(rec, "STOP")
            _clear_buttons(rec)

    if rec.STOP or rec.SPMG in (_STOP, _PAUSE) or not callback or rec.DMOV or rec.MIP & Mip.RETRY:
        _do_work(rec, callback)
    status = rec.put_link("RLNK", DBF.DOUBLE, rec.RBV)
    _finish(rec, callback)
    return status


def _after_device_update(rec: Record) -> bool:
    """The device reported (or the DLY wait ended): follow the motion. False means "report and stop here"."""
    _process_motor_info(rec)
    if rec.MOVN:
        # Someone else (another record, a controller panel) may move the axis: DMOV follows MOVN.
        if rec.DMOV:
            rec.DMOV = 0
            rec.MIP |= Mip.EXTERNAL
            rec.PP = 1
            _mark(rec, "DMOV", "MIP")
        # A new target behind us: stop, and the retry after the stop goes there.
        sign_rdif = 0 if rec.RDIF < 0 else 1
        deadband = rec.NTMF * (abs(rec.BDST) + rec.RDBD)
        if (rec.NTM and sign_rdif != rec.CDIR and abs(rec.DIFF) > deadband
                and rec.MIP & (Mip.RETRY | Mip.MOVE) and not rec.MIP & Mip.STOP):
            rec.driver.stop()
            rec.MIP |= Mip.STOP
            rec.PP = 0
            _mark(rec, "MIP")
        return True
    if rec.STUP == _STUP_BUSY:
        return True
    # The axis has stopped: done, unless something follows.
    if not rec.DMOV:
        rec.DMOV = 1
        _mark(rec, "DMOV")
        if rec.MIP in (Mip.JOGF, Mip.JOGR):
            rec.MIP = MIP_DONE
            _mark(rec, "MIP")
            _clear_buttons(rec)
            rec.PP = 1
    if rec.MIP != MIP_DONE and _raw_limit_active(rec):
        # Stopped on a limit switch: ask once more for the status before calling it done.
        rec.DMOV = 0
        _unmark(rec, "DMOV")
        rec.driver.request_status()
        rec.PP = 1
        rec.MIP = MIP_DONE
        _mark(rec, "MIP")
        return False
    if rec.PP:
        if rec.VAL != rec.LVAL and not rec.MIP & (Mip.STOP | Mip.JOG_STOP):
            # A new target arrived while stopping for something else: go there now.
            if rec.MIP in (Mip.HOMF, Mip.HOMR):
                _clear_buttons(rec)
            rec.MIP = MIP_DONE
            return True
        _post_process(rec)
    if _raw_limit_active(rec) or rec.MIP == Mip.LOAD_P:
        rec.MIP = MIP_DONE
        _mark(rec, "MIP")
    elif rec.DMOV:
        if rec.MIP & Mip.DELAY_ACK or rec.DLY <= 0.0:
            if rec.MIP & Mip.DELAY_ACK and not rec.MIP & Mip.DELAY_REQ:
                # DLY has passed: one more status read, then the retry check.
                rec.MIP |= MIP_DELAY
                rec.driver.request_status()
                rec.DMOV = 0
                _unmark(rec, "DMOV")
                return False
            if rec.STUP != _STUP_ON and rec.MIP != MIP_DONE:
                rec.MIP &= ~MIP_DELAY
                _mark(rec, "MIP")
                _maybe_retry(rec)
        elif "DMOV" in rec.marks:
            # Settle for DLY seconds before DMOV goes to 1.
            if not rec.MIP & Mip.DELAY_REQ:
                rec.MIP |= Mip.DELAY_REQ
                _mark(rec, "MIP")
                rec.db.call_later(rec.DLY, lambda: _delay_done(rec))
            rec.DMOV = 0
            _unmark(rec, "DMOV")
            return False
    return True


def _delay_done(rec: Record) -> None:
    if rec.MIP & Mip.DELAY_REQ:
        rec.MIP = (rec.MIP & ~Mip.DELAY_REQ) | Mip.DELAY_ACK
        rec.db.scan_once(rec)


def _finish(rec: Record, callback: bool) -> None:
    if callback and rec.STUP == _STUP_BUSY:
        rec.STUP = _STUP_OFF
        _mark(rec, "STUP")
    rec.stamp()
    _alarm(rec)
    _monitor(rec)
    if rec.DMOV:
        rec._fwd_link_pending = False
        rec.fwd_link()
    else:
        rec._fwd_link_pending = True
    rec.PACT = 0


def _post_process(rec: Record) -> None:
    """After a stop: targets follow the readback, then the next phase (homing, backlash) if any."""
    rec.PP = 0
    mip = rec.MIP
    if rec.OMSL != _OMSL_CLOSED_LOOP and not mip & (Mip.MOVE | Mip.MOVE_BL | Mip.JOG_BL1 | Mip.JOG_BL2):
        rec.VAL = rec.RBV
        rec.DVAL = rec.DRBV
        rec.RVAL = _nint(rec.DVAL / rec.MRES)
        rec.DIFF = 0.0
        rec.RDIF = 0
        _mark(rec, "VAL", "DVAL", "RVAL", "DIFF", "RDIF")
    if mip & Mip.LOAD_P:
        rec.MIP = MIP_DONE
    elif mip & MIP_HOME:
        if mip & Mip.STOP:
            # Stopped first because a home search was asked for while moving: search now.
            rec.MIP &= ~Mip.STOP
            _start_home(rec)
        elif mip & Mip.HOMF:
            rec.MIP &= ~Mip.HOMF
            rec.HOMF = 0
            _mark(rec, "HOMF")
        elif mip & Mip.HOMR:
            rec.MIP &= ~Mip.HOMR
            rec.HOMR = 0
            _mark(rec, "HOMR")
    elif mip & (Mip.JOG_STOP | Mip.MOVE):
        if abs(rec.BDST) >= abs(rec.MRES):
            _backlash_after(rec, jog=bool(mip & Mip.JOG_STOP))
        rec.MIP &= ~(Mip.JOG_STOP | Mip.MOVE)
    elif mip & Mip.JOG_BL1:
        _backlash_final(rec)
        rec.MIP = Mip.JOG_BL2
        rec.PP = 1
    rec.LVAL, rec.LDVL, rec.LRVL = rec.VAL, rec.DVAL, rec.RVAL
    rec.MIP &= ~Mip.STOP
    _mark(rec, "MIP")


def _backlash_after(rec: Record, jog: bool) -> None:
    """Second phase of a move against the preferred direction (or of a jog): take out the backlash."""
    vbase = rec.VBAS / abs(rec.MRES)
    bpos = (rec.DVAL - rec.BDST) / rec.MRES
    rec.DMOV = 0
    _unmark(rec, "DMOV")
    if jog:
        velocity = rec.VELO / abs(rec.MRES)
        velocity = velocity if velocity > vbase else vbase + 1
        acceleration = _acceleration_egu(rec, rec.VELO) / abs(rec.MRES)
        rec.driver.move(bpos, velocity, vbase, acceleration)
        rec.MIP = Mip.JOG_BL1
    else:
        _backlash_final(rec)
        rec.MIP = Mip.MOVE_BL
    rec.CDIR = 0 if rec.DIFF / rec.MRES < 0.0 else 1
    rec.PP = 1


def _backlash_final(rec: Record) -> None:
    """The approach to the target from one backlash distance away, at BVEL."""
    vbase = rec.VBAS / abs(rec.MRES)
    bvel = rec.BVEL / abs(rec.MRES)
    bacc = (bvel - vbase) / rec.BACC if bvel > vbase else bvel / rec.BACC
    bvel = bvel if bvel > vbase else vbase + 1
    bpos = (rec.DVAL - rec.BDST) / rec.MRES
    newpos = bpos + rec.FRAC * (rec.DVAL / rec.MRES - bpos)
    rec.RVAL = _nint(newpos)
    rec.DMOV = 0
    _unmark(rec, "DMOV")
    rec.driver.move(newpos, bvel, vbase, bacc)
    rec.CDIR = 0 if rec.DIFF / rec.MRES < 0.0 else 1


def _start_home(rec: Record) -> None:
    vbase = rec.VBAS / abs(rec.MRES)
    hvel = rec.HVEL / abs(rec.MRES)
    acceleration = (hvel - vbase) / rec.ACCL if hvel > vbase else hvel / rec.ACCL
    forward = bool(rec.MIP & Mip.HOMF) == (rec.MRES > 0.0)
    rec.driver.home(forward, hvel, vbase, acceleration)
    rec.DMOV = 0
    rec.RCNT = 0
    rec.PP = 1
    cdir = 1 if rec.MIP & Mip.HOMF else 0
    rec.CDIR = 1 - cdir if rec.MRES < 0.0 else cdir
    _mark(rec, "DMOV", "RCNT")


def _maybe_retry(rec: Record) -> None:
    """The axis stopped: done if close enough to the target, else move again (up to RTRY times)."""
    user_cdir = rec.CDIR if _user_cdir_sense(rec) else not rec.CDIR
    if abs(rec.DIFF) >= rec.RDBD and not (rec.HLS and user_cdir) and not (rec.LLS and not user_cdir):
        if rec.RTRY == 0:
            rec.MIP &= Mip.JOG_REQ
        else:
            rec.RCNT += 1
            if rec.RCNT > rec.RTRY:
                rec.MIP = MIP_DONE
                if (rec.JOGF and not rec.HLS) or (rec.JOGR and not rec.LLS):
                    rec.MIP |= Mip.JOG_REQ
                rec.LVAL, rec.LDVL, rec.LRVL = rec.VAL, rec.DVAL, rec.RVAL
                rec.MISS = 1
                _mark(rec, "MISS")
            else:
                rec.DMOV = 0
                _unmark(rec, "DMOV")
                rec.MIP = Mip.RETRY
            _mark(rec, "RCNT")
    else:
        rec.MIP &= Mip.JOG_REQ
        if rec.MISS:
            rec.MISS = 0
            _mark(rec, "MISS")
        if rec.SPMG == _MOVE:
            rec.SPMG = _PAUSE
            _mark(rec, "SPMG")
    _mark(rec, "MIP")


def _load_pos(rec: Record) -> None:
    """Redefine the axis position as DVAL without moving (SET mode, new MRES)."""
    newpos = rec.DVAL / rec.MRES
    rec.LDVL, rec.LVAL = rec.DVAL, rec.VAL
    if rec.RVAL != _nint(newpos):
        _mark(rec, "RVAL")
    rec.LRVL = rec.RVAL = _nint(newpos)
    if rec.FOFF:
        rec.VAL = rec.LVAL = rec.OFF + rec.DVAL * _dir(rec)
        _mark(rec, "VAL")
    else:
        rec.OFF = rec.VAL - rec.DVAL * _dir(rec)
        _mark(rec, "OFF")
        _set_userlimits(rec)
    rec.MIP = Mip.LOAD_P
    _mark(rec, "MIP")
    if rec.DMOV:
        rec.DMOV = 0
        _mark(rec, "DMOV")
    rec.driver.set_position(newpos)
    rec.driver.request_status()


def _do_work(rec: Record, callback: bool) -> None:
    """Act on whatever changed: stop/pause/go, resolution, home, jog, tweak, a new target."""
    direction = _dir(rec)
    stop_or_pause = rec.SPMG in (_STOP, _PAUSE)
    old_lvio = rec.LVIO
    if rec.STUP == _STUP_ON:
        rec.STUP = _STUP_BUSY
        _mark(rec, "STUP")
        rec.driver.request_status()

    if rec.SPMG != rec.LSPG or rec.STOP:
        stop = bool(rec.STOP)
        if rec.SPMG != rec.LSPG:
            rec.LSPG = rec.SPMG
        else:
            rec.STOP = 0
            _mark(rec, "STOP")
        if stop_or_pause or stop:
            if rec.SPMG == _STOP or stop:
                if rec.MIP == MIP_DONE or rec.MIP & (Mip.STOP | Mip.RETRY):
                    if rec.MIP & Mip.RETRY:
                        rec.MIP = MIP_DONE
                        rec.DMOV = 1
                        _mark(rec, "MIP", "DMOV")
                    rec.driver.stop()
                    return
                if rec.MOVN:
                    rec.PP = 1          # targets follow the readback once stopped
                    _clear_buttons(rec)
                else:
                    _sync_target_position(rec)
            if rec.MIP & MIP_HOME:
                _clear_buttons(rec)
            if not rec.MIP & Mip.DELAY_REQ:
                rec.MIP = Mip.STOP
                _mark(rec, "MIP")
            rec.driver.stop()
            return
        if rec.SPMG == _GO:
            if (rec.JOGF and not rec.HLS) or (rec.JOGR and not rec.LLS):
                rec.MIP = Mip.JOG_REQ
                _mark(rec, "MIP")
            elif rec.MIP == Mip.STOP:
                rec.MIP = MIP_DONE
                _mark(rec, "MIP")
        else:
            rec.MIP = MIP_DONE
            rec.RCNT = 0
            _mark(rec, "MIP", "RCNT")

    if rec.marks & {"MRES", "ERES", "UEIP"}:
        _enforce_min_retry_deadband(rec)
        if rec.SET and not rec.IGSET:
            rec.PP = 1
            rec.driver.request_status()
        elif not rec.MIP & Mip.LOAD_P:
            _load_pos(rec)
        return

    if rec.OMSL == _OMSL_CLOSED_LOOP and not rec.link_is_constant("DOL"):
        value = rec.get_link("DOL", DBF.DOUBLE)
        if value is None:
            rec.UDF = 1
            return
        rec.VAL = value
        rec.UDF = 0
    elif not _buttons(rec, stop_or_pause):
        return

    if rec.VAL != rec.LVAL:
        _mark(rec, "VAL")
        if rec.SET and not rec.IGSET and not rec.FOFF:
            # Calibration: VAL is redefined, the offset absorbs it; nothing moves.
            rec.OFF = rec.VAL - rec.DVAL * direction
            rec.RBV = rec.DRBV * direction + rec.OFF
            _mark(rec, "OFF", "RBV")
            _set_userlimits(rec)
            rec.LVAL = rec.VAL
            rec.MIP = MIP_DONE
            rec.DMOV = 1
            _mark(rec, "MIP", "DMOV")
            return
        rec.DVAL = (rec.VAL - rec.OFF) / direction

    if stop_or_pause:
        return
    if rec.DVAL != rec.LDVL or not rec.DMOV:
        _move_to_dval(rec, old_lvio)
    elif rec.SYNC and rec.MIP == MIP_DONE:
        _sync_target_position(rec)
        rec.SYNC = 0
        rec.post("SYNC", _VAL_LOG)
    elif not callback and rec.STUP == _STUP_OFF:
        rec.STUP = _STUP_BUSY
        _mark(rec, "STUP")
        rec.driver.request_status()


def _buttons(rec: Record, stop_or_pause: bool) -> bool:
    """Home, jog, tweak, relative and raw targets. False when the work is done for this pass."""
    hls, lls = (rec.HLS, rec.LLS) if rec.DIR == _POS else (rec.LLS, rec.HLS)
    if (rec.HOMF and not rec.MIP & Mip.HOMF and not hls) or (rec.HOMR and not rec.MIP & Mip.HOMR and not lls):
        if stop_or_pause:
            rec.DMOV = 0
            _mark(rec, "DMOV")
            return False
        rec.MIP = Mip.HOMF if rec.HOMF else Mip.HOMR
        _mark(rec, "MIP")
        rec.PP = 1
        if rec.MOVN:
            rec.MIP |= Mip.STOP         # stop first; the search starts from _post_process
            rec.driver.stop()
        else:
            _start_home(rec)
        return False

    if not rec.MIP & MIP_JOG and not stop_or_pause and rec.MIP & Mip.JOG_REQ:
        if not _limits_disabled(rec) and ((rec.JOGF and rec.VAL > rec.HLM - rec.JVEL)
                                          or (rec.JOGR and rec.VAL < rec.LLM + rec.JVEL)
                                          or rec.DLLM > rec.DHLM):
            rec.LVIO = 1
            _mark(rec, "LVIO")
            for name in ("JOGF", "JOGR"):
                if getattr(rec, name):
                    setattr(rec, name, 0)
                    _mark(rec, name)
            return False
        rec.MIP = Mip.JOGF if rec.JOGF else Mip.JOGR
        _mark(rec, "MIP")
        if rec.MOVN:
            rec.PP = 1
            rec.MIP |= Mip.STOP
            rec.driver.stop()
        else:
            velocity = rec.JVEL * _dir(rec) / rec.MRES
            rec.DMOV = 0
            _mark(rec, "DMOV")
            rec.PP = 1
            cdir = 1
            if not rec.JOGF:
                cdir = 0
                velocity = -velocity
            if rec.MRES < 0.0:
                cdir = 1 - cdir
            if rec.DIR == _NEG:
                cdir = 1 - cdir
            rec.CDIR = cdir
            rec.driver.move_velocity(velocity, rec.JAR / abs(rec.MRES))
        return False
    if not rec.MIP & Mip.JOG_REQ and rec.MIP & (Mip.JOGF | Mip.JOGR):
        rec.PP = 1
        rec.MIP = (rec.MIP | Mip.JOG_STOP) & ~(Mip.JOGF | Mip.JOGR)
        rec.driver.stop()
        return False
    if rec.MIP & (Mip.JOG_STOP | Mip.JOG_BL1 | Mip.JOG_BL2):
        return False

    if rec.TWF or rec.TWR:
        rec.VAL += rec.TWV if rec.TWF else -rec.TWV
        for name in ("TWF", "TWR"):
            if getattr(rec, name):
                setattr(rec, name, 0)
                rec.post(name, _VAL_LOG)
    if rec.RLV != rec.LRLV:
        rec.VAL += rec.RLV
        rec.RLV = rec.LRLV = 0.0
        _mark(rec, "RLV")
    if rec.RVAL != rec.LRVL:
        rec.DVAL = rec.RVAL * rec.MRES
    return True


def _move_to_dval(rec: Record, old_lvio: int) -> None:
    """A new dial target (or a blink of DMOV): check it and send the move."""
    if rec.DVAL != rec.LDVL:
        _mark(rec, "DVAL")
    diff = rec.DVAL - rec.DRBV
    if rec.DIFF != diff:
        rec.DIFF = diff
        _mark(rec, "DIFF")
    rec.RDIF = _nint(rec.DIFF / rec.MRES)
    _mark(rec, "RDIF")
    if rec.SET and not rec.IGSET:
        if not rec.MIP & Mip.LOAD_P:
            _load_pos(rec)
        return

    mres = rec.MRES
    currpos = rec.LDVL / mres
    newpos = rec.DVAL / mres
    vbase = rec.VBAS / abs(mres)
    velocity = rec.VELO / abs(mres)
    acceleration = _acceleration_egu(rec, rec.VELO) / abs(mres)
    rec.VAL = rec.DVAL * _dir(rec) + rec.OFF
    if rec.VAL != rec.LVAL:
        _mark(rec, "VAL")
    rec.RVAL = _nint(newpos)
    if rec.RVAL != rec.LRVL:
        _mark(rec, "RVAL")

    # Under one step (or inside the retry deadband, for a retry): nothing to do.
    steps = abs(_nint(newpos) - _nint(rec.DRBV / mres))
    if not rec.MIP & Mip.RETRY:
        too_small = steps < 1 or (rec.SPDB > 0 and rec.DVAL - rec.SPDB < rec.DRBV < rec.DVAL + rec.SPDB)
    else:
        too_small = steps < _nint(rec.RDBD / abs(mres))
    if too_small:
        if not rec.DMOV and rec.MIP in (MIP_DONE, Mip.RETRY):
            rec.DMOV = 1
            _mark(rec, "DMOV")
            if rec.MIP != MIP_DONE:
                rec.MIP = MIP_DONE
                _mark(rec, "MIP")
        rec.LDVL, rec.LVAL, rec.LRVL = rec.DVAL, rec.VAL, rec.RVAL
        return

    if not rec.MIP & Mip.RETRY:
        if rec.RCNT:
            _mark(rec, "RCNT")
        rec.RCNT = 0
    elif rec.RMOD == _RMOD_IN_POSITION:
        return

    preferred_dir = (rec.DVAL > rec.LDVL) == (rec.BDST > 0)
    if _limits_disabled(rec):
        rec.LVIO = 0
    elif rec.DLLM > rec.DHLM:
        rec.LVIO = 1
    elif (rec.DHLM < rec.DVAL < rec.LDVL) or (rec.LDVL < rec.DVAL < rec.DLLM):
        rec.LVIO = 0                     # coming back toward the allowed range is allowed
    else:
        target = rec.DVAL if preferred_dir else rec.DVAL - rec.BDST
        rec.LVIO = int(target > rec.DHLM or target < rec.DLLM)
    if rec.URIP and not rec.link_is_constant("RDBL") and rec.get_link("RDBL", DBF.DOUBLE) is None:
        readback_ok = False
    else:
        readback_ok = True
    if rec.LVIO != old_lvio:
        _mark(rec, "LVIO")
    if rec.LVIO or not readback_ok:
        rec.VAL, rec.DVAL, rec.RVAL = rec.LVAL, rec.LDVL, rec.LRVL
        _mark(rec, "VAL", "DVAL", "RVAL")
        if rec.MIP & Mip.RETRY:
            rec.MIP = MIP_DONE
            _mark(rec, "MIP")
        if rec.MIP == MIP_DONE and not rec.DMOV:
            rec.DMOV = 1
            _mark(rec, "DMOV")
        return

    if rec.MIP not in (MIP_DONE, Mip.RETRY):
        return      # moving: the retry when this motion ends goes to the new target
    rec.MIP |= Mip.MOVE
    _mark(rec, "MIP")
    if rec.DMOV:
        rec.DMOV = 0
        _mark(rec, "DMOV")
    rec.LDVL, rec.LVAL, rec.LRVL = rec.DVAL, rec.VAL, rec.RVAL
    position = currpos + rec.FRAC * (newpos - currpos)
    if abs(rec.BDST) < abs(mres) or (preferred_dir and rec.BVEL == rec.VELO and rec.BACC == rec.ACCL):
        pass
    elif preferred_dir and abs(newpos - currpos) <= 1.0 + abs(rec.BDST) / abs(mres):
        # Already within the backlash distance: approach at the backlash speed.
        velocity = rec.BVEL / abs(mres)
        acceleration = (velocity - vbase) / rec.BACC if velocity > vbase else velocity / rec.BACC
    else:
        position = (rec.DVAL - rec.BDST) / mres
        rec.PP = 1                       # the backlash approach follows from _post_process
    rec.CDIR = 0 if rec.RDIF < 0 else 1
    rec.driver.move(position, velocity, vbase, acceleration)


# --- alarms and monitors ------------------------------------------------------------------------------------

def _alarm(rec: Record) -> None:
    if rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, AlarmSeverity.INVALID)
        return
    if rec.HLSV and (rec.HLS or rec.DVAL > rec.DHLM):
        rec.set_sevr(AlarmStatus.HIGH, rec.HLSV)
        return
    if rec.HLSV and (rec.LLS or rec.DVAL < rec.DLLM):
        rec.set_sevr(AlarmStatus.LOW, rec.HLSV)
        return
    if rec.MSTA & Msta.COMM_ERROR:
        rec.MSTA &= ~Msta.COMM_ERROR
        _mark(rec, "MSTA")
        rec.set_sevr(AlarmStatus.COMM, AlarmSeverity.INVALID)
    if rec.MSTA & (Msta.SLIP_STALL | Msta.PROBLEM):
        rec.set_sevr(AlarmStatus.STATE, AlarmSeverity.MAJOR)


# The posting order of monitor(): readbacks first, so RBV is out before MOVN and DMOV.
_FREQUENT = ("RRBV", "DRBV", "DIFF", "RDIF", "MSTA")
_OTHERS = ("VAL", "DVAL", "RVAL", "TDIR", "MIP", "HLM", "LLM", "SPMG", "RCNT", "RLV", "OFF", "DHLM",
           "DLLM", "HLS", "LLS", "ATHM", "MRES", "ERES", "UEIP", "LVIO", "STOP", "SBAS", "SREV", "UREV",
           "VELO", "VBAS", "MISS", "MOVN", "DMOV", "STUP", "JOGF", "JOGR", "HOMF", "HOMR", "RHLM", "RLLM")


def _monitor(rec: Record) -> None:
    alarm_mask = alarms.reset_alarms(rec)
    marks = rec.marks
    if rec.MDEL == 0.0 and rec.ADEL == 0.0:
        mask = alarm_mask | (_VAL_LOG if "RBV" in marks else 0)
        if mask:
            rec.post("RBV", mask)
    elif "RBV" in marks:
        mask = alarm_mask
        if rec.MDEL == 0.0 or abs(rec.MLST - rec.RBV) > rec.MDEL:
            mask |= DBE_VALUE
            rec.MLST = rec.RBV
        if rec.ADEL == 0.0 or abs(rec.ALST - rec.RBV) > rec.ADEL:
            mask |= DBE_LOG
            rec.ALST = rec.RBV
        if mask:
            rec.post("RBV", mask)
    _post_marked(rec, _FREQUENT, alarm_mask)
    if marks - {"RBV", *_FREQUENT}:
        _post_marked(rec, _OTHERS, alarm_mask)
    marks.clear()


def _post_marked(rec: Record, names: Iterable[str], alarm_mask: int) -> None:
    marks = rec.marks
    raw_sense = _user_cdir_sense(rec)
    for name in names:
        mask = alarm_mask | (_VAL_LOG if name in marks else 0)
        if not mask:
            continue
        rec.post(name, mask)
        if name == "HLS":
            rec.post("RHLS" if raw_sense else "RLLS", mask)
        elif name == "LLS":
            rec.post("RLLS" if raw_sense else "RHLS", mask)


# --- special ------------------------------------------------------------------------------------------------

_DRIVE_FIELDS = frozenset({"VAL", "DVAL", "RVAL", "RLV", "TWF", "TWR"})


def special_motor(rec: Record, fld: Field, after: bool) -> None:
    name = fld.name
    if not after:
        if name in _DRIVE_FIELDS:
            # A new target: DMOV drops before processing, even for the same value (the "blink").
            if rec.DISA != rec.DISV and not rec.DISP and rec.DMOV:
                rec.DMOV = 0
                rec.post("DMOV", _VAL_LOG)
        elif name in ("HOMF", "HOMR") and rec.MIP & MIP_HOME:
            raise CAError(ECA.PUTFAIL, f"{rec.NAME}: a home search is already in progress")
        elif name == "STUP" and rec.STUP != _STUP_OFF:
            raise CAError(ECA.PUTFAIL, f"{rec.NAME}: a status update is already in progress")
        return
    if name in ("VAL", "DVAL", "RLV") and not math.isfinite(getattr(rec, name)):
        # A NaN or infinite target cannot be moved to (the C record would send it to the controller):
        # refuse the put, keep the targets consistent and undo the blink of a motor at rest.
        if name == "VAL":
            rec.VAL = rec.DVAL * _dir(rec) + rec.OFF
        elif name == "DVAL":
            rec.DVAL = (rec.VAL - rec.OFF) * _dir(rec)
        else:
            rec.RLV = 0.0
        if rec.MIP == MIP_DONE and not rec.DMOV:
            rec.DMOV = 1
            rec.post("DMOV", _VAL_LOG)
        raise CAError(ECA.PUTFAIL, f"{rec.NAME}.{name}: the target must be a finite number")
    handler = _SPECIAL_AFTER.get(name)
    if handler is not None:
        handler(rec)
    if name in ("VMAX", "SMAX", "VBAS", "SBAS"):
        _recheck_speeds(rec, name)


def _urev(rec: Record) -> float:
    return abs(rec.UREV)


def _special_vbas(rec: Record) -> None:
    if rec.VBAS < 0.0:
        rec.VBAS = 0.0
        rec.post("VBAS", _VAL_LOG)
    if rec.UREV != 0.0:
        _set_if_changed(rec, "SBAS", rec.VBAS / _urev(rec))
    _update_accel_from_velo(rec)


def _special_sbas(rec: Record) -> None:
    if rec.SBAS < 0.0:
        rec.SBAS = 0.0
        rec.post("SBAS", _VAL_LOG)
    _set_if_changed(rec, "VBAS", _urev(rec) * rec.SBAS)
    _update_accel_from_velo(rec)


def _special_vmax(rec: Record) -> None:
    if rec.VMAX < 0.0:
        rec.VMAX = 0.0
        rec.post("VMAX", _VAL_LOG)
    if rec.UREV != 0.0:
        _set_if_changed(rec, "SMAX", rec.VMAX / _urev(rec))


def _special_smax(rec: Record) -> None:
    if rec.SMAX < 0.0:
        rec.SMAX = 0.0
        rec.post("SMAX", _VAL_LOG)
    _set_if_changed(rec, "VMAX", _urev(rec) * rec.SMAX)


def _special_velo(rec: Record) -> None:
    _range_check(rec, "VELO", rec.VBAS, rec.VMAX)
    _update_accel_from_velo(rec)
    if rec.UREV != 0.0:
        _set_if_changed(rec, "S", rec.VELO / _urev(rec))


def _special_s(rec: Record) -> None:
    _range_check(rec, "S", rec.SBAS, rec.SMAX)
    _set_if_changed(rec, "VELO", _urev(rec) * rec.S)
    _update_accel_from_velo(rec)


def _special_bvel(rec: Record) -> None:
    _range_check(rec, "BVEL", rec.VBAS, rec.VMAX)
    if rec.UREV != 0.0:
        _set_if_changed(rec, "SBAK", rec.BVEL / _urev(rec))


def _special_sbak(rec: Record) -> None:
    _range_check(rec, "SBAK", rec.SBAS, rec.SMAX)
    _set_if_changed(rec, "BVEL", _urev(rec) * rec.SBAK)


def _special_accl(rec: Record) -> None:
    if rec.ACCL <= 0.0:
        rec.ACCL = 0.1
        rec.post("ACCL", _VAL_LOG)
    _update_accs_from_accl(rec)


def _special_accs(rec: Record) -> None:
    if rec.ACCS <= 0.0:
        _update_accs_from_accl(rec)
    _update_accl_from_accs(rec)


def _special_bacc(rec: Record) -> None:
    if rec.BACC <= 0.0:
        rec.BACC = 0.1
        rec.post("BACC", _VAL_LOG)


def _special_dir(rec: Record) -> None:
    if rec.FOFF:
        rec.VAL = rec.DVAL * _dir(rec) + rec.OFF
        _mark(rec, "VAL")
    else:
        rec.OFF = rec.VAL - rec.DVAL * _dir(rec)
        _mark(rec, "OFF")
    rec.RBV = rec.DRBV * _dir(rec) + rec.OFF
    _mark(rec, "RBV")
    _set_userlimits(rec)


def _special_off(rec: Record) -> None:
    direction = _dir(rec)
    rec.VAL = rec.DVAL * direction + rec.OFF
    rec.LVAL = rec.LDVL * direction + rec.OFF
    rec.RBV = rec.DRBV * direction + rec.OFF
    _mark(rec, "VAL", "RBV")
    _set_userlimits(rec)


def _special_frac(rec: Record) -> None:
    clamped = min(max(rec.FRAC, 0.1), 1.5)
    if clamped != rec.FRAC:
        rec.FRAC = clamped
        rec.post("FRAC", _VAL_LOG)


def _special_mres(rec: Record) -> None:
    _mark(rec, "MRES")      # do_work redefines the axis position for the new step size
    if rec.UREV != rec.MRES * rec.SREV:
        rec.UREV = rec.MRES * rec.SREV
        _mark(rec, "UREV")
    _keep_speeds_in_revolutions(rec)


def _special_urev(rec: Record) -> None:
    if rec.MRES != rec.UREV / rec.SREV:
        rec.MRES = rec.UREV / rec.SREV
        _mark(rec, "MRES")
    _keep_speeds_in_revolutions(rec)


def _keep_speeds_in_revolutions(rec: Record) -> None:
    """A new resolution keeps speeds in revolutions/s and the raw (controller) soft limits."""
    urev = _urev(rec)
    if rec.VELO != urev * rec.S:
        rec.VELO = urev * rec.S
        _mark(rec, "VELO")
    if rec.VBAS != urev * rec.SBAS:
        rec.VBAS = urev * rec.SBAS
        _mark(rec, "VBAS")
    _set_if_changed(rec, "BVEL", urev * rec.SBAK)
    _set_if_changed(rec, "VMAX", urev * rec.SMAX)
    if rec.MRES > 0:
        _set_if_changed(rec, "DLLM", rec.RLLM * rec.MRES)
        _set_if_changed(rec, "DHLM", rec.RHLM * rec.MRES)
    else:
        _set_if_changed(rec, "DHLM", rec.RLLM * rec.MRES)
        _set_if_changed(rec, "DLLM", rec.RHLM * rec.MRES)
    _set_userlimits(rec)
    rec.post("HLM", _VAL_LOG)
    rec.post("LLM", _VAL_LOG)


def _special_srev(rec: Record) -> None:
    if rec.SREV <= 0:
        rec.SREV = 200
        _mark(rec, "SREV")
    if rec.MRES != rec.UREV / rec.SREV:
        rec.MRES = rec.UREV / rec.SREV
        _mark(rec, "MRES")


def _special_eres(rec: Record) -> None:
    if rec.ERES == 0.0:
        rec.ERES = rec.MRES
    _mark(rec, "ERES")


def _special_ueip(rec: Record) -> None:
    if rec.UEIP and not rec.MSTA & Msta.ENCODER_PRESENT:
        rec.UEIP = 0
        _mark(rec, "UEIP")


def _special_urip(rec: Record) -> None:
    if rec.URIP and rec.UEIP:
        rec.UEIP = 0
        _mark(rec, "UEIP")


def _special_set_field(name: str, value: int):
    def handler(rec: Record) -> None:
        setattr(rec, name, value)
        rec.post(name, _VAL_LOG)
    return handler


def _special_jog(button: str, limit: str):
    def handler(rec: Record) -> None:
        if getattr(rec, button) == 0:
            rec.MIP &= ~Mip.JOG_REQ
        elif rec.MIP == MIP_DONE and not getattr(rec, limit):
            rec.MIP |= Mip.JOG_REQ
    return handler


def _special_jvel(rec: Record) -> None:
    _range_check(rec, "JVEL", rec.VBAS, rec.VMAX)
    if rec.MIP & (Mip.JOGF | Mip.JOGR):
        velocity = rec.JVEL * _dir(rec) / rec.MRES
        rec.driver.move_velocity(-velocity if rec.JOGR else velocity, rec.JAR / abs(rec.MRES))


def _special_jar(rec: Record) -> None:
    if rec.JAR <= 0.0:
        rec.JAR = rec.JVEL / 0.1


def _special_hvel(rec: Record) -> None:
    _range_check(rec, "HVEL", rec.VBAS, rec.VMAX)


def _special_stup(rec: Record) -> None:
    if rec.STUP != _STUP_ON:
        rec.STUP = _STUP_OFF
        rec.post("STUP", _VAL_LOG)
        raise CAError(ECA.PUTFAIL, f"{rec.NAME}: STUP only accepts ON")


def _special_ntmf(rec: Record) -> None:
    if rec.NTMF < 2:
        rec.NTMF = 2
        rec.post("NTMF", _VAL_LOG)


_SPECIAL_AFTER = {
    "VBAS": _special_vbas, "SBAS": _special_sbas, "VMAX": _special_vmax, "SMAX": _special_smax,
    "VELO": _special_velo, "S": _special_s, "BVEL": _special_bvel, "SBAK": _special_sbak,
    "ACCL": _special_accl, "ACCS": _special_accs, "BACC": _special_bacc,
    "RDBD": _enforce_min_retry_deadband, "BDST": _enforce_min_retry_deadband,
    "DIR": _special_dir, "OFF": _special_off,
    "HLM": _set_user_highlimit, "LLM": _set_user_lowlimit,
    "DHLM": _set_dial_highlimit, "DLLM": _set_dial_lowlimit,
    "FRAC": _special_frac, "MRES": _special_mres, "UREV": _special_urev, "SREV": _special_srev,
    "ERES": _special_eres, "UEIP": _special_ueip, "URIP": _special_urip,
    "SSET": _special_set_field("SET", 1), "SUSE": _special_set_field("SET", 0),
    "FOF": _special_set_field("FOFF", 1), "VOF": _special_set_field("FOFF", 0),
    "JOGF": _special_jog("JOGF", "HLS"), "JOGR": _special_jog("JOGR", "LLS"),
    "JVEL": _special_jvel, "JAR": _special_jar, "HVEL": _special_hvel,
    "STUP": _special_stup, "NTMF": _special_ntmf,
}


def _recheck_speeds(rec: Record, name: str) -> None:
    """A new speed bound: keep VBAS <= VMAX and VELO, BVEL, JVEL, HVEL within them."""
    if name in ("VMAX", "SMAX"):
        if rec.VMAX != 0.0 and rec.VMAX < rec.VBAS:
            rec.VBAS = rec.VMAX
            rec.SBAS = rec.SMAX
            _mark(rec, "VBAS", "SBAS")
    elif rec.VMAX != 0.0 and rec.VBAS > rec.VMAX:
        rec.VMAX = rec.VBAS
        rec.post("VMAX", _VAL_LOG)
        rec.SMAX = rec.SBAS
        rec.post("SMAX", _VAL_LOG)
    _range_check(rec, "VELO", rec.VBAS, rec.VMAX)
    if rec.UREV != 0.0:
        _set_if_changed(rec, "S", rec.VELO / _urev(rec))
    _range_check(rec, "BVEL", rec.VBAS, rec.VMAX)
    if rec.UREV != 0.0:
        _set_if_changed(rec, "SBAK", rec.BVEL / _urev(rec))
    _range_check(rec, "JVEL", rec.VBAS, rec.VMAX)
    _range_check(rec, "HVEL", rec.VBAS, rec.VMAX)


# --- CA metadata --------------------------------------------------------------------------------------------

_SPEED_FIELDS = frozenset({"VELO", "VMAX", "BVEL", "VBAS", "JVEL", "HVEL"})
_REVOLUTION_SPEEDS = frozenset({"S", "SBAS", "SBAK"})


def _units(rec: Record, fld: Field) -> str:
    name = fld.name
    if name in _SPEED_FIELDS:
        units = rec.EGU + "/sec"
    elif name == "JAR":
        units = rec.EGU + "/s/s"
    elif name in ("ACCL", "BACC"):
        units = "sec"
    elif name in _REVOLUTION_SPEEDS:
        units = "rev/sec"
    elif name == "SREV":
        units = "steps/rev"
    elif name == "UREV":
        units = rec.EGU + "/rev"
    else:
        units = rec.EGU
    return units[:_UNITS_CHARS]


def _precision(rec: Record, fld: Field) -> int:
    if fld.name in ("RRBV", "RMP", "REP"):
        return 0
    if fld.name == "VERS":
        return 2
    if fld.dbf in (DBF.FLOAT, DBF.DOUBLE) and not 0 <= rec.PREC <= 15:
        return 15
    return rec.PREC


def _display(rec: Record, fld: Field) -> tuple[float, float] | None:
    """get_graphic_double and get_control_double: (upper, lower)."""
    name = fld.name
    if name in ("VAL", "RBV"):
        return rec.HLM, rec.LLM
    if name in ("DVAL", "DRBV"):
        return rec.DHLM, rec.DLLM
    if name in ("RVAL", "RRBV"):
        if rec.MRES >= 0:
            return rec.DHLM / rec.MRES, rec.DLLM / rec.MRES
        return rec.DLLM / rec.MRES, rec.DHLM / rec.MRES
    if name == "VELO":
        return rec.VMAX, rec.VBAS
    return None


def _alarm_limits(rec: Record, fld: Field) -> tuple[float, float, float, float] | None:
    if fld.name in ("VAL", "DVAL"):
        return rec.HIHI, rec.HIGH, rec.LOW, rec.LOLO
    return None


MOTOR = RecordType(
    name="motor",
    fields=MOTOR_FIELDS,
    process=process_motor,
    init=init_motor,
    devices=("asynMotor",),
    special=special_motor,
    units=_units,
    precision=_precision,
    graphic=_display,
    control=_display,
    alarm=_alarm_limits,
    state={"driver": None, "status": (0.0, 0, 0.0), "need_update": False, "marks": frozenset()},
)

# Looking the type up first loads the built-in record families, which a first registration would
# otherwise keep from loading (the registry loads them only while it is empty).
if record_type("motor") is None:
    register(MOTOR)

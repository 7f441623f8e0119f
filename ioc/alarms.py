"""Alarm and deadband rules shared by record types (the recGbl functions of the C IOC).

A record collects the worst alarm of one processing in NSTA/NSEV (``set_sevr``); ``reset_alarms`` moves it
to STAT/SEVR at the end and says whether VAL's post needs DBE_ALARM. ``limit_alarms`` is the analog
HIHI/HIGH/LOW/LOLO check with hysteresis, ``check_deadband`` the MDEL/ADEL rule.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from caproto.constants import DBE_ALARM, DBE_VALUE, AlarmSeverity, AlarmStatus

if TYPE_CHECKING:
    from ioc.database import Record

NO_ALARM = AlarmSeverity.NO_ALARM
INVALID = AlarmSeverity.INVALID

# limit_alarms ranges, ordered as the C records' alarmRange enum (used by the AFTC filter).
_LOLO, _LOW, _NORMAL, _HIGH, _HIHI = 1, 2, 3, 4, 5
_RANGE_STAT = {_LOLO: AlarmStatus.LOLO, _LOW: AlarmStatus.LOW, _NORMAL: AlarmStatus.NO_ALARM,
               _HIGH: AlarmStatus.HIGH, _HIHI: AlarmStatus.HIHI}
_AFTC_THRESHOLD = 0.6


def set_sevr(rec: Record, stat: int, sevr: int, message: str = "") -> bool:
    """recGblSetSevr: raise the pending alarm if ``sevr`` is worse; True when it was raised."""
    if rec.NSEV < sevr:
        rec.NSTA = int(stat)
        rec.NSEV = int(sevr)
        rec.NAMSG = message
        return True
    return False


def link_alarm(rec: Record, link_field: str) -> None:
    """dbGetLink/dbPutLink's setLinkAlarm: a read or write through ``link_field`` failed."""
    set_sevr(rec, AlarmStatus.LINK, INVALID, f"field {link_field}")


def inherit_sevr(ms: int, rec: Record, stat: int, sevr: int) -> None:
    """recGblInheritSevr: pass a link source's alarm on according to the link's NMS/MS/MSI/MSS flag."""
    if ms == 0 or (ms == 2 and sevr < INVALID):
        return
    if ms == 3:
        set_sevr(rec, stat, sevr)
    else:
        set_sevr(rec, AlarmStatus.LINK, sevr)


def reset_alarms(rec: Record) -> int:
    """recGblResetAlarms: STAT/SEVR := NSTA/NSEV, post the alarm fields; DBE_ALARM if VAL must carry it."""
    prev_stat, prev_sevr = rec.STAT, rec.SEVR
    if prev_sevr == rec.NSEV and prev_stat == rec.NSTA and rec.NAMSG == rec.AMSG:
        # No change (most processings): nothing to post. NSEV above INVALID never equals a SEVR.
        rec.NSTA = rec.NSEV = 0
        return 0
    new_stat, new_sevr = rec.NSTA, min(rec.NSEV, INVALID)
    stat_mask = 0
    if rec.NAMSG != rec.AMSG:
        rec.AMSG = rec.NAMSG
        stat_mask = DBE_ALARM
    rec.STAT, rec.SEVR = new_stat, new_sevr
    rec.NSTA = rec.NSEV = 0
    if prev_sevr != new_sevr:
        stat_mask = DBE_ALARM
        rec.post("SEVR", DBE_VALUE)
    if prev_stat != new_stat:
        stat_mask |= DBE_VALUE
    if not stat_mask:
        return 0
    rec.post("STAT", stat_mask)
    rec.post("AMSG", stat_mask)
    if not rec.ACKT or new_sevr >= rec.ACKS:
        rec.ACKS = new_sevr
        rec.post("ACKS", DBE_VALUE)
    return DBE_ALARM


def check_deadband(last: float, new: float, deadband: float) -> bool:
    """recGblCheckDeadband: does ``new`` differ from the last posted value by more than the deadband?

    MDEL 0 posts any change, a negative deadband posts every time; a change to or from NaN or
    infinity always posts, two NaNs never do (unless the deadband is negative).
    """
    delta = last - new
    if delta - delta == 0.0:        # both finite (inf or NaN on either side makes this NaN)
        return abs(delta) > deadband
    delta = 0.0
    if math.isfinite(new) and math.isfinite(last):
        delta = math.inf            # finite values whose difference overflows
    elif (math.isnan(new) != math.isnan(last)) or (math.isinf(new) != math.isinf(last)):
        delta = math.inf
    elif math.isinf(new) and new != last:
        delta = math.inf
    return delta > deadband


def integer_deadband(last: int, new: int, deadband: float) -> bool:
    """The longin/longout rule: |last - new| as an unsigned 32-bit number against the deadband."""
    if deadband < 0:
        return True
    delta = (last - new if last > new else new - last) & 0xFFFFFFFF
    return delta > (int(deadband) & 0xFFFFFFFF)


def limit_alarms(rec: Record, filtered: bool = True) -> None:
    """HIHI/LOLO/HIGH/LOW with HYST (ai, longin, calc; ao and longout with ``filtered=False``).

    An alarm raised earlier (LALM at that limit) holds until VAL is back past the limit by HYST; the
    AFTC level filter of the input records smooths the alarm range over time.
    """
    if rec.UDF:
        set_sevr(rec, AlarmStatus.UDF, rec.UDFS)
        if filtered:
            rec.AFVL = 0.0
        return
    val = rec.VAL
    if not (rec.HHSV or rec.LLSV or rec.HSV or rec.LSV or (filtered and rec.AFTC > 0)):
        # No limit has a severity and no filter runs (most records): what the full rule ends with.
        if filtered:
            rec.AFVL = 0.0
        rec.LALM = val
        return
    hyst, lalm = rec.HYST, rec.LALM
    alarm_range, asev, alev = _NORMAL, 0, val
    # The checks in the C order (HIHI, LOLO, HIGH, LOW); the first limit hit wins.
    if (sevr := rec.HHSV) and (val >= (level := rec.HIHI) or (lalm == level and val >= level - hyst)):
        alarm_range, asev, alev = _HIHI, sevr, level
    elif (sevr := rec.LLSV) and (val <= (level := rec.LOLO) or (lalm == level and val <= level + hyst)):
        alarm_range, asev, alev = _LOLO, sevr, level
    elif (sevr := rec.HSV) and (val >= (level := rec.HIGH) or (lalm == level and val >= level - hyst)):
        alarm_range, asev, alev = _HIGH, sevr, level
    elif (sevr := rec.LSV) and (val <= (level := rec.LOW) or (lalm == level and val <= level + hyst)):
        alarm_range, asev, alev = _LOW, sevr, level
    if not filtered:
        if asev:
            if set_sevr(rec, _RANGE_STAT[alarm_range], asev):
                rec.LALM = alev
        else:
            rec.LALM = val
        return
    afvl = 0.0
    if rec.AFTC > 0:
        alarm_range, asev, alev, afvl = _filter_range(rec, alarm_range, asev, alev)
    rec.AFVL = afvl
    if asev:
        if set_sevr(rec, _RANGE_STAT[alarm_range], asev):
            rec.LALM = alev
    else:
        rec.LALM = val


def _filter_range(rec: Record, alarm_range: int, asev: int, alev: float) -> tuple[int, int, float, float]:
    # AFTC: an exponential filter of the alarm range; the sign of AFVL remembers the rounding direction.
    afvl = rec.AFVL
    if afvl == 0:
        return alarm_range, asev, alev, float(alarm_range)
    elapsed = rec.time_since_last_process()
    alpha = rec.AFTC / (elapsed + rec.AFTC)
    afvl = alpha * afvl + ((1 - alpha) if afvl > 0 else (alpha - 1)) * alarm_range
    if afvl - math.floor(afvl) > _AFTC_THRESHOLD:
        afvl = -afvl
    alarm_range = abs(math.floor(afvl))
    by_range = {_HIHI: (rec.HHSV, rec.HIHI), _HIGH: (rec.HSV, rec.HIGH), _LOW: (rec.LSV, rec.LOW),
                _LOLO: (rec.LLSV, rec.LOLO)}
    if alarm_range == _NORMAL:
        asev = 0
    elif alarm_range in by_range:
        asev, alev = by_range[alarm_range]
    return alarm_range, asev, alev, afvl

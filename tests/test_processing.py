"""Record processing (issue 4) against the C softIoc: alarms, deadbands, event masks, links, calc.

Each scenario serves one .db from ``softIoc -S -d`` and builds our Database from the same text in this
process; the same puts go to both (caput there, FieldChannel.write here), then ``caget -d`` there is
compared with what our channels read, and ``camonitor -m`` events with our subscriptions' posts.
"""
from __future__ import annotations

import trio
import trio.testing
from dboracle import (
    SENTINEL_RECORD,
    Events,
    differences,
    load_db,
    mask_letters,
    our_caget,
    our_put,
    reference_ioc,
    same_events,
)

from caproto.dbr import ChannelType

ANALOG = """
record(ai, "a") { field(EGU, "V") field(PREC, "2") field(HOPR, "100") field(LOPR, "0")
    field(HIHI, "90") field(HIGH, "80") field(LOW, "10") field(LOLO, "5")
    field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
    field(HYST, "2") field(MDEL, "1") field(ADEL, "5") }
record(longout, "lo") { field(DRVH, "10") field(DRVL, "-10") field(HIHI, "8") field(HHSV, "MAJOR")
    field(HYST, "1") field(MDEL, "2") field(ADEL, "-1") }
"""

OUTPUTS = """
record(ao, "o") { field(DRVH, "50") field(DRVL, "-50") field(FLNK, "c") field(OUT, "a PP") field(PREC, "1") }
record(ai, "a") { field(HIGH, "40") field(HSV, "MINOR") }
record(calc, "c") { field(CALC, "A*2+B") field(INPA, "o") field(INPB, "a.VAL NPP MS") }
record(ao, "r") { field(OROC, "3") field(OUT, "rl PP") }
record(longin, "rl") { }
"""

STATES = """
record(bi, "b") { field(ZNAM, "Lo") field(ONAM, "Hi") field(OSV, "MAJOR") field(COSV, "MINOR") }
record(bo, "bo") { field(ZNAM, "Off") field(ONAM, "On") field(ZSV, "MINOR") field(OUT, "b PP") }
record(mbbi, "m") { field(ZRST, "a") field(ONST, "b") field(TWST, "c") field(ONSV, "MINOR")
    field(TWSV, "MAJOR") field(UNSV, "INVALID") field(COSV, "MINOR") }
record(mbbo, "mo") { field(ZRST, "x") field(ONST, "y") field(ZRVL, "3") field(ONVL, "7") field(OUT, "m PP") }
"""

LINKS = """
record(longout, "lo") { field(DRVH, "10") field(DRVL, "-10") }
record(longin, "li") { field(INP, "lo CP") field(HIGH, "5") field(HSV, "MINOR") }
record(calc, "chain1") { field(CALC, "A+1") field(INPA, "chain2 NPP") field(FLNK, "chain2") }
record(calc, "chain2") { field(CALC, "A+10") field(INPA, "chain1 NPP") field(FLNK, "chain1") }
record(stringout, "so") { field(OUT, "si PP") }
record(stringin, "si") { }
record(calc, "pini") { field(CALC, "42") field(PINI, "YES") }
record(waveform, "w") { field(FTVL, "DOUBLE") field(NELM, "5") field(INP, "[1,2,3]") }
record(waveform, "wc") { field(FTVL, "CHAR") field(NELM, "20") }
record(calc, "math") { field(CALC, "(A>B?MAX(A,B):MIN(A,B))+ABS(-2)+SQRT(16)+(A&6)+(5>>1)+FLOOR(2.7)")
    field(INPA, "lo CPP") field(B, "4") }
"""


async def settle() -> None:
    """Let scan-once work (CP links) finish."""
    await trio.testing.wait_all_tasks_blocked()


async def check_sequence(db_text, steps, watch, ca_env, tmp_path,
                         data_types=("DBR_TIME_STRING", "DBR_CTRL_DOUBLE")) -> None:
    """Apply ``steps`` (pv, values...) to both IOCs; after each, every watched PV must read the same."""
    db = load_db(db_text, tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        with reference_ioc(db_text, ca_env, tmp_path) as ref:
            await settle()
            for index, step in enumerate([None, *steps]):
                if step is not None:
                    result = ref.caput(*step)
                    try:
                        our_put(db, *step)
                        ours_ok = True
                    except Exception:
                        ours_ok = False
                    c_ok = result.returncode == 0 and not any(
                        word in result.stderr for word in ("failed", "invalid", "ERROR"))
                    assert ours_ok == c_ok, \
                        f"put {step}: C said {result.stderr.strip()!r}, ours_ok={ours_ok}"
                    await settle()
                for data_type in data_types:
                    reference = ref.caget(data_type, *watch)
                    mismatches = [f"{pv}: {p}" for pv in watch
                                  for p in differences(reference[pv],
                                                       our_caget(db, pv, ChannelType[data_type[4:]]))]
                    assert not mismatches, (f"after step {index} {step} ({data_type}):\n"
                                            + "\n".join(mismatches))
        nursery.cancel_scope.cancel()


async def check_monitors(db_text, steps, pvs, masks, ca_env, tmp_path, per_pv: bool = False) -> None:
    """camonitor -m MASK on both IOCs sees the same events for the same puts (``per_pv``: compare each
    PV's sequence alone, where records processed by separate scan-once requests may run in any order)."""
    db_text += SENTINEL_RECORD
    for mask in masks:
        db = load_db(db_text, tmp_path)
        ours = Events(db, mask_letters(mask))
        async with trio.open_nursery() as nursery:
            await nursery.start(db.run)
            await settle()
            for pv in pvs:
                ours.watch(pv)
            with reference_ioc(db_text, ca_env, tmp_path) as ref:
                with ref.camonitor(mask, *pvs, sentinel="sentinel") as reference:
                    for step in steps:
                        ref.caput(*step)
            for step in steps:
                try:
                    our_put(db, *step)
                except Exception:  # the C IOC refused it too; its events (none) are compared
                    pass
                await settle()
            nursery.cancel_scope.cancel()
        initial = len(pvs)
        assert sorted(reference[:initial]) == sorted(ours.events[:initial]), (mask, reference, ours.events)
        groups = pvs if per_pv else [None]
        for pv in groups:
            ref_seq = [e for e in reference[initial:] if pv is None or e[0] == pv]
            our_seq = [e for e in ours.events[initial:] if pv is None or e[0] == pv]
            assert same_events(ref_seq, our_seq), f"-m {mask}\nC:    {ref_seq}\nours: {our_seq}"


async def test_limit_alarms_with_hysteresis_follow_softioc(ca_env, tmp_path):
    values = "50 85 95 89 87 85 79 78 20 9 6 4 6 8 12 50 NaN 3".split()
    await check_sequence(ANALOG, [("a", v) for v in values], ["a", "a.LALM", "a.MLST", "a.ALST"],
                         ca_env, tmp_path, data_types=("DBR_TIME_STRING",))


async def test_integer_limit_alarms_and_drive_limits_follow_softioc(ca_env, tmp_path):
    values = ["3", "9", "12", "7", "6", "-20", "8"]
    await check_sequence(ANALOG, [("lo", v) for v in values], ["lo", "lo.LALM"], ca_env, tmp_path)


async def test_deadbands_and_event_masks_follow_softioc(ca_env, tmp_path):
    steps = [("a", "50"), ("a", "50.5"), ("a", "51.2"), ("a", "52"), ("a", "57.5"), ("a", "85"), ("a", "86"),
             ("a", "95"), ("a", "89"), ("a.EGU", "mV"), ("a.HIHI", "91"), ("a.PREC", "3"), ("a", "58"),
             ("a", "NaN"), ("a", "NaN"), ("a", "3"), ("a.MDEL", "-1"), ("a", "3"), ("a.ADEL", "0"),
             ("a", "3.5"),
             ("lo", "1"), ("lo", "2"), ("lo", "5"), ("lo", "9"), ("lo", "9")]
    await check_monitors(ANALOG, steps, ["a", "a.STAT", "a.SEVR", "a.EGU", "lo", "lo.SEVR"],
                         # not "vp" together: softIoc's event queue merges a put's value and property
                         # events of one subscription when both are still queued (timing-dependent)
                         ["v", "l", "a", "p", "va"], ca_env, tmp_path)


async def test_outputs_clamp_link_and_forward_like_softioc(ca_env, tmp_path):
    steps = [("o", "5"), ("o", "70"), ("o", "-80"), ("o", "45"), ("o.DRVH", "60"), ("o", "70"),
             ("r", "10"), ("r", "10"), ("r", "-5"), ("o", "abc")]
    watch = ["o", "o.OVAL", "o.RVAL", "a", "c", "c.A", "c.B", "r", "r.OVAL", "rl"]
    await check_sequence(OUTPUTS, steps, watch, ca_env, tmp_path)


async def test_binary_and_multibit_state_alarms_follow_softioc(ca_env, tmp_path):
    steps = [("b", "1"), ("b", "1"), ("b", "0"), ("bo", "1"), ("bo", "0"), ("bo", "On"), ("m", "1"),
             ("m", "2"), ("m", "3"), ("m", "c"), ("m", "0"), ("mo", "1"), ("mo", "x"), ("mo.ONST", "yy"),
             ("mo", "yy"),
             ("b", "Maybe")]
    watch = ["b", "bo", "bo.RVAL", "m", "mo", "mo.RVAL", "m.RVAL"]
    await check_sequence(STATES, steps, watch, ca_env, tmp_path,
                         data_types=("DBR_TIME_STRING", "DBR_CTRL_ENUM"))


async def test_state_monitors_follow_softioc(ca_env, tmp_path):
    steps = [("b", "1"), ("b", "1"), ("b", "0"), ("m", "1"), ("m", "2"), ("m", "7"), ("mo", "1"),
             ("mo.ONST", "yy"), ("mo.ZRST", "xx")]
    await check_monitors(STATES, steps, ["b", "b.STAT", "m", "mo"], ["va", "l", "p"], ca_env, tmp_path)


async def test_links_chains_calc_and_pini_follow_softioc(ca_env, tmp_path):
    steps = [("lo", "3"), ("lo", "7"), ("chain1.PROC", "1"), ("so", "hello"), ("so", "hello"),
             ("w", "1", "2", "3", "4"), ("lo", "-3"), ("w.PROC", "1"),
             ("math.CALC", "A+*"), ("math.PROC", "1")]       # a bad CALC is kept, and fails at run time
    await check_sequence(LINKS, steps, ["lo", "li", "chain1", "chain2", "so", "si", "pini", "w", "w.NORD",
                                        "math", "math.A", "math.CALC"], ca_env, tmp_path)


async def test_link_monitors_follow_softioc(ca_env, tmp_path):
    steps = [("lo", "3"), ("lo", "7"), ("lo", "7"), ("so", "x"), ("so", "x"), ("w", "5", "6"),
             ("w.PROC", "1")]
    await check_monitors(LINKS, steps, ["li", "si", "w.NORD", "math"], ["va", "l"], ca_env, tmp_path,
                         per_pv=True)


async def test_periodic_scan_rate_matches_softioc(ca_env, tmp_path):
    # The oracle is the C IOC's count of scans over the same wall-clock interval. caget reads the C count
    # at some moment while it runs, and on a loaded machine it runs for long (starting the process), so
    # it runs in a thread while our scans go on, and our count is taken before and after each caget: the
    # C count must lie between the least and the most we counted over an interval the C one may have
    # been, give or take the scans' phases.
    db_text = 'record(calc, "tick") { field(CALC, "VAL+1") field(SCAN, ".1 second") }\n'
    db = load_db(db_text, tmp_path)
    with reference_ioc(db_text, ca_env, tmp_path) as ref:
        async with trio.open_nursery() as nursery:
            await nursery.start(db.run)
            ours = [db.records["tick"].VAL]
            c_start = float((await trio.to_thread.run_sync(ref.caget, "DBR_DOUBLE", "tick"))["tick"]["Value"])
            ours.append(db.records["tick"].VAL)
            await trio.sleep(2.0)
            ours.append(db.records["tick"].VAL)
            c_count = float((await trio.to_thread.run_sync(ref.caget, "DBR_DOUBLE", "tick"))["tick"]["Value"]
                            ) - c_start
            ours.append(db.records["tick"].VAL)
            nursery.cancel_scope.cancel()
    least, most = ours[2] - ours[1], ours[3] - ours[0]
    assert least - 2 <= c_count <= most + 2, f"C scanned {c_count} times, we did {least} to {most}"

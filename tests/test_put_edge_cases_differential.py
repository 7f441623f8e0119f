"""Puts whose handling a random caput/caget sweep found different from the C softIoc.

* TSE: only 0 stamps the processing with the current time. -2 leaves TIME to the device; any other
  value asks generalTime for an event time, and a softIoc has no event provider, so TIME stays as it
  was (softIoc logs "epicsTimeGetEvent failed").
* FLNK holding a number: dbParseLink makes any number a CONSTANT link, forward links included, both in
  a .db file and in a put; such a link processes nothing. Text that strtod flags ERANGE ("1e400",
  "1e-320") is no number to dbParseLink: it names a PV.
* Link modifiers in a .db file or a put: the PV name runs to the first space (tab and comma included),
  and NPP/CPP/PP/CA/CP and NMS/MSI/MSS/MS are found anywhere in the rest, as dbParseLink's strstr finds
  them. (YAML configurations stay strict: an unknown modifier word is an error there.)
* A bo whose VAL is above 1 is in its one state (OSV, and COSV on the change); a bi above 1 raises no
  state alarm at all.
* Text into a DBF_ULONG: cvt_st_ul stores the integer prefix ("7" of "7e400") before strtod refuses the
  whole, so the put fails with the prefix written, in a scalar as in an array. Text with no integer
  prefix that converts to a double out of range ("-inf", "nan", "1e20") assigns nothing: the element
  keeps its value and the put succeeds.
"""
from __future__ import annotations

from differential import serve_both
from record_differential import assert_put_sequence_matches, caget

DB = r"""
record(ai, "T:zero") { field(TSE, "0") }
record(ai, "T:best") { field(TSE, "-1") }
record(ai, "T:event") { field(TSE, "1") }
record(ai, "T:big") { field(TSE, "300") }
record(ai, "T:neg") { field(TSE, "-129") }
record(ai, "T:device") { field(TSE, "-2") }
record(waveform, "T:wave") { field(FTVL, "UCHAR") field(NELM, "4") }
record(ai, "T:const") { field(FLNK, "5") }
record(ai, "T:array") { field(FLNK, "[1,2]") }
record(calc, "T:next") { field(CALC, "VAL+1") }
record(ao, "T:ao") { field(FLNK, "T:next") }
record(histogram, "T:hist") { field(LLIM, "-10") field(ULIM, "10") field(NELM, "4") }
record(waveform, "T:wulong") { field(FTVL, "ULONG") field(NELM, "4") }
record(calc, "T:calc") { field(INPA, "T:zero") field(CALC, "A") }
record(ai, "L:src") { field(VAL, "3") }
record(calc, "L:c") { field(INPA, "L:src QQCPPXMSITT") field(CALC, "A") }
record(calc, "L:d") { field(INPA, "L:src.VAL,PP") field(CALC, "A") }
record(ao, "L:o") { field(FLNK, "L:c CA PP") }
record(bo, "B:bo") { field(ZNAM, "off") field(ONAM, "on") field(OSV, "MINOR") field(COSV, "MAJOR") }
record(bi, "B:bi") { field(ZNAM, "off") field(ONAM, "on") field(OSV, "MINOR") field(COSV, "MAJOR") }
record(mbbi, "B:follow") { field(INP, "B:bo MS") field(ZRST, "z") field(ONST, "o") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

STAMPED = ["T:zero", "T:best", "T:event", "T:big", "T:neg", "T:device", "T:wave"]
LINKS = ["T:const.FLNK", "T:array.FLNK", "T:ao.FLNK"]
READS = [caget("DBR_TIME_STRING", STAMPED), caget("DBR_TIME_DOUBLE", ["T:next", "T:ao", "T:const"]),
         caget("DBR_CTRL_STRING", LINKS)]
PUTS = (
    [(f"{pv}.PROC", "1") for pv in STAMPED]
    # a TSE put, then a put-callback whose value does not convert (dbNotify processes all the same)
    + [("T:wave.TSE", "-129"), ("T:wave.PROC", "1"), ("T:zero.TSE", "5"), ("T:zero.PROC", "1"),
       ("T:best.TSE", "0"), ("T:best.PROC", "1")]
    + [("T:ao.FLNK", "010"), ("T:ao", "1"), ("T:ao.FLNK", "nan"), ("T:ao", "2"), ("T:ao.FLNK", " 7"),
       ("T:ao.FLNK", "-2147483649"), ("T:ao.FLNK", "T:next"), ("T:ao", "3"), ("T:const.FLNK", "[3]"),
       ("T:const.PROC", "1")]
)
MONITORED = ["T:zero", "T:wave", "T:next", "T:ao.FLNK", "T:const.FLNK", "P:end"]


def test_timestamp_events_and_constant_forward_links_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)
        # a put-callback of text into a UCHAR waveform fails, and processes the record all the same
        pair.assert_same("caput", "-w", "5", "-c", "T:wave.VAL", "Run")
        pair.assert_same("caget", "-w", "5", "-a", "T:wave", "T:wave.TSE")


def test_range_errors_in_links_and_unsigned_fields_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        for command in (("T:hist.LOPR", "1e-320"), ("T:hist.HOPR", "7e400"),
                        ("-a", "T:wulong", "3", "5", "6e400", "7"), ("T:calc.INPA", "1e-320"),
                        ("T:calc.INPA", "1e400"), ("T:calc.INPA", "0x10"),
                        ("-a", "T:wulong", "4", "3", "255", "6", "7"), ("-c", "T:wulong", "-inf"),
                        ("-a", "T:wulong", "3", "nan", "-5", "1e20"), ("T:hist.HOPR", "9"),
                        ("T:hist.HOPR", "-inf"), ("T:hist.HOPR", "1e20")):
            pair.assert_same("caput", "-w", "5", *command)
        pair.assert_same("caget", "-w", "5", "T:hist.LOPR", "T:hist.HOPR", "T:wulong", "T:wulong.NORD",
                         "T:calc.INPA")


def test_link_modifiers_are_found_as_dbparselink_finds_them(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        pair.assert_same("caget", "-w", "5", "L:c.INPA", "L:d.INPA", "L:o.FLNK")
        pair.assert_same("caput", "-w", "5", "L:src", "5")
        pair.assert_same("caget", "-w", "5", "L:c", "L:d")
        for link in ("L:src.VAL MSS,CP", "L:src MSIPP", "L:src\tPP", "1,2"):
            pair.assert_same("caput", "-w", "5", "L:c.INPA", link)
        pair.assert_same("caput", "-w", "5", "L:o.FLNK", "1,2")


def test_binary_records_above_one_raise_the_alarms_softioc_raises(tmp_path, repeater_port):
    puts = [("B:bo", "10"), ("B:follow.PROC", "1"), ("B:bo", "1"), ("B:bo", "0"), ("B:bi", "10"),
            ("B:bi", "1"), ("B:bi", "7")]
    reads = [caget("DBR_STSACK_STRING", ["B:bo", "B:bi", "B:follow"]),
             caget("DBR_TIME_LONG", ["B:bo.LALM", "B:bi.LALM"])]
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, reads, ["B:bo", "B:bi", "B:follow", "P:end"], puts)

"""A broad sweep of the EPICS tools' options over every record type we serve, against the C softIoc.

One database holds each supported record type with realistic fields; caget (every DBR type, every
output format, many fields), caput (plain, callback, arrays, enums, bad values), cainfo and camonitor run
against softIoc and against our IOC and must print the same (``differential.Pair.assert_same``: stdout
exactly, libca's diagnostics as a set, the exit status; timestamps and the server's host:port masked).

Tools are given many PVs per invocation to keep the sweep fast. A read that fails (text read as a number)
makes caget wait out its whole ``-w``, so such reads are batched into few invocations.

softIoc's own nondeterminism, masked here:
* ``cainfo -s N`` prints libca's client-side context, with heap addresses that differ run to run.
* camonitor's client and relative timestamps (``-t c``, ``-t sI``...) are wall-clock times.
"""
from __future__ import annotations

import difflib
import queue
import re
import subprocess
import threading
from collections.abc import Callable

import pytest
from differential import Pair, mask, serve_both
from peers import tool

from ioc.records import record_type

DB = r"""
record(ai, "S:ai") {
    field(DESC, "Analog in") field(VAL, "12.345") field(EGU, "degC") field(PREC, "3")
    field(HOPR, "100") field(LOPR, "-50") field(HIHI, "90") field(HIGH, "70") field(LOW, "-20")
    field(LOLO, "-40") field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
    field(HYST, "0.5") field(ADEL, "0.1") field(MDEL, "0.01") field(PINI, "YES") field(PHAS, "2")
    field(EVNT, "7") field(DISV, "3")
}
record(ao, "S:ao") {
    field(DESC, "Analog out") field(VAL, "-2.5") field(EGU, "mm") field(PREC, "2")
    field(DRVH, "50") field(DRVL, "-50") field(HOPR, "60") field(LOPR, "-60")
    field(HIHI, "45") field(HHSV, "MAJOR") field(LOLO, "-45") field(LLSV, "MINOR") field(FLNK, "S:calc")
}
record(bi, "S:bi") {
    field(DESC, "Binary in") field(ZNAM, "Off") field(ONAM, "On") field(VAL, "1") field(OSV, "MINOR")
}
record(bo, "S:bo") { field(ZNAM, "Closed") field(ONAM, "Open") field(VAL, "0") field(ZSV, "MAJOR") }
record(mbbi, "S:mbbi") {
    field(ZRST, "zero") field(ONST, "one") field(TWST, "two") field(THST, "three") field(VAL, "2")
    field(TWSV, "MINOR") field(UNSV, "MAJOR")
}
record(mbbo, "S:mbbo") {
    field(ZRST, "Idle") field(ONST, "Run") field(TWST, "Pause") field(ONSV, "MINOR") field(DESC, "Mode")
}
record(longin, "S:li") {
    field(VAL, "42") field(EGU, "counts") field(HOPR, "1000") field(LOPR, "-1000")
    field(HIHI, "900") field(HHSV, "MAJOR") field(HIGH, "500") field(HSV, "MINOR")
}
record(longout, "S:lo") { field(VAL, "-7") field(DRVH, "100") field(DRVL, "-100") field(EGU, "steps") }
record(stringin, "S:si") { field(VAL, "hello world") field(DESC, "String in") }
record(stringout, "S:so") { field(VAL, "output") }
record(waveform, "S:wchar") { field(FTVL, "CHAR") field(NELM, "32") field(DESC, "chars") }
record(waveform, "S:wuchar") { field(FTVL, "UCHAR") field(NELM, "8") }
record(waveform, "S:wshort") { field(FTVL, "SHORT") field(NELM, "8") field(EGU, "V") field(HOPR, "10") }
record(waveform, "S:wushort") { field(FTVL, "USHORT") field(NELM, "8") }
record(waveform, "S:wlong") { field(FTVL, "LONG") field(NELM, "8") }
record(waveform, "S:wulong") { field(FTVL, "ULONG") field(NELM, "8") }
record(waveform, "S:wint64") { field(FTVL, "INT64") field(NELM, "8") }
record(waveform, "S:wuint64") { field(FTVL, "UINT64") field(NELM, "8") }
record(waveform, "S:wfloat") { field(FTVL, "FLOAT") field(NELM, "8") field(PREC, "2") }
record(waveform, "S:wdouble") { field(FTVL, "DOUBLE") field(NELM, "8") field(PREC, "3") field(EGU, "A") }
record(waveform, "S:wstring") { field(FTVL, "STRING") field(NELM, "4") }
record(waveform, "S:wenum") { field(FTVL, "ENUM") field(NELM, "4") }
record(calc, "S:calc") {
    field(INPA, "S:ao") field(CALC, "A*2+1") field(PREC, "1") field(EGU, "x") field(HOPR, "200")
}
record(calcout, "S:calcout") {
    field(INPA, "S:li") field(CALC, "A+1") field(OUT, "S:lo PP") field(OOPT, "Every Time")
    field(DOPT, "Use CALC") field(PREC, "2")
}
record(fanout, "S:fanout") { field(LNK1, "S:calc") field(SELM, "All") }
record(dfanout, "S:dfanout") { field(OUTA, "S:ao") field(VAL, "1.5") field(PREC, "1") field(HOPR, "10") }
record(seq, "S:seq") { field(DOL1, "1") field(LNK1, "S:lo PP") field(SELM, "All") field(PREC, "1") }
record(event, "S:event") { field(VAL, "ev1") }
record(int64in, "S:i64in") { field(VAL, "1234567890123") field(EGU, "ticks") field(HOPR, "100000") }
record(int64out, "S:i64out") { field(VAL, "-99") field(DRVH, "1000") field(DRVL, "-1000") }
record(lsi, "S:lsi") { field(SIZV, "64") }
record(lso, "S:lso") { field(SIZV, "40") }
record(compress, "S:compress") { field(ALG, "Circular Buffer") field(NSAM, "6") field(INP, "S:ao")
                                 field(PREC, "2") field(EGU, "mm") field(HOPR, "9") field(PINI, "YES") }
record(histogram, "S:histogram") { field(LLIM, "-10") field(ULIM, "10") field(NELM, "4") field(SVL, "S:ao")
                                   field(PREC, "1") field(HOPR, "5") field(PINI, "YES") }
record(permissive, "S:permissive") { field(VAL, "1") field(WFLG, "1") field(LABL, "go") }
record(state, "S:state") { field(VAL, "ready") }
record(printf, "S:printf") { field(FMT, "%.2f %s") field(INP0, "S:ao") field(INP1, "S:si")
                             field(PINI, "YES") }
record(ai, "S:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["S:ai", "S:ao", "S:bi", "S:bo", "S:mbbi", "S:mbbo", "S:li", "S:lo", "S:si", "S:so", "S:wchar",
           "S:wuchar", "S:wshort", "S:wushort", "S:wlong", "S:wulong", "S:wint64", "S:wuint64", "S:wfloat",
           "S:wdouble", "S:wstring", "S:wenum", "S:calc", "S:calcout", "S:fanout", "S:dfanout", "S:seq",
           "S:event", "S:i64in", "S:i64out", "S:lsi", "S:lso", "S:compress", "S:histogram", "S:permissive",
           "S:state", "S:printf"]
# Values that are text: read as numbers they fail in softIoc (ECA_GETFAIL), and caget then waits out -w.
TEXT_RECORDS = ["S:si", "S:so", "S:event", "S:state", "S:printf"]
NUMERIC_RECORDS = [pv for pv in RECORDS if pv not in TEXT_RECORDS]

DBR_NAMES = [f"DBR_{family}{kind}" for family in ("", "STS_", "TIME_", "GR_", "CTRL_")
             for kind in ("STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE")]
DBR_NAMES += ["DBR_STSACK_STRING", "DBR_CLASS_NAME"]
STRING_READS = {name for name in DBR_NAMES if name.endswith("STRING") or name == "DBR_CLASS_NAME"}

# dbCommon and record-specific fields; a field a record type lacks is "not found" from both servers.
COMMON_FIELDS = ["VAL", "EGU", "PREC", "DESC", "SCAN", "RTYP", "NAME", "HIHI", "HHSV", "NELM", "NORD", "FLNK",
                 "INP", "OUT", "DTYP", "STAT", "SEVR", "UDF", "PINI", "PHAS", "EVNT", "TPRO", "DISV", "DISA",
                 "DISP", "PROC", "ACKS", "ACKT", "NSEV", "NSTA", "LCNT", "PACT", "PUTF", "RPRO", "PRIO",
                 "TSE", "TSEL", "SDIS", "DISS", "HOPR", "LOPR", "DRVH", "DRVL", "HIGH", "LOW", "LOLO", "HSV",
                 "LSV", "LLSV", "HYST", "ADEL", "MDEL", "ALST", "MLST", "LALM", "UDFS", "SSCN", "SIMM",
                 "SIML", "SIOL"]
SPECIFIC_FIELDS = {
    "S:ai": ["RVAL", "ROFF", "ASLO", "AOFF", "LINR", "EGUF", "EGUL", "SMOO", "ORAW"],
    "S:ao": ["OROC", "OMSL", "DOL", "IVOA", "IVOV", "RBV", "OVAL", "RVAL"],
    "S:bi": ["ZNAM", "ONAM", "ZSV", "OSV", "COSV", "MASK", "RVAL"],
    "S:mbbo": ["ZRST", "ONST", "TWST", "ZRSV", "ONSV", "UNSV", "ZRVL", "FRST", "FFSV", "SHFT", "NOBT",
               "SDEF"],
    "S:wdouble": ["FTVL", "MPST", "APST", "HASH", "BUSY", "NELM", "NORD"],
    "S:calcout": ["CALC", "OCAL", "INPA", "A", "B", "OOPT", "DOPT", "OVAL", "ODLY", "IVOA", "CLCV"],
    "S:seq": ["SELM", "SELN", "LNK1", "DOL1", "DLY1", "DO1", "SHFT", "OFFS"],
    "S:dfanout": ["OUTA", "OUTH", "SELM", "SELN", "OMSL"],
    "S:lsi": ["VAL", "OVAL", "LEN", "OLEN", "SIZV", "INP", "MPST", "APST"],
    "S:event": ["VAL", "INP", "SIOL"],
    "S:i64in": ["HIHI", "HOPR", "ADEL", "MDEL"],
}
NOT_FIELDS = ["S:ai.TIME", "S:ai.NOPE", "S:nope", "S:ai.val", "S:bi.EGU", "S:calc.DOL", "S:wdouble.BPTR"]
RECORD_TYPE = {name: rtype for rtype, name in re.findall(r'record\((\w+), "([^"]+)"\)', DB)}


def has_field(pv: str, name: str) -> bool:
    """Whether our field table has ``name`` for ``pv``'s record type. The sweeps ask for existing fields
    only, since a missing one makes caget wait out its whole -w; test_caget_of_fields_that_do_not_exist
    asks for all the others at once, so a field softIoc has and we lack still fails."""
    return name == "RTYP" or name in record_type(RECORD_TYPE[pv]).by_name


def split_fields(pv: str, names: list[str]) -> tuple[list[str], list[str]]:
    fields = [f"{pv}.{name}" for name in names]
    return ([f for f, n in zip(fields, names, strict=True) if has_field(pv, n)],
            [f for f, n in zip(fields, names, strict=True) if not has_field(pv, n)])


MISSING_FIELDS = sorted({*NOT_FIELDS,
                         *(f for pv in RECORDS for f in split_fields(pv, COMMON_FIELDS)[1]),
                         *(f for pv, names in SPECIFIC_FIELDS.items() for f in split_fields(pv, names)[1])})


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    """Both servers, never written to: the read-only sweeps share them."""
    with serve_both(DB, tmp_path_factory.mktemp("sweep_read"), repeater_port) as both:
        yield both


@pytest.fixture(scope="module")
def put_pair(tmp_path_factory, repeater_port):
    """Both servers for the caput sweeps, which run in order and see each other's effects."""
    with serve_both(DB, tmp_path_factory.mktemp("sweep_put"), repeater_port) as both:
        yield both


# --- caget ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dbr", DBR_NAMES)
def test_caget_every_dbr_type_of_every_record_type(pair, dbr):
    pvs = RECORDS if dbr in STRING_READS else NUMERIC_RECORDS
    pair.assert_same("caget", "-w", "2", "-d", dbr, *pvs)


@pytest.mark.parametrize("dbr", ["DBR_SHORT", "DBR_ENUM", "DBR_CTRL_ENUM", "DBR_TIME_DOUBLE", "DBR_GR_CHAR"])
def test_caget_of_text_as_numbers_fails_alike(pair, dbr):
    # Not a bi/bo/mbbi/mbbo text field (ZNAM, ZRST...) as DBR_ENUM: softIoc's dbGet hands the text to the
    # record's put_enum_str, which sets VAL when the text names a state and leaves the reply uninitialised.
    pair.assert_same("caget", "-w", "1", "-d", dbr, *TEXT_RECORDS, "S:ai.DESC", "S:ai.EGU", "S:mbbo.DESC",
                     "S:wstring", "S:lsi", "S:lso.OVAL")


FORMATS = [[], ["-t"], ["-a"], ["-n"], ["-S"], ["-#", "3"], ["-#", "0"], ["-#", "20"], ["-c"], ["-e", "4"],
           ["-f", "3"], ["-g", "6"], ["-e", "0"], ["-f", "12"], ["-0x"], ["-0o"], ["-0b"], ["-F", "|"],
           ["-F", ","], ["-t", "-n"], ["-a", "-n"], ["-s"], ["-lx"], ["-lo"], ["-lb"], ["-t", "-S"],
           ["-a", "-#", "2"], ["-n", "-d", "DBR_TIME_ENUM"], ["-s", "-d", "DBR_CTRL_DOUBLE"],
           ["-S", "-d", "DBR_CTRL_STRING"], ["-S", "-d", "DBR_TIME_CHAR"], ["-0x", "-d", "DBR_CTRL_LONG"],
           ["-c", "-d", "DBR_GR_FLOAT"], ["-f", "1", "-d", "DBR_CTRL_FLOAT"]]


@pytest.mark.parametrize("flags", FORMATS, ids=" ".join)
def test_caget_output_formats_of_every_record_type(pair, flags):
    numeric_only = "-d" in flags and flags[flags.index("-d") + 1] not in STRING_READS
    pair.assert_same("caget", "-w", "2", *flags, *(NUMERIC_RECORDS if numeric_only else RECORDS))


@pytest.mark.parametrize("record", RECORDS)
def test_caget_of_the_common_fields(pair, record):
    fields = split_fields(record, COMMON_FIELDS)[0]
    pair.assert_same("caget", "-w", "2", *fields)
    pair.assert_same("caget", "-w", "2", "-d", "DBR_CTRL_STRING", *fields)


TEXT_FIELDS = {"INP", "OUT", "DOL", "FLNK", "CALC", "OCAL", "INPA", "LNK1", "DOL1", "OUTA", "OUTH", "SIML",
               "SIOL", "ZRST", "ONST", "TWST", "FRST", "ZNAM", "ONAM", "VAL", "OVAL"}


@pytest.mark.parametrize("record", sorted(SPECIFIC_FIELDS))
@pytest.mark.parametrize("dbr", ["DBR_CTRL_DOUBLE", "DBR_CTRL_STRING", "DBR_TIME_LONG", "DBR_CTRL_ENUM",
                                 "DBR_GR_CHAR", "DBR_STSACK_STRING", "DBR_CLASS_NAME"])
def test_caget_of_record_specific_fields(pair, record, dbr):
    fields = split_fields(record, SPECIFIC_FIELDS[record] + ["SCAN", "PREC", "HOPR", "NSEV"])[0]
    if dbr not in STRING_READS:
        # link and text fields read as numbers fail (softIoc: ECA_GETFAIL), batched in one call below
        fields = [pv for pv in fields if pv.rsplit(".", 1)[1] not in TEXT_FIELDS]
    pair.assert_same("caget", "-w", "2", "-d", dbr, *fields)



def test_caget_of_fields_that_do_not_exist(pair):
    pair.assert_same("caget", "-w", "1", *MISSING_FIELDS)


def test_caget_of_long_strings_and_links_as_char_arrays(pair):
    pvs = ["S:ai.DESC$", "S:ai.FLNK$", "S:ao.FLNK$", "S:calcout.OUT$", "S:calcout.CALC$", "S:lsi.VAL$",
           "S:si.VAL$", "S:seq.LNK1$"]
    for flags in ([], ["-S"], ["-#", "4"], ["-d", "DBR_CTRL_CHAR"], ["-S", "-d", "DBR_TIME_CHAR"]):
        pair.assert_same("caget", "-w", "2", *flags, *pvs)


# --- cainfo -----------------------------------------------------------------------------------------------

_CONTEXT_ADDRESS = re.compile(r"0x[0-9a-f]+")


def test_cainfo_of_records_and_fields(pair):
    pair.assert_same("cainfo", "-w", "2", *RECORDS)
    pair.assert_same("cainfo", "-w", "2", *split_fields("S:ai", COMMON_FIELDS)[0],
                     "S:ai.VAL$", "S:ai.DESC$", "S:ai.INP$")
    pair.assert_same("cainfo", "-w", "2", "S:wdouble.NELM", "S:wdouble.NORD", "S:wdouble.FTVL",
                     "S:lsi.VAL$", "S:lsi.SIZV", "S:lso.OVAL", "S:mbbo.ZRST",
                     "S:calcout.CALC", "S:calcout.OCAL$", "S:seq.LNK1", "S:i64in.VAL")
    pair.assert_same("cainfo", "-w", "1", "S:ai", "S:nope", "S:ai.TIME")


@pytest.mark.parametrize("level", ["0", "1", "2", "3"])
def test_cainfo_context_report_matches_apart_from_heap_addresses(pair, level):
    ref, ours = pair.run("cainfo", "-s", level, "S:ai")
    assert ours.returncode == ref.returncode
    ref_out, our_out = (_CONTEXT_ADDRESS.sub("0x?", mask(r.stdout)) for r in (ref, ours))
    assert our_out == ref_out, "\n".join(difflib.unified_diff(ref_out.splitlines(), our_out.splitlines(),
                                                              "C", "ours", lineterm=""))


# --- caput ------------------------------------------------------------------------------------------------

PUTS = [
    ("S:ai", "5.5"), ("S:ai", "abc"), ("S:ai", "1e400"), ("S:ai", "95"), ("S:ai", " 7 "), ("S:ai", "0x10"),
    ("S:ai", "3 units"), ("S:ai", "nan"), ("S:ai", "-inf"), ("S:ai", ""),
    ("S:ao", "12.5"), ("S:ao", "100"), ("S:ao", "-1e9"), ("S:ao", "x"),
    ("S:bi", "On"), ("S:bi", "0"), ("S:bi", "2"), ("S:bi", "Maybe"),
    ("S:bo", "Open"), ("S:bo", "1"), ("S:bo", "Closed"), ("S:bo", "1.7"), ("S:bo", "-1"),
    ("S:mbbi", "three"), ("S:mbbi", "1"), ("S:mbbi", "15"), ("S:mbbi", "16"), ("S:mbbi", "nope"),
    ("S:mbbo", "Run"), ("S:mbbo", "2"), ("S:mbbo", "3"), ("S:mbbo", "Idle"), ("S:mbbo", "abc"),
    ("S:mbbo", "65535"), ("S:mbbo", "65536"), ("S:mbbo", "-1"), ("S:mbbo", "1.5"),
    ("S:li", "123"), ("S:li", "1.9"), ("S:li", "-2147483649"), ("S:li", "3000000000"), ("S:li", "abc"),
    ("S:li", "0x1F"), ("S:lo", "99"), ("S:lo", "500"), ("S:lo", "-1e3"),
    ("S:si", "new text"), ("S:si", "a" * 50), ("S:so", "x y z"), ("S:so", ""),
    ("S:calc", "7"), ("S:calcout", "3"), ("S:dfanout", "4.25"), ("S:seq", "1"), ("S:event", "ev2"),
    ("S:fanout", "1"), ("S:i64in", "9223372036854775807"), ("S:i64in", "9223372036854775808"),
    ("S:i64in", "-5.5"), ("S:i64out", "2000"), ("S:i64out", "123"),
    ("S:lsi", "a long string that exceeds forty characters for sure, yes"), ("S:lso", "short"),
    ("S:wdouble", "4.5"), ("S:wchar", "65"), ("S:wstring", "abc"),
    ("S:ai.EGU", "volts"), ("S:ai.EGU", "a very long units string"), ("S:ai.PREC", "5"), ("S:ai.PREC", "-3"),
    ("S:ai.PREC", "abc"), ("S:ai.DESC", "new desc"), ("S:ai.RTYP", "ao"), ("S:ai.NAME", "x"),
    ("S:ai.HIHI", "60"), ("S:ai.HHSV", "MINOR"), ("S:ai.HHSV", "3"), ("S:ai.HHSV", "BAD"), ("S:ai.HHSV", "4"),
    ("S:ai.SCAN", "1 second"), ("S:ai.SCAN", "Passive"), ("S:ai.SCAN", "I/O Intr"), ("S:ai.SCAN", "bogus"),
    ("S:ai.SCAN", "20"), ("S:ai.SCAN", "Passive"), ("S:calc.SCAN", "I/O Intr"), ("S:ai.PINI", "YES"),
    ("S:ai.PHAS", "-3"), ("S:ai.EVNT", "12"), ("S:ai.EVNT", "abc"), ("S:ai.TPRO", "0"), ("S:ai.DISV", "5"),
    ("S:ai.UDF", "1"), ("S:ai.STAT", "3"), ("S:ai.SEVR", "1"), ("S:ai.NSEV", "2"), ("S:ai.PACT", "1"),
    ("S:ai.INP", "S:ao"), ("S:ai.INP", "1.5"), ("S:ai.FLNK", "S:calc"), ("S:ai.DTYP", "Raw Soft Channel"),
    ("S:ai.DTYP", "nonsense"), ("S:ai.PROC", "1"), ("S:ai.ACKT", "NO"), ("S:ai.ACKS", "MAJOR"),
    ("S:mbbo.ZRST", "Zero"), ("S:mbbo.ZRST", "x" * 30), ("S:bi.ZNAM", "Low"), ("S:wdouble.NELM", "3"),
    ("S:wdouble.NORD", "2"), ("S:wdouble.FTVL", "LONG"), ("S:calc.CALC", "A+"), ("S:calc.CALC", "B*3"),
    ("S:calc.A", "2"), ("S:calcout.OOPT", "On Change"), ("S:calcout.OOPT", "42"), ("S:seq.SELM", "Mask"),
    ("S:seq.DLY1", "0.5"), ("S:lsi.SIZV", "100"), ("S:lsi.LEN", "3"),
]


@pytest.mark.parametrize("pv, value", PUTS)
def test_caput_then_caget(put_pair, pv, value):
    put_pair.assert_same("caput", "-w", "2", pv, value)
    put_pair.assert_same("caget", "-w", "2", "-d", "DBR_CTRL_STRING", pv)


def test_caput_to_a_waveform_of_enums(put_pair):
    # its elements cannot be read as strings (no get_enum_str): caput's readbacks fail, waiting out -w
    put_pair.assert_same("caput", "-w", "1", "S:wenum", "3")
    put_pair.assert_same("caput", "-w", "1", "-a", "S:wenum", "2", "1", "2")
    put_pair.assert_same("caget", "-w", "1", "-d", "DBR_CTRL_ENUM", "S:wenum")
    put_pair.assert_same("caget", "-w", "1", "-d", "DBR_CTRL_STRING", "S:wenum")


PUT_TARGETS = [("S:ao", "3.75"), ("S:mbbo", "1"), ("S:mbbo", "Pause"), ("S:bo", "0"), ("S:lo", "77"),
               ("S:so", "text"), ("S:wchar", "hello there"), ("S:lsi", "long"), ("S:ai.EGU", "mm"),
               ("S:wdouble", "2.5")]


@pytest.mark.parametrize("flags", [["-c"], ["-t"], ["-s"], ["-n"], ["-c", "-t"], ["-S"], ["-c", "-w", "3"],
                                   ["-0x"], ["-e", "3"], ["-f", "2"], ["-g", "4"], ["-lx"]], ids=" ".join)
def test_caput_options(put_pair, flags):
    for pv, value in PUT_TARGETS:
        put_pair.assert_same("caput", "-w", "2", *flags, pv, value)
    put_pair.assert_same("caget", "-w", "2", "-d", "DBR_CTRL_STRING", *(pv for pv, _ in PUT_TARGETS))


ARRAY_PUTS = [
    ["-a", "S:wdouble", "3", "1.5", "2.5", "3.5"], ["-a", "S:wdouble", "10", *map(str, range(10))],
    ["-a", "S:wdouble", "2", "1"], ["-a", "S:wdouble", "x", "1"], ["-a", "S:wdouble", "2", "1", "abc"],
    ["-a", "S:wshort", "3", "1", "70000", "-5"], ["-a", "S:wstring", "2", "ab", "cd"],
    ["-a", "S:wchar", "3", "65", "66", "67"],
    ["-a", "S:wuint64", "2", "18446744073709551615", "1"],
    ["-a", "S:wint64", "2", "-9223372036854775808", "1"],
    ["-a", "S:wfloat", "2", "1e39", "1.5"], ["-a", "S:wulong", "2", "4294967295", "-1"],
    ["-a", "S:wushort", "2", "65535", "7"], ["-a", "S:wuchar", "3", "255", "256", "-1"],
    ["-a", "S:wlong", "1", "12"], ["-a", "S:ai", "2", "1", "2"], ["-a", "S:wdouble", "0"],
    ["-S", "S:wchar", "some text"], ["-S", "S:wuchar", "abcdefghijkl"], ["-S", "S:lso", "via chars"],
    ["-S", "S:ai.DESC", "desc via S"], ["-S", "S:ai", "1.5"], ["-n", "S:mbbo", "2"], ["-n", "S:mbbo", "Run"],
    ["-n", "S:mbbo", "7"], ["-n", "S:bo", "1"], ["-n", "S:bo", "Open"], ["-n", "S:ao", "3"],
    ["-n", "S:ai.SCAN", "2"], ["-n", "S:ai.SCAN", "10"], ["-n", "S:ai.HHSV", "MAJOR"],
    ["-c", "S:calcout", "5"], ["-c", "S:ai.RTYP", "x"], ["-c", "S:mbbo", "bad"], ["-c", "S:ao", "abc"],
    ["S:ai"], [],
]


def test_caput_arrays_enums_and_bad_puts(put_pair):
    for args in ARRAY_PUTS:
        put_pair.assert_same("caput", "-w", "2", *args)
    readable = [pv for pv in NUMERIC_RECORDS if pv != "S:wenum"]
    for flags in (["-d", "DBR_CTRL_DOUBLE"], ["-S"], ["-d", "DBR_STSACK_STRING"], ["-a", "-n"]):
        put_pair.assert_same("caget", "-w", "2", *flags, *readable)


def test_caput_to_names_that_do_not_exist(put_pair):
    put_pair.assert_same("caput", "-w", "1", "S:nope", "1")
    put_pair.assert_same("caput", "-w", "1", "S:ai.NOPE", "1")


# --- camonitor --------------------------------------------------------------------------------------------

# camonitor's client-side and relative times are wall-clock: masked like the server's timestamps, with
# the padding before them (right-aligned, it depends on the time's width)
_CLOCK = re.compile(r"^(\S+)\s+(\(\s*[+-]\d+\.\d{6}\)|[+-]\d+\.\d{6}|\(<time>\))")


class Monitor:
    """A camonitor whose output lines a thread collects, so that waiting for a line can time out."""

    def __init__(self, env: dict[str, str], flags: list[str], pvs: list[str]) -> None:
        self.proc = subprocess.Popen([tool("camonitor"), "-w", "5", *flags, *pvs], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def read_until(self, done: Callable[[str], bool], what: str) -> None:
        while True:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(f"camonitor never printed {what}; got {self.seen}") from None
            self.seen.append(_CLOCK.sub(r"\1 <clock>", mask(line)))
            if done(line):
                return

    def stop(self) -> list[str]:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        return self.seen


MONITORED = ["S:ai", "S:ao", "S:calc", "S:bo", "S:mbbo", "S:li", "S:so", "S:wdouble", "S:wchar", "S:lsi",
             "S:i64out", "S:bi", "S:mbbi", "S:lo", "S:si", "S:wstring", "S:wshort", "S:wuint64", "S:calcout",
             "S:seq", "S:dfanout", "S:i64in", "S:lso", "S:event", "S:ai.EGU", "S:ai.HIHI", "S:mbbo.ONST",
             "S:ai.SEVR", "S:ao.DRVH"]
MONITOR_PUTS = [
    ("S:ai", "3"), ("S:ai", "3.005"), ("S:ai", "3.2"), ("S:ai", "75"), ("S:ai", "95"), ("S:ai", "-45"),
    ("S:ai", "0"), ("S:ai.EGU", "K"), ("S:ai.HOPR", "150"), ("S:ao", "10"), ("S:ao", "47"), ("S:ao", "70"),
    ("S:ao.PREC", "4"), ("S:bo", "Open"), ("S:bo", "0"), ("S:mbbo", "1"), ("S:mbbo", "Pause"),
    ("S:mbbo", "9"), ("S:mbbo.ONST", "Going"), ("S:li", "600"), ("S:li", "950"), ("S:li", "1"),
    ("S:so", "first"), ("S:so", "first"), ("S:so", "second"),
    ("S:lsi", "a long string value beyond forty characters, yes it is"),
    ("S:i64out", "5000"), ("S:i64out", "-12"), ("S:bi", "0"), ("S:bi", "On"), ("S:mbbi", "3"),
    ("S:mbbi", "12"), ("S:lo", "55"), ("S:lo", "500"), ("S:si", "in text"), ("S:calcout", "4"),
    ("S:calcout.PROC", "1"), ("S:seq.PROC", "1"), ("S:dfanout", "2.5"), ("S:i64in", "-77"),
    ("S:lso", "long out text"), ("S:event", "ev3"), ("S:ai.HIHI", "80"), ("S:ao.DRVH", "40"),
    ("S:ao", "45"), ("S:ai", "85"),
]
MONITOR_ARRAY_PUTS = [["-a", "S:wdouble", "3", "1", "2", "3"], ["-a", "S:wdouble", "1", "7"],
                      ["-S", "S:wchar", "chars!"], ["-a", "S:wstring", "2", "one", "two"],
                      ["-a", "S:wshort", "3", "1", "-2", "3"],
                      ["-a", "S:wuint64", "1", "18446744073709551615"]]
MONITOR_FLAGS = [["-m", "va"], ["-m", "l"], ["-m", "a"], ["-m", "p"], ["-t", "n"], ["-t", "s"], ["-t", "sI"],
                 ["-t", "cr"], ["-n"], ["-S"], ["-#", "2"], ["-e", "2"], ["-0x"], ["-F", ";"]]


def test_camonitor_while_caput_changes_records(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        pvs = [*MONITORED, "S:end"]
        monitors = {side: [Monitor(env, flags, pvs) for flags in MONITOR_FLAGS]
                    for side, env in (("C", pair.reference), ("ours", pair.ours))}
        try:
            _compare_monitors(pair, pvs, monitors)
        finally:
            for side_monitors in monitors.values():
                for monitor in side_monitors:
                    if monitor.proc.poll() is None:
                        monitor.stop()


def _compare_monitors(pair: Pair, pvs: list[str], monitors: dict[str, list[Monitor]]) -> None:
    for side_monitors in monitors.values():
        for monitor in side_monitors:
            # every PV's first update, so that no put comes before its subscription exists
            pending = set(pvs)

            def initial(line: str, pending: set[str] = pending) -> bool:
                pending.discard(_pv_of(line))
                return not pending
            monitor.read_until(initial, "the initial updates")
    failures = []
    for pv, value in MONITOR_PUTS:
        failures += _try(pair, "caput", "-w", "2", pv, value)
    for args in MONITOR_ARRAY_PUTS:
        failures += _try(pair, "caput", "-w", "2", *args)
    # S:end goes 0 -> 1 (value and HIGH alarm), then its EGU changes (property): whatever the mask,
    # its next event comes after every event the puts above caused, on this client's one circuit
    failures += _try(pair, "caput", "-w", "2", "S:end", "1")
    failures += _try(pair, "caput", "-w", "2", "S:end.EGU", "done")
    for flags, ref, ours in zip(MONITOR_FLAGS, monitors["C"], monitors["ours"], strict=True):
        for monitor in (ref, ours):
            monitor.read_until(lambda line: _pv_of(line) == "S:end", "the end marker")
        ref_lines, our_lines = ref.stop(), ours.stop()
        if ref_lines != our_lines:
            diff = "\n".join(difflib.unified_diff(ref_lines, our_lines, "C softIoc", "ours", lineterm="",
                                                  n=1))
            failures.append(f"camonitor {' '.join(flags)} differs:\n{diff}")
    assert not failures, "\n\n".join(failures)


def _pv_of(line: str) -> str:
    return re.split(r"[ ;]", line, maxsplit=1)[0]


def _try(pair: Pair, *args: str) -> list[str]:
    try:
        pair.assert_same(*args)
    except AssertionError as error:
        return [str(error)]
    return []


# --- puts whose processing fails --------------------------------------------------------------------------

FAILING_DB = r"""
record(stringin, "F:text") { field(VAL, "hello") }
record(ai, "F:ai") { field(INP, "F:text") }
record(ai, "F:airaw") { field(INP, "F:text") field(DTYP, "Raw Soft Channel") }
record(bi, "F:bi") { field(INP, "F:text") }
record(mbbi, "F:mbbi") { field(INP, "F:text") }
record(longin, "F:li") { field(INP, "F:text") }
record(int64in, "F:i64") { field(INP, "F:text") }
record(waveform, "F:wf") { field(INP, "F:text") field(FTVL, "DOUBLE") field(NELM, "3") }
record(ai, "F:sim") { field(SIMM, "YES") field(SIOL, "F:text") }
record(dfanout, "F:df") { field(DOL, "F:text") field(OMSL, "closed_loop") }
record(calc, "F:calc") { field(INPA, "F:text") field(CALC, "A") }
record(ao, "F:ao") { field(DOL, "F:text") field(OMSL, "closed_loop") }
record(longout, "F:lo") { field(DOL, "F:text") field(OMSL, "closed_loop") }
record(ai, "F:ok") { field(INP, "F:li.HOPR") }
record(calc, "F:target") { field(CALC, "1") }
record(ao, "F:to_name") { field(OUT, "F:target.NAME") }
record(ao, "F:to_stat") { field(OUT, "F:target.STAT") }
record(ao, "F:to_udf") { field(OUT, "F:target.UDF") }
record(bo, "F:to_rtyp") { field(OUT, "F:target.RTYP") }
record(stringout, "F:to_calc") { field(OUT, "F:target.CALC") }
record(stringout, "F:to_link") { field(OUT, "F:target.INPA") }
record(lso, "F:lso") { field(OUT, "F:target.CALC") }
record(longout, "F:lo_name") { field(OUT, "F:target.NAME") }
record(longout, "F:lo_async") { field(OUT, "F:target.NAME") field(DTYP, "Async Soft Channel") }
record(mbbo, "F:mbbo_name") { field(OUT, "F:target.NAME") }
record(int64out, "F:i64_name") { field(OUT, "F:target.NAME") }
record(calcout, "F:co_name") { field(CALC, "1") field(OUT, "F:target.NAME") }
record(seq, "F:seq_name") { field(DOL1, "1") field(LNK1, "F:target.NAME") }
"""


def test_puts_whose_processing_fails(tmp_path, repeater_port):
    # dbPutField returns process()'s status: input records whose input link cannot be read (and dfanout's
    # DOL) make rsrv answer a plain put with ECA_PUTFAIL, after the value is stored and the record processed;
    # a put-callback completes normally, and output records' DOL failures are only an alarm.
    with serve_both(FAILING_DB, tmp_path, repeater_port) as pair:
        pvs = ["F:ai", "F:airaw", "F:bi", "F:mbbi", "F:li", "F:i64", "F:wf", "F:sim", "F:df", "F:calc",
               "F:ao", "F:lo", "F:ok"]
        for pv in pvs:
            pair.assert_same("caput", "-w", "2", f"{pv}.PROC", "1")
            pair.assert_same("caput", "-c", "-w", "2", f"{pv}.PROC", "1")
        pair.assert_same("caput", "-w", "2", "F:ai", "5")
        pair.assert_same("caput", "-w", "2", "F:mbbi", "1")
        pair.assert_same("caget", "-w", "2", "-d", "DBR_STSACK_STRING", *pvs)


def test_puts_whose_output_link_write_fails(tmp_path, repeater_port):
    # dbPut through a link refuses NAME (SPC_NOMOD), STAT, RTYP and link fields: LINK/INVALID for the
    # writer, and ECA_PUTFAIL for the put that processed it where the soft device support returns
    # dbPutLink's status (ao, bo, stringout, lso; longout/mbbo/int64out only as "Async Soft Channel")
    with serve_both(FAILING_DB, tmp_path, repeater_port) as pair:
        puts = [("F:to_name", "1"), ("F:to_stat", "1"), ("F:to_udf", "1"), ("F:to_rtyp", "1"),
                ("F:to_calc", "A+"), ("F:to_link", "F:text"), ("F:lso", "A+"), ("F:lo_name", "2"),
                ("F:lo_async", "2"), ("F:mbbo_name", "1"), ("F:i64_name", "1"), ("F:co_name.PROC", "1"),
                ("F:seq_name.PROC", "1")]
        for pv, value in puts:
            pair.assert_same("caput", "-w", "2", pv, value)
            pair.assert_same("caput", "-c", "-w", "2", pv, value)
        pair.assert_same("caget", "-w", "2", "-d", "DBR_STSACK_STRING", *(pv.split(".")[0] for pv, _ in puts),
                         "F:target.NAME", "F:target.STAT", "F:target.UDF", "F:target.CALC")
        pair.assert_same("caget", "-w", "2", "F:target.INPA")


# --- links to PVs this IOC does not serve -----------------------------------------------------------------

EXTERNAL_DB = r"""
record(ai, "E:ai") { field(VAL, "1") }
record(ao, "E:ao") { field(VAL, "2") }
record(calc, "E:calc") { field(INPA, "E:ai") field(CALC, "A+1") }
record(calcout, "E:co") { field(INPA, "E:ai") field(CALC, "A+1") field(OUT, "E:ao PP") }
record(longin, "E:li") { }
record(stringin, "E:si") { }
record(bo, "E:bo") { }
record(lsi, "E:lsi") { }
record(lso, "E:lso") { }
record(event, "E:ev") { }
record(waveform, "E:wf") { field(NELM, "3") }
record(mbbi, "E:mbbi") { }
record(dfanout, "E:df") { field(OMSL, "closed_loop") }
record(seq, "E:seq") { }
record(fanout, "E:fan") { }
record(ai, "E:tsel") { }
record(ai, "E:sdis") { }
record(ai, "E:loaded") { field(INP, "other:ioc:pv CP MS") field(FLNK, "nowhere") field(PREC, "2") }
record(ao, "E:loaded_out") { field(OUT, "other:ioc:pv.VAL PP") field(DOL, "far:away CA") field(PINI, "YES") }
record(calc, "E:loaded_calc") { field(INPA, "other:pv") field(INPB, "1.5") field(CALC, "A+B") }
"""
EXTERNAL_PUTS = [
    ("E:ai.INP", "nowhere"), ("E:ai.PROC", "1"), ("E:ao.FLNK", "S:bogus"), ("E:ao", "4"),
    ("E:ao.OUT", "nowhere.VAL PP"), ("E:ao", "5"), ("E:calc.INPB", "nowhere CP MS"), ("E:calc.PROC", "1"),
    ("E:co.INPB", "nowhere"), ("E:co.OUT", "nowhere"), ("E:co.PROC", "1"), ("E:li.INP", "E:ai.NOFIELD"),
    ("E:li.PROC", "1"), ("E:si.INP", "nowhere"), ("E:si.PROC", "1"), ("E:bo.OUT", "nowhere"), ("E:bo", "1"),
    ("E:lsi.INP", "nowhere"), ("E:lsi.PROC", "1"), ("E:lso.OUT", "nowhere"), ("E:lso", "x"),
    ("E:ev.INP", "nowhere"), ("E:ev.PROC", "1"), ("E:wf.INP", "nowhere"), ("E:wf.PROC", "1"),
    ("E:mbbi.INP", "nowhere"), ("E:mbbi.PROC", "1"), ("E:df.DOL", "nowhere"), ("E:df.OUTA", "nowhere"),
    ("E:df.PROC", "1"), ("E:seq.LNK1", "nowhere"), ("E:seq.DOL1", "nowhere"), ("E:seq.PROC", "1"),
    ("E:fan.LNK1", "nowhere"), ("E:fan.SELL", "nowhere"), ("E:fan.PROC", "1"), ("E:tsel.TSEL", "nowhere"),
    ("E:tsel.PROC", "1"), ("E:sdis.SDIS", "nowhere"), ("E:sdis.PROC", "1"), ("E:loaded.PROC", "1"),
    ("E:loaded_out", "3"), ("E:loaded_calc.PROC", "1"),
]


def test_links_to_pvs_not_served_here(tmp_path, repeater_port):
    # loaded from the .db or put later, softIoc makes them CA links that never connect: the text reads
    # back as written (flags spelled out), reading or writing through one raises LINK/INVALID, and a put
    # that processes a record whose process() returns that failure is answered ECA_PUTFAIL (lsi and lso's
    # long-string links excepted)
    with serve_both(EXTERNAL_DB, tmp_path, repeater_port) as pair:
        loaded = ["E:loaded", "E:loaded_out", "E:loaded_calc"]
        pair.assert_same("caget", "-w", "2", "-d", "DBR_STSACK_STRING", *loaded)
        pair.assert_same("caget", "-w", "2", "E:loaded.INP", "E:loaded.FLNK", "E:loaded_out.OUT",
                         "E:loaded_out.DOL", "E:loaded_calc.INPA", "E:loaded_calc.INPB")
        for pv, value in EXTERNAL_PUTS:
            pair.assert_same("caput", "-w", "2", pv, value)
        records = sorted({pv.split(".")[0] for pv, _ in EXTERNAL_PUTS})
        pair.assert_same("caget", "-w", "2", "-d", "DBR_STSACK_STRING", *records)
        pair.assert_same("caget", "-w", "2", *(pv for pv, _ in EXTERNAL_PUTS if not pv.endswith(".PROC")))
        pair.assert_same("caget", "-w", "2", "E:co.INAV", "E:co.INBV", "E:co.OUTV", "E:ai.INP$")
        # a link put back to a record of this IOC works again
        pair.assert_same("caput", "-w", "2", "E:ai.INP", "E:ao")
        pair.assert_same("caput", "-w", "2", "E:ai.PROC", "1")
        pair.assert_same("caget", "-w", "2", "-d", "DBR_STSACK_STRING", "E:ai")

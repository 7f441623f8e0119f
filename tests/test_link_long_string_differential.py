"""Links that name a field with "$" ("REC.VAL$", "REC.DESC$", "REC.INP$"), against the C softIoc: the
link reads and writes the CHAR array that dbChannel makes of a STRING or link field, so a long string
travels whole. An lsi/lso source gives its LEN chars as they are (nothing while LEN is 0, which fails a
scalar read); a STRING field read as an array of DBR_CHAR gives its chars up to the NUL, the last one
asked for made a NUL; a scalar read gets the first char (a stringin reads "97" for "a"). Writes go in as
chars: an lso's whole string, and a stringout's text parsed as the number of the first char (so "abc"
fails the put and the processing).
"""
from __future__ import annotations

import pytest
from differential import serve_both

LONG = "a long string that is longer than forty characters for sure ok"

DB = rf"""
record(stringin, "K:src") {{ field(VAL, "short text") }}
record(lsi, "K:long") {{ field(SIZV, "100") field(INP, {{const:"{LONG}"}}) }}
record(lsi, "K:empty") {{ field(SIZV, "30") }}
record(lsi, "K:lsi") {{ field(SIZV, "100") field(INP, "K:long.VAL$") }}
record(lsi, "K:plain") {{ field(SIZV, "100") field(INP, "K:long.VAL") }}
record(lsi, "K:fromsi") {{ field(SIZV, "100") field(INP, "K:src.VAL$") }}
record(lsi, "K:fromdesc") {{ field(SIZV, "100") field(INP, "K:ai.DESC$") }}
record(lsi, "K:frominp") {{ field(SIZV, "100") field(INP, "K:ai.INP$") }}
record(lsi, "K:small") {{ field(SIZV, "16") field(INP, "K:long.VAL$") }}
record(stringin, "K:si") {{ field(INP, "K:long.VAL$") }}
record(stringin, "K:siempty") {{ field(INP, "K:empty.VAL$") }}
record(stringin, "K:sidesc") {{ field(INP, "K:ai.DESC$") }}
record(waveform, "K:wf") {{ field(FTVL, "CHAR") field(NELM, "100") field(INP, "K:long.VAL$") }}
record(waveform, "K:wfsi") {{ field(FTVL, "CHAR") field(NELM, "100") field(INP, "K:src.VAL$") }}
record(waveform, "K:wf5") {{ field(FTVL, "CHAR") field(NELM, "5") field(INP, "K:src.VAL$") }}
record(waveform, "K:wfu") {{ field(FTVL, "UCHAR") field(NELM, "100") field(INP, "K:src.VAL$") }}
record(waveform, "K:wfl5") {{ field(FTVL, "CHAR") field(NELM, "5") field(INP, "K:long.VAL$") }}
record(waveform, "K:wfempty") {{ field(FTVL, "CHAR") field(NELM, "5") field(INP, "K:empty.VAL$") }}
record(ai, "K:ai") {{
    field(INP, "K:long.VAL$ NPP MS") field(DESC, "this is the ai's description text of 40")
}}
record(ai, "K:aiempty") {{ field(INP, "K:empty.VAL$") }}
record(lso, "K:out") {{ field(SIZV, "100") field(OUT, "K:tgt.VAL$ PP") }}
record(lsi, "K:tgt") {{ field(SIZV, "100") }}
record(stringout, "K:so") {{ field(OUT, "K:tgt.VAL$ PP") }}
# link fields: only their "$" form reads (the link's text), and no link writes one
record(ai, "K:far") {{ }}
record(ai, "K:r") {{ field(INP, "K:far.VAL NPP MS") }}
record(lsi, "K:linktext") {{ field(SIZV, "200") field(INP, "K:r.INP$") }}
record(waveform, "K:wflink") {{ field(FTVL, "CHAR") field(NELM, "200") field(INP, "K:r.INP$") }}
record(stringin, "K:silink") {{ field(INP, "K:r.INP$") }}
record(stringin, "K:sinolink") {{ field(INP, "K:r.INP") }}
record(ai, "K:ailink") {{ field(INP, "K:r.INP$") }}
record(longin, "K:lilink") {{ field(INP, "K:r.INP$") }}
record(stringout, "K:solink") {{ field(OUT, "K:r.INP") field(VAL, "K:far") }}
record(stringout, "K:solink2") {{ field(OUT, "K:r.INP$") field(VAL, "K:far") }}
"""

READERS = ["K:lsi", "K:plain", "K:fromsi", "K:fromdesc", "K:frominp", "K:small", "K:si", "K:siempty",
           "K:sidesc", "K:wf", "K:wfsi", "K:wf5", "K:wfu", "K:wfl5", "K:wfempty", "K:ai", "K:aiempty",
           "K:linktext", "K:wflink", "K:silink", "K:sinolink", "K:ailink", "K:lilink"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    with serve_both(DB, tmp_path_factory.mktemp("lslink"), repeater_port) as both:
        yield both


def test_links_read_long_strings_through_dollar(pair):
    for pv in READERS:
        pair.assert_same("caput", "-w", "5", f"{pv}.PROC", "1")
    pair.assert_same("caget", "-w", "5", "-S", *READERS)
    pair.assert_same("caget", "-w", "5", *READERS)
    pair.assert_same("caget", "-w", "5", *(f"{pv}.SEVR" for pv in READERS))
    pair.assert_same("caget", "-w", "5", *(f"{pv}.{'NORD' if ':wf' in pv else 'LEN'}" for pv in READERS
                                           if ":wf" in pv or pv in ("K:lsi", "K:plain", "K:small")))
    # the long string came whole through "$", and only 39 characters without it
    out = pair.assert_same("caget", "-w", "5", "-S", "K:lsi.VAL$", "K:plain.VAL$")
    lines = {line.split(" ", 1)[0]: line for line in out.splitlines()}
    assert lines["K:lsi.VAL$"].endswith(LONG), lines["K:lsi.VAL$"]
    plain = lines["K:plain.VAL$"]
    assert plain.endswith(LONG[:39]) and LONG not in plain, plain


def test_links_write_long_strings_through_dollar(pair):
    for args in (["-S", "K:out.VAL$", "an output string that is longer than forty characters, yes"],
                 ["K:so", "abc"], ["K:so", "65"], ["-S", "K:out.VAL$", ""], ["K:solink.PROC", "1"],
                 ["K:solink2.PROC", "1"]):
        pair.assert_same("caput", "-w", "5", *args)
        pair.assert_same("caget", "-w", "5", "-S", "K:tgt", "K:tgt.VAL$", "K:r.INP")
        pair.assert_same("caget", "-w", "5", "K:tgt.LEN", "K:out.SEVR", "K:so.SEVR", "K:so.STAT",
                         "K:solink.SEVR", "K:solink2.SEVR")

"""AMSG against the C softIoc: a read or write through a link that fails raises LINK/INVALID with the
message "field <link field>" (dbLink.c's setLinkAlarm); recGblResetAlarms copies NAMSG to AMSG, and a
message that changes while STAT and SEVR do not still posts an alarm event (AMSG, STAT and VAL with
DBE_ALARM). NAMSG is never cleared, so AMSG keeps the last message once the alarm has gone.
"""
from __future__ import annotations

from differential import serve_both
from record_differential import assert_put_sequence_matches, caget

DB = r"""
record(stringin, "M:text") { field(VAL, "hello") }
record(ai, "M:num") { field(VAL, "2") }
record(calc, "M:target") { field(CALC, "1") }
record(ai, "M:ai") { field(INP, "M:text") }
record(ai, "M:ca") { field(INP, "nowhere:pv") }
record(ai, "M:tsel") { field(TSEL, "nowhere:pv") }
record(ai, "M:sdis") { field(SDIS, "nowhere:pv") }
record(ai, "M:ms") { field(INP, "M:ca MS") }
record(ai, "M:sim") { field(SIML, "nowhere:pv") }
record(calc, "M:calc") { field(INPA, "M:text") field(INPB, "M:num") field(CALC, "A+B") }
record(ao, "M:ao") { field(OUT, "nowhere:pv") }
record(ao, "M:to_name") { field(OUT, "M:target.NAME") }
record(ao, "M:dol") { field(DOL, "M:text") field(OMSL, "closed_loop") }
record(bo, "M:bo") { field(DOL, "M:text") field(OMSL, "closed_loop") }
record(longin, "M:li") { field(INP, "M:text") }
record(int64in, "M:i64") { field(INP, "M:text") }
record(mbbiDirect, "M:mbbid") { field(INP, "M:text") }
record(waveform, "M:wf") { field(INP, "nowhere:pv") field(NELM, "3") field(FTVL, "DOUBLE") }
record(lsi, "M:lsi") { field(INP, "nowhere:pv") field(SIZV, "30") }
record(lso, "M:lso") { field(OUT, "M:target.CALC") field(SIZV, "30") }
record(stringout, "M:so") { field(OUT, "M:target.INPA") }
record(calcout, "M:co") { field(CALC, "1") field(OUT, "M:target.NAME") }
record(seq, "M:seq") { field(DOL1, "M:text") field(LNK1, "M:num") field(DOL2, "1")
                       field(LNK2, "M:target.NAME") field(SELM, "All") }
record(dfanout, "M:df") { field(DOL, "M:text") field(OMSL, "closed_loop") field(OUTA, "M:target.NAME") }
record(sel, "M:sel") { field(INPA, "M:text") field(SELM, "High Signal") }
record(printf, "M:printf") { field(FMT, "%d") field(INP0, "M:text") }
record(histogram, "M:hist") { field(SVL, "nowhere:pv") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["M:ai", "M:ca", "M:tsel", "M:sdis", "M:ms", "M:sim", "M:calc", "M:ao", "M:to_name", "M:dol",
           "M:bo", "M:li", "M:i64", "M:mbbid", "M:wf", "M:lsi", "M:lso", "M:so", "M:co", "M:seq", "M:df",
           "M:sel", "M:printf", "M:hist"]
MESSAGES = [f"{pv}.{field}" for pv in RECORDS for field in ("AMSG", "NAMSG")]
READS = [caget("DBR_STSACK_STRING", RECORDS), ("caget", "-w", "5", *MESSAGES)]
PROCESSED = [(f"{pv}.PROC", "1") for pv in RECORDS]
# M:calc: INPA fails, then INPB instead (only the message changes), then neither (the alarm goes, the
# message stays), then INPA again
CALC_STEPS = [("M:calc.PROC", "1"), ("M:calc.INPA", "M:num"), ("M:calc.INPB", "M:text"),
              ("M:calc.PROC", "1"), ("M:calc.INPB", "M:num"), ("M:calc.PROC", "1"),
              ("M:calc.INPA", "M:text"), ("M:calc.PROC", "1")]
# M:ai: the input fails, then TSEL too (no worse: the message stays "field INP"), then only TSEL
AI_STEPS = [("M:ai.PROC", "1"), ("M:ai.TSEL", "nowhere:pv"), ("M:ai.PROC", "1"), ("M:ai.INP", "M:num"),
            ("M:ai.PROC", "1"), ("M:ai.TSEL", ""), ("M:ai.PROC", "1")]


def test_failed_link_reads_and_writes_set_the_alarm_message(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, ["M:calc", "M:calc.AMSG", "M:ai", "M:ai.AMSG", "P:end"],
                                    [*PROCESSED, *CALC_STEPS, *AI_STEPS])
        # the point of it: softIoc does name the link
        text = pair.assert_same("caget", "-w", "5", "M:seq.AMSG", "M:calc.AMSG")
        assert "field DOL1" in text and "field INPA" in text

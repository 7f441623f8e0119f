"""Output links flagged CA behave as CA puts (softIoc makes them CA links even within one IOC): a write to a
PP field processes a Passive target, a write to a non-PP field does not."""
from __future__ import annotations

from differential import serve_both

DB = """\
record(ao, "src") { field(OUT, "t CA") }
record(ao, "src2") { field(OUT, "t2.HYST CA") }
record(ai, "t") { field(FLNK, "cnt") }
record(ai, "t2") { field(FLNK, "cnt2") }
record(calc, "cnt") { field(CALC, "VAL+1") }
record(calc, "cnt2") { field(CALC, "VAL+1") }
"""


def test_ca_output_link_processes_a_passive_target_of_a_pp_field(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        for value in ("3", "4"):
            pair.assert_same("caput", "-c", "-w", "5", "src", value)
            pair.assert_same("caput", "-c", "-w", "5", "src2", value)
        # t took the value and processed (its FLNK counted); HYST is not PP, so t2 never processed
        out = pair.assert_same("caget", "-w", "5", "t", "cnt", "t2.HYST", "cnt2")
        assert out.split() == ["t", "4", "cnt", "2", "t2.HYST", "4", "cnt2", "0"]

"""catime and caEventRate against softIoc and against our IOC: what they print is the same apart from the
figures they measure.

Both tools exercise paths the other tool tests do not: catime connects many channels to one PV, puts and
gets every scalar DBR type asynchronously and frees the channels; caEventRate counts a scanned record's
monitor updates.
"""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time

import pytest
from differential import serve_both
from peers import tool

DB = r"""
record(ai, "T:ai") { field(VAL, "1.5") field(PREC, "2") field(EGU, "mm") }
record(longout, "T:long") { field(VAL, "7") }
record(waveform, "T:wf") { field(FTVL, "DOUBLE") field(NELM, "5") }
record(calc, "T:count") { field(SCAN, ".1 second") field(CALC, "A+1") field(INPA, "T:count") }
"""

_FIGURE = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def shape(text: str) -> list[str]:
    """The output with every number replaced and runs of blanks made one (figures change the widths)."""
    return [re.sub(r"\s+", " ", _FIGURE.sub("N", line)).strip() for line in text.splitlines()]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    with serve_both(DB, tmp_path_factory.mktemp("timing"), repeater_port) as both:
        yield both


@pytest.mark.parametrize("pv", ["T:ai", "T:long", "T:wf"])
def test_catime_prints_the_same_tests_and_channel_facts(pair, pv):
    outputs = []
    for env in (pair.reference, pair.ours):
        done = subprocess.run([tool("catime"), pv, "20"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        outputs.append(done.stdout)
    reference, ours = outputs
    assert shape(ours) == shape(reference)
    # the line that is not a figure at all: what the server says the channel is
    facts = [line for line in reference.splitlines() if line.startswith("channel name=")]
    assert facts and facts == [line for line in ours.splitlines() if line.startswith("channel name=")]


def _event_rate_lines(env: dict[str, str], wanted: int, timeout: float = 60.0) -> list[str]:
    """caEventRate's output until it has printed ``wanted`` rate lines (it runs until stopped). It writes
    to a terminal, which its stdio flushes line by line (a pipe would hold every line until exit)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([tool("caEventRate"), "T:count"], env=env, stdout=terminal, stderr=terminal,
                            stdin=subprocess.DEVNULL)
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while output.count(b"CA Event Rate") < wanted:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"caEventRate printed only {output!r}"
            ready, _, _ = select.select([controller], [], [], remaining)
            if ready:
                chunk = os.read(controller, 4096)
                assert chunk, f"caEventRate ended early: {output!r}"
                output += chunk
    finally:
        proc.kill()
        proc.wait()
        os.close(controller)
    return output.decode().replace("\r", "").splitlines()


def test_caeventrate_counts_a_scanned_records_updates_on_both(pair):
    reference = _event_rate_lines(pair.reference, 2)
    ours = _event_rate_lines(pair.ours, 2)
    assert sorted(set(shape("\n".join(ours)))) == sorted(set(shape("\n".join(reference))))
    # a record scanned every 0.1 s: about 10 updates a second on both (the first period may be partial)
    rates = [float(_FIGURE.findall(line)[0]) for line in ours if "CA Event Rate" in line]
    assert 5 <= rates[-1] <= 15, ours

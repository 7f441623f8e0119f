"""caproto-monitor against camonitor: both run side by side on one softIoc and are compared line by line."""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from peers import default_sigint, soft_ioc, tool

DB = r"""
record(ai, "M:ai") { field(VAL, "2.5") field(PREC, "2") field(HIHI, "2") field(HHSV, "MAJOR")
                     field(PINI, "YES") }
record(bo, "M:bo") { field(ZNAM, "Off") field(ONAM, "On") field(VAL, "1") field(PINI, "YES") }
record(longout, "M:long") { field(VAL, "-3") field(PINI, "YES") }
record(waveform, "M:wf") { field(FTVL, "DOUBLE") field(NELM, "6") field(INP, "[1, 2.5, 3]")
                           field(PINI, "YES") }
record(waveform, "M:chr") { field(FTVL, "CHAR") field(NELM, "16") field(INP, "[104, 105, 9, 0]")
                            field(PINI, "YES") }
record(calc, "M:count") { field(SCAN, ".1 second") field(CALC, "A+1") field(INPA, "M:count") }
"""

STATIC = ["M:ai", "M:bo", "M:long", "M:wf", "M:chr", "M:missing"]

# The tools' connection timeout (EPICS_CLI_TIMEOUT, which both honour): how long each waits before it
# prints "*** Not connected (PV not found)" for a PV still unconnected. The default second is shorter
# than a search can take when a test starts 16 tools at once on a loaded 2-core machine, and a PV the IOC
# serves then shows up as not found before its value. Where only served PVs are monitored the wait costs
# nothing (the tools print as soon as they connect); where M:missing must time out, the test waits it out.
CONNECT_TIMEOUT = "30"
MISSING_TIMEOUT = "5"


class Pair:
    """camonitor and caproto-monitor started together with the same arguments."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.c = subprocess.Popen([tool("camonitor"), *args], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, preexec_fn=default_sigint)
        self.ours = subprocess.Popen([sys.executable, "-m", "caproto.commandline.monitor", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     preexec_fn=default_sigint)
        self.output = {self.c: b"", self.ours: b""}

    def wait_for_lines(self, count: int, timeout: float = 90.0) -> None:
        """Read both outputs until each has ``count`` lines (the tools print when they like; the timeout
        is long because up to 20 tools start at once, and on a loaded machine starting Python takes long)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = [p for p in self.output if self.output[p].count(b"\n") < count]
            if not waiting:
                return
            ready, _, _ = select.select([p.stdout for p in waiting], [], [], deadline - time.monotonic())
            for proc in waiting:
                if proc.stdout in ready:
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        return
                    self.output[proc] += chunk
        raise AssertionError(f"{self.args}: fewer than {count} lines after {timeout} s: {self.output}")

    def kill(self) -> None:
        for proc in (self.c, self.ours):
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def interrupt(self) -> tuple[tuple[int, list[str]], tuple[int, list[str]]]:
        results = []
        for proc in (self.c, self.ours):
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=30)
            results.append((proc.returncode, (self.output[proc] + rest).decode().splitlines()))
        return results[0], results[1]


@pytest.fixture
def ioc_env(ca_env, tmp_path):
    with soft_ioc(DB, ca_env, tmp_path):
        yield {**ca_env, "EPICS_CLI_TIMEOUT": CONNECT_TIMEOUT}


@pytest.fixture
def start_pair():
    """Starts pairs of monitors, and kills whatever is left of them when the test ends, failed or not."""
    pairs: list[Pair] = []

    def start(args: list[str], env: dict[str, str]) -> Pair:
        pairs.append(Pair(args, env))
        return pairs[-1]

    yield start
    for pair in pairs:
        pair.kill()


FORMATS = [[], ["-n", "-F", ","], ["-S", "-f", "3"], ["-S", "-#", "2", "-e", "1"], ["-#", "2", "-0x", "-lb"],
           ["-s", "-m", "p"], ["-m", "va", "-t", "n"], ["-w", "4.5", "-t", "sn", "-F", "|"]]


def test_camonitor_lines_for_static_records_match(ioc_env, start_pair):
    env = {**ioc_env, "EPICS_CLI_TIMEOUT": MISSING_TIMEOUT}
    pairs = [start_pair([*options, *STATIC], env) for options in FORMATS]
    for pair in pairs:
        pair.wait_for_lines(len(STATIC))
    for pair in pairs:
        (c_status, c_lines), (status, lines) = pair.interrupt()
        assert sorted(lines) == sorted(c_lines), f"camonitor {' '.join(pair.args)}"
        assert status == c_status == -signal.SIGINT, "both die of the SIGINT"


def _now_masked(line: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} \*\*\*", "<now> ***", line)


def _shape(line: str) -> str:
    """A line with its numbers masked: the counter's values and the times differ between the two runs."""
    return re.sub(r"\d+", "9", re.sub(r" +(?=[+-]\d)", " ", line))


def test_camonitor_time_stamp_modes_print_the_same_shape(ioc_env, start_pair):
    keys = ["s", "c", "sc", "n", "sr", "si", "sI", "cr", "ci", "cI"]
    pairs = [start_pair(["-t", key, "M:count", "M:ai"], ioc_env) for key in keys]
    for pair in pairs:
        pair.wait_for_lines(6)
    for key, pair in zip(keys, pairs, strict=True):
        (_, c_lines), (_, lines) = pair.interrupt()
        ours = {_shape(line) for line in lines}
        theirs = {_shape(line) for line in c_lines}
        shown = "\n".join(c_lines[:6]) + "\nours:\n" + "\n".join(lines[:6])
        assert ours == theirs, f"-t {key}:\nC:\n{shown}"


def test_camonitor_reports_the_server_going_away(ca_env, tmp_path, start_pair):
    with soft_ioc(DB, ca_env, tmp_path) as ioc:
        pair = start_pair(["M:ai", "M:wf"], {**ca_env, "EPICS_CLI_TIMEOUT": CONNECT_TIMEOUT})
        pair.wait_for_lines(2)
        ioc.terminate()
        ioc.wait()
        pair.wait_for_lines(4)
        (_, c_lines), (_, lines) = pair.interrupt()
    assert sorted(map(_now_masked, lines)) == sorted(map(_now_masked, c_lines))
    assert sum("*** disconnected" in line for line in lines) == 2

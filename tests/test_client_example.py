"""examples/client_example.py runs against softIoc and rides out a restart of the IOC."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from peers import soft_ioc

EXAMPLE = Path(__file__).parent.parent / "examples" / "client_example.py"
DB = """
record(ao, "EX:setpoint") { field(VAL, "1") field(PREC, "2") field(EGU, "V") field(PINI, "YES") }
record(calc, "EX:counter") { field(SCAN, ".1 second") field(CALC, "A+1") field(INPA, "EX:counter") }
"""


def _read_until(proc: subprocess.Popen, text: str, seen: list[str], timeout: float = 30.0) -> None:
    """Collect the example's output lines until one contains ``text``."""
    deadline = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer_text = buffer.decode().split("\n")
        buffer = buffer_text.encode()
        seen.extend(lines)
        if any(text in line for line in lines):
            return
    raise AssertionError(f"no line with {text!r} in {timeout} s; output so far: {seen}")


def test_example_reads_writes_and_monitors_across_an_ioc_restart(ca_env, tmp_path):
    seen: list[str] = []
    with soft_ioc(DB, ca_env, tmp_path) as ioc:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--updates", "12"], env=ca_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _read_until(proc, "update 3:", seen)
            ioc.terminate()
            ioc.wait()
            _read_until(proc, "EX:counter disconnected", seen)
            with soft_ioc(DB, ca_env, tmp_path):
                _read_until(proc, "EX:counter connected", seen)
                _read_until(proc, "update 12:", seen)
                assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
        finally:
            proc.kill()
            proc.wait()
    assert seen[0].startswith("EX:setpoint = 1.0 at ") and "(NO_ALARM/NO_ALARM)" in seen[0]
    assert seen[1] == "EX:setpoint := 2.5 V (completed)"

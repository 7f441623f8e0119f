"""EPICS Base's own CA client acceptance test, ``acctst``, against our IOC.

acctst exercises libca against one PV: many contexts and channels, subscriptions added and cleared under
load, exceptions for unreadable types, analog and integer round trips, high-throughput reads and writes,
put-callbacks, bad strings, beacons. Half way it asks for the channel to be disconnected; the test restarts
the IOC on the same port then, as an operator would.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import time

from peers import our_ioc, tool

DB = """\
record(ao, "acc:ao") {
    field(VAL, "0") field(PREC, "3") field(EGU, "mm") field(HOPR, "100") field(LOPR, "-100")
}
"""
ASKS_FOR_DISCONNECT = b"Please force test channel to disconnect"
TIMEOUT = 900.0


def test_acctst_completes_against_our_ioc(tmp_path, ca_env):
    config = tmp_path / "acc.db"
    config.write_text(DB)
    server = our_ioc(config, ca_env)
    server.__enter__()
    restarted = None
    # acctst's channel count (20,000 by default) only sets the size of its connect/clear rounds
    proc = subprocess.Popen([tool("acctst"), "acc:ao", "0", "1000"], env=ca_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output = b""
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if not selector.select(timeout=5.0):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            output += chunk
            if restarted is None and ASKS_FOR_DISCONNECT in output:
                server.__exit__(None, None, None)
                restarted = our_ioc(config, ca_env, "-q")
                restarted.__enter__()
        else:
            raise AssertionError(f"acctst did not finish in {TIMEOUT:.0f} s:\n{output.decode()[-3000:]}")
        returncode = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        (restarted or server).__exit__(None, None, None)
    text = output.decode(errors="replace")
    assert restarted is not None, text[-3000:]
    assert returncode == 0, text[-3000:]
    assert "Test Complete" in text, text[-3000:]
    assert "failed" not in text.lower(), text[-3000:]

"""examples/server_example.py (the core with plain sockets, no trio) serves the real caget, caput and
camonitor."""
from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers import run_tool, stop, tool, wait_for_tcp

EXAMPLE = Path(__file__).parent.parent / "examples" / "server_example.py"


@pytest.fixture
def server(ca_env, tmp_path) -> Iterator[subprocess.Popen]:
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE)], env=ca_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    proc.log_path = log
    try:
        wait_for_tcp(int(ca_env["EPICS_CAS_SERVER_PORT"]), proc)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def camonitor(name: str, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([tool("camonitor"), "-w", "5", name], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def read_until(proc: subprocess.Popen, text: str, seen: list[str], timeout: float = 60.0) -> None:
    """Collect camonitor's lines until one contains ``text``."""
    deadline = time.monotonic() + timeout
    buffer = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        chunk = os.read(proc.stdout.fileno(), 4096).decode() if ready else ""
        if not chunk:
            break
        *lines, buffer = (buffer + chunk).split("\n")
        seen.extend(lines)
        if any(text in line for line in lines):
            return
    raise AssertionError(f"no line with {text!r} in {timeout} s; camonitor said: {seen + [buffer]}")


def test_caget_finds_and_reads_the_double_and_the_string(server, ca_env):
    result = run_tool("caget", "-w", "5", "example:double", "example:string", env=ca_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["example:double", "3.25", "example:string", "hello"]


def test_caget_reads_the_double_as_a_string_with_a_timestamp(server, ca_env):
    result = run_tool("caget", "-w", "5", "-d", "DBR_TIME_STRING", "example:double", env=ca_env)
    assert result.returncode == 0, result.stderr
    assert "Value:            3.25" in result.stdout


def test_caput_writes_and_camonitor_sees_the_update(server, ca_env):
    seen: list[str] = []
    with camonitor("example:double", ca_env) as monitor:
        read_until(monitor, " 3.25", seen)
        result = run_tool("caput", "-w", "5", "example:double", "7.5", env=ca_env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split("\n")[1].split() == ["New", ":", "example:double", "7.5"]
        read_until(monitor, " 7.5", seen)
    assert [line.split()[-1] for line in seen if line.startswith("example:double")] == ["3.25", "7.5"]


def test_caput_with_callback_writes_the_string(server, ca_env):
    result = run_tool("caput", "-c", "-w", "5", "example:string", "new text", env=ca_env)
    assert result.returncode == 0, result.stderr
    assert "New : example:string                 new text" in result.stdout
    reread = run_tool("caget", "-w", "5", "example:string", env=ca_env)
    assert reread.stdout.split(None, 1) == ["example:string", "new text\n"]


def test_a_write_that_does_not_convert_is_refused_and_changes_nothing(server, ca_env):
    result = run_tool("caput", "-w", "5", "example:double", "abc", env=ca_env)
    assert "No reasonable data conversion" in result.stderr
    reread = run_tool("caget", "-w", "5", "example:double", env=ca_env)
    assert reread.stdout.split() == ["example:double", "3.25"]


def test_an_unknown_name_is_not_found(server, ca_env):
    result = run_tool("caget", "-w", "1", "example:nothing", env=ca_env)
    assert result.returncode != 0
    assert "not found" in result.stderr

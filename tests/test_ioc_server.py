"""Our IOC as a process: the CLI, robustness against bad input, pyepics, camonitor, shutdown."""
from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import textwrap

import pytest
from peers import our_ioc, output_of, run_tool, tool

CONFIG = """
prefix: "T:"
records:
  - name: ai
    type: ai
    fields: {VAL: 1.5, PREC: 3, EGU: V}
  - name: big
    type: waveform
    fields: {FTVL: DOUBLE, NELM: 100000}
  - name: so
    type: stringout
    fields: {VAL: "abc"}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "ioc.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def ioc(config, ca_env):
    with our_ioc(config, ca_env) as proc:
        yield proc


def _pyepics(script: str, env: dict[str, str], timeout: float = 60) -> str:
    """pyepics in its own process: libca reads the address list once per process."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_pvs_prints_every_record_and_exits_0(config, ca_env):
    result = subprocess.run([sys.executable, "-m", "ioc", str(config), "--list-pvs"], env=ca_env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["T:ai", "T:big", "T:so"]


def test_broken_yaml_stops_with_file_line_and_exit_status_2(tmp_path, ca_env):
    path = tmp_path / "broken.yaml"
    path.write_text("records:\n  - name: x\n    type: ai\n    fields: {VAL: [1, 2}\n")
    result = subprocess.run([sys.executable, "-m", "ioc", str(path)], env=ca_env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert f"{path}:4" in result.stderr, result.stderr


def test_unknown_field_names_file_line_and_field(tmp_path, ca_env):
    path = tmp_path / "bad.yaml"
    path.write_text("records:\n  - name: x\n    type: ai\n    fields:\n      NOPE: 1\n")
    result = subprocess.run([sys.executable, "-m", "ioc", str(path)], env=ca_env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert f"{path}:5" in result.stderr and "NOPE" in result.stderr, result.stderr


def test_caget_and_caput_round_trip(ioc, ca_env):
    assert run_tool("caput", "-w", "5", "T:ai", "2.25", env=ca_env).returncode == 0
    out = run_tool("caget", "-w", "5", "T:ai", env=ca_env)
    assert out.returncode == 0 and out.stdout.split() == ["T:ai", "2.25"], out.stdout


def test_unknown_pv_is_not_found(ioc, ca_env):
    out = run_tool("caget", "-w", "1", "T:missing", env=ca_env)
    assert out.returncode != 0
    assert "not connected" in (out.stdout + out.stderr).lower() or "not found" in out.stderr.lower()


def test_malformed_tcp_bytes_close_only_that_circuit(ioc, ca_env):
    port = int(ca_env["EPICS_CAS_SERVER_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as bad:
        bad.recv(16)  # the server's VERSION
        # An absurd command id, then a header announcing a misaligned payload.
        bad.sendall(struct.pack(">HHHHII", 999, 0, 0, 0, 0, 0) + b"\xff" * 40)
        reply = bad.recv(4096)
        assert reply[:2] == b"\x00\x0b", "expected an ERROR response"
    out = run_tool("caget", "-w", "5", "T:ai", env=ca_env)
    assert out.returncode == 0 and "1.5" in out.stdout


def test_malformed_udp_datagrams_are_ignored(ioc, ca_env):
    port = int(ca_env["EPICS_CAS_SERVER_PORT"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for junk in (b"\x00", b"\x00\x06\xff\xff" + b"\x00" * 12, b"\x01" * 100,
                     struct.pack(">HHHHII", 6, 64, 10, 13, 1, 1) + b"T:ai\0"):
            udp.sendto(junk, ("127.0.0.1", port))
    out = run_tool("caget", "-w", "5", "T:ai", env=ca_env)
    assert out.returncode == 0 and "1.5" in out.stdout


def test_pyepics_reads_and_writes_100000_doubles_as_numpy(ioc, ca_env):
    out = _pyepics("""
        import numpy as np, epics
        pv = epics.PV("T:big")
        assert pv.wait_for_connection(10)
        data = np.arange(100000, dtype=float) * 0.5
        assert pv.put(data, wait=True, timeout=20)
        got = pv.get(timeout=20, use_monitor=False)
        assert isinstance(got, np.ndarray), type(got)
        assert got.shape == (100000,), got.shape
        assert np.array_equal(got, data)
        print("ok", got[-1])
    """, {**ca_env, "EPICS_CA_MAX_ARRAY_BYTES": "10000000"})
    assert out.split() == ["ok", "49999.5"]


def test_camonitor_sees_puts(ioc, ca_env):
    # -w: camonitor's default second to connect is short on a loaded machine; T:so is served, so a longer
    # timeout costs nothing when the IOC answers and still fails the test when it never does.
    monitor = subprocess.Popen([tool("camonitor"), "-w", "30", "-t", "n", "T:so"], env=ca_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = monitor.stdout.readline()
        assert "abc" in first, first
        for value in ("one", "two"):
            assert run_tool("caput", "-w", "5", "T:so", value, env=ca_env).returncode == 0
            line = monitor.stdout.readline()
            assert line.split()[0] == "T:so" and line.split()[-1] == value, line
    finally:
        monitor.terminate()
        monitor.wait(5)


def test_sigterm_shuts_down_cleanly(config, ca_env):
    with our_ioc(config, ca_env) as proc:
        assert run_tool("caget", "-w", "5", "T:ai", env=ca_env).returncode == 0
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        output = output_of(proc)
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output


def test_client_connection_reset_does_not_stop_the_ioc(ioc, ca_env):
    port = int(ca_env["EPICS_CAS_SERVER_PORT"])
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.recv(16)
        # SO_LINGER 0: close() sends a RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    out = run_tool("caget", "-w", "5", "T:ai", env=ca_env)
    assert out.returncode == 0 and "1.5" in out.stdout


def test_failed_put_names_the_record_and_keeps_the_circuit(ioc, ca_env):
    out = run_tool("caput", "-w", "5", "T:ai", "not a number", env=ca_env)
    assert "Channel write request failed" in out.stderr, out.stderr
    assert "Virtual circuit disconnect" not in out.stderr, out.stderr
    assert run_tool("caget", "-w", "5", "T:ai", env=ca_env).stdout.split() == ["T:ai", "1.5"]

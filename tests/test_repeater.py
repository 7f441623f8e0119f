"""The CA repeater: registration, confirmation, beacon fan-out, pruning; and real libca clients using it."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio
from peers import START_TIMEOUT, ca_environment, free_port, our_ioc, soft_ioc, tool

from caproto.client import ClientSettings, Context
from caproto.client.repeater import Repeater, RepeaterAlreadyRunning, run_repeater
from caproto.constants import Command
from caproto.messages import Header, RepeaterRegisterRequest, RsrvIsUpResponse

LOOPBACK = "127.0.0.1"


async def _udp_client() -> trio.socket.SocketType:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind((LOOPBACK, 0))
    return sock


async def _receive(sock: trio.socket.SocketType, timeout: float = 30.0) -> bytes:
    # generous: only a failing test waits it out, and on a loaded machine a repeater or an IOC in another
    # process can be slow to answer
    with trio.fail_after(timeout):
        data, _ = await sock.recvfrom(65536)
    return data


async def _expect_confirm(sock: trio.socket.SocketType) -> Header:
    header = Header.unpack(await _receive(sock))
    assert header.command == Command.REPEATER_CONFIRM, header
    return header


@pytest.fixture
async def our_repeater(nursery):
    port = free_port()
    await nursery.start(run_repeater, port)
    return port


async def test_empty_datagram_registers_and_is_confirmed_with_the_client_address(our_repeater):
    client = await _udp_client()
    await client.sendto(b"", (LOOPBACK, our_repeater))
    header = await _expect_confirm(client)
    assert header.parameter2 == 0x7F000001, f"confirm carries {header.parameter2:#x}, expected 127.0.0.1"


async def test_register_message_is_confirmed(our_repeater):
    client = await _udp_client()
    await client.sendto(bytes(RepeaterRegisterRequest(client_address=LOOPBACK)), (LOOPBACK, our_repeater))
    await _expect_confirm(client)


async def test_beacon_reaches_every_client_with_the_sender_address_filled_in(our_repeater):
    clients = [await _udp_client() for _ in range(2)]
    for client in clients:
        await client.sendto(b"", (LOOPBACK, our_repeater))
        await _expect_confirm(client)
    # the first client hears a no-op VERSION when the second registers
    assert Header.unpack(await _receive(clients[0])).command == Command.VERSION

    server = await _udp_client()
    beacon = RsrvIsUpResponse(version=13, server_port=5064, beacon_id=7, address=0)
    await server.sendto(bytes(beacon), (LOOPBACK, our_repeater))
    for client in clients:
        header = Header.unpack(await _receive(client))
        assert header.command == Command.RSRV_IS_UP
        assert (header.data_count, header.parameter1) == (5064, 7)
        assert header.parameter2 == 0x7F000001, "the repeater must fill in the beacon's source address"


async def test_datagram_is_not_reflected_to_its_sender(our_repeater):
    client = await _udp_client()
    await client.sendto(b"", (LOOPBACK, our_repeater))
    await _expect_confirm(client)
    await client.sendto(bytes(RsrvIsUpResponse(13, 5064, 1, LOOPBACK)), (LOOPBACK, our_repeater))
    with trio.move_on_after(0.3) as scope:
        data = await _receive(client)
        pytest.fail(f"sender got its own datagram back: {data!r}")
    assert scope.cancelled_caught


async def test_client_that_closed_its_socket_is_pruned():
    repeater = Repeater()
    alive, dead = await _udp_client(), await _udp_client()
    server = await _udp_client()
    try:
        for client in (alive, dead):
            await repeater.register(client.getsockname())
        dead_port = dead.getsockname()[1]
        dead.close()
        # the first send provokes the ICMP port-unreachable; the next one reports it
        for beacon_id in range(3):
            await repeater.fan_out(bytes(RsrvIsUpResponse(13, 5064, beacon_id, LOOPBACK)),
                                   server.getsockname())
        assert dead_port not in repeater.clients
        assert alive.getsockname()[1] in repeater.clients
    finally:
        repeater.close()
        alive.close()
        server.close()


async def test_new_registration_prunes_clients_whose_port_is_free():
    repeater = Repeater()
    first, second = await _udp_client(), await _udp_client()
    try:
        await repeater.register(first.getsockname())
        first_port = first.getsockname()[1]
        first.close()
        await repeater.register(second.getsockname())
        assert list(repeater.clients) == [second.getsockname()[1]], f"{first_port} should be pruned"
    finally:
        repeater.close()
        second.close()


async def test_second_repeater_on_a_taken_port_reports_it(our_repeater):
    with pytest.raises(RepeaterAlreadyRunning):
        await run_repeater(our_repeater)


def test_command_line_repeater_exits_0_when_the_port_is_taken():
    port = free_port()
    env = ca_environment(free_port(), port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("", port))
        result = subprocess.run([sys.executable, "-m", "caproto.commandline.repeater"], env=env,
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


# --- real libca clients -----------------------------------------------------------------------------------

def _ca_repeater_pids(port: int) -> list[int]:
    """caRepeater processes started with our repeater port in their environment (spawned by libca)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "caRepeater":
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"EPICS_CA_REPEATER_PORT={port}".encode() in environ:
            found.append(int(entry.name))
    return found


PYEPICS_MONITOR = """
    import sys, time, epics
    pv = epics.PV("R:ai", auto_monitor=True)
    assert pv.wait_for_connection(5), "pyepics did not connect"
    print("connected", flush=True)
    time.sleep(float(sys.argv[1]))
"""


@pytest.mark.slow
def test_libca_clients_register_with_our_repeater_and_get_beacons(tmp_path):
    """camonitor and pyepics use our repeater (libca registers 10 s after it starts) and get softIoc's
    beacons through it; neither spawns a caRepeater of its own."""
    port = free_port()
    env = ca_environment(free_port(), port)
    env["EPICS_CAS_BEACON_PERIOD"] = "1"  # rsrv's ramp would otherwise leave 10 s between late beacons
    repeater = subprocess.Popen([sys.executable, "-m", "caproto.commandline.repeater", "-vv"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    clients: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT    # starting Python on a loaded machine can take long
        while not _port_bound(port) and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for another process to bind: nothing to wait on but the port
        assert _port_bound(port), f"our repeater did not bind its port in {START_TIMEOUT} s"
        with soft_ioc('record(ai, "R:ai") {}\n', env, tmp_path):
            clients.append(subprocess.Popen([tool("camonitor"), "R:ai"], env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True))
            clients.append(subprocess.Popen([sys.executable, "-c", textwrap.dedent(PYEPICS_MONITOR), "14"],
                                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True))
            clients[1].wait(timeout=40)
            assert _ca_repeater_pids(port) == [], "libca spawned a caRepeater: it did not see ours"
    finally:
        for proc in clients:
            proc.kill()
            proc.wait()
        # A caRepeater that libca spawned (the failure asserted above) outlives its client: it has our
        # private repeater port in its environment, so it is this test's to stop.
        for pid in _ca_repeater_pids(port):
            os.kill(pid, signal.SIGTERM)
        repeater.terminate()
        log = repeater.communicate(timeout=10)[1]
    registered = set(re.findall(r"new client 127\.0\.0\.1:(\d+)", log))
    assert len(registered) >= 2, f"expected camonitor and pyepics to register:\n{log}"
    forwarded = [int(n) for n in re.findall(r"forwarded \d+ bytes from \S+ to (\d+) client", log)]
    assert forwarded and max(forwarded) >= 2, f"no beacon reached both libca clients:\n{log}"


def _port_bound(port: int) -> bool:
    from caproto.client.repeater import port_in_use
    return port_in_use(port)



# --- our client as a repeater client ----------------------------------------------------------------------

async def _wait_registered(ctx, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not ctx.repeater_registered:
            await trio.sleep(0.01)


async def test_our_client_registers_with_our_repeater(our_repeater):
    settings = ClientSettings.from_environment({"EPICS_CA_REPEATER_PORT": str(our_repeater),
                                                "EPICS_CA_AUTO_ADDR_LIST": "NO"})
    async with Context(settings) as ctx:
        await _wait_registered(ctx)


def test_our_client_registers_with_the_c_repeater(ca_env):
    """The session's caRepeater (EPICS Base) confirms our registration too."""
    async def register() -> None:
        async with Context() as ctx:
            await _wait_registered(ctx)

    trio.run(register)


@pytest.mark.parametrize("server", ["softIoc", "our IOC"])
def test_beacons_of_both_iocs_reach_a_client_through_our_repeater(server, tmp_path):
    port = free_port()
    env = ca_environment(free_port(), port)
    env["EPICS_CAS_BEACON_PERIOD"] = "0.5"
    repeater = subprocess.Popen([sys.executable, "-m", "caproto.commandline.repeater"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT    # starting Python on a loaded machine can take long
        while not _port_bound(port) and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for another process to bind: nothing to wait on but the port
        assert _port_bound(port), f"our repeater did not bind its port in {START_TIMEOUT} s"

        async def listen() -> Header:
            client = await _udp_client()
            await client.sendto(b"", (LOOPBACK, port))
            await _expect_confirm(client)
            while True:
                header = Header.unpack(await _receive(client))
                if header.command == Command.RSRV_IS_UP:
                    return header

        if server == "softIoc":
            with soft_ioc('record(ai, "B:ai") {}\n', env, tmp_path):
                beacon = trio.run(listen)
        else:
            config = tmp_path / "ioc.yaml"
            config.write_text("records:\n  - {name: 'B:ai', type: ai}\n")
            with our_ioc(config, env):
                beacon = trio.run(listen)
    finally:
        repeater.terminate()
        repeater.wait()
    assert beacon.data_count == int(env["EPICS_CAS_SERVER_PORT"]), "the beacon names the server's port"
    assert beacon.parameter2 == 0x7F000001, "the repeater fills in the server's address"

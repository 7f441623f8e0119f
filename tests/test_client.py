"""The trio client against the C softIoc: read, write, subscribe, errors, reconnection, duplicates,
name servers; and against a hand-made server that never answers ECHO."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import trio
from peers import ca_environment, free_port, run_tool, soft_ioc

from caproto.circuit import VirtualCircuit
from caproto.client import Context
from caproto.client.environment import ClientSettings
from caproto.client.errors import CAError, ConnectionTimeout, Disconnected
from caproto.client.pv import ConnectionState
from caproto.constants import DBE_ALARM, DBE_PROPERTY, DBE_VALUE, ECA, AccessRights, Role
from caproto.dbr import ChannelType
from caproto.framing import NEED_DATA, parse_datagram
from caproto.messages import (
    CreateChanRequest,
    EchoRequest,
    RsrvIsUpResponse,
    SearchRequest,
    SearchResponse,
    VersionRequest,
    VersionResponse,
)

DB = """
record(ai, "T:ai") { field(VAL, "3.5") field(PREC, "3") field(EGU, "mm") field(HOPR, "10") field(LOPR, "-10")
                     field(HIHI, "8") field(HHSV, "MAJOR") field(PINI, "YES") }
record(bo, "T:bo") { field(ZNAM, "Off") field(ONAM, "On") field(PINI, "YES") }
record(longout, "T:long") { field(VAL, "7") field(PINI, "YES") }
record(stringout, "T:str") { field(VAL, "text") field(PINI, "YES") }
record(waveform, "T:wf") { field(FTVL, "DOUBLE") field(NELM, "20") }
record(waveform, "T:chars") { field(FTVL, "CHAR") field(NELM, "64") }
record(calc, "T:count") { field(SCAN, ".1 second") field(CALC, "A+1") field(INPA, "T:count") }
"""


@pytest.fixture
def ioc(ca_env, tmp_path):
    with soft_ioc(DB, ca_env, tmp_path) as proc:
        yield proc


async def test_read_native_time_and_control_types(ioc):
    async with Context() as ctx:
        ai, bo, wf = await ctx.get_pvs("T:ai", "T:bo", "T:wf")
        assert (ai.native_type, ai.element_count) == (ChannelType.DOUBLE, 1)
        assert (wf.native_type, wf.element_count) == (ChannelType.DOUBLE, 20)
        assert ai.access == AccessRights.READ_WRITE
        reading = await ai.read()
        assert reading.data_type == ChannelType.DOUBLE and list(reading.data) == [3.5]
        timed = await ai.read(data_type="time")
        assert timed.data_type == ChannelType.TIME_DOUBLE and timed.metadata.secs > 0
        control = await ai.read(data_type=ChannelType.CTRL_DOUBLE)
        md = control.metadata
        assert (md.units, md.precision, md.upper_disp_limit, md.upper_alarm_limit) == ("mm", 3, 10.0, 8.0)
        enum = await bo.read(data_type="control")
        assert enum.metadata.enum_strings == ("Off", "On")
        as_text = await bo.read(data_type=ChannelType.STRING)
        assert as_text.data == ["Off"]
        empty = await wf.read()
        assert empty.data_count == 0, "count 0 asks for the current length (NORD)"


async def test_read_many_answers_every_pv_in_order(ioc):
    async with Context() as ctx:
        pvs = await ctx.get_pvs("T:ai", "T:long", "T:str")
        missing = ctx.create_pv("T:nope")
        replies = await ctx.read_many([*pvs, missing], data_type="time")
        assert [list(r.data) for r in replies[:3]] == [[3.5], [7], ["text"]]
        assert all(r.metadata.secs > 0 for r in replies[:3])
        assert isinstance(replies[3], Disconnected)
        as_double = await ctx.read_many(pvs, data_type=ChannelType.DOUBLE)
        assert list(as_double[0].data) == [3.5] and isinstance(as_double[2], CAError)


async def test_write_with_completion_then_read_back(ioc):
    async with Context() as ctx:
        ai, bo, wf, text, chars = await ctx.get_pvs("T:ai", "T:bo", "T:wf", "T:str", "T:chars")
        reply = await ai.write(4.25, wait=True)
        assert reply.status == ECA.NORMAL
        assert list((await ai.read()).data) == [4.25]
        await bo.write("On", wait=True)
        assert list((await bo.read()).data) == [1]
        await wf.write(np.arange(5.0), wait=True)
        assert list((await wf.read()).data) == [0.0, 1.0, 2.0, 3.0, 4.0]
        await text.write("new text", wait=True)
        assert (await text.read()).data == ["new text"]
        await chars.write("a long string", wait=True)
        assert bytes((await chars.read()).data).rstrip(b"\0") == b"a long string"


async def test_write_without_completion_is_applied_in_order(ioc):
    async with Context() as ctx:
        pv, = await ctx.get_pvs("T:long")
        for value in range(10, 20):
            assert await pv.write(value) is None
        assert list((await pv.read()).data) == [19]


async def test_server_refusals_raise_ca_errors(ioc):
    async with Context() as ctx:
        rtyp, text, ai = await ctx.get_pvs("T:ai.RTYP", "T:str", "T:ai")
        with pytest.raises(CAError) as refused_put:
            await rtyp.write("calc", wait=True)
        assert refused_put.value.eca != ECA.NORMAL
        with pytest.raises(CAError):
            await text.read(data_type=ChannelType.DOUBLE)
        with pytest.raises(CAError) as too_many:
            await ai.write([1.0, 2.0])
        assert too_many.value.eca == ECA.BADCOUNT


async def test_missing_pvs_time_out_naming_them(ioc):
    async with Context() as ctx:
        with pytest.raises(ConnectionTimeout) as missing:
            await ctx.get_pvs("T:ai", "T:nope", timeout=0.5)
        assert missing.value.names == ["T:nope"]
        nope = ctx.create_pv("T:nope")
        assert nope.state is ConnectionState.NEVER_CONNECTED
        with pytest.raises(Disconnected):
            await nope.read()


async def test_subscription_delivers_the_current_value_then_updates(ioc):
    async with Context() as ctx:
        pv, = await ctx.get_pvs("T:long")
        async with pv.subscribe() as sub:
            first = await sub.__anext__()
            assert first.data_type == ChannelType.TIME_LONG and list(first.data) == [7]
            await pv.write(8)
            await pv.write(9)
            values = [list((await sub.__anext__()).data)[0] for _ in range(2)]
            assert values == [8, 9]
        assert pv.subscriptions == []


async def test_subscription_mask_is_honoured(ioc):
    """DBE_PROPERTY only: the initial update, and none for a change of value."""
    async with Context() as ctx:
        pv, = await ctx.get_pvs("T:long")
        seen = []
        sub = pv.subscribe(mask=DBE_PROPERTY)
        sub.add_callback(seen.append)
        watcher = pv.subscribe(mask=DBE_VALUE | DBE_ALARM)
        await watcher.__anext__()
        await pv.write(100, wait=True)
        await watcher.__anext__()
        assert len(seen) == 1, f"a DBE_PROPERTY subscription got value updates: {seen}"
        sub.clear()
        watcher.clear()


async def test_iteration_ends_when_unsubscribed(ioc):
    async with Context() as ctx:
        pv, = await ctx.get_pvs("T:count")
        sub = pv.subscribe()
        received = 0
        async for _event in sub:
            received += 1
            if received == 3:
                pv.unsubscribe(sub)
        assert received == 3


async def test_slow_consumer_keeps_the_newest_updates(ioc):
    async with Context() as ctx:
        pv, = await ctx.get_pvs("T:long")
        sub = pv.subscribe(queue_size=2)
        await sub.__anext__()
        for value in range(5):
            await pv.write(value)
        await pv.read()   # the reply comes after every update the writes caused
        values = [int((await sub.__anext__()).data[0]) for _ in range(2)]
        assert values == [3, 4] and sub.dropped == 3
        sub.clear()


async def test_server_restart_reconnects_and_resubscribes(ca_env, tmp_path):
    events: list[bool] = []
    with soft_ioc(DB, ca_env, tmp_path) as first:
        async with Context() as ctx:
            pv, = await ctx.get_pvs("T:long")
            pv.add_connection_callback(lambda _pv, connected: events.append(connected))
            sub = pv.subscribe()
            assert list((await sub.__anext__()).data) == [7]
            first.terminate()
            first.wait()
            with trio.fail_after(10):
                while pv.connected:
                    await trio.sleep(0.01)
            assert pv.state is ConnectionState.PREVIOUSLY_CONNECTED
            with soft_ioc(DB, ca_env, tmp_path):
                with trio.fail_after(15):
                    await pv.wait_for_connection(None)
                    # the subscription was installed again: the new IOC's initial value arrives
                    assert list((await sub.__anext__()).data) == [7]
            assert events[:2] == [False, True]


async def test_two_servers_with_one_name_are_reported_not_mixed(repeater_port, tmp_path, caplog):
    ports = [free_port(), free_port()]
    envs = [ca_environment(port, repeater_port) for port in ports]
    settings = ClientSettings.from_environment({
        "EPICS_CA_ADDR_LIST": " ".join(f"127.0.0.1:{port}" for port in ports),
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_REPEATER_PORT": str(repeater_port),
    })
    with soft_ioc(DB, envs[0], tmp_path), soft_ioc(DB, envs[1], tmp_path):
        async with Context(settings) as ctx:
            caplog.set_level(logging.WARNING)
            # rsrv may answer UDP searches a moment after it accepts TCP: search names until both answer
            for name in ["T:ai", "T:bo", "T:long", "T:str", "T:wf", "T:chars", "T:count"]:
                pv, = await ctx.get_pvs(name)
                with trio.move_on_after(0.3):
                    while not ctx.duplicates:
                        await trio.sleep(0.01)
                if ctx.duplicates:
                    break
            name, used, ignored = ctx.duplicates[0]
            assert name == pv.name and used == pv.server and ignored != used
            assert {used[1], ignored[1]} == set(ports)
            assert "Identical process variable names on multiple servers" in caplog.text


async def test_name_server_over_tcp_finds_channels_without_udp(repeater_port, tmp_path):
    port = free_port()
    env = ca_environment(port, repeater_port)
    settings = ClientSettings.from_environment({
        "EPICS_CA_NAME_SERVERS": f"127.0.0.1:{port}",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_REPEATER_PORT": str(repeater_port),
    })
    assert settings.search_addresses() == []
    with soft_ioc(DB, env, tmp_path):
        async with Context(settings) as ctx:
            pv, = await ctx.get_pvs("T:ai", timeout=5)
            assert list((await pv.read()).data) == [3.5]


async def test_name_server_that_starts_late_is_reached(repeater_port, tmp_path):
    port = free_port()
    env = ca_environment(port, repeater_port)
    settings = ClientSettings.from_environment({
        "EPICS_CA_NAME_SERVERS": f"127.0.0.1:{port}", "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_REPEATER_PORT": str(repeater_port)})
    async with Context(settings) as ctx:
        pv = ctx.create_pv("T:ai")
        await trio.sleep(0.5)   # the first connection to the name server is refused
        with soft_ioc(DB, env, tmp_path):
            await pv.wait_for_connection(10)
            assert list((await pv.read()).data) == [3.5]


async def test_error_inside_the_context_propagates_unwrapped(ioc):
    with pytest.raises(KeyError):
        async with Context():
            raise KeyError("from the body")


async def test_closed_pv_is_cleared_and_forgotten(ioc):
    async with Context() as ctx:
        pv, = await ctx.get_pvs("T:ai")
        await pv.close()
        assert pv.state is ConnectionState.CLOSED and ctx.pvs == []
        again, = await ctx.get_pvs("T:ai")
        assert again is not pv and again.connected


# --- a server that goes silent ---------------------------------------------------------------------------

async def _silent_server(listener: trio.SocketListener, echoes: list[float], port: int,
                         creates: list[float] | None = None) -> None:
    """Answers searches (as a name server) and creates channels, but never answers ECHO. With
    ``creates``, refuses every channel instead (CREATE_CH_FAIL) and notes when it was asked."""
    async def serve(stream: trio.SocketStream) -> None:
        circuit = VirtualCircuit(Role.SERVER, ("127.0.0.1", 0))
        while data := await stream.receive_some(65536):
            circuit.recv(data)
            while (message := circuit.next_command()) is not NEED_DATA:
                replies = []
                if isinstance(message, VersionRequest):
                    replies.append(VersionResponse(13))
                elif isinstance(message, SearchRequest):
                    replies.append(SearchResponse(port, "255.255.255.255", message.cid, None))
                elif isinstance(message, CreateChanRequest) and creates is not None:
                    creates.append(trio.current_time())
                    replies.append(circuit.channels[message.cid].fail())
                elif isinstance(message, CreateChanRequest):
                    replies += circuit.channels[message.cid].create(ChannelType.DOUBLE, 1)
                elif isinstance(message, EchoRequest):
                    echoes.append(trio.current_time())
                if replies:
                    await stream.send_all(circuit.send(*replies))

    await trio.serve_listeners(serve, [listener])


async def test_silent_server_gets_an_echo_then_is_dropped(autojump_clock, nursery, monkeypatch):
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    echoes: list[float] = []
    nursery.start_soon(_silent_server, listener, echoes, port)
    settings = ClientSettings.from_environment({
        "EPICS_CA_NAME_SERVERS": f"127.0.0.1:{port}", "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_CONN_TMO": "2", "EPICS_CA_REPEATER_PORT": str(free_port())})
    async with Context(settings) as ctx:
        pv, = await ctx.get_pvs("quiet", timeout=5)
        connected_at = trio.current_time()
        with trio.fail_after(30):
            while pv.connected:
                await trio.sleep(0.1)
        silent_for = trio.current_time() - connected_at
        assert echoes, "no ECHO was sent on the idle circuit"
        assert echoes[0] - connected_at == pytest.approx(2.0, abs=0.2)
        assert silent_for == pytest.approx(2.0 + 5.0, abs=0.3), "dropped after EPICS_CA_CONN_TMO + 5 s"


async def test_a_refused_channel_is_searched_again_after_a_delay(autojump_clock, nursery):
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    creates: list[float] = []
    nursery.start_soon(_silent_server, listener, [], port, creates)
    settings = ClientSettings.from_environment({
        "EPICS_CA_NAME_SERVERS": f"127.0.0.1:{port}", "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_REPEATER_PORT": str(free_port())})
    async with Context(settings) as ctx:
        pv = ctx.create_pv("refused")
        await trio.sleep(10)
        assert not pv.connected
    gaps = [later - earlier for earlier, later in zip(creates, creates[1:], strict=False)]
    assert 5 <= len(creates) <= 11, f"{len(creates)} CREATE_CHAN in 10 s: {creates}"
    assert min(gaps) >= 1.0, "the client must not hammer a server that refuses the channel"


async def test_beacon_of_a_new_server_cuts_the_search_back_off_short(autojump_clock, nursery):
    """A name searched for a minute is searched every few seconds; a beacon from a server never seen
    before (forwarded to us by the repeater) makes the client search at once, and it connects."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    tcp_port = listener.socket.getsockname()[1]
    nursery.start_soon(_silent_server, listener, [], tcp_port)
    udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await udp.bind(("127.0.0.1", 0))
    udp_port = udp.getsockname()[1]
    searches: list[float] = []
    answering = trio.Event()

    async def udp_server() -> None:
        while True:
            data, sender = await udp.recvfrom(65536)
            for message in parse_datagram(data, Role.SERVER):
                if isinstance(message, SearchRequest):
                    searches.append(trio.current_time())
                    if answering.is_set():
                        reply = VersionResponse(13).to_bytes() + SearchResponse(
                            tcp_port, "255.255.255.255", message.cid, 13).to_bytes()
                        await udp.sendto(reply, sender)

    nursery.start_soon(udp_server)
    settings = ClientSettings.from_environment({
        "EPICS_CA_ADDR_LIST": f"127.0.0.1:{udp_port}", "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_REPEATER_PORT": str(free_port())})
    async with Context(settings) as ctx:
        pv = ctx.create_pv("late")
        await trio.sleep(60)
        gap = searches[-1] - searches[-2]
        assert gap > 4.0, f"the back-off should have grown after a minute: {searches}"
        answering.set()
        beacon = RsrvIsUpResponse(13, tcp_port, 0, "127.0.0.1")
        await udp.sendto(beacon.to_bytes(), ("127.0.0.1", ctx._udp.getsockname()[1]))
        beacon_time = trio.current_time()
        await pv.wait_for_connection(None)
        assert trio.current_time() - beacon_time < 0.5, "the beacon anomaly must trigger a search at once"


def test_c_tools_see_what_our_client_wrote(ioc, ca_env):
    async def write() -> None:
        async with Context() as ctx:
            pv, = await ctx.get_pvs("T:str")
            await pv.write("from caproto", wait=True)

    trio.run(write)
    result = run_tool("caget", "-t", "T:str", env=ca_env)
    assert result.stdout.strip() == "from caproto"

"""The blocking client (caproto.client.sync) against softIoc, called from plain threads."""
from __future__ import annotations

import threading

import pytest
from peers import soft_ioc

from caproto.client import sync
from caproto.client.errors import CAError, ConnectionTimeout

DB = """
record(ao, "S:ao") { field(VAL, "1.5") field(PINI, "YES") }
record(bo, "S:bo") { field(ZNAM, "Off") field(ONAM, "On") field(PINI, "YES") }
record(waveform, "S:wf") { field(FTVL, "LONG") field(NELM, "5") }
"""


@pytest.fixture
def ctx(ca_env, tmp_path):
    with soft_ioc(DB, ca_env, tmp_path), sync.SyncContext() as context:
        yield context


def test_read_and_write_block_until_done(ctx):
    assert list(ctx.read("S:ao").data) == [1.5]
    reply = ctx.write("S:ao", 2.5, wait=True)
    assert reply is not None and reply.status == 1
    assert ctx.read("S:ao", data_type="time").metadata.secs > 0
    assert list(ctx.read("S:ao").data) == [2.5]


def test_errors_reach_the_calling_thread(ctx):
    with pytest.raises(ConnectionTimeout):
        ctx.read("S:missing", timeout=0.3)
    with pytest.raises(CAError):
        ctx.write("S:ao.RTYP", "x", wait=True)


def test_pv_object_get_put_subscribe(ctx):
    pv = sync.PV("S:bo", context=ctx)
    pv.wait_for_connection()
    assert pv.connected and pv.element_count == 1
    assert pv.get() == 0 and pv.get(data_type="string") == "Off"
    updates: list[int] = []
    two = threading.Event()

    def on_update(event):
        updates.append(int(event.data[0]))
        if len(updates) == 2:
            two.set()

    sub = pv.subscribe(on_update)
    pv.put("On", wait=True)
    assert two.wait(5), f"updates seen: {updates}"
    assert updates == [0, 1]
    sub.clear()
    wf = sync.PV("S:wf", context=ctx)
    wf.put([1, 2, 3], wait=True)
    assert list(wf.get()) == [1, 2, 3]
    pv.close()
    assert not pv.connected


def test_module_functions_share_a_default_context(ca_env, tmp_path, monkeypatch):
    for key, value in ca_env.items():
        if key.startswith("EPICS_"):
            monkeypatch.setenv(key, value)
    with soft_ioc(DB, ca_env, tmp_path):
        try:
            sync.write("S:ao", 7, wait=True)
            assert list(sync.read("S:ao").data) == [7.0]
            seen = threading.Event()
            sub = sync.subscribe("S:ao", lambda event: seen.set())
            assert seen.wait(5)
            sub.clear()
        finally:
            sync.default_context().close()


def test_calls_after_close_are_refused(ctx):
    ctx.close()
    with pytest.raises(sync.ClientError):
        ctx.read("S:ao")

"""The runnable examples of docs/core.md, and the light public namespace they import from."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import caproto
from caproto.constants import ECA, Command, Role
from caproto.errors import LocalProtocolError
from caproto.framing import StreamParser

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "docs" / "examples"
CAPTURES = Path(__file__).parent / "fixtures" / "captures"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse(data: bytes, our_role: Role) -> list:
    parser = StreamParser(our_role)
    parser.feed(data)
    return list(parser)


@pytest.mark.parametrize("script, expected", [
    ("client_circuit.py", "demo:ai = 3.25 at 1700000000.0 (status 0, severity 0)\n"),
    ("server_circuit.py", "served demo:ai = 3.25 to me@here\n"),
])
def test_examples_run_as_scripts(script, expected):
    result = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected


def test_client_bytes_go_through_the_server_circuit_and_back():
    client, server = load("client_circuit"), load("server_circuit")
    host = server.Server({"X:ai": [-1.5]})
    sent, answered = [], []

    def exchange(data: bytes) -> bytes:
        sent.extend(parse(data, Role.SERVER))
        reply = host.exchange(data)
        answered.extend(parse(reply, Role.CLIENT))
        return reply

    value, metadata = client.caget("X:ai", exchange)
    assert value == -1.5 and metadata.timestamp == 1_700_000_000.0
    assert [m.COMMAND for m in sent] == [Command.VERSION, Command.HOST_NAME, Command.CLIENT_NAME,
                                         Command.CREATE_CHAN, Command.READ_NOTIFY]
    assert [m.COMMAND for m in answered] == [Command.VERSION, Command.ACCESS_RIGHTS, Command.CREATE_CHAN,
                                             Command.READ_NOTIFY]
    assert (host.circuit.client_username, host.circuit.client_hostname) == ("me", "here")


def test_unknown_name_fails_the_channel():
    client, server = load("client_circuit"), load("server_circuit")
    with pytest.raises(LocalProtocolError, match="cannot read channel 'nope' .* FAILED"):
        client.caget("nope", server.Server({}).exchange)


def test_server_example_answers_what_caget_sent_softioc_as_softioc_did():
    """The bytes libca's caget sent to softIoc, fed to the example server: the same answers, ids and all."""
    (connection,) = json.loads((CAPTURES / "caget_time_double.json").read_text())["tcp"]
    host = load("server_circuit").Server({"cap:ai": [3.25]})
    ours = parse(host.exchange(bytes.fromhex(connection["client_to_server"])), Role.CLIENT)
    theirs = parse(bytes.fromhex(connection["server_to_client"]), Role.CLIENT)
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    # softIoc numbered this first channel sid 0, as the example server does
    assert [m.header[:4] for m in ours[:3]] == [m.header[:4] for m in theirs[:3]]
    ours_read, theirs_read = ours[3], theirs[3]
    assert (ours_read.ioid, ours_read.status, list(ours_read.data)) == (theirs_read.ioid, ECA.NORMAL,
                                                                        list(theirs_read.data))
    assert ours[4] == theirs[4]  # CLEAR_CHANNEL
    assert host.circuit.channels == {}


def test_core_guide_shows_both_examples_verbatim():
    guide = (ROOT / "docs" / "core.md").read_text()
    for name in ("client_circuit", "server_circuit"):
        assert (EXAMPLES / f"{name}.py").read_text() in guide, f"docs/core.md shows an old {name}.py"


def test_import_caproto_is_light():
    code = "import sys, caproto; print(sorted(m for m in ('numpy', 'caproto.messages') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_every_public_name_resolves_to_its_module():
    for name in caproto.__all__:
        value = getattr(caproto, name)
        module = caproto._HOME[name]
        assert value is getattr(importlib.import_module(f"caproto.{module}"), name)
    assert "VirtualCircuit" in dir(caproto)
    with pytest.raises(AttributeError, match="no attribute 'Nonsense'"):
        caproto.Nonsense  # noqa: B018

"""The demo IOC (configs/demo.yaml, the README's first command) against the C softIoc serving the same
records from a .db file written from the YAML: every PV read with the tools as an EPICS user would, puts
of good and bad values, and the same reads after them."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from differential import Pair
from peers import ca_environment, free_port, our_ioc, soft_ioc

from ioc.config import load_config

DEMO = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def db_text(config_path: Path) -> str:
    """The records of a YAML configuration as an EPICS .db file (values as written in the YAML)."""
    config = load_config(config_path)
    lines = []
    for spec in config.records:
        fields = " ".join(f'field({name}, "{located.value}")' for name, located in spec.fields.items())
        lines.append(f'record({spec.rtype}, "{spec.name}") {{ {fields} }}')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, repeater_port):
    tmp = tmp_path_factory.mktemp("demo")
    config = tmp / "demo.yaml"
    shutil.copy(DEMO, config)       # our IOC writes its log beside its configuration
    ref_env, our_env = (ca_environment(free_port(), repeater_port) for _ in range(2))
    with contextlib.ExitStack() as servers:
        servers.enter_context(soft_ioc(db_text(config), ref_env, tmp))
        proc = servers.enter_context(our_ioc(config, our_env))
        pair = Pair(ref_env, our_env)
        pair.our_process = proc
        yield pair, [spec.name for spec in load_config(config).records]


READ_FORMS = [[], ["-a"], ["-d", "DBR_CTRL_DOUBLE"], ["-d", "DBR_CTRL_STRING"], ["-d", "DBR_TIME_STRING"],
              ["-d", "DBR_GR_LONG"], ["-d", "DBR_CTRL_ENUM"], ["-d", "DBR_STSACK_STRING"], ["-n"], ["-t"],
              ["-#", "4"], ["-S"]]
PUTS = [("DEMO:temperature", "45"), ("DEMO:temperature", "abc"), ("DEMO:setpoint", "99"),
        ("DEMO:setpoint", "-5"), ("DEMO:pump", "On"), ("DEMO:pump", "2"), ("DEMO:pump:status", "1"),
        ("DEMO:mode", "Cooling"), ("DEMO:mode", "Fault"), ("DEMO:mode:readback", "3"), ("DEMO:mode", "Boil"),
        ("DEMO:counter", "7"), ("DEMO:limit", "5000"), ("DEMO:limit", "1.5e2"), ("DEMO:operator", "alice"),
        ("DEMO:message", "x" * 45), ("DEMO:temperature.EGU", "K"), ("DEMO:temperature.HIHI", "44")]


@pytest.mark.parametrize("form", READ_FORMS, ids=lambda form: " ".join(form) or "plain")
def test_every_demo_pv_reads_as_from_softioc(demo, form):
    pair, names = demo
    pair.assert_same("caget", "-w", "5", *form, *names)


def test_demo_pvs_show_the_same_cainfo(demo):
    pair, names = demo
    pair.assert_same("cainfo", "-w", "5", *names)


def test_demo_puts_and_arrays_match_softioc(demo):
    pair, names = demo
    for pv, value in PUTS:
        pair.assert_same("caput", "-w", "5", pv, value)
    pair.assert_same("caput", "-w", "5", "-a", "DEMO:spectrum", "3", "1.5", "2.5", "-3")
    pair.assert_same("caput", "-w", "5", "-S", "DEMO:title", "Demo spectrum")
    pair.assert_same("caput", "-w", "5", "-c", "DEMO:setpoint", "12.25")
    for form in (["-a"], ["-d", "DBR_CTRL_DOUBLE"], ["-S"]):
        pair.assert_same("caget", "-w", "5", *form, *names)

"""caproto-get/-put/-info against the C tools: same stdout, same exit status, same messages, on softIoc.

Each case runs the EPICS Base tool and ours (in-process, for speed) against one C softIoc and compares.
caproto-monitor, which runs until stopped, is compared in test_cli_monitor.py.
"""
from __future__ import annotations

import difflib
import re
import subprocess
import sys

import pytest
from peers import ca_environment, default_sigint, free_port, run_tool, soft_ioc

from caproto.commandline import get, info, put

DB = r"""
record(ai, "C:ai") {
    field(VAL, "3.14159") field(PREC, "3") field(EGU, "mm") field(HOPR, "10") field(LOPR, "-10")
    field(HIHI, "8") field(HHSV, "MAJOR") field(HIGH, "5") field(HSV, "MINOR") field(PINI, "YES")
}
record(ai, "C:alarm") { field(VAL, "9") field(HIHI, "8") field(HHSV, "MAJOR") field(PINI, "YES") }
record(ai, "C:udf") { }
record(ao, "C:ao") { field(VAL, "1.5") field(PREC, "2") field(DRVH, "100") field(DRVL, "-100")
                     field(PINI, "YES") }
record(bo, "C:bo") { field(ZNAM, "Off") field(ONAM, "On") field(PINI, "YES") }
record(mbbo, "C:mbbo") { field(ZRST, "zero") field(ONST, "one") field(TWST, "two") field(VAL, "1")
                         field(PINI, "YES") }
record(longout, "C:long") { field(VAL, "42") field(PINI, "YES") field(EGU, "counts") field(HOPR, "1000") }
record(longout, "C:neg") { field(VAL, "-5") field(PINI, "YES") }
record(stringout, "C:str") { field(VAL, "hello world") field(PINI, "YES") }
record(waveform, "C:wf") { field(FTVL, "DOUBLE") field(NELM, "10") }
record(waveform, "C:float") { field(FTVL, "FLOAT") field(NELM, "4") }
record(waveform, "C:short") { field(FTVL, "SHORT") field(NELM, "4") }
record(waveform, "C:chr") { field(FTVL, "CHAR") field(NELM, "40") }
record(waveform, "C:uchr") { field(FTVL, "UCHAR") field(NELM, "8") }
"""

# Values set with the C caput once the IOC is up (waveforms have no initial value in a .db).
SETUP = [
    ("-a", "C:wf", "3", "1", "-2.5", "1e10"),
    ("-a", "C:float", "2", "0.1", "3"),
    ("-a", "C:short", "3", "-1", "2", "300"),
    ("-S", "C:chr", "tab\\there \\\"quoted\\\""),
    ("-a", "C:uchr", "3", "200", "7", "0"),
]

SCALARS = ["C:ai", "C:alarm", "C:udf", "C:ao", "C:bo", "C:mbbo", "C:long", "C:neg", "C:str"]
ARRAYS = ["C:wf", "C:float", "C:short", "C:chr", "C:uchr"]
ALL = SCALARS + ARRAYS


@pytest.fixture(scope="module")
def ioc_env(repeater_port, tmp_path_factory):
    env = ca_environment(free_port(), repeater_port)
    with soft_ioc(DB, env, tmp_path_factory.mktemp("cli")):
        for args in SETUP:
            result = run_tool("caput", *args, env=env)
            assert result.returncode == 0, result.stderr
        yield env


@pytest.fixture
def env(ioc_env, monkeypatch):
    """The IOC's environment, also in os.environ for our tools running in this process."""
    for key, value in ioc_env.items():
        if key.startswith("EPICS_"):
            monkeypatch.setenv(key, value)
    return ioc_env


def _clean_c_stderr(text: str) -> str:
    # libca warns about the test environment's address lists; our tools have nothing to say about them
    lines = [line for line in text.splitlines() if "Duplicate EPICS CA Address list entry" not in line]
    return "\n".join(lines)


def _mask_exception_block(text: str) -> str:
    text = re.sub(r"Current Time: .*", "Current Time: <now>", text)
    return "\n".join(line for line in text.splitlines() if "Source File:" not in line)


def mask(text: str) -> str:
    """Time stamps masked: the value a caput writes is stamped when each tool writes it."""
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", "<stamp>", text)


def differences(expected: str, got: str) -> str:
    return "\n".join(difflib.unified_diff(expected.splitlines(), got.splitlines(), "C tool", "ours",
                                          lineterm=""))


def compare(tool_name: str, module, args: list[str], env: dict[str, str], capsys) -> tuple[int, str]:
    """Run the C tool and ours with ``args``; assert same status, stdout and stderr; return ours."""
    c = run_tool(tool_name, *args, env=env)
    capsys.readouterr()
    rc = module.main(list(args))
    captured = capsys.readouterr()
    assert (rc, captured.out) == (c.returncode, c.stdout), (
        f"{tool_name} {' '.join(args)}: status C {c.returncode}, ours {rc}\n"
        + differences(c.stdout, captured.out))
    assert _mask_exception_block(captured.err.strip()) == _mask_exception_block(
        _clean_c_stderr(c.stderr).strip()), f"stderr differs for {tool_name} {' '.join(args)}"
    return rc, captured.out


# --- caget --------------------------------------------------------------------------------------------

CAGET_FORMATS = [
    [], ["-t"], ["-a"], ["-n"], ["-S"], ["-#", "2"], ["-#", "20"], ["-c"], ["-c", "-#", "2"],
    ["-f", "3"], ["-e", "2"], ["-g", "4"], ["-f3"], ["-F", ","], ["-a", "-F", ";"], ["-t", "-F", "|"],
    ["-0x"], ["-0o"], ["-0b"], ["-lx"], ["-lb"], ["-lo"], ["-s"], ["-a", "-n"], ["-S", "-#", "3"],
    ["-a", "-S"], ["-t", "-S", "-c"],
]


@pytest.mark.parametrize("options", CAGET_FORMATS, ids=lambda o: " ".join(o) or "plain")
def test_caget_prints_like_caget(options, env, capsys):
    compare("caget", get, [*options, *ALL], env, capsys)


DBR_TYPES = [str(n) for n in range(35)] + [
    "STRING", "DBR_SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE", "TIME_DOUBLE", "GR_ENUM", "CTRL_LONG",
    "STSACK_STRING", "CLASS_NAME", "37", "38", "DBR_CTRL_CHAR", "GR_STRING"]


@pytest.mark.parametrize("dbr", DBR_TYPES)
def test_caget_d_prints_every_dbr_type_like_caget(dbr, env, capsys):
    compare("caget", get, ["-d", dbr, *(pv for pv in ALL if pv != "C:str")], env, capsys)


@pytest.mark.parametrize("options", [["-d", "DOUBLE"], ["-d", "3"], ["-d", "CTRL_LONG"], ["-d", "STS_CHAR"],
                                     ["-c", "-d", "DOUBLE"], ["-a", "-d", "GR_FLOAT"]],
                         ids=lambda o: " ".join(o))
def test_caget_of_a_type_the_server_cannot_convert_to_like_caget(options, env, capsys):
    """A string that is no number: libca's exception report, caget's zeroed buffer (or -c's CA error)."""
    # caget waits out its whole timeout for the refused read: short, but C:ai and C:long must connect and
    # be read within it too, which on a loaded machine takes more than the 0.3 s this once had
    compare("caget", get, ["-w", "1", *options, "C:ai", "C:str", "C:long"], env, capsys)


@pytest.mark.parametrize("options", [["-d", "INT"], ["-d", "35"], ["-d", "99"], ["-d", "nonsense"],
                                     ["-t", "-a"], ["-d", "DOUBLE", "-0x"], ["-n", "-d", "CTRL_ENUM"],
                                     ["-S", "-d", "CHAR"], ["-e", "40"], ["-f", "x"], ["-0q"],
                                     ["-w", "abc"], ["-#", "x"], ["-p", "200"]],
                         ids=lambda o: " ".join(o))
def test_caget_option_warnings_like_caget(options, env, capsys):
    compare("caget", get, [*options, "C:ai", "C:mbbo", "C:wf"], env, capsys)


@pytest.mark.parametrize("args", [["C:missing"], ["C:ai", "C:missing"], ["-w", "0.2", "C:missing"], [],
                                  ["-x", "C:ai"], ["C:ai", "-w"]],
                         ids=lambda a: " ".join(a) or "nothing")
def test_caget_failures_exit_like_caget(args, env, capsys):
    rc, _ = compare("caget", get, args, env, capsys)
    assert rc == 1


def test_caget_i_shows_the_usage_and_fails_like_caget(env, capsys):
    c = run_tool("caget", "-i", "C:ai", env=env)
    rc = get.main(["-i", "C:ai"])
    captured = capsys.readouterr()
    assert (rc, captured.out) == (c.returncode, c.stdout) == (1, "")
    assert "Usage:" in captured.err and "-d <type>" in captured.err


def test_caget_after_pv_name_options_are_accepted(env, capsys):
    """GNU getopt permutes: ``caget PV -a`` means ``caget -a PV``."""
    compare("caget", get, ["C:ai", "-a", "C:bo"], env, capsys)


# --- cainfo -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [ALL, ["C:ai.RTYP", "C:str.VAL", "C:ai.DESC$"], ["-w", "0.5", "C:missing"],
                                  ["-w", "1.5", "C:ai", "C:missing"], [], ["-x"]],
                         ids=["all", "fields", "missing", "one-missing", "nothing", "bad-option"])
def test_cainfo_prints_like_cainfo(args, env, capsys):
    compare("cainfo", info, args, env, capsys)


# --- caput --------------------------------------------------------------------------------------------

CAPUT_CASES = [
    # (value to restore before each run, caput arguments)
    (("C:ao", "1.5"), ["C:ao", "2.25"]),
    (("C:ao", "1.5"), ["-c", "C:ao", "3.5"]),
    (("C:ao", "1.5"), ["-t", "C:ao", "4"]),
    (("C:ao", "1.5"), ["-l", "C:ao", "5"]),
    (("C:ao", "1.5"), ["-c", "-w", "2", "-l", "C:ao", "-6.5"]),
    (("C:ao", "1.5"), ["C:ao", "-7"]),
    (("C:bo", "Off"), ["C:bo", "On"]),
    (("C:bo", "Off"), ["C:bo", "1"]),
    (("C:bo", "Off"), ["C:bo", "Junk"]),
    (("C:bo", "Off"), ["-n", "C:bo", "1"]),
    (("C:bo", "Off"), ["-n", "C:bo", "x"]),
    (("C:bo", "Off"), ["-s", "C:bo", "1"]),
    (("C:bo", "Off"), ["-n", "C:bo", "5"]),
    (("C:mbbo", "one"), ["C:mbbo", "two"]),
    (("C:mbbo", "one"), ["-t", "-n", "C:mbbo", "2"]),
    (("C:mbbo", "one"), ["-l", "C:mbbo", "zero"]),
    (("C:long", "42"), ["C:long", "1e3"]),
    (("C:long", "42"), ["C:long", "abc"]),
    (("C:long", "42"), ["-c", "C:long", "abc"]),
    (("C:long", "42"), ["C:long", "--", "-5"]),
    (("C:str", "hello world"), ["C:str", "several", "words", "joined"]),
    (("C:str", "hello world"), ["C:str", "a string longer than the forty characters a DBR_STRING holds"]),
    (("C:str", "hello world"), ["C:str", "esc\\x41\\tpe"]),
    (("-a", "C:wf", "3", "1", "-2.5", "1e10"), ["-a", "C:wf", "3", "4", "5", "6"]),
    (("-a", "C:wf", "3", "1", "-2.5", "1e10"), ["-a", "C:wf", "12", "1", "2", "3", "4", "5", "6", "7", "8",
                                                  "9", "10", "11", "12"]),
    (("-a", "C:wf", "3", "1", "-2.5", "1e10"), ["-a", "-F", ",", "C:wf", "2", "7", "8"]),
    (("-a", "C:wf", "3", "1", "-2.5", "1e10"), ["-a", "-t", "C:wf", "1", "9"]),
    (("-S", "C:chr", "x"), ["-S", "C:chr", "new\\tline\\x7f\\xff"]),
    (("-S", "C:chr", "x"), ["-S", "-c", "C:chr", "two words"]),
    (("C:ao", "1.5"), ["C:ai.RTYP", "x"]),
    (("C:ao", "1.5"), ["-c", "C:ai.RTYP", "x"]),
    (("C:ao", "1.5"), ["-w", "0.5", "C:missing", "1"]),
    (("C:ao", "1.5"), ["C:ao"]),
    (("C:ao", "1.5"), []),
    (("C:ao", "1.5"), ["-x", "C:ao", "1"]),
    (("C:ao", "1.5"), ["-w"]),
]


@pytest.mark.parametrize("restore, args", CAPUT_CASES, ids=[" ".join(a) or "nothing" for _, a in CAPUT_CASES])
def test_caput_prints_like_caput(restore, args, env, capsys):
    c_restore = run_tool("caput", *restore, env=env)
    assert c_restore.returncode == 0, c_restore.stderr
    c = run_tool("caput", *args, env=env)
    assert run_tool("caput", *restore, env=env).returncode == 0
    capsys.readouterr()
    rc = put.main(list(args))
    captured = capsys.readouterr()
    assert (rc, mask(captured.out)) == (c.returncode, mask(c.stdout)), (
        f"caput {' '.join(args)}: status C {c.returncode}, ours {rc}\n"
        + differences(mask(c.stdout) + c.stderr, mask(captured.out) + captured.err))
    assert _mask_exception_block(captured.err.strip()) == _mask_exception_block(
        _clean_c_stderr(c.stderr).strip())


# --- the installed entry points ----------------------------------------------------------------------

@pytest.mark.parametrize("module, args", [("get", ["-a", "C:ai"]), ("info", ["C:bo"]),
                                          ("put", ["-t", "C:long", "42"])])
def test_python_m_entry_points_run_the_tools(module, args, env):
    result = subprocess.run([sys.executable, "-m", f"caproto.commandline.{module}", *args], env=env,
                            capture_output=True, text=True, timeout=60)
    c = run_tool({"get": "caget", "info": "cainfo", "put": "caput"}[module], *args, env=env)
    assert (result.returncode, result.stdout) == (c.returncode, c.stdout), result.stderr


_INTERRUPTED_IN_A_CHILD_TASK = """
import os, signal, trio
from caproto.commandline.options import run

async def main():
    async def busy():
        while True:
            sum(range(10000))
            await trio.sleep(0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(busy)
        await trio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
        await trio.sleep(10)

run(main)
"""


def test_a_tool_interrupted_inside_a_nursery_dies_of_sigint_as_the_c_tools_do():
    # trio delivers the KeyboardInterrupt to whichever task runs, and out of a nursery it comes grouped
    script = [sys.executable, "-c", _INTERRUPTED_IN_A_CHILD_TASK]
    done = subprocess.run(script, capture_output=True, timeout=30, preexec_fn=default_sigint)
    assert done.returncode == -2, done.stderr.decode()

"""The simulated motor driven by the clients that drive real ones: pyepics, camonitor/caput, ophyd.

One IOC serves the module (one motor per test, so tests do not disturb each other); every pyepics or
ophyd client runs in a process of its own (libca reads its address list once per process). Motors are
fast (5 mm/s, 0.2 s ramps) so that moves last about a second.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from peers import ca_environment, free_port, our_ioc, run_tool, tool

VELO, VBAS, ACCL, MRES = 5.0, 0.1, 0.2, 0.001
ACCEL = (VELO - VBAS) / ACCL
TICK = 0.1
# Client-side overhead on top of the simulated motion: connection, CA round trips, process start.
SLACK = 0.5
MOTORS = ["put_wait", "camonitor", "limits", "stop", "ophyd_move", "ophyd_stop", "ophyd_limits", "ophyd_set"]


def move_time(distance: float) -> float:
    if distance >= VELO * VELO / ACCEL:
        return distance / VELO + VELO / ACCEL
    return 2 * (distance / ACCEL) ** 0.5


@pytest.fixture(scope="module")
def motors(tmp_path_factory, repeater_port):
    """An IOC with one motor per test, and the CA environment to reach it."""
    directory: Path = tmp_path_factory.mktemp("motorsim")
    fields = (f"{{EGU: mm, VELO: {VELO}, VBAS: {VBAS}, ACCL: {ACCL}, MRES: {MRES}, PREC: 3, "
              f"DHLM: 10, DLLM: -10, TWV: 1}}")
    lines = ["devices:"]
    for name in MOTORS:
        lines.append(f"  - {{type: motorsim, name: 'T:{name}', fields: {fields}, "
                     f"sim: {{high_limit: 20000, low_limit: -20000, home: 100}}}}")
    config = directory / "motors.yaml"
    config.write_text("\n".join(lines) + "\n")
    env = ca_environment(free_port(), repeater_port)
    with our_ioc(config, env):
        yield env


def pyepics(script: str, env: dict[str, str], timeout: float = 60) -> list[str]:
    """Run ``script`` with pyepics in its own process; its printed words."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_pyepics_put_wait_lasts_as_long_as_the_move_and_reaches_the_target(motors):
    words = pyepics("""
        import time, epics
        pv = epics.PV("T:put_wait")
        rbv = epics.PV("T:put_wait.RBV")
        assert pv.wait_for_connection(10) and rbv.wait_for_connection(10)
        start = time.monotonic()
        assert pv.put(3.0, wait=True, timeout=20) == 1
        print(time.monotonic() - start, rbv.get(use_monitor=False))
        start = time.monotonic()
        assert pv.put(3.0, wait=True, timeout=20) == 1
        print(time.monotonic() - start)
    """, motors)
    elapsed, rbv, again = map(float, words)
    expected = move_time(3.0)
    assert expected <= elapsed <= expected + TICK + SLACK, f"put(wait=True) took {elapsed}, move {expected}"
    assert abs(rbv - 3.0) <= MRES
    assert again < SLACK, "a put of the position the motor is at completes at once"


def test_camonitor_sees_dmov_go_1_0_1_and_caput_callback_waits(motors):
    # -w: camonitor's default second to connect is short on a loaded machine (the PV is served, so a longer
    # timeout costs nothing unless the IOC never answers)
    monitor = subprocess.Popen([tool("camonitor"), "-w", "30", "-t", "n", "T:camonitor.DMOV"], env=motors,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(60, monitor.kill)     # a missing line must fail the test, not hang it
    watchdog.start()
    try:
        assert monitor.stdout.readline().split()[-1] == "1"
        put = run_tool("caput", "-c", "-w", "20", "T:camonitor", "1.5", env=motors)
        assert put.returncode == 0, put.stdout + put.stderr
        assert monitor.stdout.readline().split()[-1] == "0"
        assert monitor.stdout.readline().split()[-1] == "1"
    finally:
        watchdog.cancel()
        monitor.terminate()
        monitor.wait(5)
    rbv = run_tool("caget", "-w", "5", "-t", "T:camonitor.RBV", env=motors)
    assert float(rbv.stdout) == pytest.approx(1.5, abs=MRES)


def test_soft_limit_put_completes_at_once_with_lvio(motors):
    words = pyepics("""
        import time, epics
        pv = epics.PV("T:limits")
        assert pv.wait_for_connection(10)
        start = time.monotonic()
        assert pv.put(50.0, wait=True, timeout=20) == 1
        print(time.monotonic() - start, epics.caget("T:limits.LVIO"), epics.caget("T:limits.VAL"),
              epics.caget("T:limits.DMOV"))
        ctrl = pv.get_ctrlvars()
        print(ctrl["lower_ctrl_limit"], ctrl["upper_ctrl_limit"])
    """, motors)
    elapsed, lvio, val, dmov, low, high = map(float, words)
    assert elapsed < SLACK and lvio == 1 and val == 0.0 and dmov == 1
    assert (low, high) == (-10.0, 10.0)


def test_stop_ends_the_move_early_and_targets_follow_the_readback(motors):
    words = pyepics("""
        import time, epics
        pv = epics.PV("T:stop")
        dmov = epics.PV("T:stop.DMOV")
        assert pv.wait_for_connection(10) and dmov.wait_for_connection(10)
        done = []
        pv.put(9.0, wait=False, callback=lambda **kw: done.append(time.monotonic()))
        time.sleep(0.5)   # let the motor run for a while: the elapsed time is the point here
        epics.caput("T:stop.STOP", 1)
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:
            epics.poll(0.01)
        print(len(done), epics.caget("T:stop.RBV", use_monitor=False), epics.caget("T:stop.VAL"),
              epics.caget("T:stop.STOP"), dmov.get(use_monitor=False))
    """, motors)
    completed, rbv, val, stop, dmov = map(float, words)
    assert completed == 1 and 0.5 < rbv < 9.0 and val == pytest.approx(rbv) and stop == 0 and dmov == 1


ophyd_missing = importlib.util.find_spec("ophyd") is None


def ophyd(script: str, env: dict[str, str]) -> list[str]:
    return pyepics("import ophyd\nophyd.set_cl('pyepics')\n" + textwrap.dedent(script), env)


@pytest.mark.skipif(ophyd_missing, reason="ophyd is not installed")
def test_ophyd_epics_motor_moves_and_reports_the_position(motors):
    words = ophyd("""
        import time
        from ophyd import EpicsMotor
        m = EpicsMotor("T:ophyd_move", name="m")
        m.wait_for_connection(timeout=10)
        start = time.monotonic()
        status = m.move(2.0, wait=True, timeout=20)
        print(time.monotonic() - start, status.success, m.position, m.limits[0], m.limits[1])
        status = m.move(2.0, wait=True, timeout=20)
        print(status.success, m.moving)
    """, motors)
    elapsed, success, position, low, high, again, moving = words
    assert success == "True" and abs(float(position) - 2.0) <= MRES
    assert float(elapsed) >= move_time(2.0)
    assert (float(low), float(high)) == (-10.0, 10.0)
    assert again == "True" and moving == "False", "a second move to the same position must finish"


@pytest.mark.skipif(ophyd_missing, reason="ophyd is not installed")
def test_ophyd_stop_ends_a_move(motors):
    words = ophyd("""
        import time
        from ophyd import EpicsMotor
        m = EpicsMotor("T:ophyd_stop", name="m")
        m.wait_for_connection(timeout=10)
        status = m.move(9.0, wait=False)
        time.sleep(0.5)   # the motor must be under way when it is stopped
        m.stop()
        deadline = time.monotonic() + 10
        while not status.done and time.monotonic() < deadline:
            time.sleep(0.05)
        print(status.done, m.position, m.moving)
    """, motors)
    done, position, moving = words
    assert done == "True" and 0.5 < float(position) < 9.0 and moving == "False"


@pytest.mark.skipif(ophyd_missing, reason="ophyd is not installed")
def test_ophyd_refuses_a_move_beyond_the_soft_limits(motors):
    words = ophyd("""
        import time
        from ophyd import EpicsMotor
        from ophyd.utils import LimitError
        m = EpicsMotor("T:ophyd_limits", name="m")
        m.wait_for_connection(timeout=10)
        try:
            m.move(11.0, wait=True, timeout=10)
        except LimitError:
            print("LimitError")
        m.high_limit_travel.put(12.0, wait=True)
        deadline = time.monotonic() + 10
        while m.limits[1] != 12.0 and time.monotonic() < deadline:
            time.sleep(0.05)   # ophyd re-reads the limits from its HLM monitor callback, in its own thread
        status = m.move(11.0, wait=True, timeout=20)
        print(status.success, m.position)
    """, motors)
    assert words[0] == "LimitError"
    assert words[1] == "True" and abs(float(words[2]) - 11.0) <= MRES


@pytest.mark.skipif(ophyd_missing, reason="ophyd is not installed")
def test_ophyd_set_current_position_redefines_the_user_position(motors):
    words = ophyd("""
        import time
        import epics
        from ophyd import EpicsMotor
        m = EpicsMotor("T:ophyd_set", name="m")
        m.wait_for_connection(timeout=10)
        m.move(1.0, wait=True, timeout=20)
        m.set_current_position(5.0)
        deadline = time.monotonic() + 10
        while m.position != 5.0 and time.monotonic() < deadline:
            time.sleep(0.05)   # ophyd takes RBV from its monitor, dispatched in a thread of its own
        print(m.position, m.user_offset.get(), m.set_use_switch.get(),
              epics.caget("T:ophyd_set.DRBV", use_monitor=False))
    """, motors)
    position, offset, set_use, dial = map(float, words)
    assert position == pytest.approx(5.0) and offset == pytest.approx(4.0)
    assert set_use == 0 and dial == pytest.approx(1.0)

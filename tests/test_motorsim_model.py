"""The simulated motor: the axis model (trajectories, switches) and the motor record driving it, on trio's
autojump clock (a 100-second move takes milliseconds; times are exact and reproducible)."""
from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
import trio

from caproto.constants import DBE_PROPERTY, ECA
from caproto.dbr import ChannelType, decode_payload, encode_payload
from ioc.config import ConfigError, DeviceSpec, IocConfig, Located, RecordSpec, load_config
from ioc.database import Database, ProcessingFailed
from ioc.devices.motorsim import Axis, plan_move, plan_velocity
from ioc.records.motor import Msta

# The motorSim example IOC's axis: 1 deg/s from a base of 0.1 deg/s in 0.2 s (4.5 deg/s^2), 0.01 deg/step.
EXAMPLE_FIELDS: dict[str, object] = {"EGU": "degrees", "VELO": 1, "VBAS": 0.1, "ACCL": 0.2, "MRES": 0.01,
                                     "PREC": 5, "DHLM": 100, "DLLM": -100, "TWV": 1}
EXAMPLE_SIM: dict[str, object] = {"high_limit": 20000, "low_limit": -20000, "home": 500}
ACCEL = (1 - 0.1) / 0.2
TICK = 0.1


def move_time(distance: float, velocity: float = 1.0, accel: float = ACCEL) -> float:
    """Rest-to-rest time of a trapezoid (or triangle) profile."""
    if distance >= velocity * velocity / accel:
        return distance / velocity + velocity / accel
    return 2 * math.sqrt(distance / accel)


def located(values: dict[str, object]) -> dict[str, Located]:
    return {key: Located(value, "test.yaml", 1) for key, value in values.items()}


def config(fields: dict[str, object] | None = None, sim: dict[str, object] | None = None,
           util: bool = False, records: list[RecordSpec] | None = None) -> IocConfig:
    devices = [DeviceSpec("motorsim", "m1", located({**EXAMPLE_FIELDS, **(fields or {})}),
                          located({**EXAMPLE_SIM, **(sim or {})}), "test.yaml", 1)]
    if util:
        devices.append(DeviceSpec("motorsim", "m2", located(EXAMPLE_FIELDS), located(EXAMPLE_SIM),
                                  "test.yaml", 2))
        devices.append(DeviceSpec("motorutil", "U:", {}, {}, "test.yaml", 3))
    return IocConfig(records or [], devices)


class Motor:
    """A motor record in a running database, driven through its channels as a CA client would."""

    def __init__(self, db: Database, name: str = "m1") -> None:
        self.db = db
        self.name = name
        self.rec = db.records[name]
        self.posts: list[tuple[float, str, float]] = []
        self._changed = trio.Event()

    def __getattr__(self, field: str) -> object:
        return getattr(self.rec, field)

    def watch(self, *fields: str) -> None:
        """Record every post of ``fields`` as (time, field, value)."""
        for field in fields:
            def on_post(mask: int, field: str = field) -> None:
                if not mask & DBE_PROPERTY:
                    self.posts.append((trio.current_time(), field, getattr(self.rec, field)))
            self.db.lookup(f"{self.name}.{field}").subscribe(on_post)

    def put(self, field: str, value: float, notify: bool = False):
        """A CA put of a double (``notify``: a put-callback); returns what a put-callback would wait for
        (None: complete already)."""
        chan = self.db.lookup(f"{self.name}.{field}")
        payload = encode_payload(ChannelType.DOUBLE, np.array([value]), None, 1)
        return chan.write(ChannelType.DOUBLE, 1, payload, notify=notify)

    async def put_wait(self, field: str, value: float) -> float:
        """A put with callback; the seconds until it completed."""
        start = trio.current_time()
        completion = self.put(field, value)
        if completion is not None:
            await completion.wait()
        return trio.current_time() - start

    async def until(self, condition: Callable[[], bool], timeout: float = 1000.0,
                    pvs: tuple[str, ...] = ()) -> float:
        """Wait (virtual time) for ``condition``, checked at every post of this motor's DMOV, RBV, MOVN,
        VAL and of ``pvs``."""
        start = trio.current_time()
        changed = trio.Event()
        names = [f"{self.name}.{f}" for f in ("DMOV", "RBV", "MOVN", "VAL")] + list(pvs)
        unsubscribe = [self.db.lookup(name).subscribe(lambda mask: changed.set()) for name in names]
        try:
            with trio.fail_after(timeout):
                while not condition():
                    await changed.wait()
                    changed = trio.Event()
        finally:
            for stop in unsubscribe:
                stop()
        return trio.current_time() - start

    def ctrl(self, field: str):
        payload, _ = self.db.lookup(f"{self.name}.{field}").read(ChannelType.CTRL_DOUBLE, 1)
        return decode_payload(ChannelType.CTRL_DOUBLE, 1, payload)[1]


@asynccontextmanager
async def running(cfg: IocConfig) -> AsyncIterator[Motor]:
    db = Database.from_config(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        yield Motor(db)
        nursery.cancel_scope.cancel()


# --- trajectories -------------------------------------------------------------------------------------------

def end_of(segments) -> tuple[float, float, float]:
    last = segments[-1]
    position, velocity = last.at(last.end)
    return last.end, position, velocity


def test_long_move_is_a_trapezoid_taking_distance_over_speed_plus_speed_over_acceleration():
    segments = plan_move(0.0, 0.0, 0.0, 1000.0, 100.0, 450.0)
    end, position, velocity = end_of(segments)
    assert [s.acceleration for s in segments] == [450.0, 0.0, -450.0]
    assert end == pytest.approx(1000 / 100 + 100 / 450)
    assert position == pytest.approx(1000.0) and velocity == pytest.approx(0.0, abs=1e-9)


def test_short_move_is_a_triangle_that_never_reaches_full_speed():
    segments = plan_move(0.0, 0.0, 0.0, -10.0, 100.0, 450.0)
    end, position, _ = end_of(segments)
    assert len(segments) == 2
    assert end == pytest.approx(2 * math.sqrt(10 / 450))
    assert max(abs(s.velocity + s.acceleration * s.duration) for s in segments) < 100.0
    assert position == pytest.approx(-10.0)


def test_new_target_behind_a_moving_axis_brakes_first_then_comes_back():
    segments = plan_move(5.0, 0.0, 100.0, -50.0, 100.0, 450.0)
    assert segments[0].acceleration == -450.0 and segments[0].duration == pytest.approx(100 / 450)
    end, position, _ = end_of(segments)
    assert position == pytest.approx(-50.0) and end > 5.0 + 100 / 450


def test_velocity_plan_ramps_then_runs_for_ever():
    segments = plan_velocity(0.0, 0.0, 0.0, -20.0, 10.0)
    assert segments[0].duration == pytest.approx(2.0) and segments[-1].duration == math.inf
    assert segments[-1].velocity == -20.0


# --- the axis -----------------------------------------------------------------------------------------------

def test_axis_reports_done_only_at_the_end_of_the_profile():
    axis = Axis(20000, -20000, 500)
    assert axis.move(0.0, 300.0, 100.0, 450.0)
    axis.advance(1.0)
    assert not axis.msta() & Msta.DONE and axis.msta() & Msta.MOVING and axis.msta() & Msta.DIRECTION
    axis.advance(3.3)
    assert axis.msta() & Msta.DONE and axis.reported_position() == 300.0


def test_axis_stops_at_its_hard_limit_and_refuses_to_go_further():
    axis = Axis(1000, -1000, 500)
    axis.move(0.0, 5000.0, 100.0, 450.0)
    for step in range(1, 200):
        axis.advance(step * 0.1)
    assert axis.position == 1000.0 and axis.msta() & Msta.PLUS_LS and axis.msta() & Msta.DONE
    assert not axis.move(20.0, 1500.0, 100.0, 450.0)
    assert axis.move(20.0, 0.0, 100.0, 450.0)


def test_home_search_reverses_at_a_limit_and_stops_on_the_switch():
    axis = Axis(1000, -1000, 500, start=800)
    axis.home(0.0, True, 100.0, 1000.0)
    for step in range(1, 300):
        axis.advance(step * 0.1)
    assert axis.position == 500.0
    assert axis.msta() & Msta.HOME and axis.msta() & Msta.HOMED and axis.msta() & Msta.DONE


def test_set_position_changes_the_reported_scale_not_the_switches():
    axis = Axis(1000, -1000, 500)
    axis.set_position(0.0, 2000.0)
    assert axis.reported_position() == 2000.0 and not axis.msta() & Msta.PLUS_LS


# --- the record: moves --------------------------------------------------------------------------------------

async def test_put_callback_completes_when_the_move_is_done(autojump_clock):
    async with running(config()) as m:
        elapsed = await m.put_wait("VAL", 1.0)
        expected = move_time(1.0)
        assert expected <= elapsed <= expected + TICK + 1e-9, elapsed
        assert m.RBV == 1.0 and m.RRBV == 100 and m.DMOV == 1 and m.MOVN == 0


async def test_short_move_takes_the_triangle_time(autojump_clock):
    async with running(config()) as m:
        elapsed = await m.put_wait("VAL", -0.1)
        expected = move_time(0.1)
        assert expected <= elapsed <= expected + TICK + 1e-9, elapsed
        assert m.RBV == pytest.approx(-0.1)


async def test_faster_velocity_makes_a_faster_move(autojump_clock):
    async with running(config({"VELO": 10, "VMAX": 10})) as m:
        elapsed = await m.put_wait("VAL", 20.0)
        expected = move_time(20.0, 10.0, (10 - 0.1) / 0.2)
        assert expected <= elapsed <= expected + TICK + 1e-9, elapsed


async def test_readback_is_quantised_to_mres(autojump_clock):
    async with running(config()) as m:
        await m.put_wait("VAL", 0.123)
        assert m.RRBV == 12 and m.RBV == pytest.approx(0.12) and m.VAL == pytest.approx(0.123)


async def test_dmov_drops_movn_rises_and_rbv_is_posted_before_movn_and_dmov_at_the_end(autojump_clock):
    async with running(config()) as m:
        m.watch("DMOV", "MOVN", "RBV")
        await m.put_wait("VAL", 0.5)
        fields = [(f, v) for _, f, v in m.posts]
        assert fields[:2] == [("DMOV", 0), ("MOVN", 1)]
        assert fields[-2:] == [("MOVN", 0), ("DMOV", 1)]
        last_rbv = max(i for i, (f, _) in enumerate(fields) if f == "RBV")
        assert fields[last_rbv] == ("RBV", 0.5) and last_rbv < len(fields) - 2
        rbv_times = [t for t, f, _ in m.posts if f == "RBV"]
        assert all(b - a == pytest.approx(TICK) for a, b in zip(rbv_times, rbv_times[1:], strict=False))


async def test_put_of_the_same_value_blinks_dmov_and_completes_at_once(autojump_clock):
    async with running(config()) as m:
        await m.put_wait("VAL", 0.2)
        m.watch("DMOV")
        elapsed = await m.put_wait("VAL", 0.2)
        assert elapsed == 0.0
        assert [(f, v) for _, f, v in m.posts] == [("DMOV", 0), ("DMOV", 1)]


async def test_new_target_in_the_same_direction_mid_move_ends_there_with_dmov_low_throughout(autojump_clock):
    async with running(config()) as m:
        m.watch("DMOV")
        first = m.put("VAL", 1.0)
        await trio.sleep(0.5)
        assert m.put("VAL", 2.0) is not None
        await first.wait()
        assert m.RBV == 2.0 and m.DMOV == 1
        assert [v for _, f, v in m.posts] == [0, 1], "DMOV must not go to 1 at the first target"


async def test_new_target_behind_mid_move_stops_and_goes_there(autojump_clock):
    async with running(config()) as m:
        first = m.put("VAL", 3.0)
        await trio.sleep(1.0)
        second = m.put("VAL", -1.0)
        await first.wait()
        await second.wait()
        assert m.RBV == -1.0 and m.DMOV == 1


async def test_stop_decelerates_and_targets_follow_the_readback(autojump_clock):
    async with running(config()) as m:
        move = m.put("VAL", 10.0)
        await trio.sleep(2.0)
        m.put("STOP", 1)
        await move.wait()
        stopped_at = m.RBV
        assert 1.9 < stopped_at < 2.5
        assert m.VAL == stopped_at and m.DVAL == m.DRBV and m.RVAL == m.RRBV
        assert m.STOP == 0 and m.DMOV == 1 and m.MOVN == 0


async def test_spmg_pause_keeps_the_target_and_go_resumes_it(autojump_clock):
    async with running(config()) as m:
        move = m.put("VAL", 3.0)
        await trio.sleep(1.0)
        m.put("SPMG", 1)                                  # Pause
        await m.until(lambda: m.MOVN == 0)
        assert m.DMOV == 0 and m.VAL == 3.0 and m.RBV < 3.0
        await trio.sleep(5.0)
        assert m.DMOV == 0, "a paused move is not done"
        m.put("SPMG", 3)                                  # Go
        await move.wait()
        assert m.RBV == 3.0


async def test_spmg_stop_drops_the_target_and_stores_later_puts(autojump_clock):
    async with running(config()) as m:
        m.put("VAL", 3.0)
        await trio.sleep(1.0)
        m.put("SPMG", 0)                                  # Stop
        await m.until(lambda: m.DMOV == 1)
        assert m.VAL == m.RBV < 3.0
        held = m.put("VAL", 0.5)
        await trio.sleep(3.0)
        assert m.DMOV == 0 and m.RBV != 0.5, "VAL puts while stopped wait"
        m.put("SPMG", 3)
        await held.wait()
        assert m.RBV == 0.5


async def test_spmg_move_goes_once_then_pauses(autojump_clock):
    async with running(config()) as m:
        m.put("SPMG", 1)
        held = m.put("VAL", 0.5)
        m.put("SPMG", 2)                                  # Move
        await held.wait()
        assert m.RBV == 0.5 and m.SPMG == 1


# --- limits -------------------------------------------------------------------------------------------------

async def test_soft_limit_violation_sets_lvio_reverts_and_completes_at_once(autojump_clock):
    async with running(config()) as m:
        m.watch("DMOV")
        elapsed = await m.put_wait("VAL", 150.0)
        assert elapsed == 0.0
        assert m.LVIO == 1 and m.VAL == 0.0 and m.DVAL == 0.0 and m.RBV == 0.0
        assert [v for _, _, v in m.posts] == [0, 1]
        assert m.SEVR == 0
        await m.put_wait("VAL", 1.0)
        assert m.LVIO == 0 and m.RBV == 1.0


async def test_a_nan_target_is_refused_and_dmov_returns_to_1(autojump_clock):
    from caproto.errors import CAError
    async with running(config()) as m:
        with pytest.raises(CAError):
            m.put("VAL", math.nan)
        assert m.VAL == 0.0 and m.DMOV == 1


async def test_dllm_above_dhlm_refuses_every_move(autojump_clock):
    async with running(config({"DHLM": -1, "DLLM": 1})) as m:
        await m.put_wait("VAL", 0.5)
        assert m.LVIO == 1 and m.RBV == 0.0


async def test_hard_limit_stops_the_motor_and_sets_hls(autojump_clock):
    # hard limit at 2 degrees (200 steps), no soft limits
    async with running(config({"DHLM": 0, "DLLM": 0}, {"high_limit": 200})) as m:
        elapsed = await m.put_wait("VAL", 5.0)
        assert elapsed < move_time(5.0)
        await m.until(lambda: m.RBV == 2.0)
        assert m.HLS == 1 and m.LLS == 0 and m.DMOV == 1 and m.MOVN == 0
        # motorRecord.cc: the status read after the switch post-processes (targets := readback)
        assert m.VAL < 5.0 and m.DVAL == pytest.approx(m.VAL)
        assert m.MSTA & Msta.PLUS_LS
        assert await m.put_wait("VAL", 6.0) < 1.0 and m.RBV == 2.0, "outward moves are refused"
        await m.put_wait("VAL", 1.0)
        assert m.RBV == 1.0 and m.HLS == 0


async def test_limit_switches_are_swapped_in_user_sense_for_negative_dir(autojump_clock):
    async with running(config({"DHLM": 0, "DLLM": 0, "DIR": "Neg"}, {"high_limit": 200})) as m:
        await m.put_wait("VAL", -5.0)                     # dial +5
        await m.until(lambda: m.DRBV == 2.0)
        assert m.LLS == 1 and m.HLS == 0 and m.RHLS == 1


# --- tweak, home, jog ---------------------------------------------------------------------------------------

async def test_tweak_forward_and_reverse_move_by_twv_and_reset(autojump_clock):
    async with running(config({"TWV": 0.25})) as m:
        await m.put_wait("TWF", 1)
        assert m.RBV == 0.25 and m.TWF == 0
        await m.put_wait("TWR", 1)
        await m.put_wait("TWR", 1)
        assert m.RBV == -0.25 and m.TWR == 0


async def test_home_forward_finds_the_switch_at_home_speed(autojump_clock):
    async with running(config({"HVEL": 1}, {"home": 300})) as m:
        elapsed = await m.put_wait("HOMF", 1)
        assert 3.0 < elapsed < 4.0
        assert m.RRBV == 300 and m.ATHM == 1 and m.HOMF == 0 and m.DMOV == 1
        assert m.MSTA & Msta.HOMED and m.VAL == 3.0


async def test_home_speed_defaults_to_the_base_speed(autojump_clock):
    async with running(config({}, {"home": 10})) as m:
        assert m.HVEL == 0.1
        elapsed = await m.put_wait("HOMF", 1)
        assert 1.1 < elapsed < 2.0, "0.1 deg/s to a switch 0.1 deg away, then back over the overshoot"
        assert m.RRBV == 10 and m.ATHM == 1


async def test_second_home_request_while_homing_is_refused(autojump_clock):
    from caproto.errors import CAError
    async with running(config({"HVEL": 1}, {"home": 300})) as m:
        search = m.put("HOMF", 1)
        await trio.sleep(0.5)
        with pytest.raises(CAError):
            m.put("HOMR", 1)
        await search.wait()


async def test_jog_runs_until_released_then_targets_follow(autojump_clock):
    async with running(config({"JVEL": 2})) as m:
        m.put("JOGF", 1)
        await trio.sleep(2.0)
        assert m.MOVN == 1 and m.DMOV == 0
        m.put("JOGF", 0)
        await m.until(lambda: m.DMOV == 1)
        assert 3.0 < m.RBV < 5.0 and m.VAL == m.RBV


# --- coordinates --------------------------------------------------------------------------------------------

async def test_set_mode_redefines_the_user_position_through_the_offset(autojump_clock):
    async with running(config()) as m:
        await m.put_wait("VAL", 1.0)
        m.put("SET", 1)
        assert await m.put_wait("VAL", 10.0) == 0.0
        m.put("SET", 0)
        assert m.OFF == pytest.approx(9.0) and m.RBV == pytest.approx(10.0) and m.DRBV == 1.0
        assert m.HLM == pytest.approx(109.0) and m.LLM == pytest.approx(-91.0)
        assert m.ctrl("VAL").upper_ctrl_limit == pytest.approx(109.0)
        await m.put_wait("VAL", 11.0)
        assert m.DRBV == 2.0


async def test_set_mode_with_frozen_offset_redefines_the_dial(autojump_clock):
    async with running(config({"FOFF": "Frozen"})) as m:
        await m.put_wait("VAL", 1.0)
        m.put("SET", 1)
        await m.put_wait("VAL", 5.0)
        m.put("SET", 0)
        assert m.OFF == 0.0 and m.DRBV == pytest.approx(5.0) and m.RBV == pytest.approx(5.0)
        await m.put_wait("VAL", 6.0)
        assert m.RBV == pytest.approx(6.0)


async def test_offset_moves_user_values_and_limits_not_the_axis(autojump_clock):
    async with running(config()) as m:
        await m.put_wait("VAL", 1.0)
        await m.put_wait("OFF", 2.5)
        assert m.VAL == 3.5 and m.RBV == 3.5 and m.DRBV == 1.0 and m.RRBV == 100
        assert (m.HLM, m.LLM) == (102.5, -97.5)


async def test_negative_direction_mirrors_user_coordinates_and_limits(autojump_clock):
    async with running(config({"DHLM": 100, "DLLM": -50})) as m:
        await m.put_wait("VAL", 1.0)
        await m.put_wait("DIR", 1)
        assert m.RBV == 1.0 and m.OFF == 2.0, "the offset keeps VAL where it was"
        assert (m.HLM, m.LLM) == (52.0, -98.0)
        await m.put_wait("VAL", 0.0)
        assert m.DRBV == 2.0


async def test_user_limit_put_sets_the_dial_limit(autojump_clock):
    async with running(config()) as m:
        await m.put_wait("OFF", 1.0)
        await m.put_wait("HLM", 11.0)
        assert m.DHLM == 10.0
        await m.put_wait("VAL", 12.0)
        assert m.LVIO == 1 and m.RBV == 1.0


async def test_dial_and_raw_targets_move_the_motor(autojump_clock):
    async with running(config({"OFF": 1})) as m:
        await m.put_wait("DVAL", 0.5)
        assert m.RBV == 1.5 and m.VAL == 1.5
        await m.put_wait("RVAL", 20)
        assert m.DRBV == pytest.approx(0.2) and m.VAL == pytest.approx(1.2)
        await m.put_wait("RLV", -0.2)
        assert m.VAL == pytest.approx(1.0) and m.RLV == 0.0


async def test_new_mres_keeps_the_dial_position(autojump_clock):
    async with running(config()) as m:
        await m.put_wait("VAL", 1.0)
        await m.put_wait("MRES", 0.001)
        assert m.DRBV == pytest.approx(1.0) and m.RRBV == 1000


async def test_backlash_moves_against_the_preferred_direction_overshoot_then_approach(autojump_clock):
    async with running(config({"BDST": 0.5, "BVEL": 0.5, "BACC": 0.5})) as m:
        await m.put_wait("VAL", 2.0)
        assert m.RBV == 2.0 and m.MIP == 0
        m.watch("RBV")
        await m.put_wait("VAL", 0.0)
        lowest = min(v for _, f, v in m.posts if f == "RBV")
        assert lowest == pytest.approx(-0.5), "goes BDST past the target, then approaches it upward"
        assert m.RBV == 0.0 and m.DMOV == 1 and m.RVAL == 0


async def test_dly_holds_dmov_low_after_the_motion(autojump_clock):
    async with running(config({"DLY": 2})) as m:
        elapsed = await m.put_wait("VAL", 0.5)
        assert elapsed >= move_time(0.5) + 2.0 and m.DMOV == 1


# --- CA metadata --------------------------------------------------------------------------------------------

async def test_control_and_display_limits_follow_the_motor_record(autojump_clock):
    async with running(config({"VMAX": 5, "OFF": 1})) as m:
        val, dval, rval, velo = m.ctrl("VAL"), m.ctrl("DVAL"), m.ctrl("RVAL"), m.ctrl("VELO")
        assert (val.upper_ctrl_limit, val.lower_ctrl_limit) == (101.0, -99.0)
        assert (val.upper_disp_limit, val.lower_disp_limit) == (101.0, -99.0)
        assert (dval.upper_ctrl_limit, dval.lower_ctrl_limit) == (100.0, -100.0)
        assert (rval.upper_ctrl_limit, rval.lower_ctrl_limit) == (10000.0, -10000.0)
        assert (velo.upper_ctrl_limit, velo.lower_ctrl_limit) == (5.0, 0.1)
        assert val.units == "degrees" and val.precision == 5 and m.ctrl("RRBV").precision == 0
        assert m.ctrl("ACCL").units == "sec"


async def test_units_are_cut_to_seven_characters_as_get_units_does(autojump_clock):
    async with running(config({"EGU": "mm"})) as m:
        assert m.ctrl("VELO").units == "mm/sec" and m.ctrl("JAR").units == "mm/s/s"
    async with running(config()) as m:
        assert m.ctrl("VELO").units == "degrees"


async def test_record_type_and_starting_state(autojump_clock):
    async with running(config()) as m:
        payload, _ = m.db.lookup("m1.RTYP").read(ChannelType.STRING, 1)
        assert decode_payload(ChannelType.STRING, 1, payload)[0] == ["motor"]
        assert (m.DMOV, m.MOVN, m.LVIO, m.SPMG, m.STAT, m.SEVR) == (1, 0, 0, 3, 0, 0)
        assert m.VERS == pytest.approx(7.4, abs=1e-6)
        assert m.MSTA & Msta.DONE
        assert m.db.lookup("m1.RBV").access == 1 and m.db.lookup("m1.VAL").access == 3


# --- motorutil and configuration ----------------------------------------------------------------------------

async def test_motorutil_counts_moving_motors_and_allstop_stops_them(autojump_clock):
    async with running(config(util=True)) as m:
        db = m.db
        m2 = Motor(db, "m2")
        m.put("VAL", 5.0)
        m2.put("VAL", 5.0)
        await m.until(lambda: db.records["U:moving"].VAL == 2, pvs=("U:moving",))
        assert db.records["U:alldone"].VAL == 0
        await trio.sleep(1.0)
        db.lookup("U:allstop").write(ChannelType.INT, 1,
                                     encode_payload(ChannelType.INT, np.array([1], dtype=">i2"), None, 1))
        await m.until(lambda: db.records["U:alldone"].VAL == 1, pvs=("U:alldone",))
        assert m.RBV < 5.0 and m2.RBV < 5.0
        assert db.records["U:moving"].VAL == 0 and db.records["U:allstop"].VAL == 0
        # the motor whose DMOV went to 1 last (both stop in the same tick, in either order)
        assert bytes(db.records["U:movingDiff"].VAL[:4]) in (b"-m1\0", b"-m2\0")


def test_device_records_may_not_reuse_a_served_name():
    taken = RecordSpec("U:moving", "ai", {}, "test.yaml", 7)
    with pytest.raises(ConfigError, match="duplicate name 'U:moving'"):
        Database.from_config(config(util=True, records=[taken]))


CONFIGS = Path(__file__).parent.parent / "configs"


def test_motorsim_example_config_serves_the_motorsim_ioc_layout():
    db = Database.from_config(load_config(CONFIGS / "motorsim.yaml"))
    assert db.pv_names() == [f"IOC:m{n}" for n in range(1, 9)] + [
        "IOC:allstop", "IOC:alldone", "IOC:moving", "IOC:alldoneBlink", "IOC:movingDiff"]
    m1 = db.records["IOC:m1"]
    assert (m1.EGU, m1.VELO, m1.VBAS, m1.ACCL, m1.MRES, m1.PREC, m1.DHLM, m1.DLLM, m1.TWV) == \
        ("degrees", 1.0, 0.1, 0.2, 0.01, 5, 100.0, -100.0, 1.0)
    homes = [device.axis.home_position for device in db._devices[:8]]
    assert homes == [500, 1500, 2500, 3000, 500, 1500, 2500, 3000]
    assert db._devices[0].axis.high_limit == 20000 and db._devices[0].axis.low_limit == -20000


def test_ophyd_config_serves_the_names_of_ophyd_and_caproto_test_suites():
    db = Database.from_config(load_config(CONFIGS / "motorsim-ophyd.yaml"))
    assert db.pv_names() == ["XF:31IDA-OP{Tbl-Ax:X1}Mtr", "XF:31IDA-OP{Tbl-Ax:X2}Mtr",
                             "XF:31IDA-OP{Tbl-Ax:X3}Mtr", "sim:mtr1", "sim:mtr2"]
    x1 = db.records["XF:31IDA-OP{Tbl-Ax:X1}Mtr"]
    assert (x1.DHLM, x1.DLLM, x1.HLM, x1.LLM) == (20000.0, -20000.0, 20000.0, -20000.0)


def test_unknown_sim_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown sim setting 'hom'"):
        Database.from_config(config(sim={"hom": 1}))


def test_motor_record_without_a_device_is_a_config_error():
    Database.from_config(config())       # registers the motor record type
    spec = RecordSpec("bare", "motor", {}, "test.yaml", 9)
    with pytest.raises(ConfigError, match="devices"):
        Database.from_config(IocConfig([spec], []))


# --- the processing status a CA put reports ----------------------------------------------------------------

def _rlnk_targets() -> list[RecordSpec]:
    return [RecordSpec("t:text", "stringin", located({"VAL": "abc"}), "test.yaml", 20),
            RecordSpec("t:num", "ai", {}, "test.yaml", 21),
            # processing it fails: its input does not convert to a double
            RecordSpec("t:ai", "ai", located({"INP": "t:text"}), "test.yaml", 22)]


async def test_put_fails_when_the_rlnk_write_fails(autojump_clock):
    # motorRecord.cc process() ends with `status = dbPutLink(&pmr->rlnk, ...)` and returns it, so a put
    # that processes a motor at rest fails (ECA_PUTFAIL) when the target RLNK processes fails.
    async with running(config({"RLNK": "t:ai PP"}, records=_rlnk_targets())) as m:
        with pytest.raises(ProcessingFailed) as failed:
            m.put("PROC", 1)
        assert failed.value.eca == ECA.PUTFAIL
        assert (m.db.records["t:ai"].VAL, m.DMOV) == (0.0, 1)


async def test_put_that_starts_a_move_fails_when_the_rlnk_write_fails(autojump_clock):
    # the move goes on (its end processes the record again), but process() returned the RLNK write's
    # failure: dbPutField returns it, so a plain put is answered ECA_PUTFAIL at once
    async with running(config({"RLNK": "t:ai PP"}, records=_rlnk_targets())) as m:
        with pytest.raises(ProcessingFailed) as failed:
            m.put("VAL", 1.0)
        assert failed.value.eca == ECA.PUTFAIL
        assert m.DMOV == 0
        await m.until(lambda: m.DMOV == 1)
        assert m.RBV == 1.0


async def test_put_callback_that_starts_a_move_waits_for_it_whatever_the_rlnk_write_did(autojump_clock):
    # dbNotify ignores process()'s status: the put-callback completes when the move is done
    async with running(config({"RLNK": "t:ai PP"}, records=_rlnk_targets())) as m:
        start = trio.current_time()
        completion = m.put("VAL", 1.0, notify=True)
        assert completion is not None
        await completion.wait()
        assert trio.current_time() - start >= move_time(1.0)
        assert (m.DMOV, m.RBV) == (1, 1.0)


async def test_put_succeeds_when_the_rlnk_write_does(autojump_clock):
    async with running(config({"RLNK": "t:num PP"}, records=_rlnk_targets())) as m:
        assert m.put("PROC", 1) is None
        assert m.db.records["t:num"].VAL == m.RBV


async def test_motor_without_rlnk_processes_successfully(autojump_clock):
    # an empty RLNK is a constant link: dbPutLink to it succeeds
    async with running(config()) as m:
        assert m.put("PROC", 1) is None

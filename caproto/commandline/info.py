"""``caproto-info``: print what the client knows about PVs, as EPICS Base ``cainfo`` does."""
from __future__ import annotations

import socket
import sys

import trio

from caproto.client.context import Context
from caproto.client.errors import ConnectionTimeout
from caproto.client.pv import PV

from . import output as out
from .options import CommonOptions, err, parse, run, scan_int, version_text

USAGE = f"""
Usage: caproto-info [options] <PV name> ...

  -h: Help: print this message
  -V: Version: show the caproto and CA protocol versions
Channel Access options:
  -w <sec>:   Wait time (CA timeout), default {1.0:f} second(s)
  -s <level>: Print the client context's status (circuits at level 1, channels at level 2)
  -p <prio>:  CA priority (0-99, default 0=lowest)

Example: caproto-info my_channel another_channel
"""


async def host_name(address: tuple[str, int]) -> str:
    """"name:port" of a server, the name found by a reverse lookup as libca does (else the address)."""
    host, port = address
    try:
        name, _ = await trio.socket.getnameinfo((host, port), socket.NI_NUMERICSERV)
    except OSError:
        name = host
    return f"{name}:{port}"


async def describe(pv: PV) -> str:
    host = await host_name(pv.server) if pv.server is not None else "<disconnected>"
    native = int(pv.native_type) if pv.native_type is not None else -1
    return "\n".join([
        pv.name,
        f"    State:            {pv.state.value}",
        f"    Host:             {host}",
        f"    Access:           {'' if pv.read_access else 'no '}read, "
        f"{'' if pv.write_access else 'no '}write",
        f"    Native data type: {out.dbf_text(native)}",
        f"    Request type:     {out.dbr_text(native) if native >= 0 else 'DBR_invalid'}",
        f"    Element count:    {pv.element_count or 0}",
    ])


def context_status(ctx: Context, level: int) -> str:
    """The client's circuits (level 1) and their channels (level 2 and up)."""
    lines = [f"caproto client context: {len(ctx.circuits)} circuit(s), search addresses "
             + " ".join(f"{h}:{p}" for h, p in ctx.search_addresses)]
    for circuit in ctx.circuits:
        host, port = circuit.address
        lines.append(f"  circuit to {host}:{port} priority {circuit.priority}, "
                     f"protocol 4.{circuit.server_version}, {circuit.channel_count} channel(s)")
        if level >= 2:
            lines += [f"    {pv.name} cid {pv.cid} sid {pv.sid} {pv.state.value}" for pv in circuit.channels]
    return "\n".join(lines)


async def cainfo(names: list[str], options: CommonOptions, level: int) -> int:
    async with Context() as ctx:
        pvs = [ctx.create_pv(name, options.priority) for name in names]
        try:
            await ctx.wait_for_connection(pvs, options.connect_timeout)
        except ConnectionTimeout:
            if len(pvs) > 1:
                err("Channel connect timed out: some PV(s) not found.")
            else:
                err(f"Channel connect timed out: '{names[0]}' not found.")
            return 1
        if level:
            text = context_status(ctx, level)
        else:
            text = "\n".join([await describe(pv) for pv in pvs])
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = CommonOptions("cainfo")
    parsed = parse("cainfo", argv, "nhVw:s:p:")
    if isinstance(parsed, int):
        return parsed
    opts, names = parsed
    level = 0
    for opt, arg in opts:
        letter = opt[1:]
        if letter == "h":
            sys.stderr.write(USAGE + version_text() + "\n")
            return 0
        if letter == "V":
            print(version_text())
            return 0
        if letter == "s":
            value = scan_int(arg)
            if value is not None and value >= 0:
                level = value
            else:
                err(f"'{arg}' is not a valid interest level - ignored. ('cainfo -h' for help.)")
                level = 0
        elif letter == "n":
            # in cainfo's option string without a case of its own: it shows the usage and fails
            sys.stderr.write(USAGE)
            return 1
        else:
            options.handle(opt, arg)
    if not level and not names:
        err("No pv name specified. ('cainfo -h' for help.)")
        return 1
    return run(cainfo, names, options, level)


if __name__ == "__main__":
    sys.exit(main())

"""``caproto-monitor``: print every update of PVs as EPICS Base ``camonitor`` does."""
from __future__ import annotations

import sys

import trio

from caproto.client.context import Context
from caproto.client.pv import PV, Subscription
from caproto.constants import DBE_ALARM, DBE_LOG, DBE_PROPERTY, DBE_VALUE
from caproto.messages import EventAddResponse

from . import output as out
from .get import request_type
from .options import CommonOptions, err, parse, run, version_text

USAGE = f"""
Usage: caproto-monitor [options] <PV name> ...

  -h:       Help: print this message
  -V:       Version: show the caproto and CA protocol versions
Channel Access options:
  -w <sec>: Wait time (CA timeout), default {1.0:f} second(s)
  -m <msk>: CA event mask to use: any combination of 'v' (value), 'a' (alarm),
            'l' (log/archive), 'p' (property). Default event mask is 'va'
  -p <pri>: CA priority (0-99, default 0=lowest)
Timestamps:
  Default:  Print absolute timestamps (as reported by the CA server)
  -t <key>: Timestamp source(s) and type, <key> containing
            's' = CA server (remote) timestamps
            'c' = CA client (local) timestamps (shown in '()'s)
            'n' = no timestamps
            'r' = relative timestamps (time elapsed since start of program)
            'i' = incremental timestamps (time elapsed since last update)
            'I' = incremental timestamps (time since last update, by channel)
            'r', 'i' or 'I' require 's' or 'c' to select the time source
Enum format:
  -n:       Print DBF_ENUM values as number (default is enum string)
Array values: Print number of elements, then list of values
  Default:  Request and print all elements (dynamic arrays supported)
  -# <num>: Request and print up to <num> elements
  -S:       Print arrays of char as a string (long string)
Floating point format:
  Default:  Use %g format
  -e <num>: Use %e format, with a precision of <num> digits
  -f <num>: Use %f format, with a precision of <num> digits
  -g <num>: Use %g format, with a precision of <num> digits
  -s:       Get value as string (the server's precision)
  -lx:      Round to long integer and print as hex number
  -lo:      Round to long integer and print as octal number
  -lb:      Round to long integer and print as binary number
Integer number format:
  Default:  Print as decimal number
  -0x:      Print as hex number
  -0o:      Print as octal number
  -0b:      Print as binary number
Alternate output field separator:
  -F <ofs>: Use <ofs> to separate fields in output

Example: caproto-monitor -f8 my_channel another_channel
  (doubles are printed as %f with precision of 8)
"""

_MASK_LETTERS = {"v": DBE_VALUE, "a": DBE_ALARM, "l": DBE_LOG, "p": DBE_PROPERTY}
_TIME_MODES = {"r": out.TimeMode.RELATIVE, "i": out.TimeMode.INCREMENTAL,
               "I": out.TimeMode.INCREMENTAL_BY_CHANNEL}


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Monitor:
    """One monitored PV: subscribes on (re)connection, prints updates and disconnections."""

    def __init__(self, pv: PV, printer: out.TimeValueStatus, options: CommonOptions, mask: int) -> None:
        self.pv = pv
        self.printer = printer
        self.options = options
        self.mask = mask
        self.line = out.ChannelLine(pv.name)
        self.subscription: Subscription | None = None
        self.native_type: int | None = None
        self.data_type = 0
        pv.add_connection_callback(self.connection_changed)

    def connection_changed(self, pv: PV, connected: bool) -> None:
        if not connected:
            _emit(self.printer.problem(self.line, "*** disconnected"))
            return
        native = int(pv.native_type)
        if self.subscription is not None and native != self.native_type:
            # the field type changed across a reconnect: subscribe again with the new type
            self.subscription.clear()
            self.subscription = None
        if self.subscription is None:
            self.line.once_connected = True
            self.native_type = native
            self.data_type = request_type(pv, None, self.options)
            elements = int(pv.element_count or 0)
            self.line.element_count = elements
            requested = self.options.count
            count = min(requested, elements) if requested else None
            self.subscription = pv.subscribe(self.data_type, count, self.mask)
            self.subscription.add_callback(self.update)

    def update(self, event: EventAddResponse) -> None:
        _emit(self.printer.line(self.line, event.data_type, event.data, event.data_count, event.metadata,
                                self.options.count))


async def camonitor(names: list[str], options: CommonOptions, printer: out.TimeValueStatus,
                    mask: int) -> None:
    async with Context() as ctx:
        monitors = []
        for name in names:
            monitors.append(Monitor(ctx.create_pv(name, options.priority), printer, options, mask))
        if options.connect_timeout is None:
            await trio.sleep_forever()  # -w 0: wait for ever, never report missing PVs
        await trio.sleep(options.connect_timeout)
        for monitor in monitors:
            if not monitor.line.once_connected:
                _emit(printer.not_connected(monitor.line))
        await trio.sleep_forever()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = CommonOptions("camonitor")
    parsed = parse("camonitor", argv, "nhVm:sSe:f:g:l:#:0:w:t:p:F:")
    if isinstance(parsed, int):
        return parsed
    opts, names = parsed
    mask = DBE_VALUE | DBE_ALARM
    printer = out.TimeValueStatus(options.output)
    for opt, arg in opts:
        letter = opt[1:]
        if letter == "h":
            sys.stderr.write(USAGE)
            return 0
        if letter == "V":
            print(version_text())
            return 0
        if letter == "t":
            printer.server_stamps = printer.client_stamps = False
            for ch in arg:
                if ch == "s":
                    printer.server_stamps = True
                elif ch == "c":
                    printer.client_stamps = True
                elif ch in _TIME_MODES:
                    printer.mode = _TIME_MODES[ch]
                elif ch != "n":
                    err(f"Invalid argument '{ch}' for option '-t' - ignored.")
        elif letter == "m":
            mask = 0
            for ch in arg:
                if ch not in _MASK_LETTERS:
                    err(f"Invalid argument '{arg}' for option '-m' - ignored.")
                    mask = DBE_VALUE | DBE_ALARM
                    break
                mask |= _MASK_LETTERS[ch]
        else:
            options.handle(opt, arg)
    if not names:
        err("No pv name specified. ('camonitor -h' for help.)")
        return 1
    return run(camonitor, names, options, printer, int(mask))


if __name__ == "__main__":
    sys.exit(main())

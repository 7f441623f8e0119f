"""``caproto-get``: read PVs and print them as EPICS Base ``caget`` does: same options, output, status."""
from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

import numpy as np
import trio

from caproto.client.context import Context
from caproto.client.errors import CAError, ConnectionTimeout, ServerError, ca_message
from caproto.client.pv import PV
from caproto.constants import ECA, Command
from caproto.dbr import DTYPES, ChannelType, Metadata, native_type

from . import output as out
from .options import CommonOptions, err, parse, run, version_text

USAGE = f"""
Usage: caproto-get [options] <PV name> ...

  -h: Help: print this message
  -V: Version: show the caproto and CA protocol versions
Channel Access options:
  -w <sec>: Wait time (CA timeout), default {1.0:f} second(s)
  -c: Asynchronous get (read with callback, wait for completion)
  -p <prio>: CA priority (0-99, default 0=lowest)
Format options:
      Default output format is "name value"
  -t: Terse mode - print only the value, without the name
  -a: Wide mode "name timestamp value stat sevr" (read as DBR_TIME_xxx)
  -d <type>: Request a specific DBR type, by name (DBR_ prefix optional) or number 0-38
             (DBR_PUT_ACKT and DBR_PUT_ACKS excepted)
Enum format:
  -n: Print DBF_ENUM values as numbers (default: enum string)
Arrays: Value format: print the number of values, then the values
  Default:    Print all values
  -# <count>: Print the first <count> elements of an array
  -S:         Print an array of char as a string (long string)
Floating point type format:
  Default: Use %g format
  -e <nr>: Use %e format, with a precision of <nr> digits
  -f <nr>: Use %f format, with a precision of <nr> digits
  -g <nr>: Use %g format, with a precision of <nr> digits
  -s:      Get the value as a string (the server's precision)
  -lx:     Round to long integer and print as hex number
  -lo:     Round to long integer and print as octal number
  -lb:     Round to long integer and print as binary number
Integer number format:
  Default: Print as decimal number
  -0x: Print as hex number
  -0o: Print as octal number
  -0b: Print as binary number
Alternate output field separator:
  -F <ofs>: Use <ofs> as an alternate output field separator

Example: caproto-get -a -f8 my_channel another_channel
  (wide output format, doubles printed as %f with a precision of 8)
"""


class Format(enum.Enum):
    PLAIN = "plain"
    TERSE = "terse"
    ALL = "all"
    SPECIFIED_DBR = "specified"


@dataclass
class Result:
    """What one PV's read produced: a status (ECA) and, when it succeeded, the values."""
    pv: PV
    data_type: int
    status: int = ECA.NORMAL
    values: object = None
    count: int = 0
    metadata: object = None


def request_type(pv: PV, specified: int | None, options: CommonOptions) -> int:
    """The DBR type caget asks for: DBR_TIME of the native type unless ``-d`` names one."""
    if specified is not None:
        return specified
    native = int(pv.native_type)
    if native == out.DBR_ENUM:
        return out.DBR_TIME_STRING + (out.DBR_SHORT if options.output.enum_as_number else out.DBR_STRING)
    if options.float_as_string and native in (out.DBR_FLOAT, out.DBR_DOUBLE):
        return out.DBR_TIME_STRING
    return out.time_type(native)


async def read_all(pvs: list[PV], types: list[int], counts: list[int], timeout: float | None,
                   callback: bool) -> tuple[list[Result], bool]:
    """Read every PV within one overall timeout, as ca_pend_io; (results, whether all reads succeeded).

    A read the server rejects gives, as in caget, the CA error as status with ``callback`` (-c), and
    otherwise libca's exception report and the zeroed buffer caget would print.
    """
    results = [Result(pv, t) for pv, t in zip(pvs, types, strict=True)]
    complete = True

    async def one(result: Result, count: int) -> None:
        nonlocal complete
        if not result.pv.read_access:
            result.status = ECA.NORDACCESS
            return
        try:
            reply = await result.pv.read(result.data_type, count, timeout=None)
        except CAError as exc:
            complete = False
            if callback:
                result.status = exc.eca
                return
            if isinstance(exc, ServerError):
                err(out.error_response_text(exc.response, result.pv.name))
            else:  # the server answered READ_NOTIFY with a failure status; libca reports it so
                err(out.exception_text(exc.eca, Command.READ_NOTIFY, result.pv.name, result.data_type,
                                       count, "read failed"))
            result.values, result.count, result.metadata = zeroed(result.data_type, count), count, Metadata()
            return
        result.values, result.count, result.metadata = reply.data, reply.data_count, reply.metadata

    with trio.move_on_after(float("inf") if timeout is None else timeout) as scope:
        async with trio.open_nursery() as nursery:
            for result, count in zip(results, counts, strict=True):
                nursery.start_soon(one, result, count)
    return results, complete and not scope.cancelled_caught


def zeroed(data_type: int, count: int) -> list[str] | np.ndarray:
    """The values of a buffer the C tools allocated but no reply filled."""
    native = native_type(data_type)
    if native is ChannelType.STRING:
        return [""] * count
    return np.zeros(count, dtype=DTYPES[native])


def value_part(result: Result, requested: int, options: CommonOptions) -> str:
    """The values of one result as the plain/terse formats print them (after the name)."""
    opts = options.output
    sep = opts.separator
    if opts.char_as_string and out.is_char(result.data_type) and (requested or result.count > 1):
        return out.char_array_text(result.values, result.count)
    text = f"{result.count}{sep}" if requested or result.count > 1 else ""
    return text + sep.join(out.value_text(result.values, i, result.data_type, result.metadata, opts)
                           for i in range(result.count))


def status_line(result: Result) -> str | None:
    """caget's text for a result without data, or None when there is data."""
    if result.status == ECA.DISCONN:
        return "*** not connected"
    if result.status == ECA.NORDACCESS:
        return "*** no read access"
    if result.status != ECA.NORMAL:
        return f"*** CA error {ca_message(result.status)}"
    if result.values is None:
        return "*** no data available (timeout)"
    return None


def print_results(results: list[Result], fmt: Format, requested: int, options: CommonOptions) -> None:
    opts = options.output
    sep = opts.separator
    printer = out.TimeValueStatus(opts)
    lines = []
    for result in results:
        if fmt in (Format.PLAIN, Format.TERSE):
            prefix = ""
            if fmt is Format.PLAIN:
                name = result.pv.name
                prefix = (f"{name:<30}" if result.count <= 1 and sep == " " else name) + sep
            problem = status_line(result)
            lines.append(prefix + (problem if problem else value_part(result, requested, options)))
        elif fmt is Format.ALL:
            channel = out.ChannelLine(result.pv.name, element_count=result.count, once_connected=True)
            problem = status_line(result)
            if problem == "*** not connected":
                problem = "*** disconnected"
            if problem:
                lines.append(printer.problem(channel, problem))
            else:
                lines.append(printer.line(channel, result.data_type, result.values, result.count,
                                          result.metadata, requested))
        else:
            lines.append(result.pv.name)
            problem = status_line(result)
            if problem:
                lines.append("    " + problem)
                continue
            lines.append(f"    Native data type: {out.dbf_text(int(result.pv.native_type))}")
            lines.append(f"    Request type:     {out.dbr_text(result.data_type)}")
            if result.data_type == out.DBR_CLASS_NAME:
                lines.append(f"    Class Name:       {out.escape(out.string_bytes(result.values[0]))}")
                continue
            lines.append(f"    Element count:    {result.count}")
            if opts.char_as_string and out.is_char(result.data_type) and (requested or result.count > 1):
                values = out.char_array_text(result.values, result.count)
            else:
                values = sep.join(out.value_text(result.values, i, result.data_type, result.metadata, opts)
                                  for i in range(result.count))
            lines.append(f"    Value:            {values}")
            if result.data_type > out.DBR_DOUBLE:
                lines.append(out.metadata_text(result.data_type, result.metadata))
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


async def caget(names: list[str], fmt: Format, specified: int | None, callback: bool,
                options: CommonOptions) -> int:
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
        requested = options.count
        types, counts = [], []
        for pv in pvs:
            types.append(request_type(pv, specified, options))
            elements = int(pv.element_count or 0)
            if callback:
                counts.append(min(requested, elements))
            else:
                counts.append(requested if requested and requested < elements else elements)
        results, finished = await read_all(pvs, types, counts, options.connect_timeout, callback)
        if not finished:
            err("Read operation timed out: some PV data was not read.")
        print_results(results, fmt, requested, options)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = CommonOptions("caget")
    parsed = parse("caget", argv, "taicnhsSVe:f:g:l:#:d:0:w:p:F:")
    if isinstance(parsed, int):
        return parsed
    opts, names = parsed
    fmt = Format.PLAIN
    specified: int | None = None
    callback = False

    def exclusive(new: Format) -> Format:
        if fmt is not Format.PLAIN:
            err("Options t,d,a are mutually exclusive. ('caget -h' for help.)")
        return new

    for opt, arg in opts:
        letter = opt[1:]
        if letter == "h":
            sys.stderr.write(USAGE)
            return 0
        if letter == "V":
            print(version_text())
            return 0
        if letter == "t":
            fmt = exclusive(Format.TERSE)
        elif letter == "a":
            fmt = exclusive(Format.ALL)
        elif letter == "c":
            callback = True
        elif letter == "d":
            fmt = exclusive(Format.SPECIFIED_DBR)
            specified = out.dbr_from_text(arg)
            if (specified is None or not out.DBR_STRING <= specified <= out.DBR_CLASS_NAME
                    or specified in (out.DBR_PUT_ACKT, out.DBR_PUT_ACKS)):
                err("Requested dbr type out of range or invalid - ignored. ('caget -h' for help.)")
                fmt = Format.PLAIN
        elif letter == "i":
            # in caget's option string but without a case of its own: it shows the usage and fails
            sys.stderr.write(USAGE)
            return 1
        else:
            options.handle(opt, arg)
            if letter == "0" and arg[:1] in ("x", "b", "o"):
                specified = out.DBR_LONG  # caget does this too; it matters only together with -d
    if not names:
        err("No pv name specified. ('caget -h' for help.)")
        return 1
    return run(caget, names, fmt, specified if fmt is Format.SPECIFIED_DBR else None, callback,
                        options)


if __name__ == "__main__":
    sys.exit(main())

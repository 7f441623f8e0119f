"""``caproto-put``: write a PV and print old and new values as EPICS Base ``caput`` does."""
from __future__ import annotations

import enum
import re
import sys

import numpy as np

from caproto.client.context import Context
from caproto.client.errors import CAError, ConnectionTimeout, Disconnected, RequestTimeout, ca_message
from caproto.client.pv import PV
from caproto.constants import ECA, MAX_STRING_SIZE
from caproto.dbr import ChannelType
from caproto.messages import ErrorResponse

from . import output as out
from .get import Result, read_all, status_line, value_part
from .options import CommonOptions, err, parse, run, version_text

USAGE = f"""
Usage: caproto-put [options] <PV name> <PV value> ...
       caproto-put -a [options] <PV name> <no of values> <PV value> ...

  -h: Help: print this message
  -V: Version: show the caproto and CA protocol versions
Channel Access options:
  -w <sec>:  Wait time (CA timeout), default {1.0:f} second(s)
  -c: Asynchronous put (put with callback, wait for completion)
  -p <prio>: CA priority (0-99, default 0=lowest)
Format options:
  -t: Terse mode - print only the successfully written value, without the name
  -l: Long mode "name timestamp value stat sevr" (read PVs as DBR_TIME_xxx)
Enum format:
  Default: Auto - try the value as an ENUM string, then as an index number
  -n: Force interpretation of values as numbers
  -s: Force interpretation of values as strings
Arrays:
  Default: Put scalar
      Value format: all value arguments concatenated with spaces
  -S: Put string as an array of chars (long string)
  -a: Put array
      Value format: number of values, then list of values
Alternate output field separator:
  -F <ofs>: Use <ofs> as an alternate output field separator

Example: caproto-put my_channel 1.2
  (puts 1.2 to my_channel)
"""

# libca's ERL_ERROR: "ERROR" in bold red, whatever the terminal.
ERROR_WORD = "\033[31;1mERROR\033[0m"

_STRTOD = re.compile(
    r"\s*[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
    r"|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)",
    re.IGNORECASE)


def strtod(text: str) -> float | None:
    """C strtod of the start of ``text``; None when no number starts it."""
    match = _STRTOD.match(text)
    if match is None:
        return None
    number = match.group(0).strip()
    lowered = number.lower().lstrip("+-")
    if lowered.startswith("0x"):
        sign = -1.0 if number.lstrip().startswith("-") else 1.0
        return sign * float.fromhex(lowered)
    if lowered.startswith("nan"):
        return float("nan")
    return float(number)


class Format(enum.Enum):
    PLAIN = "plain"
    TERSE = "terse"
    ALL = "all"


def print_values(results: list[Result], fmt: Format, options: CommonOptions, prefix: str = "") -> None:
    """caput's own caget: the whole array (the element count), DBR_TIME of the native type."""
    result = results[0]
    sep = options.output.separator
    if fmt is Format.ALL:
        printer = out.TimeValueStatus(options.output)
        channel = out.ChannelLine(result.pv.name, element_count=result.count, once_connected=True)
        problem = status_line(result)
        if problem:
            line = printer.problem(channel, "*** disconnected" if problem == "*** not connected" else problem)
        else:
            line = printer.line(channel, result.data_type, result.values, result.count, result.metadata, 0)
    else:
        name = ""
        if fmt is Format.PLAIN:
            elements = int(result.pv.element_count or 0)
            name = (f"{result.pv.name:<30}" if elements <= 1 and sep == " " else result.pv.name) + sep
        line = name + (status_line(result) or value_part(result, 0, options))
    sys.stdout.write(prefix + line + "\n")
    sys.stdout.flush()


async def read_back(pv: PV, options: CommonOptions) -> list[Result]:
    native = int(pv.native_type)
    if native == out.DBR_ENUM:
        data_type = out.DBR_TIME_STRING + (out.DBR_SHORT if options.output.enum_as_number else 0)
    else:
        data_type = out.time_type(native)
    results, finished = await read_all([pv], [data_type], [int(pv.element_count or 0)],
                                       options.connect_timeout, False)
    if not finished:
        err("Read operation timed out: PV data was not read.")
    return results


def exception_report(error: ErrorResponse, pv: PV | None) -> None:
    err(out.error_response_text(error, pv.name if pv is not None else "?"))


def _string_values(values: list[str]) -> list[bytes]:
    # each value unescaped into a dbr_string_t: at most 39 bytes and the NUL
    return [out.unescape(v, MAX_STRING_SIZE - 1) for v in values]


async def caput(name: str, values: list[str], fmt: Format, callback: bool, is_array: bool,
                enum_as_string: bool, options: CommonOptions) -> int:
    async with Context() as ctx:
        ctx.error_handler = exception_report
        pv = ctx.create_pv(name, options.priority)
        try:
            await pv.wait_for_connection(options.connect_timeout)
        except ConnectionTimeout:
            err(f"Channel connect timed out: '{name}' not found.")
            return 1

        if is_array:
            values = values[1:]  # the count argument: the number of values given is what counts
        else:
            values = [" ".join(values)]
        count = len(values)

        if int(pv.native_type) == out.DBR_ENUM:
            try:
                reply = await pv.read(ChannelType.GR_ENUM, 1, timeout=options.connect_timeout)
            except (RequestTimeout, CAError, Disconnected):
                err("Read operation timed out: ENUM data was not read.")
                return 1
            strings = list(reply.metadata.enum_strings)
            data_type, payload = _enum_values(values, strings, options.output.enum_as_number, enum_as_string)
            if payload is None:
                return 1
        elif options.output.char_as_string:
            raw = out.unescape(values[0])
            data_type, payload = out.DBR_CHAR, np.frombuffer(raw + b"\0", dtype=np.uint8)
            count = len(payload)
        else:
            data_type, payload = out.DBR_STRING, _string_values(values)

        if fmt is not Format.TERSE:
            print_values(await read_back(pv, options), fmt, options, "Old : ")

        if count > int(pv.element_count or 0) or not pv.write_access:
            status = ECA.BADCOUNT if pv.write_access else ECA.NOWTACCESS
            err(f"{ERROR_WORD} from put operation: {ca_message(status)}")
            return 1
        if callback:
            try:
                await pv.write(payload, data_type=data_type, wait=True, timeout=options.connect_timeout)
            except RequestTimeout:
                err("Write callback operation timed out")
            except CAError as exc:
                err(f"{ERROR_WORD} occured writing data: {ca_message(exc.eca)}")
                return 1
        else:
            await pv.write(payload, data_type=data_type)

        results = await read_back(pv, options)
        print_values(results, fmt, options, "" if fmt is Format.TERSE else "New : ")
    return 0


def _enum_values(values: list[str], strings: list[str], as_number: bool, as_string: bool
                 ) -> tuple[int, list | None]:
    """caput's reading of values for an ENUM channel: state strings, else index numbers."""
    numbers = [0.0] * len(values)
    data_type = out.DBR_STRING
    if as_number:
        for i, text in enumerate(values):
            number = strtod(text)
            if number is None:
                err(f"Enum index value '{text}' is not a number.")
                return data_type, None
            if number >= len(strings):
                err(f"Warning: enum index value '{text}' may be too large.")
            numbers[i] = number
        return out.DBR_DOUBLE, numbers
    raw = _string_values(values)
    for i, item in enumerate(raw):
        data_type = out.DBR_STRING
        text = item.decode("utf-8", "surrogateescape")
        if text in strings:
            continue
        number = strtod(text)
        if number is None or as_string:
            err(f"Enum string value '{text}' invalid.")
            return data_type, None
        if number >= len(strings):
            err(f"Warning: enum index value '{text}' may be too large.")
        numbers[i] = number
        data_type = out.DBR_DOUBLE
    # like caput, the type of the last value decides how all of them are sent
    return data_type, (numbers if data_type == out.DBR_DOUBLE else raw)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = CommonOptions("caput")
    parsed = parse("caput", argv, "cnlhatsVS#:w:p:F:", permute=False)
    if isinstance(parsed, int):
        return parsed
    opts, args = parsed
    fmt = Format.PLAIN
    callback = is_array = enum_as_string = False
    for opt, arg in opts:
        letter = opt[1:]
        if letter == "h":
            sys.stderr.write(USAGE)
            return 0
        if letter == "V":
            print(version_text())
            return 0
        if letter == "n":
            options.output.enum_as_number, enum_as_string = True, False
        elif letter == "s":
            enum_as_string, options.output.enum_as_number = True, False
        elif letter == "S":
            options.output.char_as_string, is_array = True, False
        elif letter == "t":
            fmt = Format.TERSE
        elif letter == "l":
            fmt = Format.ALL
        elif letter == "a":
            is_array, options.output.char_as_string = True, False
        elif letter == "c":
            callback = True
        else:
            options.handle(opt, arg)
    if not args:
        err("No pv name specified. ('caput -h' for help.)")
        return 1
    if len(args) == 1:
        err("No value specified. ('caput -h' for help.)")
        return 1
    return run(caput, args[0], args[1:], fmt, callback, is_array, enum_as_string, options)


if __name__ == "__main__":
    sys.exit(main())

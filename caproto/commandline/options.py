"""Option parsing shared by the tools, with the C tools' option letters, defaults and messages."""
from __future__ import annotations

import getopt
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from caproto.constants import CA_MAJOR_VERSION, CA_MINOR_VERSION

from .output import IntFormat, OutputOptions

DEFAULT_TIMEOUT = 1.0        # seconds, as the C tools
MAX_PRIORITY = 99
VALID_DOUBLE_DIGITS = 18     # largest -e/-f/-g precision


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        ours = version("caproto")
    except PackageNotFoundError:
        ours = "unknown"
    return f"\ncaproto {ours}, CA Protocol version {CA_MAJOR_VERSION}.{CA_MINOR_VERSION}"


def scan_int(text: str) -> int | None:
    """sscanf("%d"): leading blanks, an optional sign, digits; anything after is ignored."""
    stripped = text.lstrip()
    end = 1 if stripped[:1] in ("+", "-") else 0
    while end < len(stripped) and stripped[end].isdigit():
        end += 1
    try:
        return int(stripped[:end])
    except ValueError:
        return None


def scan_double(text: str) -> float | None:
    """epicsScanDouble: the whole argument (blanks around it allowed) must be a number."""
    try:
        return float(text.strip())
    except ValueError:
        return None


@dataclass
class CommonOptions:
    """Options every tool shares: CA timeout and priority, and how values print."""
    tool: str
    timeout: float = DEFAULT_TIMEOUT
    priority: int = 0
    count: int = 0                 # -#: 0 when not given
    float_as_string: bool = False  # -s (caget, camonitor)
    output: OutputOptions = field(default_factory=OutputOptions)

    def __post_init__(self) -> None:
        text = os.environ.get("EPICS_CLI_TIMEOUT")
        if text is not None:
            value = scan_double(text)
            if value is None:
                err(f"'{text}' is not a valid timeout value (from 'EPICS_CLI_TIMEOUT' in the environment) - "
                    "ignored. (use '-h' for help.)")
            else:
                self.timeout = value

    @property
    def connect_timeout(self) -> float | None:
        """None (wait for ever) for ``-w 0``, as ca_pend_io(0) does."""
        return self.timeout if self.timeout > 0 else None

    def handle(self, opt: str, arg: str) -> bool:
        """Apply a shared option; False if ``opt`` is not one of them."""
        letter = opt[1:]
        if letter == "w":
            value = scan_double(arg)
            if value is None:
                err(f"'{arg}' is not a valid timeout value - ignored, using '{self.timeout:.1f}'. "
                    f"('{self.tool} -h' for help.)")
            else:
                self.timeout = value
        elif letter == "#":
            value = scan_int(arg)
            if value is None:
                err(f"'{arg}' is not a valid array element count - ignored. ('{self.tool} -h' for help.)")
                self.count = 0
            else:
                # the C tools keep the count in an unsigned long: a negative one means "everything"
                self.count = value if value >= 0 else value % (1 << 64)
        elif letter == "p":
            value = scan_int(arg)
            if value is None or value < 0:
                err(f"'{arg}' is not a valid CA priority - ignored. ('{self.tool} -h' for help.)")
                self.priority = 0
            else:
                self.priority = min(value, MAX_PRIORITY)
        elif letter in "efg":
            digits = scan_int(arg)
            if digits is None:
                err(f"Invalid precision argument '{arg}' for option '-{letter}' - ignored.")
            elif 0 <= digits <= VALID_DOUBLE_DIGITS:
                self.output.double_format = f"%-.{digits}{letter}"
            else:
                err(f"Precision {digits} for option '-{letter}' out of range - ignored.")
        elif letter in "l0":
            how = {"x": IntFormat.HEX, "b": IntFormat.BIN, "o": IntFormat.OCT}.get(arg[:1])
            if how is None:
                err(f"Invalid argument '{arg}' for option '-{letter}' - ignored.")
            elif letter == "0":
                self.output.int_format = how
            else:
                self.output.float_int_format = how
        elif letter == "F":
            self.output.separator = arg[:1]
        elif letter == "n":
            self.output.enum_as_number = True
        elif letter == "S":
            self.output.char_as_string = True
        elif letter == "s":
            self.float_as_string = True
        else:
            return False
        return True


def parse(tool: str, argv: list[str], shortopts: str, *, permute: bool = True
          ) -> tuple[list[tuple[str, str]], list[str]] | int:
    """getopt as the C tools call it: GNU argument permutation unless ``permute`` is False (caput sets
    POSIXLY_CORRECT). Returns (options, arguments), or the exit status after an option error."""
    function: Callable = getopt.gnu_getopt if permute else getopt.getopt
    try:
        return function(argv, shortopts)
    except getopt.GetoptError as exc:
        letter = exc.opt[:1] if exc.opt else "?"
        if letter and letter in shortopts.replace(":", "") and letter != ":":
            err(f"Option '-{letter}' requires an argument. ('{tool} -h' for help.)")
        else:
            err(f"Unrecognized option: '-{letter}'. ('{tool} -h' for help.)")
        return 1


def run(function: Callable[..., Awaitable[int | None]], *args: object) -> int:
    """Run a tool's trio main; on Ctrl-C die of SIGINT as the C tools do, so the caller sees it."""
    # a Ctrl-C that lands inside a nursery's child task arrives wrapped in an exception group
    try:
        return trio.run(function, *args) or 0
    except* KeyboardInterrupt:
        logging.getLogger(__name__).debug("interrupted")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    return 130

"""The C softIoc as an oracle for the record database, compared in-process (no CA server of ours).

The reference side runs the EPICS tools against ``softIoc -S -d``; our side reads ``FieldChannel``s of a
``Database`` built from the same .db text and formats what it decodes the way ``caget -d`` and
``camonitor`` print it, so both sides reduce to the same comparable records.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import select
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from peers import run_tool, soft_ioc, stop, tool

from caproto.constants import DBE_ALARM, DBE_LOG, DBE_PROPERTY, DBE_VALUE, AlarmSeverity, AlarmStatus
from caproto.dbr import ChannelType, decode_payload, encode_payload, native_type
from caproto.errors import CAError
from ioc.config import load_config
from ioc.database import Database

# caget prints CA native types with DBF_ names (db_access.h's dbf_text)
_NATIVE_NAMES = {
    ChannelType.STRING: "DBF_STRING", ChannelType.INT: "DBF_SHORT", ChannelType.FLOAT: "DBF_FLOAT",
    ChannelType.ENUM: "DBF_ENUM", ChannelType.CHAR: "DBF_CHAR", ChannelType.LONG: "DBF_LONG",
    ChannelType.DOUBLE: "DBF_DOUBLE",
}
_LIMIT_KEYS = (("Lo disp limit", "lower_disp_limit"), ("Hi disp limit", "upper_disp_limit"),
               ("Lo alarm limit", "lower_alarm_limit"), ("Lo warn limit", "lower_warning_limit"),
               ("Hi warn limit", "upper_warning_limit"), ("Hi alarm limit", "upper_alarm_limit"),
               ("Lo ctrl limit", "lower_ctrl_limit"), ("Hi ctrl limit", "upper_ctrl_limit"))
_FAILED = re.compile(r'channel=(\S+), type=\S+, count=\d+, ctx="read failed"')
_MASKS = {"v": DBE_VALUE, "l": DBE_LOG, "a": DBE_ALARM, "p": DBE_PROPERTY}


def load_db(db_text: str, tmp_path: Path) -> Database:
    path = tmp_path / "ours.db"
    path.write_text(db_text)
    return Database.from_config(load_config(path))


# --- caget -d ------------------------------------------------------------------------------------------

def parse_caget(stdout: str, stderr: str = "") -> dict[str, dict[str, object]]:
    """caget -d output -> {pv: {label: text}}; "Enums" is a list; failed reads get "failed": True."""
    blocks: dict[str, dict[str, object]] = {}
    current: dict[str, object] | None = None
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            current = blocks.setdefault(line.strip(), {})
            continue
        assert current is not None, f"caget output starts with an indented line: {line!r}"
        label, sep, rest = line.strip().partition(":")
        if sep and not label.startswith("["):
            if label == "Enums":
                current["Enums"] = []
            else:
                current[label] = rest.strip()
        else:
            current.setdefault("Enums", []).append(line.strip().split("]", 1)[1].strip())
    for pv in _FAILED.findall(stderr):
        blocks.setdefault(pv, {})["failed"] = True
    return blocks


def _number(value: float | int, native: ChannelType) -> str:
    if native in (ChannelType.DOUBLE, ChannelType.FLOAT):
        return f"{float(value):g}"
    return str(int(value))


def _enum_text(index: int, enum_strings: tuple[str, ...]) -> str:
    if index >= 16:
        return f"Illegal Value ({index})"
    if index >= len(enum_strings):
        return f"Enum Index Overflow ({index})"
    return enum_strings[index]


def our_caget(db: Database, pv: str, data_type: ChannelType) -> dict[str, object]:
    """What ``caget -d <data_type> <pv>`` would show for our channel (count = the native count)."""
    chan = db.lookup(pv)
    assert chan is not None, f"{pv} is not served"
    out: dict[str, object] = {"Native data type": _NATIVE_NAMES[chan.native_type],
                              "Element count": str(chan.max_count)}
    try:
        payload, count = chan.read(data_type, chan.max_count)
    except CAError:
        out["failed"] = True
        return out
    values, md = decode_payload(data_type, count, payload)
    native = native_type(data_type)
    enum_strings = md.enum_strings if native is ChannelType.ENUM else ()
    if native is ChannelType.STRING:
        text = " ".join(values)
    elif native is ChannelType.ENUM and data_type >= ChannelType.GR_STRING:
        text = " ".join(_enum_text(v, enum_strings) for v in values.tolist())
    else:
        text = " ".join(_number(v, native) for v in values.tolist())
    out["Value"] = text
    family = ChannelType(data_type).name.split("_")[0]
    if family == "TIME":
        out["Timestamp"] = "<undefined>" if md.secs == 0 and md.nsec == 0 else "<time>"
    if family != "DBR" and family in ("STS", "TIME", "GR", "CTRL"):
        out["Status"] = AlarmStatus(md.status).name
        out["Severity"] = AlarmSeverity(md.severity).name
    if family in ("GR", "CTRL") and native not in (ChannelType.STRING,):
        if native is ChannelType.ENUM:
            out["Enums"] = list(enum_strings)
        else:
            out["Units"] = md.units
            if native in (ChannelType.DOUBLE, ChannelType.FLOAT):
                out["Precision"] = str(md.precision)
            for label, attr in _LIMIT_KEYS:
                if family == "GR" and "ctrl" in attr:
                    continue
                out[label] = _number(getattr(md, attr), native)
    return out


def comparable(block: dict[str, object]) -> dict[str, object]:
    """Drop what cannot be compared: the request type line, timestamps' digits, values of failed reads."""
    block = {k: v for k, v in block.items() if k != "Request type"}
    if isinstance(block.get("Timestamp"), str) and block["Timestamp"] != "<undefined>":
        block["Timestamp"] = "<time>"
    if block.get("failed"):
        return {"failed": True, "Native data type": block.get("Native data type"),
                "Element count": block.get("Element count")}
    return block


def same_number_text(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-300)


def _zero_block(block: dict[str, object]) -> bool:
    """What caget prints for a failed read: zeros, NO_ALARM, no timestamp (its stderr note may be lost)."""
    for key, value in block.items():
        if key in ("Native data type", "Request type", "Element count", "Enums", "failed"):
            continue
        if key == "Timestamp":
            if value != "<undefined>":
                return False
        elif key in ("Status", "Severity"):
            if value != "NO_ALARM":
                return False
        elif not all(word in ("0", "") for word in str(value).split()) and value != "":
            if not all(w.startswith("Enum") or w in ("Index", "Overflow", "(0)") for w in str(value).split()):
                return False
    return True


def differences(reference: dict[str, object], ours: dict[str, object]) -> list[str]:
    if ours.get("failed") and not reference.get("failed") and _zero_block(reference):
        reference = {**reference, "failed": True}   # libca's errlog dropped the "read failed" line
    ref, our = comparable(reference), comparable(ours)
    problems = []
    for key in sorted(set(ref) | set(our)):
        a, b = ref.get(key), our.get(key)
        if isinstance(a, str) and isinstance(b, str):
            if a.split() != b.split() and not (len(a.split()) == len(b.split()) and all(
                    same_number_text(x, y) for x, y in zip(a.split(), b.split(), strict=True))):
                problems.append(f"{key}: C {a!r}, ours {b!r}")
        elif a != b:
            problems.append(f"{key}: C {a!r}, ours {b!r}")
    return problems


# --- puts and monitors -----------------------------------------------------------------------------------

def our_put(db: Database, pv: str, *values: str) -> None:
    """A put as caput sends it: DBR_STRING (the IOC converts); enum fields by state name or index."""
    chan = db.lookup(pv)
    assert chan is not None, f"{pv} is not served"
    if chan.native_type is ChannelType.ENUM and len(values) == 1 and values[0].isdigit():
        # caput sends a number for an enum as DBR_ENUM, whatever the state count
        chan.write(ChannelType.ENUM, 1, encode_payload(ChannelType.ENUM, [int(values[0])]))
        return
    chan.write(ChannelType.STRING, len(values), encode_payload(ChannelType.STRING, list(values)))


@dataclass
class Events:
    """Monitor events of our channels, as (pv, value text, status, severity) like camonitor shows."""
    db: Database
    mask: int
    events: list[tuple[str, str, str, str]] = field(default_factory=list)

    def watch(self, pv: str) -> None:
        chan = self.db.lookup(pv)
        assert chan is not None
        data_type = ChannelType.TIME_STRING if chan.native_type in (
            ChannelType.ENUM, ChannelType.STRING) else ChannelType.TIME_DOUBLE

        def post(mask: int) -> None:
            if mask & self.mask:
                self.events.append(self._event(pv, chan, data_type))

        self.events.append(self._event(pv, chan, data_type))
        chan.subscribe(post)

    @staticmethod
    def _event(pv, chan, data_type) -> tuple[str, str, str, str]:
        payload, count = chan.read(data_type, 0 if chan.max_count > 1 else 1)
        values, md = decode_payload(data_type, count, payload)
        text = " ".join(values) if isinstance(values, list) else " ".join(
            f"{v:g}" for v in np.asarray(values, dtype=float).tolist())
        stat, sevr = AlarmStatus(md.status).name, AlarmSeverity(md.severity).name
        return pv, text, stat if md.severity else "", sevr if md.severity else ""


def parse_camonitor(stdout: str) -> list[tuple[str, str, str, str]]:
    """camonitor lines -> (pv, value text, status, severity); the date and time columns dropped."""
    severities = {s.name for s in AlarmSeverity}
    events = []
    for line in stdout.splitlines():
        words = line.split()
        if len(words) < 3:
            continue
        # the stamp is a date and a time, or "<undefined>" before the record first processed
        pv, rest = words[0], words[2:] if words[1] == "<undefined>" else words[3:]
        stat = sevr = ""
        if len(rest) >= 2 and rest[-1] in severities and rest[-1] != "NO_ALARM":
            stat, sevr, rest = rest[-2], rest[-1], rest[:-2]
        events.append((pv, " ".join(rest), stat, sevr))
    return events


def same_events(reference: list[tuple[str, ...]], ours: list[tuple[str, ...]]) -> bool:
    if len(reference) != len(ours):
        return False
    for a, b in zip(reference, ours, strict=True):
        if a[0] != b[0] or a[2:] != b[2:]:
            return False
        if a[1].split() != b[1].split() and not (len(a[1].split()) == len(b[1].split()) and all(
                same_number_text(x, y) for x, y in zip(a[1].split(), b[1].split(), strict=True))):
            return False
    return True


# The tools' CA timeout (-w). caput and camonitor wait that long only for a PV that does not connect (every
# PV used here is served), so theirs is generous: a loaded machine can delay a search reply past the
# default second. caget also waits out its whole timeout for a read the server refuses, which some steps
# compare on purpose, so its timeout is a compromise between that cost and a slow connection.
CAGET_TIMEOUT = "5"
CONNECT_TIMEOUT = "30"


class Reference:
    """The C softIoc serving a .db, driven with caput/caget/camonitor."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def caget(self, data_type: str, *pvs: str) -> dict[str, dict[str, object]]:
        result = run_tool("caget", "-w", CAGET_TIMEOUT, "-d", data_type, *pvs, env=self.env, timeout=60)
        return parse_caget(result.stdout, result.stderr)

    def caput(self, pv: str, *values: str) -> subprocess.CompletedProcess:
        args = ["-w", CONNECT_TIMEOUT] + (["-a", pv, str(len(values)), *values] if len(values) > 1
                                         else [pv, *values])
        return run_tool("caput", *args, env=self.env, timeout=60)

    @contextlib.contextmanager
    def camonitor(self, mask: str, *pvs: str, sentinel: str) -> Iterator[list[tuple[str, str, str, str]]]:
        """Collect camonitor events while the body runs.

        ``sentinel`` must be an ai with an alarm at 1 (see SENTINEL_RECORD): after the body, it is set
        to 1 and its EGU changed, which posts under every mask; its event, last on the circuit, ends the
        collection.
        """
        proc = subprocess.Popen([tool("camonitor"), "-w", CONNECT_TIMEOUT, "-m", mask, *pvs, sentinel],
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        self._pending = b""
        lines: list[str] = []
        events: list[tuple[str, str, str, str]] = []
        try:
            # the initial update of every channel arrives first
            while len([ln for ln in lines if ln.split()]) < len(pvs) + 1:
                lines.append(self._readline(proc))
            yield events
            self.caput(sentinel, "1")
            self.caput(sentinel + ".EGU", "done")
            while True:
                line = self._readline(proc)
                lines.append(line)
                if line.startswith(sentinel + " ") and "1" in line.split()[2:4]:
                    break
        finally:
            stop(proc)
        events.extend(e for e in parse_camonitor("".join(lines)) if e[0] != sentinel)

    def _readline(self, proc: subprocess.Popen, timeout: float = 60.0) -> str:
        # our own line buffer: select() on the pipe cannot see lines a buffered reader already holds
        assert proc.stdout is not None
        while b"\n" not in self._pending:
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            if not ready:
                raise TimeoutError(f"camonitor printed nothing for {timeout} s")
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError("camonitor exited")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode() + "\n"


SENTINEL_RECORD = 'record(ai, "sentinel") { field(HIHI, "0.5") field(HHSV, "MAJOR") }\n'


@contextlib.contextmanager
def reference_ioc(db_text: str, env: dict[str, str], tmp_path: Path) -> Iterator[Reference]:
    with soft_ioc(db_text, env, tmp_path):
        yield Reference(env)


def mask_letters(letters: str) -> int:
    mask = 0
    for letter in letters:
        mask |= _MASKS[letter]
    return mask

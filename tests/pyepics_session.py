"""A pyepics client session, run as its own process: ``python pyepics_session.py OPERATIONS.json``.

libca reads the EPICS_CA_* environment once, when its context is created, so each server under test gets
its own process. The operations (a JSON list) run in order; the script prints one JSON list of
``[label, outcome]`` pairs, where the outcome keeps the Python type of every value pyepics returned, so
that two runs (one per server) can be compared as text. Timestamps and host:port are masked here.
"""
from __future__ import annotations

import ctypes
import json
import re
import sys
import threading
from typing import Any

import epics
import numpy as np

_HOST_PORT = re.compile(r"\b127\.0\.0\.1:\d+|\blocalhost:\d+")
_INFO_VOLATILE = re.compile(r"^(\s*(?:timestamp|posixseconds|nanoseconds)\s*=).*$", re.MULTILINE)
_TIME_KEYS = {"timestamp", "posixseconds", "nanoseconds"}
TIMEOUT = 10.0


def plain(value: Any) -> Any:
    """A JSON-able form of what pyepics returned that still says which Python type it was."""
    if isinstance(value, np.ndarray):
        return {"ndarray": value.dtype.name, "values": [plain(v) for v in value.tolist()]}
    if isinstance(value, np.generic):
        return {type(value).__name__: value.item()}
    if isinstance(value, ctypes.Array):
        return {"ctypes": type(value).__name__, "values": [plain(v) for v in value]}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [plain(v) for v in value]}
    if isinstance(value, dict):
        return {str(key): ("<time>" if key in _TIME_KEYS else plain(item))
                for key, item in sorted(value.items())}
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, float):
        return {"float": repr(value)}  # repr keeps NaN, inf and -0.0 apart in JSON
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return {type(value).__name__: repr(value)}


def failure(error: BaseException) -> dict[str, str]:
    return {"raised": type(error).__name__, "message": _HOST_PORT.sub("<host>", str(error))}


class ExceptionArgs(ctypes.Structure):
    """cadef.h's ``struct exception_handler_args``: what libca tells about a request the server refused."""
    _fields_ = [("usr", ctypes.c_void_p), ("chid", ctypes.c_void_p), ("type", ctypes.c_long),
                ("count", ctypes.c_long), ("addr", ctypes.c_void_p), ("stat", ctypes.c_long),
                ("op", ctypes.c_long), ("ctx", ctypes.c_char_p), ("pFile", ctypes.c_char_p),
                ("lineNo", ctypes.c_uint)]


class EventArgs(ctypes.Structure):
    """cadef.h's ``struct event_handler_args`` (pyepics's own declares ``usr`` a Python object)."""
    _fields_ = [("usr", ctypes.c_void_p), ("chid", ctypes.c_void_p), ("type", ctypes.c_long),
                ("count", ctypes.c_long), ("dbr", ctypes.c_void_p), ("status", ctypes.c_int)]


class Session:
    def __init__(self) -> None:
        self.pvs: dict[str, epics.PV] = {}
        self.events: list[list] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        # pyepics installs no exception handler, and libca's default one prints nothing here, so the
        # asynchronous failures of plain puts (the server's ERROR replies) are collected by our own.
        self.exceptions: list[dict] = []
        epics.ca.initialize_libca()
        self._on_exception = ctypes.CFUNCTYPE(None, ExceptionArgs)(self._exception)
        epics.ca.libca.ca_add_exception_event(self._on_exception, None)

    def _exception(self, args: ExceptionArgs) -> None:
        with self.lock:
            self.exceptions.append({
                "status": epics.ca.message(args.stat), "op": args.op, "type": args.type, "count": args.count,
                "context": _HOST_PORT.sub("<host>", (args.ctx or b"").decode("latin-1"))})

    def take_exceptions(self, name: str | None) -> list[dict]:
        """The failures reported so far; a read of ``name`` first makes a round trip on its circuit, so
        that every ERROR the server sent before its reply has arrived."""
        if name is not None and name in self.pvs:
            self.pvs[name].get(timeout=TIMEOUT, use_monitor=False)
        with self.lock:
            taken, self.exceptions = self.exceptions, []
        return taken

    def pv(self, name: str) -> epics.PV:
        """One unmonitored PV per name, so that every get asks the server."""
        if name not in self.pvs:
            pv = epics.PV(name, auto_monitor=False, connection_timeout=TIMEOUT)
            if not pv.wait_for_connection(TIMEOUT):
                raise TimeoutError(f"{name} did not connect")
            self.pvs[name] = pv
        return self.pvs[name]

    def run(self, op: dict) -> Any:
        kind = op["op"]
        if kind == "get":
            return plain(self.pv(op["pv"]).get(timeout=TIMEOUT, use_monitor=False, **op.get("kw", {})))
        if kind == "meta":
            return plain(self.pv(op["pv"]).get_with_metadata(timeout=TIMEOUT, use_monitor=False,
                                                              **op.get("kw", {})))
        if kind == "caget":
            return plain(epics.caget(op["pv"], timeout=TIMEOUT, use_monitor=False, **op.get("kw", {})))
        if kind == "ctrlvars":
            return plain(self.pv(op["pv"]).get_ctrlvars(timeout=TIMEOUT))
        if kind == "timevars":
            return plain(self.pv(op["pv"]).get_timevars(timeout=TIMEOUT))
        if kind == "info":
            info = self.pv(op["pv"]).info
            return _INFO_VOLATILE.sub(r"\1 <time>", _HOST_PORT.sub("<host>", info))
        if kind == "attrs":
            pv = self.pv(op["pv"])
            pv.get_ctrlvars(timeout=TIMEOUT)
            return {name: plain(getattr(pv, name)) for name in (
                "type", "ftype", "count", "nelm", "enum_strs", "precision", "units", "write_access",
                "read_access", "access", "severity", "status")}
        if kind == "put":
            return plain(self.pv(op["pv"]).put(op["value"], timeout=TIMEOUT, **op.get("kw", {})))
        if kind == "put_as":
            # A put in a DBR type of our choice (pyepics itself always puts the native type and converts
            # text on the client side): the server does the conversion.
            pv = self.pv(op["pv"])
            return plain(epics.ca.put(pv.chid, op["value"], ftype=op["ftype"], timeout=TIMEOUT,
                                      wait=op.get("wait", False)))
        if kind == "put_status":
            return self.put_status(op["pv"], op["value"], op.get("ftype"))
        if kind == "caget_many":
            return plain(epics.caget_many(op["pvs"], timeout=TIMEOUT, **op.get("kw", {})))
        if kind == "caput_many":
            return plain(epics.caput_many(op["pvs"], op["values"], connection_timeout=TIMEOUT,
                                          put_timeout=TIMEOUT, **op.get("kw", {})))
        if kind == "monitor":
            return self.monitor(op)
        if kind == "big":
            return self.big(op)
        raise ValueError(f"unknown operation {kind!r}")

    def put_status(self, name: str, value: Any, ftype: int | None) -> str:
        """A put-callback through libca itself, for the status the server completes it with (pyepics's
        put(wait=True) drops it)."""
        chid = self.pv(name).chid
        ftype = epics.ca.field_type(chid) if ftype is None else ftype
        values = value if isinstance(value, list) else [value]
        data = (len(values) * epics.dbr.Map[ftype])()
        for index, item in enumerate(values):
            if ftype == epics.dbr.STRING:
                data[index].value = str(item).encode("latin-1")
            else:
                data[index] = item
        completed = threading.Event()
        status = []

        def on_completion(args: EventArgs) -> None:
            status.append(args.status)
            completed.set()

        handler = ctypes.CFUNCTYPE(None, EventArgs)(on_completion)
        queued = epics.ca.libca.ca_array_put_callback(ftype, len(values), chid, data, handler, None)
        if queued != epics.dbr.ECA_NORMAL:
            return f"not sent: {epics.ca.message(queued)}"
        epics.ca.flush_io()
        if not completed.wait(TIMEOUT):
            return "no completion"
        return epics.ca.message(status[0])

    def monitor(self, op: dict) -> list:
        """Subscribe (PV callbacks, each with its form and event mask), wait for every first event, run
        the puts, then collect events until the last subscription has seen ``op['end']``'s value."""
        keys = op["keys"]
        subscribed = []
        for number, (name, form, mask, *count) in enumerate(op["subscriptions"]):
            label = f"{number}:{name}:{form}:{mask}" + (f":count={count[0]}" if count else "")

            def record(label: str = label, **kw: Any) -> None:
                with self.arrived:
                    self.events.append([label, {key: plain(kw.get(key)) for key in keys}])
                    self.arrived.notify_all()

            pv = epics.PV(name, form=form, auto_monitor=mask, callback=record, connection_timeout=TIMEOUT,
                          count=count[0] if count else None)
            subscribed.append(pv)
            with self.arrived:
                if not self.arrived.wait_for(lambda label=label: any(e[0] == label for e in self.events),
                                             TIMEOUT):
                    raise TimeoutError(f"no first event for {label}")
        results = []
        for name, value, *ftype in op["puts"]:
            try:
                if ftype:   # a put-callback in that DBR type, converted by the server
                    results.append(self.put_status(name, value, ftype[0]))
                else:
                    results.append(plain(self.pv(name).put(value, wait=True, timeout=TIMEOUT)))
            except Exception as error:  # noqa: BLE001 - a failed put is an outcome to compare
                results.append(failure(error))
        last = op["subscriptions"][-1]
        end_label = f"{len(subscribed) - 1}:{last[0]}:{last[1]}:{last[2]}"
        end_value = plain(op["end"])
        with self.arrived:
            done = self.arrived.wait_for(lambda: any(
                e[0] == end_label and e[1].get("value") == end_value for e in self.events), TIMEOUT)
            events = list(self.events)
            self.events.clear()
        for pv in subscribed:
            pv.clear_callbacks()
            pv.disconnect()
        return [results, events, "complete" if done else "end event missing"]

    def big(self, op: dict) -> Any:
        """A large array put with callback while a monitor of it is open, then read back whole and in part."""
        pv = self.pv(op["pv"])
        data = np.arange(op["count"], dtype=float) * 0.5 - 7.25
        updates: list[np.ndarray] = []

        def update(value: Any = None, **kw: Any) -> None:
            with self.arrived:
                updates.append(np.array(value, copy=True))
                self.arrived.notify_all()

        monitor = epics.PV(op["pv"], auto_monitor=epics.dbr.DBE_VALUE, callback=update,
                           connection_timeout=TIMEOUT)
        with self.arrived:
            first = self.arrived.wait_for(lambda: len(updates) == 1, TIMEOUT)
        put = pv.put(data, wait=True, timeout=30)
        with self.arrived:
            second = self.arrived.wait_for(lambda: len(updates) == 2, 30)
        monitor.clear_callbacks()
        monitor.disconnect()
        got = pv.get(timeout=30, use_monitor=False)
        return {"put": plain(put), "type": type(got).__name__, "length": len(got),
                "equal": bool(np.array_equal(got, data)), "last": plain(got[-1]),
                "partial": plain(pv.get(count=3, timeout=30, use_monitor=False)),
                "updates": [len(u) for u in updates] if first and second else "missing",
                "update equal": bool(second and np.array_equal(updates[-1], data))}


def main() -> None:
    with open(sys.argv[1]) as file:
        operations = json.load(file)
    # pyepics prints its warnings on stdout, which carries the outcomes: they go to stderr instead
    results, sys.stdout = sys.stdout, sys.stderr
    session = Session()
    out = []
    for op in operations:
        label = op.get("label") or f"{op['op']} {op.get('pv', '')} {json.dumps(op.get('kw', {}))}"
        try:
            outcome = session.run(op)
        except Exception as error:  # noqa: BLE001 - a failure is an outcome to compare
            outcome = failure(error)
        exceptions = session.take_exceptions(op.get("pv") or (op.get("pvs") or [None])[-1])
        if exceptions:
            outcome = {"outcome": outcome, "libca exceptions": exceptions}
        out.append([label, outcome])
    json.dump(out, results, indent=1)
    results.write("\n")
    results.flush()
    epics.ca.finalize_libca()


if __name__ == "__main__":
    main()

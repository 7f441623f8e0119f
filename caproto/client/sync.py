"""The client for code that does not use trio: blocking functions and a small PV object.

A :class:`SyncContext` runs a :class:`~caproto.client.Context` in a background thread with its own
trio loop; every call here hands a coroutine to that thread and waits for its result. The module-level
functions share one such context, started on first use and stopped at interpreter exit::

    from caproto.client import sync

    sync.read("XF:ai").data            # array([1.5])
    sync.write("XF:ao", 2.0, wait=True)
    sub = sync.subscribe("XF:ai", print)
    ...
    sub.clear()

    pv = sync.PV("XF:ai")
    pv.get()                           # 1.5

Subscription and connection callbacks run in the background thread: keep them short, and do not call
the blocking functions from inside them (that would wait for the thread that is running the callback).
"""
from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from caproto.constants import DBE_ALARM, DBE_VALUE
from caproto.messages import EventAddResponse, ReadNotifyResponse, WriteNotifyResponse

from .context import Context
from .environment import ClientSettings
from .errors import ClientError
from .pv import DEFAULT_TIMEOUT, DataType
from .pv import PV as AsyncPV
from .pv import Subscription as AsyncSubscription

__all__ = ["SyncContext", "PV", "SyncSubscription", "ClientError", "read", "write", "subscribe",
           "default_context"]

T = TypeVar("T")
log = logging.getLogger(__name__)


class SyncContext:
    """A client context living in a background thread; use as ``with SyncContext() as ctx`` or
    :meth:`close` it when done."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._context: Context | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="caproto-client", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            if self._ready.is_set():
                log.exception("the caproto client thread stopped")
            else:
                self._error = exc  # raised by the constructor
        finally:
            self._stopped.set()
            self._ready.set()

    async def _main(self) -> None:
        async with Context(self._settings) as context:
            self._context = context
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> SyncContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def context(self) -> Context:
        """The trio :class:`Context` (use it only from the background thread)."""
        if self._context is None or self._stopped.is_set():
            raise ClientError("the context is closed")
        return self._context

    def run(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await function(*args)`` in the context's thread and return its result."""
        if self._token is None or self._stopped.is_set():
            raise ClientError("the context is closed")
        return trio.from_thread.run(function, *args, trio_token=self._token)

    def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in the context's thread and return its result."""
        if self._token is None or self._stopped.is_set():
            raise ClientError("the context is closed")
        return trio.from_thread.run_sync(function, *args, trio_token=self._token)

    def close(self) -> None:
        """Stop the background thread (every PV and subscription of this context ends)."""
        if self._stopped.is_set() or self._stop is None:
            return
        self.run_sync(self._stop.set)
        self._thread.join()

    # --- one-shot operations -------------------------------------------------------------------------

    async def _pv(self, name: str, priority: int, timeout: float | None) -> AsyncPV:
        pv = self.context.create_pv(name, priority)
        await pv.wait_for_connection(timeout)
        return pv

    def read(self, pv_name: str, data_type: DataType = None, count: int | None = None,
             timeout: float | None = DEFAULT_TIMEOUT, priority: int = 0) -> ReadNotifyResponse:
        """Connect if needed and read once (``timeout`` bounds each of the two)."""
        async def read() -> ReadNotifyResponse:
            pv = await self._pv(pv_name, priority, timeout)
            return await pv.read(data_type, count, timeout)
        return self.run(read)

    def write(self, pv_name: str, value: Any, *, data_type: DataType = None, wait: bool = False,
              timeout: float | None = DEFAULT_TIMEOUT, priority: int = 0) -> WriteNotifyResponse | None:
        """Connect if needed and write; ``wait=True`` waits for the put's completion."""
        async def write() -> WriteNotifyResponse | None:
            pv = await self._pv(pv_name, priority, timeout)
            return await pv.write(value, data_type=data_type, wait=wait, timeout=timeout)
        return self.run(write)

    def subscribe(self, pv_name: str, callback: Callable[[EventAddResponse], None], *,
                  data_type: DataType = "time", count: int | None = None, mask: int = DBE_VALUE | DBE_ALARM,
                  priority: int = 0) -> SyncSubscription:
        """Call ``callback(event)`` on every update, from now on, through reconnections, until
        ``clear()``. Does not wait for the connection."""
        def subscribe() -> AsyncSubscription:
            subscription = self.context.create_pv(pv_name, priority).subscribe(data_type, count, mask)
            subscription.add_callback(callback)
            return subscription
        return SyncSubscription(self, self.run_sync(subscribe))


class SyncSubscription:
    """A subscription made by the blocking API; :meth:`clear` ends it."""

    def __init__(self, context: SyncContext, subscription: AsyncSubscription) -> None:
        self._context = context
        self.subscription = subscription

    @property
    def dropped(self) -> int:
        return self.subscription.dropped

    def clear(self) -> None:
        self._context.run_sync(self.subscription.clear)


class PV:
    """A channel for blocking code: ``get``, ``put``, ``subscribe``, connection state and callbacks."""

    def __init__(self, name: str, *, priority: int = 0, context: SyncContext | None = None) -> None:
        self.name = name
        self._context = context if context is not None else default_context()
        self._pv: AsyncPV = self._context.run_sync(self._context.context.create_pv, name, priority)

    def __repr__(self) -> str:
        return f"<sync.PV {self.name!r} {self._pv.state.value}>"

    @property
    def connected(self) -> bool:
        return self._pv.connected

    @property
    def native_type(self) -> int | None:
        return self._pv.native_type

    @property
    def element_count(self) -> int | None:
        return self._pv.element_count

    def wait_for_connection(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Return once connected; :class:`ConnectionTimeout` after ``timeout`` seconds."""
        self._context.run(self._pv.wait_for_connection, timeout)

    def read(self, data_type: DataType = None, count: int | None = None,
             timeout: float | None = DEFAULT_TIMEOUT) -> ReadNotifyResponse:
        """The whole reply: ``.data``, ``.metadata``, ``.data_type``, ``.data_count``."""
        async def read() -> ReadNotifyResponse:
            await self._pv.wait_for_connection(timeout)
            return await self._pv.read(data_type, count, timeout)
        return self._context.run(read)

    def get(self, data_type: DataType = None, count: int | None = None,
            timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """The value: a Python scalar for one element, else the array (or list of strings)."""
        data = self.read(data_type, count, timeout).data
        if len(data) == 1:
            item = data[0]
            return item.item() if hasattr(item, "item") else item
        return data

    def put(self, value: Any, *, wait: bool = False, data_type: DataType = None,
            timeout: float | None = DEFAULT_TIMEOUT) -> WriteNotifyResponse | None:
        async def put() -> WriteNotifyResponse | None:
            await self._pv.wait_for_connection(timeout)
            return await self._pv.write(value, data_type=data_type, wait=wait, timeout=timeout)
        return self._context.run(put)

    def subscribe(self, callback: Callable[[EventAddResponse], None], *, data_type: DataType = "time",
                  count: int | None = None, mask: int = DBE_VALUE | DBE_ALARM) -> SyncSubscription:
        def subscribe() -> AsyncSubscription:
            subscription = self._pv.subscribe(data_type, count, mask)
            subscription.add_callback(callback)
            return subscription
        return SyncSubscription(self._context, self._context.run_sync(subscribe))

    def add_connection_callback(self, callback: Callable[[PV, bool], None]) -> None:
        """``callback(pv, connected)`` on every connection change (in the background thread)."""
        self._context.run_sync(self._pv.add_connection_callback, lambda _pv, up: callback(self, up))

    def close(self) -> None:
        self._context.run(self._pv.close)


_default: SyncContext | None = None
_default_lock = threading.Lock()


def default_context() -> SyncContext:
    """The context the module-level functions share (started on first use, closed at exit)."""
    global _default
    with _default_lock:
        if _default is None or _default._stopped.is_set():
            _default = SyncContext()
            atexit.register(_default.close)
        return _default


def read(pv_name: str, data_type: DataType = None, count: int | None = None,
         timeout: float | None = DEFAULT_TIMEOUT) -> ReadNotifyResponse:
    """Read ``pv_name`` once: the server's reply (``.data``, ``.metadata``)."""
    return default_context().read(pv_name, data_type, count, timeout)


def write(pv_name: str, value: Any, *, data_type: DataType = None, wait: bool = False,
          timeout: float | None = DEFAULT_TIMEOUT) -> WriteNotifyResponse | None:
    """Write ``value`` to ``pv_name``; with ``wait=True`` return once the put has completed."""
    return default_context().write(pv_name, value, data_type=data_type, wait=wait, timeout=timeout)


def subscribe(pv_name: str, callback: Callable[[EventAddResponse], None], *, data_type: DataType = "time",
              count: int | None = None, mask: int = DBE_VALUE | DBE_ALARM) -> SyncSubscription:
    """Call ``callback(event)`` on every update of ``pv_name`` until ``clear()``."""
    return default_context().subscribe(pv_name, callback, data_type=data_type, count=count, mask=mask)

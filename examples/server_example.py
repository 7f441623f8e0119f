"""A tiny Channel Access server on the sans-I/O core, with plain ``socket`` + ``selectors`` (no trio).

It serves two PVs, ``example:double`` and ``example:string``: it answers UDP searches for them and
serves them over TCP (read, write, subscribe; every write posts an update to the subscribers). The port
is EPICS_CAS_SERVER_PORT (default 5064); it binds 127.0.0.1 alone when EPICS_CAS_INTF_ADDR_LIST names it.

    EPICS_CAS_SERVER_PORT=5064 python examples/server_example.py
    caget example:double; caput example:string hi; camonitor example:double
"""
from __future__ import annotations

import logging
import os
import selectors
import socket
import time
from typing import Any

import caproto as ca
from caproto.constants import CA_MINOR_VERSION
from caproto.dbr import native_type

logger = logging.getLogger("server_example")

# name -> [value, time of the last write]; the value's Python type decides the PV's native type
PVS: dict[str, list[Any]] = {"example:double": [3.25, time.time()], "example:string": ["hello", time.time()]}
NATIVE = {float: ca.ChannelType.DOUBLE, str: ca.ChannelType.STRING}


def value_as(name: str, data_type: int) -> tuple[list, ca.Metadata]:
    """The PV's value in the requested DBR type (raises ValueError if it does not convert)."""
    value, stamp = PVS[name]
    if native_type(data_type) == ca.ChannelType.STRING:
        data = [str(value)]
    else:
        data = [float(value)]
    return data, ca.Metadata.from_timestamp(stamp)


def store(name: str, data: Any) -> None:
    """Write the first element of ``data`` (numbers or strings, as the client sent it); raises
    ValueError if it does not convert."""
    value = data[0]
    PVS[name] = [str(value) if isinstance(PVS[name][0], str) else float(value), time.time()]


class Server:
    def __init__(self, host: str, port: int) -> None:
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, port))
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen()
        self.broadcaster = ca.Broadcaster(ca.Role.SERVER)
        self.circuits: dict[socket.socket, ca.VirtualCircuit] = {}
        self.written: set[str] = set()  # PVs written while answering, to post once the answers are out
        self.selector.register(self.udp, selectors.EVENT_READ, self.on_datagram)
        self.selector.register(self.listener, selectors.EVENT_READ, self.on_accept)

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select():
                key.data(key.fileobj)

    def on_datagram(self, udp: socket.socket) -> None:
        data, address = udp.recvfrom(65536)
        try:
            requests = self.broadcaster.recv(data, address)
        except ca.RemoteProtocolError as exc:
            logger.warning("bad datagram from %s: %s", address, exc)
            return
        # 255.255.255.255: "connect to the address this reply came from"
        found = [ca.SearchResponse(self.port, "255.255.255.255", request.cid, CA_MINOR_VERSION)
                 for request in requests if isinstance(request, ca.SearchRequest) and request.name in PVS]
        if found:  # like rsrv, say nothing about names we do not have
            udp.sendto(self.broadcaster.send(ca.VersionResponse(CA_MINOR_VERSION), *found), address)

    def on_accept(self, listener: socket.socket) -> None:
        sock, address = listener.accept()
        circuit = ca.VirtualCircuit(ca.Role.SERVER, address)
        self.circuits[sock] = circuit
        self.selector.register(sock, selectors.EVENT_READ, self.on_data)
        sock.sendall(circuit.send(ca.VersionResponse(CA_MINOR_VERSION)))  # rsrv says hello on accept

    def drop(self, sock: socket.socket) -> None:
        self.circuits.pop(sock).disconnect()
        self.selector.unregister(sock)
        sock.close()

    def on_data(self, sock: socket.socket) -> None:
        circuit = self.circuits[sock]
        try:
            data = sock.recv(65536)
            if not data:
                self.drop(sock)
                return
            circuit.recv(data)
            for command in circuit.commands():
                sock.sendall(circuit.send(*self.answer(circuit, command)))
        except (ca.RemoteProtocolError, OSError) as exc:
            logger.warning("dropping %s: %s", circuit.address, exc)
            self.drop(sock)
        while self.written:
            self.post(self.written.pop())

    def answer(self, circuit: ca.VirtualCircuit, command: Any) -> list:
        """The messages that answer one request."""
        if isinstance(command, ca.CreateChanRequest):
            channel = circuit.channels[command.cid]
            if channel.name not in PVS:
                return [channel.fail()]
            return channel.create(NATIVE[type(PVS[channel.name][0])], 1)
        if isinstance(command, ca.EchoRequest):
            return [ca.EchoResponse()]
        if not hasattr(command, "sid"):
            return []  # HOST_NAME, CLIENT_NAME, EVENTS_ON/OFF...: nothing to answer
        channel = circuit.channels_by_sid[command.sid]
        try:
            if isinstance(command, (ca.ReadNotifyRequest, ca.ReadRequest)):
                data, md = value_as(channel.name, command.data_type)
                return [channel.read(data, command.ioid, md)]
            if isinstance(command, (ca.WriteNotifyRequest, ca.WriteRequest)):
                store(channel.name, command.data)
                self.written.add(channel.name)
                return [channel.write(command.ioid)] if isinstance(command, ca.WriteNotifyRequest) else []
            if isinstance(command, ca.EventAddRequest):
                data, md = value_as(channel.name, command.data_type)
                return [channel.update(command.subscriptionid, data, md)]
        except ValueError as exc:
            return [channel.error(command, ca.ECA.NOCONVERT, str(exc))]
        if isinstance(command, ca.EventCancelRequest):
            return [channel.unsubscribe(command.subscriptionid)]
        if isinstance(command, ca.ClearChannelRequest):
            return [channel.clear()]
        return []

    def post(self, name: str) -> None:
        """Send the new value of ``name`` to every subscriber."""
        for sock, circuit in list(self.circuits.items()):
            updates = []
            for subscription in circuit.subscriptions.values():
                if subscription.channel.name == name:
                    try:
                        data, md = value_as(name, subscription.request.data_type)
                    except ValueError:
                        continue  # a string that is no number, to a numeric subscriber: nothing to send
                    updates.append(subscription.channel.update(subscription.subscriptionid, data, md))
            if updates:
                try:
                    sock.sendall(circuit.send(*updates))
                except OSError:
                    self.drop(sock)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("EPICS_CAS_SERVER_PORT", "5064"))
    interfaces = os.environ.get("EPICS_CAS_INTF_ADDR_LIST", "").split()
    host = "127.0.0.1" if "127.0.0.1" in interfaces else "0.0.0.0"
    server = Server(host, port)
    logger.info("serving %s on %s:%d", ", ".join(PVS), host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("stopped")


if __name__ == "__main__":
    main()

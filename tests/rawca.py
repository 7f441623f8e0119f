"""A raw CA circuit for wire-level tests: headers packed by hand, one channel created."""
from __future__ import annotations

import socket
import struct


def header(command: int, size: int, data_type: int, count: int, p1: int, p2: int) -> bytes:
    return struct.pack(">HHHHII", command, size, data_type, count, p1, p2)


def connect(port: int, pv: str) -> tuple[socket.socket, int]:
    """A circuit to 127.0.0.1:``port`` with one channel to ``pv``: (socket, the server's sid)."""
    name = pv.encode() + b"\0"
    name += b"\0" * (-len(name) % 8)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(header(0, 0, 0, 13, 0, 0) + header(18, len(name), 0, 0, 1, 13) + name)
    buffer = b""
    while True:   # VERSION, ACCESS_RIGHTS, then the CREATE_CHAN reply
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"server closed the circuit before {pv!r} was created")
        buffer += chunk
        while len(buffer) >= 16:
            command, size, _, _, _, p2 = struct.unpack(">HHHHII", buffer[:16])
            if len(buffer) < 16 + size:
                break
            buffer = buffer[16 + size:]
            if command == 18:
                return sock, p2

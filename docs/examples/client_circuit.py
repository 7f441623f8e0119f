"""A Channel Access client circuit without sockets: open a channel, read it, decode the answer."""
import caproto as ca


def caget(name: str, exchange) -> tuple:
    """(value, metadata) of ``name``. ``exchange(bytes) -> bytes`` carries our bytes to a server and
    brings back its answer: a socket's sendall + recv, or anything else."""
    circuit = ca.VirtualCircuit(ca.Role.CLIENT, ("127.0.0.1", 5064), priority=0)
    channel = ca.ClientChannel(name, circuit)
    hello = [ca.VersionRequest(0, 13), ca.HostNameRequest("here"), ca.ClientNameRequest("me"),
             channel.create()]
    circuit.recv(exchange(circuit.send(*hello)))
    list(circuit.commands())  # VERSION, ACCESS_RIGHTS, CREATE_CHAN: now the channel is connected
    circuit.recv(exchange(circuit.send(channel.read(ca.ChannelType.TIME_DOUBLE))))
    (reply,) = circuit.commands()
    return reply.data[0], reply.metadata


if __name__ == "__main__":
    from server_circuit import Server  # the other example: a server circuit, also without a socket

    value, md = caget("demo:ai", Server({"demo:ai": [3.25]}).exchange)
    print(f"demo:ai = {value} at {md.timestamp} (status {md.status}, severity {md.severity})")

"""A Channel Access server circuit without sockets: bytes from a client in, the answers out."""
import caproto as ca


class Server:
    """Serves the PVs in ``pvs`` (name -> list of doubles) to one client."""

    def __init__(self, pvs: dict[str, list[float]]) -> None:
        self.pvs = pvs
        self.circuit = ca.VirtualCircuit(ca.Role.SERVER, ("127.0.0.1", 40000))
        self.greeting = self.circuit.send(ca.VersionResponse(13))  # rsrv says hello on accept

    def exchange(self, data: bytes) -> bytes:
        """Everything the server answers to ``data``."""
        self.circuit.recv(data)
        answers, self.greeting = [self.greeting], b""
        for command in self.circuit.commands():
            if isinstance(command, ca.CreateChanRequest):
                channel = self.circuit.channels[command.cid]
                known = channel.name in self.pvs
                reply = channel.create(ca.ChannelType.DOUBLE, 1) if known else [channel.fail()]
            elif isinstance(command, ca.ReadNotifyRequest):
                channel = self.circuit.channels_by_sid[command.sid]
                stamp = ca.Metadata.from_timestamp(1_700_000_000.0)
                reply = [channel.read(self.pvs[channel.name], command.ioid, stamp)]
            elif isinstance(command, ca.ClearChannelRequest):
                reply = [self.circuit.channels_by_sid[command.sid].clear()]
            else:
                reply = []  # HOST_NAME, CLIENT_NAME, ...: nothing to answer
            answers.append(self.circuit.send(*reply))
        return b"".join(answers)


if __name__ == "__main__":
    from client_circuit import caget  # the other example: a client circuit, also without a socket

    server = Server({"demo:ai": [3.25]})
    value, _ = caget("demo:ai", server.exchange)
    print(f"served demo:ai = {value} to {server.circuit.client_username}@{server.circuit.client_hostname}")

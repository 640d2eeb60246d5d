"""A minimal PostgreSQL protocol 3.0 client for tests that need exact control of the bytes."""
import socket
import time
import struct


def cstr(text):
    return text.encode() + b"\0"


def frame(kind, body=b""):
    return kind + struct.pack("!i", len(body) + 4) + body


def startup(user, database, **parameters):
    body = struct.pack("!i", 196608) + cstr("user") + cstr(user) + cstr("database") + cstr(database)
    for name, value in parameters.items():
        body += cstr(name) + cstr(value)
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def query(sql):
    return frame(b"Q", cstr(sql))


def parse(sql, name="", types=()):
    """Parse; `types` are the parameter type OIDs the client declares (0: unspecified)."""
    return frame(b"P", cstr(name) + cstr(sql) + struct.pack("!h", len(types)) + b"".join(struct.pack("!I", oid) for oid in types))


def bind(statement="", portal="", parameters=()):
    """Bind with text parameters and text results."""
    values = b"".join(struct.pack("!i", len(value.encode())) + value.encode() for value in parameters)
    return frame(b"B", cstr(portal) + cstr(statement) + struct.pack("!hh", 0, len(parameters)) + values + struct.pack("!h", 0))


def execute(portal=""):
    return frame(b"E", cstr(portal) + struct.pack("!i", 0))


def describe_portal(portal=""):
    return frame(b"D", b"P" + cstr(portal))


def describe_statement(statement=""):
    return frame(b"D", b"S" + cstr(statement))


def close_statement(statement=""):
    return frame(b"C", b"S" + cstr(statement))


def close_portal(portal=""):
    return frame(b"C", b"P" + cstr(portal))


SYNC = frame(b"S")
TERMINATE = frame(b"X")


class Connection:
    def __init__(self, port, key, user="agent", database="postgres", **parameters):
        # A generous bound: only a broken run waits this long, however loaded the machine.
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buffer = b""
        self.sock.sendall(startup(user, database, **parameters))
        kind, body = self.read()
        if kind == b"E":
            raise ConnectionRefusedError(fields(body))
        assert kind == b"R" and struct.unpack("!i", body[:4])[0] == 3, (kind, body)
        self.sock.sendall(frame(b"p", cstr(key)))
        self.parameters = {}
        while True:
            kind, body = self.read()
            if kind == b"E":
                raise ConnectionRefusedError(fields(body))
            if kind == b"S":
                name, value = body.split(b"\0")[:2]
                self.parameters[name.decode()] = value.decode()
            if kind == b"K":
                self.cancel_key = struct.unpack("!ii", body)
            if kind == b"Z":
                break

    def send(self, data):
        self.sock.sendall(data)

    def read(self):
        while len(self.buffer) < 5 or len(self.buffer) < 1 + struct.unpack("!i", self.buffer[1:5])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buffer += chunk
        length = struct.unpack("!i", self.buffer[1:5])[0]
        kind, body, self.buffer = self.buffer[:1], self.buffer[5:1 + length], self.buffer[1 + length:]
        return kind, body

    def read_until_ready(self):
        """Messages up to and including ReadyForQuery, as (type, body) pairs."""
        messages = []
        while True:
            kind, body = self.read()
            messages.append((kind, body))
            if kind == b"Z":
                return messages

    def close(self):
        try:
            self.sock.sendall(TERMINATE)
        except OSError:
            pass
        self.sock.close()


def eventually(attempt, what, seconds=60):
    """Calls attempt() until it returns something true, for up to `seconds`; for state another
    process reaches on its own schedule (a close noticed, a record flushed), never for a race the
    test could lose: the generous bound only stops a broken run."""
    deadline = time.monotonic() + seconds
    while True:
        result = attempt()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what() if callable(what) else what}: not within {seconds} s"
        time.sleep(0.05)


def log_in_when_a_slot_is_free(port, key, **parameters):
    """A logged-in connection, waiting while Palisade is still letting earlier connections go."""
    def attempt():
        try:
            return Connection(port, key, **parameters)
        except ConnectionRefusedError as error:
            assert error.args[0]["C"] == "53300", error.args[0]
            return None
    return eventually(attempt, "a connection slot")


def fields(body):
    """An ErrorResponse's fields by code."""
    result = {}
    for part in body.split(b"\0"):
        if part:
            result[chr(part[0])] = part[1:].decode()
    return result


def kinds(messages):
    return b"".join(kind for kind, _ in messages).decode()


def values(messages):
    """The first column of every DataRow, as text (None for NULL)."""
    result = []
    for kind, body in messages:
        if kind == b"D":
            length = struct.unpack("!i", body[2:6])[0]
            result.append(None if length < 0 else body[6:6 + length].decode())
    return result

"""What the libnice and aioice drivers share: the command line of `harness peer`, its JSON
lines (docs/peer.md) and its data check, done the way a third party does it in the wild.

The data check differs from `harness peer` in one way on purpose: each ping is sent exactly
once, when the agent is ready, and never again. A ping the other side loses is lost; the run
then fails, as a call with a real libnice or aiortc peer would.
"""

import argparse
import json
import os
import sys

# Random bytes after `ping <i> `, as `harness peer`.
PING_RANDOM = 16


def parse_args(description, extra=None):
    """The options of `harness peer` that a third-party driver supports, and the driver's own
    (`extra(parser)` adds them)."""
    p = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(p)
    p.add_argument("--controlling", action="store_true")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--stun", metavar="HOST:PORT")
    p.add_argument("--turn", nargs=3, metavar=("HOST:PORT", "USER", "PASS"))
    p.add_argument("--turn-transport", choices=["udp", "tcp"], default="udp")
    p.add_argument("--relay-only", action="store_true")
    # ICE-TCP (RFC 6544). A third party that has it runs TCP only, UDP off, so that a run
    # shows TCP carrying the call; `harness peer --ice-tcp` adds TCP to UDP.
    p.add_argument("--ice-tcp", action="store_true")
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--timeout", type=float, default=30.0)
    o = p.parse_args()
    if o.relay_only and not o.turn:
        p.error("--relay-only needs --turn")
    return o


def split_host_port(s):
    """`127.0.0.1:3478` or `[::1]:3478` -> (host, port)."""
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


class Lines:
    """stdout for JSON lines only: whatever else the process writes to file descriptor 1
    (GLib's and libnice's logging) is moved to stderr."""

    def __init__(self):
        sys.stdout.flush()
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def emit(self, obj):
        try:
            self._out.write(json.dumps(obj) + "\n")
            self._out.flush()
        except (BrokenPipeError, ValueError):
            # The other side of the pipe is gone: nothing left to tell anyone.
            pass

    def log(self, msg):
        self.emit({"type": "log", "msg": msg})

    def event(self, signal, **fields):
        self.emit({"type": "event", "signal": signal, **fields})

    def result(self, ok, reason):
        self.emit({"type": "result", "status": "pass" if ok else "fail", "reason": reason})


def parse_signal(line):
    """A line from the other side -> (type, object), or (None, None) for lines to ignore."""
    try:
        v = json.loads(line)
    except ValueError:
        print(f"driver: ignored a line that is not JSON: {line!r}", file=sys.stderr)
        return None, None
    if not isinstance(v, dict):
        return None, None
    kind = v.get("type")
    if kind in ("credentials", "candidate", "end-of-candidates", "data-done"):
        return kind, v
    return None, None


def bare_candidate(candidate):
    """`a=candidate:1 1 udp …` or `candidate:1 1 udp …` -> `1 1 udp …`."""
    c = candidate.strip()
    if c.startswith("a="):
        c = c[2:]
    if c.startswith("candidate:"):
        c = c[len("candidate:"):]
    return c


class DataCheck:
    """Our pings (each sent once), the echoes we saw, and the other side's data-done."""

    def __init__(self, count, lines):
        self.lines = lines
        self.pings = {}
        for i in range(count):
            suffix = f"{i} ".encode() + os.urandom(PING_RANDOM)
            self.pings[suffix] = False
        self.sent = False
        self.done = count == 0
        self.remote_done = False
        self.received_pings = 0

    def echoed(self):
        return sum(1 for v in self.pings.values() if v)

    def pings_to_send(self):
        """The pings, the first time this is called; nothing ever after."""
        if self.sent:
            return []
        self.sent = True
        if self.done:
            self.lines.emit({"type": "data-done"})
        return [b"ping " + s for s in self.pings]

    def receive(self, data):
        """A datagram from the other side; returns the answer to send, if any."""
        if data.startswith(b"ping "):
            self.received_pings += 1
            return b"pong " + data[5:]
        if data.startswith(b"pong "):
            suffix = data[5:]
            if suffix in self.pings:
                self.pings[suffix] = True
            if not self.done and self.echoed() == len(self.pings):
                self.done = True
                self.lines.log(f"all {len(self.pings)} pings echoed")
                self.lines.emit({"type": "data-done"})
            return None
        print(f"driver: {len(data)} bytes of data that is no ping or pong", file=sys.stderr)
        return None

    def verdict(self):
        """(exit code, pass?, reason) once the run is over, or None while it goes on."""
        if self.done and self.remote_done:
            return 0, True, (
                f"all {len(self.pings)} pings echoed (each sent once); "
                "the other side's data-done arrived"
            )
        return None

    def incomplete(self, why):
        """The reason for a failed data check."""
        return (
            f"{why}: {self.echoed()} of {len(self.pings)} pings echoed (each sent once), "
            f"{self.received_pings} pings of the other side answered, "
            f"its data-done {'arrived' if self.remote_done else 'did not arrive'}"
        )

#!/usr/bin/python3
"""A libnice agent that speaks the JSON lines of `harness peer` (docs/peer.md), for the ICE
interop suite (harness/tests/ice_interop). Run it with Debian's /usr/bin/python3, which has
python3-gi; libnice is Debian's libnice10 through its GObject introspection (gir1.2-nice-0.1).

The agent is created as `nice_agent_new_full` with RFC 5245 compatibility and trickle ICE, and
libnice's defaults otherwise: aggressive nomination, unless `--nomination regular` asks for the
regular nomination that GStreamer's webrtcbin asks for. It sends each ping once, when
its component is READY, and answers each ping it receives once.

Two calls go through ctypes on libnice.so.10 because the typelib cannot make them:
`nice_agent_attach_recv` is hidden (without a receive callback the agent never reads its
sockets) and `nice_agent_send` takes its buffer as a UTF-8 string, unsafe for binary data.
"""

import ctypes
import sys
import threading

import gi

gi.require_version("Nice", "0.1")
from gi.repository import GLib, Nice  # noqa: E402

import thirdparty  # noqa: E402

COMPONENT = 1

_nice = ctypes.CDLL("libnice.so.10")
_glib = ctypes.CDLL("libglib-2.0.so.0")
RECV_FUNC = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p,
    ctypes.c_void_p,
)
_nice.nice_agent_attach_recv.argtypes = [
    ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, RECV_FUNC, ctypes.c_void_p,
]
_nice.nice_agent_attach_recv.restype = ctypes.c_int
_nice.nice_agent_send.argtypes = [
    ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_char_p,
]
_nice.nice_agent_send.restype = ctypes.c_int
_glib.g_main_context_default.restype = ctypes.c_void_p
ctypes.pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
ctypes.pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def gobject_pointer(obj):
    """The C pointer of a PyGObject object."""
    return ctypes.pythonapi.PyCapsule_GetPointer(obj.__gpointer__, None)


class Driver:
    def __init__(self, o):
        self.o = o
        self.lines = thirdparty.Lines()
        self.check = thirdparty.DataCheck(o.count, self.lines)
        self.loop = GLib.MainLoop()
        self.code = None
        self.state = "new"
        # Answers to pings that arrived before libnice could send, sent at READY.
        self.held = []
        options = Nice.AgentOption.ICE_TRICKLE
        if o.nomination == "regular":
            options |= Nice.AgentOption.REGULAR_NOMINATION
        self.agent = Nice.Agent.new_full(
            GLib.MainContext.default(), Nice.Compatibility.RFC5245, options
        )
        self.agent.set_property("controlling-mode", o.controlling)
        # libnice gathers TCP candidates by default; --ice-tcp turns UDP off.
        self.agent.set_property("ice-tcp", True)
        if o.ice_tcp:
            self.agent.set_property("ice-udp", False)
        address = Nice.Address.new()
        if not address.set_from_string(o.ip):
            raise SystemExit(f"--ip {o.ip}: not an address")
        self.agent.add_local_address(address)
        if o.stun:
            host, port = thirdparty.split_host_port(o.stun)
            self.agent.set_property("stun-server", host)
            self.agent.set_property("stun-server-port", port)
        if o.relay_only:
            self.agent.set_property("force-relay", True)
        self.stream = self.agent.add_stream(1)
        if o.turn:
            host, port = thirdparty.split_host_port(o.turn[0])
            relay = (
                Nice.RelayType.TCP if o.turn_transport == "tcp" else Nice.RelayType.UDP
            )
            self.agent.set_relay_info(
                self.stream, COMPONENT, host, port, o.turn[1], o.turn[2], relay
            )
        self.agent.connect("new-candidate-full", self.on_candidate)
        self.agent.connect("candidate-gathering-done", self.on_gathering_done)
        self.agent.connect("component-state-changed", self.on_state)
        self.agent.connect("new-selected-pair-full", self.on_selected_pair)
        self.recv_func = RECV_FUNC(self.on_recv)
        self.pointer = gobject_pointer(self.agent)
        if not _nice.nice_agent_attach_recv(
            self.pointer, self.stream, COMPONENT, _glib.g_main_context_default(),
            self.recv_func, None,
        ):
            raise SystemExit("nice_agent_attach_recv failed")

    def run(self):
        ok, ufrag, pwd = self.agent.get_local_credentials(self.stream)
        if not ok:
            raise SystemExit("no local credentials")
        self.lines.emit({"type": "credentials", "ufrag": ufrag, "pwd": pwd})
        if not self.agent.gather_candidates(self.stream):
            self.finish(2, False, "gathering did not start")
        threading.Thread(target=self.read_stdin, daemon=True).start()
        GLib.timeout_add(int(self.o.timeout * 1000), self.on_timeout)
        self.loop.run()
        return self.code

    # Signalling.
    def read_stdin(self):
        for line in sys.stdin:
            GLib.idle_add(self.on_line, line)
        GLib.idle_add(self.on_stdin_closed)

    def on_line(self, line):
        kind, v = thirdparty.parse_signal(line)
        if kind == "credentials":
            self.agent.set_remote_credentials(self.stream, v["ufrag"], v["pwd"])
        elif kind == "candidate":
            sdp = "a=candidate:" + thirdparty.bare_candidate(v["candidate"])
            candidate = self.agent.parse_remote_candidate_sdp(self.stream, sdp)
            if candidate is None:
                print(f"libnice driver: candidate not parsed: {sdp}", file=sys.stderr)
            else:
                self.agent.set_remote_candidates(self.stream, COMPONENT, [candidate])
        elif kind == "end-of-candidates":
            self.agent.peer_candidate_gathering_done(self.stream)
        elif kind == "data-done":
            self.check.remote_done = True
            self.maybe_finish()
        return False

    def on_stdin_closed(self):
        if self.code is None:
            self.finish(1, False, self.check.incomplete("the other side exited"))
        return False

    # Agent signals.
    def on_candidate(self, agent, candidate):
        sdp = agent.generate_local_candidate_sdp(candidate)
        self.lines.emit({"type": "candidate", "candidate": sdp.removeprefix("a=")})

    def on_gathering_done(self, agent, stream):
        self.lines.emit({"type": "end-of-candidates"})

    def on_state(self, agent, stream, component, state):
        self.state = Nice.ComponentState(state).value_nick
        self.lines.event("component-state-changed", component=component, state=self.state)
        if self.state == "ready":
            for ping in self.check.pings_to_send():
                self.send(ping)
            held, self.held = self.held, []
            for answer in held:
                self.send(answer)
            self.maybe_finish()
        elif self.state == "failed":
            self.finish(1, False, "ICE failed: the component went to failed")

    def on_selected_pair(self, agent, stream, component, local, remote):
        self.lines.event(
            "new-selected-pair",
            component=component,
            local=agent.generate_local_candidate_sdp(local).removeprefix("a="),
            remote=agent.generate_local_candidate_sdp(remote).removeprefix("a="),
        )

    def on_recv(self, agent, stream, component, length, buf, user_data):
        reply = self.check.receive(ctypes.string_at(buf, length))
        if reply is not None:
            if self.state == "ready":
                self.send(reply)
            else:
                self.lines.log(f"holding an answer until READY (component {self.state})")
                self.held.append(reply)
        self.maybe_finish()

    # Data and the end.
    def send(self, datagram):
        sent = _nice.nice_agent_send(self.pointer, self.stream, COMPONENT, len(datagram), datagram)
        if sent != len(datagram):
            print(f"libnice driver: {datagram[:6]!r}… not sent ({sent})", file=sys.stderr)

    def maybe_finish(self):
        verdict = self.check.verdict()
        if verdict is not None and self.code is None:
            self.finish(*verdict)

    def on_timeout(self):
        if self.code is None:
            if self.state == "ready":
                self.finish(1, False, self.check.incomplete(f"timeout after {self.o.timeout} s"))
            else:
                reason = f"timeout after {self.o.timeout} s in component state {self.state}"
                self.finish(2, False, reason)
        return False

    def finish(self, code, ok, reason):
        self.code = code
        self.lines.result(ok, reason)
        # Release TURN allocations as an application closing its agent does, within a second.
        self.agent.close_async(lambda *args: self.loop.quit())
        GLib.timeout_add(1000, lambda: self.loop.quit() or False)


def main():
    def nomination(p):
        p.add_argument("--nomination", choices=["aggressive", "regular"], default="aggressive")

    o = thirdparty.parse_args(
        "libnice (Debian libnice10) speaking harness peer's JSON lines", nomination
    )
    sys.exit(Driver(o).run())


if __name__ == "__main__":
    main()

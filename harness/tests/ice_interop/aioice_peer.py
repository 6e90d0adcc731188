"""An aioice agent that speaks the JSON lines of `harness peer` (docs/peer.md), for the ICE
interop suite (harness/tests/ice_interop). Run it with the Python that has the pinned aioice
(.ci/run installs it into a virtual environment).

The agent is used as aiortc uses it: `Connection` with its defaults, candidates gathered first
and signalled at once, `connect()` once the other side's credentials are in, data with
`send`/`recv` after it returns. It sends each ping once, after `connect()` returns, and answers
each ping it receives once.

aioice leaves loopback addresses out of gathering; like every embedding that is told which
address to use, the driver gives it the one address of `--ip`.
"""

import asyncio
import sys
import threading

import aioice
import aioice.ice

import thirdparty


class Driver:
    def __init__(self, o):
        self.o = o
        self.lines = thirdparty.Lines()
        self.check = thirdparty.DataCheck(o.count, self.lines)
        ipv6 = ":" in o.ip
        # The one host address of --ip (aioice skips 127.0.0.1 and ::1 on its own).
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [o.ip]
        kwargs = {}
        if o.stun:
            kwargs["stun_server"] = thirdparty.split_host_port(o.stun)
        if o.turn:
            kwargs["turn_server"] = thirdparty.split_host_port(o.turn[0])
            kwargs["turn_username"] = o.turn[1]
            kwargs["turn_password"] = o.turn[2]
            kwargs["turn_transport"] = o.turn_transport
        if o.relay_only:
            kwargs["transport_policy"] = aioice.TransportPolicy.RELAY
        self.connection = aioice.Connection(
            ice_controlling=o.controlling, use_ipv4=not ipv6, use_ipv6=ipv6, **kwargs
        )
        self.remote_credentials = None
        self.connected = False
        self.stdin_closed = False
        self.wake = asyncio.Event()
        self.incoming = asyncio.Queue()

    async def run(self):
        loop = asyncio.get_running_loop()
        self.lines.log(f"aioice {aioice.__version__}")
        self.lines.emit({
            "type": "credentials",
            "ufrag": self.connection.local_username,
            "pwd": self.connection.local_password,
        })
        threading.Thread(target=self.read_stdin, args=(loop,), daemon=True).start()
        signalling = asyncio.create_task(self.signalling())
        try:
            return await asyncio.wait_for(self.session(), self.o.timeout)
        except asyncio.TimeoutError:
            if self.connected:
                return self.finish(1, False, self.check.incomplete(
                    f"timeout after {self.o.timeout} s"))
            return self.finish(2, False, f"timeout after {self.o.timeout} s before connected")
        finally:
            signalling.cancel()
            await self.connection.close()

    async def session(self):
        await self.connection.gather_candidates()
        for c in self.connection.local_candidates:
            self.lines.emit({"type": "candidate", "candidate": "candidate:" + c.to_sdp()})
        self.lines.emit({"type": "end-of-candidates"})
        while self.remote_credentials is None:
            if self.stdin_closed:
                return self.finish(2, False, "stdin closed before the other side's credentials")
            await self.wait()
        (self.connection.remote_username, self.connection.remote_password) = (
            self.remote_credentials
        )
        try:
            await self.connection.connect()
        except ConnectionError as e:
            return self.finish(1, False, f"ICE failed: {e}")
        self.connected = True
        pair = self.connection._nominated.get(1)
        if pair is not None:
            self.lines.event(
                "new-selected-pair",
                component=1,
                local="candidate:" + pair.local_candidate.to_sdp(),
                remote="candidate:" + pair.remote_candidate.to_sdp(),
            )
        self.lines.event("connected")
        for ping in self.check.pings_to_send():
            await self.connection.send(ping)
        receiver = asyncio.create_task(self.receive())
        try:
            while True:
                verdict = self.check.verdict()
                if verdict is not None:
                    return self.finish(*verdict)
                if self.stdin_closed:
                    return self.finish(1, False, self.check.incomplete("the other side exited"))
                await self.wait()
        finally:
            receiver.cancel()

    async def receive(self):
        while True:
            data = await self.connection.recv()
            reply = self.check.receive(data)
            if reply is not None:
                await self.connection.send(reply)
            self.wake.set()

    async def wait(self):
        await self.wake.wait()
        self.wake.clear()

    # Signalling.
    def read_stdin(self, loop):
        for line in sys.stdin:
            loop.call_soon_threadsafe(self.incoming.put_nowait, line)
        loop.call_soon_threadsafe(self.incoming.put_nowait, None)

    async def signalling(self):
        """The other side's lines, in their order."""
        while True:
            line = await self.incoming.get()
            if line is None:
                self.stdin_closed = True
                self.wake.set()
                return
            await self.on_line(line)

    async def on_line(self, line):
        kind, v = thirdparty.parse_signal(line)
        if kind == "credentials":
            self.remote_credentials = (v["ufrag"], v["pwd"])
        elif kind == "candidate":
            sdp = thirdparty.bare_candidate(v["candidate"])
            try:
                candidate = aioice.Candidate.from_sdp(sdp)
            except ValueError as e:
                print(f"aioice driver: candidate not parsed ({e}): {sdp}", file=sys.stderr)
                return
            await self.connection.add_remote_candidate(candidate)
        elif kind == "end-of-candidates":
            await self.connection.add_remote_candidate(None)
        elif kind == "data-done":
            self.check.remote_done = True
        self.wake.set()

    def finish(self, code, ok, reason):
        self.lines.result(ok, reason)
        return code


def main():
    o = thirdparty.parse_args("aioice speaking harness peer's JSON lines")
    sys.exit(asyncio.run(Driver(o).run()))


if __name__ == "__main__":
    main()

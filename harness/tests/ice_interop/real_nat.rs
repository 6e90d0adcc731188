//! Real Linux NATs between the agents: network namespaces the test creates, each agent on a
//! private network behind a router namespace whose nftables NAT is either `masquerade`
//! (endpoint-independent mapping while the port is free, address-and-port-dependent filtering
//! by connection tracking: a port-restricted cone) or `masquerade random` (a new port per
//! destination: symmetric). The routers meet on a "public" bridge where coturn serves STUN and
//! TURN. As on the internet, every address is routable and a private one leads nowhere: the
//! routers' default route points at the public side, which does not forward, and the public
//! side's own default route leads into a veth pair to a gateway that is not there (a fixed
//! neighbour entry, so no ARP failure comes back): a datagram to it vanishes without an error.
//! (A blackhole route would not do: it fails the sender with EINVAL.) Without that, coturn's relay socket got
//! "network unreachable" sending to a peer's private host address and coturn closed the whole
//! allocation, which no real deployment sees. Nothing leaves the namespaces.
//!
//! ```text
//!  a 10.0.1.2 ── 10.0.1.1 [router a, NAT] 203.0.113.11 ─┐
//!                                                       ├─ bridge, coturn 203.0.113.1:3478
//!  b 10.0.2.2 ── 10.0.2.1 [router b, NAT] 203.0.113.12 ─┘
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::missing;

/// A router's NAT, as nftables makes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// `masquerade`: a port-restricted cone.
    Cone,
    /// `masquerade random`: symmetric.
    Symmetric,
}

impl NatKind {
    pub fn name(self) -> &'static str {
        match self {
            NatKind::Cone => "port-restricted cone (masquerade)",
            NatKind::Symmetric => "symmetric (masquerade random)",
        }
    }
}

/// The public address the servers listen on.
pub const PUBLIC_SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

/// One side of the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    fn letter(self) -> char {
        match self {
            Side::A => 'a',
            Side::B => 'b',
        }
    }

    /// The agent's address on its private network.
    pub fn host_ip(self) -> IpAddr {
        match self {
            Side::A => IpAddr::V4(Ipv4Addr::new(10, 0, 1, 2)),
            Side::B => IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)),
        }
    }
}

/// The namespaces of one batch, deleted when it is dropped.
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// Builds the namespaces with these NATs in front of A and B; `None` after the message of
    /// a missing prerequisite (root, `ip`, `nft`).
    pub fn build(a: NatKind, b: NatKind) -> Option<Topology> {
        if !available() {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Interface names stay below 15 bytes: "<prefix>-wa".
        let prefix = format!("rn{}x{n}", std::process::id() % 100_000);
        let topology = Topology { prefix };
        let p = &topology.prefix;
        let mut script = String::from("set -e\n");
        for ns in ["pub", "na", "nb", "a", "b"] {
            script += &format!("ip netns add {p}-{ns}\nip -n {p}-{ns} link set lo up\n");
        }
        script += &format!(
            "ip -n {p}-pub link add br0 type bridge\n\
             ip -n {p}-pub addr add {PUBLIC_SERVER}/24 dev br0\n\
             ip -n {p}-pub link set br0 up\n\
             ip -n {p}-pub link add sink0 type veth peer name sink1\n\
             ip -n {p}-pub link set sink0 up\n\
             ip -n {p}-pub link set sink1 up\n\
             ip -n {p}-pub addr add 198.18.0.1/30 dev sink0\n\
             ip -n {p}-pub neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev sink0 nud permanent\n\
             ip -n {p}-pub route add default via 198.18.0.2 dev sink0\n"
        );
        for (side, kind, i) in [(Side::A, a, 1), (Side::B, b, 2)] {
            let s = side.letter();
            let random = if kind == NatKind::Symmetric {
                " random"
            } else {
                ""
            };
            script += &format!(
                "ip link add {p}-w{s} type veth peer name {p}-p{s}\n\
                 ip link set {p}-w{s} netns {p}-n{s} name wan\n\
                 ip link set {p}-p{s} netns {p}-pub name p{s}\n\
                 ip -n {p}-pub link set p{s} master br0 up\n\
                 ip -n {p}-n{s} addr add 203.0.113.1{i}/24 dev wan\n\
                 ip -n {p}-n{s} link set wan up\n\
                 ip link add {p}-l{s} type veth peer name {p}-h{s}\n\
                 ip link set {p}-l{s} netns {p}-n{s} name lan\n\
                 ip link set {p}-h{s} netns {p}-{s} name eth0\n\
                 ip -n {p}-n{s} addr add 10.0.{i}.1/24 dev lan\n\
                 ip -n {p}-n{s} link set lan up\n\
                 ip -n {p}-{s} addr add {host}/24 dev eth0\n\
                 ip -n {p}-{s} link set eth0 up\n\
                 ip -n {p}-{s} route add default via 10.0.{i}.1\n\
                 ip -n {p}-n{s} route add default via {PUBLIC_SERVER} dev wan\n\
                 ip netns exec {p}-n{s} sysctl -qw net.ipv4.ip_forward=1\n\
                 printf '{rules}' | ip netns exec {p}-n{s} nft -f -\n",
                host = side.host_ip(),
                rules = router_rules(random).replace('\n', "\\n"),
            );
        }
        let out = Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "building the namespaces failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(topology)
    }

    /// `command`, run in the namespace of `side`'s agent.
    pub fn on_side(&self, side: Side, command: &Command) -> Command {
        self.inside(&format!("{}-{}", self.prefix, side.letter()), command)
    }

    /// `command`, run in the public namespace (where the servers are).
    pub fn in_public(&self, command: &Command) -> Command {
        self.inside(&format!("{}-pub", self.prefix), command)
    }

    fn inside(&self, namespace: &str, command: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", namespace])
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(v) => wrapped.env(key, v),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    }

    /// Waits until the server at `address` in the public namespace answers a STUN Binding
    /// request from side A's namespace (through A's NAT), 5 s at most.
    pub fn wait_until_answering(&self, address: SocketAddr) {
        let probe = format!(
            "import socket,time\n\
             s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(0.05)\n\
             r=bytes([0,1,0,0,0x21,0x12,0xa4,0x42])+b'ice-interop!'\n\
             end=time.time()+5\n\
             while time.time()<end:\n \
             s.sendto(r,('{}',{}))\n \
             try:\n  d=s.recv(1500)\n  \
             if len(d)>=20 and d[8:20]==r[8:20]: raise SystemExit(0)\n \
             except socket.timeout: pass\n\
             raise SystemExit(1)\n",
            address.ip(),
            address.port()
        );
        let mut python = Command::new(crate::DEBIAN_PYTHON);
        python.args(["-c", &probe]);
        let status = self
            .on_side(Side::A, &python)
            .stdout(Stdio::null())
            .status()
            .expect("run the probe");
        assert!(
            status.success(),
            "the server at {address} did not answer through the NAT within 5 s"
        );
    }
}

/// A home router's nftables: the NAT (`masquerade`, `random` for a symmetric one) and the
/// firewall every such router has, which drops what arrives from the WAN side unasked. The
/// firewall matters beyond realism: without it an early check from the peer reaches the
/// router itself, draws an ICMP error and leaves a connection-tracking entry whose reply
/// tuple then clashes with the agent's own first check to that peer, which masquerade then
/// moves to another port, so hole punching fails even between two cones.
fn router_rules(random: &str) -> String {
    format!(
        "table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname \"wan\" masquerade{random}
  }}
}}
table inet filter {{
  chain input {{
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname {{ \"lo\", \"lan\" }} accept
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname \"lan\" oifname \"wan\" accept
  }}
}}
"
    )
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces, and with them the veth peers.
        for ns in ["a", "b", "na", "nb", "pub"] {
            let _ = Command::new("ip")
                .args(["netns", "delete", &format!("{}-{ns}", self.prefix)])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether this machine can build the topology: root, `ip` and `nft`; outside CI a missing one
/// skips with a message. Checked once.
pub fn available() -> bool {
    static FOUND: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let runs = |program: &str, arg: &str| {
            Command::new(program)
                .arg(arg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !root {
            Err("real NATs need root (network namespaces and nftables)".into())
        } else if !runs("ip", "-V") {
            Err("real NATs need `ip` (the Debian package iproute2)".into())
        } else if !runs("nft", "--version") {
            Err("real NATs need `nft` (the Debian package nftables)".into())
        } else {
            Ok(())
        }
    });
    match found {
        Ok(()) => true,
        Err(message) => {
            missing(message);
            false
        }
    }
}

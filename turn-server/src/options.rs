//! The command line and the TOML configuration file: one [`Options`] type for both (every
//! flag is also a key of the file, spelled the same), merged flag over file over default,
//! then checked into a [`Settings`] the workers run with. Every refusal is a
//! [`ConfigError`] naming the option and the offending value.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Deserializer};
use stun_proto::turn::server::{IpRange, PeerClass, PeerFilter, TurnServerConfig};

/// The relay ports when `--relay-ports` is not given (IANA's dynamic range, as coturn).
const DEFAULT_RELAY_PORTS: PortRange = PortRange {
    low: 49152,
    high: 65535,
};
/// The realm when `--realm` is not given.
const DEFAULT_REALM: &str = "turn";
/// The listening address when no `--listen` is given.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 3478);
/// Defaults fit for a public server (see `--help`).
const DEFAULT_MAX_ALLOCATIONS: usize = 10_000;
const DEFAULT_MAX_ALLOCATIONS_PER_USER: usize = 1_000;
const DEFAULT_MAX_PERMISSIONS: usize = 32;
const DEFAULT_MAX_CHANNELS: usize = 32;
const DEFAULT_MAX_TCP_CONNECTIONS: usize = 10_000;
/// Seconds a TCP client connection may hold no allocation (RFC 8656 leaves it to the
/// server; a client allocates in its first round trips).
const DEFAULT_UNALLOCATED_TIMEOUT: usize = 30;
const DEFAULT_NONCE_LIFETIME_SECS: u64 = 600;
const DEFAULT_MAX_LIFETIME_SECS: u64 = 3600;
/// The most workers (threads) a server runs.
pub const MAX_WORKERS: usize = 1024;
/// The most users a users file may hold (memory is bounded).
pub const MAX_USERS: usize = 100_000;

/// A TURN and STUN server (RFC 8656, RFC 8489) for WebRTC and other NAT traversal, to run
/// instead of coturn: UDP and TCP, IPv4 and IPv6, shared-secret ("TURN REST API") and static
/// credentials, quotas, a peer filter that denies internal addresses, Prometheus metrics.
///
/// Every option may also be set in the TOML file given with --config, under the same name
/// (`realm = "example.org"`, `listen = ["0.0.0.0:3478"]`, `allow-peers = ["loopback"]`); a
/// flag wins over the file.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(name = "turn-server", version)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// A TOML file with any of these options.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// An address to listen on for UDP and TCP; repeat it for several (IPv4 and IPv6)
    /// [default: 0.0.0.0:3478].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// Do not listen on TCP.
    #[arg(long)]
    pub no_tcp: bool,
    /// An address to listen on for TLS over TCP (RFC 8656 §3.1; 5349 by convention); repeat
    /// it for several. Needs --cert and --key.
    #[arg(long, value_name = "ADDR:PORT")]
    pub tls_listen: Vec<SocketAddr>,
    /// The TLS certificate chain, PEM.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The TLS private key, PEM (PKCS #8, PKCS #1 or SEC1).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Do not listen on UDP.
    #[arg(long)]
    pub no_udp: bool,
    /// An IP address relayed transport addresses are allocated on; repeat it for IPv4 and
    /// IPv6 relaying [default: the IP of each --listen address that is not a wildcard;
    /// required with 0.0.0.0 or ::].
    #[arg(long = "relay-ip", value_name = "IP")]
    pub relay_ip: Vec<IpAddr>,
    /// The relay ports on each relay IP, LOW-HIGH, split evenly between the workers; one UDP
    /// socket is opened per port and IP [default: 49152-65535].
    #[arg(long, value_name = "LOW-HIGH")]
    pub relay_ports: Option<PortRange>,
    /// How many event-loop threads; each owns its sockets (SO_REUSEPORT), allocations and
    /// relay ports [default: one per CPU].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// The realm of the long-term credentials [default: turn].
    #[arg(long)]
    pub realm: Option<String>,
    /// A static user and password, NAME:PASSWORD; repeat it for more (they show in `ps`:
    /// prefer --users-file).
    #[arg(long, value_name = "NAME:PASSWORD")]
    pub user: Vec<UserPassword>,
    /// A file of static users, one NAME:PASSWORD per line; empty lines and lines starting
    /// with # are skipped.
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// A shared secret for "TURN REST API" credentials (coturn's static-auth-secret): the
    /// username is UNIX-EXPIRY:USER and the password base64(HMAC-SHA1(secret,
    /// username)); repeat it to accept several during a rotation (they show in `ps`: prefer
    /// --auth-secret-file).
    #[arg(long, value_name = "SECRET")]
    pub auth_secret: Vec<String>,
    /// A file of shared secrets, one a line, newest first.
    #[arg(long, value_name = "FILE")]
    pub auth_secret_file: Option<PathBuf>,
    /// How long a nonce stays valid, in seconds (then 438 Stale Nonce) [default: 600].
    #[arg(long, value_name = "SECS")]
    pub nonce_lifetime: Option<u64>,
    /// The longest lifetime an allocation gets, in seconds, whatever it asks for (at least
    /// RFC 8656's default of 600) [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub max_lifetime: Option<u64>,
    /// The most allocations at once, over all workers; beyond, 508 Insufficient Capacity,
    /// or 300 Try Alternate with --alternate-server [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_allocations: Option<usize>,
    /// The most allocations one username may hold on one worker; beyond, 486 Allocation
    /// Quota Reached [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_allocations_per_user: Option<usize>,
    /// The most permissions per allocation; beyond, 508 [default: 32].
    #[arg(long, value_name = "N")]
    pub max_permissions: Option<usize>,
    /// The most channels per allocation; beyond, 508 [default: 32].
    #[arg(long, value_name = "N")]
    pub max_channels: Option<usize>,
    /// The most bytes per second one allocation relays each way (a burst of one second's
    /// worth passes); datagrams beyond are dropped [default: no cap].
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub max_bandwidth: Option<u32>,
    /// The most TCP client connections at once, over all workers; more are closed at once
    /// [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_tcp_connections: Option<usize>,
    /// Seconds a TCP or TLS client connection may hold no allocation (nor a bound RFC 6062
    /// peer connection) after it was accepted before it is closed: a TLS handshake that never
    /// completes, a half-open connection or one that sends nothing holds a connection slot no
    /// longer [default: 30].
    #[arg(long, value_name = "SECS")]
    pub unallocated_timeout: Option<usize>,
    /// RFC 5780 NAT behaviour discovery: the alternate address A2:P2, different from the
    /// first --listen address A1:P1 in both IP and port. The server then also answers Binding
    /// requests on A1:P2, A2:P1 and A2:P2 (UDP), with OTHER-ADDRESS and RESPONSE-ORIGIN, and
    /// honours CHANGE-REQUEST (coturn's alt-listening address and port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub rfc5780_alternate: Option<SocketAddr>,
    /// Where to send clients when the server is at capacity: an Allocate that would get 508
    /// gets 300 Try Alternate with this ALTERNATE-SERVER (RFC 8489 §10).
    #[arg(long, value_name = "ADDR:PORT")]
    pub alternate_server: Option<SocketAddr>,
    /// Relay to peers of these classes, which are denied by default: loopback, private,
    /// shared, link-local, site-local, multicast, broadcast, this-network, reserved,
    /// unspecified, own-listening (the server's listening addresses); comma separated or
    /// repeated. (own-relay, the server's relayed addresses, is allowed unless
    /// --deny-own-relay.)
    #[arg(long, value_name = "CLASS", value_delimiter = ',')]
    #[serde(deserialize_with = "peer_classes")]
    pub allow_peers: Vec<PeerClass>,
    /// Do not relay between two allocations of this server (the relay IPs are then denied
    /// as peers, on every worker). By default two clients of this server may talk relay to
    /// relay, as two WebRTC peers that both force relay must.
    #[arg(long)]
    pub deny_own_relay: bool,
    /// Same as --allow-peers loopback (coturn's allow-loopback-peers).
    #[arg(long)]
    pub allow_loopback_peers: bool,
    /// Relay to peers in this range whatever the classes say (CIDR, e.g. 10.1.0.0/16).
    #[arg(long, value_name = "CIDR")]
    pub allow_peer_range: Vec<Cidr>,
    /// Never relay to peers in this range (CIDR).
    #[arg(long, value_name = "CIDR")]
    pub deny_peer_range: Vec<Cidr>,
    /// Serve Prometheus metrics (text format) over HTTP on this address.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Turn off the compatibility choices coturn's turnutils_uclient needs: channel numbers
    /// up to 0x7FFF (RFC 5766's, and the 0x7FFF it reserved, as coturn) and coturn's
    /// draft-numbered ADDITIONAL-ADDRESS-FAMILY.
    #[arg(long)]
    pub strict_rfc8656: bool,
}

/// A `--relay-ports` value: LOW-HIGH, LOW ≤ HIGH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PortRange {
    /// The first port.
    pub low: u16,
    /// The last port.
    pub high: u16,
}

impl PortRange {
    /// The `index`th of `parts` contiguous, near-equal slices (`None` if the range is too
    /// small for every part to get a port).
    pub fn slice(self, index: usize, parts: usize) -> Option<std::ops::RangeInclusive<u16>> {
        let len = usize::from(self.high - self.low) + 1;
        let start = len * index / parts.max(1);
        let end = len * (index + 1) / parts.max(1);
        // Both are at most `len` ≤ 65536, so the additions stay in u32.
        let low = u32::from(self.low) + start as u32;
        let high = u32::from(self.low) + end as u32;
        match (u16::try_from(low), u16::try_from(high.saturating_sub(1))) {
            (Ok(low), Ok(high)) if high >= low && end > start => Some(low..=high),
            _ => None,
        }
    }
}

impl FromStr for PortRange {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::PortRange(value.to_owned());
        let (low, high) = value.split_once('-').ok_or_else(bad)?;
        let (low, high) = (
            low.parse().map_err(|_| bad())?,
            high.parse().map_err(|_| bad())?,
        );
        if low > high || low == 0 {
            return Err(bad());
        }
        Ok(Self { low, high })
    }
}

impl TryFrom<String> for PortRange {
    type Error = ConfigError;

    fn try_from(value: String) -> Result<Self, ConfigError> {
        value.parse()
    }
}

/// A `--user` value: NAME:PASSWORD (the password may hold colons).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UserPassword {
    /// The username.
    pub name: String,
    /// The password.
    pub password: String,
}

impl FromStr for UserPassword {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, ConfigError> {
        match value.split_once(':') {
            Some((name, password)) if !name.is_empty() && !password.is_empty() => Ok(Self {
                name: name.to_owned(),
                password: password.to_owned(),
            }),
            // The value holds a password: name only its user part.
            _ => Err(ConfigError::User(
                value.split(':').next().unwrap_or_default().to_owned(),
            )),
        }
    }
}

impl TryFrom<String> for UserPassword {
    type Error = ConfigError;

    fn try_from(value: String) -> Result<Self, ConfigError> {
        value.parse()
    }
}

/// A `--allow-peer-range` or `--deny-peer-range` value: ADDRESS/PREFIX.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr(pub IpRange);

impl FromStr for Cidr {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Cidr(value.to_owned());
        let (ip, prefix) = value.split_once('/').ok_or_else(bad)?;
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        IpRange::new(ip, prefix).map(Cidr).ok_or_else(bad)
    }
}

impl TryFrom<String> for Cidr {
    type Error = ConfigError;

    fn try_from(value: String) -> Result<Self, ConfigError> {
        value.parse()
    }
}

/// Reads `allow-peers` from the file: class names, as [`PeerClass::from_str`] takes them.
fn peer_classes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<PeerClass>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|name| name.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// Why the configuration was refused; each names the option and the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--relay-ports` not LOW-HIGH with 1 ≤ LOW ≤ HIGH ≤ 65535.
    #[error("--relay-ports {0:?}: expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535")]
    PortRange(String),
    /// `--user` not NAME:PASSWORD (only the name is shown).
    #[error("--user {0:?}:…: expected NAME:PASSWORD, both non-empty")]
    User(String),
    /// A users file line not NAME:PASSWORD.
    #[error("{file}, line {line}: expected NAME:PASSWORD")]
    UsersFileLine {
        /// The file.
        file: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
    /// More than [`MAX_USERS`] users.
    #[error("more than {MAX_USERS} users")]
    TooManyUsers,
    /// A username or password the long-term mechanism refuses.
    #[error("user {name:?}: {source}")]
    Credential {
        /// The user.
        name: String,
        /// Why.
        source: stun_proto::CredentialError,
    },
    /// A shared secret refused.
    #[error("--auth-secret: {0}")]
    Secret(#[from] stun_proto::shared_secret::SharedSecretError),
    /// `--allow-peer-range`/`--deny-peer-range` not ADDRESS/PREFIX.
    #[error("peer range {0:?}: expected ADDRESS/PREFIX, e.g. 10.0.0.0/8")]
    Cidr(String),
    /// A file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for these options.
    #[error("{file}: {source}")]
    Toml {
        /// The file.
        file: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A wildcard listening address and no `--relay-ip`: relayed addresses must be real.
    #[error("--listen {0}: a wildcard address needs --relay-ip with the IP clients reach")]
    NoRelayIp(SocketAddr),
    /// `--workers 0`.
    #[error("--workers 0: at least one worker")]
    NoWorkers,
    /// More workers than [`MAX_WORKERS`].
    #[error("--workers {0}: at most {MAX_WORKERS}")]
    TooManyWorkers(usize),
    /// A count that must be positive is 0.
    #[error("--{0} 0: must be at least 1")]
    Zero(&'static str),
    /// No credentials at all: the server would answer every request with 401.
    #[error("no credentials: give --user, --users-file, --auth-secret or --auth-secret-file")]
    NoCredentials,
    /// `--tls-listen` without both `--cert` and `--key`, or these without `--tls-listen`.
    #[error("--tls-listen needs --cert and --key, and they need --tls-listen")]
    TlsIncomplete,
    /// `--rfc5780-alternate` that cannot pair with the first `--listen` address.
    #[error(
        "--rfc5780-alternate {0}: needs UDP and a first --listen address of the same family, \
         not a wildcard, different from it in both IP and port"
    )]
    Rfc5780(SocketAddr),
    /// Both `--no-udp` and `--no-tcp`, and no `--tls-listen`.
    #[error("--no-udp with --no-tcp and no --tls-listen: nothing to listen on")]
    NothingToListenOn,
}

/// The checked configuration every worker starts from.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Listening addresses.
    pub listen: Vec<SocketAddr>,
    /// Listen on UDP.
    pub udp: bool,
    /// Listen on TCP.
    pub tcp: bool,
    /// TLS listening addresses.
    pub tls_listen: Vec<SocketAddr>,
    /// The certificate and key files, when there are TLS listeners.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// RFC 5780: the primary (first listening) and the alternate address.
    pub rfc5780: Option<(SocketAddr, SocketAddr)>,
    /// The relay IPs.
    pub relay_ips: Vec<IpAddr>,
    /// The relay ports, split between workers.
    pub relay_ports: PortRange,
    /// How many workers.
    pub workers: usize,
    /// Static users.
    pub users: Vec<UserPassword>,
    /// Shared secrets, newest first.
    pub secrets: Vec<String>,
    /// The most TCP connections of one worker.
    pub max_tcp_connections_per_worker: usize,
    /// How long a TCP connection may hold no allocation.
    pub unallocated_timeout: std::time::Duration,
    /// Metrics endpoint.
    pub metrics: Option<SocketAddr>,
    /// The machine's configuration for one worker, relay addresses left empty.
    pub turn: TurnServerConfig,
}

impl Options {
    /// Reads `--config`, if given, under the flags: a flag given wins over the file.
    pub fn merge_config_file(mut self) -> Result<Self, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = read(&path)?;
        let file: Options = toml::from_str(&text).map_err(|source| ConfigError::Toml {
            file: path.clone(),
            source: Box::new(source),
        })?;
        fn list<T>(flag: &mut Vec<T>, file: Vec<T>) {
            if flag.is_empty() {
                *flag = file;
            }
        }
        list(&mut self.listen, file.listen);
        list(&mut self.tls_listen, file.tls_listen);
        self.cert = self.cert.take().or(file.cert);
        self.key = self.key.take().or(file.key);
        list(&mut self.relay_ip, file.relay_ip);
        list(&mut self.user, file.user);
        list(&mut self.auth_secret, file.auth_secret);
        list(&mut self.allow_peers, file.allow_peers);
        list(&mut self.allow_peer_range, file.allow_peer_range);
        list(&mut self.deny_peer_range, file.deny_peer_range);
        self.no_tcp |= file.no_tcp;
        self.no_udp |= file.no_udp;
        self.allow_loopback_peers |= file.allow_loopback_peers;
        self.deny_own_relay |= file.deny_own_relay;
        self.strict_rfc8656 |= file.strict_rfc8656;
        self.relay_ports = self.relay_ports.or(file.relay_ports);
        self.workers = self.workers.or(file.workers);
        self.realm = self.realm.take().or(file.realm);
        self.users_file = self.users_file.take().or(file.users_file);
        self.auth_secret_file = self.auth_secret_file.take().or(file.auth_secret_file);
        self.nonce_lifetime = self.nonce_lifetime.or(file.nonce_lifetime);
        self.max_lifetime = self.max_lifetime.or(file.max_lifetime);
        self.max_allocations = self.max_allocations.or(file.max_allocations);
        self.max_allocations_per_user = self
            .max_allocations_per_user
            .or(file.max_allocations_per_user);
        self.max_permissions = self.max_permissions.or(file.max_permissions);
        self.max_channels = self.max_channels.or(file.max_channels);
        self.max_tcp_connections = self.max_tcp_connections.or(file.max_tcp_connections);
        self.unallocated_timeout = self.unallocated_timeout.or(file.unallocated_timeout);
        self.max_bandwidth = self.max_bandwidth.or(file.max_bandwidth);
        self.alternate_server = self.alternate_server.or(file.alternate_server);
        self.rfc5780_alternate = self.rfc5780_alternate.or(file.rfc5780_alternate);
        self.metrics = self.metrics.or(file.metrics);
        Ok(self)
    }

    /// Checks the options, reads the users and secrets files, and applies the defaults.
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        if self.no_tcp && self.no_udp && self.tls_listen.is_empty() {
            return Err(ConfigError::NothingToListenOn);
        }
        let tls_files = match (self.tls_listen.is_empty(), self.cert, self.key) {
            (false, Some(cert), Some(key)) => Some((cert, key)),
            (true, None, None) => None,
            _ => return Err(ConfigError::TlsIncomplete),
        };
        let listen = if self.listen.is_empty() {
            vec![DEFAULT_LISTEN]
        } else {
            self.listen
        };
        let relay_ips = if self.relay_ip.is_empty() {
            let mut ips = Vec::new();
            for address in &listen {
                if address.ip().is_unspecified() {
                    return Err(ConfigError::NoRelayIp(*address));
                }
                if !ips.contains(&address.ip()) {
                    ips.push(address.ip());
                }
            }
            ips
        } else {
            self.relay_ip
        };
        let rfc5780 = match (self.rfc5780_alternate, listen.first()) {
            (None, _) => None,
            (Some(alternate), Some(&primary))
                if !self.no_udp
                    && !primary.ip().is_unspecified()
                    && primary.is_ipv4() == alternate.is_ipv4()
                    && primary.ip() != alternate.ip()
                    && primary.port() != alternate.port() =>
            {
                Some((primary, alternate))
            }
            (Some(alternate), _) => return Err(ConfigError::Rfc5780(alternate)),
        };
        let workers = match self.workers {
            Some(0) => return Err(ConfigError::NoWorkers),
            Some(n) if n > MAX_WORKERS => return Err(ConfigError::TooManyWorkers(n)),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let positive = |name, value: Option<usize>, default| match value {
            Some(0) => Err(ConfigError::Zero(name)),
            value => Ok(value.unwrap_or(default)),
        };
        let max_allocations = positive(
            "max-allocations",
            self.max_allocations,
            DEFAULT_MAX_ALLOCATIONS,
        )?;
        let max_tcp = positive(
            "max-tcp-connections",
            self.max_tcp_connections,
            DEFAULT_MAX_TCP_CONNECTIONS,
        )?;
        let unallocated = positive(
            "unallocated-timeout",
            self.unallocated_timeout,
            DEFAULT_UNALLOCATED_TIMEOUT,
        )?;

        let mut users = self.user;
        if let Some(file) = &self.users_file {
            for (index, line) in read(file)?.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let user = line.parse().map_err(|_| ConfigError::UsersFileLine {
                    file: file.clone(),
                    line: index + 1,
                })?;
                users.push(user);
            }
        }
        if users.len() > MAX_USERS {
            return Err(ConfigError::TooManyUsers);
        }
        let mut secrets = Vec::new();
        if let Some(file) = &self.auth_secret_file {
            let text = read(file)?;
            secrets.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
        }
        secrets.extend(self.auth_secret);
        if users.is_empty() && secrets.is_empty() {
            return Err(ConfigError::NoCredentials);
        }

        if self.nonce_lifetime == Some(0) {
            return Err(ConfigError::Zero("nonce-lifetime"));
        }
        let mut turn = TurnServerConfig::new(
            self.realm.unwrap_or_else(|| DEFAULT_REALM.into()),
            Vec::new(),
        );
        turn.long_term.nonce_lifetime =
            Duration::from_secs(self.nonce_lifetime.unwrap_or(DEFAULT_NONCE_LIFETIME_SECS));
        turn.max_lifetime =
            Duration::from_secs(self.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME_SECS))
                .max(turn.default_lifetime);
        turn.max_allocations = max_allocations.div_ceil(workers);
        turn.max_allocations_per_user = positive(
            "max-allocations-per-user",
            self.max_allocations_per_user,
            DEFAULT_MAX_ALLOCATIONS_PER_USER,
        )?;
        turn.max_permissions = positive(
            "max-permissions",
            self.max_permissions,
            DEFAULT_MAX_PERMISSIONS,
        )?;
        turn.max_channels = positive("max-channels", self.max_channels, DEFAULT_MAX_CHANNELS)?;
        turn.alternate_server = self.alternate_server;
        if self.max_bandwidth == Some(0) {
            return Err(ConfigError::Zero("max-bandwidth"));
        }
        turn.max_bandwidth = self.max_bandwidth;
        turn.software = Some(concat!("turn-server ", env!("CARGO_PKG_VERSION")).into());
        turn.rfc5766_channel_numbers = !self.strict_rfc8656;
        turn.coturn_dual_allocation = !self.strict_rfc8656;
        turn.peer_filter = peer_filter(
            &self.allow_peers,
            self.allow_loopback_peers,
            self.deny_own_relay,
            self.allow_peer_range,
            self.deny_peer_range,
            &[
                listen.as_slice(),
                self.tls_listen.as_slice(),
                &rfc5780.map_or_else(Vec::new, |(a, b)| rfc5780_others(a, b).to_vec()),
            ]
            .concat(),
            &relay_ips,
        );
        Ok(Settings {
            listen,
            udp: !self.no_udp,
            tcp: !self.no_tcp,
            tls_listen: self.tls_listen,
            tls_files,
            rfc5780,
            relay_ips,
            relay_ports: self.relay_ports.unwrap_or(DEFAULT_RELAY_PORTS),
            workers,
            users,
            secrets,
            max_tcp_connections_per_worker: max_tcp.div_ceil(workers),
            unallocated_timeout: std::time::Duration::from_secs(unallocated as u64),
            metrics: self.metrics,
            turn,
        })
    }
}

/// The peer filter: the classes allowed, the ranges, and the server's own listening
/// addresses (a wildcard one stands for its port on each relay IP of its family). Relayed
/// addresses reach each other unless `deny_own_relay`, which denies the relay IPs as a
/// whole: a worker's machine knows only its own relayed addresses, and a client of another
/// worker would otherwise still reach this worker's.
fn peer_filter(
    classes: &[PeerClass],
    allow_loopback: bool,
    deny_own_relay: bool,
    allowed: Vec<Cidr>,
    denied: Vec<Cidr>,
    listen: &[SocketAddr],
    relay_ips: &[IpAddr],
) -> PeerFilter {
    let mut filter = PeerFilter::default();
    for class in classes {
        filter.allowed_classes.insert(*class);
    }
    if allow_loopback {
        filter.allowed_classes.insert(PeerClass::Loopback);
    }
    filter.allowed = allowed.into_iter().map(|c| c.0).collect();
    filter.denied = denied.into_iter().map(|c| c.0).collect();
    if deny_own_relay {
        let whole = |ip: &IpAddr| IpRange::new(*ip, if ip.is_ipv4() { 32 } else { 128 });
        filter.denied.extend(relay_ips.iter().filter_map(whole));
    } else {
        filter.allowed_classes.insert(PeerClass::OwnRelay);
    }
    for address in listen {
        if address.ip().is_unspecified() {
            filter.listening.extend(
                relay_ips
                    .iter()
                    .filter(|ip| ip.is_ipv4() == address.is_ipv4())
                    .map(|ip| SocketAddr::new(*ip, address.port())),
            );
        } else {
            filter.listening.push(*address);
        }
    }
    filter
}

/// RFC 5780's other three addresses beside A1:P1: A1:P2, A2:P1 and A2:P2.
pub fn rfc5780_others(primary: SocketAddr, alternate: SocketAddr) -> [SocketAddr; 3] {
    [
        SocketAddr::new(primary.ip(), alternate.port()),
        SocketAddr::new(alternate.ip(), primary.port()),
        alternate,
    ]
}

fn read(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let mut argv = vec!["turn-server"];
        argv.extend_from_slice(args);
        Options::try_parse_from(argv)
            .unwrap()
            .merge_config_file()?
            .into_settings()
    }

    #[test]
    fn bad_values_are_refused_naming_the_value() {
        for (value, wanted) in [
            ("50000", "--relay-ports \"50000\""),
            ("9-3", "--relay-ports \"9-3\""),
            ("0-3", "--relay-ports \"0-3\""),
            ("1-70000", "--relay-ports \"1-70000\""),
        ] {
            let e = value.parse::<PortRange>().unwrap_err();
            assert!(e.to_string().contains(wanted), "{e}");
        }
        let e = "alice".parse::<UserPassword>().unwrap_err();
        assert!(e.to_string().contains("\"alice\""), "{e}");
        let e = "alice:".parse::<UserPassword>().unwrap_err();
        assert!(e.to_string().contains("\"alice\""), "{e}");
        let e = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/33"), "{e}");
        assert!(Options::try_parse_from(["turn-server", "--workers", "x"]).is_err());
        let e = parse(&["--user", "a:b", "--listen", "127.0.0.1:1", "--workers", "0"]).unwrap_err();
        assert!(matches!(e, ConfigError::NoWorkers));
        let e = parse(&[
            "--user",
            "a:b",
            "--listen",
            "127.0.0.1:1",
            "--workers",
            "5000",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("--workers 5000"), "{e}");
        let e = parse(&[
            "--user",
            "a:b",
            "--listen",
            "127.0.0.1:1",
            "--nonce-lifetime",
            "0",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("--nonce-lifetime 0"), "{e}");
        let e = parse(&["--user", "a:b"]).unwrap_err();
        assert!(matches!(e, ConfigError::NoRelayIp(_)), "{e}");
        let e = parse(&["--listen", "127.0.0.1:3478"]).unwrap_err();
        assert!(matches!(e, ConfigError::NoCredentials), "{e}");
        let e = parse(&[
            "--user",
            "a:b",
            "--listen",
            "127.0.0.1:1",
            "--max-channels",
            "0",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("--max-channels 0"), "{e}");
    }

    #[test]
    fn port_ranges_split_evenly_between_workers() {
        let range: PortRange = "50000-50009".parse().unwrap();
        let slices: Vec<_> = (0..3).map(|i| range.slice(i, 3)).collect();
        assert_eq!(
            slices,
            [
                Some(50000..=50002),
                Some(50003..=50005),
                Some(50006..=50009)
            ]
        );
        let all: PortRange = "1-65535".parse().unwrap();
        assert_eq!(all.slice(1, 2), Some(32768..=65535));
        let one: PortRange = "7-7".parse().unwrap();
        assert_eq!(one.slice(0, 2), None);
        assert_eq!(one.slice(1, 2), Some(7..=7));
    }

    #[test]
    fn the_file_fills_what_the_flags_leave_out() {
        let dir = std::env::temp_dir().join(format!("turn-server-options-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("turn.toml");
        std::fs::write(
            &config,
            "realm = \"file.example\"\nlisten = [\"127.0.0.1:4000\"]\nallow-peers = [\"loopback\", \"private\"]\n\
             auth-secret = [\"s1\"]\nmax-channels = 5\nrelay-ports = \"50000-50100\"\n",
        )
        .unwrap();
        let path = config.to_str().unwrap();
        let s = parse(&["--config", path, "--max-channels", "7"]).unwrap();
        assert_eq!(s.turn.long_term.realm, "file.example");
        assert_eq!(s.turn.max_channels, 7);
        assert_eq!(
            s.relay_ports,
            PortRange {
                low: 50000,
                high: 50100
            }
        );
        assert_eq!(s.relay_ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert!(s.turn.peer_filter.is_allowed("10.0.0.1".parse().unwrap()));
        assert_eq!(s.secrets, ["s1"]);
        std::fs::write(&config, "relam = \"typo\"\n").unwrap();
        let e = parse(&["--config", path]).unwrap_err();
        assert!(e.to_string().contains("relam"), "{e}");
        let users = dir.join("users");
        std::fs::write(&users, "# users\nalice:pw:with:colons\n\nbob\n").unwrap();
        let e = parse(&[
            "--listen",
            "127.0.0.1:1",
            "--users-file",
            users.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("line 4"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn relayed_addresses_reach_each_other_unless_denied() {
        let args = ["--listen", "203.0.113.1:3478", "--user", "a:b"];
        let relay: SocketAddr = "203.0.113.1:50000".parse().unwrap();
        let s = parse(&args).unwrap();
        assert!(s.turn.peer_filter.is_allowed_peer(relay, true));
        let s = parse(&[&args[..], &["--deny-own-relay"]].concat()).unwrap();
        assert!(!s.turn.peer_filter.is_allowed_peer(relay, true));
        // Another worker's relayed address is no relayed address of this machine's: denied
        // by its IP.
        assert!(!s.turn.peer_filter.is_allowed_peer(relay, false));
        assert!(
            s.turn
                .peer_filter
                .is_allowed("203.0.113.2".parse().unwrap())
        );
    }

    #[test]
    fn peer_classes_are_named_on_the_command_line_and_in_the_file() {
        let s = parse(&[
            "--listen",
            "127.0.0.1:1",
            "--user",
            "a:b",
            "--allow-peers",
            "private,link-local",
        ])
        .unwrap();
        let allowed = s.turn.peer_filter.allowed_classes;
        assert!(allowed.contains(PeerClass::Private) && allowed.contains(PeerClass::LinkLocal));
        assert!(!allowed.contains(PeerClass::Loopback));
        let e = Options::try_parse_from(["turn-server", "--allow-peers", "lan"]).unwrap_err();
        assert!(e.to_string().contains("\"lan\""), "{e}");
        let e = toml::from_str::<Options>("allow-peers = [\"loopback\", \"lan\"]").unwrap_err();
        assert!(e.to_string().contains("\"lan\""), "{e}");
    }

    #[test]
    fn wildcard_listeners_deny_their_port_on_each_relay_ip() {
        let s = parse(&[
            "--listen",
            "0.0.0.0:3478",
            "--relay-ip",
            "203.0.113.1",
            "--relay-ip",
            "2001:db8::1",
            "--user",
            "a:b",
        ])
        .unwrap();
        assert_eq!(
            s.turn.peer_filter.listening,
            ["203.0.113.1:3478".parse::<SocketAddr>().unwrap()]
        );
    }
}

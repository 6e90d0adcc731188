//! `turn-server`: a TURN and STUN server (RFC 8656, RFC 8489) to deploy instead of coturn.
//! All protocol logic is stun-proto's sans-IO [`TurnServer`]; this binary owns the sockets,
//! the clocks, the threads and the configuration (docs/turn.md, "Running the server").
//!
//! ```text
//! turn-server --listen 0.0.0.0:3478 --relay-ip 203.0.113.1 --realm example.org \
//!             --auth-secret-file /etc/turn/secrets --metrics 127.0.0.1:9641
//! ```
//!
//! Exit status: 0 after SIGINT or SIGTERM, 2 for a bad option or configuration (the message
//! names the option and the value), 1 when a socket cannot be opened or a worker fails.

// The driver reads the clocks and starts threads, which the workspace forbids to protocol
// machines; each use is marked where it happens.

mod connection;
mod handoff;
mod metrics;
mod options;
mod sockets;
mod tcp_relay;
mod tls;
mod worker;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::binding::{BindingServer, BindingServerConfig};
use stun_proto::turn::server::TurnServer;
use tracing::{error, info, warn};

use crate::metrics::WorkerMetrics;
use crate::options::{Options, Settings};
use crate::sockets::{SocketError, WorkerPlan};
use crate::worker::Worker;

fn main() -> ExitCode {
    let options = Options::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let settings = match options.merge_config_file().and_then(Options::into_settings) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("turn-server: {e}");
            return ExitCode::from(2);
        }
    };
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (RunError::Config(_) | RunError::Tls(_))) => {
            eprintln!("turn-server: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// A socket could not be opened.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// A credential of the configuration was refused by the machine.
    #[error(transparent)]
    Config(#[from] options::ConfigError),
    /// The TLS certificate or key.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A worker could not start or failed.
    #[error("worker {index}: {source}")]
    Worker {
        /// The worker.
        index: usize,
        /// Why.
        source: std::io::Error,
    },
}

/// Opens every socket, then starts the workers and waits for them.
fn run(settings: Settings) -> Result<(), RunError> {
    let tls = match &settings.tls_files {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let plans = sockets::open(&settings)?;
    let published: Arc<[WorkerMetrics]> =
        (0..plans.len()).map(|_| WorkerMetrics::default()).collect();
    let relays: usize = plans.iter().map(|p| p.sockets.relays.len()).sum();
    if let Some(empty) = plans.iter().position(|p| p.sockets.relays.is_empty()) {
        warn!("worker {empty} has no relay port: its clients get 508 (widen --relay-ports)");
    }
    let mut workers = Vec::with_capacity(plans.len());
    let mut mailboxes = Vec::with_capacity(plans.len());
    for (index, plan) in plans.into_iter().enumerate() {
        let WorkerPlan {
            sockets,
            relay_addresses,
        } = plan;
        let server = machine(&settings, index, relay_addresses)?;
        let binding = settings.rfc5780.map(|(primary, alternate)| {
            let mut config = BindingServerConfig::new(primary);
            config.alternate = Some(alternate);
            config.software = settings.turn.software.clone();
            BindingServer::new(config)
        });
        let (worker, mailbox) = Worker::new(
            index,
            server,
            binding,
            sockets,
            worker::TcpLimits {
                max_connections: settings.max_tcp_connections_per_worker,
                unallocated: settings.unallocated_timeout,
            },
            Arc::clone(&published),
            tls.clone(),
        )
        .map_err(|source| RunError::Worker { index, source })?;
        workers.push(worker);
        mailboxes.push(mailbox);
    }
    let mailboxes: Arc<[handoff::Mailbox]> = mailboxes.into();
    for worker in &mut workers {
        worker.connect(Arc::clone(&mailboxes));
    }
    info!(
        listen = ?settings.listen,
        tls = ?settings.tls_listen,
        rfc5780 = ?settings.rfc5780,
        udp = settings.udp,
        tcp = settings.tcp,
        relay_addresses = relays,
        workers = workers.len(),
        metrics = ?settings.metrics,
        "ready"
    );
    let mut handles = Vec::with_capacity(workers.len());
    for (index, worker) in workers.into_iter().enumerate() {
        #[allow(clippy::disallowed_methods)] // the driver owns the threads
        let handle = std::thread::Builder::new()
            .name(format!("turn-worker-{index}"))
            .spawn(move || worker.run())
            .map_err(|source| RunError::Worker { index, source })?;
        handles.push(handle);
    }
    let mut failure = None;
    for (index, handle) in handles.into_iter().enumerate() {
        let result = handle
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the worker thread panicked")));
        if let Err(source) = result {
            failure.get_or_insert(RunError::Worker { index, source });
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Worker `index`'s machine: the shared configuration with this worker's relay addresses
/// and reservation tag (module `handoff`), and the users and secrets.
fn machine(
    settings: &Settings,
    index: usize,
    relay_addresses: Vec<std::net::SocketAddr>,
) -> Result<TurnServer<ChaCha20Rng>, options::ConfigError> {
    let mut config = settings.turn.clone();
    config.relay_addresses = relay_addresses;
    config.reservation_tag = Some(handoff::Handoffs::tag(index));
    config.connection_tag = handoff::Handoffs::connection_tag(index);
    #[allow(clippy::disallowed_methods)] // the driver owns the clocks
    let now = std::time::Instant::now();
    let mut server = TurnServer::new(now, config, ChaCha20Rng::from_os_rng());
    for user in &settings.users {
        server
            .add_user(&user.name, &user.password)
            .map_err(|source| options::ConfigError::Credential {
                name: user.name.clone(),
                source,
            })?;
    }
    // Oldest first, so that the newest is tried first.
    for secret in settings.secrets.iter().rev() {
        server.add_shared_secret(secret)?;
    }
    Ok(server)
}

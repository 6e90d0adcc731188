//! One ICE-lite session of the endpoint (RFC 8445 §2.5, §7.3 as a lite agent answers it):
//! its credentials, the paths the peer proved with authenticated checks, the one it
//! nominated (USE-CANDIDATE), and its liveness — the peer's consent checks (RFC 7675),
//! which a lite agent answers and does not send, keep it fresh.

use std::time::Instant;

use stun_proto::IntegrityKey;

use crate::path::Path;
use crate::stream::Credentials;

/// The most paths a session keeps; a new one replaces the least recently used one that is
/// not the nominated one.
pub(super) const MAX_PATHS: usize = 4;

/// A session's id: its slot in the endpoint and the slot's generation, so that the id of a
/// removed session never names the session that reuses its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    index: u32,
    generation: u32,
}

impl SessionId {
    pub(super) const fn new(index: u32, generation: u32) -> Self {
        Self { index, generation }
    }

    /// The slot.
    pub(super) const fn index(self) -> usize {
        self.index as usize
    }
}

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// No authenticated check yet.
    New,
    /// A path is proven and consent is fresh: data may flow.
    Connected,
    /// No authenticated check for the consent lifetime (RFC 7675 §5.1): sending is refused
    /// until the peer checks again.
    Expired,
}

/// A path the peer proved, and when it last carried a check.
#[derive(Clone, Copy, Debug)]
pub(super) struct Proven {
    pub path: Path,
    pub last_check: Instant,
}

/// One session.
#[derive(Debug)]
pub(super) struct Session {
    pub local: Credentials,
    pub key: IntegrityKey,
    /// The peer's ufrag: the second half of the USERNAME its checks carry (§7.3).
    pub remote_ufrag: Box<str>,
    pub paths: Vec<Proven>,
    /// The path the peer nominated last (USE-CANDIDATE, §7.3.1.5).
    pub nominated: Option<Path>,
    pub state: SessionState,
    /// Consent expires then without another authenticated check.
    pub fresh_until: Instant,
}

impl Session {
    /// The path data goes on: the nominated one, else the one checked last.
    pub fn send_path(&self) -> Option<Path> {
        self.nominated.or_else(|| {
            (self.paths.iter())
                .max_by_key(|p| p.last_check)
                .map(|p| p.path)
        })
    }

    /// Records an authenticated check on `path` at `now`; returns the path it displaced
    /// (the table holds [`MAX_PATHS`]), if any.
    pub fn prove(&mut self, now: Instant, path: Path) -> Option<Path> {
        if let Some(p) = self.paths.iter_mut().find(|p| p.path == path) {
            p.last_check = now;
            return None;
        }
        let mut displaced = None;
        if self.paths.len() >= MAX_PATHS {
            let nominated = self.nominated;
            let oldest = (self.paths.iter().enumerate())
                .filter(|(_, p)| Some(p.path) != nominated)
                .min_by_key(|(_, p)| p.last_check)
                .map(|(i, _)| i);
            displaced = oldest.map(|i| self.paths.swap_remove(i).path);
        }
        self.paths.push(Proven {
            path,
            last_check: now,
        });
        displaced
    }
}

/// What the application can read of a session.
#[derive(Clone, Copy, Debug)]
pub struct SessionView<'a> {
    pub(super) id: SessionId,
    pub(super) session: &'a Session,
}

impl<'a> SessionView<'a> {
    /// The session's id.
    pub const fn id(&self) -> SessionId {
        self.id
    }

    /// The local credentials to signal (`a=ice-ufrag`, `a=ice-pwd`, with `a=ice-lite`).
    pub fn local_credentials(&self) -> &'a Credentials {
        &self.session.local
    }

    /// Where the session stands.
    pub const fn state(&self) -> SessionState {
        self.session.state
    }

    /// The path the peer nominated.
    pub const fn nominated(&self) -> Option<Path> {
        self.session.nominated
    }

    /// The paths the peer proved with authenticated checks.
    pub fn paths(&self) -> impl Iterator<Item = Path> + 'a {
        self.session.paths.iter().map(|p| p.path)
    }
}

//! ICE restarts (RFC 8445 §9, RFC 8839 §4.4): new credentials for a stream, its candidates
//! gathered and signalled again, its check list started afresh — while media keeps flowing on
//! the previously selected pair until a new one is selected (§9: "the agent MUST continue
//! to use the previously selected pair").
//!
//! Flow, both sides: `handle_restart` (new local ufrag/pwd, remote credentials and candidates
//! forgotten, gathering again) → signal the new credentials and candidates →
//! `handle_remote_credentials` with the peer's new ones → checks → a new selected pair. The
//! side that did not start the restart does it from `handle_remote_credentials`, on seeing
//! credentials other than the peer's current ones (`Event::RemoteRestart`).
//! TURN allocations survive a restart; their candidates are signalled again.

use stun_proto::IntegrityKey;

use crate::checklist::Checklist;
use crate::context::Ctx;
use crate::event::{ComponentState, Event};
use crate::stream::{Credentials, Gathering, Patience, Stream};

impl Stream {
    /// Restarts the stream with new local `credentials` (and their `key`): the remote
    /// credentials and candidates forgotten, the check list emptied, gathering to start
    /// again. A component that had a selected pair keeps it as its previous path, and is
    /// Connected; the others start over, Disconnected.
    pub(crate) fn restart<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        credentials: Credentials,
        key: IntegrityKey,
    ) {
        // The pairs in use carry on until replaced.
        let previous: Vec<_> = self
            .components
            .iter()
            .map(|c| {
                c.selected
                    .and_then(|id| self.checklist.get(id))
                    .filter(|_| c.state != ComponentState::Failed)
                    .map(|p| p.path())
                    .or(c.previous)
            })
            .collect();
        self.local_credentials = credentials;
        self.local_key = key;
        self.remote = None;
        self.local.clear();
        self.remote_candidates.clear();
        self.unresolved.clear();
        self.checklist = Checklist::new(ctx.config.max_pairs);
        self.remote_end_of_candidates = false;
        self.gathering = Gathering::NotStarted;
        self.prflx_count = 0;
        self.patience = Patience::NotStarted;
        for (c, previous) in self.components.iter_mut().zip(previous) {
            c.selected = None;
            c.first_valid_at = None;
            c.consent = None;
            c.probe = None;
            c.gathering_done = false;
            c.previous = previous;
            // Data keeps flowing on the previous pair: Connected; otherwise start over.
            let state = if previous.is_some() {
                ComponentState::Connected
            } else {
                ComponentState::Disconnected
            };
            if c.state != state {
                c.state = state;
                ctx.event(Event::ComponentStateChanged {
                    stream: self.id,
                    component: c.id,
                    state,
                    reason: None,
                });
            }
        }
    }
}

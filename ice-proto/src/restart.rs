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

use std::time::Instant;

use rand_core::{CryptoRng, RngCore};

use crate::agent::Agent;
use crate::checklist::Checklist;
use crate::error::AgentError;
use crate::event::{ComponentState, Event};
use crate::stream::{Credentials, Gathering, Patience, StreamId};

impl<R: RngCore + CryptoRng> Agent<R> {
    /// Restarts ICE on `stream` (RFC 8445 §9): new random local credentials (read them with
    /// [`stream`](Self::stream) and signal them), the remote credentials and candidates
    /// forgotten, gathering started again ([`Event::NewLocalCandidate`] for every candidate,
    /// then the gathering-done events), the check list emptied. A component that had a
    /// selected pair keeps sending on it ([`send`](Self::send)) until a new pair is selected.
    /// Also the way out of a failed state.
    pub fn handle_restart(&mut self, now: Instant, stream: StreamId) -> Result<(), AgentError> {
        self.check_open()?;
        let s = self.live(stream)?;
        let credentials = Credentials::random(&mut self.rng);
        let key = credentials.key()?;
        let max_pairs = self.config.max_pairs;
        let st = self.streams.get_mut(s).ok_or(AgentError::UnknownStream)?;
        // The pairs in use carry on until replaced.
        let previous: Vec<_> = st
            .components
            .iter()
            .map(|c| {
                c.selected
                    .and_then(|id| st.checklist.get(id))
                    .filter(|_| c.state != ComponentState::Failed)
                    .map(|p| (p.base(), p.remote_addr()))
                    .or(c.previous)
            })
            .collect();
        st.local_credentials = credentials;
        st.local_key = key;
        st.remote = None;
        st.local.clear();
        st.remote_candidates.clear();
        st.unresolved.clear();
        st.checklist = Checklist::new(max_pairs);
        st.remote_end_of_candidates = false;
        st.gathering = Gathering::NotStarted;
        st.prflx_count = 0;
        st.patience = Patience::NotStarted;
        let mut changes = Vec::new();
        for (c, previous) in st.components.iter_mut().zip(previous) {
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
                changes.push((c.id, state));
            }
        }
        for (component, state) in changes {
            self.push_event(Event::ComponentStateChanged {
                stream,
                component,
                state,
                reason: None,
            });
        }
        // Allocations of bases that were removed (an interface gone) are released.
        for r in &mut self.relays {
            let kept = r.stream == s
                && self.streams[s]
                    .component(r.component)
                    .is_some_and(|c| c.bases.contains(&r.base));
            if r.stream == s && !kept && !r.retired {
                r.retired = true;
                r.pending = false;
                r.client.handle_close(now);
            }
        }
        self.gather(now, s);
        self.drive(now);
        Ok(())
    }
}

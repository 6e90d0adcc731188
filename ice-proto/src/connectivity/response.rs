//! The response side (RFC 8445 §7.2.5): the answers to our checks — 487 role conflict
//! (§7.2.5.1), non-symmetric addresses (§7.2.5.2.1), errors (§7.2.5.2.4), peer-reflexive local
//! candidates (§7.2.5.3.1), the valid list (§7.2.5.3.2) and unfreezing (§7.2.5.3.3) — told
//! apart from the answers to consent checks.

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::{CryptoRng, RngCore};
use stun_proto::Message;
use stun_proto::time::saturating_add;

use crate::agent::Agent;
use crate::candidate::{Candidate, CandidateType};
use crate::check::{CheckOutcome, read_response};
use crate::checklist::PairId;
use crate::event::ComponentState;
use crate::received::{DropReason, Received};

impl<R: RngCore + CryptoRng> Agent<R> {
    /// A Binding response: to one of our checks or consent checks? `None` if neither.
    pub(crate) fn handle_check_response<'a>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        message: &Message<'_>,
    ) -> Option<Received<'a>> {
        let tid = message.transaction_id();
        for s in 0..self.streams.len() {
            if let Some((id, use_candidate, controlling)) =
                self.streams[s].checklist.find_transaction(&tid)
            {
                return Some(self.on_check_response(
                    now,
                    (s, id),
                    (use_candidate, controlling),
                    source,
                    destination,
                    message,
                ));
            }
            let consent = self.streams[s]
                .components
                .iter()
                .position(|c| c.consent.as_ref().is_some_and(|k| k.is_ours(&tid)));
            if let Some(i) = consent {
                return Some(self.on_consent_response(now, s, i, source, destination, message));
            }
        }
        None
    }

    /// A response to the check of pair `id` (§7.2.5).
    fn on_check_response<'a>(
        &mut self,
        now: Instant,
        (s, id): (usize, PairId),
        (use_candidate, sent_controlling): (bool, bool),
        source: SocketAddr,
        destination: SocketAddr,
        message: &Message<'_>,
    ) -> Received<'a> {
        let tid = message.transaction_id();
        let st = &mut self.streams[s];
        let Some(remote) = &st.remote else {
            return Received::Dropped(DropReason::BadIntegrity);
        };
        let authentic = message.verify_integrity(&remote.key).is_ok()
            && (!message.has_fingerprint() || message.verify_fingerprint().is_ok());
        if !authentic {
            // RFC 8489 §9.1.4: discarded, since anyone could have sent it; a 401 is counted
            // apart — every check answered so means the peer refuses the password we have
            // for it.
            if is_unauthenticated(message) {
                self.stats.unauthenticated_answers += 1;
            } else {
                self.stats.bad_integrity += 1;
            }
            return Received::Dropped(DropReason::BadIntegrity);
        }
        self.stats.responses_received += 1;
        st.checklist.cancelled.retain(|c| c.tid != tid);
        let Some(pair) = st.checklist.get(id) else {
            return Received::Stun;
        };
        let outcome = read_response(message);
        // §7.2.5.2.1: the response must come from where the request went, to where it
        // came from.
        let symmetric = source == pair.remote_addr() && destination == pair.base();
        let current = pair.in_flight().filter(|f| f.tid == tid);
        // Karn: an RTT only from a check answered at its first send.
        let rtt = current
            .filter(|_| symmetric)
            .and_then(|f| f.backoff.rtt(now));
        let current = current.is_some();
        let valid = pair.valid();
        if let Some(rtt) = rtt {
            st.checklist.set_rtt(id, rtt);
        }
        // A failure answering a check this pair no longer waits for (one cancelled by a
        // triggered check, §7.3.1.4) does not take back the success of a later check: the
        // pair stays valid (and, if selected, selected).
        let failure = !symmetric || matches!(outcome, CheckOutcome::Error(_));
        if failure && !current && valid {
            self.stats.stale_failures += 1;
            return Received::Stun;
        }
        if !symmetric {
            self.fail_pair(now, s, id);
            return Received::Stun;
        }
        match outcome {
            CheckOutcome::RoleConflict => {
                // §7.2.5.1: switch to the role opposite to the one the request declared,
                // and check the pair again.
                if sent_controlling == self.controlling {
                    self.switch_role(!sent_controlling);
                }
                let until = saturating_add(now, self.check_rto());
                self.streams[s].checklist.trigger(id, until);
            }
            CheckOutcome::Error(_) => self.fail_pair(now, s, id),
            CheckOutcome::Success(mapped) => {
                self.on_check_success(now, s, id, (use_candidate, current), mapped);
            }
        }
        Received::Stun
    }

    /// A successful check (§7.2.5.3).
    /// `current` says whether it answers the pair's latest check, rather than one that a
    /// later check cancelled (§7.3.1.4).
    fn on_check_success(
        &mut self,
        now: Instant,
        s: usize,
        id: PairId,
        (use_candidate, current): (bool, bool),
        mapped: SocketAddr,
    ) {
        let controlling = self.controlling;
        let Some(pair) = self.streams[s].checklist.get(id) else {
            return;
        };
        let (component, base, local, foundation) = (
            pair.component(),
            pair.base(),
            pair.local(),
            pair.foundation(),
        );
        // §7.2.5.3.1: the mapped address names the valid pair's local candidate; a new one is
        // peer-reflexive, with the priority the request carried.
        let known = self.streams[s]
            .local
            .iter()
            .position(|l| l.addr == mapped && l.base == base);
        let valid_local = match known {
            Some(i) => i,
            None => {
                let local_pref = self.streams[s]
                    .local
                    .get(local)
                    .map_or(0, |l| (l.candidate.priority >> 8) as u16);
                let candidate = Candidate::new(
                    CandidateType::PeerReflexive,
                    component,
                    mapped,
                    base,
                    None,
                    local_pref,
                );
                self.add_local(s, candidate, mapped, base).unwrap_or(local)
            }
        };
        // §7.2.5.3.2: the valid list; §7.2.5.3.3: the pair succeeded (see
        // `Checklist::succeed` for the success of a cancelled check, §7.3.1.4).
        let roles = (use_candidate, controlling);
        let Some(nominated) = self.streams[s]
            .checklist
            .succeed(id, valid_local, current, roles)
        else {
            return;
        };
        for st in &mut self.streams {
            st.checklist.unfreeze(foundation);
        }
        let Some(c) = self.streams[s].component_mut(component) else {
            return;
        };
        c.first_valid_at.get_or_insert(now);
        if matches!(
            c.state,
            ComponentState::Disconnected | ComponentState::Gathering | ComponentState::Connecting
        ) {
            self.set_component_state(s, component, ComponentState::Connected, None);
        }
        if nominated {
            self.select(now, s, component);
        }
    }
}

/// Whether `message` is a 401 Unauthenticated error response (RFC 8489 §9.1.3).
fn is_unauthenticated(message: &Message<'_>) -> bool {
    message.class() == stun_proto::Class::Error
        && message
            .get::<stun_proto::attribute::ErrorCode<'_>>()
            .and_then(Result::ok)
            .is_some_and(|e| e.code() == 401)
}

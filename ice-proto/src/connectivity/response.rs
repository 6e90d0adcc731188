//! The response side (RFC 8445 §7.2.5): the answers to our checks — 487 role conflict
//! (§7.2.5.1), non-symmetric addresses (§7.2.5.2.1), errors (§7.2.5.2.4), peer-reflexive local
//! candidates (§7.2.5.3.1), the valid list (§7.2.5.3.2) and unfreezing (§7.2.5.3.3) — told
//! apart from the answers to consent checks.

use std::net::SocketAddr;

use rand_core::RngCore;
use stun_proto::time::saturating_add;
use stun_proto::{Message, TransactionId};

use crate::candidate::{Candidate, CandidateType};
use crate::check::{CheckOutcome, read_response};
use crate::checklist::PairId;
use crate::context::{Ctx, Intent};
use crate::event::ComponentState;
use crate::handled::{DropReason, Handled};
use crate::path::Path;
use crate::stream::Stream;

/// Which of a stream's transactions a response answers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Answers {
    /// The check of a pair, sent with USE-CANDIDATE or not, as controlling or not.
    Check {
        pair: PairId,
        use_candidate: bool,
        controlling: bool,
    },
    /// A consent check of the component at this index.
    Consent(usize),
}

impl Stream {
    /// What transaction `tid` of this stream is, if it is one.
    pub(crate) fn answers(&self, tid: &TransactionId) -> Option<Answers> {
        if let Some((pair, use_candidate, controlling)) = self.checklist.find_transaction(tid) {
            return Some(Answers::Check {
                pair,
                use_candidate,
                controlling,
            });
        }
        self.components
            .iter()
            .position(|c| c.consent.as_ref().is_some_and(|k| k.is_ours(tid)))
            .map(Answers::Consent)
    }

    /// A Binding response to one of this stream's transactions (`answers`).
    pub(crate) fn handle_check_response<'a, R: RngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        answers: Answers,
        path: Path,
        message: &Message<'_>,
    ) -> Handled<'a> {
        match answers {
            Answers::Check {
                pair,
                use_candidate,
                controlling,
            } => self.on_check_response(ctx, pair, (use_candidate, controlling), path, message),
            Answers::Consent(i) => self.on_consent_response(ctx, i, path, message),
        }
    }

    /// A response to the check of pair `id` (§7.2.5).
    fn on_check_response<'a, R: RngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        id: PairId,
        (use_candidate, sent_controlling): (bool, bool),
        path: Path,
        message: &Message<'_>,
    ) -> Handled<'a> {
        let now = ctx.now;
        let tid = message.transaction_id();
        let st = &mut *self;
        let Some(remote) = &st.remote else {
            return Handled::Dropped(DropReason::BadIntegrity);
        };
        let authentic = message.verify_integrity(&remote.key).is_ok()
            && (!message.has_fingerprint() || message.verify_fingerprint().is_ok());
        if !authentic {
            // RFC 8489 §9.1.4: discarded, since anyone could have sent it; a 401 is counted
            // apart — every check answered so means the peer refuses the password we have
            // for it.
            if is_unauthenticated(message) {
                ctx.stats.unauthenticated_answers += 1;
            } else {
                ctx.stats.bad_integrity += 1;
            }
            return Handled::Dropped(DropReason::BadIntegrity);
        }
        ctx.stats.responses_received += 1;
        st.checklist.cancelled.retain(|c| c.tid != tid);
        let Some(pair) = st.checklist.get(id) else {
            return Handled::Consumed;
        };
        let outcome = read_response(message);
        // §7.2.5.2.1: the response must come from where the request went, to where it
        // came from.
        let symmetric = path == pair.path();
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
            ctx.stats.stale_failures += 1;
            return Handled::Consumed;
        }
        if !symmetric {
            self.fail_pair(ctx, id);
            return Handled::Consumed;
        }
        match outcome {
            CheckOutcome::RoleConflict => {
                // §7.2.5.1: switch to the role opposite to the one the request declared,
                // and check the pair again.
                if sent_controlling == ctx.role.controlling {
                    self.switch_role(ctx, !sent_controlling);
                }
                let until = saturating_add(now, self.check_rto(ctx));
                self.checklist.trigger(id, until);
            }
            CheckOutcome::Error(_) => self.fail_pair(ctx, id),
            CheckOutcome::Success(mapped) => {
                self.on_check_success(ctx, id, (use_candidate, current), mapped);
            }
        }
        Handled::Consumed
    }

    /// A successful check (§7.2.5.3).
    /// `current` says whether it answers the pair's latest check, rather than one that a
    /// later check cancelled (§7.3.1.4).
    fn on_check_success<R: RngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        id: PairId,
        (use_candidate, current): (bool, bool),
        mapped: SocketAddr,
    ) {
        let now = ctx.now;
        let controlling = ctx.role.controlling;
        let Some(pair) = self.checklist.get(id) else {
            return;
        };
        let (component, base, local, foundation) = (
            pair.component(),
            pair.base(),
            pair.local(),
            pair.foundation(),
        );
        // §7.2.5.3.1: the mapped address names the valid pair's local candidate; a new one is
        // peer-reflexive, with the priority the request carried. Over TCP the mapped address
        // is the connection's own port, which no candidate has: the pair itself is valid
        // (RFC 6544 §7.2.2).
        let tcp = pair.path().transport.is_reliable();
        let known = if tcp {
            Some(local)
        } else {
            (self.local.iter()).position(|l| l.addr == mapped && l.base == base && l.is_udp())
        };
        let valid_local = match known {
            Some(i) => i,
            None => {
                let local_pref = self
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
                self.add_local(ctx, candidate, mapped, base)
                    .unwrap_or(local)
            }
        };
        // §7.2.5.3.2: the valid list; §7.2.5.3.3: the pair succeeded (see
        // `Checklist::succeed` for the success of a cancelled check, §7.3.1.4).
        let roles = (use_candidate, controlling);
        let valid_priority = self
            .local
            .get(valid_local)
            .map_or(0, |l| l.candidate.priority);
        let valid_local = (valid_local, valid_priority);
        let Some(nominated) = self.checklist.succeed(id, valid_local, current, roles) else {
            return;
        };
        self.checklist.unfreeze(foundation);
        ctx.out.push(Intent::Unfreeze(foundation));
        let Some(c) = self.component_mut(component) else {
            return;
        };
        c.first_valid_at.get_or_insert(now);
        if matches!(
            c.state,
            ComponentState::Disconnected | ComponentState::Gathering | ComponentState::Connecting
        ) {
            self.set_component_state(ctx, component, ComponentState::Connected, None);
        }
        if nominated {
            self.select(ctx, component);
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

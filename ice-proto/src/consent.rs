//! Liveness of a selected pair: RFC 7675 consent freshness and RFC 8445 §11 keepalives.
//!
//! Consent (RFC 7675 §5.1): once a pair is selected the agent sends a Binding request on it
//! at intervals drawn uniformly from 0.8–1.2 × the base interval (5 s by default), each a new
//! transaction that is not retransmitted; an authenticated success response from the remote
//! address refreshes consent. Consent expires 30 s after the last refresh: the component
//! fails and the application may no longer send on the pair (RFC 7675 §5.1: "it MUST cease
//! transmission").
//!
//! A check that is not answered within the recheck interval (1 s by default, randomized the
//! same way) is followed by another check then rather than after the full interval. RFC 7675
//! leaves the interval to the sender and only forbids retransmitting a check; since each
//! check is sent once, one lost datagram would otherwise cost 4–6 s of the 30 s budget, and
//! on a path losing half its round trips six losses in a row (3% per window) expire consent
//! on a live pair. With rechecks about 25 checks fit in 30 s. libwebrtc likewise pings an
//! unresponsive selected connection faster. `docs/ice.md` has the figures.
//!
//! Keepalives (RFC 8445 §11): when nothing was sent on the selected pair for Tr (15 s), a
//! Binding indication goes out. With consent on, its checks every ~5 s keep the pair alive and
//! no keepalive is needed; with consent off (ICE without WebRTC), keepalives do it.

use bytes::Bytes;
use rand_core::RngCore;
use stun_proto::{Message, MessageBuilder, MessageType, TransactionId};

use crate::candidate::{CandidateType, priority};
use crate::check::{CheckOutcome, CheckRequest, build_request, read_response};
use crate::checklist::PairId;
use crate::context::Ctx;
use crate::event::{ComponentState, FailureReason};
use crate::freshness::{Consent, keepalive_due};
use crate::handled::{DropReason, Handled};
use crate::path::Path;
use crate::stream::Stream;

impl Stream {
    /// Sends due consent checks and keepalives; fails components whose consent expired.
    pub(crate) fn refresh_consent<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>) {
        let (now, life) = (ctx.now, ctx.config.consent_lifetime);
        for i in 0..self.components.len() {
            let c = &mut self.components[i];
            let (id, state) = (c.id, c.state);
            let Some(selected) = c.selected else {
                continue;
            };
            if state == ComponentState::Failed {
                continue;
            }
            let expired = c.consent.as_ref().map(|k| k.is_expired(now, life));
            let due = c.consent.as_ref().map(|k| k.next_check_at <= now);
            match (expired, due) {
                (Some(true), _) => {
                    // RFC 7675 §5.1: consent lost; stop sending on the pair.
                    c.consent = None;
                    let reason = Some(FailureReason::ConsentExpired);
                    self.set_component_state(ctx, id, ComponentState::Failed, reason);
                }
                (_, Some(true)) if ctx.config.lite => {
                    // A lite agent does not check; incoming checks keep it fresh.
                    if let Some(k) = &mut c.consent {
                        k.next_check_at = k.expires_at(life);
                    }
                }
                (_, Some(true)) => self.send_consent(ctx, i, selected),
                (_, Some(false)) => {}
                _ => self.send_keepalive(ctx, i, selected),
            }
        }
    }

    /// An RFC 7675 consent check on the selected pair of component index `i`.
    pub(crate) fn send_consent<R: RngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        i: usize,
        selected: PairId,
    ) {
        let Some(base) = ctx.config.consent_interval else {
            return;
        };
        let next = Consent::interval(ctx.rng, base);
        let recheck = Consent::interval(ctx.rng, ctx.config.consent_recheck_interval);
        let tid = TransactionId::random(ctx.rng);
        let (Some(remote), Some(pair)) = (&self.remote, self.checklist.get(selected)) else {
            return;
        };
        let local_pref = self
            .local
            .get(pair.local())
            .map_or(0, |l| (l.candidate.priority >> 8) as u16);
        let check = CheckRequest {
            username: &remote.username,
            priority: priority(
                CandidateType::PeerReflexive.preference(),
                local_pref,
                pair.component(),
            ),
            role: ctx.role.declared(),
            use_candidate: false,
        };
        let path = pair.path();
        let Ok(request) = build_request(tid, &check, &remote.key) else {
            return;
        };
        let Some(c) = self.components.get_mut(i) else {
            return;
        };
        if let Some(consent) = &mut c.consent {
            consent.on_sent(ctx.now, tid, next, recheck);
        }
        c.last_sent = Some(ctx.now);
        ctx.stats.consent_checks += 1;
        ctx.send(path, request);
    }

    /// An RFC 8445 §11 keepalive (a Binding indication) when nothing went out for Tr.
    fn send_keepalive<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>, i: usize, selected: PairId) {
        let (now, tr) = (ctx.now, ctx.config.keepalive_interval);
        let Some(pair) = self.checklist.get(selected) else {
            return;
        };
        let Some(c) = self.components.get_mut(i) else {
            return;
        };
        let last = *c.last_sent.get_or_insert(now);
        if keepalive_due(last, tr) > now {
            return;
        }
        c.last_sent = Some(now);
        let path = pair.path();
        let tid = TransactionId::random(ctx.rng);
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_INDICATION, tid);
        if b.add_fingerprint().is_ok() {
            let payload: Bytes = b.into_bytes();
            ctx.send(path, payload);
        }
    }

    /// A response to a consent check of component index `i`.
    pub(crate) fn on_consent_response<'a, R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        i: usize,
        path: Path,
        message: &Message<'_>,
    ) -> Handled<'a> {
        let Some(remote) = &self.remote else {
            return Handled::Dropped(DropReason::BadIntegrity);
        };
        if message.verify_integrity(&remote.key).is_err() {
            ctx.stats.bad_integrity += 1;
            return Handled::Dropped(DropReason::BadIntegrity);
        }
        let Some(c) = self.components.get_mut(i) else {
            return Handled::Consumed;
        };
        let symmetric = c
            .selected
            .and_then(|id| self.checklist.get(id))
            .is_some_and(|p| p.path() == path);
        let success = matches!(read_response(message), CheckOutcome::Success(_));
        let mut rtt = None;
        if let Some(consent) = &mut c.consent {
            let tid = message.transaction_id();
            if symmetric && success {
                rtt = consent.on_response(ctx.now, &tid);
            }
        }
        if let (Some(rtt), Some(id)) = (rtt, c.selected) {
            self.checklist.set_rtt(id, rtt);
        }
        Handled::Consumed
    }
}

//! The request side (RFC 8445 §7.3): answering the peer's checks, with role conflict
//! resolution (§7.3.1.1), peer-reflexive remote candidates (§7.3.1.3), triggered checks
//! (§7.3.1.4), USE-CANDIDATE on the controlled side (§7.3.1.5), the checks an ICE-lite agent
//! gets (§8.2), and the role switch a conflict ends with.

use rand_core::RngCore;
use stun_proto::time::saturating_add;
use stun_proto::{Message, TransportProtocol};

use crate::candidate::{Candidate, CandidateType, TcpType, Transport};
use crate::check::{DeclaredRole, ReceivedCheck, build_error, build_success};
use crate::checklist::{Pair, PairId};
use crate::context::{Ctx, Intent};
use crate::event::{ComponentState, Event, Problem};
use crate::handled::{DropReason, Handled, NotIceReason};
use crate::path::Path;
use crate::stream::{RemoteCandidate, Stream};

impl Stream {
    /// A Binding request whose USERNAME names this stream: a connectivity check from the
    /// peer (§7.3).
    pub(crate) fn handle_check_request<'a, R: RngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        path: Path,
        message: &Message<'_>,
        check: &ReceivedCheck<'_>,
    ) -> Handled<'a> {
        let (now, source) = (ctx.now, path.remote);
        if message.verify_integrity(&self.local_key).is_err() {
            ctx.stats.bad_integrity += 1;
            // RFC 8489 §9.1.3: a check with our ufrag whose MESSAGE-INTEGRITY fails gets 401,
            // without integrity, so that the peer can tell a wrong password from a dead
            // path (libnice answers so too). Nothing else changes; a bad FINGERPRINT is no
            // STUN of ours and gets nothing.
            let fingerprint_ok = !message.has_fingerprint() || message.verify_fingerprint().is_ok();
            let ours = self.local.iter().any(|l| l.receives(path));
            if fingerprint_ok && ours {
                if let Ok(answer) = build_error(message, 401, None) {
                    ctx.send(path, answer);
                }
            }
            return Handled::Dropped(DropReason::BadIntegrity);
        }
        let key = &self.local_key;
        // Over TCP both host candidates of a base receive on it; a check on a connection of
        // a pair we formed finds that pair below, and one on a connection the peer opened
        // came to the passive candidate (RFC 6544 §7.2).
        let Some(local) = self.local.iter().position(|l| {
            l.receives(path)
                && ctx.config.is_paired(l.candidate.kind)
                && l.candidate.tcp_type != Some(TcpType::Active)
        }) else {
            return Handled::NotIce(NotIceReason::UnknownDestination);
        };
        let Some(priority) = check.priority else {
            if let Ok(answer) = build_error(message, 400, Some(key)) {
                ctx.send(path, answer);
            }
            return Handled::Consumed;
        };
        // §7.3.1.1: role conflicts.
        let tie_breaker = ctx.role.tie_breaker;
        match (ctx.role.controlling, check.role) {
            (true, Some(DeclaredRole::Controlling(tb))) => {
                if tie_breaker >= tb {
                    if let Ok(answer) = build_error(message, 487, Some(key)) {
                        ctx.send(path, answer);
                    }
                    return Handled::Consumed;
                }
                self.switch_role(ctx, false);
            }
            (false, Some(DeclaredRole::Controlled(tb))) => {
                if tie_breaker >= tb {
                    self.switch_role(ctx, true);
                } else {
                    if let Ok(answer) = build_error(message, 487, Some(key)) {
                        ctx.send(path, answer);
                    }
                    return Handled::Consumed;
                }
            }
            _ => {}
        }
        ctx.stats.requests_received += 1;
        // §7.3.1.2: the success response, from the address the request arrived on.
        if let Ok(answer) = build_success(message, source, &self.local_key) {
            ctx.send(path, answer);
        }
        let component = self.local[local].candidate.component;
        if self.component(component).is_none() {
            return Handled::Consumed;
        }
        // §7.3.1.3: a source address that is no remote candidate is peer-reflexive.
        let remote = self.remote_for(ctx, component, path, priority);
        let Some(remote) = remote else {
            return Handled::Consumed;
        };
        let existing = self
            .checklist
            .pairs()
            .iter()
            .find(|p| p.path() == path)
            .map(|p| p.id());
        let mut id = existing.or_else(|| self.make_pair(ctx, local, remote));
        // The controlling side: a check (or consent check) from the peer on a pair the
        // gate keeps out (below the selected one; a pair above is re-nomination's) may mean
        // the peer lost the selected pair's interface and moved there (a failover,
        // `network.rs`): probe the selected pair, and form and check this one meanwhile.
        if ctx.role.controlling && !check.use_candidate && !ctx.config.lite {
            let gate = self.gate(component, true, ctx.config);
            let selected = self.component(component).and_then(|c| c.selected);
            let gated = match id.and_then(|id| self.checklist.get(id)) {
                Some(p) => Some(p.id()) != selected && !gate.admits(p.priority()),
                // Not formed: refused by the gate (or the table is full).
                None => true,
            };
            let i = usize::from(component).checked_sub(1);
            if let Some(i) = i.filter(|_| gated && selected.is_some()) {
                self.start_probe(ctx, i);
                if id.is_none() {
                    id = self.make_pair(ctx, local, remote);
                }
            }
        }
        let Some(id) = id else {
            return Handled::Consumed;
        };
        if ctx.config.lite {
            self.lite_check(ctx, id, component, check.use_candidate);
            return Handled::Consumed;
        }
        let until = saturating_add(now, self.check_rto(ctx).saturating_mul(16));
        let controlling = ctx.role.controlling;
        let gate = self.gate(component, controlling, ctx.config);
        let Some(pair) = self.checklist.get(id) else {
            return Handled::Consumed;
        };
        // §7.3.1.4: triggered checks, unless the component already has its pair (with
        // re-nomination: unless the pair ranks below it) or the pair succeeded. "Succeeded"
        // is the pair being valid: a check of it succeeded, maybe one that a later check
        // (still in flight: a nomination, say) had cancelled.
        let succeeded = pair.valid();
        if gate.admits(pair.priority()) && !succeeded {
            self.checklist.trigger(id, until);
        }
        // §7.3.1.5: USE-CANDIDATE on the controlled side.
        if check.use_candidate && !controlling {
            let Some(priority) = self.checklist.get(id).map(Pair::priority) else {
                return Handled::Consumed;
            };
            if self.checklist.nominated_by_peer(id) {
                self.select(ctx, component);
            }
            // The selected pair nominated again: the peer came back to it (after a failover
            // of its own, say), so a lower nomination before it is superseded and the probe
            // that one started ends — without this, an unanswered probe then moved this side
            // down to the lower pair while the peer stayed here (each direction on its own
            // path for the rest of the call).
            if let Some(c) = self
                .component_mut(component)
                .filter(|c| c.selected == Some(id))
            {
                c.probe = None;
            }
            // A nomination below the selected pair: is the selected pair still there?
            let below = self
                .component(component)
                .and_then(|c| c.selected)
                .and_then(|id| self.checklist.get(id))
                .is_some_and(|sel| sel.valid_priority() > priority);
            if let Some(i) = usize::from(component).checked_sub(1).filter(|_| below) {
                self.start_probe(ctx, i);
            }
        }
        Handled::Consumed
    }

    /// The remote candidate at `path`'s remote address and transport, learnt as
    /// peer-reflexive if new (§7.3.1.3; over TCP an active one, RFC 6544 §7.2).
    fn remote_for<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        component: u16,
        path: Path,
        priority: u32,
    ) -> Option<usize> {
        let max = ctx.config.max_candidates;
        let source = path.remote;
        let transport = match path.transport {
            TransportProtocol::Tcp => Transport::Tcp,
            _ => Transport::Udp,
        };
        let st = self;
        if let Some(i) = st.remote_candidates.iter().position(|r| {
            r.addr == source
                && r.candidate.component == component
                && r.candidate.transport == transport
        }) {
            return Some(i);
        }
        if st.remote_candidates.len() >= max {
            ctx.event(Event::Problem(Problem::CandidateLimitReached {
                stream: st.id,
            }));
            return None;
        }
        st.prflx_count += 1;
        let mut candidate = Candidate::new(
            CandidateType::PeerReflexive,
            component,
            source,
            source,
            None,
            0,
        );
        // §7.3.1.3: the priority from PRIORITY, an arbitrary unique foundation, no related
        // address (the peer's base is unknown).
        candidate.priority = priority;
        candidate.foundation = format!("prflx{}", st.prflx_count);
        candidate.related = None;
        if transport == Transport::Tcp {
            candidate.transport = transport;
            candidate.tcp_type = Some(TcpType::Active);
        }
        st.remote_candidates.push(RemoteCandidate {
            candidate: candidate.clone(),
            addr: source,
            learnt: true,
        });
        let index = st.remote_candidates.len() - 1;
        ctx.event(Event::NewPeerReflexiveRemoteCandidate {
            stream: st.id,
            candidate,
        });
        Some(index)
    }

    /// A lite agent received an authenticated check on pair `id` (§7.3.1.4, §7.3.1.5 for
    /// lite): the pair is valid, nominated if the check says so; a check on the selected
    /// pair refreshes its liveness.
    fn lite_check<R: RngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        id: PairId,
        component: u16,
        nominate: bool,
    ) {
        let now = ctx.now;
        self.checklist.lite_valid(id, nominate);
        let Some(c) = self.component_mut(component) else {
            return;
        };
        if c.selected == Some(id) {
            if let Some(consent) = &mut c.consent {
                consent.last_fresh = consent.last_fresh.max(now);
            }
        }
        c.first_valid_at.get_or_insert(now);
        if matches!(
            c.state,
            ComponentState::Disconnected | ComponentState::Gathering | ComponentState::Connecting
        ) {
            self.set_component_state(ctx, component, ComponentState::Connected, None);
        }
        if nominate {
            self.select(ctx, component);
        }
    }

    /// Switches the role after a conflict (§7.2.5.1, §7.3.1.1): pair priorities change,
    /// here at once and in the other check lists when the agent carries out the intent.
    pub(crate) fn switch_role<R>(&mut self, ctx: &mut Ctx<'_, R>, controlling: bool) {
        if ctx.role.controlling == controlling {
            return;
        }
        ctx.role.controlling = controlling;
        self.checklist.set_role(controlling);
        ctx.out.push(Intent::RoleSwitched);
        ctx.event(Event::RoleChanged { controlling });
    }
}

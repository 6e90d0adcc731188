//! Tests of the check list's transitions.

use super::*;
use std::net::SocketAddr;

/// A pair whose candidates both have `priority`, so that pairs rank as their
/// priorities do.
fn pair(component: u16, base: u16, remote: u16, foundation: u64, priority: u32) -> Pair {
    let addr = |port| SocketAddr::from(([10, 0, 0, 1], port));
    let spec = PairSpec {
        component,
        local: 0,
        remote: 0,
        path: Path::udp(addr(base), addr(remote)),
        foundation,
        local_priority: priority,
        remote_priority: priority,
    };
    Pair::new(spec, true)
}

/// The priority of a [`pair`] made with `priority`.
fn rank(priority: u32) -> u64 {
    pair_priority(priority, priority)
}

/// Fails `id` after `timeouts` unanswered checks.
fn time_out(list: &mut Checklist, id: PairId, timeouts: u8) {
    for _ in 0..timeouts {
        list.get_mut(id).unwrap().count_timeout();
    }
    list.fail(id);
}

/// A controlling check with USE-CANDIDATE sent at `t` with this `rto`, and its schedule
/// (RFC 8489's Rc = 7, Rm = 16, the RTO never doubling past `rto`).
fn nomination_in_flight(
    tid: TransactionId,
    t: Instant,
    rto: std::time::Duration,
) -> (InFlight, Schedule) {
    let schedule = Schedule {
        request_count: 7,
        last_wait_factor: 16,
        max_rto: rto,
    };
    let check = InFlight {
        tid,
        request: Bytes::new(),
        use_candidate: true,
        controlling: true,
        backoff: stun_proto::backoff::Backoff::start(t, rto, &schedule),
    };
    (check, schedule)
}

fn state(list: &Checklist, id: PairId) -> PairState {
    list.get(id).unwrap().state().clone()
}

fn id(added: Added) -> PairId {
    match added {
        Added::New(id) => id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn initial_states_follow_foundations_6_1_2_6() {
    let mut list = Checklist::new(100);
    // Foundation 1, component 1: the first of its foundation, Waiting.
    let a = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    // Foundation 1, component 2: Frozen behind it.
    let b = id(list.add(pair(2, 2, 2, 1, 40), false, true));
    // Foundation 2: Waiting.
    let c = id(list.add(pair(1, 3, 3, 2, 30), false, true));
    assert_eq!(state(&list, a), PairState::Waiting);
    assert_eq!(state(&list, b), PairState::Frozen);
    assert_eq!(state(&list, c), PairState::Waiting);
    // A foundation that succeeded elsewhere: Waiting at once (RFC 8838 §11).
    let d = id(list.add(pair(2, 4, 4, 1, 20), true, true));
    assert_eq!(state(&list, d), PairState::Waiting);
    // Highest priority first.
    let order: Vec<_> = list.pairs().iter().map(|p| p.priority()).collect();
    assert_eq!(order, [rank(50), rank(40), rank(30), rank(20)]);
}

#[test]
fn pruning_keeps_one_pair_per_base_and_remote_6_1_2_4() {
    let mut list = Checklist::new(100);
    let a = id(list.add(pair(1, 1, 9, 1, 50), false, true));
    // A server-reflexive candidate replaced by its base gives the same pair: pruned.
    assert_eq!(
        list.add(pair(1, 1, 9, 7, 40), false, true),
        Added::Existing(a)
    );
    assert_eq!(list.pairs().len(), 1);
}

#[test]
fn bounded_list_keeps_the_best_pairs_6_1_2_5() {
    let mut list = Checklist::new(3);
    for (i, prio) in [10, 20, 30].into_iter().enumerate() {
        list.add(pair(1, i as u16, 1, i as u64, prio), false, true);
    }
    // Lower than every pair: refused.
    assert_eq!(list.add(pair(1, 50, 1, 9, 5), false, true), Added::Full);
    // Higher: the lowest goes.
    id(list.add(pair(1, 51, 1, 9, 40), false, true));
    let order: Vec<_> = list.pairs().iter().map(|p| p.priority()).collect();
    assert_eq!(order, [rank(40), rank(30), rank(20)]);
    assert_eq!(list.dropped, 2);
}

/// Issue 15: a nomination (§8.1.1: queued as a triggered check) goes ahead of the triggered
/// checks already queued; the others keep their order.
#[test]
fn a_nomination_heads_the_triggered_queue() {
    let mut list = Checklist::new(100);
    let a = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let b = id(list.add(pair(2, 2, 2, 2, 40), false, true));
    let c = id(list.add(pair(1, 3, 3, 3, 30), false, true));
    let t = crate::test_support::t0();
    list.trigger(b, t);
    list.trigger(c, t);
    list.nominate(a, t);
    for x in [a, b, c] {
        assert_eq!(list.next_check(&[], |_| false, |_| false), Some(x));
        list.fail(x);
    }
}

/// Pairs that `wait` (the other lane's, or a relayed pair awaiting its permission) keep
/// their place in the triggered queue and are taken once they no longer wait.
#[test]
fn a_waiting_triggered_check_keeps_its_place() {
    let mut list = Checklist::new(100);
    let a = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let b = id(list.add(pair(2, 2, 2, 2, 40), false, true));
    let t = crate::test_support::t0();
    list.trigger(b, t);
    list.trigger(a, t);
    let not_b = |p: &Pair| p.id() == b;
    assert_eq!(list.next_check(&[], not_b, |_| false), Some(a));
    list.fail(a);
    assert_eq!(list.next_check(&[], not_b, |_| false), None);
    assert_eq!(list.next_check(&[], |_| false, |_| false), Some(b));
}

#[test]
fn next_check_triggered_then_waiting_then_unfreeze_6_1_4_2() {
    let mut list = Checklist::new(100);
    let a = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let b = id(list.add(pair(2, 2, 2, 1, 40), false, true));
    let c = id(list.add(pair(1, 3, 3, 2, 30), false, true));
    let t = crate::test_support::t0();
    // A triggered check goes before the higher-priority Waiting pair.
    list.trigger(c, t);
    assert_eq!(list.next_check(&[], |_| false, |_| false), Some(c));
    assert_eq!(list.next_check(&[], |_| false, |_| false), Some(a));
    // Mark a and c in progress; b stays Frozen while foundation 1 is active elsewhere.
    for x in [a, c] {
        list.fail(x);
    }
    assert_eq!(list.next_check(&[1], |_| false, |_| false), None);
    assert_eq!(state(&list, b), PairState::Frozen);
    // No list has foundation 1 active: unfrozen.
    assert_eq!(list.next_check(&[], |_| false, |_| false), Some(b));
    assert_eq!(state(&list, b), PairState::Waiting);
}

#[test]
fn success_unfreezes_the_foundation_7_2_5_3_3() {
    let mut list = Checklist::new(100);
    id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let b = id(list.add(pair(2, 2, 2, 1, 40), false, true));
    assert_eq!(state(&list, b), PairState::Frozen);
    list.unfreeze(1);
    assert_eq!(state(&list, b), PairState::Waiting);
}

#[test]
fn cancelled_transactions_still_match_until_they_expire_7_3_1_4() {
    let t = crate::test_support::t0();
    let mut list = Checklist::new(100);
    let a = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let tid = TransactionId::from([7; 12]);
    let rto = std::time::Duration::from_millis(500);
    let (check, _) = nomination_in_flight(tid, t, rto);
    list.start_check(a, check);
    assert_eq!(list.find_transaction(&tid), Some((a, true, true)));
    list.trigger(a, t + rto);
    assert_eq!(state(&list, a), PairState::Waiting);
    assert_eq!(list.find_transaction(&tid), Some((a, true, true)));
    assert_eq!(list.next_deadline(), Some(t + rto));
    list.expire_cancelled(t + rto);
    assert_eq!(list.find_transaction(&tid), None);
}

#[test]
fn stopping_a_component_removes_its_unchecked_pairs_8_1_2() {
    let mut list = Checklist::new(100);
    let a = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let b = id(list.add(pair(1, 2, 2, 2, 40), false, true));
    let c = id(list.add(pair(2, 3, 3, 3, 30), false, true));
    list.succeed(a, (0, 50), true, (false, true));
    list.trigger(b, crate::test_support::t0());
    list.stop_component(1, None);
    assert_eq!(state(&list, a), PairState::Succeeded);
    assert_eq!(state(&list, b), PairState::Failed);
    assert_eq!(state(&list, c), PairState::Waiting);
    assert_eq!(list.next_check(&[], |_| false, |_| false), Some(c));
}

#[test]
fn timed_out_pairs_above_the_floor_are_checked_again_a_bounded_number_of_times() {
    let mut list = Checklist::new(100);
    let high = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let refused = id(list.add(pair(1, 2, 2, 2, 45), false, true));
    let low = id(list.add(pair(1, 3, 3, 3, 30), false, true));
    let other = id(list.add(pair(2, 4, 4, 4, 60), false, true));
    for (p, timeouts) in [(high, 1), (refused, 0), (low, 1), (other, 1)] {
        time_out(&mut list, p, timeouts);
    }
    list.retry_timed_out(1, rank(40), 3);
    assert_eq!(
        state(&list, high),
        PairState::Waiting,
        "timed out, above the floor"
    );
    assert_eq!(
        state(&list, refused),
        PairState::Failed,
        "failed otherwise: final"
    );
    assert_eq!(state(&list, low), PairState::Failed, "below the floor");
    assert_eq!(state(&list, other), PairState::Failed, "another component");
    // Out of rounds: the third timeout is final.
    list.get_mut(high).unwrap().wait();
    time_out(&mut list, high, 2);
    list.retry_timed_out(1, rank(40), 3);
    assert_eq!(state(&list, high), PairState::Failed);
}

#[test]
fn with_renomination_pairs_above_the_selected_one_are_kept() {
    let mut list = Checklist::new(100);
    let high = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let selected = id(list.add(pair(1, 2, 2, 2, 40), false, true));
    let low = id(list.add(pair(1, 3, 3, 3, 30), false, true));
    list.succeed(selected, (0, 40), true, (false, true));
    let floor = list.get(selected).unwrap().priority();
    list.stop_component(1, Some(floor));
    assert_eq!(state(&list, high), PairState::Waiting);
    assert_eq!(state(&list, low), PairState::Failed);
    assert_eq!(
        list.next_check(&[], |_| false, |p| p.priority() <= floor),
        Some(high)
    );
}

#[test]
fn lists_after_the_first_start_frozen_6_1_2_6() {
    let mut list = Checklist::new(100);
    let a = id(list.add(pair(1, 1, 1, 1, 50), false, false));
    assert_eq!(state(&list, a), PairState::Frozen);
    // Foundation 1 is In-Progress in the first list: nothing to unfreeze here.
    assert_eq!(list.next_check(&[1], |_| false, |_| false), None);
    assert_eq!(state(&list, a), PairState::Frozen);
    // Once no list has it Waiting or In-Progress, the unfreeze rule takes it.
    assert_eq!(list.next_check(&[], |_| false, |_| false), Some(a));
    // A foundation that succeeded elsewhere starts Waiting.
    let b = id(list.add(pair(1, 2, 2, 2, 40), true, false));
    assert_eq!(state(&list, b), PairState::Waiting);
}

#[test]
fn valid_pairs_rank_by_the_local_candidate_the_mapped_address_named_7_2_5_3_2() {
    // Both pairs were checked from a host base ranked 50; the check of the first came back
    // with a mapped address naming a server-reflexive candidate ranked 10, the second's
    // with the host candidate itself (no NAT). As checked the first ranks higher; as valid
    // pairs — how the peer ranks the same paths — the second does.
    let mut list = Checklist::new(100);
    let natted = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let direct = id(list.add(pair(1, 2, 2, 2, 40), false, true));
    list.succeed(natted, (1, 10), true, (false, true));
    list.succeed(direct, (2, 40), true, (false, true));
    assert!(list.get(natted).unwrap().priority() > list.get(direct).unwrap().priority());
    assert_eq!(
        list.get(natted).unwrap().valid_priority(),
        pair_priority(10, 50)
    );
    assert_eq!(list.best_valid(1).map(Pair::id), Some(direct));
    // The controlled side selects among nominated pairs the same way (§8.1.1).
    for id in [natted, direct] {
        list.get_mut(id).unwrap().nominated_by_peer();
    }
    assert_eq!(list.best_nominated(1).map(Pair::id), Some(direct));
    // A role switch re-ranks valid pairs too.
    list.set_role(false);
    assert_eq!(
        list.get(natted).unwrap().valid_priority(),
        pair_priority(50, 10)
    );
}

#[test]
fn a_selection_abandons_nominations_of_lower_pairs_in_flight() {
    let t = crate::test_support::t0();
    let mut list = Checklist::new(100);
    let high = id(list.add(pair(1, 1, 1, 1, 50), false, true));
    let low = id(list.add(pair(1, 2, 2, 2, 30), false, true));
    for p in [high, low] {
        list.succeed(p, (0, if p == high { 50 } else { 30 }), true, (false, true));
    }
    // The lower pair's nomination went out first and is still unanswered.
    list.nominate(low, t);
    let rto = std::time::Duration::from_millis(500);
    let tid = TransactionId::from([9; 12]);
    let (check, schedule) = nomination_in_flight(tid, t, rto);
    list.start_check(low, check);
    // The better pair's nomination succeeded and it was selected.
    list.nominate(high, t);
    list.succeed(high, (0, 50), true, (true, true));
    let floor = list.get(high).unwrap().valid_priority();
    list.abandon_nominations_below(1, floor, t + rto * 16);
    let l = list.get(low).unwrap();
    assert!(!l.nominating() && !l.nominated() && l.valid());
    assert_eq!(state(&list, low), PairState::Succeeded);
    // No more retransmissions of it; a late answer still matches (§7.3.1.4).
    let (mut resend, mut timed_out) = (Vec::new(), Vec::new());
    list.expire_checks(t + rto * 4, &schedule, &mut resend, &mut timed_out);
    assert!(resend.is_empty() && timed_out.is_empty());
    assert_eq!(list.find_transaction(&tid), Some((low, true, true)));
    assert!(list.get(high).unwrap().nominated());
}

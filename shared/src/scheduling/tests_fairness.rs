//! Unit tests of the fair-sharing rules of DESIGN.md §9: quotas, fair share, aging.

use chrono::TimeDelta;

use super::tests::{ago, cluster, id, input, pending, res, running, started, t0, victims, waiting};
use super::*;

const ALICE: Uuid = Uuid::from_u128(0xa11ce);
const BOB: Uuid = Uuid::from_u128(0xb0b);

fn by(submitter: Uuid, mut p: Pending, submitted_ago: i64) -> Pending {
    p.submitter = submitter;
    p.created_at = ago(submitted_ago);
    p.queued_at = p.created_at;
    p
}

fn one_core(n: u128) -> Pending {
    pending(n, None, 50, res(1, 1, 0))
}

#[test]
fn fair_share_interleaves_two_submitters_of_equal_priority() {
    // Alice queued four before Bob queued his four; room for four.
    let mut pending = Vec::new();
    for i in 0..4 {
        pending.push(by(ALICE, one_core(10 + i), 100 - i as i64));
        pending.push(by(BOB, one_core(20 + i), 50 - i as i64));
    }
    let mut fair = input(vec![cluster(1, res(4, 100, 0))], vec![], pending);
    assert_eq!(
        started(&plan(&fair)),
        [id(10), id(11), id(12), id(13)],
        "without fair share: submission order"
    );
    fair.fairness.fair_share = true;
    // Alice first (equal shares, older), then whoever holds less: 2 + 2.
    assert_eq!(started(&plan(&fair)), [id(10), id(20), id(11), id(21)]);
}

#[test]
fn fair_share_counts_what_each_submitter_already_runs() {
    let mut held = running(30, 1, 50, res(2, 2, 0), 600);
    held.submitter = ALICE;
    let mut fair = input(
        vec![cluster(1, res(6, 100, 0))],
        vec![held],
        vec![by(ALICE, one_core(10), 100), by(BOB, one_core(20), 10)],
    );
    fair.fairness.fair_share = true;
    // Bob holds nothing, so his newer deployment goes first; both fit.
    assert_eq!(started(&plan(&fair)), [id(20), id(10)]);
}

#[test]
fn fair_share_only_orders_within_one_priority() {
    let mut urgent = by(ALICE, one_core(11), 10);
    urgent.priority = 90;
    let mut fair = input(
        vec![cluster(1, res(2, 100, 0))],
        vec![],
        vec![
            by(BOB, one_core(20), 100),
            by(ALICE, one_core(10), 100),
            urgent,
        ],
    );
    fair.fairness.fair_share = true;
    // Alice's priority 90 first although she then holds more; then Bob before Alice's 50.
    assert_eq!(started(&plan(&fair)), [id(11), id(20)]);
}

#[test]
fn a_quota_holds_back_the_submitters_own_work_only() {
    let mut capped = input(
        vec![cluster(1, res(10, 100, 0))],
        vec![],
        vec![
            by(ALICE, one_core(10), 40),
            by(ALICE, one_core(11), 30),
            by(ALICE, one_core(12), 20),
            by(BOB, one_core(20), 10),
        ],
    );
    capped
        .fairness
        .quotas
        .insert(ALICE, Resources::new(2000, UNLIMITED, UNLIMITED));
    let plan = plan(&capped);
    assert_eq!(started(&plan), [id(10), id(11), id(20)]);
    let reason = waiting(&plan, 12);
    assert_eq!(reason.code, ReasonCode::QuotaExceeded);
    assert_eq!(reason.shortfall, Some(res(1, 0, 0)));
    assert_eq!(
        reason.message,
        "its submitter's quota is in use: needs 1 more CPU core of quota"
    );
    assert_eq!(
        serde_json::to_value(reason).unwrap()["code"],
        "quota_exceeded"
    );
}

#[test]
fn work_over_its_quota_never_preempts() {
    let mut low = running(30, 1, 10, res(4, 4, 0), 600);
    low.submitter = BOB;
    let mut urgent = by(ALICE, pending(10, None, 90, res(2, 2, 0)), 10);
    urgent.cluster_id = Some(id(1));
    let mut capped = input(vec![cluster(1, res(4, 4, 0))], vec![low], vec![urgent]);
    capped
        .fairness
        .quotas
        .insert(ALICE, Resources::new(1000, UNLIMITED, UNLIMITED));
    let plan = plan(&capped);
    assert!(plan.preemptions.is_empty());
    assert_eq!(waiting(&plan, 10).code, ReasonCode::QuotaExceeded);
    // Without the quota it would have preempted.
    capped.fairness.quotas.clear();
    assert_eq!(victims(&super::plan(&capped)), [id(30)]);
}

#[test]
fn a_quota_frees_as_the_submitters_own_work_is_evicted_or_done() {
    // Alice holds her whole 2-core quota with priority-10 work; her priority-90 submission
    // preempts that and takes its place: her total never passes the quota.
    let mut hers = running(30, 1, 10, res(2, 2, 0), 600);
    hers.submitter = ALICE;
    let urgent = by(ALICE, pending(10, Some(1), 90, res(2, 2, 0)), 10);
    let mut capped = input(vec![cluster(1, res(2, 2, 0))], vec![hers], vec![urgent]);
    capped
        .fairness
        .quotas
        .insert(ALICE, Resources::new(2000, UNLIMITED, UNLIMITED));
    // Over the quota until her own work goes: it waits, it does not preempt.
    let plan = plan(&capped);
    assert!(plan.starts.is_empty());
    assert_eq!(waiting(&plan, 10).code, ReasonCode::QuotaExceeded);
    capped.running.clear();
    assert_eq!(started(&super::plan(&capped)), [id(10)]);
}

#[test]
fn effective_priority_adds_the_capped_boost_for_time_waited() {
    let aging = Fairness {
        aging_points_per_hour: 10,
        aging_max_boost: 25,
        ..Fairness::default()
    };
    let waited = |seconds: i64| t0() - TimeDelta::seconds(seconds);
    assert_eq!(aging.effective_priority(40, waited(0), t0()), 40);
    // One point per 6 minutes, floored.
    assert_eq!(aging.effective_priority(40, waited(359), t0()), 40);
    assert_eq!(aging.effective_priority(40, waited(360), t0()), 41);
    assert_eq!(aging.effective_priority(40, waited(2 * 3600), t0()), 60);
    assert_eq!(aging.effective_priority(40, waited(100 * 3600), t0()), 65);
    // Queued in the future (clock skew): no boost, no penalty.
    assert_eq!(
        aging.effective_priority(40, t0() + TimeDelta::hours(1), t0()),
        40
    );
    assert_eq!(
        Fairness::default().effective_priority(40, waited(1 << 30), t0()),
        40
    );
}

#[test]
fn aging_moves_old_work_up_the_queue() {
    let old = by(ALICE, pending(10, None, 30, res(1, 1, 0)), 3 * 3600);
    let new = by(BOB, pending(20, None, 50, res(1, 1, 0)), 10);
    let mut aged = input(vec![cluster(1, res(1, 100, 0))], vec![], vec![old, new]);
    assert_eq!(started(&plan(&aged)), [id(20)]);
    aged.fairness.aging_points_per_hour = 10;
    aged.fairness.aging_max_boost = 30;
    // 30 + 30 = 60 > 50.
    assert_eq!(started(&plan(&aged)), [id(10)]);
}

#[test]
fn aging_never_grants_preemption() {
    // Boosted from 30 to 80, the old deployment comes first in the queue, but preempting
    // compares base priorities: it may not evict the 50 that runs.
    let mut busy = running(30, 1, 50, res(1, 1, 0), 600);
    busy.submitter = BOB;
    let old = by(ALICE, pending(10, Some(1), 30, res(1, 1, 0)), 10 * 3600);
    let mut aged = input(vec![cluster(1, res(1, 100, 0))], vec![busy], vec![old]);
    aged.fairness.aging_points_per_hour = 50;
    aged.fairness.aging_max_boost = 50;
    let plan = plan(&aged);
    assert!(plan.preemptions.is_empty());
    assert_eq!(waiting(&plan, 10).code, ReasonCode::InsufficientResources);
}

#[test]
fn a_higher_base_priority_after_a_boosted_lower_one_may_still_preempt() {
    // The boosted 30 goes first and may preempt nothing (everything runs at 40); the 90 after
    // it may preempt the 40s again.
    let mut busy = running(30, 1, 40, res(2, 2, 0), 600);
    busy.submitter = BOB;
    let old = by(ALICE, pending(10, None, 30, res(2, 2, 0)), 10 * 3600);
    let urgent = by(BOB, pending(20, None, 90, res(2, 2, 0)), 10);
    let mut aged = input(
        vec![cluster(1, res(2, 2, 0))],
        vec![busy],
        vec![old, urgent],
    );
    aged.fairness.aging_points_per_hour = 100;
    aged.fairness.aging_max_boost = 99;
    let plan = plan(&aged);
    assert_eq!(started(&plan), [id(20)]);
    assert_eq!(victims(&plan), [id(30)]);
    assert_eq!(waiting(&plan, 10).code, ReasonCode::InsufficientResources);
}

#[test]
fn a_fair_share_plan_does_not_depend_on_the_input_order() {
    let mut pending = Vec::new();
    for i in 0..6 {
        let who = if i % 3 == 0 { ALICE } else { BOB };
        pending.push(by(who, one_core(10 + i), 60 - i as i64 * 5));
    }
    let mut fair = input(vec![cluster(1, res(3, 100, 0))], vec![], pending);
    fair.fairness.fair_share = true;
    let forward = plan(&fair);
    fair.pending.reverse();
    assert_eq!(plan(&fair), forward);
}

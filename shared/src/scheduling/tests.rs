//! Unit tests of the rules, one scenario each.

use chrono::TimeDelta;

use super::reasons::describe;
use super::*;

pub(super) fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// The submitter of every deployment these helpers make.
pub(super) const SOMEONE: Uuid = Uuid::from_u128(0x5b);

pub(super) fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

pub(super) fn ago(seconds: i64) -> DateTime<Utc> {
    t0() - TimeDelta::seconds(seconds)
}

/// Whole cores, whole GiB, GPUs.
pub(super) fn res(cores: i64, gib: i64, gpus: i64) -> Resources {
    Resources::new(cores * 1000, gib * 1000, gpus)
}

fn gpus(n: i64) -> Resources {
    res(1, 1, n)
}

pub(super) fn cluster(n: u128, capacity: Resources) -> Cluster {
    Cluster {
        id: id(n),
        capacity,
        allocated: Resources::ZERO,
    }
}

pub(super) fn running(n: u128, on: u128, priority: i32, resources: Resources, age: i64) -> Running {
    Running {
        id: id(n),
        cluster_id: id(on),
        priority,
        resources,
        started_at: ago(age),
        created_at: ago(age + 60),
        requested_cluster_id: Some(id(on)),
        submitter: SOMEONE,
    }
}

pub(super) fn pending(n: u128, on: Option<u128>, priority: i32, resources: Resources) -> Pending {
    Pending {
        id: id(n),
        cluster_id: on.map(id),
        priority,
        resources,
        created_at: ago(10),
        dependencies: DependencyState::Satisfied,
        submitter: SOMEONE,
        queued_at: ago(10),
    }
}

pub(super) fn input(clusters: Vec<Cluster>, running: Vec<Running>, pending: Vec<Pending>) -> Input {
    Input {
        clusters,
        running,
        pending,
        now: t0(),
        min_runtime_seconds: 0,
        fairness: Fairness::default(),
    }
}

pub(super) fn started(plan: &Plan) -> Vec<Uuid> {
    plan.starts.iter().map(|s| s.deployment_id).collect()
}

pub(super) fn victims(plan: &Plan) -> Vec<Uuid> {
    plan.preemptions.iter().map(|p| p.victim_id).collect()
}

pub(super) fn waiting(plan: &Plan, n: u128) -> &Reason {
    &plan
        .waiting
        .iter()
        .find(|w| w.deployment_id == id(n))
        .expect("waiting")
        .reason
}

#[test]
fn auto_placed_work_larger_than_every_cluster_says_so_and_does_not_block_others() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4)), cluster(2, res(16, 32, 0))],
        vec![running(20, 1, 90, gpus(4), 60)],
        vec![
            // Fits cluster 1 once its GPUs free up: an ordinary wait.
            pending(10, None, 50, gpus(2)),
            // 8 GPUs: no cluster has that many.
            pending(11, None, 50, gpus(8)),
            pending(12, None, 10, res(4, 8, 0)),
        ],
    ));
    assert_eq!(started(&plan), [id(12)]);
    assert_eq!(waiting(&plan, 10).code, ReasonCode::InsufficientResources);
    let too_large = waiting(&plan, 11);
    assert_eq!(too_large.code, ReasonCode::ExceedsCapacity);
    assert!(too_large
        .message
        .starts_with("larger than the total capacity of every cluster"));
    assert_eq!(
        serde_json::to_value(too_large).unwrap()["code"],
        "exceeds_capacity"
    );
}

#[test]
fn starts_what_fits() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![],
        vec![
            pending(10, Some(1), 5, gpus(2)),
            pending(11, Some(1), 5, gpus(2)),
            pending(12, Some(1), 5, gpus(1)),
        ],
    ));
    assert_eq!(started(&plan), [id(10), id(11)]);
    assert!(plan
        .starts
        .iter()
        .all(|s| s.cluster_id == id(1) && s.preempted.is_empty()));
    assert_eq!(waiting(&plan, 12).code, ReasonCode::InsufficientResources);
    assert!(plan.preemptions.is_empty());
}

#[test]
fn free_capacity_counts_running_and_ignores_allocated() {
    let mut c = cluster(1, res(8, 64, 4));
    c.allocated = res(8, 64, 4);
    let plan = plan(&input(
        vec![c],
        vec![
            running(20, 1, 9, gpus(3), 0),
            running(21, 99, 9, gpus(4), 0),
        ],
        vec![
            pending(10, Some(1), 1, gpus(1)),
            pending(11, Some(1), 1, gpus(1)),
        ],
    ));
    assert_eq!(started(&plan), [id(10)]);
    assert_eq!(waiting(&plan, 11).shortfall, Some(Resources::new(0, 0, 1)));
}

#[test]
fn queue_order_is_priority_then_age_then_id() {
    let mut newest_high = pending(1, Some(1), 9, gpus(1));
    newest_high.created_at = ago(1);
    let mut old = pending(4, Some(1), 5, gpus(1));
    old.created_at = ago(100);
    let mut old_higher_id = pending(5, Some(1), 5, gpus(1));
    old_higher_id.created_at = ago(100);
    let mut young = pending(2, Some(1), 5, gpus(1));
    young.created_at = ago(50);
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 3))],
        vec![],
        vec![young, old_higher_id, newest_high, old],
    ));
    assert_eq!(started(&plan), [id(1), id(4), id(5)]);
    assert_eq!(plan.waiting.len(), 1);
    assert_eq!(plan.waiting[0].deployment_id, id(2));
}

#[test]
fn preempts_only_strictly_lower_priority() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 2))],
        vec![
            running(20, 1, 5, gpus(1), 100),
            running(21, 1, 4, gpus(1), 100),
        ],
        vec![pending(10, Some(1), 5, gpus(2))],
    ));
    assert!(plan.starts.is_empty());
    assert!(
        plan.preemptions.is_empty(),
        "a priority-5 victim cannot be spared, so no one goes"
    );
    let plan2 = super::plan(&input(
        vec![cluster(1, res(8, 64, 2))],
        vec![
            running(20, 1, 5, gpus(1), 100),
            running(21, 1, 4, gpus(1), 100),
        ],
        vec![pending(10, Some(1), 5, gpus(1))],
    ));
    assert_eq!(victims(&plan2), [id(21)]);
    assert_eq!(plan2.starts[0].preempted, [id(21)]);
}

#[test]
fn equal_priority_is_never_preempted() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 2))],
        vec![running(20, 1, 5, gpus(2), 10_000)],
        vec![pending(10, Some(1), 5, gpus(2))],
    ));
    assert!(plan.preemptions.is_empty());
    assert!(plan.starts.is_empty());
    assert_eq!(waiting(&plan, 10).code, ReasonCode::InsufficientResources);
}

#[test]
fn preempts_both_when_both_are_needed() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![
            running(20, 1, 1, gpus(2), 100),
            running(21, 1, 2, gpus(2), 100),
        ],
        vec![pending(10, Some(1), 9, gpus(4))],
    ));
    assert_eq!(started(&plan), [id(10)]);
    let mut preempted = plan.starts[0].preempted.clone();
    preempted.sort();
    assert_eq!(preempted, [id(20), id(21)]);
    assert!(plan.preemptions.iter().all(|p| p.preemptor_id == id(10)));
}

#[test]
fn preempts_only_the_necessary_victim() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![
            running(20, 1, 1, gpus(2), 100),
            running(21, 1, 1, gpus(2), 200),
        ],
        vec![pending(10, Some(1), 9, gpus(2))],
    ));
    assert_eq!(victims(&plan), [id(20)]);
    assert_eq!(plan.preemptions[0].resources, gpus(2));
    assert_eq!(plan.preemptions[0].cluster_id, id(1));
}

#[test]
fn prefers_the_lowest_priority_victim() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![
            running(20, 1, 3, gpus(2), 100),
            running(21, 1, 1, gpus(2), 100),
        ],
        vec![pending(10, Some(1), 9, gpus(2))],
    ));
    assert_eq!(victims(&plan), [id(21)]);
}

#[test]
fn prefers_many_low_priority_victims_to_one_higher() {
    // Priority comes before count: four priority-1 deployments go rather than one priority-2.
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 8))],
        vec![
            running(20, 1, 2, gpus(4), 100),
            running(21, 1, 1, gpus(1), 100),
            running(22, 1, 1, gpus(1), 100),
            running(23, 1, 1, gpus(1), 100),
            running(24, 1, 1, gpus(1), 100),
        ],
        vec![pending(10, Some(1), 9, gpus(4))],
    ));
    let mut gone = victims(&plan);
    gone.sort();
    assert_eq!(gone, [id(21), id(22), id(23), id(24)]);
}

#[test]
fn prefers_most_recently_started_among_equal_victims() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![
            running(20, 1, 1, gpus(2), 5_000),
            running(21, 1, 1, gpus(2), 50),
        ],
        vec![pending(10, Some(1), 9, gpus(2))],
    ));
    assert_eq!(victims(&plan), [id(21)]);
}

#[test]
fn min_runtime_protects_young_deployments() {
    let mut scenario = input(
        vec![cluster(1, res(8, 64, 4))],
        vec![
            running(20, 1, 1, gpus(2), 60),
            running(21, 1, 3, gpus(2), 3_600),
        ],
        vec![pending(10, Some(1), 9, gpus(2))],
    );
    scenario.min_runtime_seconds = 600;
    assert_eq!(
        victims(&plan(&scenario)),
        [id(21)],
        "the young one is lower but protected"
    );

    scenario.pending[0].resources = gpus(4);
    let blocked = plan(&scenario);
    assert!(blocked.preemptions.is_empty());
    assert_eq!(
        waiting(&blocked, 10).shortfall,
        Some(Resources::new(0, 0, 4))
    );

    scenario.min_runtime_seconds = 0;
    assert_eq!(victims(&plan(&scenario)).len(), 2);
}

#[test]
fn backfills_smaller_work_around_a_blocked_large_one() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![running(20, 1, 50, gpus(2), 100)],
        vec![
            pending(10, Some(1), 10, gpus(4)),
            pending(11, Some(1), 1, gpus(1)),
        ],
    ));
    assert_eq!(started(&plan), [id(11)]);
    let reason = waiting(&plan, 10);
    assert_eq!(reason.code, ReasonCode::InsufficientResources);
    // Measured against what the plan leaves free: 1 GPU, once the small one has started.
    assert_eq!(reason.shortfall, Some(Resources::new(0, 0, 3)));
}

#[test]
fn shortfall_names_missing_resources() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![running(20, 1, 50, res(6, 60, 2), 100)],
        vec![pending(10, Some(1), 10, Resources::new(3_500, 8_000, 4))],
    ));
    let reason = waiting(&plan, 10);
    assert_eq!(reason.shortfall, Some(Resources::new(1_500, 4_000, 2)));
    assert_eq!(
        reason.message,
        format!(
            "needs 1.5 more CPU cores, 4 more GiB of RAM and 2 more GPUs on cluster {}",
            id(1)
        )
    );
    assert_eq!(
        serde_json::to_value(reason).unwrap(),
        serde_json::json!({
            "code": "insufficient_resources",
            "message": reason.message,
            "shortfall": {"cpu_cores": 1.5, "ram_gib": 4.0, "gpu_count": 2},
        })
    );
}

#[test]
fn shortfall_message_reads_naturally() {
    let said = |shortfall: Resources| {
        let mut message = String::new();
        describe(&mut message, shortfall);
        message
    };
    assert_eq!(said(Resources::new(1000, 0, 0)), "needs 1 more CPU core");
    assert_eq!(said(Resources::new(1, 0, 0)), "needs 0.001 more CPU cores");
    assert_eq!(
        said(Resources::new(12_050, 0, 1)),
        "needs 12.05 more CPU cores and 1 more GPU"
    );
    assert_eq!(
        said(Resources::new(0, 250, 10)),
        "needs 0.25 more GiB of RAM and 10 more GPUs"
    );
    assert_eq!(
        said(Resources::new(0, 1_000_000, 0)),
        "needs 1000 more GiB of RAM"
    );
    assert_eq!(said(Resources::ZERO), "does not fit");
}

#[test]
fn unknown_cluster_leaves_the_deployment_pending_with_its_whole_request_missing() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![],
        vec![
            pending(10, Some(7), 1, gpus(1)),
            pending(11, None, 1, gpus(9)),
        ],
    ));
    assert_eq!(waiting(&plan, 10).shortfall, Some(gpus(1)));
    assert!(waiting(&plan, 10).message.contains(&id(7).to_string()));
    assert_eq!(waiting(&plan, 11).shortfall, Some(Resources::new(0, 0, 5)));
    let nowhere = super::plan(&input(vec![], vec![], vec![pending(12, None, 1, gpus(1))]));
    assert_eq!(waiting(&nowhere, 12).shortfall, Some(gpus(1)));
}

#[test]
fn dependency_failure_propagates_transitively() {
    let mut failed = pending(10, None, 5, gpus(0));
    failed.dependencies = DependencyState::Failed { dependency: id(99) };
    let mut child = pending(11, None, 5, gpus(0));
    child.dependencies = DependencyState::Waiting {
        unfinished: vec![id(10), id(98)],
    };
    let mut grandchild = pending(12, None, 5, gpus(0));
    grandchild.dependencies = DependencyState::Waiting {
        unfinished: vec![id(97), id(11)],
    };
    let mut unrelated = pending(13, None, 5, gpus(0));
    unrelated.dependencies = DependencyState::Waiting {
        unfinished: vec![id(97)],
    };
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![],
        vec![grandchild, unrelated, child, failed],
    ));
    assert_eq!(
        plan.dependency_failures,
        [
            DependencyFailure {
                deployment_id: id(10),
                dependency_id: id(99)
            },
            DependencyFailure {
                deployment_id: id(11),
                dependency_id: id(10)
            },
            DependencyFailure {
                deployment_id: id(12),
                dependency_id: id(11)
            },
        ]
    );
    assert_eq!(waiting(&plan, 13).code, ReasonCode::WaitingForDependencies);
    assert!(plan.starts.is_empty());
}

#[test]
fn waits_for_dependencies() {
    let mut dependent = pending(10, Some(1), 5, gpus(1));
    dependent.dependencies = DependencyState::Waiting {
        unfinished: vec![id(20), id(21)],
    };
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![],
        vec![dependent],
    ));
    assert!(plan.starts.is_empty());
    let reason = waiting(&plan, 10);
    assert_eq!(reason.code, ReasonCode::WaitingForDependencies);
    assert_eq!(reason.message, "waiting for 2 unfinished dependencies");
    assert_eq!(reason.shortfall, None);
    assert_eq!(
        serde_json::to_value(reason).unwrap(),
        serde_json::json!({"code": "waiting_for_dependencies", "message": reason.message})
    );
}

#[test]
fn auto_placement_picks_best_fit() {
    let clusters = vec![
        cluster(1, res(64, 512, 8)),
        cluster(2, res(8, 64, 2)),
        cluster(3, res(8, 64, 2)),
        cluster(4, res(4, 16, 1)),
    ];
    let plan = plan(&input(
        clusters,
        vec![],
        vec![pending(10, None, 5, res(4, 32, 2))],
    ));
    // Cluster 4 is too small; 2 and 3 tie on leftover, so the lower id wins.
    assert_eq!(plan.starts[0].cluster_id, id(2));
}

#[test]
fn auto_placement_fills_the_tightest_hole_first() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4)), cluster(2, res(8, 64, 4))],
        vec![running(20, 2, 1, gpus(3), 0)],
        vec![pending(10, None, 5, gpus(1)), pending(11, None, 5, gpus(4))],
    ));
    assert_eq!(plan.starts[0].cluster_id, id(2));
    assert_eq!(plan.starts[1].cluster_id, id(1));
}

#[test]
fn auto_preemption_picks_the_cluster_with_the_cheapest_victims() {
    let plan = plan(&input(
        vec![
            cluster(1, res(8, 64, 2)),
            cluster(2, res(8, 64, 2)),
            cluster(3, res(8, 64, 2)),
        ],
        vec![
            running(20, 1, 3, gpus(2), 100),
            running(21, 2, 2, gpus(1), 100),
            running(22, 2, 2, gpus(1), 100),
            running(23, 3, 2, gpus(2), 100),
        ],
        vec![pending(10, None, 9, gpus(2))],
    ));
    // Cluster 1's victim has priority 3; clusters 2 and 3 need priority 2, and 3 needs one.
    assert_eq!(plan.starts[0].cluster_id, id(3));
    assert_eq!(victims(&plan), [id(23)]);
}

#[test]
fn blocked_auto_placement_is_measured_against_the_cluster_missing_least() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4)), cluster(2, res(8, 64, 4))],
        vec![
            running(20, 1, 1, gpus(4), 100),
            running(21, 2, 9, res(1, 1, 3), 100),
        ],
        vec![
            pending(10, None, 8, gpus(8)),
            pending(11, Some(1), 5, res(1, 1, 2)),
        ],
    ));
    // When 10 was blocked, cluster 2 missed less (7 GPUs against 8). Once 11 has preempted
    // 20 and started, cluster 1 has 2 GPUs free: that is what 10 is told.
    assert_eq!(victims(&plan), [id(20)]);
    let reason = waiting(&plan, 10);
    assert_eq!(reason.shortfall, Some(Resources::new(0, 0, 6)));
    assert!(reason.message.ends_with(&format!("on cluster {}", id(1))));
    assert_eq!(waiting(&plan, 20).code, ReasonCode::Preempted);
}

#[test]
fn victim_is_replaced_elsewhere_in_the_same_pass() {
    let mut auto_victim = running(20, 1, 1, gpus(2), 100);
    auto_victim.requested_cluster_id = None;
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 2)), cluster(2, res(8, 64, 2))],
        vec![auto_victim],
        vec![pending(10, Some(1), 9, gpus(2))],
    ));
    assert_eq!(victims(&plan), [id(20)]);
    assert_eq!(started(&plan), [id(10), id(20)]);
    assert_eq!(plan.starts[1].cluster_id, id(2));
    assert!(plan.waiting.is_empty());
}

#[test]
fn victim_pinned_to_its_cluster_waits_as_preempted() {
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 2)), cluster(2, res(8, 64, 2))],
        vec![running(20, 1, 1, gpus(2), 100)],
        vec![pending(10, Some(1), 9, gpus(2))],
    ));
    assert_eq!(started(&plan), [id(10)]);
    let reason = waiting(&plan, 20);
    assert_eq!(reason.code, ReasonCode::Preempted);
    assert!(reason.message.contains(&id(10).to_string()));
    assert_eq!(reason.shortfall, Some(Resources::new(0, 0, 2)));
    assert_eq!(serde_json::to_value(reason).unwrap()["code"], "preempted");
}

#[test]
fn requeued_victim_keeps_its_queue_position() {
    // The victim (priority 5) comes back before the priority-3 deployment and takes cluster 2.
    let mut victim = running(20, 1, 5, gpus(2), 100);
    victim.requested_cluster_id = None;
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 2)), cluster(2, res(8, 64, 2))],
        vec![victim],
        vec![
            pending(10, Some(1), 9, gpus(2)),
            pending(11, None, 3, gpus(2)),
        ],
    ));
    assert_eq!(started(&plan), [id(10), id(20)]);
    assert_eq!(plan.waiting.len(), 1);
    assert_eq!(plan.waiting[0].deployment_id, id(11));
}

#[test]
fn dry_run_reports_would_preempt() {
    let state = input(
        vec![cluster(1, res(8, 64, 4))],
        vec![running(20, 1, 1, gpus(4), 100)],
        vec![],
    );
    let candidate = pending(10, Some(1), 9, gpus(2));
    let plan = dry_run(&state, &candidate);
    assert_eq!(started(&plan), [id(10)]);
    assert_eq!(plan.starts[0].preempted, [id(20)]);
    assert_eq!(victims(&plan), [id(20)]);
    assert!(
        super::plan(&state).preemptions.is_empty(),
        "without the candidate nothing is preempted: the eviction is the candidate's"
    );
}

//! Unit tests of the victim choice (the order of `preemption`'s doc): the fewest victims within
//! the lowest tier, and among the fewest, the reprieve's choice.

use super::preemption::{sum_from_here, victims_among, Slot, EXACT_UP_TO};
use super::tests::{cluster, id, input, pending, res, running, started, victims};
use super::*;

/// The example: X (2 cores, the oldest), Y and Z (1 core each), all of priority 1, fill
/// a 4-core cluster. Kubernetes' reprieve keeps X, the most important, and evicts Y and Z; one
/// victim is enough.
#[test]
fn evicts_one_larger_victim_rather_than_two_smaller_ones() {
    let full = || {
        vec![
            running(20, 1, 1, res(2, 2, 0), 5_000), // X
            running(21, 1, 1, res(1, 1, 0), 500),   // Y
            running(22, 1, 1, res(1, 1, 0), 50),    // Z
        ]
    };
    for requested in [Some(1), None] {
        let plan = plan(&input(
            vec![cluster(1, res(4, 64, 0))],
            full(),
            vec![pending(10, requested, 9, res(2, 2, 0))],
        ));
        assert_eq!(started(&plan), [id(10)]);
        assert_eq!(victims(&plan), [id(20)], "requested cluster {requested:?}");
    }
}

#[test]
fn of_several_single_victims_the_most_recently_started_goes() {
    // X or Y alone makes room (the reprieve keeps both and evicts Z and W): Y goes, X being
    // the older.
    let plan = plan(&input(
        vec![cluster(1, res(6, 64, 0))],
        vec![
            running(20, 1, 1, res(2, 2, 0), 5_000), // X
            running(21, 1, 1, res(2, 2, 0), 4_000), // Y
            running(22, 1, 1, res(1, 1, 0), 3_000), // Z
            running(23, 1, 1, res(1, 1, 0), 2_000), // W
        ],
        vec![pending(10, Some(1), 9, res(2, 2, 0))],
    ));
    assert_eq!(victims(&plan), [id(21)]);
}

#[test]
fn the_fewest_victims_may_mix_the_lowest_tier_and_below() {
    // Priority 1 holds 4 cores in all: a 5-core request needs a priority-2 victim. The reprieve
    // keeps A (the older priority 2) and evicts B and every priority 1, four victims; A with C
    // and one small priority 1 is three. Of the small ones, the most recently started goes.
    let plan = plan(&input(
        vec![cluster(1, res(7, 64, 0))],
        vec![
            running(20, 1, 2, res(2, 1, 0), 5_000), // A
            running(21, 1, 2, res(1, 1, 0), 4_000), // B
            running(22, 1, 1, res(2, 1, 0), 3_000), // C
            running(23, 1, 1, res(1, 1, 0), 2_000), // D
            running(24, 1, 1, res(1, 1, 0), 1_000), // E
        ],
        vec![pending(10, Some(1), 9, res(5, 1, 0))],
    ));
    assert_eq!(started(&plan), [id(10)]);
    // Least important first, as always.
    assert_eq!(victims(&plan), [id(24), id(22), id(20)]);
}

#[test]
fn lowest_tier_still_comes_before_fewest() {
    // One priority-3 victim would do; three priority-1 ones go instead.
    let plan = plan(&input(
        vec![cluster(1, res(6, 64, 0))],
        vec![
            running(20, 1, 3, res(3, 1, 0), 100),
            running(21, 1, 1, res(1, 1, 0), 100),
            running(22, 1, 1, res(1, 1, 0), 200),
            running(23, 1, 1, res(1, 1, 0), 300),
        ],
        vec![pending(10, Some(1), 9, res(3, 1, 0))],
    ));
    let mut gone = victims(&plan);
    gone.sort();
    assert_eq!(gone, [id(21), id(22), id(23)]);
}

#[test]
fn auto_placement_counts_the_fewest_victims_of_each_cluster() {
    // Cluster 1 needs two priority-1 victims; cluster 2, the example, needs one (the
    // reprieve would take two there as well, and the tie would go to cluster 1, the lower id).
    let plan = plan(&input(
        vec![cluster(1, res(2, 64, 0)), cluster(2, res(4, 64, 0))],
        vec![
            running(20, 1, 1, res(1, 1, 0), 100),
            running(21, 1, 1, res(1, 1, 0), 100),
            running(30, 2, 1, res(2, 2, 0), 5_000),
            running(31, 2, 1, res(1, 1, 0), 500),
            running(32, 2, 1, res(1, 1, 0), 50),
        ],
        vec![pending(10, None, 9, res(2, 2, 0))],
    ));
    assert_eq!(plan.starts[0].cluster_id, id(2));
    assert_eq!(victims(&plan), [id(30)]);
}

#[test]
fn several_short_resources_are_covered_together() {
    // Short of CPU and GPUs: G holds both and goes alone, rather than a CPU one and a GPU one.
    let plan = plan(&input(
        vec![cluster(1, res(8, 64, 4))],
        vec![
            running(20, 1, 1, res(4, 1, 2), 5_000), // G: the oldest, kept by the reprieve
            running(21, 1, 1, res(2, 1, 0), 400),
            running(22, 1, 1, res(1, 1, 1), 300),
            running(23, 1, 1, res(1, 1, 1), 200),
        ],
        vec![pending(10, Some(1), 9, res(4, 1, 2))],
    ));
    assert_eq!(victims(&plan), [id(20)]);
}

/// Slots of one cluster's eligible list, in keep order, for the pure search.
fn slots(items: &[(i32, Resources)]) -> Vec<Slot> {
    let mut slots: Vec<Slot> = items
        .iter()
        .enumerate()
        .map(|(index, &(priority, resources))| Slot {
            priority,
            resources,
            from_here: Resources::ZERO,
            index,
        })
        .collect();
    sum_from_here(&mut slots);
    slots
}

fn chosen(slots: &[Slot], free: Resources, need: Resources, exact_up_to: usize) -> Vec<usize> {
    let mut set = Vec::new();
    victims_among(slots, free, need, exact_up_to, |slot| set.push(slot.index));
    set
}

#[test]
fn beyond_the_exact_search_the_greedy_set_is_taken_when_smaller() {
    // Two 4-core deployments, the most important, then eight of 1 core; 8 cores needed. The
    // reprieve keeps the large ones and evicts the eight small ones; two are enough. Short of
    // one resource only, the greedy finds the fewest too.
    let mut items = vec![(1, res(4, 0, 0)), (1, res(4, 0, 0))];
    items.extend(std::iter::repeat_n((1, res(1, 0, 0)), 8));
    let slots = slots(&items);
    for exact_up_to in [0, 3, EXACT_UP_TO] {
        let set = chosen(&slots, Resources::ZERO, res(8, 0, 0), exact_up_to);
        assert_eq!(set, [0, 1], "exact up to {exact_up_to}");
    }
}

#[test]
fn the_exact_search_finds_fewer_than_the_greedy_when_several_resources_are_short() {
    // 4 cores and 4 GiB needed. The reprieve keeps A, B, C and D (the most important) and
    // evicts the four small ones. The greedy takes the most CPU (A, then D), then the most RAM
    // (B): three, none to spare. C and D are two.
    let items = [
        (1, res(3, 0, 0)), // A
        (1, res(0, 3, 0)), // B
        (1, res(2, 2, 0)), // C
        (1, res(2, 2, 0)), // D
        (1, res(1, 1, 0)),
        (1, res(1, 1, 0)),
        (1, res(1, 1, 0)),
        (1, res(1, 1, 0)),
    ];
    let slots = slots(&items);
    let need = res(4, 4, 0);
    assert_eq!(chosen(&slots, Resources::ZERO, need, EXACT_UP_TO), [2, 3]);
    assert_eq!(chosen(&slots, Resources::ZERO, need, 0), [0, 1, 3]);
}

#[test]
fn of_the_fewest_the_search_keeps_the_most_important() {
    // A and B together, or C and D together, make room: C and D go, A and B being the more
    // important. (The reprieve keeps all four and evicts the four small ones.)
    let items = [
        (1, res(4, 0, 0)), // A
        (1, res(0, 4, 0)), // B
        (1, res(2, 2, 0)), // C
        (1, res(2, 2, 0)), // D
        (1, res(1, 1, 0)),
        (1, res(1, 1, 0)),
        (1, res(1, 1, 0)),
        (1, res(1, 1, 0)),
    ];
    let set = chosen(&slots(&items), Resources::ZERO, res(4, 4, 0), EXACT_UP_TO);
    assert_eq!(set, [2, 3]);
}

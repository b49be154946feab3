//! The pure scheduling algorithm (DESIGN.md §3): from clusters, running and pending deployments,
//! decide what starts where, what gets preempted, and why everything else keeps waiting.
//!
//! No I/O, no clock, no randomness: the caller passes `now`, every tie is broken by id, and the
//! same input gives the same plan whatever the order of the input vectors.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::resources::Resources;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub id: Uuid,
    pub capacity: Resources,
    /// The books' figure, for callers: the plan recomputes free capacity from `Input::running`.
    pub allocated: Resources,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub id: Uuid,
    pub cluster_id: Uuid,
    pub priority: i32,
    pub resources: Resources,
    pub started_at: DateTime<Utc>,
    /// Submission time: a preempted deployment is requeued at its own queue position.
    pub created_at: DateTime<Utc>,
    /// The cluster it asked for (None = auto placement), so a requeued victim is placed again
    /// under its own rule rather than pinned to the cluster it was evicted from.
    pub requested_cluster_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyState {
    Satisfied,
    Waiting { unfinished: Vec<Uuid> },
    Failed { dependency: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: Uuid,
    /// None = auto placement on any cluster of `Input::clusters`.
    pub cluster_id: Option<Uuid>,
    pub priority: i32,
    pub resources: Resources,
    pub created_at: DateTime<Utc>,
    pub dependencies: DependencyState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The clusters placement may use (for auto placement: the organization's clusters).
    pub clusters: Vec<Cluster>,
    pub running: Vec<Running>,
    pub pending: Vec<Pending>,
    pub now: DateTime<Utc>,
    /// A running deployment younger than this is never preempted; 0 or less = off.
    pub min_runtime_seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// In the order decided.
    pub starts: Vec<Start>,
    /// Every victim, once, in the order decided.
    pub preemptions: Vec<Preemption>,
    /// Every deployment left pending (requeued victims included), in queue order.
    pub waiting: Vec<Waiting>,
    /// In queue order.
    pub dependency_failures: Vec<DependencyFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub deployment_id: Uuid,
    pub cluster_id: Uuid,
    pub resources: Resources,
    /// The deployments evicted to make room for this one.
    pub preempted: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    pub victim_id: Uuid,
    pub preemptor_id: Uuid,
    pub cluster_id: Uuid,
    /// What the victim gives back.
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub deployment_id: Uuid,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyFailure {
    pub deployment_id: Uuid,
    /// The direct dependency that failed (itself perhaps failed by its own dependencies).
    pub dependency_id: Uuid,
}

/// Why a deployment is still pending, as stored on it and shown by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
    /// What is missing against the free capacity of the cluster the message names.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_shortfall"
    )]
    pub shortfall: Option<Resources>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    InsufficientResources,
    WaitingForDependencies,
    /// Evicted by a higher-priority deployment and not placed again in the same pass.
    Preempted,
}

/// The API's units for a shortfall: `{"cpu_cores": 1.5, "ram_gib": 4, "gpu_count": 2}`.
#[derive(Serialize)]
struct ShortfallDto {
    cpu_cores: f64,
    ram_gib: f64,
    gpu_count: i64,
}

fn serialize_shortfall<S: Serializer>(
    shortfall: &Option<Resources>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    shortfall
        .map(|r| ShortfallDto {
            cpu_cores: r.cpu_millis as f64 / 1000.0,
            ram_gib: r.ram_mgib as f64 / 1000.0,
            gpu_count: r.gpu,
        })
        .serialize(serializer)
}

/// Decides one scheduling pass over `input`.
pub fn plan(input: &Input) -> Plan {
    let failed_dependency = failed_dependencies(&input.pending);
    let mut queue: Vec<&Pending> = input.pending.iter().collect();
    queue.sort_by_key(|p| queue_key(p.priority, p.created_at, p.id));
    let mut queue = queue.into_iter().peekable();
    let mut pass = Pass::new(input);

    loop {
        // Requeued victims wait in their own heap; whichever comes first in queue order goes next.
        let victim_next = match (queue.peek(), pass.requeued.peek()) {
            (None, None) => break,
            (Some(p), Some(Reverse((victim_key, _)))) => {
                *victim_key < queue_key(p.priority, p.created_at, p.id)
            }
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if victim_next {
            let Some(Reverse((_, victim))) = pass.requeued.pop() else {
                break;
            };
            pass.schedule(pass.victims[victim].clone());
            continue;
        }
        let Some(pending) = queue.next() else { break };
        if let Some(&dependency_id) = failed_dependency.get(&pending.id) {
            pass.plan.dependency_failures.push(DependencyFailure {
                deployment_id: pending.id,
                dependency_id,
            });
            continue;
        }
        match &pending.dependencies {
            DependencyState::Waiting { unfinished } => pass.plan.waiting.push(Waiting {
                deployment_id: pending.id,
                reason: Reason {
                    code: ReasonCode::WaitingForDependencies,
                    message: waiting_message(unfinished.len()),
                    shortfall: None,
                },
            }),
            // Failed ones are all in `failed_dependency`.
            DependencyState::Failed { .. } | DependencyState::Satisfied => {
                pass.schedule(Candidate {
                    id: pending.id,
                    priority: pending.priority,
                    cluster_id: pending.cluster_id,
                    resources: pending.resources,
                    preempted_by: None,
                })
            }
        }
    }
    pass.plan
}

/// What would happen if `candidate` were submitted now: the plan with it added to the queue.
pub fn dry_run(input: &Input, candidate: &Pending) -> Plan {
    let mut input = input.clone();
    input.pending.push(candidate.clone());
    plan(&input)
}

type QueueKey = (Reverse<i32>, DateTime<Utc>, Uuid);

/// Queue order: higher priority first, then older submission, then lower id.
fn queue_key(priority: i32, created_at: DateTime<Utc>, id: Uuid) -> QueueKey {
    (Reverse(priority), created_at, id)
}

/// Pending deployments that fail in this pass, each with the dependency that failed it: those
/// already `Failed`, and, transitively, those waiting on one of them.
fn failed_dependencies(pending: &[Pending]) -> HashMap<Uuid, Uuid> {
    let mut waiting_on: HashMap<Uuid, Vec<&Pending>> = HashMap::new();
    let mut failed = HashMap::new();
    let mut newly_failed = Vec::new();
    for p in pending {
        match &p.dependencies {
            DependencyState::Failed { dependency } => {
                failed.insert(p.id, *dependency);
                newly_failed.push(p.id);
            }
            DependencyState::Waiting { unfinished } => {
                for dependency in unfinished {
                    waiting_on.entry(*dependency).or_default().push(p);
                }
            }
            DependencyState::Satisfied => {}
        }
    }
    let mut failed_transitively = Vec::new();
    while let Some(id) = newly_failed.pop() {
        for dependent in waiting_on.get(&id).into_iter().flatten() {
            if !failed.contains_key(&dependent.id) {
                failed.insert(dependent.id, id);
                failed_transitively.push(*dependent);
                newly_failed.push(dependent.id);
            }
        }
    }
    // Discovery order follows input order; name the lowest failed id so shuffling changes nothing.
    for dependent in failed_transitively {
        if let DependencyState::Waiting { unfinished } = &dependent.dependencies {
            let culprit = unfinished.iter().filter(|d| failed.contains_key(d)).min();
            if let Some(&culprit) = culprit {
                failed.insert(dependent.id, culprit);
            }
        }
    }
    failed
}

fn waiting_message(unfinished: usize) -> String {
    match unfinished {
        1 => "waiting for 1 unfinished dependency".to_string(),
        n => format!("waiting for {n} unfinished dependencies"),
    }
}

/// A deployment to place: a pending one whose dependencies are satisfied, or a requeued victim.
#[derive(Debug, Clone)]
struct Candidate {
    id: Uuid,
    priority: i32,
    cluster_id: Option<Uuid>,
    resources: Resources,
    /// Set for a victim requeued in this pass.
    preempted_by: Option<Uuid>,
}

/// A running deployment that may be preempted in this pass (old enough, on a known cluster).
struct Preemptible<'a> {
    running: &'a Running,
    cluster: usize,
    evicted: bool,
}

/// The state of one pass. Clusters are indexed by their position in id order, so "lower index"
/// is "lower id" in every tie-break.
struct Pass<'a> {
    cluster_ids: Vec<Uuid>,
    cluster_index: HashMap<Uuid, usize>,
    free: Vec<Resources>,
    /// Per cluster, the sum of what the current candidate may preempt (see `protect_down_to`).
    reclaimable: Vec<Resources>,
    /// Per cluster, indices into `preemptible` of the deployments still running there.
    preemptible_on: Vec<Vec<usize>>,
    preemptible: Vec<Preemptible<'a>>,
    /// Indices into `preemptible`, highest priority first, and how many of them are protected.
    by_priority: Vec<usize>,
    protected: usize,
    index: ClusterIndex,
    victims: Vec<Candidate>,
    requeued: BinaryHeap<Reverse<(QueueKey, usize)>>,
    plan: Plan,
}

impl<'a> Pass<'a> {
    fn new(input: &'a Input) -> Self {
        let mut clusters: Vec<&Cluster> = input.clusters.iter().collect();
        clusters.sort_by_key(|c| c.id);
        let cluster_ids: Vec<Uuid> = clusters.iter().map(|c| c.id).collect();
        let cluster_index: HashMap<Uuid, usize> = cluster_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        let mut free: Vec<Resources> = clusters.iter().map(|c| c.capacity).collect();
        let mut reclaimable = vec![Resources::ZERO; clusters.len()];
        let mut preemptible_on = vec![Vec::new(); clusters.len()];
        let mut preemptible = Vec::new();

        // A missing or out-of-range minimum runtime protects everyone; 0 or less protects no one.
        let min_runtime = TimeDelta::try_seconds(input.min_runtime_seconds.max(0));
        for running in &input.running {
            let Some(&cluster) = cluster_index.get(&running.cluster_id) else {
                continue;
            };
            free[cluster] -= running.resources;
            let old_enough = match min_runtime {
                Some(min) if min.is_zero() => true,
                Some(min) => input.now.signed_duration_since(running.started_at) >= min,
                None => false,
            };
            if old_enough {
                reclaimable[cluster] += running.resources;
                preemptible_on[cluster].push(preemptible.len());
                preemptible.push(Preemptible {
                    running,
                    cluster,
                    evicted: false,
                });
            }
        }
        let mut by_priority: Vec<usize> = (0..preemptible.len()).collect();
        by_priority.sort_by_key(|&i| Reverse(preemptible[i].running.priority));

        let capacity: Vec<Resources> = clusters.iter().map(|c| c.capacity).collect();
        let room: Vec<Resources> = free
            .iter()
            .zip(&reclaimable)
            .map(|(f, r)| *f + *r)
            .collect();
        Pass {
            index: ClusterIndex::new(&capacity, &free, &room),
            cluster_ids,
            cluster_index,
            free,
            reclaimable,
            preemptible_on,
            preemptible,
            by_priority,
            protected: 0,
            victims: Vec::new(),
            requeued: BinaryHeap::new(),
            plan: Plan::default(),
        }
    }

    fn schedule(&mut self, candidate: Candidate) {
        match self.find_room(&candidate) {
            Ok((cluster, victims)) => self.start(candidate, cluster, victims),
            Err(reason) => {
                self.plan.waiting.push(Waiting {
                    deployment_id: candidate.id,
                    reason,
                });
            }
        }
    }

    /// Where the candidate starts and whom it evicts there, or why it cannot start.
    fn find_room(&mut self, candidate: &Candidate) -> Result<(usize, Vec<usize>), Reason> {
        let target = match candidate.cluster_id {
            Some(id) => match self.cluster_index.get(&id) {
                Some(&cluster) => Some(cluster),
                None => return Err(self.blocked(candidate, None)),
            },
            None => None,
        };
        let need = candidate.resources;
        let fits_free = match target {
            Some(cluster) => need.fits_in(&self.free[cluster]).then_some(cluster),
            None => self.best_fit(need),
        };
        if let Some(cluster) = fits_free {
            return Ok((cluster, Vec::new()));
        }
        self.protect_down_to(candidate.priority);
        let preemption = match target {
            Some(cluster) => self.victims_on(cluster, candidate).map(|v| (cluster, v)),
            None => self.cheapest_preemption(candidate),
        };
        preemption.ok_or_else(|| {
            let cluster = target.or_else(|| self.least_short(need));
            self.blocked(candidate, cluster)
        })
    }

    /// Auto placement: the cluster with the least leftover after placement (best fit, so big
    /// holes stay free for big work); tie → lower id.
    fn best_fit(&self, need: Resources) -> Option<usize> {
        let before = VISITS.load(std::sync::atomic::Ordering::Relaxed);
        let r = self.best_fit_(need);
        BF.fetch_add(
            VISITS.load(std::sync::atomic::Ordering::Relaxed) - before,
            std::sync::atomic::Ordering::Relaxed,
        );
        BFN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        r
    }
    fn best_fit_(&self, need: Resources) -> Option<usize> {
        let index = &self.index;
        let mut best: Option<(f64, usize)> = None;
        index.walk(&mut |node| match node {
            Node::Group(n) => {
                need.fits_in(&index.max_free[n])
                    && is_lower(
                        weigh(excess(index.min_free[n], need), index.weight[n]),
                        best,
                    )
            }
            Node::Cluster(c) => {
                let free = self.free[c];
                if need.fits_in(&free) {
                    let leftover = weigh(excess(free, need), index.weight[index.leaf(c)]);
                    if is_lower(leftover, best) {
                        best = Some((leftover, c));
                    }
                }
                false
            }
        });
        best.map(|(_, c)| c)
    }

    /// For a blocked auto placement: the cluster missing the least (normalized like best fit).
    fn least_short(&self, need: Resources) -> Option<usize> {
        let index = &self.index;
        let mut best: Option<(f64, usize)> = None;
        index.walk(&mut |node| match node {
            Node::Group(n) => is_lower(
                weigh(excess(need, index.max_free[n]), index.weight[n]),
                best,
            ),
            Node::Cluster(c) => {
                let missing = weigh(excess(need, self.free[c]), index.weight[index.leaf(c)]);
                if is_lower(missing, best) {
                    best = Some((missing, c));
                }
                false
            }
        });
        best.map(|(_, c)| c)
    }

    /// Auto placement by preemption: the cluster whose victims matter least — lowest highest
    /// priority, then fewest, then lowest priority sum; tie → lower id.
    fn cheapest_preemption(&self, candidate: &Candidate) -> Option<(usize, Vec<usize>)> {
        let index = &self.index;
        let mut best: Option<((i32, usize, i64), usize, Vec<usize>)> = None;
        index.walk(&mut |node| match node {
            Node::Group(n) => candidate.resources.fits_in(&index.max_room[n]),
            Node::Cluster(c) => {
                if let Some(victims) = self.victims_on(c, candidate) {
                    let priorities = victims
                        .iter()
                        .map(|&v| self.preemptible[v].running.priority);
                    let cost = (
                        priorities.clone().max().unwrap_or(i32::MIN),
                        victims.len(),
                        priorities.map(i64::from).sum::<i64>(),
                    );
                    if best.as_ref().is_none_or(|(lowest, _, _)| cost < *lowest) {
                        best = Some((cost, c, victims));
                    }
                }
                false
            }
        });
        best.map(|(_, cluster, victims)| (cluster, victims))
    }

    /// The minimal victim set on `cluster`, Kubernetes-style: evict everything the candidate may
    /// preempt, then keep back as many as still let it fit, most important first. Every victim
    /// is necessary: keeping it as well would leave too little room. Least important first.
    fn victims_on(&self, cluster: usize, candidate: &Candidate) -> Option<Vec<usize>> {
        let need = candidate.resources;
        // Cheap reject first: `reclaimable` bounds what the eligible deployments free.
        if !need.fits_in(&(self.free[cluster] + self.reclaimable[cluster])) {
            return None;
        }
        // Deployments started earlier in this pass are not listed: their priority is at least
        // the candidate's, so they could never be eligible anyway.
        let mut eligible: Vec<usize> = self.preemptible_on[cluster]
            .iter()
            .copied()
            .filter(|&i| self.preemptible[i].running.priority < candidate.priority)
            .collect();
        let mut room = self.free[cluster]
            + eligible
                .iter()
                .map(|&i| self.preemptible[i].running.resources)
                .sum();
        if !need.fits_in(&room) {
            return None;
        }
        eligible.sort_by_key(|&i| {
            let r = self.preemptible[i].running;
            (Reverse(r.priority), r.started_at, r.id)
        });
        let mut victims = Vec::new();
        for i in eligible {
            let kept = room - self.preemptible[i].running.resources;
            if need.fits_in(&kept) {
                room = kept;
            } else {
                victims.push(i);
            }
        }
        victims.reverse();
        Some(victims)
    }

    /// Takes out of `reclaimable` every running deployment the candidate may not preempt
    /// (priority ≥ its own). Candidates come in queue order, so priority only goes down and
    /// each deployment is protected once.
    fn protect_down_to(&mut self, priority: i32) {
        while let Some(&i) = self.by_priority.get(self.protected) {
            let p = &self.preemptible[i];
            if p.running.priority < priority {
                break;
            }
            if !p.evicted {
                self.reclaimable[p.cluster] -= p.running.resources;
                self.refresh(p.cluster);
            }
            self.protected += 1;
        }
    }

    fn start(&mut self, candidate: Candidate, cluster: usize, victims: Vec<usize>) {
        let cluster_id = self.cluster_ids[cluster];
        let mut preempted = Vec::with_capacity(victims.len());
        for i in victims {
            let victim = &mut self.preemptible[i];
            victim.evicted = true;
            let running = victim.running;
            self.free[cluster] += running.resources;
            self.reclaimable[cluster] -= running.resources;
            preempted.push(running.id);
            self.plan.preemptions.push(Preemption {
                victim_id: running.id,
                preemptor_id: candidate.id,
                cluster_id,
                resources: running.resources,
            });
            let key = queue_key(running.priority, running.created_at, running.id);
            self.requeued.push(Reverse((key, self.victims.len())));
            self.victims.push(Candidate {
                id: running.id,
                priority: running.priority,
                cluster_id: running.requested_cluster_id,
                resources: running.resources,
                preempted_by: Some(candidate.id),
            });
        }
        if !preempted.is_empty() {
            let preemptible = &self.preemptible;
            self.preemptible_on[cluster].retain(|&i| !preemptible[i].evicted);
        }
        self.free[cluster] -= candidate.resources;
        self.refresh(cluster);
        self.plan.starts.push(Start {
            deployment_id: candidate.id,
            cluster_id,
            resources: candidate.resources,
            preempted,
        });
    }

    fn refresh(&mut self, cluster: usize) {
        let free = self.free[cluster];
        self.index
            .update(cluster, free, free + self.reclaimable[cluster]);
    }

    /// The reason for a candidate that cannot start, measured against `cluster`'s free capacity
    /// (None: no cluster to measure against).
    fn blocked(&self, candidate: &Candidate, cluster: Option<usize>) -> Reason {
        let (shortfall, where_) = match cluster {
            Some(c) => {
                let shortfall = candidate.resources.shortfall(&self.free[c]);
                (
                    shortfall,
                    format!("{} on cluster {}", describe(shortfall), self.cluster_ids[c]),
                )
            }
            None => {
                let why = match candidate.cluster_id {
                    Some(id) => format!("cluster {id} is not available"),
                    None => "no cluster is available".to_string(),
                };
                (candidate.resources, why)
            }
        };
        let (code, message) = match candidate.preempted_by {
            Some(preemptor) => (
                ReasonCode::Preempted,
                format!("preempted by {preemptor}; {where_}"),
            ),
            None => (ReasonCode::InsufficientResources, where_),
        };
        Reason {
            code,
            message,
            shortfall: Some(shortfall),
        }
    }
}

/// "needs 1.5 more CPU cores, 4 more GiB of RAM and 2 more GPUs".
fn describe(shortfall: Resources) -> String {
    let mut parts = Vec::new();
    if shortfall.cpu_millis > 0 {
        let cores = shortfall.cpu_millis as f64 / 1000.0;
        parts.push(format!(
            "{cores} more CPU core{}",
            if cores == 1.0 { "" } else { "s" }
        ));
    }
    if shortfall.ram_mgib > 0 {
        parts.push(format!(
            "{} more GiB of RAM",
            shortfall.ram_mgib as f64 / 1000.0
        ));
    }
    if shortfall.gpu > 0 {
        let gpus = shortfall.gpu;
        parts.push(format!(
            "{gpus} more GPU{}",
            if gpus == 1 { "" } else { "s" }
        ));
    }
    match parts.as_slice() {
        [] => "does not fit".to_string(),
        [one] => format!("needs {one}"),
        [init @ .., last] => format!("needs {} and {last}", init.join(", ")),
    }
}

/// `a − b` per resource, saturating (the index pads with extreme values).
fn excess(a: Resources, b: Resources) -> [i64; 3] {
    [
        a.cpu_millis.saturating_sub(b.cpu_millis),
        a.ram_mgib.saturating_sub(b.ram_mgib),
        a.gpu.saturating_sub(b.gpu),
    ]
}

/// Positive amounts as fractions of capacity (`weight` = 1/capacity), summed, so CPU, RAM and
/// GPUs count alike. Non-positive amounts count 0, which also skips resources a cluster has none
/// of when the candidate needs none.
fn weigh(amounts: [i64; 3], weight: [f64; 3]) -> f64 {
    amounts
        .iter()
        .zip(weight)
        .map(|(&a, w)| if a > 0 { a as f64 * w } else { 0.0 })
        .sum()
}

/// Whether `score` beats `best`. Clusters are visited in id order, so ties keep the lower id.
fn is_lower(score: f64, best: Option<(f64, usize)>) -> bool {
    best.is_none_or(|(b, _)| score < b)
}

/// A node of the `ClusterIndex`: a group of clusters, or one cluster by index.
enum Node {
    Group(usize),
    Cluster(usize),
}

/// Per-group summaries of the clusters (a segment tree over clusters in id order), so placement
/// skips whole groups that cannot fit or cannot beat the best cluster found so far, instead of
/// scanning every cluster for every deployment. Each summary bounds every cluster below it.
struct ClusterIndex {
    /// Leaves (a power of two ≥ the number of clusters); node 1 is the root, node n has
    /// children 2n and 2n + 1, and cluster c is node `leaves + c`.
    leaves: usize,
    clusters: usize,
    max_free: Vec<Resources>,
    min_free: Vec<Resources>,
    /// Free plus reclaimable: the most preemption could free.
    max_room: Vec<Resources>,
    /// Per resource, the smallest 1/capacity (∞ for a resource with capacity 0).
    weight: Vec<[f64; 3]>,
}

const NOWHERE: Resources = Resources::new(i64::MIN, i64::MIN, i64::MIN);
const EVERYWHERE: Resources = Resources::new(i64::MAX, i64::MAX, i64::MAX);

impl ClusterIndex {
    fn new(capacity: &[Resources], free: &[Resources], room: &[Resources]) -> Self {
        let leaves = capacity.len().next_power_of_two();
        let mut index = ClusterIndex {
            leaves,
            clusters: capacity.len(),
            max_free: vec![NOWHERE; 2 * leaves],
            min_free: vec![EVERYWHERE; 2 * leaves],
            max_room: vec![NOWHERE; 2 * leaves],
            weight: vec![[f64::INFINITY; 3]; 2 * leaves],
        };
        for (c, cap) in capacity.iter().enumerate() {
            let leaf = leaves + c;
            let inverse = |amount: i64| {
                if amount > 0 {
                    1.0 / amount as f64
                } else {
                    f64::INFINITY
                }
            };
            index.weight[leaf] = [
                inverse(cap.cpu_millis),
                inverse(cap.ram_mgib),
                inverse(cap.gpu),
            ];
            index.max_free[leaf] = free[c];
            index.min_free[leaf] = free[c];
            index.max_room[leaf] = room[c];
        }
        for node in (1..leaves).rev() {
            index.combine(node);
        }
        index
    }

    fn leaf(&self, cluster: usize) -> usize {
        self.leaves + cluster
    }

    fn update(&mut self, cluster: usize, free: Resources, room: Resources) {
        let mut node = self.leaf(cluster);
        self.max_free[node] = free;
        self.min_free[node] = free;
        self.max_room[node] = room;
        while node > 1 {
            node /= 2;
            self.combine(node);
        }
    }

    fn combine(&mut self, node: usize) {
        let (l, r) = (2 * node, 2 * node + 1);
        self.max_free[node] = per_resource(self.max_free[l], self.max_free[r], i64::max);
        self.min_free[node] = per_resource(self.min_free[l], self.min_free[r], i64::min);
        self.max_room[node] = per_resource(self.max_room[l], self.max_room[r], i64::max);
        let (wl, wr) = (self.weight[l], self.weight[r]);
        self.weight[node] = [wl[0].min(wr[0]), wl[1].min(wr[1]), wl[2].min(wr[2])];
    }

    /// Visits nodes depth first, lower ids first; a group's children are visited only if
    /// `visit` returns true for it.
    fn walk(&self, visit: &mut impl FnMut(Node) -> bool) {
        if self.clusters > 0 {
            self.walk_from(1, visit);
        }
    }

    fn walk_from(&self, node: usize, visit: &mut impl FnMut(Node) -> bool) {
        VISITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if node >= self.leaves {
            let cluster = node - self.leaves;
            if cluster < self.clusters {
                visit(Node::Cluster(cluster));
            }
        } else if visit(Node::Group(node)) {
            self.walk_from(2 * node, visit);
            self.walk_from(2 * node + 1, visit);
        }
    }
}

fn per_resource(a: Resources, b: Resources, f: fn(i64, i64) -> i64) -> Resources {
    Resources::new(
        f(a.cpu_millis, b.cpu_millis),
        f(a.ram_mgib, b.ram_mgib),
        f(a.gpu, b.gpu),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn ago(seconds: i64) -> DateTime<Utc> {
        t0() - TimeDelta::seconds(seconds)
    }

    /// Whole cores, whole GiB, GPUs.
    fn res(cores: i64, gib: i64, gpus: i64) -> Resources {
        Resources::new(cores * 1000, gib * 1000, gpus)
    }

    fn gpus(n: i64) -> Resources {
        res(1, 1, n)
    }

    fn cluster(n: u128, capacity: Resources) -> Cluster {
        Cluster {
            id: id(n),
            capacity,
            allocated: Resources::ZERO,
        }
    }

    fn running(n: u128, on: u128, priority: i32, resources: Resources, age: i64) -> Running {
        Running {
            id: id(n),
            cluster_id: id(on),
            priority,
            resources,
            started_at: ago(age),
            created_at: ago(age + 60),
            requested_cluster_id: Some(id(on)),
        }
    }

    fn pending(n: u128, on: Option<u128>, priority: i32, resources: Resources) -> Pending {
        Pending {
            id: id(n),
            cluster_id: on.map(id),
            priority,
            resources,
            created_at: ago(10),
            dependencies: DependencyState::Satisfied,
        }
    }

    fn input(clusters: Vec<Cluster>, running: Vec<Running>, pending: Vec<Pending>) -> Input {
        Input {
            clusters,
            running,
            pending,
            now: t0(),
            min_runtime_seconds: 0,
        }
    }

    fn started(plan: &Plan) -> Vec<Uuid> {
        plan.starts.iter().map(|s| s.deployment_id).collect()
    }

    fn victims(plan: &Plan) -> Vec<Uuid> {
        plan.preemptions.iter().map(|p| p.victim_id).collect()
    }

    fn waiting(plan: &Plan, n: u128) -> &Reason {
        &plan
            .waiting
            .iter()
            .find(|w| w.deployment_id == id(n))
            .expect("waiting")
            .reason
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
        assert_eq!(reason.shortfall, Some(Resources::new(0, 0, 2)));
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
            "dry run changes nothing"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::{HashMap, HashSet};

        type Raw = (i64, i64, i64);

        fn to_res((cores, gib, gpus): Raw) -> Resources {
            Resources::new(cores * 500, gib * 1000, gpus)
        }

        #[allow(clippy::type_complexity)]
        fn scenario() -> impl Strategy<Value = Input> {
            let clusters =
                prop::collection::vec((0u128..1 << 16, (0..=32i64, 0..=64i64, 0..=8i64)), 1..=5);
            let running = prop::collection::vec(
                (
                    0usize..7,
                    0u8..100,
                    (0..=8i64, 0..=16i64, 0..=4i64),
                    0i64..1_000,
                    0usize..8,
                ),
                0..=20,
            );
            let pending = prop::collection::vec(
                (
                    0usize..8,
                    0u8..100,
                    (0..=10i64, 0..=20i64, 0..=5i64),
                    0i64..4,
                    0u8..12,
                    0usize..30,
                ),
                0..=30,
            );
            let min_runtime = prop_oneof![Just(0i64), 1..=600i64];
            (clusters, running, pending, min_runtime, any::<bool>()).prop_map(
                |(clusters, running, pending, min_runtime_seconds, few_priorities)| {
                    let priority = |raw: u8| -> i32 {
                        if few_priorities {
                            1 + i32::from(raw % 3)
                        } else {
                            1 + i32::from(raw)
                        }
                    };
                    let clusters: Vec<Cluster> = clusters
                        .into_iter()
                        .enumerate()
                        .map(|(i, (salt, cap))| cluster(salt << 8 | i as u128, to_res(cap)))
                        .collect();
                    let pick = |sel: usize| -> Option<Uuid> {
                        match sel {
                            s if s < clusters.len() => Some(clusters[s].id),
                            6 => Some(id(0xdead)),
                            _ => None,
                        }
                    };
                    let mut free: HashMap<Uuid, Resources> =
                        clusters.iter().map(|c| (c.id, c.capacity)).collect();
                    let mut runs = Vec::new();
                    for (i, (sel, prio, raw, age, requested)) in running.into_iter().enumerate() {
                        let on = pick(sel % 7).unwrap_or(id(0xbeef));
                        let resources = to_res(raw);
                        // Running work fits its cluster, except on clusters not in the input.
                        if let Some(room) = free.get_mut(&on) {
                            if !resources.fits_in(room) {
                                continue;
                            }
                            *room -= resources;
                        }
                        runs.push(Running {
                            id: id(1 << 40 | i as u128),
                            cluster_id: on,
                            priority: priority(prio),
                            resources,
                            started_at: ago(age),
                            created_at: ago(age + (i as i64 % 3)),
                            requested_cluster_id: match requested {
                                0..=3 => None,
                                4..=6 => Some(on),
                                _ => pick(requested),
                            },
                        });
                    }
                    let n = pending.len();
                    let pending_id = |i: usize| id(1 << 50 | i as u128);
                    let pending = pending
                        .into_iter()
                        .enumerate()
                        .map(|(i, (sel, prio, raw, age, deps, dep))| Pending {
                            id: pending_id(i),
                            cluster_id: pick(sel),
                            priority: priority(prio),
                            resources: to_res(raw),
                            created_at: ago(age),
                            dependencies: match deps {
                                0..=7 => DependencyState::Satisfied,
                                8 | 9 => DependencyState::Waiting {
                                    unfinished: vec![pending_id(dep % n.max(1)), id(0xfeed)],
                                },
                                10 => DependencyState::Waiting {
                                    unfinished: vec![pending_id(dep % n.max(1))],
                                },
                                _ => DependencyState::Failed {
                                    dependency: id(0xf00d),
                                },
                            },
                        })
                        .collect();
                    Input {
                        clusters,
                        running: runs,
                        pending,
                        now: t0(),
                        min_runtime_seconds,
                    }
                },
            )
        }

        fn shuffle<T>(items: &mut [T], seed: &mut u64) {
            for i in (1..items.len()).rev() {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                items.swap(i, (*seed >> 33) as usize % (i + 1));
            }
        }

        fn old_enough(input: &Input, r: &Running) -> bool {
            input.min_runtime_seconds <= 0
                || (input.now - r.started_at) >= TimeDelta::seconds(input.min_runtime_seconds)
        }

        /// Replays the plan from scratch and checks the invariants of DESIGN.md §3.
        fn check(input: &Input, plan: &Plan) -> Result<(), TestCaseError> {
            let capacity: HashMap<Uuid, Resources> =
                input.clusters.iter().map(|c| (c.id, c.capacity)).collect();
            let mut free = capacity.clone();
            let mut on_cluster: HashMap<Uuid, &Running> = HashMap::new();
            for r in &input.running {
                if let Some(room) = free.get_mut(&r.cluster_id) {
                    *room -= r.resources;
                    on_cluster.insert(r.id, r);
                }
            }
            let pending: HashMap<Uuid, &Pending> =
                input.pending.iter().map(|p| (p.id, p)).collect();
            // Who may start: satisfied pending, then victims as they are evicted.
            let mut startable: HashMap<Uuid, (i32, Option<Uuid>)> = input
                .pending
                .iter()
                .filter(|p| p.dependencies == DependencyState::Satisfied)
                .map(|p| (p.id, (p.priority, p.cluster_id)))
                .collect();
            let preemptions: HashMap<Uuid, &Preemption> =
                plan.preemptions.iter().map(|p| (p.victim_id, p)).collect();
            prop_assert_eq!(
                preemptions.len(),
                plan.preemptions.len(),
                "a victim preempted twice"
            );
            let mut started = HashSet::new();
            let mut new_running: HashMap<Uuid, (Uuid, i32)> = HashMap::new();
            let mut victims_seen = 0;

            for start in &plan.starts {
                // (f) no deployment started twice.
                prop_assert!(started.insert(start.deployment_id), "started twice");
                let (priority, requested) = startable
                    .remove(&start.deployment_id)
                    .expect("start of a startable deployment");
                if let Some(requested) = requested {
                    prop_assert_eq!(requested, start.cluster_id);
                }
                let room = free
                    .get_mut(&start.cluster_id)
                    .expect("start on a known cluster");
                for victim in &start.preempted {
                    let r = on_cluster.remove(victim).expect("victim is running");
                    prop_assert_eq!(r.cluster_id, start.cluster_id);
                    // (b) strictly lower priority and old enough.
                    prop_assert!(r.priority < priority);
                    prop_assert!(old_enough(input, r));
                    prop_assert!(!new_running.contains_key(victim));
                    let p = preemptions[victim];
                    prop_assert_eq!(p.preemptor_id, start.deployment_id);
                    prop_assert_eq!(p.cluster_id, start.cluster_id);
                    prop_assert_eq!(p.resources, r.resources);
                    *room += r.resources;
                    startable.insert(r.id, (r.priority, r.requested_cluster_id));
                    victims_seen += 1;
                }
                // (a) the start fits.
                prop_assert!(start.resources.fits_in(room));
                // (c) every victim was necessary.
                for victim in &start.preempted {
                    let back = *room
                        - input
                            .running
                            .iter()
                            .find(|r| r.id == *victim)
                            .unwrap()
                            .resources;
                    prop_assert!(
                        !start.resources.fits_in(&back),
                        "victim {} could be spared",
                        victim
                    );
                }
                if start.preempted.is_empty() {
                    prop_assert!(start.resources.fits_in(room));
                }
                *room -= start.resources;
                new_running.insert(start.deployment_id, (start.cluster_id, priority));
                let expected = pending.get(&start.deployment_id).map(|p| p.resources);
                if let Some(expected) = expected {
                    prop_assert_eq!(expected, start.resources);
                }
            }
            prop_assert_eq!(victims_seen, plan.preemptions.len());
            // (a) no cluster over capacity afterwards.
            for room in free.values() {
                prop_assert!(
                    Resources::ZERO.fits_in(room),
                    "cluster over capacity: {:?}",
                    room
                );
            }
            // (d) everything accounted for, exactly once.
            let mut seen: HashMap<Uuid, usize> = HashMap::new();
            let outcomes = plan
                .starts
                .iter()
                .map(|s| s.deployment_id)
                .chain(plan.waiting.iter().map(|w| w.deployment_id))
                .chain(plan.dependency_failures.iter().map(|f| f.deployment_id));
            for deployment in outcomes {
                *seen.entry(deployment).or_default() += 1;
            }
            for p in &input.pending {
                prop_assert_eq!(
                    seen.remove(&p.id),
                    Some(1),
                    "pending {} not decided once",
                    p.id
                );
            }
            for victim in preemptions.keys() {
                prop_assert_eq!(
                    seen.remove(victim),
                    Some(1),
                    "victim {} not decided once",
                    victim
                );
            }
            prop_assert!(
                seen.is_empty(),
                "outcomes for unknown deployments: {:?}",
                seen
            );
            for w in &plan.waiting {
                let expected = match pending.get(&w.deployment_id) {
                    None => ReasonCode::Preempted,
                    Some(p) if matches!(p.dependencies, DependencyState::Waiting { .. }) => {
                        ReasonCode::WaitingForDependencies
                    }
                    Some(_) => ReasonCode::InsufficientResources,
                };
                prop_assert_eq!(w.reason.code, expected);
                if expected != ReasonCode::WaitingForDependencies {
                    let shortfall = w.reason.shortfall.expect("a shortfall");
                    let request = pending.get(&w.deployment_id).map(|p| p.resources);
                    let request = request.unwrap_or_else(|| {
                        input
                            .running
                            .iter()
                            .find(|r| r.id == w.deployment_id)
                            .unwrap()
                            .resources
                    });
                    // Only a request for an unknown cluster can be blocked with nothing missing.
                    prop_assert!(shortfall.fits_in(&request));
                    prop_assert!(!shortfall.is_zero() || request.is_zero());
                }
            }
            for f in &plan.dependency_failures {
                match &pending[&f.deployment_id].dependencies {
                    DependencyState::Failed { dependency } => {
                        prop_assert_eq!(*dependency, f.dependency_id)
                    }
                    DependencyState::Waiting { unfinished } => {
                        prop_assert!(unfinished.contains(&f.dependency_id));
                        prop_assert!(plan
                            .dependency_failures
                            .iter()
                            .any(|d| d.deployment_id == f.dependency_id));
                    }
                    DependencyState::Satisfied => {
                        prop_assert!(false, "satisfied deployment failed")
                    }
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn every_plan_keeps_the_invariants(input in scenario(), seed in any::<u64>()) {
                let plan = plan(&input);
                check(&input, &plan)?;

                // (e) determinism: the order of the input vectors does not matter.
                let mut shuffled = input.clone();
                let mut seed = seed;
                shuffle(&mut shuffled.clusters, &mut seed);
                shuffle(&mut shuffled.running, &mut seed);
                shuffle(&mut shuffled.pending, &mut seed);
                for p in &mut shuffled.pending {
                    if let DependencyState::Waiting { unfinished } = &mut p.dependencies {
                        shuffle(unfinished, &mut seed);
                    }
                }
                prop_assert_eq!(super::plan(&shuffled), plan);
            }

            #[test]
            fn index_queries_match_a_linear_scan(input in scenario()) {
                let mut queue: Vec<&Pending> = input.pending.iter().collect();
                queue.sort_by_key(|p| queue_key(p.priority, p.created_at, p.id));
                let mut pass = Pass::new(&input);
                for p in queue {
                    let candidate = Candidate {
                        id: p.id,
                        priority: p.priority,
                        cluster_id: None,
                        resources: p.resources,
                        preempted_by: None,
                    };
                    let need = p.resources;
                    let clusters = 0..pass.cluster_ids.len();
                    let weight = |c: usize| pass.index.weight[pass.index.leaf(c)];
                    let lowest = |scores: Vec<(f64, usize)>| {
                        scores.into_iter().fold(None, |best, (s, c)| if is_lower(s, best) { Some((s, c)) } else { best })
                    };
                    let fits: Vec<(f64, usize)> = clusters.clone()
                        .filter(|&c| need.fits_in(&pass.free[c]))
                        .map(|c| (weigh(excess(pass.free[c], need), weight(c)), c))
                        .collect();
                    prop_assert_eq!(pass.best_fit(need), lowest(fits).map(|(_, c)| c));
                    let short: Vec<(f64, usize)> = clusters.clone()
                        .map(|c| (weigh(excess(need, pass.free[c]), weight(c)), c))
                        .collect();
                    prop_assert_eq!(pass.least_short(need), lowest(short).map(|(_, c)| c));
                    pass.protect_down_to(p.priority);
                    let linear = clusters
                        .filter_map(|c| pass.victims_on(c, &candidate).map(|v| {
                            let prio: Vec<i32> = v.iter().map(|&i| pass.preemptible[i].running.priority).collect();
                            let cost = (prio.iter().copied().max().unwrap_or(i32::MIN), v.len(), prio.iter().map(|&x| i64::from(x)).sum::<i64>());
                            (cost, c, v)
                        }))
                        .min_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)))
                        .map(|(_, c, v)| (c, v));
                    prop_assert_eq!(pass.cheapest_preemption(&candidate), linear);
                    pass.schedule(candidate);
                }
            }

            #[test]
            fn dry_run_is_the_plan_with_the_candidate_queued(input in scenario()) {
                let Some((candidate, rest)) = input.pending.split_last() else { return Ok(()) };
                let without = Input { pending: rest.to_vec(), ..input.clone() };
                prop_assert_eq!(dry_run(&without, candidate), plan(&input));
            }
        }
    }
}

pub static VISITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
pub static BF: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
pub static BFN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

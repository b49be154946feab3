//! Fit: where a request fits in free capacity, best fit first, and, for one that fits nowhere,
//! the cluster missing the least of it.

use super::recent::Recent;
use crate::resources::Resources;

/// Scores every cluster for an auto placement and picks the lowest; tie → lower id. A score is
/// a sum over resources of an amount as a fraction of the cluster's capacity, so CPU, RAM and
/// GPUs count alike. Free capacity is mirrored as floats, one vector per resource, so scoring
/// every cluster is a tight vectorized loop; floats are exact for integers below 2^53, far
/// beyond any real cluster.
pub(super) struct Scores {
    free: [Vec<f64>; 3],
    /// 1/capacity, or 0 for a resource the cluster has none of: nothing is left over there.
    fit_weight: [Vec<f64>; 3],
    /// 1/capacity, or f64::MAX for a resource the cluster has none of: missing any of it ranks
    /// the cluster last (0 × MAX is still 0; scores are capped at MAX, so never ∞ or NaN).
    short_weight: [Vec<f64>; 3],
    scratch: Vec<f64>,
    /// `free` and `fit_weight` again in single precision, for a first scan that reads half
    /// the memory (see `scan_narrow`), while every free amount is exact in it.
    narrow: Option<Narrow>,
    /// Queues are full of identical requests, so the last best-fit search for each request is
    /// kept, and the next one scores again only the clusters changed since: every change in
    /// order, and per cluster how many changes there had been after its last one.
    best_fits: Recent<Resources, BestFit>,
    changed: Vec<usize>,
    last_change: Vec<usize>,
    memoize: bool,
    /// For `least_short`: the undominated clusters as of that many changes.
    undominated: Option<(usize, Undominated)>,
}

/// The clusters `least_short` reads, in index order, with their free capacity and shortfall
/// weights copied out: a contiguous, vectorizable search where it gathered from 1,000 clusters.
#[derive(Default)]
struct Undominated {
    clusters: Vec<usize>,
    free: [Vec<f64>; 3],
    weight: [Vec<f64>; 3],
    scores: Vec<f64>,
}

/// A best-fit search as of the first `seen` changes: the winner (None if the request fits
/// nowhere), and a floor under every other cluster's (score, index) while that cluster is
/// unchanged. `runner_up` names the cluster whose (score, index) the floor is, if it still is.
struct BestFit {
    winner: Option<(f64, usize)>,
    floor: (f64, usize),
    runner_up: Option<usize>,
    seen: usize,
}

/// Single-precision mirrors of free capacity and fit weights, with their own scratch, by
/// position: the clusters with GPUs first, then those without, each in index order. Those
/// without weigh nothing left over in GPUs and, as a rule, have none free: then a request for
/// no GPUs is scored there on CPU and RAM alone, and a request for some fits none of them.
struct Narrow {
    cluster_at: Vec<usize>,
    position_of: Vec<usize>,
    with_gpus: usize,
    /// How many clusters without GPUs have an amount of them free all the same (only if
    /// something on them holds GPUs): while any do, every cluster is scored on all three.
    gpus_free_without: usize,
    free: [Vec<f32>; 3],
    weight: [Vec<f32>; 3],
    scores: Vec<f32>,
    /// The positions whose narrow score is close enough to the lowest two to be scored again.
    close: Vec<usize>,
    /// The same as clusters, in index order.
    close_clusters: Vec<usize>,
}

const UNQUALIFIED: (f64, usize) = (f64::INFINITY, usize::MAX);

/// Integers up to 2^24 in magnitude are exact in single precision.
const EXACT_IN_F32: f64 = 16_777_216.0;

/// A single-precision score is within 5 units of 2^-24 of the real one, relatively, and a
/// double one far closer (see `scan_narrow`): a margin of 2^-18 (64 units) covers both scores'
/// errors and its own rounding.
const NARROW_MARGIN: f32 = 1.0 + 1.0 / 262_144.0;

/// Defines `$name`, which runs `$portable` (an `#[inline(always)]` function of the same
/// arguments) compiled for AVX2 where the CPU has it: the scans below are the hottest loops of
/// a pass, and AVX2 runs twice the lanes. The arithmetic is the same IEEE operations in the
/// same order either way (Rust never fuses a multiply and an add), so the results are too.
macro_rules! compiled_for_avx2 {
    (
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $portable:ident;
    ) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                $portable($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { avx2($($arg),*) };
            }
            $portable($($arg),*)
        }
    };
}

impl Scores {
    pub(super) fn new(capacity: &[Resources], free: &[Resources], memoize: bool) -> Self {
        let inverse = |none: f64| move |cap: i64| if cap > 0 { 1.0 / cap as f64 } else { none };
        let clusters = free.len();
        let free = per_resource(free, |amount| amount as f64);
        let fit_weight = per_resource(capacity, inverse(0.0));
        let narrow = free
            .iter()
            .flatten()
            .all(|f| f.abs() <= EXACT_IN_F32)
            .then(|| Narrow::new(&free, &fit_weight));
        Scores {
            scratch: vec![0.0; clusters],
            free,
            fit_weight,
            short_weight: per_resource(capacity, inverse(f64::MAX)),
            narrow,
            best_fits: Recent::new(),
            changed: Vec::new(),
            last_change: vec![0; clusters],
            memoize,
            undominated: None,
        }
    }

    pub(super) fn set_free(&mut self, cluster: usize, free: Resources) {
        for (r, amount) in amounts(free).into_iter().enumerate() {
            let amount = amount as f64;
            self.free[r][cluster] = amount;
            if amount.abs() > EXACT_IN_F32 {
                self.narrow = None;
            }
        }
        if let Some(narrow) = &mut self.narrow {
            narrow.set_free(cluster, amounts(free).map(|amount| amount as f32));
        }
        self.changed.push(cluster);
        self.last_change[cluster] = self.changed.len();
    }

    /// The cluster where `need` fits with the least left over (best fit keeps big holes for big
    /// work); tie → lower id.
    pub(super) fn best_fit(&mut self, need: Resources) -> Option<usize> {
        let known = self.best_fits.get(&need);
        let found = known.and_then(|last| self.replay(need, last));
        let found = found.unwrap_or_else(|| self.scan(need));
        let winner = found.winner.map(|(_, cluster)| cluster);
        if self.memoize {
            self.best_fits.insert(need, found);
        }
        winner
    }

    /// Brings `last` up to date by scoring again only the clusters changed since. None when
    /// that cannot settle it (or when a full scan is as cheap).
    fn replay(&self, need: Resources, last: &BestFit) -> Option<BestFit> {
        let changed_since = &self.changed[last.seen..];
        if changed_since.len() > self.scratch.len() / 8 + 8 {
            return None;
        }
        let changed = |cluster: usize| self.last_change[cluster] > last.seen;
        // The two lowest (score, index) among the clusters that may now win.
        let mut two = [UNQUALIFIED; 2];
        let mut consider = |candidate: (f64, usize)| {
            if candidate < two[1] {
                two = if candidate < two[0] {
                    [candidate, two[0]]
                } else {
                    [two[0], candidate]
                };
            }
        };
        let winner = last.winner.map(|(_, cluster)| cluster);
        if let Some((score, cluster)) = last.winner {
            let now = if changed(cluster) {
                self.fit_score(cluster, need)
            } else {
                score
            };
            consider((now, cluster));
        }
        if let Some(runner_up) = last.runner_up.filter(|&r| Some(r) != winner && !changed(r)) {
            consider((last.floor.0, runner_up));
        }
        for &cluster in changed_since {
            if Some(cluster) != winner {
                consider((self.fit_score(cluster, need), cluster));
            }
        }
        let [first, second] = two;
        if first > last.floor {
            return None; // a cluster not scored again might beat it
        }
        let (floor, runner_up) = if second < last.floor {
            (second, (second != UNQUALIFIED).then_some(second.1))
        } else {
            (last.floor, last.runner_up.filter(|&r| !changed(r)))
        };
        Some(BestFit {
            winner: qualified(first),
            floor,
            runner_up,
            seen: self.changed.len(),
        })
    }

    /// Scores every cluster: the winner, and the runner-up as the floor under the rest.
    fn scan(&mut self, need: Resources) -> BestFit {
        let need = amounts(need).map(|amount| amount as f64);
        let [first, second] = match &mut self.narrow {
            Some(narrow) if need.iter().all(|n| n.abs() <= EXACT_IN_F32) => {
                scan_narrow(narrow, &self.free, &self.fit_weight, need)
            }
            _ => scan_lowest_two(&self.free, &self.fit_weight, need, &mut self.scratch),
        };
        BestFit {
            winner: qualified(first),
            floor: second,
            runner_up: qualified(second).map(|(_, cluster)| cluster),
            seen: self.changed.len(),
        }
    }

    /// One cluster's best-fit score, exactly as `scan` computes it.
    fn fit_score(&self, c: usize, need: Resources) -> f64 {
        let need = amounts(need).map(|amount| amount as f64);
        let free = [self.free[0][c], self.free[1][c], self.free[2][c]];
        fit_score(free, need, self.fit_weight.each_ref().map(|w| w[c]))
    }

    /// For a request that cannot start: the cluster missing the least of it.
    pub(super) fn least_short(&mut self, need: Resources) -> Option<usize> {
        let seen = self.changed.len();
        if self.undominated.as_ref().is_none_or(|(at, _)| *at != seen) {
            self.undominated = Some((seen, self.undominated()));
        }
        let (_, kept) = self.undominated.as_mut()?;
        let need = amounts(need).map(|amount| amount as f64);
        let (score, k) = scan_least_short(&kept.free, &kept.weight, need, &mut kept.scores)?;
        qualified((score, kept.clusters[k])).map(|(_, cluster)| cluster)
    }

    /// The clusters that no lower one has at least as much free of everything as, at no more
    /// weight: only they can be missing the least of some request. A dominated cluster's score
    /// is never lower, float rounding being monotone, and on a tie the lower one wins anyway.
    /// Once clusters fill up, few are left, so each reason's search reads a few dozen clusters.
    fn undominated(&self) -> Undominated {
        let at = |c: usize| {
            (
                self.free.each_ref().map(|column| column[c]),
                self.short_weight.each_ref().map(|column| column[c]),
            )
        };
        let mut kept = Undominated::default();
        for c in 0..self.scratch.len() {
            let (free, weight) = at(c);
            let dominated = (0..kept.clusters.len()).any(|k| {
                (0..3).all(|r| kept.free[r][k] >= free[r] && kept.weight[r][k] <= weight[r])
            });
            if !dominated {
                kept.clusters.push(c);
                for r in 0..3 {
                    kept.free[r].push(free[r]);
                    kept.weight[r].push(weight[r]);
                }
            }
        }
        kept.scores = vec![0.0; kept.clusters.len()];
        kept
    }
}

compiled_for_avx2! {
    /// The lowest `short_score` and its position (the first on ties); None for no clusters. Run
    /// for every distinct request that cannot start.
    fn scan_least_short(
        free: &[Vec<f64>; 3],
        weight: &[Vec<f64>; 3],
        need: [f64; 3],
        scores: &mut [f64],
    ) -> Option<(f64, usize)> = scan_least_short_portable;
}

#[inline(always)]
fn scan_least_short_portable(
    free: &[Vec<f64>; 3],
    weight: &[Vec<f64>; 3],
    need: [f64; 3],
    scores: &mut [f64],
) -> Option<(f64, usize)> {
    let n = scores.len();
    let [cpu, ram, gpu] = free.each_ref().map(|column| &column[..n]);
    let [w_cpu, w_ram, w_gpu] = weight.each_ref().map(|column| &column[..n]);
    for (k, score) in scores.iter_mut().enumerate() {
        *score = short_score(
            [cpu[k], ram[k], gpu[k]],
            need,
            [w_cpu[k], w_ram[k], w_gpu[k]],
        );
    }
    // Scores are never NaN, so the minimum is exact and its first position is the answer.
    let lowest = scores.iter().fold(f64::INFINITY, |low, &s| low.min(s));
    let k = scores.iter().position(|&s| s == lowest)?;
    Some((lowest, k))
}

/// The lowest two (score, index) exactly as `scan_lowest_two` finds them, with a first scan in
/// single precision: the clusters that can be among the two are those whose narrow score is
/// within the error of the second lowest narrow score, and only they are scored in double.
///
/// Why that is exact: every free amount and `need` are integers exact in single precision, so
/// a cluster fits in one precision exactly when it fits in the other. Where it fits, every
/// term of its score is a product of non-negatives, so each precision's score is within a few
/// units in the last place of the real one, relatively (the subtraction, the weight's
/// rounding, the product and two sums: at most 5 in single, 3 in double). A cluster whose
/// narrow score exceeds the second lowest by more than `NARROW_MARGIN` then has a double score
/// above those of both clusters with the two lowest narrow scores, and cannot be either.
fn scan_narrow(
    narrow: &mut Narrow,
    free: &[Vec<f64>; 3],
    weight: &[Vec<f64>; 3],
    need: [f64; 3],
) -> [(f64, usize); 2] {
    let all = narrow.cluster_at.len();
    let split = narrow.gpus_free_without == 0;
    // Positions before `three` are scored on all three resources, then up to `scored` on CPU
    // and RAM; past `scored`, none fits.
    let three = if split { narrow.with_gpus } else { all };
    let scored = if split && need[2] > 0.0 { three } else { all };
    narrow.close.clear();
    scan_close(
        &narrow.free,
        &narrow.weight,
        need.map(|n| n as f32),
        &mut narrow.scores[..scored],
        three,
        &mut narrow.close,
    );
    narrow.close_clusters.clear();
    let cluster_at = &narrow.cluster_at;
    let close = narrow.close.iter().map(|&position| cluster_at[position]);
    narrow.close_clusters.extend(close);
    narrow.close_clusters.sort_unstable();
    let mut two = [UNQUALIFIED; 2];
    for &c in &narrow.close_clusters {
        let exact = [0, 1, 2].map(|r| (free[r][c], weight[r][c]));
        let score = fit_score(exact.map(|(f, _)| f), need, exact.map(|(_, w)| w));
        consider_two(&mut two, (score, c));
    }
    two
}

impl Narrow {
    fn new(free: &[Vec<f64>; 3], weight: &[Vec<f64>; 3]) -> Self {
        let clusters = free[0].len();
        let (mut cluster_at, without): (Vec<usize>, Vec<usize>) =
            (0..clusters).partition(|&c| weight[2][c] != 0.0);
        let with_gpus = cluster_at.len();
        cluster_at.extend(without);
        let mut position_of = vec![0; clusters];
        for (position, &c) in cluster_at.iter().enumerate() {
            position_of[c] = position;
        }
        let by_position =
            |column: &Vec<f64>| cluster_at.iter().map(|&c| column[c] as f32).collect();
        let free: [Vec<f32>; 3] = free.each_ref().map(by_position);
        Narrow {
            gpus_free_without: free[2][with_gpus..].iter().filter(|&&g| g != 0.0).count(),
            free,
            weight: weight.each_ref().map(by_position),
            scores: vec![0.0; clusters],
            close: Vec::new(),
            close_clusters: Vec::new(),
            cluster_at,
            position_of,
            with_gpus,
        }
    }

    fn set_free(&mut self, cluster: usize, free: [f32; 3]) {
        let position = self.position_of[cluster];
        if position >= self.with_gpus {
            let was = self.free[2][position] != 0.0;
            let is = free[2] != 0.0;
            self.gpus_free_without = self.gpus_free_without + usize::from(is) - usize::from(was);
        }
        for (column, amount) in self.free.iter_mut().zip(free) {
            column[position] = amount;
        }
    }
}

compiled_for_avx2! {
    /// Every position's narrow `fit_score` into `scores` (before `three` on all three resources,
    /// after on CPU and RAM), and into `close`, in order, every position whose score is within
    /// `NARROW_MARGIN` of the second lowest. With AVX2, eight clusters at a time.
    fn scan_close(
        free: &[Vec<f32>; 3],
        weight: &[Vec<f32>; 3],
        need: [f32; 3],
        scores: &mut [f32],
        three: usize,
        close: &mut Vec<usize>,
    ) = scan_close_portable;
}

#[inline(always)]
fn scan_close_portable(
    free: &[Vec<f32>; 3],
    weight: &[Vec<f32>; 3],
    need: [f32; 3],
    scores: &mut [f32],
    three: usize,
    close: &mut Vec<usize>,
) {
    let three = three.min(scores.len());
    let (with_gpus, without) = scores.split_at_mut(three);
    score_all(
        free.each_ref().map(|f| &f[..]),
        weight.each_ref().map(|w| &w[..]),
        need,
        with_gpus,
    );
    let [cpu, ram, _] = free
        .each_ref()
        .map(|column| &column[three..three + without.len()]);
    let [w_cpu, w_ram, _] = weight
        .each_ref()
        .map(|column| &column[three..three + without.len()]);
    // No GPUs free, none needed (a request for some never gets here): the GPU term is zero.
    let cpu_and_ram = [need[0], need[1], 0.0];
    for (k, score) in without.iter_mut().enumerate() {
        *score = fit_score(
            [cpu[k], ram[k], 0.0],
            cpu_and_ram,
            [w_cpu[k], w_ram[k], 0.0],
        );
    }
    close_to_lowest_two(scores, close);
}

/// One pass over `scores` for `scan_close`: the second lowest only falls as it goes, so a
/// score within the margin of the final one was within the margin of the second lowest so far
/// when it was read, and was kept; what was kept and is not within the final margin goes at
/// the end.
#[inline(always)]
fn close_to_lowest_two(scores: &[f32], close: &mut Vec<usize>) {
    let mut two = [(f32::INFINITY, usize::MAX); 2];
    // Past the two lowest, ∞ (does not fit) qualifies no one; MAX is above every finite score.
    let mut threshold = f32::MAX;
    // A plain loop with the threshold a local: it stays in a register.
    let mut offer = |block: &[f32], start: usize, threshold: &mut f32| {
        for (c, &score) in (start..).zip(block) {
            if score <= *threshold {
                consider_two(&mut two, (score, c));
                if two[1].0 < f32::INFINITY {
                    *threshold = two[1].0 * NARROW_MARGIN;
                }
                if score <= *threshold {
                    close.push(c);
                }
            }
        }
    };
    let blocks = scores.chunks_exact(8);
    let rest = blocks.remainder();
    for (start, block) in (0..).step_by(8).zip(blocks) {
        // Past the first few blocks, hardly any score is close: a branch-free test (it
        // vectorizes) skips the whole block.
        let limit = threshold;
        if block.iter().fold(false, |any, &s| any | (s <= limit)) {
            offer(block, start, &mut threshold);
        }
    }
    offer(rest, scores.len() - rest.len(), &mut threshold);
    close.retain(|&c| scores[c] <= threshold);
}

/// Keeps in `two` the lowest two (score, index) offered, earlier first on ties: callers offer
/// clusters in index order. An unqualified (∞) score never enters.
#[inline(always)]
fn consider_two<T: Copy + PartialOrd>(two: &mut [(T, usize); 2], candidate: (T, usize)) {
    let [first, second] = two;
    if candidate.0 < second.0 {
        if candidate.0 < first.0 {
            (*first, *second) = (candidate, *first);
        } else {
            *second = candidate;
        }
    }
}

compiled_for_avx2! {
    /// Every cluster's `fit_score` into `scores`, and the lowest two (score, index), in double
    /// precision: when single precision is not exact (see `scan_narrow`).
    fn scan_lowest_two(
        free: &[Vec<f64>; 3],
        weight: &[Vec<f64>; 3],
        need: [f64; 3],
        scores: &mut [f64],
    ) -> [(f64, usize); 2] = scan_lowest_two_portable;
}

#[inline(always)]
fn scan_lowest_two_portable(
    free: &[Vec<f64>; 3],
    weight: &[Vec<f64>; 3],
    need: [f64; 3],
    scores: &mut [f64],
) -> [(f64, usize); 2] {
    score_all(
        free.each_ref().map(|f| &f[..]),
        weight.each_ref().map(|w| &w[..]),
        need,
        scores,
    );
    lowest_two(scores)
}

/// Every cluster's `fit_score` into `scores`.
#[inline(always)]
fn score_all<T: Float>(free: [&[T]; 3], weight: [&[T]; 3], need: [T; 3], scores: &mut [T]) {
    let n = scores.len();
    let [cpu, ram, gpu] = free.map(|column| &column[..n]);
    let [w_cpu, w_ram, w_gpu] = weight.map(|column| &column[..n]);
    for (c, score) in scores.iter_mut().enumerate() {
        *score = fit_score(
            [cpu[c], ram[c], gpu[c]],
            need,
            [w_cpu[c], w_ram[c], w_gpu[c]],
        );
    }
}

/// Leftover as fractions of capacity, or ∞ where `need` does not fit.
#[inline(always)]
fn fit_score<T: Float>(free: [T; 3], need: [T; 3], weight: [T; 3]) -> T {
    let left = [free[0] - need[0], free[1] - need[1], free[2] - need[2]];
    // `&`, not `&&`: no branches, so the loop vectorizes.
    let fits = (left[0] >= T::ZERO) & (left[1] >= T::ZERO) & (left[2] >= T::ZERO);
    let leftover = left[0] * weight[0] + left[1] * weight[1] + left[2] * weight[2];
    if fits {
        leftover
    } else {
        T::INFINITY
    }
}

/// The two precisions a best-fit scan runs in.
trait Float:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
{
    const ZERO: Self;
    const INFINITY: Self;
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const INFINITY: Self = f64::INFINITY;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const INFINITY: Self = f32::INFINITY;
}

/// Shortfall as fractions of capacity. (Comparisons rather than `max` and `min`: no NaN can
/// arise, and they compile to single instructions.)
#[inline(always)]
fn short_score(free: [f64; 3], need: [f64; 3], weight: [f64; 3]) -> f64 {
    let missing = |r: usize| {
        let short = need[r] - free[r];
        (if short > 0.0 { short } else { 0.0 }) * weight[r]
    };
    let score = missing(0) + missing(1) + missing(2);
    if score < f64::MAX {
        score
    } else {
        f64::MAX
    }
}

fn qualified(candidate: (f64, usize)) -> Option<(f64, usize)> {
    (candidate.0 < f64::INFINITY).then_some(candidate)
}

pub(super) fn amounts(r: Resources) -> [i64; 3] {
    [r.cpu_millis, r.ram_mgib, r.gpu]
}

/// One vector per resource of `f(amount)` for every cluster.
fn per_resource(values: &[Resources], f: impl Fn(i64) -> f64) -> [Vec<f64>; 3] {
    [0, 1, 2].map(|r| values.iter().map(|v| f(amounts(*v)[r])).collect())
}

/// The lowest and second lowest (score, index); earlier ones first on ties.
#[inline(always)]
fn lowest_two(scores: &[f64]) -> [(f64, usize); 2] {
    let mut two = [UNQUALIFIED; 2];
    // Past the first few blocks, hardly any score beats the second lowest: a branch-free test
    // (it vectorizes) skips the whole block.
    let blocks = scores.chunks_exact(8);
    let rest = blocks.remainder();
    for (start, block) in (0..).step_by(8).zip(blocks) {
        let threshold = two[1].0;
        if block
            .iter()
            .fold(false, |any, &score| any | (score < threshold))
        {
            for (i, &score) in (start..).zip(block) {
                consider_two(&mut two, (score, i));
            }
        }
    }
    for (i, &score) in (scores.len() - rest.len()..).zip(rest) {
        consider_two(&mut two, (score, i));
    }
    two
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Amounts exact in single precision (to 2^24 in magnitude) that tie often, reach its
    /// limit, or are anything, negative (an over-committed cluster) included.
    fn amount() -> impl Strategy<Value = i64> + Clone {
        prop_oneof![
            -4..=16i64,
            (1i64 << 24) - 4..=1 << 24,
            prop::sample::select(vec![250i64, 500, 1_000, 4_096, 65_536, 1 << 20]),
            -(1i64 << 24)..=1 << 24,
        ]
    }

    fn resources(amount: impl Strategy<Value = i64> + Clone) -> impl Strategy<Value = Resources> {
        (amount.clone(), amount.clone(), amount).prop_map(|(c, r, g)| Resources::new(c, r, g))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// The single-precision first scan changes no answer: the same two (score, index),
        /// bit for bit, as scoring every cluster in double precision.
        #[test]
        fn the_narrow_scan_finds_what_the_double_scan_does(
            clusters in prop_oneof![
                prop::collection::vec(
                    (resources(prop_oneof![amount(), 0..=1i64 << 40]), resources(amount())),
                    1..40,
                ),
                // Half the clusters without GPUs (none free, mostly), as real ones are.
                prop::collection::vec(
                    (resources(amount()), resources(amount()), any::<bool>(), 0..8u8),
                    1..40,
                ).prop_map(|clusters| clusters.into_iter().map(|(capacity, free, cpu_only, odd)| {
                    if !cpu_only {
                        return (capacity, free);
                    }
                    let gpus_free = if odd == 0 { free.gpu } else { 0 };
                    (Resources { gpu: 0, ..capacity }, Resources { gpu: gpus_free, ..free })
                }).collect()),
                // Scores a few units in the last place of single precision apart.
                prop::collection::vec(
                    (
                        resources((1i64 << 24) - 64..=(1 << 24) + 64),
                        resources((1i64 << 24) - 64..=1 << 24),
                    ),
                    2..40,
                ),
            ],
            need in prop_oneof![
                resources(amount()),
                resources(0..=8i64),
                resources(amount()).prop_map(|need| Resources { gpu: 0, ..need }),
            ],
            changes in prop::collection::vec((any::<prop::sample::Index>(), resources(amount())), 0..6),
        ) {
            let (capacity, free): (Vec<Resources>, Vec<Resources>) = clusters.into_iter().unzip();
            let mut scores = Scores::new(&capacity, &free, false);
            for (at, free) in changes {
                scores.set_free(at.index(capacity.len()), free);
            }
            let need = amounts(need).map(|amount| amount as f64);
            let wide = scan_lowest_two(&scores.free, &scores.fit_weight, need, &mut scores.scratch);
            let narrow = scores.narrow.as_mut().expect("every amount is exact in single precision");
            let found = scan_narrow(narrow, &scores.free, &scores.fit_weight, need);
            let bits = |two: [(f64, usize); 2]| two.map(|(s, c)| (s.to_bits(), c));
            prop_assert_eq!(bits(found), bits(wide));
        }

        /// Past 2^24 the narrow mirror is dropped, and every later scan is in double precision.
        #[test]
        fn an_amount_past_single_precision_drops_the_narrow_scan(
            free in prop::collection::vec(resources(amount()), 1..8),
            at in any::<prop::sample::Index>(),
            large in (1i64 << 24) + 1..=1 << 40,
        ) {
            let mut scores = Scores::new(&free, &free, false);
            prop_assert!(scores.narrow.is_some());
            scores.set_free(at.index(free.len()), Resources::new(0, large, 0));
            prop_assert!(scores.narrow.is_none());
        }
    }
}

//! Fit: where a request fits in free capacity, best fit first, and, for one that fits nowhere,
//! the cluster missing the least of it.

use super::FastMap;
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
    /// Queues are full of identical requests, so the last best-fit search for each request is
    /// kept, and the next one scores again only the clusters changed since: every change in
    /// order, and per cluster how many changes there had been after its last one.
    best_fits: FastMap<Resources, BestFit>,
    changed: Vec<usize>,
    last_change: Vec<usize>,
    memoize: bool,
    /// For `least_short`: `undominated()` as of that many changes.
    undominated: Option<(usize, Vec<usize>)>,
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

const UNQUALIFIED: (f64, usize) = (f64::INFINITY, usize::MAX);

impl Scores {
    pub(super) fn new(capacity: &[Resources], free: &[Resources], memoize: bool) -> Self {
        let inverse = |none: f64| move |cap: i64| if cap > 0 { 1.0 / cap as f64 } else { none };
        Scores {
            free: per_resource(free, |amount| amount as f64),
            fit_weight: per_resource(capacity, inverse(0.0)),
            short_weight: per_resource(capacity, inverse(f64::MAX)),
            scratch: vec![0.0; free.len()],
            best_fits: FastMap::default(),
            changed: Vec::new(),
            last_change: vec![0; free.len()],
            memoize,
            undominated: None,
        }
    }

    pub(super) fn set_free(&mut self, cluster: usize, free: Resources) {
        for (column, amount) in self.free.iter_mut().zip(amounts(free)) {
            column[cluster] = amount as f64;
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
        let [first, second] =
            scan_lowest_two(&self.free, &self.fit_weight, need, &mut self.scratch);
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
        let need = amounts(need).map(|amount| amount as f64);
        let mut best = UNQUALIFIED;
        for &c in self.undominated.iter().flat_map(|(_, kept)| kept) {
            let score = short_score(
                self.free.each_ref().map(|column| column[c]),
                need,
                self.short_weight.each_ref().map(|column| column[c]),
            );
            if score < best.0 {
                best = (score, c);
            }
        }
        qualified(best).map(|(_, cluster)| cluster)
    }

    /// The clusters that no lower one has at least as much free of everything as, at no more
    /// weight: only they can be missing the least of some request. A dominated cluster's score
    /// is never lower, float rounding being monotone, and on a tie the lower one wins anyway.
    /// Once clusters fill up, few are left, so each reason's search reads a few dozen clusters.
    fn undominated(&self) -> Vec<usize> {
        let at = |c: usize| {
            (
                self.free.each_ref().map(|column| column[c]),
                self.short_weight.each_ref().map(|column| column[c]),
            )
        };
        let mut kept: Vec<usize> = Vec::new();
        for c in 0..self.scratch.len() {
            let (free, weight) = at(c);
            let dominated = kept.iter().any(|&d| {
                let (more, lighter) = at(d);
                (0..3).all(|r| more[r] >= free[r] && lighter[r] <= weight[r])
            });
            if !dominated {
                kept.push(c);
            }
        }
        kept
    }
}

/// Every cluster's `fit_score` into `scores`, and the lowest two (score, index). The hottest
/// loop of a pass with many different requests: where the CPU has AVX2 it runs compiled for it,
/// four clusters at a time instead of two. The arithmetic is the same IEEE operations in the
/// same order either way (Rust never fuses a multiply and an add), so the scores are too.
fn scan_lowest_two(
    free: &[Vec<f64>; 3],
    weight: &[Vec<f64>; 3],
    need: [f64; 3],
    scores: &mut [f64],
) -> [(f64, usize); 2] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { scan_lowest_two_avx2(free, weight, need, scores) };
    }
    scan_lowest_two_portable(free, weight, need, scores)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_lowest_two_avx2(
    free: &[Vec<f64>; 3],
    weight: &[Vec<f64>; 3],
    need: [f64; 3],
    scores: &mut [f64],
) -> [(f64, usize); 2] {
    scan_lowest_two_portable(free, weight, need, scores)
}

#[inline(always)]
fn scan_lowest_two_portable(
    free: &[Vec<f64>; 3],
    weight: &[Vec<f64>; 3],
    need: [f64; 3],
    scores: &mut [f64],
) -> [(f64, usize); 2] {
    let n = scores.len();
    let [cpu, ram, gpu] = free.each_ref().map(|column| &column[..n]);
    let [w_cpu, w_ram, w_gpu] = weight.each_ref().map(|column| &column[..n]);
    for (c, score) in scores.iter_mut().enumerate() {
        *score = fit_score(
            [cpu[c], ram[c], gpu[c]],
            need,
            [w_cpu[c], w_ram[c], w_gpu[c]],
        );
    }
    lowest_two(scores)
}

/// Leftover as fractions of capacity, or ∞ where `need` does not fit.
#[inline(always)]
fn fit_score(free: [f64; 3], need: [f64; 3], weight: [f64; 3]) -> f64 {
    let left = [free[0] - need[0], free[1] - need[1], free[2] - need[2]];
    // `&`, not `&&`: no branches, so the loop vectorizes.
    let fits = (left[0] >= 0.0) & (left[1] >= 0.0) & (left[2] >= 0.0);
    let leftover = left[0] * weight[0] + left[1] * weight[1] + left[2] * weight[2];
    if fits {
        leftover
    } else {
        f64::INFINITY
    }
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
    let mut two = [UNQUALIFIED, UNQUALIFIED];
    let consider = |[first, second]: &mut [(f64, usize); 2], start: usize, block: &[f64]| {
        for (i, &score) in (start..).zip(block) {
            if score < second.0 {
                if score < first.0 {
                    (*first, *second) = ((score, i), *first);
                } else {
                    *second = (score, i);
                }
            }
        }
    };
    // Past the first few blocks, hardly any score beats the second lowest: a branch-free test
    // (it vectorizes) skips the whole block.
    let blocks = scores.chunks_exact(8);
    let rest = blocks.remainder();
    for (b, block) in blocks.enumerate() {
        let threshold = two[1].0;
        if block
            .iter()
            .fold(false, |any, &score| any | (score < threshold))
        {
            consider(&mut two, 8 * b, block);
        }
    }
    consider(&mut two, scores.len() - rest.len(), rest);
    two
}

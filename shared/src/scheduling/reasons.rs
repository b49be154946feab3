//! Why a deployment keeps waiting: the reason stored on it and shown by the API, with what it is
//! short of, and the messages that say so.

use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::pass::{Candidate, Pass, Target};
use super::recent::Recent;
use super::Plan;
use crate::resources::{Resources, ResourcesDto};

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
    /// Auto-placed, and larger than every cluster's total capacity: it can start only once a
    /// cluster that large exists (one was deleted or shrunk while it waited, say).
    ExceedsCapacity,
    /// Starting it would take its submitter's running work past the submitter's quota: it
    /// waits for the submitter's own work to free room, blocking and preempting no one.
    QuotaExceeded,
}

/// A shortfall in the API's units, as any request is: `{"cpu_cores": 1.5, "ram_gib": 4.0,
/// "gpu_count": 2}`.
fn serialize_shortfall<S: Serializer>(
    shortfall: &Option<Resources>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    shortfall.map(ResourcesDto::from).serialize(serializer)
}

/// `shortfall`: how far past the quota starting it would go.
pub(super) fn quota_reason(shortfall: Resources) -> Reason {
    let mut message = String::from("its submitter's quota is in use: ");
    describe(&mut message, shortfall);
    message.push_str(" of quota");
    Reason {
        code: ReasonCode::QuotaExceeded,
        message,
        shortfall: Some(shortfall),
    }
}

pub(super) fn waiting_message(unfinished: usize) -> String {
    match unfinished {
        1 => "waiting for 1 unfinished dependency".to_string(),
        n => format!("waiting for {n} unfinished dependencies"),
    }
}

impl Pass<'_> {
    /// Writes the reasons of the candidates that cannot start, against the free capacity the
    /// plan leaves: what they would see if they looked now. Auto placements are measured
    /// against the cluster missing the least.
    pub(super) fn finish(mut self) -> Plan {
        // Per request shape, for auto placements: the cluster missing the least of it, whether
        // it is larger than every cluster, and the first of them not preempted, whose reason the
        // others (most of the queue) repeat.
        let mut by_request: Recent<Resources, (Option<usize>, bool, Option<usize>)> = Recent::new();
        // Most messages name a cluster: each id is written out once, not once per message.
        let cluster_names: Vec<String> = if self.unplaced.is_empty() {
            Vec::new()
        } else {
            let name = |&id: &Uuid| id.hyphenated().to_string();
            self.cluster_ids.iter().map(name).collect()
        };
        for (i, candidate, target) in std::mem::take(&mut self.unplaced) {
            let (cluster, too_large) = match target {
                Target::Cluster(cluster) => (Some(cluster), false),
                Target::Anywhere => {
                    let (cluster, too_large, same_reason) =
                        by_request.get_or_insert_with(candidate.resources, || {
                            let need = candidate.resources;
                            let fits_one = self.capacity.iter().any(|c| need.fits_in(c));
                            let too_large = !self.capacity.is_empty() && !fits_one;
                            (self.scores.least_short(need), too_large, None)
                        });
                    if candidate.preempted_by.is_none() {
                        if let Some(j) = *same_reason {
                            self.plan.waiting[i].reason = self.plan.waiting[j].reason.clone();
                            continue;
                        }
                        *same_reason = Some(i);
                    }
                    (*cluster, *too_large)
                }
                Target::Unknown => (None, false),
            };
            self.plan.waiting[i].reason =
                self.blocked_reason(&candidate, cluster, too_large, &cluster_names);
        }
        self.plan
    }

    /// The reason for a candidate that cannot start, measured against `cluster`'s free capacity
    /// (None: no cluster to measure against); `too_large`: no cluster could ever hold it.
    /// `cluster_names` has every cluster's id written out.
    fn blocked_reason(
        &self,
        candidate: &Candidate,
        cluster: Option<usize>,
        too_large: bool,
        cluster_names: &[String],
    ) -> Reason {
        let mut message = String::with_capacity(128);
        let code = match candidate.preempted_by {
            Some(preemptor) => {
                message.push_str("preempted by ");
                push_id(&mut message, preemptor);
                message.push_str("; ");
                ReasonCode::Preempted
            }
            None if too_large => {
                message.push_str(
                    "larger than the total capacity of every cluster of the organization, so \
                     it starts only once a cluster that large exists; ",
                );
                ReasonCode::ExceedsCapacity
            }
            None => ReasonCode::InsufficientResources,
        };
        let shortfall = match (cluster, candidate.cluster_id) {
            (Some(c), _) => {
                let shortfall = candidate.resources.shortfall(&self.free[c]);
                describe(&mut message, shortfall);
                message.push_str(" on cluster ");
                message.push_str(&cluster_names[c]);
                shortfall
            }
            (None, Some(requested)) => {
                message.push_str("cluster ");
                push_id(&mut message, requested);
                message.push_str(" is not available");
                candidate.resources
            }
            (None, None) => {
                message.push_str("no cluster is available");
                candidate.resources
            }
        };
        Reason {
            code,
            message,
            shortfall: Some(shortfall),
        }
    }
}

fn push_id(out: &mut String, id: Uuid) {
    out.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
}

/// Appends "needs 1.5 more CPU cores, 4 more GiB of RAM and 2 more GPUs".
pub(super) fn describe(out: &mut String, shortfall: Resources) {
    let Resources {
        cpu_millis: cpu,
        ram_mgib: ram,
        gpu,
    } = shortfall;
    let mut parts_left = [cpu, ram, gpu].iter().filter(|&&amount| amount > 0).count();
    if parts_left == 0 {
        out.push_str("does not fit");
        return;
    }
    out.push_str("needs ");
    let mut separate = |out: &mut String| {
        parts_left -= 1;
        out.push_str(match parts_left {
            0 => "",
            1 => " and ",
            _ => ", ",
        });
    };
    if cpu > 0 {
        push_thousandths(out, cpu);
        out.push_str(if cpu == 1000 {
            " more CPU core"
        } else {
            " more CPU cores"
        });
        separate(out);
    }
    if ram > 0 {
        push_thousandths(out, ram);
        out.push_str(" more GiB of RAM");
        separate(out);
    }
    if gpu > 0 {
        push_integer(out, gpu);
        out.push_str(if gpu == 1 { " more GPU" } else { " more GPUs" });
        separate(out);
    }
}

/// Appends a non-negative count of thousandths as a short decimal: 1500 → "1.5", 4000 → "4".
fn push_thousandths(out: &mut String, thousandths: i64) {
    push_integer(out, thousandths / 1000);
    let fraction = thousandths % 1000;
    if fraction > 0 {
        let digits = [fraction / 100, fraction / 10 % 10, fraction % 10];
        let significant = if digits[2] > 0 {
            3
        } else if digits[1] > 0 {
            2
        } else {
            1
        };
        out.push('.');
        for digit in &digits[..significant] {
            push_integer(out, *digit);
        }
    }
}

/// Appends a non-negative integer. By hand, because a pass can write a message for each of
/// 100,000 blocked deployments and the formatting machinery costs several times more.
fn push_integer(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n.max(0);
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

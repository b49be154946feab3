//! `hv explain`: why a deployment is where it is, in words for someone who never read the API.
//! Gathers the deployment, its events, the clusters, what runs and waits, and a dry-run.

use crate::commands::deploy::dry_run_words;
use crate::commands::Ctx;
use crate::error::Result;
use crate::output::{self, age, shortfall_words, size, str_of, when};
use serde_json::{json, Value};
use std::collections::HashMap;

fn items(ctx: &Ctx, path: &str) -> Result<Vec<Value>> {
    Ok(ctx.api.get(path)?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// "train (priority 60, 4 CPU, 16 GiB, 1 GPU)", or "(priority 30, effective 45, ...)" when
/// aging has raised it.
fn describe(d: &Value) -> String {
    format!(
        "{} (priority {}{}, {})",
        str_of(d, "name"),
        d["priority"],
        aged(d)
            .map(|e| format!(", effective {e}"))
            .unwrap_or_default(),
        size(&d["resources"])
    )
}

/// The effective priority, where aging made it differ from the base.
fn aged(d: &Value) -> Option<i64> {
    let effective = d["effective_priority"].as_i64()?;
    (Some(effective) != d["priority"].as_i64()).then_some(effective)
}

fn submitter_of(d: &Value) -> Option<&str> {
    d["submitted_by"]["id"].as_str()
}

/// Does `d` hold any of the kinds of resource `shortfall` is short of?
fn holds_some_of(d: &Value, shortfall: &Value) -> bool {
    let r = &d["resources"];
    let short = |k: &str| shortfall[k].as_f64().unwrap_or(0.0) > 0.0;
    let has = |k: &str| r[k].as_f64().unwrap_or(0.0) > 0.0;
    ["cpu_cores", "ram_gib", "gpu_count"]
        .iter()
        .any(|k| short(k) && has(k))
}

/// With fair share on, who goes first among the deployments of its priority, and why.
fn fair_share_words(ctx: &Ctx, org: &str, d: &Value, pending: &[Value], lines: &mut Vec<String>) {
    let Ok(settings) = ctx
        .api
        .get(&format!("/api/v1/organizations/{org}/settings"))
    else {
        return;
    };
    if settings["fair_share"] != true {
        return;
    }
    let level = d["effective_priority"].as_i64();
    let others = pending
        .iter()
        .filter(|p| p["effective_priority"].as_i64() == level && submitter_of(p) != submitter_of(d))
        .count();
    let Ok(usage) = ctx.api.get(&format!("/api/v1/organizations/{org}/usage")) else {
        return;
    };
    let share = |who: Option<&str>| {
        usage
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["submitter"]["id"].as_str() == who)
            .and_then(|u| u["dominant_share"].as_f64())
            .unwrap_or(0.0)
    };
    lines.push(format!(
        "Fair share is on: among the {} waiting at its priority from other submitters, whoever \
         holds the smallest share of the organization goes first; {} holds {:.0}%.",
        others,
        d["submitted_by"]["name"]
            .as_str()
            .unwrap_or("its submitter"),
        share(submitter_of(d)) * 100.0
    ));
}

pub fn explain(ctx: &Ctx, reference: &str) -> Result<()> {
    let org = ctx.org()?;
    let d = crate::resolve::deployment(&ctx.api, &org, reference)?;
    let id = str_of(&d, "id").to_string();
    let events = ctx.api.get(&format!("/api/v1/deployments/{id}/events"))?;
    let events = events.as_array().cloned().unwrap_or_default();
    let clusters: HashMap<String, Value> = ctx
        .api
        .get(&format!("/api/v1/clusters?organization_id={}", org.id))?
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (str_of(c, "id").to_string(), c.clone()))
        .collect();
    let cluster_name = |id: &Value| {
        id.as_str().map(|i| {
            clusters
                .get(i)
                .map(|c| str_of(c, "name").to_string())
                .unwrap_or_else(|| i.to_string())
        })
    };
    let base = format!("/api/v1/deployments?organization_id={}&limit=200", org.id);
    let running = items(ctx, &format!("{base}&status=running"))?;
    let pending = items(ctx, &format!("{base}&status=pending"))?;
    let names = crate::resolve::Names::of(&ctx.api, &org);
    let status = str_of(&d, "status");
    let mut lines: Vec<String> = Vec::new();
    let mut report = json!({"deployment": d});

    match status {
        "pending" => {
            let wanted = d["requested_cluster_id"].as_str();
            let place = match cluster_name(&d["requested_cluster_id"]) {
                Some(c) => format!("on cluster {c}"),
                None => "on any cluster of the organization".into(),
            };
            lines.push(format!(
                "{} is waiting to start (pending for {}). It asks for {} {place}, at priority {}.",
                str_of(&d, "name"),
                age(&d["created_at"]).trim_end_matches(" ago"),
                size(&d["resources"]),
                d["priority"]
            ));
            if let Some(effective) = aged(&d) {
                lines.push(format!(
                    "Aging: it has waited long enough to be queued at priority {effective}; \
                     only its own priority {} counts for preempting.",
                    d["priority"]
                ));
            }
            let reason = &d["reason"];
            if let Some(message) = reason["message"].as_str() {
                lines.push(format!(
                    "Why: {} ({}).",
                    names.humanize(message),
                    str_of(reason, "code")
                ));
            }
            let shortfall = &reason["shortfall"];
            let over_quota = reason["code"] == "quota_exceeded";
            if shortfall.is_object() && over_quota {
                lines.push(format!(
                    "Short by: its submitter's quota lacks {}; it starts when their own \
                     running work frees that much (it blocks and preempts no one).",
                    shortfall_words(shortfall)
                ));
            } else if shortfall.is_object() {
                lines.push(format!(
                    "Short by: it needs {} than are free now.",
                    shortfall_words(shortfall)
                ));
            }
            fair_share_words(ctx, &org.id, &d, &pending, &mut lines);
            // Ahead in the queue: pending deployments with a smaller queue position.
            let position = d["queue_position"].as_i64();
            let mut ahead: Vec<&Value> = pending
                .iter()
                .filter(|p| {
                    p["queue_position"]
                        .as_i64()
                        .zip(position)
                        .is_some_and(|(a, b)| a < b)
                })
                .collect();
            ahead.sort_by_key(|p| p["queue_position"].as_i64());
            if let Some(position) = position {
                if ahead.is_empty() {
                    lines.push(format!(
                        "Queue: position {position}; nothing waits ahead of it."
                    ));
                } else {
                    lines.push(format!(
                        "Queue: position {position}; {} ahead of it (they go first):",
                        ahead.len()
                    ));
                    for p in &ahead {
                        lines.push(format!("  - {}", describe(p)));
                    }
                }
            }
            // Dependencies it waits for, with where each stands.
            for dep in d["depends_on"].as_array().into_iter().flatten() {
                if let Some(dep_id) = dep.as_str() {
                    if let Ok(dep) = ctx.api.get(&format!("/api/v1/deployments/{dep_id}")) {
                        lines.push(format!(
                            "It depends on {}, which is {}.",
                            str_of(&dep, "name"),
                            str_of(&dep, "status")
                        ));
                    }
                }
            }
            // Who holds the capacity it lacks: running work on the cluster(s) it could use
            // that uses some of what is short.
            // Over quota, that is the submitter's own running work, wherever it runs.
            let holders: Vec<&Value> = running
                .iter()
                .filter(|r| {
                    over_quota && submitter_of(r) == submitter_of(&d)
                        || !over_quota && wanted.is_none_or(|w| r["cluster_id"].as_str() == Some(w))
                })
                .filter(|r| shortfall.is_object() && holds_some_of(r, shortfall))
                .collect();
            if !holders.is_empty() {
                lines.push(if over_quota {
                    "Holding its submitter's quota:".into()
                } else {
                    "Holding the capacity it needs:".to_string()
                });
                for h in &holders {
                    // Only strictly lower priority work can be preempted to make room.
                    let note = if h["priority"].as_i64() < d["priority"].as_i64() {
                        "; lower priority, so it can be preempted for this one"
                    } else {
                        ""
                    };
                    lines.push(format!(
                        "  - {} on {}, running for {}{note}",
                        describe(h),
                        cluster_name(&h["cluster_id"]).unwrap_or_else(|| "-".into()),
                        age(&h["started_at"]).trim_end_matches(" ago")
                    ));
                }
            }
            report["ahead"] = json!(ahead);
            report["holding_capacity"] = json!(holders);
            let body = json!({
                "organization_id": d["organization_id"], "cluster_id": d["requested_cluster_id"],
                "name": d["name"], "image": d["image"], "resources": d["resources"],
                "priority": d["priority"], "depends_on": d["depends_on"],
                "max_runtime_seconds": d["max_runtime_seconds"],
            });
            match ctx.api.post("/api/v1/deployments/dry-run", &body) {
                Ok(result) => {
                    lines.push(format!(
                        "A dry-run now says: {}",
                        dry_run_words(ctx, &result)
                    ));
                    report["dry_run"] = result;
                }
                Err(e) => lines.push(format!("A dry-run could not be made: {e}.")),
            }
        }
        "running" => {
            let on = cluster_name(&d["cluster_id"]).unwrap_or_else(|| "-".into());
            lines.push(format!(
                "{} is running on cluster {on} since {} ({}), using {} at priority {}.",
                str_of(&d, "name"),
                when(&d["started_at"]),
                age(&d["started_at"]),
                size(&d["resources"]),
                d["priority"]
            ));
            // Only strictly higher-priority waiting work that could use its cluster can evict it.
            let threats: Vec<&Value> = pending
                .iter()
                .filter(|p| p["priority"].as_i64() > d["priority"].as_i64())
                .filter(|p| {
                    p["requested_cluster_id"].is_null()
                        || p["requested_cluster_id"] == d["cluster_id"]
                })
                .collect();
            if threats.is_empty() {
                lines.push(format!(
                    "Nothing waiting has a priority above {}, so nothing can preempt it now.",
                    d["priority"]
                ));
            } else {
                lines.push(
                    "These waiting deployments have a higher priority and could preempt it:".into(),
                );
                for t in &threats {
                    lines.push(format!("  - {}", describe(t)));
                }
            }
            report["could_preempt_it"] = json!(threats);
        }
        _ => {
            let why = d["reason"]["message"]
                .as_str()
                .map(|m| format!(": {}", names.humanize(m)))
                .unwrap_or_default();
            lines.push(format!(
                "{} has finished: {status} at {}{why}.",
                str_of(&d, "name"),
                when(&d["finished_at"])
            ));
        }
    }

    // History: how often it was preempted, and by whom.
    let preemptions: Vec<&Value> = events.iter().filter(|e| e["type"] == "preempted").collect();
    let mut history = Vec::new();
    for e in &preemptions {
        let by = e["related_deployment_id"]
            .as_str()
            .map(|r| crate::resolve::deployment_name(&ctx.api, r))
            .unwrap_or_else(|| "another deployment".into());
        history.push(json!({"at": e["at"], "by": by, "detail": e["detail"]}));
        lines.push(format!("  - preempted at {} by {by}", when(&e["at"])));
    }
    let header = match preemptions.len() {
        0 => "History: it has never been preempted.".to_string(),
        1 => "History: preempted once:".to_string(),
        n => format!("History: preempted {n} times:"),
    };
    let at = lines.len() - preemptions.len();
    lines.insert(at, header);
    if let Some(submitted) = events.iter().find(|e| e["type"] == "submitted") {
        lines.push(format!(
            "Submitted {} by {}.",
            when(&submitted["at"]),
            str_of(&d["submitted_by"], "name")
        ));
    }
    report["preemptions"] = json!(history);
    if output::structured(ctx.format, &report)? {
        return Ok(());
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

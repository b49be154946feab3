//! submit, ls, get, events, cancel, complete.

use super::Ctx;
use crate::config::OrgRef;
use crate::error::{Error, Result};
use crate::follow::{self, Until};
use crate::output::{self, age, str_of, when};
use crate::resolve;
use clap::Args;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct SubmitArgs {
    /// A YAML spec: {name, image, resources: {cpu_cores, ram_gib, gpu_count}, priority,
    /// cluster, depends_on, max_runtime}. Flags override its fields.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    image: Option<String>,
    // Negative numbers are let through: the API's field errors say what is wrong with them.
    #[arg(long, allow_negative_numbers = true)]
    cpu: Option<f64>,
    /// RAM in GiB.
    #[arg(long, allow_negative_numbers = true)]
    ram: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    gpu: Option<i64>,
    /// 1-100, higher runs first (default 50).
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i64>,
    /// Name or id (default: the scheduler picks).
    #[arg(long)]
    cluster: Option<String>,
    /// Deployments (names or ids) that must succeed first; repeatable.
    #[arg(long = "depends-on")]
    depends_on: Vec<String>,
    /// Stop it as failed after running this long: 90s, 30m, 2h, 1h30m.
    #[arg(long)]
    max_runtime: Option<String>,
    /// Only say what would happen now; submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Wait until it runs (`--wait`) or finishes (`--wait=finish`), showing progress.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "running")]
    wait: Option<Until>,
    /// Give up waiting after this long (exit 5): 30s, 5m.
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// "90s", "30m", "2h", "1h30m", "1d" or plain seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration like 90s, 30m, 2h or 1h30m");
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total += n * unit;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

const SPEC_KEYS: [&str; 7] = [
    "name",
    "image",
    "resources",
    "priority",
    "cluster",
    "depends_on",
    "max_runtime",
];

/// The spec file as JSON, with its keys checked (a typo is an error, not a silent default).
fn read_spec(path: &PathBuf) -> Result<Map<String, Value>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::other(format!("cannot read {shown}: {e}")))?;
    let value: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::other(format!("{shown} is not valid YAML: {e}")))?;
    let Value::Object(spec) = value else {
        return Err(Error::other(format!(
            "{shown} should be a mapping with name, image and resources"
        )));
    };
    if let Some(unknown) = spec.keys().find(|k| !SPEC_KEYS.contains(&k.as_str())) {
        return Err(Error::other(format!(
            "{shown}: unknown field '{unknown}' (the fields are {})",
            SPEC_KEYS.join(", ")
        )));
    }
    Ok(spec)
}

/// The request body of POST /deployments (and its dry-run) from the spec and the flags.
fn request(ctx: &Ctx, org: &OrgRef, args: &SubmitArgs) -> Result<Value> {
    let mut spec = match &args.file {
        Some(path) => read_spec(path)?,
        None => Map::new(),
    };
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            spec.insert(key.into(), v);
        }
    };
    set("name", args.name.clone().map(Value::from));
    set("image", args.image.clone().map(Value::from));
    set("priority", args.priority.map(Value::from));
    set("cluster", args.cluster.clone().map(Value::from));
    set("max_runtime", args.max_runtime.clone().map(Value::from));
    if !args.depends_on.is_empty() {
        spec.insert("depends_on".into(), json!(args.depends_on));
    }
    let mut resources = match spec.remove("resources") {
        Some(Value::Object(r)) => r,
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(Error::other(
                "resources should be a mapping: {cpu_cores, ram_gib, gpu_count}",
            ))
        }
    };
    for (key, flag) in [("cpu_cores", args.cpu), ("ram_gib", args.ram)] {
        if let Some(v) = flag {
            resources.insert(key.into(), json!(v));
        }
    }
    if let Some(gpu) = args.gpu {
        resources.insert("gpu_count".into(), json!(gpu));
    }
    for key in ["name", "image"] {
        if !spec.contains_key(key) {
            return Err(Error::other(format!(
                "a deployment needs a {key}: put it in the spec file or pass --{key}"
            )));
        }
    }
    if resources.is_empty() {
        return Err(Error::other(
            "a deployment needs resources: resources.cpu_cores/ram_gib/gpu_count in the spec, or --cpu/--ram/--gpu",
        ));
    }
    // The API checks types and ranges and answers with field errors; pass values through.
    let mut body = Map::new();
    body.insert("organization_id".into(), json!(org.id));
    body.insert("name".into(), spec["name"].clone());
    body.insert("image".into(), spec["image"].clone());
    body.insert("resources".into(), Value::Object(resources));
    if let Some(p) = spec.get("priority") {
        body.insert("priority".into(), p.clone());
    }
    if let Some(cluster) = spec.get("cluster").filter(|c| !c.is_null()) {
        let reference = cluster
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| cluster.to_string());
        let found = resolve::cluster(&ctx.api, org, &reference)?;
        body.insert("cluster_id".into(), found["id"].clone());
    }
    if let Some(deps) = spec.get("depends_on").filter(|d| !d.is_null()) {
        let Some(list) = deps.as_array() else {
            return Err(Error::other(
                "depends_on should be a list of deployment names or ids",
            ));
        };
        let mut ids = Vec::new();
        for dep in list {
            let reference = dep
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| dep.to_string());
            ids.push(resolve::deployment(&ctx.api, org, &reference)?["id"].clone());
        }
        body.insert("depends_on".into(), Value::Array(ids));
    }
    if let Some(runtime) = spec.get("max_runtime").filter(|r| !r.is_null()) {
        let text = runtime
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| runtime.to_string());
        let seconds =
            parse_duration(&text).map_err(|e| Error::other(format!("max_runtime: {e}")))?;
        body.insert("max_runtime_seconds".into(), json!(seconds.as_secs()));
    }
    Ok(Value::Object(body))
}

pub fn submit(ctx: &Ctx, args: SubmitArgs) -> Result<()> {
    let org = ctx.org()?;
    let body = request(ctx, &org, &args)?;
    if args.dry_run {
        let result = ctx.api.post("/api/v1/deployments/dry-run", &body)?;
        let outcome = str_of(&result, "outcome").to_string();
        if !output::structured(ctx.format, &result)? {
            println!("{}", dry_run_words(ctx, &result));
        }
        if outcome == "reject" {
            return Err(Error::CannotPlace(format!(
                "it can never be placed: {}",
                result["reason"]["message"]
                    .as_str()
                    .unwrap_or("it is larger than any cluster")
            )));
        }
        return Ok(());
    }
    let created = ctx
        .api
        .post("/api/v1/deployments", &body)
        .map_err(Error::into_cannot_place)?;
    let id = str_of(&created, "id").to_string();
    let last = match args.wait {
        Some(until) => {
            // Show the final state even when waiting fails, then fail.
            match follow::wait(
                &ctx.api,
                &resolve::Names::of(&ctx.api, &org),
                &id,
                until,
                args.timeout,
            ) {
                Ok(d) => d,
                Err(e) => {
                    if let Ok(d) = ctx.api.get(&format!("/api/v1/deployments/{id}")) {
                        print_deployments(ctx, &org, &[d])?;
                    }
                    return Err(e);
                }
            }
        }
        None => created,
    };
    print_deployments(ctx, &org, &[last])
}

/// A dry-run's answer in a sentence.
pub fn dry_run_words(ctx: &Ctx, result: &Value) -> String {
    let cluster = result["cluster_id"]
        .as_str()
        .and_then(|id| ctx.api.get(&format!("/api/v1/clusters/{id}")).ok())
        .map(|c| str_of(&c, "name").to_string());
    let on = cluster
        .map(|c| format!(" on cluster {c}"))
        .unwrap_or_default();
    let reason = result["reason"]["message"].as_str().unwrap_or("");
    let reason = match ctx.org() {
        Ok(org) => resolve::Names::of(&ctx.api, &org).humanize(reason),
        Err(_) => reason.to_string(),
    };
    match str_of(result, "outcome") {
        "start" => {
            let victims: Vec<String> = result["would_preempt"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|id| resolve::deployment_name(&ctx.api, id))
                .collect();
            if victims.is_empty() {
                format!("It would start now{on}.")
            } else {
                format!(
                    "It would start now{on}, preempting {} (lower priority).",
                    victims.join(", ")
                )
            }
        }
        "queue" => format!("It would wait in the queue{on}: {reason}."),
        _ => format!("It can never run: {reason}."),
    }
}

fn cluster_names(ctx: &Ctx, org: &OrgRef) -> HashMap<String, String> {
    ctx.api
        .get(&format!("/api/v1/clusters?organization_id={}", org.id))
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|c| (str_of(c, "id").to_string(), str_of(c, "name").to_string()))
        .collect()
}

fn row(d: &Value, clusters: &HashMap<String, String>) -> Vec<comfy_table::Cell> {
    use comfy_table::Cell;
    let cluster = d["cluster_id"]
        .as_str()
        .map(|id| clusters.get(id).cloned().unwrap_or_else(|| id.to_string()))
        .unwrap_or_else(|| "-".into());
    let reason = d["reason"]["code"].as_str().unwrap_or("");
    vec![
        Cell::new(str_of(d, "name")),
        output::status_cell(str_of(d, "status")),
        Cell::new(d["priority"].to_string()),
        Cell::new(output::size(&d["resources"])),
        Cell::new(cluster),
        Cell::new(if reason.is_empty() { "-" } else { reason }),
        Cell::new(age(&d["created_at"])),
        Cell::new(str_of(d, "id")),
    ]
}

const HEADER: [&str; 8] = [
    "NAME", "STATUS", "PRIORITY", "SIZE", "CLUSTER", "REASON", "AGE", "ID",
];

/// One object for one deployment in JSON/YAML (what GET returns), a table for people.
fn print_deployments(ctx: &Ctx, org: &OrgRef, list: &[Value]) -> Result<()> {
    let structured = match list {
        [one] => one.clone(),
        many => Value::Array(many.to_vec()),
    };
    if output::structured(ctx.format, &structured)? {
        return Ok(());
    }
    let clusters = cluster_names(ctx, org);
    let mut table = output::table(&HEADER);
    for d in list {
        table.add_row(row(d, &clusters));
    }
    output::print_table(&table);
    Ok(())
}

pub fn ls(ctx: &Ctx, status: Option<String>, watch: bool, timeout: Option<Duration>) -> Result<()> {
    let org = ctx.org()?;
    let mut path = format!("/api/v1/deployments?organization_id={}&limit=200", org.id);
    if let Some(status) = &status {
        path.push_str(&format!("&status={status}"));
    }
    if watch {
        let clusters = cluster_names(ctx, &org);
        let mut first = true;
        return follow::watch_list(&ctx.api, &path, timeout, |d| {
            match ctx.format {
                // One object per line as changes come: what `jq` reads from a stream.
                output::Format::Json => {
                    println!("{}", serde_json::to_string(d).unwrap_or_default());
                    return;
                }
                output::Format::Yaml => {
                    println!("---");
                    let _ = output::structured(ctx.format, d);
                    return;
                }
                output::Format::Table => {}
            }
            let mut table = output::table(&HEADER);
            table.add_row(row(d, &clusters));
            // The header once, then a row per change.
            let skip = if first { 0 } else { 1 };
            for line in output::table_lines(&table).into_iter().skip(skip) {
                println!("{line}");
            }
            first = false;
        });
    }
    let page = ctx.api.get(&path)?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if output::structured(ctx.format, &Value::Array(items.clone()))? {
        return Ok(());
    }
    if items.is_empty() {
        eprintln!("No deployments in {}.", org.name);
        return Ok(());
    }
    let clusters = cluster_names(ctx, &org);
    let mut table = output::table(&HEADER);
    for d in &items {
        table.add_row(row(d, &clusters));
    }
    output::print_table(&table);
    Ok(())
}

pub fn get(ctx: &Ctx, reference: &str) -> Result<()> {
    let org = ctx.org()?;
    let d = resolve::deployment(&ctx.api, &org, reference)?;
    if output::structured(ctx.format, &d)? {
        return Ok(());
    }
    let clusters = cluster_names(ctx, &org);
    let cluster = d["cluster_id"]
        .as_str()
        .map(|id| clusters.get(id).cloned().unwrap_or_else(|| id.to_string()))
        .unwrap_or_else(|| "any".into());
    let mut fields = vec![
        ("Name", str_of(&d, "name").to_string()),
        ("ID", str_of(&d, "id").to_string()),
        ("Status", str_of(&d, "status").to_string()),
        ("Image", str_of(&d, "image").to_string()),
        ("Size", output::size(&d["resources"])),
        ("Priority", d["priority"].to_string()),
        ("Cluster", cluster),
        (
            "Submitted by",
            str_of(&d["submitted_by"], "name").to_string(),
        ),
        ("Created", when(&d["created_at"])),
    ];
    if let Some(message) = d["reason"]["message"].as_str() {
        fields.push((
            "Reason",
            format!("{} ({message})", str_of(&d["reason"], "code")),
        ));
    }
    if let Some(position) = d["queue_position"].as_i64() {
        fields.push(("Queue position", position.to_string()));
    }
    if !d["started_at"].is_null() {
        fields.push(("Started", when(&d["started_at"])));
    }
    if !d["finished_at"].is_null() {
        fields.push(("Finished", when(&d["finished_at"])));
    }
    if d["preemption_count"].as_i64().unwrap_or(0) > 0 {
        fields.push(("Preempted", format!("{} times", d["preemption_count"])));
    }
    for (key, value) in fields {
        println!("{:<15} {value}", format!("{key}:"));
    }
    Ok(())
}

pub fn events(
    ctx: &Ctx,
    reference: &str,
    follow_it: bool,
    timeout: Option<Duration>,
) -> Result<()> {
    let org = ctx.org()?;
    let d = resolve::deployment(&ctx.api, &org, reference)?;
    let id = str_of(&d, "id").to_string();
    if ctx.format != output::Format::Table && !follow_it {
        let events = ctx.api.get(&format!("/api/v1/deployments/{id}/events"))?;
        output::structured(ctx.format, &events)?;
        return Ok(());
    }
    let names = resolve::Names::of(&ctx.api, &org);
    let mut header = true;
    follow::events(&ctx.api, &id, follow_it, timeout, |event| {
        match ctx.format {
            // One JSON object per line while following: easy for `jq` to read as they come.
            output::Format::Json => {
                println!("{}", serde_json::to_string(event).unwrap_or_default());
                return;
            }
            output::Format::Yaml => {
                println!("---");
                let _ = output::structured(ctx.format, event);
                return;
            }
            output::Format::Table => {}
        }
        if header {
            println!("{:<24} {:<18} DETAIL", "TIME", "EVENT");
            header = false;
        }
        println!(
            "{:<24} {:<18} {}",
            when(&event["at"]),
            str_of(event, "type"),
            names.humanize(str_of(event, "detail"))
        );
    })
}

pub fn cancel(ctx: &Ctx, reference: &str) -> Result<()> {
    let org = ctx.org()?;
    let d = resolve::deployment(&ctx.api, &org, reference)?;
    let cancelled = ctx.api.post(
        &format!("/api/v1/deployments/{}/cancel", str_of(&d, "id")),
        &json!({}),
    )?;
    print_deployments(ctx, &org, &[cancelled])
}

pub fn complete(
    ctx: &Ctx,
    reference: &str,
    outcome: Outcome,
    message: Option<String>,
) -> Result<()> {
    let org = ctx.org()?;
    let d = resolve::deployment(&ctx.api, &org, reference)?;
    let outcome = match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
    };
    let done = ctx.api.post(
        &format!("/api/v1/deployments/{}/complete", str_of(&d, "id")),
        &json!({"outcome": outcome, "message": message}),
    )?;
    print_deployments(ctx, &org, &[done])
}

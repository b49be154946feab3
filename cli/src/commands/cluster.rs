//! cluster list/create/resize/delete, and top.

use super::Ctx;
use crate::error::{Error, Result};
use crate::output::{self, age, bar, num, str_of};
use crate::resolve;
use clap::Subcommand;
use serde_json::{json, Map, Value};

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Clusters of the current organization.
    List,
    /// Register a cluster (admins).
    Create {
        name: String,
        #[arg(long, allow_negative_numbers = true)]
        cpu: f64,
        /// RAM in GiB.
        #[arg(long, allow_negative_numbers = true)]
        ram: f64,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        gpu: i64,
    },
    /// Change a cluster's capacity (refused below what is allocated).
    Resize {
        cluster: String,
        #[arg(long, allow_negative_numbers = true)]
        cpu: Option<f64>,
        #[arg(long, allow_negative_numbers = true)]
        ram: Option<f64>,
        #[arg(long, allow_negative_numbers = true)]
        gpu: Option<i64>,
    },
    /// Remove a cluster with nothing pending or running on it.
    Delete { cluster: String },
}

fn print_clusters(ctx: &Ctx, clusters: &Value) -> Result<()> {
    if output::structured(ctx.format, clusters)? {
        return Ok(());
    }
    let mut table = output::table(&[
        "NAME",
        "CAPACITY",
        "AVAILABLE",
        "RUNNING",
        "PENDING",
        "CREATED",
        "ID",
    ]);
    for c in clusters.as_array().into_iter().flatten() {
        table.add_row(vec![
            str_of(c, "name").to_string(),
            output::size(&c["capacity"]),
            output::size(&c["available"]),
            c["running_count"].to_string(),
            c["pending_count"].to_string(),
            age(&c["created_at"]),
            str_of(c, "id").to_string(),
        ]);
    }
    output::print_table(&table);
    Ok(())
}

pub fn cluster(ctx: &Ctx, command: ClusterCommand) -> Result<()> {
    let org = ctx.org()?;
    match command {
        ClusterCommand::List => {
            let clusters = ctx
                .api
                .get(&format!("/api/v1/clusters?organization_id={}", org.id))?;
            print_clusters(ctx, &clusters)
        }
        ClusterCommand::Create {
            name,
            cpu,
            ram,
            gpu,
        } => {
            let created = ctx.api.post(
                "/api/v1/clusters",
                &json!({"organization_id": org.id, "name": name,
                        "cpu_cores": cpu, "ram_gib": ram, "gpu_count": gpu}),
            )?;
            print_clusters(ctx, &Value::Array(vec![created]))
        }
        ClusterCommand::Resize {
            cluster,
            cpu,
            ram,
            gpu,
        } => {
            let found = resolve::cluster(&ctx.api, &org, &cluster)?;
            let mut body = Map::new();
            if let Some(cpu) = cpu {
                body.insert("cpu_cores".into(), json!(cpu));
            }
            if let Some(ram) = ram {
                body.insert("ram_gib".into(), json!(ram));
            }
            if let Some(gpu) = gpu {
                body.insert("gpu_count".into(), json!(gpu));
            }
            if body.is_empty() {
                return Err(Error::other(
                    "say what to change: --cpu, --ram and/or --gpu",
                ));
            }
            let resized = ctx.api.patch(
                &format!("/api/v1/clusters/{}", str_of(&found, "id")),
                &Value::Object(body),
            )?;
            print_clusters(ctx, &Value::Array(vec![resized]))
        }
        ClusterCommand::Delete { cluster } => {
            let found = resolve::cluster(&ctx.api, &org, &cluster)?;
            ctx.api
                .delete(&format!("/api/v1/clusters/{}", str_of(&found, "id")))?;
            eprintln!("Deleted cluster {}.", str_of(&found, "name"));
            Ok(())
        }
    }
}

/// One line per resource: a bar of allocated over capacity.
fn usage_line(label: &str, allocated: f64, capacity: f64, unit: &str) -> String {
    let percent = if capacity > 0.0 {
        format!("{:>3.0}%", allocated / capacity * 100.0)
    } else {
        "   -".into()
    };
    format!(
        "  {label:<4} {} {percent}  {}/{}{unit}",
        bar(allocated, capacity, 30),
        num(allocated),
        num(capacity)
    )
}

pub fn top(ctx: &Ctx) -> Result<()> {
    let org = ctx.org()?;
    let clusters = ctx
        .api
        .get(&format!("/api/v1/clusters?organization_id={}", org.id))?;
    if output::structured(ctx.format, &clusters)? {
        return Ok(());
    }
    let list = clusters.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!(
            "{} has no clusters yet: `hv cluster create NAME --cpu N --ram GIB --gpu N`",
            org.name
        );
    }
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!(
            "{}  running {}  pending {}",
            str_of(c, "name"),
            c["running_count"],
            c["pending_count"]
        );
        let (a, cap) = (&c["allocated"], &c["capacity"]);
        let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        println!(
            "{}",
            usage_line("CPU", f(a, "cpu_cores"), f(cap, "cpu_cores"), "")
        );
        println!(
            "{}",
            usage_line("RAM", f(a, "ram_gib"), f(cap, "ram_gib"), " GiB")
        );
        println!(
            "{}",
            usage_line("GPU", f(a, "gpu_count"), f(cap, "gpu_count"), "")
        );
    }
    Ok(())
}

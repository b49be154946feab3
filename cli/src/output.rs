//! How results reach stdout: tables for people, JSON or YAML for scripts.

use crate::error::{Error, Result};
use comfy_table::{presets, Cell, Color, Table};
use serde_json::Value;
use std::io::IsTerminal;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// Prints `value` as JSON or YAML; returns false when the caller should draw its table.
pub fn structured(format: Format, value: &Value) -> Result<bool> {
    match format {
        Format::Table => Ok(false),
        Format::Json => {
            let text = serde_json::to_string_pretty(value)
                .map_err(|e| Error::other(format!("cannot encode JSON: {e}")))?;
            println!("{text}");
            Ok(true)
        }
        Format::Yaml => {
            let text = serde_yaml_ng::to_string(value)
                .map_err(|e| Error::other(format!("cannot encode YAML: {e}")))?;
            print!("{text}");
            Ok(true)
        }
    }
}

/// Colour only for a person at a terminal who has not asked for none (https://no-color.org).
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(header.to_vec());
    table
}

/// The table's lines; comfy-table pads every cell by one space: drop the margin at both ends.
pub fn table_lines(table: &Table) -> Vec<String> {
    table
        .to_string()
        .lines()
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(line)
                .trim_end()
                .to_string()
        })
        .collect()
}

pub fn print_table(table: &Table) {
    for line in table_lines(table) {
        println!("{line}");
    }
}

pub fn status_cell(status: &str) -> Cell {
    let cell = Cell::new(status);
    if !colour() {
        return cell;
    }
    match status {
        "running" | "succeeded" => cell.fg(Color::Green),
        "pending" => cell.fg(Color::Yellow),
        "failed" => cell.fg(Color::Red),
        _ => cell,
    }
}

pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}

fn number(n: f64) -> String {
    let text = format!("{n:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `{"cpu_cores": 4, "ram_gib": 16, "gpu_count": 1}` as "4 CPU, 16 GiB, 1 GPU"; zero parts left out.
pub fn size(resources: &Value) -> String {
    let cpu = resources["cpu_cores"].as_f64().unwrap_or(0.0);
    let ram = resources["ram_gib"].as_f64().unwrap_or(0.0);
    let gpu = resources["gpu_count"].as_i64().unwrap_or(0);
    let mut parts = Vec::new();
    if cpu > 0.0 {
        parts.push(format!("{} CPU", number(cpu)));
    }
    if ram > 0.0 {
        parts.push(format!("{} GiB", number(ram)));
    }
    if gpu > 0 {
        parts.push(format!("{gpu} GPU"));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

/// The same, in a sentence: "4 more CPU cores and 1 more GPU".
pub fn shortfall_words(shortfall: &Value) -> String {
    let cpu = shortfall["cpu_cores"].as_f64().unwrap_or(0.0);
    let ram = shortfall["ram_gib"].as_f64().unwrap_or(0.0);
    let gpu = shortfall["gpu_count"].as_i64().unwrap_or(0);
    let mut parts = Vec::new();
    if cpu > 0.0 {
        parts.push(format!("{} more CPU cores", number(cpu)));
    }
    if ram > 0.0 {
        parts.push(format!("{} more GiB of RAM", number(ram)));
    }
    if gpu > 0 {
        parts.push(format!("{gpu} more GPU{}", if gpu == 1 { "" } else { "s" }));
    }
    match parts.len() {
        0 => "nothing more".into(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    }
}

/// An RFC 3339 time as "3m ago" (or "in 5d" for the future).
pub fn age(time: &Value) -> String {
    let Some(at) = time
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    else {
        return "-".into();
    };
    let seconds = chrono::Utc::now().signed_duration_since(at).num_seconds();
    let (amount, future) = (seconds.unsigned_abs(), seconds < 0);
    let text = match amount {
        0..60 => format!("{amount}s"),
        60..3600 => format!("{}m", amount / 60),
        3600..86400 => format!("{}h", amount / 3600),
        _ => format!("{}d", amount / 86400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A time as people read it: "2026-12-02 17:40:03 UTC".
pub fn when(time: &Value) -> String {
    time.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// A bar of `used` out of `total`, `width` characters wide.
pub fn bar(used: f64, total: f64, width: usize) -> String {
    let filled = if total > 0.0 {
        ((used / total) * width as f64)
            .round()
            .clamp(0.0, width as f64) as usize
    } else {
        0
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

pub fn num(n: f64) -> String {
    number(n)
}

//! Watching a deployment change: `--wait`, `events -f` and `ls -w`.
//!
//! Between reads, a follower waits on the organization's event feed (DESIGN §8, a long-poll
//! with `wait=`): it wakes as soon as anything happens in the organization, instead of polling
//! on a timer. If the feed cannot be read (an older server), it falls back to a 1 s poll.

use crate::api::Api;
use crate::error::{Error, Result};
use crate::output::str_of;
use crate::resolve::Names;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Until {
    /// Until it runs (or finishes first).
    Running,
    /// Until it succeeds, fails or is cancelled.
    Finish,
}

pub fn is_finished(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

/// "pending: insufficient_resources (not enough free GPUs)".
pub fn progress_line(d: &Value) -> String {
    let status = str_of(d, "status");
    match d["reason"]["message"].as_str() {
        Some(message) => format!("{}: {status} — {message}", str_of(d, "name")),
        None => format!("{}: {status}", str_of(d, "name")),
    }
}

/// Progress on stderr: a spinner at a terminal, a line per change otherwise (CI logs).
struct Progress {
    spinner: Option<ProgressBar>,
    last: String,
}

impl Progress {
    fn new() -> Progress {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            spinner,
            last: String::new(),
        }
    }

    fn show(&mut self, line: String) {
        if line == self.last {
            return;
        }
        match &self.spinner {
            Some(bar) => bar.set_message(line.clone()),
            None => eprintln!("{line}"),
        }
        self.last = line;
    }

    fn done(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
        if !self.last.is_empty() && self.spinner.is_some() {
            eprintln!("{}", self.last);
        }
    }
}

/// The organization's event feed, followed from where it ends.
struct Feed {
    org: Option<String>,
    cursor: Option<String>,
}

/// The longest a feed request holds (the API's maximum).
const MAX_FEED_WAIT: Duration = Duration::from_secs(20);

impl Feed {
    fn new() -> Feed {
        Feed {
            org: None,
            cursor: None,
        }
    }

    /// Waits up to `max` for the next event of `org`, then returns (the caller reads again).
    /// The first call only finds the feed's end and returns at once: an event between the
    /// caller's read and that moment would otherwise not wake it.
    fn wait(&mut self, api: &Api, org: &str, max: Duration) {
        if self.org.as_deref() != Some(org) {
            self.org = Some(org.to_string());
            self.cursor = end_of_feed(api, org).ok();
            if self.cursor.is_some() {
                return;
            }
        }
        let Some(cursor) = &self.cursor else {
            std::thread::sleep(POLL.min(max));
            return;
        };
        let wait = max.min(MAX_FEED_WAIT).as_secs().max(1);
        let path =
            format!("/api/v1/organizations/{org}/events?after={cursor}&wait={wait}&limit=500");
        match api.get(&path) {
            Ok(page) => {
                if let Some(next) = page["next_cursor"].as_str() {
                    self.cursor = Some(next.to_string());
                }
            }
            Err(_) => std::thread::sleep(POLL.min(max)),
        }
    }
}

/// The cursor after the organization's newest event.
fn end_of_feed(api: &Api, org: &str) -> Result<String> {
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("/api/v1/organizations/{org}/events?after={c}&limit=500"),
            None => format!("/api/v1/organizations/{org}/events?limit=500"),
        };
        let page = api.get(&path)?;
        let next = page["next_cursor"]
            .as_str()
            .ok_or_else(|| Error::other("the event feed gave no cursor"))?
            .to_string();
        if page["items"]
            .as_array()
            .is_none_or(|items| items.is_empty())
        {
            return Ok(next);
        }
        after = Some(next);
    }
}

/// How long to wait before giving up at `timeout`, if there is one.
fn remaining(started: Instant, timeout: Option<Duration>) -> Duration {
    timeout.map_or(MAX_FEED_WAIT, |limit| {
        limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(100))
    })
}

/// Waits for deployment `id`; the deployment as last seen, or why waiting failed.
pub fn wait(
    api: &Api,
    names: &Names,
    id: &str,
    until: Until,
    timeout: Option<Duration>,
) -> Result<Value> {
    let started = Instant::now();
    let mut progress = Progress::new();
    let mut feed = Feed::new();
    let outcome = loop {
        let d = match api.get(&format!("/api/v1/deployments/{id}")) {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        progress.show(names.humanize(&progress_line(&d)));
        let status = str_of(&d, "status");
        match status {
            "failed" | "cancelled" => {
                let why = d["reason"]["message"]
                    .as_str()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                break Err(Error::Finished(format!(
                    "{} {status}{why}",
                    str_of(&d, "name")
                )));
            }
            "succeeded" => break Ok(d),
            "running" if until == Until::Running => break Ok(d),
            _ => {}
        }
        if d["reason"]["code"] == "exceeds_capacity" {
            break Err(Error::CannotPlace(format!(
                "{} can never be placed: {}",
                str_of(&d, "name"),
                d["reason"]["message"]
                    .as_str()
                    .unwrap_or("it is larger than any cluster")
            )));
        }
        if let Some(limit) = timeout {
            if started.elapsed() >= limit {
                break Err(Error::TimedOut(format!(
                    "gave up after {}s: {}",
                    limit.as_secs(),
                    names.humanize(&progress_line(&d))
                )));
            }
        }
        feed.wait(
            api,
            str_of(&d, "organization_id"),
            remaining(started, timeout),
        );
    };
    progress.done();
    outcome
}

/// Calls `print` with each event of deployment `id` once; with `follow`, keeps going until
/// the deployment has finished (or `timeout`).
pub fn events(
    api: &Api,
    id: &str,
    follow: bool,
    timeout: Option<Duration>,
    mut print: impl FnMut(&Value),
) -> Result<()> {
    let started = Instant::now();
    let mut seen = 0;
    let mut feed = Feed::new();
    loop {
        let events = api.get(&format!("/api/v1/deployments/{id}/events"))?;
        let events = events.as_array().cloned().unwrap_or_default();
        for event in events.iter().skip(seen) {
            print(event);
        }
        seen = seen.max(events.len());
        if !follow {
            return Ok(());
        }
        let d = api.get(&format!("/api/v1/deployments/{id}"))?;
        if is_finished(str_of(&d, "status")) {
            // One last read: the finishing event may land just after the status.
            let events = api.get(&format!("/api/v1/deployments/{id}/events"))?;
            for event in events.as_array().into_iter().flatten().skip(seen) {
                print(event);
            }
            return Ok(());
        }
        if timeout.is_some_and(|limit| started.elapsed() >= limit) {
            return Ok(());
        }
        feed.wait(
            api,
            str_of(&d, "organization_id"),
            remaining(started, timeout),
        );
    }
}

/// Calls `print` with each deployment of `path` (a list URL) whenever it appears or changes,
/// until `timeout` (forever without one).
pub fn watch_list(
    api: &Api,
    path: &str,
    timeout: Option<Duration>,
    mut print: impl FnMut(&Value),
) -> Result<()> {
    let started = Instant::now();
    let mut last: std::collections::HashMap<String, (String, String)> = Default::default();
    let mut feed = Feed::new();
    loop {
        let page = api.get(path)?;
        let mut items = page["items"].as_array().cloned().unwrap_or_default();
        items.reverse(); // oldest first, as a log reads
        for d in &items {
            let state = (
                str_of(d, "status").to_string(),
                d["reason"]["code"].as_str().unwrap_or("").to_string(),
            );
            if last.get(str_of(d, "id")) != Some(&state) {
                print(d);
                last.insert(str_of(d, "id").to_string(), state);
            }
        }
        if timeout.is_some_and(|limit| started.elapsed() >= limit) {
            return Ok(());
        }
        // The list names its organization; an empty one is polled until something shows up.
        match organization_of(path) {
            Some(org) => feed.wait(api, &org, remaining(started, timeout)),
            None => std::thread::sleep(POLL),
        }
    }
}

/// `organization_id=` of a list URL.
fn organization_of(path: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("organization_id="))
        .map(str::to_string)
}

//! Names to ids, within the current organization. An id is taken as is; a name must match
//! exactly one thing, or the error lists the candidates.

use crate::api::Api;
use crate::config::OrgRef;
use crate::error::{Error, Result};
use crate::output::{age, str_of};
use serde_json::Value;
use uuid::Uuid;

fn is_id(text: &str) -> bool {
    Uuid::parse_str(text).is_ok()
}

fn encode(text: &str) -> String {
    // Names may hold spaces, `&`, `#`...: percent-encode every byte outside the unreserved set.
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The organizations the caller is in: a person's, or an API token's one.
pub fn memberships(api: &Api) -> Result<Vec<Value>> {
    let me = api.get("/api/v1/auth/me")?;
    Ok(me["organizations"].as_array().cloned().unwrap_or_default())
}

/// An organization the caller is in, by name or id.
pub fn organization(api: &Api, reference: &str) -> Result<OrgRef> {
    let orgs = memberships(api)?;
    let found: Vec<&Value> = orgs
        .iter()
        .filter(|o| str_of(o, "id") == reference || str_of(o, "name") == reference)
        .collect();
    match found.as_slice() {
        [one] => Ok(OrgRef {
            id: str_of(one, "id").into(),
            name: str_of(one, "name").into(),
        }),
        [] => Err(Error::other(format!(
            "you are not in an organization called '{reference}' (see `hv org list`)"
        ))),
        many => Err(Error::other(format!(
            "'{reference}' names {} of your organizations; use its id: {}",
            many.len(),
            many.iter()
                .map(|o| format!("{} ({})", str_of(o, "id"), str_of(o, "role")))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The organization commands act in: `--org`/`HV_ORG`, else `hv org use`'s, else the only one.
pub fn current_org(api: &Api, chosen: Option<&str>) -> Result<OrgRef> {
    if let Some(reference) = chosen.filter(|r| !r.is_empty()) {
        return organization(api, reference);
    }
    if !api.uses_api_token() {
        if let Some(org) = api.config.borrow().stored.organization.clone() {
            return Ok(org);
        }
    }
    let orgs = memberships(api)?;
    match orgs.as_slice() {
        [one] => Ok(OrgRef {
            id: str_of(one, "id").into(),
            name: str_of(one, "name").into(),
        }),
        [] => Err(Error::other(
            "you are in no organization yet: `hv org create NAME` or `hv org join CODE`",
        )),
        _ => Err(Error::other(
            "you are in several organizations: choose one with `hv org use NAME` (or HV_ORG)",
        )),
    }
}

pub fn cluster(api: &Api, org: &OrgRef, reference: &str) -> Result<Value> {
    if is_id(reference) {
        return api.get(&format!("/api/v1/clusters/{reference}"));
    }
    let found = api.get(&format!(
        "/api/v1/clusters?organization_id={}&name={}",
        org.id,
        encode(reference)
    ))?;
    match found.as_array().map(Vec::as_slice) {
        Some([one]) => Ok(one.clone()),
        _ => Err(Error::other(format!(
            "there is no cluster called '{reference}' in {} (see `hv cluster list`)",
            org.name
        ))),
    }
}

pub fn deployment(api: &Api, org: &OrgRef, reference: &str) -> Result<Value> {
    if is_id(reference) {
        return api.get(&format!("/api/v1/deployments/{reference}"));
    }
    let page = api.get(&format!(
        "/api/v1/deployments?organization_id={}&name={}&limit=200",
        org.id,
        encode(reference)
    ))?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    match items.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::other(format!(
            "there is no deployment called '{reference}' in {} (see `hv ls`)",
            org.name
        ))),
        many => {
            let mut message = format!(
                "'{reference}' names {} deployments; use one of these ids:",
                many.len()
            );
            for d in many {
                message.push_str(&format!(
                    "\n  {}  {:<9}  created {}",
                    str_of(d, "id"),
                    str_of(d, "status"),
                    age(&d["created_at"])
                ));
            }
            Err(Error::other(message))
        }
    }
}

/// A deployment's name, for sentences; its id if it cannot be read.
pub fn deployment_name(api: &Api, id: &str) -> String {
    api.get(&format!("/api/v1/deployments/{id}"))
        .map(|d| str_of(&d, "name").to_string())
        .unwrap_or_else(|_| id.to_string())
}

/// Ids the API puts in its sentences ("needs 2 more GPUs on cluster 0193…"), as names.
#[derive(Default)]
pub struct Names(Vec<(String, String)>);

impl Names {
    /// The organization's clusters and its most recent deployments.
    pub fn of(api: &Api, org: &OrgRef) -> Names {
        let mut names = Vec::new();
        if let Ok(clusters) = api.get(&format!("/api/v1/clusters?organization_id={}", org.id)) {
            for c in clusters.as_array().into_iter().flatten() {
                names.push((str_of(c, "id").to_string(), str_of(c, "name").to_string()));
            }
        }
        let recent = format!("/api/v1/deployments?organization_id={}&limit=200", org.id);
        if let Ok(page) = api.get(&recent) {
            for d in page["items"].as_array().into_iter().flatten() {
                names.push((str_of(d, "id").to_string(), str_of(d, "name").to_string()));
            }
        }
        Names(names)
    }

    pub fn humanize(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (id, name) in &self.0 {
            if text.contains(id.as_str()) {
                text = text.replace(id.as_str(), name);
            }
        }
        text
    }
}

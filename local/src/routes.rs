//! The HTTP routes of `template.yaml`, read from the template itself so the local server and
//! API Gateway can never disagree.

use anyhow::{bail, Context};
use serde_yaml_ng::Value;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: one segment.
    Param(String),
    /// `{name+}`: the rest of the path.
    Greedy(String),
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// The function's binary name (`BuildProperties.Binary`), e.g. `auth`.
    pub function: String,
    segments: Vec<Segment>,
}

#[derive(Debug)]
pub enum Match<'a> {
    Found {
        route: &'a Route,
        params: HashMap<String, String>,
    },
    MethodNotAllowed {
        allowed: Vec<String>,
    },
    NotFound,
}

#[derive(Debug, Clone)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    pub fn from_template_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_template(&text)
    }

    pub fn from_template(text: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_yaml_ng::from_str(text).context("template.yaml is not YAML")?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .context("no Resources")?;
        let mut routes = Vec::new();
        for (name, resource) in resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let name = name.as_str().unwrap_or_default();
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .with_context(|| format!("{name} has no Metadata.BuildProperties.Binary"))?;
            let Some(events) = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping)
            else {
                continue;
            };
            for event in events.values() {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let props = event
                    .get("Properties")
                    .context("HttpApi event without Properties")?;
                let method = props
                    .get("Method")
                    .and_then(Value::as_str)
                    .context("route without Method")?;
                let path = props
                    .get("Path")
                    .and_then(Value::as_str)
                    .context("route without Path")?;
                routes.push(Route::new(method, path, binary)?);
            }
        }
        if routes.is_empty() {
            bail!("template.yaml declares no HttpApi routes");
        }
        Ok(Routes { routes })
    }

    pub fn all(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for a request. Like API Gateway, a literal segment beats a parameter.
    pub fn find(&self, method: &str, path: &str) -> Match<'_> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut candidates: Vec<(&Route, HashMap<String, String>)> = self
            .routes
            .iter()
            .filter_map(|r| r.matches(&parts).map(|p| (r, p)))
            .collect();
        if candidates.is_empty() {
            return Match::NotFound;
        }
        candidates.sort_by_key(|(r, _)| std::cmp::Reverse(r.specificity()));
        let best = candidates[0].0.specificity();
        let same_shape: Vec<_> = candidates
            .into_iter()
            .filter(|(r, _)| r.specificity() == best)
            .collect();
        let allowed: Vec<String> = same_shape.iter().map(|(r, _)| r.method.clone()).collect();
        match same_shape
            .into_iter()
            .find(|(r, _)| r.method.eq_ignore_ascii_case(method))
        {
            Some((route, params)) => Match::Found { route, params },
            None => Match::MethodNotAllowed { allowed },
        }
    }
}

impl Route {
    fn new(method: &str, path: &str, function: &str) -> anyhow::Result<Self> {
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(p) => match p.strip_suffix('+') {
                        Some(g) => Segment::Greedy(g.to_string()),
                        None => Segment::Param(p.to_string()),
                    },
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect();
        Ok(Route {
            method: method.to_uppercase(),
            path: path.to_string(),
            function: function.to_string(),
            segments,
        })
    }

    fn matches(&self, parts: &[&str]) -> Option<HashMap<String, String>> {
        let mut params = HashMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    if i >= parts.len() {
                        return None;
                    }
                    params.insert(name.clone(), parts[i..].join("/"));
                    return Some(params);
                }
                Segment::Literal(lit) => {
                    if parts.get(i) != Some(&lit.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), (*parts.get(i)?).to_string());
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }

    /// Literal segments earlier in the path weigh more, as in API Gateway's route priority.
    fn specificity(&self) -> Vec<u8> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 2,
                Segment::Param(_) => 1,
                Segment::Greedy(_) => 0,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::from_template_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .unwrap()
    }

    #[test]
    fn literal_segments_beat_parameters() {
        let routes = routes();
        match routes.find("POST", "/api/v1/organizations/join") {
            Match::Found { route, params } => {
                assert_eq!(route.path, "/api/v1/organizations/join");
                assert!(params.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parameters_are_captured() {
        let routes = routes();
        match routes.find("DELETE", "/api/v1/organizations/o1/invites/i2") {
            Match::Found { route, params } => {
                assert_eq!(route.function, "organizations");
                assert_eq!(params["id"], "o1");
                assert_eq!(params["invite_id"], "i2");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_method_and_unknown_paths_are_told_apart() {
        let routes = routes();
        assert!(matches!(
            routes.find("PUT", "/api/v1/auth/login"),
            Match::MethodNotAllowed { .. }
        ));
        assert!(matches!(
            routes.find("GET", "/api/v1/nothing"),
            Match::NotFound
        ));
    }

    #[test]
    fn every_function_with_routes_is_one_we_serve() {
        for route in routes().all() {
            assert!(
                crate::FUNCTIONS.contains(&route.function.as_str()),
                "{} is not served",
                route.function
            );
        }
    }
}

//! The HTTP client: which credentials to send, renewing them before they expire, and turning
//! the API's problems into errors.

use crate::config::{ConfigFile, Session};
use crate::error::{Error, Result};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use serde_json::Value;
use std::cell::RefCell;
use std::time::Duration;

/// Renew the access token when it has less than this left, so a request never races expiry.
const RENEW_MARGIN_SECONDS: i64 = 60;

pub struct Api {
    pub base: String,
    http: Client,
    /// `HV_TOKEN`: an organization API token, used as is (no login, nothing stored).
    token: Option<String>,
    pub config: RefCell<ConfigFile>,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Api {
    pub fn new(config: ConfigFile) -> Result<Api> {
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("hv/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::other(format!("cannot set up HTTP: {e}")))?;
        let token = std::env::var("HV_TOKEN").ok().filter(|t| !t.is_empty());
        Ok(Api {
            base: config.api_url(),
            http,
            token,
            config: RefCell::new(config),
        })
    }

    pub fn uses_api_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.send(Method::GET, path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(Method::POST, path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(Method::PATCH, path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<Value> {
        self.send(Method::DELETE, path, None)
    }

    /// Without credentials: login, refresh, logout.
    pub fn anonymous(&self, method: Method, path: &str, body: &Value) -> Result<Value> {
        let request = self.http.request(method, self.url(path)).json(body);
        self.finish(request)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let build = |bearer: &str| {
            let mut request = self
                .http
                .request(method.clone(), self.url(path))
                .bearer_auth(bearer);
            if let Some(body) = body {
                request = request.json(body);
            }
            request
        };
        if let Some(token) = &self.token {
            return match self.finish(build(token)) {
                Err(Error::Api {
                    status: 401,
                    detail,
                    ..
                }) => Err(Error::NotLoggedIn(format!(
                    "the API token in HV_TOKEN was refused: {detail}"
                ))),
                other => other,
            };
        }
        let bearer = self.access_token()?;
        match self.finish(build(&bearer)) {
            // Revoked or expired early (a key rotation, say): one renewal, one retry.
            Err(Error::Api { status: 401, .. }) => {
                let bearer = self.renew()?;
                self.finish(build(&bearer))
            }
            other => other,
        }
    }

    fn session(&self) -> Result<Session> {
        self.config.borrow().stored.session.clone().ok_or_else(|| {
            Error::NotLoggedIn(
                "you are not logged in: run `hv login` (or set HV_TOKEN to an API token)".into(),
            )
        })
    }

    fn access_token(&self) -> Result<String> {
        let session = self.session()?;
        if session.access_expires_at - now() > RENEW_MARGIN_SECONDS {
            Ok(session.access_token)
        } else {
            self.renew()
        }
    }

    /// Trades the refresh token for a new pair (the server rotates it) and stores both.
    fn renew(&self) -> Result<String> {
        let session = self.session()?;
        let body = serde_json::json!({"refresh_token": session.refresh_token});
        let pair = match self.anonymous(Method::POST, "/api/v1/auth/refresh", &body) {
            Ok(pair) => pair,
            Err(Error::Api { status: 401, .. }) => {
                let mut config = self.config.borrow_mut();
                config.stored.session = None;
                config.save()?;
                return Err(Error::NotLoggedIn(
                    "your session has ended (expired or logged out elsewhere): run `hv login`"
                        .into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let renewed = session_from(&session.username, &pair)?;
        let access = renewed.access_token.clone();
        let mut config = self.config.borrow_mut();
        config.stored.session = Some(renewed);
        config.save()?;
        Ok(access)
    }

    fn finish(&self, request: RequestBuilder) -> Result<Value> {
        let response = request.send().map_err(|e| {
            Error::other(format!(
                "cannot reach the API at {} ({}): is it running? (`make dev`, or set HV_API_URL)",
                self.base,
                root_cause(&e)
            ))
        })?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|e| Error::other(format!("the API's answer was cut off: {e}")))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|_| {
                Error::other(format!(
                    "{} did not answer with JSON: is HV_API_URL the Hypervisor API?",
                    self.base
                ))
            });
        }
        Err(problem(status.as_u16(), &text))
    }
}

/// The session a login or refresh answer describes.
pub fn session_from(username: &str, pair: &Value) -> Result<Session> {
    let field = |name: &str| {
        pair[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::other(format!("the API's token answer has no {name}")))
    };
    Ok(Session {
        username: username.to_string(),
        access_token: field("access_token")?,
        refresh_token: field("refresh_token")?,
        access_expires_at: now() + pair["expires_in"].as_i64().unwrap_or(0),
    })
}

/// An `application/problem+json` body (or whatever came instead) as an error.
fn problem(status: u16, text: &str) -> Error {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let detail = body["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the API answered {status} without saying why"));
    let fields = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("request").to_string(),
                        e["message"].as_str().unwrap_or("is invalid").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Error::Api {
        status,
        detail,
        fields,
    }
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

//! One HTTP attempt: resolve and check the receiver's address now (DNS can change since
//! registration), connect only to the checked addresses, no redirects, 5 s for the answer.

use std::time::Duration;
use url::Url;

pub const TIMEOUT: Duration = Duration::from_secs(5);
/// What is kept of a receiver's answer.
pub const MAX_RESPONSE_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub delivered: bool,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub response: Option<String>,
}

impl Outcome {
    fn error(error: impl Into<String>) -> Outcome {
        Outcome {
            delivered: false,
            status_code: None,
            error: Some(error.into()),
            response: None,
        }
    }
}

pub async fn deliver(
    url: &str,
    secret: &str,
    id: &str,
    body: &[u8],
    allow_private: bool,
) -> Outcome {
    let url = match shared::webhook::check_url(url, allow_private) {
        Ok(url) => url,
        Err(why) => return Outcome::error(format!("the URL {why}")),
    };
    let addrs = match shared::webhook::resolve_allowed(&url, allow_private).await {
        Ok(addrs) => addrs,
        Err(why) => return Outcome::error(why),
    };
    let timestamp = chrono::Utc::now().timestamp();
    let Some(signature) = shared::webhook::signature(secret, id, timestamp, body) else {
        return Outcome::error("the webhook's secret is malformed");
    };
    let client = match client_for(&url, &addrs) {
        Ok(client) => client,
        Err(err) => return Outcome::error(format!("cannot build the HTTP client: {err}")),
    };
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "hypervisor-webhooks/1")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec())
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(err) if err.is_timeout() => return Outcome::error("no answer within 5 s"),
        Err(err) => return Outcome::error(format!("could not send: {}", describe(&err))),
    };
    let status = response.status();
    let mut kept = Vec::new();
    // Read at most what is kept; a slow or endless body does not hold the notifier.
    while kept.len() < MAX_RESPONSE_BYTES {
        match tokio::time::timeout(TIMEOUT, response.chunk()).await {
            Ok(Ok(Some(chunk))) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(MAX_RESPONSE_BYTES);
    let text = String::from_utf8_lossy(&kept);
    // Cut on a character boundary so the stored text stays within the byte limit.
    let mut text = text.into_owned();
    while text.len() > MAX_RESPONSE_BYTES {
        text.pop();
    }
    Outcome {
        delivered: status.is_success(),
        status_code: Some(i32::from(status.as_u16())),
        error: (!status.is_success()).then(|| format!("the receiver answered {status}")),
        response: (!text.is_empty()).then_some(text),
    }
}

/// A client that connects only to `addrs` for the URL's host (no second resolution that DNS
/// could answer differently), follows no redirects and uses no proxy.
fn client_for(url: &Url, addrs: &[std::net::SocketAddr]) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT);
    if let Some(url::Host::Domain(host)) = url.host() {
        builder = builder.resolve_to_addrs(host, addrs);
    }
    builder.build()
}

fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(source) = std::error::Error::source(err) {
        text.push_str(&format!(": {source}"));
    }
    text
}

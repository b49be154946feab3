//! A small AWS Lambda Runtime API emulator: the process polls `/runtime/invocation/next`, gets an
//! event, posts a response. The bootstrap tests use AWS's own emulator (`rie.rs`); this one stays
//! for the cold-start bench alone, because it sees the bootstrap's first poll (the end of init),
//! which aws-lambda-rie does not report.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

type Outcome = Result<Value, String>;

struct Shared {
    events: tokio::sync::Mutex<mpsc::Receiver<(String, Value)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// When the function first asked for an event: the end of its init phase.
    first_poll: Mutex<Option<Instant>>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    sender: mpsc::Sender<(String, Value)>,
    shared: Arc<Shared>,
    next_id: Mutex<u64>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().unwrap();
        let (sender, receiver) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            events: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            first_poll: Mutex::new(None),
        });
        let server_shared = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = server_shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            addr,
            sender,
            shared,
            next_id: Mutex::new(0),
        }
    }

    /// Delivers `event` to the function and waits for its response (or its reported error).
    pub async fn invoke(&self, event: Value) -> Outcome {
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            format!("req-{n}")
        };
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), tx);
        self.sender
            .send((id, event))
            .await
            .map_err(|_| "emulator stopped".to_string())?;
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| "the function did not answer within 30 s".to_string())?
            .map_err(|_| "the function went away".to_string())?
    }

    /// Waits until the function asks for its first event; returns when that happened.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(at) = *self.shared.first_poll.lock().unwrap() {
                return Some(at);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["2018-06-01", "runtime", "invocation", "next"] => {
            shared
                .first_poll
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now);
            let next = shared.events.lock().await.recv().await;
            let Some((id, event)) = next else {
                return Ok(reply(StatusCode::GONE, ""));
            };
            let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header("Lambda-Runtime-Aws-Request-Id", &id)
                .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                .header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:test",
                )
                .header(
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-00000000-000000000000000000000000",
                )
                .body(Full::new(Bytes::from(event.to_string())))
                .unwrap())
        }
        ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")] => {
            let id = id.to_string();
            let is_error = *kind == "error";
            let body = req.into_body().collect().await?.to_bytes();
            let text = String::from_utf8_lossy(&body).to_string();
            let outcome = if is_error {
                Err(text)
            } else {
                serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
            };
            if let Some(tx) = shared.waiting.lock().unwrap().remove(&id) {
                let _ = tx.send(outcome);
            }
            Ok(reply(StatusCode::ACCEPTED, ""))
        }
        ["2018-06-01", "runtime", "init", "error"] => {
            let body = req.into_body().collect().await?.to_bytes();
            eprintln!("function init error: {}", String::from_utf8_lossy(&body));
            Ok(reply(StatusCode::ACCEPTED, ""))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "")),
    }
}

/// An API Gateway HTTP API (payload 2.0) event, as API Gateway would send it.
pub fn http_event(method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Value {
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut headers =
        serde_json::json!({"content-type": "application/json", "user-agent": "runtime-api-test"});
    if let Some(t) = token {
        headers["authorization"] = Value::String(format!("Bearer {t}"));
    }
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {raw_path}"),
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "runtime-api-test"},
            "requestId": "test-request", "routeKey": format!("{method} {raw_path}"), "stage": "$default",
            "time": "25/Nov/2026:00:00:00 +0000", "timeEpoch": 1_795_000_000_000u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

//! A webhook receiver on 127.0.0.1 for tests and benches: records every request it gets and
//! answers with the statuses it was given.

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};

/// What the receiver got: headers and body of each request.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// When the whole request had arrived.
    pub received_at: DateTime<Utc>,
}

/// A receiver on 127.0.0.1 that answers each request with the next status of `script` (the
/// last one repeated), and `body` as its answer.
pub async fn receiver(script: Vec<u16>, body: &'static str) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let record = got.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (record, script) = (record.clone(), script.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let (record, script) = (record.clone(), script.clone());
                    async move {
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string()
                        };
                        let (id, timestamp, signature) = (
                            header("webhook-id"),
                            header("webhook-timestamp"),
                            header("webhook-signature"),
                        );
                        let bytes = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                        let received_at = Utc::now();
                        let n = {
                            let mut got = record.lock().unwrap();
                            got.push(Received {
                                id,
                                timestamp,
                                signature,
                                body: bytes,
                                received_at,
                            });
                            got.len()
                        };
                        let status = script[(n - 1).min(script.len() - 1)];
                        let mut response =
                            hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        if status == 302 {
                            response.headers_mut().insert(
                                "location",
                                "http://127.0.0.1:1/elsewhere".parse().unwrap(),
                            );
                        }
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, got)
}

//! AWS's own Lambda Runtime Interface Emulator (`aws-lambda-rie`, the one `sam local` puts in
//! its containers) run as a plain process around a function's bootstrap: the emulator serves
//! the Runtime API to the bootstrap and takes events at `/2015-03-31/functions/function/invocations`.
//!
//! The binary comes from the pinned SAM CLI wheel (`WITH_SAM=1 ./localstack/setup-venv.sh`,
//! which `make test` runs); `AWS_LAMBDA_RIE` points elsewhere.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator binary for this machine's architecture.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("AWS_LAMBDA_RIE") {
        return PathBuf::from(path);
    }
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "x86_64",
    };
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local/sam-venv/lib");
    // The venv's Python version names the folder: take whichever is there.
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.flatten()
            .map(|d| {
                d.path()
                    .join("site-packages/samcli/local/rapid")
                    .join(format!("aws-lambda-rie-{arch}"))
            })
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "aws-lambda-rie not found under {}: run `WITH_SAM=1 ./localstack/setup-venv.sh` \
             (make test does) or set AWS_LAMBDA_RIE",
            lib.display()
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One function under the emulator; killed (with its bootstrap) on drop.
pub struct Rie {
    child: Child,
    url: String,
    client: reqwest::Client,
}

impl Drop for Rie {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rie {
    /// Starts `bootstrap` as function `name` with exactly `env` (plus what Lambda sets), as
    /// Lambda gives a function only its configured variables. The emulator starts the
    /// bootstrap on the first invocation, as Lambda does on a cold start.
    pub async fn start(bootstrap: &Path, name: &str, env: &[(&str, String)]) -> Rie {
        // A free port can be taken between our probe and the emulator's bind: try again then.
        for _ in 0..3 {
            let (port, runtime_port) = (free_port(), free_port());
            let mut child = Command::new(binary())
                .arg("--log-level")
                .arg("error")
                .arg("--runtime-interface-emulator-address")
                .arg(format!("127.0.0.1:{port}"))
                // Where the bootstrap finds the Runtime API: its default, 9001, is one per machine.
                .arg("--runtime-api-address")
                .arg(format!("127.0.0.1:{runtime_port}"))
                .arg(bootstrap)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_TIMEOUT", "30")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
                .env("RUST_LOG", "warn")
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                // The function's stdout is its EMF metrics and the emulator's REPORT lines.
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("starting aws-lambda-rie for {name}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Rie {
                        child,
                        url: format!(
                            "http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
                        ),
                        client: reqwest::Client::new(),
                    };
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("aws-lambda-rie did not listen for {name}");
    }

    /// Invokes the function with `event`: its response, or the error object it reported
    /// (`errorType`, `errorMessage`), as Lambda's Invoke API returns them.
    pub async fn invoke(&self, event: &Value) -> Result<Value, Value> {
        let response = self
            .client
            .post(&self.url)
            .json(event)
            .timeout(Duration::from_secs(40))
            .send()
            .await
            .expect("aws-lambda-rie answers");
        let failed = response.headers().contains_key("x-amz-function-error");
        let text = response.text().await.expect("a response body");
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the response is not JSON ({e}): {text}"));
        if failed || body.get("errorType").is_some() {
            Err(body)
        } else {
            Ok(body)
        }
    }
}

//! Runs the built `hv` binary against an in-process local stack, with its own config dir.

use e2e_tests::TestApp;
use std::io::Write;
use std::process::{Command, Stdio};

pub const PASSWORD: &str = "Correct-Horse-Battery-9";

pub struct Hv {
    pub dir: tempfile::TempDir,
    base: String,
    env: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

impl Hv {
    pub fn new(app: &TestApp) -> Hv {
        Hv {
            dir: tempfile::tempdir().expect("a temporary directory"),
            base: app.base.clone(),
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Hv {
        self.env.push((key.into(), value.into()));
        self
    }

    pub async fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, "").await
    }

    /// Runs off the test's runtime, so the in-process server keeps answering meanwhile.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Out {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hv"));
        command
            .args(args)
            .env("HV_CONFIG_DIR", self.dir.path())
            .env("HV_API_URL", &self.base)
            .env("NO_COLOR", "1")
            .env_remove("HV_TOKEN")
            .env_remove("HV_ORG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let stdin = stdin.to_string();
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("hv starts");
            if let Some(mut pipe) = child.stdin.take() {
                let _ = pipe.write_all(stdin.as_bytes());
            }
            let out = child.wait_with_output().expect("hv ends");
            Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .await
        .expect("the runner thread")
    }

    /// Registers `name` through the API and logs in with `hv login --password-stdin`.
    pub async fn logged_in(app: &TestApp, name: &str) -> Hv {
        app.user(name).await;
        let hv = Hv::new(app);
        let out = hv
            .run_with_stdin(&["login", "--username", name, "--password-stdin"], PASSWORD)
            .await;
        assert_eq!(out.code, 0, "{out:?}");
        hv
    }

    pub fn spec(&self, file: &str, text: &str) -> String {
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).expect("the spec is written");
        path.display().to_string()
    }
}

/// Ids and times vary from run to run, and shift column widths: snapshots pin the rest.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[id]",
    );
    settings.add_filter(r"\d+[smhd] ago", "[age]");
    settings.add_filter(r" {2,}", "  ");
    settings
}

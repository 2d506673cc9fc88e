//! The real binary as a child process, for the tests that run it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts the binary and waits (bounded) until /healthz answers.
    pub async fn start(data_dir: &Path, database: Option<&str>, log_name: &str) -> Server {
        Self::start_with(data_dir, database, log_name, &[]).await
    }

    /// Starts the binary with extra `MAILBRIDGE_*` settings.
    pub async fn start_with(
        data_dir: &Path,
        database: Option<&str>,
        log_name: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let port = mailbridge_testkit::free_port();
        let log = data_dir.parent().unwrap().join(log_name);
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailbridge"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--log-format")
            .arg("json")
            // The most verbose level: even there, nothing secret may appear.
            .env("MAILBRIDGE_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(db) = database {
            cmd.arg("--database").arg(db);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Server { child, base, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", server.base)).await
                && r.status() == 200
            {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the server exited with {status}: {}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not answer /healthz within 30 s: {}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for a successful exit.
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "SIGTERM ends the server cleanly, got {status}: {}",
                    self.log_text()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop within 15 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = self.log_text();
        assert!(
            log.contains("\"stopped\""),
            "the server says it stopped: {log}"
        );
        log
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

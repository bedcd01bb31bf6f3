//! The real `vigil` binary in a test: started on port 0 (and a data dir of its own
//! unless the test names one), its JSON log lines read as they come, stopped with a
//! signal. A test waits for log lines and metric values (readiness signals), never
//! for a fixed time.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{get_text, wait_for_metric_at};
use crate::prometheus::PATIENCE;

/// The `vigil` binary cargo built beside the running test (`target/<profile>/vigil`,
/// the test itself being in `target/<profile>/deps/`), or `VIGIL_BIN`.
pub fn vigil_binary() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("VIGIL_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    profile.join("vigil")
}

pub struct Vigil {
    child: Option<Child>,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    /// What it wrote to stderr (also passed on to the test's stderr).
    errors: Arc<Mutex<Vec<String>>>,
    seen: Mutex<mpsc::Receiver<String>>,
    data: std::path::PathBuf,
    owns_data: bool,
}

impl Vigil {
    /// Starts `vigil serve --port 0` with extra args and env; returns once it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_command("serve", args, env)
    }

    /// Starts `vigil <command>` on port 0; returns once its first service listens.
    pub fn start_command(command: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let data = std::env::temp_dir().join(format!(
            "vigil-data-{}-{}",
            std::process::id(),
            crate::unique()
        ));
        let mut cmd = Command::new(vigil_binary());
        // A caller that names its own data dir keeps it; otherwise it is ours to delete.
        let owns_data = !args.contains(&"--data-dir");
        cmd.arg(command).args(["--host", "127.0.0.1"]);
        if owns_data {
            cmd.args(["--data-dir", data.to_str().unwrap()]);
        }
        if !env.iter().any(|(k, _)| *k == "VIGIL_PORT") && !args.contains(&"--port") {
            cmd.args(["--port", "0"]);
        }
        if command == "up" && !args.contains(&"--collector-port") {
            cmd.args(["--collector-port", "0"]);
        }
        cmd.args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in [
            "VIGIL_LOG_LEVEL",
            "VIGIL_PORT",
            "VIGIL_HOST",
            "VIGIL_COLLECTOR_PORT",
            "VIGIL_DATABASE_URL",
            "VIGIL_CONFIG",
        ] {
            if !env.iter().any(|(k, _)| *k == var) {
                cmd.env_remove(var);
            }
        }
        let mut child = cmd.spawn().expect("spawn vigil");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                sink.lock().unwrap().push(line);
            }
        });
        let mut vigil = Self {
            child: Some(child),
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
            errors,
            seen: Mutex::new(rx),
            data,
            owns_data,
        };
        let listening = vigil.wait_for_log("listening");
        vigil.addr = listening["address"].as_str().unwrap().parse().unwrap();
        vigil
    }

    /// The address a service logged in its `listening` line.
    pub fn address_of(&self, service: &str) -> std::net::SocketAddr {
        let listened = crate::eventually_blocking(PATIENCE, || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["message"] == "listening" && v["service"] == service)
                .ok_or_else(|| format!("{service} never listened"))
        });
        listened["address"].as_str().unwrap().parse().unwrap()
    }

    /// The data directory this instance was started with.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Blocks until a line with `message` appears (the readiness signal), returns it.
    pub fn wait_for_log(&self, message: &str) -> Value {
        if let Some(found) = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["message"] == message)
        {
            return found;
        }
        let rx = self.seen.lock().unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {message:?} log line in time"));
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == message
            {
                return v;
            }
        }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Blocks until a stderr line contains `text`; returns every stderr line so far.
    pub fn wait_for_stderr(&self, text: &str) -> Vec<String> {
        crate::eventually_blocking(PATIENCE, || {
            let lines = self.errors.lock().unwrap().clone();
            if lines.iter().any(|l| l.contains(text)) {
                Ok(lines)
            } else {
                Err(format!("no stderr line with {text:?}"))
            }
        })
    }

    /// The admin key `vigil up` printed on its first start (waits until it is up).
    pub fn admin_key(&self) -> String {
        let stderr = self.wait_for_stderr("vigil is up");
        let at = stderr
            .iter()
            .position(|l| l.starts_with("admin key"))
            .expect("the admin key note");
        stderr[at + 1].trim().to_owned()
    }

    pub async fn metrics(&self) -> String {
        get_text(self.url("/metrics")).await
    }

    /// Asserts that the default model answers one good row with 200: the service is
    /// still serving, after whatever a test sent before.
    pub async fn assert_predicts(&self) {
        let r = reqwest::Client::new()
            .post(self.url("/predict"))
            .json(&serde_json::json!({"features": [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Polls `/metrics` until `series` has `value` (a state the test waits for).
    pub async fn wait_for_metric(&self, series: &str, value: f64) {
        wait_for_metric_at(&self.url("/metrics"), series, value).await;
    }

    /// The process id, to read what `/proc` says of it.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// SIGTERM, wait for exit, and return the exit code and every stdout line parsed.
    /// Fails the test if any line is not a single JSON object.
    pub fn stop(mut self) -> (Option<i32>, Vec<Value>) {
        let mut child = self.child.take().unwrap();
        if child.try_wait().unwrap().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let status = crate::eventually_blocking(PATIENCE, || {
            child
                .try_wait()
                .unwrap()
                .ok_or_else(|| "vigil did not exit after SIGTERM".to_string())
        });
        // The reader thread sees EOF once the process is gone; give it the last lines.
        let rx = self.seen.lock().unwrap();
        while rx.recv_timeout(Duration::from_secs(5)).is_ok() {}
        drop(rx);
        let lines = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"))
            })
            .collect::<Vec<_>>();
        assert!(lines.iter().all(Value::is_object));
        (status.code(), lines)
    }

    /// Stops the process and returns everything it wrote to stdout.
    pub fn stdout_after_stop(self) -> String {
        let lines = self.lines.clone();
        let _ = self.stop();
        lines.lock().unwrap().join("\n")
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.owns_data {
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }
}

//! A stdio upstream: a supervised child process speaking newline-delimited
//! JSON-RPC. Every client shares the one process, so the caller re-numbers
//! request ids before they get here; responses are matched to requests by
//! [`Duplex`], and a new process is started when the old one has exited.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::duplex::{Duplex, Outlet};
use super::{InFlight, Reply, UpstreamError};

struct Process {
    generation: u64,
    stdin: mpsc::Sender<Vec<u8>>,
    duplex: Arc<Duplex>,
    child: tokio::sync::Mutex<Child>,
}

impl Outlet for Process {
    async fn send(&self, message: &Value) -> Result<(), UpstreamError> {
        let mut line =
            serde_json::to_vec(message).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.stdin
            .send(line)
            .await
            .map_err(|_| UpstreamError::Connect("process is not running".into()))
    }
}

pub struct StdioLink {
    name: String,
    command: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    current: tokio::sync::Mutex<Option<Arc<Process>>>,
    generations: AtomicU64,
}

impl StdioLink {
    pub fn new(
        name: String,
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    ) -> StdioLink {
        StdioLink {
            name,
            command,
            args,
            env,
            current: tokio::sync::Mutex::new(None),
            generations: AtomicU64::new(0),
        }
    }

    /// The generation of the process last started (0 before the first).
    pub fn generation(&self) -> u64 {
        self.generations.load(Ordering::Acquire)
    }

    /// Sends one message. `session_generation` is the process a session
    /// was established with: if that process has exited the session is
    /// lost (the caller re-initializes and retries).
    pub async fn send(
        &self,
        message: &Value,
        expect_id: Option<Value>,
        deadline: Instant,
        session_generation: Option<u64>,
        in_flight: Option<InFlight>,
    ) -> Result<Reply, UpstreamError> {
        let process = self.running().await?;
        if session_generation.is_some_and(|g| g != process.generation) {
            if let Some(in_flight) = in_flight {
                in_flight.done(); // never sent
            }
            return Err(UpstreamError::SessionLost);
        }
        process
            .duplex
            .call(&*process, message, expect_id, deadline, in_flight)
            .await
    }

    /// The running process, starting a new one if there is none.
    async fn running(&self) -> Result<Arc<Process>, UpstreamError> {
        let mut current = self.current.lock().await;
        if let Some(process) = current.as_ref()
            && !process.duplex.is_closed()
        {
            return Ok(process.clone());
        }
        let process = self.spawn()?;
        *current = Some(process.clone());
        Ok(process)
    }

    fn spawn(&self) -> Result<Arc<Process>, UpstreamError> {
        let mut child = Command::new(&self.command)
            .args(&self.args)
            // Only what the config gives (config::child_env), never the
            // gateway's own secrets.
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| UpstreamError::Connect(format!("cannot start {}: {e}", self.command)))?;
        let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::info!(upstream = %self.name, pid = child.id(), generation, "started stdio upstream");

        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(64);
        let process = Arc::new(Process {
            generation,
            stdin: stdin_tx,
            duplex: Arc::new(Duplex::new("process")),
            child: tokio::sync::Mutex::new(child),
        });
        tokio::spawn(write_lines(stdin, stdin_rx));
        tokio::spawn(read_lines(self.name.clone(), stdout, process.clone()));
        let name = self.name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(upstream = %name, "stderr: {line}");
            }
        });
        Ok(process)
    }

    /// The running process's notifications (starting it if needed); the
    /// receiver ends when that process exits.
    pub async fn notifications(&self) -> Result<broadcast::Receiver<Value>, UpstreamError> {
        self.running().await?.duplex.notifications()
    }

    pub async fn stop(&self) {
        if let Some(process) = self.current.lock().await.take() {
            let _ = process.child.lock().await.kill().await;
        }
    }
}

async fn write_lines(mut stdin: tokio::process::ChildStdin, mut lines: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = lines.recv().await {
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

async fn read_lines(name: String, stdout: tokio::process::ChildStdout, process: Arc<Process>) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            tracing::warn!(upstream = %name, "ignoring a stdout line that is not JSON");
            continue;
        };
        if let Some(answer) = process.duplex.dispatch(message).await {
            let _ = process.send(&answer).await;
        }
    }
    // Every in-flight caller learns the process is gone.
    process.duplex.close();
    tracing::warn!(upstream = %name, "stdio upstream exited");
}

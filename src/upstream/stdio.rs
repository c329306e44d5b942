//! A stdio upstream: a supervised child process speaking newline-delimited
//! JSON-RPC. Every client shares the one process, so the caller re-numbers
//! request ids before they get here; this module matches responses to
//! requests by id and starts a new process when the old one has exited.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::{InFlight, Reply, UpstreamError};

/// Requests awaiting their response, by id; each gets its progress
/// notifications and then its response on the channel.
#[derive(Default)]
struct Waiting {
    by_id: HashMap<String, mpsc::Sender<Value>>,
    /// Gateway progress token → (the caller's token, the request's id key).
    progress: HashMap<String, (Value, String)>,
}

type Pending = Arc<Mutex<Waiting>>;

struct Process {
    generation: u64,
    /// Notifications the process sends (list_changed and the like); the
    /// channel closes when the process exits. Kept to hand out receivers.
    notifications: Mutex<broadcast::Receiver<Value>>,
    stdin: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    exited: Arc<AtomicBool>,
    child: Arc<tokio::sync::Mutex<Child>>,
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
            if let Some(_in_flight) = in_flight {
                InFlight::done(_in_flight)
            }
            return Err(UpstreamError::SessionLost);
        }
        let Some(id) = expect_id else {
            write(&process, message).await?;
            return Ok(Reply::Accepted);
        };
        let key = id.to_string();
        let (tx, mut rx) = mpsc::channel(16);
        lock(&process.pending).by_id.insert(key.clone(), tx);
        // Progress tokens of different clients may collide in the one
        // process: send a token of ours, and map it back on the way out.
        let token = message.pointer("/params/_meta/progressToken").cloned();
        let written = match &token {
            Some(token) => {
                let ours = format!("sbp-{key}");
                lock(&process.pending).progress.insert(
                    Value::String(ours.clone()).to_string(),
                    (token.clone(), key.clone()),
                );
                let mut message = message.clone();
                message["params"]["_meta"]["progressToken"] = Value::String(ours);
                write(&process, &message).await
            }
            None => write(&process, message).await,
        };
        if let Err(error) = written {
            lock(&process.pending).forget(&key);
            if let Some(_in_flight) = in_flight {
                InFlight::done(_in_flight)
            }
            return Err(error);
        }
        if token.is_none() {
            let answer = tokio::time::timeout_at(deadline, rx.recv()).await;
            return match answer {
                Err(_) => {
                    lock(&process.pending).forget(&key);
                    Err(UpstreamError::Timeout)
                }
                Ok(None) => Err(UpstreamError::Broken(
                    "process exited before answering".into(),
                )),
                Ok(Some(response)) => {
                    if let Some(_in_flight) = in_flight {
                        InFlight::done(_in_flight)
                    }
                    Ok(Reply::Json {
                        body: Bytes::from(response.to_string()),
                        status: http::StatusCode::OK,
                        session_id: None,
                    })
                }
            };
        }
        let (out, messages) = mpsc::channel(16);
        let pending = process.pending.clone();
        tokio::spawn(async move {
            let mut in_flight = in_flight;
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout_at(deadline, rx.recv()) => next,
                    _ = out.closed() => break,
                };
                let message = match next {
                    Err(_) => {
                        let _ = out.send(Err(UpstreamError::Timeout)).await;
                        break;
                    }
                    Ok(None) => {
                        let cause = "process exited before answering".to_string();
                        let _ = out.send(Err(UpstreamError::Broken(cause))).await;
                        break;
                    }
                    Ok(Some(message)) => message,
                };
                let done = crate::jsonrpc::is_response(&message);
                if done && let Some(a) = in_flight.take() {
                    InFlight::done(a)
                }
                if out.send(Ok(message)).await.is_err() || done {
                    break;
                }
            }
            lock(&pending).forget(&key);
        });
        Ok(Reply::Stream {
            messages,
            session_id: None,
        })
    }

    /// The running process, starting a new one if there is none.
    async fn running(&self) -> Result<Arc<Process>, UpstreamError> {
        let mut current = self.current.lock().await;
        if let Some(process) = current.as_ref()
            && !process.exited.load(Ordering::Acquire)
        {
            return Ok(process.clone());
        }
        let process = Arc::new(self.spawn()?);
        *current = Some(process.clone());
        Ok(process)
    }

    fn spawn(&self) -> Result<Process, UpstreamError> {
        let mut child = Command::new(&self.command)
            .args(&self.args)
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
        let pending: Pending = Arc::default();
        let exited = Arc::new(AtomicBool::new(false));
        let (notifications_tx, notifications) = broadcast::channel(16);

        tokio::spawn(write_lines(stdin, stdin_rx));
        tokio::spawn(read_responses(
            self.name.clone(),
            stdout,
            pending.clone(),
            exited.clone(),
            stdin_tx.clone(),
            notifications_tx,
        ));
        let name = self.name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(upstream = %name, "stderr: {line}");
            }
        });
        Ok(Process {
            generation,
            notifications: Mutex::new(notifications),
            stdin: stdin_tx,
            pending,
            exited,
            child: Arc::new(tokio::sync::Mutex::new(child)),
        })
    }

    /// The running process's notifications (starting it if needed); the
    /// receiver ends when that process exits.
    pub async fn notifications(&self) -> Result<broadcast::Receiver<Value>, UpstreamError> {
        let process = self.running().await?;
        let receiver = lock(&process.notifications).resubscribe();
        Ok(receiver)
    }

    pub async fn stop(&self) {
        if let Some(process) = self.current.lock().await.take() {
            let _ = process.child.lock().await.kill().await;
        }
    }
}

impl Waiting {
    fn forget(&mut self, key: &str) {
        self.by_id.remove(key);
        self.progress.retain(|_, (_, owner)| owner != key);
    }
}

async fn write(process: &Process, message: &Value) -> Result<(), UpstreamError> {
    let mut line =
        serde_json::to_vec(message).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    line.push(b'\n');
    process
        .stdin
        .send(line)
        .await
        .map_err(|_| UpstreamError::Connect("process is not running".into()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn write_lines(mut stdin: tokio::process::ChildStdin, mut lines: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = lines.recv().await {
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

async fn read_responses(
    name: String,
    stdout: tokio::process::ChildStdout,
    pending: Pending,
    exited: Arc<AtomicBool>,
    stdin: mpsc::Sender<Vec<u8>>,
    notifications: broadcast::Sender<Value>,
) {
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => break,
        };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            tracing::warn!(upstream = %name, "ignoring a stdout line that is not JSON");
            continue;
        };
        let id = message.get("id");
        if crate::jsonrpc::is_response(&message) {
            let key = id.map(Value::to_string).unwrap_or_default();
            let waiter = lock(&pending).by_id.remove(&key);
            if let Some(waiter) = waiter {
                let _ = waiter.send(message).await;
            }
        } else if message.get("method").and_then(Value::as_str) == Some("notifications/progress") {
            // Back to the request it belongs to, with the caller's token.
            let token = message
                .pointer("/params/progressToken")
                .map(Value::to_string);
            let target = token.and_then(|token| {
                let waiting = lock(&pending);
                let (original, key) = waiting.progress.get(&token)?.clone();
                Some((original, waiting.by_id.get(&key)?.clone()))
            });
            if let Some((original, waiter)) = target {
                let mut message = message;
                message["params"]["progressToken"] = original;
                let _ = waiter.try_send(message);
            }
        } else if let (Some(id), Some(method)) = (id, message.get("method")) {
            // A server-initiated request: the gateway does not relay these
            // yet, so answer at once rather than leave the server waiting.
            let refusal = json!({
                "jsonrpc": "2.0", "id": id,
                "error": { "code": crate::jsonrpc::METHOD_NOT_FOUND,
                           "message": format!("switchboard does not relay {method}") },
            });
            let mut bytes = refusal.to_string().into_bytes();
            bytes.push(b'\n');
            let _ = stdin.send(bytes).await;
        } else if message.get("method").is_some() {
            // Nobody listening is fine: then nobody needs to know.
            let _ = notifications.send(message);
        }
    }
    exited.store(true, Ordering::Release);
    // Dropping the waiters tells every in-flight caller the process is gone.
    *lock(&pending) = Waiting::default();
    tracing::warn!(upstream = %name, "stdio upstream exited");
}

//! The third-party clients in `tests/peers/`: one-shot TypeScript and
//! Python SDK client scripts and what their output says, the long-lived
//! `ts_watch.mjs`, and the Python checks of what the gateway exports.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::process::forward_lines;
use super::{Proc, START_DEADLINE, need_node_modules, peers};

/// Runs a third-party client script and parses its one JSON line.
fn run_client(mut command: Command, what: &str) -> Value {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{what} printed {stdout:?}: {e}"))
}

/// The TypeScript SDK client: `legacy` (sdk 1.x), `modern` (client 2.x
/// pinned to 2026-07-28) or `auto`.
pub fn ts_client(url: &str, mode: &str, plan: &Value) -> Value {
    need_node_modules();
    let mut command = Command::new("node");
    command
        .arg(peers().join("ts_client.mjs"))
        .arg(url)
        .arg(mode)
        .arg(plan.to_string());
    run_client(command, &format!("ts_client {mode} {url}"))
}

/// The Python SDK client (2025 handshake).
pub fn py_client(url: &str, plan: &Value) -> Value {
    let mut command = Command::new("python3");
    command
        .arg(peers().join("py_client.py"))
        .arg(url)
        .arg(plan.to_string());
    run_client(command, &format!("py_client {url}"))
}

/// Each call's text and error from a client script's output: what a user
/// of the tools sees, to compare direct and through the gateway.
pub fn call_outcomes(output: &Value) -> Vec<Value> {
    output["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| json!({ "text": call["text"], "error": call["error"] }))
        .collect()
}

/// The tool names a client script listed.
pub fn tool_names(output: &Value) -> Vec<&str> {
    output["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// The text of call `index` in a client script's output; it must have
/// succeeded.
pub fn call_text(output: &Value, index: usize) -> &str {
    let call = &output["calls"][index];
    assert!(call.get("error").is_none(), "call {index} failed: {call}");
    assert_eq!(call["isError"], false, "call {index} is an error: {call}");
    call["text"].as_str().unwrap_or_default()
}

/// `tests/peers/ts_watch.mjs`: a long-lived TypeScript SDK client driven
/// one command at a time.
pub struct Watcher {
    proc: Proc,
    stdin: std::process::ChildStdin,
}

impl Watcher {
    pub fn start(url: &str, mode: &str) -> (Watcher, Value) {
        need_node_modules();
        let mut command = Command::new("node");
        command.arg(peers().join("ts_watch.mjs")).arg(url).arg(mode);
        let description = format!("ts_watch {mode} {url}");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let (tx, rx) = mpsc::channel();
        forward_lines(child.stdout.take().unwrap(), tx.clone());
        forward_lines(child.stderr.take().unwrap(), tx);
        let watcher = Watcher {
            proc: Proc {
                child,
                lines: rx,
                backlog: Default::default(),
            },
            stdin,
        };
        let ready = watcher.next_json(START_DEADLINE);
        assert_eq!(ready["ready"], true, "{description}: {ready}");
        (watcher, ready)
    }

    /// Sends one command and returns its JSON answer.
    pub fn send(&mut self, command: &str, within: Duration) -> Value {
        use std::io::Write;
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.next_json(within)
    }

    /// The next line that is a JSON object (other lines are the script's
    /// stderr); panics with what was printed if none comes in time.
    fn next_json(&self, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let mut other = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.proc.lines.recv_timeout(left) {
                Ok(line) => match serde_json::from_str::<Value>(&line) {
                    Ok(value) if value.is_object() => return value,
                    _ => other.push(line),
                },
                Err(_) => panic!(
                    "ts_watch answered nothing in {within:?}; it printed:\n{}",
                    other.join("\n")
                ),
            }
        }
    }
}

/// Runs a Python check from `tests/peers/` on `input` (its stdin) and
/// parses the JSON it prints; `what` names the format in the failure.
pub fn python_check(script: &str, input: &[u8], what: &str) -> Value {
    let mut child = Command::new("python3")
        .arg(peers().join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "not valid {what}: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(input)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

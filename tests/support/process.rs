//! A child process killed on drop, whose output lines the test reads: wait
//! for a ready line, look for a line, or take everything it printed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::START_DEADLINE;

/// A child process, killed on drop.
pub struct Proc {
    pub child: Child,
    /// Lines the process printed (stdout and stderr), not yet looked at.
    pub(super) lines: mpsc::Receiver<String>,
    /// Lines read while waiting for the ready line, kept for later looks.
    pub(super) backlog: std::sync::Mutex<Vec<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `command` and waits until one of its output lines contains
    /// `ready`; returns that line.
    pub fn start(mut command: Command, ready: &str) -> (Proc, String) {
        let description = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let (tx, rx) = mpsc::channel();
        forward_lines(child.stdout.take().unwrap(), tx.clone());
        forward_lines(child.stderr.take().unwrap(), tx);
        let mut proc = Proc {
            child,
            lines: rx,
            backlog: Default::default(),
        };
        let deadline = Instant::now() + START_DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match proc.lines.recv_timeout(left) {
                Ok(line) if line.contains(ready) => {
                    *proc.backlog.lock().unwrap() = seen;
                    return (proc, line);
                }
                Ok(line) => seen.push(line),
                Err(_) => {
                    let status = proc.child.try_wait().ok().flatten();
                    panic!(
                        "{description} did not print {ready:?} in time (exit: {status:?}); it printed:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// Everything printed since start (or the last call), waiting up to `wait`.
    pub fn drain(&self, wait: Duration) -> Vec<String> {
        let mut out = std::mem::take(&mut *self.backlog.lock().unwrap());
        let deadline = Instant::now() + wait;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(line);
        }
        out
    }

    /// Waits until a line containing `needle` appears.
    pub fn wait_for(&self, needle: &str, wait: Duration) -> String {
        {
            let mut backlog = self.backlog.lock().unwrap();
            if let Some(i) = backlog.iter().position(|l| l.contains(needle)) {
                let line = backlog[i].clone();
                backlog.drain(..=i);
                return line;
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {needle:?} within {wait:?}"),
            }
        }
    }
}

pub(super) fn forward_lines(stream: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                // Nobody listens any more; keep draining so the child never
                // blocks on a full pipe.
                continue;
            }
        }
    });
}

pub fn url_in(line: &str) -> String {
    let start = line
        .find("http://")
        .or_else(|| line.find("https://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    line[start..].split_whitespace().next().unwrap().to_string()
}

//! The one error config loading has: a message already phrased for a
//! human, naming the file, the key and (where known) the line, so callers
//! only print it.

use std::fmt;

/// A configuration error, already phrased for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for ConfigError {}

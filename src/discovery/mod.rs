//! Discovery: sources of the desired set of upstreams. Each source turns
//! what it watches into upstream specs and hands them to the pool, which
//! reconciles towards them.
//!
//! - [`config_file`]: the YAML file, re-read when it changes.
//! - [`kubernetes`]: `MCPServerRegistration`s and what they point at.

pub mod config_file;
pub mod kubernetes;

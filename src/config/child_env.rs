//! The environment a stdio upstream's child process starts with.
//!
//! Never the gateway's own: a tool that prints its server's environment
//! (server-everything has one) would hand any caller the session key, JWT
//! secrets, upstream tokens and cloud credentials of the gateway. As the MCP
//! SDKs launch stdio servers, a child gets a minimal base, then the names
//! the config passes through unchanged (`inheritEnv`), then the config's own
//! `env` (with `${VAR}` expansion, so a secret is passed on purpose), each
//! later one winning over the earlier.

use std::collections::BTreeMap;

/// What every child inherits (when set), as the MCP SDKs'
/// `DEFAULT_INHERITED_ENV_VARS`: enough to find programs, a home and a
/// terminal, nothing that authenticates.
#[cfg(not(windows))]
pub const BASE: &[&str] = &["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];
#[cfg(windows)]
pub const BASE: &[&str] = &[
    "APPDATA",
    "HOMEDRIVE",
    "HOMEPATH",
    "LOCALAPPDATA",
    "PATH",
    "PROCESSOR_ARCHITECTURE",
    "PROGRAMFILES",
    "SYSTEMDRIVE",
    "SYSTEMROOT",
    "TEMP",
    "USERNAME",
    "USERPROFILE",
];

/// Why a child environment could not be built; the caller adds the line.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildEnvError {
    /// `inheritEnv[index]` or `env.<name>`: not a usable variable name.
    BadName { field: String },
    /// `env.<name>` refers to `${var}`, which is not set.
    Unset { field: String, var: String },
    /// `env.<name>`'s value holds a NUL byte, which no process can receive.
    BadValue { field: String },
}

/// Builds a child's environment from the gateway's (`lookup`), the names to
/// pass through and the config's `env` (values not yet expanded).
pub fn build(
    inherit: &[String],
    given: &BTreeMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, ChildEnvError> {
    let mut env = BTreeMap::new();
    for name in BASE {
        // A value starting with "()" is an exported shell function: the SDKs
        // leave those out, as a child shell would run them.
        if let Some(value) = lookup(name).filter(|v| !v.starts_with("()")) {
            env.insert(name.to_string(), value);
        }
    }
    for (index, name) in inherit.iter().enumerate() {
        if !valid_name(name) {
            return Err(ChildEnvError::BadName {
                field: format!("inheritEnv[{index}]"),
            });
        }
        // Absent names are skipped: a config may pass through what only
        // some machines set (a proxy, an extra CA bundle).
        if let Some(value) = lookup(name) {
            env.insert(name.clone(), value);
        }
    }
    for (name, value) in given {
        let field = format!("env.{name}");
        if !valid_name(name) {
            return Err(ChildEnvError::BadName { field });
        }
        let value = super::expand_env(value, lookup).map_err(|var| ChildEnvError::Unset {
            field: field.clone(),
            var,
        })?;
        if value.contains('\0') {
            return Err(ChildEnvError::BadValue { field });
        }
        env.insert(name.clone(), value);
    }
    Ok(env)
}

/// A name a process environment can hold.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway_env(var: &str) -> Option<String> {
        match var {
            "HOME" => Some("/home/gw".into()),
            "PATH" => Some("/usr/bin".into()),
            "TERM" => Some("() { evil; }".into()),
            "SWITCHBOARD_SESSION_KEY" => Some("sealing-key".into()),
            "HTTPS_PROXY" => Some("http://proxy:3128".into()),
            "GH_TOKEN" => Some("ghp_x".into()),
            _ => None,
        }
    }

    #[test]
    fn only_the_base_reaches_a_child_by_default() {
        let env = build(&[], &BTreeMap::new(), &gateway_env).unwrap();
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["HOME", "PATH"],
            "no secret, no shell function, nothing unset"
        );
    }

    #[test]
    fn inherited_names_and_given_values_are_added_given_last() {
        let given = BTreeMap::from([
            ("TOKEN".to_string(), "Bearer ${GH_TOKEN}".to_string()),
            ("HOME".to_string(), "/srv/child".to_string()),
        ]);
        let inherit = ["HTTPS_PROXY".to_string(), "NOT_SET".to_string()];
        let env = build(&inherit, &given, &gateway_env).unwrap();
        assert_eq!(env["HTTPS_PROXY"], "http://proxy:3128");
        assert_eq!(env["TOKEN"], "Bearer ghp_x");
        assert_eq!(env["HOME"], "/srv/child", "the config's env wins");
        assert!(!env.contains_key("NOT_SET"));
        assert!(!env.contains_key("SWITCHBOARD_SESSION_KEY"));
    }

    #[test]
    fn bad_names_and_unset_references_are_errors() {
        assert_eq!(
            build(&["A=B".into()], &BTreeMap::new(), &gateway_env),
            Err(ChildEnvError::BadName {
                field: "inheritEnv[0]".into()
            })
        );
        let given = BTreeMap::from([("X".to_string(), "${MISSING}".to_string())]);
        assert_eq!(
            build(&[], &given, &gateway_env),
            Err(ChildEnvError::Unset {
                field: "env.X".into(),
                var: "MISSING".into()
            })
        );
    }
}

//! Authorization: which tools, prompts and resources a caller may use.
//! Rules are read in order; the first rule that names the caller and
//! matches the item decides (a `deny` match refuses, an `allow` match
//! grants); an item no rule matches is refused.

use crate::config::AuthorizationRule;

use super::Principal;

pub struct Rules {
    rules: Vec<AuthorizationRule>,
    /// Exposed names that only a pattern naming them exactly grants: the
    /// built-in cluster actions (a `*` must not hand out restarts).
    explicit_only: Vec<String>,
}

impl Rules {
    pub fn new(rules: Vec<AuthorizationRule>, explicit_only: Vec<String>) -> Rules {
        Rules {
            rules,
            explicit_only,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `principal` may see and call the tool or prompt `name` (the
    /// exposed, prefixed name).
    pub fn may_use(&self, principal: &Principal, name: &str) -> bool {
        let explicit = self.explicit_only.iter().any(|n| n == name);
        for rule in self.rules.iter().filter(|r| names(r, principal)) {
            if rule.deny.iter().any(|p| glob(p, name)) {
                return false;
            }
            let granted = if explicit {
                rule.allow.iter().any(|p| p == name)
            } else {
                rule.allow.iter().any(|p| glob(p, name))
            };
            if granted {
                return true;
            }
        }
        false
    }

    /// Whether `principal` may use everything behind `prefix`: resources
    /// (which carry no prefix) and the methods `/servers/{name}/mcp` passes
    /// through. A resource URI matched by a pattern counts as well.
    pub fn may_use_server(&self, principal: &Principal, prefix: &str, uri: Option<&str>) -> bool {
        for rule in self.rules.iter().filter(|r| names(r, principal)) {
            if rule.deny.iter().any(|p| covers(p, prefix)) {
                return false;
            }
            if rule
                .allow
                .iter()
                .any(|p| covers(p, prefix) || uri.is_some_and(|u| glob(p, u)))
            {
                return true;
            }
        }
        false
    }
}

/// Whether a rule's subjects name the caller.
fn names(rule: &AuthorizationRule, principal: &Principal) -> bool {
    rule.subjects.iter().any(|s| {
        s == "*"
            || match s.strip_prefix("group:") {
                Some(group) => principal.groups.iter().any(|g| &**g == group),
                None => *s == *principal.subject,
            }
    })
}

/// Whether `pattern` matches every name under `prefix` (`*`, or `py*` for
/// prefix `py_`).
fn covers(pattern: &str, prefix: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(stem) => !stem.contains('*') && prefix.starts_with(stem),
        None => false,
    }
}

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn principal(subject: &str, groups: &[&str]) -> Principal {
        Principal {
            subject: Arc::from(subject),
            groups: groups.iter().map(|g| Arc::from(*g)).collect(),
            method: "test",
        }
    }

    fn rule(subjects: &[&str], allow: &[&str], deny: &[&str]) -> AuthorizationRule {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        AuthorizationRule {
            subjects: strings(subjects),
            allow: strings(allow),
            deny: strings(deny),
        }
    }

    #[test]
    fn glob_matches_runs_of_characters() {
        assert!(glob("py_*", "py_add"));
        assert!(glob("*", ""));
        assert!(glob("cluster_list_*", "cluster_list_pods"));
        assert!(!glob("cluster_list_*", "cluster_logs"));
        assert!(glob("*_get_*", "gh_get_issue"));
        assert!(glob("a*a", "aa"));
        assert!(!glob("a*a", "a"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("file:///docs/*", "file:///docs/a.md"));
    }

    #[test]
    fn first_rule_naming_the_caller_and_the_tool_decides() {
        let rules = Rules::new(
            vec![
                rule(&["alice"], &["py_*"], &["py_drop"]),
                rule(&["group:platform"], &["py_drop", "cluster_list_*"], &[]),
            ],
            Vec::new(),
        );
        let alice = principal("alice", &["platform"]);
        assert!(rules.may_use(&alice, "py_add"));
        // Alice's own rule denies it before the group rule is read.
        assert!(!rules.may_use(&alice, "py_drop"));
        assert!(rules.may_use(&alice, "cluster_list_pods"));
        assert!(!rules.may_use(&alice, "gh_issue"));
        let bob = principal("bob", &["platform"]);
        assert!(rules.may_use(&bob, "py_drop"));
        assert!(!rules.may_use(&bob, "py_add"));
        let eve = principal("eve", &[]);
        assert!(!rules.may_use(&eve, "py_add"));
    }

    #[test]
    fn cluster_actions_need_their_exact_name() {
        let actions = vec!["cluster_restart_deployment".to_string()];
        let wide = Rules::new(
            vec![rule(&["*"], &["*", "cluster_*"], &[])],
            actions.clone(),
        );
        let anyone = principal("x", &[]);
        assert!(wide.may_use(&anyone, "cluster_list_pods"));
        assert!(!wide.may_use(&anyone, "cluster_restart_deployment"));
        let named = Rules::new(
            vec![rule(&["x"], &["cluster_restart_deployment"], &[])],
            actions,
        );
        assert!(named.may_use(&anyone, "cluster_restart_deployment"));
    }

    #[test]
    fn servers_are_covered_by_prefix_patterns_or_uri_patterns() {
        let rules = Rules::new(
            vec![rule(&["a"], &["py*", "file:///docs/*"], &[])],
            Vec::new(),
        );
        let a = principal("a", &[]);
        assert!(rules.may_use_server(&a, "py_", None));
        assert!(!rules.may_use_server(&a, "gh_", None));
        assert!(rules.may_use_server(&a, "gh_", Some("file:///docs/x")));
        assert!(!rules.may_use_server(&a, "gh_", Some("file:///etc/passwd")));
        let narrow = Rules::new(vec![rule(&["a"], &["py_add"], &[])], Vec::new());
        assert!(!narrow.may_use_server(&a, "py_", None));
    }
}

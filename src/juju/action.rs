//! Action results as Juju takes them: `action-set key=value`, where a key is
//! lowercase letters, digits and hyphens, dots nest, and a few keys are
//! reserved. Pure formatting; the spawning is in `tools`.

use anyhow::{bail, Result};
use serde_json::Value;

/// Keys Juju keeps for itself (`juju run` prints them specially).
const RESERVED: [&str; 4] = ["stdout", "stdout-encoding", "stderr", "stderr-encoding"];

/// Ordered `dotted.key -> value` pairs, ready for `action-set`.
pub type ActionResults = Vec<(String, String)>;

/// One segment of an `action-set` key: starts and ends with a lowercase
/// letter or digit, hyphens inside (Juju's `keyRule`).
fn valid_segment(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && ok(&b[0]) && ok(&b[b.len() - 1]) && b.iter().all(|c| ok(c) || *c == b'-')
}

/// Whether `key` (dotted) may be passed to `action-set`: every segment
/// valid and none reserved (juju 3.6 action-set.go Init checks each
/// segment, so `foo.stdout` is refused too).
pub fn valid_key(key: &str) -> bool {
    key.split('.').all(|s| valid_segment(s) && !RESERVED.contains(&s))
}

/// Flatten a JSON object into dotted keys, in key order, checking every
/// key. Arrays are flattened with their index as the segment.
pub fn flatten_results(value: &Value) -> Result<ActionResults> {
    let mut out = Vec::new();
    flatten_into("", value, &mut out)?;
    Ok(out)
}

fn flatten_into(prefix: &str, value: &Value, out: &mut ActionResults) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(&key, v, out)?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten_into(&format!("{prefix}.{i}"), v, out)?;
            }
        }
        leaf => {
            if !valid_key(prefix) {
                bail!("action result key {prefix:?} is not valid for action-set (lowercase letters, digits, hyphens, dots)");
            }
            let text = match leaf {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            out.push((prefix.to_string(), text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_follow_jujus_rule() {
        assert!(valid_key("summary"));
        assert!(valid_key("checks.driver-installed.status"));
        assert!(valid_key("nodes.0"));
        assert!(!valid_key("Checks"));
        assert!(!valid_key("checks..status"));
        assert!(!valid_key("-x"));
        assert!(!valid_key("x-"));
        assert!(!valid_key("a_b"));
        assert!(!valid_key("stdout"));
        // Reserved per segment, as Juju checks them.
        assert!(!valid_key("result.stdout"));
        assert!(!valid_key("stderr-encoding.x"));
        assert!(!valid_key("stderr-encoding"));
        assert!(!valid_key(""));
    }

    #[test]
    fn nested_objects_flatten_in_key_order() {
        let v = json!({"summary": "1 passed", "checks": {"a": {"status": "pass", "n": 3}}, "list": ["x", true]});
        let flat = flatten_results(&v).unwrap();
        assert_eq!(
            flat,
            vec![
                ("checks.a.n".to_string(), "3".to_string()),
                ("checks.a.status".to_string(), "pass".to_string()),
                ("list.0".to_string(), "x".to_string()),
                ("list.1".to_string(), "true".to_string()),
                ("summary".to_string(), "1 passed".to_string()),
            ]
        );
    }

    #[test]
    fn a_bad_key_is_refused() {
        assert!(flatten_results(&json!({"Bad_Key": 1})).is_err());
    }
}

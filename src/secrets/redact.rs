//! The redactor: every value that came from a secret (or an `env` reference) is registered
//! here when it is resolved, and everything microctl prints goes through [`redact`] in
//! `report`, so the value shows as `[secret NAME]` in output lines, diffs, JSON and errors.
//! Files rendered from a secret are found by [`contains_secret`] and made sensitive.

use std::borrow::Cow;
use std::sync::RwLock;

/// (value, name), longest value first so a value containing another is masked whole.
static VALUES: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Shorter fragments (lines of a multi-line secret) are not masked on their own: too likely
/// to be ordinary text. Whole values are masked whatever their length.
const MIN_FRAGMENT: usize = 8;

/// Registers `value` (from secret or env reference `name`) for redaction.
pub fn register(name: &str, value: &str) {
    let mut values = VALUES.write().expect("redactor lock");
    let mut add = |v: &str| {
        if !v.is_empty() && !values.iter().any(|(x, _)| x == v) {
            values.push((v.to_string(), name.to_string()));
        }
    };
    add(value);
    // Output is printed line by line: each long line of a multi-line value is masked too.
    for line in value.lines().map(str::trim).filter(|l| l.len() >= MIN_FRAGMENT) {
        add(line);
    }
    values.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
}

/// `text` with every registered value replaced by `[secret NAME]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let values = VALUES.read().expect("redactor lock");
    let mut out = Cow::Borrowed(text);
    for (value, name) in values.iter() {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), &format!("[secret {name}]")));
        }
    }
    out
}

/// Redacts every string inside a JSON value (before it is serialized, so escaping cannot
/// hide a value from the match).
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// Whether `bytes` hold any registered value (then the file is sensitive).
pub fn contains_secret(bytes: &[u8]) -> bool {
    let values = VALUES.read().expect("redactor lock");
    values.iter().any(|(v, _)| bytes.windows(v.len()).any(|w| w == v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_in_text_json_and_found_in_files() {
        register("redact_test_pw", "hunter2-redact-test");
        register("redact_test_pem", "-----BEGIN X-----\nAAAABBBBCCCCDDDD-redact\n-----END X-----");
        assert_eq!(redact("pw=hunter2-redact-test;"), "pw=[secret redact_test_pw];");
        assert_eq!(redact("line: AAAABBBBCCCCDDDD-redact"), "line: [secret redact_test_pem]");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        let mut v = serde_json::json!({ "a": ["x hunter2-redact-test\"q"], "n": 1 });
        redact_json(&mut v);
        assert_eq!(v["a"][0], "x [secret redact_test_pw]\"q");
        assert!(contains_secret(b"KEY=hunter2-redact-test\n"));
        assert!(!contains_secret(b"KEY=hunter3\n"));
    }
}

//! The redactor: every value that came from a secret (or an `env` reference) is registered
//! here when it is resolved, and everything microctl prints goes through [`redact`] in
//! `report`, so the value shows as `[secret NAME]` in output lines, diffs, JSON and errors.
//! Besides the value itself, the forms it takes through the filters and quoting it can go
//! through are masked ([`forms`]: `systemd_env`, `escape`, shell quoting, JSON). A form no
//! one can compute from the value alone (`replace`, `truncate`...) is not: such a file is
//! still sensitive (its template read the secret: `access`), so `--diff` never shows it,
//! but a command that prints it (a failing handler's `cat`) is shown as it prints it.

use std::borrow::Cow;
use std::sync::RwLock;

/// (value, name), longest value first so a value containing another is masked whole.
static VALUES: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Shorter fragments (lines of a multi-line secret) are not masked on their own: too likely
/// to be ordinary text.
const MIN_FRAGMENT: usize = 8;

/// A whole value shorter than this is masked only where it stands as a word of its own (not
/// inside a longer word or path: a secret `x` must not turn `exactly` into `e[secret]actly`).
/// `secrets set` refuses such values and `check` warns about `env` ones (README, "Redaction").
pub const MIN_SECRET: usize = 8;

/// Registers `value` (from secret or env reference `name`) for redaction.
pub fn register(name: &str, value: &str) {
    let mut values = VALUES.write().expect("redactor lock");
    let mut add = |v: &str| {
        if !v.is_empty() && !values.iter().any(|(x, _)| x == v) {
            values.push((v.to_string(), name.to_string()));
        }
    };
    for form in forms(value) {
        add(&form);
        // Output is printed line by line: each long line of a multi-line value is masked too.
        for line in form.lines().map(str::trim).filter(|l| l.len() >= MIN_FRAGMENT) {
            add(line);
        }
    }
    values.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
}

/// `value` and what the filters and quoting a value may go through make of it, each without
/// the quotes around it (so it is found inside a longer quoted string too): `systemd_env`
/// (the project's filter), minijinja's `escape` (and HTML auto-escaping), POSIX shell quoting
/// (`shell::quote`: microctl's own command lines, the `-vv` script summary), JSON string
/// escaping. Each once.
fn forms(value: &str) -> Vec<String> {
    let unquote =
        |s: &str, q: char| -> String { s.strip_prefix(q).and_then(|s| s.strip_suffix(q)).unwrap_or(s).to_string() };
    let mut out = vec![value.to_string()];
    if let Some(env) = crate::role::systemd_env(value) {
        out.push(unquote(&env, '"'));
    }
    out.push(minijinja::HtmlEscape(value).to_string());
    out.push(unquote(&crate::shell::quote(value), '\''));
    out.push(unquote(&serde_json::to_string(value).expect("a string serializes"), '"'));
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.clone()));
    out
}

/// `text` with every registered value replaced by `[secret NAME]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let values = VALUES.read().expect("redactor lock");
    let mut out = Cow::Borrowed(text);
    for (value, name) in values.iter() {
        if !out.contains(value.as_str()) {
            continue;
        }
        let mask = format!("[secret {name}]");
        out = Cow::Owned(if value.chars().count() >= MIN_SECRET {
            out.replace(value.as_str(), &mask)
        } else {
            replace_words(&out, value, &mask)
        });
    }
    out
}

/// `text` with each occurrence of `word` that stands alone (no letter, digit, `_`, `-`, `.` or
/// `/` right before or after it) replaced by `mask`.
fn replace_words(text: &str, word: &str, mask: &str) -> String {
    let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let (before, after) = (rest[..i].chars().next_back(), rest[i + word.len()..].chars().next());
        let alone = !part(before) && !part(after);
        out.push_str(&rest[..i]);
        out.push_str(if alone { mask } else { word });
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_in_text_and_json() {
        register("redact_test_pw", "hunter2-redact-test");
        register("redact_test_pem", "-----BEGIN X-----\nAAAABBBBCCCCDDDD-redact\n-----END X-----");
        assert_eq!(redact("pw=hunter2-redact-test;"), "pw=[secret redact_test_pw];");
        assert_eq!(redact("line: AAAABBBBCCCCDDDD-redact"), "line: [secret redact_test_pem]");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        let mut v = serde_json::json!({ "a": ["x hunter2-redact-test\"q"], "n": 1 });
        redact_json(&mut v);
        assert_eq!(v["a"][0], "x [secret redact_test_pw]\"q");
    }

    /// A value shorter than MIN_SECRET is masked where it is a word of its own, never inside a
    /// longer word or a path.
    #[test]
    fn a_short_value_is_masked_only_as_a_word_of_its_own() {
        register("redact_short", "q7");
        assert_eq!(
            redact("pw=q7 and 'q7', q7"),
            "pw=[secret redact_short] and '[secret redact_short]', [secret redact_short]"
        );
        assert_eq!(redact("aq7b /srv/q7/x q7.conf q7_x"), "aq7b /srv/q7/x q7.conf q7_x");
    }

    /// The value as `systemd_env`, `escape`, shell quoting and JSON make it is masked too,
    /// also inside a longer quoted string and line by line.
    #[test]
    fn filtered_forms_of_a_value_are_masked() {
        let value = "r3dact-forms $HOME \"dq\" 'sq' `tick` <a&b>/\\ end\nsecond line of it";
        register("redact_forms", value);
        let t = crate::role::template::Templates::new();
        let ctx = minijinja::context! { v => value };
        for source in ["{{ v }}", "K={{ v | systemd_env }}", "<p>{{ v | escape }}</p>", "x = \"{{ v | escape }}\""] {
            let out = t.render_str(source, &ctx).unwrap();
            let shown = redact(&out);
            assert!(shown.contains("[secret redact_forms]"), "{source}: {shown}");
            for piece in ["r3dact", "second line"] {
                assert!(!shown.contains(piece), "{source}: {shown}");
            }
        }
        for out in [
            format!("run: echo {} done", crate::shell::quote(value)),
            format!("{{\"pw\":{}}}", serde_json::to_string(value).unwrap()),
        ] {
            let shown = redact(&out);
            assert!(!shown.contains("r3dact") && shown.contains("[secret redact_forms]"), "{shown}");
        }
    }
}

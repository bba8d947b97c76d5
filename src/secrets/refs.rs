//! References to secrets in vars: `name = { secret = "NAME" }` (a value from the encrypted
//! secrets file) and `name = { env = "NAME" }` (from the environment, e.g. a Jenkins
//! credentials binding). Resolving replaces each reference with its string, anywhere in the
//! vars (nested tables and arrays too). Also: placeholder values `check` warns about.

use crate::inventory::Vars;

/// What a var refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    Secret(String),
    Env(String),
}

impl Reference {
    pub fn name(&self) -> &str {
        match self {
            Reference::Secret(n) | Reference::Env(n) => n,
        }
    }

    /// `secret` or `env`: the word of its stand-in, `[secret NAME]`.
    pub fn kind(&self) -> &'static str {
        match self {
            Reference::Secret(_) => "secret",
            Reference::Env(_) => "env",
        }
    }
}

/// The reference a value is, if it is a table with the single key `secret` or `env`.
pub fn reference(value: &toml::Value) -> Option<Reference> {
    let table = value.as_table().filter(|t| t.len() == 1)?;
    let (key, name) = table.iter().next()?;
    let name = name.as_str()?.to_string();
    match key.as_str() {
        "secret" => Some(Reference::Secret(name)),
        "env" => Some(Reference::Env(name)),
        _ => None,
    }
}

/// Replaces every reference in `vars` with `lookup(var path, reference)`.
pub fn resolve<E>(vars: &mut Vars, lookup: &mut dyn FnMut(&str, &Reference) -> Result<String, E>) -> Result<(), E> {
    for (key, value) in vars.iter_mut() {
        resolve_value(key, value, lookup)?;
    }
    Ok(())
}

fn resolve_value<E>(
    path: &str,
    value: &mut toml::Value,
    lookup: &mut dyn FnMut(&str, &Reference) -> Result<String, E>,
) -> Result<(), E> {
    if let Some(r) = reference(value) {
        *value = toml::Value::String(lookup(path, &r)?);
        return Ok(());
    }
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                resolve_value(&format!("{path}.{k}"), v, lookup)?;
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                resolve_value(&format!("{path}[{i}]"), v, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Values that look like placeholders left in an inventory (`change-me`, `SET-ME`...), with
/// their var names.
pub fn placeholders(vars: &Vars) -> Vec<(String, String)> {
    const MARKERS: [&str; 5] = ["change-me", "changeme", "set-me", "setme", "replace-me"];
    let mut out = Vec::new();
    for (key, value) in vars {
        if let Some(s) = value.as_str() {
            let lower = s.to_ascii_lowercase();
            if MARKERS.iter().any(|m| lower.contains(m)) {
                out.push((key.clone(), s.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_resolved_anywhere_and_others_left_alone() {
        let mut vars: Vars = toml::from_str(
            "a = { secret = \"s1\" }\nb = { env = \"E\" }\nc = { secret = \"x\", other = 1 }\n\
             d = [{ pw = { secret = \"s2\" } }]\ne = \"plain\"\n",
        )
        .unwrap();
        let mut seen = Vec::new();
        resolve::<()>(&mut vars, &mut |path, r| {
            seen.push((path.to_string(), r.clone()));
            Ok(format!("<{}>", r.name()))
        })
        .unwrap();
        assert_eq!(vars["a"].as_str(), Some("<s1>"));
        assert_eq!(vars["b"].as_str(), Some("<E>"));
        assert!(vars["c"].is_table());
        assert_eq!(vars["d"][0]["pw"].as_str(), Some("<s2>"));
        assert_eq!(vars["e"].as_str(), Some("plain"));
        assert_eq!(seen[2], ("d[0].pw".to_string(), Reference::Secret("s2".into())));
    }

    #[test]
    fn placeholders_are_found() {
        let vars: Vars =
            toml::from_str("a = \"change-me-to-a-long-random-string\"\nb = \"SET-ME-FROM-X\"\nc = \"fine\"\n").unwrap();
        let found: Vec<String> = placeholders(&vars).into_iter().map(|(k, _)| k).collect();
        assert_eq!(found, ["a", "b"]);
    }
}

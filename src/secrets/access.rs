//! Which renders read a secret. Resolving (`secrets::resolve`) records every var that came
//! from a reference, by its path in the vars and its value ([`record`]; stand-ins of `check`
//! too). The renderer makes its template values with [`vars_value`], which turns every map
//! or list that directly holds such a value into a [`Holder`]: an object that behaves like the
//! map or list it wraps and sets a flag of the rendering thread whenever a template takes the
//! secret out of it (by name, by index, through `items`, a `for` loop, `tojson` of the map...).
//! [`reading`] runs a render and tells whether it read one. So "this file holds a secret" is
//! decided by what the template read, whatever filters the value then went through
//! (`systemd_env`, `escape`, `replace`...), never by searching the output for the value.
//! A var that overrides a secret with a plain value (a higher layer) reads no secret: the
//! lookup never reaches the layer that holds it.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, RwLock};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use crate::inventory::Vars;

/// (path in the vars, value) of every var resolved from a reference.
static SECRET_VARS: LazyLock<RwLock<HashSet<(String, String)>>> = LazyLock::new(Default::default);

thread_local! {
    /// Set when the current render took a secret out of a [`Holder`].
    static READ: Cell<bool> = const { Cell::new(false) };
}

/// Records that the var at `path` (`key`, `key.sub`, `key[0]`, as `refs::resolve` names
/// them) came from a reference and resolved to `value`.
pub fn record(path: &str, value: &str) {
    SECRET_VARS.write().expect("secret vars lock").insert((path.to_string(), value.to_string()));
}

/// Runs `render` and tells whether it read a secret.
pub fn reading<T>(render: impl FnOnce() -> T) -> (T, bool) {
    let outer = READ.replace(false);
    let out = render();
    let read = READ.get();
    READ.set(outer || read);
    (out, read)
}

/// `vars` as a template value: the same maps, lists and values a plain conversion gives,
/// except that a map or list directly holding a secret is a [`Holder`].
pub fn vars_value(vars: &Vars) -> Value {
    let secrets = SECRET_VARS.read().expect("secret vars lock");
    if secrets.is_empty() {
        return plain(vars);
    }
    table(vars, "", &secrets).unwrap_or_else(|| plain(vars))
}

fn plain(v: &impl serde::Serialize) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// What a value of the vars is to the template.
enum Converted {
    /// A secret itself (a string).
    Secret(Value),
    /// Holds a secret somewhere below.
    Holds(Value),
    /// Holds none: the plain conversion.
    Plain,
}

fn convert(value: &toml::Value, path: &str, secrets: &HashSet<(String, String)>) -> Converted {
    match value {
        toml::Value::String(s) if secrets.contains(&(path.to_string(), s.clone())) => {
            Converted::Secret(Value::from(s.as_str()))
        }
        toml::Value::Table(t) => table(t, path, secrets).map_or(Converted::Plain, Converted::Holds),
        toml::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut secret_keys = Vec::new();
            let mut holds = false;
            for (i, item) in items.iter().enumerate() {
                out.push(match convert(item, &format!("{path}[{i}]"), secrets) {
                    Converted::Secret(v) => {
                        secret_keys.push(Value::from(i));
                        v
                    }
                    Converted::Holds(v) => {
                        holds = true;
                        v
                    }
                    Converted::Plain => plain(item),
                });
            }
            let list = Value::from(out);
            match (secret_keys.is_empty(), holds) {
                (true, false) => Converted::Plain,
                (true, true) => Converted::Holds(list),
                (false, _) => Converted::Holds(Holder::value(list, secret_keys)),
            }
        }
        _ => Converted::Plain,
    }
}

/// A table's value if anything below it is a secret.
fn table(t: &toml::Table, prefix: &str, secrets: &HashSet<(String, String)>) -> Option<Value> {
    let mut pairs = Vec::with_capacity(t.len());
    let mut secret_keys = Vec::new();
    let mut holds = false;
    for (k, v) in t {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        let value = match convert(v, &path, secrets) {
            Converted::Secret(v) => {
                secret_keys.push(Value::from(k.as_str()));
                v
            }
            Converted::Holds(v) => {
                holds = true;
                v
            }
            Converted::Plain => plain(v),
        };
        pairs.push((Value::from(k.as_str()), value));
    }
    if secret_keys.is_empty() && !holds {
        return None;
    }
    let map = Value::from_pairs(pairs);
    Some(if secret_keys.is_empty() { map } else { Holder::value(map, secret_keys) })
}

/// A map or list (`inner`) whose `secret` keys hold secrets: reading one sets [`READ`].
#[derive(Debug)]
struct Holder {
    inner: Value,
    secret: Vec<Value>,
}

impl Holder {
    fn value(inner: Value, secret: Vec<Value>) -> Value {
        Value::from_object(Holder { inner, secret })
    }
}

impl Object for Holder {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.inner.kind() {
            minijinja::value::ValueKind::Seq => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let v = self.inner.get_item(key).ok().filter(|v| !v.is_undefined())?;
        if self.secret.iter().any(|k| k == key) {
            READ.set(true);
        }
        Some(v)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.repr() {
            ObjectRepr::Seq => Enumerator::Seq(self.inner.len().unwrap_or(0)),
            _ => Enumerator::Values(self.inner.try_iter().map(Iterator::collect).unwrap_or_default()),
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::template::Templates;

    /// Reads through every way a template reaches a value, filters included; a value that is
    /// not a secret (or a secret's value under another name) reads none.
    #[test]
    fn a_render_reads_a_secret_whatever_filter_it_goes_through() {
        record("access_pw", "pw-access-test $x \"q\"");
        record("access_db.password", "db-access-test");
        record("access_list[1]", "list-access-test");
        let vars: Vars = toml::from_str(
            "access_pw = \"pw-access-test $x \\\"q\\\"\"\naccess_plain = \"pw-access-test $x \\\"q\\\"\"\n\
             access_db = { host = \"db\", password = \"db-access-test\" }\n\
             access_list = [\"a\", \"list-access-test\"]\nport = 5000\n",
        )
        .unwrap();
        let ctx = vars_value(&vars);
        let t = Templates::new();
        let render = |source: &str| {
            let (out, read) = reading(|| t.render_str(source, &ctx).unwrap());
            (out, read)
        };
        for source in [
            "K={{ access_pw | systemd_env }}",
            "{{ access_pw | escape }}",
            "{{ access_pw | replace('a', 'b') | upper }}",
            "{{ access_db.password }}",
            "{{ access_db['password'] | length }}",
            "{% for k, v in access_db | items %}{{ k }}={{ v }} {% endfor %}",
            "{{ access_db }}",
            "{{ access_list[1] }}",
            "{{ access_list | join(',') }}",
            "{% for x in access_list %}{{ x }}{% endfor %}",
        ] {
            assert!(render(source).1, "{source} reads a secret");
        }
        for source in ["{{ access_plain | systemd_env }}", "{{ access_db.host }}", "{{ access_list[0] }}", "{{ port }}"]
        {
            assert!(!render(source).1, "{source} reads no secret");
        }
        // Values and shapes are those of the plain conversion.
        assert_eq!(render("{{ access_db.host }}:{{ port + 1 }}").0, "db:5001");
        assert_eq!(render("{{ access_list | length }} {{ access_db | length }}").0, "2 2");
        assert_eq!(render("{{ access_pw | systemd_env }}").0, r#""pw-access-test \$x \"q\"""#);
        // A later layer overriding the secret with a plain value reads none.
        let over: Vars = toml::from_str("access_pw = \"plain\"\n").unwrap();
        let merged = minijinja::value::merge_maps([ctx.clone(), vars_value(&over)]);
        let (out, read) = reading(|| t.render_str("{{ access_pw }}", &merged).unwrap());
        assert_eq!((out.as_str(), read), ("plain", false));
        let (_, read) = reading(|| t.render_str("{{ access_db.password }}", &merged).unwrap());
        assert!(read);
    }
}

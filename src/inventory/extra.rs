//! Variables from the command line (`-e`) and the one normalisation every var gets: TOML
//! date-times become their text, so templates see `1979-05-27`, not serde's private table.
//!
//! The `-e` rule: `-e NAME=VALUE` sets NAME to the string VALUE exactly as typed (`0x1F`,
//! `1_000`, `1.10` and `true` stay strings); `-e NAME:=VALUE` reads VALUE as a TOML value
//! (`-e n:=5`, `-e on:=true`, `-e 'ports:=[80, 443]'`, `-e 'name:="x"'`).

use super::Vars;
use crate::error::{Error, Result};

/// Parses `-e` arguments, later ones winning.
pub fn extra_vars(pairs: &[String]) -> Result<Vars> {
    let mut vars = Vars::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::usage(format!(
                "-e {pair}: expected NAME=VALUE (a string) or NAME:=VALUE (a TOML value)"
            ))
            .hint("e.g. -e app_port:=5001 or -e env=staging"));
        };
        let (name, typed) = match key.strip_suffix(':') {
            Some(name) => (name, true),
            None => (key, false),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::usage(format!("-e {pair}: invalid variable name `{name}`"))
                .hint("variable names use letters, digits and `_`"));
        }
        let value = if typed {
            let mut parsed = toml::from_str::<Vars>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .ok_or_else(|| {
                    Error::usage(format!("-e {pair}: `{value}` is not a TOML value")).hint(format!(
                        "quote a string (-e '{name}:=\"{value}\"'), or use -e {name}={value} to pass it as typed"
                    ))
                })?;
            dates_as_text(&mut parsed);
            parsed
        } else {
            toml::Value::String(value.to_string())
        };
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

/// Replaces every TOML date-time inside `value` by its text (`1979-05-27T07:32:00Z`).
pub fn dates_as_text(value: &mut toml::Value) {
    match value {
        toml::Value::Datetime(d) => *value = toml::Value::String(d.to_string()),
        toml::Value::Array(items) => items.iter_mut().for_each(dates_as_text),
        toml::Value::Table(t) => table_dates_as_text(t),
        _ => {}
    }
}

/// [`dates_as_text`] for every value of a table.
pub fn table_dates_as_text(table: &mut Vars) {
    table.iter_mut().for_each(|(_, v)| dates_as_text(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(arg: &str) -> toml::Value {
        extra_vars(&[arg.to_string()]).unwrap().remove("v").unwrap()
    }

    fn err(arg: &str) -> String {
        extra_vars(&[arg.to_string()]).unwrap_err().to_string()
    }

    #[test]
    fn plain_values_stay_the_string_typed() {
        for typed in ["0x1F", "1_000", "1.10", "true", "5", "[1, 2]", "\"q\"", "a=b", "", "$HOME 'x' \"y\""] {
            assert_eq!(one(&format!("v={typed}")), toml::Value::String(typed.to_string()), "{typed}");
        }
    }

    #[test]
    fn colon_equals_reads_a_toml_value() {
        assert_eq!(one("v:=0x1F"), toml::Value::Integer(31));
        assert_eq!(one("v:=1.10"), toml::Value::Float(1.1));
        assert_eq!(one("v:=true"), toml::Value::Boolean(true));
        assert_eq!(one("v:=\"x y\""), toml::Value::String("x y".into()));
        assert_eq!(one("v:=[80, 443]"), toml::Value::Array(vec![80.into(), 443.into()]));
        assert_eq!(one("v:=1979-05-27T07:32:00Z"), toml::Value::String("1979-05-27T07:32:00Z".into()));
        assert_eq!(one("v:={ d = 1979-05-27 }")["d"], toml::Value::String("1979-05-27".into()));
    }

    #[test]
    fn bad_arguments_say_what_to_type() {
        assert_eq!(
            err("v"),
            "-e v: expected NAME=VALUE (a string) or NAME:=VALUE (a TOML value)\n  hint: e.g. -e app_port:=5001 or -e env=staging"
        );
        assert_eq!(
            err("v:=staging"),
            "-e v:=staging: `staging` is not a TOML value\n  hint: quote a string (-e 'v:=\"staging\"'), or use -e v=staging to pass it as typed"
        );
        assert_eq!(
            err("a b=1"),
            "-e a b=1: invalid variable name `a b`\n  hint: variable names use letters, digits and `_`"
        );
    }
}

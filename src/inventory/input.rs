//! TOML input errors that name the thing: turns a file's bytes into text (a non-UTF-8 byte is
//! reported at its line and column) and a `toml` error into an [`Error`] that names the field
//! path, what was expected and what was found (`hosts.web.port: expected an integer, found the
//! string "22"`), and the key of a duplicate key or table, at file:line:col.
//!
//! Used for inventory.toml and every role.toml. It only runs when
//! parsing failed, so it may re-parse the file to find the path.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, ErrorKind, LineIndex};

/// The file's text, or an error at the line and column of its first byte that is not UTF-8.
pub fn utf8(path: &Path, bytes: Vec<u8>, kind: ErrorKind) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&bytes[..at]).expect("valid up to");
        let (line, col) = LineIndex::new(valid).line_col(at);
        Error::new(kind, format!("not UTF-8: byte 0x{:02x} is not part of a UTF-8 character", bytes[at]))
            .at_file(path)
            .at_line(line, col)
            .hint("TOML files must be UTF-8: re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")
    })
}

/// A located, explained error for `err`, raised while reading `text` (the file at `path`).
/// `what` names the file's kind in messages ("inventory", "role"), `doc` where its format is
/// described.
pub fn toml_error(
    path: &Path,
    text: &str,
    index: &LineIndex,
    err: &toml::de::Error,
    kind: ErrorKind,
    what: &str,
    doc: &str,
) -> Error {
    let message = err.message().trim();
    let span = err.span().unwrap_or(0..0);
    let (line, col) = index.line_col(span.start);
    let at = |message: String| Error::new(kind, message).at_file(path).at_line(line, col);

    if message.starts_with("duplicate key") {
        return duplicate(text, index, span, at);
    }
    let Some((field, found)) = locate(text, span.start) else {
        return at(format!("invalid {what}: {message}"))
            .hint(format!("fix the TOML at this position; the {what} format is described in {doc}"));
    };
    // A date-time where a table was expected reaches serde as a table with a private key.
    let type_error = match message.strip_prefix("invalid type: ") {
        Some(rest) => Some(expected_text(rest.rsplit_once(", expected ").map_or("another type", |(_, e)| e))),
        None if message.starts_with("unknown field `$__toml_private_datetime`") => Some("a table"),
        None => None,
    };
    if let Some(expected) = type_error {
        let found_text = found.as_ref().map_or("another type", |f| f.text.as_str());
        let hint = match found.as_ref().and_then(|f| f.string.as_deref()) {
            Some(s) if unquoted_fits(s, expected) => {
                format!("write the value without quotes: `{} = {s}`", last_key(&field))
            }
            _ => format!("write `{}` as {expected}; the {what} format is described in {doc}", last_key(&field)),
        };
        return at(format!("{field}: expected {expected}, found {found_text}")).field(&field).hint(hint);
    }
    if message.starts_with("unknown field") {
        let table = field.rsplit_once('.').map_or("", |(t, _)| t);
        let text = if table.is_empty() { message.to_string() } else { format!("{table}: {message}") };
        return at(text).field(&field).hint(format!("fix the spelling or remove the key; see {doc}"));
    }
    at(format!("{field}: {message}"))
        .field(&field)
        .hint(format!("fix the value; the {what} format is described in {doc}"))
}

/// `duplicate table [hosts.web] (first defined on line 1)` or `duplicate key `port` in
/// [hosts.web] (first set on line 3)`: the span is the second occurrence's key.
fn duplicate(text: &str, index: &LineIndex, span: Range<usize>, at: impl Fn(String) -> Error) -> Error {
    let lines: Vec<&str> = text.lines().collect();
    let (line, _) = index.line_col(span.start);
    let this = lines.get(line - 1).copied().unwrap_or("").trim();
    let key = text.get(span).unwrap_or("").trim().trim_matches(['"', '\'']).to_string();
    let hint = "each table and each key may appear once: merge the two, or remove or rename one";
    if let Some(header) = header_of(this) {
        let first = lines.iter().position(|l| header_of(l.trim()).as_deref() == Some(header.as_str()));
        let first =
            first.filter(|&i| i + 1 < line).map_or(String::new(), |i| format!(" (first defined on line {})", i + 1));
        return at(format!("duplicate table [{header}]{first}")).field(header).hint(hint);
    }
    // The table this key is in: the nearest header above it.
    let table_line = (0..line - 1).rev().find(|&i| header_of(lines[i].trim()).is_some());
    let table = table_line.and_then(|i| header_of(lines[i].trim()));
    let first = (table_line.map_or(0, |i| i + 1)..line - 1)
        .find(|&i| lines[i].trim().strip_prefix(key.as_str()).is_some_and(|r| r.trim_start().starts_with('=')))
        .map_or(String::new(), |i| format!(" (first set on line {})", i + 1));
    match table {
        Some(t) => at(format!("duplicate key `{key}` in [{t}]{first}")).field(format!("{t}.{key}")).hint(hint),
        None => at(format!("duplicate key `{key}`{first}")).field(key).hint(hint),
    }
}

/// `hosts.web` for a line `[hosts.web]` or `[[ hosts . web ]]`.
fn header_of(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    Some(inner[..end].split('.').map(|p| p.trim().trim_matches(['"', '\''])).collect::<Vec<_>>().join("."))
}

fn last_key(field: &str) -> &str {
    field.rsplit_once('.').map_or(field, |(_, k)| k)
}

/// The dotted path of the key or value at `offset` (`hosts.web.port`, `hosts.web.groups[1]`)
/// and the value found there, if the offset is on a value.
fn locate(text: &str, offset: usize) -> Option<(String, Option<Found>)> {
    let doc = DeTable::parse(text).ok()?;
    let mut path = String::new();
    let found = find_in_table(doc.get_ref(), offset, &mut path)
        .flatten()
        .map(|v| Found { text: found_text(v), string: v.as_str().map(str::to_string) });
    (!path.is_empty()).then_some((path, found))
}

/// The value an error is about: in words, and its content when it is a string.
struct Found {
    text: String,
    string: Option<String>,
}

/// Searches `table` for the entry at `offset`, appending its path. `Some(value)` when found
/// (the value is `None` when the offset is on a key).
fn find_in_table<'a, 'i>(table: &'a DeTable<'i>, offset: usize, path: &mut String) -> Option<Option<&'a DeValue<'i>>> {
    for (key, value) in table {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if contains(&key.span(), offset) {
            return Some(None);
        }
        if let Some(found) = find_in_value(value, offset, path) {
            return Some(found);
        }
        path.truncate(len);
    }
    None
}

fn find_in_value<'a, 'i>(
    value: &'a Spanned<DeValue<'i>>,
    offset: usize,
    path: &mut String,
) -> Option<Option<&'a DeValue<'i>>> {
    match value.get_ref() {
        DeValue::Table(t) => {
            find_in_table(t, offset, path).or_else(|| contains(&value.span(), offset).then_some(Some(value.get_ref())))
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if let Some(found) = find_in_value(item, offset, path) {
                    return Some(found);
                }
                path.truncate(len);
            }
            contains(&value.span(), offset).then_some(Some(value.get_ref()))
        }
        v => contains(&value.span(), offset).then_some(Some(v)),
    }
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// serde's name for a type, in words.
fn expected_text(serde: &str) -> &str {
    match serde {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" | "an integer" => "an integer",
        "f32" | "f64" | "a float" => "a number",
        "a boolean" | "bool" => "true or false",
        "a sequence" => "an array",
        "a string" => "a string",
        s if s == "a map" || s.starts_with("struct ") || s == "a table" => "a table",
        s => s,
    }
}

/// What a value is, in words, with its text: `the string "22"`, `the integer 0x1F`.
fn found_text(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string {s:?}"),
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Float(f) => format!("the number {}", f.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the date-time {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// Whether a quoted string would have been right without its quotes.
fn unquoted_fits(s: &str, expected: &str) -> bool {
    match expected {
        "an integer" => s.trim().parse::<i64>().is_ok(),
        "a number" => s.trim().parse::<f64>().is_ok(),
        "true or false" => matches!(s.trim(), "true" | "false"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        hosts: std::collections::BTreeMap<String, Host>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Host {
        port: Option<i64>,
        groups: Option<Vec<String>>,
        timeout: Option<f64>,
        vars: Option<toml::Table>,
    }

    fn err(text: &str) -> String {
        let e = toml::from_str::<Doc>(text).unwrap_err();
        toml_error(Path::new("f.toml"), text, &LineIndex::new(text), &e, ErrorKind::Inventory, "inventory", "README.md")
            .to_string()
    }

    #[test]
    fn type_errors_name_path_expected_and_found() {
        assert_eq!(
            err("[hosts.web]\nport = \"22\"\n"),
            "f.toml:2:8: hosts.web.port: expected an integer, found the string \"22\"\n  field: hosts.web.port\n  hint: write the value without quotes: `port = 22`"
        );
        assert_eq!(
            err("[hosts.web]\ngroups = [\"a\", 5]\n"),
            "f.toml:2:16: hosts.web.groups[1]: expected a string, found the integer 5\n  field: hosts.web.groups[1]\n  hint: write `groups[1]` as a string; the inventory format is described in README.md"
        );
        assert_eq!(
            err("[hosts.web]\ntimeout = true\n"),
            "f.toml:2:11: hosts.web.timeout: expected a number, found the boolean true\n  field: hosts.web.timeout\n  hint: write `timeout` as a number; the inventory format is described in README.md"
        );
        assert_eq!(
            err("[hosts]\nweb = 1979-05-27\n"),
            "f.toml:2:7: hosts.web: expected a table, found the date-time 1979-05-27\n  field: hosts.web\n  hint: write `web` as a table; the inventory format is described in README.md"
        );
    }

    #[test]
    fn unknown_fields_name_the_table() {
        let e = err("[hosts.web]\nprt = 22\n");
        assert!(e.starts_with("f.toml:2:1: hosts.web: unknown field `prt`, expected one of"), "{e}");
        assert!(e.contains("\n  field: hosts.web.prt\n"), "{e}");
    }

    #[test]
    fn duplicates_name_the_key_or_table_and_the_first_one() {
        assert_eq!(
            err("[hosts.web]\nport = 1\n\n[hosts.web]\nport = 2\n"),
            "f.toml:4:8: duplicate table [hosts.web] (first defined on line 1)\n  field: hosts.web\n  hint: each table and each key may appear once: merge the two, or remove or rename one"
        );
        assert_eq!(
            err("[hosts.web]\nport = 1\nport = 2\n"),
            "f.toml:3:1: duplicate key `port` in [hosts.web] (first set on line 2)\n  field: hosts.web.port\n  hint: each table and each key may appear once: merge the two, or remove or rename one"
        );
    }

    #[test]
    fn non_utf8_names_the_first_bad_byte() {
        let e = utf8(Path::new("f.toml"), b"[hosts.web]\nuser = \"j\xf6rg\"\n".to_vec(), ErrorKind::Inventory)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "f.toml:2:10: not UTF-8: byte 0xf6 is not part of a UTF-8 character\n  hint: TOML files must be UTF-8: re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
        );
    }
}

//! Near names, for "did you mean" hints: a field or group spelled almost like a known one is
//! most likely a typo of it. Pure functions over short names.

/// Levenshtein distance (names are short).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// How far a name may be from a known one and still be taken for its typo: one edit for names
/// of up to two characters, two otherwise.
pub fn typo_limit(name: &str) -> usize {
    if name.chars().count() <= 2 { 1 } else { 2 }
}

/// The known name `name` is most likely a typo of, if any (the nearest within [`typo_limit`]).
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = typo_limit(name);
    known
        .into_iter()
        .map(|k| (edit_distance(k, name), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_name_it_misspells() {
        assert_eq!(edit_distance("health_pth", "health_path"), 1);
        assert_eq!(closest("health_pth", ["health_port", "health_path", "keep"]), Some("health_path"));
        assert_eq!(closest("wbe", ["web", "app"]), Some("web"));
        assert_eq!(closest("colour", ["keep", "batch"]), None);
        assert_eq!(closest("ab", ["xy"]), None);
    }
}

//! "Did you mean …?" for a mistyped command, flag, loss, key or hyper-parameter.

use crate::failure::MAX_NAME;

/// `" (did you mean `x`?)"` for the closest candidate within a few edits, else `""`.
/// Names longer than [`MAX_NAME`] get no suggestion: the search is quadratic in the length.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    if given.chars().nth(MAX_NAME).is_some() {
        return String::new();
    }
    let limit = (given.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(given, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map_or_else(String::new, |(_, c)| format!(" (did you mean `{c}`?)"))
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            row.push(substitute.min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("list", "list"), 0);
        assert_eq!(edit_distance("lst", "list"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "gpw"), 3);
        // characters, not bytes
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn the_closest_candidate_within_the_limit_is_suggested() {
        assert_eq!(
            did_you_mean("evla", ["list", "eval", "gpw"]),
            " (did you mean `eval`?)"
        );
        assert_eq!(did_you_mean("zzzzzz", ["list", "eval", "gpw"]), "");
        let long = "x".repeat(MAX_NAME + 1);
        assert_eq!(did_you_mean(&long, [long.as_str()]), "");
    }
}

//! "Did you mean …": the closest valid name to a misspelt one, for every located error that
//! lists what would be valid.

/// The candidate nearest to `word` by edit distance (case-insensitive), when it is near
/// enough to be a slip — at most a third of the word's length, and at least 2 (a swapped
/// pair of letters) — rather than a different name.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Kubernetes HPA's names for ours where spelling alone does not lead there.
pub const HPA_NAMES: &[(&str, &str)] = &[
    ("minReplicas", "min_units"),
    ("maxReplicas", "max_units"),
    ("scaleTargetRef", "pools"),
    ("stabilizationWindowSeconds", "stabilization_window_secs"),
    ("periodSeconds", "period_secs"),
];

/// The valid name `word` most likely meant: HPA's name for it, or the nearest spelling.
pub fn meant<'a>(word: &str, valid: &[&'a str]) -> Option<&'a str> {
    HPA_NAMES
        .iter()
        .find(|(hpa, _)| *hpa == word)
        .and_then(|(_, ours)| valid.iter().copied().find(|v| v == ours))
        .or_else(|| closest(word, valid.iter().copied()))
}

/// `; did you mean "x"?` for `word`, or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates).map_or(String::new(), |c| format!("; did you mean \"{c}\"?"))
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slips_are_matched_and_other_names_are_not() {
        let names = ["queue_depth", "token_work", "spot", "on-demand"];
        // (typed, expected)
        let cases = [
            ("queue_dpth", Some("queue_depth")),
            ("Queue_Depth", Some("queue_depth")),
            ("token_wrok", Some("token_work")),
            ("spto", Some("spot")),
            ("ondemand", Some("on-demand")),
            ("colour", None),
            ("kv", None),
        ];
        for (typed, want) in cases {
            assert_eq!(closest(typed, names), want, "{typed}");
        }
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("spto", names), "; did you mean \"spot\"?");
    }
}

//! "Did you mean …?" hints for misspelt keys.
//!
//! Owns: choosing the known name closest to an unknown one (edit distance, case-insensitive).

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    candidates
        .iter()
        .map(|candidate| (distance(&name, &candidate.to_ascii_lowercase()), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters, with `_` and `-` treated as the same (a common slip).
fn distance(a: &str, b: &str) -> usize {
    let normalize = |c: char| if c == '_' { '-' } else { c };
    let a: Vec<char> = a.chars().map(normalize).collect();
    let b: Vec<char> = b.chars().map(normalize).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous.get(j).copied().unwrap_or(0) + usize::from(ca != cb);
            let delete = previous.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = current.get(j).copied().unwrap_or(0) + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

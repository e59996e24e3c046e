//! `ImageOS`, the variable `setup-*` actions read to tell one runner image release from
//! another (`ubuntu22`, `ubuntu24`), derived as the Gitea runner (v3.3) derives it: from the
//! job image's tag when it names an OS release, else from the job's last `runs-on` label.
//!
//! Must not: look anything up; both inputs are what the job already has.

/// `ImageOS` for a job in `image` (`None` on the host) with `runs_on` (evaluated), or `None`
/// when neither says anything.
pub(crate) fn image_os(image: Option<&str>, runs_on: &[String]) -> Option<String> {
    if let Some(os) = image.and_then(from_image) {
        return Some(os);
    }
    let label = runs_on.iter().rev().find(|label| !label.is_empty())?;
    if label == "ubuntu-latest" {
        // A rolling label names no release; v3 keeps the historical value.
        return Some("ubuntu20".to_owned());
    }
    let joined = label.replacen('-', "", 1);
    let os = joined.split('.').next().unwrap_or_default();
    Some(os.to_owned())
}

/// `ubuntu24` from `…:ubuntu-24.04`: after some `:` with no `/` anywhere after it,
/// `ubuntu`, `win` or `macos`, an optional `-`, then digits (the first such `:` wins).
fn from_image(image: &str) -> Option<String> {
    image.match_indices(':').find_map(|(at, _)| {
        let tag = &image[at + 1..];
        if tag.contains('/') {
            return None;
        }
        ["ubuntu", "win", "macos"].iter().find_map(|family| {
            let rest = tag.strip_prefix(family)?;
            let rest = rest.strip_prefix('-').unwrap_or(rest);
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            (!digits.is_empty()).then(|| format!("{family}{digits}"))
        })
    })
}

#[cfg(test)]
mod tests;

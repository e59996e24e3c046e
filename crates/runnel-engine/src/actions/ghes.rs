//! Letting the stock artifact actions talk to Gitea: `@actions/artifact` 2.x (the library
//! inside `upload-artifact@v4`, `download-artifact@v4` and other actions that bundle it)
//! starts every client call with a guard, "if the server is not GitHub's, throw
//! `GHESNotSupportedError`". The guard reads only `GITHUB_SERVER_URL`, which must stay Gitea's
//! URL for everything else (`github.server_url`, links the actions print, API calls), while
//! Gitea does serve the artifacts v4 protocol the client would speak.
//!
//! So, when the job's server is one the guard refuses ([`toolkit_refuses`]), the JavaScript
//! files of a fetched action are rewritten as they are copied into the job
//! ([`lift_artifact_guards`]): each `if (COND) throw new …GHESNotSupportedError` becomes
//! `if (false /* runnel: … */ && (COND)) throw …`. Only that guard changes — it exists only in
//! the artifact client, so files without it are copied byte for byte — the original condition
//! stays readable next to the marker, the cached copy of the action keeps the commit's bytes,
//! and the job log names every file changed.
//!
//! Must not: do IO or touch the job environment (the job runner copies the files).

/// The marker put in front of each lifted guard.
pub const MARKER: &str = "/* runnel: Gitea serves artifacts v4 */";

/// Whether the toolkit's server check (`isGhes()` of `@actions/artifact` and `@actions/cache`)
/// calls `server_url` a GitHub Enterprise Server: true unless its host is `github.com` or
/// ends in `.ghe.com` or `.localhost` (ignoring case). An empty URL is github.com, as the
/// toolkit reads an unset `GITHUB_SERVER_URL`.
pub fn toolkit_refuses(server_url: &str) -> bool {
    let server_url = server_url.trim();
    if server_url.is_empty() {
        return false;
    }
    let host = host_of(server_url).trim_end().to_ascii_lowercase();
    !(host == "github.com" || host.ends_with(".ghe.com") || host.ends_with(".localhost"))
}

/// The host of a URL: after `scheme://` and any `user@`, before the port, path, query or
/// fragment; IPv6 literals keep their brackets.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host_port.starts_with('[') {
        return host_port
            .find(']')
            .map_or(host_port, |end| &host_port[..=end]);
    }
    host_port.split(':').next().unwrap_or_default()
}

/// A JavaScript text with its artifact guards lifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifted {
    pub text: String,
    /// How many guards were rewritten.
    pub guards: usize,
}

/// Rewrites every `if (COND) [{] throw new [qualifier.]…GHESNotSupportedError` in `text` to
/// `if (false /* runnel: … */ && (COND)) …`, or `None` when there is none (already lifted
/// guards are left alone). Works on the library's own files and on bundles made from them,
/// plain, scope-hoisted or minified (`if((0,x.isGhes)())throw new y.GHESNotSupportedError`);
/// a bundle that mangles the error class's name away is not recognised.
pub fn lift_artifact_guards(text: &str) -> Option<Lifted> {
    const ERROR: &str = "GHESNotSupportedError";
    if !text.contains(ERROR) {
        return None;
    }
    let mut conditions = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(ERROR) {
        let at = from + found;
        from = at + ERROR.len();
        if let Some(condition) = guard_condition(text, at)
            && !text[condition.clone()].contains(MARKER)
        {
            conditions.push(condition);
        }
    }
    if conditions.is_empty() {
        return None;
    }
    let mut lifted = String::with_capacity(text.len() + conditions.len() * (MARKER.len() + 12));
    let mut copied = 0;
    for condition in &conditions {
        lifted.push_str(&text[copied..condition.start]);
        lifted.push_str("false ");
        lifted.push_str(MARKER);
        lifted.push_str(" && (");
        lifted.push_str(&text[condition.clone()]);
        lifted.push(')');
        copied = condition.end;
    }
    lifted.push_str(&text[copied..]);
    Some(Lifted {
        text: lifted,
        guards: conditions.len(),
    })
}

/// For the error class name at `at`: when it is thrown directly by an `if`, the byte range of
/// that `if`'s condition (inside its parentheses).
fn guard_condition(text: &str, at: usize) -> Option<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    // The name ends the identifier; a prefix is allowed, as bundlers that hoist modules
    // into one scope rename clashing names (`errors_GHESNotSupportedError`).
    let end = at + "GHESNotSupportedError".len();
    if bytes.get(end).copied().is_some_and(is_ident) {
        return None;
    }
    // `[qualifier.]` and any prefix before the class name: identifier characters and dots.
    let mut i = at;
    while i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b'.') {
        i -= 1;
    }
    let i = keyword_before(bytes, skip_space_back(bytes, i, true)?, b"new")?;
    let throw = keyword_before(bytes, skip_space_back(bytes, i, true)?, b"throw")?;
    let mut i = skip_space_back(bytes, throw, false)?;
    if i > 0 && bytes[i - 1] == b'{' {
        i = skip_space_back(bytes, i - 1, false)?;
    }
    if i == 0 || bytes[i - 1] != b')' {
        return None;
    }
    let close = i - 1;
    // The matching `(`, within a short distance (the guard's condition is one call).
    let mut depth = 0usize;
    let mut open = None;
    let floor = close.saturating_sub(400);
    let mut j = close;
    while j > floor {
        j -= 1;
        match bytes[j] {
            b')' => depth += 1,
            b'(' if depth == 0 => {
                open = Some(j);
                break;
            }
            b'(' => depth -= 1,
            b';' | b'{' | b'}' => return None,
            _ => {}
        }
    }
    let open = open?;
    let before = skip_space_back(bytes, open, false)?;
    keyword_before(bytes, before, b"if")?;
    Some(open + 1..close)
}

/// Steps back over whitespace from `end` (exclusive); `required` asks for at least one.
fn skip_space_back(bytes: &[u8], end: usize, required: bool) -> Option<usize> {
    let mut i = end;
    while i > 0 && bytes[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    (!required || i < end).then_some(i)
}

/// The start of `word` when it ends at `end` and is a whole word.
fn keyword_before(bytes: &[u8], end: usize, word: &[u8]) -> Option<usize> {
    let start = end.checked_sub(word.len())?;
    if &bytes[start..end] != word || (start > 0 && is_ident(bytes[start - 1])) {
        return None;
    }
    Some(start)
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$'
}

/// Whether a file of an action is JavaScript the runner may lift guards in.
pub fn is_javascript(path: &str) -> bool {
    [".js", ".cjs", ".mjs"]
        .iter()
        .any(|extension| path.ends_with(extension))
}

#[cfg(test)]
mod tests {
    use super::{Lifted, lift_artifact_guards, toolkit_refuses};

    #[test]
    fn which_servers_the_toolkit_refuses() {
        let cases = [
            ("https://github.com", false),
            ("https://GitHub.com/", false),
            ("https://user@github.com:443/x", false),
            ("https://acme.ghe.com", false),
            ("http://gitea.localhost:3000", false),
            ("", false),
            ("http://127.0.0.1:3000", true),
            ("http://localhost:3000", true),
            ("https://gitea.example.com", true),
            ("https://github.com.evil.example", true),
            ("http://[::1]:3000/", true),
        ];
        for (url, refused) in cases {
            assert_eq!(toolkit_refuses(url), refused, "{url}");
        }
    }

    fn lifted(text: &str) -> Option<(String, usize)> {
        lift_artifact_guards(text).map(|Lifted { text, guards }| (text, guards))
    }

    #[test]
    fn guards_are_lifted_in_library_bundled_and_minified_shapes() {
        let library = "try {\n    if ((0, config_1.isGhes)()) {\n        throw new errors_1.GHESNotSupportedError();\n    }\n    return up();\n}";
        let expected = "try {\n    if (false /* runnel: Gitea serves artifacts v4 */ && ((0, config_1.isGhes)())) {\n        throw new errors_1.GHESNotSupportedError();\n    }\n    return up();\n}";
        assert_eq!(lifted(library), Some((expected.to_owned(), 1)));

        let minified = "try{if((0,iy.isGhes)())throw new ny.GHESNotSupportedError;return a()}catch(e){}try{if((0,iy.isGhes)())throw new ny.GHESNotSupportedError;if(b)c()}";
        let (text, guards) = lifted(minified).unwrap_or_default();
        assert_eq!(guards, 2);
        assert_eq!(
            text.matches("if(false /* runnel: Gitea serves artifacts v4 */ && ((0,iy.isGhes)()))throw new ny.GHESNotSupportedError;").count(),
            2,
            "{text}"
        );

        let hoisted = "if (config_isGhes()) {\n  throw new errors_GHESNotSupportedError();\n}";
        assert_eq!(lifted(hoisted).map(|(_, guards)| guards), Some(1));

        let esm = "if (isGhes()) throw new GHESNotSupportedError();";
        assert_eq!(
            lifted(esm).map(|(text, _)| text).as_deref(),
            Some(
                "if (false /* runnel: Gitea serves artifacts v4 */ && (isGhes())) throw new GHESNotSupportedError();"
            )
        );
    }

    #[test]
    fn other_text_is_left_alone() {
        let untouched = [
            // No guard at all.
            "function isGhes() { return true; }",
            // The class itself and its export.
            "class GHESNotSupportedError extends Error {}\nexports.GHESNotSupportedError = GHESNotSupportedError;",
            // Thrown, but not directly by an `if`.
            "function f() { throw new errors_1.GHESNotSupportedError(); }",
            "if (a) { b(); throw new GHESNotSupportedError(); }",
            // A different error class whose name ends the same way.
            "if (x()) throw new MyGHESNotSupportedErrorX();",
            // Already lifted.
            "if (false /* runnel: Gitea serves artifacts v4 */ && (isGhes())) throw new GHESNotSupportedError();",
        ];
        for text in untouched {
            assert_eq!(lifted(text), None, "{text}");
        }
    }

    #[test]
    fn lifting_twice_changes_nothing_more() {
        let text = "if ((0, c.isGhes)()) {\n throw new e.GHESNotSupportedError();\n}";
        let (once, _) = lifted(text).unwrap_or_default();
        assert_eq!(lifted(&once), None);
    }
}

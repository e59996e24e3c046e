//! Secret masking: replaces every registered value, and the encodings in which values leak in
//! practice, with `***`.
//!
//! One [`Masker`] serves a whole job: the job's secrets are added before the first step and
//! `::add-mask::` adds more while steps run. It is a handle: clones share the same set of
//! values (an `Arc<Mutex<..>>` inside), so the job runner keeps one and gives each step's
//! [`super::StepOutput`] a clone; a value added by one step is masked in every later line.
//!
//! Matching runs on whole lines (after `lines` has joined partial writes), with one
//! Aho-Corasick automaton over all values, rebuilt lazily after an `add`. Every occurrence of
//! every value is found, overlapping ones included, and overlapping or touching ranges are
//! merged before replacing: a secret containing another, or two secrets sharing characters,
//! never leave a visible fragment.
//!
//! Must not: log the values it holds (not even at trace level).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use aho_corasick::AhoCorasick;

/// What a masked value is replaced with.
const MASK: &str = "***";

/// Shared, growable set of secret values. Cheap to clone; clones share state.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    patterns: BTreeSet<String>,
    /// `None` after an `add`, until the next `mask` rebuilds it.
    automaton: Option<Arc<Matcher>>,
}

#[derive(Debug)]
enum Matcher {
    Automaton(AhoCorasick),
    /// Used only if the automaton cannot be built (absurdly many or long values): slower, but
    /// nothing goes out unmasked.
    Naive(Vec<String>),
}

impl Masker {
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Registers a secret. A multi-line value is registered line by line (output is masked per
    /// line, so the whole value could never match). Lines that are empty, only whitespace or a
    /// single character are ignored: masking them would blank out ordinary output. (The runner
    /// refuses empty and whitespace-only `add-mask` values with a warning; semantics.md says
    /// nothing about one-character values, so ignoring those is our choice.) For each line,
    /// its JSON-string form (as `serde_json`/`JSON.stringify` write it, non-ASCII kept),
    /// base64 form and URL-encoded form are registered too.
    ///
    /// Base64 is registered as the encoding of the value alone (with padding) and, as
    /// GitHub's runner does, in the three forms the value takes inside a longer encoded text
    /// (`user:secret` in a Basic `Authorization` header, a token inside encoded JSON): the
    /// value at each offset modulo 3, without the characters its neighbours change
    /// ([`base64_inner_forms`]).
    pub fn add(&self, secret: &str) {
        let mut added = Vec::new();
        for line in secret.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.chars().nth(1).is_none() {
                continue;
            }
            added.push(line.to_owned());
            added.push(json_escape(line));
            added.push(base64(line.as_bytes()));
            added.extend(base64_inner_forms(line.as_bytes()));
            added.push(url_encode(line));
        }
        if added.is_empty() {
            return;
        }
        let mut state = self.lock();
        let before = state.patterns.len();
        state.patterns.extend(added);
        if state.patterns.len() != before {
            state.automaton = None;
        }
    }

    /// Whether no value is registered (so masking is a no-op).
    pub fn is_empty(&self) -> bool {
        self.lock().patterns.is_empty()
    }

    /// Replaces every registered value in `text` with `***`.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(matcher) = self.matcher() else {
            return Cow::Borrowed(text);
        };
        let ranges = match matcher.as_ref() {
            Matcher::Automaton(automaton) => merge(
                automaton
                    .find_overlapping_iter(text)
                    .map(|found| (found.start(), found.end())),
            ),
            Matcher::Naive(patterns) => merge(patterns.iter().flat_map(|pattern| {
                text.match_indices(pattern.as_str())
                    .map(|(start, found)| (start, start + found.len()))
            })),
        };
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut masked = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end) in ranges {
            masked.push_str(text.get(copied..start).unwrap_or_default());
            masked.push_str(MASK);
            copied = end;
        }
        masked.push_str(text.get(copied..).unwrap_or_default());
        Cow::Owned(masked)
    }

    fn matcher(&self) -> Option<Arc<Matcher>> {
        let mut state = self.lock();
        if state.patterns.is_empty() {
            return None;
        }
        if let Some(matcher) = &state.automaton {
            return Some(Arc::clone(matcher));
        }
        let matcher = match AhoCorasick::new(&state.patterns) {
            Ok(automaton) => Matcher::Automaton(automaton),
            Err(error) => {
                tracing::warn!(%error, "secret masker falls back to plain search");
                Matcher::Naive(state.patterns.iter().cloned().collect())
            }
        };
        let matcher = Arc::new(matcher);
        state.automaton = Some(Arc::clone(&matcher));
        Some(matcher)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated in a way that
        // unmasks anything, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sorts byte ranges and merges those that overlap or touch. Matches come from valid UTF-8
/// patterns found in valid UTF-8, so every bound is a char boundary.
fn merge(ranges: impl Iterator<Item = (usize, usize)>) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = ranges.collect();
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// The value as it appears inside a JSON string literal (what `toJSON` or a JSON log writes).
fn json_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\u{8}' => escaped.push_str("\\b"),
            '\u{c}' => escaped.push_str("\\f"),
            c if u32::from(c) < 0x20 => escaped.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The shortest inner forms worth masking: shorter ones would blank out ordinary text.
const MIN_INNER_FORM: usize = 6;

/// What `value` looks like inside the base64 of a longer text, for each of the three offsets
/// it can start at: the characters that depend on the value's bytes alone (those sharing a
/// group with a neighbour's bytes are cut; a preceding 1 or 2 bytes change the first 2 or 3
/// characters, a following byte the last one of a partial group).
fn base64_inner_forms(value: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    for shift in 0..3usize {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(value);
        let encoded = base64(&shifted);
        let unpadded = encoded.trim_end_matches('=');
        let skip = [0, 2, 3][shift];
        let end = unpadded.len() - usize::from(shifted.len() % 3 != 0);
        if let Some(form) = unpadded.get(skip..end)
            && form.len() >= MIN_INNER_FORM
        {
            forms.push(form.to_owned());
        }
    }
    forms
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let symbol = |index: u32| char::from(ALPHABET[(index & 63) as usize]);
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b0 = u32::from(group.first().copied().unwrap_or(0));
        let b1 = u32::from(group.get(1).copied().unwrap_or(0));
        let b2 = u32::from(group.get(2).copied().unwrap_or(0));
        let bits = (b0 << 16) | (b1 << 8) | b2;
        encoded.push(symbol(bits >> 18));
        encoded.push(symbol(bits >> 12));
        encoded.push(if group.len() > 1 {
            symbol(bits >> 6)
        } else {
            '='
        });
        encoded.push(if group.len() > 2 { symbol(bits) } else { '=' });
    }
    encoded
}

/// Percent-encoding of everything but RFC 3986 unreserved characters, upper-case hex (what
/// `encodeURIComponent`, `curl --data-urlencode` and most URL builders produce for secrets).
fn url_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

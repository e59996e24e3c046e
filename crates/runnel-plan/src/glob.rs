//! GitHub's filter patterns for `branches`, `tags` and `paths` (docs: "Filter pattern cheat
//! sheet"), compiled to a small matcher of our own.
//!
//! Owns: pattern syntax (`*`, `**`, `**/`, `?`/`+` on the preceding atom, `[a-z]` classes, `\`
//! escapes, a leading `!`) and the ordered evaluation of pattern lists (last match decides).
//! Must not: know which event or filter a list belongs to (see `trigger`).
//!
//! No regex crate: the language is tiny, and matching it with a memoised walk keeps the
//! worst case at tokens × chars instead of a dependency and its compile-time cost.

use std::fmt;

/// A compiled filter pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPattern {
    source: String,
    negated: bool,
    tokens: Vec<Token>,
}

/// Why a pattern could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("filter pattern `{pattern}` has an unclosed `[`")]
    UnclosedClass { pattern: String },
    #[error("filter pattern `{pattern}` has an empty `[]` class")]
    EmptyClass { pattern: String },
    #[error("filter pattern `{pattern}` ends with a lone `\\`")]
    TrailingEscape { pattern: String },
    #[error("filter pattern `{pattern}` has a reversed range `{from}-{to}`")]
    ReversedRange {
        pattern: String,
        from: char,
        to: char,
    },
    #[error("filter pattern `{pattern}` is empty")]
    Empty { pattern: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Char(char),
    /// Inclusive ranges; a single char `c` is `(c, c)`.
    Class(Vec<(char, char)>),
    /// `*`: any run of chars without `/`.
    Star,
    /// `**` not followed by `/`: any run of chars.
    DoubleStar,
    /// `**/`: empty, or any run of chars ending in `/` (zero or more whole directories), so
    /// `docs/**/*.md` matches `docs/README.md` as the cheat sheet requires.
    DoubleStarSlash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    One,
    /// `?` after an atom.
    ZeroOrOne,
    /// `+` after an atom.
    OneOrMore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    atom: Atom,
    repeat: Repeat,
}

impl FilterPattern {
    /// Compiles one pattern as written in the workflow (a leading `!` negates it).
    pub fn new(pattern: &str) -> Result<FilterPattern, PatternError> {
        let (negated, body) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if body.is_empty() {
            return Err(PatternError::Empty {
                pattern: pattern.to_owned(),
            });
        }
        let tokens = compile(pattern, body)?;
        Ok(FilterPattern {
            source: pattern.to_owned(),
            negated,
            tokens,
        })
    }

    /// The pattern as written, including a leading `!`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True for `!pattern`.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// Whether the pattern body (ignoring negation) matches the whole of `text`.
    pub fn matches(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        Matcher::new(&self.tokens, &chars).run()
    }
}

impl fmt::Display for FilterPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// An ordered list of patterns as one filter key holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterList {
    patterns: Vec<FilterPattern>,
}

impl FilterList {
    /// Compiles every pattern; all errors are returned, not only the first.
    pub fn new(patterns: &[String]) -> Result<FilterList, Vec<PatternError>> {
        let mut compiled = Vec::new();
        let mut errors = Vec::new();
        for pattern in patterns {
            match FilterPattern::new(pattern) {
                Ok(p) => compiled.push(p),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(FilterList { patterns: compiled })
        } else {
            Err(errors)
        }
    }

    /// Patterns evaluated in order, the last one that matches decides: a positive match
    /// includes, a `!` match excludes. Nothing matching (and a list of only negations) means
    /// no match.
    pub fn matches(&self, text: &str) -> bool {
        let mut included = false;
        for pattern in &self.patterns {
            if pattern.matches(text) {
                included = !pattern.negated;
            }
        }
        included
    }

    pub fn patterns(&self) -> &[FilterPattern] {
        &self.patterns
    }
}

fn compile(pattern: &str, body: &str) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = body.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        let atom = match c {
            '*' => {
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    // Further stars add nothing: `***` is `**`.
                    while chars.get(i) == Some(&'*') {
                        i += 1;
                    }
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                        Atom::DoubleStarSlash
                    } else {
                        Atom::DoubleStar
                    }
                } else {
                    Atom::Star
                }
            }
            '?' | '+' => {
                let repeat = if c == '?' {
                    Repeat::ZeroOrOne
                } else {
                    Repeat::OneOrMore
                };
                match tokens.last_mut() {
                    // A quantifier needs a plain preceding atom; after a wildcard it changes
                    // nothing (`*` already matches zero or more), and at the start or after
                    // another quantifier it can only be meant literally.
                    Some(last) if last.repeat == Repeat::One => {
                        if matches!(last.atom, Atom::Char(_) | Atom::Class(_)) {
                            last.repeat = repeat;
                        }
                        continue;
                    }
                    _ => Atom::Char(c),
                }
            }
            '[' => {
                let (class, next) = compile_class(pattern, &chars, i)?;
                i = next;
                class
            }
            '\\' => {
                let escaped =
                    chars
                        .get(i)
                        .copied()
                        .ok_or_else(|| PatternError::TrailingEscape {
                            pattern: pattern.to_owned(),
                        })?;
                i += 1;
                Atom::Char(escaped)
            }
            other => Atom::Char(other),
        };
        tokens.push(Token {
            atom,
            repeat: Repeat::One,
        });
    }
    Ok(tokens)
}

/// Compiles a `[...]` class whose content starts at `start`; returns the atom and the index
/// after the closing `]`.
fn compile_class(
    pattern: &str,
    chars: &[char],
    start: usize,
) -> Result<(Atom, usize), PatternError> {
    let mut ranges = Vec::new();
    let mut i = start;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(PatternError::UnclosedClass {
                pattern: pattern.to_owned(),
            });
        };
        i += 1;
        let from = match c {
            ']' => break,
            '\\' => {
                let escaped =
                    chars
                        .get(i)
                        .copied()
                        .ok_or_else(|| PatternError::TrailingEscape {
                            pattern: pattern.to_owned(),
                        })?;
                i += 1;
                escaped
            }
            other => other,
        };
        // `a-z` is a range unless the `-` is the last char before `]`.
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let mut to_index = i + 1;
            let mut to = chars.get(to_index).copied().unwrap_or(from);
            if to == '\\' {
                to_index += 1;
                to = chars
                    .get(to_index)
                    .copied()
                    .ok_or_else(|| PatternError::TrailingEscape {
                        pattern: pattern.to_owned(),
                    })?;
            }
            if to < from {
                return Err(PatternError::ReversedRange {
                    pattern: pattern.to_owned(),
                    from,
                    to,
                });
            }
            ranges.push((from, to));
            i = to_index + 1;
        } else {
            ranges.push((from, from));
        }
    }
    if ranges.is_empty() {
        return Err(PatternError::EmptyClass {
            pattern: pattern.to_owned(),
        });
    }
    Ok((Atom::Class(ranges), i))
}

/// Memoised matcher: `memo[t * (n + 1) + p]` caches whether tokens `t..` match chars `p..`.
struct Matcher<'a> {
    tokens: &'a [Token],
    chars: &'a [char],
    memo: Vec<Option<bool>>,
}

impl<'a> Matcher<'a> {
    fn new(tokens: &'a [Token], chars: &'a [char]) -> Matcher<'a> {
        let size = (tokens.len() + 1) * (chars.len() + 1);
        Matcher {
            tokens,
            chars,
            memo: vec![None; size],
        }
    }

    fn run(&mut self) -> bool {
        self.match_at(0, 0)
    }

    fn match_at(&mut self, t: usize, p: usize) -> bool {
        let key = t * (self.chars.len() + 1) + p;
        if let Some(Some(done)) = self.memo.get(key) {
            return *done;
        }
        let result = self.compute(t, p);
        if let Some(slot) = self.memo.get_mut(key) {
            *slot = Some(result);
        }
        result
    }

    fn compute(&mut self, t: usize, p: usize) -> bool {
        let Some(token) = self.tokens.get(t) else {
            return p == self.chars.len();
        };
        let rest = self.chars.get(p..).unwrap_or(&[]);
        match &token.atom {
            Atom::Star => {
                // Every end position up to the next `/`.
                let run = rest.iter().take_while(|&&c| c != '/').count();
                (0..=run).any(|k| self.match_at(t + 1, p + k))
            }
            Atom::DoubleStar => (0..=rest.len()).any(|k| self.match_at(t + 1, p + k)),
            Atom::DoubleStarSlash => {
                if self.match_at(t + 1, p) {
                    return true;
                }
                let slashes: Vec<usize> = rest
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '/')
                    .map(|(k, _)| k + 1)
                    .collect();
                slashes.into_iter().any(|k| self.match_at(t + 1, p + k))
            }
            atom => {
                let single = |c: char| atom_matches(atom, c);
                match token.repeat {
                    Repeat::One => {
                        rest.first().is_some_and(|&c| single(c)) && self.match_at(t + 1, p + 1)
                    }
                    Repeat::ZeroOrOne => {
                        self.match_at(t + 1, p)
                            || (rest.first().is_some_and(|&c| single(c))
                                && self.match_at(t + 1, p + 1))
                    }
                    Repeat::OneOrMore => {
                        let run = rest.iter().take_while(|&&c| single(c)).count();
                        (1..=run).any(|k| self.match_at(t + 1, p + k))
                    }
                }
            }
        }
    }
}

fn atom_matches(atom: &Atom, c: char) -> bool {
    match atom {
        Atom::Char(expected) => *expected == c,
        Atom::Class(ranges) => ranges.iter().any(|&(from, to)| from <= c && c <= to),
        Atom::Star => c != '/',
        Atom::DoubleStar | Atom::DoubleStarSlash => true,
    }
}

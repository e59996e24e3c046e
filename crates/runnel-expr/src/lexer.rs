//! The lexer: turns expression text into tokens one at a time and, like the runner's
//! `LexicalAnalyzer`, decides from the previous token whether each token may appear here (an
//! illegal one becomes `Unexpected`), and tracks unclosed `(`, `[` and function calls.
//!
//! Must not: build trees or know which names exist; positions are char indices.

use crate::number::parse_number;

/// Binary and unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Not,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `(` grouping.
    StartGroup,
    StartIndex,
    /// `(` after a function name.
    StartParameters,
    EndGroup,
    EndIndex,
    EndParameters,
    Separator,
    Dereference,
    Wildcard,
    Operator(Op),
    Null,
    Boolean,
    Number,
    String,
    PropertyName,
    Function,
    NamedValue,
    /// Illegal here. `malformed` is true when no token could be formed at all (GitHub's test
    /// data calls those lexing errors), false when a good token is out of place.
    Unexpected {
        malformed: bool,
    },
}

impl Kind {
    pub(crate) fn is_operator(self) -> bool {
        matches!(
            self,
            Kind::StartGroup
                | Kind::StartIndex
                | Kind::StartParameters
                | Kind::EndGroup
                | Kind::EndIndex
                | Kind::EndParameters
                | Kind::Separator
                | Kind::Dereference
                | Kind::Operator(_)
        )
    }
}

/// The parsed value of a literal token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenValue {
    None,
    Bool(bool),
    Number(f64),
    String(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    /// Char range in the expression.
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) value: TokenValue,
}

pub(crate) struct Lexer<'a> {
    chars: &'a [char],
    index: usize,
    last: Option<Kind>,
    /// Open `StartGroup` / `StartIndex` / `StartParameters`, innermost last.
    unclosed: Vec<Kind>,
}

/// Chars that end a number or keyword token (`.` too, except inside numbers).
fn is_boundary(c: char) -> bool {
    matches!(
        c,
        '(' | '[' | ')' | ']' | ',' | '.' | '!' | '>' | '<' | '=' | '&' | '|'
    ) || c.is_whitespace()
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(chars: &'a [char]) -> Lexer<'a> {
        Lexer {
            chars,
            index: 0,
            last: None,
            unclosed: Vec::new(),
        }
    }

    pub(crate) fn has_unclosed(&self) -> bool {
        !self.unclosed.is_empty()
    }

    fn peek(&self, at: usize) -> Option<char> {
        self.chars.get(at).copied()
    }

    pub(crate) fn next_token(&mut self) -> Option<Token> {
        while self.peek(self.index).is_some_and(char::is_whitespace) {
            self.index += 1;
        }
        let c = self.peek(self.index)?;
        let start = self.index;
        let token = match c {
            '(' => {
                self.index += 1;
                let kind = if self.last == Some(Kind::Function) {
                    Kind::StartParameters
                } else {
                    Kind::StartGroup
                };
                self.create(kind, start, TokenValue::None)
            }
            '[' => {
                self.index += 1;
                self.create(Kind::StartIndex, start, TokenValue::None)
            }
            ')' => {
                self.index += 1;
                let kind = if self.unclosed.last() == Some(&Kind::StartParameters) {
                    Kind::EndParameters
                } else {
                    Kind::EndGroup
                };
                self.create(kind, start, TokenValue::None)
            }
            ']' => {
                self.index += 1;
                self.create(Kind::EndIndex, start, TokenValue::None)
            }
            ',' => {
                self.index += 1;
                self.create(Kind::Separator, start, TokenValue::None)
            }
            '*' => {
                self.index += 1;
                self.create(Kind::Wildcard, start, TokenValue::None)
            }
            '\'' => self.read_string(),
            '!' | '>' | '<' | '=' | '&' | '|' => self.read_operator(),
            '.' => {
                // A `.` starts a number where an operand is expected, else it dereferences.
                let number_here = matches!(
                    self.last,
                    None | Some(
                        Kind::Separator
                            | Kind::StartGroup
                            | Kind::StartIndex
                            | Kind::StartParameters
                            | Kind::Operator(_)
                    )
                );
                if number_here {
                    self.read_number()
                } else {
                    self.index += 1;
                    self.create(Kind::Dereference, start, TokenValue::None)
                }
            }
            '-' | '+' | '0'..='9' => self.read_number(),
            _ => self.read_keyword(),
        };
        self.last = Some(token.kind);
        Some(token)
    }

    fn malformed(&self, start: usize) -> Token {
        Token {
            kind: Kind::Unexpected { malformed: true },
            start,
            end: self.index,
            value: TokenValue::None,
        }
    }

    fn read_number(&mut self) -> Token {
        let start = self.index;
        self.index += 1;
        while self
            .peek(self.index)
            .is_some_and(|c| c == '.' || !is_boundary(c))
        {
            self.index += 1;
        }
        let text: String = self
            .chars
            .get(start..self.index)
            .unwrap_or_default()
            .iter()
            .collect();
        let number = parse_number(&text);
        if number.is_nan() {
            return self.malformed(start);
        }
        self.create(Kind::Number, start, TokenValue::Number(number))
    }

    fn read_keyword(&mut self) -> Token {
        let start = self.index;
        self.index += 1;
        while self.peek(self.index).is_some_and(|c| !is_boundary(c)) {
            self.index += 1;
        }
        let word = self.chars.get(start..self.index).unwrap_or_default();
        let legal = word
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
            && word
                .iter()
                .skip(1)
                .all(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-');
        if !legal {
            return self.malformed(start);
        }
        // After `.` every word is a property name, even `true` or `null`.
        if self.last == Some(Kind::Dereference) {
            return self.create(Kind::PropertyName, start, TokenValue::None);
        }
        let word: String = word.iter().collect();
        match word.as_str() {
            "null" => return self.create(Kind::Null, start, TokenValue::None),
            "true" => return self.create(Kind::Boolean, start, TokenValue::Bool(true)),
            "false" => return self.create(Kind::Boolean, start, TokenValue::Bool(false)),
            "NaN" => return self.create(Kind::Number, start, TokenValue::Number(f64::NAN)),
            "Infinity" => {
                return self.create(Kind::Number, start, TokenValue::Number(f64::INFINITY));
            }
            _ => {}
        }
        let mut ahead = self.index;
        while self.peek(ahead).is_some_and(char::is_whitespace) {
            ahead += 1;
        }
        let kind = if self.peek(ahead) == Some('(') {
            Kind::Function
        } else {
            Kind::NamedValue
        };
        self.create(kind, start, TokenValue::None)
    }

    fn read_string(&mut self) -> Token {
        let start = self.index;
        self.index += 1;
        let mut text = String::new();
        let mut closed = false;
        while let Some(c) = self.peek(self.index) {
            self.index += 1;
            if c == '\'' {
                if self.peek(self.index) != Some('\'') {
                    closed = true;
                    break;
                }
                // `''` is one quote; every pair is unescaped (the npm package only did the first).
                self.index += 1;
            }
            text.push(c);
        }
        if !closed {
            return self.malformed(start);
        }
        self.create(Kind::String, start, TokenValue::String(text))
    }

    fn read_operator(&mut self) -> Token {
        let start = self.index;
        let first = self.peek(start);
        let second = self.peek(start + 1);
        let two = match (first, second) {
            (Some('!'), Some('=')) => Some(Op::NotEqual),
            (Some('>'), Some('=')) => Some(Op::GreaterOrEqual),
            (Some('<'), Some('=')) => Some(Op::LessOrEqual),
            (Some('='), Some('=')) => Some(Op::Equal),
            (Some('&'), Some('&')) => Some(Op::And),
            (Some('|'), Some('|')) => Some(Op::Or),
            _ => None,
        };
        if let Some(op) = two {
            self.index += 2;
            return self.create(Kind::Operator(op), start, TokenValue::None);
        }
        self.index += 1;
        let one = match first {
            Some('!') => Some(Op::Not),
            Some('>') => Some(Op::Greater),
            Some('<') => Some(Op::Less),
            _ => None,
        };
        if let Some(op) = one {
            return self.create(Kind::Operator(op), start, TokenValue::None);
        }
        // A lone `=`, `&` or `|`: the bad token runs to the next boundary (`=2` in `1 =2`).
        while self.peek(self.index).is_some_and(|c| !is_boundary(c)) {
            self.index += 1;
        }
        self.malformed(start)
    }

    /// Builds a token if it may follow the previous one, else an `Unexpected` token.
    fn create(&mut self, kind: Kind, start: usize, value: TokenValue) -> Token {
        let unexpected = Token {
            kind: Kind::Unexpected { malformed: false },
            start,
            end: self.index,
            value: TokenValue::None,
        };
        if !is_legal_after(kind, self.last) {
            return unexpected;
        }
        match kind {
            Kind::StartGroup | Kind::StartIndex | Kind::StartParameters => self.unclosed.push(kind),
            Kind::EndGroup | Kind::EndIndex | Kind::EndParameters => {
                let opener = match kind {
                    Kind::EndGroup => Kind::StartGroup,
                    Kind::EndIndex => Kind::StartIndex,
                    _ => Kind::StartParameters,
                };
                if self.unclosed.last() != Some(&opener) {
                    return unexpected;
                }
                self.unclosed.pop();
            }
            Kind::Separator if self.unclosed.last() != Some(&Kind::StartParameters) => {
                return unexpected;
            }
            _ => {}
        }
        Token {
            kind,
            start,
            end: self.index,
            value,
        }
    }
}

/// The runner's table of which token may follow which (`None` = first token).
fn is_legal_after(kind: Kind, last: Option<Kind>) -> bool {
    // Where an operand may start: first, or after `,` `(` `[` or an operator.
    let operand_start = matches!(
        last,
        None | Some(
            Kind::Separator
                | Kind::StartGroup
                | Kind::StartParameters
                | Kind::StartIndex
                | Kind::Operator(_)
        )
    );
    // Where an operand just ended.
    let operand_end = matches!(
        last,
        Some(
            Kind::EndGroup
                | Kind::EndParameters
                | Kind::EndIndex
                | Kind::Wildcard
                | Kind::Null
                | Kind::Boolean
                | Kind::Number
                | Kind::String
                | Kind::PropertyName
                | Kind::NamedValue
        )
    );
    // Something that can be indexed or dereferenced just ended.
    let indexable_end = matches!(
        last,
        Some(
            Kind::EndGroup
                | Kind::EndParameters
                | Kind::EndIndex
                | Kind::Wildcard
                | Kind::PropertyName
                | Kind::NamedValue
        )
    );
    match kind {
        Kind::StartGroup | Kind::Operator(Op::Not) => operand_start,
        Kind::StartIndex | Kind::Dereference => indexable_end,
        Kind::StartParameters => last == Some(Kind::Function),
        Kind::EndGroup | Kind::EndIndex | Kind::Separator | Kind::Operator(_) => operand_end,
        Kind::EndParameters => operand_end || last == Some(Kind::StartParameters),
        Kind::Wildcard => matches!(last, Some(Kind::StartIndex | Kind::Dereference)),
        Kind::Null
        | Kind::Boolean
        | Kind::Number
        | Kind::String
        | Kind::Function
        | Kind::NamedValue => operand_start,
        Kind::PropertyName => last == Some(Kind::Dereference),
        Kind::Unexpected { .. } => false,
    }
}

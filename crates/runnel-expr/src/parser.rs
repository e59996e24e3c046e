//! The parser: the runner's operator-precedence (shunting-yard) algorithm over the lexer's
//! tokens, so that trees, `&&`/`||` flattening, depth counting and every error message and
//! position match GitHub.
//!
//! Invariants: no recursion (deep input cannot overflow the stack); a node deeper than
//! `MAX_DEPTH` is replaced by a placeholder as soon as it is built and reported once parsing
//! has otherwise succeeded, which is when the runner checks depth.

use crate::ast::{Call, CompareOp, Node};
use crate::functions::Function;
use crate::lexer::{Kind, Lexer, Op, Token, TokenValue};
use crate::value::{Value, eq_ignore_case};
use crate::{MAX_DEPTH, MAX_LENGTH, ParseError, ParseErrorKind, ParseOptions};

/// The runner's error descriptions.
#[derive(Clone, Copy)]
enum Problem {
    UnexpectedSymbol,
    UnexpectedEnd,
    UnrecognizedFunction,
    UnrecognizedNamedValue,
    TooFewParameters,
    TooManyParameters,
    EvenParameters,
}

impl Problem {
    fn description(self) -> &'static str {
        match self {
            Problem::UnexpectedSymbol => "Unexpected symbol",
            Problem::UnexpectedEnd => "Unexpected end of expression",
            Problem::UnrecognizedFunction => "Unrecognized function",
            Problem::UnrecognizedNamedValue => "Unrecognized named-value",
            Problem::TooFewParameters => "Too few parameters supplied",
            Problem::TooManyParameters => "Too many parameters supplied",
            Problem::EvenParameters => {
                "Even number of parameters supplied, requires an odd number of parameters"
            }
        }
    }
}

/// An operand and the depth of its tree.
struct Operand {
    node: Node,
    depth: usize,
}

/// An operator waiting on the stack (closers are never pushed: they are resolved at once).
#[derive(Clone, Copy)]
struct Pending {
    kind: Kind,
    start: usize,
    end: usize,
}

struct Parser<'a> {
    source: &'a str,
    chars: &'a [char],
    options: &'a ParseOptions,
    operands: Vec<Operand>,
    operators: Vec<Pending>,
    /// Set when some node exceeded `MAX_DEPTH`.
    too_deep: bool,
}

/// The tree and its depth, or `None` for an expression without tokens.
pub(crate) fn parse(
    source: &str,
    options: &ParseOptions,
) -> Result<Option<(Node, usize)>, ParseError> {
    if source.encode_utf16().count() > MAX_LENGTH {
        return Err(limit_error(format!(
            "Exceeded max expression length {MAX_LENGTH}"
        )));
    }
    let chars: Vec<char> = source.chars().collect();
    let mut parser = Parser {
        source,
        chars: &chars,
        options,
        operands: Vec::new(),
        operators: Vec::new(),
        too_deep: false,
    };
    parser.run()
}

fn limit_error(message: String) -> ParseError {
    ParseError {
        kind: ParseErrorKind::Parsing,
        message,
        offset: 0,
    }
}

fn precedence(kind: Kind) -> u8 {
    match kind {
        Kind::StartGroup => 20,
        Kind::StartIndex | Kind::StartParameters | Kind::Dereference => 19,
        Kind::Operator(Op::Not) => 16,
        Kind::Operator(Op::Greater | Op::GreaterOrEqual | Op::Less | Op::LessOrEqual) => 11,
        Kind::Operator(Op::Equal | Op::NotEqual) => 10,
        Kind::Operator(Op::And) => 6,
        Kind::Operator(Op::Or) => 5,
        Kind::EndGroup | Kind::EndIndex | Kind::EndParameters | Kind::Separator => 1,
        _ => 0,
    }
}

/// Left-to-right operators flush the stack before being pushed; `(` and `!` do not.
fn is_left_to_right(kind: Kind) -> bool {
    kind.is_operator() && !matches!(kind, Kind::StartGroup | Kind::Operator(Op::Not))
}

impl Parser<'_> {
    fn run(&mut self) -> Result<Option<(Node, usize)>, ParseError> {
        let chars = self.chars;
        let mut lexer = Lexer::new(chars);
        let mut last: Option<Token> = None;
        while let Some(token) = lexer.next_token() {
            match token.kind {
                Kind::Unexpected { malformed } => {
                    let kind = if malformed {
                        ParseErrorKind::Lexing
                    } else {
                        ParseErrorKind::Parsing
                    };
                    return Err(self.error(kind, Problem::UnexpectedSymbol, &token));
                }
                kind if kind.is_operator() => self.push_operator(&token, last.as_ref())?,
                _ => self.push_operand(token.clone())?,
            }
            last = Some(token);
        }
        let Some(last) = last else {
            return Ok(None);
        };
        if !self.operators.is_empty() {
            let dangling = match last.kind {
                Kind::EndGroup | Kind::EndIndex | Kind::EndParameters => false,
                Kind::Function => true,
                kind => kind.is_operator(),
            };
            if dangling || lexer.has_unclosed() {
                return Err(self.error(ParseErrorKind::Parsing, Problem::UnexpectedEnd, &last));
            }
        }
        while !self.operators.is_empty() {
            self.flush_top(&last)?;
        }
        let root = self.operands.pop();
        match root {
            Some(root) if self.operands.is_empty() => {
                if self.too_deep {
                    return Err(limit_error(format!(
                        "Exceeded max expression depth {MAX_DEPTH}"
                    )));
                }
                Ok(Some((root.node, root.depth)))
            }
            _ => Err(self.error(ParseErrorKind::Parsing, Problem::UnexpectedEnd, &last)),
        }
    }

    /// GitHub's message: `<description>: '<token>'. Located at position <1-based> within
    /// expression: <expression>`. Positions count UTF-16 units as .NET does; `offset` is chars.
    fn error(&self, kind: ParseErrorKind, problem: Problem, token: &Token) -> ParseError {
        self.error_at(kind, problem, token.start, token.end)
    }

    fn error_at(
        &self,
        kind: ParseErrorKind,
        problem: Problem,
        start: usize,
        end: usize,
    ) -> ParseError {
        let raw: String = self
            .chars
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .collect();
        let position: usize = self
            .chars
            .get(..start)
            .unwrap_or_default()
            .iter()
            .map(|c| c.len_utf16())
            .sum();
        ParseError {
            kind,
            message: format!(
                "{}: '{raw}'. Located at position {} within expression: {}",
                problem.description(),
                position + 1,
                self.source
            ),
            offset: start,
        }
    }

    fn push_operand(&mut self, token: Token) -> Result<(), ParseError> {
        let raw: String = self
            .chars
            .get(token.start..token.end)
            .unwrap_or_default()
            .iter()
            .collect();
        let node = match token.kind {
            Kind::Function => match Function::lookup(&raw, self.options) {
                Some(function) => Node::Call(Call {
                    function,
                    name: raw,
                    args: Vec::new(),
                }),
                None => {
                    return Err(self.error(
                        ParseErrorKind::Parsing,
                        Problem::UnrecognizedFunction,
                        &token,
                    ));
                }
            },
            Kind::NamedValue => {
                if !self
                    .options
                    .named_values
                    .iter()
                    .any(|name| eq_ignore_case(name, &raw))
                {
                    return Err(self.error(
                        ParseErrorKind::Parsing,
                        Problem::UnrecognizedNamedValue,
                        &token,
                    ));
                }
                Node::NamedValue(raw)
            }
            Kind::Wildcard => Node::Wildcard,
            Kind::PropertyName => Node::Literal(Value::String(raw)),
            _ => Node::Literal(match token.value {
                TokenValue::None => Value::Null,
                TokenValue::Bool(b) => Value::Bool(b),
                TokenValue::Number(n) => Value::Number(n),
                TokenValue::String(s) => Value::String(s),
            }),
        };
        self.operands.push(Operand { node, depth: 1 });
        Ok(())
    }

    fn push_operator(&mut self, token: &Token, last: Option<&Token>) -> Result<(), ParseError> {
        if is_left_to_right(token.kind) {
            let own = precedence(token.kind);
            while let Some(top) = self.operators.last() {
                let barrier = matches!(
                    top.kind,
                    Kind::StartGroup | Kind::StartIndex | Kind::StartParameters | Kind::Separator
                );
                if barrier || own > precedence(top.kind) {
                    break;
                }
                self.flush_top(token)?;
            }
        }
        match token.kind {
            Kind::EndGroup => {
                self.pop_operator(Kind::StartGroup, token)?;
            }
            Kind::EndIndex => {
                self.pop_operator(Kind::StartIndex, token)?;
                let (left, right) = self.pop_pair(token)?;
                self.push_node(
                    Node::Index(Box::new(left.node), Box::new(right.node)),
                    &[left.depth, right.depth],
                );
            }
            Kind::EndParameters => self.close_call(token, last)?,
            _ => self.operators.push(Pending {
                kind: token.kind,
                start: token.start,
                end: token.end,
            }),
        }
        Ok(())
    }

    /// `)` of a call: gathers the arguments, attaches them and checks the arity.
    fn close_call(&mut self, token: &Token, last: Option<&Token>) -> Result<(), ParseError> {
        let mut args = Vec::new();
        if last.map(|t| t.kind) != Some(Kind::StartParameters) {
            let mut count = 1;
            while self
                .operators
                .last()
                .is_some_and(|top| top.kind == Kind::Separator)
            {
                self.operators.pop();
                count += 1;
            }
            if self.operands.len() < count {
                return Err(self.internal(token));
            }
            args = self.operands.split_off(self.operands.len() - count);
        }
        let open = self.pop_operator(Kind::StartParameters, token)?;
        let Some(Operand {
            node: Node::Call(mut call),
            ..
        }) = self.operands.pop()
        else {
            return Err(self.internal(token));
        };
        let (min, max) = call.function.arity(self.options);
        let problem = if args.len() < min {
            Some(Problem::TooFewParameters)
        } else if args.len() > max {
            Some(Problem::TooManyParameters)
        } else if call.function == Function::Case && args.len().is_multiple_of(2) {
            Some(Problem::EvenParameters)
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(self.error_at(ParseErrorKind::Parsing, problem, open.start, open.end));
        }
        let depths: Vec<usize> = args.iter().map(|arg| arg.depth).collect();
        call.args = args.into_iter().map(|arg| arg.node).collect();
        self.push_node(Node::Call(call), &depths);
        Ok(())
    }

    /// Pops a binary or unary operator and builds its node.
    fn flush_top(&mut self, token: &Token) -> Result<(), ParseError> {
        let Some(operator) = self.operators.pop() else {
            return Err(self.internal(token));
        };
        let op = match operator.kind {
            Kind::Dereference => {
                let (left, right) = self.pop_pair(token)?;
                let depths = [left.depth, right.depth];
                self.push_node(
                    Node::Index(Box::new(left.node), Box::new(right.node)),
                    &depths,
                );
                return Ok(());
            }
            Kind::Operator(op) => op,
            _ => return Err(self.internal(token)),
        };
        if op == Op::Not {
            let Some(inner) = self.operands.pop() else {
                return Err(self.internal(token));
            };
            self.push_node(Node::Not(Box::new(inner.node)), &[inner.depth]);
            return Ok(());
        }
        let (left, right) = self.pop_pair(token)?;
        let compare = match op {
            Op::Equal => CompareOp::Eq,
            Op::NotEqual => CompareOp::Ne,
            Op::Less => CompareOp::Lt,
            Op::LessOrEqual => CompareOp::Le,
            Op::Greater => CompareOp::Gt,
            Op::GreaterOrEqual => CompareOp::Ge,
            Op::And | Op::Or => {
                let and = op == Op::And;
                // Nested `&&` in `&&` (and `||` in `||`) are flattened, as in the runner. The
                // left operand's list is reused so long chains stay linear.
                let mut items: Vec<Node> = Vec::new();
                let mut depths = Vec::with_capacity(2);
                for Operand { node, depth } in [left, right] {
                    match node {
                        Node::And(inner) if and => {
                            // Its children are one level shallower than it.
                            depths.push(depth - 1);
                            extend_reusing(&mut items, inner);
                        }
                        Node::Or(inner) if !and => {
                            depths.push(depth - 1);
                            extend_reusing(&mut items, inner);
                        }
                        node => {
                            depths.push(depth);
                            items.push(node);
                        }
                    }
                }
                let node = if and {
                    Node::And(items)
                } else {
                    Node::Or(items)
                };
                self.push_node(node, &depths);
                return Ok(());
            }
            Op::Not => return Err(self.internal(token)),
        };
        let depths = [left.depth, right.depth];
        self.push_node(
            Node::Compare(compare, Box::new(left.node), Box::new(right.node)),
            &depths,
        );
        Ok(())
    }

    fn pop_pair(&mut self, token: &Token) -> Result<(Operand, Operand), ParseError> {
        match (self.operands.pop(), self.operands.pop()) {
            (Some(right), Some(left)) => Ok((left, right)),
            _ => Err(self.internal(token)),
        }
    }

    fn pop_operator(&mut self, expected: Kind, token: &Token) -> Result<Pending, ParseError> {
        match self.operators.pop() {
            Some(top) if top.kind == expected => Ok(top),
            _ => Err(self.internal(token)),
        }
    }

    /// Pushes a built node; one deeper than the limit is kept only as a placeholder, so no
    /// deep tree is ever held.
    fn push_node(&mut self, node: Node, child_depths: &[usize]) {
        let depth = 1 + child_depths.iter().copied().max().unwrap_or(0);
        if depth > MAX_DEPTH {
            self.too_deep = true;
            self.operands.push(Operand {
                node: Node::Literal(Value::Null),
                depth,
            });
        } else {
            self.operands.push(Operand { node, depth });
        }
    }

    /// The token stream passed the lexer's checks but the stacks disagree; the runner cannot
    /// reach this either. Reported as an unexpected symbol rather than a panic.
    fn internal(&self, token: &Token) -> ParseError {
        self.error(ParseErrorKind::Parsing, Problem::UnexpectedSymbol, token)
    }
}

/// Appends `more` to `items`, taking `more`'s buffer when `items` is empty.
fn extend_reusing(items: &mut Vec<Node>, more: Vec<Node>) {
    if items.is_empty() {
        *items = more;
    } else {
        items.extend(more);
    }
}

//! Turns a stream of byte chunks into complete text lines.
//!
//! A line ends at `\n`, at `\r\n` (one break) or at a lone `\r` (progress bars redraw with it).
//! A partial line is held until its end arrives, so a secret written in two pieces is still
//! seen whole by the masker. Invalid UTF-8 is decoded lossily. A line longer than
//! [`MAX_LINE_BYTES`] is flushed in pieces so a process that never writes a newline cannot
//! make us hold unbounded memory; a secret straddling such a cut is the one case masking
//! cannot see whole.
//!
//! Must not: interpret the text (commands and masking come later).

/// The longest piece of a line we hold before flushing it.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Line splitter for one stream. Feed chunks with [`LineSplitter::push`], then call
/// [`LineSplitter::finish`] once the stream has closed.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// The previous chunk ended with `\r`, whose line was already emitted: a `\n` that
    /// starts the next chunk belongs to the same break.
    after_cr: bool,
}

impl LineSplitter {
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Appends the complete lines found in `bytes` (without terminators) to `lines`.
    pub fn push(&mut self, bytes: &[u8], lines: &mut Vec<String>) {
        let mut rest = bytes;
        if self.after_cr {
            self.after_cr = false;
            if let Some(after) = rest.strip_prefix(b"\n") {
                rest = after;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (piece, tail) = rest.split_at(end);
            self.append(piece, lines);
            lines.push(decode(&std::mem::take(&mut self.partial)));
            // `tail` starts with the terminator found above.
            let terminator = tail.first().copied();
            rest = tail.get(1..).unwrap_or_default();
            if terminator == Some(b'\r') {
                match rest.first() {
                    Some(b'\n') => rest = rest.get(1..).unwrap_or_default(),
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.append(rest, lines);
    }

    /// Returns the last line if the stream ended without a terminator.
    pub fn finish(&mut self) -> Option<String> {
        self.after_cr = false;
        if self.partial.is_empty() {
            return None;
        }
        Some(decode(&std::mem::take(&mut self.partial)))
    }

    /// Adds bytes of an unfinished line, flushing pieces of at most [`MAX_LINE_BYTES`].
    fn append(&mut self, mut bytes: &[u8], lines: &mut Vec<String>) {
        while self.partial.len() + bytes.len() > MAX_LINE_BYTES {
            let room = MAX_LINE_BYTES - self.partial.len();
            let (head, tail) = bytes.split_at(room);
            self.partial.extend_from_slice(head);
            bytes = tail;
            let cut = char_boundary(&self.partial);
            let carry = self.partial.split_off(cut);
            lines.push(decode(&std::mem::replace(&mut self.partial, carry)));
        }
        self.partial.extend_from_slice(bytes);
    }
}

/// Where to cut a full buffer so a multi-byte UTF-8 character is not split in two (which
/// would turn both halves into replacement characters). Falls back to the end for bytes
/// that are not UTF-8 anyway.
fn char_boundary(buffer: &[u8]) -> usize {
    let len = buffer.len();
    for back in 1..=3 {
        let Some(index) = len.checked_sub(back) else {
            break;
        };
        let byte = buffer.get(index).copied().unwrap_or(0);
        if byte & 0b1100_0000 != 0b1000_0000 {
            // `byte` starts a character: keep it for the next piece if it is incomplete.
            let needed = match byte {
                0xF0..=0xF7 => 4,
                0xE0..=0xEF => 3,
                0xC0..=0xDF => 2,
                _ => 1,
            };
            return if back < needed && index > 0 {
                index
            } else {
                len
            };
        }
    }
    len
}

fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

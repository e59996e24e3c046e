//! Terminal escapes in text that came from a job (output lines, step names, titles): a step
//! must not be able to move the cursor, erase runnel's own lines, retitle the window or write
//! a hyperlink, so everything but colour is removed, as GitHub's log view shows only colours.
//! Colours (SGR: `ESC [ … m`) are kept when the terminal gets colour, and reset at the end of
//! the text so they cannot bleed into runnel's next line; without colour they go too.
//!
//! Must not: touch text without control characters (the common case borrows).

use std::borrow::Cow;

const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';

/// `text` with every escape sequence but colours (when `colour`) and every other control
/// character but tab removed.
pub(crate) fn sanitize(text: &str, colour: bool) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut clean = String::with_capacity(text.len());
    let mut coloured = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ESC {
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    let mut params = String::new();
                    let mut last = None;
                    // Parameter and intermediate bytes, then one final byte (0x40–0x7e).
                    for next in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&next) {
                            last = Some(next);
                            break;
                        }
                        params.push(next);
                    }
                    let is_colour = last == Some('m')
                        && params
                            .chars()
                            .all(|p| p.is_ascii_digit() || p == ';' || p == ':');
                    if colour && is_colour {
                        clean.push(ESC);
                        clean.push('[');
                        clean.push_str(&params);
                        clean.push('m');
                        coloured = true;
                    }
                }
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    // OSC, DCS, APC, PM, SOS: up to BEL or ST (`ESC \`).
                    chars.next();
                    while let Some(next) = chars.next() {
                        if next == BEL {
                            break;
                        }
                        if next == ESC && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                Some(_) => {
                    // A two-character sequence (`ESC c` resets the terminal, `ESC 7`…).
                    chars.next();
                }
                None => {}
            }
        } else if c == '\t' || !is_control(c) {
            clean.push(c);
        }
    }
    if coloured {
        clean.push_str("\u{1b}[0m");
    }
    Cow::Owned(clean)
}

/// C0 and C1 control characters and DEL; tab counts (it is kept, but means a look).
fn is_control(c: char) -> bool {
    c.is_control()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_colours_survive() {
        let cases = [
            ("plain text", "plain text", "plain text"),
            ("tab\tkept", "tab\tkept", "tab\tkept"),
            (
                "\u{1b}[31mred\u{1b}[0m",
                "red",
                "\u{1b}[31mred\u{1b}[0m\u{1b}[0m",
            ),
            // Erase the line and rewrite it: a step forging runnel's own result line.
            (
                "\u{1b}[2K\r[build] ✓ job success",
                "[build] ✓ job success",
                "[build] ✓ job success",
            ),
            ("up\u{1b}[1A\u{1b}[2Kgone", "upgone", "upgone"),
            ("\u{1b}]0;new title\u{7}after", "after", "after"),
            (
                "\u{1b}]8;;http://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\",
                "link",
                "link",
            ),
            ("reset\u{1b}c!", "reset!", "reset!"),
            (
                "bell\u{7} back\u{8}space",
                "bell backspace",
                "bell backspace",
            ),
            ("c1 csi\u{9b}2J", "c1 csi2J", "c1 csi2J"),
            ("dangling\u{1b}", "dangling", "dangling"),
        ];
        for (text, plain, coloured) in cases {
            assert_eq!(sanitize(text, false), plain, "{text:?}");
            assert_eq!(sanitize(text, true), coloured, "{text:?}");
        }
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(sanitize("nothing here", true), Cow::Borrowed(_)));
    }
}

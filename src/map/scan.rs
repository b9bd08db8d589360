//! One validating pass over a message that builds a pruned tape.
//!
//! The mapper reads a handful of paths from each message (the columns'
//! `source` paths and the filter's selectors). Instead of a full
//! simd-json tape, [`scan`] builds a [`Node`] tape of just what a [`Want`]
//! names: at an object, a key that is a child of the current [`Want`]
//! node is kept (key node, then its value), any other member is skipped.
//! A path that ends at a value keeps that whole value. The result is a
//! valid simd-json tape of the pruned document (`len` counts kept
//! members, `count` kept nodes), so `Path::lookup`, `tape::Value::get`
//! and `convert::write_json` work on it unchanged.
//!
//! Skipped values are still validated: the scanner accepts exactly the
//! RFC 8259 JSON texts (any top-level value, surrounding whitespace),
//! with lone UTF-16 surrogates in `\u` escapes, numbers that overflow
//! `f64` and nesting deeper than [`MAX_DEPTH`] rejected, as `serde_json`
//! and simd-json reject them.
//!
//! Strings without a backslash borrow the message; the others are
//! unescaped into an arena the caller owns, pre-sized to the message
//! length (unescaping never lengthens a string), carved with
//! `split_at_mut`. Numbers get the [`StaticNode`] simd-json gives with
//! `big-int-as-float`: `U64` for integers from 0 to `u64::MAX`, `I64` for
//! negative integers from `i64::MIN`, `F64` otherwise (correctly rounded).
//! Beside the tape, the offset where each node starts in the message, so
//! a number's source text can be read back (`convert::Lexemes`).

use std::fmt;

use simd_json::{Node, StaticNode};

/// Deepest nesting of arrays and objects accepted (simd-json's default).
pub(crate) const MAX_DEPTH: usize = 1024;

/// Why a message is not JSON: where, and what was expected there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// Byte offset in the message.
    pub(crate) offset: usize,
    /// What is wrong there.
    pub(crate) reason: &'static str,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for ScanError {}

fn err<T>(offset: usize, reason: &'static str) -> Result<T, ScanError> {
    Err(ScanError { offset, reason })
}

/// One step of a wanted path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step<'s> {
    /// An object member, by its unescaped key.
    Key(&'s str),
    /// An array element: the whole array is kept.
    Index,
}

/// The paths a mapper reads, compiled into a trie.
#[derive(Clone, Debug)]
pub(crate) struct Want {
    /// Node 0 is the root.
    nodes: Vec<WantNode>,
}

#[derive(Clone, Debug, Default)]
struct WantNode {
    /// Keep the whole value here.
    all: bool,
    /// Member keys to descend into, and their trie nodes.
    children: Vec<(Box<[u8]>, u32)>,
}

impl Want {
    /// Wants nothing: the scan only validates (and keeps the root's type).
    pub(crate) fn nothing() -> Want {
        Want { nodes: vec![WantNode::default()] }
    }

    /// Wants the whole message: a full parse.
    pub(crate) fn everything() -> Want {
        Want { nodes: vec![WantNode { all: true, children: Vec::new() }] }
    }

    /// Adds a path; an empty one wants the whole message.
    pub(crate) fn add<'s>(
        &mut self,
        steps: impl IntoIterator<Item = Step<'s>>,
    ) {
        let mut at = 0usize;
        for step in steps {
            let Some(node) = self.nodes.get_mut(at) else { return };
            if node.all {
                return;
            }
            let Step::Key(key) = step else { break };
            let key = key.as_bytes();
            let found = node
                .children
                .iter()
                .find(|(k, _)| **k == *key)
                .and_then(|&(_, c)| usize::try_from(c).ok());
            at = match found {
                Some(c) => c,
                None => {
                    let c = self.nodes.len();
                    let Ok(id) = u32::try_from(c) else { return };
                    if let Some(node) = self.nodes.get_mut(at) {
                        node.children.push((key.into(), id));
                    }
                    self.nodes.push(WantNode::default());
                    c
                }
            };
        }
        if let Some(node) = self.nodes.get_mut(at) {
            node.all = true;
            node.children.clear();
        }
    }

    /// The mode for a value at trie node `id`.
    fn mode(&self, id: u32) -> Mode {
        match usize::try_from(id).ok().and_then(|i| self.nodes.get(i)) {
            Some(n) if n.all => Mode::All,
            Some(_) => Mode::Node(id),
            None => Mode::Skip,
        }
    }

    /// The child of `id` for member `key`.
    fn child(&self, id: u32, key: &[u8]) -> Option<u32> {
        let node = self.nodes.get(usize::try_from(id).ok()?)?;
        node.children.iter().find(|(k, _)| **k == *key).map(|&(_, c)| c)
    }
}

/// How a value is scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Validated only; nothing goes on the tape.
    Skip,
    /// Kept whole.
    All,
    /// Kept, pruned by this trie node (containers keep only the members
    /// it names; arrays keep no elements).
    Node(u32),
}

/// A container being scanned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    /// Its tape node, when kept.
    node: Option<usize>,
    /// For an object, its own mode (keys are looked up in it); for an
    /// array, its elements' mode.
    mode: Mode,
    /// Kept members or elements.
    len: usize,
    obj: bool,
}

/// Buffers [`scan`] reuses from message to message.
#[derive(Debug, Default)]
pub(crate) struct ScanScratch {
    /// Unescaped strings.
    pub(crate) arena: Vec<u8>,
    /// Open containers.
    pub(crate) stack: Vec<Frame>,
    /// Where each tape node starts in the message.
    pub(crate) starts: Vec<u32>,
}

/// Scans `message`, replacing `tape` with the pruned tape of what `want`
/// names and `starts` with each node's offset in `message`.
///
/// Strings borrow `message` or, when they hold escapes, `arena`, which is
/// grown to the message length (and never shrunk, so a warm scan does not
/// allocate).
///
/// # Errors
///
/// A [`ScanError`] when `message` is not one JSON text; `tape` and
/// `starts` then hold a partial result.
pub(crate) fn scan<'b>(
    message: &'b str,
    want: &Want,
    arena: &'b mut Vec<u8>,
    stack: &mut Vec<Frame>,
    tape: &mut Vec<Node<'b>>,
    starts: &mut Vec<u32>,
) -> Result<(), ScanError> {
    tape.clear();
    starts.clear();
    stack.clear();
    if u32::try_from(message.len()).is_err() {
        return err(0, "message longer than 4 GiB");
    }
    if arena.len() < message.len() {
        arena.resize(message.len(), 0);
    }
    let mut s = Scanner {
        text: message,
        msg: message.as_bytes(),
        pos: 0,
        free: arena.as_mut_slice(),
        want,
        tape,
        starts,
        stack,
    };
    s.run()
}

struct Scanner<'b, 'r> {
    text: &'b str,
    msg: &'b [u8],
    pos: usize,
    /// The unused part of the arena.
    free: &'b mut [u8],
    want: &'r Want,
    tape: &'r mut Vec<Node<'b>>,
    starts: &'r mut Vec<u32>,
    stack: &'r mut Vec<Frame>,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that is `"`, `\` or below 0x20. Only
/// the lowest flagged byte is exact (a borrow can flag bytes above it),
/// which is all [`Scanner::string_end`] uses.
#[inline]
fn special(w: u64) -> u64 {
    let q = w ^ (LO * u64::from(b'"'));
    let b = w ^ (LO * u64::from(b'\\'));
    let zq = q.wrapping_sub(LO) & !q;
    let zb = b.wrapping_sub(LO) & !b;
    let ctl = w.wrapping_sub(LO * 0x20) & !w;
    (zq | zb | ctl) & HI
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        v = v * 16 + char::from(c).to_digit(16)?;
    }
    Some(v)
}

/// The code point of the `\u` escape at `at` (the backslash) and the
/// offset just past it (past both halves of a surrogate pair).
fn unicode_escape(msg: &[u8], at: usize) -> Result<(u32, usize), ScanError> {
    let hi = msg
        .get(at + 2..)
        .and_then(hex4)
        .map_or_else(|| err(at, "invalid \\u escape"), Ok)?;
    match hi {
        0xD800..=0xDBFF => {
            let lo = match msg.get(at + 6..at + 8) {
                Some(b"\\u") => msg.get(at + 8..).and_then(hex4),
                _ => None,
            };
            match lo {
                Some(lo @ 0xDC00..=0xDFFF) => Ok((
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00),
                    at + 12,
                )),
                _ => err(at, "lone surrogate in \\u escape"),
            }
        }
        0xDC00..=0xDFFF => err(at, "lone surrogate in \\u escape"),
        _ => Ok((hi, at + 6)),
    }
}

#[inline]
fn is_digit(b: Option<&u8>) -> bool {
    b.is_some_and(u8::is_ascii_digit)
}

impl<'b> Scanner<'b, '_> {
    fn run(&mut self) -> Result<(), ScanError> {
        let mut mode = self.want.mode(0);
        'value: loop {
            self.skip_ws();
            let start = self.pos;
            match self.msg.get(start) {
                Some(&c @ (b'{' | b'[')) => {
                    if self.stack.len() >= MAX_DEPTH {
                        return err(start, "nesting deeper than 1024");
                    }
                    let obj = c == b'{';
                    let node = match mode {
                        Mode::Skip => None,
                        _ => Some(
                            self.push(Node::Array { len: 0, count: 0 }, start),
                        ),
                    };
                    let inner = match mode {
                        Mode::Node(_) if !obj => Mode::Skip,
                        m => m,
                    };
                    self.stack.push(Frame { node, mode: inner, len: 0, obj });
                    self.pos += 1;
                    self.skip_ws();
                    let close = if obj { b'}' } else { b']' };
                    if self.msg.get(self.pos) != Some(&close) {
                        mode = self.member()?;
                        continue 'value;
                    }
                    self.pos += 1;
                    self.close();
                }
                Some(b'"') => {
                    let (end, escaped) = self.string_end(start)?;
                    if mode != Mode::Skip {
                        let s = if escaped {
                            let n = self.unescape(start + 1, end)?;
                            self.commit(n)?
                        } else {
                            self.borrowed(start + 1, end)?
                        };
                        self.push(Node::String(s), start);
                    }
                    self.pos = end + 1;
                }
                Some(b't') => self.literal(b"true", true.into(), mode)?,
                Some(b'f') => self.literal(b"false", false.into(), mode)?,
                Some(b'n') => self.literal(b"null", StaticNode::Null, mode)?,
                Some(b'-' | b'0'..=b'9') => self.number(mode)?,
                Some(_) => return err(start, "expected a value"),
                None => return err(start, "unexpected end of input"),
            }
            // After a value: a separator, a closer, or the end.
            loop {
                self.skip_ws();
                let Some(top) = self.stack.last() else {
                    if self.pos < self.msg.len() {
                        return err(self.pos, "trailing characters");
                    }
                    return Ok(());
                };
                match (self.msg.get(self.pos), top.obj) {
                    (Some(b','), _) => {
                        self.pos += 1;
                        self.skip_ws();
                        mode = self.member()?;
                        continue 'value;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        self.close();
                    }
                    (None, _) => {
                        return err(self.pos, "unexpected end of input")
                    }
                    (Some(_), true) => {
                        return err(self.pos, "expected ',' or '}'")
                    }
                    (Some(_), false) => {
                        return err(self.pos, "expected ',' or ']'")
                    }
                }
            }
        }
    }

    /// Starts the next member of the innermost container (`pos` at its
    /// first byte): for an object, reads the key and the `:`. Returns the
    /// mode of the value that follows.
    fn member(&mut self) -> Result<Mode, ScanError> {
        let Some(top) = self.stack.last().copied() else {
            return err(self.pos, "expected a value");
        };
        if !top.obj {
            if top.mode != Mode::Skip {
                self.bump_len();
            }
            return Ok(top.mode);
        }
        let start = self.pos;
        match self.msg.get(start) {
            Some(b'"') => {}
            Some(_) => return err(start, "expected a string key"),
            None => return err(start, "unexpected end of input"),
        }
        let (end, escaped) = self.string_end(start)?;
        let mode = match top.mode {
            Mode::Skip => Mode::Skip,
            Mode::All => {
                let key = if escaped {
                    let n = self.unescape(start + 1, end)?;
                    self.commit(n)?
                } else {
                    self.borrowed(start + 1, end)?
                };
                self.push(Node::String(key), start);
                self.bump_len();
                Mode::All
            }
            Mode::Node(id) => {
                let (child, n) = if escaped {
                    let n = self.unescape(start + 1, end)?;
                    let key = self.free.get(..n).unwrap_or_default();
                    (self.want.child(id, key), n)
                } else {
                    let key = self.msg.get(start + 1..end).unwrap_or_default();
                    (self.want.child(id, key), 0)
                };
                match child {
                    Some(c) => {
                        let key = if escaped {
                            self.commit(n)?
                        } else {
                            self.borrowed(start + 1, end)?
                        };
                        self.push(Node::String(key), start);
                        self.bump_len();
                        self.want.mode(c)
                    }
                    None => Mode::Skip,
                }
            }
        };
        self.pos = end + 1;
        self.skip_ws();
        if self.msg.get(self.pos) != Some(&b':') {
            return err(self.pos, "expected ':'");
        }
        self.pos += 1;
        Ok(mode)
    }

    fn bump_len(&mut self) {
        if let Some(top) = self.stack.last_mut() {
            top.len += 1;
        }
    }

    /// Closes the innermost container, filling in its tape node.
    fn close(&mut self) {
        let Some(f) = self.stack.pop() else { return };
        let Some(i) = f.node else { return };
        let count = self.tape.len().saturating_sub(i + 1);
        let len = f.len;
        if let Some(n) = self.tape.get_mut(i) {
            *n = if f.obj {
                Node::Object { len, count }
            } else {
                Node::Array { len, count }
            };
        }
    }

    /// Appends a node starting at `start`; returns its index.
    fn push(&mut self, node: Node<'b>, start: usize) -> usize {
        self.tape.push(node);
        // The length was checked to fit in u32.
        self.starts.push(u32::try_from(start).unwrap_or(u32::MAX));
        self.tape.len() - 1
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.msg.get(self.pos) {
            self.pos += 1;
        }
    }

    fn literal(
        &mut self,
        word: &'static [u8],
        node: StaticNode,
        mode: Mode,
    ) -> Result<(), ScanError> {
        let start = self.pos;
        if self.msg.get(start..start + word.len()) != Some(word) {
            return err(start, "invalid literal");
        }
        if mode != Mode::Skip {
            self.push(Node::Static(node), start);
        }
        self.pos = start + word.len();
        Ok(())
    }

    /// Validates the string whose opening quote is at `start`; returns
    /// the offset of its closing quote and whether it has escapes.
    #[inline]
    fn string_end(&self, start: usize) -> Result<(usize, bool), ScanError> {
        let msg = self.msg;
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            let c = match msg.get(i..).and_then(<[u8]>::first_chunk::<8>) {
                Some(chunk) => {
                    let m = special(u64::from_le_bytes(*chunk));
                    if m == 0 {
                        i += 8;
                        continue;
                    }
                    // m's lowest set bit is the top bit of the byte.
                    i += (m.trailing_zeros() / 8) as usize;
                    msg.get(i).copied().unwrap_or(b'"')
                }
                None => match msg.get(i) {
                    Some(&c) => c,
                    None => return err(start, "unterminated string"),
                },
            };
            match c {
                b'"' => return Ok((i, escaped)),
                b'\\' => {
                    escaped = true;
                    i = match msg.get(i + 1) {
                        Some(
                            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r'
                            | b't',
                        ) => i + 2,
                        Some(b'u') => unicode_escape(msg, i)?.1,
                        Some(_) => return err(i, "invalid escape"),
                        None => return err(start, "unterminated string"),
                    };
                }
                0..=0x1f => {
                    return err(i, "control character in string");
                }
                _ => i += 1,
            }
        }
    }

    /// The message text between `from` and `to` (no escapes in it).
    fn borrowed(&self, from: usize, to: usize) -> Result<&'b str, ScanError> {
        let text: &'b str = self.text;
        text.get(from..to).map_or_else(|| err(from, "string is not UTF-8"), Ok)
    }

    /// Unescapes the validated string body `from..to` into the start of
    /// the free arena; returns its length (not yet committed).
    fn unescape(
        &mut self,
        from: usize,
        to: usize,
    ) -> Result<usize, ScanError> {
        let full = || err(from, "unescape arena too small");
        let mut w = 0usize;
        let mut i = from;
        while i < to {
            let run =
                memchr::memchr(b'\\', self.msg.get(i..to).unwrap_or(&[]))
                    .unwrap_or(to - i);
            let src = self.msg.get(i..i + run).unwrap_or_default();
            let Some(dst) = self.free.get_mut(w..w + run) else {
                return full();
            };
            dst.copy_from_slice(src);
            w += run;
            i += run;
            if i >= to {
                break;
            }
            let (ch, next) = match self.msg.get(i + 1) {
                Some(b'"') => ('"', i + 2),
                Some(b'\\') => ('\\', i + 2),
                Some(b'/') => ('/', i + 2),
                Some(b'b') => ('\u{8}', i + 2),
                Some(b'f') => ('\u{c}', i + 2),
                Some(b'n') => ('\n', i + 2),
                Some(b'r') => ('\r', i + 2),
                Some(b't') => ('\t', i + 2),
                Some(b'u') => {
                    let (cp, next) = unicode_escape(self.msg, i)?;
                    match char::from_u32(cp) {
                        Some(c) => (c, next),
                        None => return err(i, "invalid \\u escape"),
                    }
                }
                _ => return err(i, "invalid escape"),
            };
            let mut utf8 = [0u8; 4];
            let enc = ch.encode_utf8(&mut utf8).as_bytes();
            let Some(dst) = self.free.get_mut(w..w + enc.len()) else {
                return full();
            };
            dst.copy_from_slice(enc);
            w += enc.len();
            i = next;
        }
        Ok(w)
    }

    /// Takes the first `n` bytes of the free arena as a string.
    fn commit(&mut self, n: usize) -> Result<&'b str, ScanError> {
        let at = self.pos;
        let free = std::mem::take(&mut self.free);
        let Some((piece, rest)) = free.split_at_mut_checked(n) else {
            return err(at, "unescape arena too small");
        };
        self.free = rest;
        let piece: &'b [u8] = piece;
        std::str::from_utf8(piece)
            .map_or_else(|_| err(at, "unescaped string is not UTF-8"), Ok)
    }

    fn number(&mut self, mode: Mode) -> Result<(), ScanError> {
        let msg = self.msg;
        let start = self.pos;
        let mut i = start;
        let neg = msg.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        match msg.get(i) {
            Some(b'0') => {
                i += 1;
                if is_digit(msg.get(i)) {
                    return err(i, "leading zero in number");
                }
            }
            Some(b'1'..=b'9') => {
                i += 1;
                while is_digit(msg.get(i)) {
                    i += 1;
                }
            }
            _ => return err(i, "expected a digit"),
        }
        let int_digits = i - start - usize::from(neg);
        let mut float = false;
        let mut exp = false;
        if msg.get(i) == Some(&b'.') {
            i += 1;
            if !is_digit(msg.get(i)) {
                return err(i, "expected a digit after '.'");
            }
            while is_digit(msg.get(i)) {
                i += 1;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = msg.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = msg.get(i) {
                i += 1;
            }
            if !is_digit(msg.get(i)) {
                return err(i, "expected a digit in the exponent");
            }
            while is_digit(msg.get(i)) {
                i += 1;
            }
            float = true;
            exp = true;
        }
        self.pos = i;
        // Only an exponent or 309 integer digits can overflow f64.
        if mode == Mode::Skip && !exp && int_digits < 309 {
            return Ok(());
        }
        let lexeme = self.text.get(start..i).unwrap_or("0");
        let node = if float {
            None
        } else {
            integer(msg.get(start + usize::from(neg)..i).unwrap_or(&[]), neg)
        };
        let node = match node {
            Some(n) => n,
            None => match lexeme.parse::<f64>() {
                Ok(f) if f.is_finite() => StaticNode::F64(f),
                _ => return err(start, "number out of range"),
            },
        };
        if mode != Mode::Skip {
            self.push(Node::Static(node), start);
        }
        Ok(())
    }
}

/// An integer's node, as simd-json gives it: `U64` for non-negative,
/// `I64` for negative, `None` beyond them (then it is an `F64`).
fn integer(digits: &[u8], neg: bool) -> Option<StaticNode> {
    let mut v = 0u64;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        0i64.checked_sub_unsigned(v).map(StaticNode::I64)
    } else {
        Some(StaticNode::U64(v))
    }
}

#[cfg(test)]
mod tests;

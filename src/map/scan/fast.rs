//! The fast path of the escaped scan: a recursive descent over the
//! message in its escaped form that reads only what log lines usually
//! hold, and gives up (`None`) on anything else.
//!
//! [`scan_level`](super::scan_level) is one state machine for every
//! input: its open containers on a heap stack, its errors with offsets
//! and reasons, its escapes unescaped into the arena. Most of its time
//! on a log line went to that generality (state spilled to the stack
//! around every member, `Result`s returned through memory, a whitespace
//! test at every token), not to finding tokens. This path keeps each
//! container's state in its own small frame and needs no error detail:
//! where it gives up, the message is scanned again by `scan_level`,
//! which decides (and reports). So it never has to be right about a
//! message it does not read, only about one it does, where its tape,
//! node offsets and slots are exactly `scan_level`'s
//! ([`fast_agrees`](super::fast_agrees), run by `scan::tests` and by
//! `fuzz_onepass` on every message; the one-pass oracle tests run
//! through this path too).
//!
//! It gives up on: a string it would keep, or a key it would look up,
//! that holds an escape of the message's own (skipped ones are validated
//! as `scan_level` validates them), a skipped number with an exponent or
//! over 308 integer digits, nesting deeper than [`FAST_DEPTH`], and
//! anything that is not JSON. `OnePassCounts::state_machine` counts the
//! messages it gave up on.

use simd_json::{Node, StaticNode};

use super::{
    block, head_at, is_quote, literal_end, number_at, skip_number, skip_ws,
    unicode_escape, Mode, Want, ESCAPED_U, NO_SLOT,
};

/// Containers the fast path opens at most; deeper messages take
/// `scan_level` (which accepts up to `MAX_DEPTH`).
pub(super) const FAST_DEPTH: usize = 64;

/// No tape node (a skipped container).
const NONE: usize = usize::MAX;

/// Scans `escaped` (a message in its escaped form) as
/// [`scan_slots`](super::scan_slots) does, into `tape`, `starts` and
/// `slots` (sized and cleared by the caller); `None` when it does not
/// read the message, and then what they hold is to be discarded.
#[inline(never)]
pub(super) fn scan<'b>(
    escaped: &'b str,
    want: &Want,
    tape: &mut Vec<Node<'b>>,
    starts: &mut Vec<u32>,
    slots: &mut [u32],
    predict: &mut Predict,
) -> Option<()> {
    let mut f = Fast::new(escaped, want, tape, starts, slots, predict);
    let end = f.value(0, want.mode(0))?;
    (skip_ws::<true>(f.msg, end) == f.msg.len()).then_some(())
}

/// [`scan`] of a message whose end is not known yet: `body` runs from the
/// message's first byte (just past the envelope string's opening quote)
/// to the end of the envelope. The message is read up to its value's end
/// and any whitespace after it, where the envelope's string must end (a
/// `"` that is not an escape): so this one pass both finds where the
/// message ends and scans it, and the envelope reader need not look for
/// the end itself. Returns the message's length in `body` (the offset of
/// that `"`) and whether every escape in it is `\"` and it has one
/// ([`quotes_only`](crate::decode::onepass::quotes_only)).
///
/// Nodes are appended to `tape` and `starts` (what they held before is
/// kept), and `slots` (sized and cleared by the caller) count tape nodes
/// from the first one this call appends. Where [`scan`] reads a message
/// `m`, this reads `m` followed by `"` and anything, the same way and to
/// the same tape, node offsets and slots; and it reads nothing else
/// ([`fast_agrees`](super::fast_agrees) checks both). `None` when it does
/// not read the message; then what it appended is to be discarded.
#[inline(never)]
pub(super) fn scan_prefix<'b>(
    body: &'b str,
    want: &Want,
    tape: &mut Vec<Node<'b>>,
    starts: &mut Vec<u32>,
    slots: &mut [u32],
    predict: &mut Predict,
) -> Option<(usize, bool)> {
    let mut f = Fast::new(body, want, tape, starts, slots, predict);
    let end = f.value(0, want.mode(0))?;
    let end = f.ws(end);
    if f.msg.get(end) != Some(&b'"') {
        return None;
    }
    // Every escape the scan read but `\"` set `odd`; a message with no
    // string (and no whitespace escape) has no escape at all. (Most
    // messages have one at byte 1, `{\"`: a byte loop finds it sooner
    // than `memchr` starts.)
    let any = f.msg.get(..end).is_some_and(|m| m.contains(&b'\\'));
    Some((end, !f.odd && any))
}

struct Fast<'b, 'r> {
    text: &'b str,
    msg: &'b [u8],
    want: &'r Want,
    tape: &'r mut Vec<Node<'b>>,
    starts: &'r mut Vec<u32>,
    slots: &'r mut [u32],
    /// Open containers.
    depth: usize,
    /// [`Predict::guesses`].
    guesses: &'r mut Vec<Guess>,
    /// The members read so far, in the order they start (the next one's
    /// ordinal).
    member: usize,
    /// `tape`'s length before this message: slots count from there.
    base: usize,
    /// An escape other than `\"` was read: one in a skipped string (a
    /// kept string with one is not read here) or whitespace written as an
    /// escape ([`scan_prefix`]'s `quotes_only`).
    odd: bool,
}

impl<'b, 'r> Fast<'b, 'r> {
    fn new(
        text: &'b str,
        want: &'r Want,
        tape: &'r mut Vec<Node<'b>>,
        starts: &'r mut Vec<u32>,
        slots: &'r mut [u32],
        predict: &'r mut Predict,
    ) -> Self {
        if predict.want != want.id {
            predict.want = want.id;
            predict.guesses.clear();
        }
        Fast {
            text,
            msg: text.as_bytes(),
            want,
            base: tape.len(),
            tape,
            starts,
            slots,
            depth: 0,
            guesses: &mut predict.guesses,
            // Switched off, every ordinal is past the guesses kept.
            member: if predict.off { GUESSES } else { 0 },
            odd: false,
        }
    }
}

/// What the fast path guesses of a message's members: the key (its bytes
/// from the opening `\"` through the `:`) that member `k` of the last
/// messages had, in document order over every object, and what its key
/// was found to be in the [`Want`] trie. Log lines of one kind repeat
/// their keys in the same order, so the next message's member `k` is
/// told by one compare of 16 bytes instead of finding the key's end and
/// looking it up. A wrong guess costs that compare, and the member is
/// read as without one (and its key recorded for the next message).
#[derive(Clone, Debug, Default)]
pub(crate) struct Predict {
    /// The [`Want::id`] the children were looked up in.
    want: u64,
    /// By member ordinal, up to [`GUESSES`].
    guesses: Vec<Guess>,
    /// Neither guess nor record (for the stage benches, which time the
    /// scan both ways in one process).
    off: bool,
}

impl Predict {
    /// Guesses keys from now on (`true`, the default), or not.
    pub(crate) fn set_on(&mut self, on: bool) {
        self.off = !on;
        self.guesses.clear();
    }
}

/// Members of a message guessed at most.
const GUESSES: usize = 64;

/// One member's key as [`Predict`] keeps it.
#[derive(Clone, Copy, Debug)]
struct Guess {
    /// The bytes `\"key\":`, zero beyond `len`, as two little-endian
    /// words, and the masks of their first `len` bytes.
    words: [u64; 2],
    masks: [u64; 2],
    /// The bytes guessed: 5 to 16 (the key's, plus 5).
    len: usize,
    /// The mode its object was read with ([`mode_tag`]); a guess is
    /// taken in that mode alone.
    mode: u32,
    /// In a [`Mode::Node`] object, the key's child there, or [`NO_CHILD`].
    child: u32,
}

/// [`Guess::child`] when the key is no child.
const NO_CHILD: u32 = u32::MAX;

impl Guess {
    /// Matches nothing (an ordinal whose key was not recorded).
    const NONE: Guess = Guess {
        words: [0; 2],
        masks: [0; 2],
        len: 0,
        mode: u32::MAX,
        child: NO_CHILD,
    };

    /// Whether `msg` holds this guess's bytes at `pos`.
    #[inline(always)]
    fn at(&self, msg: &[u8], pos: usize) -> bool {
        let Some(b) = msg.get(pos..).and_then(<[u8]>::first_chunk::<16>)
        else {
            return false;
        };
        let (lo, hi) = b.split_at(8);
        let (Ok(lo), Ok(hi)) =
            (<[u8; 8]>::try_from(lo), <[u8; 8]>::try_from(hi))
        else {
            return false;
        };
        let [w0, w1] = self.words;
        let [m0, m1] = self.masks;
        ((u64::from_le_bytes(lo) ^ w0) & m0)
            | ((u64::from_le_bytes(hi) ^ w1) & m1)
            == 0
    }
}

/// [`Guess::mode`] of an object read with `mode`: its trie node, or
/// past every node id for one kept whole or skipped.
#[inline(always)]
fn mode_tag(mode: Mode) -> u32 {
    match mode {
        Mode::Node(id) => id,
        Mode::All => u32::MAX - 1,
        Mode::Skip => u32::MAX - 2,
    }
}

impl<'b> Fast<'b, '_> {
    /// Appends a node starting at `start`; returns its index.
    #[inline(always)]
    fn push(&mut self, node: Node<'b>, start: usize) -> usize {
        self.tape.push(node);
        // The caller checked that the message fits in u32.
        self.starts.push(u32::try_from(start).unwrap_or(u32::MAX));
        self.tape.len() - 1
    }

    /// The value at `pos` (whitespace before it allowed); the offset
    /// past it. Inlined into the containers' loops: only containers (and
    /// whitespace) cost a call.
    #[inline(always)]
    fn value(&mut self, pos: usize, mode: Mode) -> Option<usize> {
        let msg = self.msg;
        let rest = msg.get(pos..)?;
        if let [b'\\', b'"', body @ ..] = rest {
            let (n, escaped) = string_body(body)?;
            if mode != Mode::Skip {
                if escaped {
                    return None;
                }
                let s = self.text.get(pos + 2..pos + 2 + n)?;
                self.push(Node::String(s), pos);
            }
            if escaped {
                self.odd = true;
            }
            return Some(pos + 4 + n);
        }
        match rest.first()? {
            b'-' | b'0'..=b'9' => {
                if mode == Mode::Skip {
                    return skip_number(msg, pos).ok()?;
                }
                let (node, end) =
                    number_at(msg, self.text, pos, false).ok()?;
                self.push(Node::Static(node?), pos);
                Some(end)
            }
            b'{' => self.object(pos, mode),
            b'[' => self.array(pos, mode),
            b't' => self.literal(pos, b"true", true.into(), mode),
            b'f' => self.literal(pos, b"false", false.into(), mode),
            b'n' => self.literal(pos, b"null", StaticNode::Null, mode),
            b' ' | b'\\' => self.value_after_ws(pos, mode),
            _ => None,
        }
    }

    /// [`Fast::value`] after the whitespace at `pos`.
    #[inline(never)]
    fn value_after_ws(&mut self, pos: usize, mode: Mode) -> Option<usize> {
        let next = self.ws(pos);
        if next == pos {
            return None;
        }
        self.value(next, mode)
    }

    fn literal(
        &mut self,
        start: usize,
        word: &'static [u8],
        node: StaticNode,
        mode: Mode,
    ) -> Option<usize> {
        let end = literal_end(self.msg, start, word)?;
        if mode != Mode::Skip {
            self.push(Node::Static(node), start);
        }
        Some(end)
    }

    /// Opens a container at `start`: its tape node ([`NONE`] when
    /// skipped), a placeholder until [`Fast::close`].
    #[inline(always)]
    fn open(&mut self, start: usize, mode: Mode) -> Option<usize> {
        if self.depth >= FAST_DEPTH {
            return None;
        }
        self.depth += 1;
        Some(match mode {
            Mode::Skip => NONE,
            _ => self.push(Node::Array { len: 0, count: 0 }, start),
        })
    }

    /// Closes the container of tape node `node` with `len` kept members
    /// or elements.
    #[inline(always)]
    fn close(&mut self, node: usize, len: usize, object: bool) {
        self.depth -= 1;
        if node == NONE {
            return;
        }
        let count = self.tape.len().saturating_sub(node + 1);
        if let Some(n) = self.tape.get_mut(node) {
            *n = if object {
                Node::Object { len, count }
            } else {
                Node::Array { len, count }
            };
        }
    }

    /// The offset of the first byte from `pos` that is not whitespace,
    /// noting an escape among what it skips (`odd`).
    #[inline(always)]
    fn ws(&mut self, pos: usize) -> usize {
        let next = skip_ws::<true>(self.msg, pos);
        if next != pos {
            self.skipped(pos, next);
        }
        next
    }

    /// Whitespace from `from` to `to` was skipped.
    #[cold]
    #[inline(never)]
    fn skipped(&mut self, from: usize, to: usize) {
        if self.msg.get(from..to).is_some_and(|w| w.contains(&b'\\')) {
            self.odd = true;
        }
    }

    /// The offset of `want` at `pos` or after whitespace there.
    #[inline(always)]
    fn expect(&mut self, pos: usize, want: u8) -> Option<usize> {
        if self.msg.get(pos) == Some(&want) {
            return Some(pos);
        }
        let pos = self.ws(pos);
        (self.msg.get(pos) == Some(&want)).then_some(pos)
    }

    /// After a member or element at `pos`: the offset past a `,` and
    /// `false`, or past the container's `close` and `true` (whitespace
    /// before either allowed).
    #[inline(always)]
    fn after_value(&mut self, pos: usize, close: u8) -> Option<(usize, bool)> {
        let msg = self.msg;
        let at = match msg.get(pos)? {
            b',' | b'}' | b']' => pos,
            _ => self.ws(pos),
        };
        match msg.get(at)? {
            b',' => Some((at + 1, false)),
            &c if c == close => Some((at + 1, true)),
            _ => None,
        }
    }

    /// The object whose `{` is at `start`, read with `mode`.
    #[inline(never)]
    fn object(&mut self, start: usize, mode: Mode) -> Option<usize> {
        let node = self.open(start, mode)?;
        let msg = self.msg;
        let mut len = 0;
        let mut pos = start + 1;
        if !is_quote::<true>(msg, pos) {
            pos = self.ws(pos);
            if msg.get(pos) == Some(&b'}') {
                self.close(node, 0, true);
                return Some(pos + 1);
            }
        }
        let tag = mode_tag(mode);
        loop {
            let k = self.member;
            self.member += 1;
            let (value_mode, value) = match self.guesses.get(k) {
                Some(g) if g.mode == tag && g.at(msg, pos) => {
                    let (child, value) = (g.child, pos + g.len);
                    // The closing `\"` of the key. The modes as
                    // `member_key` takes them: one function for both cost
                    // 0.2% of the instructions here (BENCHMARKS.md).
                    let end = value - 3;
                    let value_mode = match mode {
                        Mode::Skip => Mode::Skip,
                        Mode::All => {
                            let key = self.text.get(pos + 2..end)?;
                            self.push(Node::String(key), pos);
                            len += 1;
                            Mode::All
                        }
                        Mode::Node(_) if child == NO_CHILD => Mode::Skip,
                        Mode::Node(_) => {
                            self.kept_key(child, pos, end, &mut len)?
                        }
                    };
                    (value_mode, value)
                }
                _ => self.member_key(k, &mut pos, mode, &mut len)?,
            };
            pos = self.value(value, value_mode)?;
            match self.after_value(pos, b'}')? {
                (next, false) => pos = next,
                (end, true) => {
                    pos = end;
                    break;
                }
            }
        }
        self.close(node, len, true);
        Some(pos)
    }

    /// The key of member `k` of an object read with `mode`, from `pos` (or
    /// whitespace before it; `pos` is moved to the key): the value's mode
    /// and offset, as [`Fast::object`] reads them without a guess. A key
    /// without escapes of the message's, followed by its `:` at once, is
    /// recorded as the guess for member `k` of the next message.
    #[inline(always)]
    fn member_key(
        &mut self,
        k: usize,
        pos: &mut usize,
        mode: Mode,
        len: &mut usize,
    ) -> Option<(Mode, usize)> {
        let msg = self.msg;
        let body = match msg.get(*pos..)? {
            [b'\\', b'"', body @ ..] => body,
            _ => {
                *pos = self.ws(*pos);
                match msg.get(*pos..)? {
                    [b'\\', b'"', body @ ..] => body,
                    _ => return None,
                }
            }
        };
        let start = *pos;
        let (n, escaped) = string_body(body)?;
        let end = start + 2 + n;
        let mut child = NO_CHILD;
        if escaped {
            self.odd = true;
        }
        let value_mode = match mode {
            Mode::Skip => Mode::Skip,
            _ if escaped => return None,
            Mode::All => {
                let key = self.text.get(start + 2..end)?;
                self.push(Node::String(key), start);
                *len += 1;
                Mode::All
            }
            Mode::Node(id) => {
                let key = body.get(..n)?;
                match self.want.child(id, key, body_head(body, n)) {
                    Some(c) => {
                        child = c;
                        self.kept_key(c, start, end, len)?
                    }
                    None => Mode::Skip,
                }
            }
        };
        let colon = self.expect(end + 2, b':')?;
        if !escaped && colon == end + 2 {
            self.record(k, start, colon + 1 - start, mode, child);
        }
        Some((value_mode, colon + 1))
    }

    /// Records the `len` bytes at `start` (a key from its `\"` through its
    /// `:`) as the guess for member `k` in an object read with `mode`,
    /// whose child there is `child`.
    #[cold]
    #[inline(never)]
    fn record(
        &mut self,
        k: usize,
        start: usize,
        len: usize,
        mode: Mode,
        child: u32,
    ) {
        if k >= GUESSES || len > 16 {
            return;
        }
        // The two words as `head_at` reads a key's first bytes, and the
        // masks of the bytes each holds.
        let (lo, end) = (len.min(8), start + len);
        let mask =
            |n: usize| u64::MAX.checked_shr(64 - 8 * n as u32).unwrap_or(0);
        let g = Guess {
            words: [
                head_at(self.msg, start, start + lo),
                head_at(self.msg, start + lo, end),
            ],
            masks: [mask(lo), mask(len - lo)],
            len,
            mode: mode_tag(mode),
            child,
        };
        if self.guesses.len() <= k {
            self.guesses.resize(k + 1, Guess::NONE);
        }
        if let Some(slot) = self.guesses.get_mut(k) {
            *slot = g;
        }
    }

    /// Keeps the key at `start..end` (its quotes' offsets) of the member
    /// of [`Want`] node `c`: its node, its slot (the value is the next
    /// node; a repeated key clears what the earlier value set below it);
    /// returns the value's mode.
    #[inline(always)]
    fn kept_key(
        &mut self,
        c: u32,
        start: usize,
        end: usize,
        len: &mut usize,
    ) -> Option<Mode> {
        let key = self.text.get(start + 2..end)?;
        self.push(Node::String(key), start);
        *len += 1;
        let at = u32::try_from(self.tape.len() - self.base).unwrap_or(NO_SLOT);
        if let Some(slot) = self.slots.get_mut(c as usize) {
            let again = *slot != NO_SLOT;
            *slot = at;
            if again {
                self.want.clear_below(c, self.slots);
            }
        }
        Some(self.want.mode(c))
    }

    /// The array whose `[` is at `start`, read with `mode` (kept whole,
    /// or skipped: a pruned array keeps no elements).
    #[inline(never)]
    fn array(&mut self, start: usize, mode: Mode) -> Option<usize> {
        let node = self.open(start, mode)?;
        let msg = self.msg;
        let elements = match mode {
            Mode::Node(_) => Mode::Skip,
            m => m,
        };
        let mut len = 0;
        let mut pos = self.ws(start + 1);
        if msg.get(pos) != Some(&b']') {
            loop {
                if elements != Mode::Skip {
                    len += 1;
                }
                pos = self.value(pos, elements)?;
                match self.after_value(pos, b']')? {
                    (next, false) => pos = next,
                    (end, true) => {
                        pos = end;
                        break;
                    }
                }
            }
        } else {
            pos += 1;
        }
        self.close(node, len, false);
        Some(pos)
    }
}

/// The body of a string of the escaped form (what follows its opening
/// `\"`): its length (up to the closing `\"`) and whether it holds
/// escapes of the message's own (`\\` and the escaped form of the
/// escaped character); `None` for anything else (a raw quote or control
/// character, an escape of the envelope's other than `\"`, no end). The
/// state machine reads strings with it too (`string_end_escaped`).
/// Walks a slice rather than offsets, so each 16-byte step costs one
/// length test.
#[inline(always)]
pub(super) fn string_body(body: &[u8]) -> Option<(usize, bool)> {
    let mut rest = body;
    let mut escaped = false;
    loop {
        let at = match rest.split_first_chunk::<16>() {
            Some((chunk, tail)) => {
                let k = block::classes(chunk);
                let m = k.bs | k.qt | k.ctl;
                if m == 0 {
                    rest = tail;
                    continue;
                }
                m.trailing_zeros() as usize
            }
            None => rest
                .iter()
                .position(|&b| b == b'\\' || b == b'"' || b < 0x20)?,
        };
        // A backslash, or a quote or control character (not JSON here).
        rest = match rest.get(at..)? {
            [b'\\', b'"', ..] => {
                return Some((body.len() - (rest.len() - at), escaped));
            }
            // An escape of the message's: `\\` and the escaped form of
            // the escaped character.
            [b'\\', b'\\', b'\\', b'"' | b'\\', tail @ ..]
            | [b'\\', b'\\', b'/' | b'b' | b'f' | b'n' | b'r' | b't', tail @ ..] =>
            {
                escaped = true;
                tail
            }
            [b'\\', b'\\', b'u', ..] => {
                let from = body.len() - (rest.len() - at);
                let (_, next) = unicode_escape(body, from, ESCAPED_U).ok()?;
                escaped = true;
                body.get(next..)?
            }
            _ => return None,
        };
    }
}

/// The [`head`](super::head) of the key that is the first `n` bytes of
/// `body`, read as one word when it can be.
#[inline(always)]
fn body_head(body: &[u8], n: usize) -> u64 {
    match body.first_chunk::<8>() {
        Some(c) if n >= 8 => u64::from_le_bytes(*c),
        Some(c) => u64::from_le_bytes(*c) & ((1u64 << (8 * n)) - 1),
        None => head_at(body, 0, n),
    }
}

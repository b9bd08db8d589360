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

use crate::decode::onepass::block;

pub(crate) mod fast;

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
    /// Tells this trie from every other one made (and from itself before
    /// an [`add`](Want::add)): the fast path's [`fast::Predict`] holds
    /// child ids resolved in one trie, good for that trie alone.
    id: u64,
}

/// A new [`Want::id`].
fn want_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[derive(Clone, Debug, Default)]
struct WantNode {
    /// Keep the whole value here.
    all: bool,
    /// Member keys to descend into.
    children: Vec<Child>,
    /// The children's [`key_bit`]s: a key whose bit is not here is no
    /// child's, told without a look at them.
    keys: u64,
}

/// One of 64 bits for a key of [`head`] `h` and length `len`.
#[inline(always)]
fn key_bit(h: u64, len: usize) -> u64 {
    1 << ((h ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}

/// A member key of a [`WantNode`] and its trie node.
#[derive(Clone, Debug)]
struct Child {
    /// [`head`] of the key: most keys are told apart without a `memcmp`.
    head: u64,
    key: Box<[u8]>,
    id: u32,
}

/// The first 8 bytes of `key`, zero-padded, as a little-endian word.
fn head(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(c) => u64::from_le_bytes(*c),
        None => key.iter().rev().fold(0, |h, &b| (h << 8) | u64::from(b)),
    }
}

/// [`head`] of the key `msg[from..to]`, read as one word when it can be.
#[inline(always)]
fn head_at(msg: &[u8], from: usize, to: usize) -> u64 {
    let len = to.saturating_sub(from);
    match msg.get(from..).and_then(<[u8]>::first_chunk::<8>) {
        Some(c) if len >= 8 => u64::from_le_bytes(*c),
        Some(c) if len > 0 => {
            u64::from_le_bytes(*c) & (u64::MAX >> (64 - 8 * len))
        }
        Some(_) => 0,
        None => head(msg.get(from..to).unwrap_or_default()),
    }
}

impl Want {
    /// Wants nothing: the scan only validates (and keeps the root's type).
    pub(crate) fn nothing() -> Want {
        Want { nodes: vec![WantNode::default()], id: want_id() }
    }

    /// Wants the whole message: a full parse.
    pub(crate) fn everything() -> Want {
        Want {
            nodes: vec![WantNode { all: true, children: Vec::new(), keys: 0 }],
            id: want_id(),
        }
    }

    /// Adds a path; an empty one wants the whole message.
    pub(crate) fn add<'s>(
        &mut self,
        steps: impl IntoIterator<Item = Step<'s>>,
    ) {
        self.id = want_id();
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
                .find(|c| *c.key == *key)
                .and_then(|c| usize::try_from(c.id).ok());
            at = match found {
                Some(c) => c,
                None => {
                    let c = self.nodes.len();
                    let Ok(id) = u32::try_from(c) else { return };
                    if let Some(node) = self.nodes.get_mut(at) {
                        let h = head(key);
                        node.keys |= key_bit(h, key.len());
                        node.children.push(Child {
                            head: h,
                            key: key.into(),
                            id,
                        });
                    }
                    self.nodes.push(WantNode::default());
                    c
                }
            };
        }
        if let Some(node) = self.nodes.get_mut(at) {
            node.all = true;
            node.children.clear();
            node.keys = 0;
        }
    }

    /// Clears the slots of the nodes below `id` (their member was in an
    /// earlier value of `id`'s key, which a later one replaces).
    fn clear_below(&self, id: u32, slots: &mut [u32]) {
        let Some(node) = self.nodes.get(id as usize) else { return };
        for c in &node.children {
            if let Some(s) = slots.get_mut(c.id as usize) {
                if *s != NO_SLOT {
                    *s = NO_SLOT;
                    self.clear_below(c.id, slots);
                }
            }
        }
    }

    /// Where a path of `keys` (from the root) is in the trie: the deepest
    /// node reached by its leading keys, not past a node kept whole, and
    /// how many keys that takes. The path's value is the one of the
    /// remaining keys looked up from that node's slot ([`scan_slots`];
    /// the root, node 0, is tape node 0).
    pub(crate) fn locate<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> (u32, usize) {
        let mut at = 0u32;
        let mut used = 0;
        for key in keys {
            let Some(node) = self.nodes.get(at as usize) else { break };
            if node.all {
                break;
            }
            let key = key.as_bytes();
            match node.children.iter().find(|c| *c.key == *key) {
                Some(c) => {
                    at = c.id;
                    used += 1;
                }
                None => break,
            }
        }
        (at, used)
    }

    /// The mode for a value at trie node `id`.
    fn mode(&self, id: u32) -> Mode {
        match usize::try_from(id).ok().and_then(|i| self.nodes.get(i)) {
            Some(n) if n.all => Mode::All,
            Some(_) => Mode::Node(id),
            None => Mode::Skip,
        }
    }

    /// The child of `id` for member `key`, whose [`head`] is `h`.
    #[inline(always)]
    fn child(&self, id: u32, key: &[u8], h: u64) -> Option<u32> {
        let node = self.nodes.get(usize::try_from(id).ok()?)?;
        if node.keys & key_bit(h, key.len()) == 0 {
            return None;
        }
        for c in &node.children {
            if c.head == h
                && c.key.len() == key.len()
                && (key.len() <= 8 || *c.key == *key)
            {
                return Some(c.id);
            }
        }
        None
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

/// No tape node.
const NONE: usize = usize::MAX;

/// A container being scanned (or the top level).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    /// Its tape node, or [`NONE`] when it is skipped.
    node: usize,
    /// For an object, its own mode (keys are looked up in it); for an
    /// array, its elements' mode.
    mode: Mode,
    /// Kept members or elements.
    len: usize,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Top,
    Object,
    Array,
}

const TOP: Frame =
    Frame { node: NONE, mode: Mode::Skip, len: 0, kind: Kind::Top };

/// Buffers [`scan`] reuses from message to message.
#[derive(Debug, Default)]
pub(crate) struct ScanScratch {
    /// Unescaped strings.
    pub(crate) arena: Vec<u8>,
    /// Open containers.
    pub(crate) stack: Vec<Frame>,
    /// Where each tape node starts in the message.
    pub(crate) starts: Vec<u32>,
    /// [`scan_slots`]'s slots.
    pub(crate) slots: Vec<u32>,
    /// Escaped messages [`scan_slots`]'s fast path gave up on (read by
    /// its state machine).
    pub(crate) gave_up: u64,
    /// The fast path's guesses of the next message's keys.
    pub(crate) predict: fast::Predict,
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
    scan_level::<false>(message, want, arena, stack, tape, starts, None, None)
}

/// [`scan`] of a message still in its escaped form: `escaped` is the body
/// of the envelope's JSON string that holds the message (the bytes
/// between its quotes), and the tape is the one [`scan`] gives for the
/// unescaped message, except that `starts` are offsets in `escaped`.
///
/// At the envelope's level only the escapes `\"`, `\\`, `\n`, `\r` and
/// `\t` are read (the last three as whitespace between tokens); any
/// other (`\/`, `\u…`, `\b`, `\f`, or a control character inside a
/// string of the message) is an error, and the caller falls back to
/// unescaping the message and calling [`scan`]. Strings without escapes
/// at either level borrow `escaped`; the others are unescaped twice into
/// `arena`. With `fast`, [`fast::scan`] reads it first and the state
/// machine only where that gives up; without, the state machine alone
/// (the stage benches set the two side by side).
///
/// # Errors
///
/// A [`ScanError`] when the unescaped message is not one JSON text, or
/// holds an escape this form does not read; offsets are in `escaped`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_escaped<'b>(
    escaped: &'b str,
    fast: bool,
    want: &Want,
    arena: &'b mut Vec<u8>,
    stack: &mut Vec<Frame>,
    tape: &mut Vec<Node<'b>>,
    starts: &mut Vec<u32>,
    predict: &mut fast::Predict,
) -> Result<(), ScanError> {
    let mut gave_up = 0;
    let fast = fast.then_some((&mut gave_up, predict));
    scan_level::<true>(escaped, want, arena, stack, tape, starts, None, fast)
}

/// [`scan`] (`escaped` false) or [`scan_escaped`] (true) that also fills
/// `slots`, one per [`Want`] node: the tape index of the value of the
/// last member kept for that node ([`NO_SLOT`] when there is none), with
/// the slots below a node cleared whenever its key repeats, so that
/// `slots[n]` is the value a path to `n` looks up (of repeated keys the
/// last, at every step). See [`Want::locate`].
///
/// # Errors
///
/// As [`scan`] and [`scan_escaped`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_slots<'b>(
    text: &'b str,
    escaped: bool,
    want: &Want,
    arena: &'b mut Vec<u8>,
    stack: &mut Vec<Frame>,
    tape: &mut Vec<Node<'b>>,
    starts: &mut Vec<u32>,
    slots: &mut Vec<u32>,
    gave_up: &mut u64,
    predict: &mut fast::Predict,
) -> Result<(), ScanError> {
    if escaped {
        scan_level::<true>(
            text,
            want,
            arena,
            stack,
            tape,
            starts,
            Some(slots),
            Some((gave_up, predict)),
        )
    } else {
        scan_level::<false>(
            text,
            want,
            arena,
            stack,
            tape,
            starts,
            Some(slots),
            None,
        )
    }
}

/// Messages of one envelope scanned ahead of their events, as the
/// envelope reader meets them ([`prescan`]): each message's tape, node
/// offsets and slots, one after another, for the mapper to take when it
/// maps the event ([`Prescanned::get`]). Kept from envelope to envelope
/// (emptied by [`Prescanned::reset`]), so a warm scan does not allocate.
#[doc(hidden)]
#[derive(Debug)]
pub struct Prescanned<'a> {
    tape: simd_json::value::tape::Tape<'a>,
    starts: Vec<u32>,
    slots: Vec<u32>,
    /// Per message: its first node, its end, and its first slot (each
    /// message has one slot per [`Want`] node).
    messages: Vec<[u32; 3]>,
}

/// One message of [`Prescanned`]: what [`scan_slots`] gives for it.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Scanned<'s, 'a> {
    pub(crate) tape: &'s [Node<'a>],
    pub(crate) starts: &'s [u32],
    pub(crate) slots: &'s [u32],
}

impl Default for Prescanned<'static> {
    fn default() -> Self {
        Prescanned {
            tape: simd_json::value::tape::Tape(Vec::new()),
            starts: Vec::new(),
            slots: Vec::new(),
            messages: Vec::new(),
        }
    }
}

impl<'a> Prescanned<'a> {
    /// Empties it, for messages that live for `'n`.
    #[must_use]
    pub(crate) fn reset<'n>(mut self) -> Prescanned<'n> {
        self.starts.clear();
        self.slots.clear();
        self.messages.clear();
        Prescanned {
            tape: self.tape.reset(),
            starts: self.starts,
            slots: self.slots,
            messages: self.messages,
        }
    }

    /// Message `k` ([`prescan`]'s number for it).
    pub(crate) fn get(&self, k: u32) -> Option<Scanned<'_, 'a>> {
        let &[a, z, s] = self.messages.get(k as usize)?;
        let (a, z, s) = (a as usize, z as usize, s as usize);
        let n = self
            .messages
            .get(k as usize + 1)
            .map_or(self.slots.len(), |m| m[2] as usize);
        Some(Scanned {
            tape: self.tape.0.get(a..z)?,
            starts: self.starts.get(a..z)?,
            slots: self.slots.get(s..n)?,
        })
    }
}

/// Scans the message that starts `body` with [`fast::scan_prefix`]
/// (`body` runs on to the envelope's end), appending its tape to `pre`:
/// the message's length in `body`, whether its every escape is `\"`
/// ([`crate::decode::onepass::quotes_only`]), and its number in `pre`.
/// `None` (and `pre` as it was) where the fast path does not read it; the
/// envelope reader then finds the message's end itself, and the mapper
/// scans it as any other.
pub(crate) fn prescan<'a>(
    body: &'a str,
    want: &Want,
    pre: &mut Prescanned<'a>,
    predict: &mut fast::Predict,
) -> Option<(usize, bool, u32)> {
    let (t0, s0) = (pre.tape.0.len(), pre.slots.len());
    let k = u32::try_from(pre.messages.len()).ok()?;
    let at = [u32::try_from(t0).ok()?, 0, u32::try_from(s0).ok()?];
    pre.slots.resize(s0 + want.nodes.len(), NO_SLOT);
    let slots = pre.slots.get_mut(s0..).unwrap_or_default();
    let read = fast::scan_prefix(
        body,
        want,
        &mut pre.tape.0,
        &mut pre.starts,
        slots,
        predict,
    );
    let end = u32::try_from(pre.tape.0.len()).ok();
    match (read, end) {
        (Some((len, quotes_only)), Some(end)) => {
            pre.messages.push([at[0], end, at[2]]);
            Some((len, quotes_only, k))
        }
        _ => {
            pre.tape.0.truncate(t0);
            pre.starts.truncate(t0);
            pre.slots.truncate(s0);
            None
        }
    }
}

/// The fast path's invariant, for the tests and the fuzz targets: where
/// [`fast::scan`] reads `escaped`, the state machine accepts it too, with
/// the same tape, node offsets and slots; and it reads it the same with
/// `predict`'s guesses of its keys ([`fast::Predict`]: what earlier
/// messages left, then this one's), with none, with the guesses it leaves
/// for itself (all right), and with guessing switched off. And
/// [`prescan`] reads `escaped` followed by the envelope string's end the
/// same (after another message), to its end, telling
/// [`quotes_only`](crate::decode::onepass::quotes_only); it reads no
/// message [`fast::scan`] does not. Returns whether it read it.
///
/// # Panics
///
/// When they differ.
pub(crate) fn fast_agrees_after(
    escaped: &str,
    want: &Want,
    predict: &mut fast::Predict,
) -> bool {
    let (mut arena, mut stack) = (Vec::new(), Vec::new());
    let (mut tape, mut starts) = (Vec::new(), Vec::new());
    let mut slots = Vec::new();
    let slow = scan_level::<true>(
        escaped,
        want,
        &mut arena,
        &mut stack,
        &mut tape,
        &mut starts,
        Some(&mut slots),
        None,
    );
    let mut own = fast::Predict::default();
    let mut off = fast::Predict::default();
    off.set_on(false);
    let mut read = None;
    for p in [&mut *predict, &mut own, &mut off] {
        for _ in 0..2 {
            let (mut t2, mut s2) = (Vec::new(), Vec::new());
            let mut slots2 = vec![NO_SLOT; want.nodes.len()];
            let again =
                fast::scan(escaped, want, &mut t2, &mut s2, &mut slots2, p);
            let again = again.is_some();
            assert!(read.is_none() || read == Some(again), "{escaped:?}");
            read = Some(again);
            if again {
                assert!(
                    slow.is_ok(),
                    "{escaped:?}: fast path read what is refused"
                );
                assert_eq!(
                    format!("{tape:?}"),
                    format!("{t2:?}"),
                    "{escaped:?}"
                );
                assert_eq!(starts, s2, "{escaped:?}");
                assert_eq!(slots, slots2, "{escaped:?}");
            }
        }
    }
    prescan_agrees(escaped, want, read == Some(true), &tape, &starts, &slots);
    read == Some(true)
}

/// [`fast_agrees_after`]'s check of [`prescan`], given what
/// [`fast::scan`] made of `escaped` (`read`, and then its tape, node
/// offsets and slots).
fn prescan_agrees(
    escaped: &str,
    want: &Want,
    read: bool,
    tape: &[Node<'_>],
    starts: &[u32],
    slots: &[u32],
) {
    // Behind an earlier message in the same arena, then the envelope's
    // end and more of it.
    let first = "{\\\"a\\\":[1,\\\"b\\\"]}\"";
    for tail in ["\"}]}", "\"", "\"\\\"x\\\":1}"] {
        let doc = format!("{first}{escaped}{tail}");
        let mut pre = Prescanned::default();
        let mut predict = fast::Predict::default();
        let ahead = prescan(&doc, want, &mut pre, &mut predict);
        assert_eq!(ahead.map(|a| (a.0, a.2)), Some((first.len() - 1, 0)));
        let body = doc.get(first.len()..).unwrap_or_default();
        for _ in 0..2 {
            let got = prescan(body, want, &mut pre, &mut predict);
            if !read {
                // (It may read a shorter message, up to a `"` in
                // `escaped`, or a longer one, where `escaped` ends in a
                // backslash; the envelope reader would not end a string
                // at either.)
                assert!(
                    got.is_none_or(|g| g.0 != escaped.len()),
                    "{escaped:?}: prescan read what the fast path does not"
                );
                continue;
            }
            assert!(got.is_some(), "{escaped:?}: prescan did not read it");
            let Some((len, quotes_only, k)) = got else { continue };
            assert_eq!(len, escaped.len(), "{escaped:?}");
            assert_eq!(
                quotes_only,
                crate::decode::onepass::quotes_only(escaped.as_bytes()),
                "{escaped:?}"
            );
            let s = pre.get(k);
            assert!(s.is_some(), "{escaped:?}: no message {k}");
            let Some(s) = s else { continue };
            assert_eq!(format!("{tape:?}"), format!("{:?}", s.tape));
            assert_eq!(starts, s.starts, "{escaped:?}");
            assert_eq!(slots, s.slots, "{escaped:?}");
        }
    }
}

/// [`fast_agrees_after`] with no earlier messages.
#[cfg(test)]
pub(crate) fn fast_agrees(escaped: &str, want: &Want) -> bool {
    fast_agrees_after(escaped, want, &mut fast::Predict::default())
}

/// A [`Want`] node with no kept member in the message.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// [`scan`] (`E = false`) or [`scan_escaped`] (`E = true`); not inlined
/// into the mapper, where it was slower (more of its state on the stack:
/// 179.74 M -> 178.53 M instructions on the first bench object). With
/// `fast` (and `E`), the escaped message is read by [`fast::scan`] first,
/// and by the state machine only where that gives up (counted in `fast`).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn scan_level<'b, const E: bool>(
    message: &'b str,
    want: &Want,
    arena: &'b mut Vec<u8>,
    stack: &mut Vec<Frame>,
    tape: &mut Vec<Node<'b>>,
    starts: &mut Vec<u32>,
    slots: Option<&mut Vec<u32>>,
    fast: Option<(&mut u64, &mut fast::Predict)>,
) -> Result<(), ScanError> {
    tape.clear();
    starts.clear();
    stack.clear();
    let slots = match slots {
        Some(v) => {
            v.clear();
            v.resize(want.nodes.len(), NO_SLOT);
            v.as_mut_slice()
        }
        None => &mut [][..],
    };
    if u32::try_from(message.len()).is_err() {
        return err(0, "message longer than 4 GiB");
    }
    // The fast path first; where it gives up, the state machine decides.
    if let (true, Some((gave_up, predict))) = (E, fast) {
        if fast::scan(message, want, tape, starts, slots, predict).is_some() {
            return Ok(());
        }
        *gave_up += 1;
        tape.clear();
        starts.clear();
        slots.fill(NO_SLOT);
    }
    if arena.len() < message.len() {
        arena.resize(message.len(), 0);
    }
    let mut s = Scanner::<E> {
        text: message,
        msg: message.as_bytes(),
        free: arena.as_mut_slice(),
        want,
        tape,
        starts,
        stack,
        slots,
    };
    s.run()
}

/// The scanner; `E`: the message is in its escaped form ([`scan_escaped`]).
struct Scanner<'b, 'r, const E: bool> {
    text: &'b str,
    msg: &'b [u8],
    /// The unused part of the arena.
    free: &'b mut [u8],
    want: &'r Want,
    tape: &'r mut Vec<Node<'b>>,
    starts: &'r mut Vec<u32>,
    stack: &'r mut Vec<Frame>,
    /// [`scan_slots`]'s slots (empty for [`scan`] and [`scan_escaped`]).
    slots: &'r mut [u32],
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that is `"`, `\` or below 0x20, and
/// of each that is `"`. Only the lowest flagged byte is exact (a borrow
/// can flag bytes above it), which is all [`string_end`] uses: when it is
/// flagged in the second mask too, it is a quote.
#[inline(always)]
fn special(w: u64) -> (u64, u64) {
    let q = w ^ (LO * u64::from(b'"'));
    let b = w ^ (LO * u64::from(b'\\'));
    let zq = q.wrapping_sub(LO) & !q & HI;
    let zb = b.wrapping_sub(LO) & !b;
    let ctl = w.wrapping_sub(LO * 0x20) & !w;
    (zq | ((zb | ctl) & HI), zq)
}

/// What a one-letter JSON escape `\c` stands for (`"`, `\`, `/`, `b`,
/// `f`, `n`, `r`, `t`).
#[inline(always)]
pub(crate) fn short_escape(c: u8) -> Option<char> {
    Some(match c {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return None,
    })
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        v = v * 16 + char::from(c).to_digit(16)?;
    }
    Some(v)
}

/// How a `\u` escape starts in a message as written (`\u`) and in its
/// escaped form inside the envelope's string (`\\u`).
pub(crate) const PLAIN_U: &[u8] = b"\\u";
pub(crate) const ESCAPED_U: &[u8] = b"\\\\u";

/// The code point of the `\u` escape at `at` (its first backslash),
/// written with `prefix` ([`PLAIN_U`] or [`ESCAPED_U`]), and the offset
/// just past it (past both halves of a surrogate pair).
pub(crate) fn unicode_escape(
    msg: &[u8],
    at: usize,
    prefix: &[u8],
) -> Result<(u32, usize), ScanError> {
    let one = prefix.len() + 4;
    let hi = msg
        .get(at + prefix.len()..)
        .and_then(hex4)
        .map_or_else(|| err(at, "invalid \\u escape"), Ok)?;
    match hi {
        0xD800..=0xDBFF => {
            let lo = match msg.get(at + one..at + one + prefix.len()) {
                Some(p) if p == prefix => {
                    msg.get(at + one + prefix.len()..).and_then(hex4)
                }
                _ => None,
            };
            match lo {
                Some(lo @ 0xDC00..=0xDFFF) => Ok((
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00),
                    at + 2 * one,
                )),
                _ => err(at, "lone surrogate in \\u escape"),
            }
        }
        0xDC00..=0xDFFF => err(at, "lone surrogate in \\u escape"),
        _ => Ok((hi, at + one)),
    }
}

/// Validates the string in `msg` whose opening quote is at `start`;
/// returns the offset of its closing quote and whether it has escapes.
#[inline(always)]
fn string_end(msg: &[u8], start: usize) -> Result<(usize, bool), ScanError> {
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        let c = match msg.get(i..).and_then(<[u8]>::first_chunk::<8>) {
            Some(chunk) => {
                let (m, quote) = special(u64::from_le_bytes(*chunk));
                if m == 0 {
                    i += 8;
                    continue;
                }
                // m's lowest set bit is the top bit of the byte.
                let low = m & m.wrapping_neg();
                i += (m.trailing_zeros() / 8) as usize;
                if quote & low != 0 {
                    return Ok((i, escaped));
                }
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
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't',
                    ) => i + 2,
                    Some(b'u') => unicode_escape(msg, i, PLAIN_U)?.1,
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

#[inline]
fn is_digit(b: Option<&u8>) -> bool {
    b.is_some_and(u8::is_ascii_digit)
}

/// The width of a quote of the message: `"`, or `\"` in escaped form.
const fn qw(escaped: bool) -> usize {
    if escaped {
        2
    } else {
        1
    }
}

/// Whether a string of the message opens (or closes) at `pos`.
#[inline(always)]
fn is_quote<const E: bool>(msg: &[u8], pos: usize) -> bool {
    if E {
        msg.get(pos..).and_then(<[u8]>::first_chunk::<2>) == Some(b"\\\"")
    } else {
        msg.get(pos) == Some(&b'"')
    }
}

/// [`string_end`] for the escaped form: `start` is the `\` of the
/// opening `\"`; returns the offset of the closing `\"` and whether the
/// string has escapes of the message's own. The grammar is the fast
/// path's ([`fast::string_body`]); its errors carry no detail but the
/// string's start, because an error in the escaped form is never shown:
/// the message then goes to the unescaped path, which reports its own.
#[inline(always)]
fn string_end_escaped(
    msg: &[u8],
    start: usize,
) -> Result<(usize, bool), ScanError> {
    match msg.get(start + 2..).and_then(fast::string_body) {
        Some((n, escaped)) => Ok((start + 2 + n, escaped)),
        None => err(start, "string not read in escaped form"),
    }
}

impl<'b, const E: bool> Scanner<'b, '_, E> {
    fn run(&mut self) -> Result<(), ScanError> {
        let msg = self.msg;
        let mut pos = 0;
        // The innermost open container; its parents are on the stack.
        let mut top = TOP;
        let mut mode = self.want.mode(0);
        'value: loop {
            // Compact JSON has no whitespace: it is looked for only where
            // the byte is not what usually comes (here, a string).
            let mut start = pos;
            let mut quote = is_quote::<E>(msg, start);
            if !quote {
                start = skip_ws::<E>(msg, start);
                quote = is_quote::<E>(msg, start);
            }
            if quote {
                let (end, escaped) = if E {
                    string_end_escaped(msg, start)?
                } else {
                    string_end(msg, start)?
                };
                if mode != Mode::Skip {
                    let s = self.string(start, end, escaped)?;
                    self.push(Node::String(s), start);
                }
                pos = end + qw(E);
            } else {
                match msg.get(start) {
                    Some(b'-' | b'0'..=b'9') => {
                        pos = self.number(start, mode)?
                    }
                    Some(&c @ (b'{' | b'[')) => {
                        if self.stack.len() >= MAX_DEPTH {
                            return err(start, "nesting deeper than 1024");
                        }
                        let obj = c == b'{';
                        let node = match mode {
                            Mode::Skip => NONE,
                            _ => self
                                .push(Node::Array { len: 0, count: 0 }, start),
                        };
                        self.stack.push(top);
                        top = Frame {
                            node,
                            mode: match mode {
                                Mode::Node(_) if !obj => Mode::Skip,
                                m => m,
                            },
                            len: 0,
                            kind: if obj { Kind::Object } else { Kind::Array },
                        };
                        pos = start + 1;
                        let close = if obj { b'}' } else { b']' };
                        if !(obj && is_quote::<E>(msg, pos)) {
                            pos = skip_ws::<E>(msg, pos);
                        }
                        if msg.get(pos) != Some(&close) {
                            (pos, mode) = self.member(&mut top, pos)?;
                            continue 'value;
                        }
                        pos += 1;
                        self.close(&mut top);
                    }
                    Some(b't') => {
                        pos =
                            self.literal(start, b"true", true.into(), mode)?;
                    }
                    Some(b'f') => {
                        pos =
                            self.literal(start, b"false", false.into(), mode)?;
                    }
                    Some(b'n') => {
                        pos = self.literal(
                            start,
                            b"null",
                            StaticNode::Null,
                            mode,
                        )?;
                    }
                    Some(_) => return err(start, "expected a value"),
                    None => return err(start, "unexpected end of input"),
                }
            }
            // After a value: a separator, a closer, or the end.
            loop {
                match (msg.get(pos), top.kind) {
                    (Some(b','), Kind::Object | Kind::Array) => {
                        // The member (a key) or the 'value loop (an
                        // element) skips the whitespace after the comma.
                        (pos, mode) = self.member(&mut top, pos + 1)?;
                        continue 'value;
                    }
                    (Some(b'}'), Kind::Object) | (Some(b']'), Kind::Array) => {
                        pos += 1;
                        self.close(&mut top);
                    }
                    _ if skip_ws::<E>(msg, pos) != pos => {
                        pos = skip_ws::<E>(msg, pos);
                    }
                    (_, Kind::Top) if pos < msg.len() => {
                        return err(pos, "trailing characters");
                    }
                    (_, Kind::Top) => return Ok(()),
                    (None, _) => return err(pos, "unexpected end of input"),
                    (Some(_), Kind::Object) => {
                        return err(pos, "expected ',' or '}'");
                    }
                    (Some(_), Kind::Array) => {
                        return err(pos, "expected ',' or ']'");
                    }
                }
            }
        }
    }

    /// Starts the next member of `top` at `pos`: for an object, reads the
    /// key and the `:`. Returns where the value starts and its mode.
    #[inline(always)]
    fn member(
        &mut self,
        top: &mut Frame,
        pos: usize,
    ) -> Result<(usize, Mode), ScanError> {
        let msg = self.msg;
        if top.kind != Kind::Object {
            if top.mode != Mode::Skip {
                top.len += 1;
            }
            return Ok((pos, top.mode));
        }
        let start =
            if is_quote::<E>(msg, pos) { pos } else { skip_ws::<E>(msg, pos) };
        match msg.get(start) {
            _ if is_quote::<E>(msg, start) => {}
            Some(_) => return err(start, "expected a string key"),
            None => return err(start, "unexpected end of input"),
        }
        let (end, escaped) = if E {
            string_end_escaped(msg, start)?
        } else {
            string_end(msg, start)?
        };
        let q = qw(E);
        let mode = match top.mode {
            Mode::Skip => Mode::Skip,
            Mode::All => {
                let key = self.string(start, end, escaped)?;
                self.push(Node::String(key), start);
                top.len += 1;
                Mode::All
            }
            Mode::Node(id) => {
                let child = if escaped {
                    let n = self.unescape(start + q, end)?;
                    let key = self.free.get(..n).unwrap_or_default();
                    match self.want.child(id, key, head(key)) {
                        Some(c) => Some((c, self.commit(n, start)?)),
                        None => None,
                    }
                } else {
                    let key = msg.get(start + q..end).unwrap_or_default();
                    let h = head_at(msg, start + q, end);
                    match self.want.child(id, key, h) {
                        Some(c) => Some((c, self.borrowed(start + q, end)?)),
                        None => None,
                    }
                };
                match child {
                    Some((c, key)) => {
                        self.push(Node::String(key), start);
                        top.len += 1;
                        // The value is the next node (a kept member's
                        // value is never skipped).
                        let at =
                            u32::try_from(self.tape.len()).unwrap_or(NO_SLOT);
                        if let Some(slot) = self.slots.get_mut(c as usize) {
                            let again = *slot != NO_SLOT;
                            *slot = at;
                            if again {
                                self.want.clear_below(c, self.slots);
                            }
                        }
                        self.want.mode(c)
                    }
                    None => Mode::Skip,
                }
            }
        };
        let colon = match msg.get(end + q) {
            Some(b':') => end + q,
            _ => skip_ws::<E>(msg, end + q),
        };
        if msg.get(colon) != Some(&b':') {
            return err(colon, "expected ':'");
        }
        Ok((colon + 1, mode))
    }

    /// Closes `top`, filling in its tape node; its parent becomes `top`.
    #[inline(always)]
    fn close(&mut self, top: &mut Frame) {
        let f = *top;
        *top = self.stack.pop().unwrap_or(TOP);
        if f.node == NONE {
            return;
        }
        let count = self.tape.len().saturating_sub(f.node + 1);
        let len = f.len;
        if let Some(n) = self.tape.get_mut(f.node) {
            *n = if f.kind == Kind::Object {
                Node::Object { len, count }
            } else {
                Node::Array { len, count }
            };
        }
    }

    /// Appends a node starting at `start`; returns its index.
    #[inline(always)]
    fn push(&mut self, node: Node<'b>, start: usize) -> usize {
        self.tape.push(node);
        // The length was checked to fit in u32.
        self.starts.push(u32::try_from(start).unwrap_or(u32::MAX));
        self.tape.len() - 1
    }

    fn literal(
        &mut self,
        start: usize,
        word: &'static [u8],
        node: StaticNode,
        mode: Mode,
    ) -> Result<usize, ScanError> {
        let Some(end) = literal_end(self.msg, start, word) else {
            return err(start, "invalid literal");
        };
        if mode != Mode::Skip {
            self.push(Node::Static(node), start);
        }
        Ok(end)
    }

    /// The string whose quotes are at `start` and `end`, unescaped.
    #[inline(always)]
    fn string(
        &mut self,
        start: usize,
        end: usize,
        escaped: bool,
    ) -> Result<&'b str, ScanError> {
        if escaped {
            let n = self.unescape(start + qw(E), end)?;
            self.commit(n, start)
        } else {
            self.borrowed(start + qw(E), end)
        }
    }

    /// The message text between `from` and `to` (no escapes in it).
    #[inline(always)]
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
            if E {
                // Inside a string of the escaped form, a backslash starts
                // `\\` and the escaped form of the message's escape.
                let (ch, next) =
                    match (self.msg.get(i + 1), self.msg.get(i + 2)) {
                        (Some(b'\\'), Some(b'\\')) => {
                            match self.msg.get(i + 3) {
                                Some(b'"') => ('"', i + 4),
                                Some(b'\\') => ('\\', i + 4),
                                _ => return err(i, "invalid escape"),
                            }
                        }
                        (Some(b'\\'), Some(b'/')) => ('/', i + 3),
                        (Some(b'\\'), Some(b'b')) => ('\u{8}', i + 3),
                        (Some(b'\\'), Some(b'f')) => ('\u{c}', i + 3),
                        (Some(b'\\'), Some(b'n')) => ('\n', i + 3),
                        (Some(b'\\'), Some(b'r')) => ('\r', i + 3),
                        (Some(b'\\'), Some(b't')) => ('\t', i + 3),
                        (Some(b'\\'), Some(b'u')) => {
                            let (cp, next) =
                                unicode_escape(self.msg, i, ESCAPED_U)?;
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
                continue;
            }
            let (ch, next) = match self.msg.get(i + 1) {
                Some(b'u') => {
                    let (cp, next) = unicode_escape(self.msg, i, PLAIN_U)?;
                    match char::from_u32(cp) {
                        Some(c) => (c, next),
                        None => return err(i, "invalid \\u escape"),
                    }
                }
                Some(&c) => match short_escape(c) {
                    Some(ch) => (ch, i + 2),
                    None => return err(i, "invalid escape"),
                },
                None => return err(i, "invalid escape"),
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
    fn commit(&mut self, n: usize, at: usize) -> Result<&'b str, ScanError> {
        let free = std::mem::take(&mut self.free);
        let Some((piece, rest)) = free.split_at_mut_checked(n) else {
            return err(at, "unescape arena too small");
        };
        self.free = rest;
        let piece: &'b [u8] = piece;
        std::str::from_utf8(piece)
            .map_or_else(|_| err(at, "unescaped string is not UTF-8"), Ok)
    }

    /// Scans the number at `start`; returns the offset past it.
    #[inline(always)]
    fn number(
        &mut self,
        start: usize,
        mode: Mode,
    ) -> Result<usize, ScanError> {
        if mode == Mode::Skip {
            if let Some(end) = skip_number(self.msg, start)? {
                return Ok(end);
            }
        }
        let (node, end) =
            number_at(self.msg, self.text, start, mode == Mode::Skip)?;
        if let (Some(node), true) = (node, mode != Mode::Skip) {
            self.push(Node::Static(node), start);
        }
        Ok(end)
    }
}

/// The number at `start` of `msg` (`text`, the same bytes): its node, as
/// simd-json gives it, and the offset past it. With `skip`, a number
/// that cannot be out of range is only validated (its node `None`).
#[inline(always)]
fn number_at(
    msg: &[u8],
    text: &str,
    start: usize,
    skip: bool,
) -> Result<(Option<StaticNode>, usize), ScanError> {
    let mut i = start;
    let neg = msg.get(i) == Some(&b'-');
    if neg {
        i += 1;
    }
    // The significand's digits, as long as they fit.
    let mut sig = 0u64;
    let mut digits = 0usize;
    match msg.get(i) {
        Some(b'0') => {
            i += 1;
            if is_digit(msg.get(i)) {
                return err(i, "leading zero in number");
            }
        }
        Some(&d @ b'1'..=b'9') => {
            sig = u64::from(d - b'0');
            digits = 1;
            i += 1;
            while let Some(&d @ b'0'..=b'9') = msg.get(i) {
                sig = sig.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                digits += 1;
                i += 1;
            }
        }
        _ => return err(i, "expected a digit"),
    }
    let int_digits = digits;
    let mut frac_digits = 0usize;
    let mut float = false;
    let mut exp: Option<i64> = None;
    if msg.get(i) == Some(&b'.') {
        i += 1;
        if !is_digit(msg.get(i)) {
            return err(i, "expected a digit after '.'");
        }
        while let Some(&d @ b'0'..=b'9') = msg.get(i) {
            sig = sig.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            // Leading zeros are not significant; once a digit is, every
            // later one counts (even when `sig` has wrapped to 0).
            if sig != 0 || digits > 0 {
                digits += 1;
            }
            frac_digits += 1;
            i += 1;
        }
        float = true;
    }
    if let Some(b'e' | b'E') = msg.get(i) {
        i += 1;
        let eneg = match msg.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        if !is_digit(msg.get(i)) {
            return err(i, "expected a digit in the exponent");
        }
        let mut e = 0i64;
        while let Some(&d @ b'0'..=b'9') = msg.get(i) {
            e = (e * 10 + i64::from(d - b'0')).min(1 << 32);
            i += 1;
        }
        exp = Some(if eneg { -e } else { e });
        float = true;
    }
    // Only an exponent or 309 integer digits can overflow f64.
    if skip && exp.is_none() && int_digits < 309 {
        return Ok((None, i));
    }
    let node = if !float && digits <= 19 {
        // `sig` is exact.
        if neg {
            0i64.checked_sub_unsigned(sig).map(StaticNode::I64)
        } else {
            Some(StaticNode::U64(sig))
        }
    } else if !float {
        integer(msg.get(start + usize::from(neg)..i).unwrap_or(&[]), neg)
    } else if float && digits <= 19 && sig <= 1 << 53 {
        // Clinger's fast path: both operands are exact, so one
        // correctly rounded operation gives the correctly rounded
        // value.
        let e10 = exp.unwrap_or(0) - frac_digits as i64;
        let f = sig as f64;
        let f = match usize::try_from(e10.unsigned_abs()) {
            Ok(k) if e10 >= 0 => POW10.get(k).map(|p| f * p),
            Ok(k) => POW10.get(k).map(|p| f / p),
            Err(_) => None,
        };
        f.map(|f| StaticNode::F64(if neg { -f } else { f }))
    } else {
        None
    };
    let node = match node {
        Some(n) => n,
        None => {
            let lexeme = text.get(start..i).unwrap_or("0");
            match lexeme.parse::<f64>() {
                Ok(f) if f.is_finite() => StaticNode::F64(f),
                _ => return err(start, "number out of range"),
            }
        }
    };
    Ok((Some(node), i))
}

/// The offset past the literal `word` (`true`, `false`, `null`) when it
/// is at `start` of `msg`.
#[inline(always)]
fn literal_end(msg: &[u8], start: usize, word: &[u8]) -> Option<usize> {
    let end = start + word.len();
    (msg.get(start..end) == Some(word)).then_some(end)
}

/// The offset past the run of ASCII digits at `i`: eight at a time while
/// the message has eight more bytes.
#[inline(always)]
pub(super) fn digits_end(msg: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = msg.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*chunk);
        // A byte is a digit when its high nibble is 3 and adding 6 keeps
        // it so; the lowest byte that is not gives the run's end.
        let not = (w & 0xF0F0_F0F0_F0F0_F0F0) ^ 0x3030_3030_3030_3030
            | ((w.wrapping_add(0x0606_0606_0606_0606)
                & 0xF0F0_F0F0_F0F0_F0F0)
                ^ 0x3030_3030_3030_3030);
        if not != 0 {
            return i + (not.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while is_digit(msg.get(i)) {
        i += 1;
    }
    i
}

/// A skipped number's end, validated as [`Scanner::number`] validates it
/// (the same errors at the same offsets), without its value; `None` when
/// only the value can tell whether it is in range (an exponent, or 309
/// integer digits and more), which the full path then decides.
#[inline(always)]
fn skip_number(msg: &[u8], start: usize) -> Result<Option<usize>, ScanError> {
    let mut i = start + usize::from(msg.get(start) == Some(&b'-'));
    let first = i;
    match msg.get(i) {
        Some(b'0') => {
            i += 1;
            if is_digit(msg.get(i)) {
                return err(i, "leading zero in number");
            }
        }
        Some(b'1'..=b'9') => i = digits_end(msg, i + 1),
        _ => return err(i, "expected a digit"),
    }
    if i - first >= 309 {
        return Ok(None);
    }
    if msg.get(i) == Some(&b'.') {
        i += 1;
        if !is_digit(msg.get(i)) {
            return err(i, "expected a digit after '.'");
        }
        i = digits_end(msg, i);
    }
    if let Some(b'e' | b'E') = msg.get(i) {
        return Ok(None);
    }
    Ok(Some(i))
}

/// Powers of ten exactly representable as `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
    1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The offset of the first non-whitespace byte from `pos`.
/// In escaped form (`E`), whitespace is ` ` and the escapes `\\n`,
/// `\\r` and `\\t`.
#[inline(always)]
fn skip_ws<const E: bool>(msg: &[u8], mut pos: usize) -> usize {
    if E {
        loop {
            match msg.get(pos) {
                Some(b' ') => pos += 1,
                Some(b'\\') => match msg.get(pos + 1) {
                    Some(b'n' | b'r' | b't') => pos += 2,
                    _ => return pos,
                },
                _ => return pos,
            }
        }
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = msg.get(pos) {
        pos += 1;
    }
    pos
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

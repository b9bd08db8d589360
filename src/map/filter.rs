//! CloudWatch Logs filter patterns: parser and matcher.
//!
//! [`FilterPattern::parse`] compiles a pattern once (terms become
//! [`memchr::memmem::Finder`]s, regular expressions become [`Regex`]es,
//! numbers are parsed); [`FilterPattern::matches`] then evaluates it on each
//! log message without allocating.
//!
//! The syntax is the one of CloudWatch Logs subscription and metric filters
//! (AWS "Filter pattern syntax for metric filters, subscription filters,
//! filter log events, and Live Tail"). A pattern is one of:
//!
//! * **empty** (or only whitespace): matches every event;
//! * **terms**: `ERROR`, `"Failed to process"`, `%regex%`, with the prefixes
//!   `?` (alternative) and `-` (exclusion);
//! * **JSON**: `{ $.a.b = "x" && $.n > 5 }`;
//! * **space-delimited**: `[ip, user, ..., status = 4*, bytes > 1000]`.
//!
//! The exact semantics are documented on [`FilterPattern`].

use memchr::memmem;
use regex::{Regex, RegexBuilder};
use simd_json::prelude::{
    TypedValue as _, ValueAsScalar as _, ValueIntoString as _,
};
use simd_json::tape::Value;
use simd_json::ValueType;
use simd_json::{Node, StaticNode};

/// Longest pattern accepted, in characters (the CloudWatch Logs API limit).
const MAX_PATTERN_CHARS: usize = 1024;
/// Deepest parenthesis nesting accepted.
const MAX_DEPTH: usize = 64;
/// Regexes allowed in one JSON or space-delimited pattern (AWS quota).
const MAX_REGEXES: usize = 2;
/// Compiled size limit for one regex, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A compiled CloudWatch Logs filter pattern.
///
/// Build it once with [`FilterPattern::parse`], then call
/// [`FilterPattern::matches`] per event; it is cheap to clone and can be
/// shared between threads.
///
/// # Semantics
///
/// Where the AWS documentation is silent, cwl-copy chose as follows; each
/// choice has a row in `testdata/filter/conformance.txt`.
///
/// * Terms are case-sensitive substrings (`ERROR` matches `ERRORCODE`).
///   Unquoted terms may contain only letters, digits and `_`; anything else
///   must be quoted (a parse error says so). In quoted text `\"` is a quote
///   and `\\` a backslash (the escaping the AWS CDK emits); any other
///   backslash is literal. The quoted space `" "` is, as AWS documents,
///   a pattern that matches every event: like the empty phrase `""`, it
///   is a term every message contains (so `-" "` matches none).
/// * `?` starts a new alternative and the terms that follow it, up to the
///   next `?`, belong to that alternative (AND), the way the AWS CDK's
///   `FilterPattern.anyTermGroup` writes `?"ERROR" "MainThread" ?"WARN"
///   "Deadlock"`. Terms before the first `?` form the first alternative.
///   The pattern matches when any alternative has all its terms present and
///   none of its `-` terms. `?ERROR ?WARN` is "ERROR or WARN";
///   `ERROR -Exiting` is "ERROR and not Exiting"; `-DEBUG` alone matches
///   every event without `DEBUG`.
/// * JSON: only a JSON *object* message can match; `json: None` never
///   matches. When an object repeats a key, the **last** one counts, at
///   every step of a selector (as in jq and PostgreSQL's `jsonb`, and as
///   for column paths). A selector that does not resolve (missing key,
///   index out of range, key on a non-object, index on a non-array)
///   "does not exist": only `NOT EXISTS` is true there, and **`!=` is
///   false** (like `=`), so `{ $.a != "x" }` does not match an event
///   without `a`; write `{ $.a != "x" || $.a NOT EXISTS }` for that.
/// * JSON `=`/`!=` compare strings, numbers (in their shortest decimal
///   form, `404`, `1.5`) and booleans (`true`/`false`) as text. On `null`,
///   an object or an array, **both** `=` and `!=` are false (AWS: "The
///   SELECTOR must point to a value node"). `{ $.x = * }` is "x exists and
///   is a value".
/// * `*` is a wildcard only as the first and/or last character of a value,
///   quoted or not (`*Event`, `Event*`, `*html*`); elsewhere it is literal
///   (AWS: "`Ev*ent` will only match the actual string `Ev*ent`").
/// * A number literal (`400`, `-1.5`, `+1000`, `10e-3`) compares
///   numerically with JSON numbers (integers exactly) and, in
///   space-delimited patterns, with fields that are numbers. `<`, `>`,
///   `<=`, `>=` need a number literal and are false on anything that is not
///   a number (a JSON string `"500"` is not a number). `=`/`!=` with a
///   number literal on a JSON string (or boolean) is true when the string
///   is a number equal to it (`"400"` = `400`).
/// * `%regex%` values and terms are unanchored searches (use `^`/`$`).
/// * Space-delimited messages are split on runs of spaces, tabs, CR and LF;
///   a field that starts with `[` runs to the next `]`, one that starts
///   with `"` to the next `"`, and the brackets/quotes are stripped. An
///   unterminated `[`/`"` runs to the end of the message. Without `...`
///   the number of fields must equal the pattern's; `...` (at most one)
///   stands for any number of fields, including none. An empty entry (as in
///   AWS's own `[..., request=*.html*, status_code=4*,]`) is an anonymous
///   field. A condition may name any field of the pattern
///   (`status_code = 4* && bytes > 1000`); naming an undeclared field is an
///   error. `&&` binds tighter than `||`, and parentheses group.
/// * Regular expressions follow the documented subset: letters, digits,
///   `: _ # = @ / ; , -` and the operators `^ $ ? [ ] { } | \ * + .`.
///   Parentheses, other characters (including space: write `\s`) and
///   non-ASCII characters are parse errors. `\d \w \s \D \W \S` are ASCII
///   classes, `\b \B` ASCII word boundaries, `\t \n \r \f \v` and escaped
///   punctuation are literal. At most 2 regexes in a JSON or space-delimited
///   pattern (the AWS quota).
/// * A pattern is at most 1024 characters (the `filterPattern` limit of the
///   CloudWatch Logs API), and parentheses nest at most 64 deep.
///
/// # Example
///
/// ```
/// use cwl_copy::FilterPattern;
///
/// let f = FilterPattern::parse(r#"{$.context.log_name = "specific-log"}"#)?;
/// assert!(f.needs_json());
/// let msg = r#"{"context":{"log_name":"specific-log"}}"#;
/// let mut bytes = msg.as_bytes().to_vec();
/// let tape = simd_json::to_tape(&mut bytes)?;
/// assert!(f.matches(msg, Some(tape.as_value())));
/// assert!(!f.matches("plain text", None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FilterPattern {
    kind: Kind,
}

/// Why a filter pattern did not parse.
///
/// `offset` is the 0-based character (not byte) offset in the pattern where
/// the problem was found; `Display` shows it 1-based as a column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {}: {}", .offset + 1, .message)]
pub struct FilterError {
    /// 0-based character offset of the problem in the pattern.
    pub offset: usize,
    /// What is wrong, in words.
    pub message: String,
}

impl FilterPattern {
    /// Parses and compiles a filter pattern.
    ///
    /// # Errors
    ///
    /// A [`FilterError`] carrying the character offset and a message when
    /// the pattern is not valid CloudWatch Logs filter syntax (or uses a
    /// construct AWS documents as unsupported, such as regex groups).
    pub fn parse(pattern: &str) -> Result<FilterPattern, FilterError> {
        if pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(FilterError {
                offset: MAX_PATTERN_CHARS,
                message: format!(
                    "pattern is longer than {MAX_PATTERN_CHARS} characters"
                ),
            });
        }
        let mut p = Parser { src: pattern, pos: 0, depth: 0, regexes: 0 };
        p.skip_ws();
        let kind = match p.peek() {
            None => Kind::All,
            Some('{') => {
                let mut expr = p.parse_json()?;
                let mut id = 0;
                expr.conds_mut(&mut |c| {
                    c.id = id;
                    id += 1;
                });
                Kind::Json(expr)
            }
            Some('[') => Kind::Spaced(p.parse_spaced()?),
            Some(_) => Kind::Terms(p.parse_terms()?),
        };
        Ok(FilterPattern { kind })
    }

    /// True if matching needs the message parsed as JSON, i.e. this is a
    /// JSON pattern `{ ... }`.
    #[must_use = "callers parse the message only when this is true"]
    pub fn needs_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }

    /// The selectors of a JSON pattern (`$.a[0].b` is `[Key("a"),
    /// Index(0), Key("b")]`), in pattern order: what matching reads.
    pub(crate) fn json_selectors(&self) -> Vec<&[Step]> {
        let mut out = Vec::new();
        if let Kind::Json(expr) = &self.kind {
            expr.conds(&mut |c| {
                if let Subject::Json(steps) = &c.subject {
                    out.push(steps.as_slice());
                }
            });
        }
        out
    }

    /// The pattern's one condition when it compares a selector's value with
    /// a string for equality (`{ $.a.b = "x" }`, or `!=`): the selector,
    /// the string, and whether it is `!=`. On a message that is an object,
    /// the pattern then matches a string value `v` exactly when `(v ==
    /// the string) != negated`, and no missing value; other values take
    /// [`FilterPattern::matches_json_with`].
    pub(crate) fn string_equality(&self) -> Option<(&[Step], &str, bool)> {
        let Kind::Json(Expr::Cond(c)) = &self.kind else { return None };
        match &**c {
            Cond {
                subject: Subject::Json(steps),
                test: Test::Str { negate, pat: StrPat::Exact(s) },
                ..
            } => Some((steps, s, *negate)),
            _ => None,
        }
    }

    /// [`FilterPattern::matches`] of a JSON pattern on a message that is a
    /// JSON object, with each selector's value given by `resolve`: called
    /// with the selector's place in [`FilterPattern::json_selectors`] and
    /// its steps, it returns what [`resolve`] would find from the root
    /// (of repeated keys the last, at every step). False for other
    /// patterns.
    pub(crate) fn matches_json_with<'t>(
        &self,
        resolve: &mut dyn FnMut(usize, &[Step]) -> Option<Scalar<'t>>,
    ) -> bool {
        match &self.kind {
            Kind::Json(expr) => expr.eval(&mut |c| match &c.subject {
                Subject::Json(steps) => c.test_json(resolve(c.id, steps)),
                Subject::Field(_) => false,
            }),
            _ => false,
        }
    }

    /// Evaluates the pattern on one log message.
    ///
    /// `json` is the message parsed with simd-json's tape API, or `None`
    /// when the message is not JSON (or was not parsed because
    /// [`needs_json`](Self::needs_json) is false). A JSON pattern never
    /// matches without it. Does not allocate.
    #[must_use]
    pub fn matches(&self, message: &str, json: Option<Value<'_, '_>>) -> bool {
        match &self.kind {
            Kind::All => true,
            Kind::Terms(groups) => groups.iter().any(|g| g.matches(message)),
            Kind::Json(_) => match json {
                Some(root) if root.is_object() => {
                    self.matches_json_with(&mut |_, steps| {
                        resolve(root, steps).map(Scalar::of)
                    })
                }
                _ => false,
            },
            Kind::Spaced(sp) => sp.matches(message),
        }
    }
}

/// The compiled forms of the three pattern kinds.
#[derive(Debug, Clone)]
enum Kind {
    /// Empty pattern.
    All,
    /// Alternatives of term groups (never empty).
    Terms(Vec<TermGroup>),
    /// A JSON expression.
    Json(Expr),
    /// A space-delimited pattern.
    Spaced(Spaced),
}

/// One alternative of a term pattern: all `include` present, no `exclude`.
#[derive(Debug, Clone, Default)]
struct TermGroup {
    include: Vec<Needle>,
    exclude: Vec<Needle>,
}

impl TermGroup {
    fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    fn matches(&self, hay: &str) -> bool {
        self.include.iter().all(|n| n.is_in(hay))
            && !self.exclude.iter().any(|n| n.is_in(hay))
    }
}

/// A term: a literal substring or a regex.
#[derive(Debug, Clone)]
enum Needle {
    Literal(Box<memmem::Finder<'static>>),
    Regex(Regex),
}

impl Needle {
    fn is_in(&self, hay: &str) -> bool {
        match self {
            Needle::Literal(f) => f.find(hay.as_bytes()).is_some(),
            Needle::Regex(re) => re.is_match(hay),
        }
    }
}

/// A boolean expression over conditions (JSON and space-delimited).
#[derive(Debug, Clone)]
enum Expr {
    Cond(Box<Cond>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    fn eval(&self, leaf: &mut dyn FnMut(&Cond) -> bool) -> bool {
        match self {
            Expr::Cond(c) => leaf(c),
            Expr::And(v) => v.iter().all(|e| e.eval(leaf)),
            Expr::Or(v) => v.iter().any(|e| e.eval(leaf)),
        }
    }

    fn conds<'e>(&'e self, f: &mut dyn FnMut(&'e Cond)) {
        match self {
            Expr::Cond(c) => f(c),
            Expr::And(v) | Expr::Or(v) => {
                v.iter().for_each(|e| e.conds(f));
            }
        }
    }

    fn conds_mut(&mut self, f: &mut dyn FnMut(&mut Cond)) {
        match self {
            Expr::Cond(c) => f(c),
            Expr::And(v) | Expr::Or(v) => {
                v.iter_mut().for_each(|e| e.conds_mut(f));
            }
        }
    }
}

/// One comparison: what to look at, and the test.
#[derive(Debug, Clone)]
struct Cond {
    subject: Subject,
    test: Test,
    /// Its place among the pattern's conditions, in pattern order (the
    /// order of [`FilterPattern::json_selectors`]).
    id: usize,
}

/// The left-hand side of a condition.
#[derive(Debug, Clone)]
enum Subject {
    /// A JSON selector `$.a[0].b`.
    Json(Vec<Step>),
    /// A space-delimited field, by entry index in the pattern (after
    /// resolution; during parsing, an index into `Parser`-local names).
    Field(usize),
}

/// One step of a JSON selector.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// An object member.
    Key(Box<str>),
    /// An array element, from 0.
    Index(usize),
}

/// The right-hand side of a condition.
#[derive(Debug, Clone)]
enum Test {
    /// `=`/`!=` against a string with optional `*` wildcards.
    Str { negate: bool, pat: StrPat },
    /// A comparison against a number literal.
    Num { op: NumOp, num: Number },
    /// `=`/`!=` against `%regex%`.
    Regex { negate: bool, re: Regex },
    /// `IS NULL`.
    IsNull,
    /// `IS TRUE`.
    IsTrue,
    /// `IS FALSE`.
    IsFalse,
    /// `NOT EXISTS`.
    NotExists,
}

/// A string value with its wildcards resolved.
#[derive(Debug, Clone)]
enum StrPat {
    Any,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<memmem::Finder<'static>>),
}

impl StrPat {
    fn new(s: &str) -> StrPat {
        if s == "*" {
            return StrPat::Any;
        }
        let (lead, rest) = match s.strip_prefix('*') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (trail, core) = match rest.strip_suffix('*') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        match (lead, trail) {
            (false, false) => StrPat::Exact(core.into()),
            (true, false) => StrPat::Suffix(core.into()),
            (false, true) => StrPat::Prefix(core.into()),
            (true, true) => StrPat::Contains(finder(core.as_bytes())),
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            StrPat::Any => true,
            StrPat::Exact(e) => s == &**e,
            StrPat::Prefix(p) => s.starts_with(&**p),
            StrPat::Suffix(p) => s.ends_with(&**p),
            StrPat::Contains(f) => f.find(s.as_bytes()).is_some(),
        }
    }
}

/// A numeric comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl NumOp {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            NumOp::Eq => ord == Equal,
            NumOp::Ne => ord != Equal,
            NumOp::Lt => ord == Less,
            NumOp::Gt => ord == Greater,
            NumOp::Le => ord != Greater,
            NumOp::Ge => ord != Less,
        }
    }
}

/// A number literal (or a number read from a message).
#[derive(Debug, Clone)]
struct Number {
    /// The value as a float.
    float: f64,
    /// The exact value when it is an integer literal that fits.
    int: Option<i128>,
}

impl Number {
    /// Parses the documented number syntax: optional sign, digits with an
    /// optional fraction, optional exponent. Rejects `inf`, `NaN`, `0x1`
    /// and the like, which `f64::from_str` would take.
    fn parse(s: &str) -> Option<Number> {
        let b = s.as_bytes();
        let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
        let digits = |i: &mut usize| {
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - start
        };
        let int_digits = digits(&mut i);
        let mut frac_digits = 0;
        let mut integral = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            integral = false;
            frac_digits = digits(&mut i);
        }
        if int_digits + frac_digits == 0 {
            return None;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            integral = false;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if i != b.len() {
            return None;
        }
        let float: f64 = s.parse().ok()?;
        let int = if integral { s.parse::<i128>().ok() } else { None };
        Some(Number { float, int })
    }

    fn cmp_to(&self, other: &Number) -> Option<std::cmp::Ordering> {
        match (self.int, other.int) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => self.float.partial_cmp(&other.float),
        }
    }
}

impl Cond {
    /// The test of a JSON condition on the value its selector found.
    fn test_json(&self, v: Option<Scalar<'_>>) -> bool {
        match (&self.test, v) {
            (Test::NotExists, v) => v.is_none(),
            (_, None) => false,
            (Test::IsNull, Some(v)) => v == Scalar::Null,
            (Test::IsTrue, Some(v)) => v == Scalar::Bool(true),
            (Test::IsFalse, Some(v)) => v == Scalar::Bool(false),
            (Test::Num { op, num }, Some(v)) => match json_number(v) {
                Some(n) => n.cmp_to(num).is_some_and(|o| op.holds(o)),
                None => with_json_text(v, |t| text_vs_number(*op, t, num)),
            },
            (Test::Str { negate, pat }, Some(v)) => {
                with_json_text(v, |t| pat.matches(t) != *negate)
            }
            (Test::Regex { negate, re }, Some(v)) => {
                with_json_text(v, |t| re.is_match(t) != *negate)
            }
        }
    }

    /// Evaluates a space-delimited condition on the field's text.
    fn eval_text(&self, t: &str) -> bool {
        match &self.test {
            Test::Str { negate, pat } => pat.matches(t) != *negate,
            Test::Regex { negate, re } => re.is_match(t) != *negate,
            Test::Num { op, num } => match Number::parse(t) {
                Some(n) => n.cmp_to(num).is_some_and(|o| op.holds(o)),
                None => text_vs_number(*op, t, num),
            },
            // Not accepted by the space-delimited parser.
            Test::IsNull | Test::IsTrue | Test::IsFalse | Test::NotExists => {
                false
            }
        }
    }
}

/// The value `steps` select from `root`, or `None` when the selector does
/// not resolve. Of repeated keys the last counts, at every step, as for
/// column paths (`Path::lookup`).
pub(crate) fn resolve<'t, 'i>(
    root: Value<'t, 'i>,
    steps: &[Step],
) -> Option<Value<'t, 'i>> {
    let mut cur = root;
    for step in steps {
        cur = match step {
            Step::Key(k) => cur
                .as_object()?
                .iter()
                .filter(|(key, _)| *key == &**k)
                .last()
                .map(|(_, v)| v)?,
            Step::Index(i) => cur.get_idx(*i)?,
        };
    }
    Some(cur)
}

/// `=`/`!=` of a non-number text against a number literal compares the
/// text with the literal's canonical text; ordering is false.
fn text_vs_number(op: NumOp, text: &str, num: &Number) -> bool {
    let same = Number::parse(text)
        .is_some_and(|n| n.cmp_to(num) == Some(std::cmp::Ordering::Equal));
    match op {
        NumOp::Eq => same,
        NumOp::Ne => !same,
        _ => false,
    }
}

/// A JSON value as a condition reads it: its scalar, or that it is an
/// object or array.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'a str),
    /// An object or an array.
    Container,
}

impl<'a> Scalar<'a> {
    /// The scalar of a tape value.
    fn of(v: Value<'_, 'a>) -> Scalar<'a> {
        let s = match v.value_type() {
            ValueType::Null => Some(Scalar::Null),
            ValueType::Bool => v.as_bool().map(Scalar::Bool),
            ValueType::I64 => v.as_i64().map(Scalar::I64),
            ValueType::U64 => v.as_u64().map(Scalar::U64),
            ValueType::F64 => v.as_f64().map(Scalar::F64),
            ValueType::String => v.into_string().map(Scalar::Str),
            _ => None,
        };
        s.unwrap_or(Scalar::Container)
    }

    /// The scalar of tape node `node`.
    pub(crate) fn of_node(node: &Node<'a>) -> Scalar<'a> {
        match *node {
            Node::String(s) => Scalar::Str(s),
            Node::Static(StaticNode::Null) => Scalar::Null,
            Node::Static(StaticNode::Bool(b)) => Scalar::Bool(b),
            Node::Static(StaticNode::I64(i)) => Scalar::I64(i),
            Node::Static(StaticNode::U64(u)) => Scalar::U64(u),
            Node::Static(StaticNode::F64(f)) => Scalar::F64(f),
            _ => Scalar::Container,
        }
    }
}

/// The number in a JSON value, if it is one.
fn json_number(v: Scalar<'_>) -> Option<Number> {
    match v {
        Scalar::I64(i) => {
            Some(Number { float: i as f64, int: Some(i128::from(i)) })
        }
        Scalar::U64(u) => {
            Some(Number { float: u as f64, int: Some(i128::from(u)) })
        }
        Scalar::F64(f) => Some(Number { float: f, int: None }),
        _ => None,
    }
}

/// Calls `f` with the text of a JSON scalar (string, number, boolean);
/// false for null, objects and arrays. Numbers are formatted on the stack.
fn with_json_text(v: Scalar<'_>, f: impl FnOnce(&str) -> bool) -> bool {
    match v {
        Scalar::Str(s) => f(s),
        Scalar::Bool(b) => f(if b { "true" } else { "false" }),
        Scalar::I64(i) => f(itoa::Buffer::new().format(i)),
        Scalar::U64(u) => f(itoa::Buffer::new().format(u)),
        Scalar::F64(x) => {
            if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
                // Whole floats print as integers (`2.0` → `2`).
                #[allow(clippy::cast_possible_truncation)]
                let i = x as i64;
                f(itoa::Buffer::new().format(i))
            } else {
                f(ryu::Buffer::new().format(x))
            }
        }
        Scalar::Null | Scalar::Container => false,
    }
}

/// A compiled space-delimited pattern.
#[derive(Debug, Clone)]
struct Spaced {
    /// Number of entries, including the ellipsis.
    entries: usize,
    /// Entry index of `...`, if any.
    ellipsis: Option<usize>,
    /// The AND of every entry's condition; `None` when there are none.
    cond: Option<Expr>,
}

impl Spaced {
    fn matches(&self, msg: &str) -> bool {
        let n = Fields::new(msg).count();
        let fixed = self.entries - usize::from(self.ellipsis.is_some());
        let count_ok = match self.ellipsis {
            None => n == fixed,
            Some(_) => n >= fixed,
        };
        if !count_ok {
            return false;
        }
        let Some(cond) = &self.cond else {
            return true;
        };
        cond.eval(&mut |c| {
            let Subject::Field(entry) = c.subject else {
                return false;
            };
            // Entries after `...` count from the end of the message.
            let index = match self.ellipsis {
                Some(e) if entry > e => {
                    match self
                        .entries
                        .checked_sub(entry)
                        .and_then(|k| n.checked_sub(k))
                    {
                        Some(i) => i,
                        None => return false,
                    }
                }
                _ => entry,
            };
            Fields::new(msg).nth(index).is_some_and(|t| c.eval_text(t))
        })
    }
}

/// Iterator over the fields of a space-delimited message.
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    fn new(msg: &'a str) -> Self {
        Fields { rest: msg }
    }
}

fn is_field_sep(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest.trim_start_matches(is_field_sep);
        let close = match rest.as_bytes().first()? {
            b'[' => Some(b']'),
            b'"' => Some(b'"'),
            _ => None,
        };
        let (field, after) = match close {
            Some(close) => {
                let inner = rest.get(1..).unwrap_or("");
                match memchr::memchr(close, inner.as_bytes()) {
                    Some(i) => (
                        inner.get(..i).unwrap_or(""),
                        inner.get(i + 1..).unwrap_or(""),
                    ),
                    None => (inner, ""),
                }
            }
            None => {
                let end = rest.find(is_field_sep).unwrap_or(rest.len());
                (rest.get(..end).unwrap_or(""), rest.get(end..).unwrap_or(""))
            }
        };
        self.rest = after;
        Some(field)
    }
}

/// Recursive-descent parser over the pattern; `pos` is a byte offset.
/// A parser of one operand of [`Parser::parse_chain`].
type SubParser<'a> = fn(
    &mut Parser<'a>,
    Mode,
    &mut Vec<(Box<str>, usize)>,
) -> Result<Expr, FilterError>;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    regexes: usize,
}

/// What the conditions of an expression look at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Json,
    Spaced,
}

/// A space-delimited entry while parsing.
struct Entry {
    /// The declared name (`None` for `...` and anonymous fields).
    name: Option<(Box<str>, usize)>,
    cond: Option<Expr>,
}

impl<'a> Parser<'a> {
    fn error(&self, pos: usize, message: impl Into<String>) -> FilterError {
        let offset =
            self.src.char_indices().take_while(|&(i, _)| i < pos).count();
        FilterError { offset, message: message.into() }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Eats whitespace-separated keywords (each followed by a non-name
    /// character), or nothing.
    fn eat_words(&mut self, words: &[&str]) -> bool {
        let save = self.pos;
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                let before = self.pos;
                self.skip_ws();
                if self.pos == before {
                    break;
                }
            }
            if !self.eat(w) || self.peek().is_some_and(is_name_char) {
                self.pos = save;
                return false;
            }
            if i + 1 == words.len() {
                return true;
            }
        }
        self.pos = save;
        false
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "end of pattern".to_string(),
            Some(c) => format!("{c:?}"),
        }
    }

    // ----- term patterns -------------------------------------------------

    fn parse_terms(&mut self) -> Result<Vec<TermGroup>, FilterError> {
        let mut groups = Vec::new();
        let mut group = TermGroup::default();
        loop {
            self.skip_ws();
            let Some(c) = self.peek() else { break };
            let start = self.pos;
            if c == '?' || c == '-' {
                self.bump();
            }
            let needle = match self.peek() {
                Some('"') => {
                    let s = self.parse_quoted()?;
                    // AWS: the quoted space matches every event, so it
                    // is the empty phrase, which every message holds.
                    let s = if s == " " { "" } else { s.as_str() };
                    Needle::Literal(finder(s.as_bytes()))
                }
                Some('%') => Needle::Regex(self.parse_regex()?),
                Some(w) if is_word_char(w) => {
                    let w0 = self.pos;
                    while self.peek().is_some_and(is_word_char) {
                        self.bump();
                    }
                    let word = self.src.get(w0..self.pos).unwrap_or("");
                    Needle::Literal(finder(word.as_bytes()))
                }
                Some(w) if !w.is_whitespace() && c != '?' && c != '-' => {
                    return Err(self.error(
                        self.pos,
                        format!(
                            "unexpected {w:?}: quote terms that contain \
                             characters other than letters, digits and '_'"
                        ),
                    ));
                }
                _ => {
                    return Err(self.error(
                        start,
                        format!("{c:?} must be followed by a term"),
                    ))
                }
            };
            if let Some(w) = self.peek().filter(|w| !w.is_whitespace()) {
                return Err(self.error(
                    self.pos,
                    format!(
                        "unexpected {w:?} after a term: separate terms with \
                         spaces and quote terms that contain characters \
                         other than letters, digits and '_'"
                    ),
                ));
            }
            if c == '?' && !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            if c == '-' {
                group.exclude.push(needle);
            } else {
                group.include.push(needle);
            }
        }
        if !group.is_empty() {
            groups.push(group);
        }
        Ok(groups)
    }

    /// Parses `"..."` at `pos`, returning the unescaped text.
    fn parse_quoted(&mut self) -> Result<String, FilterError> {
        let open = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(open, "unterminated quoted string"))
                }
                Some('"') => {
                    self.bump();
                    return Ok(out);
                }
                Some('\\') => {
                    self.bump();
                    match self.peek() {
                        Some(e @ ('"' | '\\')) => {
                            out.push(e);
                            self.bump();
                        }
                        _ => out.push('\\'),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.bump();
                }
            }
        }
    }

    /// Parses `%...%` at `pos` into a compiled regex.
    fn parse_regex(&mut self) -> Result<Regex, FilterError> {
        let open = self.pos;
        self.bump();
        let body_start = self.pos;
        let Some(len) = self.rest().find('%') else {
            return Err(
                self.error(open, "unterminated regular expression (no '%')")
            );
        };
        let body = self.rest().get(..len).unwrap_or("");
        self.pos += len + 1;
        if body.is_empty() {
            return Err(self.error(open, "empty regular expression"));
        }
        let translated = self.translate_regex(body, body_start)?;
        RegexBuilder::new(&translated)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                let text = e.to_string();
                let why = text
                    .lines()
                    .find_map(|l| l.strip_prefix("error: "))
                    .unwrap_or(&text)
                    .to_string();
                self.error(open, format!("invalid regular expression: {why}"))
            })
    }

    /// Checks a regex body against the documented subset and translates it
    /// to `regex` crate syntax (ASCII classes without Unicode tables).
    fn translate_regex(
        &self,
        body: &str,
        base: usize,
    ) -> Result<String, FilterError> {
        let mut out = String::with_capacity(body.len() + 16);
        let mut class_depth = 0usize;
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            let at = base + i;
            match c {
                '(' | ')' => {
                    return Err(self.error(
                        at,
                        "parentheses (groups) are not supported in \
                         regular expressions",
                    ))
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else {
                        return Err(self.error(at, "trailing backslash"));
                    };
                    let class = match e.to_ascii_lowercase() {
                        'd' => Some("digit"),
                        'w' => Some("word"),
                        's' => Some("space"),
                        _ => None,
                    };
                    if let Some(class) = class {
                        let neg =
                            if e.is_ascii_uppercase() { "^" } else { "" };
                        if class_depth > 0 {
                            out.push_str(&format!("[:{neg}{class}:]"));
                        } else {
                            out.push_str(&format!("[[:{neg}{class}:]]"));
                        }
                    } else if matches!(e, 'b' | 'B') && class_depth == 0 {
                        out.push_str("(?-u:\\");
                        out.push(e);
                        out.push(')');
                    } else if matches!(e, 't' | 'n' | 'r' | 'f' | 'v')
                        || e.is_ascii_punctuation()
                    {
                        out.push('\\');
                        out.push(e);
                    } else {
                        return Err(self.error(
                            at,
                            format!(
                                "unsupported escape \\{e} in regular \
                                 expression"
                            ),
                        ));
                    }
                }
                '[' => {
                    class_depth += 1;
                    out.push(c);
                }
                ']' => {
                    class_depth = class_depth.saturating_sub(1);
                    out.push(c);
                }
                c if c.is_ascii_alphanumeric()
                    || ":_#=@/;,-^$?{}|*+.".contains(c) =>
                {
                    out.push(c);
                }
                c if !c.is_ascii() => {
                    return Err(self.error(
                        at,
                        "multi-byte characters are not supported in \
                         regular expressions",
                    ))
                }
                c => {
                    return Err(self.error(
                        at,
                        format!(
                            "{c:?} is not allowed in a regular expression \
                             (allowed: letters, digits, : _ # = @ / ; , - \
                             and ^ $ ? [ ] {{ }} | \\ * + .; write \\s for \
                             a space)"
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    // ----- expressions (JSON and space-delimited) ------------------------

    fn parse_or(
        &mut self,
        mode: Mode,
        names: &mut Vec<(Box<str>, usize)>,
    ) -> Result<Expr, FilterError> {
        self.parse_chain("||", Self::parse_and, Expr::Or, mode, names)
    }

    fn parse_and(
        &mut self,
        mode: Mode,
        names: &mut Vec<(Box<str>, usize)>,
    ) -> Result<Expr, FilterError> {
        self.parse_chain("&&", Self::parse_unary, Expr::And, mode, names)
    }

    /// `operand (op operand)*`: one operand stands alone, more are joined
    /// by `join`.
    fn parse_chain(
        &mut self,
        op: &str,
        operand: SubParser<'a>,
        join: fn(Vec<Expr>) -> Expr,
        mode: Mode,
        names: &mut Vec<(Box<str>, usize)>,
    ) -> Result<Expr, FilterError> {
        let mut items = vec![operand(self, mode, names)?];
        loop {
            self.skip_ws();
            if !self.eat(op) {
                break;
            }
            items.push(operand(self, mode, names)?);
        }
        Ok(match items.len() {
            1 => items.pop().unwrap_or_else(|| join(Vec::new())),
            _ => join(items),
        })
    }

    fn parse_unary(
        &mut self,
        mode: Mode,
        names: &mut Vec<(Box<str>, usize)>,
    ) -> Result<Expr, FilterError> {
        self.skip_ws();
        if self.peek() == Some('(') {
            let open = self.pos;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(self.error(
                    open,
                    format!("parentheses nest deeper than {MAX_DEPTH}"),
                ));
            }
            self.bump();
            let e = self.parse_or(mode, names)?;
            self.skip_ws();
            if !self.eat(")") {
                return Err(self.error(
                    self.pos,
                    format!(
                        "expected ')' or an operator, found {}",
                        self.describe()
                    ),
                ));
            }
            self.depth -= 1;
            return Ok(e);
        }
        let subject = match mode {
            Mode::Json => Subject::Json(self.parse_selector()?),
            Mode::Spaced => {
                let start = self.pos;
                let name = self.parse_field_name()?;
                names.push((name.into(), start));
                Subject::Field(names.len() - 1)
            }
        };
        let test = self.parse_test(mode)?;
        Ok(Expr::Cond(Box::new(Cond { subject, test, id: 0 })))
    }

    /// `$.name` followed by `.name` and `[n]` steps.
    fn parse_selector(&mut self) -> Result<Vec<Step>, FilterError> {
        if !self.eat("$") {
            return Err(self.error(
                self.pos,
                format!(
                    "expected a selector starting with '$.', found {}",
                    self.describe()
                ),
            ));
        }
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.bump();
                    let start = self.pos;
                    while self.peek().is_some_and(is_name_char) {
                        self.bump();
                    }
                    if self.pos == start {
                        return Err(self.error(
                            start,
                            format!(
                                "expected a property name (letters, digits, \
                                 '-', '_'), found {}",
                                self.describe()
                            ),
                        ));
                    }
                    let name = self.src.get(start..self.pos).unwrap_or("");
                    steps.push(Step::Key(name.into()));
                }
                Some('[') => {
                    if steps.is_empty() {
                        return Err(self.error(
                            self.pos,
                            "an array index must follow a property \
                             ($.name[0])",
                        ));
                    }
                    self.bump();
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.bump();
                    }
                    let digits = self.src.get(start..self.pos).unwrap_or("");
                    let Ok(i) = digits.parse::<usize>() else {
                        return Err(self.error(
                            start,
                            "expected an array index (digits)",
                        ));
                    };
                    if !self.eat("]") {
                        return Err(self.error(
                            self.pos,
                            format!("expected ']', found {}", self.describe()),
                        ));
                    }
                    steps.push(Step::Index(i));
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return Err(self.error(
                self.pos,
                format!("expected '.' after '$', found {}", self.describe()),
            ));
        }
        Ok(steps)
    }

    fn parse_field_name(&mut self) -> Result<&'a str, FilterError> {
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.bump();
        }
        if self.pos == start {
            return Err(self.error(
                start,
                format!(
                    "expected a field name (letters, digits, '-', '_'), \
                     found {}",
                    self.describe()
                ),
            ));
        }
        Ok(self.src.get(start..self.pos).unwrap_or(""))
    }

    /// The operator and value of a condition (or the JSON postfix tests).
    fn parse_test(&mut self, mode: Mode) -> Result<Test, FilterError> {
        self.skip_ws();
        let op_pos = self.pos;
        if mode == Mode::Json {
            for (words, test) in [
                (["IS", "NULL"], Test::IsNull),
                (["IS", "TRUE"], Test::IsTrue),
                (["IS", "FALSE"], Test::IsFalse),
                (["NOT", "EXISTS"], Test::NotExists),
            ] {
                if self.eat_words(&words) {
                    return Ok(test);
                }
            }
            if self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                return Err(self.error(
                    op_pos,
                    "expected an operator, IS NULL, IS TRUE, IS FALSE or \
                     NOT EXISTS",
                ));
            }
        }
        let op = if self.eat("!=") {
            NumOp::Ne
        } else if self.eat("<=") {
            NumOp::Le
        } else if self.eat(">=") {
            NumOp::Ge
        } else if self.eat("=") {
            if self.peek() == Some('=') {
                return Err(self.error(op_pos, "use '=', not '=='"));
            }
            NumOp::Eq
        } else if self.eat("<") {
            NumOp::Lt
        } else if self.eat(">") {
            NumOp::Gt
        } else {
            let extra = match mode {
                Mode::Json => ", IS NULL, IS TRUE, IS FALSE or NOT EXISTS",
                Mode::Spaced => "",
            };
            return Err(self.error(
                op_pos,
                format!(
                    "expected an operator (= != < > <= >={extra}), found {}",
                    self.describe()
                ),
            ));
        };
        self.skip_ws();
        let value_pos = self.pos;
        let negate = op == NumOp::Ne;
        let relational = !matches!(op, NumOp::Eq | NumOp::Ne);
        let not_a_number = |p: &Self| {
            p.error(
                value_pos,
                "'<', '>', '<=' and '>=' need a number (like 500, -1.5, \
                 10e3)",
            )
        };
        match self.peek() {
            Some('"') => {
                if relational {
                    return Err(not_a_number(self));
                }
                let s = self.parse_quoted()?;
                Ok(Test::Str { negate, pat: StrPat::new(&s) })
            }
            Some('%') => {
                if relational {
                    return Err(not_a_number(self));
                }
                self.regexes += 1;
                if self.regexes > MAX_REGEXES {
                    return Err(self.error(
                        value_pos,
                        format!(
                            "at most {MAX_REGEXES} regular expressions are \
                             allowed in a JSON or space-delimited pattern"
                        ),
                    ));
                }
                Ok(Test::Regex { negate, re: self.parse_regex()? })
            }
            _ => {
                while self.peek().is_some_and(is_bare_value_char) {
                    self.bump();
                }
                let token = self.src.get(value_pos..self.pos).unwrap_or("");
                let ends_value = |c: char| {
                    c.is_whitespace()
                        || matches!(c, ')' | '&' | '|' | ',' | ']' | '}')
                };
                if let Some(c) = self.peek().filter(|&c| !ends_value(c)) {
                    return Err(self.error(
                        self.pos,
                        format!(
                            "unexpected {c:?} in a value: quote values that \
                             contain characters other than letters, digits \
                             and _ - . * + : /"
                        ),
                    ));
                }
                if token.is_empty() {
                    return Err(self.error(
                        value_pos,
                        format!(
                            "expected a value after the operator, found {}",
                            self.describe()
                        ),
                    ));
                }
                match Number::parse(token) {
                    Some(num) => Ok(Test::Num { op, num }),
                    None if relational => Err(not_a_number(self)),
                    None => Ok(Test::Str { negate, pat: StrPat::new(token) }),
                }
            }
        }
    }

    // ----- JSON patterns -------------------------------------------------

    fn parse_json(&mut self) -> Result<Expr, FilterError> {
        self.bump(); // '{'
        let mut names = Vec::new();
        let expr = self.parse_or(Mode::Json, &mut names)?;
        self.skip_ws();
        if !self.eat("}") {
            return Err(self.error(
                self.pos,
                format!(
                    "expected '&&', '||' or '}}', found {}",
                    self.describe()
                ),
            ));
        }
        self.skip_ws();
        if self.peek().is_some() {
            return Err(self.error(self.pos, "unexpected text after '}'"));
        }
        Ok(expr)
    }

    // ----- space-delimited patterns --------------------------------------

    fn parse_spaced(&mut self) -> Result<Spaced, FilterError> {
        let open = self.pos;
        self.bump(); // '['
        let mut entries: Vec<Entry> = Vec::new();
        let mut ellipsis = None;
        // References made by conditions: (name, position).
        let mut refs: Vec<(Box<str>, usize)> = Vec::new();
        loop {
            self.skip_ws();
            let start = self.pos;
            let entry = if matches!(self.peek(), Some(',' | ']')) {
                Entry { name: None, cond: None }
            } else if self.eat("...") {
                if ellipsis.is_some() {
                    return Err(self.error(start, "only one '...' is allowed"));
                }
                ellipsis = Some(entries.len());
                Entry { name: None, cond: None }
            } else {
                // A bare name declares a field; anything else is a
                // condition whose first field name is the declared one.
                let save = self.pos;
                let plain = self.parse_field_name().ok().map(|n| {
                    let name: Box<str> = n.into();
                    self.skip_ws();
                    (name, matches!(self.peek(), Some(',' | ']') | None))
                });
                match plain {
                    Some((name, true)) => {
                        Entry { name: Some((name, start)), cond: None }
                    }
                    _ => {
                        self.pos = save;
                        let first = refs.len();
                        let cond = self.parse_or(Mode::Spaced, &mut refs)?;
                        let name = refs.get(first).cloned();
                        Entry { name, cond: Some(cond) }
                    }
                }
            };
            entries.push(entry);
            self.skip_ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                break;
            }
            if self.peek().is_none() {
                return Err(self.error(open, "unterminated '[' pattern"));
            }
            return Err(self.error(
                self.pos,
                format!(
                    "expected ',', ']', '&&' or '||', found {}",
                    self.describe()
                ),
            ));
        }
        self.skip_ws();
        if self.peek().is_some() {
            return Err(self.error(self.pos, "unexpected text after ']'"));
        }
        if entries.len() == 1
            && ellipsis.is_none()
            && entries.iter().all(|e| e.name.is_none() && e.cond.is_none())
        {
            return Err(self.error(open, "empty space-delimited pattern"));
        }
        // Declared names must be unique; references must be declared.
        for (i, e) in entries.iter().enumerate() {
            if let Some((name, pos)) = &e.name {
                let dup =
                    entries.get(..i).unwrap_or(&[]).iter().any(|d| {
                        d.name.as_ref().is_some_and(|(n, _)| n == name)
                    });
                if dup {
                    return Err(self.error(
                        *pos,
                        format!("field {name:?} is declared twice"),
                    ));
                }
            }
        }
        let mut resolved = Vec::with_capacity(refs.len());
        for (name, pos) in &refs {
            let Some(i) = entries
                .iter()
                .position(|e| e.name.as_ref().is_some_and(|(n, _)| n == name))
            else {
                return Err(self.error(
                    *pos,
                    format!(
                        "field {name:?} is not one of this pattern's fields"
                    ),
                ));
            };
            resolved.push(i);
        }
        let mut conds: Vec<Expr> = Vec::new();
        for e in entries.iter_mut() {
            if let Some(mut c) = e.cond.take() {
                c.conds_mut(&mut |cond| {
                    if let Subject::Field(r) = &mut cond.subject {
                        *r = resolved.get(*r).copied().unwrap_or(usize::MAX);
                    }
                });
                conds.push(c);
            }
        }
        let cond = match conds.len() {
            0 => None,
            1 => conds.pop(),
            _ => Some(Expr::And(conds)),
        };
        Ok(Spaced { entries: entries.len(), ellipsis, cond })
    }
}

/// A boxed, owned substring searcher (boxed: a `Finder` is ~300 bytes).
fn finder(needle: &[u8]) -> Box<memmem::Finder<'static>> {
    Box::new(memmem::Finder::new(needle).into_owned())
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_bare_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '*' | '+' | ':' | '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `pattern` on `message`, building the tape when needed, on
    /// every path a tape comes from: simd-json's full tape, the mapper's
    /// keep-all scan and its scan pruned to the pattern's selectors, which
    /// must agree.
    fn run(f: &FilterPattern, message: &str) -> bool {
        use crate::map::scan::{scan, Step as S, Want};
        if !f.needs_json() {
            return f.matches(message, None);
        }
        let mut bytes = message.as_bytes().to_vec();
        let simd = match simd_json::to_tape(&mut bytes) {
            Ok(tape) => f.matches(message, Some(tape.as_value())),
            Err(_) => f.matches(message, None),
        };
        let mut pruned = Want::nothing();
        for sel in f.json_selectors() {
            pruned.add(sel.iter().map(|s| match s {
                Step::Key(k) => S::Key(k),
                Step::Index(_) => S::Index,
            }));
        }
        for want in [Want::everything(), pruned] {
            let (mut arena, mut stack) = (Vec::new(), Vec::new());
            let (mut nodes, mut starts) = (Vec::new(), Vec::new());
            let res = scan(
                message,
                &want,
                &mut arena,
                &mut stack,
                &mut nodes,
                &mut starts,
            );
            let tape = simd_json::Tape(nodes);
            let got = match res {
                Ok(()) => f.matches(message, Some(tape.as_value())),
                Err(_) => f.matches(message, None),
            };
            assert_eq!(got, simd, "{message:?}: {want:?}");
        }
        simd
    }

    /// Every row of `testdata/filter/conformance.txt`.
    #[test]
    fn conformance() {
        let table = include_str!("../../testdata/filter/conformance.txt");
        let mut failures = Vec::new();
        let mut rows = 0;
        for (n, line) in table.lines().enumerate() {
            let lineno = n + 1;
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut cols = line.splitn(3, '\t');
            let (Some(pattern), Some(expect), Some(message)) =
                (cols.next(), cols.next(), cols.next())
            else {
                panic!("line {lineno}: expected 3 tab-separated columns");
            };
            rows += 1;
            let parsed = FilterPattern::parse(pattern);
            match (expect, parsed) {
                ("match" | "nomatch", Ok(f)) => {
                    let want = expect == "match";
                    if run(&f, message) != want {
                        failures.push(format!(
                            "line {lineno}: {pattern:?} on {message:?}: \
                             expected {expect}"
                        ));
                    }
                }
                ("match" | "nomatch", Err(e)) => failures.push(format!(
                    "line {lineno}: {pattern:?} failed to parse: {e}"
                )),
                ("error", Ok(_)) => failures.push(format!(
                    "line {lineno}: {pattern:?} parsed, expected an error"
                )),
                ("error", Err(e)) => {
                    let want: usize =
                        message.trim().parse().unwrap_or_else(|_| {
                            panic!("line {lineno}: bad offset {message:?}")
                        });
                    if e.offset != want {
                        failures.push(format!(
                            "line {lineno}: {pattern:?}: error at offset {} \
                             ({e}), expected {want}",
                            e.offset
                        ));
                    }
                }
                (other, _) => {
                    panic!("line {lineno}: unknown expectation {other:?}")
                }
            }
        }
        assert!(rows > 100, "only {rows} rows");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn error_display_is_one_based() {
        let e = FilterPattern::parse("{ $.a = }").unwrap_err();
        assert_eq!(e.offset, 8);
        assert_eq!(e.to_string(), format!("at column 9: {}", e.message));
    }

    #[test]
    fn error_offsets_count_characters_not_bytes() {
        // 'é' is two bytes; the bad '!' is the 5th character.
        let e = FilterPattern::parse("\"é\" a!").unwrap_err();
        assert_eq!(e.offset, 5, "{e}");
    }

    #[test]
    fn parse_errors_have_messages() {
        for (pattern, offset, needle) in [
            ("%a(b)%", 2, "groups"),
            ("%a b%", 2, "not allowed"),
            ("%ab", 0, "unterminated"),
            ("\"abc", 0, "unterminated"),
            ("{ $.a = 1 ", 10, "'}'"),
            ("{ $.a < abc }", 8, "number"),
            ("{ $.a == 1 }", 6, "'=='"),
            ("{ a = 1 }", 2, "'$.'"),
            ("{ $[0] = 1 }", 3, "property"),
            ("{ $.a = 1 } x", 12, "after"),
            ("[a, b, a]", 7, "twice"),
            ("[a, b = 1 && c = 2]", 13, "not one of"),
            ("[..., a, ...]", 9, "one '...'"),
            ("ERROR:", 5, "quote"),
            ("? ERROR", 0, "followed by a term"),
            ("{ $.a = %x% || $.b = %y% || $.c = %z% }", 34, "at most 2"),
        ] {
            let e = FilterPattern::parse(pattern)
                .expect_err(&format!("{pattern:?} should not parse"));
            assert_eq!(e.offset, offset, "{pattern:?}: {e}");
            assert!(e.message.contains(needle), "{pattern:?}: {e}");
        }
    }

    #[test]
    fn too_long_and_too_deep() {
        let long = "a".repeat(1025);
        assert_eq!(FilterPattern::parse(&long).unwrap_err().offset, 1024);
        assert!(FilterPattern::parse(&"a".repeat(1024)).is_ok());
        let deep =
            format!("{{ {}$.a = 1{} }}", "(".repeat(65), ")".repeat(65));
        let e = FilterPattern::parse(&deep).unwrap_err();
        assert!(e.message.contains("nest"), "{e}");
    }

    #[test]
    fn json_needs_tape_and_object_root() {
        let f = FilterPattern::parse("{ $.a NOT EXISTS }").unwrap();
        assert!(f.needs_json());
        assert!(!f.matches("{}", None));
        assert!(run(&f, "{}"));
        assert!(!run(&f, "[1]"));
        assert!(!run(&f, "5"));
        assert!(!FilterPattern::parse("ERROR").unwrap().needs_json());
        assert!(!FilterPattern::parse("[a]").unwrap().needs_json());
    }

    #[test]
    fn types_are_send_sync_clone() {
        fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
        check::<FilterPattern>();
        check::<FilterError>();
    }

    #[test]
    fn big_integers_compare_exactly() {
        let f = FilterPattern::parse("{ $.n = 9007199254740993 }").unwrap();
        assert!(run(&f, r#"{"n": 9007199254740993}"#));
        assert!(!run(&f, r#"{"n": 9007199254740992}"#));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = FilterPattern::parse(&s);
        }

        #[test]
        fn parse_never_panics_any_string(s in proptest::prelude::any::<String>()) {
            let _ = FilterPattern::parse(&s);
        }

        #[test]
        fn parse_and_match_never_panic(
            s in "[\\[\\]{}()$.=!<>&|,\"%*?\\- a-c0-9_\\\\]{0,40}",
            m in "[\\[\\]\" a-c0-9.{}:,]{0,30}",
        ) {
            if let Ok(f) = FilterPattern::parse(&s) {
                let _ = run(&f, &m);
            }
        }
    }
}

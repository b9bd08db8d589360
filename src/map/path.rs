//! Field paths into the message JSON, looked up on the simd-json tape.
//!
//! Syntax (the `source` of a column, when it does not start with `@`):
//!
//! ```text
//! path    := ['$'] first rest*          e.g. context.user_id
//! first   := key | '[' quoted ']'            tags[0]
//! rest    := '.' key | bracket               "a.b"."c d"
//! key     := bare | quoted                   ["a.b"][2].x
//! bare    := one or more characters other than . [ ] " and whitespace
//! quoted  := '"' ( any char but " and \ | '\"' | '\\' )* '"'
//! bracket := '[' digits ']' | '[' quoted ']'
//! ```
//!
//! A leading `$` (as in `$.a.b`, the filter-pattern spelling) is allowed
//! and means the message root. A key that starts with `@` or `$` must be
//! quoted (`"@timestamp"`), because a bare `@…` is a metadata source.
//! A path starts with a key: only an object message has paths.
//!
//! When an object repeats a key, the **last** occurrence is used, at
//! every step, as jq, PostgreSQL's `jsonb`, JavaScript and Python do
//! (the filter's selectors resolve the same way).

use simd_json::Node;

/// One step of a [`Path`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// An object member.
    Key(String),
    /// An array element, from 0.
    Index(usize),
}

/// A parsed field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Path {
    pub(crate) segments: Vec<Segment>,
}

/// Why a path did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathError {
    /// Byte offset in the path text.
    pub(crate) offset: usize,
    /// What is wrong there.
    pub(crate) message: &'static str,
}

fn err<T>(offset: usize, message: &'static str) -> Result<T, PathError> {
    Err(PathError { offset, message })
}

fn is_bare(c: char) -> bool {
    !matches!(c, '.' | '[' | ']' | '"') && !c.is_whitespace() && c != '\0'
}

impl Path {
    /// Parses `text` with the syntax in the module docs.
    pub(crate) fn parse(text: &str) -> Result<Path, PathError> {
        let mut p = Parser { text, pos: 0 };
        let mut segments = Vec::new();
        if p.text.starts_with('$')
            && matches!(p.text.as_bytes().get(1), Some(b'.' | b'[') | None)
        {
            p.pos = 1;
            if p.text.len() == 1 {
                return err(1, "the root `$` alone is not a column source");
            }
            if p.peek() == Some('.') {
                p.pos += 1;
            }
        }
        if p.pos == p.text.len() {
            return err(p.pos, "empty path");
        }
        if p.peek() == Some('[') {
            let at = p.pos;
            let seg = p.bracket()?;
            if let Segment::Index(_) = seg {
                return err(
                    at,
                    "a path starts with a key: the message root is an \
                     object, never an array",
                );
            }
            segments.push(seg);
        } else {
            segments.push(Segment::Key(p.key()?));
        }
        while let Some(c) = p.peek() {
            match c {
                '.' => {
                    p.pos += 1;
                    segments.push(Segment::Key(p.key()?));
                }
                '[' => segments.push(p.bracket()?),
                _ => return err(p.pos, "expected `.` or `[` after a segment"),
            }
        }
        Ok(Path { segments })
    }

    /// The index of the node the path points at in `nodes` (a whole
    /// tape), or `None` when it is missing. Of repeated keys, the last
    /// counts.
    pub(crate) fn lookup(&self, nodes: &[Node<'_>]) -> Option<usize> {
        self.lookup_from(nodes, 0, 0)
    }

    /// [`Path::lookup`] of the segments after the first `used`, from the
    /// node at `start` (the value the first `used` segments lead to).
    pub(crate) fn lookup_from(
        &self,
        nodes: &[Node<'_>],
        start: usize,
        used: usize,
    ) -> Option<usize> {
        let mut i = start;
        for seg in self.segments.get(used..)? {
            match (seg, nodes.get(i)?) {
                (Segment::Key(k), Node::Object { .. }) => {
                    i = member(nodes, i, k)?;
                }
                (Segment::Index(n), Node::Array { .. }) => {
                    i = element(nodes, i, *n)?;
                }
                _ => return None,
            }
        }
        Some(i)
    }
}

/// The value of the last member `key` of the object at `obj` in
/// `nodes`, or `None` when it has none (or `obj` is not an object).
pub(crate) fn member(
    nodes: &[Node<'_>],
    obj: usize,
    key: &str,
) -> Option<usize> {
    let Some(Node::Object { len, .. }) = nodes.get(obj) else {
        return None;
    };
    let mut j = obj + 1;
    let mut found = None;
    for _ in 0..*len {
        let Node::String(k) = nodes.get(j)? else {
            return None;
        };
        if *k == key {
            found = Some(j + 1);
        }
        j = skip(nodes, j + 1)?;
    }
    found
}

/// Element `n` of the array at `arr` in `nodes`, or `None` when it has
/// fewer (or `arr` is not an array).
pub(crate) fn element(
    nodes: &[Node<'_>],
    arr: usize,
    n: usize,
) -> Option<usize> {
    let Some(Node::Array { len, .. }) = nodes.get(arr) else {
        return None;
    };
    if n >= *len {
        return None;
    }
    let mut j = arr + 1;
    for _ in 0..n {
        j = skip(nodes, j)?;
    }
    Some(j)
}

/// The index just past the value starting at `j`.
pub(crate) fn skip(nodes: &[Node<'_>], j: usize) -> Option<usize> {
    match nodes.get(j)? {
        Node::Object { count, .. } | Node::Array { count, .. } => {
            j.checked_add(*count)?.checked_add(1)
        }
        _ => j.checked_add(1),
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn key(&mut self) -> Result<String, PathError> {
        match self.peek() {
            Some('"') => self.quoted(),
            Some(c) if is_bare(c) => {
                let rest = self.rest();
                let n = rest.find(|c| !is_bare(c)).unwrap_or(rest.len());
                let key = rest.get(..n).unwrap_or("").to_owned();
                self.pos += n;
                Ok(key)
            }
            Some(_) => err(self.pos, "expected a key"),
            None => err(self.pos, "expected a key after `.`"),
        }
    }

    fn quoted(&mut self) -> Result<String, PathError> {
        let start = self.pos;
        self.pos += 1; // the opening quote
        let mut key = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(key);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => key.push(e),
                    _ => {
                        return err(
                            self.pos + i,
                            r#"only \" and \\ are escapes in a quoted key"#,
                        )
                    }
                },
                c => key.push(c),
            }
        }
        err(start, "unterminated quoted key")
    }

    fn bracket(&mut self) -> Result<Segment, PathError> {
        let open = self.pos;
        self.pos += 1;
        let seg = match self.peek() {
            Some('"') => Segment::Key(self.quoted()?),
            Some(c) if c.is_ascii_digit() => {
                let rest = self.rest();
                let n = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let digits = rest.get(..n).unwrap_or("");
                let Ok(index) = digits.parse::<usize>() else {
                    return err(self.pos, "array index too large");
                };
                self.pos += n;
                Segment::Index(index)
            }
            _ => {
                return err(
                    self.pos,
                    "expected an array index or a quoted key after `[`",
                )
            }
        };
        if self.peek() != Some(']') {
            return err(open, "unclosed `[`");
        }
        self.pos += 1;
        Ok(seg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Segment::{Index as I, Key as K};

    fn k(s: &str) -> Segment {
        K(s.to_owned())
    }

    #[test]
    fn parses() {
        let cases: Vec<(&str, Vec<Segment>)> = vec![
            ("a", vec![k("a")]),
            ("context.user_id", vec![k("context"), k("user_id")]),
            ("tags[0]", vec![k("tags"), I(0)]),
            ("$.a[12].b", vec![k("a"), I(12), k("b")]),
            (r#"$["a"][1]"#, vec![k("a"), I(1)]),
            (r#""a.b"."c d""#, vec![k("a.b"), k("c d")]),
            (r#"["a.b"]"#, vec![k("a.b")]),
            (r#"x["a\"b"]["\\"]"#, vec![k("x"), k("a\"b"), k("\\")]),
            (r#""@timestamp""#, vec![k("@timestamp")]),
            ("日本.語", vec![k("日本"), k("語")]),
            ("a-b_c:d", vec![k("a-b_c:d")]),
            ("$x", vec![k("$x")]),
            (r#""""#, vec![k("")]),
        ];
        for (text, want) in cases {
            let got = Path::parse(text).unwrap_or_else(|e| {
                panic!("{text}: {e:?}");
            });
            assert_eq!(got.segments, want, "{text}");
        }
    }

    #[test]
    fn errors() {
        let cases = [
            ("", 0),
            ("$", 1),
            ("a..b", 2),
            ("a.", 2),
            (".a", 0),
            ("a[", 2),
            ("a[x]", 2),
            ("a[1", 1),
            ("a[-1]", 2),
            ("a b", 1),
            (r#""abc"#, 0),
            (r#""a\nb""#, 2),
            ("a]", 1),
            ("a[99999999999999999999999]", 2),
            // The root is an object: no path starts with an index.
            ("$[1]", 1),
            ("[0].a", 0),
        ];
        for (text, offset) in cases {
            let e = Path::parse(text).expect_err(text);
            assert_eq!(e.offset, offset, "{text}: {e:?}");
        }
    }

    #[test]
    fn lookups() {
        let mut json =
            br#"{"a":2,"a":{"b":[1,{"c":"x"},[2,3]],"d.e":null},"f":[]}"#
                .to_vec();
        let tape = simd_json::to_tape(&mut json).unwrap();
        let nodes = &tape.0;
        let at = |p: &str| Path::parse(p).unwrap().lookup(nodes);
        let node = |p: &str| at(p).map(|i| nodes[i]);
        assert_eq!(node("a.b[1].c"), Some(Node::String("x")));
        assert!(matches!(
            node("a.b[2][1]"),
            Some(Node::Static(simd_json::StaticNode::I64(3)))
                | Some(Node::Static(simd_json::StaticNode::U64(3)))
        ));
        assert_eq!(
            node(r#"a["d.e"]"#),
            Some(Node::Static(simd_json::StaticNode::Null))
        );
        assert_eq!(node("a.b[3]"), None);
        assert_eq!(node("a.x"), None);
        assert_eq!(node("a.b.c"), None);
        assert_eq!(node("f[0]"), None);
        assert!(matches!(node("a"), Some(Node::Object { .. })));
        assert!(matches!(node("f"), Some(Node::Array { len: 0, .. })));
        // The earlier `a` is shadowed.
        assert!(node("a.b[0]").is_some());
        // Scalars have no members.
        let mut json = b"\"s\"".to_vec();
        let tape = simd_json::to_tape(&mut json).unwrap();
        assert_eq!(Path::parse("a").unwrap().lookup(&tape.0), None);
    }

    /// Repeated keys: the last wins, at every step, inside arrays too.
    /// Each row: message, path, the value's JSON (`None`: missing).
    #[test]
    fn repeated_keys_last_wins() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (r#"{"a":1,"a":2}"#, "a", Some("2")),
            (r#"{"a":1,"a":2,"a":3}"#, "a", Some("3")),
            (r#"{"a":1,"b":0,"a":2,"c":0,"a":3}"#, "a", Some("3")),
            (r#"{"a":1,"a":null}"#, "a", Some("null")),
            (r#"{"a":{"b":1},"a":{"c":2}}"#, "a.b", None),
            (r#"{"a":{"b":1},"a":{"c":2}}"#, "a.c", Some("2")),
            (r#"{"a":{"b":1,"b":2},"a":{"b":3,"b":4}}"#, "a.b", Some("4")),
            (r#"{"a":{"b":{"c":1,"c":2}}}"#, "a.b.c", Some("2")),
            (r#"{"a":{"b":1},"a":5}"#, "a.b", None),
            (r#"{"a":5,"a":{"b":1}}"#, "a.b", Some("1")),
            (
                r#"{"l":[{"k":1,"k":2},{"k":3,"k":4,"k":5}]}"#,
                "l[0].k",
                Some("2"),
            ),
            (
                r#"{"l":[{"k":1,"k":2},{"k":3,"k":4,"k":5}]}"#,
                "l[1].k",
                Some("5"),
            ),
            (r#"{"l":[1],"l":[2,3]}"#, "l[1]", Some("3")),
            (r#"{"l":[1,2],"l":[3]}"#, "l[1]", None),
            (r#"{"\u0061":1,"a":2,"a\"":3}"#, "a", Some("2")),
        ];
        for &(text, path, want) in cases {
            let mut bytes = text.as_bytes().to_vec();
            let tape = simd_json::to_tape(&mut bytes).unwrap();
            let p = Path::parse(path).unwrap();
            let got = p.lookup(&tape.0).map(|i| {
                let mut out = Vec::new();
                crate::map::convert::write_json(
                    &tape.0,
                    i,
                    None,
                    crate::map::convert::NulPolicy::Reject,
                    &mut out,
                )
                .unwrap();
                String::from_utf8(out).unwrap()
            });
            assert_eq!(got.as_deref(), want, "{text} {path}");
            // serde_json keeps the last duplicate: the oracle agrees.
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut o = Some(&v);
            for seg in &p.segments {
                o = o.and_then(|v| match seg {
                    Segment::Key(k) => v.get(k),
                    Segment::Index(n) => v.get(n),
                });
            }
            assert_eq!(o.map(|v| v.to_string()).as_deref(), want, "{text}");
        }
    }
}

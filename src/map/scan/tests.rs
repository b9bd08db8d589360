//! Scanner tests: tokens, escapes, errors, pruning and depth, then a
//! property test against simd-json's full tape and `serde_json`.

use proptest::prelude::*;
use simd_json::StaticNode::{Bool, Null, F64, I64, U64};

use super::*;
use crate::map::path::{Path, Segment};

/// The [`Want`] of column paths `paths`.
fn want_of(paths: &[&str]) -> Want {
    let mut w = Want::nothing();
    for p in paths {
        let p = Path::parse(p).unwrap();
        w.add(p.segments.iter().map(|s| match s {
            Segment::Key(k) => Step::Key(k),
            Segment::Index(_) => Step::Index,
        }));
    }
    w
}

/// Scans `text` wanting `paths` (`None`: everything); returns the tape
/// as Debug text and the node offsets.
fn run(
    text: &str,
    paths: Option<&[&str]>,
) -> Result<(String, Vec<u32>), ScanError> {
    let want = paths.map_or_else(Want::everything, want_of);
    let (mut arena, mut stack) = (Vec::new(), Vec::new());
    let (mut tape, mut starts) = (Vec::new(), Vec::new());
    scan(text, &want, &mut arena, &mut stack, &mut tape, &mut starts)?;
    assert_eq!(tape.len(), starts.len());
    Ok((format!("{tape:?}"), starts))
}

fn tape(text: &str) -> String {
    run(text, None).unwrap_or_else(|e| panic!("{text:?}: {e}")).0
}

fn simd(text: &str) -> String {
    let mut b = text.as_bytes().to_vec();
    format!("{:?}", simd_json::to_tape(&mut b).unwrap().0)
}

#[test]
fn tokens() {
    let s = |x: &str| format!("{:?}", Node::String(x));
    let st = |x| format!("{:?}", Node::Static(x));
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("null", vec![st(Null)]),
        (" true ", vec![st(Bool(true))]),
        ("\t\r\nfalse\n", vec![st(Bool(false))]),
        ("0", vec![st(U64(0))]),
        ("-0", vec![st(I64(0))]),
        ("-0.0", vec![st(F64(-0.0))]),
        ("12", vec![st(U64(12))]),
        ("-12", vec![st(I64(-12))]),
        ("1.5", vec![st(F64(1.5))]),
        ("1e3", vec![st(F64(1000.0))]),
        ("1E+2", vec![st(F64(100.0))]),
        ("-25e-1", vec![st(F64(-2.5))]),
        ("0e99999999999", vec![st(F64(0.0))]),
        ("1e-400", vec![st(F64(0.0))]),
        ("9223372036854775807", vec![st(U64(9_223_372_036_854_775_807))]),
        ("18446744073709551615", vec![st(U64(u64::MAX))]),
        ("18446744073709551616", vec![st(F64(18_446_744_073_709_551_616.0))]),
        ("-9223372036854775808", vec![st(I64(i64::MIN))]),
        ("-9223372036854775809", vec![st(F64(-9_223_372_036_854_775_809.0))]),
        (r#""""#, vec![s("")]),
        (r#""abc""#, vec![s("abc")]),
        ("\"日本🎉\"", vec![s("日本🎉")]),
        (r#""\"\\\/\b\f\n\r\t""#, vec![s("\"\\/\u{8}\u{c}\n\r\t")]),
        (r#""\u0041\u00e9\u65e5""#, vec![s("Aé日")]),
        (r#""\ud83c\udf89x""#, vec![s("🎉x")]),
        (r#""\uD83C\uDF89""#, vec![s("🎉")]),
        (r#""\u0000""#, vec![s("\0")]),
        ("\"\u{7f}\"", vec![s("\u{7f}")]),
        ("[]", vec![format!("{:?}", Node::Array { len: 0, count: 0 })]),
        ("{ }", vec![format!("{:?}", Node::Object { len: 0, count: 0 })]),
        (
            r#"{"a":[1,{}],"b":null}"#,
            vec![
                format!("{:?}", Node::Object { len: 2, count: 6 }),
                s("a"),
                format!("{:?}", Node::Array { len: 2, count: 2 }),
                st(U64(1)),
                format!("{:?}", Node::Object { len: 0, count: 0 }),
                s("b"),
                st(Null),
            ],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(tape(text), format!("[{}]", want.join(", ")), "{text}");
        assert_eq!(tape(text), simd(text), "{text}: simd-json differs");
    }
}

#[test]
fn same_tape_as_simd_json() {
    for text in [
        r#"{"a":{"b":[1,-2.5,"x\ty",true,null,[],{}]},"a":1e-3}"#,
        r#"[[[[]]],[{"":""}],"\u0020",1.0e+10]"#,
        r#" { "k\"" : { "\u006b" : [ 0 , -0 , 123456789012345678901234 ] } } "#,
        "\"a string that is longer than eight bytes, with \\\\ inside\"",
        r#"{"context":{"user_id":"u1","log_name":"specific-log"},"tags":["a"]}"#,
    ] {
        assert_eq!(tape(text), simd(text), "{text}");
    }
}

#[test]
fn starts_are_node_offsets() {
    let text = r#" {"a" : [1.50, "x", -0], "b":1e3}"#;
    let (_, starts) = run(text, None).unwrap();
    assert_eq!(starts, [1, 2, 8, 9, 15, 20, 25, 29]);
}

#[test]
fn strings_borrow_unless_escaped() {
    let text = r#"{"plain":"abc","esc\n":"a\"b"}"#;
    let (mut arena, mut stack) = (Vec::new(), Vec::new());
    let (mut t, mut starts) = (Vec::new(), Vec::new());
    scan(
        text,
        &Want::everything(),
        &mut arena,
        &mut stack,
        &mut t,
        &mut starts,
    )
    .unwrap();
    let inside = |s: &str| {
        let r = text.as_bytes().as_ptr_range();
        r.contains(&s.as_ptr())
    };
    let strs: Vec<&str> = t
        .iter()
        .filter_map(|n| if let Node::String(s) = n { Some(*s) } else { None })
        .collect();
    assert_eq!(strs, ["plain", "abc", "esc\n", "a\"b"]);
    assert!(inside(strs[0]) && inside(strs[1]));
    assert!(!inside(strs[2]) && !inside(strs[3]));
}

#[test]
fn swar_flags_the_first_special_byte() {
    for pos in 0..8 {
        for b in 0..=255u8 {
            let mut w = [b'a'; 8];
            w[pos] = b;
            // A special byte further up must not hide this one.
            if pos < 7 {
                w[7] = b'"';
            }
            let (m, quote) = special(u64::from_le_bytes(w));
            let first = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
            let low = m & m.wrapping_neg();
            assert_eq!(quote & low != 0, first.is_some_and(|f| w[f] == b'"'));
            let is_special = b == b'"' || b == b'\\' || b < 0x20;
            let want = if is_special {
                Some(pos)
            } else if pos < 7 {
                Some(7)
            } else {
                None
            };
            assert_eq!(first, want, "byte {b:#x} at {pos}");
        }
    }
}

#[test]
fn key_heads() {
    let msg = b"\"abcdefghijk\"";
    for from in 0..msg.len() {
        for to in from..=msg.len() {
            let key = &msg[from..to];
            assert_eq!(head_at(msg, from, to), head(key), "{from}..{to}");
        }
    }
    assert_eq!(head(b""), 0);
    assert_eq!(head(b"ab"), 0x6261);
    let mut w = Want::nothing();
    for k in ["path", "tags", "latency_ms", "latency_mx", "", "a"] {
        w.add([Step::Key(k)]);
    }
    let child = |k: &str| w.child(0, k.as_bytes(), head(k.as_bytes()));
    assert_eq!(child("path"), Some(1));
    assert_eq!(child("latency_mx"), Some(4));
    assert_eq!(child(""), Some(5));
    assert_eq!(child("a"), Some(6));
    assert_eq!(child("pat"), None);
    assert_eq!(child("path\0"), None);
    assert_eq!(child("latency_my"), None);
}

/// Each invalid text, with the offset and reason of its error.
#[test]
fn errors() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "unexpected end of input"),
        ("   ", 3, "unexpected end of input"),
        ("x", 0, "expected a value"),
        ("{", 1, "unexpected end of input"),
        ("[", 1, "unexpected end of input"),
        ("[1", 2, "unexpected end of input"),
        ("[1,", 3, "unexpected end of input"),
        ("[1,]", 3, "expected a value"),
        ("[,1]", 1, "expected a value"),
        ("[1 2]", 3, "expected ',' or ']'"),
        ("[1}", 2, "expected ',' or ']'"),
        ("{\"a\":1]", 6, "expected ',' or '}'"),
        ("{\"a\" 1}", 5, "expected ':'"),
        ("{\"a\"", 4, "expected ':'"),
        ("{a:1}", 1, "expected a string key"),
        ("{\"a\":1,}", 7, "expected a string key"),
        ("{1:1}", 1, "expected a string key"),
        ("{\"a\":}", 5, "expected a value"),
        ("1 2", 2, "trailing characters"),
        ("{} x", 3, "trailing characters"),
        ("\"a\"\"b\"", 3, "trailing characters"),
        ("nul", 0, "invalid literal"),
        ("nulll", 4, "trailing characters"),
        ("True", 0, "expected a value"),
        ("[tru]", 1, "invalid literal"),
        ("\"abc", 0, "unterminated string"),
        ("[\"abcdefghijk", 1, "unterminated string"),
        ("\"a\\", 0, "unterminated string"),
        ("\"a\tb\"", 2, "control character in string"),
        ("\"0123456789\nb\"", 11, "control character in string"),
        ("\"\u{0}\"", 1, "control character in string"),
        ("\"\u{1f}\"", 1, "control character in string"),
        (r#""\x""#, 1, "invalid escape"),
        (r#""\'""#, 1, "invalid escape"),
        (r#""\U0041""#, 1, "invalid escape"),
        (r#""\u004""#, 1, "invalid \\u escape"),
        (r#""\u00g1""#, 1, "invalid \\u escape"),
        (r#""ab\ud800""#, 3, "lone surrogate in \\u escape"),
        (r#""\ud800\u0041""#, 1, "lone surrogate in \\u escape"),
        (r#""\ud800\ud800""#, 1, "lone surrogate in \\u escape"),
        (r#""\udc00""#, 1, "lone surrogate in \\u escape"),
        (r#""\ud800x""#, 1, "lone surrogate in \\u escape"),
        ("01", 1, "leading zero in number"),
        ("-01", 2, "leading zero in number"),
        ("-", 1, "expected a digit"),
        ("-a", 1, "expected a digit"),
        ("+1", 0, "expected a value"),
        (".5", 0, "expected a value"),
        ("1.", 2, "expected a digit after '.'"),
        ("1.e3", 2, "expected a digit after '.'"),
        ("1e", 2, "expected a digit in the exponent"),
        ("1e+", 3, "expected a digit in the exponent"),
        ("1ex", 2, "expected a digit in the exponent"),
        ("1x", 1, "trailing characters"),
        ("0x10", 1, "trailing characters"),
        ("1e400", 0, "number out of range"),
        ("[-1.5e309]", 1, "number out of range"),
        ("\u{a0}1", 0, "expected a value"),
        ("\u{feff}{}", 0, "expected a value"),
        ("{}\u{0}", 2, "trailing characters"),
        ("NaN", 0, "expected a value"),
        ("[Infinity]", 1, "expected a value"),
    ];
    for &(text, offset, reason) in cases {
        let want = ScanError { offset, reason };
        // Whether the value is kept or skipped, the error is the same.
        assert_eq!(run(text, None).err(), Some(want), "{text:?}");
        // Inside a skipped member, the same error 11 bytes further.
        let wrapped = format!("{{\"skipped\":{text}}}");
        if !matches!(
            reason,
            "trailing characters"
                | "unexpected end of input"
                | "unterminated string"
        ) {
            let want = ScanError { offset: offset + 11, reason };
            let got = run(&wrapped, Some(&["kept"])).err();
            assert_eq!(got, Some(want), "{wrapped:?}");
        }
        let oracle = serde_json::from_str::<serde_json::Value>(text);
        assert!(oracle.is_err(), "serde_json accepts {text:?}");
        let mut copy = text.as_bytes().to_vec();
        assert!(simd_json::to_tape(&mut copy).is_err(), "simd-json: {text:?}");
    }
    // A number too big for f64 is an error even where it is skipped.
    assert_eq!(
        run(r#"{"a":1,"b":[1e999]}"#, Some(&["a"])).err(),
        Some(ScanError { offset: 12, reason: "number out of range" })
    );
    let n = "9".repeat(400);
    assert!(run(&format!("[{n}]"), Some(&["a"])).is_err());
    assert!(run(&format!("[{n}e-200]"), Some(&["a"])).is_ok());
    assert_eq!(
        ScanError { offset: 17, reason: "expected ':'" }.to_string(),
        "invalid JSON at byte 17: expected ':'"
    );
}

#[test]
fn pruned() {
    let text = r#"{"a":{"b":1,"c":[1,2],"b":"x"},"d":"\"q\"","e":{"f":[2]},"g":[{"h":1}]}"#;
    let n = |len, count| format!("Object {{ len: {len}, count: {count} }}");
    // Nothing wanted: just the root's type.
    assert_eq!(run(text, Some(&[])).unwrap().0, format!("[{}]", n(0, 0)));
    // a.b twice (duplicates stay, in order), e whole.
    assert_eq!(
        run(text, Some(&["a.b", "e"])).unwrap().0,
        format!(
            "[{}, String(\"a\"), {}, String(\"b\"), Static(U64(1)), \
             String(\"b\"), String(\"x\"), String(\"e\"), {}, String(\"f\"), \
             Array {{ len: 1, count: 1 }}, Static(U64(2))]",
            n(2, 11),
            n(2, 4),
            n(1, 3)
        )
    );
    // An index keeps the whole array; a key under an array keeps none of
    // its elements.
    assert_eq!(
        run(text, Some(&["g[0].h", "a.c.x"])).unwrap().0,
        format!(
            "[{}, String(\"a\"), {}, String(\"c\"), \
             Array {{ len: 0, count: 0 }}, String(\"g\"), \
             Array {{ len: 1, count: 3 }}, {}, String(\"h\"), Static(U64(1))]",
            n(2, 9),
            n(1, 2),
            n(1, 2)
        )
    );
    // Escaped keys match by their unescaped text.
    assert_eq!(
        run(r#"{"\u0061":1,"a\"":2,"a":3}"#, Some(&[r#"["a\""]"#, "a"]))
            .unwrap()
            .0,
        "[Object { len: 3, count: 6 }, String(\"a\"), Static(U64(1)), \
         String(\"a\\\"\"), Static(U64(2)), String(\"a\"), Static(U64(3))]"
    );
    // A wanted path on a scalar root: the scalar.
    assert_eq!(run("\"s\"", Some(&["a"])).unwrap().0, "[String(\"s\")]");
    // Keep-all below a pruned node.
    let full = tape(text);
    let all = run(text, Some(&["a", "d", "e", "g"])).unwrap().0;
    assert_eq!(all, full);
}

/// Repeated keys stay on the pruned tape, in order, so lookups find the
/// last one (issue #12). Each row: message, path, the value's JSON.
#[test]
fn pruned_repeated_keys() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (r#"{"a":1,"b":2,"a":3}"#, "a", Some("3")),
        (r#"{"a":1,"a":2,"a":3}"#, "a", Some("3")),
        (r#"{"a":{"b":1},"a":{"c":[1]},"a":{"b":2,"b":3}}"#, "a.b", Some("3")),
        (r#"{"a":{"b":1},"a":{"c":[1]}}"#, "a.b", None),
        (r#"{"a":{"b":1},"a":{"c":[1]}}"#, "a.c[0]", Some("1")),
        (r#"{"a":{"b":1},"a":[{"b":2}]}"#, "a.b", None),
        (r#"{"l":[{"k":1,"k":2},{"k":3}]}"#, "l[0].k", Some("2")),
        (r#"{"l":[{"k":1}],"l":[{"k":2,"k":3,"k":4}]}"#, "l[0].k", Some("4")),
        (r#"{"a\u0062":1,"ab":2}"#, "ab", Some("2")),
    ];
    for &(text, path, want) in cases {
        let p = Path::parse(path).unwrap();
        let mut w = Want::nothing();
        w.add(p.segments.iter().map(|s| match s {
            Segment::Key(k) => Step::Key(k),
            Segment::Index(_) => Step::Index,
        }));
        let (mut arena, mut stack) = (Vec::new(), Vec::new());
        let (mut tape, mut starts) = (Vec::new(), Vec::new());
        scan(text, &w, &mut arena, &mut stack, &mut tape, &mut starts)
            .unwrap();
        let got = p.lookup(&tape).map(|i| {
            let mut out = Vec::new();
            let lex = crate::map::convert::Lexemes::new(&starts, text);
            crate::map::convert::write_json(
                &tape,
                i,
                Some(lex),
                crate::map::convert::NulPolicy::Reject,
                &mut out,
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        });
        assert_eq!(got.as_deref(), want, "{text} {path}");
    }
}

#[test]
fn depth_limit() {
    let nest = |n: usize, open: &str, close: &str| {
        format!("{}{}", open.repeat(n), close.repeat(n))
    };
    assert!(run(&nest(MAX_DEPTH, "[", "]"), None).is_ok());
    assert!(run(&nest(MAX_DEPTH, "{\"a\":", "}").replace(":}", ":1}"), None)
        .is_ok());
    let obj =
        format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
    assert!(run(&obj, Some(&["a.a.a"])).is_ok());
    let deep = nest(MAX_DEPTH + 1, "[", "]");
    let e =
        ScanError { offset: MAX_DEPTH, reason: "nesting deeper than 1024" };
    assert_eq!(run(&deep, None).err(), Some(e));
    assert_eq!(run(&deep, Some(&["a"])).err(), Some(e));
    // Far deeper input is an error, not a stack overflow.
    assert!(run(&"[".repeat(1 << 20), Some(&[])).is_err());
    assert!(run(&"{\"a\":".repeat(1 << 18), Some(&["a"])).is_err());
}

#[test]
fn scratch_is_reused() {
    let want = Want::everything();
    let (mut arena, mut stack) = (Vec::new(), Vec::new());
    let mut starts = Vec::new();
    for text in [r#"{"a":"\n\n\n\n","b":[1,2,3]}"#, r#"{"a":"\t"}"#] {
        let mut t = Vec::new();
        scan(text, &want, &mut arena, &mut stack, &mut t, &mut starts)
            .unwrap();
        assert_eq!(t.len(), starts.len());
    }
    assert_eq!(arena.len(), 28);
    let caps = (arena.capacity(), stack.capacity(), starts.capacity());
    let mut t = Vec::new();
    scan(r#"{"a":"\t"}"#, &want, &mut arena, &mut stack, &mut t, &mut starts)
        .unwrap();
    assert_eq!(
        t,
        [
            Node::Object { len: 1, count: 2 },
            Node::String("a"),
            Node::String("\t")
        ]
    );
    assert_eq!((arena.capacity(), stack.capacity(), starts.capacity()), caps);
}

// ---------------------------------------------------------------------
// Property tests.

/// A generated JSON value; numbers keep their lexeme.
#[derive(Clone, Debug)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

/// Serialises `j`, choosing whitespace and escapes with `rng`.
fn write(j: &J, rng: &mut u64, out: &mut String) {
    let ws = |r: u64, out: &mut String| {
        out.push_str(
            ["", "", "", " ", "\n", "\t ", "\r\n  "][(r % 7) as usize],
        );
    };
    let string = |s: &str, r: u64, out: &mut String| {
        out.push('"');
        let mut r = r;
        for c in s.chars() {
            r = r.rotate_left(5) ^ 0x9e37_79b9;
            let escape = r.is_multiple_of(5);
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' if r.is_multiple_of(2) => out.push_str("\\n"),
                '/' if escape => out.push_str("\\/"),
                c if (c as u32) < 0x20 || escape => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        if r.is_multiple_of(3) {
                            out.push_str(&format!("\\u{u:04X}"));
                        } else {
                            out.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    };
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => string(s, next(rng), out),
        J::Arr(items) => {
            out.push('[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                ws(next(rng), out);
                write(item, rng, out);
                ws(rng.rotate_left(3), out);
            }
            ws(next(rng), out);
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (k, (key, v)) in members.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                ws(next(rng), out);
                string(key, next(rng), out);
                ws(next(rng), out);
                out.push(':');
                ws(next(rng), out);
                write(v, rng, out);
            }
            ws(next(rng), out);
            out.push('}');
        }
    }
}

/// Every path of `j`, prefixes included.
fn paths(j: &J, prefix: &mut Vec<Segment>, out: &mut Vec<Path>) {
    let mut visit = |seg: Segment, v: &J, out: &mut Vec<Path>| {
        prefix.push(seg);
        out.push(Path { segments: prefix.clone() });
        paths(v, prefix, out);
        prefix.pop();
    };
    match j {
        J::Arr(items) => {
            for (i, v) in items.iter().enumerate() {
                visit(Segment::Index(i), v, out);
            }
        }
        J::Obj(members) => {
            for (k, v) in members {
                visit(Segment::Key(k.clone()), v, out);
            }
        }
        _ => {}
    }
}

fn json() -> impl Strategy<Value = J> {
    let number = prop_oneof![
        prop::sample::select(vec![
            "0",
            "-0",
            "1.50",
            "1e3",
            "1E+2",
            "-3e-2",
            "0.1",
            "-0.0",
            "1.0",
            "12345678901234567890",
            "123456789012345678901234567890",
            "-9223372036854775808",
            "-9223372036854775809",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "2.5e-300",
            "1.7976931348623157e308",
            "4.9e-324",
            "1e-400",
            "0.30000000000000004",
            "9007199254740993",
            "123.456e-7",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        (-1000i32..1000, 0u32..1000, -330i32..300)
            .prop_map(|(a, b, e)| format!("{a}.{b}e{e}")),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "a", "b", "k\"", "é", "", "a.b", "日本", "\n"
        ])
        .prop_map(str::to_owned),
        "[a-c]{1,3}",
    ];
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        number.prop_map(J::Num),
        any::<String>().prop_map(J::Str),
        "[a-z\"\\\\/ \u{1}\u{1f}\u{7f}é🎉]{0,12}".prop_map(J::Str),
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(J::Arr),
            prop::collection::vec((key.clone(), inner.clone()), 0..8)
                .prop_map(J::Obj),
            // Objects that repeat keys (issue #12): each extra member
            // takes the key of an earlier one, with a new value.
            (
                prop::collection::vec((key.clone(), inner.clone()), 1..5),
                prop::collection::vec(
                    (any::<prop::sample::Index>(), inner),
                    1..4
                ),
            )
                .prop_map(|(mut members, extra)| {
                    for (at, v) in extra {
                        let k = members[at.index(members.len())].0.clone();
                        members.push((k, v));
                    }
                    J::Obj(members)
                }),
        ]
    })
}

/// Replaces, inserts or deletes bytes of `text` at positions from `seed`.
fn mutate(text: &str, edits: &[(u16, u8, u8)]) -> Vec<u8> {
    const BYTES: &[u8] =
        b"{}[]:,\"\\ \n\t0123456789-+.eEtrufalsn\x01\x7f\xc3\xa9u";
    let mut b = text.as_bytes().to_vec();
    for &(at, op, byte) in edits {
        let at = usize::from(at) % (b.len() + 1);
        let byte = BYTES[usize::from(byte) % BYTES.len()];
        match op % 3 {
            0 if at < b.len() => b[at] = byte,
            1 => b.insert(at, byte),
            _ if at < b.len() => {
                b.remove(at);
            }
            _ => b.push(byte),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Every wanted path, and some that miss, looks up the same value on
    /// the pruned tape as on the full one and as `serde_json` (last of
    /// repeated keys), through `Path::lookup` and the filter's `resolve`,
    /// with the same lexemes; the full scan is simd-json's tape.
    #[test]
    fn pruned_lookups_agree(
        j in json(),
        seed in any::<u64>(),
        pick in any::<u64>(),
    ) {
        let mut text = String::new();
        let mut rng = seed | 1;
        if seed % 4 == 0 {
            text.push_str(" \n");
        }
        write(&j, &mut rng, &mut text);
        if seed % 3 == 0 {
            text.push_str("\t ");
        }
        let mut all = Vec::new();
        paths(&j, &mut Vec::new(), &mut all);
        let mut k = 0;
        let wanted: Vec<Path> = all
            .into_iter()
            .filter(|_| {
                k += 1;
                pick.rotate_right(k) & 3 == 0
            })
            .chain(["zz", "a.zz", "a[99]", "b[0].a", "\"\""]
                .iter()
                .map(|p| Path::parse(p).unwrap()))
            .collect();
        let (mut arena, mut stack) = (Vec::new(), Vec::new());
        let (mut full, mut starts) = (Vec::new(), Vec::new());
        let res = scan(
            &text, &Want::everything(), &mut arena, &mut stack, &mut full,
            &mut starts,
        );
        prop_assert!(res.is_ok(), "{:?}: {:?}", text, res);
        prop_assert_eq!(format!("{full:?}"), simd(&text));
        crate::fuzzing::check_pruned(&text, &full, &starts, &wanted);
        // And the fuzz target's own checks.
        let json = crate::fuzzing::scan_checked(&text, &mut |i| {
            pick.rotate_left(i as u32) & 1 == 1
        });
        prop_assert!(json);
    }

    /// Mutated texts: the scanner accepts exactly what serde_json accepts.
    #[test]
    fn accepts_iff_serde_json_does(
        j in json(),
        seed in any::<u64>(),
        edits in prop::collection::vec(any::<(u16, u8, u8)>(), 1..4),
    ) {
        let mut text = String::new();
        let mut rng = seed | 1;
        write(&j, &mut rng, &mut text);
        let bytes = mutate(&text, &edits);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = crate::fuzzing::scan_checked(s, &mut |i| i % 2 == 0);
        }
    }
}

/// The scan of `text` and of its escaped form `escaped`: the same
/// outcome where the escaped form reads it (the same tape, the same
/// number lexemes), and for `serde_json`'s escaping (style 0) it always
/// reads what the plain scan accepts.
fn escaped_agrees(text: &str, style: usize, want: &Want) {
    let escaped = crate::fuzzing::escape(text, style);
    let (mut a1, mut st1, mut t1, mut s1) = (vec![], vec![], vec![], vec![]);
    let (mut a2, mut st2, mut t2, mut s2) = (vec![], vec![], vec![], vec![]);
    let plain = scan(text, want, &mut a1, &mut st1, &mut t1, &mut s1);
    let mut p = fast::Predict::default();
    let esc = scan_escaped(
        &escaped, true, want, &mut a2, &mut st2, &mut t2, &mut s2, &mut p,
    );
    match (&plain, &esc) {
        (Ok(()), Ok(())) => {
            assert_eq!(format!("{t1:?}"), format!("{t2:?}"), "{text:?}");
            let l1 = crate::map::convert::Lexemes::new(&s1, text);
            let l2 = crate::map::convert::Lexemes::new(&s2, &escaped);
            for (i, n) in t1.iter().enumerate() {
                if let Node::Static(_) = n {
                    assert_eq!(l1.number(i), l2.number(i), "{text:?}");
                }
            }
        }
        (Err(_), Ok(())) => {
            panic!("{text:?}: escaped form accepted, plain rejected")
        }
        (Ok(()), Err(e)) if style == 0 => {
            panic!("{text:?} as {escaped:?}: {e}")
        }
        _ => {}
    }
}

#[test]
fn escaped_form_reads_the_corpus_messages() {
    let mut rng = crate::corpus::Rng::new(42);
    let mut msg = String::new();
    for _ in 0..500 {
        msg.clear();
        crate::corpus::message(&mut rng, 1_714_568_707_123, &mut msg);
        for style in 0..crate::fuzzing::ESCAPE_STYLES {
            escaped_agrees(&msg, style, &Want::everything());
            escaped_agrees(&msg, style, &Want::nothing());
        }
    }
    for text in [
        r#" {"a" : [1, -2.5e3, true, null, "x\"y\\z\n\u00e9\ud83d\ude00"]}	"#,
        "\n[ \"\\/\" ]\r\n",
        r#"{"k\"ey": {"\u006b": 1}}"#,
        r#""é\/""#,
        r#"{"a":"unterminated}"#,
        r#"{"a":"\ud800"}"#,
        "{\"a\":\"tab\there\"}",
        "",
        "   ",
    ] {
        for style in 0..crate::fuzzing::ESCAPE_STYLES {
            escaped_agrees(text, style, &Want::everything());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Generated and mutated JSON texts, escaped four ways: the escaped
    /// scan agrees with the plain one (`escaped_agrees`), its fast path
    /// with its state machine (`fast_agrees`), and the mapper
    /// and converter on the one-pass path agree with the oracle path on
    /// every spec of the fuzz target (`fuzzing::onepass`).
    #[test]
    fn escaped_scan_and_onepass_agree_with_the_oracle(
        j in json(),
        seed in any::<u64>(),
        edits in prop::collection::vec(any::<(u16, u8, u8)>(), 0..3),
        pick in any::<u8>(),
    ) {
        let mut text = String::new();
        let mut rng = seed | 1;
        write(&j, &mut rng, &mut text);
        let bytes = if edits.is_empty() {
            text.into_bytes()
        } else {
            mutate(&text, &edits)
        };
        if let Ok(text) = std::str::from_utf8(&bytes) {
            for style in 0..crate::fuzzing::ESCAPE_STYLES {
                escaped_agrees(text, style, &Want::everything());
                escaped_agrees(text, style, &Want::nothing());
                // The fast path, where it reads the text, under every
                // want of `fast_wants`: the state machine's result.
                let escaped = crate::fuzzing::escape(text, style);
                for w in &fast_wants() {
                    fast_agrees(&escaped, w);
                }
            }
        }
        let mut input = vec![pick];
        input.extend_from_slice(&bytes);
        crate::fuzzing::onepass(&input);
    }
}

/// A skipped number ([`skip_number`], eight digits at a time) is accepted
/// or refused exactly as a kept one, with the same error at the same
/// offset, in arrays and objects, plain and escaped.
#[test]
fn skipped_numbers_validate_as_kept_ones() {
    let long = "1234567890".repeat(31);
    let mut lexemes: Vec<String> = [
        "0",
        "-0",
        "7",
        "-7",
        "00",
        "01",
        "-01",
        "-",
        "--1",
        "1.",
        "1.5",
        "1.e3",
        "1e",
        "1e+",
        "1e-3",
        "1E400",
        "-1e400",
        "0.0000001",
        "12345678",
        "123456789",
        "1234567812345678",
        "12345678:",
        "1234567/",
        "9999999999999999999999",
        "1.23456789012345678901",
        "1_000",
        "123456789012345678901234567890.5e-10",
        "2.",
        "3.x",
        "4e5e6",
        "1234567\u{e9}",
        "12345678\u{e9}",
        "0x10",
        "1.0.0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // 310 integer digits overflow f64 only as values: the full path tells.
    lexemes.push(long.clone());
    lexemes.push(format!("-{long}"));
    lexemes.push(format!("{}.5", &long[..308]));
    lexemes.push(format!("{}e-400", &long[..20]));
    for lexeme in &lexemes {
        for text in [
            format!("[{lexeme}]"),
            format!("{{\"a\":{lexeme}}}"),
            format!("[{lexeme},1]"),
            lexeme.clone(),
        ] {
            let kept = run(&text, None).map(|_| ());
            let skipped = run(&text, Some(&[])).map(|_| ());
            assert_eq!(kept, skipped, "{text:?}");
            for style in 0..crate::fuzzing::ESCAPE_STYLES {
                escaped_agrees(&text, style, &Want::nothing());
            }
        }
    }
}

#[test]
fn digit_runs_end_at_the_first_other_byte() {
    let bytes: Vec<u8> = (0u8..=255).collect();
    for len in 0..40 {
        for &other in &bytes {
            let mut msg = vec![b'5'; len];
            msg.push(other);
            msg.extend_from_slice(b"12345678");
            let want = if other.is_ascii_digit() { msg.len() } else { len };
            assert_eq!(digits_end(&msg, 0), want, "{len} {other:#x}");
        }
    }
}

/// A float whose significand is exactly 2^64 (20 digits), which wraps the
/// scanner's u64 significand to 0: the scanner read it as 0.0 (the digit
/// count skipped digits while the significand was 0, so the fast path
/// took it); found by `accepts_iff_serde_json_does`.
#[test]
fn a_twenty_digit_significand_is_read_correctly() {
    for text in [
        r#"{"b":1844674407.3709551616}"#,
        r#"[1.8446744073709551616, -18446744073709551616.0]"#,
    ] {
        assert!(crate::fuzzing::scan_checked(text, &mut |_| true), "{text}");
    }
    assert_eq!(
        tape("1844674407.3709551616"),
        format!("{:?}", [Node::Static(F64(1_844_674_407.370_955_2))])
    );
}

/// The spec's wants of the bench spec (`integrated_user_log.toml`) and
/// a few others: nothing, everything, nested paths, arrays.
fn fast_wants() -> Vec<Want> {
    let mut out = vec![Want::nothing(), Want::everything()];
    for paths in [
        &["context.log_name", "context.user_id", "path", "status"][..],
        &["latency_ms", "tags", "a.b.c", "b.a"][..],
        &["x.y", "tags[0]", "level", "context"][..],
        // Nested paths under keys the generator repeats.
        &["a.b", "b.c.a", "c", "ab.a"][..],
    ] {
        out.push(want_of(paths));
    }
    out
}

#[test]
fn the_fast_path_reads_the_corpus_messages_as_the_state_machine_does() {
    let mut rng = crate::corpus::Rng::new(7);
    let mut msg = String::new();
    let wants = fast_wants();
    let (mut json, mut read) = (0, 0);
    for _ in 0..500 {
        msg.clear();
        crate::corpus::message(&mut rng, 1_714_568_707_123, &mut msg);
        let escaped = crate::fuzzing::escape(&msg, 0);
        let is_json = serde_json::from_str::<serde_json::Value>(&msg).is_ok();
        for (i, w) in wants.iter().enumerate() {
            let fast = fast_agrees(&escaped, w);
            // Wanting everything keeps `msg`, whose strings have escapes.
            if i != 1 {
                json += usize::from(is_json);
                read += usize::from(fast);
            }
        }
    }
    // Every JSON message of the corpus takes the fast path where its
    // kept strings have no escapes (its skipped ones do, and are read).
    assert!(json > 1500, "{json}");
    assert_eq!(read, json);
}

/// Corpus objects, and envelopes holding messages the fast path gives up
/// on or reads only partly (not JSON, a `\u` escape, a kept string with
/// an escape, whitespace escapes, trailing whitespace, an empty one), give
/// the same CSV, counts and rejects on the one-pass path, which scans most
/// messages as the envelope reader meets them ([`super::prescan`]), as on
/// the oracle path, under every spec of `fuzz_onepass`.
#[test]
fn messages_scanned_ahead_convert_as_the_oracle_converts_them() {
    let mut rng = crate::corpus::Rng::new(11);
    let mut ts = 1_714_568_707_123;
    let (data, _) = crate::corpus::object(&mut rng, &mut ts, 3, 40_000, true);
    let ahead = crate::fuzzing::onepass_object_all(&data);
    assert!(ahead > 1000, "{ahead} messages scanned ahead");
    let odd = [
        "not json",
        "{\"a\":\"\\u00e9\",\"status\":1}",
        "{\"path\":\"x\\ny\",\"status\":2}",
        "{\"status\": 3,\n\"path\":\"p\"}\t",
        "{\"msg\":\"a \\\"q\\\" b\",\"latency_ms\":1.5} ",
        "",
        "[1,2]",
        "{\"context\":{\"log_name\":\"specific-log\"},\"tags\":[\"a\"]}",
    ];
    let mut events = String::new();
    for (i, m) in odd.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        events.push_str(&format!(
            r#"{sep}{{"id":"{i}","timestamp":{i},"message":{}}}"#,
            serde_json::Value::String((*m).to_owned())
        ));
    }
    let env = format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{events}]}}"#
    );
    assert!(crate::fuzzing::onepass_object_all(env.as_bytes()) > 0);
}

#[test]
fn the_fast_path_gives_up_where_it_should() {
    let all = Want::everything();
    let nothing = Want::nothing();
    let e = |t: &str| crate::fuzzing::escape(t, 0);
    // Read: whitespace of both kinds, literals, nesting, empty
    // containers, skipped escapes.
    for t in [
        "{\"a\": [1, -2.5, true, false, null], \"b\" : {}}",
        "\n[ ]\t",
        "{\"s\":\"x\\\"y\\\\z\\n\"}",
        "\"top\"",
        "-0.0",
    ] {
        assert!(fast_agrees(&e(t), &nothing), "{t:?}");
    }
    assert!(fast_agrees(
        &e("{\"a\": [1, -2.5, true, null], \"b\": {}}"),
        &all
    ));
    // Repeated keys: the later value's slots, the earlier's cleared.
    let nested = &fast_wants()[5];
    for t in [
        "{\"a\":{\"b\":1},\"a\":{\"x\":2}}",
        "{\"b\":{\"c\":{\"a\":1}},\"b\":{\"c\":[]},\"c\":3,\"c\":4}",
    ] {
        assert!(fast_agrees(&e(t), nested), "{t:?}");
    }
    // Given up: a kept string with an escape, a skipped exponent, deep
    // nesting, a `\u` escape, and texts that are not JSON.
    let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
    for (t, w) in [
        ("{\"a\":\"x\\ny\"}", &all),
        ("{\"a\":1e5}", &nothing),
        (deep.as_str(), &nothing),
        ("{\"a\":\"\\ud800\"}", &nothing),
        ("{\"a\":1,}", &nothing),
        ("{\"a\" 1}", &nothing),
        ("[1 2]", &nothing),
        ("01", &nothing),
        ("tru", &nothing),
        ("{} x", &nothing),
        ("", &nothing),
    ] {
        assert!(!fast_agrees(&e(t), w), "{t:?}");
    }
}

/// Messages whose keys the fast path's guesses ([`fast::Predict`]) get
/// right, half right or wrong: each read after each (with the guesses the
/// first leaves) as the state machine reads it.
#[test]
fn guessed_keys_read_as_the_state_machine_reads_them() {
    let texts = [
        r#"{"level":"info","context":{"log_name":"a","user_id":"u-1"},"path":"/x","status":200,"tags":["a"]}"#,
        // The same keys, values of other lengths and kinds.
        r#"{"level":"warning","context":{"log_name":"specific-log","user_id":7},"path":"","status":-1.5,"tags":[]}"#,
        // A key one byte longer, shorter, or with an escape.
        r#"{"levels":"info","context":{"log_nam":"a","user_id\n":"u-1"},"path":"/x","status":200}"#,
        r#"{"leve\"l":1,"context":{"log_name":"a"},"pat\\h":2}"#,
        // Whitespace before and after the colon, and in the key's place.
        r#"{ "level" :"info",  "context": {"log_name" : "a"}, "path":1}"#,
        // The same key a member later or in another object.
        r#"{"x":0,"level":"info","context":{"context":{"log_name":"a"}},"path":{"path":1}}"#,
        // Repeated keys: the later one's slots.
        r#"{"context":{"user_id":"a"},"context":{"log_name":"b"},"status":1,"status":2}"#,
        // Objects in arrays, a skipped object with the same keys.
        r#"[{"level":"info","context":{"log_name":"a"}},{"path":"/x"}]"#,
        r#"{"tags":[{"level":1},{"context":{"log_name":2}}],"http":{"level":"info","path":"/"}}"#,
        // A key near the end (fewer than 16 bytes after it), long keys.
        r#"{"a":1}"#,
        r#"{"a_key_longer_than_sixteen":1,"context":{"log_name_that_is_long":"a"},"a":2}"#,
        // Not JSON after a guessed key.
        r#"{"level":"info","context":{"log_name":"a"},"path":}"#,
        r#"{"level" "info"}"#,
    ];
    let escaped: Vec<String> =
        texts.iter().map(|t| crate::fuzzing::escape(t, 0)).collect();
    let mut wants = fast_wants();
    wants.push(want_of(&[
        "level",
        "context.log_name",
        "context.user_id",
        "path",
        "status",
        "tags",
    ]));
    let mut read = 0;
    for w in &wants {
        for a in &escaped {
            for b in &escaped {
                let mut p = fast::Predict::default();
                fast_agrees_after(a, w, &mut p);
                read += usize::from(fast_agrees_after(b, w, &mut p));
            }
        }
    }
    // One predictor from trie to trie: a guess's child is of its trie.
    let mut p = fast::Predict::default();
    for a in &escaped {
        for w in &wants {
            fast_agrees_after(a, w, &mut p);
        }
    }
    // Most pairs are read by the fast path, so the guesses were taken.
    assert!(read > wants.len() * escaped.len() * escaped.len() / 2, "{read}");
}

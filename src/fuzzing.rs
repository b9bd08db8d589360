//! The invariants the fuzz targets check, shared with the test that
//! replays their findings on stable (`tests/fuzz_corpus.rs`). Not a stable
//! API.

use crate::decode::{DecoderBuilder, FnSink, LogEvent, Scratch, Variant};

/// Every variant, in the order the fuzz input's first byte picks them.
pub const VARIANTS: [Variant; 5] = [
    Variant::Auto,
    Variant::Gzip,
    Variant::GzipOverGzip,
    Variant::Json,
    Variant::Lines,
];

/// Decodes `data` with small limits, checking that the counts match what
/// reached the sink and every error names the object; returns the events
/// and error codes for comparison.
#[must_use]
pub fn decode_checked(
    data: &[u8],
    variant: Variant,
    libdeflate: bool,
) -> (Vec<String>, Vec<&'static str>) {
    let dec = DecoderBuilder::new()
        .variant(variant)
        .libdeflate(libdeflate)
        .max_member_bytes(1 << 20)
        .max_object_bytes(4 << 20)
        .build();
    let mut scratch = Scratch::new();
    let (mut events, mut errors) = (vec![], vec![]);
    let sink = FnSink::new(
        |e: &LogEvent<'_>| -> Result<(), ()> {
            events.push(format!(
                "{:?}",
                (e.member, e.id, e.timestamp, e.message)
            ));
            Ok(())
        },
        |e| {
            assert_eq!(e.location().object, "fuzz");
            errors.push(e.code());
            Ok(())
        },
    );
    let stats = dec.decode("fuzz", data, &mut scratch, sink);
    assert!(stats.is_ok(), "the sink never fails");
    if let Ok(stats) = stats {
        assert_eq!(stats.input_bytes, data.len() as u64);
        assert_eq!(stats.events, events.len() as u64);
        assert_eq!(stats.errors, errors.len() as u64);
    }
    (events, errors)
}

/// The `fuzz_object` invariant: the first byte picks the variant; the
/// libdeflate and zlib-rs paths agree on everything else.
pub fn object(input: &[u8]) {
    let Some((&pick, data)) = input.split_first() else { return };
    let v = VARIANTS[usize::from(pick) % VARIANTS.len()];
    assert_eq!(
        decode_checked(data, v, true),
        decode_checked(data, v, false),
        "libdeflate and zlib-rs disagree ({v:?})"
    );
}

/// The `fuzz_scan` invariant. The first byte picks which of the
/// document's paths are wanted; the rest, when UTF-8, is the message:
/// the scanner accepts it iff `serde_json` and simd-json do, a keep-all
/// scan gives simd-json's tape, and every wanted path looks up the same
/// value on the pruned tape as on the full one, and as `serde_json`'s
/// `Value` (which keeps the last of repeated keys) does (see
/// [`scan_checked`]).
pub fn scan(input: &[u8]) {
    let Some((&pick, data)) = input.split_first() else { return };
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut k = 0u32;
    let _ = scan_checked(text, &mut |_| {
        k += 1;
        (u32::from(pick) >> (k % 8)) & 1 == 1
    });
}

/// Scans `text` whole and pruned, checking the scanner against
/// `serde_json` (acceptance) and simd-json (acceptance, the full tape); `wanted`
/// picks, among the document's paths (in tape order), those to prune by.
/// Returns whether `text` is JSON.
#[must_use]
pub fn scan_checked(
    text: &str,
    wanted: &mut dyn FnMut(usize) -> bool,
) -> bool {
    use crate::map::path::{Path, Segment};
    use crate::map::scan::{scan, Want};

    let oracle = serde_json::from_str::<serde_json::Value>(text);
    let too_deep = matches!(
        &oracle,
        Err(e) if e.to_string().starts_with("recursion limit exceeded")
    );
    let (mut arena, mut stack) = (Vec::new(), Vec::new());
    let (mut full, mut full_starts) = (Vec::new(), Vec::new());
    let res = scan(
        text,
        &Want::everything(),
        &mut arena,
        &mut stack,
        &mut full,
        &mut full_starts,
    );
    if !too_deep {
        assert_eq!(
            res.is_ok(),
            oracle.is_ok(),
            "{text:?}: scan {res:?}, serde_json {oracle:?}"
        );
    }
    // simd-json (what the mapper used before) agrees too.
    let mut copy = text.as_bytes().to_vec();
    let simd = simd_json::to_tape(&mut copy);
    assert_eq!(
        res.is_ok(),
        simd.is_ok(),
        "{text:?}: scan {res:?}, simd-json {:?}",
        simd.as_ref().map(|_| ())
    );
    let (Ok(()), Ok(simd)) = (res, simd) else { return false };
    assert_eq!(full.len(), full_starts.len());
    assert_eq!(
        format!("{:?}", simd.0),
        format!("{full:?}"),
        "{text:?}: keep-all scan differs from simd-json"
    );
    // Every path of the document, in tape order, then some that miss.
    let mut paths = Vec::new();
    let mut walk = vec![(0usize, Vec::new())];
    while let Some((i, prefix)) = walk.pop() {
        if paths.len() >= 256 {
            break;
        }
        let mut j = i + 1;
        match full.get(i) {
            Some(simd_json::Node::Object { len, .. }) => {
                for _ in 0..*len {
                    let Some(simd_json::Node::String(k)) = full.get(j) else {
                        break;
                    };
                    let mut p: Vec<Segment> = prefix.clone();
                    p.push(Segment::Key((*k).to_owned()));
                    walk.push((j + 1, p));
                    j = crate::map::path::skip(&full, j + 1).unwrap_or(j);
                }
            }
            Some(simd_json::Node::Array { len, .. }) => {
                for n in 0..*len {
                    let mut p: Vec<Segment> = prefix.clone();
                    p.push(Segment::Index(n));
                    walk.push((j, p));
                    j = crate::map::path::skip(&full, j).unwrap_or(j);
                }
            }
            _ => {}
        }
        if !prefix.is_empty() {
            paths.push(Path { segments: prefix });
        }
    }
    let mut picked: Vec<Path> = (0..paths.len())
        .filter(|&i| wanted(i))
        .filter_map(|i| paths.get(i).cloned())
        .collect();
    for p in [&["zz"][..], &["a", "zz"], &[""]] {
        let segments = p.iter().map(|k| Segment::Key((*k).into())).collect();
        picked.push(Path { segments });
    }
    check_pruned(text, &full, &full_starts, &picked);
    true
}

/// Scans `text` (valid JSON whose keep-all tape is `full`, `full_starts`)
/// wanting `paths`; each of them must give the same value on both tapes,
/// with the same number lexemes, through column paths and filter
/// selectors alike, and the value `serde_json` finds there: repeated keys
/// resolve to their last occurrence, at every depth.
pub(crate) fn check_pruned(
    text: &str,
    full: &[simd_json::Node<'_>],
    full_starts: &[u32],
    paths: &[crate::map::path::Path],
) {
    use crate::map::convert::{write_json, Lexemes, NulPolicy};
    use crate::map::filter::{resolve, Step as Sel};
    use crate::map::path::Segment;
    use crate::map::scan::{scan, Step, Want};
    use simd_json::Node;

    let mut want = Want::nothing();
    for p in paths {
        want.add(p.segments.iter().map(|s| match s {
            Segment::Key(k) => Step::Key(k),
            Segment::Index(_) => Step::Index,
        }));
    }
    let (mut arena, mut stack) = (Vec::new(), Vec::new());
    let (mut tape, mut starts) = (Vec::new(), Vec::new());
    let res =
        scan(text, &want, &mut arena, &mut stack, &mut tape, &mut starts);
    assert_eq!(res, Ok(()), "{text:?}: the pruned scan failed");
    assert!(tape.len() <= full.len());
    assert_eq!(tape.len(), starts.len());
    let subtree = |nodes: &[Node<'_>], i: usize| {
        let end = crate::map::path::skip(nodes, i).unwrap_or(i);
        format!("{:?}", nodes.get(i..end))
    };
    let json = |nodes: &[Node<'_>], starts: &[u32], i: usize| {
        let mut out = Vec::new();
        let lex = Lexemes::new(starts, text.as_bytes());
        let _ = write_json(nodes, i, Some(lex), NulPolicy::Strip, &mut out);
        out
    };
    let full_tape = simd_json::Tape(full.to_vec());
    let pruned_tape = simd_json::Tape(tape.clone());
    // The oracle, unless the text nests deeper than serde_json's limit.
    let oracle = serde_json::from_str::<serde_json::Value>(text).ok();
    for p in paths {
        let a = p.lookup(full);
        let b = p.lookup(&tape);
        assert_eq!(a.is_some(), b.is_some(), "{text:?}: {p:?}");
        if let (Some(a), Some(b)) = (a, b) {
            assert_eq!(subtree(full, a), subtree(&tape, b), "{text:?}: {p:?}");
            assert_eq!(
                json(full, full_starts, a),
                json(&tape, &starts, b),
                "{text:?}: {p:?}"
            );
        }
        if let Some(root) = &oracle {
            let mut want = Some(root);
            for s in &p.segments {
                want = want.and_then(|v| match s {
                    Segment::Key(k) => v.get(k.as_str()),
                    Segment::Index(n) => v.get(*n),
                });
            }
            let got = b.map(|b| to_value(&tape, &starts, text, b));
            assert_eq!(got.as_ref(), want, "{text:?}: {p:?} (serde_json)");
        }
        // The filter's selectors resolve to the same node.
        let steps: Vec<Sel> = p
            .segments
            .iter()
            .map(|s| match s {
                Segment::Key(k) => Sel::Key(k.as_str().into()),
                Segment::Index(n) => Sel::Index(*n),
            })
            .collect();
        let get = |t: &simd_json::Tape<'_>| {
            format!("{:?}", resolve(t.as_value(), &steps))
        };
        assert_eq!(get(&full_tape), get(&pruned_tape), "{text:?}: {p:?}");
        // `tape::Value` is a node slice: its Debug text is the slice's.
        let by_path = b.map(|b| {
            let end = crate::map::path::skip(&tape, b).unwrap_or(b);
            format!("Value({:?})", tape.get(b..end).unwrap_or_default())
        });
        let by_filter =
            resolve(pruned_tape.as_value(), &steps).map(|v| format!("{v:?}"));
        assert_eq!(
            by_path, by_filter,
            "{text:?}: {p:?}: filter and path differ"
        );
    }
    // Number lexemes: the text where each kept number starts is that
    // number.
    for (i, n) in tape.iter().enumerate() {
        let Node::Static(s) = n else { continue };
        let v = match *s {
            simd_json::StaticNode::I64(v) => v as f64,
            simd_json::StaticNode::U64(v) => v as f64,
            simd_json::StaticNode::F64(v) => v,
            _ => continue,
        };
        let lex = Lexemes::new(&starts, text.as_bytes()).number(i);
        assert_eq!(
            lex.and_then(|l| l.parse::<f64>().ok()),
            Some(v),
            "{text:?}: node {i}"
        );
    }
}

/// The value at node `i` of a (pruned) tape as `serde_json` would build
/// it: members inserted in order (so the last of repeated keys stays),
/// numbers parsed from their lexeme in `text` by `serde_json` itself.
fn to_value(
    nodes: &[simd_json::Node<'_>],
    starts: &[u32],
    text: &str,
    i: usize,
) -> serde_json::Value {
    use crate::map::convert::Lexemes;
    use crate::map::path::skip;
    use serde_json::Value as V;
    use simd_json::{Node, StaticNode};

    match nodes.get(i) {
        Some(Node::String(s)) => V::String((*s).to_owned()),
        Some(Node::Static(StaticNode::Null)) | None => V::Null,
        Some(Node::Static(StaticNode::Bool(b))) => V::Bool(*b),
        Some(Node::Static(n)) => {
            let lexeme = Lexemes::new(starts, text.as_bytes()).number(i);
            match lexeme.and_then(|l| serde_json::from_str(l).ok()) {
                Some(v) => v,
                None => match *n {
                    StaticNode::I64(v) => V::from(v),
                    StaticNode::U64(v) => V::from(v),
                    StaticNode::F64(v) => V::from(v),
                    _ => V::Null,
                },
            }
        }
        Some(Node::Array { len, .. }) => {
            let mut j = i + 1;
            let mut items = Vec::with_capacity(*len);
            for _ in 0..*len {
                items.push(to_value(nodes, starts, text, j));
                j = skip(nodes, j).unwrap_or(j);
            }
            V::Array(items)
        }
        Some(Node::Object { len, .. }) => {
            let mut j = i + 1;
            let mut map = serde_json::Map::new();
            for _ in 0..*len {
                let key = match nodes.get(j) {
                    Some(Node::String(k)) => (*k).to_owned(),
                    _ => break,
                };
                map.insert(key, to_value(nodes, starts, text, j + 1));
                j = skip(nodes, j + 1).unwrap_or(j + 1);
            }
            V::Object(map)
        }
    }
}

/// The mapper's message parse alone, for `benches/stages.rs`: scans
/// `message` for what `mapper` reads, as [`crate::Mapper::map`] does;
/// the number of tape nodes, or `None` when it is not JSON.
#[must_use]
pub fn mapper_scan(
    mapper: &crate::Mapper,
    message: &str,
    scratch: &mut crate::MapScratch,
) -> Option<usize> {
    mapper.scan_only(message, scratch)
}

/// [`mapper_scan`] of a message in its escaped form (the one-pass path).
#[must_use]
pub fn mapper_scan_escaped(
    mapper: &crate::Mapper,
    escaped: &str,
    scratch: &mut crate::MapScratch,
) -> Option<usize> {
    mapper.scan_escaped_only(escaped, scratch)
}

/// `RowWriter`'s field written straight from a JSON string body (the
/// one-pass path's `@message`), for `benches/stages.rs`; false when it
/// leaves the field to the plain path.
pub fn write_escaped_field(
    w: &mut crate::RowWriter,
    out: &mut Vec<u8>,
    escaped: &str,
) -> bool {
    w.field_escaped(out, escaped.as_bytes())
}

/// The specs the `fuzz_onepass` invariant maps with, each for both
/// dialects: the seed's table, the mapping fixture's, and one that reads
/// `@message` as `json` and short truncated text, strips NUL and writes
/// NULL for what is not JSON, with a key that needs escapes.
const ONEPASS_SPECS: [&str; 4] = [
    include_str!("../testdata/specs/integrated_user_log.toml"),
    include_str!("../testdata/specs/edge_cases.toml"),
    r#"
table = "t"
nul = "strip"
non_json = "raw"
filter = '{ $.a = "x*" || $.b[0] > 1 || $.c IS NULL }'
[[columns]]
name = "doc"
source = "@message"
type = "json"
[[columns]]
name = "m"
source = "@message"
type = "text"
max_bytes = 40
overflow = "truncate"
[[columns]]
name = "q"
source = '"k\"y".z'
type = "text"
[[columns]]
name = "a"
source = "a"
type = "text"
max_bytes = 5
overflow = "truncate"
[[columns]]
name = "b"
source = "b"
type = "json"
"#,
    r#"
table = "u"
[[columns]]
name = "m"
source = "@message"
type = "text"
[[columns]]
name = "ts"
source = "@timestamp"
type = "timestamp"
"#,
];

fn onepass_mappers() -> &'static [crate::Mapper] {
    use std::sync::OnceLock;
    static MAPPERS: OnceLock<Vec<crate::Mapper>> = OnceLock::new();
    MAPPERS.get_or_init(|| {
        let mut v = Vec::new();
        for text in ONEPASS_SPECS {
            let spec = crate::ColumnSpec::from_toml(text);
            assert!(spec.is_ok(), "a fuzz spec: {spec:?}");
            let Ok(spec) = spec else { continue };
            for d in [crate::Dialect::Postgres, crate::Dialect::Redshift] {
                let m = crate::Mapper::new(&spec, d);
                assert!(m.is_ok(), "a fuzz spec: {m:?}");
                v.extend(m);
            }
        }
        v
    })
}

/// How [`escape`] writes a message into its JSON string.
pub const ESCAPE_STYLES: usize = 4;

/// The body of the JSON string holding `text`: style 0 as `serde_json`
/// writes it (what CloudWatch Logs does), 1 also `\/`, 2 also non-ASCII
/// as `\u` escapes (surrogate pairs beyond the BMP), 3 `"` as `\u0022`
/// and `\\` as `\u005C`. Styles 1 to 3 send messages to the fallback.
#[must_use]
pub fn escape(text: &str, style: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' if style == 3 => out.push_str("\\u0022"),
            '\\' if style == 3 => out.push_str("\\u005C"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if style == 1 => out.push_str("\\/"),
            c if (c as u32) < 0x20 || (style == 2 && !c.is_ascii()) => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// One message through [`Mapper::map_escaped`](crate::Mapper) (the
/// one-pass path) and [`Mapper::map`](crate::Mapper) (the oracle): the
/// same outcome, the same bytes appended to a buffer that already holds
/// a row, the same truncation counts, and — for `serde_json`'s escaping
/// of a message the spec can read in escaped form — no fallback.
pub fn onepass_message(mapper: &crate::Mapper, text: &str, style: usize) {
    use crate::{Envelope, LogEvent, MapScratch};
    let escaped = escape(text, style);
    let env = Envelope { log_stream: "s", ..Envelope::default() };
    let ev = LogEvent {
        object: "fuzz",
        member: Some(0),
        envelope: Some(&env),
        id: Some("7"),
        timestamp: Some(1_700_000_000_123),
        message: text,
    };
    let (mut s1, mut s2) = (MapScratch::new(), MapScratch::new());
    let (mut o1, mut o2) = (b"x,y\n".to_vec(), b"x,y\n".to_vec());
    // Twice, so warm scratch is covered too.
    for _ in 0..2 {
        let fast = mapper.map_escaped(
            &LogEvent { message: "", ..ev },
            &escaped,
            &mut s1,
            &mut o1,
        );
        let oracle = mapper.map(&ev, &mut s2, &mut o2);
        assert_eq!(fast, oracle, "{text:?} as {escaped:?}");
        assert_eq!(o1, o2, "{text:?} as {escaped:?}");
        assert_eq!(s1.truncated(), s2.truncated(), "{text:?}");
    }
    let json = mapper.scan_only(text, &mut s2).is_some();
    if style == 0 && mapper.onepass() && (json || !mapper.parses()) {
        assert_eq!(s1.onepass_fallbacks, 0, "{text:?} as {escaped:?}");
    }
}

/// One object through a [`Converter`](crate::Converter) on the one-pass
/// path and on the oracle path: the same CSV, counts, rejects,
/// truncations, decode counts and errors.
pub fn onepass_object(mapper: &crate::Mapper, data: &[u8]) {
    use crate::{ConvertScratch, Converter, ObjectOutput};
    let dec = DecoderBuilder::new()
        .max_member_bytes(1 << 20)
        .max_object_bytes(4 << 20)
        .build();
    let fast = Converter::new(dec.clone(), mapper.clone());
    let mut oracle = Converter::new(dec, mapper.clone());
    oracle.set_onepass(false);
    let (mut o1, mut o2) = (ObjectOutput::default(), ObjectOutput::default());
    fast.convert("fuzz", data, &mut ConvertScratch::new(), &mut o1);
    oracle.convert("fuzz", data, &mut ConvertScratch::new(), &mut o2);
    assert!(o1.csv == o2.csv, "CSV differs");
    assert_eq!(o1.counts, o2.counts);
    assert!(o1.counts.reconcile());
    assert_eq!(o1.rejects, o2.rejects);
    assert_eq!(o1.truncated, o2.truncated);
    assert_eq!(o1.decode, o2.decode);
    let errs = |o: &ObjectOutput| {
        o.errors.iter().map(|e| format!("{e}")).collect::<Vec<_>>()
    };
    assert_eq!(errs(&o1), errs(&o2));
    assert_eq!(o2.onepass.envelopes + o2.onepass.messages, 0);
}

/// The `fuzz_onepass` invariant: the first byte picks a spec and dialect
/// and how the message is escaped; the rest is tried as an object (the
/// one-pass envelope reader against simd-json's) and, when UTF-8, as a
/// message, alone ([`onepass_message`]) and inside an envelope
/// ([`onepass_object`]).
pub fn onepass(input: &[u8]) {
    let Some((&pick, data)) = input.split_first() else { return };
    let mappers = onepass_mappers();
    let pick = usize::from(pick);
    let Some(mapper) = mappers.get(pick % mappers.len()) else { return };
    let style = (pick / mappers.len()) % ESCAPE_STYLES;
    onepass_object(mapper, data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    onepass_message(mapper, text, style);
    let env = format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{{"id":"1","timestamp":5,"message":"{}"}},{{"id":"2","timestamp":6,"message":"{}"}}]}}"#,
        escape(text, style),
        escape(text, 0),
    );
    onepass_object(mapper, env.as_bytes());
}

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
        let lex = Lexemes::new(starts, text);
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
        let lex = Lexemes::new(&starts, text).number(i);
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
            let lexeme = Lexemes::new(starts, text).number(i);
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

// ---------------------------------------------------------------------------
// fuzz_members: gzip framing, member by member
// ---------------------------------------------------------------------------

/// What a decode reported: events as `(member, id, timestamp, message)`
/// text, errors as `(code, member, member offset)`.
type Report = (Vec<String>, Vec<(&'static str, Option<u64>, u64)>);

fn report(dec: &crate::Decoder, name: &str, data: &[u8]) -> Report {
    let mut scratch = Scratch::new();
    let (mut events, mut errors) = (vec![], vec![]);
    let sink = FnSink::new(
        |e: &LogEvent<'_>| -> Result<(), ()> {
            events.push(format!(
                "{:?}",
                (e.member, e.id, e.timestamp, e.message, e.envelope)
            ));
            Ok(())
        },
        |e| {
            let l = e.location();
            errors.push((e.code(), l.member, l.member_offset));
            Ok(())
        },
    );
    let stats = dec.decode(name, data, &mut scratch, sink);
    assert!(stats.is_ok(), "the sink never fails");
    (events, errors)
}

/// One gzip member of `data` (flate2, the independent encoder).
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let ok = e.write_all(data).is_ok();
    assert!(ok, "gzip into memory");
    e.finish().unwrap_or_default()
}

/// The `fuzz_members` invariant. The input, cut at `0xff` bytes, is the
/// inflated content of each member of an object that flate2 writes.
/// flate2's `MultiGzDecoder` must inflate the object to the pieces;
/// decoding it must count every member and inflated byte, report no gzip
/// error, and give for member `i` exactly the events and error codes of
/// piece `i` decoded alone (renumbered, at member `i`'s offset): no member
/// is skipped, merged with its neighbour or affected by it.
pub fn members(data: &[u8]) {
    use std::io::Read as _;

    let pieces: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    let gz: Vec<Vec<u8>> = pieces.iter().map(|p| gzip(p)).collect();
    let offsets: Vec<u64> = gz
        .iter()
        .scan(0u64, |at, m| {
            let here = *at;
            *at += m.len() as u64;
            Some(here)
        })
        .collect();
    let object = gz.concat();
    let mut inflated = Vec::new();
    let read = flate2::read::MultiGzDecoder::new(&object[..])
        .read_to_end(&mut inflated);
    assert!(read.is_ok(), "flate2 reads its own members: {read:?}");
    assert_eq!(inflated, pieces.concat(), "flate2 round trip");

    let dec = DecoderBuilder::new().variant(Variant::Gzip).build();
    let mut scratch = Scratch::new();
    let stats = dec.decode(
        "m",
        &object,
        &mut scratch,
        FnSink::new(
            |_: &LogEvent<'_>| -> Result<(), ()> { Ok(()) },
            |_| Ok(()),
        ),
    );
    let Ok(stats) = stats else { return };
    assert_eq!(stats.members, pieces.len() as u64, "members counted");
    assert_eq!(stats.inflated_bytes, inflated.len() as u64, "bytes counted");

    let (events, errors) = report(&dec, "m", &object);
    for (code, member, _) in &errors {
        assert!(
            !code.starts_with("gzip")
                && *code != "unreadable"
                && *code != "trailing_garbage",
            "intact framing reported as {code} (member {member:?})"
        );
    }
    // Member by member: the same as the piece alone.
    let mut want_events = Vec::new();
    let mut want_errors = Vec::new();
    for (i, (m, at)) in gz.iter().zip(&offsets).enumerate() {
        let (ev, er) = report(&dec, "m", m);
        let i = i as u64;
        want_events.extend(ev.into_iter().map(|e| {
            // `(Some(0), …` → `(Some(i), …`: the member index leads.
            e.replacen("(Some(0),", &format!("(Some({i}),"), 1)
        }));
        want_errors.extend(er.into_iter().map(|(c, mm, off)| {
            assert_eq!(mm, Some(0), "one member alone");
            assert_eq!(off, 0, "one member alone");
            (c, Some(i), *at)
        }));
    }
    assert_eq!(events, want_events, "events member by member");
    assert_eq!(errors, want_errors, "errors member by member");
}

// ---------------------------------------------------------------------------
// fuzz_envelope: the envelope parser against serde_json
// ---------------------------------------------------------------------------

/// A JSON value with every object's keys unique, at every depth; a
/// repeated key is a parse error (the envelope oracle does not model
/// which of two repeated keys wins a type check).
struct Unique(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Unique;
            fn expecting(
                &self,
                f: &mut std::fmt::Formatter<'_>,
            ) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Unique, E> {
                Ok(Unique(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Unique, E> {
                Ok(Unique(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Unique, E> {
                Ok(Unique(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Unique, E> {
                Ok(Unique(serde_json::Number::from_f64(v).map_or(
                    serde_json::Value::Null,
                    serde_json::Value::Number,
                )))
            }
            fn visit_str<E>(self, v: &str) -> Result<Unique, E> {
                Ok(Unique(v.into()))
            }
            fn visit_string<E>(self, v: String) -> Result<Unique, E> {
                Ok(Unique(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Unique, E> {
                Ok(Unique(serde_json::Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Unique, A::Error> {
                let mut out = Vec::new();
                while let Some(Unique(v)) = a.next_element()? {
                    out.push(v);
                }
                Ok(Unique(out.into()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Unique, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some(k) = a.next_key::<String>()? {
                    let Unique(v) = a.next_value()?;
                    if out.insert(k, v).is_some() {
                        return Err(serde::de::Error::custom("repeated key"));
                    }
                }
                Ok(Unique(out.into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// What the envelope rules (`src/decode/envelope.rs`, FORMAT.md a.) make
/// of one JSON document, computed from `serde_json`'s value: the events
/// as `(id, timestamp, message)` and the number of rejected pieces (the
/// document, or each bad event). `None` where `serde_json`'s value
/// cannot tell: it reads the integer `-0` as the float `-0.0`, so a
/// timestamp of negative zero is `-0` (an integer, the event's 0) or
/// `-0.0` (a float, a reject) and the value does not say which.
fn envelope_oracle(v: &serde_json::Value) -> Option<(Vec<String>, usize)> {
    use serde_json::Value as V;
    let Some(o) = v.as_object() else { return Some((vec![], 1)) };
    let string = |k: &str| match o.get(k) {
        None | Some(V::String(_)) => true,
        Some(_) => false,
    };
    let kind = match o.get("messageType") {
        None => Some(false),
        Some(V::String(s)) if s == "DATA_MESSAGE" => Some(false),
        Some(V::String(s)) if s == "CONTROL_MESSAGE" => Some(true),
        Some(_) => None,
    };
    let policy_ok = matches!(o.get("policyLevel"), None | Some(V::Null))
        || string("policyLevel");
    let Some(control) = kind else { return Some((vec![], 1)) };
    if !(string("owner")
        && string("logGroup")
        && string("logStream")
        && policy_ok)
    {
        return Some((vec![], 1));
    }
    let Some(V::Array(events)) = o.get("logEvents") else {
        return Some((vec![], 1));
    };
    if control {
        return Some((vec![], 0));
    }
    let (mut out, mut bad) = (vec![], 0);
    for e in events {
        let Some(e) = e.as_object() else {
            bad += 1;
            continue;
        };
        let id = match e.get("id") {
            Some(V::String(s)) => Some(s.clone()),
            Some(V::Number(n)) => n.as_u64().map(|n| n.to_string()),
            _ => None,
        };
        let ts = e.get("timestamp");
        if ts
            .and_then(V::as_f64)
            .is_some_and(|t| t == 0.0 && t.is_sign_negative())
        {
            return None;
        }
        let ts = ts.and_then(V::as_i64);
        let msg = e.get("message").and_then(V::as_str);
        match (id, ts, msg) {
            (Some(id), Some(ts), Some(msg)) => {
                out.push(format!("{:?}", (id.as_str(), ts, msg)));
            }
            _ => bad += 1,
        }
    }
    Some((out, bad))
}

/// The envelope decode of `data` framed as `variant`: events as `(id,
/// timestamp, message)` and envelope fields, and the error codes.
fn envelope_run(
    data: &[u8],
    variant: Variant,
) -> (Vec<String>, Vec<String>, Vec<&'static str>) {
    let dec = DecoderBuilder::new().variant(variant).build();
    let mut scratch = Scratch::new();
    let (mut events, mut envs, mut errors) = (vec![], vec![], vec![]);
    let sink = FnSink::new(
        |e: &LogEvent<'_>| -> Result<(), ()> {
            let (id, ts) = (e.id.unwrap_or("?"), e.timestamp.unwrap_or(-1));
            events.push(format!("{:?}", (id, ts, e.message)));
            envs.push(format!("{:?}", e.envelope));
            Ok(())
        },
        |e| {
            errors.push(e.code());
            Ok(())
        },
    );
    let ok = dec.decode("e", data, &mut scratch, sink).is_ok();
    assert!(ok, "the sink never fails");
    (events, envs, errors)
}

/// The `fuzz_envelope` invariant. The input is one envelope document,
/// decoded as a gzip member and as plain JSON: both framings must give
/// the same events, envelopes and error codes, every time (not only when
/// both succeed). When `serde_json` reads the input as exactly one
/// document with unique keys, the events and the number of rejected
/// pieces must be what the envelope rules give from `serde_json`'s value
/// (an independent parser).
pub fn envelope(data: &[u8]) {
    // One document: the plain-JSON framer splits several, a member does
    // not; `{` first and a `}` somewhere keeps most inputs one document.
    if data.first() != Some(&b'{') || !data.contains(&b'}') {
        return;
    }
    let member = gzip(data);
    let (events, envs, errors) = envelope_run(&member, Variant::Gzip);
    let oracle = serde_json::from_slice::<Unique>(data);
    if let Ok(Unique(v)) = &oracle {
        let plain = envelope_run(data, Variant::Json);
        assert_eq!(
            (&events, &envs, &errors),
            (&plain.0, &plain.1, &plain.2),
            "gzip member and plain JSON differ"
        );
        if let Some((want, bad)) = envelope_oracle(v) {
            assert_eq!(events, want, "events differ from serde_json's");
            assert_eq!(errors.len(), bad, "rejects differ: {errors:?}");
        }
        assert!(
            errors.iter().all(|c| *c == "not_an_envelope"),
            "valid JSON rejected as {errors:?}"
        );
    } else if oracle.as_ref().is_err_and(|e| {
        // Repeated keys are JSON; the depth limits are equal (128).
        !e.to_string().starts_with("repeated key")
            && !e.to_string().starts_with("recursion limit")
    }) {
        // Not JSON for serde_json: rejected as a whole in the member.
        assert!(events.is_empty(), "events from invalid JSON: {events:?}");
        assert_eq!(errors.len(), 1, "one reject for the document");
    }
}

// ---------------------------------------------------------------------------
// fuzz_csv: the row writer against csv-core's reader
// ---------------------------------------------------------------------------

/// The `fuzz_csv` invariant. The input as text (NULs dropped) and its
/// pieces between U+FFFD (from `0xfe` bytes) are fields; written with
/// [`crate::RowWriter`] in both dialects, each must equal the plain
/// definition of CSV quoting (quoted when it holds `,` `"` CR or LF,
/// starts with U+FEFF, is empty, or is PostgreSQL's end marker `\.`;
/// quotes doubled), and the
/// row must read back with csv-core's reader (an independent state
/// machine) as the same fields. Covers the SSSE3 quoting blocks in
/// `src/write/csv.rs`.
pub fn csv(data: &[u8]) {
    use crate::{Dialect, RowWriter};

    let text = String::from_utf8_lossy(data).replace('\0', "");
    let mut fields: Vec<&str> = text.split('\u{fffd}').collect();
    fields.push(&text);
    for d in [Dialect::Postgres, Dialect::Redshift] {
        let mut w = RowWriter::new(d);
        let mut row = Vec::new();
        let mut kept = Vec::new();
        for f in &fields {
            let before = row.len();
            if w.field(&mut row, f).is_err() {
                // Only the Redshift NULL marker is refused, writing
                // nothing.
                assert!(d == Dialect::Redshift && *f == "\\N", "{f:?}");
                assert_eq!(row.len(), before);
                continue;
            }
            let sep = usize::from(!kept.is_empty());
            let got = row.get(before + sep..).unwrap_or_default();
            let must = f.contains([',', '"', '\r', '\n'])
                || f.starts_with('\u{feff}')
                || f.is_empty()
                || (d == Dialect::Postgres && *f == "\\.");
            let want = if must {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                (*f).to_owned()
            };
            assert_eq!(got, want.as_bytes(), "{d:?} field {f:?}");
            kept.push(*f);
        }
        w.end_row(&mut row);
        if kept.is_empty() {
            continue;
        }
        assert_eq!(read_record(&row), kept, "{d:?}: csv-core reads back");
    }
}

/// The first record of `csv`, read with csv-core.
fn read_record(csv: &[u8]) -> Vec<String> {
    use csv_core::{ReadFieldResult, Reader};
    let mut rdr = Reader::new();
    let mut input = csv;
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let (res, nin, nout) = rdr.read_field(input, &mut buf);
        input = input.get(nin..).unwrap_or_default();
        field.extend_from_slice(buf.get(..nout).unwrap_or_default());
        match res {
            ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull => {
                if input.is_empty() && res == ReadFieldResult::InputEmpty {
                    // End of input: one last call finishes the record.
                    let (r, _, n) = rdr.read_field(&[], &mut buf);
                    field.extend_from_slice(buf.get(..n).unwrap_or_default());
                    if matches!(r, ReadFieldResult::Field { .. }) {
                        fields.push(String::from_utf8_lossy(&field).into());
                    }
                    return fields;
                }
            }
            ReadFieldResult::Field { record_end } => {
                fields.push(String::from_utf8_lossy(&field).into_owned());
                field.clear();
                if record_end {
                    return fields;
                }
            }
            ReadFieldResult::End => return fields,
        }
    }
}

// ---------------------------------------------------------------------------
// fuzz_filter: the filter-pattern parser and evaluator
// ---------------------------------------------------------------------------

/// A column spec reading `@message` whose filter is `pattern`.
fn filter_spec(pattern: &str) -> String {
    let quoted = toml::Value::String(pattern.to_owned()).to_string();
    format!(
        "table = \"t\"\nnon_json = \"raw\"\nnul = \"strip\"\n\
         filter = {quoted}\n\
         [[columns]]\nname = \"m\"\nsource = \"@message\"\ntype = \"text\"\n"
    )
}

/// The `fuzz_filter` invariant. The input is a pattern, a NUL, and a
/// message. Parsing never panics and an error's offset is inside the
/// pattern; a spec with that filter parses exactly when the pattern does.
/// A pattern that parses gives, on the message, the same verdict through
/// the mapper (which parses only the selectors' paths, `src/map/scan.rs`)
/// as [`crate::FilterPattern::matches`] on simd-json's full tape (the
/// oracle); the same pattern between spaces parses alike and gives the
/// same verdict; and a single bare word matches exactly the messages
/// containing it.
pub fn filter(input: &[u8]) {
    use crate::{ColumnSpec, Dialect, FilterPattern, MapOutcome, Mapper};

    let Ok(text) = std::str::from_utf8(input) else { return };
    let (pattern, message) = text.split_once('\0').unwrap_or((text, ""));
    let parsed = FilterPattern::parse(pattern);
    let chars = pattern.chars().count();
    let spaced = FilterPattern::parse(&format!(" {pattern} "));
    if chars + 2 <= 1024 {
        assert_eq!(
            parsed.is_ok(),
            spaced.is_ok(),
            "{pattern:?}: surrounding spaces change the parse"
        );
    }
    let spec = ColumnSpec::from_toml(&filter_spec(pattern));
    assert_eq!(
        parsed.is_ok(),
        spec.is_ok(),
        "{pattern:?}: spec {:?}",
        spec.as_ref().err()
    );
    let f = match parsed {
        Ok(f) => f,
        Err(e) => {
            assert!(e.offset <= chars, "{pattern:?}: offset {}", e.offset);
            return;
        }
    };
    let mut copy = message.as_bytes().to_vec();
    let tape = simd_json::to_tape(&mut copy).ok();
    let json = if f.needs_json() {
        tape.as_ref().map(simd_json::Tape::as_value)
    } else {
        None
    };
    let want = f.matches(message, json);
    if let Ok(s) = &spaced {
        assert_eq!(s.matches(message, json), want, "{pattern:?} spaced");
    }
    if !pattern.is_empty()
        && pattern.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        assert_eq!(want, message.contains(pattern), "bare word {pattern:?}");
    }
    let Ok(spec) = spec else { return };
    let mapper = Mapper::new(&spec, Dialect::Postgres);
    assert!(mapper.is_ok(), "{pattern:?}: a one-column spec builds a mapper");
    let Ok(mapper) = mapper else { return };
    let mut scratch = crate::MapScratch::new();
    let mut out = Vec::new();
    let ev = LogEvent::from_message("f", message);
    let got = mapper.map(&ev, &mut scratch, &mut out) != MapOutcome::Filtered;
    assert_eq!(got, want, "{pattern:?} on {message:?}: mapper vs full tape");
}

// ---------------------------------------------------------------------------
// fuzz_spec: the column-spec parser
// ---------------------------------------------------------------------------

/// The `fuzz_spec` invariant. The input, as text, is a column spec.
/// Parsing never panics; text the `toml` crate rejects (the oracle) is
/// rejected; an error's line and column are inside the text. A spec that
/// parses has the table name and the column names, in order, that the
/// `toml` crate reads; builds a mapper for each dialect or says why; and
/// its `CREATE TABLE` quotes every identifier (no name reaches SQL
/// unquoted).
pub fn spec(data: &[u8]) {
    use crate::{ColumnSpec, Dialect, Mapper};

    let Ok(text) = std::str::from_utf8(data) else { return };
    let oracle = text.parse::<toml::Table>();
    let parsed = ColumnSpec::from_toml(text);
    let spec = match parsed {
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(e.line >= 1 && e.line <= lines, "{e}: line of {lines}");
            assert!(e.column >= 1, "{e}");
            return;
        }
        Ok(s) => s,
    };
    assert!(
        oracle.is_ok(),
        "{text:?}: toml rejects it, the spec parser does not"
    );
    let Ok(table) = oracle else { return };
    assert_eq!(
        table.get("table").and_then(toml::Value::as_str),
        Some(spec.table()),
        "table name"
    );
    let names: Vec<&str> = table
        .get("columns")
        .and_then(toml::Value::as_array)
        .map(|cols| {
            cols.iter()
                .filter_map(|c| c.get("name").and_then(toml::Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(spec.column_names().collect::<Vec<_>>(), names, "columns");
    for d in [Dialect::Postgres, Dialect::Redshift] {
        let Ok(m) = Mapper::new(&spec, d) else { continue };
        let Ok(t) = crate::sql::TableName::new(None, spec.table()) else {
            continue;
        };
        let sql = crate::sql::create_table(&m, &t).join(";\n");
        for name in std::iter::once(spec.table()).chain(m.column_names()) {
            let quoted = crate::sql::quote_ident(name);
            assert!(quoted.is_ok(), "{name:?} passed but cannot be quoted");
            let Ok(quoted) = quoted else { continue };
            assert!(sql.contains(&quoted), "{name:?} unquoted in {sql}");
        }
    }
}

// ---------------------------------------------------------------------------
// fuzz_notification: SQS bodies and S3 event keys
// ---------------------------------------------------------------------------

/// Form-decoding as S3 event notifications encode keys, the obvious
/// way: `+` is a space, `%XX` a byte, anything else itself; `None` for a
/// bad escape or bytes that are not UTF-8.
fn naive_form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b.get(i) {
            Some(b'+') => out.push(b' '),
            Some(b'%') => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            Some(&c) => out.push(c),
            None => return None,
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The `fuzz_notification` invariant. The input, as text, is an SQS
/// message body and an S3 event key. Parsing the body never panics; the
/// objects of a body that announces some survive a round trip through
/// the body `enqueue` sends (bucket, key, version, size, ETag). The key
/// decoder agrees with the obvious form decoder, and inverts the encoder
/// for every string.
pub fn notification(data: &[u8]) {
    use crate::load::source::notification::{parse, s3_event_body, Notice};
    use crate::load::source::prefix::{decode_event_key, encode_event_key};

    let Ok(text) = std::str::from_utf8(data) else { return };
    assert_eq!(
        decode_event_key(text).ok(),
        naive_form_decode(text),
        "{text:?}: key decoding"
    );
    let enc = encode_event_key(text);
    assert_eq!(decode_event_key(&enc).ok().as_deref(), Some(text), "{enc}");
    if let Notice::Objects { objects, .. } = parse(text) {
        assert!(!objects.is_empty());
        let body = s3_event_body("us-east-1", &objects);
        let again = parse(&body);
        assert!(matches!(again, Notice::Objects { .. }), "{body}: {again:?}");
        let Notice::Objects { objects: again, ignored } = again else {
            return;
        };
        assert_eq!(ignored, 0);
        let trimmed: Vec<_> = objects
            .into_iter()
            .map(|mut o| {
                o.etag = o.etag.map(|e| e.trim_matches('"').to_owned());
                o
            })
            .collect();
        assert_eq!(again, trimmed, "round trip through {body}");
    }
}

// ---------------------------------------------------------------------------
// fuzz_conninfo: connection strings (feature `loader`)
// ---------------------------------------------------------------------------

/// `s` percent-encoded except for unreserved characters.
#[cfg(feature = "loader")]
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `s` as a single-quoted libpq keyword value.
#[cfg(feature = "loader")]
fn kw(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The `fuzz_conninfo` invariant. The input, as text, is a connection
/// string (resolved with an empty environment: never a panic), then,
/// split at NULs, a user, a password and a database. The same settings
/// written as a `postgres://` URL (percent-encoded) and as libpq
/// keywords (quoted) must resolve alike: both fail or both give the same
/// user, database, hosts, ports and password source. The password never
/// appears in `Display`, `Debug` or an error message.
#[cfg(feature = "loader")]
pub fn conninfo(data: &[u8]) {
    use crate::load::PgSettings;

    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = |_: &str| None;
    let _ = PgSettings::resolve_with_env(text, &env)
        .map(|s| format!("{s} {s:?}"))
        .map_err(|e| e.to_string());

    let mut parts = text.split('\0');
    let (Some(user), Some(password), Some(db)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let url = |password: &str| {
        format!(
            "postgres://{}:{}@127.0.0.1:5432/{}",
            pct(user),
            pct(password),
            pct(db)
        )
    };
    let keywords = |password: &str| {
        format!(
            "host=127.0.0.1 port=5432 user={} password={} dbname={}",
            kw(user),
            kw(password),
            kw(db)
        )
    };
    let show = |r: &Result<PgSettings, _>| match r {
        Ok(s) => format!("{s} {s:?}"),
        Err(e) => format!("{e} {e:?}"),
    };
    // A password must not be printed, unless it is text that is printed
    // anyway: part of the user, the database or the fixed text (a field
    // name such as `connect_timeout`), as shown for the same settings with
    // a password of one `x`.
    let fixed = [url("x"), keywords("x")]
        .iter()
        .map(|t| show(&PgSettings::resolve_with_env(t, &env)))
        .collect::<String>();
    let (url, keywords) = (url(password), keywords(password));
    let a = PgSettings::resolve_with_env(&url, &env);
    let b = PgSettings::resolve_with_env(&keywords, &env);
    let secret = password.len() >= 6
        && !format!("{user} {db} {fixed}").contains(password);
    for (what, r) in [("url", &a), ("keywords", &b)] {
        let shown = show(r);
        assert!(
            !secret || !shown.contains(password),
            "{what}: the password is printed: {shown}"
        );
    }
    match (&a, &b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.user(), b.user(), "{url} vs {keywords}");
            assert_eq!(a.dbname(), b.dbname(), "{url} vs {keywords}");
            assert_eq!(a.ports(), b.ports());
            assert_eq!(format!("{:?}", a.hosts()), format!("{:?}", b.hosts()));
            assert_eq!(a.password_source(), b.password_source());
        }
        _ => assert_eq!(
            a.is_ok(),
            b.is_ok(),
            "{url:?} and {keywords:?} resolve differently: {:?} / {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
}

/// [`mapper_scan`] of a message in its escaped form (the one-pass path):
/// the scanner's fast path first, or with `fast` false its state machine
/// alone (the stage benches set the two side by side).
#[must_use]
pub fn mapper_scan_escaped(
    mapper: &crate::Mapper,
    escaped: &str,
    fast: bool,
    scratch: &mut crate::MapScratch,
) -> Option<usize> {
    mapper.scan_escaped_only(escaped, fast, scratch)
}

/// `RowWriter`'s field written straight from a JSON string body (the
/// one-pass path's `@message`), for `benches/stages.rs`; false when it
/// leaves the field to the plain path. `quotes_only` as the envelope
/// reader tells it ([`quotes_only`]); given true for another body, the
/// field is wrong (debug builds panic).
pub fn write_escaped_field(
    w: &mut crate::RowWriter,
    out: &mut Vec<u8>,
    escaped: &str,
    quotes_only: bool,
) -> bool {
    w.field_escaped(out, escaped.as_bytes(), quotes_only)
}

/// Whether every escape of the JSON string body `escaped` is `\"` and
/// it has one: what the envelope reader tells
/// [`Mapper::map_escaped`](crate::Mapper) of a message.
pub fn quotes_only(escaped: &str) -> bool {
    crate::decode::onepass::quotes_only(escaped.as_bytes())
}

/// Whether the escaped scan's fast path guesses each member's key from
/// the messages `scratch` scanned before (`true`, the default) or finds
/// every key's end and looks it up: for `benches/stages.rs`, which times
/// both in one process.
pub fn guess_keys(scratch: &mut crate::MapScratch, on: bool) {
    scratch.scan.predict.set_on(on);
}

/// With `true`, the envelope's message end and the `@message` writer take
/// their SSE2 steps from now on even where the CPU has AVX2; `false`
/// goes back to what the CPU has (and `CWL_COPY_NO_AVX2` says). For
/// `benches/stages.rs`, which times both in one process.
pub fn use_sse2(on: bool) {
    crate::decode::onepass::block::force_sse2(on);
}

/// The specs the `fuzz_onepass` invariant maps with, each for both
/// dialects: the seed's table, the mapping fixture's, one that reads
/// `@message` as `json` and short truncated text, strips NUL and writes
/// NULL for what is not JSON, with a key that needs escapes, and one of
/// nested paths whose parents repeat.
const ONEPASS_SPECS: [&str; 5] = [
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
    // Nested paths, an index, and their parents as json: the scanner's
    // slots under repeated and replaced keys.
    r#"table = "t"
[[columns]]
name = "abc"
source = "a.b.c"
type = "text"
on_mismatch = "null"
[[columns]]
name = "ab"
source = "a.b"
type = "json"
on_mismatch = "null"
[[columns]]
name = "cad"
source = "c.a.d"
type = "float"
on_mismatch = "null"
[[columns]]
name = "d1"
source = "d[1].b"
type = "text"
on_mismatch = "null"
[[columns]]
name = "b"
source = "b"
type = "int"
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
/// one-pass path), [`Mapper::map`](crate::Mapper) (the oracle) and the
/// oracle on the keep-all tape (every path looked up from the root, not
/// from the scanner's slots): the same outcome, the same bytes appended
/// to a buffer that already holds a row, the same truncation counts, and
/// — for `serde_json`'s escaping of a message the spec can read in
/// escaped form — no fallback.
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
    let full = mapper.keep_all();
    let (mut s3, mut o3) = (MapScratch::new(), b"x,y\n".to_vec());
    // Twice, so warm scratch is covered too: first with what the
    // envelope reader would tell of the message's escapes, then as if it
    // did not know.
    for quotes in [quotes_only(&escaped), false] {
        let fast = mapper.map_escaped(
            &LogEvent { message: "", ..ev },
            &escaped,
            quotes,
            &mut s1,
            &mut o1,
        );
        let oracle = mapper.map(&ev, &mut s2, &mut o2);
        assert_eq!(fast, oracle, "{text:?} as {escaped:?}");
        assert_eq!(o1, o2, "{text:?} as {escaped:?}");
        assert_eq!(s1.truncated(), s2.truncated(), "{text:?}");
        let whole = full.map(&ev, &mut s3, &mut o3);
        assert_eq!(whole, oracle, "{text:?}: keep-all tape");
        assert_eq!(o3, o2, "{text:?}: keep-all tape");
        assert_eq!(s3.truncated(), s2.truncated(), "{text:?}: keep-all");
    }
    // The scanner's fast path, where it reads the message, gives what
    // its state machine gives; and so it does for each line of the text
    // as a message, one after the other (with the guesses of its keys
    // that each leaves for the next).
    mapper.fast_agrees(&escaped);
    for line in text.split('\n') {
        mapper.fast_agrees(&escape(line, style));
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

/// [`onepass_object`] of `data` under every spec and dialect the
/// `fuzz_onepass` invariant maps with; how many messages its one-pass
/// path scanned as the envelope reader met them (the sum over mappers).
pub fn onepass_object_all(data: &[u8]) -> u64 {
    let mut ahead = 0;
    for mapper in onepass_mappers() {
        onepass_object(mapper, data);
        let fast = crate::Converter::new(
            DecoderBuilder::new().build(),
            mapper.clone(),
        );
        let mut o = crate::ObjectOutput::default();
        fast.convert("fuzz", data, &mut crate::ConvertScratch::new(), &mut o);
        ahead += o.onepass.ahead;
    }
    ahead
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

//! Property tests: random envelopes, encoded as each Firehose variant,
//! decode to exactly the events that went in; flate2's MultiGzDecoder and
//! serde_json are the oracle.

use std::io::Write;

use cwl_copy::{DecoderBuilder, Error, FnSink, LogEvent, Scratch, Variant};
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug, PartialEq)]
struct Ev {
    member: Option<u64>,
    group: String,
    stream: String,
    id: String,
    ts: i64,
    message: String,
}

#[derive(Clone, Debug)]
struct Env {
    group: String,
    stream: String,
    control: bool,
    events: Vec<(String, i64, String)>,
}

fn env_strategy() -> impl Strategy<Value = Env> {
    let event = ("[0-9]{56}", any::<i64>(), any::<String>());
    (
        any::<String>(),
        "[a-z/0-9]{0,20}",
        prop::bool::weighted(0.1),
        prop::collection::vec(event, 0..6),
    )
        .prop_map(|(group, stream, control, events)| Env {
            group,
            stream,
            control,
            events,
        })
}

fn to_json(e: &Env, ascii: bool) -> Vec<u8> {
    let v = json!({
        "messageType": if e.control { "CONTROL_MESSAGE" } else { "DATA_MESSAGE" },
        "owner": "123456789012",
        "logGroup": e.group,
        "logStream": e.stream,
        "subscriptionFilters": ["f"],
        "logEvents": e.events.iter().map(|(id, ts, m)| json!({"id": id, "timestamp": ts, "message": m})).collect::<Vec<_>>(),
    });
    let s = serde_json::to_string(&v).unwrap();
    if !ascii {
        return s.into_bytes();
    }
    // Escape everything outside ASCII as \u, with surrogate pairs.
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out.into_bytes()
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn expected(envs: &[Env], members: bool) -> Vec<Ev> {
    let mut out = vec![];
    for (i, e) in envs.iter().enumerate() {
        if e.control {
            continue;
        }
        for (id, ts, m) in &e.events {
            out.push(Ev {
                member: members.then_some(i as u64),
                group: e.group.clone(),
                stream: e.stream.clone(),
                id: id.clone(),
                ts: *ts,
                message: m.clone(),
            });
        }
    }
    out
}

fn decode(
    variant: Variant,
    libdeflate: bool,
    data: &[u8],
) -> (Vec<Ev>, Vec<Error>) {
    let dec =
        DecoderBuilder::new().variant(variant).libdeflate(libdeflate).build();
    let mut events = vec![];
    let mut errors = vec![];
    let mut scratch = Scratch::new();
    let _ = dec
        .decode(
            "obj",
            data,
            &mut scratch,
            FnSink::new(
                |e: &LogEvent<'_>| -> Result<(), ()> {
                    let env = e.envelope.unwrap();
                    events.push(Ev {
                        member: e.member,
                        group: env.log_group.into(),
                        stream: env.log_stream.into(),
                        id: e.id.unwrap().into(),
                        ts: e.timestamp.unwrap(),
                        message: e.message.into(),
                    });
                    Ok(())
                },
                |e| {
                    errors.push(e);
                    Ok(())
                },
            ),
        )
        .unwrap();
    (events, errors)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_variant_round_trips(envs in prop::collection::vec(env_strategy(), 0..5), ascii: bool, newline: bool) {
        let sep: &[u8] = if newline { b"\n" } else { b"" };
        let want = expected(&envs, true);
        // 1. members, with or without newline delimiters; both inflaters; auto and forced.
        let members: Vec<u8> = envs.iter().map(|e| [gz(&to_json(e, ascii)), sep.to_vec()].concat()).collect::<Vec<_>>().concat();
        for (variant, fast) in [(Variant::Auto, true), (Variant::Gzip, true), (Variant::Gzip, false)] {
            let (got, errors) = decode(variant, fast, &members);
            prop_assert!(errors.is_empty(), "{:?}", errors);
            prop_assert_eq!(&got, &want);
        }
        // The oracle agrees on the inflated bytes.
        if !newline && !envs.is_empty() {
            let mut inflated = vec![];
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&members[..]), &mut inflated).unwrap();
            let joined: Vec<u8> = envs.iter().map(|e| to_json(e, ascii)).collect::<Vec<_>>().concat();
            prop_assert_eq!(&inflated, &joined);
        }
        // 2. gzip over gzip.
        if !envs.is_empty() {
            for variant in [Variant::Auto, Variant::GzipOverGzip] {
                let (got, errors) = decode(variant, true, &gz(&members));
                prop_assert!(errors.is_empty(), "{:?}", errors);
                prop_assert_eq!(&got, &want);
            }
        }
        // 3. plain envelopes, concatenated or newline-delimited.
        let plain: Vec<u8> = envs.iter().map(|e| [to_json(e, ascii), sep.to_vec()].concat()).collect::<Vec<_>>().concat();
        let (got, errors) = decode(Variant::Json, true, &plain);
        prop_assert!(errors.is_empty(), "{:?}", errors);
        prop_assert_eq!(&got, &want);
        if !envs.is_empty() {
            let (got, _) = decode(Variant::Auto, true, &plain);
            prop_assert_eq!(&got, &want);
        }
    }

    /// No input makes the decoder panic, and every error names the object.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048), variant in 0..5usize) {
        let v = [Variant::Auto, Variant::Gzip, Variant::GzipOverGzip, Variant::Json, Variant::Lines][variant];
        let dec = DecoderBuilder::new().variant(v).build();
        let mut scratch = Scratch::new();
        let stats = dec.decode("x", &data, &mut scratch, FnSink::new(|_: &LogEvent<'_>| Ok::<(), ()>(()), |e| {
            assert_eq!(e.location().object, "x");
            Ok(())
        })).unwrap();
        prop_assert_eq!(stats.input_bytes, data.len() as u64);
    }

    /// Flipping a byte of a valid object never panics, and the members
    /// before the damage still decode.
    #[test]
    fn damaged_objects_keep_earlier_members(envs in prop::collection::vec(env_strategy(), 2..4), pos in any::<prop::sample::Index>(), byte: u8) {
        let blobs: Vec<Vec<u8>> = envs.iter().map(|e| gz(&to_json(e, false))).collect();
        let mut data = blobs.concat();
        let first = blobs[0].len();
        let at = first + pos.index(data.len() - first);
        data[at] ^= byte | 1;
        let (got, _) = decode(Variant::Gzip, true, &data);
        let want = expected(&envs[..1], true);
        prop_assert!(got.len() >= want.len());
        prop_assert_eq!(&got[..want.len()], &want[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Extracted messages (one per line, `\n` or `\r\n`), plain or gzipped
    /// by Firehose, come back as the same messages; blank lines are skipped.
    #[test]
    fn extracted_lines_round_trip(
        msgs in prop::collection::vec("[^\r\n]*[^\r\n \t]", 0..20),
        crlf: bool,
        gzipped: bool,
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        for m in &msgs {
            text.push_str(m);
            text.push_str(nl);
            text.push_str(nl); // a blank line between records
        }
        let data = if gzipped { gz(text.as_bytes()) } else { text.into_bytes() };
        let variant = if gzipped { Variant::Auto } else { Variant::Lines };
        let dec = DecoderBuilder::new().variant(variant).build();
        let mut got = vec![];
        let mut scratch = Scratch::new();
        let stats = dec
            .decode("l", &data, &mut scratch, FnSink::new(
                |e: &LogEvent<'_>| -> Result<(), ()> {
                    assert!(e.envelope.is_none() && e.id.is_none() && e.member.is_none());
                    got.push(e.message.to_owned());
                    Ok(())
                },
                |e| panic!("{e}"),
            ))
            .unwrap();
        prop_assert_eq!(&got, &msgs);
        prop_assert_eq!(stats.events, msgs.len() as u64);
    }
}

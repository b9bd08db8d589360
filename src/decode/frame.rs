//! Boundaries in unframed input: the end of a JSON document in
//! concatenated (`{…}{…}`) or newline-delimited JSON, found with memchr.

use memchr::memchr3;

/// Where the JSON object starting at `b[0]` ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DocEnd {
    /// The document is `b[..n]`.
    At(usize),
    /// The document does not end within `b`.
    NeedMore,
    /// `b[0]` does not start an object.
    NotObject,
}

/// Finds the end of the JSON object at the start of `b` by counting
/// braces outside strings. It does not validate: simd-json does that on
/// the bytes it returns.
pub(crate) fn doc_end(b: &[u8]) -> DocEnd {
    if b.first() != Some(&b'{') {
        return DocEnd::NotObject;
    }
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(off) = b.get(i..).and_then(|r| memchr3(b'{', b'}', b'"', r))
    {
        i += off;
        match b.get(i) {
            Some(b'{') => depth += 1,
            Some(b'}') => {
                depth -= 1;
                if depth == 0 {
                    return DocEnd::At(i + 1);
                }
            }
            _ => match string_end(b, i + 1) {
                Some(end) => i = end,
                None => return DocEnd::NeedMore,
            },
        }
        i += 1;
    }
    DocEnd::NeedMore
}

/// Index of the quote closing the string whose content starts at `from`.
///
/// Envelope strings are escaped JSON messages with a `\"` every few
/// bytes, so a `memchr2` call per escape costs more than it saves: eight
/// bytes at a time, the next `"` or `\\` is found from a SWAR mask
/// (`stages/envelope_parse`: BENCHMARKS.md).
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    loop {
        if let Some(w) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
            let w = u64::from_le_bytes(*w);
            let q = w ^ (LO * u64::from(b'"'));
            let e = w ^ (LO * u64::from(b'\\'));
            // The bytes equal to `"` or `\\`: the lowest flag is exact (a
            // borrow can only flag bytes above a true match).
            let hit =
                ((q.wrapping_sub(LO) & !q) | (e.wrapping_sub(LO) & !e)) & HI;
            if hit == 0 {
                i += 8;
                continue;
            }
            i += (hit.trailing_zeros() / 8) as usize;
        }
        match *b.get(i)? {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// Number of leading JSON whitespace bytes.
pub(crate) fn whitespace(b: &[u8]) -> usize {
    b.iter().take_while(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends() {
        assert_eq!(doc_end(b"{}"), DocEnd::At(2));
        assert_eq!(doc_end(b"{}{}"), DocEnd::At(2));
        assert_eq!(doc_end(br#"{"a":"}{\"\\"}x"#), DocEnd::At(14));
        assert_eq!(doc_end(br#"{"a":{"b":[{}]}}{"#), DocEnd::At(16));
        assert_eq!(doc_end(br#"{"a":"\"#), DocEnd::NeedMore);
        assert_eq!(doc_end(br#"{"a":{}"#), DocEnd::NeedMore);
        assert_eq!(doc_end(b"x{}"), DocEnd::NotObject);
        assert_eq!(doc_end(b""), DocEnd::NotObject);
        assert_eq!(whitespace(b" \r\n\tx "), 4);
    }

    #[test]
    fn string_ends_at_every_position_and_escape() {
        // A closing quote after every length of content, with escaped
        // quotes and backslashes at each position of the 8-byte words.
        for len in 0..40 {
            for esc in 0..len {
                for e in [&b"\\\""[..], b"\\\\"] {
                    let mut s = vec![b'a'; len];
                    s.splice(esc..esc, e.iter().copied());
                    let body = s.len();
                    s.extend_from_slice(b"\"x\"");
                    assert_eq!(string_end(&s, 0), Some(body), "{s:?}");
                }
            }
            let open = vec![b'a'; len];
            assert_eq!(string_end(&open, 0), None);
            let mut trailing = open.clone();
            trailing.push(b'\\');
            assert_eq!(string_end(&trailing, 0), None);
        }
    }
}

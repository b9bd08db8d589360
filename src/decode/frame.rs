//! Boundaries in unframed input: the end of a JSON document in
//! concatenated (`{…}{…}`) or newline-delimited JSON, found with memchr.

use memchr::{memchr2, memchr3};

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
fn string_end(b: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let off = memchr2(b'"', b'\\', b.get(from..)?)?;
        let at = from + off;
        if b.get(at) == Some(&b'"') {
            return Some(at);
        }
        from = at + 2;
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
}

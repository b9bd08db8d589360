//! Mapper tests: one column at a time, table-driven, then whole events.

use super::*;
use crate::decode::Envelope;

fn mapper(top: &str, columns: &str, dialect: Dialect) -> Mapper {
    let text = format!("table = \"t\"\n{top}\n{columns}");
    let spec = ColumnSpec::from_toml(&text)
        .unwrap_or_else(|e| panic!("{text}\n=> {e}"));
    Mapper::new(&spec, dialect).unwrap()
}

/// Maps `ev`, checking that `out` is untouched unless a row is written,
/// and renders the outcome as `row:<record without \n>`,
/// `reject:<column>:<code>:<reason>` or `filtered`.
fn render(m: &Mapper, ev: &LogEvent<'_>, scratch: &mut MapScratch) -> String {
    let mut out = b"prev\n".to_vec();
    let outcome = m.map(ev, scratch, &mut out);
    match outcome {
        MapOutcome::Row => {
            assert!(out.starts_with(b"prev\n"));
            assert_eq!(out.last(), Some(&b'\n'));
            let rec = std::str::from_utf8(&out[5..out.len() - 1]).unwrap();
            assert!(!rec.contains('\0'));
            format!("row:{rec}")
        }
        MapOutcome::Filtered => {
            assert_eq!(out, b"prev\n");
            "filtered".to_owned()
        }
        MapOutcome::Rejected(r) => {
            assert_eq!(out, b"prev\n");
            assert!(code::ALL.contains(&r.code), "{r:?}");
            format!(
                "reject:{}:{}:{}",
                r.column.unwrap_or_default(),
                r.code,
                r.reason
            )
        }
    }
}

/// One column `c` with `def` (source, type and options), one message.
fn one(top: &str, def: &str, dialect: Dialect, message: &str) -> String {
    let columns = format!("[[columns]]\nname = \"c\"\n{def}");
    paths(&mapper(top, &columns, dialect), message)
}

/// Maps `message` on every path: a cold and a warm scratch, the tape
/// pruned to what `m` reads and the keep-all tape, which must agree.
fn paths(m: &Mapper, message: &str) -> String {
    let mut scratch = MapScratch::new();
    let ev = LogEvent::from_message("obj", message);
    let first = render(m, &ev, &mut scratch);
    // A warm scratch gives the same answer.
    assert_eq!(render(m, &ev, &mut scratch), first);
    let full = m.keep_all();
    assert_eq!(
        render(&full, &ev, &mut scratch),
        first,
        "{message:?}: keep-all"
    );
    first
}

/// Checks rows of (message, wanted outcome) for one spec (`top` keys and
/// `columns` tables) on every path; a wanted `reject:…` only has to be a
/// prefix.
fn check_spec(
    top: &str,
    columns: &str,
    dialect: Dialect,
    cases: &[(&str, &str)],
) {
    let m = mapper(top, columns, dialect);
    let mut failed = Vec::new();
    for &(message, want) in cases {
        let got = paths(&m, message);
        let ok = if want.starts_with("reject:") {
            got.starts_with(want)
        } else {
            got == want
        };
        if !ok {
            failed
                .push(format!("{message:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{top}\n{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Checks rows of (top-level keys, column definition, message, wanted
/// outcome); a wanted `reject:…` only has to be a prefix.
fn check(dialect: Dialect, cases: &[(&str, &str, &str, &str)]) {
    let mut failed = Vec::new();
    for &(top, def, message, want) in cases {
        let got = one(top, def, dialect, message);
        let ok = if want.starts_with("reject:") {
            got.starts_with(want)
        } else {
            got == want
        };
        if !ok {
            failed.push(format!(
                "{def:?} on {message:?}\n  want {want:?}\n  got  {got:?}"
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

const TEXT: &str = "source = \"v\"\ntype = \"text\"";
const INT: &str = "source = \"v\"\ntype = \"int\"";
const INT_REJECT: &str =
    "source = \"v\"\ntype = \"int\"\non_mismatch = \"reject\"";
const FLOAT: &str = "source = \"v\"\ntype = \"float\"";
const BOOL: &str = "source = \"v\"\ntype = \"bool\"";
const TS: &str = "source = \"v\"\ntype = \"timestamp\"";
const TS_S: &str = "source = \"v\"\ntype = \"timestamp\"\nunit = \"s\"";
const TS_NS: &str = "source = \"v\"\ntype = \"timestamp\"\nunit = \"ns\"";
const JSON: &str = "source = \"v\"\ntype = \"json\"";

#[test]
fn text() {
    let t5 = "source = \"v\"\ntype = \"text\"\nmax_bytes = 5\n\
              overflow = \"truncate\"";
    let t6 = "source = \"v\"\ntype = \"text\"\nmax_bytes = 6\n\
              overflow = \"truncate\"";
    // The default overflow rejects.
    let t5d = "source = \"v\"\ntype = \"text\"\nmax_bytes = 5";
    let t5r = "source = \"v\"\ntype = \"text\"\nmax_bytes = 5\n\
               overflow = \"reject\"";
    check(
        Dialect::Postgres,
        &[
            ("", TEXT, r#"{"v":"hello"}"#, "row:hello"),
            ("", TEXT, r#"{"v":""}"#, "row:\"\""),
            ("", TEXT, r#"{"v":null}"#, "row:"),
            ("", TEXT, r#"{"w":"x"}"#, "row:"),
            ("", TEXT, r#"{"v":1.50}"#, "row:1.50"),
            ("", TEXT, r#"{"v":-0}"#, "row:-0"),
            ("", TEXT, r#"{"v":1E+2}"#, "row:1E+2"),
            (
                "",
                TEXT,
                r#"{"s":"\"1,\\","v":123456789012345678901234567890}"#,
                "row:123456789012345678901234567890",
            ),
            ("", TEXT, r#"{"v":true}"#, "row:true"),
            (
                "",
                TEXT,
                r#"{"v": {"a": [1, "x\"y"], "b" : {}}}"#,
                r#"row:"{""a"":[1,""x\""y""],""b"":{}}""#,
            ),
            ("", TEXT, r#"{"v":"\u65e5\ud83c\udf89"}"#, "row:日🎉"),
            ("", TEXT, r#"{"v":"a,b"}"#, "row:\"a,b\""),
            ("", TEXT, r#"{"v":"l1\nl2\r\n"}"#, "row:\"l1\nl2\r\n\""),
            ("", TEXT, r#"{"v":"\\."}"#, "row:\"\\.\""),
            ("", TEXT, r#"{"v":"\\N"}"#, "row:\\N"),
            ("", TEXT, r#"[1]"#, "reject::not_object:message is JSON but not"),
            ("", TEXT, r#""v""#, "reject::not_object:message is JSON but not"),
            // Truncation at a UTF-8 boundary: "ab🎉cd" is 8 bytes.
            ("", t5, r#"{"v":"ab🎉cd"}"#, "row:ab"),
            ("", t6, r#"{"v":"ab🎉cd"}"#, "row:ab🎉"),
            ("", t5, r#"{"v":"abcde"}"#, "row:abcde"),
            ("", t5, r#"{"v":"abcdef"}"#, "row:abcde"),
            ("", t5, r#"{"v":"ab\"\"\"\""}"#, r#"row:"ab""""""""#),
            (
                "",
                t5r,
                r#"{"v":"abcdef"}"#,
                "reject:c:too_long:value is 6 bytes",
            ),
            (
                "",
                t5d,
                r#"{"v":"abcdef"}"#,
                "reject:c:too_long:value is 6 bytes",
            ),
            ("", t5d, r#"{"v":"abcde"}"#, "row:abcde"),
            ("", t5r, r#"{"v":"abcde"}"#, "row:abcde"),
            // NUL.
            (
                "",
                TEXT,
                r#"{"v":"a\u0000b"}"#,
                "reject:c:nul_char:value contains a NUL",
            ),
            ("nul = \"strip\"", TEXT, r#"{"v":"a\u0000b\u0000"}"#, "row:ab"),
            ("nul = \"strip\"", TEXT, r#"{"v":"\u0000"}"#, "row:\"\""),
            (
                "nul = \"strip\"",
                TEXT,
                r#"{"v":{"k\u0000":"\u0000x"}}"#,
                r#"row:"{""k"":""x""}""#,
            ),
            (
                "",
                TEXT,
                r#"{"v":{"k":"\u0000"}}"#,
                "reject:c:nul_char:value contains a NUL",
            ),
            // The NUL is stripped before measuring.
            (
                "nul = \"strip\"",
                t5,
                r#"{"v":"\u0000\u0000abcde"}"#,
                "row:abcde",
            ),
        ],
    );
}

#[test]
fn numbers() {
    check(
        Dialect::Postgres,
        &[
            ("", INT, r#"{"v":42}"#, "row:42"),
            (
                "",
                INT,
                r#"{"v":-9223372036854775808}"#,
                "row:-9223372036854775808",
            ),
            (
                "",
                INT,
                r#"{"v":9223372036854775807}"#,
                "row:9223372036854775807",
            ),
            ("", INT, r#"{"v":9223372036854775808}"#, "row:"),
            ("", INT, r#"{"v":-9223372036854775809}"#, "row:"),
            ("", INT, r#"{"v":1e3}"#, "row:1000"),
            ("", INT, r#"{"v":1.5}"#, "row:"),
            ("", INT, r#"{"v":"42"}"#, "row:42"),
            ("", INT, r#"{"v":"-7"}"#, "row:-7"),
            ("", INT, r#"{"v":"4 2"}"#, "row:"),
            ("", INT, r#"{"v":true}"#, "row:"),
            ("", INT, r#"{"v":[1]}"#, "row:"),
            (
                "",
                INT_REJECT,
                r#"{"v":9223372036854775808}"#,
                "reject:c:type_mismatch:not an integer",
            ),
            (
                "",
                INT_REJECT,
                r#"{"v":"x"}"#,
                "reject:c:type_mismatch:not an integer",
            ),
            ("", INT_REJECT, r#"{"v":null}"#, "row:"),
            ("", FLOAT, r#"{"v":1.5}"#, "row:1.5"),
            ("", FLOAT, r#"{"v":1e300}"#, "row:1e300"),
            ("", FLOAT, r#"{"v":-1.5e-300}"#, "row:-1.5e-300"),
            ("", FLOAT, r#"{"v":-0.0}"#, "row:-0.0"),
            ("", FLOAT, r#"{"v":42}"#, "row:42.0"),
            ("", FLOAT, r#"{"v":0.1}"#, "row:0.1"),
            ("", FLOAT, r#"{"v":1e-7}"#, "row:1e-7"),
            (
                "",
                FLOAT,
                r#"{"v":9223372036854775807}"#,
                "row:9.223372036854776e18",
            ),
            ("", FLOAT, r#"{"v":"2.5"}"#, "row:2.5"),
            ("", FLOAT, r#"{"v":"NaN"}"#, "row:"),
            ("", FLOAT, r#"{"v":"inf"}"#, "row:"),
            ("", FLOAT, r#"{"v":"x"}"#, "row:"),
            ("", BOOL, r#"{"v":true}"#, "row:true"),
            ("", BOOL, r#"{"v":false}"#, "row:false"),
            ("", BOOL, r#"{"v":"false"}"#, "row:false"),
            ("", BOOL, r#"{"v":"TRUE"}"#, "row:"),
            ("", BOOL, r#"{"v":1}"#, "row:"),
        ],
    );
}

#[test]
fn timestamps() {
    check(
        Dialect::Postgres,
        &[
            ("", TS, r#"{"v":1714568707123}"#, "row:2024-05-01T13:05:07.123Z"),
            ("", TS, r#"{"v":0}"#, "row:1970-01-01T00:00:00.000Z"),
            ("", TS, r#"{"v":-1}"#, "row:1969-12-31T23:59:59.999Z"),
            ("", TS, r#"{"v":-2208988800000}"#, "row:1900-01-01T00:00:00.000Z"),
            ("", TS, r#"{"v":253402300799999}"#, "row:9999-12-31T23:59:59.999Z"),
            ("", TS, r#"{"v":253402300800000}"#, "row:"),
            ("", TS, r#"{"v":-62135596800001}"#, "row:"),
            ("", TS, r#"{"v":9223372036854775807}"#, "row:"),
            ("", TS, r#"{"v":18446744073709551615}"#, "row:"),
            ("", TS, r#"{"v":1e30}"#, "row:"),
            ("", TS_S, r#"{"v":1714568707}"#, "row:2024-05-01T13:05:07.000Z"),
            ("", TS_S, r#"{"v":1714568707.123}"#, "row:2024-05-01T13:05:07.123Z"),
            ("", TS_S, r#"{"v":-0.001}"#, "row:1969-12-31T23:59:59.999Z"),
            ("", TS_S, r#"{"v":9223372036854775807}"#, "row:"),
            ("", TS_NS, r#"{"v":1714568707123999999}"#, "row:2024-05-01T13:05:07.123Z"),
            (
                "",
                TS,
                r#"{"v":"2024-05-01T22:05:07.123+09:00"}"#,
                "row:2024-05-01T13:05:07.123Z",
            ),
            (
                "",
                TS,
                r#"{"v":"2024-05-01T13:05:07.123456Z"}"#,
                "row:2024-05-01T13:05:07.123Z",
            ),
            (
                "",
                TS,
                r#"{"v":"1969-12-31T19:00:00-05:00"}"#,
                "row:1970-01-01T00:00:00.000Z",
            ),
            ("", TS, r#"{"v":"2024-05-01"}"#, "row:"),
            ("", TS, r#"{"v":"1714568707123"}"#, "row:"),
            ("", TS, r#"{"v":true}"#, "row:"),
            (
                "",
                "source = \"v\"\ntype = \"timestamp\"\non_mismatch = \"reject\"",
                r#"{"v":"soon"}"#,
                "reject:c:type_mismatch:not a timestamp",
            ),
        ],
    );
}

#[test]
fn json() {
    let jr = "source = \"v\"\ntype = \"json\"\nmax_bytes = 8";
    check(
        Dialect::Postgres,
        &[
            (
                "",
                JSON,
                r#"{"v": { "b" : 1.0 , "s" : "é\n\"\\\u0001\u00e9" , "n" : null, "a":[ ]}}"#,
                r#"row:"{""b"":1.0,""s"":""é\n\""\\\u0001é"",""n"":null,""a"":[]}""#,
            ),
            ("", JSON, r#"{"v":"x"}"#, r#"row:"""x""""#),
            ("", JSON, r#"{"v":""}"#, r#"row:"""""""#),
            ("", JSON, r#"{"v":1.50}"#, "row:1.50"),
            ("", JSON, r#"{"v":false}"#, "row:false"),
            ("", JSON, r#"{"v":null}"#, "row:"),
            ("", JSON, r#"{"v":["日本","🎉"]}"#, r#"row:"[""日本"",""🎉""]""#),
            ("", jr, r#"{"v":[1,2,3]}"#, "row:\"[1,2,3]\""),
            (
                "",
                jr,
                r#"{"v":[1,2,3,4]}"#,
                "reject:c:too_long:value is 9 bytes",
            ),
            (
                "",
                "source = \"@message\"\ntype = \"json\"",
                r#" {"a" : 1e3} "#,
                r#"row:"{""a"":1e3}""#,
            ),
            (
                "non_json = \"raw\"",
                "source = \"@message\"\ntype = \"json\"",
                "plain text",
                "row:",
            ),
        ],
    );
}

#[test]
fn missing_required_default() {
    let req = "source = \"v\"\ntype = \"text\"\nrequired = true";
    let def = "source = \"v\"\ntype = \"int\"\ndefault = 7";
    let def_ts = "source = \"v\"\ntype = \"timestamp\"\ndefault = 0";
    check(
        Dialect::Postgres,
        &[
            ("", req, r#"{"v":"x"}"#, "row:x"),
            ("", req, r#"{"v":""}"#, "row:\"\""),
            (
                "",
                req,
                r#"{"w":"x"}"#,
                "reject:c:missing_required:required value is missing",
            ),
            (
                "",
                req,
                r#"{"v":null}"#,
                "reject:c:missing_required:required value is missing",
            ),
            ("", def, r#"{"v":3}"#, "row:3"),
            ("", def, r#"{}"#, "row:7"),
            ("", def, r#"{"v":null}"#, "row:7"),
            // A mismatch is not missing: NULL, not the default.
            ("", def, r#"{"v":"x"}"#, "row:"),
            ("", def_ts, r#"{}"#, "row:1970-01-01T00:00:00.000Z"),
            ("non_json = \"raw\"", def, "not json", "row:7"),
            (
                "non_json = \"raw\"",
                req,
                "not json",
                "reject:c:missing_required:required",
            ),
        ],
    );
}

#[test]
fn non_json() {
    check(
        Dialect::Postgres,
        &[
            ("", TEXT, "plain text", "reject::not_json:message is not JSON"),
            ("", TEXT, "", "reject::not_json:message is not JSON"),
            ("", TEXT, "{\"v\":", "reject::not_json:message is not JSON"),
            ("non_json = \"raw\"", TEXT, "plain text", "row:"),
            // A metadata-only spec never parses the message.
            (
                "",
                "source = \"@message\"\ntype = \"text\"",
                "plain, text",
                "row:\"plain, text\"",
            ),
            ("", "source = \"@message\"\ntype = \"text\"", "", "row:\"\""),
        ],
    );
}

#[test]
fn redshift() {
    let t3 = "source = \"v\"\ntype = \"text\"\nmax_bytes = 3\n\
              overflow = \"truncate\"";
    let t2 = "source = \"v\"\ntype = \"text\"\nmax_bytes = 2\n\
              overflow = \"truncate\"";
    check(
        Dialect::Redshift,
        &[
            ("", TEXT, r#"{"v":null}"#, "row:\\N"),
            ("", TEXT, r#"{"v":""}"#, "row:\"\""),
            (
                "",
                TEXT,
                r#"{"v":"\\N"}"#,
                "reject:c:null_marker:value is exactly the Redshift NULL marker",
            ),
            ("", TEXT, r#"{"v":"\\."}"#, "row:\\."),
            ("", INT, r#"{"v":"x"}"#, "row:\\N"),
            ("", t3, r#"{"v":"日本"}"#, "row:日"),
            ("", t3, r#"{"v":"\\N\\N"}"#, "row:\\N\\"),
            ("", t2, r#"{"v":"\\N\\N"}"#, "reject:c:null_marker:value is exactly"),
        ],
    );
}

#[test]
fn metadata() {
    let m = mapper(
        "",
        r#"
[[columns]]
name = "ts"
source = "@timestamp"
type = "timestamp"
[[columns]]
name = "ts_int"
source = "@timestamp"
type = "int"
[[columns]]
name = "id"
source = "@id"
type = "text"
[[columns]]
name = "id_int"
source = "@id"
type = "int"
[[columns]]
name = "group"
source = "@log_group"
type = "text"
[[columns]]
name = "stream"
source = "@log_stream"
type = "text"
[[columns]]
name = "owner"
source = "@owner"
type = "text"
[[columns]]
name = "policy"
source = "@policy_level"
type = "text"
[[columns]]
name = "msg"
source = "@message"
type = "text"
[[columns]]
name = "object"
source = "@object"
type = "text"
[[columns]]
name = "member"
source = "@member"
type = "int"
[[columns]]
name = "member_text"
source = "@member"
type = "text"
[[columns]]
name = "ts_json"
source = "@timestamp"
type = "json"
[[columns]]
name = "group_json"
source = "@log_group"
type = "json"
"#,
        Dialect::Postgres,
    );
    let env = Envelope {
        owner: "123456789012",
        log_group: "/aws/lambda/f",
        log_stream: "2024/05/01/[$LATEST]abc",
        policy_level: None,
    };
    let ev = LogEvent {
        object: "logs/2024/05/01/x.gz",
        member: Some(3),
        envelope: Some(&env),
        id: Some("37503620389428437418413584186089209633024716428163776512"),
        timestamp: Some(1_714_568_707_123),
        message: "hello, \"world\"",
    };
    let mut scratch = MapScratch::new();
    assert_eq!(
        render(&m, &ev, &mut scratch),
        "row:2024-05-01T13:05:07.123Z,1714568707123,\
         37503620389428437418413584186089209633024716428163776512,,\
         /aws/lambda/f,2024/05/01/[$LATEST]abc,123456789012,,\
         \"hello, \"\"world\"\"\",logs/2024/05/01/x.gz,3,3,1714568707123,\
         \"\"\"/aws/lambda/f\"\"\""
    );
    // Line-framed input: no envelope, id, timestamp or member.
    let ev = LogEvent::from_message("o", "m");
    assert_eq!(render(&m, &ev, &mut scratch), "row:,,,,,,,,m,o,,,,");
}

#[test]
fn reject_mid_row_restores_out() {
    let m = mapper(
        "",
        "[[columns]]\nname = \"a\"\nsource = \"a\"\ntype = \"text\"\n\
         [[columns]]\nname = \"b\"\nsource = \"b\"\ntype = \"int\"\n\
         on_mismatch = \"reject\"\n",
        Dialect::Postgres,
    );
    let mut scratch = MapScratch::new();
    let bad = LogEvent::from_message("o", r#"{"a":"x","b":"y"}"#);
    let good = LogEvent::from_message("o", r#"{"a":"x","b":2}"#);
    assert_eq!(
        render(&m, &bad, &mut scratch),
        "reject:b:type_mismatch:not an integer in i64 range"
    );
    // The writer starts the next row afresh (no stray delimiter).
    assert_eq!(render(&m, &good, &mut scratch), "row:x,2");
    let mut out = Vec::new();
    let r = m.map(&bad, &mut scratch, &mut out);
    assert!(out.is_empty());
    let MapOutcome::Rejected(r) = r else { panic!("{r:?}") };
    assert_eq!(r.to_string(), "column \"b\": not an integer in i64 range");
}

#[test]
fn many_rows_share_buffers() {
    let m = mapper(
        "",
        "[[columns]]\nname = \"a\"\nsource = \"a.b[1]\"\ntype = \"json\"\n\
         [[columns]]\nname = \"m\"\nsource = \"@message\"\ntype = \"text\"\n",
        Dialect::Postgres,
    );
    let mut scratch = MapScratch::new();
    let mut out = Vec::new();
    let long =
        format!(r#"{{"a":{{"b":[0,{{"x":"{}"}}]}}}}"#, "y".repeat(5000));
    let msgs = [
        long.as_str(),
        r#"{"a":{"b":[1,2.50]}}"#,
        "nope",
        "{}",
        r#"{"a":{"b":[1,[]]}}"#,
    ];
    let mut outcomes = Vec::new();
    for msg in msgs {
        outcomes.push(m.map(
            &LogEvent::from_message("o", msg),
            &mut scratch,
            &mut out,
        ));
    }
    assert_eq!(outcomes.iter().filter(|o| **o == MapOutcome::Row).count(), 4);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1], r#"2.50,"{""a"":{""b"":[1,2.50]}}""#);
    assert_eq!(lines[2], ",{}");
    assert_eq!(lines[3], r#"[],"{""a"":{""b"":[1,[]]}}""#);
}

#[test]
fn sql() {
    let m = mapper(
        "",
        r#"
[[columns]]
name = "when"
source = "@timestamp"
type = "timestamp"
[[columns]]
name = 'say "hi"'
source = "a"
type = "text"
max_bytes = 100
[[columns]]
name = "n"
source = "n"
type = "int"
[[columns]]
name = "f"
source = "f"
type = "float"
[[columns]]
name = "b"
source = "b"
type = "bool"
[[columns]]
name = "j"
source = "j"
type = "json"
"#,
        Dialect::Postgres,
    );
    assert_eq!(m.table(), "t");
    assert_eq!(
        m.column_names().collect::<Vec<_>>(),
        ["when", "say \"hi\"", "n", "f", "b", "j"]
    );
    // The COPY and CREATE statements are `crate::sql`'s (tested there).
}

#[test]
fn dialect_spec_errors() {
    let spec = ColumnSpec::from_toml(
        "table = 't'\n[[columns]]\nname = 'a'\nsource = 'a'\ntype = 'text'\n\
         max_bytes = 70000\n",
    )
    .unwrap();
    assert!(Mapper::new(&spec, Dialect::Postgres).is_ok());
    let e = Mapper::new(&spec, Dialect::Redshift).unwrap_err();
    assert_eq!((e.line, e.column), (6, 13));
    assert!(e.message.contains("VARCHAR"), "{e}");

    let spec = ColumnSpec::from_toml(
        "table = 't'\n[[columns]]\nname = 'a'\nsource = 'a'\ntype = 'text'\n\
         default = '\\N'\n",
    )
    .unwrap();
    assert!(Mapper::new(&spec, Dialect::Postgres).is_ok());
    let e = Mapper::new(&spec, Dialect::Redshift).unwrap_err();
    assert_eq!((e.line, e.column), (6, 11));

    let long = "x".repeat(64);
    let spec = ColumnSpec::from_toml(&format!(
        "table = 't'\n[[columns]]\nname = '{long}'\nsource = 'a'\ntype = 'text'\n"
    ))
    .unwrap();
    let e = Mapper::new(&spec, Dialect::Postgres).unwrap_err();
    assert_eq!((e.line, e.column), (3, 8));
    assert!(Mapper::new(&spec, Dialect::Redshift).is_ok());
}

#[test]
fn filter_is_applied_first() {
    let m = mapper(
        "filter = '{ $.a = 1 }'",
        "[[columns]]\nname = \"m\"\nsource = \"@message\"\ntype = \"text\"",
        Dialect::Postgres,
    );
    let mut scratch = MapScratch::new();
    // A JSON filter never matches a message that is not JSON.
    let ev = LogEvent::from_message("o", "x");
    assert_eq!(render(&m, &ev, &mut scratch), "filtered");
    let ev = LogEvent::from_message("o", r#"{"a":2}"#);
    assert_eq!(render(&m, &ev, &mut scratch), "filtered");
    let ev = LogEvent::from_message("o", r#"{"a":1}"#);
    assert_eq!(render(&m, &ev, &mut scratch), r#"row:"{""a"":1}""#);
}

/// A string equality filter is planned (read from its slot); what it
/// decides is what the general filter decides on the keep-all tape
/// (`paths`), for strings equal or not, escaped, other types, a missing,
/// repeated or replaced key, and messages that are not objects; `=` and
/// `!=`, on a nested and a top-level selector.
#[test]
fn planned_string_filters_decide_as_the_general_filter() {
    let columns = "[[columns]]\nname = \"a\"\nsource = \"a\"\ntype = \"json\"";
    // The members of the object the selector's last key is read from,
    // and what `=` and `!=` decide (a number is compared as its text; no
    // null, container or missing value matches either).
    let members: [(&str, [&str; 2]); 13] = [
        (r#""n":"x""#, ["row", "filtered"]),
        (r#""n":"y""#, ["filtered", "row"]),
        (r#""n":"x\u0000""#, ["filtered", "row"]),
        (r#""n":"\u0078""#, ["row", "filtered"]),
        (r#""n":"x\"""#, ["filtered", "row"]),
        (r#""n":"""#, ["filtered", "row"]),
        (r#""n":1"#, ["filtered", "row"]),
        (r#""n":null"#, ["filtered", "filtered"]),
        (r#""n":{"x":1}"#, ["filtered", "filtered"]),
        (r#""n":["x"]"#, ["filtered", "filtered"]),
        ("", ["filtered", "filtered"]),
        (r#""m":"x""#, ["filtered", "filtered"]),
        (r#""n":"y","n":"x""#, ["row", "filtered"]),
    ];
    let whole: [(&str, [&str; 2]); 4] = [
        (r#"{"c":{"n":"x"},"c":{"m":"x"}}"#, ["filtered", "filtered"]),
        (r#"{"c":"x"}"#, ["filtered", "filtered"]),
        (r#"["x"]"#, ["filtered", "filtered"]),
        ("x", ["filtered", "filtered"]),
    ];
    for (k, op) in ["=", "!="].into_iter().enumerate() {
        for (sel, nest) in [("$.c.n", true), ("$.n", false)] {
            let top = format!("filter = '{{ {sel} {op} \"x\" }}'");
            let m = mapper(&top, columns, Dialect::Postgres);
            assert!(m.filter_eq.is_some(), "{top}: planned");
            assert!(m.keep_all().filter_eq.is_none());
            let cases = members
                .iter()
                .map(|(ms, want)| {
                    let msg = if nest {
                        format!(r#"{{"a":0,"c":{{{ms}}}}}"#)
                    } else {
                        format!(r#"{{"a":0,{ms}}}"#).replace(",}", "}")
                    };
                    (msg, *want)
                })
                .chain(whole.iter().map(|(m, w)| ((*m).to_owned(), *w)));
            for (message, want) in cases {
                let got = paths(&m, &message);
                let want = want.get(k).copied().unwrap_or_default();
                assert!(
                    got.starts_with(want),
                    "{top} on {message:?}: {got}, not {want}"
                );
            }
        }
    }
}

/// Issue #12, item 1: JSON that is not an object has no paths. With
/// `non_json = "reject"` it is rejected (`not_object`) when a column
/// reads a path; with `"raw"` it is kept, paths NULL, `@message` intact.
#[test]
fn non_object_messages() {
    let cols = "[[columns]]\nname = \"v\"\nsource = \"v\"\ntype = \"text\"\n\
                [[columns]]\nname = \"m\"\nsource = \"@message\"\ntype = \"text\"\n\
                [[columns]]\nname = \"j\"\nsource = \"@message\"\ntype = \"json\"\n";
    let not_object = "reject::not_object:message is JSON but not an object";
    check_spec(
        "",
        cols,
        Dialect::Postgres,
        &[
            ("42", &format!("{not_object} (a number)")),
            ("-1.5e3", &format!("{not_object} (a number)")),
            (r#""text""#, &format!("{not_object} (a string)")),
            ("[1,2]", &format!("{not_object} (an array)")),
            (" [ ] ", &format!("{not_object} (an array)")),
            (r#"[{"v":"x"}]"#, &format!("{not_object} (an array)")),
            ("null", &format!("{not_object} (null)")),
            ("true", &format!("{not_object} (a boolean)")),
            ("false", &format!("{not_object} (a boolean)")),
            (r#"{"v":"x"}"#, r#"row:x,"{""v"":""x""}","{""v"":""x""}""#),
            ("{}", "row:,{},{}"),
            ("plain", "reject::not_json:message is not JSON"),
        ],
    );
    check_spec(
        "non_json = \"raw\"",
        cols,
        Dialect::Postgres,
        &[
            ("42", "row:,42,42"),
            (r#""text""#, r#"row:,"""text""","""text""""#),
            ("[1,2]", r#"row:,"[1,2]","[1,2]""#),
            (" [ 1 , 2 ] ", r#"row:," [ 1 , 2 ] ","[1,2]""#),
            (r#"[{"v":"x"}]"#, r#"row:,"[{""v"":""x""}]","[{""v"":""x""}]""#),
            ("null", "row:,null,"),
            ("true", "row:,true,true"),
            (r#"{"v":"x"}"#, r#"row:x,"{""v"":""x""}","{""v"":""x""}""#),
            ("plain", "row:,plain,"),
        ],
    );
    // Missing under raw: defaults and `required` apply.
    check(
        Dialect::Postgres,
        &[
            (
                "non_json = \"raw\"",
                "source = \"v\"\ntype = \"int\"\ndefault = 7",
                "[1]",
                "row:7",
            ),
            (
                "non_json = \"raw\"",
                "source = \"v\"\ntype = \"int\"\nrequired = true",
                "[1]",
                "reject:c:missing_required:",
            ),
        ],
    );
    // No column reads a path: nothing to reject, JSON written as it is.
    let msg_json =
        "[[columns]]\nname = \"j\"\nsource = \"@message\"\ntype = \"json\"\n";
    check_spec(
        "",
        msg_json,
        Dialect::Postgres,
        &[
            ("42", "row:42"),
            ("[ 1 ]", "row:[1]"),
            ("null", "row:"),
            ("x", "reject::not_json:"),
        ],
    );
    let meta =
        "[[columns]]\nname = \"i\"\nsource = \"@object\"\ntype = \"text\"\n";
    check_spec(
        "",
        meta,
        Dialect::Postgres,
        &[("42", "row:obj"), ("[", "row:obj")],
    );
    // The filter is unchanged: a JSON filter never matches a message that
    // is not an object; other filters match as before, then the mapping
    // rejects it.
    let v = "[[columns]]\nname = \"v\"\nsource = \"v\"\ntype = \"text\"\n";
    for filter in ["{ $.v = 1 }", "{ $.v NOT EXISTS }", "{ $.v != 2 }"] {
        check_spec(
            &format!("filter = '{filter}'"),
            v,
            Dialect::Postgres,
            &[
                ("42", "filtered"),
                ("[1]", "filtered"),
                ("null", "filtered"),
                ("x", "filtered"),
            ],
        );
    }
    check_spec(
        "filter = '1'",
        v,
        Dialect::Postgres,
        &[
            ("[1]", "reject::not_object:"),
            ("[2]", "filtered"),
            (r#"{"v":1}"#, "row:1"),
        ],
    );
    check_spec(
        "filter = '[a]'",
        v,
        Dialect::Postgres,
        &[
            ("[1, 2]", "reject::not_object:"),
            (r#"{"v":1}"#, "row:1"),
            ("1 2", "filtered"),
        ],
    );
}

/// Issue #12, item 2: of repeated keys the last wins, in columns and in
/// the filter, at every depth and inside arrays of objects.
#[test]
fn repeated_keys_last_wins() {
    let cols = "[[columns]]\nname = \"v\"\nsource = \"v\"\ntype = \"text\"\n\
                [[columns]]\nname = \"ab\"\nsource = \"a.b\"\ntype = \"text\"\n\
                [[columns]]\nname = \"lk\"\nsource = \"l[1].k\"\ntype = \"text\"\n\
                [[columns]]\nname = \"w\"\nsource = \"w\"\ntype = \"json\"\n";
    check_spec(
        "",
        cols,
        Dialect::Postgres,
        &[
            // Twice and three times, adjacent or not.
            (r#"{"v":"1","v":"2"}"#, "row:2,,,"),
            (r#"{"v":"1","v":"2","v":"3"}"#, "row:3,,,"),
            (r#"{"v":"1","x":0,"v":"2","y":[],"v":"3"}"#, "row:3,,,"),
            // The last is null: missing.
            (r#"{"v":"1","v":null}"#, "row:,,,"),
            (r#"{"v":null,"v":"2"}"#, "row:2,,,"),
            // Escaped spellings are the same key.
            (r#"{"v":"1","\u0076":"2"}"#, "row:2,,,"),
            (r#"{"\u0076":"1","v":"2","\u0076":"3"}"#, "row:3,,,"),
            // Nested: in the inner object, in the outer, in both.
            (r#"{"a":{"b":"1","b":"2"}}"#, "row:,2,,"),
            (r#"{"a":{"b":"1","b":"2","b":"3"}}"#, "row:,3,,"),
            (r#"{"a":{"b":"1"},"a":{"b":"2","b":"3"}}"#, "row:,3,,"),
            (r#"{"a":{"b":"1"},"a":{"c":"2"}}"#, "row:,,,"),
            (r#"{"a":{"b":"1"},"a":"s"}"#, "row:,,,"),
            (r#"{"a":"s","a":{"b":"1"}}"#, "row:,1,,"),
            // Inside arrays of objects, and repeated arrays.
            (r#"{"l":[0,{"k":"1","k":"2"}]}"#, "row:,,2,"),
            (r#"{"l":[0,{"k":"1","k":"2","k":"3"}]}"#, "row:,,3,"),
            (
                r#"{"l":[0,{"k":"1"}],"l":[0,{"k":"3","k":"4","k":"5"}]}"#,
                "row:,,5,",
            ),
            (r#"{"l":[0,{"k":"1"}],"l":[0]}"#, "row:,,,"),
            // A json column writes the object as it came, repeats included.
            (
                r#"{"w":{"x":1,"x":2},"w":{"x":3,"x":4}}"#,
                r#"row:,,,"{""x"":3,""x"":4}""#,
            ),
        ],
    );
    // Three levels deep (the values are found from the scanner's slots:
    // a repeated key clears what an earlier value of it held below).
    let deep = "[[columns]]\nname = \"c\"\nsource = \"a.b.c\"\ntype = \"text\"\n\
                [[columns]]\nname = \"d\"\nsource = \"a.d\"\ntype = \"text\"\n\
                [[columns]]\nname = \"b\"\nsource = \"a.b\"\ntype = \"json\"\n";
    check_spec(
        "",
        deep,
        Dialect::Postgres,
        &[
            (r#"{"a":{"b":{"c":"1"},"d":"x"}}"#, r#"row:1,x,"{""c"":""1""}""#),
            (r#"{"a":{"b":{"c":"1"}},"a":{"d":"x"}}"#, "row:,x,"),
            (r#"{"a":{"b":{"c":"1"}},"a":{"b":{}}}"#, "row:,,{}"),
            (r#"{"a":{"b":{"c":"1"},"b":{"e":2}}}"#, r#"row:,,"{""e"":2}""#),
            (
                r#"{"a":{"b":{"c":"1","c":"2"}}}"#,
                r#"row:2,,"{""c"":""1"",""c"":""2""}""#,
            ),
            (
                r#"{"a":{"b":{"c":"1"}},"a":{"b":{"c":"2"}}}"#,
                r#"row:2,,"{""c"":""2""}""#,
            ),
            (
                r#"{"a":{"b":{"c":"1"}},"x":{"a":{"b":{"c":"2"}}}}"#,
                r#"row:1,,"{""c"":""1""}""#,
            ),
            (r#"{"a":{"b":{"c":"1"},"d":"x"},"a":[1]}"#, "row:,,"),
            (r#"{"a":{"b":{"c":"1"},"d":"x"},"a":null}"#, "row:,,"),
            (r#"{"a":{"b":"s"}}"#, r#"row:,,"""s""""#),
        ],
    );
    let lvl =
        "[[columns]]\nname = \"m\"\nsource = \"@message\"\ntype = \"text\"\n";
    let row = |m: &str| format!("row:\"{}\"", m.replace('"', "\"\""));
    let cases = [
        ("{ $.lvl = \"WARN\" }", r#"{"lvl":"INFO","lvl":"WARN"}"#, true),
        ("{ $.lvl = \"WARN\" }", r#"{"lvl":"WARN","lvl":"INFO"}"#, false),
        (
            "{ $.lvl = \"WARN\" }",
            r#"{"lvl":"INFO","lvl":"ERROR","lvl":"WARN"}"#,
            true,
        ),
        (
            "{ $.lvl = \"WARN\" }",
            r#"{"lvl":"WARN","lvl":"WARN","lvl":"INFO"}"#,
            false,
        ),
        ("{ $.lvl NOT EXISTS }", r#"{"lvl":"INFO","lvl":null}"#, false),
        ("{ $.lvl IS NULL }", r#"{"lvl":"INFO","lvl":null}"#, true),
        (
            "{ $.a.lvl = \"WARN\" }",
            r#"{"a":{"lvl":"INFO","lvl":"WARN"}}"#,
            true,
        ),
        (
            "{ $.a.lvl = \"WARN\" }",
            r#"{"a":{"lvl":"WARN"},"a":{"x":1}}"#,
            false,
        ),
        (
            "{ $.a.lvl = \"WARN\" }",
            r#"{"a":{"lvl":"INFO"},"a":{"lvl":"WARN"}}"#,
            true,
        ),
        ("{ $.l[0].k = 2 }", r#"{"l":[{"k":1,"k":2}]}"#, true),
        ("{ $.l[0].k = 1 }", r#"{"l":[{"k":1,"k":2}]}"#, false),
        ("{ $.l[0].k = 3 }", r#"{"l":[{"k":1}],"l":[{"k":2,"k":3}]}"#, true),
        ("{ $.n > 5 }", r#"{"n":9,"n":1}"#, false),
        ("{ $.n > 5 }", r#"{"n":1,"n":9}"#, true),
    ];
    for (filter, message, matched) in cases {
        let want = if matched { row(message) } else { "filtered".to_owned() };
        check_spec(
            &format!("filter = '{filter}'"),
            lvl,
            Dialect::Postgres,
            &[(message, &want)],
        );
        // With a column that reads the selected key too.
        let both = "[[columns]]\nname = \"m\"\nsource = \"@message\"\ntype = \"text\"\n\
                    [[columns]]\nname = \"x\"\nsource = \"a\"\ntype = \"json\"\n";
        let m =
            mapper(&format!("filter = '{filter}'"), both, Dialect::Postgres);
        assert_eq!(
            paths(&m, message) != "filtered",
            matched,
            "{filter} {message}"
        );
    }
}

/// Issue #12, item 3: the text limit follows the dialect, over-long text
/// is rejected unless the spec asks to truncate, and truncations are
/// counted per column.
#[test]
fn over_long_text() {
    let big = format!(r#"{{"v":"{}"}}"#, "é".repeat(45_000));
    let at_limit = format!(r#"{{"v":"{}"}}"#, "x".repeat(65_535));
    let over =
        "reject:c:too_long:value is 90000 bytes, more than max_bytes = 65535";
    let trunc = "source = \"v\"\ntype = \"text\"\noverflow = \"truncate\"";
    // PostgreSQL: no limit by default, with or without truncate.
    for def in [TEXT, trunc] {
        let got = one("", def, Dialect::Postgres, &big);
        assert_eq!(got.len(), "row:".len() + 90_000, "{def}");
    }
    // Redshift: VARCHAR's 65,535 bytes; rejected, or cut and counted.
    assert_eq!(one("", TEXT, Dialect::Redshift, &big), over);
    assert_eq!(one("", TEXT, Dialect::Redshift, &at_limit).len(), 4 + 65_535);
    let cut = one("", trunc, Dialect::Redshift, &big);
    assert_eq!(cut, format!("row:{}", "é".repeat(32_767)));
    // The spec's limit, for either dialect.
    let mb = "source = \"v\"\ntype = \"text\"\nmax_bytes = 70000";
    assert!(
        one("", mb, Dialect::Postgres, &big).starts_with("reject:c:too_long:")
    );
    // A Redshift default must fit VARCHAR.
    let spec = ColumnSpec::from_toml(&format!(
        "table = 't'\n[[columns]]\nname = 'a'\nsource = 'a'\ntype = 'text'\n\
         default = '{}'\n",
        "d".repeat(65_536)
    ))
    .unwrap();
    assert!(Mapper::new(&spec, Dialect::Postgres).is_ok());
    let e = Mapper::new(&spec, Dialect::Redshift).unwrap_err();
    assert!(e.message.contains("VARCHAR"), "{e}");
    // The resolved limits (what `sql` writes as varchar(n)).
    let limit =
        |d| match mapper("", &format!("[[columns]]\nname = \"c\"\n{TEXT}"), d)
            .columns()[0]
            .kind
        {
            Kind::Text { max_bytes, overflow } => (max_bytes, overflow),
            k => panic!("{k:?}"),
        };
    assert_eq!(limit(Dialect::Redshift), (65_535, spec::Overflow::Reject));
    assert_eq!(
        limit(Dialect::Postgres),
        (spec::PG_FIELD_MAX, spec::Overflow::Reject)
    );

    // PostgreSQL's field limit always rejects, even with truncate (a
    // mapper with a small limit stands in for 1 GB).
    let limited = |def: &str| {
        let mut m = mapper(
            "",
            &format!("[[columns]]\nname = \"c\"\n{def}"),
            Dialect::Postgres,
        );
        m.field_max = 10;
        m
    };
    let eleven = r#"{"v":"12345678901"}"#;
    let pg_limit = "reject:c:too_long:value is 11 bytes, more than PostgreSQL's 1 GB field limit";
    for def in [
        TEXT,
        trunc,
        "source = \"v\"\ntype = \"json\"",
        "source = \"@message\"\ntype = \"text\"",
    ] {
        let got = paths(&limited(def), eleven);
        assert!(got.starts_with("reject:c:too_long:"), "{def}: {got}");
    }
    assert!(paths(&limited(trunc), eleven).starts_with(pg_limit));
    let cut5 = "source = \"v\"\ntype = \"text\"\nmax_bytes = 5\noverflow = \"truncate\"";
    assert_eq!(paths(&limited(cut5), eleven), "row:12345");
    assert_eq!(
        paths(&limited(TEXT), r#"{"v":"1234567890"}"#),
        "row:1234567890"
    );
}

#[test]
fn truncations_are_counted_per_column() {
    let m = mapper(
        "",
        "[[columns]]\nname = \"a\"\nsource = \"a\"\ntype = \"text\"\n\
         max_bytes = 3\noverflow = \"truncate\"\n\
         [[columns]]\nname = \"b\"\nsource = \"b\"\ntype = \"text\"\n\
         max_bytes = 3\noverflow = \"truncate\"\n\
         [[columns]]\nname = \"c\"\nsource = \"c\"\ntype = \"int\"\n\
         on_mismatch = \"reject\"\n",
        Dialect::Postgres,
    );
    let mut scratch = MapScratch::new();
    let mut out = Vec::new();
    let mut map = |msg: &str, scratch: &mut MapScratch| {
        m.map(&LogEvent::from_message("o", msg), scratch, &mut out)
    };
    assert!(scratch.truncated().is_empty());
    assert_eq!(map(r#"{"a":"ab","b":"ab"}"#, &mut scratch), MapOutcome::Row);
    assert!(scratch.truncated().iter().all(|&n| n == 0));
    assert_eq!(
        map(r#"{"a":"abcd","b":"ab","c":1}"#, &mut scratch),
        MapOutcome::Row
    );
    assert_eq!(
        map(r#"{"a":"abcd","b":"abcd"}"#, &mut scratch),
        MapOutcome::Row
    );
    // A rejected event counts nothing, though `a` was cut before `c`
    // failed.
    assert!(matches!(
        map(r#"{"a":"abcd","b":"abcd","c":"x"}"#, &mut scratch),
        MapOutcome::Rejected(Reject { code: "type_mismatch", .. })
    ));
    assert_eq!(scratch.truncated(), [2, 1, 0]);
    scratch.clear_truncated();
    assert_eq!(scratch.truncated(), [0, 0, 0]);
    assert_eq!(map(r#"{"b":"日本"}"#, &mut scratch), MapOutcome::Row);
    assert_eq!(scratch.truncated(), [0, 1, 0]);
    assert!(String::from_utf8(out).unwrap().ends_with(",日,\n"));
}

/// Issue #12, item 4: every reject has a stable code; each code has a
/// row here.
#[test]
fn reject_codes() {
    let cases: &[(&str, &str, Dialect, &str, &str)] = &[
        ("", TEXT, Dialect::Postgres, "x", "not_json"),
        ("", JSON, Dialect::Postgres, "[]", "not_object"),
        (
            "non_json = \"raw\"",
            "source = \"@message\"\ntype = \"json\"\non_mismatch = \"reject\"",
            Dialect::Postgres,
            "x",
            "not_json",
        ),
        ("", INT_REJECT, Dialect::Postgres, r#"{"v":"x"}"#, "type_mismatch"),
        (
            "",
            "source = \"v\"\ntype = \"text\"\nmax_bytes = 1",
            Dialect::Postgres,
            r#"{"v":"ab"}"#,
            "too_long",
        ),
        (
            "",
            "source = \"v\"\ntype = \"json\"\nmax_bytes = 1",
            Dialect::Postgres,
            r#"{"v":"a"}"#,
            "too_long",
        ),
        ("", TEXT, Dialect::Postgres, r#"{"v":"\u0000"}"#, "nul_char"),
        ("", JSON, Dialect::Postgres, r#"{"v":["\u0000"]}"#, "nul_char"),
        (
            "",
            "source = \"@message\"\ntype = \"text\"",
            Dialect::Postgres,
            "a\0b",
            "nul_char",
        ),
        (
            "",
            "source = \"v\"\ntype = \"int\"\nrequired = true",
            Dialect::Postgres,
            "{}",
            "missing_required",
        ),
        ("", TEXT, Dialect::Redshift, r#"{"v":"\\N"}"#, "null_marker"),
    ];
    let mut seen = Vec::new();
    for &(top, def, dialect, message, code) in cases {
        let got = one(top, def, dialect, message);
        assert!(got.starts_with("reject:"), "{def} {message:?}: {got}");
        assert_eq!(
            got.split(':').nth(2),
            Some(code),
            "{def} {message:?}: {got}"
        );
        seen.push(code);
    }
    // A row over Redshift's 4 MB takes more than one column.
    let got = wide(65, Dialect::Redshift);
    assert!(got.starts_with("reject::row_too_large:"), "{}", &got[..60]);
    seen.push(code::ROW_TOO_LARGE);
    for c in code::ALL {
        assert!(seen.contains(&c), "no row for {c}");
    }
    // Field errors carry the same codes.
    assert_eq!(FieldError::Nul { offset: 0 }.code(), code::NUL_CHAR);
    assert_eq!(FieldError::NullMarker.code(), code::NULL_MARKER);
}

/// Redshift's COPY refuses an input row over 4 MB (and fails the load):
/// a longer CSV record is rejected `row_too_large` on the Redshift
/// dialect, one of exactly 4 MiB loads, and PostgreSQL has no such limit.
#[test]
fn redshift_rows_over_4_mb_are_rejected() {
    // 64 × 65,535 bytes, 63 commas and the newline: 4 MiB exactly.
    let fits = wide(64, Dialect::Redshift);
    assert_eq!(fits.len(), "row:".len() + REDSHIFT_ROW_MAX - 1);
    let over = wide(65, Dialect::Redshift);
    assert_eq!(
        over,
        format!(
            "reject::row_too_large:row is 4259840 bytes as CSV, more than \
             Redshift's COPY limit of {REDSHIFT_ROW_MAX} bytes (4 MB) for \
             one row"
        )
    );
    let pg = wide(65, Dialect::Postgres);
    assert!(pg.starts_with("row:"), "{}", &pg[..40]);
}

/// `n` text columns of the same 65,535-byte value, mapped.
fn wide(n: usize, dialect: Dialect) -> String {
    let message = format!(r#"{{"v":"{}"}}"#, "x".repeat(65_535));
    let columns = (0..n)
        .map(|i| {
            format!(
                "[[columns]]\nname = \"c{i}\"\nsource = \"v\"\n\
                 type = \"text\"\n"
            )
        })
        .collect::<String>();
    paths(&mapper("", &columns, dialect), &message)
}

/// The scanner's slots (`scan::scan_slots`) find what a full walk of the
/// tape finds (`paths` maps every message both ways: pruned with slots,
/// and keep-all, where every lookup walks from the root), on objects of
/// repeated keys nested three deep, with the values of paths replaced by
/// scalars, arrays and other objects.
mod slots_agree {
    use super::*;
    use proptest::prelude::*;

    fn member_list(
        value: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = String> {
        prop::collection::vec(
            (prop::sample::select(vec!["a", "b", "c", "d"]), value),
            0..5,
        )
        .prop_map(|members| {
            let body: Vec<String> =
                members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        })
    }

    fn object() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(vec![
            "1",
            "2.5",
            "\"s\"",
            "null",
            "true",
            "[]",
            "[1,{\"b\":2}]",
            "{}",
        ])
        .prop_map(str::to_owned);
        member_list(leaf.prop_recursive(3, 32, 5, member_list))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn slots_find_what_a_full_lookup_finds(message in object()) {
            let cols = [
                ("abc", "a.b.c", "text"),
                ("ab", "a.b", "json"),
                ("ad", "a.d", "text"),
                ("b", "b", "text"),
                ("cab", "c.a.b", "text"),
                ("ca", "c.a", "json"),
                ("cad", "c.a.d", "float"),
                ("d1", "d[1].b", "text"),
            ];
            let columns: String = cols
                .iter()
                .map(|(n, s, t)| {
                    format!(
                        "[[columns]]\nname = \"{n}\"\nsource = \"{s}\"\n\
                         type = \"{t}\"\non_mismatch = \"null\"\n"
                    )
                })
                .collect();
            let m = mapper("", &columns, Dialect::Postgres);
            let got = paths(&m, &message);
            prop_assert!(got.starts_with("row:"), "{message}: {got}");
        }

        /// A JSON filter's selectors, read from their slots, give the
        /// verdict of `FilterPattern::matches` on the full tape (the
        /// keep-all mapper's), with repeated and nested keys, array
        /// indexes, and every kind of test.
        #[test]
        fn filters_find_what_a_full_lookup_finds(
            message in object(),
            pick in 0usize..12,
        ) {
            let filters = [
                r#"{ $.a.b.c = 1 }"#,
                r#"{ $.a.b = "s" }"#,
                r#"{ $.a.b = "s*" && $.c.a.b = 2.5 }"#,
                r#"{ $.d[1].b = 2 }"#,
                r#"{ $.d[0] = 1 || $.d[1].b = "s" }"#,
                r#"{ $.a.d IS NULL }"#,
                r#"{ $.c.a NOT EXISTS }"#,
                r#"{ $.b > 1 || $.a.b.c = "s" }"#,
                r#"{ $.a.b IS TRUE || $.b IS FALSE }"#,
                r#"{ $.a.b.c != 2.5 && $.c.a.d NOT EXISTS }"#,
                r#"{ $.a = "1" || $.b = 1 || $.c = %^tr% }"#,
                r#"{ ($.a.b.c = 1 || $.a.b = 2) && $.d.b NOT EXISTS }"#,
            ];
            let top = format!("filter = '{}'", filters[pick]);
            let m = mapper(
                &top,
                "[[columns]]\nname = \"m\"\nsource = \"@message\"\n\
                 type = \"text\"\n",
                Dialect::Postgres,
            );
            paths(&m, &message);
        }
    }
}

/// JSON columns on the one-pass path: an object or array written straight
/// from its escaped source (compact, no escapes in its strings) gives the
/// bytes the oracle's `write_json` gives, and one that is not so compact
/// (whitespace outside strings, escapes, `\/`, `\u`) goes the long way to
/// the same bytes; limits count the unescaped length. Every message in
/// the four escapings, through `fuzzing::onepass_message`.
#[test]
fn json_columns_from_the_escaped_source_match_the_oracle() {
    let top = "non_json = \"raw\"";
    let cols = r#"
[[columns]]
name = "tags"
source = "tags"
type = "json"
[[columns]]
name = "ctx"
source = "ctx"
type = "json"
[[columns]]
name = "small"
source = "small"
type = "json"
max_bytes = 9
[[columns]]
name = "whole"
source = "@message"
type = "json"
"#;
    let messages = [
        r#"{"tags":["api","v1","3"],"ctx":{"a":1.50,"b":[true,null,-0],"a":2e3}}"#,
        r#"{"tags":[ "api" ],"ctx":{"k": "v"}}"#,
        r#"{"tags":["a b","c,d","é🎉"],"ctx":{"s":"x\"y","t":"a\\b"}}"#,
        r#"{"tags":["\/","\u00e9","\n"],"ctx":{"":{"":[]}}}"#,
        r#"{"small":[1,2,3,4],"tags":[]}"#,
        r#"{"small":["abc","de"]}"#,
        r#"{"small":["abc","def"]}"#,
        r#"{"tags":[[[[1]]],{"x":[{}]}],"ctx":[1.0,1e-7,123456789012345678901234567890]}"#,
        "[1,2]",
        r#"{"tags":"not a container","ctx":7}"#,
    ];
    for d in [Dialect::Postgres, Dialect::Redshift] {
        let m = mapper(top, cols, d);
        assert!(m.onepass());
        for text in messages {
            for style in 0..crate::fuzzing::ESCAPE_STYLES {
                crate::fuzzing::onepass_message(&m, text, style);
            }
        }
    }
    // The raw path is taken, and counts the unescaped length.
    let esc = crate::fuzzing::escape(r#"{"t":["abc","de"],"u":[1, 2]}"#, 0);
    let at = esc.find('[').unwrap();
    assert_eq!(
        raw_json(&esc, at),
        Some((r#"[\"abc\",\"de\"]"#, r#"["abc","de"]"#.len()))
    );
    assert_eq!(raw_json(&esc, esc.rfind('[').unwrap()), None);
}

/// Column plans (`plan.rs`): the seed's spec is planned whole, and at the
/// edge of each plan's plain case (limits, NULs, the NULL markers, types
/// the plan leaves to the general path) the planned mapper writes what
/// the general one writes: `fuzzing::onepass_message` compares it with
/// the keep-all mapper, which has no plans, on the one-pass path and the
/// oracle's, in every escaping.
#[test]
fn planned_columns_write_what_the_general_path_writes() {
    use super::plan::Plan;
    let seed = ColumnSpec::from_toml(include_str!(
        "../../testdata/specs/integrated_user_log.toml"
    ))
    .unwrap();
    let m = Mapper::new(&seed, Dialect::Postgres).unwrap();
    let kinds: Vec<&str> = m
        .plans
        .iter()
        .map(|p| match p {
            Plan::General => "general",
            Plan::Timestamp => "timestamp",
            Plan::Envelope { .. } => "envelope",
            Plan::Text { .. } => "text",
            Plan::Json { .. } => "json",
            Plan::Int { .. } => "int",
            Plan::Float { .. } => "float",
            Plan::Message { .. } => "message",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "timestamp",
            "envelope",
            "envelope",
            "text",
            "text",
            "int",
            "float",
            "json",
            "message"
        ]
    );
    assert!(m.keep_all().plans.iter().all(|p| *p == Plan::General));
    let cols = r#"
[[columns]]
name = "t"
source = "@timestamp"
type = "timestamp"
[[columns]]
name = "id"
source = "@id"
type = "text"
max_bytes = 1
overflow = "truncate"
[[columns]]
name = "s"
source = "a.s"
type = "text"
max_bytes = 4
overflow = "truncate"
[[columns]]
name = "r"
source = "r"
type = "text"
max_bytes = 4
[[columns]]
name = "i"
source = "a.i"
type = "int"
on_mismatch = "null"
[[columns]]
name = "f"
source = "f"
type = "float"
[[columns]]
name = "j"
source = "j"
type = "json"
max_bytes = 6
[[columns]]
name = "m"
source = "@message"
type = "text"
max_bytes = 60
overflow = "truncate"
"#;
    // Each edge alone in its message (the other columns are missing, so
    // NULL), so that no other column's reject hides it; then a few
    // together.
    let edges: [(&str, &[&str]); 5] = [
        (
            "s",
            &[
                r#""abcd""#,
                r#""abcde""#,
                r#""a\u0000b""#,
                r#""\\.""#,
                r#""""#,
                r#""é🎉""#,
                "null",
                "true",
                "12",
                r#""x,y""#,
                r#""a\"b\"c""#,
                r#""\\N""#,
                r#""\n""#,
            ],
        ),
        (
            "i",
            &[
                "7",
                "-9223372036854775808",
                "9223372036854775808",
                "1.0",
                r#""7""#,
                "null",
                "true",
                "0",
                "-0",
                "1e2",
                "[1]",
            ],
        ),
        (
            "r",
            &[
                r#""x""#,
                r#""\\N""#,
                r#""""#,
                r#""toolong""#,
                "null",
                "12",
                r#""\"q\"""#,
                r#""a\u0000""#,
            ],
        ),
        (
            "f",
            &[
                "1.5",
                "-0.25",
                "1.50",
                "1e3",
                "7",
                r#""1.5""#,
                "-0",
                "-0.0",
                "123456789012345678.5",
                "0.1",
                "0.0001",
                "1e-7",
                "1.0",
                "0.30000000000000004",
                "true",
            ],
        ),
        (
            "j",
            &[
                r#"[1,"a"]"#,
                "{}",
                r#"["\n"]"#,
                "[ 1 ]",
                r#""text""#,
                r#"[[["x"]]]"#,
                r#"["a\"b"]"#,
                "[1.50]",
                "null",
                "[]",
                r#"{"k":1}"#,
            ],
        ),
    ];
    let mut messages: Vec<String> = Vec::new();
    for (key, values) in edges {
        for v in values {
            messages.push(match key {
                "s" | "i" => format!(r#"{{"a":{{"{key}":{v}}}}}"#),
                _ => format!(r#"{{"{key}":{v}}}"#),
            });
        }
    }
    messages.extend(
        [
            r#"{"a":{"s":"abcd","i":7},"r":"x","f":1.5,"j":[1]}"#,
            r#"{"a":{"s":"1","s":"22","i":1,"i":2},"f":0.1,"f":0.2}"#,
            r#"{"a":[1],"f":12345678901234567.5}"#,
            r#"{"m":"a long message that the column truncates at sixty bytes or so"}"#,
            "not json",
            "[1,2]",
            "{}",
        ]
        .map(str::to_owned),
    );
    for top in ["non_json = \"raw\"", "non_json = \"reject\""] {
        for d in [Dialect::Postgres, Dialect::Redshift] {
            let m = mapper(top, cols, d);
            assert!(m.plans.iter().all(|p| *p != Plan::General));
            for text in &messages {
                for style in 0..crate::fuzzing::ESCAPE_STYLES {
                    crate::fuzzing::onepass_message(&m, text, style);
                }
            }
        }
    }
}

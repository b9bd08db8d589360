//! The CSV we write, loaded into a real PostgreSQL with `COPY … FROM
//! STDIN (FORMAT csv)` and read back value by value.
//!
//! Needs `CWL_TEST_PG_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`);
//! `./test.sh` starts a server and sets it.

use bytes::Bytes;
use cwl_copy::{
    ColumnSpec, Dialect, Envelope, LogEvent, MapOutcome, MapScratch, Mapper,
    RowWriter,
};
use futures_util::SinkExt;
use tokio_postgres::{Client, NoTls};

/// A client with a fresh schema first on its search path.
async fn connect() -> Client {
    let url = std::env::var("CWL_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "CWL_TEST_PG_URL is not set: run ./test.sh (it starts a \
             PostgreSQL server and sets it)"
        )
    });
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection error: {e}");
        }
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("cwl_csv_{}_{nanos}", std::process::id());
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}"
        ))
        .await
        .unwrap();
    client
}

async fn copy(client: &Client, statement: &str, data: Vec<u8>) -> u64 {
    let sink = client.copy_in(statement).await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from(data)).await.unwrap();
    sink.as_mut().finish().await.unwrap()
}

/// Strings that stress CSV and COPY: quotes, delimiters, line breaks,
/// backslashes, the end-of-data marker, the text-format NULL marker,
/// Unicode.
const TRICKY: &[&str] = &[
    "",
    " ",
    "plain",
    "a,b",
    "\"",
    "\"\"",
    "say \"hi\", then go",
    "\n",
    "\r\n",
    "line 1\nline 2\r\nline 3\r",
    "\\",
    "\\.",
    "\\.\n",
    "\n\\.\n",
    "\\N",
    "NULL",
    "C:\\temp\\new",
    "日本語のログ",
    "🎉 emoji 👨‍👩‍👧",
    "\u{feff}bom",
    "tab\there",
    "'single'",
];

#[tokio::test]
async fn row_writer_round_trip() {
    let client = connect().await;
    client
        .batch_execute("CREATE TABLE raw (id bigint, v text, w text)")
        .await
        .unwrap();
    let mut expected: Vec<(i64, Option<String>, Option<String>)> = Vec::new();
    let mut values: Vec<Option<&str>> = vec![None];
    values.extend(TRICKY.iter().map(|s| Some(*s)));
    let mut w = RowWriter::new(Dialect::Postgres);
    let mut out = Vec::new();
    let mut id = 0i64;
    for a in &values {
        for b in [None, Some(""), Some("\\."), Some("x")] {
            id += 1;
            w.field(&mut out, &id.to_string()).unwrap();
            match a {
                Some(v) => w.field(&mut out, v).unwrap(),
                None => w.null(&mut out),
            }
            match b {
                Some(v) => w.field(&mut out, v).unwrap(),
                None => w.null(&mut out),
            }
            w.end_row(&mut out);
            expected.push((id, a.map(str::to_owned), b.map(str::to_owned)));
        }
    }
    let n =
        copy(&client, "COPY raw (id, v, w) FROM STDIN WITH (FORMAT csv)", out)
            .await;
    assert_eq!(n, expected.len() as u64);
    let rows = client
        .query("SELECT id, v, w FROM raw ORDER BY id", &[])
        .await
        .unwrap();
    let got: Vec<(i64, Option<String>, Option<String>)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn single_column_null_and_marker_rows() {
    // A one-column NULL row is an empty line, and `\.` alone on a line
    // must not end the data.
    let client = connect().await;
    client.batch_execute("CREATE TABLE one (v text)").await.unwrap();
    let mut w = RowWriter::new(Dialect::Postgres);
    let mut out = Vec::new();
    let values = [None, Some("\\."), Some(""), None, Some("after")];
    for v in values {
        match v {
            Some(v) => w.field(&mut out, v).unwrap(),
            None => w.null(&mut out),
        }
        w.end_row(&mut out);
    }
    let n =
        copy(&client, "COPY one (v) FROM STDIN WITH (FORMAT csv)", out).await;
    assert_eq!(n, 5);
    let rows = client.query("SELECT v FROM one", &[]).await.unwrap();
    let mut got: Vec<Option<String>> = rows.iter().map(|r| r.get(0)).collect();
    let mut want: Vec<Option<String>> =
        values.iter().map(|v| v.map(str::to_owned)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

const SPEC: &str = r#"
table = "cwl events"
non_json = "raw"

[[columns]]
name = "k"
source = "k"
type = "int"
required = true

[[columns]]
name = "event time"
source = "@timestamp"
type = "timestamp"

[[columns]]
name = "Text"
source = "t"
type = "text"

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
name = "ts"
source = "ts"
type = "timestamp"

[[columns]]
name = "j"
source = "j"
type = "json"

[[columns]]
name = 'say "hi"'
source = "@log_group"
type = "text"
"#;

/// One event and the values read back, as
/// (k, event time ms, Text, n, f, b, ts ms, j::text).
type Want = (
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<f64>,
    Option<bool>,
    Option<i64>,
    Option<String>,
);

#[tokio::test]
async fn mapper_round_trip() {
    let client = connect().await;
    let spec = ColumnSpec::from_toml(SPEC).unwrap();
    let mapper = Mapper::new(&spec, Dialect::Postgres).unwrap();
    let table = cwl_copy::sql::TableName::new(None, mapper.table()).unwrap();
    client
        .batch_execute(&cwl_copy::sql::create_table(&mapper, &table).join(";"))
        .await
        .unwrap();

    let cases: Vec<(&str, Want)> = vec![
        (
            r#"{"k":1,"t":"hello","n":42,"f":1.5,"b":true,
                "ts":"2024-05-01T22:05:07.123+09:00","j":{"a":[1,2.50]}}"#,
            (
                1,
                Some(1_714_568_707_123),
                Some("hello".into()),
                Some(42),
                Some(1.5),
                Some(true),
                Some(1_714_568_707_123),
                Some(r#"{"a": [1, 2.50]}"#.into()),
            ),
        ),
        (
            r#"{"k":2,"t":"","n":-9223372036854775808,"f":1e300,"b":false,
                "ts":-1,"j":"日本\"\\\n"}"#,
            (
                2,
                Some(1_714_568_707_123),
                Some(String::new()),
                Some(i64::MIN),
                Some(1e300),
                Some(false),
                Some(-1),
                Some(r#""日本\"\\\n""#.into()),
            ),
        ),
        (
            r#"{"k":3,"t":null,"n":9223372036854775807,"f":-2.5e-308,
                "ts":-62135596800000,"j":[]}"#,
            (
                3,
                Some(1_714_568_707_123),
                None,
                Some(i64::MAX),
                Some(-2.5e-308),
                None,
                Some(-62_135_596_800_000),
                Some("[]".into()),
            ),
        ),
        (
            r#"{"k":4,"t":"multi\nline, \"quoted\" \\. \\N 🎉","n":"x",
                "f":5e-324,"ts":253402300799999,"j":{"s":"a\u0001b","n":null}}"#,
            (
                4,
                Some(1_714_568_707_123),
                Some("multi\nline, \"quoted\" \\. \\N 🎉".into()),
                None,
                Some(5e-324),
                None,
                Some(253_402_300_799_999),
                Some(r#"{"n": null, "s": "a\u0001b"}"#.into()),
            ),
        ),
        (
            r#"{"k":5,"t":"\\.","n":1e3,"f":0.1,"ts":0,"j":123456789012345678901234567890}"#,
            (
                5,
                Some(1_714_568_707_123),
                Some("\\.".into()),
                Some(1000),
                Some(0.1),
                None,
                Some(0),
                Some("123456789012345678901234567890".into()),
            ),
        ),
        (
            r#"{"k":6,"t":{"nested":["x",1.0]},"f":-0.0,"j":{"k":"\ud83c\udf89"}}"#,
            (
                6,
                Some(1_714_568_707_123),
                Some(r#"{"nested":["x",1.0]}"#.into()),
                None,
                Some(-0.0),
                None,
                None,
                Some(r#"{"k": "🎉"}"#.into()),
            ),
        ),
    ];

    let mut env = Envelope::default();
    env.owner = "123456789012";
    env.log_group = "/aws/lambda/f,\"x\"";
    env.log_stream = "s";
    let mut scratch = MapScratch::new();
    let mut out = Vec::new();
    for (message, _) in &cases {
        let mut ev = LogEvent::from_message("obj", message);
        ev.envelope = Some(&env);
        ev.timestamp = Some(1_714_568_707_123);
        let outcome = mapper.map(&ev, &mut scratch, &mut out);
        assert_eq!(outcome, MapOutcome::Row, "{message}");
    }
    // Not JSON and no `k`: rejected (k is required), nothing written.
    let before = out.len();
    let ev = LogEvent::from_message("obj", "plain text");
    assert!(matches!(
        mapper.map(&ev, &mut scratch, &mut out),
        MapOutcome::Rejected(_)
    ));
    assert_eq!(out.len(), before);

    let n = copy(
        &client,
        &cwl_copy::sql::copy_statement(&mapper, &table, "STDIN"),
        out,
    )
    .await;
    assert_eq!(n, cases.len() as u64);

    let rows = client
        .query(
            r#"SELECT k,
                 (extract(epoch FROM "event time") * 1000)::bigint,
                 "Text", n, f, b,
                 (extract(epoch FROM ts) * 1000)::bigint,
                 j::text,
                 "say ""hi"""
               FROM "cwl events" ORDER BY k"#,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), cases.len());
    for (row, (message, want)) in rows.iter().zip(&cases) {
        let got: Want = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
            row.get(6),
            row.get(7),
        );
        assert_eq!(&got, want, "{message}");
        // -0.0 == 0.0, so check the sign too.
        if let Some(f) = want.4 {
            assert_eq!(
                got.4.map(f64::is_sign_negative),
                Some(f.is_sign_negative())
            );
        }
        let group: Option<String> = row.get(8);
        assert_eq!(group.as_deref(), Some(env.log_group));
    }
}

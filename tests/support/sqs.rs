//! Helpers for the SQS intake tests (`loader_sqs`, issue 10): queues and
//! what sits on them, notification bodies in every shape S3 sends (direct,
//! SNS-wrapped, EventBridge, test events) with keys encoded as S3 encodes
//! them, raw calls to the moto services the Rust SDK is not a dependency
//! for (CloudWatch Logs, Firehose, EventBridge, SNS), small generated
//! Firehose objects, and the loader run and end-state checks (minimal
//! copies of `loader_s3`'s private helpers).
//!
//! Every queue, bucket and schema is fresh per test (named by
//! [`super::unique`]), so the tests share one moto and one PostgreSQL.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use cwl_copy::corpus::{self, Rng};
use serde_json::{json, Value};
use tokio_postgres::Client;

use super::corpus_s3::{Obj, PREFIX};
use crate::decode::{bin, tempdir};

/// The shipped spec, filter included (`{ $.context.log_name =
/// "specific-log" }`, the seed's subscription filter).
pub const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/specs/integrated_user_log.toml"
);
/// The seed's subscription filter pattern, as `SPEC` carries it.
pub const FILTER: &str = r#"{ $.context.log_name = "specific-log" }"#;
/// The spec's table, and the loader's default ledger and quarantine.
pub const TABLE: &str = "integrated_user_log";
pub const LEDGER: &str = "cwl_copy_ledger";
pub const QUARANTINE: &str = "cwl_copy_quarantine";
/// No run or poll in these tests may take longer than this.
pub const DEADLINE: Duration = Duration::from_secs(180);
/// moto's account.
pub const ACCOUNT: &str = "123456789012";
/// `--once` with a one-second long poll: a drain ends a second after the
/// queue is seen empty.
pub const ONCE: [&str; 3] = ["--once", "--wait-seconds", "1"];

/// `SPEC` without its filter (as in `loader_s3` and `load_faults`): the
/// corpus's plain-text messages reach the mapping, which rejects them, so
/// quarantine and exit code 3 are exercised by good objects too.
pub fn unfiltered_spec() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let text = std::fs::read_to_string(SPEC).unwrap();
        let unfiltered: String = text
            .lines()
            .filter(|l| !l.starts_with("filter ="))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(unfiltered.len() < text.len(), "no filter line in {SPEC}");
        let path = tempdir().join("sqs-unfiltered.toml");
        std::fs::write(&path, unfiltered).unwrap();
        path.to_string_lossy().into_owned()
    })
}

// ---------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------

/// A queue of this test's own.
#[derive(Clone, Debug)]
pub struct Queue {
    /// Its URL (`--sqs-queue-url`).
    pub url: String,
    /// Its name (the last segment of the URL).
    pub name: String,
    /// `arn:aws:sqs:us-east-1:123456789012:<name>`.
    pub arn: String,
}

/// Creates a fresh queue named after `name`, with `VisibilityTimeout`
/// `visibility` seconds when given (SQS's default, 30 s, otherwise).
pub async fn queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility: Option<u32>,
) -> Queue {
    let name = super::unique(name);
    let mut req = sqs.create_queue().queue_name(&name);
    if let Some(v) = visibility {
        req = req
            .attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
    }
    let out = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"));
    let url = out.queue_url().unwrap().to_owned();
    let arn = attributes(sqs, &url).await["QueueArn"].clone();
    assert_eq!(arn, format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"));
    Queue { url, name, arn }
}

/// Every attribute of the queue at `url`.
pub async fn attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> std::collections::BTreeMap<String, String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap_or_else(|e| panic!("attributes of {url}: {e:?}"));
    out.attributes()
        .unwrap_or_else(|| panic!("no attributes for {url}"))
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect()
}

/// (visible, in flight): `ApproximateNumberOfMessages` and
/// `ApproximateNumberOfMessagesNotVisible` (moto computes both exactly,
/// expiring visibility timeouts as it answers).
pub async fn counts(sqs: &aws_sdk_sqs::Client, q: &Queue) -> (u64, u64) {
    let a = attributes(sqs, &q.url).await;
    let n = |k: &str| -> u64 {
        a.get(k).unwrap_or_else(|| panic!("no {k} in {a:?}")).parse().unwrap()
    };
    (
        n("ApproximateNumberOfMessages"),
        n("ApproximateNumberOfMessagesNotVisible"),
    )
}

/// Polls `counts` until `want` holds of (visible, in flight), failing
/// after `within` with the last counts and `what`.
pub async fn wait_counts(
    sqs: &aws_sdk_sqs::Client,
    q: &Queue,
    within: Duration,
    what: &str,
    want: impl Fn(u64, u64) -> bool,
) -> (u64, u64) {
    let deadline = Instant::now() + within;
    loop {
        let (visible, in_flight) = counts(sqs, q).await;
        if want(visible, in_flight) {
            return (visible, in_flight);
        }
        assert!(
            Instant::now() < deadline,
            "queue {}: {what}: still {visible} visible, {in_flight} in \
             flight after {within:?}",
            q.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The queue holds nothing, visible or in flight (polled briefly: the
/// counts are exact on moto, but a delete may still be on its way). On
/// failure it waits for what is in flight to come back (its visibility
/// timeout) and names those messages: their ids, receive counts and
/// bodies.
pub async fn assert_queue_empty(sqs: &aws_sdk_sqs::Client, q: &Queue) {
    let within = Duration::from_secs(10);
    let deadline = Instant::now() + within;
    loop {
        let (visible, in_flight) = counts(sqs, q).await;
        if visible == 0 && in_flight == 0 {
            return;
        }
        if Instant::now() >= deadline {
            let back = Instant::now() + DEADLINE;
            while counts(sqs, q).await.1 > 0 && Instant::now() < back {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let left = look(sqs, q).await;
            panic!(
                "queue {}: should be empty: still {visible} visible, \
                 {in_flight} in flight after {within:?}; what is left \
                 (id, receive count, body): {left:?}",
                q.name
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Up to 10 messages now visible on `q` (left visible): id, receive
/// count and the body's first 300 characters.
async fn look(
    sqs: &aws_sdk_sqs::Client,
    q: &Queue,
) -> Vec<(String, String, String)> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    let Ok(out) = sqs
        .receive_message()
        .queue_url(&q.url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .message_system_attribute_names(A::ApproximateReceiveCount)
        .send()
        .await
    else {
        return Vec::new();
    };
    out.messages()
        .iter()
        .map(|m| {
            let count = m
                .attributes()
                .and_then(|a| a.get(&A::ApproximateReceiveCount))
                .cloned()
                .unwrap_or_default();
            let body: String =
                m.body().unwrap_or("").chars().take(300).collect();
            (m.message_id().unwrap_or("").to_owned(), count, body)
        })
        .collect()
}

/// Waits until every message of `q` is visible again (nothing in flight),
/// e.g. after a killed consumer's visibility timeouts run out.
pub async fn wait_none_in_flight(sqs: &aws_sdk_sqs::Client, q: &Queue) {
    wait_counts(sqs, q, DEADLINE, "messages stay in flight", |_, f| f == 0)
        .await;
}

/// Sends `bodies` with SendMessageBatch (10 per call) and returns their
/// message ids, in order.
pub async fn send(
    sqs: &aws_sdk_sqs::Client,
    q: &Queue,
    bodies: &[String],
) -> Vec<String> {
    let mut ids = Vec::with_capacity(bodies.len());
    for chunk in bodies.chunks(10) {
        let mut req = sqs.send_message_batch().queue_url(&q.url);
        for (i, body) in chunk.iter().enumerate() {
            req = req.entries(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(body)
                    .build()
                    .unwrap(),
            );
        }
        let out = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("send to {}: {e:?}", q.name));
        assert!(out.failed().is_empty(), "{:?}", out.failed());
        let mut ok: Vec<(usize, String)> = out
            .successful()
            .iter()
            .map(|s| (s.id()[1..].parse().unwrap(), s.message_id().to_owned()))
            .collect();
        ok.sort();
        assert_eq!(ok.len(), chunk.len());
        ids.extend(ok.into_iter().map(|(_, id)| id));
    }
    ids
}

/// Up to `n` bodies now visible on `q`, received with a visibility
/// timeout of 0 so they stay visible (a look that takes nothing away; it
/// does add one to each one's `ApproximateReceiveCount`).
pub async fn peek(
    sqs: &aws_sdk_sqs::Client,
    q: &Queue,
    n: i32,
) -> Vec<String> {
    let out = sqs
        .receive_message()
        .queue_url(&q.url)
        .max_number_of_messages(n.min(10))
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("receive from {}: {e:?}", q.name));
    out.messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect()
}

/// Sets the seed's kind of queue policy: S3 may send messages to `q`
/// for notifications of `bucket` in moto's account. (moto stores it and
/// does not enforce it.)
pub async fn allow_s3_notifications(
    sqs: &aws_sdk_sqs::Client,
    q: &Queue,
    bucket: &str,
) {
    let policy = json!({
        "Version": "2012-10-17",
        "Id": "cwl-copy-s3-notifications",
        "Statement": [{
            "Sid": "AllowS3BucketNotifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "SQS:SendMessage",
            "Resource": q.arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": format!("arn:aws:s3:*:*:{bucket}")},
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
            },
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(&q.url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("policy of {}: {e:?}", q.name));
    let stored: Value =
        serde_json::from_str(&attributes(sqs, &q.url).await["Policy"])
            .unwrap();
    assert_eq!(stored, policy, "queue policy round trip");
}

// ---------------------------------------------------------------------------
// Notification bodies
// ---------------------------------------------------------------------------

/// `key` form-encoded as S3 writes it into a notification: every byte
/// but `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`) as `%XX` of its
/// UTF-8, a space as `+` (so a literal `+` is `%2B`). AWS's examples keep
/// `/`; moto (Python's `quote_plus`) encodes it as `%2F`. Both decode to
/// the same key.
pub fn form_encode(key: &str, keep_slash: bool) -> String {
    super::s3proxy::percent_encode(key, keep_slash).replace("%20", "+")
}

/// One S3 event record, shaped as S3 sends it (FORMAT.md c), with
/// `encoded_key` as given and `versionId` when `version` is set.
pub fn s3_record(
    bucket: &str,
    encoded_key: &str,
    event_name: &str,
    size: u64,
    version: Option<&str>,
) -> Value {
    let mut object = json!({
        "key": encoded_key,
        "size": size,
        "eTag": "0123456789abcdef0123456789abcdef",
        "sequencer": "0055AED6DCD90281E5",
    });
    if let Some(v) = version {
        object["versionId"] = json!(v);
    }
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-05-01T13:05:07.123Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:firehose"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "cwl-copy-firehose-objects",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": format!("arn:aws:s3:::{bucket}"),
            },
            "object": object,
        },
    })
}

/// A notification body holding `records`.
pub fn s3_event(records: Vec<Value>) -> String {
    json!({ "Records": records }).to_string()
}

/// The body S3 sends for one created object (`ObjectCreated:Put`, key
/// encoded with `/` kept, as in AWS's examples).
pub fn created(bucket: &str, key: &str, size: u64) -> String {
    s3_event(vec![s3_record(
        bucket,
        &form_encode(key, true),
        "ObjectCreated:Put",
        size,
        None,
    )])
}

/// `inner` (an S3 notification body) as SNS delivers it to SQS without
/// raw message delivery.
pub fn sns_wrap(inner: &str, topic: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": "5e0e4f4b-21fc-5b5c-9b3f-6a8bd3b4e1c2",
        "TopicArn": topic,
        "Subject": "Amazon S3 Notification",
        "Message": inner,
        "Timestamp": "2024-05-01T13:05:07.456Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": format!("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:0b5c4f6e"),
    })
    .to_string()
}

/// An EventBridge "Object Created" event as EventBridge delivers it to an
/// SQS target: the key as it is, not encoded (AWS's documented shape; an
/// unversioned bucket, so no `version-id`).
pub fn eventbridge_created(bucket: &str, key: &str, size: u64) -> String {
    json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2024-05-01T13:05:07Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": size,
                "etag": "0123456789abcdef0123456789abcdef",
                "sequencer": "00617F08299329D189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "10.0.0.1",
            "reason": "PutObject",
        },
    })
    .to_string()
}

/// The `s3:TestEvent` S3 sends when a notification is configured.
pub fn test_event(bucket: &str) -> String {
    json!({
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2024-05-01T13:00:00.000Z",
        "Bucket": bucket,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    })
    .to_string()
}

// ---------------------------------------------------------------------------
// Other moto services, by their wire protocol
// ---------------------------------------------------------------------------

/// A dummy SigV4 header naming `service` (moto routes by the credential
/// scope and checks no signature unless told to).
fn auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20240501/us-east-1/{service}/\
         aws4_request, SignedHeaders=host, Signature=00"
    )
}

/// One call of an AWS JSON 1.1 API on moto (`target` e.g.
/// `Logs_20140328.PutLogEvents`); panics unless it answers 200.
pub async fn aws_json(service: &str, target: &str, body: Value) -> Value {
    let endpoint = super::aws_endpoint();
    let auth = auth(service);
    let (status, answer) = super::s3proxy::raw_request(
        &endpoint,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", target),
            ("Authorization", &auth),
        ],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap_or_else(|e| panic!("{target}: {e}"));
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200, "{target} {body}: {text}");
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{target}: {e}: {text}"))
    }
}

/// One call of an AWS query API on moto (SNS); the XML answer. Panics
/// unless it answers 200.
pub async fn aws_query(service: &str, params: &[(&str, &str)]) -> String {
    let endpoint = super::aws_endpoint();
    let auth = auth(service);
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                super::s3proxy::percent_encode(k, false),
                super::s3proxy::percent_encode(v, false)
            )
        })
        .collect();
    let (status, answer) = super::s3proxy::raw_request(
        &endpoint,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &auth),
        ],
        body.join("&").as_bytes(),
    )
    .await
    .unwrap_or_else(|e| panic!("{service} {params:?}: {e}"));
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert_eq!(status, 200, "{service} {params:?}: {text}");
    text
}

/// The text of the first `<tag>…</tag>` in `xml`.
pub fn xml_field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start =
        xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
            + open.len();
    let len = xml[start..]
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("no </{tag}> in {xml}"));
    &xml[start..start + len]
}

// ---------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------

/// 2024-05-01T00:00:00Z in milliseconds.
const HOUR0_MS: i64 = 1_714_521_600_000;

/// Stream names for generated keys: spaces, `+`, `%`, `=`, `&`,
/// non-ASCII; the plain one most often.
const STREAMS: [&str; 7] = [
    "cwl-stream",
    "cwl stream with spaces",
    "cwl+plus+stream",
    "cwl%2Bpercent%20stream",
    "strüm-ünïcode",
    "日本-logs",
    "cwl-stream",
];

/// `n` small generated Firehose objects (one or two gzip members of
/// CloudWatch envelopes, a control message in some), written under
/// `<tempdir>/<name>/<key>` with keys like Firehose's in the hours of
/// 2024-05-01 and awkward stream names. Sorted by key. `Obj::hour` is
/// the hour of the prefix.
pub fn small_objects(name: &str, n: usize, seed: u64) -> Vec<Obj> {
    let root = tempdir().canonicalize().unwrap().join(name);
    let mut rng = Rng::new(seed);
    let mut objs: Vec<Obj> = (0..n)
        .map(|i| {
            let hour = i32::try_from(i % 24).unwrap();
            let mut ts = HOUR0_MS
                + i64::from(hour) * 3_600_000
                + i64::try_from(rng.below(3_000_000)).unwrap();
            let members = 1 + rng.below(2) as usize;
            let control = rng.below(5) == 0;
            let bytes = 400 + rng.below(700) as usize;
            let (data, _) =
                corpus::object(&mut rng, &mut ts, members, bytes, control);
            let stream = STREAMS[i % STREAMS.len()];
            let (mm, ss) = (rng.below(60), rng.below(60));
            let key = format!(
                "{PREFIX}2024/05/01/{hour:02}/{stream}-1-2024-05-01-{hour:02}-\
                 {mm:02}-{ss:02}-{:08x}-{:016x}",
                i,
                rng.next_u64()
            );
            let path = root.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &data).unwrap();
            Obj {
                key,
                path,
                hour,
                variant: "multi-member".into(),
                size: data.len() as u64,
                bad: false,
            }
        })
        .collect();
    objs.sort_by(|a, b| a.key.cmp(&b.key));
    objs
}

/// One `created` notification body per object of `objs` in `bucket`.
pub fn created_bodies(bucket: &str, objs: &[&Obj]) -> Vec<String> {
    objs.iter().map(|o| created(bucket, &o.key, o.size)).collect()
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// `cwl-copy load --columns spec --target … --schema schema
/// --create-table` with the summary at `<out>.json` and stderr in
/// `<out>.log`, then `args` (the source: `--sqs-queue-url …`, inputs).
pub fn load_cmd(
    spec: &str,
    schema: &str,
    args: &[OsString],
    out: &Path,
) -> tokio::process::Command {
    let mut cmd = bin();
    cmd.args(["load", "--columns", spec, "--target"])
        .arg(super::pg_url())
        .args(["--schema", schema, "--create-table", "--threads", "2"])
        .arg("--summary-json")
        .arg(out.with_extension("json"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(out.with_extension("log")).unwrap());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    cmd
}

/// `load_cmd` consuming `q` through `endpoint` (moto, or a proxy in
/// front of it), then `extra` (e.g. [`ONCE`], `--batch-objects`).
pub fn sqs_load_cmd(
    spec: &str,
    schema: &str,
    q: &Queue,
    endpoint: &str,
    extra: &[&str],
    out: &Path,
) -> tokio::process::Command {
    let mut args: Vec<OsString> = vec![
        "--sqs-queue-url".into(),
        q.url.clone().into(),
        "--endpoint-url".into(),
        endpoint.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    load_cmd(spec, schema, &args, out)
}

pub use super::cli::{assert_completed, finish, run_to_completion, Run};

/// The `messages_*` counts of a run, for messages: (received, deleted).
pub fn messages(run: &Run) -> (u64, u64) {
    (run.n("messages_received"), run.n("messages_deleted"))
}

/// Sends `sig` (`TERM`, `INT`, `KILL`) to process `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {sig} {pid}: {status}");
}

/// A finished `cwl-copy enqueue`.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cwl-copy enqueue --sqs-queue-url <q> --endpoint-url <endpoint>
/// <args…>` to completion (up to [`DEADLINE`]).
pub async fn enqueue(q: &Queue, endpoint: &str, args: &[OsString]) -> Output {
    let mut cmd = bin();
    cmd.args(["enqueue", "--sqs-queue-url", &q.url, "--endpoint-url"])
        .arg(endpoint)
        .args(args)
        .stdin(Stdio::null());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("enqueue did not finish in {DEADLINE:?}"))
        .unwrap();
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// End states
// ---------------------------------------------------------------------------

pub use super::Fingerprint;

/// The fingerprint of `schema`'s target table.
pub async fn fingerprint(c: &Client, schema: &str) -> Fingerprint {
    super::fingerprint(c, &format!("\"{schema}\".{TABLE}")).await
}

/// Whether `schema` has a table `name`.
pub async fn has_table(c: &Client, schema: &str, name: &str) -> bool {
    c.query_one(
        &format!("SELECT to_regclass('\"{schema}\".{name}') IS NOT NULL"),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// The ledger of `schema`: key → (rows, rejected), failing on a key
/// listed twice. Empty when there is no ledger yet.
pub async fn ledger(
    c: &Client,
    schema: &str,
) -> std::collections::BTreeMap<String, (i64, i64)> {
    let mut out = std::collections::BTreeMap::new();
    if !has_table(c, schema, LEDGER).await {
        return out;
    }
    let rows = c
        .query(
            &format!(
                "SELECT key, \"rows\"::bigint, rejected::bigint \
                 FROM \"{schema}\".{LEDGER}"
            ),
            &[],
        )
        .await
        .unwrap();
    for r in rows {
        let key: String = r.get(0);
        let prev = out.insert(key.clone(), (r.get(1), r.get(2)));
        assert!(prev.is_none(), "{key} twice in the ledger of {schema}");
    }
    out
}

/// Number of objects in `schema`'s ledger (0 before it exists).
pub async fn ledger_len(c: &Client, schema: &str) -> i64 {
    if !has_table(c, schema, LEDGER).await {
        return 0;
    }
    c.query_one(&format!("SELECT count(*) FROM \"{schema}\".{LEDGER}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Quarantined entries of `schema` by kind.
pub async fn quarantine(
    c: &Client,
    schema: &str,
) -> std::collections::BTreeMap<String, i64> {
    if !has_table(c, schema, QUARANTINE).await {
        return std::collections::BTreeMap::new();
    }
    c.query(
        &format!(
            "SELECT kind, count(*) FROM \"{schema}\".{QUARANTINE} \
             GROUP BY kind"
        ),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Checks, in one snapshot, that only whole batches are committed in
/// `schema`: the target's rows and quarantined events are exactly those
/// the ledger records. Returns the number of objects in the ledger.
pub async fn assert_whole_batches(c: &Client, schema: &str) -> i64 {
    for t in [TABLE, LEDGER, QUARANTINE] {
        if !has_table(c, schema, t).await {
            return 0;
        }
    }
    let r = c
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM \"{schema}\".{LEDGER}), \
                 (SELECT coalesce(sum(\"rows\"), 0)::bigint \
                  FROM \"{schema}\".{LEDGER}), \
                 (SELECT count(*) FROM \"{schema}\".{TABLE}), \
                 (SELECT coalesce(sum(rejected), 0)::bigint \
                  FROM \"{schema}\".{LEDGER}), \
                 (SELECT count(*) FROM \"{schema}\".{QUARANTINE} \
                  WHERE kind = 'rejected_event')"
            ),
            &[],
        )
        .await
        .unwrap();
    let (objects, ledger_rows, rows, ledger_rej, rej): (
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    assert_eq!(rows, ledger_rows, "{schema}: target rows vs the ledger's");
    assert_eq!(
        rej, ledger_rej,
        "{schema}: quarantined events vs the ledger's"
    );
    objects
}

/// What a local load of some objects gives: the reference an SQS load of
/// the same objects must equal.
#[derive(Clone, Debug)]
pub struct Reference {
    pub rows: Fingerprint,
    pub quarantine: std::collections::BTreeMap<String, i64>,
    /// Bucket key → (rows, rejected).
    pub ledger: std::collections::BTreeMap<String, (i64, i64)>,
    pub summary: Value,
}

impl Reference {
    /// The ledger an S3 load of these objects from `bucket` must have.
    pub fn s3_ledger(
        &self,
        bucket: &str,
    ) -> std::collections::BTreeMap<String, (i64, i64)> {
        self.ledger
            .iter()
            .map(|(k, v)| (format!("s3://{bucket}/{k}"), *v))
            .collect()
    }
}

/// `cwl-copy load --columns spec` of the local copies of `objs` into a
/// fresh schema named after `name`; the ledger mapped back to bucket keys
/// (a local object's ledger key is its canonical path, which ends in
/// `/<key>`).
pub async fn local_reference(
    name: &str,
    spec: &str,
    objs: &[&Obj],
) -> Reference {
    let (c, schema) = super::pg_schema(name).await;
    let out = tempdir().join(name);
    let inputs: Vec<OsString> =
        objs.iter().map(|o| o.path.clone().into_os_string()).collect();
    let r =
        run_to_completion(&mut load_cmd(spec, &schema, &inputs, &out), &out)
            .await;
    assert_eq!(r.n("objects_loaded"), objs.len() as u64, "{}", r.summary);
    let mut by_key = std::collections::BTreeMap::new();
    for (local, counts) in ledger(&c, &schema).await {
        let o = objs
            .iter()
            .find(|o| local.ends_with(&format!("/{}", o.key)))
            .unwrap_or_else(|| panic!("local ledger key {local:?} unknown"));
        by_key.insert(o.key.clone(), counts);
    }
    assert_eq!(by_key.len(), objs.len(), "local ledger of {name}");
    Reference {
        rows: fingerprint(&c, &schema).await,
        quarantine: quarantine(&c, &schema).await,
        ledger: by_key,
        summary: r.summary,
    }
}

/// Checks that `schema` holds exactly `want`'s rows, event quarantine
/// and ledger (with `bucket`'s keys). Quarantine entries of other kinds
/// (`bad_message`) are left to the caller.
pub async fn assert_state(
    c: &Client,
    schema: &str,
    bucket: &str,
    want: &Reference,
) {
    let got = fingerprint(c, schema).await;
    assert_eq!(got, want.rows, "rows of {schema} vs the local load");
    let mut q = quarantine(c, schema).await;
    q.remove("bad_message");
    assert_eq!(q, want.quarantine, "quarantine of {schema} vs the local load");
    let got = ledger(c, schema).await;
    let want = want.s3_ledger(bucket);
    if got != want {
        let missing: Vec<_> =
            want.keys().filter(|k| !got.contains_key(*k)).collect();
        let unexpected: Vec<_> =
            got.keys().filter(|k| !want.contains_key(*k)).collect();
        let differ: Vec<_> = got
            .iter()
            .filter(|(k, v)| want.get(*k).is_some_and(|w| w != *v))
            .map(|(k, _)| k)
            .collect();
        panic!(
            "ledger of {schema}: missing {missing:?}, unexpected \
             {unexpected:?}, counts differ for {differ:?}"
        );
    }
}

/// Holds an uncommitted ledger row for `key` (target `target`, as the
/// loader writes it) on a connection of its own, so the loader's claim
/// of the batch holding `key` waits on it (as in `load_faults`). Returns
/// the connection and its backend pid; drop the connection (or roll
/// back) to release.
pub async fn block_key(
    schema: &str,
    target: &str,
    key: &str,
) -> (Client, i32) {
    let c = super::pg_client().await;
    c.batch_execute("BEGIN").await.unwrap();
    c.execute(
        &format!(
            "INSERT INTO \"{schema}\".{LEDGER} (target, key, size, \
             content_hash, events, \"rows\", filtered, rejected, batch_id) \
             VALUES ($1, $2, 0, 'blocker', 0, 0, 0, 0, 'blocker')"
        ),
        &[&target, &key],
    )
    .await
    .unwrap();
    let pid: i32 =
        c.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    (c, pid)
}

/// Backends waiting on a lock `blocker` (a backend pid) holds.
pub async fn waiting_on(c: &Client, blocker: i32) -> i64 {
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE $1 = ANY(pg_blocking_pids(pid))",
        &[&blocker],
    )
    .await
    .unwrap()
    .get(0)
}

/// Polls until some backend waits on `blocker`, failing if `child`
/// exits first or after [`DEADLINE`].
pub async fn wait_blocked(
    c: &Client,
    blocker: i32,
    child: &mut tokio::process::Child,
    out: &Path,
) {
    let deadline = Instant::now() + DEADLINE;
    while waiting_on(c, blocker).await == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "load exited ({status}) before it blocked on the held \
                 ledger row:\n{}",
                std::fs::read_to_string(out.with_extension("log"))
                    .unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the loader never waited on the held ledger row"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `target` the loader writes in `schema`'s ledger (its one value),
/// e.g. `schema.integrated_user_log`.
pub async fn ledger_target(c: &Client, schema: &str) -> String {
    let rows = c
        .query(
            &format!("SELECT DISTINCT target FROM \"{schema}\".{LEDGER}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one target in {schema}'s ledger");
    rows[0].get(0)
}

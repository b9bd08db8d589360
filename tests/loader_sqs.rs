//! Live intake from SQS (issue 10): the real binary against moto and
//! PostgreSQL, through the command-line contract of the issue:
//! `cwl-copy load … --sqs-queue-url URL [--once] [--wait-seconds N]
//! [--visibility-timeout SECS]`, the summary's `messages_*` counts, and
//! `cwl-copy enqueue`. Each test has its own buckets, queue and schema;
//! every wait polls a condition until a deadline.
//!
//! # The seed's architecture on moto 5.2.1
//!
//! `seed_architecture_end_to_end_on_moto` builds the seed's pipeline on
//! moto: a log group with the subscription filter
//! `{ $.context.log_name = "specific-log" }` → a Firehose delivery stream
//! (`ExtendedS3DestinationConfiguration`, prefix
//! `app-logs/from_CloudWatchLogs/`, uncompressed) → bucket notifications
//! for that prefix (`s3:ObjectCreated:*`) → an SQS queue with the seed's
//! kind of queue policy (`s3.amazonaws.com` may `SQS:SendMessage`, for
//! that bucket's ARN and the account). What moto 5.2.1 does, checked with
//! boto3 against a scratch server and pinned by assertions in that test:
//!
//! Reproduced:
//! - **Logs → Firehose.** `PutSubscriptionFilter` with a Firehose
//!   destination works, and each `PutLogEvents` call sends its events to
//!   the stream as one record: one gzip member holding one `DATA_MESSAGE`
//!   envelope (`messageType`, `owner`, `logGroup`, `logStream`,
//!   `subscriptionFilters` = the filter's name, `logEvents` with `id`,
//!   `timestamp`, `message`). Events must be in time order within a call
//!   and within 14 days back / 2 hours ahead, as in CloudWatch.
//! - **Firehose → S3.** The record is written to
//!   `<Prefix>YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>`
//!   (UTC now, version 1, no extension), the records of one call
//!   concatenated with no delimiter.
//! - **S3 → SQS.** The notification configuration with a `prefix` filter
//!   rule works; configuring it sends an `s3:TestEvent` (`Service`,
//!   `Event`, `Time`, `Bucket`; no `RequestId`/`HostId`), then every
//!   object created under the prefix gives one message with one
//!   `ObjectCreated:Put` record (`eventVersion` 2.1, bucket name and ARN,
//!   key, size, eTag). Keys are form-encoded by Python's `quote_plus`:
//!   space `+`, `+` `%2B`, non-ASCII as UTF-8 `%XX`, and `/` as `%2F`
//!   (AWS leaves `/` as it is; both decode to the same key). Delete
//!   notifications (`ObjectRemoved:Delete`) work too.
//! - **SNS and EventBridge** (used by `every_kind_of_message_body`): S3 →
//!   SNS → SQS delivers the SNS envelope (`Type: Notification`, the S3
//!   event as the `Message` string), the test event wrapped likewise; S3
//!   → EventBridge → SQS delivers `Object Created` events with
//!   `detail.object.key` not encoded.
//! - **SQS**: long polls, visibility timeouts (the queue's and
//!   `ChangeMessageVisibilityBatch`), redelivery, and the
//!   `ApproximateNumberOfMessages[NotVisible]` counts, which moto computes
//!   exactly (real SQS approximates).
//!
//! Not reproduced:
//! - **The filter pattern is not applied**: every event put reaches
//!   Firehose, JSON of another `log_name` and plain text included. The
//!   spec's identical filter drops them in the loader, so the summary's
//!   `filtered` counts what CloudWatch would have dropped.
//! - **No batching or buffering**: one envelope per `PutLogEvents` call
//!   and one object per envelope. Real CloudWatch batches events into
//!   envelopes and Firehose concatenates many records into one object
//!   per buffer (`BufferingHints`, ignored by moto, as is
//!   `CompressionFormat`: no `.gz` objects).
//! - **Event ids** are JSON integers from one counter of the whole moto
//!   process (0, 1, 2, …), not 56-digit strings; the decoder accepts them
//!   and `@id` holds their digits.
//! - **No `CONTROL_MESSAGE`** when the subscription is created, no
//!   duplicates or delays (delivery happens inside `PutLogEvents`), no
//!   error output prefix. Events outside the accepted time window are
//!   dropped, but the envelope is still delivered (with empty
//!   `logEvents`).
//! - **SQS without a lock**: `ReceiveMessage` calls running at once can
//!   hand the same message to two consumers (a duplicate delivery, as
//!   standard queues make now and then; the fleet tests see a few), and
//!   `DeleteMessage` accepts a stale receipt handle.
//! - **No IAM**: the queue policy is stored but not enforced, and the
//!   Firehose and subscription role ARNs are never checked. S3 event
//!   records lack `sequencer`, `versionId`, `userIdentity` and the `Z`
//!   of `eventTime`; EventBridge events carry `"version-id": "null"` on
//!   an unversioned bucket (AWS omits it).
//!
//! So the test also does the unreproduced steps itself, faithfully, as a
//! second leg on the same bucket and queue: it applies the filter (the
//! oracle: the message parses as JSON and `context.log_name` is
//! `"specific-log"`), batches the selected events per log stream into
//! envelopes with 56-digit string ids, gzips each envelope as one member
//! and concatenates several into each object (Firehose buffers), the
//! first one led by a control message, and PUTs them under the same
//! prefix with Firehose keys; moto's bucket notification delivers them.
//! Both legs must load exactly the events the filter selects.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::types::{
    BucketVersioningStatus, Event, EventBridgeConfiguration, FilterRule,
    FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    TopicConfiguration, VersioningConfiguration,
};
use cwl_copy::corpus::{self, Rng};
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::decode::tempdir;
use crate::support;
use crate::support::corpus_s3::{self, corpus, Obj, PREFIX};
use crate::support::s3proxy::{percent_decode, S3Proxy};
use crate::support::sqs::{
    self, assert_completed, assert_queue_empty, assert_state,
    assert_whole_batches, counts, created, fingerprint, finish, form_encode,
    ledger, ledger_len, local_reference, messages, quarantine,
    run_to_completion, s3_event, s3_record, sqs_load_cmd, unfiltered_spec,
    wait_counts, Queue, Run, DEADLINE, FILTER, LEDGER, ONCE, QUARANTINE, SPEC,
    TABLE,
};

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// A fresh bucket named after `name` holding `objs`.
async fn bucket_with(
    s3: &aws_sdk_s3::Client,
    name: &str,
    objs: &[&Obj],
) -> String {
    let bucket = support::fresh_bucket(s3, name).await;
    corpus_s3::upload(s3, &bucket, objs).await;
    bucket
}

/// `s3://bucket/rest` as a command-line input.
fn s3_url(bucket: &str, rest: &str) -> OsString {
    format!("s3://{bucket}/{rest}").into()
}

/// A form-encoded notification key, decoded (`+` is a space, then
/// percent-decoding).
fn form_decode(encoded: &str) -> String {
    percent_decode(&encoded.replace('+', " "))
}

/// The `n`th non-bad corpus object whose key contains `part`.
fn nth_with(part: &str, n: usize) -> &'static Obj {
    corpus()
        .objects
        .iter()
        .filter(|o| !o.bad && o.key.contains(part))
        .nth(n)
        .unwrap_or_else(|| panic!("no {n}th corpus key with {part:?}"))
}

/// Queue notifications of `bucket` (`events`, keys under `prefix`) to `q`.
async fn notify_queue(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    q: &Queue,
    events: &[&str],
    prefix: &str,
) {
    let mut qc =
        QueueConfiguration::builder().id("cwl-copy").queue_arn(&q.arn);
    for e in events {
        qc = qc.events(Event::from(*e));
    }
    let qc = qc.filter(key_prefix(prefix)).build().unwrap();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(qc)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("notifications of {bucket}: {e:?}"));
}

fn key_prefix(prefix: &str) -> NotificationConfigurationFilter {
    NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value(prefix)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// Checks the `messages_*` counts of `run`: received, deleted, test
/// events, ignored, quarantined.
fn assert_messages(run: &Run, want: [u64; 5]) {
    let got = [
        run.n("messages_received"),
        run.n("messages_deleted"),
        run.n("messages_test_events"),
        run.n("messages_ignored"),
        run.n("messages_quarantined"),
    ];
    assert_eq!(
        got, want,
        "[received, deleted, test events, ignored, quarantined]: {}\n{}",
        run.summary, run.stderr
    );
}

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The gzip members of `object`, each inflated.
fn members(mut object: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !object.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(object);
        let mut m = Vec::new();
        d.read_to_end(&mut m).unwrap();
        object = d.into_inner();
        out.push(m);
    }
    out
}

/// A random lowercase UUID.
fn uuid(rng: &mut Rng) -> String {
    let (u, v) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u >> 32,
        (u >> 16) & 0xffff,
        u & 0xfff,
        (v >> 48) | 0x8000,
        v & 0xffff_ffff_ffff
    )
}

// ---------------------------------------------------------------------------
// 1. The seed's architecture end to end
// ---------------------------------------------------------------------------

/// Whether the seed's filter selects `message`: it is JSON and its
/// `context.log_name` is the string `specific-log` (the oracle).
fn selected(message: &str) -> bool {
    serde_json::from_str::<Value>(message).ok().is_some_and(|v| {
        v.pointer("/context/log_name") == Some(&json!("specific-log"))
    })
}

/// The `i`th log message of the seed test: mostly the corpus's realistic
/// API lines (about 87% `specific-log`), and six in twenty cases the
/// filter must get right.
fn seed_message(rng: &mut Rng, i: usize, ts: i64) -> String {
    match i % 20 {
        0 => format!("plain text {i}: specific-log GET /health 200"),
        1 => format!(
            r#"{{"context":{{"log_name":"other-log","user_id":"u-{i}"}},"path":"/x","status":200}}"#
        ),
        2 => {
            format!(r#"{{"level":"info","msg":"no context at all","i":{i}}}"#)
        }
        3 => format!(
            r#"{{"context":{{"log_name":"specific-log-2"}},"path":"/near/miss","i":{i}}}"#
        ),
        4 => format!(
            r#"{{"log_name":"specific-log","context":{{}},"msg":"top-level name","i":{i}}}"#
        ),
        5 => format!(
            r#"{{"context":{{"log_name":"specific-log","user_id":"ü-{i}"}},"path":"/api/v1/検索","status":201,"latency_ms":1.5,"tags":["a","日本"],"msg":"line one\nline two \"quoted\" \\ back 🎉"}}"#
        ),
        _ => {
            let mut s = String::new();
            corpus::message(rng, ts, &mut s);
            s
        }
    }
}

/// One event as the test put it: (log stream, timestamp ms, message).
type Put = (String, i64, String);

/// `(log_stream, event_time ms, message)` of every row of `schema`'s
/// table, sorted, and the number of distinct event ids.
async fn table_events(c: &Client, schema: &str) -> (Vec<Put>, i64) {
    let rows = c
        .query(
            &format!(
                "SELECT log_stream, \
                 round(extract(epoch FROM event_time) * 1000)::bigint, \
                 message FROM \"{schema}\".{TABLE}"
            ),
            &[],
        )
        .await
        .unwrap();
    let mut out: Vec<Put> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    out.sort();
    let ids: i64 = c
        .query_one(
            &format!(
                "SELECT count(DISTINCT event_id) FROM \"{schema}\".{TABLE}"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (out, ids)
}

/// Checks one leg of the seed test: the run loaded `keys` (every one a
/// notified object), the table holds exactly `want`, each object is once
/// in the ledger, and the queue is empty.
async fn assert_seed_leg(
    pg: &Client,
    schema: &str,
    bucket: &str,
    keys: &[String],
    want: &[Put],
) {
    let (got, ids) = table_events(pg, schema).await;
    if got != want {
        let g: BTreeSet<&Put> = got.iter().collect();
        let w: BTreeSet<&Put> = want.iter().collect();
        panic!(
            "{schema}: {} rows, {} expected; missing {:?}; unexpected {:?}",
            got.len(),
            want.len(),
            w.difference(&g).take(3).collect::<Vec<_>>(),
            g.difference(&w).take(3).collect::<Vec<_>>()
        );
    }
    assert_eq!(ids, want.len() as i64, "{schema}: distinct event ids");
    let l = ledger(pg, schema).await;
    let want_keys: BTreeSet<String> =
        keys.iter().map(|k| format!("s3://{bucket}/{k}")).collect();
    assert_eq!(
        l.keys().cloned().collect::<BTreeSet<_>>(),
        want_keys,
        "{schema}: the ledger lists each object once"
    );
    let rows: i64 = l.values().map(|v| v.0).sum();
    assert_eq!(rows, want.len() as i64, "{schema}: ledger rows");
    assert_eq!(quarantine(pg, schema).await, BTreeMap::new());
}

/// The seed's pipeline on moto (see the module docs for what moto does
/// and does not reproduce): CloudWatch Logs → subscription filter →
/// Firehose → S3 → bucket notification → SQS → `cwl-copy load
/// --sqs-queue-url … --once` with the spec carrying the same filter. 360
/// events in 18 `PutLogEvents` calls over three log streams: the table
/// holds exactly the events the filter selects (stream, time and message
/// compared with what was put), the summary reconciles with the events
/// put, the test event is deleted and counted, the queue ends empty
/// (visible and in flight), and the ledger lists each object once. Then
/// the faithful second leg (filter applied, envelopes batched, several
/// per object, string ids, a control message) into a second schema must
/// give the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_architecture_end_to_end_on_moto() {
    let spec_text = std::fs::read_to_string(SPEC).unwrap();
    assert!(
        spec_text.contains(&format!("filter = '{FILTER}'")),
        "{SPEC} should carry the seed's filter"
    );
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    let bucket = support::fresh_bucket(&s3, "sqs-seed").await;
    let q = sqs::queue(&sqs_c, "sqs-seed", None).await;
    sqs::allow_s3_notifications(&sqs_c, &q, &bucket).await;
    notify_queue(&s3, &bucket, &q, &["s3:ObjectCreated:*"], PREFIX).await;
    // Like S3, moto sends a test event when notifications are configured.
    wait_counts(&sqs_c, &q, DEADLINE, "the test event", |v, _| v == 1).await;
    let peeked = sqs::peek(&sqs_c, &q, 10).await;
    assert_eq!(peeked.len(), 1, "{peeked:?}");
    let test_event: Value = serde_json::from_str(&peeked[0]).unwrap();
    assert_eq!(test_event["Event"], "s3:TestEvent", "{test_event}");
    assert_eq!(test_event["Bucket"], bucket.as_str(), "{test_event}");

    // Firehose → S3 under the seed's prefix.
    let role = format!("arn:aws:iam::{}:role/cwl-to-firehose", sqs::ACCOUNT);
    let stream = support::unique("cwl-seed");
    let created_stream = sqs::aws_json(
        "firehose",
        "Firehose_20150804.CreateDeliveryStream",
        json!({
            "DeliveryStreamName": stream,
            "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": role,
                "BucketARN": format!("arn:aws:s3:::{bucket}"),
                "Prefix": PREFIX,
                "ErrorOutputPrefix": "app-logs/errors/",
                "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
                "CompressionFormat": "UNCOMPRESSED",
            },
        }),
    )
    .await;
    let stream_arn = created_stream["DeliveryStreamARN"].as_str().unwrap();

    // CloudWatch Logs → Firehose through the seed's subscription filter.
    let group = format!("/ecs/api-server/{}", support::unique("seed"));
    let logs = |target: &str, body: Value| {
        let target = format!("Logs_20140328.{target}");
        async move { sqs::aws_json("logs", &target, body).await }
    };
    logs("CreateLogGroup", json!({"logGroupName": group})).await;
    let streams = ["ecs/api/0a1b2c3d", "ecs/api/4e5f6071", "ecs/worker/8a9b"];
    for s in streams {
        logs(
            "CreateLogStream",
            json!({"logGroupName": group, "logStreamName": s}),
        )
        .await;
    }
    logs(
        "PutSubscriptionFilter",
        json!({
            "logGroupName": group,
            "filterName": "specific-log-filter",
            "filterPattern": FILTER,
            "destinationArn": stream_arn,
            "roleArn": role,
        }),
    )
    .await;

    let mut rng = Rng::new(0x5EED_0010);
    let mut ts = now_ms() - 30 * 60 * 1000;
    let mut put: Vec<Put> = Vec::new();
    let calls = 18;
    for call in 0..calls {
        let s = streams[call % streams.len()];
        let events: Vec<Value> = (0..20)
            .map(|_| {
                ts += 1 + i64::try_from(rng.below(40)).unwrap();
                let m = seed_message(&mut rng, put.len(), ts);
                put.push((s.to_owned(), ts, m.clone()));
                json!({"timestamp": ts, "message": m})
            })
            .collect();
        let answer = logs(
            "PutLogEvents",
            json!({"logGroupName": group, "logStreamName": s, "logEvents": events}),
        )
        .await;
        assert!(answer.get("rejectedLogEventsInfo").is_none(), "{answer}");
    }
    let mut want: Vec<Put> =
        put.iter().filter(|p| selected(&p.2)).cloned().collect();
    want.sort();
    let n_put = put.len() as u64;
    let n_selected = want.len() as u64;
    assert!(n_selected > 150 && n_selected < n_put - 60, "{n_selected}");

    // What moto's Firehose wrote: one object per call, one member each,
    // every event put (the filter not applied), integer ids.
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(PREFIX)
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), calls, "moto: one object per PutLogEvents");
    let mut delivered = 0;
    for k in &keys {
        let rest = k.strip_prefix(PREFIX).unwrap();
        assert!(
            rest.contains(&format!("/{stream}-1-")) && !k.ends_with(".gz"),
            "{k}"
        );
        let body = s3.get_object().bucket(&bucket).key(k).send().await;
        let body = body.unwrap().body.collect().await.unwrap().into_bytes();
        let ms = members(&body);
        assert_eq!(ms.len(), 1, "moto: one gzip member per object: {k}");
        let env: Value = serde_json::from_slice(&ms[0]).unwrap();
        assert_eq!(env["messageType"], "DATA_MESSAGE");
        assert_eq!(env["logGroup"], group.as_str());
        assert_eq!(env["subscriptionFilters"], json!(["specific-log-filter"]));
        let events = env["logEvents"].as_array().unwrap();
        assert!(events.iter().all(|e| e["id"].is_u64()), "moto's ids: {env}");
        delivered += events.len();
    }
    assert_eq!(delivered as u64, n_put, "moto does not apply the filter");

    let n = keys.len() as u64;
    wait_counts(&sqs_c, &q, DEADLINE, "the notifications", |v, _| v == n + 1)
        .await;
    let peeked = sqs::peek(&sqs_c, &q, 10).await;
    assert!(
        peeked.iter().any(|b| b.contains("ObjectCreated:Put")
            && b.contains("app-logs%2Ffrom_CloudWatchLogs%2F")),
        "moto encodes / in keys as %2F: {peeked:?}"
    );

    let (pg, schema) = support::pg_schema("sqs-seed").await;
    let out = tempdir().join("seed-moto");
    let r = run_to_completion(
        &mut sqs_load_cmd(SPEC, &schema, &q, &endpoint, &ONCE, &out),
        &out,
    )
    .await;
    println!("seed leg 1 (moto's pipeline): {}", r.summary);
    assert_eq!(r.code, Some(0), "nothing rejected: {}", r.stderr);
    assert_messages(&r, [n + 1, n + 1, 1, 0, 0]);
    for (field, value) in [
        ("objects_seen", n),
        ("objects_loaded", n),
        ("events", n_put),
        ("rows", n_selected),
        ("filtered", n_put - n_selected),
        ("rejected", 0),
        ("errors", 0),
    ] {
        assert_eq!(r.n(field), value, "{field}: {}", r.summary);
    }
    assert_seed_leg(&pg, &schema, &bucket, &keys, &want).await;
    assert_queue_empty(&sqs_c, &q).await;

    // Leg 2: what CloudWatch and Firehose would have written, by hand.
    let base = &keys[0][..keys[0].len() - 36];
    let mut per_stream: BTreeMap<&str, Vec<&Put>> = BTreeMap::new();
    for p in put.iter().filter(|p| selected(&p.2)) {
        per_stream.entry(p.0.as_str()).or_default().push(p);
    }
    let mut envelopes: Vec<Vec<u8>> = Vec::new();
    for (s, events) in &per_stream {
        for chunk in events.chunks(7) {
            let log_events: Vec<Value> = chunk
                .iter()
                .map(|p| {
                    let id: String = (0..56)
                        .map(|_| char::from(b'0' + rng.below(10) as u8))
                        .collect();
                    json!({"id": id, "timestamp": p.1, "message": p.2})
                })
                .collect();
            let env = json!({
                "messageType": "DATA_MESSAGE",
                "owner": sqs::ACCOUNT,
                "logGroup": group,
                "logStream": s,
                "subscriptionFilters": ["specific-log-filter"],
                "logEvents": log_events,
            });
            envelopes.push(gzip(env.to_string().as_bytes()));
        }
    }
    let control = gzip(
        br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1680683189085,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#,
    );
    let mut keys2 = Vec::new();
    for (i, buffer) in envelopes.chunks(4).enumerate() {
        let mut object = if i == 0 { control.clone() } else { Vec::new() };
        for m in buffer {
            object.extend_from_slice(m);
        }
        let key = format!("{base}{}", uuid(&mut rng));
        s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .body(object.into())
            .send()
            .await
            .unwrap();
        keys2.push(key);
    }
    keys2.sort();
    let n2 = keys2.len() as u64;
    wait_counts(&sqs_c, &q, DEADLINE, "leg 2's notifications", |v, _| v == n2)
        .await;
    let schema2 = support::fresh_schema(&pg, "sqs-seed-faithful").await;
    let out = tempdir().join("seed-faithful");
    let r = run_to_completion(
        &mut sqs_load_cmd(SPEC, &schema2, &q, &endpoint, &ONCE, &out),
        &out,
    )
    .await;
    println!("seed leg 2 (faithful objects): {}", r.summary);
    assert_eq!(r.code, Some(0), "nothing rejected: {}", r.stderr);
    assert_messages(&r, [n2, n2, 0, 0, 0]);
    for (field, value) in [
        ("objects_loaded", n2),
        ("events", n_selected),
        ("rows", n_selected),
        ("filtered", 0),
        ("rejected", 0),
    ] {
        assert_eq!(r.n(field), value, "{field}: {}", r.summary);
    }
    assert_seed_leg(&pg, &schema2, &bucket, &keys2, &want).await;
    assert_queue_empty(&sqs_c, &q).await;
}

// ---------------------------------------------------------------------------
// 2. Duplicate notifications
// ---------------------------------------------------------------------------

/// The same notification sent twice, and three different notifications
/// for one key (S3's encoding, moto's `%2F` encoding as a
/// `CompleteMultipartUpload`, SNS-wrapped): one `--once` run loads each
/// object once (rows equal the local load of the three objects), deletes
/// all six messages, and leaves the queue empty. Then the same
/// notifications again (through a counting proxy): deleted without a
/// single GetObject, nothing loaded, the table unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_notifications_load_once() {
    let objs = [
        nth_with(" with spaces", 0),
        nth_with("+plus+", 0),
        nth_with("日本", 0),
    ];
    let (a, b, c) = (objs[0], objs[1], objs[2]);
    let want = local_reference("sqs-dup-ref", unfiltered_spec(), &objs).await;
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let bucket = bucket_with(&s3, "sqs-dup", &objs).await;
    let q = sqs::queue(&sqs_c, "sqs-dup", None).await;
    let proxy = S3Proxy::start(&support::aws_endpoint()).await;
    let endpoint = proxy.endpoint();
    let (pg, schema) = support::pg_schema("sqs-dup").await;

    let body_a = created(&bucket, &a.key, a.size);
    let body_b1 = created(&bucket, &b.key, b.size);
    let body_b2 = s3_event(vec![s3_record(
        &bucket,
        &form_encode(&b.key, false),
        "ObjectCreated:CompleteMultipartUpload",
        b.size,
        None,
    )]);
    let topic = format!("arn:aws:sns:us-east-1:{}:s3-events", sqs::ACCOUNT);
    let body_b3 = sqs::sns_wrap(&body_b1, &topic);
    let body_c = created(&bucket, &c.key, c.size);
    let round1 = [&body_a, &body_b1, &body_a, &body_b2, &body_c, &body_b3]
        .map(String::clone);
    sqs::send(&sqs_c, &q, &round1).await;

    let flags = ["--once", "--wait-seconds", "1", "--batch-objects", "4"];
    let out = tempdir().join("dup-1");
    let r = run_to_completion(
        &mut sqs_load_cmd(
            unfiltered_spec(),
            &schema,
            &q,
            &endpoint,
            &flags,
            &out,
        ),
        &out,
    )
    .await;
    println!("duplicates: {}", r.summary);
    assert_messages(&r, [6, 6, 0, 0, 0]);
    assert_eq!(r.n("objects_loaded"), 3, "{}", r.summary);
    assert_state(&pg, &schema, &bucket, &want).await;
    assert_queue_empty(&sqs_c, &q).await;
    println!("GetObject calls: {:?}", proxy.object_gets(&bucket));

    proxy.clear_requests();
    let round2 = [&body_a, &body_b3, &body_b2].map(String::clone);
    sqs::send(&sqs_c, &q, &round2).await;
    let out = tempdir().join("dup-2");
    let r = run_to_completion(
        &mut sqs_load_cmd(
            unfiltered_spec(),
            &schema,
            &q,
            &endpoint,
            &flags,
            &out,
        ),
        &out,
    )
    .await;
    println!("duplicates again: {}", r.summary);
    assert_eq!(r.code, Some(0), "nothing loaded, nothing rejected");
    assert_messages(&r, [3, 3, 0, 0, 0]);
    for field in ["objects_loaded", "rows", "events", "batches"] {
        assert_eq!(r.n(field), 0, "{field}: {}", r.summary);
    }
    assert_eq!(
        proxy.object_gets(&bucket),
        Vec::<String>::new(),
        "GetObject for keys the ledger holds"
    );
    assert!(!proxy.requests().is_empty(), "the run did not use the proxy");
    assert_eq!(proxy.errors(), Vec::<String>::new());
    assert_state(&pg, &schema, &bucket, &want).await;
    assert_queue_empty(&sqs_c, &q).await;
}

// ---------------------------------------------------------------------------
// 3. A fleet on one queue
// ---------------------------------------------------------------------------

/// Three `load --once` processes on one queue of 320 notifications (320
/// small objects with awkward keys): every row exactly once (fingerprint
/// equal to the local load of the same objects), every object once in
/// the ledger and loaded by exactly one of them, every message deleted
/// (the queue empty), duplicate deliveries skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_share_one_queue_exactly_once() {
    let objs = sqs::small_objects("sqs-fleet-objects", 320, 0xF1EE_7003);
    let refs: Vec<&Obj> = objs.iter().collect();
    let want =
        local_reference("sqs-fleet-ref", unfiltered_spec(), &refs).await;
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    let bucket = bucket_with(&s3, "sqs-fleet", &refs).await;
    let q = sqs::queue(&sqs_c, "sqs-fleet", None).await;
    sqs::send(&sqs_c, &q, &sqs::created_bodies(&bucket, &refs)).await;
    wait_counts(&sqs_c, &q, DEADLINE, "320 sent", |v, _| v == 320).await;

    let (pg, schema) = support::pg_schema("sqs-fleet").await;
    let flags = ["--once", "--wait-seconds", "2", "--batch-objects", "8"];
    let root = tempdir();
    let mut children = Vec::new();
    for i in 0..3 {
        let out = root.join(format!("consumer-{i}"));
        let child = sqs_load_cmd(
            unfiltered_spec(),
            &schema,
            &q,
            &endpoint,
            &flags,
            &out,
        )
        .spawn()
        .unwrap();
        children.push((child, out));
    }
    let mut runs = Vec::new();
    for (child, out) in children {
        runs.push(finish(child, &out).await);
    }
    // Standard queues deliver at least once (and moto's ReceiveMessage,
    // with no lock, now and then hands one message to two consumers): a
    // duplicate delivery must be skipped, not loaded twice.
    let (mut received, mut deleted, mut loaded) = (0, 0, 0);
    for (i, r) in runs.iter().enumerate() {
        println!("consumer {i}: {}", r.summary);
        assert_completed(r);
        let (rcv, del) = messages(r);
        received += rcv;
        deleted += del;
        loaded += r.n("objects_loaded");
    }
    println!("{} duplicate deliveries", received - 320);
    assert_eq!(loaded, 320, "objects loaded by the three");
    assert!(received >= 320 && deleted >= 320, "{received} {deleted}");
    assert_state(&pg, &schema, &bucket, &want).await;
    assert_queue_empty(&sqs_c, &q).await;
}

// ---------------------------------------------------------------------------
// 4. SIGKILL during batches
// ---------------------------------------------------------------------------

/// A queue with a 3 s visibility timeout and 120 notifications; 12 `load
/// --once --batch-objects 3` runs killed with SIGKILL at seeded random
/// points (every fourth right after spawn, every fourth at a random time
/// in its first 1.5 s, the rest a random moment after the run committed
/// a batch of its own), checking after each that only whole batches are
/// committed. A killed run's messages come back after 3 s. Then, once
/// nothing is in flight, a final `--once` run: rows equal the local
/// load, each object once in the ledger, the queue empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_batches_then_a_drain_is_exact() {
    let objs = sqs::small_objects("sqs-kill-objects", 120, 0x5111_0004);
    let refs: Vec<&Obj> = objs.iter().collect();
    let want = local_reference("sqs-kill-ref", unfiltered_spec(), &refs).await;
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    let bucket = bucket_with(&s3, "sqs-kill", &refs).await;
    let q = sqs::queue(&sqs_c, "sqs-kill", Some(3)).await;
    sqs::send(&sqs_c, &q, &sqs::created_bodies(&bucket, &refs)).await;
    let (pg, schema) = support::pg_schema("sqs-kill").await;
    let flags = ["--once", "--wait-seconds", "1", "--batch-objects", "3"];
    let root = tempdir();
    let mut rng = Rng::new(0x5111_1004);
    let mut killed = 0;
    for i in 0..12 {
        let before = ledger_len(&pg, &schema).await;
        let out = root.join(format!("kill-{i:02}"));
        let mut child = sqs_load_cmd(
            unfiltered_spec(),
            &schema,
            &q,
            &endpoint,
            &flags,
            &out,
        )
        .spawn()
        .unwrap();
        let point = match i % 4 {
            0 => "at spawn".to_owned(),
            1 => {
                let d = Duration::from_millis(rng.below(1500));
                tokio::time::sleep(d).await;
                format!("{d:?} after spawn")
            }
            _ => {
                let deadline = Instant::now() + DEADLINE;
                while ledger_len(&pg, &schema).await == before
                    && child.try_wait().unwrap().is_none()
                {
                    assert!(Instant::now() < deadline, "run {i}: no batch");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let d = Duration::from_millis(rng.below(200));
                tokio::time::sleep(d).await;
                format!("{d:?} after its first commit")
            }
        };
        // SIGKILL; a child that already exited is reaped by `finish`.
        let _ = child.start_kill();
        let r = finish(child, &out).await;
        let objects = assert_whole_batches(&pg, &schema).await;
        let how = if r.signal.is_some() {
            assert_eq!(r.signal, Some(9), "{}", r.stderr);
            killed += 1;
            "killed"
        } else {
            assert_completed(&r);
            "finished"
        };
        let (v, f) = counts(&sqs_c, &q).await;
        println!(
            "run {i:2}: {how} {point}; {objects} objects in the ledger; \
             queue {v} visible, {f} in flight"
        );
    }
    // Later runs have less left to load and may finish before their kill
    // point (each run's end state is checked either way); most must be
    // killed for the test to mean something.
    assert!(killed >= 6, "only {killed} of 12 runs were killed mid-run");

    sqs::wait_none_in_flight(&sqs_c, &q).await;
    let out = root.join("final");
    let flags = ["--once", "--wait-seconds", "2", "--batch-objects", "3"];
    let r = run_to_completion(
        &mut sqs_load_cmd(
            unfiltered_spec(),
            &schema,
            &q,
            &endpoint,
            &flags,
            &out,
        ),
        &out,
    )
    .await;
    println!("final: {}", r.summary);
    assert_state(&pg, &schema, &bucket, &want).await;
    assert_queue_empty(&sqs_c, &q).await;
}

// ---------------------------------------------------------------------------
// 5. Heartbeat
// ---------------------------------------------------------------------------

/// A batch that outlives the visibility timeout: the queue's
/// `VisibilityTimeout` is 2 s (no `--visibility-timeout`: the loader takes
/// the queue's), and the batch's ledger claim waits 6 s on a row another
/// connection holds. All that time the message stays in flight (never
/// visible again: the heartbeat extends it); then the object loads once,
/// `messages_received` is 1 (a redelivery would be received twice), and
/// the queue ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_keeps_a_slow_batch_in_flight() {
    let objs = sqs::small_objects("sqs-heartbeat-objects", 2, 0x4EA7_0005);
    let (pre, slow) = (&objs[0], &objs[1]);
    let spec = unfiltered_spec();
    let want = local_reference("sqs-heartbeat-ref", spec, &[pre, slow]).await;
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    let bucket = bucket_with(&s3, "sqs-heartbeat", &[slow]).await;
    let q = sqs::queue(&sqs_c, "sqs-heartbeat", Some(2)).await;
    let (pg, schema) = support::pg_schema("sqs-heartbeat").await;
    let root = tempdir();

    // The tables exist (a local load of another object) so that a ledger
    // row can be held before the loader starts.
    let out = root.join("pre");
    let inputs = [pre.path.clone().into_os_string()];
    run_to_completion(&mut sqs::load_cmd(spec, &schema, &inputs, &out), &out)
        .await;
    let target = sqs::ledger_target(&pg, &schema).await;
    let slow_key = format!("s3://{bucket}/{}", slow.key);
    let (blocker, blocker_pid) =
        sqs::block_key(&schema, &target, &slow_key).await;

    sqs::send(&sqs_c, &q, &[created(&bucket, &slow.key, slow.size)]).await;
    let out = root.join("slow");
    let mut child = sqs_load_cmd(spec, &schema, &q, &endpoint, &ONCE, &out)
        .spawn()
        .unwrap();
    sqs::wait_blocked(&pg, blocker_pid, &mut child, &out).await;

    // Hold the batch for three visibility timeouts (the scenario's length,
    // not a wait for something), checking all along that the message
    // stays in flight.
    let held = Instant::now();
    let mut checks = 0;
    while held.elapsed() < Duration::from_secs(6) {
        let (visible, in_flight) = counts(&sqs_c, &q).await;
        assert_eq!(
            (visible, in_flight),
            (0, 1),
            "{:?} into a blocked batch (visibility timeout 2 s), the \
             message should still be in flight: no heartbeat?",
            held.elapsed()
        );
        assert!(child.try_wait().unwrap().is_none(), "exited while blocked");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(sqs::waiting_on(&pg, blocker_pid).await > 0, "no longer blocked");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    drop(blocker);
    let r = finish(child, &out).await;
    println!("heartbeat ({checks} checks): {}", r.summary);
    assert_completed(&r);
    assert_messages(&r, [1, 1, 0, 0, 0]);
    assert_eq!(r.n("objects_loaded"), 1, "{}", r.summary);
    assert_eq!(fingerprint(&pg, &schema).await, want.rows);
    let l = ledger(&pg, &schema).await;
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l.get(&slow_key), want.ledger.get(&slow.key), "{l:?}");
    assert_queue_empty(&sqs_c, &q).await;
}

// ---------------------------------------------------------------------------
// 6. Message bodies and keys
// ---------------------------------------------------------------------------

/// Every kind of body on one queue, from moto where it produces them and
/// by hand in AWS's shapes otherwise, for keys with spaces, `+`, `%`,
/// `=`, `&` and non-ASCII characters:
/// - from moto: the test event of a queue notification, an
///   `ObjectCreated:Put` (`/` as `%2F`), an `ObjectRemoved:Delete`
///   (ignored), an SNS-wrapped test event and `ObjectCreated:Put` (S3 →
///   SNS → SQS), an EventBridge `Object Created` (key not encoded);
/// - by hand: S3's encoding (`/` kept), two records in one message, an
///   SNS-wrapped and an EventBridge event in AWS's shapes, an
///   `ObjectTagging:Put` (ignored), and two bodies that are no event
///   (quarantined as `bad_message` with their text, under
///   `sqs://<queue>/<message id>`).
///
/// All 13 messages are deleted; exactly the 8 created objects load (rows
/// and ledger equal the local load of them), neither the removed nor the
/// tagged one; exit 3 (bad bodies are rejected input). The ledger holds
/// the 8 objects as `s3://bucket/key` (and a row per quarantined body,
/// `sqs://queue/id`, so a redelivered body is not quarantined twice), so `enqueue
/// --target` of the EventBridge bucket then sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_message_body() {
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    let q = sqs::queue(&sqs_c, "sqs-bodies", None).await;

    // (object, bucket it goes to: 0 direct, 1 SNS, 2 EventBridge)
    let space = nth_with(" with spaces", 0);
    let jp = nth_with("日本", 0);
    let eq = nth_with("=eq&amp", 0);
    let uni = nth_with("strüm", 0);
    let plus = nth_with("+plus+", 0);
    let pct = nth_with("%2Bpercent%20", 0);
    let eb_hand = nth_with("%2Bpercent%20", 1);
    let sns_hand = nth_with("+plus+", 1);
    let removed = nth_with("cwl-stream-1", 0);
    let tagged = nth_with("cwl-stream-1", 1);
    let loaded = [space, jp, eq, uni, plus, pct, eb_hand, sns_hand];
    let want =
        local_reference("sqs-bodies-ref", unfiltered_spec(), &loaded).await;

    // Direct notifications: everything but `uni` is there beforehand.
    let main = bucket_with(
        &s3,
        "sqs-bodies",
        &[space, jp, eq, eb_hand, sns_hand, removed, tagged],
    )
    .await;
    notify_queue(
        &s3,
        &main,
        &q,
        &["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
        PREFIX,
    )
    .await;
    corpus_s3::upload(&s3, &main, &[uni]).await;
    s3.delete_object().bucket(&main).key(&removed.key).send().await.unwrap();

    // S3 → SNS → SQS.
    let sns_bucket = support::fresh_bucket(&s3, "sqs-bodies-sns").await;
    let topic_name = support::unique("sqs-bodies");
    let answer = sqs::aws_query(
        "sns",
        &[
            ("Action", "CreateTopic"),
            ("Name", &topic_name),
            ("Version", "2010-03-31"),
        ],
    )
    .await;
    let topic = sqs::xml_field(&answer, "TopicArn").to_owned();
    sqs::aws_query(
        "sns",
        &[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "sqs"),
            ("Endpoint", &q.arn),
            ("Version", "2010-03-31"),
        ],
    )
    .await;
    let tc = TopicConfiguration::builder()
        .topic_arn(&topic)
        .events(Event::from("s3:ObjectCreated:*"))
        .build()
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket(&sns_bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .topic_configurations(tc)
                .build(),
        )
        .send()
        .await
        .unwrap();
    corpus_s3::upload(&s3, &sns_bucket, &[plus]).await;

    // S3 → EventBridge → SQS (a rule for this bucket only: moto's rules
    // see every bucket's events).
    let eb_bucket = support::fresh_bucket(&s3, "sqs-bodies-eb").await;
    let rule = support::unique("sqs-bodies");
    let pattern = json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [eb_bucket]}},
    });
    sqs::aws_json(
        "events",
        "AWSEvents.PutRule",
        json!({"Name": rule, "EventPattern": pattern.to_string(), "State": "ENABLED"}),
    )
    .await;
    sqs::aws_json(
        "events",
        "AWSEvents.PutTargets",
        json!({"Rule": rule, "Targets": [{"Id": "queue", "Arn": q.arn}]}),
    )
    .await;
    s3.put_bucket_notification_configuration()
        .bucket(&eb_bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .event_bridge_configuration(
                    EventBridgeConfiguration::builder().build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    corpus_s3::upload(&s3, &eb_bucket, &[pct]).await;
    wait_counts(&sqs_c, &q, DEADLINE, "moto's 6 messages", |v, _| v == 6)
        .await;

    // By hand.
    let bad = [
        "this is not an S3 event".to_owned(),
        r#"{"greeting":"hello","Records?":"no"}"#.to_owned(),
    ];
    let hand = vec![
        created(&main, &space.key, space.size),
        s3_event(vec![
            s3_record(
                &main,
                &form_encode(&jp.key, false),
                "ObjectCreated:Put",
                jp.size,
                None,
            ),
            s3_record(
                &main,
                &form_encode(&eq.key, true),
                "ObjectCreated:Copy",
                eq.size,
                None,
            ),
        ]),
        sqs::eventbridge_created(&main, &eb_hand.key, eb_hand.size),
        sqs::sns_wrap(&created(&main, &sns_hand.key, sns_hand.size), &topic),
        s3_event(vec![s3_record(
            &main,
            &form_encode(&tagged.key, true),
            "ObjectTagging:Put",
            tagged.size,
            None,
        )]),
        bad[0].clone(),
        bad[1].clone(),
    ];
    let ids = sqs::send(&sqs_c, &q, &hand).await;
    wait_counts(&sqs_c, &q, DEADLINE, "all 13 messages", |v, _| v == 13).await;

    let (pg, schema) = support::pg_schema("sqs-bodies").await;
    let out = tempdir().join("bodies");
    let r = run_to_completion(
        &mut sqs_load_cmd(
            unfiltered_spec(),
            &schema,
            &q,
            &endpoint,
            &ONCE,
            &out,
        ),
        &out,
    )
    .await;
    println!("bodies: {}", r.summary);
    assert_eq!(r.code, Some(3), "bad bodies are rejected input");
    assert_messages(&r, [13, 13, 2, 2, 2]);
    assert_eq!(fingerprint(&pg, &schema).await, want.rows, "rows");
    let mut q_kinds = quarantine(&pg, &schema).await;
    assert_eq!(q_kinds.remove("bad_message"), Some(2), "{q_kinds:?}");
    assert_eq!(q_kinds, want.quarantine, "event quarantine");
    let rows = pg
        .query(
            &format!(
                "SELECT key, message, reason FROM \"{schema}\".{QUARANTINE} \
                 WHERE kind = 'bad_message'"
            ),
            &[],
        )
        .await
        .unwrap();
    let mut got: Vec<(String, String)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    got.sort();
    let mut expected: Vec<(String, String)> = ids[5..]
        .iter()
        .zip(&bad)
        .map(|(id, body)| (format!("sqs://{}/{id}", q.name), body.clone()))
        .collect();
    expected.sort();
    assert_eq!(got, expected, "quarantined bodies");
    for r in &rows {
        let reason: String = r.get(2);
        assert!(!reason.is_empty(), "a bad message needs a reason");
    }
    assert_queue_empty(&sqs_c, &q).await;

    // The ledger: each created object once, as `s3://bucket/key`, and
    // nothing else (a message is no object).
    let bucket_of = |o: &Obj| {
        if o.key == plus.key {
            &sns_bucket
        } else if o.key == pct.key {
            &eb_bucket
        } else {
            &main
        }
    };
    let want_ledger: BTreeMap<String, (i64, i64)> = loaded
        .iter()
        .map(|o| {
            (format!("s3://{}/{}", bucket_of(o), o.key), want.ledger[&o.key])
        })
        .collect();
    let mut got_ledger = ledger(&pg, &schema).await;
    // A quarantined body has a ledger row of its own (so a redelivery of
    // it is not quarantined twice), with no rows; it is no object.
    let bodies: Vec<String> = got_ledger
        .keys()
        .filter(|k| k.starts_with("sqs://"))
        .cloned()
        .collect();
    assert_eq!(bodies.len(), 2, "{got_ledger:?}");
    for b in &bodies {
        assert_eq!(got_ledger.remove(b), Some((0, 0)), "{b}");
    }
    assert_eq!(got_ledger, want_ledger, "ledger");
    assert_eq!(r.n("objects_loaded"), 8, "{}", r.summary);

    // So a backfill of the EventBridge bucket knows its object is loaded.
    let args = [
        "--target",
        &support::pg_url(),
        "--schema",
        &schema,
        "--columns",
        unfiltered_spec(),
    ]
    .map(OsString::from);
    let mut args: Vec<OsString> = args.into();
    args.push(s3_url(&eb_bucket, PREFIX));
    let e = sqs::enqueue(&q, &endpoint, &args).await;
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert_eq!(
        e.stdout.lines().collect::<Vec<_>>(),
        ["sent 0 messages (1 already loaded)"],
        "enqueue --target of the EventBridge bucket"
    );
}

/// On a versioned bucket, a notification's `versionId` pins the bytes:
/// the key was overwritten after the notified version was written, and
/// the loader loads the notified version (rows equal the local load of
/// the first content, not the second). The key has a space, `+`, `%`
/// and non-ASCII characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_id_pins_the_notified_bytes() {
    let objs = sqs::small_objects("sqs-version-objects", 2, 0x7E25_0006);
    let (first, second) = (&objs[0], &objs[1]);
    let want =
        local_reference("sqs-version-ref", unfiltered_spec(), &[first]).await;
    let other =
        local_reference("sqs-version-other", unfiltered_spec(), &[second])
            .await;
    assert_ne!(want.rows, other.rows, "two different contents");
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    let bucket = support::fresh_bucket(&s3, "sqs-version").await;
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let key = format!(
        "{PREFIX}2024/05/01/13/ver sion+1 %41 ü-1-2024-05-01-13-00-00-x"
    );
    let mut versions = Vec::new();
    for o in [first, second] {
        let put = s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(std::fs::read(&o.path).unwrap().into())
            .send()
            .await
            .unwrap();
        versions.push(put.version_id().unwrap().to_owned());
    }
    assert_ne!(versions[0], versions[1]);
    let q = sqs::queue(&sqs_c, "sqs-version", None).await;
    let body = s3_event(vec![s3_record(
        &bucket,
        &form_encode(&key, true),
        "ObjectCreated:Put",
        first.size,
        Some(&versions[0]),
    )]);
    sqs::send(&sqs_c, &q, &[body]).await;
    let (pg, schema) = support::pg_schema("sqs-version").await;
    let out = tempdir().join("version");
    let r = run_to_completion(
        &mut sqs_load_cmd(
            unfiltered_spec(),
            &schema,
            &q,
            &endpoint,
            &ONCE,
            &out,
        ),
        &out,
    )
    .await;
    println!("versionId: {}", r.summary);
    assert_messages(&r, [1, 1, 0, 0, 0]);
    assert_eq!(
        fingerprint(&pg, &schema).await,
        want.rows,
        "the notified version"
    );
    let l = ledger(&pg, &schema).await;
    let one = want.ledger.values().next().unwrap();
    assert_eq!(l, BTreeMap::from([(format!("s3://{bucket}/{key}"), *one)]));
    assert_queue_empty(&sqs_c, &q).await;
}

// ---------------------------------------------------------------------------
// 7. enqueue
// ---------------------------------------------------------------------------

/// Rows of `schema`'s quarantine that do not depend on the run:
/// (key, kind, member, event id, offset), sorted.
async fn quarantine_rows(
    c: &Client,
    schema: &str,
) -> Vec<(String, String, Option<i64>, Option<String>, Option<i64>)> {
    let rows = c
        .query(
            &format!(
                "SELECT key, kind, member, event_id, \"offset\" \
                 FROM \"{schema}\".{QUARANTINE}"
            ),
            &[],
        )
        .await
        .unwrap();
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    out.sort();
    out
}

/// `enqueue --from 2024-05-01 --to 2024-05-04` of the three-day S3 corpus
/// sends one S3-event-shaped message per object of those hours (the
/// objects just outside the range are left out), keys form-encoded; two
/// `--once` consumers in parallel then load exactly what the direct
/// backfill (`load --from … --to … s3://…`) of the same range loads:
/// rows, quarantine and ledger. `enqueue --target …` afterwards (with
/// `--columns`, then `--table`) sends nothing: `sent 0 messages (N
/// already loaded)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_backfill_then_two_consumers_equal_the_direct_backfill() {
    let c = corpus();
    let all: Vec<&Obj> = c.objects.iter().collect();
    let in_range: BTreeSet<&str> =
        c.in_hours(0, 72).iter().map(|o| o.key.as_str()).collect();
    assert!(in_range.len() < all.len(), "objects outside the range");
    let n = in_range.len();
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    let bucket = bucket_with(&s3, "sqs-enqueue", &all).await;
    let q = sqs::queue(&sqs_c, "sqs-enqueue", None).await;
    let range: Vec<OsString> = ["--from", "2024-05-01", "--to", "2024-05-04"]
        .map(OsString::from)
        .into();
    let mut args = range.clone();
    args.push(s3_url(&bucket, PREFIX));

    let e = sqs::enqueue(&q, &endpoint, &args).await;
    println!("enqueue: {}{}", e.stdout, e.stderr);
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert_eq!(
        e.stdout.lines().collect::<Vec<_>>(),
        [format!("sent {n} messages (0 already loaded)")],
        "stdout"
    );
    wait_counts(&sqs_c, &q, DEADLINE, "the enqueued messages", |v, _| {
        v == n as u64
    })
    .await;
    for body in sqs::peek(&sqs_c, &q, 10).await {
        let v: Value = serde_json::from_str(&body).unwrap();
        let records = v["Records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{body}");
        let r = &records[0];
        assert!(
            r["eventName"].as_str().unwrap().starts_with("ObjectCreated:"),
            "{body}"
        );
        assert_eq!(r["eventSource"], "aws:s3", "{body}");
        assert_eq!(r["s3"]["bucket"]["name"], bucket.as_str(), "{body}");
        let enc = r["s3"]["object"]["key"].as_str().unwrap();
        assert!(
            enc.is_ascii() && !enc.contains(' '),
            "not form-encoded: {enc}"
        );
        assert!(in_range.contains(form_decode(enc).as_str()), "{enc}");
    }

    let (pg, direct) = support::pg_schema("sqs-enqueue-direct").await;
    let out = tempdir().join("enqueue-direct");
    let mut direct_args = range.clone();
    direct_args.push(OsString::from("--endpoint-url"));
    direct_args.push(OsString::from(&endpoint));
    direct_args.push(s3_url(&bucket, PREFIX));
    let d = run_to_completion(
        &mut sqs::load_cmd(unfiltered_spec(), &direct, &direct_args, &out),
        &out,
    )
    .await;
    println!("direct backfill: {}", d.summary);
    assert_eq!(d.n("objects_loaded"), n as u64, "{}", d.summary);

    let schema = support::fresh_schema(&pg, "sqs-enqueue").await;
    let flags = ["--once", "--wait-seconds", "2", "--batch-objects", "6"];
    let root = tempdir();
    let mut children = Vec::new();
    for i in 0..2 {
        let out = root.join(format!("consumer-{i}"));
        let child = sqs_load_cmd(
            unfiltered_spec(),
            &schema,
            &q,
            &endpoint,
            &flags,
            &out,
        )
        .spawn()
        .unwrap();
        children.push((child, out));
    }
    let mut loaded = 0;
    for (i, (child, out)) in children.into_iter().enumerate() {
        let r = finish(child, &out).await;
        println!("consumer {i}: {}", r.summary);
        assert_completed(&r);
        loaded += r.n("objects_loaded");
    }
    assert_eq!(loaded, n as u64);
    assert_eq!(
        fingerprint(&pg, &schema).await,
        fingerprint(&pg, &direct).await,
        "rows: enqueue + consumers vs the direct backfill"
    );
    assert_eq!(
        quarantine_rows(&pg, &schema).await,
        quarantine_rows(&pg, &direct).await,
        "quarantine"
    );
    assert_eq!(
        ledger(&pg, &schema).await,
        ledger(&pg, &direct).await,
        "ledger"
    );
    assert_queue_empty(&sqs_c, &q).await;

    let target = support::pg_url();
    for table_flags in [["--columns", unfiltered_spec()], ["--table", TABLE]] {
        let mut args: Vec<OsString> =
            ["--target", target.as_str(), "--schema", schema.as_str()]
                .map(OsString::from)
                .into();
        args.extend(table_flags.map(OsString::from));
        args.extend(range.iter().cloned());
        args.push(s3_url(&bucket, PREFIX));
        let e = sqs::enqueue(&q, &endpoint, &args).await;
        assert_eq!(e.code, Some(0), "{table_flags:?}: {}", e.stderr);
        assert_eq!(
            e.stdout.lines().collect::<Vec<_>>(),
            [format!("sent 0 messages ({n} already loaded)")],
            "{table_flags:?}"
        );
        assert_eq!(counts(&sqs_c, &q).await, (0, 0), "{table_flags:?}");
    }
}

// ---------------------------------------------------------------------------
// 8. SIGTERM and SIGINT
// ---------------------------------------------------------------------------

/// Polls until `child` exits, for at most `within`; its exit status, or
/// `None` if it is still running.
async fn exits_within(
    child: &mut tokio::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM, then SIGINT, to a `load --sqs-queue-url` (no `--once`) idle
/// on an empty queue in a 20 s long poll: it exits 0 within 5 s of the
/// signal (well under the long poll), having received nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_or_sigint_while_idle_exits_0_promptly() {
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    for sig in ["TERM", "INT"] {
        let q = sqs::queue(&sqs_c, "sqs-idle", None).await;
        let (pg, schema) = support::pg_schema("sqs-idle").await;
        let out = tempdir().join(format!("idle-{sig}"));
        let flags = ["--wait-seconds", "20"];
        let mut child =
            sqs_load_cmd(SPEC, &schema, &q, &endpoint, &flags, &out)
                .spawn()
                .unwrap();
        // Positioning, not synchronization: start-up is done once the
        // tables exist (at most 10 s); half a second later the loader is
        // inside its first 20 s receive. Whatever it is doing, the check
        // is how fast it exits.
        let started = Instant::now();
        while !sqs::has_table(&pg, &schema, LEDGER).await
            && started.elapsed() < Duration::from_secs(10)
        {
            assert!(
                child.try_wait().unwrap().is_none(),
                "load exited on an empty queue without --once:\n{}",
                std::fs::read_to_string(out.with_extension("log"))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(child.try_wait().unwrap().is_none(), "exited by itself");
        let pid = child.id().unwrap();
        let sent = Instant::now();
        sqs::signal(pid, sig);
        let status = exits_within(&mut child, Duration::from_secs(5)).await;
        let took = sent.elapsed();
        assert!(
            status.is_some(),
            "still running 5 s after SIG{sig} (the long poll is 20 s):\n{}",
            std::fs::read_to_string(out.with_extension("log"))
                .unwrap_or_default()
        );
        let r = finish(child, &out).await;
        println!("SIG{sig} while idle: exit {:?} after {took:?}", r.code);
        assert_eq!(r.code, Some(0), "SIG{sig}: {}\n{}", r.summary, r.stderr);
        if !r.summary.is_null() {
            assert_eq!(r.n("messages_received"), 0, "{}", r.summary);
        }
        assert_queue_empty(&sqs_c, &q).await;
    }
}

/// Signals while batches work, on a queue with a 4 s visibility timeout
/// (no `--once`):
/// 1. SIGTERM while a batch waits on a ledger row another connection
///    holds; the loader gets 2 s to abandon it and exit, then the row is
///    released so that it can finish it instead;
/// 2. SIGINT right after a batch of the run committed (the next one at
///    work), on 30 more notifications.
///
/// Each time: exit 0, only whole batches committed, and every message of
/// a committed object deleted (what is left on the queue, visible or in
/// flight, is exactly the notifications of objects not in the ledger).
/// Then, once nothing is in flight, a final `--once` run: rows equal the
/// local load of every object, each object once in the ledger, the queue
/// empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_during_batches_commit_whole_batches_then_a_drain_is_exact() {
    let objs = sqs::small_objects("sqs-term-objects", 71, 0x7E53_0008);
    let (pre, rest) = objs.split_first().unwrap();
    let (first, second) = rest.split_at(40);
    let all: Vec<&Obj> = objs.iter().collect();
    // The filtered spec: nothing rejected, so exit 0 is unambiguous.
    let want = local_reference("sqs-term-ref", SPEC, &all).await;
    let s3 = support::s3_client().await;
    let sqs_c = support::sqs_client().await;
    let endpoint = support::aws_endpoint();
    let rest_refs: Vec<&Obj> = rest.iter().collect();
    let bucket = bucket_with(&s3, "sqs-term", &rest_refs).await;
    let q = sqs::queue(&sqs_c, "sqs-term", Some(4)).await;
    let (pg, schema) = support::pg_schema("sqs-term").await;
    let root = tempdir();
    let out = root.join("pre");
    let inputs = [pre.path.clone().into_os_string()];
    run_to_completion(&mut sqs::load_cmd(SPEC, &schema, &inputs, &out), &out)
        .await;
    let target = sqs::ledger_target(&pg, &schema).await;
    let flags = ["--wait-seconds", "2", "--batch-objects", "3"];

    // What is left on the queue must be exactly the notifications of the
    // objects sent so far that are not in the ledger.
    let check_left = |sent: usize| {
        let (pg, schema, sqs_c, q) = (&pg, &schema, &sqs_c, &q);
        async move {
            let objects = assert_whole_batches(pg, schema).await;
            let loaded = u64::try_from(objects - 1).unwrap();
            let (v, f) = counts(sqs_c, q).await;
            println!(
                "  {loaded} of {sent} loaded; {v} visible, {f} in flight"
            );
            assert_eq!(
                v + f,
                sent as u64 - loaded,
                "messages of committed objects must be deleted before exit"
            );
        }
    };

    // 1. SIGTERM while a batch is blocked.
    let first_refs: Vec<&Obj> = first.iter().collect();
    sqs::send(&sqs_c, &q, &sqs::created_bodies(&bucket, &first_refs)).await;
    let blocked = format!("s3://{bucket}/{}", first[20].key);
    let (blocker, blocker_pid) =
        sqs::block_key(&schema, &target, &blocked).await;
    let out = root.join("term-blocked");
    let mut child = sqs_load_cmd(SPEC, &schema, &q, &endpoint, &flags, &out)
        .spawn()
        .unwrap();
    sqs::wait_blocked(&pg, blocker_pid, &mut child, &out).await;
    sqs::signal(child.id().unwrap(), "TERM");
    let abandoned =
        exits_within(&mut child, Duration::from_secs(2)).await.is_some();
    blocker.batch_execute("ROLLBACK").await.unwrap();
    drop(blocker);
    let r = finish(child, &out).await;
    let in_ledger = ledger(&pg, &schema).await.contains_key(&blocked);
    println!(
        "SIGTERM while blocked: exit {:?}, {} the blocked batch; {}",
        r.code,
        if abandoned {
            "abandoned"
        } else if in_ledger {
            "finished"
        } else {
            "released"
        },
        r.summary
    );
    assert_eq!(r.code, Some(0), "SIGTERM mid-batch: {}", r.stderr);
    check_left(first.len()).await;

    // 2. SIGINT right after a commit.
    let second_refs: Vec<&Obj> = second.iter().collect();
    sqs::send(&sqs_c, &q, &sqs::created_bodies(&bucket, &second_refs)).await;
    let before = ledger_len(&pg, &schema).await;
    let out = root.join("int-working");
    let mut child = sqs_load_cmd(SPEC, &schema, &q, &endpoint, &flags, &out)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    while ledger_len(&pg, &schema).await == before {
        assert!(child.try_wait().unwrap().is_none(), "exited by itself");
        assert!(Instant::now() < deadline, "no batch committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqs::signal(child.id().unwrap(), "INT");
    let r = finish(child, &out).await;
    println!("SIGINT while working: exit {:?}; {}", r.code, r.summary);
    assert_eq!(r.code, Some(0), "SIGINT mid-run: {}", r.stderr);
    check_left(rest.len()).await;

    // 3. A final drain.
    sqs::wait_none_in_flight(&sqs_c, &q).await;
    let out = root.join("final");
    let flags = ["--once", "--wait-seconds", "2", "--batch-objects", "3"];
    let r = run_to_completion(
        &mut sqs_load_cmd(SPEC, &schema, &q, &endpoint, &flags, &out),
        &out,
    )
    .await;
    println!("final: {}", r.summary);
    assert_eq!(fingerprint(&pg, &schema).await, want.rows, "rows");
    let mut expected = want.s3_ledger(&bucket);
    expected.remove(&format!("s3://{bucket}/{}", pre.key));
    let mut got = ledger(&pg, &schema).await;
    got.retain(|k, _| k.starts_with("s3://"));
    assert_eq!(got, expected, "ledger");
    assert_queue_empty(&sqs_c, &q).await;
}

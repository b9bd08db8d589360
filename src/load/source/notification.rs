//! SQS message bodies → the S3 objects they announce. Pure: no I/O.
//!
//! Recognised bodies:
//! - S3 event notifications, `{"Records":[{"eventName":"ObjectCreated:…",
//!   "s3":{"bucket":{"name"},"object":{"key","size","eTag","versionId"}}}]}`
//!   (every record; keys are form-encoded: `+` is a space, then
//!   percent-decoding);
//! - the same wrapped by SNS, `{"Type":"Notification","Message":"<JSON>"}`;
//! - EventBridge `Object Created` events, `{"detail-type":"Object Created",
//!   "source":"aws.s3","detail":{"bucket":{"name"},"object":{"key",…}}}`
//!   (keys as they are, not form-encoded);
//! - `s3:TestEvent`, sent when a notification is configured.
//!
//! `ObjectRemoved:*` and other events are [`Notice::Ignored`]; anything
//! else is [`Notice::Bad`] with a reason, so a consumer quarantines it
//! instead of looping on it.

use serde_json::Value;

use super::prefix::decode_event_key;

/// An object a notification announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Object {
    /// The bucket.
    pub bucket: String,
    /// The key, decoded.
    pub key: String,
    /// The version, on versioned buckets.
    pub version_id: Option<String>,
    /// Its size in bytes, if given.
    pub size: Option<u64>,
    /// Its ETag, if given.
    pub etag: Option<String>,
}

/// What a message body says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Objects were created (one or more records); `ignored` counts the
    /// records of other events in the same body.
    Objects {
        /// The objects, in record order.
        objects: Vec<S3Object>,
        /// Records of other events.
        ignored: usize,
    },
    /// `s3:TestEvent`.
    TestEvent,
    /// An event that creates nothing to load (`ObjectRemoved:Delete`, …),
    /// named.
    Ignored(String),
    /// Not a notification this consumer understands.
    Bad(String),
}

/// Parses one message body. Never fails: what cannot be understood is
/// [`Notice::Bad`] with the reason.
#[must_use]
pub fn parse(body: &str) -> Notice {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Notice::Bad(format!("not JSON: {e}")),
    };
    parse_value(&v, 0)
}

fn parse_value(v: &Value, depth: u32) -> Notice {
    let Some(o) = v.as_object() else {
        return Notice::Bad("not a JSON object".into());
    };
    // SNS without raw message delivery.
    if o.get("Type").and_then(Value::as_str) == Some("Notification") {
        let Some(msg) = o.get("Message").and_then(Value::as_str) else {
            return Notice::Bad("SNS notification without a Message".into());
        };
        if depth > 0 {
            return Notice::Bad("SNS notification inside another".into());
        }
        return match serde_json::from_str::<Value>(msg) {
            Ok(inner) => parse_value(&inner, depth + 1),
            Err(e) => Notice::Bad(format!("SNS Message is not JSON: {e}")),
        };
    }
    if o.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Notice::TestEvent;
    }
    if let Some(records) = o.get("Records") {
        return records_notice(records);
    }
    if o.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return eventbridge(o);
    }
    Notice::Bad(
        "not an S3 event notification (no Records, Event, SNS Message or \
         EventBridge aws.s3 source)"
            .into(),
    )
}

/// Whether the ledger can record an object by `bucket` and `key`: the
/// text of PostgreSQL (and of Redshift) holds no U+0000, so a key with one
/// would fail the batch that records it, on every retry. (S3 keys may hold
/// any UTF-8, control characters included.)
fn recordable(bucket: &str, key: &str) -> Result<(), String> {
    if let Some(at) = key.find('\0') {
        return Err(format!(
            "key holds U+0000 (at byte {at}), which the ledger cannot record \
             (PostgreSQL and Redshift text hold no U+0000)"
        ));
    }
    if bucket.contains('\0') {
        return Err("bucket name holds U+0000".to_owned());
    }
    Ok(())
}

fn records_notice(records: &Value) -> Notice {
    let Some(records) = records.as_array() else {
        return Notice::Bad("Records is not an array".into());
    };
    let mut objects = Vec::new();
    let mut ignored = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
        if !name.starts_with("ObjectCreated:") {
            ignored.push(if name.is_empty() {
                "(no eventName)"
            } else {
                name
            });
            continue;
        }
        let s3 = r.get("s3");
        let bucket = s3
            .and_then(|s| s.get("bucket"))
            .and_then(|b| b.get("name"))
            .and_then(Value::as_str);
        let object = s3.and_then(|s| s.get("object"));
        let key = object.and_then(|o| o.get("key")).and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Notice::Bad(format!(
                "record {i} ({name}) has no s3.bucket.name or s3.object.key"
            ));
        };
        let key = match decode_event_key(key) {
            Ok(k) => k,
            Err(e) => return Notice::Bad(format!("record {i}: key: {e}")),
        };
        if let Err(why) = recordable(bucket, &key) {
            return Notice::Bad(format!("record {i}: {why}"));
        }
        objects.push(S3Object {
            bucket: bucket.to_owned(),
            key,
            version_id: object
                .and_then(|o| o.get("versionId"))
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty() && *v != "null")
                .map(str::to_owned),
            size: object.and_then(|o| o.get("size")).and_then(Value::as_u64),
            etag: object
                .and_then(|o| o.get("eTag"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    if objects.is_empty() {
        return match ignored.first() {
            Some(first) => Notice::Ignored((*first).to_owned()),
            None => Notice::Bad("Records is empty".into()),
        };
    }
    Notice::Objects { objects, ignored: ignored.len() }
}

fn eventbridge(o: &serde_json::Map<String, Value>) -> Notice {
    let kind = o.get("detail-type").and_then(Value::as_str).unwrap_or("");
    if kind != "Object Created" {
        return Notice::Ignored(if kind.is_empty() {
            "(EventBridge event without detail-type)".into()
        } else {
            kind.to_owned()
        });
    }
    let detail = o.get("detail");
    let bucket = detail
        .and_then(|d| d.get("bucket"))
        .and_then(|b| b.get("name"))
        .and_then(Value::as_str);
    let object = detail.and_then(|d| d.get("object"));
    let key = object.and_then(|o| o.get("key")).and_then(Value::as_str);
    let (Some(bucket), Some(key)) = (bucket, key) else {
        return Notice::Bad(
            "EventBridge Object Created without detail.bucket.name or \
             detail.object.key"
                .into(),
        );
    };
    if let Err(why) = recordable(bucket, key) {
        return Notice::Bad(format!("EventBridge Object Created: {why}"));
    }
    Notice::Objects {
        objects: vec![S3Object {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: object
                .and_then(|o| o.get("version-id"))
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty() && *v != "null")
                .map(str::to_owned),
            size: object.and_then(|o| o.get("size")).and_then(Value::as_u64),
            etag: object
                .and_then(|o| o.get("etag"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }],
        ignored: 0,
    }
}

/// An S3 event notification body announcing `objects` (`ObjectCreated:Put`,
/// keys form-encoded as S3 encodes them), as `enqueue` sends it.
#[must_use]
pub fn s3_event_body(region: &str, objects: &[S3Object]) -> String {
    let records: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut object = serde_json::json!({
                "key": super::prefix::encode_event_key(&o.key),
            });
            if let Some(size) = o.size {
                object["size"] = size.into();
            }
            if let Some(etag) = &o.etag {
                object["eTag"] = etag.trim_matches('"').into();
            }
            if let Some(v) = &o.version_id {
                object["versionId"] = v.as_str().into();
            }
            serde_json::json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "cwl-copy-enqueue",
                    "bucket": {
                        "name": o.bucket,
                        "arn": format!("arn:aws:s3:::{}", o.bucket),
                    },
                    "object": object,
                },
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(bucket: &str, key: &str) -> S3Object {
        S3Object {
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
            size: None,
            etag: None,
        }
    }

    macro_rules! notice {
        ($($name:ident: $body:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($body), $want, "{}", $body);
            }
        )*};
    }

    notice! {
        s3_put: r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"app-logs/2024/05/01/13/x%3Ay+z%2B%C3%BC","size":12,"eTag":"e","versionId":"v1","sequencer":"00"}}}]}"#
            => Notice::Objects { objects: vec![S3Object {
                bucket: "b".into(), key: "app-logs/2024/05/01/13/x:y z+ü".into(),
                version_id: Some("v1".into()), size: Some(12), etag: Some("e".into()) }],
                ignored: 0 };
        two_records_and_a_removal: r#"{"Records":[
            {"eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"b"},"object":{"key":"a"}}},
            {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"a"}}},
            {"eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"c"},"object":{"key":"d+e"}}}]}"#
            => Notice::Objects { objects: vec![obj("b", "a"), obj("c", "d e")], ignored: 1 };
        removal_only: r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"a"}}}]}"#
            => Notice::Ignored("ObjectRemoved:Delete".into());
        test_event: r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-05-01T13:05:07.123Z","Bucket":"b","RequestId":"r","HostId":"h"}"#
            => Notice::TestEvent;
        sns_wrapped: r#"{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"{\"Records\":[{\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k%20k\"}}}]}"}"#
            => Notice::Objects { objects: vec![obj("b", "k k")], ignored: 0 };
        sns_test_event: r#"{"Type":"Notification","Message":"{\"Event\":\"s3:TestEvent\"}"}"#
            => Notice::TestEvent;
        eventbridge: r#"{"version":"0","detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"a b+c","size":5,"etag":"e"}}}"#
            => Notice::Objects { objects: vec![S3Object { bucket: "b".into(), key: "a b+c".into(),
                version_id: None, size: Some(5), etag: Some("e".into()) }], ignored: 0 };
        eventbridge_deleted: r#"{"detail-type":"Object Deleted","source":"aws.s3","detail":{}}"#
            => Notice::Ignored("Object Deleted".into());
        not_json: "hello" => Notice::Bad("not JSON: expected value at line 1 column 1".into());
        not_object: "[1,2]" => Notice::Bad("not a JSON object".into());
        unknown: r#"{"hello":"world"}"# => Notice::Bad("not an S3 event notification (no Records, Event, SNS Message or EventBridge aws.s3 source)".into());
        records_not_array: r#"{"Records":{}}"# => Notice::Bad("Records is not an array".into());
        empty_records: r#"{"Records":[]}"# => Notice::Bad("Records is empty".into());
        no_key: r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}"#
            => Notice::Bad("record 0 (ObjectCreated:Put) has no s3.bucket.name or s3.object.key".into());
        nul_in_key: r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%00b"}}}]}"#
            => Notice::Bad("record 0: key holds U+0000 (at byte 1), which the ledger cannot record (PostgreSQL and Redshift text hold no U+0000)".into());
        nul_in_eventbridge_key: r#"{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"ab\u0000"}}}"#
            => Notice::Bad("EventBridge Object Created: key holds U+0000 (at byte 2), which the ledger cannot record (PostgreSQL and Redshift text hold no U+0000)".into());
    }

    #[test]
    fn bad_escapes_are_bad_not_panics() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%ZZ"}}}]}"#;
        assert!(
            matches!(parse(body), Notice::Bad(r) if r.starts_with("record 0: key:"))
        );
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%FF"}}}]}"#;
        assert!(matches!(parse(body), Notice::Bad(_)));
    }

    #[test]
    fn enqueue_bodies_round_trip() {
        let objects = vec![
            S3Object {
                size: Some(3),
                etag: Some("\"e\"".into()),
                ..obj("b", "a b+c%d/ü 日本")
            },
            obj("b", "plain"),
        ];
        let body = s3_event_body("us-east-1", &objects);
        assert!(
            body.contains("a+b%2Bc%25d/%C3%BC+%E6%97%A5%E6%9C%AC"),
            "{body}"
        );
        let mut want = objects.clone();
        want[0].etag = Some("e".into());
        assert_eq!(
            parse(&body),
            Notice::Objects { objects: want, ignored: 0 }
        );
    }
}

//! Smoke tests for the services `./test.sh` provisions: if these fail, the
//! environment is broken, not the loader.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use crate::support;

#[tokio::test]
async fn postgres_is_15_or_later() {
    let _shared = support::SERVER_LOCK.read().await;
    let client = support::pg_client().await;
    let row = client.query_one("SHOW server_version_num", &[]).await.unwrap();
    let version: i32 = row.get::<_, String>(0).parse().unwrap();
    assert!(version >= 150_000, "server_version_num = {version}");
}

#[tokio::test]
async fn postgres_schemas_isolate_tests() {
    let _shared = support::SERVER_LOCK.read().await;
    let (a, schema_a) = support::pg_schema("isolate").await;
    let (b, schema_b) = support::pg_schema("isolate").await;
    assert_ne!(schema_a, schema_b);
    for c in [&a, &b] {
        c.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
            .await
            .unwrap();
    }
    let n: i64 =
        a.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn s3_round_trips_awkward_keys() {
    let s3 = support::s3_client().await;
    let bucket = support::fresh_bucket(&s3, "smoke").await;
    let key = "logs/2024/01/02/with space+plus=eq&amp;%25pct ü #hash?q.gz";
    let body = b"\x1f\x8b not really gzip \x00\xff".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();

    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<_> =
        listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [key]);

    let got = s3.get_object().bucket(&bucket).key(key).send().await.unwrap();
    assert_eq!(got.content_length(), Some(body.len() as i64));
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], &body[..]);
}

#[tokio::test]
async fn sqs_send_receive_delete() {
    let sqs = support::sqs_client().await;
    let queue = support::fresh_queue(&sqs, "smoke").await;
    let body = r#"{"Records":[{"s3":{"object":{"key":"a+b%20c"}}}]}"#;
    sqs.send_message()
        .queue_url(&queue)
        .message_body(body)
        .send()
        .await
        .unwrap();

    // Poll until a deadline rather than sleeping a fixed time.
    let deadline = Instant::now() + Duration::from_secs(20);
    let msg = loop {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(m) = out.messages().first() {
            break m.clone();
        }
        assert!(Instant::now() < deadline, "no message before deadline");
    };
    assert_eq!(msg.body(), Some(body));
    sqs.delete_message()
        .queue_url(&queue)
        .receipt_handle(msg.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();

    // Deleted, not merely invisible.
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attr =
        |name| attrs.attributes().and_then(|a| a.get(&name)).cloned().unwrap();
    use aws_sdk_sqs::types::QueueAttributeName as A;
    assert_eq!(attr(A::ApproximateNumberOfMessages), "0");
    assert_eq!(attr(A::ApproximateNumberOfMessagesNotVisible), "0");
}

//! S3 as a source: ListObjectsV2 (one pagination per prefix, hour
//! prefixes listed concurrently) and GetObject (whole object, restarted
//! from its first byte when the connection breaks mid-body).
//!
//! Credentials, region and endpoints come from aws-config's standard chain
//! (environment, profile, SSO, web identity, instance metadata). Endpoints
//! follow the SDK's conventions: `AWS_ENDPOINT_URL`, the service-specific
//! `AWS_ENDPOINT_URL_S3`, or [`S3Options::endpoint_url`]
//! (`--endpoint-url`); with any of them, path-style addressing is used.
//! Throttling and transient network errors are retried by the SDK's
//! standard retry strategy. Nothing here logs or returns a secret: errors
//! carry the service's error code and message, the bucket and the key.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use futures_util::{StreamExt as _, TryStreamExt as _};

use super::prefix::{self, PrefixTemplate};
use super::{s3_ledger_key, Fetched, Location, ObjectRef, SourceError};

/// Attempts at reading one object's body (the first included): a
/// connection lost mid-body restarts the object from its first byte.
const BODY_ATTEMPTS: u32 = 4;

/// Hour prefixes listed at once.
const LIST_CONCURRENCY: usize = 8;

/// How to reach S3.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// An endpoint for every AWS service (`--endpoint-url`), e.g. an S3
    /// emulator; `None`: the SDK's resolution (`AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL`, then AWS's own endpoints).
    pub endpoint_url: Option<String>,
}

impl S3Options {
    /// Whether an endpoint other than AWS's own is configured, by flag or
    /// environment: such endpoints (emulators, MinIO, VPC endpoints by
    /// URL) want path-style addressing.
    #[must_use]
    pub fn custom_endpoint(&self) -> bool {
        self.endpoint_url.is_some()
            || ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .iter()
                .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
    }
}

/// An S3 client, cheap to clone.
#[derive(Clone, Debug)]
pub struct S3 {
    client: aws_sdk_s3::Client,
}

/// One listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag.
    pub etag: Option<String>,
}

/// Loads the SDK configuration from the standard chain, with `endpoint`
/// for every service when given, and `us-east-1` when no region is
/// configured anywhere.
pub async fn sdk_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    let conf = loader.load().await;
    if conf.region().is_some() {
        return conf;
    }
    conf.into_builder().region(Region::new("us-east-1")).build()
}

impl S3 {
    /// A client from the standard chain and `options`.
    pub async fn connect(options: &S3Options) -> S3 {
        let conf = sdk_config(options.endpoint_url.as_deref()).await;
        let s3 = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(options.custom_endpoint())
            .build();
        S3 { client: aws_sdk_s3::Client::from_conf(s3) }
    }

    /// Wraps a configured client.
    #[must_use]
    pub fn from_client(client: aws_sdk_s3::Client) -> S3 {
        S3 { client }
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Writes `body` to `s3://bucket/key`: one PutObject up to
    /// `part_bytes`, a multipart upload of `part_bytes` parts beyond (S3
    /// takes parts of 5 MiB to 5 GiB, at most 10,000 of them; the part
    /// size grows if `body` needs more). A failed multipart upload is
    /// aborted, so no parts are left to pay for.
    ///
    /// # Errors
    ///
    /// The service's error, described once (code and message).
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: bytes::Bytes,
        part_bytes: usize,
    ) -> Result<(), String> {
        use aws_sdk_s3::primitives::ByteStream;
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        const MIN_PART: usize = 5 << 20;
        const MAX_PARTS: usize = 10_000;
        let part =
            part_bytes.max(MIN_PART).max(body.len().div_ceil(MAX_PARTS));
        if body.len() <= part {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| describe(&e))?;
            return Ok(());
        }
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let Some(id) = upload.upload_id() else {
            return Err("CreateMultipartUpload returned no upload id".into());
        };
        let parts = async {
            let mut done = Vec::new();
            let mut at = 0;
            while at < body.len() {
                let end = at.saturating_add(part).min(body.len());
                let n = i32::try_from(done.len() + 1)
                    .map_err(|e| e.to_string())?;
                let r = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(n)
                    .body(ByteStream::from(body.slice(at..end)))
                    .send()
                    .await
                    .map_err(|e| describe(&e))?;
                done.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(r.e_tag().map(str::to_owned))
                        .build(),
                );
                at = end;
            }
            self.client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(done))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| describe(&e))?;
            Ok::<(), String>(())
        }
        .await;
        if parts.is_err() {
            if let Err(e) = self
                .client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
            {
                tracing::warn!(
                    bucket, key, error = %describe(&e),
                    "multipart upload not aborted (a lifecycle rule \
                     AbortIncompleteMultipartUpload removes its parts)"
                );
            }
        }
        parts
    }

    /// Every object under `prefix`, in key order (one ListObjectsV2
    /// pagination). Keys ending in `/` with no bytes (the console's
    /// "folders") are left out.
    ///
    /// # Errors
    ///
    /// [`SourceError::S3`] naming the bucket and prefix (a missing bucket,
    /// access denied, bad credentials, or retries exhausted).
    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<Listed>, SourceError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| SourceError::S3 {
                op: "ListObjectsV2",
                bucket: bucket.to_owned(),
                key: prefix.to_owned(),
                message: describe(&e),
            })?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                let size = o.size().and_then(|s| u64::try_from(s).ok());
                if key.ends_with('/') && size == Some(0) {
                    continue;
                }
                out.push(Listed {
                    key: key.to_owned(),
                    size: size.unwrap_or(0),
                    etag: o.e_tag().map(str::to_owned),
                });
            }
        }
        Ok(out)
    }

    /// Lists an S3 INPUT as object references: everything under `prefix`,
    /// or with `hours`, only the objects of those Firehose hour prefixes
    /// (each listed by its own pagination, eight at once),
    /// in key order.
    ///
    /// # Errors
    ///
    /// As [`S3::list`].
    pub async fn list_refs(
        &self,
        bucket: &str,
        prefix: &str,
        hours: Option<Vec<String>>,
    ) -> Result<Vec<ObjectRef>, SourceError> {
        let listed = match hours {
            None => self.list(bucket, prefix).await?,
            Some(prefixes) => {
                let pages: Vec<Vec<Listed>> =
                    futures_util::stream::iter(prefixes)
                        .map(|p| async move { self.list(bucket, &p).await })
                        .buffered(LIST_CONCURRENCY)
                        .try_collect()
                        .await?;
                let mut all: Vec<Listed> =
                    pages.into_iter().flatten().collect();
                all.sort_by(|a, b| a.key.cmp(&b.key));
                all.dedup_by(|a, b| a.key == b.key);
                all
            }
        };
        Ok(listed
            .into_iter()
            .map(|o| {
                let name = s3_ledger_key(bucket, &o.key, None);
                let rel = o.key.strip_prefix(prefix).unwrap_or(&o.key);
                let rel = if rel.is_empty() {
                    o.key.rsplit('/').next().unwrap_or(&o.key)
                } else {
                    rel.trim_start_matches('/')
                };
                ObjectRef {
                    ledger_key: name.clone(),
                    name,
                    relative: rel.into(),
                    location: Location::S3 {
                        bucket: bucket.to_owned(),
                        key: o.key,
                        version_id: None,
                    },
                    size: Some(o.size),
                    etag: o.etag,
                }
            })
            .collect())
    }

    /// Reads a whole object. A key that no longer exists is
    /// [`Fetched::Vanished`], not an error.
    ///
    /// # Errors
    ///
    /// [`SourceError::S3`] naming the bucket and key;
    /// [`SourceError::TooLarge`] for an object over `limit` bytes.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        limit: u64,
    ) -> Result<Fetched, SourceError> {
        let err = |message: String| SourceError::S3 {
            op: "GetObject",
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message,
        };
        let mut attempt = 1;
        loop {
            let resp = match self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version_id.map(str::to_owned))
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    let gone = e
                        .as_service_error()
                        .is_some_and(|s| s.is_no_such_key())
                        || e.raw_response()
                            .is_some_and(|r| r.status().as_u16() == 404);
                    if gone {
                        return Ok(Fetched::Vanished);
                    }
                    return Err(err(describe(&e)));
                }
            };
            if let Some(len) =
                resp.content_length().and_then(|n| u64::try_from(n).ok())
            {
                if len > limit {
                    return Err(SourceError::TooLarge {
                        name: s3_ledger_key(bucket, key, version_id),
                        size: len,
                        limit,
                    });
                }
            }
            match resp.body.collect().await {
                Ok(data) => return Ok(Fetched::Data(data.into_bytes())),
                Err(e) if attempt < BODY_ATTEMPTS => {
                    tracing::debug!(
                        bucket,
                        key,
                        attempt,
                        error = %DisplayErrorContext(&e),
                        "object body interrupted; reading it again"
                    );
                    attempt += 1;
                    let backoff = 100u64 << attempt.min(6);
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                }
                Err(e) => {
                    return Err(err(format!(
                        "reading the body failed {BODY_ATTEMPTS} times: {}",
                        DisplayErrorContext(&e)
                    )))
                }
            }
        }
    }
}

/// The hour prefixes of a Firehose INPUT prefix for `range`, with
/// `template` or the default `prefix/YYYY/MM/dd/HH/`.
///
/// # Errors
///
/// [`SourceError::Usage`] when the template does not start with the
/// INPUT's prefix.
pub fn hour_prefixes(
    input_prefix: &str,
    template: Option<&PrefixTemplate>,
    range: prefix::HourRange,
) -> Result<Vec<String>, SourceError> {
    let default;
    let template = match template {
        Some(t) => {
            if !t.static_prefix().starts_with(input_prefix) {
                return Err(SourceError::Usage(format!(
                    "--prefix-template {:?} is not under the input's prefix \
                     {input_prefix:?}: give the template as the Firehose \
                     prefix setting, whole, and the input as its bucket \
                     (and any part of its static prefix)",
                    t.static_prefix()
                )));
            }
            t
        }
        None => {
            default = PrefixTemplate::firehose_default(input_prefix);
            &default
        }
    };
    Ok(prefix::hour_prefixes(template, range.start(), range.end()).collect())
}

/// The service's error code and message (`NoSuchBucket: The specified
/// bucket does not exist`), or the transport's error with its causes, for
/// any AWS SDK error (S3, SQS: the SDKs share the error types).
pub(crate) fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error().map(|s| (s.code(), s.message())) {
        Some((Some(c), Some(m))) => format!("{c}: {m}"),
        Some((Some(c), None)) => c.to_owned(),
        Some((None, Some(m))) => m.to_owned(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

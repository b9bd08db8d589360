//! The test suite's Redshift stand-in (`tests/support/redshift.rs`) as a
//! server of its own, for the bench harness: the Data API on one port,
//! the PostgreSQL wire protocol on another, executing on the PostgreSQL
//! at `CWL_TEST_PG_URL` and reading staged parts from the S3 emulator at
//! `CWL_TEST_AWS_ENDPOINT`.
//!
//! ```sh
//! CWL_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//! CWL_TEST_AWS_ENDPOINT=http://127.0.0.1:5000 \
//! cargo run --release --example redshift_standin -- [--slices N]
//! ```
//!
//! Prints `data_api=http://127.0.0.1:PORT wire=PORT` once it serves, then
//! runs until SIGTERM or SIGINT.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// What the stand-in needs of the tests' `support` module (its `super`).

/// `CWL_TEST_PG_URL`.
fn pg_url() -> String {
    std::env::var("CWL_TEST_PG_URL").expect("CWL_TEST_PG_URL is not set")
}

/// An S3 client for `CWL_TEST_AWS_ENDPOINT`, path-style.
async fn s3_client() -> aws_sdk_s3::Client {
    let endpoint = std::env::var("CWL_TEST_AWS_ENDPOINT")
        .expect("CWL_TEST_AWS_ENDPOINT is not set");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

#[allow(dead_code)] // the tests use more of it than the server does
#[path = "../tests/support/redshift.rs"]
mod redshift;

#[tokio::main]
async fn main() {
    let mut opts = redshift::StandInOptions::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [flag, n] if flag == "--slices" => {
            opts.slices = n.parse().expect("--slices N");
        }
        _ => panic!("usage: redshift_standin [--slices N]"),
    }
    let stand = redshift::RedshiftStandIn::start_with(opts).await;
    println!(
        "data_api={} wire={}",
        stand.data_api_endpoint(),
        stand.wire_port()
    );
    let mut term = tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::terminate(),
    )
    .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(stand);
}

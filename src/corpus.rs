//! A deterministic synthetic corpus of Firehose objects, for benchmarks
//! and the bench harness (its messages carry the fields of
//! `testdata/specs/integrated_user_log.toml`): realistic API-server JSON log lines (unicode,
//! escapes, nested objects, some plain-text lines, some control messages).

use std::io::Write;

/// A small, fast, seeded PRNG (xorshift64*): the corpus must be the same
/// on every machine and every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const PATHS: [&str; 6] = [
    "/api/v1/items",
    "/api/v1/users/me",
    "/api/v1/orders",
    "/api/v1/検索",
    "/health",
    "/api/v2/reports/export",
];
const MSGS: [&str; 6] = [
    "request completed",
    "cache miss; falling back to \"primary\" store",
    "ユーザーがログインしました 🎉",
    "slow query: SELECT * FROM t WHERE a = 'x\\y'",
    "retrying after error\nstack: at handler (app.js:10:5)",
    "ok",
];

/// Appends one realistic log message (usually JSON) to `out`.
pub fn message(rng: &mut Rng, ts: i64, out: &mut String) {
    use std::fmt::Write as _;
    let n = rng.below(100);
    if n < 3 {
        let _ = write!(
            out,
            "plain text line {n}: GET /health 200 {}",
            rng.below(1000)
        );
        return;
    }
    let log_name = if n < 90 { "specific-log" } else { "other-log" };
    let level = ["info", "info", "info", "warn", "error", "debug"]
        [rng.below(6) as usize];
    let path = PATHS[rng.below(6) as usize];
    let msg = MSGS[rng.below(6) as usize];
    let _ = write!(
        out,
        r#"{{"level":"{level}","time":{ts},"context":{{"log_name":"{log_name}","request_id":"{:016x}","user_id":"u-{}","tenant":{{"id":{},"plan":"{}"}}}},"method":"{}","path":"{path}","status":{},"latency_ms":{}.{:02},"http":{{"bytes":{}}},"msg":{},"tags":["api","v1","{}"]}}"#,
        rng.next_u64(),
        rng.below(100_000),
        rng.below(500),
        ["free", "pro", "enterprise"][rng.below(3) as usize],
        ["GET", "POST", "PUT", "DELETE"][rng.below(4) as usize],
        [200, 200, 200, 201, 204, 304, 400, 404, 500][rng.below(9) as usize],
        rng.below(2000),
        rng.below(100),
        rng.below(1 << 20),
        serde_json::Value::String(msg.into()),
        rng.below(10),
    );
}

/// One envelope of about `target` bytes of JSON.
pub fn envelope(rng: &mut Rng, ts: &mut i64, target: usize) -> Vec<u8> {
    let mut msg = String::new();
    let mut out = String::with_capacity(target + 4096);
    out.push_str(r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/ecs/api-server","logStream":"ecs/api/"#);
    out.push_str(&format!("{:08x}", rng.below(1 << 32)));
    out.push_str(
        r#"","subscriptionFilters":["specific-log-filter"],"logEvents":["#,
    );
    let mut first = true;
    while out.len() < target {
        msg.clear();
        message(rng, *ts, &mut msg);
        if !first {
            out.push(',');
        }
        first = false;
        let id: String =
            (0..56).map(|_| char::from(b'0' + rng.below(10) as u8)).collect();
        out.push_str(&format!(
            r#"{{"id":"{id}","timestamp":{},"message":{}}}"#,
            *ts,
            serde_json::Value::String(msg.clone())
        ));
        *ts += i64::try_from(rng.below(50)).unwrap_or(0);
    }
    out.push_str("]}");
    out.into_bytes()
}

/// One Firehose object: `members` gzip members of about `member_bytes`
/// inflated each, the first a control message when `control` is set.
/// Returns the object and its inflated size.
pub fn object(
    rng: &mut Rng,
    ts: &mut i64,
    members: usize,
    member_bytes: usize,
    control: bool,
) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut inflated = 0u64;
    let mut add = |doc: &[u8], out: &mut Vec<u8>| {
        let mut e = flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::new(6),
        );
        let _ = e.write_all(doc);
        if let Ok(z) = e.finish() {
            out.extend_from_slice(&z);
        }
        inflated += doc.len() as u64;
    };
    if control {
        add(br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1680683189085,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#, &mut out);
    }
    for _ in 0..members {
        let env = envelope(rng, ts, member_bytes);
        add(&env, &mut out);
    }
    (out, inflated)
}

//! The S3 test corpus: three days of hourly Firehose prefixes
//! (`app-logs/from_CloudWatchLogs/2024/05/01/00/` …
//! `2024/05/03/23/`), one or two generated objects per hour in every
//! Firehose layout, the fixtures of `testdata/firehose/` and
//! `testdata/bad/` spread over the hours, and one object just outside
//! each end of the range (`2024/04/30/23/`, `2024/05/04/00/`), so that a
//! range's exclusive end and its start are both checked.
//!
//! Keys look like Firehose's (`<stream>-<version>-<YYYY-MM-DD-HH-mm-ss>-
//! <uuid>[.gz]`, no extension on raw CWL objects) with awkward stream
//! names: spaces, `+`, `%`, `=`, `&`, `ü`, `日本`.
//!
//! The corpus is written once per test process to a temp dir with the
//! same relative layout as in the bucket (`<root>/<key>`), and each test
//! uploads it (or a part of it) to a bucket of its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cwl_copy::corpus::{self, Rng};
use futures_util::StreamExt;

/// The static prefix of every key (Firehose's configured prefix).
pub const PREFIX: &str = "app-logs/from_CloudWatchLogs/";

/// 2024-05-01T00:00:00Z in milliseconds: hour 0 of the corpus.
const HOUR0_MS: i64 = 1_714_521_600_000;

/// Stream names: the plain one comes up most, so that plain ASCII keys
/// exist in every part of the corpus.
const STREAMS: [&str; 8] = [
    "cwl-stream",
    "cwl stream with spaces",
    "cwl+plus+stream",
    "cwl%2Bpercent%20stream",
    "strüm-ünïcode",
    "日本-logs",
    "cwl=eq&amp-stream",
    "cwl-stream",
];

/// One object of the corpus.
#[derive(Clone, Debug)]
pub struct Obj {
    /// Key in the bucket (and path under [`Corpus::root`]).
    pub key: String,
    /// The local copy.
    pub path: PathBuf,
    /// Firehose hour of its prefix, counted from 2024-05-01T00 (so -1 is
    /// 2024-04-30T23 and 72 is 2024-05-04T00).
    pub hour: i32,
    /// How it was made: a generated layout or `fixture:<testdata path>`.
    pub variant: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is one of `testdata/bad/`.
    pub bad: bool,
}

/// The whole corpus, in key order (the order S3 lists and a directory
/// walk visits).
#[derive(Debug)]
pub struct Corpus {
    /// `<root>/<key>` is each object's local copy; `<root>/` + [`PREFIX`]
    /// is the local twin of `s3://bucket/` + [`PREFIX`].
    pub root: PathBuf,
    /// Every object, sorted by key.
    pub objects: Vec<Obj>,
}

impl Corpus {
    /// The local directory that holds what `s3://bucket/<PREFIX>` holds.
    pub fn local_prefix(&self) -> PathBuf {
        self.root.join(PREFIX.trim_end_matches('/'))
    }

    /// The local directory of one hour (`<root>/<PREFIX>YYYY/MM/DD/HH`).
    pub fn local_hour(&self, hour: i32) -> PathBuf {
        self.root.join(format!("{PREFIX}{}", hour_prefix(hour)))
    }

    /// Objects whose hour is in `from..to`.
    pub fn in_hours(&self, from: i32, to: i32) -> Vec<&Obj> {
        self.objects.iter().filter(|o| (from..to).contains(&o.hour)).collect()
    }

    /// Total size in bytes of `objs`.
    pub fn bytes(objs: &[&Obj]) -> u64 {
        objs.iter().map(|o| o.size).sum()
    }

    /// The first object (in key order) matching `pred`; panics if none.
    pub fn find(&self, what: &str, pred: impl Fn(&Obj) -> bool) -> &Obj {
        self.objects
            .iter()
            .find(|o| pred(o))
            .unwrap_or_else(|| panic!("no {what} in the corpus"))
    }
}

/// `YYYY/MM/DD/HH/` of an hour counted from 2024-05-01T00 (-1 ..= 72).
pub fn hour_prefix(hour: i32) -> String {
    let (m, d, h) = if hour < 0 {
        (4, 30, 24 + hour)
    } else {
        (5, 1 + hour / 24, hour % 24)
    };
    format!("2024/{m:02}/{d:02}/{h:02}/")
}

/// The corpus, written on first use.
pub fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(build)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `n` envelopes of about `bytes` each.
fn envelopes(rng: &mut Rng, ts: &mut i64, n: usize, bytes: usize) -> Vec<u8> {
    (0..n).flat_map(|_| corpus::envelope(rng, ts, bytes)).collect()
}

/// One generated object of layout `variant` (index into [`VARIANTS`]):
/// its bytes and the key extension Firehose would give it.
fn generated(rng: &mut Rng, ts: &mut i64, variant: usize) -> Vec<u8> {
    let members = 1 + rng.below(3) as usize;
    let bytes = 1_500 + rng.below(3_000) as usize;
    match VARIANTS[variant] {
        "multi-member" => {
            let control = rng.below(4) == 0;
            corpus::object(rng, ts, members, bytes, control).0
        }
        "gzip-over-gzip" => {
            gzip(&corpus::object(rng, ts, members, bytes, false).0)
        }
        "members-newline" => (0..members)
            .flat_map(|_| {
                let mut m = gzip(&corpus::envelope(rng, ts, bytes));
                m.push(b'\n');
                m
            })
            .collect(),
        "decompressed-concatenated" => envelopes(rng, ts, members, bytes),
        "decompressed-ndjson" => (0..members)
            .flat_map(|_| {
                let mut e = corpus::envelope(rng, ts, bytes);
                e.push(b'\n');
                e
            })
            .collect(),
        v @ ("extracted-lines" | "extracted-lines-gzip") => {
            let mut text = String::new();
            // The first line JSON, as a real stream's mostly are.
            while text.len() < members * bytes || text.is_empty() {
                let start = text.len();
                corpus::message(rng, *ts, &mut text);
                if start == 0 && !text.starts_with('{') {
                    text.clear();
                    continue;
                }
                // Extraction delivers a message's newlines as they are:
                // keep one message per line.
                let line = text[start..].replace('\n', " ");
                text.truncate(start);
                text.push_str(&line);
                text.push('\n');
                *ts += 7;
            }
            if v == "extracted-lines" {
                text.into_bytes()
            } else {
                gzip(text.as_bytes())
            }
        }
        other => unreachable!("variant {other}"),
    }
}

/// The generated layouts (FORMAT.md b, "Input variants").
const VARIANTS: [&str; 7] = [
    "multi-member",
    "gzip-over-gzip",
    "members-newline",
    "decompressed-concatenated",
    "decompressed-ndjson",
    "extracted-lines",
    "extracted-lines-gzip",
];

fn ext(variant: &str) -> &'static str {
    if variant.ends_with(".gz")
        || matches!(variant, "gzip-over-gzip" | "extracted-lines-gzip")
    {
        ".gz"
    } else {
        ""
    }
}

/// A Firehose key in `hour`: `<PREFIX>YYYY/MM/DD/HH/<stream>-1-YYYY-MM-
/// DD-HH-mm-ss-<uuid>[-<tag>]<ext>`.
fn key(rng: &mut Rng, hour: i32, n: usize, tag: &str, ext: &str) -> String {
    let prefix = hour_prefix(hour);
    let stamp = prefix.trim_end_matches('/').replace('/', "-");
    let stream = STREAMS[n % STREAMS.len()];
    let (mm, ss) = (rng.below(60), rng.below(60));
    let u = rng.next_u64();
    let v = rng.next_u64();
    let uuid = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u >> 32,
        (u >> 16) & 0xffff,
        u & 0xffff,
        v >> 48,
        v & 0xffff_ffff_ffff
    );
    let tag = if tag.is_empty() { String::new() } else { format!("-{tag}") };
    format!(
        "{PREFIX}{prefix}{stream}-1-{stamp}-{mm:02}-{ss:02}-{uuid}{tag}{ext}"
    )
}

fn build() -> Corpus {
    // Canonical, so a local run names objects by the same path whether
    // or not it canonicalizes.
    let root =
        crate::decode::tempdir().canonicalize().unwrap().join("s3-corpus");
    let mut rng = Rng::new(0x53C0_4B05);
    // (hour, variant, bytes, bad)
    let mut made: Vec<(i32, String, Vec<u8>, bool)> = Vec::new();
    let mut n = 0usize;
    for hour in -1..=72 {
        let count = if (0..72).contains(&hour) { 1 + rng.below(2) } else { 1 };
        for _ in 0..count {
            let variant = n % VARIANTS.len();
            let mut ts = HOUR0_MS
                + i64::from(hour) * 3_600_000
                + rng.below(3_000_000) as i64;
            let data = generated(&mut rng, &mut ts, variant);
            made.push((hour, VARIANTS[variant].to_owned(), data, false));
            n += 1;
        }
    }
    // The shipped fixtures: every layout as generate.py (an independent
    // encoder) writes it, and every kind of bad object.
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut i = 0;
    for kind in ["firehose", "bad"] {
        let mut names: Vec<String> = std::fs::read_dir(testdata.join(kind))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let data = std::fs::read(testdata.join(kind).join(&name)).unwrap();
            let hour = (i * 7 + 3) % 72;
            made.push((
                hour,
                format!("fixture:{kind}/{name}"),
                data,
                kind == "bad",
            ));
            i += 1;
        }
    }
    let mut objects: Vec<Obj> = made
        .into_iter()
        .enumerate()
        .map(|(n, (hour, variant, data, bad))| {
            let (tag, e) = match variant.strip_prefix("fixture:") {
                Some(f) => {
                    let name = f.rsplit('/').next().unwrap();
                    (name.trim_end_matches(".gz").to_owned(), ext(name))
                }
                None => (String::new(), ext(&variant)),
            };
            let key = key(&mut rng, hour, n, &tag, e);
            let path = root.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &data).unwrap();
            Obj { key, path, hour, variant, size: data.len() as u64, bad }
        })
        .collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    for w in objects.windows(2) {
        assert_ne!(w[0].key, w[1].key, "duplicate key");
    }
    Corpus { root, objects }
}

/// Uploads `objs` to `bucket` (eight at a time).
pub async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, objs: &[&Obj]) {
    futures_util::stream::iter(objs.iter().copied())
        .for_each_concurrent(8, |o| async move {
            let body = std::fs::read(&o.path).unwrap();
            s3.put_object()
                .bucket(bucket)
                .key(&o.key)
                .body(body.into())
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("put s3://{bucket}/{}: {e:?}", o.key)
                });
        })
        .await;
}

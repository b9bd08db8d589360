//! What a new user reads (issue #15): the README's first command, the
//! summaries, the first rejects and decode errors with where the rest are,
//! the variant said when nothing looked like Firehose, warnings, help, and
//! errors that say their cause once. Checked as text.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use regex::Regex;

use crate::decode::{bin, tempdir};
use crate::support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary, run from the repository root (so that `testdata/…` inputs
/// are named as given), with no libpq or logging variables inherited.
fn cmd() -> Command {
    let mut c = bin();
    c.current_dir(root());
    for var in [
        "CWL_COPY_LOG",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGSSLMODE",
        "PGCONNECT_TIMEOUT",
    ] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null());
    c
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn ran(out: Output) -> Ran {
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(c: &mut Command) -> Ran {
    ran(c.output().unwrap())
}

async fn run_async(c: Command) -> Ran {
    let mut c = tokio::process::Command::from(c);
    c.kill_on_drop(true);
    let out = tokio::time::timeout(support::cli::DEADLINE, c.output())
        .await
        .expect("cwl-copy did not finish in time")
        .unwrap();
    ran(out)
}

/// The stderr lines that start with `prefix`.
fn lines<'a>(stderr: &'a str, prefix: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// The one stderr line starting with `prefix`; fails, showing stderr,
/// unless there is exactly one.
fn line<'a>(stderr: &'a str, prefix: &str) -> &'a str {
    let found = lines(stderr, prefix);
    assert_eq!(found.len(), 1, "one line {prefix:?} in:\n{stderr}");
    found[0]
}

/// A duration as the summaries print one: `12 ms`, `3.4 s`, `42 s`.
const DURATION: &str = r"(\d+(\.\d)? ms|\d\.\d s|\d+ s|\d+ min \d+ s)";

fn assert_matches(pattern: &str, text: &str) {
    let re = Regex::new(&format!("^{pattern}$")).unwrap();
    assert!(re.is_match(text), "{text:?}\ndoes not match\n{pattern:?}");
}

const SPEC: &str = "testdata/specs/integrated_user_log.toml";
const EDGE_SPEC: &str = "testdata/specs/edge_cases.toml";

// ---------------------------------------------------------------------------
// The README's first command
// ---------------------------------------------------------------------------

/// The first command of the README's first ```sh block.
fn readme_first_command() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("README.md has no ```sh block");
    block.lines().next().expect("the first ```sh block is empty").to_owned()
}

/// The README's first command, run as written against the built binary:
/// its cargo part builds the CLI without the loader (the configuration
/// `./test.sh` builds with warnings denied), and its `convert` converts
/// the bundled objects into the named CSV with a summary that reconciles.
#[test]
fn readme_first_command_converts_the_bundled_objects() {
    let command = readme_first_command();
    let (cargo, args) = command
        .split_once(" -- ")
        .unwrap_or_else(|| panic!("not `cargo run … -- ARGS`: {command}"));
    assert_eq!(
        cargo, "cargo run --release --no-default-features --features cli",
        "the README's first command builds something else: update this \
         test and test.sh's decoder-only build together"
    );
    let args: Vec<&str> = args.split_whitespace().collect();
    assert_eq!(args.first(), Some(&"convert"), "{command}");
    // Run it in a copy of the places it names: the inputs and spec are
    // read from the repository, the CSV is written in a temporary
    // directory (the README's file name, in the current directory).
    let dir = tempdir();
    let out_at = args.iter().position(|a| *a == "--out").expect("--out");
    let csv_name = args[out_at + 1];
    let mut c = cmd();
    c.current_dir(&dir);
    for a in &args {
        if a.starts_with("testdata/") {
            c.arg(root().join(a));
        } else {
            c.arg(a);
        }
    }
    let r = run(&mut c);
    assert_eq!(r.code, Some(0), "{command}\n{}", r.stderr);
    let csv = std::fs::read(dir.join(csv_name)).unwrap();
    let rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&csv[..])
        .records()
        .count();
    let summary = line(&r.stderr, "cwl-copy: 10 objects");
    assert_matches(
        &format!(
            "cwl-copy: 10 objects, 75 events: {rows} rows, 26 filtered out, \
             0 rejected; 0 decode errors; 1 control message; {DURATION}"
        ),
        summary,
    );
    assert_eq!(rows + 26, 75, "the summary reconciles");
    line(&r.stderr, "cwl-copy: load it with: COPY \"integrated_user_log\"");
}

// ---------------------------------------------------------------------------
// Summaries
// ---------------------------------------------------------------------------

#[test]
fn summaries_pluralise_and_say_durations() {
    let r = run(cmd().args([
        "convert",
        "--columns",
        SPEC,
        "--out",
        "-",
        "testdata/firehose/multi-member",
    ]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let summary = line(&r.stderr, "cwl-copy: 1 object,");
    assert_matches(
        &format!(
            "cwl-copy: 1 object, \\d+ events: \\d+ rows?, \\d+ filtered out, \
             0 rejected; 0 decode errors; 0 control messages; {DURATION}"
        ),
        summary,
    );
    // Nothing here is read as lines, so the variant is not said.
    assert!(!r.stderr.contains("variant"), "{}", r.stderr);
}

#[test]
fn no_objects_found_is_a_warning_and_exit_0() {
    let dir = tempdir();
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let d = empty.to_str().unwrap();
    let r = run(cmd().args(["convert", "--columns", SPEC, d]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    line(&r.stderr, &format!("cwl-copy: warning: no objects found in {d}"));
    assert_matches(
        &format!(
            "cwl-copy: 0 objects, 0 events: 0 rows, 0 filtered out, 0 \
             rejected; 0 decode errors; 0 control messages; {DURATION}"
        ),
        line(&r.stderr, "cwl-copy: 0 objects"),
    );
    let r = run(cmd().args(["decode", d]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!("cwl-copy: warning: no objects found in {d}")
    );
}

/// Plain words are read as extracted messages (the `lines` variant); the
/// summary says so, naming the object, so that a wrong path is noticed.
#[test]
fn variant_lines_is_said_when_nothing_looked_like_firehose() {
    let dir = tempdir();
    let words = dir.join("notes.txt");
    std::fs::write(&words, "some words\nand more words\n").unwrap();
    let w = words.to_str().unwrap();
    let said = format!(
        "cwl-copy: variant: lines (the object had no Firehose envelope; each \
         line was read as a message: {w})"
    );
    let r = run(cmd().args(["convert", "--columns", SPEC, "--out", "-", w]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(line(&r.stderr, "cwl-copy: variant:"), said);
    let r = run(cmd().args(["decode", w]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stderr.trim_end(), said);
    assert_eq!(r.stdout.lines().count(), 2);
    // Asked for, it is not news.
    let r = run(cmd().args(["decode", "--variant", "lines", w]));
    assert_eq!(r.stderr, "");
    // Among Firehose objects, the extracted ones are counted.
    let r = run(cmd().args([
        "convert",
        "--columns",
        SPEC,
        "--out",
        "-",
        "testdata/firehose",
    ]));
    assert_eq!(
        line(&r.stderr, "cwl-copy: variant:"),
        "cwl-copy: variant: lines (2 of 10 objects had no Firehose envelope; \
         each line was read as a message: testdata/firehose/extracted-lines, \
         …)"
    );
}

// ---------------------------------------------------------------------------
// Rejects and decode errors, without --rejects
// ---------------------------------------------------------------------------

#[test]
fn convert_shows_the_first_rejects_and_where_the_rest_are() {
    let args =
        ["convert", "--columns", EDGE_SPEC, "--out", "-", "testdata/mapping"];
    let r = run(cmd().args(args));
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let shown = lines(&r.stderr, "cwl-copy: rejected event (");
    assert_eq!(shown.len(), 5, "{}", r.stderr);
    assert_eq!(
        shown[0],
        "cwl-copy: rejected event (not_object): testdata/mapping/edge-cases: \
         member 0, event edge-06: message is JSON but not an object (a \
         number): no path selects from it"
    );
    assert_eq!(
        line(&r.stderr, "cwl-copy: 7 more"),
        "cwl-copy: 7 more not shown (12 rejected events in all); --rejects \
         FILE writes all of them"
    );
    // With --rejects, the rest are in that file.
    let dir = tempdir();
    let file = dir.join("rejects.ndjson");
    let r = run(cmd().args(args).arg("--rejects").arg(&file));
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert_eq!(
        line(&r.stderr, "cwl-copy: 7 more"),
        format!(
            "cwl-copy: 7 more not shown (12 rejected events in all); all of \
             them are in {}",
            file.display()
        )
    );
    let listed = std::fs::read_to_string(&file).unwrap().lines().count();
    assert_eq!(listed, 12);
}

#[test]
fn convert_reports_every_decode_error() {
    let r = run(cmd().args([
        "convert",
        "--columns",
        SPEC,
        "--out",
        "-",
        "testdata/bad",
    ]));
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    // As `decode` does: each one a JSON line naming the object, member,
    // offset and kind (a contract), so none is left unsaid.
    let json: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(json.len(), 14, "{}", r.stderr);
    assert_eq!(json[0]["object"], "testdata/bad/bad-header");
    assert_eq!(json[0]["kind"], "unreadable");
    assert_eq!(
        json[0]["message"],
        "testdata/bad/bad-header: member 1 at byte 628: 1560 unreadable \
         bytes: gzip framing lost (bad gzip header: compression method is \
         not deflate)"
    );
    assert!(lines(&r.stderr, "cwl-copy: decode error").is_empty());
    assert!(lines(&r.stderr, "cwl-copy: 9 more").is_empty());
    assert_matches(
        &format!(
            "cwl-copy: 14 objects, 58 events: 43 rows, 15 filtered out, 0 \
             rejected; 14 decode errors; 0 control messages; {DURATION}"
        ),
        line(&r.stderr, "cwl-copy: 14 objects"),
    );
}

// ---------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------

/// The help text of `--flag` in `help` (`cwl-copy CMD --help`).
fn flag_help(help: &str, flag: &str) -> String {
    let mut lines = help.lines().skip_while(|l| {
        !l.trim_start().starts_with(&format!("{flag} ")) && l.trim() != flag
    });
    let head = lines.next().unwrap_or_else(|| panic!("no {flag} in\n{help}"));
    let mut text: Vec<&str> = vec![];
    // The text is on the flag's line (short help) or on the lines below
    // it, up to the next flag.
    let own = head.trim_start().split_once("  ").map(|(_, t)| t.trim());
    if let Some(t) = own.filter(|t| !t.is_empty()) {
        text.push(t);
    } else {
        text.extend(
            lines
                .take_while(|l| !l.trim_start().starts_with('-'))
                .map(str::trim),
        );
    }
    text.join(" ")
}

fn help(cmd_name: &str) -> String {
    // `--help`: the long form, one flag text per paragraph.
    let r = run(cmd().args([cmd_name, "--help"]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.stdout
}

#[test]
fn help_shows_defaults_sizes_and_one_wording_per_flag() {
    let [decode, convert, load, enqueue] =
        ["decode", "convert", "load", "enqueue"].map(help);
    for (name, h) in [
        ("decode", &decode),
        ("convert", &convert),
        ("load", &load),
        ("enqueue", &enqueue),
    ] {
        assert!(!h.contains("[default: \"\"]"), "{name}:\n{h}");
        assert!(!h.contains("268435456"), "{name}: a size in bytes:\n{h}");
        assert!(!h.contains("8589934592"), "{name}: a size in bytes:\n{h}");
        assert!(!h.contains("67108864"), "{name}: a size in bytes:\n{h}");
    }
    for h in [&decode, &convert, &load] {
        assert!(
            flag_help(h, "--max-member-bytes <SIZE>")
                .ends_with("[default: 64 MiB]"),
            "{h}"
        );
        assert!(
            flag_help(h, "--max-object-bytes <SIZE>")
                .ends_with("[default: 8 GiB]"),
            "{h}"
        );
    }
    assert!(flag_help(&load, "--batch-bytes <SIZE>")
        .ends_with("[default: 64 MiB]"));
    for (flag, default) in [
        ("--ledger-table <NAME>", "[default: cwl_copy_ledger]"),
        ("--quarantine-table <NAME>", "[default: cwl_copy_quarantine]"),
        ("--schema <NAME>", "search_path]"),
        ("--table <NAME>", "[default: the column spec's `table`]"),
        ("--target <CONNINFO>", "as for psql]"),
        ("--threads <N>", "[default: one per CPU]"),
        ("--batch-seconds <SECS>", "[default: 30]"),
        ("--out <FILE|DIR|->", "[default: -]"),
    ] {
        let h = if flag.starts_with("--out") { &convert } else { &load };
        let text = flag_help(h, flag);
        assert!(text.ends_with(default), "{flag}: {text:?}");
    }
    // The same flag says the same in every subcommand that has it.
    for (flag, cmds) in [
        ("--threads <N>", &[&decode, &convert, &load][..]),
        ("--summary-json <FILE>", &[&decode, &convert, &load]),
        ("--columns <SPEC>", &[&convert, &load, &enqueue]),
        ("--variant <VARIANT>", &[&decode, &convert, &load]),
        ("--table <NAME>", &[&load, &enqueue]),
        ("--schema <NAME>", &[&load, &enqueue]),
        ("--ledger-table <NAME>", &[&load, &enqueue]),
        ("--endpoint-url <URL>", &[&decode, &convert, &load, &enqueue]),
        ("--from <TIME>", &[&decode, &convert, &load, &enqueue]),
    ] {
        let first = flag_help(cmds[0], flag);
        for h in &cmds[1..] {
            assert_eq!(flag_help(h, flag), first, "{flag}");
        }
    }
}

#[test]
fn sizes_take_units() {
    let r = run(cmd().args([
        "decode",
        "--max-member-bytes",
        "1KiB",
        "testdata/firehose/multi-member",
    ]));
    // Members over 1 KiB are rejected by name.
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("1024"), "{}", r.stderr);
    let r = run(cmd().args([
        "decode",
        "--max-member-bytes",
        "1 MB",
        "testdata/firehose/multi-member",
    ]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "\"1 MB\" is not a size: give bytes (268435456) or a number with \
             a unit, KiB, MiB, GiB or TiB"
        ),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------
// Errors that read once; libpq's defaults
// ---------------------------------------------------------------------------

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The operating-system user name as `id -un` says it.
fn os_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A closed port: no line per retry, one error naming where (the port from
/// PGPORT, since the URL names none; the user from the operating system,
/// since neither the URL nor PGUSER names one, nor USER or LOGNAME), the
/// cause once, and what was tried. The summary is written with the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_one_error_with_what_was_tried() {
    let port = closed_port();
    let dir = tempdir();
    let summary = dir.join("summary.json");
    let mut c = cmd();
    c.args(["load", "--columns", SPEC, "--target", "postgres://127.0.0.1/db"])
        .arg("--summary-json")
        .arg(&summary)
        .arg("testdata/firehose")
        .env("PGPORT", port.to_string())
        .env_remove("USER")
        .env_remove("LOGNAME");
    let r = run_async(c).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let user = os_user();
    assert_eq!(r.stderr.lines().count(), 1, "one line:\n{}", r.stderr);
    assert_matches(
        &format!(
            r#"cwl-copy: error: cannot connect to PostgreSQL at 127\.0\.0\.1:{port} \(database "db", user "{user}"\): Connection refused \(os error 111\); 6 attempts in {DURATION}"#
        ),
        r.stderr.trim_end(),
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        s["error"],
        r.stderr.trim_end().trim_start_matches("cwl-copy: error: ")
    );
    assert_eq!(s["reconciled"], false);
}

// ---------------------------------------------------------------------------
// Load: where the data went, the quarantined input
// ---------------------------------------------------------------------------

fn load_cmd(schema: &str, extra: &[&str], inputs: &[&str]) -> Command {
    let mut c = cmd();
    c.args(["load", "--columns", SPEC, "--target"])
        .arg(support::pg_url())
        .args(["--schema", schema])
        .args(extra)
        .args(inputs);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_says_where_the_data_went_and_shows_what_it_quarantined() {
    let _shared = support::SERVER_LOCK.read().await;
    let client = support::pg_client().await;
    let schema = support::fresh_schema(&client, "cli_messages").await;
    let q = |t: &str| format!("\"{schema}\".\"{t}\"");

    // A missing table: the fix, named.
    let dir = tempdir();
    let summary = dir.join("s.json");
    let s_arg = summary.to_str().unwrap();
    let c = load_cmd(&schema, &["--summary-json", s_arg], &["testdata/bad"]);
    let r = run_async(c).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "cwl-copy: error: table {} does not exist; add --create-table to \
             create it",
            q("integrated_user_log")
        )
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert!(
        s["error"].as_str().unwrap().contains("add --create-table"),
        "{s}"
    );

    // Bad objects: the first decode errors, the count of the rest and the
    // quarantine table, then where the rows went.
    let r =
        run_async(load_cmd(&schema, &["--create-table"], &["testdata/bad"]))
            .await;
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let shown = lines(&r.stderr, "cwl-copy: decode error (");
    assert_eq!(shown.len(), 5, "{}", r.stderr);
    assert_eq!(
        shown[0],
        "cwl-copy: decode error (unreadable): testdata/bad/bad-header: member \
         1 at byte 628: 1560 unreadable bytes: gzip framing lost (bad gzip \
         header: compression method is not deflate)"
    );
    assert_eq!(
        line(&r.stderr, "cwl-copy: 9 more"),
        format!(
            "cwl-copy: 9 more not shown (14 decode errors in all); all of \
             them are in {}",
            q("cwl_copy_quarantine")
        )
    );
    assert_matches(
        &format!(
            "cwl-copy: 14 objects \\(14 loaded\\), 58 events: 43 rows, 15 \
             filtered out, 0 rejected; 14 decode errors; 1 batch; {DURATION}"
        ),
        line(&r.stderr, "cwl-copy: 14 objects"),
    );
    assert_eq!(
        line(&r.stderr, "cwl-copy: rows into"),
        format!(
            "cwl-copy: rows into {schema}.integrated_user_log (created); \
             objects recorded in {}; 14 quarantined in {}",
            q("cwl_copy_ledger"),
            q("cwl_copy_quarantine")
        )
    );

    // Again: nothing new, nothing shown, the table not created this time.
    let r =
        run_async(load_cmd(&schema, &["--create-table"], &["testdata/bad"]))
            .await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(lines(&r.stderr, "cwl-copy: decode error").is_empty());
    assert_matches(
        &format!(
            "cwl-copy: 14 objects \\(14 already loaded, 0 loaded\\), 0 \
             events: 0 rows, 0 filtered out, 0 rejected; 0 decode errors; 0 \
             batches; {DURATION}"
        ),
        line(&r.stderr, "cwl-copy: 14 objects"),
    );
    assert_eq!(
        line(&r.stderr, "cwl-copy: rows into"),
        format!(
            "cwl-copy: rows into {schema}.integrated_user_log; objects \
             recorded in {}; 0 quarantined in {}",
            q("cwl_copy_ledger"),
            q("cwl_copy_quarantine")
        )
    );

    // Rejected events: id, code and reason.
    let mut c = cmd();
    c.args(["load", "--columns", EDGE_SPEC, "--create-table", "--target"])
        .arg(support::pg_url())
        .args(["--schema", &schema, "testdata/mapping"]);
    let r = run_async(c).await;
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let shown = lines(&r.stderr, "cwl-copy: rejected event (");
    assert_eq!(shown.len(), 5, "{}", r.stderr);
    assert_eq!(
        shown[0],
        format!(
            "cwl-copy: rejected event (not_object): {}: member 0, event \
             edge-06: message is JSON but not an object (a number): no path \
             selects from it",
            root().join("testdata/mapping/edge-cases").display()
        )
    );
    line(&r.stderr, "cwl-copy: 7 more not shown (12 rejected events");

    // No objects: a warning, exit 0.
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = empty.to_str().unwrap();
    let r = run_async(load_cmd(&schema, &[], &[e])).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    line(&r.stderr, &format!("cwl-copy: warning: no objects found in {e}"));
    line(&r.stderr, "cwl-copy: 0 objects (0 loaded), 0 events");
}

/// `enqueue` of an empty prefix: the same warning, exit 0, nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_warns_when_no_objects_are_found() {
    let s3 = support::s3_client().await;
    let sqs = support::sqs_client().await;
    let bucket = support::fresh_bucket(&s3, "cli-empty").await;
    let q = support::sqs::queue(&sqs, "cli-empty", None).await;
    let input = format!("s3://{bucket}/app-logs/from_CloudWatchLogs/");
    let out = support::sqs::enqueue(
        &q,
        &support::aws_endpoint(),
        &[input.clone().into()],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "sent 0 messages (0 already loaded)\n");
    assert_eq!(
        out.stderr.trim_end(),
        format!("cwl-copy: warning: no objects found in {input}")
    );
}

/// `load` says `variant: lines` too, naming the first such object by its
/// ledger key (its canonical path), and counts them in the summary JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_says_variant_lines_for_objects_without_an_envelope() {
    let _shared = support::SERVER_LOCK.read().await;
    let client = support::pg_client().await;
    let schema = support::fresh_schema(&client, "cli_lines").await;
    let dir = tempdir();
    let summary = dir.join("s.json");
    let c = load_cmd(
        &schema,
        &["--create-table", "--summary-json", summary.to_str().unwrap()],
        &["testdata/firehose"],
    );
    let r = run_async(c).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let first =
        std::fs::canonicalize("testdata/firehose/extracted-lines").unwrap();
    assert_eq!(
        line(&r.stderr, "cwl-copy: variant:"),
        format!(
            "cwl-copy: variant: lines (2 of 10 objects had no Firehose \
             envelope; each line was read as a message: {}, …)",
            first.display()
        )
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["objects_read_as_lines"], 2, "{s}");
    // Asked for, it is not news.
    let schema = support::fresh_schema(&client, "cli_lines_asked").await;
    let c = load_cmd(
        &schema,
        &["--create-table", "--variant", "lines"],
        &["testdata/firehose/extracted-lines"],
    );
    let r = run_async(c).await;
    assert!(!r.stderr.contains("variant:"), "{}", r.stderr);
}

/// On a terminal (`script` gives the binary one), `convert` draws a
/// progress bar of input bytes that moves within an object: on one object
/// of a few MB the bar shows figures between 0 and the whole. Off a
/// terminal there is no bar (stderr holds only the summary lines).
#[test]
fn progress_bar_moves_within_an_object_on_a_terminal() {
    use cwl_copy::corpus;
    let dir = tempdir();
    let mut rng = corpus::Rng::new(31);
    let mut ts = 1_714_570_800_000;
    let (data, _) = corpus::object(&mut rng, &mut ts, 96, 200_000, false);
    let object = dir.join("one-object");
    std::fs::write(&object, &data).unwrap();
    let spec = root().join("testdata/specs/integrated_user_log.toml");
    let line = format!(
        "{} convert --columns {} --threads 1 --out /dev/null {}",
        env!("CARGO_BIN_EXE_cwl-copy"),
        spec.display(),
        object.display()
    );
    let out = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs the binary on a terminal");
    let tty = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{tty}");
    let bar =
        Regex::new(r"([0-9.]+ (?:B|KiB|MiB))/([0-9.]+ (?:KiB|MiB)) input")
            .unwrap();
    let shown: Vec<(String, String)> = bar
        .captures_iter(&tty)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    assert!(!shown.is_empty(), "no progress bar on the terminal:\n{tty}");
    assert!(
        shown.iter().any(|(at, all)| at != "0 B" && at != all),
        "the bar never stood inside the object: {shown:?}"
    );
    // Off a terminal: no bar.
    let r = run(cmd().args([
        "convert",
        "--columns",
        spec.to_str().unwrap(),
        "--out",
        "/dev/null",
        object.to_str().unwrap(),
    ]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains(" input ("), "{}", r.stderr);
}

//! Running `cwl-copy load` as a process and reading what it left: the
//! exit, the summary JSON at `<out>.json` and stderr at `<out>.log`.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// No run of the binary in these tests may take longer than this.
pub const DEADLINE: Duration = Duration::from_secs(180);

/// A finished run.
#[derive(Debug)]
pub struct Run {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// `--summary-json`, or `Null`.
    pub summary: Value,
    /// What it wrote on stderr.
    pub stderr: String,
}

impl Run {
    /// A number of the summary; panics, with the summary, if missing.
    pub fn n(&self, field: &str) -> u64 {
        self.summary[field].as_u64().unwrap_or_else(|| {
            panic!(
                "no {field} in the summary {}\n{}",
                self.summary, self.stderr
            )
        })
    }
}

/// Waits (up to [`DEADLINE`]) for `child` and reads what it left at `out`.
pub async fn finish(mut child: tokio::process::Child, out: &Path) -> Run {
    let status = match tokio::time::timeout(DEADLINE, child.wait()).await {
        Ok(s) => s.unwrap(),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "cwl-copy did not finish in {DEADLINE:?}:\n{}",
                std::fs::read_to_string(out.with_extension("log"))
                    .unwrap_or_default()
            );
        }
    };
    let stderr =
        std::fs::read_to_string(out.with_extension("log")).unwrap_or_default();
    let summary = std::fs::read(out.with_extension("json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Run { code: status.code(), signal: status.signal(), summary, stderr }
}

/// Spawns `cmd` and waits for it.
pub async fn run(cmd: &mut tokio::process::Command, out: &Path) -> Run {
    finish(cmd.spawn().unwrap(), out).await
}

/// Runs a load and checks that it completed: exit 0, or 3 exactly when
/// it quarantined something; counts reconciled; nothing failed or
/// vanished.
pub async fn run_to_completion(
    cmd: &mut tokio::process::Command,
    out: &Path,
) -> Run {
    let r = run(cmd, out).await;
    assert_completed(&r);
    r
}

/// A completed load: exit 0, or 3 exactly when some input was rejected
/// (events, undecodable ranges, message bodies); counts reconciled;
/// nothing failed or vanished; no batch failed (no message returned).
pub fn assert_completed(run: &Run) {
    let quarantined = run.summary["messages_quarantined"].as_u64();
    let rejected = run.n("rejected") > 0
        || run.n("errors") > 0
        || quarantined.is_some_and(|n| n > 0);
    let want = if rejected { 3 } else { 0 };
    assert_eq!(
        run.code,
        Some(want),
        "load did not complete; summary {}\n{}",
        run.summary,
        run.stderr
    );
    assert_eq!(run.summary["reconciled"], true, "{}", run.summary);
    assert_eq!(run.n("objects_failed"), 0, "{}", run.summary);
    assert_eq!(run.n("objects_vanished"), 0, "{}", run.summary);
    if run.summary.get("messages_returned").is_some() {
        assert_eq!(run.n("messages_returned"), 0, "{}", run.summary);
    }
}

//! TLS to PostgreSQL (`sslmode`, `sslrootcert`), against a PostgreSQL
//! cluster of the test's own with `ssl=on`.
//!
//! The certificates are made at test time with the `openssl` command line:
//! a CA, a server certificate it issues for the DNS name `localhost` only
//! (so that connecting to `127.0.0.1` is a host-name mismatch), and a
//! second CA that issued nothing (an unknown CA). Nothing is committed.
//!
//! The cluster is started as in `load_faults.rs` (initdb and pg_ctl from
//! `CWL_TEST_PG_BIN`, as `CWL_TEST_PG_RUNAS` when run as root, on a free
//! port), listening on `localhost`, with `log_connections` on so that the
//! end-to-end test can check that every session was encrypted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cwl_copy::load::{ConnError, PgSettings, SslMode};

use crate::decode::{bin, tempdir};
use crate::support;

/// The shipped spec.
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/specs/integrated_user_log.toml"
);
/// The fixtures loaded end to end.
const FIREHOSE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/firehose");

/// A password in every connection string of these tests; it must never be
/// printed. The servers trust everyone and never ask for it, except from
/// [`SCRAM_USER`].
const SECRET: &str = "Tls-Sekr1t";

/// A role that must log in with SCRAM over TLS, so that channel binding
/// (`tls-server-end-point`) is exercised.
const SCRAM_USER: &str = "scram_user";

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// The certificates, in the server's directory.
struct Pki {
    /// The CA that issued the server certificate.
    ca: PathBuf,
    /// A CA that issued nothing the server has.
    other_ca: PathBuf,
    /// The server certificate (DNS name `localhost` only) and its key.
    cert: PathBuf,
    key: PathBuf,
}

/// Runs `openssl` in `dir` with the words of `args`, then `more`.
fn openssl(dir: &Path, args: &str, more: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args.split_whitespace()).args(more);
    cmd.stdin(Stdio::null());
    support::run_ok(cmd);
}

/// A new P-256 key, unencrypted (`openssl req` options).
const NEW_KEY: &str =
    "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// A self-signed CA certificate `<name>.pem` with its key `<name>.key`.
fn make_ca(dir: &Path, name: &str, subject: &str) -> PathBuf {
    openssl(
        dir,
        &format!(
            "req -x509 -new {NEW_KEY} -sha256 -days 2 -keyout {name}.key \
             -out {name}.pem -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
        &["-subj", subject],
    );
    dir.join(format!("{name}.pem"))
}

/// The CAs and the server certificate, made in `dir`.
fn make_pki(dir: &Path) -> Pki {
    let ca = make_ca(dir, "ca", "/CN=cwl-copy test CA");
    let other_ca = make_ca(dir, "other-ca", "/CN=cwl-copy unknown CA");
    openssl(
        dir,
        &format!(
            "req -new {NEW_KEY} -keyout server.key -out server.csr \
             -subj /CN=localhost"
        ),
        &[],
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
         -sha256 -days 2 -extfile server.ext -out server.crt",
        &[],
    );
    Pki {
        ca,
        other_ca,
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// A PostgreSQL cluster with TLS, of this test's own. Stopped and removed
/// on drop.
struct TlsServer {
    root: PathBuf,
    port: u16,
    pki: Pki,
}

impl TlsServer {
    fn command(&self, program: &str) -> Command {
        let exe = format!("{}/{program}", support::env("CWL_TEST_PG_BIN"));
        let runas = std::env::var("CWL_TEST_PG_RUNAS").unwrap_or_default();
        let mut cmd = if runas.is_empty() {
            Command::new(exe)
        } else {
            let mut c = Command::new("runuser");
            c.args(["-u", &runas, "--", &exe]);
            c
        };
        cmd.current_dir(&self.root).stdin(Stdio::null());
        cmd
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(self.root.join("data")).arg("-w");
        cmd
    }

    fn start() -> TlsServer {
        if Command::new("openssl").arg("version").output().is_err() {
            panic!("these tests need the openssl command line");
        }
        let root = tempdir();
        let pki = make_pki(&root);
        // The server refuses a key others can read; the key must belong
        // to the user it runs as, hence the chown after.
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&pki.key, private).unwrap();
        }
        let runas = std::env::var("CWL_TEST_PG_RUNAS").unwrap_or_default();
        if !runas.is_empty() {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg(format!("{runas}:")).arg(&root);
            support::run_ok(chown);
        }
        let mut server = TlsServer { root, port: 0, pki };
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(server.root.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"]);
        support::run_ok(initdb);
        // Before initdb's `trust` lines, which match first otherwise.
        let hba = server.root.join("data/pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!("hostssl all {SCRAM_USER} all scram-sha-256\n{rest}"),
        )
        .unwrap();
        // A free port, as test.sh picks them; another process may take it
        // between the probe and the start, hence the attempts.
        for attempt in 1..=3 {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            server.port = probe.local_addr().unwrap().port();
            drop(probe);
            let opts = format!(
                "-c listen_addresses=localhost -p {} -k {} -c fsync=off \
                 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} \
                 -c log_connections=on",
                server.port,
                server.root.display(),
                server.pki.cert.display(),
                server.pki.key.display(),
            );
            let mut start = server.pg_ctl();
            start
                .arg("-l")
                .arg(server.log())
                .args(["-t", "60", "-o", &opts, "start"]);
            let out = start.output().unwrap();
            if out.status.success() {
                return server;
            }
            println!(
                "private postgres did not start (attempt {attempt}):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        panic!(
            "private postgres did not start:\n{}",
            std::fs::read_to_string(server.log()).unwrap_or_default()
        );
    }

    fn log(&self) -> PathBuf {
        self.root.join("log")
    }

    /// A keyword/value connection string for `host`, with `extra`.
    fn conninfo(&self, host: &str, extra: &str) -> String {
        format!(
            "host={host} port={} user=postgres dbname=postgres \
             password={SECRET} {extra}",
            self.port
        )
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let mut cmd = self.pg_ctl();
        cmd.args(["-m", "immediate", "stop"]);
        if cmd.output().is_ok_and(|o| o.status.success()) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Resolves `conninfo` with an empty environment, so that nothing of the
/// caller's (`PGSSLMODE`, `~/.postgresql/root.crt`) leaks in.
fn settings(conninfo: &str) -> PgSettings {
    PgSettings::resolve_with_env(conninfo, &|_| None)
        .unwrap_or_else(|e| panic!("resolve {conninfo:?}: {e}"))
}

/// Connects and says whether the session is encrypted, as the server
/// sees it.
async fn session_ssl(conninfo: &str) -> bool {
    let client = settings(conninfo)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect with {conninfo:?}: {e}"));
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Connects, expecting a failure, and returns it, checking that the
/// message keeps the password to itself.
async fn connect_err(conninfo: &str) -> ConnError {
    let Err(e) = settings(conninfo).connect().await else {
        panic!("connected with {conninfo:?}");
    };
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    println!("as expected: {e}");
    e
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tls_modes_connect_and_check_the_certificate() {
    let server = TlsServer::start();
    let ca = server.pki.ca.display().to_string();
    let other = server.pki.other_ca.display().to_string();
    let conn = |host: &str, extra: &str| server.conninfo(host, extra);

    // Encrypted, with or without checks.
    for extra in [
        "sslmode=prefer".to_owned(),
        "sslmode=allow".to_owned(),
        "sslmode=require".to_owned(),
        // require with a root file checks the chain, not the name.
        format!("sslmode=require sslrootcert={ca}"),
        format!("sslmode=verify-ca sslrootcert={ca}"),
    ] {
        assert!(session_ssl(&conn("127.0.0.1", &extra)).await, "{extra}");
    }
    for extra in [
        format!("sslmode=verify-full sslrootcert={ca}"),
        format!("sslmode=verify-ca sslrootcert={ca}"),
    ] {
        assert!(session_ssl(&conn("localhost", &extra)).await, "{extra}");
    }
    // The same in URL form.
    let url = format!(
        "postgres://postgres:{SECRET}@localhost:{}/postgres\
         ?sslmode=verify-full&sslrootcert={ca}",
        server.port
    );
    assert!(session_ssl(&url).await);
    // And plain text when asked for.
    assert!(!session_ssl(&conn("127.0.0.1", "sslmode=disable")).await);

    // SCRAM with channel binding over the TLS stream.
    let admin = settings(&conn("localhost", "sslmode=require"))
        .connect()
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {SCRAM_USER} LOGIN PASSWORD '{SECRET}'"
        ))
        .await
        .unwrap();
    let scram = format!(
        "host=localhost port={} user={SCRAM_USER} dbname=postgres \
         password={SECRET} channel_binding=require sslmode=verify-full \
         sslrootcert={ca}",
        server.port
    );
    assert!(session_ssl(&scram).await);
    let e = connect_err(&scram.replace(SECRET, "wrong")).await;
    assert!(e.to_string().contains("28P01"), "{e}");

    // The certificate names localhost only.
    let e = connect_err(&conn(
        "127.0.0.1",
        &format!("sslmode=verify-full sslrootcert={ca}"),
    ))
    .await;
    let shown = e.to_string();
    assert!(
        matches!(&e, ConnError::TlsHostName { host, .. } if host == "127.0.0.1"),
        "{e:?}"
    );
    assert!(
        shown.contains("does not match the host name \"127.0.0.1\""),
        "{shown}"
    );
    assert!(shown.contains("the certificate is for localhost"), "{shown}");

    // A CA that did not issue the server's certificate.
    for (host, mode) in [
        ("localhost", "verify-full"),
        ("127.0.0.1", "verify-ca"),
        ("127.0.0.1", "require"),
    ] {
        let e = connect_err(&conn(
            host,
            &format!("sslmode={mode} sslrootcert={other}"),
        ))
        .await;
        let shown = e.to_string();
        assert!(matches!(e, ConnError::TlsUntrusted { .. }), "{mode}: {e:?}");
        assert!(shown.contains("certificate is not trusted"), "{shown}");
        assert!(shown.contains(&other), "{shown}");
        assert!(shown.contains(&format!("sslmode={mode}")), "{shown}");
    }
    // With the system's roots, the test CA is unknown too.
    let e = connect_err(&conn("localhost", "sslrootcert=system")).await;
    assert!(
        matches!(
            e,
            ConnError::TlsUntrusted { .. } | ConnError::NoSystemRoots(_)
        ),
        "{e:?}"
    );

    // A root file that is not there.
    let missing = server.root.join("missing.pem");
    let e = connect_err(&conn(
        "localhost",
        &format!("sslmode=verify-full sslrootcert={}", missing.display()),
    ))
    .await;
    assert!(matches!(e, ConnError::RootCert { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

#[tokio::test]
async fn tls_required_from_a_server_without_tls() {
    // The shared server of ./test.sh runs without TLS.
    let _shared = support::SERVER_LOCK.read().await;
    let url = support::pg_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let e = connect_err(&format!("{url}{sep}sslmode=require")).await;
    assert!(
        matches!(e, ConnError::TlsNotSupported { mode: SslMode::Require, .. }),
        "{e:?}"
    );
    let shown = e.to_string();
    assert!(shown.contains("the server does not support TLS"), "{shown}");
    assert!(shown.contains("sslmode=require"), "{shown}");
    // prefer (libpq's default) falls back to plain text.
    assert!(!session_ssl(&format!("{url}{sep}sslmode=prefer")).await);
    assert!(!session_ssl(&url).await);
}

#[tokio::test]
async fn tls_load_end_to_end_with_pgsslmode_verify_full() {
    let server = TlsServer::start();
    let out = tempdir();
    let load = |ca: &Path, name: &str| {
        let target = format!(
            "postgres://postgres@localhost:{}/postgres?application_name={name}",
            server.port
        );
        bin()
            .args(["load", "--columns", SPEC, "--target", &target])
            .args(["--create-table", "--summary-json"])
            .arg(out.join(format!("{name}.json")))
            .arg(FIREHOSE)
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", ca)
            .env("PGPASSWORD", SECRET)
            .env_remove("PGSSLCERT")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // An unknown CA: nothing loads, and the error says why.
    let o = load(&server.pki.other_ca, "untrusted");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate is not trusted"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");

    let o = load(&server.pki.ca, "trusted");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("trusted.json")).unwrap(),
    )
    .unwrap();

    let client = settings(&server.conninfo(
        "localhost",
        &format!(
            "sslmode=verify-full sslrootcert={}",
            server.pki.ca.display()
        ),
    ))
    .connect()
    .await
    .unwrap();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM integrated_user_log", &[])
        .await
        .unwrap()
        .get(0);
    assert!(rows > 0, "nothing loaded: {summary}\n{stderr}");
    let ledger: i64 = client
        .query_one("SELECT count(*) FROM cwl_copy_ledger", &[])
        .await
        .unwrap()
        .get(0);
    assert!(ledger > 0, "no ledger rows: {summary}");
    drop(client);

    // Every session the server authorized was encrypted, the loader's
    // included.
    let log = std::fs::read_to_string(server.log()).unwrap();
    let authorized: Vec<&str> =
        log.lines().filter(|l| l.contains("connection authorized")).collect();
    assert!(
        authorized.iter().any(|l| l.contains("application_name=trusted")),
        "no session of the loader in the log:\n{log}"
    );
    for line in &authorized {
        assert!(line.contains("SSL enabled"), "a plain session: {line}");
    }
}

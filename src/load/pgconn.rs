//! PostgreSQL connection settings, resolved the way libpq resolves them.
//!
//! [`PgSettings::resolve`] takes a conninfo string, either a URL
//! (`postgres://user@host:5432/db?sslmode=disable`) or keyword/value pairs
//! (`host=db port=5432 dbname=logs`), and fills what it leaves out from the
//! environment, as libpq does (`tokio_postgres::Config` reads no
//! environment):
//!
//! | setting            | conninfo key       | environment         | default                         |
//! |--------------------|--------------------|---------------------|---------------------------------|
//! | host(s)            | `host`             | `PGHOST`            | `localhost`                     |
//! | port(s)            | `port`             | `PGPORT`            | `5432`                          |
//! | user               | `user`             | `PGUSER`            | `USER`, then `LOGNAME`          |
//! | database           | `dbname`           | `PGDATABASE`        | the user name                   |
//! | password           | `password`         | `PGPASSWORD`        | the password file               |
//! | password file      | `passfile`         | `PGPASSFILE`        | `~/.pgpass`                     |
//! | TLS mode           | `sslmode`          | `PGSSLMODE`         | `prefer`                        |
//! | TLS root cert      | `sslrootcert`      | `PGSSLROOTCERT`     | none                            |
//! | connect timeout    | `connect_timeout`  | `PGCONNECT_TIMEOUT` | none (seconds; `0` means none)  |
//! | application name   | `application_name` | `PGAPPNAME`         | `cwl-copy`                      |
//! | server options     | `options`          | `PGOPTIONS`         | none                            |
//!
//! Differences from libpq: an environment variable set to the empty string
//! counts as unset; the default host is `localhost` over TCP, not the
//! compiled-in Unix socket directory (give `host=/var/run/postgresql` for
//! that); with several hosts, the password file entry of the first host
//! that has one is used for all of them.
//!
//! The password file follows libpq: lines `host:port:database:user:password`,
//! `#` comments, a field that is exactly `*` matches anything, `\` escapes
//! `:` and `\`, the first matching line wins, and on Unix a file readable
//! or writable by group or others is ignored with a warning. A Unix-socket
//! host in the default directory matches `localhost`.
//!
//! # TLS
//!
//! `disable`, `allow` and `prefer` connect without TLS (this build has no
//! TLS connector, and `prefer` falls back to plain text as libpq does when
//! the server or client has no TLS). `require`, `verify-ca` and
//! `verify-full` fail at [`PgSettings::resolve`] with
//! [`ConnError::TlsUnavailable`], so that nothing ever runs unencrypted
//! when encryption was asked for.
//!
//! # Secrets
//!
//! The password never appears in `Display`, `Debug` or any error: the
//! `Debug` of [`PgSettings`] prints `password: Some("<redacted>")`, errors
//! about the conninfo string name keys and byte positions, never values.
//!
//! Resolution reads the environment and the password file with blocking
//! calls: call it before starting the async runtime, or in
//! `spawn_blocking`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The value printed instead of a password.
const REDACTED: &str = "<redacted>";

/// Default Unix socket directories that libpq matches as `localhost` in
/// the password file.
const DEFAULT_SOCKET_DIRS: [&str; 3] =
    ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// An error in connection settings or while connecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The conninfo string is malformed. The message gives a byte position
    /// or a key name, never a value, since a value may be a password.
    #[error("invalid connection string: {0}")]
    Syntax(String),
    /// The conninfo string (or URL query) names a key libpq would not
    /// accept, or one this loader does not support.
    #[error("invalid connection option \"{0}\"")]
    UnknownOption(String),
    /// A setting has a value out of its domain (the value is shown only
    /// for settings that are not secret).
    #[error("invalid value for {key}: {reason}")]
    InvalidValue {
        /// The conninfo key or environment variable.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No user name was given and none could be found in the environment.
    #[error(
        "no user name: give user= in the connection string or set PGUSER"
    )]
    NoUser,
    /// TLS was required (`sslmode=require`, `verify-ca` or `verify-full`)
    /// but this build connects without TLS only.
    #[error(
        "sslmode={0} requires TLS, which this build of cwl-copy does not \
         support; use sslmode=disable or prefer (e.g. through an SSH tunnel \
         or a TLS-terminating proxy)"
    )]
    TlsUnavailable(SslMode),
    /// Connecting or authenticating failed.
    #[error("connecting to {target}: {}", driver_detail(.source))]
    Connect {
        /// The connection target, without password.
        target: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS only if the server insists (here: never).
    Allow,
    /// Use TLS if available (here: never), else plain text.
    Prefer,
    /// Require TLS, without certificate verification.
    Require,
    /// Require TLS and a certificate signed by a trusted CA.
    VerifyCa,
    /// Require TLS, a trusted certificate and a matching host name.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str, key: &str) -> Result<SslMode, ConnError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(ConnError::InvalidValue {
                    key: key.to_owned(),
                    reason: format!("unknown sslmode \"{s}\""),
                })
            }
        })
    }

    /// The libpq name of this mode.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgHost {
    /// A TCP host name or address.
    Tcp(String),
    /// A directory holding the server's Unix socket.
    Unix(PathBuf),
}

impl PgHost {
    fn parse(s: &str) -> PgHost {
        if s.starts_with('/') {
            PgHost::Unix(PathBuf::from(s))
        } else {
            PgHost::Tcp(s.to_owned())
        }
    }

    /// The name libpq looks up in the password file for this host.
    fn passfile_name(&self) -> String {
        match self {
            PgHost::Tcp(h) => h.clone(),
            PgHost::Unix(p) => {
                if DEFAULT_SOCKET_DIRS.iter().any(|d| Path::new(d) == p) {
                    "localhost".to_owned()
                } else {
                    p.to_string_lossy().into_owned()
                }
            }
        }
    }
}

impl fmt::Display for PgHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgHost::Tcp(h) => f.write_str(h),
            PgHost::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A password that never prints.
#[derive(Clone, PartialEq, Eq)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Where the password came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordSource {
    /// No password was found.
    None,
    /// The conninfo string (`password=` or the URL's user info).
    Conninfo,
    /// The `PGPASSWORD` environment variable.
    Env,
    /// A line of this password file.
    Passfile(PathBuf),
}

/// Resolved connection settings. Build with [`PgSettings::resolve`].
///
/// `Display` prints a libpq-style `host=… port=… dbname=… user=…
/// sslmode=…` line without the password; `Debug` redacts the password.
#[derive(Clone, Debug)]
pub struct PgSettings {
    hosts: Vec<PgHost>,
    ports: Vec<u16>,
    user: String,
    dbname: String,
    password: Option<Secret>,
    password_source: PasswordSource,
    sslmode: SslMode,
    sslrootcert: Option<PathBuf>,
    connect_timeout: Option<Duration>,
    application_name: String,
    options: Option<String>,
}

/// Raw key/value pairs from a conninfo string, later keys winning.
#[derive(Default)]
struct Params {
    pairs: Vec<(&'static str, String)>,
}

/// Conninfo keys this loader understands, with their environment
/// variables.
const KEYS: [(&str, Option<&str>); 11] = [
    ("host", Some("PGHOST")),
    ("port", Some("PGPORT")),
    ("user", Some("PGUSER")),
    ("dbname", Some("PGDATABASE")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("application_name", Some("PGAPPNAME")),
    ("options", Some("PGOPTIONS")),
];

impl Params {
    fn set(&mut self, key: &str, value: String) -> Result<(), ConnError> {
        let Some(&(k, _)) = KEYS.iter().find(|(k, _)| *k == key) else {
            return Err(ConnError::UnknownOption(key.to_owned()));
        };
        self.pairs.retain(|(old, _)| *old != k);
        self.pairs.push((k, value));
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    /// The conninfo value, else the (non-empty) environment variable.
    fn get_or_env(
        &self,
        key: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<(String, Source)> {
        if let Some(v) = self.get(key) {
            return Some((v.to_owned(), Source::Conninfo));
        }
        let var =
            KEYS.iter().find(|(k, _)| *k == key).and_then(|(_, e)| *e)?;
        env(var).filter(|v| !v.is_empty()).map(|v| (v, Source::Env))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Conninfo,
    Env,
}

impl PgSettings {
    /// Resolves `conninfo` against the process environment and the
    /// password file.
    ///
    /// `conninfo` may be empty (everything from the environment), a
    /// `postgres://` or `postgresql://` URL, or libpq keyword/value pairs.
    ///
    /// # Errors
    ///
    /// [`ConnError`] for a malformed string, an unknown key, a bad value,
    /// a missing user name, or a TLS mode this build cannot honour.
    ///
    /// # Example
    ///
    /// ```
    /// use cwl_copy::load::PgSettings;
    ///
    /// let s = PgSettings::resolve(
    ///     "postgres://loader:s3cret@db.example:6543/logs?sslmode=disable",
    /// )?;
    /// assert_eq!(s.user(), "loader");
    /// assert!(!format!("{s} {s:?}").contains("s3cret"));
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve(conninfo: &str) -> Result<PgSettings, ConnError> {
        PgSettings::resolve_with_env(conninfo, &|k| std::env::var(k).ok())
    }

    /// Like [`PgSettings::resolve`], with `env` standing in for the
    /// process environment (for tests and embedding).
    ///
    /// # Errors
    ///
    /// As [`PgSettings::resolve`].
    pub fn resolve_with_env(
        conninfo: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgSettings, ConnError> {
        let params = parse_conninfo(conninfo)?;

        let hosts: Vec<PgHost> = match params.get_or_env("host", env) {
            Some((h, _)) => h.split(',').map(PgHost::parse).collect(),
            None => vec![PgHost::Tcp("localhost".to_owned())],
        };
        let hosts: Vec<PgHost> = hosts
            .into_iter()
            .map(|h| match h {
                PgHost::Tcp(s) if s.is_empty() => {
                    PgHost::Tcp("localhost".to_owned())
                }
                h => h,
            })
            .collect();
        let ports = match params.get_or_env("port", env) {
            Some((p, src)) => p
                .split(',')
                .map(|one| parse_port(one, src))
                .collect::<Result<Vec<u16>, ConnError>>()?,
            None => vec![5432],
        };
        if ports.len() != 1 && ports.len() != hosts.len() {
            return Err(ConnError::InvalidValue {
                key: "port".to_owned(),
                reason: format!(
                    "{} ports given for {} hosts",
                    ports.len(),
                    hosts.len()
                ),
            });
        }
        let user = match params.get_or_env("user", env) {
            Some((u, _)) => u,
            None => env("USER")
                .filter(|u| !u.is_empty())
                .or_else(|| env("LOGNAME").filter(|u| !u.is_empty()))
                .ok_or(ConnError::NoUser)?,
        };
        let dbname = match params.get_or_env("dbname", env) {
            Some((d, _)) => d,
            None => user.clone(),
        };
        let sslmode = match params.get_or_env("sslmode", env) {
            Some((m, src)) => SslMode::parse(&m, key_name("sslmode", src))?,
            None => SslMode::Prefer,
        };
        if matches!(
            sslmode,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        ) {
            return Err(ConnError::TlsUnavailable(sslmode));
        }
        let sslrootcert =
            params.get_or_env("sslrootcert", env).map(|(p, _)| p.into());
        let connect_timeout = match params.get_or_env("connect_timeout", env) {
            Some((t, src)) => parse_timeout(&t, src)?,
            None => None,
        };
        let application_name = params
            .get_or_env("application_name", env)
            .map_or_else(|| "cwl-copy".to_owned(), |(a, _)| a);
        let options = params.get_or_env("options", env).map(|(o, _)| o);

        let mut settings = PgSettings {
            hosts,
            ports,
            user,
            dbname,
            password: None,
            password_source: PasswordSource::None,
            sslmode,
            sslrootcert,
            connect_timeout,
            application_name,
            options,
        };
        match params.get_or_env("password", env) {
            Some((p, src)) => {
                settings.password = Some(Secret(p));
                settings.password_source = match src {
                    Source::Conninfo => PasswordSource::Conninfo,
                    Source::Env => PasswordSource::Env,
                };
            }
            None => {
                let passfile = match params.get_or_env("passfile", env) {
                    Some((p, _)) => Some(PathBuf::from(p)),
                    None => env("HOME")
                        .filter(|h| !h.is_empty())
                        .map(|h| Path::new(&h).join(".pgpass")),
                };
                if let Some(path) = passfile {
                    settings.password_from_file(&path);
                }
            }
        }
        Ok(settings)
    }

    /// Looks the password up in `path`, if that file exists and is private.
    fn password_from_file(&mut self, path: &Path) {
        let Some(file) = PassFile::load(path) else { return };
        for (i, host) in self.hosts.iter().enumerate() {
            let port = self
                .ports
                .get(i)
                .or_else(|| self.ports.first())
                .copied()
                .unwrap_or(5432);
            if let Some(pw) = file.lookup(
                &host.passfile_name(),
                &port.to_string(),
                &self.dbname,
                &self.user,
            ) {
                self.password = Some(Secret(pw.to_owned()));
                self.password_source = PasswordSource::Passfile(path.into());
                return;
            }
        }
    }

    /// The hosts, in connection order.
    #[must_use]
    pub fn hosts(&self) -> &[PgHost] {
        &self.hosts
    }

    /// The ports: one for all hosts, or one per host.
    #[must_use]
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The user name.
    #[must_use]
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database name.
    #[must_use]
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// Whether a password was found, and where (never the password).
    #[must_use]
    pub fn password_source(&self) -> &PasswordSource {
        &self.password_source
    }

    /// The TLS mode.
    #[must_use]
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The TLS root certificate file, if one was given.
    #[must_use]
    pub fn sslrootcert(&self) -> Option<&Path> {
        self.sslrootcert.as_deref()
    }

    /// The connect timeout per host, if any.
    #[must_use]
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The `application_name` reported to the server.
    #[must_use]
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// Replaces the `application_name` reported to the server.
    pub fn set_application_name(&mut self, name: impl Into<String>) {
        self.application_name = name.into();
    }

    /// The driver configuration (it holds the password; its own `Debug`
    /// redacts it).
    #[must_use]
    pub fn to_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        for h in &self.hosts {
            match h {
                PgHost::Tcp(name) => c.host(name),
                PgHost::Unix(dir) => c.host_path(dir),
            };
        }
        for p in &self.ports {
            c.port(*p);
        }
        c.user(&self.user).dbname(&self.dbname);
        c.application_name(&self.application_name);
        if let Some(pw) = &self.password {
            c.password(pw.0.as_bytes());
        }
        if let Some(t) = self.connect_timeout {
            c.connect_timeout(t);
        }
        if let Some(o) = &self.options {
            c.options(o);
        }
        c.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            _ => tokio_postgres::config::SslMode::Prefer,
        });
        c
    }

    /// Opens a connection and spawns its driver task on the current tokio
    /// runtime. The task ends when the returned client is dropped.
    ///
    /// # Errors
    ///
    /// [`ConnError::Connect`] naming the target (without password).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, ConnError> {
        let (client, connection) =
            self.to_config().connect(tokio_postgres::NoTls).await.map_err(
                |source| ConnError::Connect {
                    target: self.to_string(),
                    source,
                },
            )?;
        let target = self.to_string();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%target, error = %e, "connection ended");
            }
        });
        Ok(client)
    }
}

impl fmt::Display for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("host=")?;
        for (i, h) in self.hosts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{h}")?;
        }
        f.write_str(" port=")?;
        for (i, p) in self.ports.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        write!(
            f,
            " dbname={} user={} sslmode={}",
            self.dbname, self.user, self.sslmode
        )
    }
}

/// The server's message with its SQLSTATE, detail and context, or the
/// driver's message with its cause (e.g. "Connection refused").
pub(crate) fn driver_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!(
                "{}: {} ({})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(d) = db.detail() {
                s.push_str("; DETAIL: ");
                s.push_str(d);
            }
            if let Some(w) = db.where_() {
                s.push_str("; CONTEXT: ");
                s.push_str(w);
            }
            s
        }
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

fn key_name(key: &'static str, src: Source) -> &'static str {
    if src == Source::Conninfo {
        return key;
    }
    KEYS.iter().find(|(k, _)| *k == key).and_then(|(_, e)| *e).unwrap_or(key)
}

fn parse_port(s: &str, src: Source) -> Result<u16, ConnError> {
    if s.is_empty() {
        return Ok(5432);
    }
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ConnError::InvalidValue {
            key: key_name("port", src).to_owned(),
            reason: format!("\"{s}\" is not a port number"),
        }),
    }
}

/// libpq: an integer number of seconds; 0 or negative means no timeout,
/// and 1 is raised to 2.
fn parse_timeout(s: &str, src: Source) -> Result<Option<Duration>, ConnError> {
    let secs: i64 = s.trim().parse().map_err(|_| ConnError::InvalidValue {
        key: key_name("connect_timeout", src).to_owned(),
        reason: format!("\"{s}\" is not an integer number of seconds"),
    })?;
    Ok(match u64::try_from(secs) {
        Ok(0) | Err(_) => None,
        Ok(1) => Some(Duration::from_secs(2)),
        Ok(n) => Some(Duration::from_secs(n)),
    })
}

/// Parses a conninfo string into key/value pairs.
fn parse_conninfo(s: &str) -> Result<Params, ConnError> {
    if let Some(rest) = s
        .strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
    {
        parse_url(rest)
    } else {
        parse_keywords(s)
    }
}

/// Keyword/value pairs: `key = value`, values optionally single-quoted,
/// `\` escaping the next character.
fn parse_keywords(s: &str) -> Result<Params, ConnError> {
    let mut params = Params::default();
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else { break };
        let mut key = String::new();
        while let Some((_, c)) =
            chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace())
        {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(ConnError::Syntax(format!(
                "missing \"=\" after the word at byte {start}"
            )));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => value.push(e),
                        None => break,
                    },
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(ConnError::Syntax(format!(
                    "unterminated quoted value for \"{key}\""
                )));
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace())
            {
                if c == '\\' {
                    if let Some((_, e)) = chars.next() {
                        value.push(e);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        params.set(&key, value)?;
    }
    Ok(params)
}

/// `[user[:password]@][host[:port][,…]][/dbname][?key=value&…]`, after the
/// scheme.
fn parse_url(rest: &str) -> Result<Params, ConnError> {
    let mut params = Params::default();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (netloc, path) = match main.find('/') {
        Some(i) => (&main[..i], Some(&main[i + 1..])),
        None => (main, None),
    };
    let hostlist = match netloc.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                params.set("user", percent_decode(user, "user name")?)?;
            }
            if let Some(p) = password {
                params.set("password", percent_decode(p, "password")?)?;
            }
            hosts
        }
        None => netloc,
    };
    if !hostlist.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for spec in hostlist.split(',') {
            let (host, port) =
                if let Some(v6) = spec.strip_prefix('[') {
                    let Some((addr, after)) = v6.split_once(']') else {
                        return Err(ConnError::Syntax(
                            "unmatched \"[\" in an IPv6 host in the URL"
                                .to_owned(),
                        ));
                    };
                    match after.strip_prefix(':') {
                        Some(p) => (addr, p),
                        None if after.is_empty() => (addr, ""),
                        None => return Err(ConnError::Syntax(
                            "unexpected text after an IPv6 host in the URL"
                                .to_owned(),
                        )),
                    }
                } else {
                    spec.split_once(':').unwrap_or((spec, ""))
                };
            hosts.push(percent_decode(host, "host")?);
            ports.push(percent_decode(port, "port")?);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            params.set("host", hosts.join(","))?;
        }
        if ports.iter().any(|p| !p.is_empty()) {
            params.set("port", ports.join(","))?;
        }
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        params.set("dbname", percent_decode(db, "database name")?)?;
    }
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let Some((k, v)) = pair.split_once('=') else {
            return Err(ConnError::Syntax(
                "a URL query parameter has no \"=\"".to_owned(),
            ));
        };
        let k = percent_decode(k, "query key")?;
        let v = percent_decode(v, "query value")?;
        params.set(&k, v)?;
    }
    Ok(params)
}

/// Decodes `%XX` escapes; `what` names the part for the error message
/// (the text itself is never echoed).
fn percent_decode(s: &str, what: &str) -> Result<String, ConnError> {
    let bad = || {
        ConnError::Syntax(format!(
            "invalid percent-encoding in the URL {what}"
        ))
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// A parsed password file (`~/.pgpass`).
#[derive(Clone, Default)]
pub struct PassFile {
    lines: Vec<String>,
}

impl fmt::Debug for PassFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassFile")
            .field("lines", &self.lines.len())
            .finish_non_exhaustive()
    }
}

impl PassFile {
    /// Parses password-file text. Comment lines (`#`) and empty lines are
    /// dropped; the rest is matched lazily by [`PassFile::lookup`].
    #[must_use]
    pub fn parse(text: &str) -> PassFile {
        let lines = text
            .lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        PassFile { lines }
    }

    /// Reads and parses the password file at `path`, as libpq does: a
    /// missing file, a file that is not a regular file, and (on Unix) a
    /// file with any group or other permission bits are all ignored (the
    /// last two with a warning), giving `None`.
    #[must_use]
    pub fn load(path: &Path) -> Option<PassFile> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            tracing::warn!(
                path = %path.display(),
                "password file is not a plain file; ignored"
            );
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "password file has group or world access; permissions \
                     should be u=rw (0600) or less; ignored"
                );
                return None;
            }
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Some(PassFile::parse(&text)),
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "cannot read password file; ignored"
                );
                None
            }
        }
    }

    /// The password of the first line matching host, port, database and
    /// user, with libpq's rules: a field of exactly `*` matches anything,
    /// `\` makes the next character literal (`\:`, `\\`, `\*`), and the
    /// password ends at the first unescaped `:`.
    #[must_use]
    pub fn lookup(
        &self,
        host: &str,
        port: &str,
        dbname: &str,
        user: &str,
    ) -> Option<String> {
        self.lines.iter().find_map(|line| {
            let rest = match_field(line, host)?;
            let rest = match_field(rest, port)?;
            let rest = match_field(rest, dbname)?;
            let rest = match_field(rest, user)?;
            Some(unescape_password(rest))
        })
    }
}

/// libpq's `pwdfMatchesString`: if the next field of `line` matches
/// `token`, the text after its `:`.
fn match_field<'a>(line: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut want = token.chars();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        let (c, escaped) = if c == '\\' {
            match chars.next() {
                Some((_, e)) => (e, true),
                None => return None,
            }
        } else {
            (c, false)
        };
        if c == ':' && !escaped {
            return if want.next().is_none() {
                line.get(i + 1..)
            } else {
                None
            };
        }
        if want.next() != Some(c) {
            return None;
        }
    }
    None
}

/// The password field: up to the first unescaped `:`, escapes removed.
fn unescape_password(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ':' => break,
            '\\' => match chars.next() {
                Some(e) => out.push(e),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn pgpass_exact_match_and_first_wins() {
        let f = PassFile::parse(
            "# comment\n\
             db.example:5432:logs:loader:first\n\
             db.example:5432:logs:loader:second\n",
        );
        assert_eq!(
            f.lookup("db.example", "5432", "logs", "loader").as_deref(),
            Some("first")
        );
        assert_eq!(f.lookup("db.example", "5433", "logs", "loader"), None);
        assert_eq!(f.lookup("db.example", "5432", "log", "loader"), None);
        assert_eq!(f.lookup("db.example", "5432", "logsx", "loader"), None);
    }

    #[test]
    fn pgpass_wildcards() {
        let f = PassFile::parse("*:*:*:loader:any\n*:5433:*:*:port5433\n");
        assert_eq!(f.lookup("h", "1", "d", "loader").as_deref(), Some("any"));
        assert_eq!(
            f.lookup("h", "5433", "d", "x").as_deref(),
            Some("port5433")
        );
        assert_eq!(f.lookup("h", "5432", "d", "x"), None);
        // `*` is a wildcard only as a whole field.
        let f = PassFile::parse("db*:*:*:*:pw\n");
        assert_eq!(f.lookup("db1", "5432", "d", "u"), None);
        assert_eq!(f.lookup("db*", "5432", "d", "u").as_deref(), Some("pw"));
        // An escaped star is literal.
        let f = PassFile::parse("\\*:*:*:*:pw\n");
        assert_eq!(f.lookup("h", "5432", "d", "u"), None);
        assert_eq!(f.lookup("*", "5432", "d", "u").as_deref(), Some("pw"));
    }

    #[test]
    fn pgpass_escapes() {
        let f = PassFile::parse(
            "host\\:with\\:colons:5432:d\\\\b:u:pa\\:ss\\\\word:ignored\n",
        );
        assert_eq!(
            f.lookup("host:with:colons", "5432", "d\\b", "u").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(f.lookup("host", "with", "colons", "u"), None);
        // CRLF line ends and a password that is the rest of the line.
        let f = PassFile::parse("h:1:d:u:p@ss w0rd\r\n");
        assert_eq!(f.lookup("h", "1", "d", "u").as_deref(), Some("p@ss w0rd"));
        // Too few fields never match.
        let f = PassFile::parse("h:1:d\n");
        assert_eq!(f.lookup("h", "1", "d", "u"), None);
    }

    #[cfg(unix)]
    #[test]
    fn pgpass_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "cwl-pgpass-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();

        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(PassFile::load(&path).is_none(), "world-readable is ignored");
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        assert!(PassFile::load(&path).is_none(), "group-readable is ignored");
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let f = PassFile::load(&path).unwrap();
        assert_eq!(f.lookup("h", "1", "d", "u").as_deref(), Some("secret"));
        assert!(PassFile::load(&dir).is_none(), "a directory is ignored");
        assert!(PassFile::load(&dir.join("missing")).is_none());

        // Through resolve: PGPASSFILE, then the settings use it.
        let env =
            env_of(&[("PGPASSFILE", path.to_str().unwrap()), ("PGUSER", "u")]);
        let s = PgSettings::resolve_with_env("host=h", &env).unwrap();
        assert_eq!(
            s.password_source(),
            &PasswordSource::Passfile(path.clone())
        );
        assert_eq!(s.to_config().get_password(), Some(&b"secret"[..]));
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(0o604),
        )
        .unwrap();
        let s = PgSettings::resolve_with_env("host=h", &env).unwrap();
        assert_eq!(s.password_source(), &PasswordSource::None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pgpass_default_socket_is_localhost() {
        assert_eq!(
            PgHost::parse("/var/run/postgresql").passfile_name(),
            "localhost"
        );
        assert_eq!(PgHost::parse("/srv/pg").passfile_name(), "/srv/pg");
    }

    #[test]
    fn url_form() {
        let env = env_of(&[]);
        let s = PgSettings::resolve_with_env(
            "postgresql://lo%40der:p%3Ass@db1:6543,[::1]:6544/my%20db\
             ?sslmode=disable&application_name=x&connect_timeout=7",
            &env,
        )
        .unwrap();
        assert_eq!(s.user(), "lo@der");
        assert_eq!(s.dbname(), "my db");
        assert_eq!(
            s.hosts(),
            &[PgHost::Tcp("db1".into()), PgHost::Tcp("::1".into())]
        );
        assert_eq!(s.ports(), &[6543, 6544]);
        assert_eq!(s.sslmode(), SslMode::Disable);
        assert_eq!(s.application_name(), "x");
        assert_eq!(s.connect_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(s.password_source(), &PasswordSource::Conninfo);
        assert_eq!(s.to_config().get_password(), Some(&b"p:ss"[..]));
        // Unix socket through the query.
        let s = PgSettings::resolve_with_env(
            "postgres://u@/d?host=%2Fvar%2Frun%2Fpostgresql",
            &env,
        )
        .unwrap();
        assert_eq!(s.hosts(), &[PgHost::Unix("/var/run/postgresql".into())]);
    }

    #[test]
    fn keyword_form() {
        let env = env_of(&[]);
        let s = PgSettings::resolve_with_env(
            "host = h1,h2 port=5433  user='o\\'neil' dbname='a b' \
             password=x\\ y options='-c search_path=s'",
            &env,
        )
        .unwrap();
        assert_eq!(s.user(), "o'neil");
        assert_eq!(s.dbname(), "a b");
        assert_eq!(s.ports(), &[5433]);
        assert_eq!(s.hosts().len(), 2);
        assert_eq!(s.to_config().get_password(), Some(&b"x y"[..]));
        assert_eq!(s.to_config().get_options(), Some("-c search_path=s"));

        for bad in ["host", "host=h bogus=1", "user='unterminated", "port=x"] {
            assert!(PgSettings::resolve_with_env(bad, &env).is_err(), "{bad}");
        }
        assert!(matches!(
            PgSettings::resolve_with_env("hots=h", &env),
            Err(ConnError::UnknownOption(k)) if k == "hots"
        ));
        assert!(
            PgSettings::resolve_with_env("host=a,b,c port=1,2", &env).is_err()
        );
    }

    #[test]
    fn environment_fills_gaps_and_conninfo_wins() {
        let env = env_of(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "disable"),
            ("PGCONNECT_TIMEOUT", "1"),
            ("PGAPPNAME", "envapp"),
        ]);
        let s = PgSettings::resolve_with_env("", &env).unwrap();
        assert_eq!(s.hosts(), &[PgHost::Tcp("envhost".into())]);
        assert_eq!(s.ports(), &[6000]);
        assert_eq!((s.user(), s.dbname()), ("envuser", "envdb"));
        assert_eq!(s.password_source(), &PasswordSource::Env);
        assert_eq!(s.sslmode(), SslMode::Disable);
        assert_eq!(s.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(s.application_name(), "envapp");

        let s = PgSettings::resolve_with_env(
            "postgres://u:pw@h:1/d?sslmode=prefer",
            &env,
        )
        .unwrap();
        assert_eq!(s.hosts(), &[PgHost::Tcp("h".into())]);
        assert_eq!((s.user(), s.dbname()), ("u", "d"));
        assert_eq!(s.password_source(), &PasswordSource::Conninfo);
        assert_eq!(s.sslmode(), SslMode::Prefer);

        // Defaults: user from USER, dbname = user, localhost:5432.
        let s = PgSettings::resolve_with_env("", &env_of(&[("USER", "me")]))
            .unwrap();
        assert_eq!((s.user(), s.dbname()), ("me", "me"));
        assert_eq!(
            s.to_string(),
            "host=localhost port=5432 dbname=me \
                                   user=me sslmode=prefer"
        );
        assert!(matches!(
            PgSettings::resolve_with_env("", &env_of(&[])),
            Err(ConnError::NoUser)
        ));
        assert!(matches!(
            PgSettings::resolve_with_env("", &env_of(&[("PGSSLMODE", "nope"), ("USER", "u")])),
            Err(ConnError::InvalidValue { key, .. }) if key == "PGSSLMODE"
        ));
    }

    #[test]
    fn tls_modes_that_need_tls_fail_clearly() {
        let env = env_of(&[("USER", "u")]);
        for mode in ["require", "verify-ca", "verify-full"] {
            let e =
                PgSettings::resolve_with_env(&format!("sslmode={mode}"), &env)
                    .unwrap_err();
            assert!(matches!(e, ConnError::TlsUnavailable(_)));
            assert!(e.to_string().contains(mode), "{e}");
        }
        for mode in ["disable", "allow", "prefer"] {
            PgSettings::resolve_with_env(&format!("sslmode={mode}"), &env)
                .unwrap();
        }
    }

    #[test]
    fn password_is_redacted() {
        let env = env_of(&[]);
        let secret = "Sup3r-Secret";
        for conninfo in [
            format!("postgres://u:{secret}@h/d"),
            format!("user=u password={secret} host=h"),
        ] {
            let s = PgSettings::resolve_with_env(&conninfo, &env).unwrap();
            let shown = format!("{s} {s:?} {:?}", s.to_config());
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains(REDACTED) || !shown.contains("password"));
        }
        // Errors about the string never echo values.
        for conninfo in [
            format!("postgres://u:{secret}%zz@h/d"),
            format!("user=u {secret}"),
            format!("user=u password='{secret}"),
        ] {
            let e = PgSettings::resolve_with_env(&conninfo, &env).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(secret), "{shown}");
        }
        let f = PassFile::parse(&format!("*:*:*:*:{secret}\n"));
        assert!(!format!("{f:?}").contains(secret));
    }
}

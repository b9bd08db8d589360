//! PostgreSQL connection settings, resolved the way libpq resolves them.
//!
//! [`PgSettings::resolve`] takes a conninfo string, either a URL
//! (`postgres://user@host:5432/db?sslmode=disable`) or keyword/value pairs
//! (`host=db port=5432 dbname=logs`), and parses it with
//! `tokio_postgres::Config`. It then adds what libpq does and the driver
//! does not: what the string leaves out (or leaves empty) comes from the
//! environment, then from libpq's defaults, and the password may come from
//! the password file. A setting given in the string wins over the
//! environment.
//!
//! | setting            | conninfo key       | environment         | default                         |
//! |--------------------|--------------------|---------------------|---------------------------------|
//! | host(s)            | `host`             | `PGHOST`            | the Unix socket, else `localhost` |
//! | port(s)            | `port`             | `PGPORT`            | `5432`                          |
//! | user               | `user`             | `PGUSER`            | the operating-system user name  |
//! | database           | `dbname`           | `PGDATABASE`        | the user name                   |
//! | password           | `password`         | `PGPASSWORD`        | the password file               |
//! | password file      | `passfile`         | `PGPASSFILE`        | `~/.pgpass`                     |
//! | TLS mode           | `sslmode`          | `PGSSLMODE`         | `prefer`                        |
//! | TLS root cert      | `sslrootcert`      | `PGSSLROOTCERT`     | `~/.postgresql/root.crt`        |
//! | connect timeout    | `connect_timeout`  | `PGCONNECT_TIMEOUT` | none (seconds; `0` means none)  |
//! | application name   | `application_name` | `PGAPPNAME`         | `cwl-copy`                      |
//! | server options     | `options`          | `PGOPTIONS`         | none                            |
//!
//! With no host, the server's socket (`.s.PGSQL.<port>`) is looked for in
//! `/var/run/postgresql`, then `/tmp`; if neither has it, the host is
//! `localhost` over TCP. The driver's own keys `keepalives`,
//! `keepalives_idle`, `keepalives_interval`, `keepalives_retries`,
//! `tcp_user_timeout`, `target_session_attrs`, `channel_binding` and
//! `load_balance_hosts` are passed to it; any other key is an error
//! ([`ConnError::UnknownOption`]), libpq's `hostaddr` and `sslnegotiation`
//! included.
//!
//! Differences from libpq:
//!
//! - an environment variable set to the empty string counts as unset;
//! - libpq takes the default socket directory from its build, without
//!   looking;
//! - the operating-system user name is the `/etc/passwd` entry of the
//!   process's effective user id (libpq asks the password database, which
//!   may also be LDAP or other NSS sources); without one, `USER`, then
//!   `LOGNAME`;
//! - in a URL, `PGPORT` (else 5432) applies when no host has a port, as in
//!   libpq; when some hosts have one, the others get 5432 (libpq: its
//!   compiled-in default, 5432 too unless built otherwise);
//! - `service`/`PGSERVICE` (pg_service.conf), `hostaddr`/`PGHOSTADDR`,
//!   and the environment variables of the driver's own keys
//!   (`PGTARGETSESSIONATTRS`, `PGCHANNELBINDING`, `PGLOADBALANCEHOSTS`)
//!   are not read;
//! - in a URL, an `@` in the database name or query, and a `/` or `?` in
//!   the user name or password, must be percent-encoded (libpq and the
//!   driver would otherwise split the URL in the wrong place);
//! - with several hosts, the password file entry of the first host that
//!   has one is used for all of them.
//!
//! The password file follows libpq: lines `host:port:database:user:password`,
//! `#` comments, a field that is exactly `*` matches anything, `\` escapes
//! `:` and `\`, the first matching line wins, and on Unix a file readable
//! or writable by group or others is ignored with a warning. A Unix-socket
//! host in the default directory matches `localhost`.
//!
//! # TLS
//!
//! TLS uses rustls, with the aws-lc-rs provider. The modes are libpq's:
//!
//! - `disable`: no TLS;
//! - `allow`, `prefer`: TLS if the server accepts it, else plain text;
//!   the certificate is checked as under `require`;
//! - `require`: TLS or nothing; the certificate is not checked, unless a
//!   root certificate file is given or found, and then its chain is
//!   checked as under `verify-ca`;
//! - `verify-ca`: TLS, and the certificate's chain must lead to one of the
//!   roots; the host name is not checked;
//! - `verify-full`: as `verify-ca`, and the certificate must also name the
//!   host (its DNS name, or its IP address when the host is one).
//!
//! The roots are the PEM certificates of the file `sslrootcert` names, or,
//! with `sslrootcert=system`, the system's trusted roots (the
//! `SSL_CERT_FILE`/`SSL_CERT_DIR` environment variables apply). Without
//! `sslrootcert`, libpq's default file `~/.postgresql/root.crt` is used if
//! it exists. As in libpq 16, `sslrootcert=system` makes `verify-full` the
//! default mode, and any other mode is an error. The handshake signature
//! is always checked, even when the certificate is not. As in libpq, no
//! TLS is used over a Unix socket, whatever the mode.
//!
//! Failures name the host and say what is wrong:
//! [`ConnError::TlsHostName`] (the certificate is for another name),
//! [`ConnError::TlsUntrusted`] (not issued by one of the roots, which the
//! message names), [`ConnError::TlsNotSupported`] (the server refused TLS
//! under `require` or stricter), [`ConnError::RootCert`] (the root file
//! cannot be used).
//!
//! Differences from libpq's TLS:
//!
//! - `allow` tries TLS first, like `prefer` (libpq tries plain text
//!   first, then TLS if the server rejects it);
//! - a TLS handshake that fails is an error under `allow` and `prefer` too
//!   (libpq then retries without TLS); only a server that refuses TLS gets
//!   a plain connection;
//! - with `verify-ca` or `verify-full` and no root certificate file (none
//!   given, no `~/.postgresql/root.crt`), the system's roots are used
//!   (libpq fails);
//! - a file `sslrootcert` names that does not exist is an error under
//!   every mode that tries TLS (libpq ignores it below `verify-ca`);
//! - in a host list that mixes Unix sockets and TCP hosts, `require` and
//!   stricter modes fail on the Unix sockets (the driver has one mode for
//!   all hosts); a list of Unix sockets only never uses TLS, as in libpq;
//! - the client certificate settings (`sslcert`, `sslkey`), `sslcrl`,
//!   `sslnegotiation` and `ssl_min_protocol_version` are not supported (an
//!   error, like any unknown key); TLS 1.2 and 1.3 are offered.
//!
//! Root certificate files are read when connecting, in `spawn_blocking`.
//!
//! # Secrets
//!
//! The password never appears in `Display`, `Debug` or any error: the
//! `Debug` of [`PgSettings`] prints `password: Some("<redacted>")`, errors
//! about the conninfo string name keys and byte positions, never values.
//!
//! Resolution reads the environment, the password file and the socket
//! directories with blocking calls: call it before starting the async
//! runtime, or in `spawn_blocking`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// The value printed instead of a password.
const REDACTED: &str = "<redacted>";

/// Default Unix socket directories that libpq matches as `localhost` in
/// the password file.
const DEFAULT_SOCKET_DIRS: [&str; 3] =
    ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// Where the server's socket is looked for when no host is given, in
/// order.
const SOCKET_SEARCH: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// The port when none is given.
const DEFAULT_PORT: u16 = 5432;

/// The `application_name` when none is given.
const DEFAULT_APPLICATION_NAME: &str = "cwl-copy";

/// libpq's root certificate file when `sslrootcert` is not given,
/// relative to the home directory.
const DEFAULT_ROOT_CERT: &str = ".postgresql/root.crt";

/// The `sslrootcert` value that stands for the system's trusted roots.
const SYSTEM_ROOTS: &str = "system";

/// libpq keys this module reads itself, taken out of the string before
/// the driver parses it: the driver rejects `passfile`, `sslrootcert` and
/// the modes `allow`, `verify-ca` and `verify-full`, and its
/// `connect_timeout` neither raises 1 to 2 nor tells an explicit `0`
/// (which must win over `PGCONNECT_TIMEOUT`) from none.
const OWN_KEYS: [&str; 4] =
    ["sslmode", "sslrootcert", "passfile", "connect_timeout"];

/// Keys left to `tokio_postgres::Config`.
const DRIVER_KEYS: [&str; 15] = [
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "tcp_user_timeout",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

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
    /// No user name was given and none could be found: no password
    /// database entry for this process's user, and no `USER` or `LOGNAME`.
    #[error(
        "no user name: give user= in the connection string or set PGUSER \
         (this process's user id has no name in /etc/passwd, and USER and \
         LOGNAME are unset)"
    )]
    NoUser,
    /// The root certificate file (`sslrootcert`, or libpq's default
    /// `~/.postgresql/root.crt`) cannot be read or holds no usable
    /// certificate.
    #[error("root certificate file {}: {reason}", .path.display())]
    RootCert {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The server certificate is to be checked against the system's roots
    /// (`sslrootcert=system`, or `verify-ca`/`verify-full` without a root
    /// certificate file), and none were found.
    #[error(
        "no trusted root certificates found on this system{0}; give \
         sslrootcert=FILE with the server's CA certificate"
    )]
    NoSystemRoots(String),
    /// The TLS client could not be set up (a bug or an unusable crypto
    /// provider, not a problem with the server).
    #[error("setting up TLS: {0}")]
    TlsSetup(String),
    /// `sslmode` is `require` or stricter, and the server does not accept
    /// TLS connections.
    #[error(
        "connecting to {target}: the server does not support TLS, and \
         sslmode={mode} requires it"
    )]
    TlsNotSupported {
        /// The connection target, without password.
        target: String,
        /// The TLS mode.
        mode: SslMode,
    },
    /// `sslmode=verify-full`: the server certificate is valid, but not
    /// for the host name connected to.
    #[error(
        "connecting to {target}: the server certificate does not match \
         the host name \"{host}\"{} (sslmode=verify-full)",
        presented_names(.presented)
    )]
    TlsHostName {
        /// The connection target, without password.
        target: String,
        /// The host name (or address) the certificate should name.
        host: String,
        /// The names the certificate holds (its subject alternative
        /// names), if known.
        presented: Vec<String>,
    },
    /// The server certificate does not verify against the roots: an
    /// unknown issuer, or an expired, malformed or misused certificate.
    #[error(
        "connecting to {target}: the server certificate is not trusted: \
         {reason}"
    )]
    TlsUntrusted {
        /// The connection target, without password.
        target: String,
        /// What failed, naming the roots checked against.
        reason: String,
    },
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

/// libpq's `sslmode`: whether TLS is used, and what of the server's
/// certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS if the server accepts it, else plain text (libpq tries
    /// plain text first; here it is the same as [`SslMode::Prefer`]).
    Allow,
    /// Use TLS if the server accepts it, else plain text. The default.
    Prefer,
    /// Require TLS; check the certificate only if a root certificate file
    /// is given or found (then as [`SslMode::VerifyCa`]).
    Require,
    /// Require TLS and a certificate issued by one of the roots.
    VerifyCa,
    /// Require TLS, a certificate issued by one of the roots, and the host
    /// name in it.
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

    fn from_driver(host: &Host) -> PgHost {
        match host {
            Host::Tcp(h) => PgHost::Tcp(h.clone()),
            Host::Unix(p) => PgHost::Unix(p.clone()),
        }
    }

    /// An empty entry of a host list, which stands for the default host.
    fn is_empty(&self) -> bool {
        matches!(self, PgHost::Tcp(h) if h.is_empty())
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
#[derive(Clone)]
pub struct PgSettings {
    /// The complete driver configuration: hosts, ports, user, database,
    /// password and the rest, all resolved.
    config: Config,
    /// The hosts, as also given to `config`.
    hosts: Vec<PgHost>,
    password_source: PasswordSource,
    sslmode: SslMode,
    /// `sslrootcert` as given (`system` included).
    sslrootcert: Option<PathBuf>,
    /// libpq's default root certificate file, used if it exists when
    /// connecting and `sslrootcert` is not given.
    default_rootcert: Option<PathBuf>,
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
    /// [`ConnError`] for a malformed string, an unknown key, a bad value
    /// (`sslrootcert=system` with a mode weaker than `verify-full`
    /// included), or a missing user name.
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
    /// process environment (for tests and embedding). The password file
    /// and the socket directories are still read from the file system.
    ///
    /// # Errors
    ///
    /// As [`PgSettings::resolve`].
    pub fn resolve_with_env(
        conninfo: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgSettings, ConnError> {
        PgSettings::resolve_in(conninfo, env, &is_socket, &os_user_name)
    }

    /// Like [`PgSettings::resolve_with_env`], with `socket_exists` telling
    /// whether a server socket exists at a path, and `os_user` giving the
    /// operating-system user name.
    fn resolve_in(
        conninfo: &str,
        env: &dyn Fn(&str) -> Option<String>,
        socket_exists: &dyn Fn(&Path) -> bool,
        os_user: &dyn Fn() -> Option<String>,
    ) -> Result<PgSettings, ConnError> {
        let (rest, own) = split_conninfo(conninfo)?;
        let given: Config = rest.parse().map_err(|e| parse_error(&e))?;
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let pick = |given: Option<&str>, key, var_name| {
            setting(given, key, var_name, env)
        };

        let ports = if given.get_ports().is_empty() || own.url_without_port {
            match pick(None, "port", "PGPORT") {
                Some((p, name)) => p
                    .split(',')
                    .map(|one| parse_port(one, name))
                    .collect::<Result<Vec<u16>, ConnError>>()?,
                None => vec![DEFAULT_PORT],
            }
        } else if given.get_ports().contains(&0) {
            return Err(ConnError::InvalidValue {
                key: "port".to_owned(),
                reason: "0 is not a port number".to_owned(),
            });
        } else {
            given.get_ports().to_vec()
        };
        let mut hosts: Vec<PgHost> = if given.get_hosts().is_empty() {
            match pick(None, "host", "PGHOST") {
                Some((h, _)) => h.split(',').map(PgHost::parse).collect(),
                None => Vec::new(),
            }
        } else {
            given.get_hosts().iter().map(PgHost::from_driver).collect()
        };
        if hosts.is_empty() {
            hosts.push(PgHost::Tcp(String::new()));
        }
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
        for (i, host) in hosts.iter_mut().enumerate() {
            if host.is_empty() {
                *host = default_host(port_of(&ports, i), socket_exists);
            }
        }

        let user = match pick(given.get_user(), "user", "PGUSER") {
            Some((u, _)) => u,
            None => os_user()
                .filter(|u| !u.is_empty())
                .or_else(|| ["USER", "LOGNAME"].into_iter().find_map(var))
                .ok_or(ConnError::NoUser)?,
        };
        let dbname = pick(given.get_dbname(), "dbname", "PGDATABASE")
            .map_or_else(|| user.clone(), |(d, _)| d);
        let sslrootcert =
            pick(own.get("sslrootcert"), "sslrootcert", "PGSSLROOTCERT")
                .map(|(p, _)| PathBuf::from(p));
        let system_roots =
            sslrootcert.as_deref() == Some(Path::new(SYSTEM_ROOTS));
        let sslmode = match pick(own.get("sslmode"), "sslmode", "PGSSLMODE") {
            Some((m, name)) => {
                let mode = SslMode::parse(&m, name)?;
                if system_roots && mode != SslMode::VerifyFull {
                    // libpq 16: any CA in the system's store vouches for
                    // any name it likes, so only verify-full means
                    // anything.
                    return Err(ConnError::InvalidValue {
                        key: name.to_owned(),
                        reason: format!(
                            "weak sslmode \"{mode}\" may not be used with \
                             sslrootcert=system (use \"verify-full\")"
                        ),
                    });
                }
                mode
            }
            None if system_roots => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        let default_rootcert =
            var("HOME").map(|h| Path::new(&h).join(DEFAULT_ROOT_CERT));
        let connect_timeout = match pick(
            own.get("connect_timeout"),
            "connect_timeout",
            "PGCONNECT_TIMEOUT",
        ) {
            Some((t, name)) => parse_timeout(&t, name)?,
            None => None,
        };
        let application_name = pick(
            given.get_application_name(),
            "application_name",
            "PGAPPNAME",
        )
        .map_or_else(|| DEFAULT_APPLICATION_NAME.to_owned(), |(a, _)| a);
        let options = pick(given.get_options(), "options", "PGOPTIONS");

        // The driver's own settings, as parsed; this module sets the rest.
        let mut config = Config::new();
        config
            .keepalives(given.get_keepalives())
            .keepalives_idle(given.get_keepalives_idle())
            .target_session_attrs(given.get_target_session_attrs())
            .channel_binding(given.get_channel_binding())
            .load_balance_hosts(given.get_load_balance_hosts());
        if let Some(d) = given.get_keepalives_interval() {
            config.keepalives_interval(d);
        }
        if let Some(n) = given.get_keepalives_retries() {
            config.keepalives_retries(n);
        }
        if let Some(&d) = given.get_tcp_user_timeout() {
            config.tcp_user_timeout(d);
        }
        for h in &hosts {
            match h {
                PgHost::Tcp(name) => config.host(name),
                PgHost::Unix(dir) => config.host_path(dir),
            };
        }
        for p in &ports {
            config.port(*p);
        }
        let password_source = if let Some(p) =
            given.get_password().filter(|p| !p.is_empty())
        {
            config.password(p);
            PasswordSource::Conninfo
        } else if let Some(p) = var("PGPASSWORD") {
            config.password(p);
            PasswordSource::Env
        } else {
            let file =
                match pick(own.get("passfile"), "passfile", "PGPASSFILE") {
                    Some((p, _)) => Some(PathBuf::from(p)),
                    None => var("HOME").map(|h| Path::new(&h).join(".pgpass")),
                };
            let found = file.and_then(|f| {
                let pw =
                    password_from_file(&f, &hosts, &ports, &dbname, &user)?;
                Some((f, pw))
            });
            match found {
                Some((f, pw)) => {
                    config.password(pw);
                    PasswordSource::Passfile(f)
                }
                None => PasswordSource::None,
            }
        };
        config.user(user).dbname(dbname).application_name(application_name);
        // libpq never uses TLS over a Unix socket (nor does the server
        // accept it there).
        let tcp = hosts.iter().any(|h| matches!(h, PgHost::Tcp(_)));
        config.ssl_mode(match sslmode {
            _ if !tcp => tokio_postgres::config::SslMode::Disable,
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => {
                tokio_postgres::config::SslMode::Prefer
            }
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        if let Some(t) = connect_timeout {
            config.connect_timeout(t);
        }
        if let Some((o, _)) = options {
            config.options(o);
        }
        Ok(PgSettings {
            config,
            hosts,
            password_source,
            sslmode,
            sslrootcert,
            default_rootcert,
        })
    }

    /// The hosts, in connection order.
    #[must_use]
    pub fn hosts(&self) -> &[PgHost] {
        &self.hosts
    }

    /// The ports: one for all hosts, or one per host.
    #[must_use]
    pub fn ports(&self) -> &[u16] {
        self.config.get_ports()
    }

    /// The user name.
    #[must_use]
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }

    /// The database name.
    #[must_use]
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
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

    /// The TLS root certificate file, if one was given (`system` for the
    /// system's roots, as given).
    #[must_use]
    pub fn sslrootcert(&self) -> Option<&Path> {
        self.sslrootcert.as_deref()
    }

    /// The connect timeout per host, if any.
    #[must_use]
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.config.get_connect_timeout().copied()
    }

    /// The `application_name` reported to the server.
    #[must_use]
    pub fn application_name(&self) -> &str {
        self.config.get_application_name().unwrap_or("")
    }

    /// Replaces the `application_name` reported to the server.
    pub fn set_application_name(&mut self, name: impl Into<String>) {
        self.config.application_name(name);
    }

    /// The driver configuration (it holds the password; its own `Debug`
    /// redacts it).
    #[must_use]
    pub fn to_config(&self) -> Config {
        self.config.clone()
    }

    /// Opens a connection and spawns its driver task on the current tokio
    /// runtime. The task ends when the returned client is dropped.
    ///
    /// Unless `sslmode=disable`, the TLS client is set up first (reading
    /// the root certificates, in `spawn_blocking`) and TLS is negotiated
    /// as the module docs describe.
    ///
    /// # Errors
    ///
    /// Each naming the target (without password):
    /// [`ConnError::TlsHostName`], [`ConnError::TlsUntrusted`] and
    /// [`ConnError::TlsNotSupported`] when the server's TLS does not pass
    /// `sslmode`, [`ConnError::RootCert`] or [`ConnError::NoSystemRoots`]
    /// when there is nothing to check its certificate against, and
    /// [`ConnError::Connect`] for any other failure.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, ConnError> {
        let target = self.to_string();
        if self.config.get_ssl_mode()
            == tokio_postgres::config::SslMode::Disable
        {
            let (client, connection) =
                self.config.connect(tokio_postgres::NoTls).await.map_err(
                    |source| ConnError::Connect {
                        target: target.clone(),
                        source,
                    },
                )?;
            spawn_connection(connection, target);
            return Ok(client);
        }
        let mode = self.sslmode;
        let rootcert = self.sslrootcert.clone();
        let default_rootcert = self.default_rootcert.clone();
        let tls = tokio::task::spawn_blocking(move || {
            // libpq reads its default file only if it is there.
            let default = default_rootcert.filter(|p| p.exists());
            tls_client(&verify_policy(
                mode,
                rootcert.as_deref(),
                default.as_deref(),
            ))
        })
        .await
        .map_err(|e| ConnError::TlsSetup(e.to_string()))??;
        let (client, connection) = self
            .config
            .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls.config))
            .await
            .map_err(|source| self.connect_error(source, tls.roots))?;
        spawn_connection(connection, target);
        Ok(client)
    }

    /// `source` as a [`ConnError`]: one of the TLS variants if it is a
    /// certificate the verifier rejected or a server that refused TLS
    /// under `require`, else [`ConnError::Connect`].
    fn connect_error(
        &self,
        source: tokio_postgres::Error,
        roots: Option<String>,
    ) -> ConnError {
        let target = self.to_string();
        if let Some(e) = rustls_error(&source) {
            let host = || {
                let hosts: Vec<String> =
                    self.hosts.iter().map(ToString::to_string).collect();
                hosts.join(",")
            };
            if let Some(mapped) = tls_failure(e, &target, roots, host) {
                return mapped;
            }
        } else if self.config.get_ssl_mode()
            == tokio_postgres::config::SslMode::Require
            && std::error::Error::source(&source)
                .is_some_and(|c| c.to_string() == DRIVER_NO_TLS)
        {
            return ConnError::TlsNotSupported { target, mode: self.sslmode };
        }
        ConnError::Connect { target, source }
    }
}

/// The driver's message when the server answers `SSLRequest` with `N`
/// and the mode is `Require`.
const DRIVER_NO_TLS: &str = "server does not support TLS";

/// Runs the driver's side of a connection until the client is dropped.
fn spawn_connection<S, T>(
    connection: tokio_postgres::Connection<S, T>,
    target: String,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(%target, error = %e, "connection ended");
        }
    });
}

/// What is checked of the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verify {
    /// Nothing ([`AnyCertificate`]): `require`, `allow` and `prefer`
    /// without root certificates.
    Nothing,
    /// Its chain, against the roots, not the host name
    /// ([`ChainOnly`]): `verify-ca`, and the weaker modes with root
    /// certificates.
    Chain(Roots),
    /// Its chain and the host name (rustls's `WebPkiServerVerifier`):
    /// `verify-full`.
    Full(Roots),
}

/// The root certificates a server certificate is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Roots {
    /// The certificates of a PEM file.
    File(PathBuf),
    /// The system's trusted roots (`rustls-native-certs`).
    System,
}

impl Roots {
    /// The roots, for error messages.
    fn describe(&self) -> String {
        match self {
            Roots::File(p) => {
                format!("the root certificate file {}", p.display())
            }
            Roots::System => "the system's trusted roots".to_owned(),
        }
    }
}

/// libpq's rules: what `mode` checks, given `sslrootcert` (`rootcert`,
/// `system` included) and libpq's default root certificate file if it
/// exists (`default_rootcert`). Without either, `verify-ca` and
/// `verify-full` use the system's roots (where libpq fails). Not called
/// for [`SslMode::Disable`].
fn verify_policy(
    mode: SslMode,
    rootcert: Option<&Path>,
    default_rootcert: Option<&Path>,
) -> Verify {
    let roots = match rootcert {
        Some(p) if p == Path::new(SYSTEM_ROOTS) => Some(Roots::System),
        Some(p) => Some(Roots::File(p.to_owned())),
        None => default_rootcert.map(|p| Roots::File(p.to_owned())),
    };
    match mode {
        SslMode::VerifyFull => Verify::Full(roots.unwrap_or(Roots::System)),
        SslMode::VerifyCa => Verify::Chain(roots.unwrap_or(Roots::System)),
        SslMode::Disable
        | SslMode::Allow
        | SslMode::Prefer
        | SslMode::Require => roots.map_or(Verify::Nothing, Verify::Chain),
    }
}

/// A TLS client configuration and what it checks against.
struct TlsClient {
    config: rustls::ClientConfig,
    /// [`Roots::describe`] of the roots, if certificates are checked.
    roots: Option<String>,
}

/// The rustls client for `verify`, with the aws-lc-rs provider, TLS 1.2
/// and 1.3, and no client certificate. Reads the root certificates
/// (blocking).
fn tls_client(verify: &Verify) -> Result<TlsClient, ConnError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let (verifier, roots): (Arc<dyn ServerCertVerifier>, _) = match verify {
        Verify::Nothing => (Arc::new(AnyCertificate { algorithms }), None),
        Verify::Chain(r) => {
            let roots = Arc::new(load_roots(r)?);
            (Arc::new(ChainOnly { roots, algorithms }), Some(r.describe()))
        }
        Verify::Full(r) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(
                Arc::new(load_roots(r)?),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|e| ConnError::TlsSetup(e.to_string()))?;
            (verifier, Some(r.describe()))
        }
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnError::TlsSetup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(TlsClient { config, roots })
}

/// The certificates of `roots`; never empty.
fn load_roots(roots: &Roots) -> Result<RootCertStore, ConnError> {
    match roots {
        Roots::File(path) => root_file(path),
        Roots::System => system_roots(),
    }
}

/// Every PEM certificate of the file at `path` (other PEM sections are
/// skipped); a certificate that does not parse is an error, as in libpq.
fn root_file(path: &Path) -> Result<RootCertStore, ConnError> {
    let bad =
        |reason: String| ConnError::RootCert { path: path.to_owned(), reason };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut store = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let n = i + 1;
        let cert = cert.map_err(|e| bad(format!("certificate {n}: {e}")))?;
        store.add(cert).map_err(|e| bad(format!("certificate {n}: {e}")))?;
    }
    if store.is_empty() {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
                .to_owned(),
        ));
    }
    Ok(store)
}

/// The system's trusted roots, those that parse.
fn system_roots() -> Result<RootCertStore, ConnError> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "loading the system's root certificates");
    }
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "system root certificates that do not parse");
    }
    if added == 0 {
        let why: Vec<String> =
            found.errors.iter().map(ToString::to_string).collect();
        return Err(ConnError::NoSystemRoots(if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join("; "))
        }));
    }
    Ok(store)
}

/// The certificate verifier of `require`, `allow` and `prefer` without
/// root certificates.
///
/// Like libpq in these modes it accepts any certificate, whoever issued
/// it and whatever names it holds: the connection is encrypted, but the
/// server is not authenticated (someone in the middle can present a
/// certificate of their own). The handshake signature is still verified,
/// with the provider's algorithms, so the server must at least hold the
/// private key of the certificate it presents.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate verifier of `verify-ca` (and of the weaker modes
/// given root certificates).
///
/// It verifies the chain with webpki exactly as `verify-full` does, from
/// the server's certificate through the intermediates it sends to one of
/// the roots (signatures, validity dates, CA constraints, and the TLS
/// server usage), and skips only the host name check: any certificate
/// the roots issued is accepted for any host, as in libpq. There is no
/// revocation check (libpq checks only with `sslcrl`, not supported), and
/// a stapled OCSP response is ignored. Handshake signatures are verified
/// with the provider's algorithms.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls error behind a failed connection, if any (the driver wraps
/// it in the `io::Error` of the TLS stream).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> =
        std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) =
            err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
        }
        next = err.source();
    }
    None
}

/// The [`ConnError`] for a certificate the verifier rejected; `None` for
/// any other TLS error. `roots` describes what it was checked against;
/// `host` gives the host names, for a name mismatch without context.
fn tls_failure(
    e: &rustls::Error,
    target: &str,
    roots: Option<String>,
    host: impl FnOnce() -> String,
) -> Option<ConnError> {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return None;
    };
    let target = target.to_owned();
    let roots = roots.unwrap_or_else(|| "the roots".to_owned());
    Some(match cert {
        CertificateError::NotValidForNameContext { expected, presented } => {
            ConnError::TlsHostName {
                target,
                host: expected.to_str().into_owned(),
                presented: presented.iter().map(|n| general_name(n)).collect(),
            }
        }
        CertificateError::NotValidForName => {
            ConnError::TlsHostName { target, host: host(), presented: vec![] }
        }
        CertificateError::UnknownIssuer => ConnError::TlsUntrusted {
            target,
            reason: format!(
                "it was not issued by a certificate authority in {roots}"
            ),
        },
        other => ConnError::TlsUntrusted {
            target,
            reason: format!("{other} (checked against {roots})"),
        },
    })
}

/// A name webpki presents as `DnsName("db.example")` or
/// `IpAddress(10.0.0.1)`, as `db.example` or `10.0.0.1`.
fn general_name(presented: &str) -> String {
    let inner = presented
        .strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|s| s.strip_suffix(')'))
        });
    inner.unwrap_or(presented).to_owned()
}

/// `" (it is for a, b)"`, or nothing if no names are known.
fn presented_names(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("; the certificate is for {}", names.join(", "))
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
        for (i, p) in self.ports().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        write!(
            f,
            " dbname={} user={} sslmode={}",
            self.dbname(),
            self.user(),
            self.sslmode
        )
    }
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("PgSettings")
            .field("hosts", &self.hosts)
            .field("ports", &c.get_ports())
            .field("user", &self.user())
            .field("dbname", &self.dbname())
            .field("password", &c.get_password().map(|_| REDACTED))
            .field("password_source", &self.password_source)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("connect_timeout", &c.get_connect_timeout())
            .field("application_name", &self.application_name())
            .field("options", &c.get_options())
            .finish_non_exhaustive()
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

/// The string's value for `key` if given and not empty, else the
/// environment variable `var` if set and not empty, with the name to blame
/// for a bad value.
fn setting(
    given: Option<&str>,
    key: &'static str,
    var: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, &'static str)> {
    match given.filter(|v| !v.is_empty()) {
        Some(v) => Some((v.to_owned(), key)),
        None => env(var).filter(|v| !v.is_empty()).map(|v| (v, var)),
    }
}

/// The port of the `i`th host: its own, or the one port for all.
fn port_of(ports: &[u16], i: usize) -> u16 {
    ports.get(i).or_else(|| ports.first()).copied().unwrap_or(DEFAULT_PORT)
}

/// libpq's default host: the first of [`SOCKET_SEARCH`] holding the
/// server's socket for `port`, else `localhost` over TCP.
fn default_host(port: u16, socket_exists: &dyn Fn(&Path) -> bool) -> PgHost {
    let socket = format!(".s.PGSQL.{port}");
    SOCKET_SEARCH
        .iter()
        .map(Path::new)
        .find(|dir| socket_exists(&dir.join(&socket)))
        .map_or_else(
            || PgHost::Tcp("localhost".to_owned()),
            |dir| PgHost::Unix(dir.to_path_buf()),
        )
}

/// The operating-system user name, as libpq finds it: the password
/// database's entry for the process's effective user id (read from
/// `/etc/passwd`; the id is the owner of `/proc/self`, so this is Linux
/// only, elsewhere `None`).
#[cfg(unix)]
fn os_user_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    passwd_name(&std::fs::read_to_string("/etc/passwd").ok()?, uid)
}

/// The operating-system user name: not looked up on this platform.
#[cfg(not(unix))]
fn os_user_name() -> Option<String> {
    None
}

/// The name of user `uid` in `passwd` (lines `name:password:uid:…`).
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id: u32 = fields.next()?.trim().parse().ok()?;
        (id == uid && !name.is_empty() && !name.starts_with(['#', '+', '-']))
            .then(|| name.to_owned())
    })
}

/// Whether `path` is a Unix socket.
#[cfg(unix)]
fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Whether `path` is a Unix socket: never, on this platform.
#[cfg(not(unix))]
fn is_socket(_path: &Path) -> bool {
    false
}

/// The password for the first of `hosts` that has an entry in the password
/// file at `path`, if that file exists and is private.
fn password_from_file(
    path: &Path,
    hosts: &[PgHost],
    ports: &[u16],
    dbname: &str,
    user: &str,
) -> Option<String> {
    let file = PassFile::load(path)?;
    hosts.iter().enumerate().find_map(|(i, host)| {
        let port = port_of(ports, i).to_string();
        file.lookup(&host.passfile_name(), &port, dbname, user)
    })
}

fn parse_port(s: &str, key: &str) -> Result<u16, ConnError> {
    if s.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ConnError::InvalidValue {
            key: key.to_owned(),
            reason: format!("\"{s}\" is not a port number"),
        }),
    }
}

/// libpq: an integer number of seconds; 0 or negative means no timeout,
/// and 1 is raised to 2.
fn parse_timeout(s: &str, key: &str) -> Result<Option<Duration>, ConnError> {
    let secs: i64 = s.trim().parse().map_err(|_| ConnError::InvalidValue {
        key: key.to_owned(),
        reason: format!("\"{s}\" is not an integer number of seconds"),
    })?;
    Ok(match u64::try_from(secs) {
        Ok(0) | Err(_) => None,
        Ok(1) => Some(Duration::from_secs(2)),
        Ok(n) => Some(Duration::from_secs(n)),
    })
}

/// A `tokio_postgres::Config` parse error. Its messages name keys and byte
/// positions; the character some quote after "but got" is cut off, in case
/// it is part of a password.
fn parse_error(e: &tokio_postgres::Error) -> ConnError {
    let mut cause = std::error::Error::source(e)
        .map_or_else(|| e.to_string(), ToString::to_string);
    if let Some(i) = cause.find(" but got") {
        cause.truncate(i);
    }
    ConnError::Syntax(cause)
}

/// The values the string gives for [`OWN_KEYS`], the last one winning,
/// and what the driver's parse does not tell.
#[derive(Default)]
struct Own {
    values: Vec<(&'static str, String)>,
    /// A URL that names hosts and no port: the driver gives each host
    /// the port 5432, where libpq uses `PGPORT`.
    url_without_port: bool,
}

impl Own {
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether any host of a URL's host list (`h1:p1,[::1]:p2,h3`) has a port.
fn url_hosts_have_port(hosts: &str) -> bool {
    hosts.split(',').any(|h| match h.strip_prefix('[') {
        Some(v6) => {
            v6.split_once(']').is_some_and(|(_, p)| p.starts_with(':'))
        }
        None => h.contains(':'),
    })
}

/// `Some` of a key this module reads itself, `None` for one the driver
/// reads, an error for any other.
fn own_key(key: &str) -> Result<Option<&'static str>, ConnError> {
    if let Some(k) = OWN_KEYS.iter().find(|k| **k == key) {
        return Ok(Some(k));
    }
    if DRIVER_KEYS.contains(&key) {
        Ok(None)
    } else {
        Err(ConnError::UnknownOption(key.to_owned()))
    }
}

/// Checks every key of `conninfo` and takes the [`OWN_KEYS`] out of it,
/// giving what is left for the driver to parse, and their values.
fn split_conninfo(conninfo: &str) -> Result<(String, Own), ConnError> {
    match ["postgresql://", "postgres://"]
        .into_iter()
        .find(|scheme| conninfo.starts_with(scheme))
    {
        Some(scheme) => split_url(conninfo, scheme.len()),
        None => split_keywords(conninfo),
    }
}

/// [`split_conninfo`] for a URL whose scheme is `scheme_len` bytes long.
/// Only the query can hold [`OWN_KEYS`].
fn split_url(s: &str, scheme_len: usize) -> Result<(String, Own), ConnError> {
    let body = s.get(scheme_len..).unwrap_or("");
    // The driver ends the user info at the first `@`, wherever it is;
    // libpq at the first `@` before a `/`. Refuse what they would split
    // differently, or at an `@` that belongs to the password.
    let mut query_from = scheme_len;
    if let Some(at) = body.find('@') {
        let (userinfo, after) = body.split_at(at);
        let after = after.get(1..).unwrap_or("");
        let hosts = after.split(['/', '?']).next().unwrap_or("");
        if userinfo.contains(['/', '?']) || hosts.contains('@') {
            return Err(ConnError::Syntax(
                "ambiguous \"@\" in the URL: percent-encode \"@\", \"/\" and \
                 \"?\" in the user name and password, and \"@\" in the \
                 database name and query (%40, %2F, %3F)"
                    .to_owned(),
            ));
        }
        query_from += at + 1;
    }
    let hosts = s.get(query_from..).unwrap_or("");
    let hosts = hosts.split(['/', '?']).next().unwrap_or("");
    let mut own = Own {
        url_without_port: !hosts.is_empty() && !url_hosts_have_port(hosts),
        ..Own::default()
    };
    let Some(q) = s.get(query_from..).and_then(|rest| rest.find('?')) else {
        return Ok((s.to_owned(), own));
    };
    let (head, query) = s.split_at(query_from + q + 1);
    let mut rest = head.to_owned();
    let mut kept = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(ConnError::Syntax(
                "a URL query parameter has no \"=\"".to_owned(),
            ));
        };
        match own_key(&percent_decode(k, "query key")?)? {
            Some(key) => {
                own.values.push((key, percent_decode(v, "query value")?));
            }
            None => {
                if kept > 0 {
                    rest.push('&');
                }
                rest.push_str(pair);
                kept += 1;
            }
        }
    }
    Ok((rest, own))
}

/// [`split_conninfo`] for keyword/value pairs.
fn split_keywords(s: &str) -> Result<(String, Own), ConnError> {
    let mut own = Own::default();
    let mut rest = String::with_capacity(s.len());
    let mut copied = 0;
    for pair in keyword_pairs(s)? {
        if let Some(key) = own_key(pair.key)? {
            rest.push_str(s.get(copied..pair.span.start).unwrap_or(""));
            copied = pair.span.end;
            own.values.push((key, unescape(pair.value)));
        }
    }
    rest.push_str(s.get(copied..).unwrap_or(""));
    Ok((rest, own))
}

/// One `key = value` of a keyword/value string.
struct Pair<'a> {
    /// Where the pair is in the string, from its key to the end of its
    /// value.
    span: Range<usize>,
    key: &'a str,
    /// The value without its quotes, escapes still in.
    value: &'a str,
}

/// The pairs of a keyword/value string, in the grammar of libpq and of
/// `tokio_postgres::Config`: `key = value`, separated by white space,
/// values either single-quoted or running to the next white space, with
/// `\` making the next character literal. Errors name byte positions and
/// keys, never values.
fn keyword_pairs(s: &str) -> Result<Vec<Pair<'_>>, ConnError> {
    let syntax = |m: String| Err(ConnError::Syntax(m));
    let mut pairs = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let start = s.len() - rest.len();
        let (key, after) = rest.split_at(
            rest.find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(rest.len()),
        );
        if key.is_empty() {
            return syntax(format!("expected a keyword at byte {start}"));
        }
        let Some(after) = after.trim_start().strip_prefix('=') else {
            return syntax(format!(
                "missing \"=\" after the word at byte {start}"
            ));
        };
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('\'') {
            let Some(end) = unescaped(quoted, |c| c == '\'') else {
                return syntax(format!(
                    "unterminated quoted value for \"{key}\""
                ));
            };
            // `end` is the closing quote, one byte long.
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = unescaped(after, char::is_whitespace);
            let (value, tail) = after.split_at(end.unwrap_or(after.len()));
            // Empty once unescaped: nothing, or a lone trailing `\`.
            if value.is_empty() || value == "\\" {
                return syntax(format!("missing value for \"{key}\""));
            }
            (value, tail)
        };
        pairs.push(Pair { span: start..s.len() - tail.len(), key, value });
        rest = tail.trim_start();
    }
    Ok(pairs)
}

/// The byte offset of the first character of `s` matching `end` that no
/// `\` escapes.
fn unescaped(s: &str, end: impl Fn(char) -> bool) -> Option<usize> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if end(c) {
            return Some(i);
        }
    }
    None
}

/// A value with its `\` escapes removed.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
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
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(bad());
            }
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

    /// Resolves with `env` and no server socket anywhere, so that the
    /// default host is `localhost` whatever runs on this machine.
    fn resolve(
        conninfo: &str,
        env: &[(&str, &str)],
    ) -> Result<PgSettings, ConnError> {
        PgSettings::resolve_in(conninfo, &env_of(env), &|_| false, &|| None)
    }

    #[test]
    fn passwd_lookup() {
        let passwd = "# comment\n\
                      root:x:0:0:root:/root:/bin/bash\n\
                      +nis::::::\n\
                      loader:x:1000:1000::/home/loader:/bin/sh\n\
                      broken:x:notanumber:1::/:/bin/sh\n\
                      :x:2000:1::/:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("loader"));
        assert_eq!(passwd_name(passwd, 2000), None);
        assert_eq!(passwd_name(passwd, 4242), None);
        assert_eq!(passwd_name("", 0), None);
        // This process's own name, where there is one.
        #[cfg(target_os = "linux")]
        if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
            use std::os::unix::fs::MetadataExt;
            let uid = std::fs::metadata("/proc/self").unwrap().uid();
            assert_eq!(os_user_name(), passwd_name(&passwd, uid));
        }
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
        std::fs::write(&path, "*:*:*:*:secret\nh2:*:*:*:second\n").unwrap();
        let mode = |m| {
            std::fs::set_permissions(
                &path,
                std::fs::Permissions::from_mode(m),
            )
            .unwrap();
        };

        mode(0o644);
        assert!(PassFile::load(&path).is_none(), "world-readable is ignored");
        mode(0o640);
        assert!(PassFile::load(&path).is_none(), "group-readable is ignored");
        mode(0o600);
        let f = PassFile::load(&path).unwrap();
        assert_eq!(f.lookup("h", "1", "d", "u").as_deref(), Some("secret"));
        assert!(PassFile::load(&dir).is_none(), "a directory is ignored");
        assert!(PassFile::load(&dir.join("missing")).is_none());

        // Through resolve: PGPASSFILE, then the settings use it.
        let file = path.to_str().unwrap();
        let env = [("PGPASSFILE", file), ("PGUSER", "u")];
        let s = resolve("host=h", &env).unwrap();
        assert_eq!(
            s.password_source(),
            &PasswordSource::Passfile(path.clone())
        );
        assert_eq!(s.to_config().get_password(), Some(&b"secret"[..]));
        // passfile= in the string wins over PGPASSFILE, in both forms.
        let env = [("PGPASSFILE", "/nonexistent"), ("PGUSER", "u")];
        let quoted = file.replace('\\', "\\\\").replace('\'', "\\'");
        let s = resolve(&format!("host=h passfile='{quoted}'"), &env).unwrap();
        assert_eq!(s.to_config().get_password(), Some(&b"secret"[..]));
        let s =
            resolve(&format!("postgres://h?passfile={file}"), &env).unwrap();
        assert_eq!(
            s.password_source(),
            &PasswordSource::Passfile(path.clone())
        );
        // A password in the string or PGPASSWORD wins over the file.
        let env = [("PGPASSFILE", file), ("PGUSER", "u")];
        let s = resolve("host=h password=given", &env).unwrap();
        assert_eq!(s.password_source(), &PasswordSource::Conninfo);
        let env = [("PGPASSFILE", file), ("PGUSER", "u"), ("PGPASSWORD", "e")];
        let s = resolve("host=h", &env).unwrap();
        assert_eq!(s.password_source(), &PasswordSource::Env);
        assert_eq!(s.to_config().get_password(), Some(&b"e"[..]));

        mode(0o604);
        let env = [("PGPASSFILE", file), ("PGUSER", "u")];
        let s = resolve("host=h", &env).unwrap();
        assert_eq!(s.password_source(), &PasswordSource::None);
        assert_eq!(s.to_config().get_password(), None);
        // The real resolve_with_env reads the same file.
        mode(0o600);
        let s = PgSettings::resolve_with_env("host=h", &env_of(&env)).unwrap();
        assert_eq!(s.to_config().get_password(), Some(&b"secret"[..]));
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
        let s = resolve(
            "postgresql://lo%40der:p%3Ass@db1:6543,[::1]:6544/my%20db\
             ?sslmode=disable&application_name=x&connect_timeout=7",
            &[],
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
        assert_eq!(
            s.to_config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        // Unix socket through the query.
        let s = resolve("postgres://u@/d?host=%2Fvar%2Frun%2Fpostgresql", &[])
            .unwrap();
        assert_eq!(s.hosts(), &[PgHost::Unix("/var/run/postgresql".into())]);
        // libpq keys the driver lacks, among the driver's own.
        let s = resolve(
            "postgres://u@h/d?keepalives=0&sslmode=allow&&\
             sslrootcert=%2Fca.pem&application_name=a",
            &[],
        )
        .unwrap();
        assert_eq!(s.sslmode(), SslMode::Allow);
        assert_eq!(s.sslrootcert(), Some(Path::new("/ca.pem")));
        assert_eq!(s.application_name(), "a");
        assert!(!s.to_config().get_keepalives());
        // An empty user name counts as none.
        let s =
            resolve("postgres://:pw@h/d", &[("PGUSER", "envuser")]).unwrap();
        assert_eq!(s.user(), "envuser");
        assert_eq!(s.password_source(), &PasswordSource::Conninfo);

        for bad in [
            "postgres://h/d?bogus=1",
            "postgres://h/d?hostaddr=127.0.0.1",
            "postgres://h/d?sslmode",
            "postgres://h/d?sslrootcert=%zz",
            "postgres://h:x/d",
            "postgres://[::1/d",
        ] {
            assert!(resolve(bad, &[("USER", "u")]).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_at_signs_must_be_unambiguous() {
        // The driver would take "Zz@h" for the host, or the path and the
        // query for the user name.
        for bad in [
            "postgres://u:pQ@Zz@h/d",
            "postgres://h/d?application_name=a@Zz",
            "postgres://h/d@Zz",
            "postgres://u:pQ/Zz@h/d",
            "postgres://u:pQ?Zz@h/d",
        ] {
            let e = resolve(bad, &[("USER", "u")]).unwrap_err();
            assert!(matches!(e, ConnError::Syntax(_)), "{bad}: {e}");
            assert!(!e.to_string().contains("Zz"), "{e}");
        }
        // Encoded, and after the user info, they are fine.
        let s = resolve(
            "postgres://u:p%40ss%2Fw@h/d%40b?application_name=a@b",
            &[],
        )
        .unwrap();
        assert_eq!(s.to_config().get_password(), Some(&b"p@ss/w"[..]));
        assert_eq!((s.dbname(), s.application_name()), ("d@b", "a@b"));
    }

    #[test]
    fn keyword_form() {
        let s = resolve(
            "host = h1,h2 port=5433  user='o\\'neil' dbname='a b' \
             password=x\\ y options='-c search_path=s'",
            &[],
        )
        .unwrap();
        assert_eq!(s.user(), "o'neil");
        assert_eq!(s.dbname(), "a b");
        assert_eq!(s.ports(), &[5433]);
        assert_eq!(s.hosts().len(), 2);
        assert_eq!(s.to_config().get_password(), Some(&b"x y"[..]));
        assert_eq!(s.to_config().get_options(), Some("-c search_path=s"));

        // Own keys are cut out wherever they are, quoted or not, and a
        // quoted value may end right before the next key.
        let s = resolve(
            "sslmode='allow'user=u connect_timeout=9 \
             sslrootcert='/a b\\'c' dbname=d tcp_user_timeout=3",
            &[],
        )
        .unwrap();
        assert_eq!((s.user(), s.dbname()), ("u", "d"));
        assert_eq!(s.sslmode(), SslMode::Allow);
        assert_eq!(s.connect_timeout(), Some(Duration::from_secs(9)));
        assert_eq!(s.sslrootcert(), Some(Path::new("/a b'c")));
        assert_eq!(
            s.to_config().get_tcp_user_timeout(),
            Some(&Duration::from_secs(3))
        );
        // A value that looks like a pair is still a value; later keys win.
        let s = resolve(
            "user=u password='sslmode=verify-full' sslmode=require \
             sslmode=disable",
            &[],
        )
        .unwrap();
        assert_eq!(s.sslmode(), SslMode::Disable);
        assert_eq!(
            s.to_config().get_password(),
            Some(&b"sslmode=verify-full"[..])
        );

        for bad in [
            "host",
            "host=h bogus=1",
            "user='unterminated",
            "user='",
            "user='\\'",
            "user=",
            "user=\\",
            "port=x",
            "port=0",
            "host=",
            "host=h =x",
            "connect_timeout=soon",
            "user=u sslmode=bogus",
        ] {
            assert!(resolve(bad, &[("USER", "u")]).is_err(), "{bad}");
        }
        for unsupported in ["hots", "hostaddr", "sslnegotiation"] {
            assert!(matches!(
                resolve(&format!("{unsupported}=h"), &[]),
                Err(ConnError::UnknownOption(k)) if k == unsupported
            ));
        }
        assert!(matches!(
            resolve("host=a,b,c port=1,2", &[("USER", "u")]),
            Err(ConnError::InvalidValue { key, .. }) if key == "port"
        ));
        assert!(matches!(
            resolve("sslmode=bogus", &[("USER", "u")]),
            Err(ConnError::InvalidValue { key, .. }) if key == "sslmode"
        ));
    }

    #[test]
    fn environment_fills_gaps_and_conninfo_wins() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "disable"),
            ("PGCONNECT_TIMEOUT", "1"),
            ("PGAPPNAME", "envapp"),
            ("PGOPTIONS", "-c x=1"),
            ("PGSSLROOTCERT", "/env.pem"),
        ];
        let s = resolve("", &env).unwrap();
        assert_eq!(s.hosts(), &[PgHost::Tcp("envhost".into())]);
        assert_eq!(s.ports(), &[6000]);
        assert_eq!((s.user(), s.dbname()), ("envuser", "envdb"));
        assert_eq!(s.password_source(), &PasswordSource::Env);
        assert_eq!(s.sslmode(), SslMode::Disable);
        assert_eq!(s.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(s.application_name(), "envapp");
        assert_eq!(s.to_config().get_options(), Some("-c x=1"));
        assert_eq!(s.sslrootcert(), Some(Path::new("/env.pem")));

        let s = resolve("postgres://u:pw@h:1/d?sslmode=prefer", &env).unwrap();
        assert_eq!(s.hosts(), &[PgHost::Tcp("h".into())]);
        assert_eq!(s.ports(), &[1]);
        assert_eq!((s.user(), s.dbname()), ("u", "d"));
        assert_eq!(s.password_source(), &PasswordSource::Conninfo);
        assert_eq!(s.sslmode(), SslMode::Prefer);
        // As in libpq, PGPORT applies to a URL whose hosts have no port
        // (the driver alone would give them 5432).
        let ports = |url: &str| resolve(url, &env).unwrap().ports().to_vec();
        assert_eq!(ports("postgres://h/d"), [6000]);
        assert_eq!(ports("postgres://u@h"), [6000]);
        assert_eq!(ports("postgres://h?sslmode=disable"), [6000]);
        assert_eq!(ports("postgres://a,b/d"), [6000]);
        assert_eq!(ports("postgres://[::1]/d"), [6000]);
        assert_eq!(ports("postgres://%2Ftmp/d"), [6000]);
        assert_eq!(ports("postgres://h:7/d"), [7]);
        assert_eq!(ports("postgres://[::1]:7/d"), [7]);
        assert_eq!(ports("postgres://a:7,b:8/d"), [7, 8]);
        assert_eq!(ports("host=h"), [6000]);
        assert_eq!(ports("host=h port=7"), [7]);
        let no_env = resolve("postgres://h/d", &[("USER", "u")]).unwrap();
        assert_eq!(no_env.ports(), &[5432]);
        let s = resolve("postgres:///d", &env).unwrap();
        assert_eq!(s.hosts(), &[PgHost::Tcp("envhost".into())]);
        assert_eq!(s.ports(), &[6000]);

        // An explicit 0 (no timeout) wins over PGCONNECT_TIMEOUT; 1 is 2.
        let s = resolve("connect_timeout=0", &env).unwrap();
        assert_eq!(s.connect_timeout(), None);
        let s = resolve("postgres://h?connect_timeout=1", &[("USER", "u")])
            .unwrap();
        assert_eq!(s.connect_timeout(), Some(Duration::from_secs(2)));
        // Empty values in the string count as unset.
        let s =
            resolve("user='' dbname='' application_name=''", &env).unwrap();
        assert_eq!((s.user(), s.dbname()), ("envuser", "envdb"));
        assert_eq!(s.application_name(), "envapp");

        // Errors blame the environment variable.
        for (var, value) in [
            ("PGSSLMODE", "nope"),
            ("PGPORT", "99999"),
            ("PGCONNECT_TIMEOUT", "x"),
        ] {
            assert!(matches!(
                resolve("", &[(var, value), ("USER", "u")]),
                Err(ConnError::InvalidValue { key, .. }) if key == var
            ));
        }
    }

    #[test]
    fn libpq_defaults() {
        // User from USER, then LOGNAME; dbname = user; localhost:5432.
        let s = resolve("", &[("USER", "me"), ("LOGNAME", "other")]).unwrap();
        assert_eq!((s.user(), s.dbname()), ("me", "me"));
        assert_eq!(
            s.to_string(),
            "host=localhost port=5432 dbname=me user=me sslmode=prefer"
        );
        assert_eq!(s.application_name(), "cwl-copy");
        assert_eq!(s.password_source(), &PasswordSource::None);
        let s = resolve("", &[("USER", ""), ("LOGNAME", "log")]).unwrap();
        assert_eq!(s.user(), "log");
        let e = resolve("", &[]).unwrap_err();
        assert!(matches!(e, ConnError::NoUser));
        assert!(e.to_string().contains("PGUSER"), "{e}");

        // The operating-system user name comes first, as in libpq (the
        // password database); USER and LOGNAME only without one.
        let os = |conninfo: &str, env: &[(&str, &str)]| {
            PgSettings::resolve_in(conninfo, &env_of(env), &|_| false, &|| {
                Some("osuser".to_owned())
            })
        };
        let s = os("", &[]).unwrap();
        assert_eq!((s.user(), s.dbname()), ("osuser", "osuser"));
        assert_eq!(os("", &[("USER", "me")]).unwrap().user(), "osuser");
        assert_eq!(os("", &[("PGUSER", "pg")]).unwrap().user(), "pg");
        assert_eq!(os("postgres://given@h", &[]).unwrap().user(), "given");
        let s = os("postgres://h/", &[]).unwrap();
        assert_eq!((s.user(), s.dbname()), ("osuser", "osuser"));

        // The Unix socket directory, if the server's socket is there.
        let env = env_of(&[("USER", "me")]);
        let sockets = |found: &'static [&'static str]| {
            move |p: &Path| found.iter().any(|f| p == Path::new(f))
        };
        let with = |conninfo: &str, found| {
            PgSettings::resolve_in(conninfo, &env, &sockets(found), &|| None)
                .unwrap()
        };
        let both =
            &["/var/run/postgresql/.s.PGSQL.5432", "/tmp/.s.PGSQL.5432"];
        assert_eq!(
            with("", both).hosts(),
            &[PgHost::Unix("/var/run/postgresql".into())]
        );
        let tmp = &["/tmp/.s.PGSQL.5432"];
        assert_eq!(with("", tmp).hosts(), &[PgHost::Unix("/tmp".into())]);
        // The socket of the right port; other ports mean localhost.
        assert_eq!(
            with("port=6000", tmp).hosts(),
            &[PgHost::Tcp("localhost".into())]
        );
        assert_eq!(
            with("port=6000", &["/tmp/.s.PGSQL.6000"]).hosts(),
            &[PgHost::Unix("/tmp".into())]
        );
        // An empty entry of a host list is the default host too.
        assert_eq!(
            with("host=a,,b", tmp).hosts(),
            &[
                PgHost::Tcp("a".into()),
                PgHost::Unix("/tmp".into()),
                PgHost::Tcp("b".into())
            ]
        );
        assert_eq!(with("host=db", both).hosts(), &[PgHost::Tcp("db".into())]);
    }

    proptest::proptest! {
           /// No string makes resolution panic.
           #[test]
           fn any_string_resolves_or_errs(
               url in proptest::bool::ANY,
               s in "[ a-z=',\\\\@/?%:&\\[\\]0-9]{0,40}",
           ) {
               let conninfo =
                   if url { format!("postgres://{s}") } else { s.clone() };
               let _ = resolve(&conninfo, &[("USER", "u")]);
           }

           /// The keyword scanner splits strings as the driver's parser does.
           #[test]
           fn keyword_scanner_agrees_with_the_driver(
               s in "( *(user|dbname|x)? *=? *[a-z' \\\\=]{0,5})*",
           ) {
               let ours = keyword_pairs(&s);
               match s.parse::<Config>() {
                   Ok(driver) => {
                       // The driver silently stops at a pair without a key.
                       let Ok(pairs) = ours else {
                           proptest::prop_assert!(s.contains('='), "{s:?}");
                           return Ok(());
                       };
                       let last = |key| {
                           pairs.iter().rev().find(|p| p.key == key)
                               .map(|p| unescape(p.value))
                       };
                       let user = last("user");
    proptest::prop_assert_eq!(user.as_deref(), driver.get_user());
                       let dbname = last("dbname");
    proptest::prop_assert_eq!(dbname.as_deref(), driver.get_dbname());
                   }
                   Err(e) => {
                       let semantic = parse_error(&e)
                           .to_string()
                           .contains("unknown option");
                       proptest::prop_assert!(
                           semantic || ours.is_err(), "{s:?}"
                       );
                   }
               }
           }
       }

    #[test]
    fn sslmode_from_string_or_env_and_the_driver_mode() {
        use tokio_postgres::config::SslMode as Driver;
        let env = [("USER", "u")];
        let modes = [
            ("disable", SslMode::Disable, Driver::Disable),
            ("allow", SslMode::Allow, Driver::Prefer),
            ("prefer", SslMode::Prefer, Driver::Prefer),
            ("require", SslMode::Require, Driver::Require),
            ("verify-ca", SslMode::VerifyCa, Driver::Require),
            ("verify-full", SslMode::VerifyFull, Driver::Require),
        ];
        for (name, mode, driver) in modes {
            for conninfo in [
                format!("host=h sslmode={name}"),
                format!("postgres://h?sslmode={name}"),
            ] {
                let s = resolve(&conninfo, &env).unwrap();
                assert_eq!(s.sslmode(), mode, "{conninfo}");
                assert_eq!(s.to_config().get_ssl_mode(), driver, "{name}");
                assert!(s.to_string().ends_with(&format!("sslmode={name}")));
            }
            let s = resolve("host=h", &[("PGSSLMODE", name), ("USER", "u")])
                .unwrap();
            assert_eq!(s.sslmode(), mode);
            // No TLS over a Unix socket, whatever the mode (libpq).
            let s =
                resolve(&format!("host=/tmp sslmode={name}"), &env).unwrap();
            assert_eq!(s.to_config().get_ssl_mode(), Driver::Disable);
            let s =
                resolve(&format!("host=/tmp,h sslmode={name}"), &env).unwrap();
            assert_eq!(s.to_config().get_ssl_mode(), driver);
        }
        // libpq's default, and the string winning over the environment.
        let s = resolve("host=h", &env).unwrap();
        assert_eq!(s.sslmode(), SslMode::Prefer);
        assert_eq!(s.to_config().get_ssl_mode(), Driver::Prefer);
        let env = [
            ("USER", "u"),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/env.pem"),
        ];
        let s = resolve("host=h", &env).unwrap();
        assert_eq!(s.sslmode(), SslMode::VerifyFull);
        assert_eq!(s.sslrootcert(), Some(Path::new("/env.pem")));
        let s = resolve("host=h sslmode=disable sslrootcert=/k.pem", &env)
            .unwrap();
        assert_eq!(s.sslmode(), SslMode::Disable);
        assert_eq!(s.sslrootcert(), Some(Path::new("/k.pem")));
        let s =
            resolve("postgres://h?sslmode=require&sslrootcert=%2Fu.pem", &env)
                .unwrap();
        assert_eq!(s.sslmode(), SslMode::Require);
        assert_eq!(s.sslrootcert(), Some(Path::new("/u.pem")));
        // Empty values count as unset.
        let s = resolve("host=h sslmode='' sslrootcert=''", &env).unwrap();
        assert_eq!(s.sslmode(), SslMode::VerifyFull);
        assert_eq!(s.sslrootcert(), Some(Path::new("/env.pem")));
    }

    #[test]
    fn sslrootcert_system_means_verify_full() {
        let env = [("USER", "u")];
        let s = resolve("host=h sslrootcert=system", &env).unwrap();
        assert_eq!(s.sslmode(), SslMode::VerifyFull);
        assert_eq!(s.sslrootcert(), Some(Path::new("system")));
        let s = resolve("", &[("USER", "u"), ("PGSSLROOTCERT", "system")])
            .unwrap();
        assert_eq!(s.sslmode(), SslMode::VerifyFull);
        resolve("sslrootcert=system sslmode=verify-full", &env).unwrap();
        // Weaker modes are refused, blaming where the mode came from.
        for mode in ["disable", "allow", "prefer", "require", "verify-ca"] {
            let e =
                resolve(&format!("sslmode={mode} sslrootcert=system"), &env)
                    .unwrap_err();
            assert!(
                matches!(&e, ConnError::InvalidValue { key, .. }
                    if key == "sslmode"),
                "{e:?}"
            );
            let shown = e.to_string();
            assert!(shown.contains(&format!("\"{mode}\"")), "{shown}");
            assert!(shown.contains("verify-full"), "{shown}");
            let e = resolve(
                "postgres://h?sslrootcert=system",
                &[("USER", "u"), ("PGSSLMODE", mode)],
            )
            .unwrap_err();
            assert!(matches!(&e, ConnError::InvalidValue { key, .. }
                if key == "PGSSLMODE"));
        }
    }

    #[test]
    fn default_root_certificate_is_under_home() {
        let s =
            resolve("host=h", &[("USER", "u"), ("HOME", "/home/u")]).unwrap();
        assert_eq!(
            s.default_rootcert.as_deref(),
            Some(Path::new("/home/u/.postgresql/root.crt"))
        );
        let s = resolve("host=h", &[("USER", "u")]).unwrap();
        assert_eq!(s.default_rootcert, None);
    }

    #[test]
    fn verify_policy_follows_libpq() {
        use SslMode::*;
        let file = |p: &str| Roots::File(PathBuf::from(p));
        let given = Some(Path::new("/given.pem"));
        let default = Some(Path::new("/home/u/.postgresql/root.crt"));
        let system = Some(Path::new("system"));
        let cases = [
            // Without any root certificates: nothing, or the system's.
            (Allow, None, None, Verify::Nothing),
            (Prefer, None, None, Verify::Nothing),
            (Require, None, None, Verify::Nothing),
            (VerifyCa, None, None, Verify::Chain(Roots::System)),
            (VerifyFull, None, None, Verify::Full(Roots::System)),
            // sslrootcert makes the weaker modes check the chain.
            (Prefer, given, None, Verify::Chain(file("/given.pem"))),
            (Require, given, None, Verify::Chain(file("/given.pem"))),
            (VerifyCa, given, None, Verify::Chain(file("/given.pem"))),
            (VerifyFull, given, None, Verify::Full(file("/given.pem"))),
            // So does libpq's default file if it exists, unless
            // sslrootcert is given.
            (
                Require,
                None,
                default,
                Verify::Chain(file("/home/u/.postgresql/root.crt")),
            ),
            (
                VerifyFull,
                None,
                default,
                Verify::Full(file("/home/u/.postgresql/root.crt")),
            ),
            (VerifyCa, given, default, Verify::Chain(file("/given.pem"))),
            (VerifyFull, system, default, Verify::Full(Roots::System)),
        ];
        for (mode, rootcert, default_rootcert, want) in cases {
            assert_eq!(
                verify_policy(mode, rootcert, default_rootcert),
                want,
                "{mode} {rootcert:?} {default_rootcert:?}"
            );
        }
    }

    #[test]
    fn root_certificate_file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!(
            "cwl-rootcert-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let garbled = dir.join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for (path, why) in [
            (&missing, "No such file"),
            (&empty, "no PEM certificate"),
            (&garbled, "certificate 1"),
        ] {
            for verify in [
                Verify::Chain(Roots::File(path.clone())),
                Verify::Full(Roots::File(path.clone())),
            ] {
                let Err(e) = tls_client(&verify) else {
                    panic!("{verify:?} built a client");
                };
                assert!(matches!(e, ConnError::RootCert { .. }), "{e:?}");
                let shown = e.to_string();
                assert!(
                    shown.contains(&path.display().to_string()),
                    "{shown}"
                );
                assert!(shown.contains(why), "{shown}");
            }
        }
        // Without certificate checks there is nothing to read.
        let client = tls_client(&Verify::Nothing).unwrap();
        assert_eq!(client.roots, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tls_failures_say_what_is_wrong() {
        let target = "host=db port=5432 dbname=d user=u sslmode=verify-full";
        let roots = || Some(Roots::File("/etc/ca.pem".into()).describe());
        let name = |e: CertificateError| {
            let e = rustls::Error::InvalidCertificate(e);
            tls_failure(&e, target, roots(), || "db".to_owned()).unwrap()
        };

        let e = name(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("127.0.0.1").unwrap().to_owned(),
            presented: vec![
                "DnsName(\"localhost\")".to_owned(),
                "IpAddress(10.0.0.1)".to_owned(),
            ],
        });
        assert!(matches!(e, ConnError::TlsHostName { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "connecting to {target}: the server certificate does not \
                 match the host name \"127.0.0.1\"; the certificate is for \
                 localhost, 10.0.0.1 (sslmode=verify-full)"
            )
        );
        let e = name(CertificateError::NotValidForName);
        assert!(e.to_string().contains("match the host name \"db\""), "{e}");

        let e = name(CertificateError::UnknownIssuer);
        assert!(matches!(e, ConnError::TlsUntrusted { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "connecting to {target}: the server certificate is not \
                 trusted: it was not issued by a certificate authority in \
                 the root certificate file /etc/ca.pem"
            )
        );
        let e = name(CertificateError::Expired);
        assert!(matches!(e, ConnError::TlsUntrusted { .. }), "{e:?}");
        assert!(e.to_string().contains("/etc/ca.pem"), "{e}");

        // Other TLS errors stay the driver's.
        let e = rustls::Error::HandshakeNotComplete;
        assert!(tls_failure(&e, target, roots(), String::new).is_none());

        let e = ConnError::TlsNotSupported {
            target: target.to_owned(),
            mode: SslMode::Require,
        };
        let shown = e.to_string();
        assert!(shown.contains("does not support TLS"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
    }

    #[test]
    fn password_is_redacted() {
        let secret = "Sup3r-Secret";
        for conninfo in [
            format!("postgres://u:{secret}@h/d"),
            format!("user=u password={secret} host=h"),
        ] {
            let s = resolve(&conninfo, &[]).unwrap();
            let shown = format!("{s} {s:?} {:?}", s.to_config());
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains(REDACTED) || !shown.contains("password"));
        }
        let s = resolve("", &[("USER", "u"), ("PGPASSWORD", secret)]).unwrap();
        assert!(!format!("{s} {s:?}").contains(secret));
        // Errors about the string never echo values.
        for conninfo in [
            format!("postgres://u:{secret}@[h/d"),
            format!("postgres://u%ff:{secret}@h/d"),
            format!("postgres://u:{secret}@h:x/d"),
            format!("postgres://u:{secret}@x@h/d"),
            format!("user=u {secret}"),
            format!("user=u {secret} x"),
            format!("user=u password='{secret}"),
            format!("user=u port={secret}"),
        ] {
            let e = resolve(&conninfo, &[]).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(secret), "{shown}");
        }
        let f = PassFile::parse(&format!("*:*:*:*:{secret}\n"));
        assert!(!format!("{f:?}").contains(secret));
    }
}

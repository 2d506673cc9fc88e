//! [`PrivatePostgres`]: a PostgreSQL 15 cluster of one test's own, which the test
//! may stop (as a crash, or as an administrator's fast shutdown) and start again on
//! the same port, without disturbing the shared server the other tests use.
//!
//! It is set up like the shared one (`scripts/test-servers`: `initdb` with trust
//! authentication, UTF8 and the C locale, no fsync) in its own folder, on its own
//! free port on 127.0.0.1. PostgreSQL refuses to run as root: as root, `initdb` and
//! `pg_ctl` run as the `postgres` user through `runuser`, as the script does.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// How long a start or a stop may take (the shared servers' bound).
const TIMEOUT_SECONDS: u32 = 20;

/// How [`PrivatePostgres::stop`] stops the server (`pg_ctl stop -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `fast`: sessions are ended ("terminating connection due to administrator
    /// command"), a checkpoint is written: an administrator's restart.
    Fast,
    /// `immediate`: every process quits at once, without a checkpoint; the next
    /// start runs crash recovery: a crash of the database server.
    Immediate,
}

impl StopMode {
    fn arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A PostgreSQL cluster in a folder of its own.
///
/// ```no_run
/// # async fn example() {
/// use mailbridge_testkit::{PrivatePostgres, StopMode};
/// let mut pg = PrivatePostgres::start().await;
/// let url = pg.url(); // postgres://postgres@127.0.0.1:PORT/postgres
/// // ... clients connect ...
/// pg.stop(StopMode::Immediate).await; // sessions are cut; the port refuses connections
/// pg.start_again().await; // same port, same data (after crash recovery)
/// # }
/// ```
///
/// Its folder is `$MAILBRIDGE_TEST_DIR/private-postgres/<id>` under `./scripts/test`,
/// else `<temp dir>/mailbridge-private-postgres/<id>`; it holds `data/`,
/// `postgres.log` and `owner.pid` (the test process). Dropping it stops the server
/// (immediate) and removes the folder, unless `MAILBRIDGE_KEEP_TEST_DIR=1`. A cluster
/// whose test process died without dropping it (a test killed by a timeout) is
/// stopped and removed by the next [`PrivatePostgres::start`] under the same folder.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    running: bool,
}

impl PrivatePostgres {
    /// Creates a cluster in a new folder and starts it on a free port; returns once
    /// it accepts connections.
    ///
    /// # Panics
    /// When PostgreSQL 15 is not installed (run `./scripts/test` once), when run as
    /// root without a `postgres` user, or when `initdb` or the start fail (the
    /// message holds the end of the log).
    pub async fn start() -> PrivatePostgres {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "{PG_BIN}/initdb is missing: run ./scripts/test once to install the test servers"
        );
        let base = match std::env::var_os("MAILBRIDGE_TEST_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("private-postgres"),
            _ => std::env::temp_dir().join("mailbridge-private-postgres"),
        };
        make_dir(&base);
        reap_orphans(&base);
        let id = uuid::Uuid::now_v7().simple().to_string();
        let dir = base.join(&id[20..]);
        make_dir(&dir);
        fs::write(dir.join("owner.pid"), std::process::id().to_string())
            .unwrap_or_else(|error| panic!("writing owner.pid in {}: {error}", dir.display()));
        if let Some((uid, gid)) = postgres_user() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .unwrap_or_else(|error| panic!("giving {} to postgres: {error}", dir.display()));
        }
        let data = dir.join("data");
        let out = tokio::process::Command::from(pg_command("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
            .args(["--no-locale", "--no-sync"])
            .output()
            .await
            .unwrap_or_else(|error| panic!("running initdb: {error}"));
        assert!(
            out.status.success(),
            "initdb failed in {}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = crate::free_port();
        // No fsync, as on the shared server: the operating system does not crash in
        // these tests, so what PostgreSQL wrote survives its own crash. Unlike the
        // shared server, `synchronous_commit` stays on: with it off, an immediate
        // stop loses the last commits (checked: a table created just before was
        // gone), which a test of "nothing lost" must not blame on its client.
        let conf = format!(
            "\n# A test's private cluster (mailbridge-testkit private_postgres.rs).\n\
             listen_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nmax_connections = 100\n\
             fsync = off\nfull_page_writes = off\n",
            dir.display()
        );
        let conf_file = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_file)
            .unwrap_or_else(|error| panic!("reading {}: {error}", conf_file.display()));
        text.push_str(&conf);
        fs::write(&conf_file, text)
            .unwrap_or_else(|error| panic!("writing {}: {error}", conf_file.display()));
        let mut pg = PrivatePostgres {
            dir,
            port,
            running: false,
        };
        pg.start_again().await;
        pg
    }

    /// Starts the stopped cluster again: same folder, port and data. Returns once it
    /// accepts connections (after crash recovery, when it was stopped immediately).
    ///
    /// # Panics
    /// When it is running, or does not start within 20 seconds.
    pub async fn start_again(&mut self) {
        assert!(!self.running, "the private PostgreSQL is running already");
        let status = tokio::process::Command::from(pg_command("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", &TIMEOUT_SECONDS.to_string(), "start"])
            .stdin(Stdio::null())
            // The server inherits nothing of ours: its output goes to its log.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .unwrap_or_else(|error| panic!("running pg_ctl start: {error}"));
        assert!(
            status.success() && accepts(self.addr()),
            "the private PostgreSQL did not start ({status}); {}",
            self.log_tail()
        );
        self.running = true;
    }

    /// Stops the server (`pg_ctl stop -m fast|immediate`): open sessions are cut,
    /// and the port refuses connections once this returns. Does nothing when it is
    /// stopped already.
    ///
    /// # Panics
    /// When it does not stop within 20 seconds.
    pub async fn stop(&mut self, mode: StopMode) {
        if !self.running {
            return;
        }
        let status = tokio::process::Command::from(self.stop_command(mode))
            .status()
            .await
            .unwrap_or_else(|error| panic!("running pg_ctl stop: {error}"));
        assert!(
            status.success(),
            "the private PostgreSQL did not stop ({status}); {}",
            self.log_tail()
        );
        self.running = false;
        assert!(
            !accepts(self.addr()),
            "the port refuses connections once stopped"
        );
    }

    /// Whether the server runs (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The URL of its `postgres` database (user `postgres`, no password).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates a new, empty database on this cluster and returns its URL.
    pub async fn fresh_database_url(&self) -> String {
        crate::postgres::create_fresh_database(&self.url()).await
    }

    /// The cluster's folder: `data/`, `postgres.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    fn stop_command(&self, mode: StopMode) -> std::process::Command {
        let mut cmd = pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode.arg(), "-w", "-t", &TIMEOUT_SECONDS.to_string()])
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("last lines of {}/postgres.log:\n{tail}", self.dir.display())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop_command(StopMode::Immediate).status();
            self.running = false;
        }
        if std::env::var("MAILBRIDGE_KEEP_TEST_DIR").as_deref() != Ok("1") {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A PostgreSQL program, run as `postgres` through `runuser` when this process is
/// root (PostgreSQL refuses to run as root).
fn pg_command(program: &str) -> std::process::Command {
    let path = Path::new(PG_BIN).join(program);
    if postgres_user().is_some() {
        let mut cmd = std::process::Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(path);
        cmd
    } else {
        std::process::Command::new(path)
    }
}

/// The uid and gid of the `postgres` user when this process is root, else `None`.
///
/// # Panics
/// When run as root and there is no `postgres` user (made by the Debian package).
fn postgres_user() -> Option<(u32, u32)> {
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let ids = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            ["postgres", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
            _ => None,
        }
    });
    Some(ids.expect("running as root needs the postgres user (made by the postgresql-15 package)"))
}

/// Creates `dir` (and its parents), entrable by the `postgres` user.
fn make_dir(dir: &Path) {
    fs::create_dir_all(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o755)))
        .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
}

/// Stops the clusters under `base` whose test process is gone (killed before it
/// could drop them), so that a timed-out test leaks no server for long, and
/// removes their folders unless `MAILBRIDGE_KEEP_TEST_DIR=1`.
fn reap_orphans(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for dir in entries.filter_map(|e| Some(e.ok()?.path())) {
        let owner = fs::read_to_string(dir.join("owner.pid")).unwrap_or_default();
        let Ok(pid) = owner.trim().parse::<u32>() else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Dropping it stops it (immediate) when it runs, and removes its folder.
        drop(PrivatePostgres {
            running: dir.join("data").join("postmaster.pid").exists(),
            dir,
            port: 0,
        });
    }
}

/// Whether something accepts TCP connections at `addr` (within a second).
fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection as _, PgConnection};

    use super::{PrivatePostgres, StopMode, reap_orphans};

    #[tokio::test]
    async fn stop_and_start_again_keep_port_and_data() {
        // PostgreSQL is installed by ./scripts/test; plain `cargo test` skips.
        if std::env::var("MAILBRIDGE_TEST_SERVERS").as_deref() != Ok("1") {
            eprintln!("skipped: run with ./scripts/test");
            return;
        }
        let mut pg = PrivatePostgres::start().await;
        let url = pg.fresh_database_url().await;
        let mut conn = PgConnection::connect(&url).await.expect("connect");
        sqlx::raw_sql("CREATE TABLE t (n BIGINT); INSERT INTO t VALUES (1)")
            .execute(&mut conn)
            .await
            .expect("write");
        let addr = pg.addr();
        for mode in [StopMode::Immediate, StopMode::Fast] {
            pg.stop(mode).await;
            assert!(!pg.is_running());
            assert!(
                sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
                "an open session is cut by a {mode:?} stop"
            );
            assert!(
                PgConnection::connect(&url).await.is_err(),
                "refused while down"
            );
            pg.start_again().await;
            assert_eq!(pg.addr(), addr, "same port");
            conn = PgConnection::connect(&url).await.expect("connect again");
            let n: i64 = sqlx::query_scalar("SELECT SUM(n)::BIGINT FROM t")
                .fetch_one(&mut conn)
                .await
                .expect("read");
            assert_eq!(n, 1, "the data survived a {mode:?} stop");
        }
        drop(conn);
        let dir = pg.dir().to_owned();
        drop(pg);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "stopped on drop"
        );
        if std::env::var("MAILBRIDGE_KEEP_TEST_DIR").as_deref() != Ok("1") {
            assert!(!dir.exists(), "its folder is removed on drop");
        }
    }

    #[tokio::test]
    async fn the_cluster_of_a_dead_test_is_stopped_by_the_next_start() {
        if std::env::var("MAILBRIDGE_TEST_SERVERS").as_deref() != Ok("1") {
            eprintln!("skipped: run with ./scripts/test");
            return;
        }
        let mut orphan = PrivatePostgres::start().await;
        // A process that has exited stands for the killed test.
        let mut gone = std::process::Command::new("true").spawn().expect("true");
        gone.wait().expect("wait");
        std::fs::write(orphan.dir().join("owner.pid"), gone.id().to_string()).expect("write");
        let (addr, dir) = (orphan.addr(), orphan.dir().to_owned());
        reap_orphans(dir.parent().expect("base"));
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "the orphan was stopped"
        );
        if std::env::var("MAILBRIDGE_KEEP_TEST_DIR").as_deref() != Ok("1") {
            assert!(!dir.exists(), "its folder was removed");
        }
        // What is still running is left alone.
        let alive = PrivatePostgres::start().await;
        reap_orphans(alive.dir().parent().expect("base"));
        assert!(std::net::TcpStream::connect(alive.addr()).is_ok());
        orphan.running = false;
    }
}

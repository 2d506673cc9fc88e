//! [`PrivateDovecot`]: a Dovecot IMAP server of one test's own, which the test may
//! stop and start again without disturbing the shared servers of the other tests.
//!
//! It is configured like the shared Dovecot (`scripts/dovecot-instance` writes both
//! configurations) and runs in the foreground as a child of the test process, from
//! its own folder, on its own free port on 127.0.0.1, with its own passwd-file and
//! mail root.
//!
//! Stopping it ends every process of the instance, as a service manager's restart
//! does (systemd signals the whole control group): Dovecot 2.3.19's master alone,
//! on SIGTERM, leaves the running `imap` processes serving their clients (checked
//! here, with the default `shutdown_clients = yes`), so a client would not notice.
//! [`PrivateDovecot::stop`] ends the sessions itself.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::maildir;
use crate::users::{self, TestUser};

const DOVECOT: &str = "/usr/sbin/dovecot";
/// How long a start may take before it counts as failed (the shared servers' bound).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long Dovecot gets to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// A Dovecot instance (IMAP only, no LMTP) in a folder of its own.
///
/// ```no_run
/// # async fn example() {
/// use mailbridge_testkit::PrivateDovecot;
/// let mut dovecot = PrivateDovecot::start().await;
/// let erin = dovecot.add_user("erin", "pw-erin").await;
/// dovecot.write_to_inbox(&erin.login, b"Subject: hi\r\n\r\nHello\r\n");
/// // ... connect to dovecot.imap_addr() ...
/// dovecot.stop().await; // clients lose their connections; new ones are refused
/// dovecot.start_again().await; // same port, same users, same mail
/// # }
/// ```
///
/// Its folder is `$MAILBRIDGE_TEST_DIR/private-dovecot/<id>` under `./scripts/test`
/// (so that `scripts/test-servers stop` also stops an instance whose test was killed),
/// else `<temp dir>/mailbridge-private-dovecot/<id>`. Dropping it stops Dovecot and
/// removes the folder, unless `MAILBRIDGE_KEEP_TEST_DIR=1`.
#[derive(Debug)]
pub struct PrivateDovecot {
    dir: PathBuf,
    /// Dovecot's `instance_name`, unique: its processes are titled `dovecot-<it>/...`.
    instance: String,
    imap: SocketAddr,
    child: Option<Child>,
}

impl PrivateDovecot {
    /// Writes the configuration into a new folder and starts Dovecot on a free port;
    /// returns once it accepts IMAP connections and has written `master.pid`.
    ///
    /// # Panics
    /// When Dovecot is not installed (run `./scripts/test` once), or does not start
    /// within 20 seconds (the message holds the end of its log).
    pub async fn start() -> PrivateDovecot {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: run ./scripts/test once to install the test servers"
        );
        let base = match std::env::var_os("MAILBRIDGE_TEST_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("private-dovecot"),
            _ => std::env::temp_dir().join("mailbridge-private-dovecot"),
        };
        let id = uuid::Uuid::now_v7().simple().to_string();
        // Short: Dovecot's UNIX sockets live under it (108 bytes at most per path).
        let dir = base.join(&id[20..]);
        let instance = format!("mbp-{}", &id[20..]);
        for folder in [&base, &dir] {
            fs::create_dir_all(folder)
                .unwrap_or_else(|error| panic!("creating {}: {error}", folder.display()));
            // Dovecot's own users (dovecot, dovenull, nobody) must enter it.
            fs::set_permissions(folder, fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|error| panic!("chmod 755 {}: {error}", folder.display()));
        }
        let passwd = dir.join("passwd");
        File::create(&passwd)
            .and_then(|_| fs::set_permissions(&passwd, fs::Permissions::from_mode(0o644)))
            .unwrap_or_else(|error| panic!("creating {}: {error}", passwd.display()));
        let port = crate::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dovecot-instance");
        let out = Command::new(&script)
            .arg("config")
            .arg(&dir)
            .arg(&passwd)
            .arg(dir.join("mail"))
            .arg(&instance)
            .arg(port.to_string())
            .output()
            .unwrap_or_else(|error| panic!("running {}: {error}", script.display()));
        assert!(
            out.status.success(),
            "{} config failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut dovecot = PrivateDovecot {
            dir,
            instance,
            imap: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
        };
        dovecot.start_again().await;
        dovecot
    }

    /// Starts the stopped instance again: same folder, port, users and mail, as after
    /// a restart of the server. Returns once it accepts IMAP connections.
    ///
    /// # Panics
    /// When it is running, or does not start within 20 seconds.
    pub async fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "the private Dovecot is running already"
        );
        // Left by a Dovecot that was killed: it would only confuse the wait below.
        let pid_file = self.dir.join("run").join("master.pid");
        let _ = fs::remove_file(&pid_file);
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dovecot.out"))
            .unwrap_or_else(|error| panic!("opening dovecot.out: {error}"));
        let stderr = output
            .try_clone()
            .unwrap_or_else(|error| panic!("dovecot.out: {error}"));
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(self.conf())
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {DOVECOT}: {error}"));
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "the private Dovecot exited during start-up ({status}); {}",
                    self.log_tail()
                );
            }
            let pid_written = fs::read_to_string(&pid_file)
                .is_ok_and(|content| content.trim() == pid.to_string());
            if pid_written && accepts(self.imap) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the private Dovecot was not ready after {START_TIMEOUT:?}; {}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops Dovecot: SIGTERM to its IMAP sessions and its master, then to every
    /// process of the instance the master left running (SIGKILL to what is left after
    /// 10 seconds), so that its clients lose their connections at once, as in a
    /// restart by a service manager. Returns once all
    /// have exited and the IMAP port refuses connections. Does nothing when it is
    /// stopped already.
    pub async fn stop(&mut self) {
        let Some(mut stopping) = self.begin_stop() else {
            return;
        };
        while !self.poll_stopped(&mut stopping) {
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether Dovecot runs (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Where IMAP listens (no TLS; LOGIN and AUTHENTICATE PLAIN/LOGIN).
    pub fn imap_addr(&self) -> SocketAddr {
        self.imap
    }

    /// The instance's folder: `dovecot.conf`, `passwd`, `dovecot.log`, `mail/`, `run/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration file, for `doveadm -c <file> ...`.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("dovecot.conf")
    }

    /// `<dir>/mail/<name>/Maildir`.
    pub fn maildir(&self, name: &str) -> PathBuf {
        self.dir.join("mail").join(name).join("Maildir")
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    /// Adds a user (address `name@example.org`, login `name`), while running or not.
    /// Idempotent. Returns once Dovecot is sure to see the user (up to about one
    /// second when it runs, see docs/TESTING.md).
    ///
    /// # Panics
    /// When `name` is not lower-case (`[a-z0-9._-]`), when the password holds `:` or a
    /// line break, or when `name` exists with another password.
    pub async fn add_user(&self, name: &str, password: &str) -> TestUser {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        assert!(
            name_ok,
            "test user name {name:?} must be lower-case ASCII letters, digits, '.', '_' or '-'"
        );
        assert!(
            !password.is_empty() && !password.contains([':', '\n', '\r']),
            "test user password {password:?} must be non-empty, without ':' or line breaks"
        );
        let passwd = self.dir.join("passwd");
        match users::dovecot_password(&passwd, name) {
            Some(existing) if existing == password => {}
            Some(_) => panic!("test user {name} exists with another password: use another name"),
            None => {
                OpenOptions::new()
                    .append(true)
                    .open(&passwd)
                    .and_then(|mut file| {
                        file.write_all(format!("{name}:{{PLAIN}}{password}::::::\n").as_bytes())
                    })
                    .unwrap_or_else(|error| panic!("appending to {}: {error}", passwd.display()));
                if self.is_running() {
                    tokio::time::sleep(users::dovecot_reload_delay()).await;
                }
            }
        }
        TestUser::new(name, password)
    }

    /// Writes `raw` straight into the INBOX of user `name` (a file in its Maildir
    /// `new/`, owned by Dovecot's mail user), byte for byte, whether Dovecot runs or
    /// not; it sees the message at its next look at the folder. Returns the path.
    ///
    /// # Panics
    /// When the file cannot be written or given to Dovecot's mail user.
    pub fn write_to_inbox(&self, name: &str, raw: &[u8]) -> PathBuf {
        maildir::write_new_message(&self.dir.join("mail"), &self.maildir(name), raw)
    }

    /// Sends SIGTERM to the IMAP sessions and the master. `None` when not running.
    fn begin_stop(&mut self) -> Option<Stopping> {
        // The sessions first, so that the clients lose them at once rather than
        // during the master's shutdown (about a second).
        let sessions = self.processes(&["imap", "imap-login"]);
        let child = self.child.as_mut()?;
        signal("TERM", &sessions);
        if matches!(child.try_wait(), Ok(None)) {
            signal("TERM", &[child.id()]);
        }
        Some(Stopping {
            deadline: Instant::now() + STOP_TIMEOUT,
            leftovers_signalled: false,
        })
    }

    /// One look at a stopping Dovecot: true once the master and every process of the
    /// instance have exited and the port refuses connections. Once the master is
    /// gone, what it left running (sessions that began meanwhile) gets SIGTERM; at
    /// the deadline, everything left gets SIGKILL. (Signalling every process at once
    /// instead makes the master start a new `log` process and wait about 6 s.)
    fn poll_stopped(&mut self, stopping: &mut Stopping) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        let master_gone = !matches!(child.try_wait(), Ok(None));
        let left = self.processes(&[]);
        if master_gone && !left.is_empty() && !stopping.leftovers_signalled {
            signal("TERM", &left);
            stopping.leftovers_signalled = true;
        }
        if master_gone && left.is_empty() && !accepts(self.imap) {
            self.child = None;
            return true;
        }
        if Instant::now() < stopping.deadline {
            return false;
        }
        signal("KILL", &left);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        true
    }

    /// The running processes of this instance other than the master, found by their
    /// title (`dovecot-<instance>/<service>`); only those of `services` unless it is
    /// empty. Zombies have no title: they count as gone.
    fn processes(&self, services: &[&str]) -> Vec<u32> {
        let prefix = format!("dovecot-{}/", self.instance);
        let wanted = |cmdline: &[u8]| {
            let Some(title) = cmdline.strip_prefix(prefix.as_bytes()) else {
                return false;
            };
            // The service's name ends at a space or NUL (e.g. `imap [user ...]`).
            let service = title.split(|b| *b == b' ' || *b == 0).next().unwrap_or(&[]);
            services.is_empty() || services.iter().any(|s| s.as_bytes() == service)
        };
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| wanted(&cmdline))
            })
            .collect()
    }

    fn log_tail(&self) -> String {
        let mut text = self.log();
        text.push_str(&fs::read_to_string(self.dir.join("dovecot.out")).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("last lines of its log in {}:\n{tail}", self.dir.display())
    }
}

impl Drop for PrivateDovecot {
    fn drop(&mut self) {
        if let Some(mut stopping) = self.begin_stop() {
            while !self.poll_stopped(&mut stopping) {
                std::thread::sleep(POLL);
            }
        }
        if std::env::var("MAILBRIDGE_KEEP_TEST_DIR").as_deref() != Ok("1") {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A stop under way.
#[derive(Debug)]
struct Stopping {
    /// When whatever is left gets SIGKILL.
    deadline: Instant,
    /// Whether the processes the master left behind got their SIGTERM.
    leftovers_signalled: bool,
}

/// Sends SIGTERM or SIGKILL to `pids` (std has no SIGTERM; Child::kill is SIGKILL).
fn signal(name: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether something accepts TCP connections at `addr` right now.
fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    use tokio::net::TcpStream;

    use super::PrivateDovecot;

    /// Sends `commands` (tagged a1, a2, ...) and returns every line up to the last
    /// tagged reply.
    async fn imap(addr: SocketAddr, commands: &[&str]) -> String {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut stream = BufReader::new(stream);
        let mut out = String::new();
        stream.read_line(&mut out).await.expect("greeting");
        for (i, command) in commands.iter().enumerate() {
            let tag = format!("a{}", i + 1);
            let line = format!("{tag} {command}\r\n");
            stream
                .get_mut()
                .write_all(line.as_bytes())
                .await
                .expect("send");
            loop {
                let mut reply = String::new();
                let n = stream.read_line(&mut reply).await.expect("read");
                assert!(n > 0, "connection closed after {out}");
                out.push_str(&reply);
                if reply.starts_with(&format!("{tag} ")) {
                    break;
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn stop_and_start_again_keep_users_mail_and_port() {
        // Dovecot is installed and run by ./scripts/test; plain `cargo test` skips.
        if std::env::var("MAILBRIDGE_TEST_SERVERS").as_deref() != Ok("1") {
            eprintln!("skipped: run with ./scripts/test");
            return;
        }
        let mut dovecot = PrivateDovecot::start().await;
        let erin = dovecot.add_user("erin", "pw-erin").await;
        assert_eq!(erin.address, "erin@example.org");
        dovecot.write_to_inbox("erin", b"Subject: one\r\nMessage-ID: <one@t>\r\n\r\n1\r\n");
        let addr = dovecot.imap_addr();
        let login = "LOGIN erin@example.org pw-erin";
        let before = imap(addr, &[login, "SELECT INBOX", "LOGOUT"]).await;
        assert!(before.contains("* 1 EXISTS"), "{before}");
        assert!(before.contains("a2 OK"), "{before}");

        // A session open across the stop is cut, as in a real restart.
        let open = TcpStream::connect(addr).await.expect("connect");
        let mut open = BufReader::new(open);
        let mut line = String::new();
        open.read_line(&mut line).await.expect("greeting");
        open.get_mut()
            .write_all(format!("a1 {login}\r\na2 SELECT INBOX\r\n").as_bytes())
            .await
            .expect("send");
        while !line.starts_with("a2 ") {
            line.clear();
            assert!(open.read_line(&mut line).await.expect("read") > 0);
        }

        dovecot.stop().await;
        assert!(!dovecot.is_running());
        let _ = open.get_mut().write_all(b"a3 NOOP\r\n").await;
        let mut rest = String::new();
        let cut = match open.read_line(&mut rest).await {
            Ok(n) => n == 0 || rest.starts_with("* BYE"),
            Err(_) => true,
        };
        assert!(cut, "the open session was not cut: {rest:?}");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "the port refuses connections while stopped"
        );
        // Mail written while it is down is there after the restart.
        dovecot.write_to_inbox("erin", b"Subject: two\r\nMessage-ID: <two@t>\r\n\r\n2\r\n");
        dovecot.start_again().await;
        assert_eq!(dovecot.imap_addr(), addr);
        let after = imap(addr, &[login, "SELECT INBOX", "UID SEARCH ALL", "LOGOUT"]).await;
        assert!(after.contains("* 2 EXISTS"), "{after}");
        assert!(after.contains("* SEARCH 1 2"), "UIDs kept: {after}");
        let wrong = imap(addr, &["LOGIN erin wrong"]).await;
        assert!(wrong.contains("a1 NO"), "{wrong}");

        let dir = dovecot.dir().to_owned();
        drop(dovecot);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "stopped on drop"
        );
        if std::env::var("MAILBRIDGE_KEEP_TEST_DIR").as_deref() != Ok("1") {
            assert!(!dir.exists(), "its folder is removed on drop");
        }
    }
}

//! [`PrivatePostfix`]: a Postfix MTA of one test's own, which accepts mail over SMTP on
//! 127.0.0.1 and relays every message to one next hop (SMTP or LMTP on loopback), as
//! the MTA in front of mailbridge's inbound listener does in production.
//!
//! Each instance lives in a folder of its own with its own `config_directory`
//! (`etc/main.cf`, `etc/master.cf`, written here), `queue_directory` (`queue/`),
//! `data_directory` (`data/`) and log file (`maillog`, written by `postlogd`, so the
//! tests read what Postfix did without a syslog daemon). It is started with
//! `postfix -c <etc> start`, which needs root: Postfix's master runs as root and its
//! daemons drop to the `postfix` user. Run as root, `postfix -c`, `postqueue -c` and
//! `postsuper -c` accept any configuration directory; `alternate_config_directories`
//! in /etc/postfix/main.cf only matters for other users, so /etc is left alone.
//!
//! Configuration choices that matter (Postfix 3.7, see docs/TESTING.md):
//! - no local delivery: `mydestination` is empty and `local_transport` is `error:`,
//!   so every recipient takes `default_transport`, which names the next hop;
//! - `myhostname` is `relay.postfix.test`: Postfix's SMTP client reports "mail loops
//!   back to myself" when the server greets with its own `myhostname`;
//! - retries within about a second (`queue_run_delay`, `minimal_backoff_time` and
//!   `maximal_backoff_time` of 1s), so a 4xx reply is retried quickly;
//! - `maillog_file` only works with a `postlog` service in master.cf and a path under
//!   one of `maillog_file_prefixes` (else `postfix start` fails, saying so only on a
//!   terminal);
//! - every service runs with `chroot n`: the folders stay as they are.
//!
//! Dropping the instance stops Postfix (`postfix -c <etc> stop`, then SIGKILL to any
//! process whose environment names this configuration directory) and removes the
//! folder, unless `MAILBRIDGE_KEEP_TEST_DIR=1`. An instance whose test process died
//! without dropping it is stopped and removed by the next [`PrivatePostfix::start`].

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const POSTFIX: &str = "/usr/sbin/postfix";
/// How long a start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the processes left after `postfix stop` get before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// The file in an instance's folder naming the process that owns it.
const OWNER_FILE: &str = "owner";

/// Where a [`PrivatePostfix`] relays every message it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// An SMTP server (`default_transport = smtp:[ip]:port`, no MX lookup).
    Smtp(SocketAddr),
    /// An LMTP server over TCP (`default_transport = lmtp:inet:[ip]:port`).
    Lmtp(SocketAddr),
}

impl NextHop {
    fn transport(self) -> String {
        match self {
            NextHop::Smtp(addr) => format!("smtp:[{}]:{}", addr.ip(), addr.port()),
            NextHop::Lmtp(addr) => format!("lmtp:inet:[{}]:{}", addr.ip(), addr.port()),
        }
    }
}

/// A running Postfix instance in a folder of its own (see the module documentation).
///
/// ```no_run
/// # async fn example(listener: std::net::SocketAddr) {
/// use mailbridge_testkit::private_postfix::{NextHop, PrivatePostfix};
/// let postfix = PrivatePostfix::start(NextHop::Smtp(listener)).await;
/// // ... submit a message to postfix.smtp_addr() ...
/// let line = postfix
///     .wait_for_delivery("sales@contoso.com", "sent", std::time::Duration::from_secs(30))
///     .await;
/// assert!(line.contains("250 "), "{line}");
/// # }
/// ```
#[derive(Debug)]
pub struct PrivatePostfix {
    dir: PathBuf,
    smtp: SocketAddr,
    next_hop: NextHop,
    running: bool,
}

impl PrivatePostfix {
    /// Writes the configuration into a new folder and starts Postfix with an SMTP
    /// server on a free port of 127.0.0.1; returns once that port accepts connections.
    ///
    /// # Panics
    /// When not run as root, when Postfix is not installed (run `./scripts/test` once),
    /// or when it does not start within 30 seconds (the message holds its log).
    pub async fn start(next_hop: NextHop) -> PrivatePostfix {
        PrivatePostfix::start_with(next_hop, &[]).await
    }

    /// As [`PrivatePostfix::start`], with `settings` (`name`, `value`) appended to
    /// main.cf, where they override the defaults written here (the last setting of a
    /// name wins), e.g. `("smtp_discard_ehlo_keywords", "size")`.
    ///
    /// # Panics
    /// As [`PrivatePostfix::start`].
    pub async fn start_with(next_hop: NextHop, settings: &[(&str, &str)]) -> PrivatePostfix {
        assert!(
            Path::new(POSTFIX).exists(),
            "{POSTFIX} is missing: run ./scripts/test once to install the test servers \
             (or apt-get install postfix)"
        );
        assert!(
            is_root(),
            "a private Postfix needs root: its master process runs as root"
        );
        let base = std::env::temp_dir().join("mailbridge-private-postfix");
        create_traversable(&base);
        reap_stale_instances(&base);
        let id = uuid::Uuid::now_v7().simple().to_string();
        // Short: Postfix's UNIX sockets live under the queue folder.
        let name = &id[20..];
        let dir = base.join(name);
        create_traversable(&dir);
        fs::write(dir.join(OWNER_FILE), owner_tag(std::process::id()))
            .unwrap_or_else(|error| panic!("writing {}/{OWNER_FILE}: {error}", dir.display()));
        for sub in ["etc", "queue"] {
            create_traversable(&dir.join(sub));
        }
        let port = crate::free_port();
        let smtp = SocketAddr::from(([127, 0, 0, 1], port));
        let mut main = main_cf(&dir, &format!("postfix-{name}"), next_hop);
        for (key, value) in settings {
            main.push_str(&format!("{key} = {value}\n"));
        }
        fs::write(dir.join("etc/main.cf"), main)
            .unwrap_or_else(|error| panic!("writing main.cf: {error}"));
        fs::write(dir.join("etc/master.cf"), master_cf(smtp))
            .unwrap_or_else(|error| panic!("writing master.cf: {error}"));
        let postfix = PrivatePostfix {
            dir,
            smtp,
            next_hop,
            running: true,
        };
        let out = postfix.postfix(&["start"]);
        assert!(
            out.status.success(),
            "postfix start failed ({}): {}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            postfix.log_tail()
        );
        let deadline = Instant::now() + START_TIMEOUT;
        while !accepts(smtp) {
            assert!(
                Instant::now() < deadline,
                "the private Postfix did not accept SMTP on {smtp} within {START_TIMEOUT:?}; {}",
                postfix.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
        postfix
    }

    /// Where Postfix's SMTP server listens: mail from 127.0.0.0/8 is accepted for
    /// any recipient and relayed to the next hop (no TLS, no AUTH).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp
    }

    /// Where every message goes.
    pub fn next_hop(&self) -> NextHop {
        self.next_hop
    }

    /// The instance's folder: `etc/`, `queue/`, `data/`, `maillog`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration directory, for `postfix -c`, `postqueue -c`, `postconf -c`.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.join("etc")
    }

    /// Postfix's log so far (empty before the first line).
    pub fn maillog(&self) -> String {
        fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// The last 40 lines of the log, with a heading, for panic messages.
    pub fn log_tail(&self) -> String {
        let log = self.maillog();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "last lines of the Postfix log {}/maillog:\n{tail}",
            self.dir.display()
        )
    }

    /// Waits until a line of the log satisfies `matches` and returns that line.
    ///
    /// # Panics
    /// After `timeout` without such a line (the message holds `what` and the log).
    pub async fn wait_for_log(
        &self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.maillog().lines().find(|line| matches(line)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no Postfix log line {what} within {timeout:?}; {}",
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for the log line reporting a delivery attempt to `recipient` with
    /// `status=<status>` (`sent`, `deferred`, `bounced`) and returns it.
    ///
    /// # Panics
    /// As [`PrivatePostfix::wait_for_log`].
    pub async fn wait_for_delivery(
        &self,
        recipient: &str,
        status: &str,
        timeout: Duration,
    ) -> String {
        let to = format!(" to=<{recipient}>,");
        let status_is = format!(", status={status} ");
        self.wait_for_log(
            &format!("with to=<{recipient}> and status={status}"),
            timeout,
            |line| line.contains(&to) && line.contains(&status_is),
        )
        .await
    }

    /// The log lines reporting a delivery attempt to `recipient`, in order.
    pub fn deliveries(&self, recipient: &str) -> Vec<String> {
        let to = format!(" to=<{recipient}>,");
        self.maillog()
            .lines()
            .filter(|line| line.contains(&to) && line.contains(", status="))
            .map(str::to_owned)
            .collect()
    }

    /// Asks Postfix to try every deferred message now (`postfix -c <etc> flush`).
    ///
    /// # Panics
    /// When the command fails.
    pub fn flush(&self) {
        let out = self.postfix(&["flush"]);
        assert!(
            out.status.success(),
            "postfix flush failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops Postfix: `postfix stop`, then SIGKILL to whatever of the instance is
    /// left after 10 seconds. Returns once no process of the instance runs. Does
    /// nothing when stopped already.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        stop_instance(&self.dir);
    }

    /// Runs `postfix -c <etc> <args>` and returns its output.
    fn postfix(&self, args: &[&str]) -> Output {
        Command::new(POSTFIX)
            .arg("-c")
            .arg(self.config_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("running {POSTFIX}: {error}"))
    }
}

impl Drop for PrivatePostfix {
    fn drop(&mut self) {
        self.stop();
        if std::env::var("MAILBRIDGE_KEEP_TEST_DIR").as_deref() != Ok("1") {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn main_cf(dir: &Path, syslog_name: &str, next_hop: NextHop) -> String {
    let dir = dir.display();
    let transport = next_hop.transport();
    format!(
        "# Written by mailbridge-testkit (private_postfix.rs) for one test.
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
syslog_name = {syslog_name}
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
myhostname = relay.postfix.test
mydomain = postfix.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
relayhost =
default_transport = {transport}
smtp_tls_security_level = none
smtpd_tls_security_level = none
lmtp_tls_security_level = none
smtputf8_enable = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 1s
smtp_connect_timeout = 5s
lmtp_connect_timeout = 5s
biff = no
"
    )
}

fn master_cf(smtp: SocketAddr) -> String {
    // service type private unpriv chroot wakeup maxproc command
    format!(
        "# Written by mailbridge-testkit (private_postfix.rs) for one test.
{smtp} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
smtp unix - - n - - smtp
relay unix - - n - - smtp
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"
    )
}

fn is_root() -> bool {
    // The owner of /proc/self is the effective user.
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Creates `dir` with mode 755: Postfix's daemons run as the `postfix` user and must
/// enter every folder on the way to the queue.
fn create_traversable(dir: &Path) {
    fs::create_dir_all(dir).unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|error| panic!("chmod 755 {}: {error}", dir.display()));
}

/// `<pid> <start time>`: the start time (field 22 of /proc/<pid>/stat) tells a reused
/// process id from the original process.
fn owner_tag(pid: u32) -> String {
    format!("{pid} {}", start_time(pid).unwrap_or_default())
}

fn start_time(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// Stops and removes the instances under `base` whose owning process is gone (a test
/// that was killed before its drop ran), so that they do not run on forever.
fn reap_stale_instances(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Ok(owner) = fs::read_to_string(dir.join(OWNER_FILE)) else {
            // Being created right now, or not ours.
            continue;
        };
        let alive = owner
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !is_zombie(pid) && owner_tag(pid) == owner);
        if !alive {
            stop_instance(&dir);
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// `postfix -c <dir>/etc stop` (which waits for the master to exit), then SIGKILL to
/// every process left whose environment names the configuration directory: the
/// master hands `MAIL_CONFIG=<etc>` to all its daemons.
fn stop_instance(dir: &Path) {
    let etc = dir.join("etc");
    let _ = Command::new(POSTFIX)
        .arg("-c")
        .arg(&etc)
        .arg("stop")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let left = processes_of(&etc);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(left.iter().map(u32::to_string))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// The running processes (zombies excluded) with `MAIL_CONFIG=<etc>` in their
/// environment.
fn processes_of(etc: &Path) -> Vec<u32> {
    let wanted = format!("MAIL_CONFIG={}", etc.display()).into_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            !is_zombie(*pid)
                && fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == wanted))
        })
        .collect()
}

/// Whether `pid` has exited and waits for its parent (here, processes reparented to
/// PID 1 may stay so for a while).
fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .is_some_and(|end| stat[end + 1..].trim_start().starts_with('Z'))
    })
}

/// Whether something accepts TCP connections at `addr` right now.
fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

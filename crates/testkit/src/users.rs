//! Test users: the provisioned ones and users added while the servers run.
//!
//! Dovecot (and so the SMTP server, which checks the same file) reads a passwd-file
//! with lines `name:{PLAIN}password::::::`; Radicale reads an htpasswd file with lines
//! `name:password`. Both re-read their file while running, so appending a line adds a
//! user without a restart (docs/TESTING.md tells what was verified).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The mail domain of every test user.
pub const DOMAIN: &str = "example.org";

/// Users that scripts/test-servers creates, each with password `pw-<name>`.
pub const PROVISIONED_USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// A user that exists on Dovecot, the SMTP server and Radicale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// `name@example.org`.
    pub address: String,
    /// What to log in with everywhere: the bare name (Dovecot also accepts the address).
    pub login: String,
    pub password: String,
}

impl TestUser {
    pub(crate) fn new(name: &str, password: &str) -> TestUser {
        TestUser {
            address: format!("{name}@{DOMAIN}"),
            login: name.to_owned(),
            password: password.to_owned(),
        }
    }
}

/// The password of `name` in a Dovecot passwd-file, if the user is there.
pub(crate) fn dovecot_password(passwd: &Path, name: &str) -> Option<String> {
    let content = std::fs::read_to_string(passwd)
        .unwrap_or_else(|error| panic!("reading {}: {error}", passwd.display()));
    find_password(&content, name).map(|password| {
        password
            .strip_prefix("{PLAIN}")
            .unwrap_or(password)
            .to_owned()
    })
}

/// The password field of `name` in `user:password[:...]` lines; the first line wins,
/// as in Dovecot and Radicale.
fn find_password<'a>(content: &'a str, name: &str) -> Option<&'a str> {
    content.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name)).then(|| fields.next().unwrap_or(""))
    })
}

/// What `add_user` changed.
pub(crate) struct Added {
    /// The Dovecot passwd-file got a new line.
    pub(crate) dovecot: bool,
}

/// Appends `name` to both files unless it is there, under a lock shared with other
/// test processes. Panics if `name` exists with another password: Dovecot keeps the
/// first line of a user, so a second line could never take effect.
#[cfg(test)]
pub(crate) fn append_user(
    lock_path: &Path,
    dovecot_passwd: &Path,
    radicale_htpasswd: &Path,
    name: &str,
    password: &str,
) -> Added {
    append_user_with(
        lock_path,
        dovecot_passwd,
        radicale_htpasswd,
        name,
        password,
        &[],
    )
}

/// Like [`append_user`], with Dovecot userdb settings of this user's own (the
/// passwd-file line's extra fields, `userdb_<key>=<value>`), e.g. a plugin setting.
/// Panics on a key that is not `[a-z0-9_]+` or a value with white space.
pub(crate) fn append_user_with(
    lock_path: &Path,
    dovecot_passwd: &Path,
    radicale_htpasswd: &Path,
    name: &str,
    password: &str,
    userdb: &[(&str, &str)],
) -> Added {
    check_name_and_password(name, password);
    let mut extra = String::new();
    for (key, value) in userdb {
        assert!(
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "userdb setting name {key:?}: use [a-z0-9_]+"
        );
        assert!(
            !value.is_empty() && !value.chars().any(char::is_whitespace),
            "userdb setting {key}: the value must be non-empty without white space"
        );
        extra.push_str(&format!(
            "{}userdb_{key}={value}",
            if extra.is_empty() { "" } else { " " }
        ));
    }
    let lock = File::create(lock_path)
        .unwrap_or_else(|error| panic!("creating {}: {error}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|error| panic!("locking {}: {error}", lock_path.display()));

    let dovecot = append_line(
        dovecot_passwd,
        name,
        &format!("{{PLAIN}}{password}"),
        &format!("{name}:{{PLAIN}}{password}::::::{extra}\n"),
    );
    append_line(
        radicale_htpasswd,
        name,
        password,
        &format!("{name}:{password}\n"),
    );
    // The lock is released when `lock` is dropped.
    Added { dovecot }
}

/// Appends `line` to `path` unless `name` is there with `password` field `expected`.
fn append_line(path: &Path, name: &str, expected: &str, line: &str) -> bool {
    let content = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    match find_password(&content, name) {
        Some(existing) if existing == expected => false,
        Some(_) => panic!(
            "test user {name} already exists in {} with another password: use another name",
            path.display()
        ),
        None => {
            // One write of one short line with O_APPEND: readers see all of it or none.
            let mut file = OpenOptions::new()
                .append(true)
                .open(path)
                .unwrap_or_else(|error| panic!("opening {}: {error}", path.display()));
            file.write_all(line.as_bytes())
                .unwrap_or_else(|error| panic!("appending to {}: {error}", path.display()));
            true
        }
    }
}

fn check_name_and_password(name: &str, password: &str) {
    // auth_username_format = %Ln lowercases logins, so an upper-case name could never
    // log in; ':' and line breaks would break both file formats.
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
}

/// How long to wait so that Dovecot sees a passwd-file change made now.
///
/// Dovecot's auth process stats the passwd-file at most once per second of its clock
/// (passwd_file_sync in src/auth/db-passwd-file.c compares `last_sync_time` with
/// `ioloop_time`), so a lookup in the same second as the change may still use the old
/// content. From the next second on, the changed size makes it reload.
pub(crate) fn dovecot_reload_delay() -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let into_second = Duration::from_nanos(u64::from(now.subsec_nanos()));
    Duration::from_secs(1).saturating_sub(into_second) + Duration::from_millis(20)
}

#[cfg(test)]
mod tests {
    use super::{append_user, append_user_with, dovecot_password, find_password};

    #[test]
    fn find_password_cases() {
        let content = "alice:{PLAIN}pw-alice::::::\nbob:pw-bob\nbob:second\nempty\n";
        let cases = [
            ("alice", Some("{PLAIN}pw-alice")),
            ("bob", Some("pw-bob")),
            ("empty", Some("")),
            ("ali", None),
            ("carol", None),
        ];
        for (name, expected) in cases {
            assert_eq!(find_password(content, name), expected, "{name}");
        }
    }

    #[test]
    fn append_user_is_idempotent_and_writes_both_formats() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = dir.path().join("users.lock");
        let passwd = dir.path().join("passwd");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&passwd, "alice:{PLAIN}pw-alice::::::\n").expect("write");
        std::fs::write(&htpasswd, "alice:pw-alice\n").expect("write");

        assert!(append_user(&lock, &passwd, &htpasswd, "erin", "pw-erin").dovecot);
        assert!(!append_user(&lock, &passwd, &htpasswd, "erin", "pw-erin").dovecot);
        assert!(!append_user(&lock, &passwd, &htpasswd, "alice", "pw-alice").dovecot);

        assert_eq!(
            std::fs::read_to_string(&passwd).expect("read"),
            "alice:{PLAIN}pw-alice::::::\nerin:{PLAIN}pw-erin::::::\n"
        );
        assert_eq!(
            std::fs::read_to_string(&htpasswd).expect("read"),
            "alice:pw-alice\nerin:pw-erin\n"
        );
        assert_eq!(
            dovecot_password(&passwd, "erin").as_deref(),
            Some("pw-erin")
        );
    }

    #[test]
    fn append_user_with_writes_userdb_fields_after_the_seven_fields() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (lock, passwd, htpasswd) = (
            dir.path().join("users.lock"),
            dir.path().join("passwd"),
            dir.path().join("htpasswd"),
        );
        std::fs::write(&passwd, "").expect("write");
        std::fs::write(&htpasswd, "").expect("write");
        let fields = [("mailbridge_push_url", "http://127.0.0.1:9/x"), ("k2", "v")];
        assert!(append_user_with(&lock, &passwd, &htpasswd, "erin", "pw-erin", &fields).dovecot);
        assert_eq!(
            std::fs::read_to_string(&passwd).expect("read"),
            "erin:{PLAIN}pw-erin::::::userdb_mailbridge_push_url=http://127.0.0.1:9/x userdb_k2=v\n"
        );
        // The colons of the URL do not move the password field.
        assert_eq!(
            dovecot_password(&passwd, "erin").as_deref(),
            Some("pw-erin")
        );
    }

    #[test]
    #[should_panic(expected = "without white space")]
    fn append_user_with_refuses_white_space_in_a_value() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, "").expect("write");
        append_user_with(&path, &path, &path, "erin", "pw", &[("k", "a b")]);
    }

    #[test]
    #[should_panic(expected = "already exists")]
    fn append_user_refuses_a_second_password() {
        let dir = tempfile::tempdir().expect("temp dir");
        let passwd = dir.path().join("passwd");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&passwd, "erin:{PLAIN}one::::::\n").expect("write");
        std::fs::write(&htpasswd, "erin:one\n").expect("write");
        append_user(&dir.path().join("lock"), &passwd, &htpasswd, "erin", "two");
    }

    #[test]
    #[should_panic(expected = "lower-case")]
    fn append_user_refuses_upper_case_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        append_user(&path, &path, &path, "Erin", "pw");
    }
}

//! `mailbridge hash-password`: the Argon2id hash of a password, for the lines of
//! the email router's `inbound_auth_file` (`user:hash`), so that the password
//! itself is kept nowhere on the server.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use mailbridge_engine::inbound::auth::PasswordHashString;

use super::Failure;

/// Reads one line from standard input (a prompt goes to standard error on a
/// terminal; the input is not hidden) and prints its hash as a PHC string.
pub fn run() -> ExitCode {
    match hash_stdin() {
        Ok(phc) => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{phc}").and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mailbridge: cannot write the hash: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(f) => {
            eprintln!("mailbridge: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

fn hash_stdin() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (shown as typed): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| {
        Failure::Input(format!("cannot read the password from standard input: {e}"))
    })?;
    let password = password_of_line(&line)
        .ok_or_else(|| Failure::Input("no password on standard input (an empty line)".into()))?;
    Ok(PasswordHashString::hash(password).as_str().to_owned())
}

/// The password a line holds: all of it but the line ending; `None` when empty.
fn password_of_line(line: &str) -> Option<&str> {
    let password = line
        .strip_suffix('\n')
        .map_or(line, |l| l.strip_suffix('\r').unwrap_or(l));
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::password_of_line;

    #[test]
    fn the_line_ending_only_is_taken_off() {
        assert_eq!(password_of_line("s3cret\n"), Some("s3cret"));
        assert_eq!(password_of_line("s3cret\r\n"), Some("s3cret"));
        assert_eq!(password_of_line("s3cret"), Some("s3cret"));
        assert_eq!(password_of_line(" with spaces \n"), Some(" with spaces "));
        assert_eq!(password_of_line("\n"), None);
        assert_eq!(password_of_line(""), None);
    }
}

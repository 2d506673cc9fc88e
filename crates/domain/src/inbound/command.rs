//! Command lines of SMTP (RFC 5321 §4.1) and LMTP (RFC 2033), parsed into a
//! [`Command`]; the session decides whether it is allowed now.

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest line of message text, CRLF included (RFC 5321 §4.5.3.1.6).
pub const MAX_TEXT_LINE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Lhlo(String),
    Mail {
        from: String,
        params: MailParams,
    },
    Rcpt {
        to: String,
    },
    Data,
    Rset,
    Noop,
    Quit,
    StartTls,
    Vrfy,
    Help,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// A verb this server does not know.
    Unknown(String),
}

/// The `MAIL FROM` parameters this server understands (RFC 1870 `SIZE`, RFC 6152
/// `BODY`, RFC 6531 `SMTPUTF8`, RFC 4954 `AUTH`, which is accepted and ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    pub eight_bit: bool,
    pub smtputf8: bool,
}

/// Why a command line could not be read; each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// 501 5.5.4: the arguments do not follow the grammar.
    Syntax(&'static str),
    /// 555 5.5.4: a `MAIL FROM` parameter this server does not support.
    UnknownParameter(String),
}

/// Reads one command line (without its CRLF).
pub fn parse_command(line: &str) -> Result<Command, CommandError> {
    let line = line.trim_end();
    let (verb, rest) = match line.split_once(' ') {
        Some((v, r)) => (v, r.trim_start()),
        None => (line, ""),
    };
    let verb_upper = verb.to_ascii_uppercase();
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(CommandError::Syntax("this command takes no arguments"))
        }
    };
    match verb_upper.as_str() {
        "HELO" | "EHLO" | "LHLO" => {
            if rest.is_empty() {
                return Err(CommandError::Syntax(
                    "a domain or address literal is required",
                ));
            }
            let domain = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            Ok(match verb_upper.as_str() {
                "HELO" => Command::Helo(domain),
                "EHLO" => Command::Ehlo(domain),
                _ => Command::Lhlo(domain),
            })
        }
        "MAIL" => {
            let after = strip_keyword(rest, "FROM:")
                .ok_or(CommandError::Syntax("expected MAIL FROM:<address>"))?;
            let (from, params) = parse_path(after)?;
            Ok(Command::Mail {
                from,
                params: parse_mail_params(params)?,
            })
        }
        "RCPT" => {
            let after = strip_keyword(rest, "TO:")
                .ok_or(CommandError::Syntax("expected RCPT TO:<address>"))?;
            let (to, params) = parse_path(after)?;
            if to.is_empty() {
                return Err(CommandError::Syntax("the recipient cannot be empty"));
            }
            if !params.trim().is_empty() {
                return Err(CommandError::UnknownParameter(params.trim().to_string()));
            }
            Ok(Command::Rcpt { to })
        }
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        "QUIT" => no_args(Command::Quit),
        "STARTTLS" => no_args(Command::StartTls),
        // NOOP and HELP may carry an argument, which is ignored (RFC 5321 §4.1.1.9-10).
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => Ok(Command::Vrfy),
        "AUTH" => {
            let mut parts = rest.split_whitespace();
            let mechanism = parts
                .next()
                .ok_or(CommandError::Syntax("expected AUTH mechanism"))?
                .to_ascii_uppercase();
            let initial = parts.next().map(str::to_string);
            if parts.next().is_some() {
                return Err(CommandError::Syntax("too many arguments to AUTH"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        _ => Ok(Command::Unknown(verb_upper)),
    }
}

fn strip_keyword<'a>(rest: &'a str, keyword: &str) -> Option<&'a str> {
    let head = rest.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| rest[keyword.len()..].trim_start())
}

/// `<local@domain>` (a source route `@a,@b:` is ignored, RFC 5321 §4.1.2) followed by
/// parameters. Returns the address (empty for the null path `<>`) and the rest.
fn parse_path(s: &str) -> Result<(String, &str), CommandError> {
    let s = s.strip_prefix('<').ok_or(CommandError::Syntax(
        "the address must be in angle brackets",
    ))?;
    let end = s.find('>').ok_or(CommandError::Syntax(
        "the address must be in angle brackets",
    ))?;
    let mut address = &s[..end];
    if address.starts_with('@') {
        address = address.split_once(':').map(|(_, a)| a).unwrap_or_default();
    }
    if !address.is_empty() {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(CommandError::Syntax("the address must be local@domain"));
        };
        if local.is_empty() || domain.is_empty() || address.contains(char::is_whitespace) {
            return Err(CommandError::Syntax("the address must be local@domain"));
        }
    }
    Ok((address.to_string(), &s[end + 1..]))
}

fn parse_mail_params(s: &str) -> Result<MailParams, CommandError> {
    let mut params = MailParams::default();
    for p in s.split_whitespace() {
        let (key, value) = match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        };
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                let size = v
                    .parse()
                    .map_err(|_| CommandError::Syntax("SIZE must be a number"))?;
                params.size = Some(size);
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => params.eight_bit = true,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => {}
            ("SMTPUTF8", None) => params.smtputf8 = true,
            ("AUTH", Some(_)) => {}
            _ => return Err(CommandError::UnknownParameter(p.to_string())),
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let ok = |c| -> Result<Command, CommandError> { Ok(c) };
        let cases: Vec<(&str, Result<Command, CommandError>)> = vec![
            (
                "EHLO client.example",
                ok(Command::Ehlo("client.example".into())),
            ),
            ("helo x", ok(Command::Helo("x".into()))),
            ("LHLO relay", ok(Command::Lhlo("relay".into()))),
            (
                "EHLO",
                Err(CommandError::Syntax(
                    "a domain or address literal is required",
                )),
            ),
            (
                "MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME",
                ok(Command::Mail {
                    from: "a@b.example".into(),
                    params: MailParams {
                        size: Some(100),
                        eight_bit: true,
                        smtputf8: false,
                    },
                }),
            ),
            (
                "mail from: <>",
                ok(Command::Mail {
                    from: String::new(),
                    params: MailParams::default(),
                }),
            ),
            (
                "MAIL FROM:<a@b> XFOO=1",
                Err(CommandError::UnknownParameter("XFOO=1".into())),
            ),
            (
                "MAIL FROM:<a@b> SIZE=x",
                Err(CommandError::Syntax("SIZE must be a number")),
            ),
            (
                "MAIL FROM:a@b",
                Err(CommandError::Syntax(
                    "the address must be in angle brackets",
                )),
            ),
            (
                "MAIL TO:<a@b>",
                Err(CommandError::Syntax("expected MAIL FROM:<address>")),
            ),
            (
                "RCPT TO:<@relay:sales@x.example>",
                ok(Command::Rcpt {
                    to: "sales@x.example".into(),
                }),
            ),
            (
                "RCPT TO:<>",
                Err(CommandError::Syntax("the recipient cannot be empty")),
            ),
            (
                "RCPT TO:<nodomain>",
                Err(CommandError::Syntax("the address must be local@domain")),
            ),
            ("DATA", ok(Command::Data)),
            (
                "DATA x",
                Err(CommandError::Syntax("this command takes no arguments")),
            ),
            ("rset", ok(Command::Rset)),
            ("NOOP anything", ok(Command::Noop)),
            ("QUIT", ok(Command::Quit)),
            ("STARTTLS", ok(Command::StartTls)),
            (
                "AUTH plain AGEAYg==",
                ok(Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial: Some("AGEAYg==".into()),
                }),
            ),
            (
                "AUTH LOGIN",
                ok(Command::Auth {
                    mechanism: "LOGIN".into(),
                    initial: None,
                }),
            ),
            ("BDAT 10", ok(Command::Unknown("BDAT".into()))),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_command(line), expected, "{line}");
        }
    }
}

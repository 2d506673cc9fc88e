//! A server reply: the RFC 5321 code, the RFC 3463 enhanced status code and text.

/// One reply, possibly of several lines (EHLO). Enhanced status codes are sent on
/// every line, as RFC 2034 asks, except in the greeting and the EHLO answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `class.subject.detail`, e.g. `5.1.1`; `None` where RFC 2034 has none.
    pub enhanced: Option<&'static str>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code (greeting, EHLO, 334 challenges).
    pub fn plain(code: u16, lines: Vec<String>) -> Self {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// 2xx and 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// 4xx: the client should try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// The reply as sent: every line but the last with `-` after the code.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.push_str(&self.code.to_string());
            out.push(sep);
            if let Some(e) = self.enhanced {
                out.push_str(e);
                out.push(' ');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        if self.lines.is_empty() {
            out.push_str(&format!("{} \r\n", self.code));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Reply;

    #[test]
    fn wire_forms() {
        let cases = [
            (Reply::new(250, "2.0.0", "OK"), "250 2.0.0 OK\r\n"),
            (
                Reply::plain(250, vec!["mx".into(), "SIZE 10".into()]),
                "250-mx\r\n250 SIZE 10\r\n",
            ),
            (Reply::plain(334, vec![String::new()]), "334 \r\n"),
        ];
        for (reply, wire) in cases {
            assert_eq!(reply.to_wire(), wire);
        }
    }
}

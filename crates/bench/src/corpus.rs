//! Realistic, deterministic messages: mixed sizes (1–200 KB, log-uniform), about
//! 20% multipart with a base64 attachment, about 30% replies to an earlier message
//! (In-Reply-To and References), a dozen senders on three domains.

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SENDERS: [&str; 12] = [
    "Alan Turing <alan@fabrikam.example>",
    "Grace Hopper <grace@fabrikam.example>",
    "Ada Lovelace <ada@fabrikam.example>",
    "Edsger Dijkstra <edsger@fabrikam.example>",
    "Barbara Liskov <barbara@contoso.example>",
    "Donald Knuth <don@contoso.example>",
    "Frances Allen <fran@contoso.example>",
    "Ken Thompson <ken@contoso.example>",
    "Margaret Hamilton <margaret@northwind.example>",
    "John Backus <john@northwind.example>",
    "Leslie Lamport <leslie@northwind.example>",
    "Radia Perlman <radia@northwind.example>",
];

const WORDS: [&str; 24] = [
    "quote",
    "invoice",
    "order",
    "delivery",
    "meeting",
    "contract",
    "the",
    "a",
    "for",
    "please",
    "review",
    "attached",
    "schedule",
    "price",
    "update",
    "thanks",
    "regarding",
    "project",
    "next",
    "week",
    "team",
    "account",
    "support",
    "renewal",
];

/// One generated message.
#[derive(Debug, Clone)]
pub struct Generated {
    pub message_id: String,
    pub raw: Vec<u8>,
}

struct Sent {
    id: String,
    subject: String,
    references: Vec<String>,
}

/// `n` messages to `to`, the same for the same `seed` (the Message-IDs carry `tag`).
pub fn messages(seed: u64, n: usize, to: &str, tag: &str) -> Vec<Generated> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut earlier: Vec<Sent> = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T08:00:00+00:00")
        .expect("a valid date")
        .to_utc();
    for i in 0..n {
        let id = format!("bench-{tag}-{i}@fabrikam.example");
        let from = SENDERS[rng.random_range(0..SENDERS.len())];
        let date = start + chrono::Duration::seconds(i as i64 * 97);
        let reply_to = (!earlier.is_empty() && rng.random_bool(0.3))
            .then(|| rng.random_range(0..earlier.len()));
        let (subject, threading, references) = match reply_to {
            Some(j) => {
                let parent = &earlier[j];
                let mut refs = parent.references.clone();
                refs.push(parent.id.clone());
                if refs.len() > 10 {
                    refs.drain(..refs.len() - 10);
                }
                let header = format!(
                    "In-Reply-To: <{}>\r\nReferences: {}\r\n",
                    parent.id,
                    refs.iter()
                        .map(|r| format!("<{r}>"))
                        .collect::<Vec<_>>()
                        .join("\r\n ")
                );
                (format!("Re: {}", parent.subject), header, refs)
            }
            None => (sentence(&mut rng, 5), String::new(), Vec::new()),
        };
        // Log-uniform between 1 KB and 200 KB: mostly small, some large.
        let size = (1024.0 * 200f64.powf(rng.random::<f64>())) as usize;
        let multipart = rng.random_bool(0.2);
        let mut raw = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{id}>\r\n{threading}MIME-Version: 1.0\r\n",
            date.to_rfc2822()
        );
        if multipart {
            // A short text part and an attachment carrying most of the size.
            let boundary = format!("=_bench_{i}");
            let text = body(&mut rng, (size / 8).max(200));
            let mut bytes = vec![0u8; size * 3 / 4];
            rng.fill(&mut bytes[..]);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{boundary}\r\nContent-Type: application/pdf; name=\"document-{i}.pdf\"\r\nContent-Disposition: attachment; filename=\"document-{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            ));
            for line in b64.as_bytes().chunks(76) {
                raw.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
                raw.push_str("\r\n");
            }
            raw.push_str(&format!("--{boundary}--\r\n"));
        } else {
            raw.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
            raw.push_str(&body(&mut rng, size));
        }
        earlier.push(Sent {
            id: id.clone(),
            subject: subject.trim_start_matches("Re: ").to_owned(),
            references,
        });
        out.push(Generated {
            message_id: id,
            raw: raw.into_bytes(),
        });
    }
    out
}

fn sentence(rng: &mut StdRng, words: usize) -> String {
    let mut s: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    s.dedup();
    let mut out = s.join(" ");
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

/// Text lines of at most 76 characters, about `size` bytes, CRLF-terminated.
fn body(rng: &mut StdRng, size: usize) -> String {
    let mut out = String::with_capacity(size + 80);
    let mut line = String::new();
    while out.len() < size {
        let w = WORDS[rng.random_range(0..WORDS.len())];
        if line.len() + w.len() + 1 > 76 {
            out.push_str(&line);
            out.push_str("\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    out.push_str(&line);
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_and_mixed() {
        let a = super::messages(7, 200, "x@example.org", "t");
        let b = super::messages(7, 200, "x@example.org", "t");
        assert_eq!(a.len(), 200);
        assert!(a.iter().zip(&b).all(|(x, y)| x.raw == y.raw));
        let text = |g: &super::Generated| String::from_utf8(g.raw.clone()).unwrap();
        assert!(a.iter().any(|g| text(g).contains("multipart/mixed")));
        assert!(a.iter().any(|g| text(g).contains("In-Reply-To:")));
        assert!(
            a.iter()
                .all(|g| g.raw.len() >= 1000 && g.raw.len() < 300_000)
        );
    }
}

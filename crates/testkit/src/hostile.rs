//! A deterministic corpus of hostile messages: malformed, truncated, oversized and
//! unusual mail that the ingest path must survive, each message either tracked or
//! recorded as a failure with a reason.
//!
//! [`corpus`] builds well over 1,000 messages from a seed; the same seed always
//! gives the same bytes, so a failure names a message ([`HostileMessage::name`],
//! `category/variant-index`) that can be built again. A few of them are checked in
//! as samples under `corpus/hostile/`, and inputs that once broke the engine are kept
//! under `corpus/hostile/regressions/` ([`regressions`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The seed the tests use; any other seed gives another corpus of the same shape.
pub const DEFAULT_SEED: u64 = 0x6d61_696c_6272_6964;

/// What a hostile message exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Broken, missing and duplicated MIME boundaries; unterminated multiparts.
    Boundaries,
    /// Wrong or unknown charsets and transfer encodings, 8-bit headers, RFC 2047 garbage.
    Encodings,
    /// Header lines of 100 KB and more, 10,000 headers, malformed header syntax.
    Headers,
    /// Missing, duplicated and malformed Message-IDs.
    MessageIds,
    /// Missing From/To, invalid addresses, group syntax.
    Addresses,
    /// Deeply nested message/rfc822 and multiparts.
    Nesting,
    /// Outlook's TNEF (`application/ms-tnef`, winmail.dat).
    Tnef,
    /// iCalendar invitations (`METHOD:REQUEST`, `CANCEL`, ...), valid and not.
    Calendar,
    /// Delivery status notifications and other reports.
    Bounces,
    /// Well-formed messages cut at a random point.
    Truncated,
    /// NUL bytes, CR-only and LF-only line endings, stray control bytes.
    Bytes,
    /// Attachments with RFC 2231, path traversal and otherwise odd file names.
    FileNames,
    /// Empty messages, headers only, binary junk.
    Degenerate,
    /// Messages of tens of megabytes.
    Oversized,
}

impl Category {
    pub const ALL: [Category; 14] = [
        Category::Boundaries,
        Category::Encodings,
        Category::Headers,
        Category::MessageIds,
        Category::Addresses,
        Category::Nesting,
        Category::Tnef,
        Category::Calendar,
        Category::Bounces,
        Category::Truncated,
        Category::Bytes,
        Category::FileNames,
        Category::Degenerate,
        Category::Oversized,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Boundaries => "boundaries",
            Category::Encodings => "encodings",
            Category::Headers => "headers",
            Category::MessageIds => "message-ids",
            Category::Addresses => "addresses",
            Category::Nesting => "nesting",
            Category::Tnef => "tnef",
            Category::Calendar => "calendar",
            Category::Bounces => "bounces",
            Category::Truncated => "truncated",
            Category::Bytes => "bytes",
            Category::FileNames => "file-names",
            Category::Degenerate => "degenerate",
            Category::Oversized => "oversized",
        }
    }
}

/// One message of the corpus.
#[derive(Clone)]
pub struct HostileMessage {
    /// `category/variant-index`, unique in the corpus.
    pub name: String,
    pub category: Category,
    pub raw: Vec<u8>,
}

impl HostileMessage {
    /// Whether this is one of the few messages of several megabytes; tests that
    /// must stay quick can leave them out.
    pub fn is_oversized(&self) -> bool {
        self.category == Category::Oversized
    }

    /// The name as a file name (`category__variant-index.eml`).
    pub fn file_name(&self) -> String {
        format!("{}.eml", self.name.replace('/', "__"))
    }
}

impl std::fmt::Debug for HostileMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileMessage")
            .field("name", &self.name)
            .field("len", &self.raw.len())
            .finish()
    }
}

/// The whole corpus for `seed`, oversized messages included (last).
pub fn corpus(seed: u64) -> Vec<HostileMessage> {
    let mut g = Gen::new(seed);
    boundaries(&mut g);
    encodings(&mut g);
    headers(&mut g);
    message_ids(&mut g);
    addresses(&mut g);
    nesting(&mut g);
    tnef(&mut g);
    calendar(&mut g);
    bounces(&mut g);
    truncated(&mut g);
    bytes(&mut g);
    file_names(&mut g);
    degenerate(&mut g);
    oversized(&mut g);
    g.out
}

/// The folder of the checked-in samples.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/hostile")
}

/// The variants (`category/variant`) whose first message is kept as a sample in
/// [`samples_dir`].
pub const SAMPLES: &[&str] = &[
    "boundaries/unterminated",
    "boundaries/same-boundary-nested",
    "encodings/invalid-base64",
    "encodings/rfc2047-garbage",
    "headers/header-without-colon",
    "message-ids/spaces",
    "addresses/group-syntax",
    "nesting/rfc822-depth",
    "tnef/winmail",
    "calendar/request",
    "calendar/cancel",
    "bounces/delivery-status",
    "truncated/cut",
    "bytes/nul-bytes",
    "bytes/cr-only",
    "file-names/path-traversal",
    "degenerate/empty",
];

/// Messages that once broke the ingest path, kept by name in
/// `corpus/hostile/regressions/` (`<name>.eml`).
pub fn regressions() -> Vec<HostileMessage> {
    let dir = samples_dir().join("regressions");
    let mut out: Vec<HostileMessage> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .map(|p| HostileMessage {
                    name: format!(
                        "regressions/{}",
                        p.file_stem().unwrap_or_default().to_string_lossy()
                    ),
                    category: Category::Degenerate,
                    raw: std::fs::read(&p)
                        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display())),
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// SplitMix64: small, fast and the same everywhere, which is all a corpus needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// `min` to `min + spread - 1` random bytes.
    fn junk(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let n = min + self.below(spread);
        self.bytes(n)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "quote",
    "invoice",
    "meeting",
    "renewal",
    "contract",
    "shipment",
    "order",
    "update",
    "pricing",
    "support",
    "ticket",
    "Q3",
    "urgent",
    "follow-up",
    "draft",
    "réunion",
    "Angebot",
    "見積",
    "счёт",
];

struct Gen {
    rng: Rng,
    seed: u64,
    out: Vec<HostileMessage>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng(seed),
            seed,
            out: Vec::new(),
        }
    }

    fn push(&mut self, category: Category, variant: &str, raw: Vec<u8>) {
        let n = self.out.iter().filter(|m| m.category == category).count();
        self.out.push(HostileMessage {
            name: format!("{}/{variant}-{n:04}", category.as_str()),
            category,
            raw,
        });
    }

    /// A Message-ID unique in the corpus and to the seed.
    fn message_id(&self) -> String {
        format!(
            "<h{:05}.{:x}@hostile.example.org>",
            self.out.len(),
            self.seed
        )
    }

    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| *self.rng.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Some lines of plain text.
    fn text(&mut self, lines: usize) -> String {
        let mut s = String::new();
        for _ in 0..lines {
            let n = 3 + self.rng.below(10);
            let _ = write!(s, "{}\r\n", self.words(n));
        }
        s
    }

    /// `min` to `min + spread - 1` lines of text.
    fn some_text(&mut self, min: usize, spread: usize) -> String {
        let n = min + self.rng.below(spread);
        self.text(n)
    }

    /// The usual headers of a message, with a unique Message-ID, ending before
    /// the header block's blank line.
    fn head(&mut self, subject: &str) -> String {
        let day = 1 + self.rng.below(28);
        let hour = self.rng.below(24);
        format!(
            "From: Carl Customer <carl@fabrikam.example>\r\nTo: alice@example.org\r\n\
             Subject: {subject}\r\nMessage-ID: {}\r\nDate: Mon, {day:02} Jun 2026 {hour:02}:15:00 +0200\r\n\
             MIME-Version: 1.0\r\n",
            self.message_id()
        )
    }
}

fn b64_lines(data: &[u8]) -> String {
    let encoded = BASE64.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

fn boundaries(g: &mut Gen) {
    const C: Category = Category::Boundaries;
    for i in 0..120 {
        let text = g.some_text(1, 6);
        let head = g.head(&format!("boundaries {i}"));
        let (variant, body) = match i % 12 {
            0 => (
                "missing-boundary-param",
                format!(
                    "Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n{text}--x--\r\n"
                ),
            ),
            1 => (
                "boundary-never-used",
                format!(
                    "Content-Type: multipart/mixed; boundary=\"declared\"\r\n\r\n--other\r\n\r\n{text}--other--\r\n"
                ),
            ),
            2 => (
                "unterminated",
                format!(
                    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n{text}--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK"
                ),
            ),
            3 => (
                "same-boundary-nested",
                format!(
                    "Content-Type: multipart/mixed; boundary=\"dup\"\r\n\r\n--dup\r\nContent-Type: multipart/alternative; boundary=\"dup\"\r\n\r\n--dup\r\nContent-Type: text/plain\r\n\r\n{text}--dup--\r\n--dup\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--dup--\r\n--dup--\r\n"
                ),
            ),
            4 => (
                "two-content-types",
                format!(
                    "Content-Type: multipart/mixed; boundary=\"one\"\r\nContent-Type: multipart/mixed; boundary=\"two\"\r\n\r\n--two\r\n\r\n{text}--one\r\n\r\n{text}--one--\r\n--two--\r\n"
                ),
            ),
            5 => (
                "empty-boundary",
                format!(
                    "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n{text}----\r\n"
                ),
            ),
            6 => {
                let b = "B".repeat(300 + g.rng.below(700));
                (
                    "long-boundary",
                    format!(
                        "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n\r\n{text}--{b}--\r\n"
                    ),
                )
            }
            7 => (
                "unquoted-special-boundary",
                format!(
                    "Content-Type: multipart/mixed; boundary=a b;c=d\"\r\n\r\n--a b;c=d\"\r\n\r\n{text}--a b;c=d\"--\r\n"
                ),
            ),
            8 => (
                "parts-after-close",
                format!(
                    "Content-Type: multipart/mixed; boundary=\"c\"\r\n\r\n--c--\r\n--c\r\nContent-Type: text/plain\r\n\r\n{text}--c--\r\n--c\r\n\r\nagain\r\n"
                ),
            ),
            9 => (
                "prefix-boundary",
                format!(
                    "Content-Type: multipart/mixed; boundary=\"ab\"\r\n\r\n--abc\r\n\r\nnot a part\r\n--ab\r\n\r\n{text}--abc--\r\n--ab--\r\n"
                ),
            ),
            10 => (
                "preamble-only",
                format!(
                    "Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\nThis is a preamble with no parts.\r\n{text}"
                ),
            ),
            _ => {
                let mut body =
                    String::from("Content-Type: multipart/mixed; boundary=\"e\"\r\n\r\n");
                for _ in 0..(500 + g.rng.below(1500)) {
                    body.push_str("--e\r\n\r\n");
                }
                body.push_str("--e--\r\n");
                ("many-empty-parts", body)
            }
        };
        g.push(C, variant, format!("{head}{body}").into_bytes());
    }
}

fn encodings(g: &mut Gen) {
    const C: Category = Category::Encodings;
    for i in 0..140 {
        let text = g.some_text(1, 4);
        let head = g.head(&format!("encodings {i}"));
        let (variant, raw): (&str, Vec<u8>) = match i % 14 {
            0 => ("unknown-charset", format!("{head}Content-Type: text/plain; charset=x-klingon-9\r\n\r\n{text}").into_bytes()),
            1 => {
                let mut raw = format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n").into_bytes();
                raw.extend_from_slice(b"Caf\xe9 cr\xe8me \xff\xfe\xc3\x28 invalid UTF-8\r\n");
                ("latin1-declared-utf8", raw)
            }
            2 => {
                let mut raw = format!("{head}Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n").into_bytes();
                raw.extend_from_slice(b"\x1b$B\x1b(J\x1b$@junk\x1b(B\x1b$\r\n");
                ("iso2022-junk", raw)
            }
            3 => ("invalid-base64", format!("{head}Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!@@@###$$$ not base64 at all ===\r\nSGVsbG8=SGVsbG8=\r\n").into_bytes()),
            4 => {
                let enc = BASE64.encode(text.as_bytes());
                let cut = &enc[..enc.len().saturating_sub(1 + g.rng.below(3))];
                ("truncated-base64-quantum", format!("{head}Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{} \t {}\r\n", &cut[..cut.len() / 2], &cut[cut.len() / 2..]).into_bytes())
            }
            5 => ("bad-quoted-printable", format!("{head}Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=4=\r\n{}=\r\n=E9=C3=\r\n=", "x".repeat(5000)).into_bytes()),
            6 => ("unknown-transfer-encoding", format!("{head}Content-Type: text/plain\r\nContent-Transfer-Encoding: x-bogus-9\r\n\r\n{text}").into_bytes()),
            7 => ("uuencode-junk", format!("{head}Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f.bin\r\nM<&%S\r\n`\r\n").into_bytes()),
            8 => {
                let mut raw = b"From: J\xc3\xb6rg M\xfcller <joerg@fabrikam.example>\r\nTo: alice@example.org\r\nSubject: 8-bit \xc3\xa9t\xe9 \xff\xfe\r\n".to_vec();
                raw.extend_from_slice(format!("Message-ID: {}\r\n\r\n{text}", g.message_id()).as_bytes());
                ("eight-bit-headers", raw)
            }
            9 => ("rfc2047-garbage", format!("From: =?utf-8?B?!!!?= <carl@fabrikam.example>\r\nTo: alice@example.org\r\nSubject: =?x-unknown?Q?abc?= =?utf-8?Q?unterminated =?=?utf-8?q?x?=?= =?utf-8?B?SGVsbG8?= =?utf-8??=\r\nMessage-ID: {}\r\n\r\n{text}", g.message_id()).into_bytes()),
            10 => ("rfc2047-long-chain", format!("From: carl@fabrikam.example\r\nTo: alice@example.org\r\nSubject: {}\r\nMessage-ID: {}\r\n\r\n{text}", "=?utf-8?B?w6k=?= ".repeat(2000), g.message_id()).into_bytes()),
            11 => ("base64-multipart", format!("{head}Content-Type: multipart/mixed; boundary=\"q\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}", b64_lines(format!("--q\r\n\r\n{text}--q--\r\n").as_bytes())).into_bytes()),
            12 => {
                let mut raw = format!("{head}Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: binary\r\n\r\n").into_bytes();
                raw.extend_from_slice(b"\xff\xfeH\x00i\x00\x00\xd8");
                ("odd-utf16", raw)
            }
            _ => {
                let mut raw = format!("{head}Content-Type: text/plain; charset=\"\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").into_bytes();
                raw.extend(g.rng.junk(200, 2000));
                ("binary-in-8bit", raw)
            }
        };
        g.push(C, variant, raw);
    }
}

fn headers(g: &mut Gen) {
    const C: Category = Category::Headers;
    for i in 0..72 {
        let text = g.text(2);
        let head = g.head(&format!("headers {i}"));
        let (variant, raw) = match i % 12 {
            0 => {
                let n = 100 * 1024 + g.rng.below(200 * 1024);
                (
                    "subject-100kb",
                    format!(
                        "From: carl@fabrikam.example\r\nTo: alice@example.org\r\nMessage-ID: {}\r\nSubject: {}\r\n\r\n{text}",
                        g.message_id(),
                        "long ".repeat(n / 5)
                    ),
                )
            }
            1 => {
                let mut h = head.clone();
                for n in 0..10_000 {
                    let _ = write!(h, "X-Filler-{n}: {n}\r\n");
                }
                ("ten-thousand-headers", format!("{h}\r\n{text}"))
            }
            2 => (
                "leading-continuation",
                format!(" continued from nowhere\r\n{head}\r\n{text}"),
            ),
            3 => (
                "header-without-colon",
                format!("{head}This line has no colon\r\nX-After: yes\r\n\r\n{text}"),
            ),
            4 => (
                "space-before-colon",
                format!(
                    "From : carl@fabrikam.example\r\nSubject\t: tabbed\r\nMessage-ID : {}\r\n\r\n{text}",
                    g.message_id()
                ),
            ),
            5 => ("no-blank-line", format!("{head}{text}")),
            6 => {
                let mut h = format!("{head}X-Folded: start");
                for _ in 0..5000 {
                    h.push_str("\r\n  more");
                }
                ("folded-5000-times", format!("{h}\r\n\r\n{text}"))
            }
            7 => (
                "duplicate-headers",
                format!(
                    "{head}Subject: second subject\r\nFrom: second@fabrikam.example\r\nDate: Tue, 02 Jun 2026 10:00:00 +0000\r\n\r\n{text}"
                ),
            ),
            8 => {
                let date = *g.rng.pick(&[
                    "yesterday",
                    "Mon, 99 Foo 99999 99:99:99 +9999",
                    "Thu, 31 Dec 1969 23:59:60 -2400",
                    "",
                    "Sat, 01 Jan 0000 00:00:00 +0000",
                    "Fri, 13 Jun 262143 00:00:00 +0000",
                ]);
                (
                    "garbage-date",
                    format!(
                        "From: carl@fabrikam.example\r\nTo: alice@example.org\r\nSubject: date\r\nMessage-ID: {}\r\nDate: {date}\r\n\r\n{text}",
                        g.message_id()
                    ),
                )
            }
            9 => {
                let refs: Vec<String> = (0..5000).map(|n| format!("<r{n}@x.example>")).collect();
                (
                    "five-thousand-references",
                    format!(
                        "{head}References: {}\r\nIn-Reply-To: {}\r\n\r\n{text}",
                        refs.join(" "),
                        refs[..50].join(" ")
                    ),
                )
            }
            10 => {
                let ti = *g.rng.pick(&[
                    "!!!",
                    "AQ==",
                    "",
                    "AQHZ3m4rAAECAwQFBgcICQoLDA0ODxAREhMUFRYX==garbage",
                ]);
                (
                    "bad-thread-index",
                    format!("{head}Thread-Index: {ti}\r\nThread-Topic: \r\n\r\n{text}"),
                )
            }
            _ => (
                "header-name-junk",
                format!(
                    "{head}X-\u{1}\u{7f}Bad: 1\r\n: empty name\r\n\u{1b}[31m: escape\r\n\r\n{text}"
                ),
            ),
        };
        g.push(C, variant, raw.into_bytes());
    }
}

fn message_ids(g: &mut Gen) {
    const C: Category = Category::MessageIds;
    for i in 0..110 {
        let text = g.text(2);
        let base = format!(
            "From: carl@fabrikam.example\r\nTo: alice@example.org\r\nSubject: ids {i}\r\nDate: Mon, 01 Jun 2026 10:{:02}:00 +0000\r\n",
            i % 60
        );
        let unique = g.message_id();
        let bare = unique.trim_matches(['<', '>']).to_owned();
        let (variant, id_lines) = match i % 11 {
            0 => ("missing", String::new()),
            1 => {
                // The same Message-ID twice, with different bodies: one email.
                let dup = format!(
                    "{base}Message-ID: <dup-{i}.{:x}@hostile.example.org>\r\n",
                    g.seed
                );
                g.push(
                    C,
                    "duplicate-first",
                    format!("{dup}\r\nfirst body\r\n").into_bytes(),
                );
                ("duplicate-second", dup[base.len()..].to_owned())
            }
            2 => ("spaces", format!("Message-ID: <a b {bare}>\r\n")),
            3 => ("no-brackets", format!("Message-ID: {bare}\r\n")),
            4 => ("double-brackets", format!("Message-ID: <<{bare}>>\r\n")),
            5 => (
                "empty",
                (*g.rng.pick(&[
                    "Message-ID: <>\r\n",
                    "Message-ID:\r\n",
                    "Message-ID:    \r\n",
                ]))
                .to_owned(),
            ),
            6 => (
                "ten-kb",
                format!("Message-ID: <{}{bare}>\r\n", "x".repeat(10 * 1024)),
            ),
            7 => (
                "two-headers",
                format!("Message-ID: {unique}\r\nMessage-ID: <other-{bare}>\r\n"),
            ),
            8 => (
                "no-at",
                format!("Message-ID: <no-at-sign-{i}-{:x}>\r\n", g.seed),
            ),
            9 => (
                "self-reference",
                format!(
                    "Message-ID: {unique}\r\nIn-Reply-To: {unique}\r\nReferences: {unique} garbage <> <<>>\r\n"
                ),
            ),
            _ => (
                "with-comment",
                format!("Message-ID: (comment) {unique} (trailing (nested) comment)\r\n"),
            ),
        };
        g.push(
            C,
            variant,
            format!("{base}{id_lines}\r\n{text}").into_bytes(),
        );
    }
}

fn addresses(g: &mut Gen) {
    const C: Category = Category::Addresses;
    for i in 0..112 {
        let text = g.text(2);
        let id = g.message_id();
        let rest = format!("Subject: addresses {i}\r\nMessage-ID: {id}\r\n");
        let (variant, lines) = match i % 14 {
            0 => ("missing-from", "To: alice@example.org\r\n".to_owned()),
            1 => ("missing-to", "From: carl@fabrikam.example\r\n".to_owned()),
            2 => ("missing-both", String::new()),
            3 => {
                let bad = *g.rng.pick(&["@@@", "<>", "\"unterminated <a@b.example>", "a@", "@b.example", "a@@b.example", "<<a@b>>", ",,,", "a@b@c.example"]);
                ("invalid", format!("From: {bad}\r\nTo: {bad}, alice@example.org\r\nCc: {bad}\r\n"))
            }
            4 => ("group-syntax", "From: carl@fabrikam.example\r\nTo: undisclosed-recipients:;\r\nCc: Team: a@fabrikam.example, b@fabrikam.example;, Other: ;\r\nBcc: Nested: Inner: x@y.example;;\r\n".to_owned()),
            5 => ("route-address", "From: <@relay.example,@other.example:carl@fabrikam.example>\r\nTo: alice@example.org\r\n".to_owned()),
            6 => ("utf8-address", "From: J\u{f6}rg <j\u{f6}rg@b\u{fc}cher.example>\r\nTo: alice@example.org, \u{7528}\u{6237}@\u{4f8b}\u{5b50}.example\r\n".to_owned()),
            7 => {
                let to: Vec<String> = (0..500).map(|n| format!("r{n}@fabrikam.example")).collect();
                ("five-hundred-recipients", format!("From: carl@fabrikam.example\r\nTo: {}\r\n", to.join(",\r\n ")))
            }
            8 => ("comments", "From: carl(the (nested) comment)@fabrikam.example (Carl)\r\nTo: alice@example.org (Alice (A.))\r\n".to_owned()),
            9 => ("quoted-local-part", "From: \"carl customer\"@fabrikam.example\r\nTo: \"a\\\"b\"@example.org\r\n".to_owned()),
            10 => {
                let from: Vec<String> = (0..50).map(|n| format!("s{n}@fabrikam.example")).collect();
                ("fifty-senders", format!("From: {}\r\nTo: alice@example.org\r\n", from.join(", ")))
            }
            11 => ("encoded-display-name", "From: =?bogus?B?////?= <carl@fabrikam.example>\r\nTo: =?utf-8?Q?=FF=FE?= <alice@example.org>\r\n".to_owned()),
            12 => ("odd-case-and-space", "From:   CARL@FABRIKAM.EXAMPLE.  \r\nTo:\talice@Example.ORG\t,\t\r\n".to_owned()),
            _ => ("sender-reply-to-only", "Sender: carl@fabrikam.example\r\nReply-To: other@fabrikam.example\r\n".to_owned()),
        };
        g.push(C, variant, format!("{lines}{rest}\r\n{text}").into_bytes());
    }
}

/// A message nested `depth` times as message/rfc822, innermost first.
fn nested_rfc822(g: &mut Gen, depth: usize, encode_every: usize) -> String {
    let mut inner = format!(
        "{}Content-Type: text/plain\r\n\r\ninnermost\r\n",
        g.head("innermost")
    );
    for level in 0..depth {
        let b = format!("lvl{level}");
        let cte = if encode_every != 0 && level % encode_every == 0 {
            "Content-Transfer-Encoding: 7bit\r\n"
        } else {
            ""
        };
        inner = format!(
            "{}Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\nContent-Type: text/plain\r\n\r\nlevel {level}\r\n--{b}\r\nContent-Type: message/rfc822\r\n{cte}\r\n{inner}\r\n--{b}--\r\n",
            g.head(&format!("level {level}"))
        );
    }
    inner
}

fn nesting(g: &mut Gen) {
    const C: Category = Category::Nesting;
    let depths = [2, 5, 10, 20, 50, 60, 100];
    for (i, depth) in depths.iter().enumerate() {
        let raw = nested_rfc822(g, *depth, i % 3);
        g.push(C, "rfc822-depth", raw.into_bytes());
    }
    for depth in [10, 50, 100, 200] {
        let mut body = String::from("innermost\r\n");
        for level in 0..depth {
            body = format!(
                "Content-Type: multipart/mixed; boundary=\"m{level}\"\r\n\r\n--m{level}\r\n{body}--m{level}--\r\n"
            );
        }
        let head = g.head("nested multiparts");
        g.push(C, "multipart-depth", format!("{head}{body}").into_bytes());
    }
    for i in 0..30 {
        let head = g.head(&format!("nested {i}"));
        let inner = nested_rfc822(g, 1 + i % 4, 0);
        let (variant, raw) = match i % 5 {
            0 => (
                "truncated-inner",
                format!(
                    "{head}Content-Type: message/rfc822\r\n\r\n{}",
                    &inner[..inner.len() / 2]
                ),
            ),
            1 => (
                "base64-inner",
                format!(
                    "{head}Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
                    b64_lines(inner.as_bytes())
                ),
            ),
            2 => (
                "empty-inner",
                format!("{head}Content-Type: message/rfc822\r\n\r\n"),
            ),
            3 => (
                "global-inner",
                format!("{head}Content-Type: message/global\r\n\r\n{inner}"),
            ),
            _ => (
                "attached-rfc822",
                format!(
                    "{head}Content-Type: multipart/mixed; boundary=\"f\"\r\n\r\n--f\r\nContent-Type: message/rfc822; name=\"fwd.eml\"\r\nContent-Disposition: attachment; filename=\"fwd.eml\"\r\n\r\n{inner}\r\n--f--\r\n"
                ),
            ),
        };
        g.push(C, variant, raw.into_bytes());
    }
}

/// A TNEF stream: the signature, a key, then attributes (level, id, length,
/// data, checksum), some of them deliberately wrong.
fn tnef_stream(g: &mut Gen, broken: bool) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x223e_9f78u32.to_le_bytes());
    out.extend_from_slice(&(g.rng.next() as u16).to_le_bytes());
    let attributes = 2 + g.rng.below(6);
    for n in 0..attributes {
        let data: Vec<u8> = match n {
            0 => vec![0, 1, 1, 0],                      // attTnefVersion
            1 => b"IPM.Microsoft Mail.Note\0".to_vec(), // attMessageClass
            _ => g.rng.junk(0, 600),
        };
        out.push(if n < 2 { 1 } else { 2 });
        let id: u32 = match n {
            0 => 0x0008_9006,
            1 => 0x0007_8008,
            _ => 0x0006_800f,
        };
        out.extend_from_slice(&id.to_le_bytes());
        let len = if broken && n == attributes - 1 {
            u32::MAX - g.rng.below(1000) as u32
        } else {
            data.len() as u32
        };
        out.extend_from_slice(&len.to_le_bytes());
        let checksum = data
            .iter()
            .map(|&b| u16::from(b))
            .fold(0u16, u16::wrapping_add);
        out.extend_from_slice(&data);
        out.extend_from_slice(&checksum.to_le_bytes());
    }
    out
}

fn tnef(g: &mut Gen) {
    const C: Category = Category::Tnef;
    for i in 0..40 {
        let stream = tnef_stream(g, i % 4 == 3);
        let outlook = "X-MS-Has-Attach: yes\r\nX-MS-TNEF-Correlator: <00000000ABCDEF@fabrikam.example>\r\nThread-Index: AQHZ3m4rAAECAwQFBgcICQoLDA0ODxAREhMUFRYX\r\nX-Mailer: Microsoft Outlook 16.0\r\n";
        let head = g.head(&format!("tnef {i}"));
        let (variant, raw) = match i % 4 {
            0 | 3 => (
                "winmail",
                format!(
                    "{head}{outlook}Content-Type: multipart/mixed; boundary=\"t\"\r\n\r\n--t\r\nContent-Type: text/plain\r\n\r\nSee the attached file.\r\n--t\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Disposition: attachment; filename=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--t--\r\n",
                    b64_lines(&stream)
                ),
            ),
            1 => (
                "tnef-only-body",
                format!(
                    "{head}{outlook}Content-Type: application/ms-tnef\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
                    b64_lines(&stream)
                ),
            ),
            _ => {
                let b64 = b64_lines(&stream);
                (
                    "truncated-winmail",
                    format!(
                        "{head}{outlook}Content-Type: multipart/mixed; boundary=\"t\"\r\n\r\n--t\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
                        &b64[..b64.len() / 3]
                    ),
                )
            }
        };
        g.push(C, variant, raw.into_bytes());
    }
}

fn ics(method: &str, uid: &str, extra: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Fabrikam//Hostile//EN\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260601T100000Z\r\nDTSTART;TZID=Europe/Berlin:20260610T090000\r\nDTEND;TZID=Europe/Berlin:20260610T100000\r\n\
         SUMMARY:Quarterly review\r\nORGANIZER;CN=Carl:mailto:carl@fabrikam.example\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:alice@example.org\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn calendar(g: &mut Gen) {
    const C: Category = Category::Calendar;
    for i in 0..70 {
        let uid = format!("cal-{i}-{:x}@fabrikam.example", g.seed);
        let head = g.head(&format!("Invitation: review {i}"));
        let (variant, raw) = match i % 10 {
            0 => (
                "request",
                format!(
                    "{head}Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nYou are invited.\r\n--a\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n{}--a--\r\n",
                    ics("REQUEST", &uid, "")
                ),
            ),
            1 => (
                "cancel",
                format!(
                    "{head}Content-Type: text/calendar; method=CANCEL\r\n\r\n{}",
                    ics("CANCEL", &uid, "STATUS:CANCELLED\r\nSEQUENCE:2\r\n")
                ),
            ),
            2 => (
                "reply",
                format!(
                    "{head}Content-Type: text/calendar; method=REPLY\r\n\r\n{}",
                    ics("REPLY", &uid, "")
                ),
            ),
            3 => (
                "unterminated",
                format!(
                    "{head}Content-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:garbage\r\n"
                ),
            ),
            4 => (
                "attachment-base64",
                format!(
                    "{head}Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\ninvite attached\r\n--m\r\nContent-Type: application/ics; name=\"invite.ics\"\r\nContent-Disposition: attachment; filename=\"invite.ics\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--m--\r\n",
                    b64_lines(ics("REQUEST", &uid, "").as_bytes())
                ),
            ),
            5 => (
                "huge-rrule",
                format!(
                    "{head}Content-Type: text/calendar; method=REQUEST\r\n\r\n{}",
                    ics(
                        "REQUEST",
                        &uid,
                        &format!(
                            "RRULE:FREQ=SECONDLY;COUNT=999999999;BYDAY={}\r\n",
                            "MO,".repeat(3000)
                        )
                    )
                ),
            ),
            6 => (
                "invalid-dates",
                format!(
                    "{head}Content-Type: text/calendar; method=REQUEST\r\n\r\n{}",
                    ics(
                        "REQUEST",
                        &uid,
                        "DTSTART:99999999T999999Z\r\nEXDATE:not-a-date\r\nRECURRENCE-ID:\r\n"
                    )
                ),
            ),
            7 => {
                let mut events = String::new();
                for n in 0..(200 + g.rng.below(800)) {
                    let _ = write!(
                        events,
                        "BEGIN:VEVENT\r\nUID:{uid}-{n}\r\nDTSTART:20260610T090000Z\r\nEND:VEVENT\r\n"
                    );
                }
                (
                    "many-events",
                    format!(
                        "{head}Content-Type: text/calendar; method=PUBLISH\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\n{events}END:VCALENDAR\r\n"
                    ),
                )
            }
            8 => (
                "unknown-method",
                format!(
                    "{head}Content-Type: text/calendar; method=\"X-\u{0}BOGUS\"\r\n\r\n{}",
                    ics("X-BOGUS", &uid, "X-LONG:{}\r\n")
                ),
            ),
            _ => (
                "vcard-and-calendar",
                format!(
                    "{head}Content-Type: multipart/mixed; boundary=\"v\"\r\n\r\n--v\r\nContent-Type: text/vcard\r\n\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nFN:Carl\r\nEMAIL:carl@fabrikam.example\r\n--v\r\nContent-Type: text/calendar; method=COUNTER\r\n\r\n{}--v--\r\n",
                    ics("COUNTER", &uid, "")
                ),
            ),
        };
        g.push(C, variant, raw.into_bytes());
    }
}

fn bounces(g: &mut Gen) {
    const C: Category = Category::Bounces;
    for i in 0..70 {
        let original = format!(
            "{}\r\nThe original message.\r\n",
            g.head("Quote CRM:00010042")
        );
        let id = g.message_id();
        let head = format!(
            "From: Mail Delivery System <MAILER-DAEMON@mx.fabrikam.example>\r\nTo: alice@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: {id}\r\nAuto-Submitted: auto-replied\r\nReturn-Path: <>\r\nMIME-Version: 1.0\r\n"
        );
        let status = "Reporting-MTA: dns; mx.fabrikam.example\r\n\r\nFinal-Recipient: rfc822; nobody@fabrikam.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n";
        let (variant, raw) = match i % 7 {
            0 => (
                "delivery-status",
                format!(
                    "{head}Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\n{status}\r\n--r\r\nContent-Type: message/rfc822\r\n\r\n{original}--r--\r\n"
                ),
            ),
            1 => (
                "headers-only-original",
                format!(
                    "{head}Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\n{status}\r\n--r\r\nContent-Type: text/rfc822-headers\r\n\r\n{}--r--\r\n",
                    original.split("\r\n\r\n").next().unwrap_or_default()
                ),
            ),
            2 => (
                "broken-status-fields",
                format!(
                    "{head}Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA dns\r\nStatus: 9.9.9.9\r\nAction:\r\n\r\n\r\n\r\n--r\r\nContent-Type: message/rfc822\r\n\r\n{}",
                    &original[..original.len() / 2]
                ),
            ),
            3 => (
                "mdn",
                format!(
                    "{head}Content-Type: multipart/report; report-type=disposition-notification; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822; carl@fabrikam.example\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--r--\r\n"
                ),
            ),
            4 => (
                "report-without-boundary",
                format!(
                    "{head}Content-Type: multipart/report; report-type=delivery-status\r\n\r\n{status}"
                ),
            ),
            5 => (
                "exchange-ndr",
                format!(
                    "From: postmaster@fabrikam.example\r\nTo: alice@example.org\r\nSubject: Undeliverable: Quote CRM:00010042\r\nMessage-ID: {id}\r\nX-MS-Exchange-Message-Is-Ndr: \r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"n\"\r\n\r\n--n\r\nContent-Type: text/html\r\n\r\n<b>Delivery has failed</b>\r\n--n\r\nContent-Type: message/delivery-status\r\n\r\n{status}--n\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--n--\r\n",
                    b64_lines(original.as_bytes())
                ),
            ),
            _ => {
                let mut raw = format!("{head}Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\n").into_bytes();
                raw.extend(g.rng.bytes(300));
                raw.extend_from_slice(b"\r\n--r--\r\n");
                ("binary-status", String::from_utf8_lossy(&raw).into_owned())
            }
        };
        g.push(C, variant, raw.into_bytes());
    }
}

/// Well-formed messages with an attachment, an invitation and a forwarded
/// message, for cutting.
fn rich(g: &mut Gen, i: usize) -> Vec<u8> {
    let head = g.head(&format!("rich {i}"));
    let pdf = g.rng.junk(500, 3000);
    let fwd = format!("{}\r\nforwarded\r\n", g.head("forwarded"));
    format!(
        "{head}Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 {}\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--alt--\r\n--outer\r\nContent-Type: application/pdf; name=\"q.pdf\"\r\nContent-Disposition: attachment; filename=\"q.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--outer\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n{}--outer\r\nContent-Type: message/rfc822\r\n\r\n{fwd}--outer--\r\n",
        g.words(20),
        b64_lines(&pdf),
        ics("REQUEST", &format!("rich-{i}"), ""),
    )
    .into_bytes()
}

fn truncated(g: &mut Gen) {
    const C: Category = Category::Truncated;
    for i in 0..220 {
        let mut raw = rich(g, i);
        // The cut lands anywhere: in the headers, inside a CRLF, in base64.
        let cut = match i % 4 {
            0 => g.rng.below(200).min(raw.len()),
            _ => 1 + g.rng.below(raw.len() - 1),
        };
        raw.truncate(cut);
        g.push(C, "cut", raw);
    }
}

fn bytes(g: &mut Gen) {
    const C: Category = Category::Bytes;
    for i in 0..110 {
        let head = g.head(&format!("bytes {i}"));
        let text = g.text(3);
        let (variant, raw): (&str, Vec<u8>) = match i % 10 {
            0 => {
                let mut raw = format!("{head}X-Nul: a\0b\r\n\r\n").into_bytes();
                raw.extend_from_slice(b"body with \0 NUL \0\0 bytes\r\n");
                ("nul-bytes", raw)
            }
            1 => ("cr-only", format!("{head}\r\n{text}").replace("\r\n", "\r").into_bytes()),
            2 => ("lf-only", format!("{head}\r\n{text}").replace("\r\n", "\n").into_bytes()),
            3 => {
                let mixed = format!("{head}\r\n{text}")
                    .split("\r\n")
                    .enumerate()
                    .map(|(n, l)| format!("{l}{}", ["\r\n", "\n", "\r", "\n\r"][n % 4]))
                    .collect::<String>();
                ("mixed-line-endings", mixed.into_bytes())
            }
            4 => ("bare-cr-in-header", format!("From: carl@fabrikam.example\r\nSubject: a\rb\rc\r\nMessage-ID: {}\r\n\r\n{text}", g.message_id()).into_bytes()),
            5 => {
                let mut raw = b"\xef\xbb\xbf".to_vec();
                raw.extend_from_slice(format!("{head}\r\n{text}").as_bytes());
                ("utf8-bom", raw)
            }
            6 => {
                let mut raw = b"\xff\xfe".to_vec();
                raw.extend_from_slice(format!("{head}\r\n{text}").as_bytes());
                ("utf16-bom", raw)
            }
            7 => ("nul-in-subject", format!("From: carl@fabrikam.example\r\nTo: alice@example.org\r\nSubject: quote\0CRM:00010042\0\r\nMessage-ID: {}\r\n\r\n{text}", g.message_id()).into_bytes()),
            8 => ("control-bytes", format!("{head}\r\n\u{c}\u{1a}\u{7f}\u{1b}[2J{text}\u{8}\u{8}").into_bytes()),
            _ => ("long-body-line", format!("{head}\r\n{}\r\n", "y".repeat(200_000 + g.rng.below(200_000))).into_bytes()),
        };
        g.push(C, variant, raw);
    }
}

fn file_names(g: &mut Gen) {
    const C: Category = Category::FileNames;
    let names: &[(&str, &str)] = &[
        ("rfc2231", "filename*=UTF-8''%E2%82%AC%20rates%20Q3.pdf"),
        (
            "rfc2231-continuations",
            "filename*0*=UTF-8''%E2%82%AC%20;\r\n filename*1=\"rates \";\r\n filename*2*=%C3%A9t%C3%A9.pdf",
        ),
        ("rfc2231-bad-percent", "filename*=UTF-8''%ZZ%E2%8%"),
        ("path-traversal", "filename=\"../../../../etc/passwd\""),
        (
            "windows-traversal",
            "filename=\"..\\\\..\\\\Windows\\\\System32\\\\cmd.exe\"",
        ),
        ("absolute-path", "filename=\"/etc/shadow\""),
        ("long-name", ""),
        ("empty-name", "filename=\"\""),
        ("nul-in-name", "filename=\"a\0b.txt\""),
        ("rtl-override", "filename=\"invoice\u{202e}fdp.exe\""),
        ("dots-only", "filename=\"..\""),
        ("rfc2047-name", "filename=\"=?utf-8?B?w6nDqcOp?=.txt\""),
        ("unknown-charset-2231", "filename*=x-unknown'en'%FF%FE.bin"),
        ("control-chars", "filename=\"a\tb\u{7}c\u{1b}.txt\""),
    ];
    for i in 0..70 {
        let (variant, param) = names[i % names.len()];
        let param = if variant == "long-name" {
            format!("filename=\"{}.pdf\"", "n".repeat(1000 + g.rng.below(4000)))
        } else {
            param.to_owned()
        };
        let data = b64_lines(&g.rng.junk(64, 512));
        let head = g.head(&format!("file names {i}"));
        let raw = format!(
            "{head}Content-Type: multipart/mixed; boundary=\"f\"\r\n\r\n--f\r\nContent-Type: text/plain\r\n\r\nattached\r\n--f\r\nContent-Type: application/octet-stream; name=\"other-name.bin\"\r\nContent-Disposition: attachment; {param}\r\nContent-Transfer-Encoding: base64\r\n\r\n{data}--f--\r\n"
        );
        g.push(C, variant, raw.into_bytes());
    }
    let head = g.head("two hundred attachments");
    let mut raw = format!("{head}Content-Type: multipart/mixed; boundary=\"many\"\r\n\r\n");
    for n in 0..200 {
        let _ = write!(
            raw,
            "--many\r\nContent-Type: text/plain; name=\"f{n}.txt\"\r\nContent-Disposition: attachment; filename=\"f{n}.txt\"\r\n\r\nfile {n}\r\n"
        );
    }
    raw.push_str("--many--\r\n");
    g.push(C, "two-hundred-attachments", raw.into_bytes());
}

fn degenerate(g: &mut Gen) {
    const C: Category = Category::Degenerate;
    let fixed: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("crlf-only", b"\r\n"),
        ("whitespace-only", b"   \t \r\n \r\n"),
        ("single-byte", b"x"),
        ("headers-only-no-blank-line", b"From: carl@fabrikam.example\r\nSubject: only headers"),
        ("headers-only", b"From: carl@fabrikam.example\r\nTo: alice@example.org\r\nSubject: only headers\r\n\r\n"),
        ("body-without-headers", b"\r\nJust a body, no headers at all.\r\n"),
        ("mbox-from-line", b"From carl@fabrikam.example Mon Jun  1 10:00:00 2026\r\nFrom: carl@fabrikam.example\r\nSubject: mbox\r\n\r\nbody\r\n"),
        ("html-document", b"<!DOCTYPE html><html><body>not mail</body></html>"),
        ("png-file", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0"),
        ("json-document", b"{\"from\": \"carl@fabrikam.example\", \"subject\": 1}"),
        ("colon-only", b":\r\n:\r\n\r\n:"),
    ];
    for (variant, raw) in fixed {
        g.push(C, variant, raw.to_vec());
    }
    for n in 0..40 {
        let len = match n % 4 {
            0 => 1 + g.rng.below(16),
            1 => 16 + g.rng.below(1024),
            2 => 1024 + g.rng.below(16 * 1024),
            _ => 16 * 1024 + g.rng.below(128 * 1024),
        };
        let junk = g.rng.bytes(len);
        g.push(C, "binary-junk", junk);
    }
}

fn oversized(g: &mut Gen) {
    const C: Category = Category::Oversized;
    let head = g.head("a 12 MB attachment");
    let data = g.rng.bytes(12 * 1024 * 1024);
    let raw = format!(
        "{head}Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--big\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--big--\r\n",
        b64_lines(&data)
    );
    g.push(C, "attachment-12mb", raw.into_bytes());

    let head = g.head("a 16 MB text body");
    let mut raw = format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n").into_bytes();
    let line = g.text(1).into_bytes();
    while raw.len() < 16 * 1024 * 1024 {
        raw.extend_from_slice(&line);
    }
    g.push(C, "text-16mb", raw);

    // Unterminated, so the parser reads to the end of a large buffer.
    let head = g.head("a 24 MB unterminated multipart");
    let mut raw = format!("{head}Content-Type: multipart/mixed; boundary=\"u\"\r\n\r\n--u\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n").into_bytes();
    raw.extend_from_slice(b64_lines(&g.rng.bytes(18 * 1024 * 1024)).as_bytes());
    g.push(C, "unterminated-24mb", raw);
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[test]
    fn the_corpus_is_large_deterministic_and_named_uniquely() {
        let a = corpus(DEFAULT_SEED);
        assert!(a.len() >= 1000, "{} messages", a.len());
        let names: BTreeSet<&str> = a.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), a.len(), "names are unique");
        let counts: BTreeMap<Category, usize> = a.iter().fold(BTreeMap::new(), |mut c, m| {
            *c.entry(m.category).or_default() += 1;
            c
        });
        for category in Category::ALL {
            assert!(
                counts.get(&category).is_some_and(|&n| n > 0),
                "{category:?}"
            );
        }
        let b = corpus(DEFAULT_SEED);
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.name == y.name && x.raw == y.raw)
        );
        let other = corpus(DEFAULT_SEED + 1);
        assert!(a.iter().zip(&other).any(|(x, y)| x.raw != y.raw));
        let big: Vec<&HostileMessage> = a.iter().filter(|m| m.is_oversized()).collect();
        assert_eq!(big.len(), 3);
        assert!(big.iter().all(|m| m.raw.len() > 10 * 1024 * 1024));
        assert!(
            a.iter()
                .filter(|m| !m.is_oversized())
                .all(|m| m.raw.len() < 2 * 1024 * 1024)
        );
    }

    #[test]
    fn the_required_shapes_are_there() {
        let all = corpus(DEFAULT_SEED);
        let find = |name: &str| {
            all.iter()
                .find(|m| m.name.starts_with(name))
                .unwrap_or_else(|| panic!("{name}"))
        };
        let long = find("headers/subject-100kb");
        assert!(long.raw.len() > 100 * 1024);
        let many = find("headers/ten-thousand-headers");
        assert!(many.raw.windows(9).filter(|w| w == b"X-Filler-").count() == 10_000);
        let deep = all
            .iter()
            .filter(|m| m.name.starts_with("nesting/rfc822-depth"))
            .map(|m| {
                m.raw
                    .windows(28)
                    .filter(|w| w == b"Content-Type: message/rfc822")
                    .count()
            })
            .max();
        assert!(deep.is_some_and(|d| d >= 50), "{deep:?}");
        assert!(
            find("tnef/winmail")
                .raw
                .windows(11)
                .any(|w| w == b"winmail.dat")
        );
        assert!(find("degenerate/empty").raw.is_empty());
    }

    /// The checked-in samples are the generator's output; set
    /// `MAILBRIDGE_BLESS=1` to write them again after changing the generator.
    #[test]
    fn samples_are_current() {
        let all = corpus(DEFAULT_SEED);
        let dir = samples_dir();
        for variant in SAMPLES {
            let m = all
                .iter()
                .find(|m| m.name.starts_with(&format!("{variant}-")))
                .unwrap_or_else(|| panic!("no corpus message of the variant {variant}"));
            let path = dir.join(m.file_name());
            if std::env::var_os("MAILBRIDGE_BLESS").is_some() {
                std::fs::create_dir_all(&dir).expect("samples folder");
                std::fs::write(&path, &m.raw).expect("writing a sample");
            }
            let kept = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (MAILBRIDGE_BLESS=1 writes it)", path.display())
            });
            assert!(
                kept == m.raw,
                "{} differs from the generator",
                path.display()
            );
        }
    }
}

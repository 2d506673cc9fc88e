//! Writing and reading EWS's XML: a small writer that escapes every text and
//! attribute value (and drops the characters XML 1.0 cannot hold, which Exchange
//! would refuse with `ErrorSchemaValidation`), and helpers that read roxmltree
//! nodes by local name (EWS answers use a handful of prefixes for two namespaces,
//! so names, not prefixes, are what to match).

use chrono::{DateTime, NaiveDate, Utc};
use roxmltree::Node;

/// The messages namespace (`m:`): operations and their answers.
pub const MESSAGES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// The types namespace (`t:`): items, folders, properties.
pub const TYPES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// SOAP 1.1.
pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// Builds an XML document as a string; elements are closed by name, in order.
#[derive(Debug, Default)]
pub(crate) struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub(crate) fn new() -> XmlWriter {
        XmlWriter::default()
    }

    /// `<name a="v" ...>`.
    pub(crate) fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push('>');
        self
    }

    /// `</name>`.
    pub(crate) fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name a="v" .../>`.
    pub(crate) fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push_str("/>");
        self
    }

    /// `<name>text</name>`, the text escaped.
    pub(crate) fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.leaf_with(name, &[], text)
    }

    /// `<name a="v">text</name>`.
    pub(crate) fn leaf_with(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        text: &str,
    ) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push('>');
        escape_into(&mut self.out, text, false);
        self.close(name)
    }

    /// Text already written as XML by another writer (a nested fragment).
    pub(crate) fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(&mut self.out, v, true);
            self.out.push('"');
        }
    }
}

/// Escapes text (or, with `attr`, an attribute value) for XML, dropping the
/// characters XML 1.0 does not allow (controls other than tab, LF and CR).
fn escape_into(out: &mut String, text: &str, attr: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            // In an attribute, white space other than a space is normalized
            // away by the reader unless written as a reference.
            '\n' if attr => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attr => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// `text` escaped as XML character data.
#[cfg(test)]
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text, false);
    out
}

/// The first child element named `local` (any namespace).
pub(crate) fn child<'a, 'i>(node: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == local)
}

/// Every child element named `local`.
pub(crate) fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    local: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().name() == local)
}

/// The element children of `node`.
pub(crate) fn elements<'a, 'i: 'a>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(Node::is_element)
}

/// The element at a path of local names below `node`.
pub(crate) fn path<'a, 'i>(node: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

/// The text of the child `local`, trimmed; `None` when absent or empty.
pub(crate) fn text(node: Node<'_, '_>, local: &str) -> Option<String> {
    child(node, local).and_then(own_text)
}

/// The text of `node` itself, trimmed; `None` when empty.
pub(crate) fn own_text(node: Node<'_, '_>) -> Option<String> {
    let t: String = node
        .children()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .collect();
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// The child `local` read as `true`/`false`.
pub(crate) fn boolean(node: Node<'_, '_>, local: &str) -> Option<bool> {
    match text(node, local)?.as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The child `local` read as an `xs:dateTime`.
pub(crate) fn date_time(node: Node<'_, '_>, local: &str) -> Option<DateTime<Utc>> {
    text(node, local).and_then(|t| parse_date_time(&t))
}

/// An `xs:dateTime` as EWS writes it: `2026-01-05T09:00:00Z`, with an offset, with
/// fractions, or (with no time zone context) without a zone, which is UTC.
pub fn parse_date_time(t: &str) -> Option<DateTime<Utc>> {
    let t = t.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// How EWS is sent a point in time: UTC, whole seconds.
pub fn format_date_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An `xs:date` as EWS writes it, which may carry an offset (`2026-01-05-08:00`,
/// `QUIRK_DATE_OFFSET`): the first ten characters are the date.
pub fn parse_date(t: &str) -> Option<NaiveDate> {
    let t = t.trim();
    NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let cases = [
            ("a & b", "a &amp; b"),
            ("<id@x>", "&lt;id@x&gt;"),
            ("\"q\" 'a'", "\"q\" 'a'"),
            ("bell\u{7}ring", "bellring"),
            ("line\r\nnext\ttab", "line&#13;\nnext\ttab"),
        ];
        for (raw, expected) in cases {
            assert_eq!(escape(raw), expected, "{raw:?}");
        }
        let mut w = XmlWriter::new();
        w.empty("t:Constant", &[("Value", "<a\"b'&>\n")]);
        assert_eq!(
            w.finish(),
            "<t:Constant Value=\"&lt;a&quot;b&apos;&amp;&gt;&#10;\"/>"
        );
    }

    #[test]
    fn written_documents_read_back_the_same_values() {
        let nasty = "R&D <team> \"quoted\" 'single' ünïcødé\ttab\nline";
        let mut w = XmlWriter::new();
        w.open("r", &[("a", nasty)]).leaf("s", nasty).close("r");
        let xml = w.finish();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let root = doc.root_element();
        assert_eq!(root.attribute("a"), Some(nasty));
        assert_eq!(child(root, "s").and_then(|n| n.text()), Some(nasty));
    }

    #[test]
    fn dates_and_times_are_read_in_every_form_ews_writes() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .ok()
        };
        let cases = [
            ("2026-01-05T09:00:00Z", at("2026-01-05T09:00:00Z")),
            ("2026-01-05T01:00:00-08:00", at("2026-01-05T09:00:00Z")),
            ("2026-01-05T09:00:00.123Z", at("2026-01-05T09:00:00.123Z")),
            ("2026-01-05T09:00:00", at("2026-01-05T09:00:00Z")),
            ("soon", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_date_time(raw), expected, "{raw}");
        }
        let d = NaiveDate::from_ymd_opt(2026, 1, 5);
        assert_eq!(parse_date("2026-01-05-08:00"), d);
        assert_eq!(parse_date("2026-01-05Z"), d);
        assert_eq!(parse_date("2026-01-05"), d);
        assert_eq!(parse_date("01/05/2026"), None);
        assert_eq!(
            at("2026-01-05T09:00:00Z").map(format_date_time).as_deref(),
            Some("2026-01-05T09:00:00Z")
        );
    }
}

//! XML for the EWS test server: the namespaces, escaping, a small writer that keeps
//! its elements balanced, look-ups in parsed requests (roxmltree), and the
//! re-serialization of a request's element with the canonical `t:`/`m:` prefixes
//! (how item properties are stored and answered back).

use roxmltree::Node;

pub(crate) const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// `m:` — operations and response messages.
pub(crate) const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// `t:` — items, folders, ids, headers.
pub(crate) const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// `e:` — the response code inside a SOAP fault's `detail`.
pub(crate) const E: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub(crate) const XSD: &str = "http://www.w3.org/2001/XMLSchema";

/// Text content escaped for an element.
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// Text escaped for a double-quoted attribute value.
pub(crate) fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// Characters XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A writer whose elements are closed in order; names carry their prefix (`t:Folder`).
#[derive(Debug, Default)]
pub(crate) struct Xml {
    buf: String,
    open: Vec<String>,
}

impl Xml {
    pub fn new() -> Xml {
        Xml::default()
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.buf.push('<');
        self.buf.push_str(name);
        for (k, v) in attrs {
            self.buf.push(' ');
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            self.buf.push_str(&escape_attr(v));
            self.buf.push('"');
        }
    }

    /// `<name attrs>`; closed by [`Xml::close`].
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Xml {
        self.start_tag(name, attrs);
        self.buf.push('>');
        self.open.push(name.to_owned());
        self
    }

    /// Closes the innermost open element.
    pub fn close(&mut self) -> &mut Xml {
        if let Some(name) = self.open.pop() {
            self.buf.push_str("</");
            self.buf.push_str(&name);
            self.buf.push('>');
        }
        self
    }

    /// `<name attrs/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Xml {
        self.start_tag(name, attrs);
        self.buf.push_str("/>");
        self
    }

    /// `<name attrs>text</name>`.
    pub fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Xml {
        self.start_tag(name, attrs);
        self.buf.push('>');
        self.buf.push_str(&escape_text(text));
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    /// `<name>text</name>` without attributes.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Xml {
        self.leaf(name, &[], text)
    }

    /// Already well-formed XML (a stored property, or another writer's output).
    pub fn raw(&mut self, xml: &str) -> &mut Xml {
        self.buf.push_str(xml);
        self
    }

    /// The document so far, every open element closed.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.buf
    }
}

/// Whether `node` is the element `{ns}name`.
pub(crate) fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

/// The first child element `{ns}name`.
pub(crate) fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(*c, ns, name))
}

/// Every child element `{ns}name`.
pub(crate) fn children<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |c| is(*c, ns, name))
}

/// Every child element.
pub(crate) fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// The text of the child element `{ns}name`, trimmed.
pub(crate) fn child_text(node: Node<'_, '_>, ns: &str, name: &str) -> Option<String> {
    child(node, ns, name).map(|c| text_of(c).trim().to_owned())
}

/// The concatenated text of an element's descendants.
pub(crate) fn text_of(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .collect()
}

/// The element re-serialized: EWS namespaces as `t:`/`m:` (declared by the response
/// envelope), other namespaces declared on the element itself; namespaced attributes
/// other than `xsi:` ones are dropped.
pub(crate) fn serialize(node: Node<'_, '_>) -> String {
    let mut out = String::new();
    write_node(node, &mut out, None);
    out
}

/// The element's children re-serialized (as [`serialize`]).
pub(crate) fn serialize_children(node: Node<'_, '_>) -> String {
    let mut out = String::new();
    for c in node.children() {
        write_node(c, &mut out, None);
    }
    out
}

fn write_node(node: Node<'_, '_>, out: &mut String, default_ns: Option<&str>) {
    if node.is_text() {
        out.push_str(&escape_text(node.text().unwrap_or_default()));
        return;
    }
    if !node.is_element() {
        return;
    }
    let ns = node.tag_name().namespace();
    let local = node.tag_name().name();
    let (name, declare) = match ns {
        Some(T) => (format!("t:{local}"), None),
        Some(M) => (format!("m:{local}"), None),
        Some(other) if Some(other) == default_ns => (local.to_owned(), None),
        Some(other) => (local.to_owned(), Some(other)),
        None => (local.to_owned(), default_ns.map(|_| "")),
    };
    out.push('<');
    out.push_str(&name);
    if let Some(uri) = declare {
        out.push_str(" xmlns=\"");
        out.push_str(&escape_attr(uri));
        out.push('"');
    }
    for a in node.attributes() {
        let prefix = match a.namespace() {
            None => "",
            Some(XSI) => "xsi:",
            Some(_) => continue,
        };
        out.push(' ');
        out.push_str(prefix);
        out.push_str(a.name());
        out.push_str("=\"");
        out.push_str(&escape_attr(a.value()));
        out.push('"');
    }
    let inner_default = match (ns, declare) {
        (_, Some("")) => None,
        (_, Some(uri)) => Some(uri),
        _ => default_ns,
    };
    if node.has_children() {
        out.push('>');
        for c in node.children() {
            write_node(c, out, inner_default);
        }
        out.push_str("</");
        out.push_str(&name);
        out.push('>');
    } else {
        out.push_str("/>");
    }
}

/// Parses a fragment of `t:` elements (a test helper's item properties) inside a
/// wrapper that declares the prefixes; returns the wrapper's document text.
pub(crate) fn wrap_fragment(fragment: &str) -> String {
    format!("<w xmlns:t=\"{T}\" xmlns:m=\"{M}\" xmlns:xsi=\"{XSI}\">{fragment}</w>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let cases = [
            ("a<b>&c", "a&lt;b&gt;&amp;c", "a&lt;b&gt;&amp;c"),
            ("say \"hi\"", "say \"hi\"", "say &quot;hi&quot;"),
            ("line\r\nnext", "line&#xD;\nnext", "line&#xD;&#xA;next"),
            ("nul\u{0}", "nul\u{FFFD}", "nul\u{FFFD}"),
        ];
        for (input, text, attr) in cases {
            assert_eq!(escape_text(input), text, "{input:?}");
            assert_eq!(escape_attr(input), attr, "{input:?}");
        }
    }

    #[test]
    fn the_writer_balances_and_escapes() {
        let mut x = Xml::new();
        x.open("t:Folder", &[("Id", "a\"b")])
            .text("t:DisplayName", "R&D")
            .empty("t:ParentFolderId", &[("Id", "p")]);
        assert_eq!(
            x.finish(),
            "<t:Folder Id=\"a&quot;b\"><t:DisplayName>R&amp;D</t:DisplayName>\
             <t:ParentFolderId Id=\"p\"/></t:Folder>"
        );
    }

    #[test]
    fn elements_are_reserialized_with_canonical_prefixes() {
        let doc = format!(
            "<root xmlns:x=\"{T}\" xmlns:y=\"urn:other\"><x:Categories><x:String>A &amp; B</x:String>\
             </x:Categories><y:Odd k=\"v\"><y:In/></y:Odd></root>"
        );
        let doc = roxmltree::Document::parse(&doc).expect("xml");
        let got = serialize_children(doc.root_element());
        assert_eq!(
            got,
            "<t:Categories><t:String>A &amp; B</t:String></t:Categories>\
             <Odd xmlns=\"urn:other\" k=\"v\"><In/></Odd>"
        );
    }
}

//! WebDAV XML: the request bodies this client sends and the `multistatus` answers it
//! reads (RFC 4918 section 13, RFC 4791, RFC 6352, RFC 6578), as owned values with no
//! I/O, so that every parser is tested on recorded samples.

use roxmltree::{Document, Node};

pub(crate) const DAV: &str = "DAV:";
pub(crate) const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
pub(crate) const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
pub(crate) const CALENDARSERVER: &str = "http://calendarserver.org/ns/";
/// The namespace of mailbridge's own dead properties.
pub const MAILBRIDGE_NS: &str = "https://mailbridge.dev/ns";

/// What one `<response>` of a multistatus said about one href: the properties that
/// came back with 200 (those with 404 are simply absent), and the response-level
/// status when there was one instead of propstats (a deleted member in a
/// sync-collection answer, a missing href in a multiget).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResponseProps {
    pub href: String,
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub display_name: Option<String>,
    /// `(namespace, local name)` of each child of `resourcetype`.
    pub resource_types: Vec<(String, String)>,
    /// `supported-calendar-component-set`: the `name` of each `comp`, upper case;
    /// `None` when the property was absent (every component is then allowed).
    pub components: Option<Vec<String>>,
    pub ctag: Option<String>,
    pub sync_token: Option<String>,
    pub current_user_principal: Option<String>,
    pub calendar_home_set: Vec<String>,
    pub addressbook_home_set: Vec<String>,
    pub calendar_data: Option<String>,
    pub address_data: Option<String>,
    pub claim: Option<String>,
    /// The statuses of propstats that were not 2xx (in a PROPPATCH answer, the
    /// refusal of a property; in a PROPFIND answer, usually 404 for absent ones).
    pub propstat_failures: Vec<u16>,
}

impl ResponseProps {
    pub(crate) fn is_collection(&self) -> bool {
        self.has_type(DAV, "collection")
    }

    pub(crate) fn has_type(&self, ns: &str, name: &str) -> bool {
        self.resource_types
            .iter()
            .any(|(n, l)| n == ns && l == name)
    }
}

/// A parsed multistatus: its responses and, for sync-collection, the new token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Multistatus {
    pub responses: Vec<ResponseProps>,
    pub sync_token: Option<String>,
}

/// Reads a `207 Multi-Status` body.
///
/// # Errors
/// A short description when the body is not XML or not a `DAV:multistatus`.
pub(crate) fn parse_multistatus(body: &str) -> Result<Multistatus, String> {
    let doc = Document::parse(body).map_err(|e| format!("the XML could not be read: {e}"))?;
    let root = doc.root_element();
    if !is(root, DAV, "multistatus") {
        return Err(format!(
            "expected a DAV:multistatus, found {}",
            root.tag_name().name()
        ));
    }
    let mut out = Multistatus::default();
    for child in root.children().filter(Node::is_element) {
        if is(child, DAV, "response") {
            out.responses.push(parse_response(child));
        } else if is(child, DAV, "sync-token") {
            out.sync_token = text(child);
        }
    }
    Ok(out)
}

fn parse_response(node: Node<'_, '_>) -> ResponseProps {
    let mut props = ResponseProps::default();
    for child in node.children().filter(Node::is_element) {
        if is(child, DAV, "href") {
            props.href = normalize_href(&text(child).unwrap_or_default());
        } else if is(child, DAV, "status") {
            props.status = text(child).as_deref().and_then(parse_status_line);
        } else if is(child, DAV, "propstat") {
            let status = child
                .children()
                .find(|n| is(*n, DAV, "status"))
                .and_then(text)
                .as_deref()
                .and_then(parse_status_line);
            // Only found properties count; a 404 propstat lists what the server lacks.
            match status {
                Some(s) if (200..300).contains(&s) => {
                    if let Some(prop) = child.children().find(|n| is(*n, DAV, "prop")) {
                        read_props(prop, &mut props);
                    }
                }
                other => props.propstat_failures.push(other.unwrap_or(500)),
            }
        }
    }
    props
}

fn read_props(prop: Node<'_, '_>, props: &mut ResponseProps) {
    for p in prop.children().filter(Node::is_element) {
        let ns = p.tag_name().namespace().unwrap_or("");
        match (ns, p.tag_name().name()) {
            (DAV, "getetag") => props.etag = text(p),
            (DAV, "displayname") => props.display_name = text(p),
            (DAV, "resourcetype") => {
                props.resource_types = p
                    .children()
                    .filter(Node::is_element)
                    .map(|t| {
                        (
                            t.tag_name().namespace().unwrap_or("").to_owned(),
                            t.tag_name().name().to_owned(),
                        )
                    })
                    .collect();
            }
            (DAV, "sync-token") => props.sync_token = text(p),
            (DAV, "current-user-principal") => props.current_user_principal = first_href(p),
            (CALDAV, "calendar-home-set") => props.calendar_home_set = hrefs(p),
            (CARDDAV, "addressbook-home-set") => props.addressbook_home_set = hrefs(p),
            (CALDAV, "supported-calendar-component-set") => {
                props.components = Some(
                    p.children()
                        .filter(|c| is(*c, CALDAV, "comp"))
                        .filter_map(|c| c.attribute("name"))
                        .map(str::to_ascii_uppercase)
                        .collect(),
                );
            }
            (CALENDARSERVER, "getctag") => props.ctag = text(p),
            (CALDAV, "calendar-data") => props.calendar_data = raw_text(p),
            (CARDDAV, "address-data") => props.address_data = raw_text(p),
            (MAILBRIDGE_NS, "claim") => props.claim = text(p),
            _ => {}
        }
    }
}

/// Whether an error body names the precondition `DAV:valid-sync-token` (RFC 6578
/// section 3.2: the token is unknown or expired, the client must start again).
pub(crate) fn names_invalid_sync_token(body: &str) -> bool {
    Document::parse(body).is_ok_and(|doc| doc.descendants().any(|n| is(n, DAV, "valid-sync-token")))
}

fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace().unwrap_or("") == ns
}

/// The trimmed text content of an element, `None` when empty.
fn text(node: Node<'_, '_>) -> Option<String> {
    let joined: String = node
        .descendants()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect();
    let trimmed = joined.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Calendar and address data keep their text untrimmed, with CRLF line ends: an
/// XML parser turns every CRLF into LF (XML 1.0 section 2.11) unless the server
/// escaped the CR, and iCalendar and vCard lines end in CRLF.
fn raw_text(node: Node<'_, '_>) -> Option<String> {
    let joined: String = node
        .descendants()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect();
    if joined.trim().is_empty() {
        return None;
    }
    Some(joined.replace("\r\n", "\n").replace('\n', "\r\n"))
}

fn first_href(node: Node<'_, '_>) -> Option<String> {
    hrefs(node).into_iter().next()
}

fn hrefs(node: Node<'_, '_>) -> Vec<String> {
    node.children()
        .filter(|c| is(*c, DAV, "href"))
        .filter_map(text)
        .map(|h| normalize_href(&h))
        .collect()
}

/// `HTTP/1.1 404 Not Found` → 404.
pub(crate) fn parse_status_line(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Hrefs are kept as absolute paths: servers may answer with a full URL
/// (`http://host/alice/x.ics`) for what they elsewhere call `/alice/x.ics`.
pub(crate) fn normalize_href(href: &str) -> String {
    let href = href.trim();
    if let Some(rest) = href
        .strip_prefix("http://")
        .or_else(|| href.strip_prefix("https://"))
    {
        return match rest.find('/') {
            Some(i) => rest[i..].to_owned(),
            None => "/".to_owned(),
        };
    }
    href.to_owned()
}

/// Escapes text for an XML element or attribute value.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

const HEADER: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

/// PROPFIND for the principal and both home sets (RFC 5397, RFC 4791 6.2.1, RFC 6352 7.1.1).
pub(crate) fn propfind_principal() -> String {
    format!(
        r#"{HEADER}<d:propfind xmlns:d="DAV:" xmlns:c="{CALDAV}" xmlns:a="{CARDDAV}"><d:prop><d:current-user-principal/><c:calendar-home-set/><a:addressbook-home-set/></d:prop></d:propfind>"#
    )
}

/// PROPFIND for what describes a collection.
pub(crate) fn propfind_collection() -> String {
    format!(
        r#"{HEADER}<d:propfind xmlns:d="DAV:" xmlns:c="{CALDAV}" xmlns:cs="{CALENDARSERVER}" xmlns:m="{MAILBRIDGE_NS}"><d:prop><d:resourcetype/><d:displayname/><c:supported-calendar-component-set/><cs:getctag/><d:sync-token/><m:claim/></d:prop></d:propfind>"#
    )
}

/// PROPFIND for the members' ETags (and the collection's own sync-token, which comes
/// back in the same answer for the collection itself).
pub(crate) fn propfind_etags() -> String {
    format!(
        r#"{HEADER}<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getetag/><d:sync-token/></d:prop></d:propfind>"#
    )
}

/// MKCALENDAR with a display name and the one component it holds (RFC 4791 5.3.1).
pub(crate) fn mkcalendar(display_name: &str, component: &str) -> String {
    format!(
        r#"{HEADER}<c:mkcalendar xmlns:d="DAV:" xmlns:c="{CALDAV}"><d:set><d:prop><d:displayname>{}</d:displayname><c:supported-calendar-component-set><c:comp name="{}"/></c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>"#,
        escape(display_name),
        escape(component)
    )
}

/// Extended MKCOL of an address book (RFC 5689, RFC 6352 6.3.1).
pub(crate) fn mkcol_addressbook(display_name: &str) -> String {
    format!(
        r#"{HEADER}<d:mkcol xmlns:d="DAV:" xmlns:a="{CARDDAV}"><d:set><d:prop><d:resourcetype><d:collection/><a:addressbook/></d:resourcetype><d:displayname>{}</d:displayname></d:prop></d:set></d:mkcol>"#,
        escape(display_name)
    )
}

/// PROPPATCH that sets (`Some`) or removes (`None`) the claim property.
pub(crate) fn proppatch_claim(value: Option<&str>) -> String {
    match value {
        Some(v) => format!(
            r#"{HEADER}<d:propertyupdate xmlns:d="DAV:" xmlns:m="{MAILBRIDGE_NS}"><d:set><d:prop><m:claim>{}</m:claim></d:prop></d:set></d:propertyupdate>"#,
            escape(v)
        ),
        None => format!(
            r#"{HEADER}<d:propertyupdate xmlns:d="DAV:" xmlns:m="{MAILBRIDGE_NS}"><d:remove><d:prop><m:claim/></d:prop></d:remove></d:propertyupdate>"#
        ),
    }
}

/// sync-collection REPORT (RFC 6578 3.2); an empty token asks for every member.
pub(crate) fn sync_collection(token: Option<&str>) -> String {
    let token = token.map(escape).unwrap_or_default();
    format!(
        r#"{HEADER}<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#
    )
}

/// calendar-multiget (RFC 4791 7.9) or addressbook-multiget (RFC 6352 8.7).
pub(crate) fn multiget(address_book: bool, hrefs: &[String]) -> String {
    let hrefs: String = hrefs
        .iter()
        .map(|h| format!("<d:href>{}</d:href>", escape(h)))
        .collect();
    if address_book {
        format!(
            r#"{HEADER}<a:addressbook-multiget xmlns:d="DAV:" xmlns:a="{CARDDAV}"><d:prop><d:getetag/><a:address-data/></d:prop>{hrefs}</a:addressbook-multiget>"#
        )
    } else {
        format!(
            r#"{HEADER}<c:calendar-multiget xmlns:d="DAV:" xmlns:c="{CALDAV}"><d:prop><d:getetag/><c:calendar-data/></d:prop>{hrefs}</c:calendar-multiget>"#
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Radicale 3's answer to a sync-collection REPORT: one changed member, one
    /// deleted (a bare 404 status), and the new token.
    const SYNC_ANSWER: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:"><response><href>/alice/cal/a.ics</href><propstat><prop><getetag>"e1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/alice/cal/b.ics</href><status>HTTP/1.1 404 Not Found</status></response><sync-token>http://radicale.org/ns/sync/abc</sync-token></multistatus>"#;

    #[test]
    fn sync_answers_give_changes_deletions_and_the_token() {
        let m = parse_multistatus(SYNC_ANSWER).expect("parses");
        assert_eq!(
            m.sync_token.as_deref(),
            Some("http://radicale.org/ns/sync/abc")
        );
        let got: Vec<_> = m
            .responses
            .iter()
            .map(|r| (r.href.as_str(), r.status, r.etag.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("/alice/cal/a.ics", None, Some("\"e1\"")),
                ("/alice/cal/b.ics", Some(404), None),
            ]
        );
    }

    #[test]
    fn collection_listings_give_types_components_and_tokens() {
        // Prefixed namespaces, as other servers write them; the 404 propstat is ignored.
        let body = r#"<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/" xmlns:M="https://mailbridge.dev/ns">
<D:response><D:href>http://dav.example.org/alice/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
<D:response><D:href>/alice/tasks/</D:href>
 <D:propstat><D:prop><D:resourcetype><D:collection/><C:calendar/></D:resourcetype><D:displayname>Tasks &amp; todos</D:displayname>
  <C:supported-calendar-component-set><C:comp name="vtodo"/></C:supported-calendar-component-set>
  <CS:getctag>"c1"</CS:getctag><D:sync-token>tok-1</D:sync-token><M:claim>org-7;2026-01-02T03:04:05Z</M:claim></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
 <D:propstat><D:prop><D:getetag/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>
</D:multistatus>"#;
        let m = parse_multistatus(body).expect("parses");
        assert_eq!(m.responses.len(), 2);
        assert_eq!(m.responses[0].href, "/alice/");
        assert!(m.responses[0].is_collection());
        let tasks = &m.responses[1];
        assert!(tasks.has_type(CALDAV, "calendar"));
        assert_eq!(tasks.display_name.as_deref(), Some("Tasks & todos"));
        assert_eq!(tasks.components, Some(vec!["VTODO".to_owned()]));
        assert_eq!(tasks.ctag.as_deref(), Some("\"c1\""));
        assert_eq!(tasks.sync_token.as_deref(), Some("tok-1"));
        assert_eq!(tasks.claim.as_deref(), Some("org-7;2026-01-02T03:04:05Z"));
        assert_eq!(tasks.etag, None);
        assert_eq!(tasks.propstat_failures, [404]);
    }

    #[test]
    fn principal_answers_give_the_principal_and_home_sets() {
        let body = r#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav"><response><href>/</href><propstat><prop><current-user-principal><href>/alice/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat><propstat><prop><C:calendar-home-set /><CR:addressbook-home-set /></prop><status>HTTP/1.1 404 Not Found</status></propstat></response></multistatus>"#;
        let m = parse_multistatus(body).expect("parses");
        let r = &m.responses[0];
        assert_eq!(r.current_user_principal.as_deref(), Some("/alice/"));
        assert!(r.calendar_home_set.is_empty() && r.addressbook_home_set.is_empty());
    }

    #[test]
    fn multiget_answers_keep_the_data_with_crlf_line_ends() {
        let body = "<multistatus xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><response><href>/a/c/1.ics</href><propstat><prop><getetag>\"x\"</getetag><C:calendar-data>BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n</C:calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/a/c/2.ics</href><status>HTTP/1.1 404 Not Found</status></response></multistatus>";
        let m = parse_multistatus(body).expect("parses");
        assert_eq!(
            m.responses[0].calendar_data.as_deref(),
            Some("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        );
        assert_eq!(m.responses[1].status, Some(404));
        // Escaped CRs (`&#13;`) survive and are not doubled.
        let escaped = body.replace("\r\n", "&#13;\n");
        let m = parse_multistatus(&escaped).expect("parses");
        assert_eq!(
            m.responses[0].calendar_data.as_deref(),
            Some("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        );
    }

    #[test]
    fn what_is_not_a_multistatus_is_refused() {
        let cases = [
            ("not xml", "could not be read"),
            ("<error xmlns=\"DAV:\"/>", "expected a DAV:multistatus"),
            ("<multistatus/>", "expected a DAV:multistatus"),
        ];
        for (body, words) in cases {
            let e = parse_multistatus(body).expect_err(body);
            assert!(e.contains(words), "{body}: {e}");
        }
    }

    #[test]
    fn the_invalid_token_precondition_is_recognised() {
        let cases = [
            (
                r#"<?xml version='1.0' encoding='utf-8'?><error xmlns="DAV:"><valid-sync-token /></error>"#,
                true,
            ),
            (
                r#"<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>"#,
                true,
            ),
            (r#"<error xmlns="DAV:"><need-privileges/></error>"#, false),
            ("Forbidden", false),
        ];
        for (body, expected) in cases {
            assert_eq!(names_invalid_sync_token(body), expected, "{body}");
        }
    }

    #[test]
    fn status_lines_and_hrefs_are_read() {
        assert_eq!(parse_status_line("HTTP/1.1 404 Not Found"), Some(404));
        assert_eq!(parse_status_line("garbage"), None);
        assert_eq!(normalize_href("https://h.example/a/b.ics"), "/a/b.ics");
        assert_eq!(normalize_href("https://h.example"), "/");
        assert_eq!(normalize_href(" /a/ "), "/a/");
    }

    #[test]
    fn request_bodies_escape_what_they_carry() {
        let body = mkcalendar("R&D <team>", "VTODO");
        assert!(body.contains("<d:displayname>R&amp;D &lt;team&gt;</d:displayname>"));
        assert!(body.contains(r#"<c:comp name="VTODO"/>"#));
        assert!(Document::parse(&body).is_ok());
        for body in [
            propfind_principal(),
            propfind_collection(),
            propfind_etags(),
            mkcol_addressbook("Contacts"),
            proppatch_claim(Some("org;2026-01-01T00:00:00Z")),
            proppatch_claim(None),
            sync_collection(Some("http://radicale.org/ns/sync/a&b")),
            sync_collection(None),
            multiget(true, &["/a/b.vcf".to_owned()]),
            multiget(false, &["/a/b&c.ics".to_owned()]),
        ] {
            assert!(Document::parse(&body).is_ok(), "{body}");
        }
    }
}

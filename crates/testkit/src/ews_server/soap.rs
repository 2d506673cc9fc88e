//! The SOAP 1.1 envelope of EWS: what a request's header says (server version,
//! impersonation), the response envelope with `ServerVersionInfo`, response
//! messages (`ResponseClass`, `MessageText`, `ResponseCode`), and SOAP faults with
//! HTTP 500 for errors Exchange raises before or instead of an operation's answer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roxmltree::Node;

use super::xml::{E, M, SOAP, T, XSD, XSI, Xml, child, child_text, elements};

/// The values of `t:RequestServerVersion/@Version` the Exchange 2016 schema accepts.
const VERSIONS: [&str; 18] = [
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
    "V2017_10_09",
];

/// The documented text of each response code this server answers.
pub(crate) fn message_text(code: &str) -> &'static str {
    match code {
        "ErrorItemNotFound" => "The specified object was not found in the store.",
        "ErrorFolderNotFound" => "The specified folder could not be found in the store.",
        "ErrorFolderExists" => "A folder with the specified name already exists.",
        "ErrorInvalidIdMalformed" => "Id is malformed.",
        "ErrorInvalidSyncStateData" => {
            "Synchronization state data is corrupt or otherwise invalid."
        }
        "ErrorIrresolvableConflict" => {
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item."
        }
        "ErrorImpersonateUserDenied" => {
            "The account does not have permission to impersonate the requested user."
        }
        "ErrorNonExistentMailbox" => "The SMTP address has no mailbox associated with it.",
        "ErrorServerBusy" => "The server cannot service this request right now. Try again later.",
        "ErrorAccessDenied" => "Access is denied. Check credentials and try again.",
        "ErrorInvalidServerVersion" => "The specified server version is invalid.",
        "ErrorSchemaValidation" => "The request failed schema validation.",
        "ErrorInvalidPropertySet" => "Set action is invalid for property.",
        "ErrorInvalidPropertyDelete" => "Object cannot be deleted.",
        "ErrorMissingEmailAddress" => {
            "When making a request as an account that does not have a mailbox, you must specify the mailbox primary SMTP address for any distinguished folder Ids."
        }
        "ErrorInvalidRestriction" => "Restriction contains an invalid search expression.",
        "ErrorInvalidOperation" => "The operation is not valid.",
        "ErrorInvalidRequest" => "The request is invalid.",
        "ErrorMimeContentConversionFailed" => "Unable to convert MIME content.",
        "ErrorInvalidRecipients" => "At least one recipient is not valid.",
        "ErrorIncorrectUpdatePropertyCount" => {
            "An object within a change description must contain one and only one property to modify."
        }
        "ErrorSyncFolderNotFound" => "The specified synchronization folder could not be found.",
        "ErrorToFolderNotFound" => "The destination folder could not be found.",
        "ErrorMessageDispositionRequired" => "MessageDisposition attribute is required.",
        _ => "An internal server error occurred. The operation failed.",
    }
}

/// What an EWS request's SOAP header and body say.
pub(crate) struct Envelope<'a, 'i> {
    /// The operation element, the first child of `soap:Body`.
    pub operation: Node<'a, 'i>,
    /// The mailbox named by `t:ExchangeImpersonation`.
    pub impersonate: Option<String>,
}

/// An answer to one HTTP request, with the code the request log records.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: String,
    pub code: String,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        );
        response
    }
}

/// Reads the envelope; a request that is not one is ErrorSchemaValidation, an
/// unknown server version ErrorInvalidServerVersion (both faults).
pub(crate) fn read_envelope<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
) -> Result<Envelope<'a, 'i>, Answer> {
    let root = doc.root_element();
    if !super::xml::is(root, SOAP, "Envelope") {
        return Err(fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the root element is not a SOAP 1.1 Envelope.",
            &[],
        ));
    }
    let body = child(root, SOAP, "Body").ok_or_else(|| {
        fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: soap:Body is missing.",
            &[],
        )
    })?;
    let operation = elements(body).next().ok_or_else(|| {
        fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: soap:Body is empty.",
            &[],
        )
    })?;
    let mut impersonate = None;
    if let Some(head) = child(root, SOAP, "Header") {
        if let Some(version) = child(head, T, "RequestServerVersion") {
            let v = version.attribute("Version").unwrap_or("");
            if !VERSIONS.contains(&v) {
                return Err(fault(
                    "ErrorInvalidServerVersion",
                    message_text("ErrorInvalidServerVersion"),
                    &[],
                ));
            }
        }
        if let Some(imp) = child(head, T, "ExchangeImpersonation") {
            let sid = child(imp, T, "ConnectingSID");
            let address = sid.and_then(|s| {
                child_text(s, T, "PrimarySmtpAddress")
                    .or_else(|| child_text(s, T, "SmtpAddress"))
                    .or_else(|| child_text(s, T, "PrincipalName"))
            });
            match address {
                Some(a) if !a.is_empty() => impersonate = Some(a.to_ascii_lowercase()),
                _ => {
                    return Err(fault(
                        "ErrorSchemaValidation",
                        "The request failed schema validation: ExchangeImpersonation needs ConnectingSID with PrimarySmtpAddress, SmtpAddress or PrincipalName.",
                        &[],
                    ));
                }
            }
        }
    }
    if operation.tag_name().namespace() != Some(M) {
        return Err(fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the operation is not in the messages namespace.",
            &[],
        ));
    }
    Ok(Envelope {
        operation,
        impersonate,
    })
}

/// A response envelope around `inner` (an operation's response element).
pub(crate) fn envelope(inner: &str) -> String {
    let mut x = Xml::new();
    x.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    x.open("s:Envelope", &[("xmlns:s", SOAP)]);
    x.open("s:Header", &[]);
    x.empty(
        "h:ServerVersionInfo",
        &[
            ("MajorVersion", "15"),
            ("MinorVersion", "1"),
            ("MajorBuildNumber", "2507"),
            ("MinorBuildNumber", "6"),
            ("Version", "V2017_07_11"),
            ("xmlns:h", T),
            ("xmlns", T),
            ("xmlns:xsd", XSD),
            ("xmlns:xsi", XSI),
        ],
    );
    x.close();
    x.open("s:Body", &[("xmlns:xsi", XSI), ("xmlns:xsd", XSD)]);
    x.raw(inner);
    x.finish()
}

/// A SOAP fault (HTTP 500): `faultcode` `a:{code}`, and in `detail` the EWS
/// response code, its message and, when given, `t:MessageXml` values.
pub(crate) fn fault(code: &str, message: &str, values: &[(&str, String)]) -> Answer {
    let mut x = Xml::new();
    x.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    x.open("s:Envelope", &[("xmlns:s", SOAP)]);
    x.open("s:Body", &[]);
    x.open("s:Fault", &[]);
    x.leaf("faultcode", &[("xmlns:a", T)], &format!("a:{code}"));
    x.leaf("faultstring", &[("xml:lang", "en-US")], message);
    x.open("detail", &[]);
    x.leaf("e:ResponseCode", &[("xmlns:e", E)], code);
    x.leaf("e:Message", &[("xmlns:e", E)], message);
    if !values.is_empty() {
        x.open("t:MessageXml", &[("xmlns:t", T)]);
        for (name, value) in values {
            x.leaf("t:Value", &[("Name", name)], value);
        }
        x.close();
    }
    Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: x.finish(),
        code: code.to_owned(),
    }
}

/// The response messages of one operation, one per requested object.
pub(crate) struct Responses {
    operation: String,
    body: Xml,
    first_error: Option<String>,
}

impl Responses {
    /// For `operation` (`GetItem`): `m:GetItemResponse/m:ResponseMessages`.
    pub fn new(operation: &str) -> Responses {
        let mut body = Xml::new();
        body.open(
            &format!("m:{operation}Response"),
            &[("xmlns:m", M), ("xmlns:t", T)],
        );
        body.open("m:ResponseMessages", &[]);
        Responses {
            operation: operation.to_owned(),
            body,
            first_error: None,
        }
    }

    fn element(&self) -> String {
        format!("m:{}ResponseMessage", self.operation)
    }

    /// A `Success` message whose content follows `m:ResponseCode`.
    pub fn success(&mut self, content: &str) {
        let name = self.element();
        self.body.open(&name, &[("ResponseClass", "Success")]);
        self.body.text("m:ResponseCode", "NoError");
        self.body.raw(content);
        self.body.close();
    }

    /// An `Error` message with the code's documented text; `content` (such as an
    /// empty `m:Items`) follows `m:DescriptiveLinkKey`.
    pub fn error(&mut self, code: &str, content: &str) {
        let name = self.element();
        self.body.open(&name, &[("ResponseClass", "Error")]);
        self.body.text("m:MessageText", message_text(code));
        self.body.text("m:ResponseCode", code);
        self.body.text("m:DescriptiveLinkKey", "0");
        self.body.raw(content);
        self.body.close();
        self.first_error.get_or_insert_with(|| code.to_owned());
    }

    /// HTTP 200 with the envelope; the logged code is the first error's, or NoError.
    pub fn finish(self) -> Answer {
        Answer {
            status: StatusCode::OK,
            body: envelope(&self.body.finish()),
            code: self.first_error.unwrap_or_else(|| "NoError".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: &str, body: &str) -> String {
        format!(
            "<soap:Envelope xmlns:soap=\"{SOAP}\" xmlns:m=\"{M}\" xmlns:t=\"{T}\">\
             <soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
        )
    }

    #[test]
    fn envelopes_are_read_or_refused_with_the_documented_fault() {
        let imp = "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>Alice@Example.org\
                   </t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>";
        let v2016 = "<t:RequestServerVersion Version=\"Exchange2016\"/>";
        // The operation and impersonated mailbox, or the fault code.
        type Expected<'a> = Result<(&'a str, Option<&'a str>), &'a str>;
        let cases: [(String, Expected<'_>); 5] = [
            (
                request(&format!("{v2016}{imp}"), "<m:GetFolder/>"),
                Ok(("GetFolder", Some("alice@example.org"))),
            ),
            (
                request("", "<m:SyncFolderItems/>"),
                Ok(("SyncFolderItems", None)),
            ),
            (
                request(
                    "<t:RequestServerVersion Version=\"Exchange2099\"/>",
                    "<m:GetFolder/>",
                ),
                Err("ErrorInvalidServerVersion"),
            ),
            (request("", ""), Err("ErrorSchemaValidation")),
            (
                request(
                    "<t:ExchangeImpersonation><t:ConnectingSID/></t:ExchangeImpersonation>",
                    "<m:GetItem/>",
                ),
                Err("ErrorSchemaValidation"),
            ),
        ];
        for (xml, expected) in cases {
            let doc = roxmltree::Document::parse(&xml).expect("xml");
            let got = read_envelope(&doc)
                .map(|e| (e.operation.tag_name().name().to_owned(), e.impersonate))
                .map_err(|a| {
                    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
                    a.code
                });
            let expected = expected
                .map(|(op, imp)| (op.to_owned(), imp.map(str::to_owned)))
                .map_err(str::to_owned);
            assert_eq!(got, expected, "{xml}");
        }
    }

    #[test]
    fn a_fault_carries_its_code_and_message_xml() {
        let a = fault(
            "ErrorServerBusy",
            message_text("ErrorServerBusy"),
            &[("BackOffMilliseconds", "250".into())],
        );
        let doc = roxmltree::Document::parse(&a.body).expect("well-formed");
        let f = doc
            .descendants()
            .find(|n| n.has_tag_name((SOAP, "Fault")))
            .expect("fault");
        let code = f
            .children()
            .find(|n| n.has_tag_name("faultcode"))
            .expect("faultcode");
        assert_eq!(code.text(), Some("a:ErrorServerBusy"));
        let v = doc
            .descendants()
            .find(|n| n.has_tag_name((T, "Value")))
            .expect("value");
        assert_eq!(v.attribute("Name"), Some("BackOffMilliseconds"));
        assert_eq!(v.text(), Some("250"));
        let rc = doc
            .descendants()
            .find(|n| n.has_tag_name((E, "ResponseCode")))
            .expect("code");
        assert_eq!(rc.text(), Some("ErrorServerBusy"));
    }
}

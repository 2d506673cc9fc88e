//! The SOAP 1.1 envelope of every EWS request (the schema version asked for, and
//! the impersonated mailbox), and the two shapes of an answer: a SOAP fault (the
//! whole request refused, e.g. `ErrorServerBusy` or `ErrorSchemaValidation`), or
//! one `*ResponseMessage` per requested thing, each with its `ResponseClass`
//! (`Success`, `Warning`, `Error`) and `ResponseCode` (`NoError`, `ErrorItemNotFound`,
//! ...). Either may carry `MessageXml` with `BackOffMilliseconds`.

use std::time::Duration;

use roxmltree::Node;

use super::xml::{
    MESSAGES_NS, SOAP_NS, TYPES_NS, XmlWriter, child, elements, own_text, path, text,
};

/// The schema version every request asks for (`t:RequestServerVersion`):
/// Exchange Server 2016, 2019 and Subscription Edition all answer it.
pub const REQUEST_SERVER_VERSION: &str = "Exchange2016";

/// The envelope around one operation's body (`<m:Operation>...</m:Operation>`),
/// impersonating `impersonate` when given.
pub(crate) fn envelope(body: &str, impersonate: Option<&str>) -> String {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.open(
        "soap:Envelope",
        &[
            ("xmlns:soap", SOAP_NS),
            ("xmlns:t", TYPES_NS),
            ("xmlns:m", MESSAGES_NS),
        ],
    );
    w.open("soap:Header", &[]);
    w.empty(
        "t:RequestServerVersion",
        &[("Version", REQUEST_SERVER_VERSION)],
    );
    if let Some(address) = impersonate {
        w.open("t:ExchangeImpersonation", &[])
            .open("t:ConnectingSID", &[])
            .leaf("t:PrimarySmtpAddress", address)
            .close("t:ConnectingSID")
            .close("t:ExchangeImpersonation");
    }
    w.close("soap:Header");
    w.open("soap:Body", &[]).raw(body).close("soap:Body");
    w.close("soap:Envelope");
    w.finish()
}

/// What Exchange said instead of a success, for one thing or the whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageError {
    /// `ErrorItemNotFound`, `ErrorServerBusy`, ... (for a fault without one, the
    /// fault code's local name, e.g. `Client`).
    pub code: String,
    /// `MessageText` or `faultstring`.
    pub text: String,
    /// `MessageXml/Value[@Name="BackOffMilliseconds"]`.
    pub back_off: Option<Duration>,
}

/// A whole answer.
#[derive(Debug)]
pub(crate) enum Answer<T> {
    /// A SOAP fault: nothing of the request was done.
    Fault(MessageError),
    /// One outcome per response message, in request order.
    Messages(Vec<Result<T, MessageError>>),
}

/// Reads an answer; `read_message` turns each successful response message into a
/// value.
///
/// # Errors
/// In words, when the text is not a SOAP envelope EWS would write, or a message
/// cannot be read.
pub(crate) fn read_answer<T>(
    body: &str,
    mut read_message: impl FnMut(Node<'_, '_>) -> Result<T, String>,
) -> Result<Answer<T>, String> {
    let doc = roxmltree::Document::parse(body).map_err(|e| format!("not XML: {e}"))?;
    let envelope = doc.root_element();
    if envelope.tag_name().name() != "Envelope" {
        return Err(format!(
            "not a SOAP envelope (the document is <{}>)",
            envelope.tag_name().name()
        ));
    }
    let soap_body = child(envelope, "Body").ok_or("the SOAP envelope has no Body")?;
    if let Some(fault) = child(soap_body, "Fault") {
        return Ok(Answer::Fault(read_fault(fault)));
    }
    let response = elements(soap_body).next().ok_or("the SOAP body is empty")?;
    let messages = child(response, "ResponseMessages")
        .ok_or_else(|| format!("<{}> has no ResponseMessages", response.tag_name().name()))?;
    let mut out = Vec::new();
    for message in elements(messages) {
        let class = message.attribute("ResponseClass").unwrap_or("Success");
        let code = text(message, "ResponseCode").unwrap_or_else(|| "NoError".to_owned());
        let failed = class == "Error" || (class == "Warning" && code != "NoError");
        if failed {
            out.push(Err(MessageError {
                text: text(message, "MessageText").unwrap_or_default(),
                back_off: back_off(message),
                code,
            }));
        } else {
            out.push(Ok(read_message(message)?));
        }
    }
    Ok(Answer::Messages(out))
}

fn read_fault(fault: Node<'_, '_>) -> MessageError {
    let detail = child(fault, "detail");
    let code = detail
        .and_then(|d| text(d, "ResponseCode"))
        .or_else(|| text(fault, "faultcode").map(|c| c.rsplit(':').next().unwrap_or(&c).to_owned()))
        .unwrap_or_else(|| "Fault".to_owned());
    let said = detail
        .and_then(|d| text(d, "Message"))
        .or_else(|| text(fault, "faultstring"))
        .unwrap_or_default();
    MessageError {
        code,
        text: said,
        back_off: detail.and_then(back_off),
    }
}

/// `BackOffMilliseconds` from the `MessageXml` below `node`.
fn back_off(node: Node<'_, '_>) -> Option<Duration> {
    let xml = child(node, "MessageXml")?;
    elements(xml)
        .find(|v| v.attribute("Name") == Some("BackOffMilliseconds"))
        .and_then(own_text)
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// `Items`'s first item element below a response message (`Message`, `CalendarItem`, ...).
pub(crate) fn first_item<'a, 'i>(message: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    path(message, &["Items"]).and_then(|items| elements(items).next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages<T: std::fmt::Debug>(a: Answer<T>) -> Vec<Result<T, MessageError>> {
        match a {
            Answer::Messages(m) => m,
            Answer::Fault(f) => panic!("unexpected fault {f:?}"),
        }
    }

    #[test]
    fn the_envelope_asks_for_exchange_2016_and_names_the_impersonated_mailbox() {
        let xml = envelope("<m:GetFolder/>", Some("a&b@contoso.com"));
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let header = child(doc.root_element(), "Header").expect("header");
        assert_eq!(
            child(header, "RequestServerVersion").and_then(|v| v.attribute("Version")),
            Some("Exchange2016")
        );
        let sid = path(header, &["ExchangeImpersonation", "ConnectingSID"]).expect("sid");
        assert_eq!(
            text(sid, "PrimarySmtpAddress").as_deref(),
            Some("a&b@contoso.com")
        );
        assert_eq!(
            sid.tag_name().namespace(),
            Some(TYPES_NS),
            "the impersonation header is in the types namespace"
        );
        let body = child(doc.root_element(), "Body").expect("body");
        assert_eq!(
            child(body, "GetFolder").and_then(|n| n.tag_name().namespace()),
            Some(MESSAGES_NS)
        );
        let plain = envelope("<m:GetFolder/>", None);
        assert!(!plain.contains("ExchangeImpersonation"));
    }

    #[test]
    fn a_server_busy_fault_gives_its_back_off() {
        // The shape of EWS throttling faults ("EWS throttling in Exchange").
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Body>
    <s:Fault>
      <faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
      <faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>
      <detail>
        <e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
        <e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message>
        <t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
          <t:Value Name="BackOffMilliseconds">29774</t:Value>
        </t:MessageXml>
      </detail>
    </s:Fault>
  </s:Body>
</s:Envelope>"#;
        match read_answer(body, |_| Ok(())).expect("reads") {
            Answer::Fault(f) => {
                assert_eq!(f.code, "ErrorServerBusy");
                assert_eq!(f.back_off, Some(Duration::from_millis(29774)));
                assert!(f.text.starts_with("The server cannot service"));
            }
            Answer::Messages(_) => panic!("expected a fault"),
        }
    }

    #[test]
    fn a_fault_without_detail_is_named_by_its_fault_code() {
        let body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorSchemaValidation</faultcode>
<faultstring>The request failed schema validation.</faultstring></s:Fault></s:Body></s:Envelope>"#;
        match read_answer(body, |_| Ok(())).expect("reads") {
            Answer::Fault(f) => {
                assert_eq!(f.code, "ErrorSchemaValidation");
                assert_eq!(f.back_off, None);
            }
            Answer::Messages(_) => panic!("expected a fault"),
        }
    }

    #[test]
    fn response_messages_are_read_one_by_one_in_order() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Header>
    <h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/>
  </s:Header>
  <s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
    <m:GetItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
      <m:ResponseMessages>
        <m:GetItemResponseMessage ResponseClass="Success">
          <m:ResponseCode>NoError</m:ResponseCode>
          <m:Items><t:Message><t:ItemId Id="AAMkA1" ChangeKey="CQAAAB"/></t:Message></m:Items>
        </m:GetItemResponseMessage>
        <m:GetItemResponseMessage ResponseClass="Error">
          <m:MessageText>The specified object was not found in the store.</m:MessageText>
          <m:ResponseCode>ErrorItemNotFound</m:ResponseCode>
          <m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>
          <m:Items/>
        </m:GetItemResponseMessage>
        <m:GetItemResponseMessage ResponseClass="Error">
          <m:MessageText>The server cannot service this request right now. Try again later.</m:MessageText>
          <m:ResponseCode>ErrorServerBusy</m:ResponseCode>
          <m:MessageXml><t:Value Name="BackOffMilliseconds">500</t:Value></m:MessageXml>
        </m:GetItemResponseMessage>
      </m:ResponseMessages>
    </m:GetItemResponse>
  </s:Body>
</s:Envelope>"#;
        let got = messages(
            read_answer(body, |m| {
                first_item(m)
                    .and_then(|i| child(i, "ItemId"))
                    .and_then(|i| i.attribute("Id"))
                    .map(str::to_owned)
                    .ok_or_else(|| "no id".to_owned())
            })
            .expect("reads"),
        );
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_deref(), Ok("AAMkA1"));
        let missing = got[1].as_ref().expect_err("an error");
        assert_eq!(missing.code, "ErrorItemNotFound");
        assert_eq!(
            missing.text,
            "The specified object was not found in the store."
        );
        let busy = got[2].as_ref().expect_err("an error");
        assert_eq!(busy.back_off, Some(Duration::from_millis(500)));
    }

    #[test]
    fn what_is_not_an_ews_answer_is_said_in_words() {
        let cases = [
            (
                "<html><body>Bad gateway</body></html>",
                "not a SOAP envelope",
            ),
            ("not xml", "not XML"),
            (
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>"#,
                "the SOAP body is empty",
            ),
        ];
        for (body, words) in cases {
            let e = read_answer(body, |_| Ok(())).expect_err(body);
            assert!(e.contains(words), "{body}: {e}");
        }
    }
}

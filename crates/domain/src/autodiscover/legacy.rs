//! Exchange Server's own Autodiscover, for on-premises servers that predate or
//! do not publish Autodiscover v2: the POX service (`POST
//! https://<host>/autodiscover/autodiscover.xml`, the Outlook request and
//! response schemas of 2006) and the SOAP service (`POST
//! https://<host>/autodiscover/autodiscover.svc`, `GetUserSettings`). Where to
//! ask (`autodiscover.<domain>`, the domain, then the target of the domain's
//! `_autodiscover._tcp` SRV record), the request documents, how to read the
//! answers (an EWS URL, or a redirect to another address or URL) and which
//! redirects may carry the service account's credentials. The connectors do the
//! requests, authenticated.

/// The POX request schema.
pub const POX_REQUEST_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
/// The POX response schema asked for (the one that carries `EwsUrl`).
pub const POX_RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
/// The SOAP Autodiscover namespace.
pub const SOAP_AUTODISCOVER_NS: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
/// The `wsa:Action` (and `SOAPAction`) of `GetUserSettings`.
pub const GET_USER_SETTINGS_ACTION: &str =
    "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings";

/// Redirects (HTTP, `redirectUrl`, `redirectAddr`) followed in one discovery;
/// Microsoft's guidance is to stop after 10, and real deployments use one or two.
pub const MAX_LEGACY_REDIRECTS: usize = 5;

/// One place to ask: the POX and SOAP URLs of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub host: String,
    pub pox_url: String,
    pub soap_url: String,
}

/// The candidate at `host` (and `port`, when not 443).
pub fn candidate(host: &str, port: Option<u16>) -> Candidate {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let authority = match port.filter(|p| *p != 443) {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    Candidate {
        pox_url: format!("https://{authority}/autodiscover/autodiscover.xml"),
        soap_url: format!("https://{authority}/autodiscover/autodiscover.svc"),
        host,
    }
}

/// The candidates built from the address's domain, in order:
/// `autodiscover.<domain>`, then the domain. `https_port` replaces 443
/// (loopback test fixtures only).
pub fn candidates(domain: &str, https_port: Option<u16>) -> Vec<Candidate> {
    [format!("autodiscover.{domain}"), domain.to_owned()]
        .iter()
        .map(|h| candidate(h, https_port))
        .collect()
}

/// The SRV record that names the domain's Autodiscover host (RFC 2782 form).
pub fn srv_name(domain: &str) -> String {
    format!("_autodiscover._tcp.{domain}.")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The POX request for `email`.
pub fn pox_request(email: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
<Autodiscover xmlns=\"{POX_REQUEST_SCHEMA}\"><Request>\
<EMailAddress>{}</EMailAddress>\
<AcceptableResponseSchema>{POX_RESPONSE_SCHEMA}</AcceptableResponseSchema>\
</Request></Autodiscover>",
        escape(email.trim())
    )
}

/// The SOAP `GetUserSettings` request for `email`, sent to `url`: the external
/// and internal EWS URLs.
pub fn soap_request(email: &str, url: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
<soap:Envelope xmlns:a=\"{SOAP_AUTODISCOVER_NS}\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\" \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
<soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>\
<wsa:Action>{GET_USER_SETTINGS_ACTION}</wsa:Action><wsa:To>{}</wsa:To></soap:Header>\
<soap:Body><a:GetUserSettingsRequestMessage><a:Request>\
<a:Users><a:User><a:Mailbox>{}</a:Mailbox></a:User></a:Users>\
<a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting><a:Setting>InternalEwsUrl</a:Setting></a:RequestedSettings>\
</a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>",
        escape(url),
        escape(email.trim())
    )
}

/// The EWS URLs an answer gave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EwsUrls {
    /// Published for clients outside the organization's network (`EXPR`,
    /// `ExternalEwsUrl`).
    pub external: Option<String>,
    /// For clients inside it (`EXCH`, `InternalEwsUrl`).
    pub internal: Option<String>,
}

impl EwsUrls {
    /// The URLs in the order to use them: external first (reachable from a
    /// data center as well as from the LAN), then internal.
    pub fn in_order(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for url in [&self.external, &self.internal].into_iter().flatten() {
            if !out.contains(&url.as_str()) {
                out.push(url);
            }
        }
        out
    }
}

/// What a POX or SOAP answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyAnswer {
    /// The mailbox's EWS URLs (at least one).
    Ews(EwsUrls),
    /// Ask again for this address (`redirectAddr`, `RedirectAddress`).
    RedirectAddr(String),
    /// Ask again at this Autodiscover URL (`redirectUrl`, `RedirectUrl`).
    RedirectUrl(String),
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(n, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Reads a POX answer.
///
/// # Errors
/// In words: not XML, Exchange's own error (its code and message), or no EWS URL.
pub fn parse_pox(xml: &str) -> Result<LegacyAnswer, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Autodiscover" {
        return Err(format!(
            "not an Autodiscover answer (the document is <{}>)",
            root.tag_name().name()
        ));
    }
    let response = child(root, "Response").ok_or("the answer has no Response")?;
    let error = child(response, "Error")
        .or_else(|| child(response, "Account").and_then(|a| child(a, "Error")));
    if let Some(error) = error {
        return Err(format!(
            "Exchange answered error {}: {}",
            text(error, "ErrorCode").unwrap_or_else(|| "(no code)".to_owned()),
            text(error, "Message").unwrap_or_else(|| "(no message)".to_owned())
        ));
    }
    let account = child(response, "Account").ok_or("the answer has no Account")?;
    match text(account, "Action").as_deref() {
        Some("redirectAddr") => {
            return text(account, "RedirectAddr")
                .map(LegacyAnswer::RedirectAddr)
                .ok_or_else(|| "a redirectAddr answer names no address".to_owned());
        }
        Some("redirectUrl") => {
            return text(account, "RedirectUrl")
                .map(LegacyAnswer::RedirectUrl)
                .ok_or_else(|| "a redirectUrl answer names no URL".to_owned());
        }
        _ => {}
    }
    let mut urls = EwsUrls::default();
    for protocol in account
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "Protocol")
    {
        let slot = match text(protocol, "Type").as_deref() {
            Some("EXPR") => &mut urls.external,
            Some("EXCH") => &mut urls.internal,
            _ => continue,
        };
        if slot.is_none() {
            *slot = text(protocol, "EwsUrl");
        }
    }
    if urls.external.is_none() && urls.internal.is_none() {
        return Err("the answer names no EwsUrl (in an EXCH or EXPR protocol)".to_owned());
    }
    Ok(LegacyAnswer::Ews(urls))
}

/// Reads a SOAP `GetUserSettings` answer.
///
/// # Errors
/// In words: not XML, a fault, Exchange's error code and message, or no EWS URL.
pub fn parse_soap(xml: &str) -> Result<LegacyAnswer, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let body = child(doc.root_element(), "Body").ok_or("not a SOAP envelope")?;
    if let Some(fault) = child(body, "Fault") {
        return Err(format!(
            "Exchange answered a SOAP fault: {}",
            text(fault, "faultstring").unwrap_or_else(|| "(no message)".to_owned())
        ));
    }
    let response = child(body, "GetUserSettingsResponseMessage")
        .and_then(|m| child(m, "Response"))
        .ok_or("the answer has no GetUserSettingsResponseMessage")?;
    let failed = |node: roxmltree::Node<'_, '_>| {
        format!(
            "Exchange answered {}: {}",
            text(node, "ErrorCode").unwrap_or_default(),
            text(node, "ErrorMessage").unwrap_or_else(|| "(no message)".to_owned())
        )
    };
    if text(response, "ErrorCode").is_some_and(|c| c != "NoError") {
        return Err(failed(response));
    }
    let user = child(response, "UserResponses")
        .and_then(|u| child(u, "UserResponse"))
        .ok_or("the answer has no UserResponse")?;
    match text(user, "ErrorCode").as_deref() {
        None | Some("NoError") => {}
        Some("RedirectAddress") => {
            return text(user, "RedirectTarget")
                .map(LegacyAnswer::RedirectAddr)
                .ok_or_else(|| "a RedirectAddress answer names no address".to_owned());
        }
        Some("RedirectUrl") => {
            return text(user, "RedirectTarget")
                .map(LegacyAnswer::RedirectUrl)
                .ok_or_else(|| "a RedirectUrl answer names no URL".to_owned());
        }
        Some(_) => return Err(failed(user)),
    }
    let mut urls = EwsUrls::default();
    if let Some(settings) = child(user, "UserSettings") {
        for setting in settings.children().filter(|c| c.is_element()) {
            let value = text(setting, "Value");
            match text(setting, "Name").as_deref() {
                Some("ExternalEwsUrl") => urls.external = value,
                Some("InternalEwsUrl") => urls.internal = value,
                _ => {}
            }
        }
    }
    if urls.external.is_none() && urls.internal.is_none() {
        return Err("the answer names no ExternalEwsUrl or InternalEwsUrl".to_owned());
    }
    Ok(LegacyAnswer::Ews(urls))
}

/// Whether the service account's credentials may follow a redirect to `url`
/// while discovering an address of `domain`: HTTPS only, and only to the
/// domain itself or a host below it (Outlook asks its user before sending a
/// password elsewhere; an unattended service refuses).
///
/// # Errors
/// Why not, in words.
pub fn redirect_allowed(domain: &str, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if parsed.scheme() != "https" {
        return Err(format!(
            "{url} is not HTTPS; credentials are not sent there"
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url} names no host"))?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if host == domain || host.ends_with(&format!(".{domain}")) {
        Ok(())
    } else {
        Err(format!(
            "{url} is outside {domain}; the service account's credentials are not sent there"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_the_autodiscover_host_then_the_domain() {
        let c = candidates("contoso.com", None);
        assert_eq!(
            c.iter().map(|c| c.pox_url.as_str()).collect::<Vec<_>>(),
            [
                "https://autodiscover.contoso.com/autodiscover/autodiscover.xml",
                "https://contoso.com/autodiscover/autodiscover.xml"
            ]
        );
        assert_eq!(
            c[0].soap_url,
            "https://autodiscover.contoso.com/autodiscover/autodiscover.svc"
        );
        let test = candidates("contoso.test", Some(8443));
        assert_eq!(
            test[1].pox_url,
            "https://contoso.test:8443/autodiscover/autodiscover.xml"
        );
        assert_eq!(
            candidate("Mail.Contoso.com.", Some(443)).pox_url,
            "https://mail.contoso.com/autodiscover/autodiscover.xml"
        );
        assert_eq!(srv_name("contoso.com"), "_autodiscover._tcp.contoso.com.");
    }

    #[test]
    fn requests_name_the_address_and_the_schemas() {
        let pox = pox_request("a&b@contoso.com");
        let doc = roxmltree::Document::parse(&pox).expect("well-formed");
        assert_eq!(
            doc.root_element().tag_name().namespace(),
            Some(POX_REQUEST_SCHEMA)
        );
        let request = child(doc.root_element(), "Request").expect("request");
        assert_eq!(
            text(request, "EMailAddress").as_deref(),
            Some("a&b@contoso.com")
        );
        assert_eq!(
            text(request, "AcceptableResponseSchema").as_deref(),
            Some(POX_RESPONSE_SCHEMA)
        );
        let soap = soap_request(
            "bob@contoso.com",
            "https://autodiscover.contoso.com/autodiscover/autodiscover.svc",
        );
        let doc = roxmltree::Document::parse(&soap).expect("well-formed");
        let header = child(doc.root_element(), "Header").expect("header");
        assert_eq!(
            text(header, "Action").as_deref(),
            Some(GET_USER_SETTINGS_ACTION)
        );
        assert!(soap.contains("<a:Mailbox>bob@contoso.com</a:Mailbox>"));
        assert!(soap.contains(
            "<a:Setting>ExternalEwsUrl</a:Setting><a:Setting>InternalEwsUrl</a:Setting>"
        ));
    }

    /// The shape of "POX Autodiscover response for Exchange".
    const POX_SETTINGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <User><DisplayName>First Last</DisplayName><DeploymentId>644560b8-a1ce-429c-8ace-23395843f701</DeploymentId></User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>EXCH</Type>
        <Server>MBX-SERVER.mail.internal.contoso.com</Server>
        <ASUrl>https://mail.internal.contoso.com/ews/exchange.asmx</ASUrl>
        <EwsUrl>https://mail.internal.contoso.com/ews/exchange.asmx</EwsUrl>
      </Protocol>
      <Protocol>
        <Type>EXPR</Type>
        <Server>mail.contoso.com</Server>
        <EwsUrl>https://mail.contoso.com/ews/exchange.asmx</EwsUrl>
      </Protocol>
      <Protocol><Type>WEB</Type></Protocol>
    </Account>
  </Response>
</Autodiscover>"#;

    #[test]
    fn pox_answers_are_read() {
        let ews = |external: Option<&str>, internal: Option<&str>| {
            Ok(LegacyAnswer::Ews(EwsUrls {
                external: external.map(str::to_owned),
                internal: internal.map(str::to_owned),
            }))
        };
        let redirect_addr = r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><Action>redirectAddr</Action><RedirectAddr>bob@mail.contoso.com</RedirectAddr></Account></Response></Autodiscover>"#;
        let redirect_url = r#"<Autodiscover><Response><Account><Action>redirectUrl</Action><RedirectUrl>https://mail.contoso.com/autodiscover/autodiscover.xml</RedirectUrl></Account></Response></Autodiscover>"#;
        let error = r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response><Error Time="16:56:32.6164027" Id="1054084152"><ErrorCode>500</ErrorCode><Message>The e-mail address cannot be found.</Message><DebugData /></Error></Response></Autodiscover>"#;
        let cases: [(&str, Result<LegacyAnswer, String>); 4] = [
            (
                POX_SETTINGS,
                ews(
                    Some("https://mail.contoso.com/ews/exchange.asmx"),
                    Some("https://mail.internal.contoso.com/ews/exchange.asmx"),
                ),
            ),
            (
                redirect_addr,
                Ok(LegacyAnswer::RedirectAddr(
                    "bob@mail.contoso.com".to_owned(),
                )),
            ),
            (
                redirect_url,
                Ok(LegacyAnswer::RedirectUrl(
                    "https://mail.contoso.com/autodiscover/autodiscover.xml".to_owned(),
                )),
            ),
            (
                error,
                Err("Exchange answered error 500: The e-mail address cannot be found.".to_owned()),
            ),
        ];
        for (xml, expected) in cases {
            assert_eq!(parse_pox(xml), expected, "{xml}");
        }
        for bad in [
            "<html/>",
            "not xml",
            "<Autodiscover><Response><Account><Action>settings</Action></Account></Response></Autodiscover>",
        ] {
            assert!(parse_pox(bad).is_err(), "{bad}");
        }
    }

    /// The shape of the GetUserSettings response example.
    #[test]
    fn soap_answers_are_read() {
        let settings = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://www.w3.org/2005/08/addressing">
  <s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse</a:Action></s:Header>
  <s:Body>
    <GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover">
      <Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
        <ErrorCode>NoError</ErrorCode>
        <ErrorMessage />
        <UserResponses>
          <UserResponse>
            <ErrorCode>NoError</ErrorCode>
            <ErrorMessage>No error.</ErrorMessage>
            <RedirectTarget i:nil="true" />
            <UserSettingErrors />
            <UserSettings>
              <UserSetting i:type="StringSetting"><Name>InternalEwsUrl</Name><Value>https://mbx.contoso.local/EWS/Exchange.asmx</Value></UserSetting>
              <UserSetting i:type="StringSetting"><Name>ExternalEwsUrl</Name><Value>https://mail.contoso.com/EWS/Exchange.asmx</Value></UserSetting>
            </UserSettings>
          </UserResponse>
        </UserResponses>
      </Response>
    </GetUserSettingsResponseMessage>
  </s:Body>
</s:Envelope>"#;
        let Ok(LegacyAnswer::Ews(urls)) = parse_soap(settings) else {
            panic!("{:?}", parse_soap(settings))
        };
        assert_eq!(
            urls.in_order(),
            [
                "https://mail.contoso.com/EWS/Exchange.asmx",
                "https://mbx.contoso.local/EWS/Exchange.asmx"
            ]
        );
        let user = |code: &str, target: &str| {
            format!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response><ErrorCode>NoError</ErrorCode><UserResponses><UserResponse><ErrorCode>{code}</ErrorCode><ErrorMessage>m</ErrorMessage><RedirectTarget>{target}</RedirectTarget></UserResponse></UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"#
            )
        };
        assert_eq!(
            parse_soap(&user("RedirectAddress", "bob@contoso.com")),
            Ok(LegacyAnswer::RedirectAddr("bob@contoso.com".to_owned()))
        );
        assert_eq!(
            parse_soap(&user(
                "RedirectUrl",
                "https://x.contoso.com/autodiscover/autodiscover.svc"
            )),
            Ok(LegacyAnswer::RedirectUrl(
                "https://x.contoso.com/autodiscover/autodiscover.svc".to_owned()
            ))
        );
        assert_eq!(
            parse_soap(&user("InvalidUser", "")),
            Err("Exchange answered InvalidUser: m".to_owned())
        );
    }

    #[test]
    fn credentials_follow_https_redirects_within_the_domain_only() {
        let cases = [
            (
                "https://mail.contoso.com/autodiscover/autodiscover.xml",
                true,
            ),
            ("https://contoso.com/autodiscover/autodiscover.xml", true),
            (
                "https://MAIL.Contoso.COM./autodiscover/autodiscover.xml",
                true,
            ),
            (
                "http://mail.contoso.com/autodiscover/autodiscover.xml",
                false,
            ),
            (
                "https://evilcontoso.com/autodiscover/autodiscover.xml",
                false,
            ),
            (
                "https://autodiscover.fabrikam.com/autodiscover/autodiscover.xml",
                false,
            ),
            ("not a url", false),
        ];
        for (url, allowed) in cases {
            assert_eq!(
                redirect_allowed("contoso.com", url).is_ok(),
                allowed,
                "{url}"
            );
        }
    }
}

//! Autodiscover, both flavours, answering this server's EWS URL for the addresses
//! of its mailboxes (authenticated as EWS is: 401 without credentials).
//!
//! POX, `POST /autodiscover/autodiscover.xml` ([MS-OXDSCLI]):
//!
//! ```xml
//! <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
//!   <Request><EMailAddress>bob@example.org</EMailAddress>
//!     <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
//!   </Request></Autodiscover>
//! → <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
//!     <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
//!       <User><DisplayName>…</DisplayName><AutoDiscoverSMTPAddress>…</AutoDiscoverSMTPAddress></User>
//!       <Account><AccountType>email</AccountType><Action>settings</Action>
//!         <Protocol><Type>EXCH</Type><Server>…</Server><ASUrl>…</ASUrl><EwsUrl>…</EwsUrl></Protocol>
//!         <Protocol><Type>EXPR</Type><Server>…</Server><ASUrl>…</ASUrl><EwsUrl>…</EwsUrl></Protocol>
//!       </Account></Response></Autodiscover>
//!   (unknown address: <Response><Error Time="…" Id="…"><ErrorCode>500</ErrorCode>
//!    <Message>The e-mail address cannot be found.</Message><DebugData/></Error></Response>;
//!    600 Invalid Request for a request without an address, 601 for another response schema;
//!    all with HTTP 200)
//! ```
//!
//! SOAP, `POST /autodiscover/autodiscover.svc`, `GetUserSettingsRequestMessage`
//! (namespace `http://schemas.microsoft.com/exchange/2010/Autodiscover`): per
//! `Users/User/Mailbox` a `UserResponse` with `ErrorCode` `NoError` and a
//! `UserSetting i:type="StringSetting"` per requested setting (`ExternalEwsUrl`,
//! `InternalEwsUrl`, `UserDisplayName`, `AutoDiscoverSMTPAddress`, `CasVersion`,
//! `EwsSupportedSchemas`; others in `UserSettingErrors` as `InvalidSetting`), or
//! `InvalidUser` ("Invalid user: 'address'") for an unknown address.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::authenticate;
use super::xml::{SOAP, XSI, Xml, child, child_text, elements};
use super::{RequestRecord, Shared};

const POX_REQUEST: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
const POX_RESPONSE: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
const OUTLOOK_2006A: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
const AUTODISCOVER: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
const WSA: &str = "http://www.w3.org/2005/08/addressing";

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

fn record(operation: &str, at: Instant) -> RequestRecord {
    RequestRecord {
        operation: operation.to_owned(),
        account: None,
        mailbox: None,
        impersonated: false,
        at,
        status: 0,
        code: String::new(),
        during_back_off: false,
    }
}

pub(crate) async fn pox(shared: Arc<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut rec = record("Autodiscover", Instant::now());
    let mut st = shared.lock();
    match authenticate(&st.accounts, st.bearer.as_ref(), &headers) {
        Ok((account, _)) => rec.account = Some(account.user),
        Err(r) => {
            rec.status = r.status().as_u16();
            rec.code = "Unauthorized".into();
            st.log.push(rec);
            return r;
        }
    }
    let text = std::str::from_utf8(&body).unwrap_or("");
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let doc = roxmltree::Document::parse(text).ok();
    let request = doc
        .as_ref()
        .and_then(|d| child(d.root_element(), POX_REQUEST, "Request"));
    let address = request.and_then(|r| child_text(r, POX_REQUEST, "EMailAddress"));
    let schema = request.and_then(|r| child_text(r, POX_REQUEST, "AcceptableResponseSchema"));
    rec.mailbox = address.as_deref().map(str::to_ascii_lowercase);
    let body = match (address, schema) {
        (Some(a), Some(s)) if s == OUTLOOK_2006A => match st.mailbox(&a) {
            Some(mb) => {
                rec.code = "NoError".into();
                let ews = st.ews_url.clone().unwrap_or_else(|| shared.ews_url());
                pox_settings(&mb.display_name, &mb.address, &ews, &shared.origin)
            }
            None => {
                rec.code = "500".into();
                pox_error("500", "The e-mail address cannot be found.")
            }
        },
        (Some(_), Some(_)) => {
            rec.code = "601".into();
            pox_error("601", "Provider is not available.")
        }
        _ => {
            rec.code = "600".into();
            pox_error("600", "Invalid Request")
        }
    };
    rec.status = 200;
    st.log.push(rec);
    xml_response(StatusCode::OK, body)
}

fn pox_settings(display_name: &str, address: &str, ews: &str, origin: &str) -> String {
    let host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or(origin);
    let mut x = Xml::new();
    x.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    x.open("Autodiscover", &[("xmlns", POX_RESPONSE)]);
    x.open("Response", &[("xmlns", OUTLOOK_2006A)]);
    x.open("User", &[])
        .text("DisplayName", display_name)
        .text("AutoDiscoverSMTPAddress", address)
        .close();
    x.open("Account", &[])
        .text("AccountType", "email")
        .text("Action", "settings")
        .text("MicrosoftOnline", "False");
    for kind in ["EXCH", "EXPR"] {
        x.open("Protocol", &[])
            .text("Type", kind)
            .text("Server", host)
            .text("ASUrl", ews)
            .text("EwsUrl", ews)
            .close();
    }
    x.finish()
}

fn pox_error(code: &str, message: &str) -> String {
    let mut x = Xml::new();
    x.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    x.open("Autodiscover", &[("xmlns", POX_RESPONSE)]);
    x.open("Response", &[]);
    // Exchange writes seven fractional digits; chrono writes six, then a zero.
    let time = format!("{}0", chrono::Utc::now().format("%H:%M:%S%.6f"));
    x.open("Error", &[("Time", &time), ("Id", "2477272013")])
        .text("ErrorCode", code)
        .text("Message", message)
        .empty("DebugData", &[]);
    x.finish()
}

/// The settings GetUserSettings answers, by name.
fn user_setting(name: &str, display_name: &str, address: &str, ews: &str) -> Option<String> {
    Some(match name {
        "ExternalEwsUrl" | "InternalEwsUrl" => ews.to_owned(),
        "UserDisplayName" => display_name.to_owned(),
        "AutoDiscoverSMTPAddress" => address.to_owned(),
        "CasVersion" => "15.01.2507.006".to_owned(),
        "EwsSupportedSchemas" => "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, \
                                  Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016"
            .to_owned(),
        _ => return None,
    })
}

pub(crate) async fn soap(shared: Arc<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut rec = record("GetUserSettings", Instant::now());
    let mut st = shared.lock();
    match authenticate(&st.accounts, st.bearer.as_ref(), &headers) {
        Ok((account, _)) => rec.account = Some(account.user),
        Err(r) => {
            rec.status = r.status().as_u16();
            rec.code = "Unauthorized".into();
            st.log.push(rec);
            return r;
        }
    }
    let text = std::str::from_utf8(&body).unwrap_or("");
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let doc = roxmltree::Document::parse(text).ok();
    let operation = doc.as_ref().and_then(|d| {
        let body = child(d.root_element(), SOAP, "Body")?;
        elements(body).next()
    });
    let Some(op) =
        operation.filter(|o| o.has_tag_name((AUTODISCOVER, "GetUserSettingsRequestMessage")))
    else {
        rec.status = 500;
        rec.code = "ActionNotSupported".into();
        st.log.push(rec);
        let mut x = Xml::new();
        x.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        x.open("s:Envelope", &[("xmlns:s", SOAP)])
            .open("s:Body", &[])
            .open("s:Fault", &[]);
        x.text("faultcode", "s:Client").text(
            "faultstring",
            "The autodiscover test server answers GetUserSettingsRequestMessage only.",
        );
        return xml_response(StatusCode::INTERNAL_SERVER_ERROR, x.finish());
    };
    let request = child(op, AUTODISCOVER, "Request");
    let users: Vec<String> = request
        .and_then(|r| child(r, AUTODISCOVER, "Users"))
        .map(|u| {
            elements(u)
                .filter_map(|user| child_text(user, AUTODISCOVER, "Mailbox"))
                .collect()
        })
        .unwrap_or_default();
    let settings: Vec<String> = request
        .and_then(|r| child(r, AUTODISCOVER, "RequestedSettings"))
        .map(|s| {
            elements(s)
                .map(|n| super::xml::text_of(n).trim().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let ews = st.ews_url.clone().unwrap_or_else(|| shared.ews_url());

    let mut x = Xml::new();
    x.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    x.open("s:Envelope", &[("xmlns:s", SOAP), ("xmlns:a", WSA)]);
    x.open("s:Header", &[]);
    x.leaf(
        "a:Action",
        &[("s:mustUnderstand", "1")],
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse",
    );
    x.open(
        "h:ServerVersionInfo",
        &[("xmlns:h", AUTODISCOVER), ("xmlns:i", XSI)],
    )
    .text("h:MajorVersion", "15")
    .text("h:MinorVersion", "1")
    .text("h:MajorBuildNumber", "2507")
    .text("h:MinorBuildNumber", "6")
    .text("h:Version", "Exchange2015")
    .close()
    .close();
    x.open("s:Body", &[]);
    x.open("GetUserSettingsResponseMessage", &[("xmlns", AUTODISCOVER)]);
    x.open("Response", &[("xmlns:i", XSI)]);
    let mut code = "NoError";
    if users.is_empty() || settings.is_empty() {
        code = "InvalidRequest";
        x.text("ErrorCode", "InvalidRequest")
            .text("ErrorMessage", "The request is invalid.")
            .empty("UserResponses", &[]);
    } else {
        x.text("ErrorCode", "NoError").empty("ErrorMessage", &[]);
        x.open("UserResponses", &[]);
        for user in &users {
            x.open("UserResponse", &[]);
            let Some(mb) = st.mailbox(user) else {
                code = "InvalidUser";
                x.text("ErrorCode", "InvalidUser")
                    .text("ErrorMessage", &format!("Invalid user: '{user}'"))
                    .empty("RedirectTarget", &[("i:nil", "true")])
                    .empty("UserSettingErrors", &[])
                    .empty("UserSettings", &[])
                    .close();
                continue;
            };
            x.text("ErrorCode", "NoError")
                .text("ErrorMessage", "No error.")
                .empty("RedirectTarget", &[("i:nil", "true")]);
            let (mut known, mut unknown) = (Vec::new(), Vec::new());
            for s in &settings {
                match user_setting(s, &mb.display_name, &mb.address, &ews) {
                    Some(v) => known.push((s, v)),
                    None => unknown.push(s),
                }
            }
            if unknown.is_empty() {
                x.empty("UserSettingErrors", &[]);
            } else {
                x.open("UserSettingErrors", &[]);
                for s in unknown {
                    x.open("UserSettingError", &[])
                        .text("ErrorCode", "InvalidSetting")
                        .text("ErrorMessage", "The requested setting is invalid.")
                        .text("SettingName", s)
                        .close();
                }
                x.close();
            }
            x.open("UserSettings", &[]);
            for (name, value) in known {
                x.open("UserSetting", &[("i:type", "StringSetting")])
                    .text("Name", name)
                    .text("Value", &value)
                    .close();
            }
            x.close().close();
        }
    }
    rec.mailbox = users.first().map(|u| u.to_ascii_lowercase());
    rec.status = 200;
    rec.code = code.into();
    st.log.push(rec);
    xml_response(StatusCode::OK, x.finish())
}

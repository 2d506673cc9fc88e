//! `POST /EWS/Exchange.asmx`: each request is authenticated (401), read as a SOAP
//! envelope, given its mailbox (impersonated or the account's own), throttled when
//! a test asked for it, dispatched to its operation, and logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::authenticate;
use super::soap::{Answer, fault, message_text, read_envelope};
use super::sync_state::SyncSealer;
use super::xml::{SOAP, child, elements};
use super::{RequestRecord, Shared};

/// What an operation knows about its request beyond the XML.
pub(crate) struct Ctx<'a> {
    /// The mailbox the request acts on: the impersonated one, or the account's own.
    pub mailbox: Option<String>,
    pub sealer: &'a SyncSealer,
}

/// The local name of the first element of `soap:Body`, for the request log.
fn operation_name(doc: &roxmltree::Document<'_>) -> Option<String> {
    let body = child(doc.root_element(), SOAP, "Body")?;
    Some(elements(body).next()?.tag_name().name().to_owned())
}

/// Whether the request says it is SOAP 1.1 (`text/xml`).
fn is_text_xml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/xml"))
}

pub(crate) async fn ews(shared: Arc<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let text = std::str::from_utf8(&body)
        .ok()
        .map(|t| t.strip_prefix('\u{FEFF}').unwrap_or(t));
    let doc = text.and_then(|t| roxmltree::Document::parse(t).ok());
    let operation = doc.as_ref().and_then(operation_name).unwrap_or_default();
    let mut st = shared.lock();
    let mut record = RequestRecord {
        operation,
        account: None,
        mailbox: None,
        impersonated: false,
        at,
        status: 0,
        code: String::new(),
        during_back_off: false,
    };
    let account = match authenticate(&st.accounts, st.bearer.as_ref(), &headers) {
        Ok((account, _)) => account,
        Err(response) => {
            record.status = response.status().as_u16();
            record.code = "Unauthorized".into();
            st.log.push(record);
            return response;
        }
    };
    record.account = Some(account.user.clone());
    let answer = 'answer: {
        if !is_text_xml(&headers) {
            break 'answer Answer {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                body: String::new(),
                code: "UnsupportedMediaType".into(),
            };
        }
        let Some(doc) = doc.as_ref() else {
            break 'answer fault(
                "ErrorSchemaValidation",
                "The request failed schema validation: the body is not well-formed XML.",
                &[],
            );
        };
        let envelope = match read_envelope(doc) {
            Ok(e) => e,
            Err(answer) => break 'answer answer,
        };
        let mailbox = match envelope.impersonate {
            Some(address) => {
                record.impersonated = true;
                record.mailbox = Some(address.clone());
                if st.mailbox(&address).is_none() {
                    break 'answer fault(
                        "ErrorNonExistentMailbox",
                        message_text("ErrorNonExistentMailbox"),
                        &[],
                    );
                }
                if !account.may_impersonate(&address) {
                    break 'answer fault(
                        "ErrorImpersonateUserDenied",
                        message_text("ErrorImpersonateUserDenied"),
                        &[],
                    );
                }
                Some(address)
            }
            None => account.mailbox.clone(),
        };
        record.mailbox.clone_from(&mailbox);
        if let Some(wait) = throttle(&mut st, at, &mut record) {
            let millis = wait.as_millis().max(1).to_string();
            break 'answer fault(
                "ErrorServerBusy",
                message_text("ErrorServerBusy"),
                &[("BackOffMilliseconds", millis)],
            );
        }
        let ctx = Ctx {
            mailbox,
            sealer: &shared.sealer,
        };
        let op = envelope.operation;
        let sent_before = st.sent.len();
        let answer = match op.tag_name().name() {
            "SyncFolderHierarchy" => super::sync::sync_folder_hierarchy(&ctx, &mut st, op),
            "SyncFolderItems" => super::sync::sync_folder_items(&ctx, &mut st, op),
            "GetItem" => super::items::get_item(&ctx, &mut st, op),
            "FindItem" => super::items::find_item(&ctx, &mut st, op),
            "MoveItem" => super::items::move_item(&ctx, &mut st, op),
            "DeleteItem" => super::items::delete_item(&ctx, &mut st, op),
            "CreateItem" => super::create::create_item(&ctx, &mut st, op),
            "UpdateItem" => super::update::update_item(&ctx, &mut st, op),
            "CreateFolder" => super::folders::create_folder(&ctx, &mut st, op),
            "GetFolder" => super::folders::get_folder(&ctx, &mut st, op),
            "FindFolder" => super::folders::find_folder(&ctx, &mut st, op),
            other => fault(
                "ErrorInvalidRequest",
                &format!("The request is invalid: {other} is not emulated by the EWS test server."),
                &[],
            ),
        };
        if st.sent.len() > sent_before && st.lost_send_answers > 0 {
            // Sent and saved, but the answer does not reach the client (a
            // proxy in front of Exchange timed out).
            st.lost_send_answers -= 1;
            break 'answer Answer {
                status: StatusCode::GATEWAY_TIMEOUT,
                body: String::new(),
                code: "GatewayTimeout".into(),
            };
        }
        answer
    };
    record.status = answer.status.as_u16();
    record.code.clone_from(&answer.code);
    st.log.push(record);
    drop(st);
    answer.into_response()
}

/// The back-off to answer with ErrorServerBusy, if any: the rest of the current
/// back-off window (a request that did not wait), or a new window when faults are
/// still to be answered.
fn throttle(
    st: &mut super::state::State,
    now: Instant,
    record: &mut RequestRecord,
) -> Option<Duration> {
    if let Some(until) = st.busy.until {
        if now < until {
            record.during_back_off = true;
            return Some(until - now);
        }
        st.busy.until = None;
    }
    if st.busy.remaining == 0 {
        return None;
    }
    st.busy.remaining -= 1;
    st.busy.until = Some(now + st.busy.back_off);
    Some(st.busy.back_off)
}

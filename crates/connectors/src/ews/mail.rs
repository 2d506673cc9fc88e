//! Mail: a folder's item changes page by page (`SyncFolderItems`, whose sync
//! state the engine stores per folder), messages as MIME (`GetItem` with
//! `IncludeMimeContent`), moves (`MoveItem`, returning the new ids), sending as
//! the mailbox with the copy saved in Sent Items (`CreateItem` with
//! `SendAndSaveCopy`), a message looked up in Sent Items by its Message-ID
//! (`FindItem`), so that a send whose answer was lost is not sent twice,
//! categories (`UpdateItem`), and processed messages deleted to Deleted Items
//! (`DeleteItem`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

use super::client::EwsClient;
use super::errors::{EwsError, Target, classify};
use super::model::{
    DistinguishedFolder, FolderRef, ItemChange, ItemId, ItemsSync, MailItem, read_strings, short,
    write_strings,
};
use super::soap::first_item;
use super::xml::{XmlWriter, boolean, child, date_time, elements, own_text, text};

/// Items per `GetItem` or `MoveItem` request: large batches of MIME make slow
/// requests that Exchange's throttling budget (`EWSPercentTimeInCAS`) punishes.
pub const MAX_BATCH: usize = 50;

/// The most changes one `SyncFolderItems` page may ask for (EWS's limit).
pub const MAX_CHANGES: u32 = 512;

/// `SyncFolderItems` of `folder` from `state`.
pub(crate) fn sync_items_request(
    folder: &FolderRef,
    state: Option<&str>,
    max_changes: u32,
) -> String {
    let mut w = XmlWriter::new();
    w.open("m:SyncFolderItems", &[])
        .open("m:ItemShape", &[])
        .leaf("t:BaseShape", "IdOnly")
        .open("t:AdditionalProperties", &[])
        .empty("t:FieldURI", &[("FieldURI", "item:ItemClass")])
        .empty("t:FieldURI", &[("FieldURI", "item:DateTimeReceived")])
        .close("t:AdditionalProperties")
        .close("m:ItemShape")
        .open("m:SyncFolderId", &[]);
    folder.write(&mut w);
    w.close("m:SyncFolderId");
    if let Some(state) = state.filter(|s| !s.is_empty()) {
        w.leaf("m:SyncState", state);
    }
    w.leaf(
        "m:MaxChangesReturned",
        &max_changes.clamp(1, MAX_CHANGES).to_string(),
    )
    .leaf("m:SyncScope", "NormalItems")
    .close("m:SyncFolderItems");
    w.finish()
}

/// One `SyncFolderItemsResponseMessage`.
pub(crate) fn read_sync_items(message: Node<'_, '_>) -> Result<ItemsSync, String> {
    let sync_state = text(message, "SyncState").ok_or("the answer has no SyncState")?;
    let mut changes = Vec::new();
    if let Some(list) = child(message, "Changes") {
        for change in elements(list) {
            changes.push(
                ItemChange::read(change).ok_or_else(|| {
                    format!("a {} change names no item", change.tag_name().name())
                })?,
            );
        }
    }
    Ok(ItemsSync {
        changes,
        sync_state,
        includes_last: boolean(message, "IncludesLastItemInRange").unwrap_or(true),
    })
}

/// `GetItem` of messages, with their MIME when `with_mime`.
pub(crate) fn get_items_request(ids: &[ItemId], with_mime: bool) -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetItem", &[])
        .open("m:ItemShape", &[])
        .leaf("t:BaseShape", "IdOnly")
        .leaf(
            "t:IncludeMimeContent",
            if with_mime { "true" } else { "false" },
        )
        .open("t:AdditionalProperties", &[]);
    for field in [
        "message:InternetMessageId",
        "item:Subject",
        "item:Categories",
        "item:DateTimeReceived",
    ] {
        w.empty("t:FieldURI", &[("FieldURI", field)]);
    }
    w.close("t:AdditionalProperties").close("m:ItemShape");
    item_ids(&mut w, "m:ItemIds", ids);
    w.close("m:GetItem");
    w.finish()
}

pub(crate) fn item_ids(w: &mut XmlWriter, name: &str, ids: &[ItemId]) {
    w.open(name, &[]);
    for id in ids {
        id.write(w);
    }
    w.close(name);
}

/// One `GetItemResponseMessage` of a message.
pub(crate) fn read_mail_item(message: Node<'_, '_>) -> Result<MailItem, String> {
    let item = first_item(message).ok_or("the answer holds no item")?;
    let id = ItemId::read(item).ok_or("the item has no ItemId")?;
    let mime = match child(item, "MimeContent") {
        None => None,
        Some(node) => Some(
            decode_base64(&own_text(node).unwrap_or_default())
                .map_err(|e| format!("the MIME content of {} is not base64: {e}", short(&id.id)))?,
        ),
    };
    Ok(MailItem {
        mime,
        internet_message_id: text(item, "InternetMessageId"),
        subject: text(item, "Subject"),
        categories: read_strings(item, "Categories"),
        received: date_time(item, "DateTimeReceived"),
        id,
    })
}

/// Base64 as EWS writes it (possibly wrapped over lines).
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact)
}

/// `MoveItem` of `ids` to `folder`, asking for the moved items' new ids.
pub(crate) fn move_items_request(ids: &[ItemId], folder: &FolderRef) -> String {
    let mut w = XmlWriter::new();
    w.open("m:MoveItem", &[]).open("m:ToFolderId", &[]);
    folder.write(&mut w);
    w.close("m:ToFolderId");
    item_ids(&mut w, "m:ItemIds", ids);
    w.leaf("m:ReturnNewItemIds", "true").close("m:MoveItem");
    w.finish()
}

/// `DeleteItem` of `ids` with `MoveToDeletedItems`.
///
/// Why not `HardDelete`: Microsoft documents `HardDelete` as removing the item
/// from the store for good and `MoveToDeletedItems` as moving it to the Deleted
/// Items folder, as Outlook's Delete does. A forward mailbox's copy is deleted
/// only because it was processed; if it was attributed wrongly, its owner or
/// the Exchange administrator can still restore it, and the mailbox's retention
/// policy (Deleted Items) empties the folder as it does for everything else.
/// Graph's `DELETE /messages/{id}` (graph/mail.rs) goes the same way.
pub(crate) fn delete_items_request(ids: &[ItemId]) -> String {
    let mut w = XmlWriter::new();
    w.open("m:DeleteItem", &[("DeleteType", "MoveToDeletedItems")]);
    item_ids(&mut w, "m:ItemIds", ids);
    w.close("m:DeleteItem");
    w.finish()
}

/// The new id in a `MoveItemResponseMessage` (Exchange leaves it out for a move
/// across mailboxes).
pub(crate) fn read_moved(message: Node<'_, '_>) -> Result<Option<ItemId>, String> {
    Ok(first_item(message).and_then(ItemId::read))
}

/// `CreateItem` that sends `mime` and saves the copy in Sent Items.
pub(crate) fn send_request(mime: &[u8]) -> String {
    let mut w = XmlWriter::new();
    w.open("m:CreateItem", &[("MessageDisposition", "SendAndSaveCopy")])
        .open("m:SavedItemFolderId", &[]);
    FolderRef::Distinguished(DistinguishedFolder::SentItems).write(&mut w);
    w.close("m:SavedItemFolderId")
        .open("m:Items", &[])
        .open("t:Message", &[])
        .leaf_with(
            "t:MimeContent",
            &[("CharacterSet", "UTF-8")],
            &STANDARD.encode(mime),
        )
        .close("t:Message")
        .close("m:Items")
        .close("m:CreateItem");
    w.finish()
}

/// A Message-ID as Exchange keeps it: with its angle brackets
/// (`QUIRK_MESSAGE_ID_BRACKETS`: `InternetMessageId` compares the whole text).
pub fn bracketed(message_id: &str) -> String {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    format!("<{id}>")
}

/// `FindItem` in `folder` for messages whose `InternetMessageId` is `message_id`.
pub(crate) fn find_by_message_id_request(folder: &FolderRef, message_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("m:FindItem", &[("Traversal", "Shallow")])
        .open("m:ItemShape", &[])
        .leaf("t:BaseShape", "IdOnly")
        .open("t:AdditionalProperties", &[])
        .empty("t:FieldURI", &[("FieldURI", "message:InternetMessageId")])
        .close("t:AdditionalProperties")
        .close("m:ItemShape")
        .empty(
            "m:IndexedPageItemView",
            &[
                ("MaxEntriesReturned", "10"),
                ("Offset", "0"),
                ("BasePoint", "Beginning"),
            ],
        )
        .open("m:Restriction", &[])
        .open("t:IsEqualTo", &[])
        .empty("t:FieldURI", &[("FieldURI", "message:InternetMessageId")])
        .open("t:FieldURIOrConstant", &[])
        .empty("t:Constant", &[("Value", &bracketed(message_id))])
        .close("t:FieldURIOrConstant")
        .close("t:IsEqualTo")
        .close("m:Restriction")
        .open("m:ParentFolderIds", &[]);
    folder.write(&mut w);
    w.close("m:ParentFolderIds").close("m:FindItem");
    w.finish()
}

/// The items of a `FindItemResponseMessage`, with their `InternetMessageId`.
pub(crate) fn read_found_items(
    message: Node<'_, '_>,
) -> Result<Vec<(ItemId, Option<String>)>, String> {
    let root = child(message, "RootFolder").ok_or("the answer has no RootFolder")?;
    Ok(child(root, "Items")
        .map(|items| {
            elements(items)
                .filter_map(|i| Some((ItemId::read(i)?, text(i, "InternetMessageId"))))
                .collect()
        })
        .unwrap_or_default())
}

/// `UpdateItem` setting (or, when empty, clearing) an item's categories.
pub(crate) fn set_categories_request(item: &ItemId, categories: &[String]) -> String {
    let mut w = XmlWriter::new();
    update_item_open(&mut w, "AutoResolve");
    w.open("t:ItemChange", &[]);
    item.write(&mut w);
    w.open("t:Updates", &[]);
    if categories.is_empty() {
        w.open("t:DeleteItemField", &[])
            .empty("t:FieldURI", &[("FieldURI", "item:Categories")])
            .close("t:DeleteItemField");
    } else {
        w.open("t:SetItemField", &[])
            .empty("t:FieldURI", &[("FieldURI", "item:Categories")])
            .open("t:Item", &[]);
        write_strings(&mut w, "t:Categories", categories);
        w.close("t:Item").close("t:SetItemField");
    }
    w.close("t:Updates").close("t:ItemChange");
    update_item_close(&mut w);
    w.finish()
}

/// `<m:UpdateItem ...><m:ItemChanges>`: saved only (never sent), meeting
/// updates sent to nobody (mailbridge changes items, Outlook informs attendees).
pub(crate) fn update_item_open(w: &mut XmlWriter, conflict_resolution: &str) {
    w.open(
        "m:UpdateItem",
        &[
            ("ConflictResolution", conflict_resolution),
            ("MessageDisposition", "SaveOnly"),
            ("SendMeetingInvitationsOrCancellations", "SendToNone"),
        ],
    )
    .open("m:ItemChanges", &[]);
}

pub(crate) fn update_item_close(w: &mut XmlWriter) {
    w.close("m:ItemChanges").close("m:UpdateItem");
}

/// The updated item's id (with its new change key) in an `UpdateItemResponseMessage`.
pub(crate) fn read_updated(message: Node<'_, '_>) -> Result<ItemId, String> {
    first_item(message)
        .and_then(ItemId::read)
        .ok_or_else(|| "the answer names no updated item".to_owned())
}

impl EwsClient {
    /// The next page (at most `max_changes`, up to 512) of changes of `folder`'s
    /// items since `state` (`None`: every item, as created).
    ///
    /// # Errors
    /// [`EwsError::SyncStateInvalid`] when Exchange refuses `state`: synchronize
    /// the folder again from `None`. Anything else classified.
    pub async fn sync_folder_items(
        &self,
        folder: &FolderRef,
        state: Option<&str>,
        max_changes: u32,
    ) -> Result<ItemsSync, EwsError> {
        let subject = folder.describe();
        let what = format!("read the changes of the folder {subject}");
        let f = self.failed(&what, Target::Mailbox, &subject);
        let outcomes = self
            .call(
                &sync_items_request(folder, state, max_changes),
                &f,
                read_sync_items,
            )
            .await?;
        self.single(outcomes, &f)
    }

    /// Messages by id, in the order asked, each read or refused on its own
    /// (a message deleted meanwhile is an item-level error); with their MIME
    /// bytes when `with_mime`.
    ///
    /// # Errors
    /// When the request as a whole failed (classified); per message, in the list.
    pub async fn get_items(
        &self,
        ids: &[ItemId],
        with_mime: bool,
    ) -> Result<Vec<Result<MailItem, EwsError>>, EwsError> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(MAX_BATCH) {
            let what = "read a message";
            let f = self.failed(what, Target::Item, "");
            let outcomes = self
                .call(&get_items_request(batch, with_mime), &f, read_mail_item)
                .await?;
            out.extend(self.per_item(outcomes, batch, what));
        }
        Ok(out)
    }

    /// Moves items to `folder`; per item, its new id (Exchange gives moved items
    /// new ids) or the refusal.
    ///
    /// # Errors
    /// When the request as a whole failed; per item, in the list.
    pub async fn move_items(
        &self,
        ids: &[ItemId],
        folder: &FolderRef,
    ) -> Result<Vec<Result<Option<ItemId>, EwsError>>, EwsError> {
        let mut out = Vec::with_capacity(ids.len());
        let what = format!("move a message to the folder {}", folder.describe());
        for batch in ids.chunks(MAX_BATCH) {
            let f = self.failed(&what, Target::Item, "");
            let outcomes = self
                .call(&move_items_request(batch, folder), &f, read_moved)
                .await?;
            out.extend(self.per_item(outcomes, batch, &what));
        }
        Ok(out)
    }

    /// Deletes messages to the mailbox's Deleted Items (see
    /// [`delete_items_request`] for why not for good); per message, done or the
    /// refusal (a message already gone is an item-level `ErrorItemNotFound`).
    ///
    /// # Errors
    /// When the request as a whole failed; per message, in the list.
    pub async fn delete_items(
        &self,
        ids: &[ItemId],
    ) -> Result<Vec<Result<(), EwsError>>, EwsError> {
        let mut out = Vec::with_capacity(ids.len());
        let what = "delete a processed message";
        for batch in ids.chunks(MAX_BATCH) {
            let f = self.failed(what, Target::Item, "");
            let outcomes = self
                .call(&delete_items_request(batch), &f, |_| Ok(()))
                .await?;
            out.extend(self.per_item(outcomes, batch, what));
        }
        Ok(out)
    }

    /// Moves one item; its new id when Exchange gives one.
    ///
    /// # Errors
    /// Classified (a message gone meanwhile is an item-level error).
    pub async fn move_item(
        &self,
        id: &ItemId,
        folder: &FolderRef,
    ) -> Result<Option<ItemId>, EwsError> {
        let mut results = self.move_items(std::slice::from_ref(id), folder).await?;
        results.pop().unwrap_or(Ok(None))
    }

    /// Sends `mime` (RFC 5322 bytes, Message-ID included) as the mailbox and
    /// saves the copy in its Sent Items. Not repeated when the answer is lost
    /// (a timeout): look the message up with
    /// [`find_sent_by_message_id`](Self::find_sent_by_message_id) first.
    ///
    /// # Errors
    /// Classified; an item-level refusal (size, recipients) fails this message only.
    pub async fn send_and_save_copy(&self, mime: &[u8]) -> Result<(), EwsError> {
        let what = "send a message";
        let f = self.failed(what, Target::Item, "");
        let outcomes = self.call(&send_request(mime), &f, |_| Ok(())).await?;
        self.single(outcomes, &f)
    }

    /// The message with this Message-ID in Sent Items, if it is there.
    ///
    /// # Errors
    /// Classified.
    pub async fn find_sent_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<ItemId>, EwsError> {
        self.find_by_message_id(
            &FolderRef::Distinguished(DistinguishedFolder::SentItems),
            message_id,
        )
        .await
    }

    /// The message with this Message-ID in `folder`, if it is there.
    ///
    /// # Errors
    /// Classified.
    pub async fn find_by_message_id(
        &self,
        folder: &FolderRef,
        message_id: &str,
    ) -> Result<Option<ItemId>, EwsError> {
        let subject = folder.describe();
        let what = format!("look for a message by Message-ID in the folder {subject}");
        let f = self.failed(&what, Target::Mailbox, &subject);
        let outcomes = self
            .call(
                &find_by_message_id_request(folder, message_id),
                &f,
                read_found_items,
            )
            .await?;
        let wanted = bracketed(message_id);
        Ok(self
            .single(outcomes, &f)?
            .into_iter()
            .find(|(_, found)| found.as_deref() == Some(wanted.as_str()))
            .map(|(id, _)| id))
    }

    /// Sets an item's categories (none: removes them all); returns its id with
    /// the new change key.
    ///
    /// # Errors
    /// Classified; a stale change key Exchange cannot merge is [`EwsError::Conflict`].
    pub async fn set_categories(
        &self,
        item: &ItemId,
        categories: &[String],
    ) -> Result<ItemId, EwsError> {
        let what = "set the categories of a message";
        let subject = short(&item.id);
        let f = self.failed(what, Target::Item, &subject);
        let outcomes = self
            .call(&set_categories_request(item, categories), &f, read_updated)
            .await?;
        self.single(outcomes, &f)
    }

    /// Pairs each message's outcome with its id, classified.
    fn per_item<T>(
        &self,
        outcomes: super::client::Outcomes<T>,
        ids: &[ItemId],
        what: &str,
    ) -> Vec<Result<T, EwsError>> {
        let mut out: Vec<Result<T, EwsError>> = outcomes
            .into_iter()
            .zip(ids)
            .map(|(outcome, id)| {
                let subject = short(&id.id);
                outcome.map_err(|e| classify(&e, &self.failed(what, Target::Item, &subject)))
            })
            .collect();
        // Fewer answers than ids: the rest went unanswered.
        while out.len() < ids.len() {
            out.push(Err(self
                .protocol(&format!(
                    "no response message for an item when asked to {what}"
                ))
                .into()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{ItemKind, SyncedItem};
    use super::super::soap::{Answer, read_answer};
    use super::*;

    fn outcomes<T: std::fmt::Debug>(
        body: &str,
        read: impl FnMut(Node<'_, '_>) -> Result<T, String>,
    ) -> Vec<Result<T, super::super::soap::MessageError>> {
        match read_answer(body, read).expect("reads") {
            Answer::Messages(m) => m,
            Answer::Fault(f) => panic!("fault {f:?}"),
        }
    }

    fn wrap(response: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">{response}</s:Body></s:Envelope>"#
        )
    }

    #[test]
    fn sync_folder_items_asks_for_ids_and_the_page_size_in_schema_order() {
        let xml = sync_items_request(
            &FolderRef::Distinguished(DistinguishedFolder::Inbox),
            Some("H4sI"),
            100,
        );
        let order = [
            "m:ItemShape",
            "m:SyncFolderId",
            "m:SyncState",
            "m:MaxChangesReturned",
            "m:SyncScope",
        ];
        let positions: Vec<_> = order.iter().map(|n| xml.find(n).expect(n)).collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{xml}");
        assert!(xml.contains("<t:DistinguishedFolderId Id=\"inbox\"/>"));
        assert!(xml.contains("<m:MaxChangesReturned>100</m:MaxChangesReturned>"));
        let capped = sync_items_request(&FolderRef::Id("F".to_owned()), None, 5000);
        assert!(capped.contains("<m:MaxChangesReturned>512</m:MaxChangesReturned>"));
        assert!(!capped.contains("SyncState"));
    }

    #[test]
    fn sync_folder_items_pages_are_read_with_every_kind_of_change() {
        // The shape of the SyncFolderItems response example.
        let body = wrap(
            r#"<m:SyncFolderItemsResponse><m:ResponseMessages>
<m:SyncFolderItemsResponseMessage ResponseClass="Success">
  <m:ResponseCode>NoError</m:ResponseCode>
  <m:SyncState>H4sIAAAAAAAEAO29B2AcSZ</m:SyncState>
  <m:IncludesLastItemInRange>false</m:IncludesLastItemInRange>
  <m:Changes>
    <t:Create><t:Message><t:ItemId Id="AAMkN1" ChangeKey="CQAAAA1"/><t:ItemClass>IPM.Note</t:ItemClass><t:DateTimeReceived>2026-01-05T09:00:00Z</t:DateTimeReceived></t:Message></t:Create>
    <t:Create><t:MeetingRequest><t:ItemId Id="AAMkM2" ChangeKey="CwAAAA2"/></t:MeetingRequest></t:Create>
    <t:Update><t:Message><t:ItemId Id="AAMkU3" ChangeKey="CQAAAA3"/></t:Message></t:Update>
    <t:Delete><t:ItemId Id="AAMkD4" ChangeKey="CQAAAA4"/></t:Delete>
    <t:ReadFlagChange><t:ItemId Id="AAMkR5" ChangeKey="CQAAAA5"/><t:IsRead>true</t:IsRead></t:ReadFlagChange>
  </m:Changes>
</m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#,
        );
        let page = outcomes(&body, read_sync_items).remove(0).expect("a page");
        assert_eq!(page.sync_state, "H4sIAAAAAAAEAO29B2AcSZ");
        assert!(!page.includes_last);
        let id = |i: &str, ck: &str| ItemId::new(i, Some(ck.to_owned()));
        assert_eq!(
            page.changes,
            vec![
                ItemChange::Created(SyncedItem {
                    id: id("AAMkN1", "CQAAAA1"),
                    kind: ItemKind::Message,
                    item_class: Some("IPM.Note".to_owned()),
                    received: chrono::DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
                        .ok()
                        .map(|d| d.with_timezone(&chrono::Utc)),
                }),
                ItemChange::Created(SyncedItem {
                    id: id("AAMkM2", "CwAAAA2"),
                    kind: ItemKind::MeetingMessage,
                    item_class: None,
                    received: None,
                }),
                ItemChange::Updated(SyncedItem {
                    id: id("AAMkU3", "CQAAAA3"),
                    kind: ItemKind::Message,
                    item_class: None,
                    received: None,
                }),
                ItemChange::Deleted(id("AAMkD4", "CQAAAA4")),
                ItemChange::ReadFlagChanged {
                    id: id("AAMkR5", "CQAAAA5"),
                    is_read: true
                },
            ]
        );
    }

    #[test]
    fn a_refused_sync_state_reads_as_an_error_message() {
        let body = wrap(
            r#"<m:SyncFolderItemsResponse><m:ResponseMessages>
<m:SyncFolderItemsResponseMessage ResponseClass="Error">
  <m:MessageText>Synchronization state data is corrupt or otherwise invalid.</m:MessageText>
  <m:ResponseCode>ErrorInvalidSyncStateData</m:ResponseCode>
  <m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>
</m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#,
        );
        let e = outcomes(&body, read_sync_items)
            .remove(0)
            .expect_err("refused");
        let f = super::super::errors::Failed {
            what: "read the changes of the folder inbox",
            mailbox: "bob@contoso.com",
            target: Target::Mailbox,
            subject: "inbox",
        };
        assert_eq!(
            classify(&e, &f),
            EwsError::SyncStateInvalid {
                folder: "inbox".to_owned()
            }
        );
    }

    #[test]
    fn get_item_asks_for_mime_and_reads_it_decoded() {
        let xml = get_items_request(&[ItemId::new("AAMk1", Some("CQ1".to_owned()))], true);
        assert!(xml.contains(
            "<t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent>"
        ));
        assert!(xml.contains("<t:FieldURI FieldURI=\"message:InternetMessageId\"/>"));
        assert!(xml.contains("<m:ItemIds><t:ItemId Id=\"AAMk1\" ChangeKey=\"CQ1\"/></m:ItemIds>"));
        let mime =
            "From: a@contoso.com\r\nSubject: Hi\r\nMessage-ID: <m1@contoso.com>\r\n\r\nHello\r\n";
        let encoded = STANDARD.encode(mime);
        // Exchange may wrap long base64 over lines.
        let wrapped = format!("{}\n{}", &encoded[..20], &encoded[20..]);
        let body = wrap(&format!(
            r#"<m:GetItemResponse><m:ResponseMessages>
<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>
<t:Message>
  <t:MimeContent CharacterSet="UTF-8">{wrapped}</t:MimeContent>
  <t:ItemId Id="AAMk1" ChangeKey="CQ2"/>
  <t:Subject>Hi</t:Subject>
  <t:Categories><t:String>Tracked</t:String><t:String>Blue category</t:String></t:Categories>
  <t:DateTimeReceived>2026-01-05T09:00:00Z</t:DateTimeReceived>
  <t:InternetMessageId>&lt;m1@contoso.com&gt;</t:InternetMessageId>
</t:Message></m:Items></m:GetItemResponseMessage>
<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>The specified object was not found in the store.</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:GetItemResponseMessage>
</m:ResponseMessages></m:GetItemResponse>"#
        ));
        let mut got = outcomes(&body, read_mail_item);
        let item = got.remove(0).expect("read");
        assert_eq!(item.mime.as_deref(), Some(mime.as_bytes()));
        assert_eq!(
            item.internet_message_id.as_deref(),
            Some("<m1@contoso.com>")
        );
        assert_eq!(item.subject.as_deref(), Some("Hi"));
        assert_eq!(item.categories, vec!["Tracked", "Blue category"]);
        assert_eq!(item.id.change_key.as_deref(), Some("CQ2"));
        assert_eq!(got.remove(0).expect_err("gone").code, "ErrorItemNotFound");
    }

    #[test]
    fn move_asks_for_new_ids_and_reads_them() {
        let xml = move_items_request(
            &[ItemId::new("AAMk1", None)],
            &FolderRef::Id("AQMkU".to_owned()),
        );
        assert!(xml.starts_with(
            "<m:MoveItem><m:ToFolderId><t:FolderId Id=\"AQMkU\"/></m:ToFolderId><m:ItemIds>"
        ));
        assert!(xml.ends_with("<m:ReturnNewItemIds>true</m:ReturnNewItemIds></m:MoveItem>"));
        let body = wrap(
            r#"<m:MoveItemResponse><m:ResponseMessages><m:MoveItemResponseMessage ResponseClass="Success">
<m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message><t:ItemId Id="AAMkNEW" ChangeKey="CQ9"/></t:Message></m:Items>
</m:MoveItemResponseMessage></m:ResponseMessages></m:MoveItemResponse>"#,
        );
        let moved = outcomes(&body, read_moved).remove(0).expect("moved");
        assert_eq!(moved, Some(ItemId::new("AAMkNEW", Some("CQ9".to_owned()))));
    }

    #[test]
    fn processed_messages_are_deleted_to_deleted_items_each_answered() {
        let xml = delete_items_request(&[
            ItemId::new("AAMk1", Some("CQ1".to_owned())),
            ItemId::new("AAMk2", None),
        ]);
        assert_eq!(
            xml,
            "<m:DeleteItem DeleteType=\"MoveToDeletedItems\"><m:ItemIds><t:ItemId Id=\"AAMk1\" ChangeKey=\"CQ1\"/><t:ItemId Id=\"AAMk2\"/></m:ItemIds></m:DeleteItem>"
        );
        let body = wrap(
            r#"<m:DeleteItemResponse><m:ResponseMessages>
<m:DeleteItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:DeleteItemResponseMessage>
<m:DeleteItemResponseMessage ResponseClass="Error"><m:MessageText>The specified object was not found in the store.</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:DeleteItemResponseMessage>
</m:ResponseMessages></m:DeleteItemResponse>"#,
        );
        let mut got = outcomes(&body, |_| Ok(()));
        assert!(got.remove(0).is_ok());
        assert_eq!(got.remove(0).expect_err("gone").code, "ErrorItemNotFound");
    }

    #[test]
    fn sending_saves_the_copy_in_sent_items_with_the_mime_in_base64() {
        let mime = b"Subject: <x> & y\r\n\r\nbody";
        let xml = send_request(mime);
        assert!(xml.starts_with("<m:CreateItem MessageDisposition=\"SendAndSaveCopy\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"sentitems\"/></m:SavedItemFolderId>"));
        let encoded = STANDARD.encode(mime);
        assert!(xml.contains(&format!(
            "<t:MimeContent CharacterSet=\"UTF-8\">{encoded}</t:MimeContent>"
        )));
    }

    #[test]
    fn sent_items_are_searched_by_the_bracketed_message_id() {
        for id in [
            "abc@contoso.com",
            "<abc@contoso.com>",
            " <abc@contoso.com> ",
        ] {
            assert_eq!(bracketed(id), "<abc@contoso.com>");
        }
        let xml = find_by_message_id_request(
            &FolderRef::Distinguished(DistinguishedFolder::SentItems),
            "abc@contoso.com",
        );
        assert!(
            xml.contains("<t:Constant Value=\"&lt;abc@contoso.com&gt;\"/>"),
            "{xml}"
        );
        assert!(xml.contains(
            "<m:ParentFolderIds><t:DistinguishedFolderId Id=\"sentitems\"/></m:ParentFolderIds>"
        ));
        let order = [
            "m:ItemShape",
            "m:IndexedPageItemView",
            "m:Restriction",
            "m:ParentFolderIds",
        ];
        let positions: Vec<_> = order.iter().map(|n| xml.find(n).expect(n)).collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{xml}");
        let body = wrap(
            r#"<m:FindItemResponse><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success">
<m:ResponseCode>NoError</m:ResponseCode>
<m:RootFolder IndexedPagingOffset="1" TotalItemsInView="1" IncludesLastItemInRange="true"><t:Items>
<t:Message><t:ItemId Id="AAMkS" ChangeKey="CQS"/><t:InternetMessageId>&lt;abc@contoso.com&gt;</t:InternetMessageId></t:Message>
</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse>"#,
        );
        let found = outcomes(&body, read_found_items).remove(0).expect("found");
        assert_eq!(found[0].0.id, "AAMkS");
        assert_eq!(found[0].1.as_deref(), Some("<abc@contoso.com>"));
    }

    #[test]
    fn categories_are_set_or_cleared_without_sending_anything() {
        let id = ItemId::new("AAMk1", Some("CQ1".to_owned()));
        let set = set_categories_request(&id, &["Tracked".to_owned(), "R&D".to_owned()]);
        assert!(set.starts_with("<m:UpdateItem ConflictResolution=\"AutoResolve\" MessageDisposition=\"SaveOnly\" SendMeetingInvitationsOrCancellations=\"SendToNone\"><m:ItemChanges><t:ItemChange><t:ItemId Id=\"AAMk1\" ChangeKey=\"CQ1\"/>"));
        assert!(set.contains("<t:SetItemField><t:FieldURI FieldURI=\"item:Categories\"/><t:Item><t:Categories><t:String>Tracked</t:String><t:String>R&amp;D</t:String></t:Categories></t:Item></t:SetItemField>"));
        let clear = set_categories_request(&id, &[]);
        assert!(clear.contains(
            "<t:DeleteItemField><t:FieldURI FieldURI=\"item:Categories\"/></t:DeleteItemField>"
        ));
    }
}

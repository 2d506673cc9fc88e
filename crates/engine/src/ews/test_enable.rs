//! Test & Enable of an Exchange Server mailbox: incoming reads the first change
//! of the Inbox through EWS as the mailbox (which proves the credentials, the
//! impersonation right and the mailbox); outgoing sends the "Your mailbox is
//! now connected" message to the mailbox itself with `SendAndSaveCopy`.

use mailbridge_connectors::ews::{DistinguishedFolder, FolderRef};
use mailbridge_domain::error_model::SyncError;

use crate::Engine;
use crate::context::MailboxContext;
use crate::test_enable::TEST_SUBJECT;

pub async fn test_incoming(engine: &Engine, ctx: &MailboxContext) -> Result<(), SyncError> {
    let client = super::client(engine, ctx).await?;
    let inbox = FolderRef::Distinguished(DistinguishedFolder::Inbox);
    client.sync_folder_items(&inbox, None, 1).await?;
    Ok(())
}

pub async fn test_outgoing(engine: &Engine, ctx: &MailboxContext) -> Result<(), SyncError> {
    let client = super::client(engine, ctx).await?;
    let address = ctx.address()?;
    let message = mail_builder::MessageBuilder::new()
        .from((ctx.mailbox.name.clone(), address.clone()))
        .to(address.clone())
        .subject(TEST_SUBJECT)
        .message_id(format!(
            "{}@mailbridge.test-and-enable",
            uuid::Uuid::now_v7().simple()
        ))
        .text_body("mailbridge can now send email from this mailbox. You can delete this message.")
        .write_to_vec()
        .unwrap_or_default();
    Ok(client.send_and_save_copy(&message).await?)
}

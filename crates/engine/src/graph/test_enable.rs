//! Test & Enable of an Exchange Online mailbox: incoming gets a token and opens
//! the Inbox through Graph; outgoing sends the "Your mailbox is now connected"
//! message to the mailbox itself with `sendMail`.

use mailbridge_connectors::graph::WellKnownFolder;
use mailbridge_domain::error_model::SyncError;

use crate::Engine;
use crate::context::MailboxContext;
use crate::test_enable::TEST_SUBJECT;

pub async fn test_incoming(engine: &Engine, ctx: &MailboxContext) -> Result<(), SyncError> {
    let mbx = super::mailbox(engine, ctx).await?;
    mbx.well_known_folder(WellKnownFolder::Inbox).await?;
    Ok(())
}

pub async fn test_outgoing(engine: &Engine, ctx: &MailboxContext) -> Result<(), SyncError> {
    let mbx = super::mailbox(engine, ctx).await?;
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
    mbx.send_mime(&message).await
}

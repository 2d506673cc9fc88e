//! Changes to a mailbox, shared by the API handlers and the test helpers; each one
//! moves the change sequence that delta queries read and queues the change
//! notifications of matching subscriptions.

use chrono::Utc;

use super::state::{Folder, Notice, State, message_from_mime};

/// A change that cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpError {
    NoUser,
    NoFolder,
    NoMessage,
    FolderExists,
}

/// Stores `mime` as a new message in the folder; returns its id.
pub(crate) fn deliver(
    st: &mut State,
    uid: &str,
    fid: &str,
    mime: Vec<u8>,
    read: bool,
) -> Result<String, OpError> {
    let exists = st
        .users
        .get(uid)
        .ok_or(OpError::NoUser)?
        .folders
        .contains_key(fid);
    if !exists {
        return Err(OpError::NoFolder);
    }
    let id = st.new_id("Msg");
    let seq = st.next_seq();
    let mut message = message_from_mime(id.clone(), fid.to_owned(), mime, seq);
    message.is_read = read;
    if let Some(u) = st.users.get_mut(uid) {
        u.messages.insert(id.clone(), message);
    }
    announce(st, uid, fid, &id, "created");
    Ok(id)
}

/// Moves a message; with immutable ids its id stays (learn.microsoft.com/graph/outlook-immutable-id).
pub(crate) fn move_message(st: &mut State, uid: &str, id: &str, dest: &str) -> Result<(), OpError> {
    let seq = st.next_seq();
    let u = st.users.get_mut(uid).ok_or(OpError::NoUser)?;
    if !u.folders.contains_key(dest) {
        return Err(OpError::NoFolder);
    }
    let m = u.messages.get_mut(id).ok_or(OpError::NoMessage)?;
    if m.folder_id == dest {
        return Ok(());
    }
    let from = std::mem::replace(&mut m.folder_id, dest.to_owned());
    m.changed_seq = seq;
    m.modified = Utc::now();
    u.bury(&from, id, seq);
    announce(st, uid, &from, id, "deleted");
    announce(st, uid, dest, id, "created");
    Ok(())
}

/// Replaces the categories (and optionally the read state) of a message.
pub(crate) fn update(
    st: &mut State,
    uid: &str,
    id: &str,
    categories: Option<Vec<String>>,
    is_read: Option<bool>,
) -> Result<(), OpError> {
    let seq = st.next_seq();
    let u = st.users.get_mut(uid).ok_or(OpError::NoUser)?;
    let m = u.messages.get_mut(id).ok_or(OpError::NoMessage)?;
    if let Some(c) = categories {
        m.categories = c;
    }
    if let Some(r) = is_read {
        m.is_read = r;
    }
    m.changed_seq = seq;
    m.modified = Utc::now();
    let fid = m.folder_id.clone();
    announce(st, uid, &fid, id, "updated");
    Ok(())
}

/// Deletes a message for good.
pub(crate) fn delete(st: &mut State, uid: &str, id: &str) -> Result<(), OpError> {
    let seq = st.next_seq();
    let u = st.users.get_mut(uid).ok_or(OpError::NoUser)?;
    let m = u.messages.remove(id).ok_or(OpError::NoMessage)?;
    u.bury(&m.folder_id, id, seq);
    announce(st, uid, &m.folder_id, id, "deleted");
    Ok(())
}

/// Creates a folder under `parent`; Graph refuses a sibling of the same name.
pub(crate) fn create_folder(
    st: &mut State,
    uid: &str,
    parent: &str,
    name: &str,
) -> Result<String, OpError> {
    let id = st.new_id("Fold");
    let u = st.users.get_mut(uid).ok_or(OpError::NoUser)?;
    if !u.folders.contains_key(parent) {
        return Err(OpError::NoFolder);
    }
    if u.child_named(parent, name).is_some() {
        return Err(OpError::FolderExists);
    }
    u.folders.insert(
        id.clone(),
        Folder {
            id: id.clone(),
            display_name: name.to_owned(),
            parent_id: Some(parent.to_owned()),
            well_known: None,
        },
    );
    Ok(id)
}

/// Queues a notification for each subscription on this folder (or on all messages).
fn announce(st: &mut State, uid: &str, fid: &str, mid: &str, change_type: &'static str) {
    let now = Utc::now();
    let matching: Vec<String> = st
        .subscriptions
        .values()
        .filter(|s| {
            s.user_id == uid
                && s.expiration > now
                && s.folder_id.as_deref().is_none_or(|f| f == fid)
                && s.change_type.split(',').any(|c| c.trim() == change_type)
        })
        .map(|s| s.id.clone())
        .collect();
    for subscription_id in matching {
        st.notices.push(Notice {
            subscription_id,
            change_type,
            user_id: uid.to_owned(),
            message_id: mid.to_owned(),
        });
    }
}

//! Folders: the hierarchy's changes (`SyncFolderHierarchy`, below the top of the
//! mail folder tree), a child folder by display name (`FindFolder`) and folder
//! creation (`CreateFolder`, where `ErrorFolderExists` means "already there").

use roxmltree::Node;

use super::client::EwsClient;
use super::errors::{EwsError, Target, classify};
use super::model::{DistinguishedFolder, Folder, FolderChange, FolderId, FolderRef, HierarchySync};
use super::xml::{XmlWriter, boolean, child, elements, text};

/// `SyncFolderHierarchy`'s request for the folders below `msgfolderroot`.
pub(crate) fn sync_hierarchy_request(state: Option<&str>) -> String {
    let mut w = XmlWriter::new();
    w.open("m:SyncFolderHierarchy", &[]);
    folder_shape(&mut w, "m:FolderShape");
    w.open("m:SyncFolderId", &[]);
    FolderRef::Distinguished(DistinguishedFolder::MsgFolderRoot).write(&mut w);
    w.close("m:SyncFolderId");
    if let Some(state) = state.filter(|s| !s.is_empty()) {
        w.leaf("m:SyncState", state);
    }
    w.close("m:SyncFolderHierarchy");
    w.finish()
}

fn folder_shape(w: &mut XmlWriter, name: &str) {
    w.open(name, &[])
        .leaf("t:BaseShape", "Default")
        .open("t:AdditionalProperties", &[])
        .empty("t:FieldURI", &[("FieldURI", "folder:ParentFolderId")])
        .empty("t:FieldURI", &[("FieldURI", "folder:FolderClass")])
        .close("t:AdditionalProperties")
        .close(name);
}

/// One `SyncFolderHierarchyResponseMessage`.
pub(crate) fn read_hierarchy(message: Node<'_, '_>) -> Result<HierarchySync, String> {
    let sync_state = text(message, "SyncState").ok_or("the answer has no SyncState")?;
    let mut changes = Vec::new();
    if let Some(list) = child(message, "Changes") {
        for change in elements(list) {
            let folder = || elements(change).next().and_then(Folder::read);
            let read = match change.tag_name().name() {
                "Create" => folder().map(FolderChange::Created),
                "Update" => folder().map(FolderChange::Updated),
                "Delete" => child(change, "FolderId")
                    .and_then(FolderId::read)
                    .map(FolderChange::Deleted),
                _ => None,
            };
            changes.push(
                read.ok_or_else(|| {
                    format!("a {} change names no folder", change.tag_name().name())
                })?,
            );
        }
    }
    Ok(HierarchySync {
        changes,
        sync_state,
        includes_last: boolean(message, "IncludesLastFolderInRange").unwrap_or(true),
    })
}

/// `FindFolder` for the children of `parent` named `name`.
pub(crate) fn find_folder_request(parent: &FolderRef, name: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("m:FindFolder", &[("Traversal", "Shallow")]);
    folder_shape(&mut w, "m:FolderShape");
    w.open("m:Restriction", &[])
        .open("t:IsEqualTo", &[])
        .empty("t:FieldURI", &[("FieldURI", "folder:DisplayName")])
        .open("t:FieldURIOrConstant", &[])
        .empty("t:Constant", &[("Value", name)])
        .close("t:FieldURIOrConstant")
        .close("t:IsEqualTo")
        .close("m:Restriction");
    w.open("m:ParentFolderIds", &[]);
    parent.write(&mut w);
    w.close("m:ParentFolderIds");
    w.close("m:FindFolder");
    w.finish()
}

/// The folders of a `FindFolderResponseMessage`.
pub(crate) fn read_found_folders(message: Node<'_, '_>) -> Result<Vec<Folder>, String> {
    let root = child(message, "RootFolder").ok_or("the answer has no RootFolder")?;
    Ok(child(root, "Folders")
        .map(|f| elements(f).filter_map(Folder::read).collect())
        .unwrap_or_default())
}

/// `CreateFolder` of a mail folder `name` below `parent`.
pub(crate) fn create_folder_request(parent: &FolderRef, name: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("m:CreateFolder", &[]).open("m:ParentFolderId", &[]);
    parent.write(&mut w);
    w.close("m:ParentFolderId")
        .open("m:Folders", &[])
        .open("t:Folder", &[])
        .leaf("t:FolderClass", "IPF.Note")
        .leaf("t:DisplayName", name)
        .close("t:Folder")
        .close("m:Folders")
        .close("m:CreateFolder");
    w.finish()
}

fn read_created_folder(message: Node<'_, '_>) -> Result<FolderId, String> {
    child(message, "Folders")
        .and_then(|f| elements(f).next())
        .and_then(|f| child(f, "FolderId"))
        .and_then(FolderId::read)
        .ok_or_else(|| "the answer names no new folder".to_owned())
}

impl EwsClient {
    /// The next page of changes of the mailbox's folder tree (below the top of
    /// the mail folders) since `state` (`None`: every folder, as created).
    ///
    /// # Errors
    /// [`EwsError::SyncStateInvalid`] when Exchange refuses `state`; anything
    /// else classified.
    pub async fn sync_folder_hierarchy(
        &self,
        state: Option<&str>,
    ) -> Result<HierarchySync, EwsError> {
        let what = "read the changes of the folder tree";
        let f = self.failed(what, Target::Mailbox, "msgfolderroot");
        let outcomes = self
            .call(&sync_hierarchy_request(state), &f, read_hierarchy)
            .await?;
        self.single(outcomes, &f)
    }

    /// The child folder of `parent` whose display name is `name` (compared
    /// without regard to case, as Exchange does), if there is one.
    ///
    /// # Errors
    /// Classified; a missing `parent` is a mailbox-level error.
    pub async fn find_folder_by_name(
        &self,
        parent: &FolderRef,
        name: &str,
    ) -> Result<Option<Folder>, EwsError> {
        let what = format!("look for the folder {name}");
        let subject = parent.describe();
        let f = self.failed(&what, Target::Mailbox, &subject);
        let outcomes = self
            .call(&find_folder_request(parent, name), &f, read_found_folders)
            .await?;
        let found = self.single(outcomes, &f)?;
        Ok(found
            .into_iter()
            .find(|folder| folder.display_name.eq_ignore_ascii_case(name)))
    }

    /// Creates the mail folder `name` below `parent`, or finds it when it is
    /// already there (`ErrorFolderExists`, e.g. created by another run meanwhile).
    ///
    /// # Errors
    /// Classified.
    pub async fn create_folder(
        &self,
        parent: &FolderRef,
        name: &str,
    ) -> Result<FolderId, EwsError> {
        let what = format!("create the folder {name}");
        let subject = parent.describe();
        let f = self.failed(&what, Target::Mailbox, &subject);
        let outcomes = self
            .call(
                &create_folder_request(parent, name),
                &f,
                read_created_folder,
            )
            .await?;
        match outcomes.into_iter().next() {
            Some(Ok(id)) => Ok(id),
            Some(Err(e)) if e.code == "ErrorFolderExists" => {
                match self.find_folder_by_name(parent, name).await? {
                    Some(folder) => Ok(folder.id),
                    None => Err(classify(&e, &f)),
                }
            }
            Some(Err(e)) => Err(classify(&e, &f)),
            None => self.single(Vec::new(), &f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::FolderKind;
    use super::super::soap::{Answer, read_answer};
    use super::*;

    fn one<T: std::fmt::Debug>(
        body: &str,
        read: impl FnMut(Node<'_, '_>) -> Result<T, String>,
    ) -> T {
        match read_answer(body, read).expect("reads") {
            Answer::Messages(mut m) => m.remove(0).expect("a success"),
            Answer::Fault(f) => panic!("fault {f:?}"),
        }
    }

    fn wrap(response: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">{response}</s:Body></s:Envelope>"#
        )
    }

    #[test]
    fn the_hierarchy_request_names_the_root_and_the_state() {
        let first = sync_hierarchy_request(None);
        assert!(first.contains(
            "<m:SyncFolderId><t:DistinguishedFolderId Id=\"msgfolderroot\"/></m:SyncFolderId>"
        ));
        assert!(!first.contains("SyncState"));
        let next = sync_hierarchy_request(Some("H4sI<&>"));
        assert!(
            next.contains("<m:SyncState>H4sI&lt;&amp;&gt;</m:SyncState>"),
            "{next}"
        );
        assert!(
            roxmltree::Document::parse(&format!("<r xmlns:m=\"m\" xmlns:t=\"t\">{next}</r>"))
                .is_ok()
        );
    }

    #[test]
    fn hierarchy_changes_are_read_by_kind() {
        // The shape of the SyncFolderHierarchy response example.
        let body = wrap(
            r#"<m:SyncFolderHierarchyResponse><m:ResponseMessages>
<m:SyncFolderHierarchyResponseMessage ResponseClass="Success">
  <m:ResponseCode>NoError</m:ResponseCode>
  <m:SyncState>H4sIAAAAAAAEAO29B2A=</m:SyncState>
  <m:IncludesLastFolderInRange>true</m:IncludesLastFolderInRange>
  <m:Changes>
    <t:Create>
      <t:Folder>
        <t:FolderId Id="AQMkAGF1" ChangeKey="AQAAABYA"/>
        <t:ParentFolderId Id="AQMkROOT" ChangeKey="AQAAAA=="/>
        <t:FolderClass>IPF.Note</t:FolderClass>
        <t:DisplayName>Undeliverable</t:DisplayName>
        <t:TotalCount>0</t:TotalCount>
      </t:Folder>
    </t:Create>
    <t:Update>
      <t:CalendarFolder>
        <t:FolderId Id="AQMkCAL" ChangeKey="AgAAABYA"/>
        <t:FolderClass>IPF.Appointment</t:FolderClass>
        <t:DisplayName>Calendar</t:DisplayName>
      </t:CalendarFolder>
    </t:Update>
    <t:Delete><t:FolderId Id="AQMkGONE" ChangeKey="AQAAAA=="/></t:Delete>
  </m:Changes>
</m:SyncFolderHierarchyResponseMessage></m:ResponseMessages></m:SyncFolderHierarchyResponse>"#,
        );
        let page = one(&body, read_hierarchy);
        assert_eq!(page.sync_state, "H4sIAAAAAAAEAO29B2A=");
        assert!(page.includes_last);
        assert_eq!(page.changes.len(), 3);
        let FolderChange::Created(created) = &page.changes[0] else {
            panic!("{:?}", page.changes[0])
        };
        assert_eq!(created.display_name, "Undeliverable");
        assert_eq!(created.kind, FolderKind::Mail);
        assert_eq!(
            created.parent_id.as_ref().map(|p| p.id.as_str()),
            Some("AQMkROOT")
        );
        assert!(
            matches!(&page.changes[1], FolderChange::Updated(f) if f.kind == FolderKind::Calendar)
        );
        assert!(matches!(&page.changes[2], FolderChange::Deleted(id) if id.id == "AQMkGONE"));
    }

    #[test]
    fn find_folder_restricts_on_the_display_name_below_the_parent() {
        let xml = find_folder_request(
            &FolderRef::Distinguished(DistinguishedFolder::MsgFolderRoot),
            "R&D \"x\"",
        );
        assert!(xml.starts_with("<m:FindFolder Traversal=\"Shallow\">"));
        assert!(xml.contains("<t:FieldURI FieldURI=\"folder:DisplayName\"/><t:FieldURIOrConstant><t:Constant Value=\"R&amp;D &quot;x&quot;\"/>"), "{xml}");
        assert!(xml.contains(
            "<m:ParentFolderIds><t:DistinguishedFolderId Id=\"msgfolderroot\"/></m:ParentFolderIds>"
        ));
        // Restriction comes before ParentFolderIds in the schema's sequence.
        assert!(xml.find("m:Restriction") < xml.find("m:ParentFolderIds"));
    }

    #[test]
    fn found_and_created_folders_are_read() {
        let found = wrap(
            r#"<m:FindFolderResponse><m:ResponseMessages><m:FindFolderResponseMessage ResponseClass="Success">
<m:ResponseCode>NoError</m:ResponseCode>
<m:RootFolder TotalItemsInView="1" IncludesLastItemInRange="true"><t:Folders>
<t:Folder><t:FolderId Id="AQMkU" ChangeKey="AQAAAB"/><t:DisplayName>undeliverable</t:DisplayName></t:Folder>
</t:Folders></m:RootFolder></m:FindFolderResponseMessage></m:ResponseMessages></m:FindFolderResponse>"#,
        );
        let folders = one(&found, read_found_folders);
        assert_eq!(folders.len(), 1);
        assert_eq!(folders[0].id.id, "AQMkU");
        let created = wrap(
            r#"<m:CreateFolderResponse><m:ResponseMessages><m:CreateFolderResponseMessage ResponseClass="Success">
<m:ResponseCode>NoError</m:ResponseCode>
<m:Folders><t:Folder><t:FolderId Id="AQMkNEW" ChangeKey="AQAAABYA"/></t:Folder></m:Folders>
</m:CreateFolderResponseMessage></m:ResponseMessages></m:CreateFolderResponse>"#,
        );
        assert_eq!(one(&created, read_created_folder).id, "AQMkNEW");
        let request = create_folder_request(&FolderRef::Id("AQMkP".to_owned()), "Undeliverable");
        assert!(request.contains("<t:Folder><t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Undeliverable</t:DisplayName></t:Folder>"));
    }
}

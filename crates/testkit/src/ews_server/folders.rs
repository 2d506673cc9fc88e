//! Folders: `t:FolderId` and `t:DistinguishedFolderId` references, folder shapes,
//! and the operations CreateFolder, GetFolder and FindFolder.
//!
//! ```xml
//! <m:CreateFolder>
//!   <m:ParentFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderId>
//!   <m:Folders><t:Folder><t:DisplayName>Undeliverable</t:DisplayName></t:Folder></m:Folders>
//! </m:CreateFolder>
//! → <m:CreateFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
//!     <m:Folders><t:Folder><t:FolderId Id="…" ChangeKey="…"/></t:Folder></m:Folders>
//!   (a sibling of the same name, ignoring case: ResponseClass="Error", ErrorFolderExists)
//! <m:FindFolder Traversal="Shallow|Deep"> m:FolderShape, m:IndexedPageFolderView?,
//!   m:Restriction?, m:ParentFolderIds
//! → <m:RootFolder IndexedPagingOffset="…" TotalItemsInView="…" IncludesLastItemInRange="…">
//!     <t:Folders>…</t:Folders></m:RootFolder>
//! ```

use roxmltree::Node;

use super::fields::Prop;
use super::restriction;
use super::service::Ctx;
use super::soap::{Answer, Responses, fault};
use super::state::{Folder, Mailbox, State, id_is_well_formed};
use super::xml::{M, T, Xml, child, child_text, elements, escape_attr, is};

/// The first `t:FolderId` or `t:DistinguishedFolderId` child of `parent`.
pub(crate) fn first_ref<'a, 'i>(parent: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    elements(parent).find(|c| is(*c, T, "FolderId") || is(*c, T, "DistinguishedFolderId"))
}

/// The id of the folder a reference names in the mailbox, or the response code.
pub(crate) fn resolve(mb: &Mailbox, node: Node<'_, '_>) -> Result<String, &'static str> {
    if is(node, T, "FolderId") {
        let id = node.attribute("Id").unwrap_or("").trim();
        if !id_is_well_formed(id) {
            return Err("ErrorInvalidIdMalformed");
        }
        return mb
            .folders
            .contains_key(id)
            .then(|| id.to_owned())
            .ok_or("ErrorFolderNotFound");
    }
    if is(node, T, "DistinguishedFolderId") {
        // Delegate access to another mailbox is not emulated.
        if let Some(m) = child(node, T, "Mailbox") {
            let address = child_text(m, T, "EmailAddress").unwrap_or_default();
            if !address.eq_ignore_ascii_case(&mb.address) {
                return Err("ErrorAccessDenied");
            }
        }
        return mb
            .well_known(node.attribute("Id").unwrap_or(""))
            .ok_or("ErrorFolderNotFound");
    }
    Err("ErrorInvalidRequest")
}

/// A parsed `m:FolderShape`.
pub(crate) struct FolderShape {
    base: String,
    additional: Vec<String>,
}

impl FolderShape {
    pub fn parse(node: Option<Node<'_, '_>>) -> FolderShape {
        let base = node
            .and_then(|n| child_text(n, T, "BaseShape"))
            .unwrap_or_else(|| "IdOnly".into());
        let additional = node
            .and_then(|n| child(n, T, "AdditionalProperties"))
            .map(|a| {
                elements(a)
                    .filter_map(super::fields::parse_path)
                    .filter_map(|p| match p {
                        Prop::Field(f) => Some(f),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        FolderShape { base, additional }
    }

    fn wants(&self, name: &str, in_default: bool) -> bool {
        self.base == "AllProperties"
            || (self.base == "Default" && in_default)
            || self.additional.iter().any(|a| a == name)
    }
}

/// The folder as its element (`t:Folder`, `t:CalendarFolder`, ...) in the shape.
pub(crate) fn render_folder(x: &mut Xml, mb: &Mailbox, f: &Folder, shape: &FolderShape) {
    let element = f.element();
    x.open(&format!("t:{element}"), &[]);
    x.empty("t:FolderId", &[("Id", &f.id), ("ChangeKey", &f.change_key)]);
    if shape.wants("ParentFolderId", false)
        && let Some(parent) = f.parent_id.as_ref().and_then(|p| mb.folders.get(p))
    {
        x.empty(
            "t:ParentFolderId",
            &[("Id", &parent.id), ("ChangeKey", &parent.change_key)],
        );
    }
    if shape.wants("FolderClass", false) {
        x.text("t:FolderClass", &f.folder_class);
    }
    if shape.wants("DisplayName", true) {
        x.text("t:DisplayName", &f.display_name);
    }
    let items = || mb.items.values().filter(|i| i.folder_id == f.id);
    if shape.wants("TotalCount", true) {
        x.text("t:TotalCount", &items().count().to_string());
    }
    if shape.wants("ChildFolderCount", true) {
        let n = mb.descendants(&f.id, false).len();
        x.text("t:ChildFolderCount", &n.to_string());
    }
    if matches!(element, "Folder" | "TasksFolder") && shape.wants("UnreadCount", true) {
        let unread = items()
            .filter(|i| i.kind == super::state::ItemKind::Message && !i.is_read())
            .count();
        x.text("t:UnreadCount", &unread.to_string());
    }
    x.close();
}

/// The class a new folder gets from its element or `t:FolderClass`.
fn class_of(node: Node<'_, '_>) -> String {
    if let Some(class) = child_text(node, T, "FolderClass") {
        return class;
    }
    match node.tag_name().name() {
        "CalendarFolder" => "IPF.Appointment",
        "ContactsFolder" => "IPF.Contact",
        "TasksFolder" => "IPF.Task",
        _ => "IPF.Note",
    }
    .to_owned()
}

pub(crate) fn create_folder(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("CreateFolder");
    let Some(mailbox) = ctx.mailbox.clone() else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    let (Some(parent), Some(folders)) = (
        child(op, M, "ParentFolderId").and_then(first_ref),
        child(op, M, "Folders"),
    ) else {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: CreateFolder needs ParentFolderId and Folders.",
            &[],
        );
    };
    for node in elements(folders) {
        let parent_id = match st.mailbox(&mailbox).map(|mb| resolve(mb, parent)) {
            Some(Ok(id)) => id,
            Some(Err(code)) => {
                out.error(code, "");
                continue;
            }
            None => {
                out.error("ErrorNonExistentMailbox", "");
                continue;
            }
        };
        let Some(name) = child_text(node, T, "DisplayName").filter(|n| !n.is_empty()) else {
            out.error("ErrorInvalidRequest", "");
            continue;
        };
        match st.create_folder(&mailbox, &parent_id, &name, &class_of(node)) {
            Ok(id) => {
                let mb = st.mailbox(&mailbox).expect("the mailbox just written");
                let f = &mb.folders[&id];
                let mut x = Xml::new();
                x.open("m:Folders", &[]);
                x.open(&format!("t:{}", f.element()), &[]);
                x.empty("t:FolderId", &[("Id", &f.id), ("ChangeKey", &f.change_key)]);
                out.success(&x.finish());
            }
            Err(true) => out.error("ErrorFolderExists", "<m:Folders/>"),
            Err(false) => out.error("ErrorFolderNotFound", "<m:Folders/>"),
        }
    }
    out.finish()
}

pub(crate) fn get_folder(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("GetFolder");
    let shape = FolderShape::parse(child(op, M, "FolderShape"));
    let Some(ids) = child(op, M, "FolderIds") else {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: GetFolder needs FolderIds.",
            &[],
        );
    };
    let Some(mb) = ctx.mailbox.as_deref().and_then(|m| st.mailbox(m)) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    for r in elements(ids) {
        match resolve(mb, r) {
            Ok(id) => {
                let mut x = Xml::new();
                x.open("m:Folders", &[]);
                render_folder(&mut x, mb, &mb.folders[&id], &shape);
                out.success(&x.finish());
            }
            Err(code) => out.error(code, ""),
        }
    }
    out.finish()
}

pub(crate) fn find_folder(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("FindFolder");
    let shape = FolderShape::parse(child(op, M, "FolderShape"));
    let deep = match op.attribute("Traversal").unwrap_or("Shallow") {
        "Shallow" => false,
        "Deep" => true,
        // Soft-deleted folders are not kept.
        _ => false,
    };
    let soft_deleted = op.attribute("Traversal") == Some("SoftDeleted");
    let Some(parents) = child(op, M, "ParentFolderIds") else {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: FindFolder needs ParentFolderIds.",
            &[],
        );
    };
    let restriction = match child(op, M, "Restriction") {
        Some(r) => match restriction::parse(r) {
            Some(r) => Some(r),
            None => {
                out.error("ErrorInvalidRestriction", "");
                return out.finish();
            }
        },
        None => None,
    };
    let page = Page::parse(child(op, M, "IndexedPageFolderView"));
    let Some(mb) = ctx.mailbox.as_deref().and_then(|m| st.mailbox(m)) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    for r in elements(parents) {
        let parent = match resolve(mb, r) {
            Ok(id) => id,
            Err(code) => {
                out.error(code, "");
                continue;
            }
        };
        let mut found: Vec<&Folder> = if soft_deleted {
            Vec::new()
        } else {
            mb.descendants(&parent, deep)
                .iter()
                .filter_map(|id| mb.folders.get(id))
                .collect()
        };
        found.sort_by_key(|f| f.created_seq);
        if let Some(r) = &restriction {
            found.retain(|f| {
                restriction::matches(r, &|p: &Prop| match p {
                    Prop::Field(n) if n == "DisplayName" => vec![f.display_name.clone()],
                    Prop::Field(n) if n == "FolderClass" => vec![f.folder_class.clone()],
                    _ => Vec::new(),
                })
            })
        }
        let (offset, slice, last) = page.apply(&found);
        let mut x = Xml::new();
        x.open(
            "m:RootFolder",
            &[
                ("IndexedPagingOffset", &(offset + slice.len()).to_string()),
                ("TotalItemsInView", &found.len().to_string()),
                ("IncludesLastItemInRange", &last.to_string()),
            ],
        );
        x.open("t:Folders", &[]);
        for f in slice {
            render_folder(&mut x, mb, f, &shape);
        }
        out.success(&x.finish());
    }
    out.finish()
}

/// `m:IndexedPageFolderView` / `m:IndexedPageItemView`: at most `max` entries from
/// `offset`, counted from the beginning or the end.
pub(crate) struct Page {
    max: Option<usize>,
    offset: usize,
    from_end: bool,
}

impl Page {
    pub fn parse(node: Option<Node<'_, '_>>) -> Page {
        let Some(n) = node else {
            return Page {
                max: None,
                offset: 0,
                from_end: false,
            };
        };
        Page {
            max: n
                .attribute("MaxEntriesReturned")
                .and_then(|v| v.parse().ok()),
            offset: n
                .attribute("Offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            from_end: n.attribute("BasePoint") == Some("End"),
        }
    }

    /// The first index, the page, and whether it includes the last entry.
    pub fn apply<'x, X>(&self, all: &'x [X]) -> (usize, &'x [X], bool) {
        let len = all.len();
        let (start, end) = if self.from_end {
            let end = len - self.offset.min(len);
            (end.saturating_sub(self.max.unwrap_or(end)), end)
        } else {
            let start = self.offset.min(len);
            (start, self.max.map_or(len, |m| (start + m).min(len)))
        };
        (start, &all[start..end], end == len)
    }
}

/// `Id="…" ChangeKey="…"` attributes, escaped.
pub(crate) fn id_attrs(id: &str, change_key: &str) -> String {
    format!(
        "Id=\"{}\" ChangeKey=\"{}\"",
        escape_attr(id),
        escape_attr(change_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_count_from_either_end() {
        let all = [1, 2, 3, 4, 5];
        let page = |max, offset, from_end| Page {
            max,
            offset,
            from_end,
        };
        let cases = [
            (page(Some(2), 0, false), (0, vec![1, 2], false)),
            (page(Some(2), 4, false), (4, vec![5], true)),
            (page(None, 0, false), (0, vec![1, 2, 3, 4, 5], true)),
            (page(Some(2), 0, true), (3, vec![4, 5], true)),
            (page(Some(2), 2, true), (1, vec![2, 3], false)),
            (page(Some(2), 9, false), (5, vec![], true)),
        ];
        for (p, (start, items, last)) in cases {
            let (s, slice, l) = p.apply(&all);
            assert_eq!((s, slice.to_vec(), l), (start, items, last));
        }
    }
}

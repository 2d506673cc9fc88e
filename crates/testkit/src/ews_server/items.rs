//! GetItem, MoveItem, DeleteItem and FindItem: one response message per item id.
//!
//! ```xml
//! <m:GetItem>
//!   <m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent>
//!     <t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/>
//!       <t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="…" PropertyType="String"/>
//!     </t:AdditionalProperties></m:ItemShape>
//!   <m:ItemIds><t:ItemId Id="…"/></m:ItemIds>
//! </m:GetItem>
//! → <m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
//!     <m:Items><t:Message><t:MimeContent CharacterSet="UTF-8">base64</t:MimeContent>
//!       <t:ItemId Id="…" ChangeKey="…"/><t:Subject>…</t:Subject>
//!       <t:ExtendedProperty><t:ExtendedFieldURI …/><t:Value>…</t:Value></t:ExtendedProperty>
//!     </t:Message></m:Items>
//!   (unknown id: ResponseClass="Error", ErrorItemNotFound, <m:Items/>;
//!    not an id of this server: ErrorInvalidIdMalformed)
//! <m:MoveItem><m:ToFolderId>…</m:ToFolderId><m:ItemIds>…</m:ItemIds></m:MoveItem>
//! → <m:Items><t:Message><t:ItemId Id="new id" ChangeKey="…"/></t:Message></m:Items>
//! <m:DeleteItem DeleteType="HardDelete|SoftDelete|MoveToDeletedItems"><m:ItemIds>…</m:ItemIds></m:DeleteItem>
//! <m:FindItem Traversal="Shallow"> m:ItemShape, m:IndexedPageItemView?, m:Restriction?, m:ParentFolderIds
//! → <m:RootFolder IndexedPagingOffset="…" TotalItemsInView="…" IncludesLastItemInRange="…">
//!     <t:Items>…</t:Items></m:RootFolder>   (newest first)
//! ```

use roxmltree::Node;

use super::fields::{Prop, Shape, render_item};
use super::folders::{Page, first_ref, id_attrs, resolve};
use super::restriction;
use super::series::{self, Occurrence, is_occurrence_id};
use super::service::Ctx;
use super::soap::{Answer, Responses, fault};
use super::state::{Item, Mailbox, State, id_is_well_formed};
use super::xml::{M, T, Xml, child, elements, is, text_of};

/// What an item id names: a stored item (an exception too), or an occurrence of a
/// series that is not modified.
pub(crate) enum Target<'m> {
    Stored(&'m Item),
    Occurrence(Occurrence),
}

/// The item a `t:ItemId` or `t:OccurrenceItemId` names, or the response code.
pub(crate) fn find_target<'m>(
    mb: &'m Mailbox,
    node: Node<'_, '_>,
) -> Result<Target<'m>, &'static str> {
    if !is_occurrence_id(node) {
        return find(mb, node).map(Target::Stored);
    }
    let o = series::resolve(mb, node)?;
    if series::is_deleted(mb, &o) {
        return Err("ErrorCalendarOccurrenceIsDeletedFromRecurrence");
    }
    Ok(match series::exception_of(mb, &o) {
        Some(ex) => Target::Stored(ex),
        None => Target::Occurrence(o),
    })
}

/// The item an `t:ItemId` names, or the response code.
pub(crate) fn find<'m>(mb: &'m Mailbox, node: Node<'_, '_>) -> Result<&'m Item, &'static str> {
    if !is(node, T, "ItemId") {
        // RecurringMasterItemId is not emulated (nor occurrences where only a
        // t:ItemId is taken: MoveItem).
        return Err("ErrorInvalidOperation");
    }
    let id = node.attribute("Id").unwrap_or("").trim();
    if !id_is_well_formed(id) {
        return Err("ErrorInvalidIdMalformed");
    }
    mb.items.get(id).ok_or("ErrorItemNotFound")
}

fn schema(operation: &str, needs: &str) -> Answer {
    fault(
        "ErrorSchemaValidation",
        &format!("The request failed schema validation: {operation} needs {needs}."),
        &[],
    )
}

pub(crate) fn get_item(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("GetItem");
    let Some(ids) = child(op, M, "ItemIds") else {
        return schema("GetItem", "ItemIds");
    };
    let shape = Shape::parse(child(op, M, "ItemShape"));
    let Some(mb) = ctx.mailbox.as_deref().and_then(|m| st.mailbox(m)) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    for r in elements(ids) {
        let found = find_target(mb, r).and_then(|t| match t {
            Target::Stored(item) => Ok(item.clone()),
            Target::Occurrence(o) => mb
                .items
                .get(&o.master_id)
                .map(|master| series::occurrence_item(master, &o))
                .ok_or("ErrorItemNotFound"),
        });
        match found {
            Ok(item) => {
                let mut x = Xml::new();
                x.open("m:Items", &[]);
                render_item(&mut x, mb, &item, &shape);
                out.success(&x.finish());
            }
            Err(code) => out.error(code, "<m:Items/>"),
        }
    }
    out.finish()
}

pub(crate) fn move_item(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("MoveItem");
    let (Some(to), Some(ids)) = (
        child(op, M, "ToFolderId").and_then(first_ref),
        child(op, M, "ItemIds"),
    ) else {
        return schema("MoveItem", "ToFolderId and ItemIds");
    };
    let Some(mailbox) = ctx.mailbox.clone().filter(|m| st.mailbox(m).is_some()) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    for r in elements(ids) {
        let Some(mb) = st.mailbox(&mailbox) else {
            break;
        };
        let dest = match resolve(mb, to) {
            Ok(d) => d,
            Err("ErrorFolderNotFound") => {
                out.error("ErrorToFolderNotFound", "<m:Items/>");
                continue;
            }
            Err(code) => {
                out.error(code, "<m:Items/>");
                continue;
            }
        };
        let id = match find(mb, r) {
            Ok(item) => item.id.clone(),
            Err(code) => {
                out.error(code, "<m:Items/>");
                continue;
            }
        };
        match st.move_item(&mailbox, &id, &dest) {
            Some(new_id) => {
                let Some(item) = st.mailbox(&mailbox).and_then(|mb| mb.items.get(&new_id)) else {
                    continue;
                };
                let element = item.kind.element();
                out.success(&format!(
                    "<m:Items><t:{element}><t:ItemId {}/></t:{element}></m:Items>",
                    id_attrs(&item.id, &item.change_key)
                ));
            }
            None => out.error("ErrorItemNotFound", "<m:Items/>"),
        }
    }
    out.finish()
}

pub(crate) fn delete_item(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("DeleteItem");
    let Some(ids) = child(op, M, "ItemIds") else {
        return schema("DeleteItem", "ItemIds");
    };
    let delete_type = op.attribute("DeleteType").unwrap_or("");
    if !matches!(
        delete_type,
        "HardDelete" | "SoftDelete" | "MoveToDeletedItems"
    ) {
        return schema(
            "DeleteItem",
            "DeleteType HardDelete, SoftDelete or MoveToDeletedItems",
        );
    }
    let Some(mailbox) = ctx.mailbox.clone().filter(|m| st.mailbox(m).is_some()) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    for r in elements(ids) {
        let Some(mb) = st.mailbox(&mailbox) else {
            break;
        };
        let (id, folder) = match find_target(mb, r) {
            Ok(Target::Occurrence(o)) => {
                series::delete_occurrence(st, &mailbox, &o);
                out.success("");
                continue;
            }
            Ok(Target::Stored(item)) => {
                // Deleting an exception deletes its occurrence.
                if let Some(o) = series::exception_occurrence(mb, &item.id) {
                    series::delete_occurrence(st, &mailbox, &o);
                    out.success("");
                    continue;
                }
                (item.id.clone(), item.folder_id.clone())
            }
            Err(code) => {
                out.error(code, "");
                continue;
            }
        };
        let trash = mb.well_known("deleteditems").unwrap_or_default();
        // An item already in Deleted Items is deleted (soft) by MoveToDeletedItems;
        // a master's occurrences go with it.
        if delete_type == "MoveToDeletedItems" && folder != trash {
            if let Some(new_id) = st.move_item(&mailbox, &id, &trash) {
                series::rekey(st, &mailbox, &id, &new_id);
            }
        } else {
            series::drop_series(st, &mailbox, &id);
            st.remove_item(&mailbox, &id);
        }
        out.success("");
    }
    out.finish()
}

pub(crate) fn find_item(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("FindItem");
    let Some(parents) = child(op, M, "ParentFolderIds") else {
        return schema("FindItem", "ParentFolderIds");
    };
    let shape = Shape::parse(child(op, M, "ItemShape"));
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
    let page = Page::parse(child(op, M, "IndexedPageItemView"));
    let Some(mb) = ctx.mailbox.as_deref().and_then(|m| st.mailbox(m)) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    for r in elements(parents) {
        let folder = match resolve(mb, r) {
            Ok(id) => id,
            Err(code) => {
                out.error(code, "");
                continue;
            }
        };
        let mut found: Vec<&Item> = mb
            .items
            .values()
            .filter(|i| i.folder_id == folder)
            .collect();
        found.sort_by_key(|i| std::cmp::Reverse(i.created_seq));
        if let Some(r) = &restriction {
            found.retain(|item| restriction::matches(r, &|p: &Prop| values(item, p)));
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
        x.open("t:Items", &[]);
        for item in slice {
            render_item(&mut x, mb, item, &shape);
        }
        out.success(&x.finish());
    }
    out.finish()
}

/// The values of a property for restrictions: the text of a field (each `t:String`
/// of a list), an extended property's value(s).
fn values(item: &Item, p: &Prop) -> Vec<String> {
    match p {
        Prop::Field(name) if name == "Categories" => item.categories(),
        Prop::Field(name) if name == "ItemClass" && !item.fields.contains_key("ItemClass") => {
            vec![item.kind.item_class().to_owned()]
        }
        Prop::Field(name) => item.field_text(name).into_iter().collect(),
        Prop::Extended(key, _) => item
            .extended
            .iter()
            .filter(|e| &e.key == key)
            .filter_map(|e| {
                let wrapped = super::xml::wrap_fragment(&e.value_xml);
                let doc = roxmltree::Document::parse(&wrapped).ok()?;
                Some(text_of(doc.root_element()))
            })
            .collect(),
        Prop::Indexed(..) => Vec::new(),
    }
}

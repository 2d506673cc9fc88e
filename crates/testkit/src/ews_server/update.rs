//! UpdateItem: `SetItemField`, `AppendToItemField` and `DeleteItemField` of
//! properties (`t:FieldURI`), contact dictionary members (`t:IndexedFieldURI`) and
//! extended properties (`t:ExtendedFieldURI`), all of one item change applied or
//! none, under the ChangeKey check of `ConflictResolution`.
//!
//! ```xml
//! <m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="NeverOverwrite">
//!   <m:ItemChanges><t:ItemChange>
//!     <t:ItemId Id="…" ChangeKey="…"/>
//!     <t:Updates>
//!       <t:SetItemField><t:FieldURI FieldURI="item:Categories"/>
//!         <t:Message><t:Categories><t:String>Tracked</t:String></t:Categories></t:Message>
//!       </t:SetItemField>
//!       <t:SetItemField>
//!         <t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="…" PropertyType="String"/>
//!         <t:Message><t:ExtendedProperty><t:ExtendedFieldURI …/><t:Value>…</t:Value></t:ExtendedProperty></t:Message>
//!       </t:SetItemField>
//!       <t:DeleteItemField><t:FieldURI FieldURI="calendar:Recurrence"/></t:DeleteItemField>
//!     </t:Updates>
//!   </t:ItemChange></m:ItemChanges>
//! </m:UpdateItem>
//! → <m:UpdateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
//!     <m:Items><t:Message><t:ItemId Id="…" ChangeKey="new"/></t:Message></m:Items>
//!     <m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>
//! ```
//!
//! A ChangeKey that is not the item's current one is ErrorIrresolvableConflict with
//! `NeverOverwrite` and with `AutoResolve` (Exchange's AutoResolve may instead merge
//! changes to different properties; this server is stricter), and is ignored with
//! `AlwaysOverwrite`; an ItemId without ChangeKey is not checked. Setting a
//! computed property is ErrorInvalidPropertySet, deleting one
//! ErrorInvalidPropertyDelete; an update whose item element lacks the property is
//! ErrorIncorrectUpdatePropertyCount.

use std::collections::BTreeMap;

use roxmltree::Node;

use super::create::set_item_type;
use super::fields::{
    append_to, extended_key, field_element, indexed_element, merge_entries, parse_extended,
    remove_entry,
};
use super::folders::id_attrs;
use super::items::{Target, find_target};
use super::schema::is_read_only;
use super::series;
use super::service::Ctx;
use super::soap::{Answer, Responses, fault};
use super::state::{Event, Extended, ItemKind, State};
use super::xml::{M, T, child, children, elements, is, serialize};

pub(crate) fn update_item(ctx: &Ctx<'_>, st: &mut State, op: Node<'_, '_>) -> Answer {
    let mut out = Responses::new("UpdateItem");
    let mode = op.attribute("ConflictResolution").unwrap_or("");
    let Some(changes) = child(op, M, "ItemChanges")
        .filter(|_| matches!(mode, "AutoResolve" | "NeverOverwrite" | "AlwaysOverwrite"))
    else {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: UpdateItem needs ConflictResolution and ItemChanges.",
            &[],
        );
    };
    let Some(mailbox) = ctx.mailbox.clone().filter(|m| st.mailbox(m).is_some()) else {
        out.error("ErrorMissingEmailAddress", "");
        return out.finish();
    };
    for change in children(changes, T, "ItemChange") {
        let Some(mb) = st.mailbox(&mailbox) else {
            break;
        };
        let Some(id_node) = elements(change).find(|c| !is(*c, T, "Updates")) else {
            out.error("ErrorInvalidRequest", "<m:Items/>");
            continue;
        };
        let target = match find_target(mb, id_node) {
            Ok(t) => t,
            Err(code) => {
                out.error(code, "<m:Items/>");
                continue;
            }
        };
        // An occurrence not yet modified starts as the master at its times.
        let (item_id, change_key, mut fields, mut extended, kind, occurrence) = match target {
            Target::Stored(item) => (
                Some(item.id.clone()),
                item.change_key.clone(),
                item.fields.clone(),
                item.extended.clone(),
                item.kind,
                series::exception_occurrence(mb, &item.id),
            ),
            Target::Occurrence(o) => {
                let Some(master) = mb.items.get(&o.master_id) else {
                    out.error("ErrorItemNotFound", "<m:Items/>");
                    continue;
                };
                (
                    None,
                    master.change_key.clone(),
                    series::occurrence_fields(master, &o, "Exception"),
                    master.extended.clone(),
                    ItemKind::CalendarItem,
                    Some(o),
                )
            }
        };
        if let Some(ck) = id_node.attribute("ChangeKey")
            && ck != change_key
            && mode != "AlwaysOverwrite"
        {
            out.error("ErrorIrresolvableConflict", "<m:Items/>");
            continue;
        }
        let mut touched: Vec<String> = Vec::new();
        let mut failed = None;
        for u in child(change, T, "Updates").into_iter().flat_map(elements) {
            match apply(u, &mut fields, &mut extended) {
                Ok(name) => touched.push(name),
                Err(code) => {
                    failed = Some(code);
                    break;
                }
            }
        }
        if let Some(code) = failed {
            out.error(code, "<m:Items/>");
            continue;
        }
        if kind == ItemKind::CalendarItem {
            set_item_type(&mut fields);
        }
        let event = if !touched.is_empty() && touched.iter().all(|n| n == "IsRead") {
            Event::ReadFlag
        } else {
            Event::Content
        };
        let id = match (item_id, &occurrence) {
            (Some(id), _) => {
                if let Some(item) = st
                    .mailbox_mut(&mailbox)
                    .and_then(|mb| mb.items.get_mut(&id))
                {
                    item.fields = fields;
                    item.extended = extended;
                }
                id
            }
            (None, Some(o)) => {
                let Some(id) = series::create_exception(st, &mailbox, o, fields) else {
                    out.error("ErrorItemNotFound", "<m:Items/>");
                    continue;
                };
                if let Some(item) = st
                    .mailbox_mut(&mailbox)
                    .and_then(|mb| mb.items.get_mut(&id))
                {
                    item.extended = extended;
                }
                id
            }
            (None, None) => continue,
        };
        // A change to an occurrence changes its master.
        if let Some(o) = &occurrence {
            st.touch(&mailbox, &o.master_id, Event::Content);
        }
        let ck = st.touch(&mailbox, &id, event).unwrap_or_default();
        let element = kind.element();
        out.success(&format!(
            "<m:Items><t:{element}><t:ItemId {}/></t:{element}></m:Items>\
             <m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>",
            id_attrs(&id, &ck)
        ));
    }
    out.finish()
}

/// Applies one update; returns the property it touched, or the response code.
fn apply(
    update: Node<'_, '_>,
    fields: &mut BTreeMap<String, String>,
    extended: &mut Vec<Extended>,
) -> Result<String, &'static str> {
    let action = update.tag_name().name();
    let path = elements(update)
        .find(|c| {
            is(*c, T, "FieldURI") || is(*c, T, "IndexedFieldURI") || is(*c, T, "ExtendedFieldURI")
        })
        .ok_or("ErrorInvalidRequest")?;
    // The item element that carries the new value (`t:Message`, `t:CalendarItem`, ...).
    let carrier = elements(update).find(|c| *c != path);
    let value_of = |name: &str| {
        carrier
            .and_then(|c| child(c, T, name))
            .ok_or("ErrorIncorrectUpdatePropertyCount")
    };
    let uri = path.attribute("FieldURI").unwrap_or("");
    match (action, path.tag_name().name()) {
        ("SetItemField", "FieldURI") => {
            let name = field_element(uri);
            if is_read_only(&name) {
                return Err("ErrorInvalidPropertySet");
            }
            fields.insert(name.clone(), serialize(value_of(&name)?));
            Ok(name)
        }
        ("AppendToItemField", "FieldURI") => {
            let name = field_element(uri);
            if is_read_only(&name) {
                return Err("ErrorInvalidPropertySet");
            }
            let merged = append_to(fields.get(&name).map(String::as_str), value_of(&name)?);
            fields.insert(name.clone(), merged);
            Ok(name)
        }
        ("DeleteItemField", "FieldURI") => {
            let name = field_element(uri);
            if is_read_only(&name) {
                return Err("ErrorInvalidPropertyDelete");
            }
            fields.remove(&name);
            Ok(name)
        }
        ("SetItemField", "IndexedFieldURI") => {
            let (dict, _) = indexed_element(uri).ok_or("ErrorInvalidRequest")?;
            let merged = merge_entries(fields.get(dict).map(String::as_str), value_of(dict)?);
            fields.insert(dict.to_owned(), merged);
            Ok(dict.to_owned())
        }
        ("DeleteItemField", "IndexedFieldURI") => {
            let (dict, member) = indexed_element(uri).ok_or("ErrorInvalidRequest")?;
            let key = path.attribute("FieldIndex").unwrap_or("");
            if let Some(current) = fields.get(dict) {
                match remove_entry(current, key, member.as_deref()) {
                    Some(rest) => fields.insert(dict.to_owned(), rest),
                    None => fields.remove(dict),
                };
            }
            Ok(dict.to_owned())
        }
        ("SetItemField", "ExtendedFieldURI") => {
            let e = parse_extended(value_of("ExtendedProperty")?)?;
            if e.key != extended_key(path) {
                return Err("ErrorIncorrectUpdatePropertyCount");
            }
            match extended.iter_mut().find(|x| x.key == e.key) {
                Some(slot) => *slot = e,
                None => extended.push(e),
            }
            Ok("ExtendedProperty".into())
        }
        ("DeleteItemField", "ExtendedFieldURI") => {
            let key = extended_key(path);
            extended.retain(|x| x.key != key);
            Ok("ExtendedProperty".into())
        }
        _ => Err("ErrorInvalidRequest"),
    }
}

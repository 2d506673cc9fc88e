//! Calendar items: single appointments, recurring masters with their pattern
//! (`Recurrence`, as the Graph connector's [`PatternedRecurrence`]), their
//! modified and deleted occurrences, and occurrences themselves (by
//! [`ItemRef::Occurrence`]). Times are UTC instants both ways; the meeting's
//! zone is its Windows zone id (`StartTimeZone`/`EndTimeZone`), which Exchange
//! uses to expand the series and which the engine maps to IANA (an all-day
//! event starts at midnight in that zone, as a UTC instant). The organizer is
//! the mailbox; attendees are written without sending invitations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use roxmltree::Node;

use super::act::{ActKind, Common, EwsVersioned, update_common, write_common};
use super::client::EwsClient;
use super::errors::EwsError;
use super::model::{DistinguishedFolder, FolderRef, ItemId, ItemRef};
use super::properties::update_request;
use super::recurrence;
use super::xml::{
    XmlWriter, boolean, child, children, date_time, elements, format_date_time, text,
};
use crate::graph::act::recurrence::PatternedRecurrence;

/// A person as EWS names one (`t:Mailbox`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailAddress {
    pub name: Option<String>,
    pub email: String,
}

/// An attendee and the answer Exchange recorded (`Unknown`, `Organizer`,
/// `Tentative`, `Accept`, `Decline`, `NoResponseReceived`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attendee {
    pub mailbox: EmailAddress,
    pub response: Option<String>,
}

/// What a calendar item is in its series (`CalendarItemType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarItemType {
    Single,
    Occurrence,
    Exception,
    RecurringMaster,
}

/// A modified occurrence of a series, as its master lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifiedOccurrence {
    /// The exception's own id (read it with [`EwsClient::get_calendar_items`]).
    pub id: ItemId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Where the pattern put it: the occurrence's recurrence id.
    pub original_start: DateTime<Utc>,
}

/// A calendar item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarItem {
    /// The iCalendar UID (`calendar:UID`); Exchange makes one when none is given.
    pub uid: Option<String>,
    pub subject: String,
    /// Plain text.
    pub body: Option<String>,
    pub location: Option<String>,
    pub categories: Vec<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub is_all_day: bool,
    /// Windows zone ids (`W. Europe Standard Time`).
    pub start_time_zone: Option<String>,
    pub end_time_zone: Option<String>,
    /// `Free`, `Tentative`, `Busy`, `OOF`, `WorkingElsewhere`, `NoData`.
    pub free_busy: Option<String>,
    /// Read only.
    pub is_cancelled: bool,
    /// Read only: the mailbox that organizes it.
    pub organizer: Option<EmailAddress>,
    pub required_attendees: Vec<Attendee>,
    pub optional_attendees: Vec<Attendee>,
    pub recurrence: Option<PatternedRecurrence>,
    /// Read only.
    pub item_type: Option<CalendarItemType>,
    /// Read only (on a recurring master).
    pub modified_occurrences: Vec<ModifiedOccurrence>,
    /// Read only (on a recurring master): the original starts of the deleted ones.
    pub deleted_occurrences: Vec<DateTime<Utc>>,
    /// `PublicStrings` String properties, by name.
    pub properties: BTreeMap<String, String>,
}

impl CalendarItem {
    /// An appointment with only what every one has.
    pub fn new(
        subject: impl Into<String>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> CalendarItem {
        CalendarItem {
            uid: None,
            subject: subject.into(),
            body: None,
            location: None,
            categories: Vec::new(),
            start,
            end,
            is_all_day: false,
            start_time_zone: None,
            end_time_zone: None,
            free_busy: None,
            is_cancelled: false,
            organizer: None,
            required_attendees: Vec::new(),
            optional_attendees: Vec::new(),
            recurrence: None,
            item_type: None,
            modified_occurrences: Vec::new(),
            deleted_occurrences: Vec::new(),
            properties: BTreeMap::new(),
        }
    }
}

fn read_mailbox(node: Node<'_, '_>) -> Option<EmailAddress> {
    let mailbox = child(node, "Mailbox")?;
    Some(EmailAddress {
        name: text(mailbox, "Name"),
        email: text(mailbox, "EmailAddress")?,
    })
}

fn read_attendees(item: Node<'_, '_>, local: &str) -> Vec<Attendee> {
    child(item, local)
        .map(|list| {
            children(list, "Attendee")
                .filter_map(|a| {
                    Some(Attendee {
                        mailbox: read_mailbox(a)?,
                        response: text(a, "ResponseType"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_attendees(w: &mut XmlWriter, name: &str, attendees: &[Attendee]) {
    w.open(name, &[]);
    for a in attendees {
        w.open("t:Attendee", &[]).open("t:Mailbox", &[]);
        if let Some(n) = &a.mailbox.name {
            w.leaf("t:Name", n);
        }
        w.leaf("t:EmailAddress", &a.mailbox.email)
            .close("t:Mailbox")
            .close("t:Attendee");
    }
    w.close(name);
}

impl ActKind for CalendarItem {
    const NOUN: &'static str = "appointment";
    const FIELDS: &'static [&'static str] = &[
        "calendar:UID",
        "calendar:Start",
        "calendar:End",
        "calendar:IsAllDayEvent",
        "calendar:LegacyFreeBusyStatus",
        "calendar:Location",
        "calendar:IsCancelled",
        "calendar:CalendarItemType",
        "calendar:Organizer",
        "calendar:RequiredAttendees",
        "calendar:OptionalAttendees",
        "calendar:Recurrence",
        "calendar:ModifiedOccurrences",
        "calendar:DeletedOccurrences",
        "calendar:StartTimeZone",
        "calendar:EndTimeZone",
    ];

    fn read(item: Node<'_, '_>) -> Result<CalendarItem, String> {
        let common = Common::read(item);
        let start = date_time(item, "Start").ok_or("it has no Start")?;
        let end = date_time(item, "End").ok_or("it has no End")?;
        let recurrence = recurrence::read_child(item)
            .transpose()
            .map_err(|e| format!("its recurrence cannot be read: {e}"))?;
        let item_type = match text(item, "CalendarItemType").as_deref() {
            Some("Single") => Some(CalendarItemType::Single),
            Some("Occurrence") => Some(CalendarItemType::Occurrence),
            Some("Exception") => Some(CalendarItemType::Exception),
            Some("RecurringMaster") => Some(CalendarItemType::RecurringMaster),
            _ => None,
        };
        let modified_occurrences = child(item, "ModifiedOccurrences")
            .map(|list| {
                elements(list)
                    .filter_map(|o| {
                        Some(ModifiedOccurrence {
                            id: ItemId::read(o)?,
                            start: date_time(o, "Start")?,
                            end: date_time(o, "End")?,
                            original_start: date_time(o, "OriginalStart")?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let deleted_occurrences = child(item, "DeletedOccurrences")
            .map(|list| {
                elements(list)
                    .filter_map(|o| date_time(o, "Start"))
                    .collect()
            })
            .unwrap_or_default();
        Ok(CalendarItem {
            uid: text(item, "UID"),
            subject: common.subject,
            body: common.body,
            location: text(item, "Location"),
            categories: common.categories,
            start,
            end,
            is_all_day: boolean(item, "IsAllDayEvent").unwrap_or(false),
            start_time_zone: child(item, "StartTimeZone")
                .and_then(|z| z.attribute("Id"))
                .map(str::to_owned),
            end_time_zone: child(item, "EndTimeZone")
                .and_then(|z| z.attribute("Id"))
                .map(str::to_owned),
            free_busy: text(item, "LegacyFreeBusyStatus"),
            is_cancelled: boolean(item, "IsCancelled").unwrap_or(false),
            organizer: child(item, "Organizer").and_then(read_mailbox),
            required_attendees: read_attendees(item, "RequiredAttendees"),
            optional_attendees: read_attendees(item, "OptionalAttendees"),
            recurrence,
            item_type,
            modified_occurrences,
            deleted_occurrences,
            properties: common.properties,
        })
    }
}

/// The `t:CalendarItem` of a creation, in schema order.
///
/// # Errors
/// A recurrence EWS cannot hold, in words.
pub(crate) fn write_item(item: &CalendarItem) -> Result<String, String> {
    let mut w = XmlWriter::new();
    w.open("t:CalendarItem", &[]);
    write_common(
        &mut w,
        &item.subject,
        item.body.as_deref(),
        &item.categories,
        None,
        &item.properties,
    );
    if let Some(uid) = &item.uid {
        w.leaf("t:UID", uid);
    }
    w.leaf("t:Start", &format_date_time(item.start))
        .leaf("t:End", &format_date_time(item.end))
        .leaf(
            "t:IsAllDayEvent",
            if item.is_all_day { "true" } else { "false" },
        );
    if let Some(status) = &item.free_busy {
        w.leaf("t:LegacyFreeBusyStatus", status);
    }
    if let Some(location) = &item.location {
        w.leaf("t:Location", location);
    }
    if !item.required_attendees.is_empty() {
        write_attendees(&mut w, "t:RequiredAttendees", &item.required_attendees);
    }
    if !item.optional_attendees.is_empty() {
        write_attendees(&mut w, "t:OptionalAttendees", &item.optional_attendees);
    }
    if let Some(r) = &item.recurrence {
        recurrence::write(&mut w, r).map_err(|e| e.to_string())?;
    }
    if let Some(zone) = &item.start_time_zone {
        w.empty("t:StartTimeZone", &[("Id", zone)]);
    }
    if let Some(zone) = item
        .end_time_zone
        .as_ref()
        .or(item.start_time_zone.as_ref())
    {
        w.empty("t:EndTimeZone", &[("Id", zone)]);
    }
    w.close("t:CalendarItem");
    Ok(w.finish())
}

/// The `UpdateItem` that makes the item at `target` what `item` says. An
/// occurrence keeps its series' UID, pattern and zones.
///
/// # Errors
/// A recurrence EWS cannot hold, in words.
pub(crate) fn update_item_request(
    target: &ItemRef,
    change_key: Option<&str>,
    item: &CalendarItem,
) -> Result<String, String> {
    let recurrence_xml = match &item.recurrence {
        Some(r) => {
            let mut w = XmlWriter::new();
            recurrence::write(&mut w, r).map_err(|e| e.to_string())?;
            Some(w.finish())
        }
        None => None,
    };
    let occurrence = matches!(target, ItemRef::Occurrence { .. });
    Ok(update_request(
        target,
        change_key,
        change_key.is_some(),
        "t:CalendarItem",
        |u| {
            update_common(
                u,
                &item.subject,
                item.body.as_deref(),
                &item.categories,
                &item.properties,
            );
            u.set("calendar:Start", |w| {
                w.leaf("t:Start", &format_date_time(item.start));
            });
            u.set("calendar:End", |w| {
                w.leaf("t:End", &format_date_time(item.end));
            });
            u.set("calendar:IsAllDayEvent", |w| {
                w.leaf(
                    "t:IsAllDayEvent",
                    if item.is_all_day { "true" } else { "false" },
                );
            });
            if let Some(status) = &item.free_busy {
                u.set("calendar:LegacyFreeBusyStatus", |w| {
                    w.leaf("t:LegacyFreeBusyStatus", status);
                });
            }
            u.text("calendar:Location", "t:Location", item.location.as_deref());
            for (uri, name, list) in [
                (
                    "calendar:RequiredAttendees",
                    "t:RequiredAttendees",
                    &item.required_attendees,
                ),
                (
                    "calendar:OptionalAttendees",
                    "t:OptionalAttendees",
                    &item.optional_attendees,
                ),
            ] {
                if list.is_empty() {
                    u.delete(uri);
                } else {
                    u.set(uri, |w| write_attendees(w, name, list));
                }
            }
            if occurrence {
                return;
            }
            match &recurrence_xml {
                Some(xml) => u.set("calendar:Recurrence", |w| {
                    w.raw(xml);
                }),
                None => u.delete("calendar:Recurrence"),
            }
            if let Some(zone) = &item.start_time_zone {
                u.set("calendar:StartTimeZone", |w| {
                    w.empty("t:StartTimeZone", &[("Id", zone)]);
                });
            }
            if let Some(zone) = item
                .end_time_zone
                .as_ref()
                .or(item.start_time_zone.as_ref())
            {
                u.set("calendar:EndTimeZone", |w| {
                    w.empty("t:EndTimeZone", &[("Id", zone)]);
                });
            }
        },
    ))
}

fn unwritable(why: String, client: &EwsClient) -> EwsError {
    EwsError::Failed(crate::errors::error(
        mailbridge_domain::error_model::ErrorClass::Permanent,
        mailbridge_domain::error_model::ErrorScope::Item,
        format!(
            "the appointment cannot be written to the mailbox {}: {why}",
            client.mailbox()
        ),
        "Change the appointment's recurrence to one Outlook offers (daily, weekly, monthly or yearly), then it is synchronized again",
    ))
}

impl EwsClient {
    /// Calendar items (masters, singles, occurrences, exceptions) by reference,
    /// in the order asked, each with the `PublicStrings` properties `properties`.
    ///
    /// # Errors
    /// When the request as a whole failed; per item, in the list.
    pub async fn get_calendar_items(
        &self,
        refs: &[ItemRef],
        properties: &[&str],
    ) -> Result<Vec<Result<EwsVersioned<CalendarItem>, EwsError>>, EwsError> {
        self.get_act::<CalendarItem>(refs, properties).await
    }

    /// Creates a calendar item in `folder` (the default calendar when `None`),
    /// inviting nobody; returns its id.
    ///
    /// # Errors
    /// Classified; a recurrence EWS cannot hold is an item-level error.
    pub async fn create_calendar_item(
        &self,
        folder: Option<&FolderRef>,
        item: &CalendarItem,
    ) -> Result<ItemId, EwsError> {
        let xml = write_item(item).map_err(|why| unwritable(why, self))?;
        let calendar = FolderRef::Distinguished(DistinguishedFolder::Calendar);
        self.create_act(folder.unwrap_or(&calendar), &xml, CalendarItem::NOUN)
            .await
    }

    /// Makes the item (or occurrence) at `target` what `item` says, provided it
    /// is still at `change_key` (else [`EwsError::Conflict`]); returns the new
    /// id and change key. Nobody is informed.
    ///
    /// # Errors
    /// Classified.
    pub async fn update_calendar_item(
        &self,
        target: &ItemRef,
        change_key: Option<&str>,
        item: &CalendarItem,
    ) -> Result<ItemId, EwsError> {
        let body =
            update_item_request(target, change_key, item).map_err(|why| unwritable(why, self))?;
        self.update_act(&body, target, CalendarItem::NOUN).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    /// A recurring master as `GetItem` returns it (the shapes of the
    /// CalendarItem, ModifiedOccurrences and DeletedOccurrences references).
    const MASTER: &str = r#"<t:CalendarItem xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <t:ItemId Id="AAMkMASTER" ChangeKey="DwAAABYA"/>
  <t:Subject>Weekly sync</t:Subject>
  <t:Body BodyType="Text">Agenda &amp; notes</t:Body>
  <t:Categories><t:String>Tracked</t:String></t:Categories>
  <t:ExtendedProperty>
    <t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="MailbridgeLink" PropertyType="String"/>
    <t:Value>appt-42</t:Value>
  </t:ExtendedProperty>
  <t:UID>040000008200E00074C5B7101A82E0080000000</t:UID>
  <t:Start>2026-01-05T08:00:00Z</t:Start>
  <t:End>2026-01-05T08:30:00Z</t:End>
  <t:IsAllDayEvent>false</t:IsAllDayEvent>
  <t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>
  <t:Location>Room 1</t:Location>
  <t:IsCancelled>false</t:IsCancelled>
  <t:CalendarItemType>RecurringMaster</t:CalendarItemType>
  <t:Organizer><t:Mailbox><t:Name>Bob</t:Name><t:EmailAddress>bob@contoso.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox></t:Organizer>
  <t:RequiredAttendees>
    <t:Attendee><t:Mailbox><t:Name>Alice</t:Name><t:EmailAddress>alice@contoso.com</t:EmailAddress></t:Mailbox><t:ResponseType>Accept</t:ResponseType></t:Attendee>
  </t:RequiredAttendees>
  <t:Recurrence>
    <t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek></t:WeeklyRecurrence>
    <t:NumberedRecurrence><t:StartDate>2026-01-05+01:00</t:StartDate><t:NumberOfOccurrences>10</t:NumberOfOccurrences></t:NumberedRecurrence>
  </t:Recurrence>
  <t:ModifiedOccurrences>
    <t:Occurrence>
      <t:ItemId Id="AAMkEXC" ChangeKey="DwAAABYB"/>
      <t:Start>2026-01-12T09:00:00Z</t:Start>
      <t:End>2026-01-12T09:30:00Z</t:End>
      <t:OriginalStart>2026-01-12T08:00:00Z</t:OriginalStart>
    </t:Occurrence>
  </t:ModifiedOccurrences>
  <t:DeletedOccurrences>
    <t:DeletedOccurrence><t:Start>2026-01-19T08:00:00Z</t:Start></t:DeletedOccurrence>
  </t:DeletedOccurrences>
  <t:StartTimeZone Id="W. Europe Standard Time" Name="(UTC+01:00) Amsterdam, Berlin"><t:Periods/></t:StartTimeZone>
  <t:EndTimeZone Id="W. Europe Standard Time"/>
</t:CalendarItem>"#;

    #[test]
    fn a_recurring_master_is_read_with_its_exceptions_and_deletions() {
        let doc = roxmltree::Document::parse(MASTER).expect("xml");
        let item = CalendarItem::read(doc.root_element()).expect("reads");
        assert_eq!(item.subject, "Weekly sync");
        assert_eq!(item.body.as_deref(), Some("Agenda & notes"));
        assert_eq!(
            item.uid.as_deref(),
            Some("040000008200E00074C5B7101A82E0080000000")
        );
        assert_eq!(item.start, at("2026-01-05T08:00:00Z"));
        assert_eq!(item.item_type, Some(CalendarItemType::RecurringMaster));
        assert_eq!(
            item.start_time_zone.as_deref(),
            Some("W. Europe Standard Time")
        );
        assert_eq!(
            item.organizer.as_ref().map(|o| o.email.as_str()),
            Some("bob@contoso.com")
        );
        assert_eq!(
            item.required_attendees[0].response.as_deref(),
            Some("Accept")
        );
        let r = item.recurrence.as_ref().expect("a recurrence");
        assert_eq!(
            (r.pattern.kind.as_str(), r.range.number_of_occurrences),
            ("weekly", 10)
        );
        assert_eq!(
            item.modified_occurrences,
            vec![ModifiedOccurrence {
                id: ItemId::new("AAMkEXC", Some("DwAAABYB".to_owned())),
                start: at("2026-01-12T09:00:00Z"),
                end: at("2026-01-12T09:30:00Z"),
                original_start: at("2026-01-12T08:00:00Z"),
            }]
        );
        assert_eq!(item.deleted_occurrences, vec![at("2026-01-19T08:00:00Z")]);
        assert_eq!(
            item.properties.get("MailbridgeLink").map(String::as_str),
            Some("appt-42")
        );
    }

    #[test]
    fn an_item_without_times_or_with_an_unknown_pattern_is_refused_alone() {
        let doc = roxmltree::Document::parse(
            r#"<t:CalendarItem xmlns:t="t"><t:Subject>x</t:Subject></t:CalendarItem>"#,
        )
        .expect("xml");
        assert!(CalendarItem::read(doc.root_element()).is_err());
    }

    #[test]
    fn creation_writes_the_fields_in_schema_order() {
        let doc = roxmltree::Document::parse(MASTER).expect("xml");
        let mut item = CalendarItem::read(doc.root_element()).expect("reads");
        item.optional_attendees.push(Attendee {
            mailbox: EmailAddress {
                name: None,
                email: "carol@contoso.com".to_owned(),
            },
            response: None,
        });
        let xml = write_item(&item).expect("writes");
        let order = [
            "<t:Subject>",
            "<t:Body",
            "<t:Categories>",
            "<t:ExtendedProperty>",
            "<t:UID>",
            "<t:Start>",
            "<t:End>",
            "<t:IsAllDayEvent>",
            "<t:LegacyFreeBusyStatus>",
            "<t:Location>",
            "<t:RequiredAttendees>",
            "<t:OptionalAttendees>",
            "<t:Recurrence>",
            "<t:StartTimeZone",
            "<t:EndTimeZone",
        ];
        let positions: Vec<_> = order
            .iter()
            .map(|n| xml.find(n).unwrap_or_else(|| panic!("{n} in {xml}")))
            .collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{xml}");
        assert!(
            !xml.contains("ModifiedOccurrences") && !xml.contains("Organizer"),
            "read-only fields are not written"
        );
        assert!(xml.contains("<t:StartTimeZone Id=\"W. Europe Standard Time\"/>"));
        // What is written reads back the same.
        let text = xml.replace(
            "<t:CalendarItem>",
            "<t:CalendarItem xmlns:t=\"t\"><t:ItemId Id=\"X\"/>",
        );
        let back = roxmltree::Document::parse(&text).expect("xml");
        let again = CalendarItem::read(back.root_element()).expect("reads");
        assert_eq!(
            (again.start, again.end, &again.recurrence),
            (item.start, item.end, &item.recurrence)
        );
    }

    #[test]
    fn updates_are_guarded_and_occurrences_keep_their_series_fields() {
        let mut item = CalendarItem::new(
            "Moved",
            at("2026-01-12T09:00:00Z"),
            at("2026-01-12T09:30:00Z"),
        );
        item.start_time_zone = Some("W. Europe Standard Time".to_owned());
        let master = update_item_request(
            &ItemRef::Item(ItemId::new("AAMkM", None)),
            Some("DwA"),
            &item,
        )
        .expect("writes");
        assert!(master.starts_with("<m:UpdateItem ConflictResolution=\"NeverOverwrite\""));
        assert!(master.contains(
            "<t:DeleteItemField><t:FieldURI FieldURI=\"calendar:Recurrence\"/></t:DeleteItemField>"
        ));
        assert!(master.contains(
            "<t:DeleteItemField><t:FieldURI FieldURI=\"calendar:Location\"/></t:DeleteItemField>"
        ));
        assert!(master.contains("<t:SetItemField><t:FieldURI FieldURI=\"calendar:Start\"/><t:CalendarItem><t:Start>2026-01-12T09:00:00Z</t:Start></t:CalendarItem></t:SetItemField>"));
        assert!(master.contains("calendar:EndTimeZone"));
        let occurrence = update_item_request(
            &ItemRef::Occurrence {
                master_id: "AAMkM".to_owned(),
                instance_index: 2,
            },
            Some("DwA"),
            &item,
        )
        .expect("writes");
        assert!(
            !occurrence.contains("calendar:Recurrence") && !occurrence.contains("TimeZone"),
            "{occurrence}"
        );
        let unguarded =
            update_item_request(&ItemRef::Item(ItemId::new("AAMkM", None)), None, &item)
                .expect("writes");
        assert!(unguarded.starts_with("<m:UpdateItem ConflictResolution=\"AutoResolve\""));
    }
}

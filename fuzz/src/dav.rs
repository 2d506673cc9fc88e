//! The DAV connector's iCalendar and vCard readers on arbitrary text; what they
//! read is written back and must read again.

use mailbridge_connectors::dav::{CalendarResource, Contact};

/// Reads `data` as iCalendar; a resource read must write an object that reads.
pub fn ical(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(resource) = CalendarResource::parse(text) else {
        return;
    };
    let _ = resource.uid();
    if let Ok(ics) = resource.to_ics() {
        let again = CalendarResource::parse(&ics);
        assert!(again.is_ok(), "{again:?} reading back {ics:?}");
    }
}

/// Reads `data` as a vCard; a card read must write a card that reads.
pub fn vcard(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(contact) = Contact::parse(text) else {
        return;
    };
    let vcf = contact.to_vcf();
    let again = Contact::parse(&vcf);
    assert!(again.is_ok(), "{again:?} reading back {vcf:?}");
}

use super::*;
use chrono::TimeZone;

fn mailbox() -> Mailbox {
    let settings = EmailSettings {
        default_profile_id: Some("p1".into()),
        ..Default::default()
    };
    let owner = MailboxOwner {
        org_id: "o1".into(),
        owner_type: OwnerType::User,
        owner_id: "u1".into(),
        name: "Alice".into(),
        email: Some("alice@example.org".into()),
    };
    new_mailbox("m1".into(), owner, &settings, Utc::now())
}

#[test]
fn new_mailboxes_take_the_organization_defaults() {
    let m = mailbox();
    assert_eq!(m.profile_id.as_deref(), Some("p1"));
    assert_eq!(m.incoming_method, DeliveryMethod::ServerSideSync);
    assert_eq!(m.outgoing_method, DeliveryMethod::ServerSideSync);
    assert_eq!(m.act_method, DeliveryMethod::None);
    assert_eq!(m.approval_status, ApprovalStatus::Pending);
    assert_eq!(
        (m.incoming_status, m.outgoing_status, m.act_status),
        (
            WorkloadStatus::NotRun,
            WorkloadStatus::NotRun,
            WorkloadStatus::NotRun
        )
    );
    assert!(!m.incoming_enabled);
    assert_eq!(approval_for_address(None), ApprovalStatus::Empty);
}

#[test]
fn a_changed_workload_must_be_tested_again() {
    let mut m = mailbox();
    m.incoming_status = WorkloadStatus::Success;
    m.outgoing_status = WorkloadStatus::Success;
    m.incoming_enabled = true;
    m.outgoing_enabled = true;
    m.apply_delivery_change(&DeliveryChange {
        outgoing_method: Some(DeliveryMethod::None),
        incoming_method: Some(DeliveryMethod::ServerSideSync),
        ..Default::default()
    });
    assert_eq!(
        m.incoming_status,
        WorkloadStatus::Success,
        "unchanged method keeps its status"
    );
    assert!(m.incoming_enabled);
    assert_eq!(m.outgoing_status, WorkloadStatus::NotRun);
    assert!(!m.outgoing_enabled);

    m.apply_delivery_change(&DeliveryChange {
        profile_id: Some(Some("p2".into())),
        ..Default::default()
    });
    assert_eq!(
        m.incoming_status,
        WorkloadStatus::NotRun,
        "a new profile resets every workload"
    );
    assert!(!m.incoming_enabled);
}

#[test]
fn a_new_address_needs_approval_again() {
    let mut m = mailbox();
    m.approval_status = ApprovalStatus::Approved;
    m.set_email_address(Some("alice@example.org".into()));
    assert_eq!(
        m.approval_status,
        ApprovalStatus::Approved,
        "same address keeps approval"
    );
    m.set_email_address(Some("alice@contoso.com".into()));
    assert_eq!(m.approval_status, ApprovalStatus::Pending);
    m.set_email_address(None);
    assert_eq!(m.approval_status, ApprovalStatus::Empty);
}

#[test]
fn process_email_from_not_before_the_profile() {
    let mut m = mailbox();
    let profile = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    m.process_email_from = Some(Utc.with_ymd_and_hms(2025, 12, 31, 0, 0, 0).unwrap());
    let errors = validate_mailbox(&m, Some(profile));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "process_email_from");
    m.process_email_from = Some(profile);
    assert!(validate_mailbox(&m, Some(profile)).is_empty());
    m.email_address = Some("not an address".into());
    assert_eq!(validate_mailbox(&m, None)[0].field, "email_address");
}

#[test]
fn discovered_locations_are_forgotten_with_their_profile_or_address() {
    let discovered = |m: &mut Mailbox| {
        m.discovered_incoming_location = Some("imaps://mail.example.org:993".into());
        m.discovered_outgoing_location = Some("smtps://mail.example.org:465".into());
        m.discovered_source = Some(crate::DiscoverySource::Srv);
        m.discovered_at = Some(Utc::now());
    };
    type Change = fn(&mut Mailbox);
    let cases: [(&str, Change, bool); 4] = [
        (
            "same profile",
            |m| {
                m.apply_delivery_change(&DeliveryChange {
                    profile_id: Some(Some("p1".into())),
                    ..Default::default()
                })
            },
            true,
        ),
        (
            "new profile",
            |m| {
                m.apply_delivery_change(&DeliveryChange {
                    profile_id: Some(Some("p2".into())),
                    ..Default::default()
                })
            },
            false,
        ),
        (
            "same address",
            |m| m.set_email_address(Some("alice@example.org".into())),
            true,
        ),
        (
            "new address",
            |m| m.set_email_address(Some("alice@contoso.com".into())),
            false,
        ),
    ];
    for (name, change, kept) in cases {
        let mut m = mailbox();
        discovered(&mut m);
        change(&mut m);
        assert_eq!(m.discovered_incoming_location.is_some(), kept, "{name}");
        assert_eq!(m.discovered_at.is_some(), kept, "{name}");
    }
}

//! Who may do what. The HTTP surface asks [`access`] before every operation; the
//! organization boundary itself (a token of one organization sees nothing of
//! another) is enforced before this, by scoping every query to the token's
//! organization.

use crate::Role;

/// Whoever a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The system administrator: manages organizations and acts in any of them.
    SystemAdmin,
    /// A user of one organization, with their role.
    Member {
        org_id: String,
        user_id: String,
        role: Role,
    },
}

/// The kinds of resource the API exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Organizations,
    Users,
    Queues,
    Parties,
    Profiles,
    Mailboxes,
    Activities,
    Alerts,
    Jobs,
    EmailSettings,
    Tokens,
    /// Webhook subscriptions and their delivery log: administrators only.
    Webhooks,
    /// Certificates for server-to-server authentication: administrators only.
    Certificates,
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    /// Approve mailbox addresses (a dedicated privilege).
    Approve,
}

/// The answer: allowed, allowed only for the principal's own records (their own
/// mailbox; alerts addressed to them), or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    OwnOnly,
    Denied,
}

/// The permission matrix. `role` is `None` for the system administrator.
pub fn access(role: Option<Role>, resource: Resource, action: Action) -> Access {
    use Access::*;
    use Action::*;
    use Resource::*;
    if action == Approve {
        // Approval is a privilege of its own: administrators do not have it.
        return if role == Some(Role::Approver) && resource == Mailboxes {
            Allowed
        } else {
            Denied
        };
    }
    let Some(role) = role else {
        return Allowed;
    };
    match (role, resource, action) {
        (_, Organizations, Create | Delete) => Denied,
        (Role::OrgAdmin, Organizations, _) => OwnOnly,
        (Role::OrgAdmin, _, _) => Allowed,
        (_, Organizations, Read) => OwnOnly,
        (_, Users | Queues, Read) => Allowed,
        (_, Parties | Activities, Read | Create | Update) => Allowed,
        (_, EmailSettings, Read) => Allowed,
        (Role::Approver, Mailboxes, Read) => Allowed,
        (_, Mailboxes, Read | Update) => OwnOnly,
        (_, Alerts, Read) => OwnOnly,
        _ => Denied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Access::*;
    use Action::*;
    use Resource::*;

    #[test]
    fn matrix() {
        let admin = Some(Role::OrgAdmin);
        let approver = Some(Role::Approver);
        let user = Some(Role::User);
        let cases = [
            (None, Organizations, Create, Allowed),
            (None, Mailboxes, Approve, Denied),
            (None, Profiles, Update, Allowed),
            (admin, Organizations, Create, Denied),
            (admin, Organizations, Read, OwnOnly),
            (admin, Organizations, Update, OwnOnly),
            (admin, Profiles, Create, Allowed),
            (admin, Mailboxes, Update, Allowed),
            (admin, Mailboxes, Approve, Denied),
            (admin, Tokens, Create, Allowed),
            (approver, Mailboxes, Approve, Allowed),
            (approver, Mailboxes, Read, Allowed),
            (approver, Mailboxes, Update, OwnOnly),
            (approver, Profiles, Read, Denied),
            (user, Mailboxes, Approve, Denied),
            (user, Mailboxes, Read, OwnOnly),
            (user, Mailboxes, Update, OwnOnly),
            (user, Profiles, Read, Denied),
            (user, Profiles, Create, Denied),
            (user, Users, Read, Allowed),
            (user, Users, Create, Denied),
            (user, Parties, Create, Allowed),
            (user, Parties, Delete, Denied),
            (user, Activities, Update, Allowed),
            (user, Alerts, Read, OwnOnly),
            (user, Jobs, Read, Denied),
            (user, EmailSettings, Read, Allowed),
            (user, EmailSettings, Update, Denied),
            (user, Tokens, Create, Denied),
            (user, Organizations, Read, OwnOnly),
            (None, Webhooks, Create, Allowed),
            (admin, Webhooks, Create, Allowed),
            (admin, Webhooks, Delete, Allowed),
            (approver, Webhooks, Read, Denied),
            (user, Webhooks, Read, Denied),
            (user, Webhooks, Update, Denied),
            (None, Certificates, Create, Allowed),
            (admin, Certificates, Create, Allowed),
            (admin, Certificates, Read, Allowed),
            (admin, Certificates, Delete, Allowed),
            (approver, Certificates, Read, Denied),
            (user, Certificates, Read, Denied),
            (user, Certificates, Create, Denied),
        ];
        for (role, resource, action, expected) in cases {
            assert_eq!(
                access(role, resource, action),
                expected,
                "{role:?} {resource:?} {action:?}"
            );
        }
    }
}

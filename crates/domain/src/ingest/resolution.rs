//! Address resolution: an address matches users, queues, contacts, accounts and
//! leads, in that priority when several match.

use crate::PartyType;

/// A record whose address equals the one being resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub party_type: PartyType,
    pub id: String,
}

fn rank(t: PartyType) -> u8 {
    match t {
        PartyType::User => 0,
        PartyType::Queue => 1,
        PartyType::Contact => 2,
        PartyType::Account => 3,
        PartyType::Lead => 4,
    }
}

/// The record an address resolves to: the highest-priority candidate, and among
/// equals the oldest (ids are time-ordered), so the answer does not depend on the
/// order the store returned them in.
pub fn resolve_address(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates.iter().min_by(|a, b| {
        rank(a.party_type)
            .cmp(&rank(b.party_type))
            .then_with(|| a.id.cmp(&b.id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(t: PartyType, id: &str) -> Candidate {
        Candidate {
            party_type: t,
            id: id.into(),
        }
    }

    #[test]
    fn priority_then_age() {
        let cases: Vec<(Vec<Candidate>, Option<&str>)> = vec![
            (vec![], None),
            (
                vec![c(PartyType::Lead, "1"), c(PartyType::Contact, "2")],
                Some("2"),
            ),
            (
                vec![
                    c(PartyType::Contact, "9"),
                    c(PartyType::User, "8"),
                    c(PartyType::Queue, "1"),
                ],
                Some("8"),
            ),
            (
                vec![c(PartyType::Account, "5"), c(PartyType::Account, "3")],
                Some("3"),
            ),
        ];
        for (cands, expected) in cases {
            assert_eq!(resolve_address(&cands).map(|c| c.id.as_str()), expected);
        }
    }
}

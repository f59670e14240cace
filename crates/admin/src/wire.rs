//! The admin API's canonical JSON: hush's own model, not any provider's
//! view of it (docs/api/admin.md, "Shapes").

use std::collections::HashMap;

use hush_model::{Actor, Group, GroupId, JournalEntry, Kind, Origin, Recorded, Scope, Suppression};
use serde_json::{Value, json};

/// What the JSON names a group by, for a suppression's scope.
pub type GroupNames = HashMap<GroupId, (String, String)>;

pub fn groups_by_id(groups: &[Group]) -> GroupNames {
    groups
        .iter()
        .map(|g| (g.id, (g.key.as_str().to_owned(), g.name.clone())))
        .collect()
}

fn origin(origin: Origin) -> &'static str {
    match origin {
        Origin::Recipient => "recipient",
        Origin::Customer => "customer",
        Origin::Admin => "admin",
    }
}

pub fn suppression(s: &Suppression, groups: &GroupNames) -> Value {
    let (kind, class, status, reason, source) = match &s.kind {
        Kind::Bounce {
            class,
            status,
            reason,
        } => (
            "bounce",
            Some(class.as_str()),
            status.clone(),
            reason.clone(),
            None,
        ),
        Kind::Invalid { reason } => ("invalid", None, None, reason.clone(), None),
        Kind::SpamComplaint { source } => ("spam_complaint", None, None, None, source.clone()),
        Kind::Unsubscribe => ("unsubscribe", None, None, None, None),
        Kind::Manual => ("manual", None, None, None, None),
    };
    let scope = match s.scope {
        Scope::Global => json!({"type": "global"}),
        Scope::Group(id) => {
            // A group deleted since has no key or name left to show.
            let (key, name) = groups
                .get(&id)
                .map_or((None, None), |(k, n)| (Some(k.as_str()), Some(n.as_str())));
            json!({"type": "group", "id": id.0, "key": key, "name": name})
        }
    };
    json!({
        "id": s.id.0,
        "email": s.email.as_str(),
        "kind": kind,
        "class": class,
        "status": status,
        "reason": reason,
        "source": source,
        "scope": scope,
        "origin": origin(s.origin),
        "created_at": s.created_at.to_rfc3339_nanos(),
    })
}

pub fn group(g: &Group) -> Value {
    json!({
        "id": g.id.0,
        "key": g.key.as_str(),
        "name": g.name,
        "description": g.description,
        "is_default": g.is_default,
        "stream_type": g.stream_type.as_str(),
        "unsubscribe_handling": g.unsubscribe_handling.as_str(),
        "archived_at": g.archived_at.map(|t| t.to_rfc3339_nanos()),
        "created_at": g.created_at.to_rfc3339_nanos(),
        "updated_at": g.updated_at.map(|t| t.to_rfc3339_nanos()),
    })
}

fn actor(a: &Actor) -> Value {
    json!({
        "door": a.door.as_str(),
        "key": a.key,
        "request_id": a.request_id,
        "event_id": a.event_id,
    })
}

pub fn entry(e: &JournalEntry, groups: &GroupNames) -> Value {
    let mut item = json!({
        "position": e.position.0,
        "at": e.at.to_rfc3339_nanos(),
        "op": e.operation.as_str(),
        "actor": actor(&e.actor),
    });
    match &e.record {
        Recorded::Suppression(s) => item["suppression"] = suppression(s, groups),
        Recorded::Group { group: g, before } => {
            item["group"] = group(g);
            if let Some(before) = before {
                item["before"] = group(before);
            }
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use hush_model::{
        BounceClass, Door, Email, GroupKey, Operation, Position, StreamType, SuppressionId,
        TenantId, Timestamp, UnsubscribeHandling,
    };

    use super::*;

    #[test]
    fn an_entry_shows_everything_a_restore_needs() {
        let tenant = TenantId::parse("acme").expect("tenant");
        let news = Group {
            id: GroupId(7),
            tenant: tenant.clone(),
            key: GroupKey::parse("news").expect("key"),
            name: "News".into(),
            description: String::new(),
            is_default: false,
            stream_type: StreamType::Broadcasts,
            unsubscribe_handling: UnsubscribeHandling::Postmark,
            archived_at: None,
            created_at: Timestamp::from_nanos(1),
            updated_at: None,
        };
        let entry = JournalEntry {
            position: Position(42),
            tenant: tenant.clone(),
            at: Timestamp::from_nanos(1_764_979_200_000_000_001),
            operation: Operation::Removed,
            actor: Actor::new(Door::V3).with_key("v3#1").with_request_id("r-1"),
            record: Recorded::Suppression(Suppression {
                id: SuppressionId(9),
                tenant,
                email: Email::parse("a@x.com").expect("email"),
                scope: Scope::Group(news.id),
                kind: Kind::Bounce {
                    class: BounceClass::Hard,
                    status: Some("5.1.1".into()),
                    reason: Some("unknown user".into()),
                },
                origin: Origin::Recipient,
                created_at: Timestamp::from_nanos(1_764_979_200_123_456_789),
            }),
        };
        let shown = super::entry(&entry, &groups_by_id(&[news]));
        assert_eq!(
            shown,
            json!({
                "position": 42,
                "at": "2025-12-06T00:00:00.000000001Z",
                "op": "removed",
                "actor": {"door": "v3", "key": "v3#1", "request_id": "r-1", "event_id": null},
                "suppression": {
                    "id": 9, "email": "a@x.com", "kind": "bounce", "class": "hard",
                    "status": "5.1.1", "reason": "unknown user", "source": null,
                    "scope": {"type": "group", "id": 7, "key": "news", "name": "News"},
                    "origin": "recipient",
                    "created_at": "2025-12-06T00:00:00.123456789Z"
                }
            })
        );
    }
}

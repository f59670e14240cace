//! `/message-streams` (Postmark API docs, "Message Streams API"): message
//! streams are canonical groups, the stream `ID` being the group's key and
//! `Name` its name (docs/api/postmark.md, "Message streams").

use actix_web::{HttpRequest, HttpResponse, web};
use hush_engine::{Engine, GROUP_DESCRIPTION_MAX, GROUP_NAME_MAX, GroupSpec};
use hush_model::{
    DEFAULT_STREAM_KEY, Group, GroupChanges, GroupKey, GroupKeyError, StreamType, TenantId,
    UnsubscribeHandling,
};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::auth::PostmarkServer;
use crate::error::StreamRule;
use crate::extract::{QueryPairs, RawBody};
use crate::wire::{
    ArchivedStream, MessageStream, MessageStreamChanges, MessageStreams, NewMessageStream,
    SubscriptionManagement, purge_date,
};
use crate::{PostmarkError, PostmarkState};

/// "A Server may have up to 10 Streams, including the default ones"
/// (Postmark API docs, "Message Streams API").
pub const MAX_STREAMS: usize = 10;

/// Postmark's `ServerID` for a tenant: a stable positive integer, the first
/// 31 bits of the SHA-256 of the tenant id. hush has no server numbers of
/// its own; this one is the same on every instance and every restart.
pub fn server_id(tenant: &TenantId) -> i64 {
    let digest = Sha256::digest(tenant.as_str().as_bytes());
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    i64::from(bits.max(1))
}

/// The group behind a stream ID of a path, or 1226. An ID that is not a
/// valid key cannot name a stream, so it is not found either.
pub async fn stream_group(
    engine: &Engine,
    tenant: &TenantId,
    raw: &str,
) -> Result<Group, PostmarkError> {
    let key = GroupKey::parse(raw).map_err(|_| PostmarkError::StreamNotFound)?;
    engine
        .group_by_key(tenant, &key)
        .await?
        .ok_or(PostmarkError::StreamNotFound)
}

fn shown(group: &Group, tenant: &TenantId) -> MessageStream {
    MessageStream::from_group(group, server_id(tenant))
}

/// A JSON body for the stream calls; an empty one is `{}` (postmark.js
/// sends `{}`, the Python clients nothing: docs/api/postmark.md,
/// "Conventions").
fn json_body<T: DeserializeOwned + Default>(body: &RawBody) -> Result<T, PostmarkError> {
    if body.is_blank() {
        return Ok(T::default());
    }
    serde_json::from_slice(&body.0).map_err(|err| PostmarkError::InvalidJson(err.to_string()))
}

/// `GET /message-streams`: `MessageStreamType` (`All` by default) and
/// `IncludeArchivedStreams` (false by default), both case-insensitive.
pub async fn list(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    req: HttpRequest,
) -> Result<HttpResponse, PostmarkError> {
    let query = QueryPairs::from_request(&req);
    let wanted = match query.get("MessageStreamType") {
        None => None,
        Some(raw) if raw.eq_ignore_ascii_case("all") => None,
        Some(raw) => Some(stream_type(raw)?),
    };
    let archived = query.boolean("IncludeArchivedStreams")?.unwrap_or(false);
    let streams: Vec<MessageStream> = state
        .engine
        .groups(&server.tenant)
        .await?
        .iter()
        .filter(|g| wanted.is_none_or(|t| g.stream_type == t))
        .filter(|g| archived || g.archived_at.is_none())
        .map(|g| shown(g, &server.tenant))
        .collect();
    Ok(HttpResponse::Ok().json(MessageStreams {
        total_count: streams.len(),
        message_streams: streams,
    }))
}

/// `GET /message-streams/{id}`, archived streams included.
pub async fn get(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PostmarkError> {
    let group = stream_group(&state.engine, &server.tenant, &id).await?;
    Ok(HttpResponse::Ok().json(shown(&group, &server.tenant)))
}

/// `POST /message-streams`.
pub async fn create(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    body: RawBody,
) -> Result<HttpResponse, PostmarkError> {
    let request: NewMessageStream = json_body(&body)?;
    let key = stream_key(request.id.as_deref())?;
    let name = stream_name(request.name.as_deref())?;
    let kind = new_stream_type(request.message_stream_type.as_deref())?;
    let description = request.description.unwrap_or_default();
    check_description(&description)?;
    let handling = request
        .subscription_management_configuration
        .as_ref()
        .map(unsubscribe_handling)
        .transpose()?;
    check_handling(kind, handling)?;
    let existing = state.engine.groups(&server.tenant).await?;
    // A taken ID (1230) is checked before the limit (1225): a create
    // repeated after its answer was lost must read as "exists", whatever the
    // count; the upstream client recognises a repeat by 1230.
    if existing.iter().any(|g| g.key == key) {
        return Err(PostmarkError::id_taken(key.as_str()));
    }
    check_room(&existing)?;
    let group = state
        .engine
        .create_group(
            &server.tenant,
            GroupSpec {
                key: Some(key),
                name,
                description,
                is_default: false,
                stream_type: kind,
                unsubscribe_handling: handling,
            },
            &server.actor,
        )
        .await?;
    Ok(HttpResponse::Ok().json(shown(&group, &server.tenant)))
}

/// `PATCH /message-streams/{id}`: `Name`, `Description` and the
/// unsubscribe handling; the ID and type never change (Postmark's edit takes
/// neither: Postmark API docs, "Message Streams API").
pub async fn edit(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    id: web::Path<String>,
    body: RawBody,
) -> Result<HttpResponse, PostmarkError> {
    let request: MessageStreamChanges = json_body(&body)?;
    let group = stream_group(&state.engine, &server.tenant, &id).await?;
    let name = request
        .name
        .as_deref()
        .map(|n| stream_name(Some(n)))
        .transpose()?;
    if let Some(description) = &request.description {
        check_description(description)?;
    }
    let handling = request
        .subscription_management_configuration
        .as_ref()
        .map(unsubscribe_handling)
        .transpose()?;
    // The type never changes, so a Broadcasts stream keeps its unsubscribe
    // management (Postmark API docs, "Message Streams API").
    check_handling(group.stream_type, handling)?;
    let changes = GroupChanges {
        name,
        description: request.description,
        unsubscribe_handling: handling,
        ..GroupChanges::default()
    };
    let group = state
        .engine
        .update_group(&server.tenant, group.id, changes, &server.actor)
        .await?;
    Ok(HttpResponse::Ok().json(shown(&group, &server.tenant)))
}

/// `POST /message-streams/{id}/archive`. The default transactional stream
/// and inbound streams stay (code 1229). Archiving twice keeps the first
/// date.
pub async fn archive(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    id: web::Path<String>,
    _body: RawBody,
) -> Result<HttpResponse, PostmarkError> {
    let group = stream_group(&state.engine, &server.tenant, &id).await?;
    if group.key.as_str() == DEFAULT_STREAM_KEY || group.stream_type == StreamType::Inbound {
        return Err(PostmarkError::stream(
            StreamRule::DefaultStreamArchive,
            "You cannot archive the default transactional and inbound streams.",
        ));
    }
    let archived_at = match group.archived_at {
        Some(at) => at,
        None => {
            let changes = GroupChanges {
                archived_at: Some(Some(Engine::now())),
                ..GroupChanges::default()
            };
            state
                .engine
                .update_group(&server.tenant, group.id, changes, &server.actor)
                .await?
                .archived_at
                .ok_or(PostmarkError::Internal)?
        }
    };
    Ok(HttpResponse::Ok().json(ArchivedStream {
        id: group.key.as_str().to_owned(),
        server_id: server_id(&server.tenant),
        expected_purge_date: purge_date(archived_at),
    }))
}

/// `POST /message-streams/{id}/unarchive`: the stream with `ArchivedAt`
/// null. hush never purges, so every archived stream can come back, while
/// there is room: an archived stream does not count towards Postmark's
/// limit of 10, so unarchiving one is refused with 1225 when 10 others are
/// unarchived, as creating one would be. Unarchiving a stream that is not
/// archived changes nothing and is always answered.
pub async fn unarchive(
    server: PostmarkServer,
    state: web::Data<PostmarkState>,
    id: web::Path<String>,
    _body: RawBody,
) -> Result<HttpResponse, PostmarkError> {
    let mut group = stream_group(&state.engine, &server.tenant, &id).await?;
    if group.archived_at.is_some() {
        check_room(&state.engine.groups(&server.tenant).await?)?;
        let changes = GroupChanges {
            archived_at: Some(None),
            ..GroupChanges::default()
        };
        group = state
            .engine
            .update_group(&server.tenant, group.id, changes, &server.actor)
            .await?;
    }
    Ok(HttpResponse::Ok().json(shown(&group, &server.tenant)))
}

/// A new stream's ID, each rule with its own code (Postmark API docs, "API
/// overview", error codes).
fn stream_key(raw: Option<&str>) -> Result<GroupKey, PostmarkError> {
    let raw = raw.unwrap_or_default();
    GroupKey::parse(raw).map_err(|err| {
        let rule = match err {
            GroupKeyError::Empty => StreamRule::IdRequired,
            GroupKeyError::TooLong(_) | GroupKeyError::Syntax(_) => StreamRule::IdFormat,
            GroupKeyError::ReservedPrefix(_) => StreamRule::PmPrefix,
            GroupKeyError::Reserved => StreamRule::IdReserved,
        };
        let message = match rule {
            StreamRule::IdRequired => "A valid 'ID' must be provided.".to_owned(),
            _ => format!("The 'ID' is invalid: {err}."),
        };
        PostmarkError::stream(rule, message)
    })
}

fn stream_name(raw: Option<&str>) -> Result<String, PostmarkError> {
    let name = raw.unwrap_or_default().trim();
    if name.is_empty() {
        return Err(PostmarkError::stream(
            StreamRule::NameRequired,
            "A valid 'Name' must be provided.",
        ));
    }
    if name.chars().count() > GROUP_NAME_MAX {
        return Err(PostmarkError::stream(
            StreamRule::NameTooLong,
            format!("The 'Name' must be at most {GROUP_NAME_MAX} characters."),
        ));
    }
    Ok(name.to_owned())
}

fn check_description(description: &str) -> Result<(), PostmarkError> {
    if description.chars().count() > GROUP_DESCRIPTION_MAX {
        return Err(PostmarkError::stream(
            StreamRule::DescriptionTooLong,
            format!("The 'Description' must be at most {GROUP_DESCRIPTION_MAX} characters."),
        ));
    }
    if description.contains(['<', '>']) {
        return Err(PostmarkError::stream(
            StreamRule::DescriptionHtml,
            "The 'Description' must not contain HTML.",
        ));
    }
    Ok(())
}

/// Whether another unarchived stream fits: "A Server may have up to 10
/// Streams, including the default ones" (Postmark API docs, "Message Streams
/// API"; code 1225).
/// Archived streams do not count, so archiving one makes room.
fn check_room(groups: &[Group]) -> Result<(), PostmarkError> {
    if groups.iter().filter(|g| g.archived_at.is_none()).count() >= MAX_STREAMS {
        return Err(PostmarkError::stream(
            StreamRule::TooManyStreams,
            format!(
                "The maximum number of message streams ({MAX_STREAMS}) has been reached; archived streams do not count."
            ),
        ));
    }
    Ok(())
}

/// The `MessageStreamType` of the list filter: any of the three (Postmark
/// API docs, "Message Streams API").
fn stream_type(raw: &str) -> Result<StreamType, PostmarkError> {
    StreamType::parse(raw).ok_or_else(|| {
        PostmarkError::stream(
            StreamRule::InvalidType,
            format!(
                "The 'MessageStreamType' {raw:?} is invalid: use All, Transactional, Broadcasts or Inbound."
            ),
        )
    })
}

/// A new stream's type: `Transactional` or `Broadcasts` only (Postmark API
/// docs, "Message Streams API", create). A server's one Inbound stream comes
/// with it, so `Inbound` is as invalid here as a missing or unknown type,
/// with the same code (1221) and the same text.
fn new_stream_type(raw: Option<&str>) -> Result<StreamType, PostmarkError> {
    match raw.and_then(StreamType::parse) {
        Some(kind @ (StreamType::Transactional | StreamType::Broadcasts)) => Ok(kind),
        _ => {
            let got = raw.map_or_else(|| "none was given".to_owned(), |raw| format!("got {raw:?}"));
            Err(PostmarkError::stream(
                StreamRule::InvalidType,
                format!(
                    "A valid 'MessageStreamType' must be provided: Transactional or Broadcasts ({got})."
                ),
            ))
        }
    }
}

/// "Broadcasts require unsubscribe management" (Postmark API docs, "Message
/// Streams API"): a Broadcasts stream may not be given `None` (code 1239,
/// "handling type unsupported for this stream type").
fn check_handling(
    kind: StreamType,
    handling: Option<UnsubscribeHandling>,
) -> Result<(), PostmarkError> {
    if kind == StreamType::Broadcasts && handling == Some(UnsubscribeHandling::None) {
        return Err(PostmarkError::stream(
            StreamRule::HandlingUnsupported,
            "Broadcasts streams require unsubscribe management: the 'UnsubscribeHandlingType' must be Postmark or Custom.",
        ));
    }
    Ok(())
}

fn unsubscribe_handling(
    config: &SubscriptionManagement,
) -> Result<UnsubscribeHandling, PostmarkError> {
    let raw = config.unsubscribe_handling_type.as_str();
    UnsubscribeHandling::parse(raw).ok_or_else(|| {
        PostmarkError::stream(
            StreamRule::InvalidUnsubscribeHandling,
            format!(
                "The 'UnsubscribeHandlingType' {raw:?} is invalid: use None, Postmark or Custom."
            ),
        )
    })
}

//! `/v3/asm/suppressions/global`: the global unsubscribe list
//! (docs/api/v3.md; SendGrid API reference, "Add recipient addresses to the
//! global suppression group." and the calls beside it). Unsubscribe and
//! Manual entries of the Global scope both appear here (docs/mapping.md).

use actix_web::{HttpRequest, HttpResponse, web};
use hush_model::{Email, Kind, NewSuppression, Origin, Scope};

use crate::auth::{Read, V3Key, Write};
use crate::extract::{QueryPairs, V3Json, body_email, path_email, path_email_to_read};
use crate::listing::ListParams;
use crate::lists::{self, Unsubscribes, global_unsubscribe_kinds};
use crate::wire::{RecipientEmail, RecipientEmailList, RecipientEmails};
use crate::{Shape, V3Error, V3State};

/// Seed: `{"recipient_emails":[…],"total":N}`. SendGrid has no GET here (its
/// list is `/v3/suppression/unsubscribes`, "Retrieve all global suppressions"
/// in its API reference); for a `sendgrid`-shape key this answers the same as
/// that list.
pub async fn list(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    if key.shape == Shape::Sendgrid {
        return lists::list::<Unsubscribes>(key, state, req).await;
    }
    let params = ListParams::parse(&QueryPairs::from_request(&req))?;
    // An address with both an Unsubscribe and a Manual entry is one
    // address of the list and of its total (docs/api/v3.md).
    let filter = params
        .filter(global_unsubscribe_kinds(), Shape::Seed)?
        .one_per_address();
    let page = state
        .engine
        .list(&key.tenant, &filter, params.page())
        .await?;
    Ok(HttpResponse::Ok().json(RecipientEmailList {
        recipient_emails: page
            .items
            .into_iter()
            .map(|s| s.email.into_string())
            .collect(),
        total: page.total,
    }))
}

/// Parses every address of a `recipient_emails` body before anything is
/// stored, so one bad address stores nothing.
pub fn recipient_emails(body: &RecipientEmails) -> Result<Vec<Email>, V3Error> {
    if body.recipient_emails.is_empty() {
        return Err(V3Error::bad_request(
            "recipient_emails",
            "recipient_emails must list at least one address",
        ));
    }
    body.recipient_emails
        .iter()
        .map(|raw| body_email("recipient_emails", raw))
        .collect()
}

/// What an add answers: the seed shows the addresses as stored (trimmed,
/// lowercased, each once); SendGrid echoes the request list as sent
/// (SendGrid API reference, "Add recipient addresses to the global
/// suppression group."; sendgrid/sendgrid-csharp#182), which clients
/// compare against.
pub fn added(shape: Shape, body: RecipientEmails, emails: Vec<Email>) -> RecipientEmails {
    match shape {
        Shape::Sendgrid => body,
        Shape::Seed => {
            let mut seen = std::collections::HashSet::new();
            RecipientEmails {
                recipient_emails: emails
                    .into_iter()
                    .filter(|e| seen.insert(e.clone()))
                    .map(Email::into_string)
                    .collect(),
            }
        }
    }
}

/// Unsubscribe entries of Customer origin (docs/mapping.md, "What each API
/// creates").
pub fn unsubscribes(emails: &[Email], scope: Scope) -> Vec<NewSuppression> {
    let now = hush_engine::Engine::now();
    emails
        .iter()
        .map(|email| NewSuppression {
            email: email.clone(),
            scope,
            kind: Kind::Unsubscribe,
            origin: Origin::Customer,
            created_at: now,
        })
        .collect()
}

/// 201 with the addresses added; adding a listed address again is fine.
pub async fn add(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    V3Json(body): V3Json<RecipientEmails>,
) -> Result<HttpResponse, V3Error> {
    let emails = recipient_emails(&body)?;
    state
        .engine
        .add(
            &key.tenant,
            unsubscribes(&emails, Scope::Global),
            &key.actor,
        )
        .await?;
    Ok(HttpResponse::Created().json(added(key.shape, body, emails)))
}

async fn is_listed(
    state: &V3State,
    key: &V3Key<impl Sized>,
    email: &Email,
) -> Result<bool, V3Error> {
    let kinds = global_unsubscribe_kinds();
    Ok(state
        .engine
        .entries(&key.tenant, email)
        .await?
        .iter()
        .any(|s| s.scope == Scope::Global && kinds.contains(&s.kind)))
}

/// 200 `{"recipient_email":…}`; when absent 404 in the seed shape and
/// `200 {}` in SendGrid's, whose clients test for the key (SendGrid API
/// reference, "Retrieve a Global Suppression").
pub async fn get(
    key: V3Key<Read>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let Some(email) = path_email_to_read(&req, key.shape)? else {
        return Ok(HttpResponse::Ok().json(serde_json::json!({})));
    };
    if is_listed(&state, &key, &email).await? {
        return Ok(HttpResponse::Ok().json(RecipientEmail {
            recipient_email: email.into_string(),
        }));
    }
    match key.shape {
        Shape::Seed => Err(not_listed(&email)),
        Shape::Sendgrid => Ok(HttpResponse::Ok().json(serde_json::json!({}))),
    }
}

fn not_listed(email: &Email) -> V3Error {
    V3Error::NotFound(format!("{email} is not globally unsubscribed"))
}

/// Answers 204. When absent: 404 in the seed shape, like its GET, and 204 in
/// SendGrid's (sendgrid/docs#6194).
pub async fn delete(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let email = path_email(&req)?;
    let removed = state
        .engine
        .remove(
            &key.tenant,
            &email,
            Scope::Global,
            global_unsubscribe_kinds(),
            &key.actor,
        )
        .await?;
    if removed == 0 && key.shape == Shape::Seed {
        return Err(not_listed(&email));
    }
    Ok(HttpResponse::NoContent().finish())
}

//! `POST /v3/suppression/bounces` (docs/api/v3.md). The bounce list's
//! reads and deletes are the shared list operations in `lists.rs`.

use actix_web::{HttpResponse, web};
use hush_model::Kind;

use crate::auth::{Read, V3Key, Write};
use crate::extract::{V3Json, body_email};
use crate::lists::{add_one, optional_text};
use crate::wire::{BounceRecord, NewBounce, SendgridBounce, bounce_class, enhanced_status};
use crate::{Shape, V3Error, V3State};

/// 201 with the stored record. Adding an address that is already listed
/// returns the entry as it was stored first (docs/mapping.md, "Re-adding").
/// SendGrid has no such call (none in its API reference); for a
/// `sendgrid`-shape key it is a hush extension answering SendGrid's record.
pub async fn create(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    V3Json(body): V3Json<NewBounce>,
) -> Result<HttpResponse, V3Error> {
    let email = body_email("email", &body.email)?;
    let class = bounce_class(body.bounce_type.as_deref()).ok_or_else(|| {
        V3Error::bad_request(
            "bounce_type",
            "bounce_type must be one of hard, soft, block",
        )
    })?;
    let reason = optional_text("reason", body.reason)?;
    let status = optional_text("status", body.status)?
        .or_else(|| reason.as_deref().and_then(enhanced_status));
    let kind = Kind::Bounce {
        class,
        status,
        reason,
    };
    let stored = add_one(&state, &key.tenant, email, kind, &key.actor).await?;
    match key.shape {
        Shape::Seed => Ok(HttpResponse::Created()
            .json(BounceRecord::from_suppression(&stored).ok_or(V3Error::Internal)?)),
        Shape::Sendgrid => Ok(HttpResponse::Created()
            .json(SendgridBounce::from_suppression(&stored).ok_or(V3Error::Internal)?)),
    }
}

/// SendGrid's bounce classifications (SendGrid API reference, "Retrieve
/// bounce classification totals" and "… over time by domain stats"):
/// daily counts by SMTP failure class, which hush does not compute. A 501
/// naming the feature, after the key is checked like any read.
pub async fn classifications(_key: V3Key<Read>) -> Result<HttpResponse, V3Error> {
    Err(V3Error::NotImplemented(
        "bounce classifications (/v3/suppression/bounces/classifications) are not served by hush"
            .to_owned(),
    ))
}

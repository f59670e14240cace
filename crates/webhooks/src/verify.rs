//! Proving that a webhook's body comes from its provider, on the raw bytes,
//! before anything parses it.
//!
//! Each provider signs differently; each scheme here is the provider's own,
//! checked against the provider's published examples in the tests:
//! - SendGrid: ECDSA P-256 over the timestamp header and the raw body
//!   (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features>).
//! - Mailgun: HMAC-SHA256 of timestamp and token with the webhook signing key
//!   (<https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks>).
//! - Amazon SNS (how SES events arrive): RSA PKCS#1 v1.5 over a canonical
//!   string, with a certificate fetched from an Amazon host
//!   (<https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>).
//!
//! All cryptography and certificate parsing is RustCrypto's; nothing here
//! parses DER or compares MACs by hand.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac as _};
use p256::ecdsa::signature::DigestVerifier as _;
use p256::pkcs8::DecodePublicKey as _;
use sha2::{Digest as _, Sha256};

/// Why a delivery is refused before parsing. `Display` is a clear message
/// that is safe to return to the caller (never echo secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A header or field the scheme needs is missing; names it.
    #[error("missing {0}")]
    Missing(&'static str),
    /// Present but not well formed (bad base64, bad hex, bad DER, bad number); says which.
    #[error("malformed {0}")]
    Malformed(String),
    /// Well formed but does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The signed timestamp is further than the allowed age from now (either
    /// direction). `age_secs` is now minus the signed time: negative when the
    /// timestamp is in the future.
    #[error(
        "stale: signed {age_secs} s before now (negative: in the future), over the {max_age_secs} s allowed"
    )]
    Stale { age_secs: i64, max_age_secs: u64 },
}

/// Refuses a signed unix-seconds timestamp further than `max_age` from `now`
/// (past or future). The edge itself is accepted. A future bound matters as
/// much as a past one: a signature dated ahead would otherwise stay
/// replayable for longer than `max_age`.
pub fn check_age(
    signed_at_unix_secs: i64,
    now_unix_secs: i64,
    max_age: Duration,
) -> Result<(), Refusal> {
    let age_secs = now_unix_secs.saturating_sub(signed_at_unix_secs);
    let max_age_secs = max_age.as_secs();
    if age_secs.unsigned_abs() <= max_age_secs {
        Ok(())
    } else {
        Err(Refusal::Stale {
            age_secs,
            max_age_secs,
        })
    }
}

/// Reads a unix-seconds timestamp as SendGrid and Mailgun send it (decimal
/// digits), for [`check_age`]. `field` names it in the refusal.
pub fn unix_secs(field: &'static str, text: &str) -> Result<i64, Refusal> {
    if text.is_empty() {
        return Err(Refusal::Missing(field));
    }
    text.parse()
        .map_err(|_| Refusal::Malformed(format!("{field}: not a number of seconds")))
}

/// Standard base64 with padding, as SendGrid and SNS send signatures.
fn decode_base64(field: &'static str, text: &str) -> Result<Vec<u8>, Refusal> {
    if text.is_empty() {
        return Err(Refusal::Missing(field));
    }
    BASE64
        .decode(text)
        .map_err(|_| Refusal::Malformed(format!("{field}: not base64")))
}

/// SendGrid's Signed Event Webhook key.
#[derive(Clone, Debug)]
pub struct SendGridKey {
    key: p256::ecdsa::VerifyingKey,
}

impl SendGridKey {
    /// The header that carries the base64 DER signature.
    pub const SIGNATURE_HEADER: &'static str = "X-Twilio-Email-Event-Webhook-Signature";
    /// The header that carries the signed unix-seconds timestamp.
    pub const TIMESTAMP_HEADER: &'static str = "X-Twilio-Email-Event-Webhook-Timestamp";

    /// Parses the key as SendGrid's settings page shows it: base64 of a DER
    /// SubjectPublicKeyInfo for a P-256 key, without PEM armour. Also accepts
    /// the same wrapped in "-----BEGIN PUBLIC KEY-----" armour, and
    /// whitespace around it or inside the base64 (a key pasted into a config
    /// file is easily wrapped). Err says what is wrong, for a config error at
    /// start-up.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN") {
            p256::ecdsa::VerifyingKey::from_public_key_pem(text)
                .map_err(|e| format!("SendGrid verification key: not a P-256 public key ({e})"))?
        } else {
            let compact: String = text.split_ascii_whitespace().collect();
            let der = BASE64
                .decode(compact)
                .map_err(|e| format!("SendGrid verification key: not base64 ({e})"))?;
            p256::ecdsa::VerifyingKey::from_public_key_der(&der)
                .map_err(|e| format!("SendGrid verification key: not a P-256 public key ({e})"))?
        };
        Ok(Self { key })
    }

    /// Verifies `X-Twilio-Email-Event-Webhook-Signature` (`signature`: base64
    /// of an ASN.1 DER ECDSA signature) over the bytes of
    /// `X-Twilio-Email-Event-Webhook-Timestamp` (`timestamp`, exactly as
    /// sent) followed by the raw body, hashed with SHA-256. The timestamp is
    /// hashed as text, not as a number: SendGrid signs the header's bytes
    /// ("Verify the signature" in SendGrid's Event Webhook security guide).
    /// The body must be the bytes as received: SendGrid's payload ends in
    /// CRLF, and re-serialised or trimmed JSON no longer verifies (the
    /// published example in the tests shows it). Its age is the caller's to
    /// check ([`unix_secs`], [`check_age`]).
    pub fn verify(&self, timestamp: &str, body: &[u8], signature: &str) -> Result<(), Refusal> {
        if timestamp.is_empty() {
            return Err(Refusal::Missing(Self::TIMESTAMP_HEADER));
        }
        let der = decode_base64(Self::SIGNATURE_HEADER, signature)?;
        let signature = p256::ecdsa::Signature::from_der(&der).map_err(|_| {
            Refusal::Malformed(format!(
                "{}: not a DER ECDSA signature",
                Self::SIGNATURE_HEADER
            ))
        })?;
        // Hash the two parts in turn rather than concatenating them: the
        // body can be large and needs no copy.
        let digest = Sha256::new()
            .chain_update(timestamp.as_bytes())
            .chain_update(body);
        self.key
            .verify_digest(digest, &signature)
            .map_err(|_| Refusal::BadSignature)
    }
}

/// Mailgun: `signature` is hex of HMAC-SHA256 keyed with the webhook signing
/// key over `timestamp` followed by `token` (no separator), as Mailgun's
/// "Securing webhooks" section describes. The MAC is compared in constant
/// time by `hmac`'s `verify_slice`.
///
/// Hex case: Mailgun sends lowercase, and uppercase is accepted too. The hex
/// is decoded and the bytes are compared, so case carries no information and
/// refusing it would protect nothing.
///
/// Mailgun also advises refusing a token seen before and an old timestamp;
/// both are the caller's ([`unix_secs`], [`check_age`]), since they need state
/// and a clock.
pub fn mailgun(
    signing_key: &str,
    timestamp: &str,
    token: &str,
    signature: &str,
) -> Result<(), Refusal> {
    for (field, value) in [
        ("timestamp", timestamp),
        ("token", token),
        ("signature", signature),
    ] {
        if value.is_empty() {
            return Err(Refusal::Missing(field));
        }
    }
    let tag =
        hex::decode(signature).map_err(|_| Refusal::Malformed("signature: not hex".to_owned()))?;
    if tag.len() != 32 {
        return Err(Refusal::Malformed(
            "signature: not 64 hex digits (HMAC-SHA256)".to_owned(),
        ));
    }
    let mac = mailgun_mac(signing_key, timestamp, token)?;
    mac.verify_slice(&tag).map_err(|_| Refusal::BadSignature)
}

fn mailgun_mac(signing_key: &str, timestamp: &str, token: &str) -> Result<Hmac<Sha256>, Refusal> {
    // HMAC takes a key of any length, so this cannot fail; mapped rather
    // than unwrapped all the same, and the message names no key.
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes())
        .map_err(|_| Refusal::Malformed("Mailgun signing key".to_owned()))?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    Ok(mac)
}

/// Amazon SNS message signing
/// (<https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>).
/// SES delivers its bounce and complaint events through SNS.
pub mod sns {
    use rsa::pkcs1v15;
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::signature::Verifier as _;
    use x509_cert::der::{Decode as _, DecodePem as _, Encode as _};

    use super::{Refusal, decode_base64};

    /// The host pattern for SNS certificate and SubscribeURL hosts in
    /// Amazon's commercial regions. China's regions are
    /// `sns.*.amazonaws.com.cn`, to be allowed explicitly.
    pub const DEFAULT_HOST_PATTERN: &str = "sns.*.amazonaws.com";

    /// [`DEFAULT_HOST_PATTERN`] alone, as [`url_allowed`] takes it.
    pub fn default_patterns() -> Vec<String> {
        vec![DEFAULT_HOST_PATTERN.to_owned()]
    }

    /// The fields of an SNS HTTP(S) message body that are signed, named
    /// exactly as SNS sends them. Other fields (`MessageAttributes`) are
    /// ignored: they are not signed.
    #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
    pub struct Envelope {
        #[serde(rename = "Type")]
        pub r#type: String,
        #[serde(rename = "MessageId")]
        pub message_id: String,
        #[serde(rename = "TopicArn")]
        pub topic_arn: String,
        #[serde(rename = "Subject", default, skip_serializing_if = "Option::is_none")]
        pub subject: Option<String>,
        #[serde(rename = "Message")]
        pub message: String,
        #[serde(rename = "Timestamp")]
        pub timestamp: String,
        #[serde(rename = "SignatureVersion")]
        pub signature_version: String,
        #[serde(rename = "Signature")]
        pub signature: String,
        #[serde(rename = "SigningCertURL")]
        pub signing_cert_url: String,
        #[serde(
            rename = "SubscribeURL",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub subscribe_url: Option<String>,
        #[serde(rename = "Token", default, skip_serializing_if = "Option::is_none")]
        pub token: Option<String>,
        #[serde(
            rename = "UnsubscribeURL",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub unsubscribe_url: Option<String>,
    }

    impl Envelope {
        /// The string to sign: "Name\nValue\n" pairs in byte order of the
        /// names. Notification: Message, MessageId, Subject (only if
        /// present), Timestamp, TopicArn, Type. SubscriptionConfirmation and
        /// UnsubscribeConfirmation: Message, MessageId, SubscribeURL,
        /// Timestamp, Token, TopicArn, Type. Refused for an unknown Type or a
        /// field that type needs missing.
        pub fn string_to_sign(&self) -> Result<String, Refusal> {
            Ok(self
                .signed_fields()?
                .iter()
                .map(|(name, value)| format!("{name}\n{value}\n"))
                .collect())
        }

        /// The signed fields of this Type, in byte order of their names.
        fn signed_fields(&self) -> Result<Vec<(&'static str, &str)>, Refusal> {
            let confirmation = match self.r#type.as_str() {
                "Notification" => false,
                "SubscriptionConfirmation" | "UnsubscribeConfirmation" => true,
                _ => {
                    return Err(Refusal::Malformed(
                        "SNS Type: not Notification, SubscriptionConfirmation or UnsubscribeConfirmation"
                            .to_owned(),
                    ));
                }
            };
            let mut fields = vec![("Message", self.message.as_str())];
            fields.push(("MessageId", self.message_id.as_str()));
            if confirmation {
                fields.push((
                    "SubscribeURL",
                    required("SubscribeURL", self.subscribe_url.as_deref())?,
                ));
            } else if let Some(subject) = &self.subject {
                // Only a notification sent with a subject signs one.
                fields.push(("Subject", subject.as_str()));
            }
            fields.push(("Timestamp", self.timestamp.as_str()));
            if confirmation {
                fields.push(("Token", required("Token", self.token.as_deref())?));
            }
            fields.push(("TopicArn", self.topic_arn.as_str()));
            fields.push(("Type", self.r#type.as_str()));
            Ok(fields)
        }
    }

    fn required<'a>(field: &'static str, value: Option<&'a str>) -> Result<&'a str, Refusal> {
        value.ok_or(Refusal::Missing(field))
    }

    /// When SNS signed the message: its ISO 8601 `Timestamp` as unix seconds,
    /// for [`super::check_age`].
    pub fn signed_at(envelope: &Envelope) -> Result<i64, Refusal> {
        let format = time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::parse(&envelope.timestamp, &format)
            .map(time::OffsetDateTime::unix_timestamp)
            .map_err(|_| Refusal::Malformed("SNS Timestamp: not ISO 8601".to_owned()))
    }

    /// Whether a certificate or SubscribeURL may be fetched from `url`:
    /// scheme https only, no userinfo, default port only, and the host
    /// matches one of `patterns` (see [`allows_host`]). Amazon's guide says
    /// to check the certificate comes from SNS before trusting it: without
    /// this, anyone could sign a message with their own key and point
    /// SigningCertURL at their own certificate.
    pub fn url_allowed(url: &str, patterns: &[String]) -> bool {
        let Ok(url) = url::Url::parse(url) else {
            return false;
        };
        // `port()` is None for the scheme's default port, written or not.
        let plain = url.scheme() == "https"
            && url.username().is_empty()
            && url.password().is_none()
            && url.port().is_none();
        // An IP address never matches: only `Host::Domain` is compared.
        plain && matches!(url.host(), Some(url::Host::Domain(host)) if allows_host(host, patterns))
    }

    /// Whether `host` matches one of `patterns`: host names in which a label
    /// that is exactly `*` stands for exactly one non-empty DNS label, and
    /// every other label must equal the host's, ignoring ASCII case.
    pub fn allows_host(host: &str, patterns: &[String]) -> bool {
        patterns.iter().any(|pattern| host_matches(host, pattern))
    }

    fn host_matches(host: &str, pattern: &str) -> bool {
        let host: Vec<&str> = host.split('.').collect();
        let pattern: Vec<&str> = pattern.split('.').collect();
        host.len() == pattern.len()
            && host.iter().zip(&pattern).all(|(label, want)| {
                !label.is_empty() && (*want == "*" || want.eq_ignore_ascii_case(label))
            })
    }

    /// A signing certificate, parsed once (callers cache it by URL).
    #[derive(Clone, Debug)]
    pub struct Certificate {
        key: rsa::RsaPublicKey,
    }

    impl Certificate {
        /// From the PEM that SigningCertURL serves (DER accepted too). Err
        /// says what is wrong. Must hold an RSA key: SNS signs with RSA.
        pub fn parse(bytes: &[u8]) -> Result<Self, String> {
            let bytes = bytes.trim_ascii();
            let cert = if bytes.starts_with(b"-----BEGIN") {
                x509_cert::Certificate::from_pem(bytes)
            } else {
                x509_cert::Certificate::from_der(bytes)
            }
            .map_err(|e| format!("SNS signing certificate: not an X.509 certificate ({e})"))?;
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| format!("SNS signing certificate: unreadable public key ({e})"))?;
            let key = rsa::RsaPublicKey::from_public_key_der(&spki)
                .map_err(|e| format!("SNS signing certificate: not an RSA public key ({e})"))?;
            Ok(Self { key })
        }

        /// Verifies `signature` (base64) over `string_to_sign` with RSA
        /// PKCS#1 v1.5: SHA1 when `version` is "1", SHA256 when "2"; any other
        /// version is refused as malformed rather than guessed at.
        pub fn verify(
            &self,
            version: &str,
            string_to_sign: &str,
            signature: &str,
        ) -> Result<(), Refusal> {
            if version.is_empty() {
                return Err(Refusal::Missing("SignatureVersion"));
            }
            if version != "1" && version != "2" {
                return Err(Refusal::Malformed(
                    "SNS SignatureVersion: not 1 or 2".to_owned(),
                ));
            }
            let bytes = decode_base64("Signature", signature)?;
            let signature = pkcs1v15::Signature::try_from(bytes.as_slice()).map_err(|_| {
                Refusal::Malformed("SNS Signature: not an RSA signature".to_owned())
            })?;
            let message = string_to_sign.as_bytes();
            let verified = if version == "1" {
                pkcs1v15::VerifyingKey::<sha1::Sha1>::new(self.key.clone())
                    .verify(message, &signature)
            } else {
                pkcs1v15::VerifyingKey::<sha2::Sha256>::new(self.key.clone())
                    .verify(message, &signature)
            };
            verified.map_err(|_| Refusal::BadSignature)
        }

        /// [`Certificate::verify`] of an envelope's own version, string to
        /// sign and signature.
        pub fn verify_envelope(&self, envelope: &Envelope) -> Result<(), Refusal> {
            self.verify(
                &envelope.signature_version,
                &envelope.string_to_sign()?,
                &envelope.signature,
            )
        }
    }
}

/// Signing payloads the way each provider does, for tests here and the
/// gateway's end-to-end tests (cargo feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod signing {
    use std::fmt;
    use std::sync::LazyLock;

    use base64::Engine as _;
    use hmac::Mac as _;
    use p256::ecdsa::signature::DigestSigner as _;
    use p256::pkcs8::{EncodePublicKey as _, LineEnding};
    use rand_core::OsRng;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    use sha2::Digest as _;

    use super::BASE64;
    use super::sns::Envelope;

    /// A fresh P-256 key pair, standing in for SendGrid's.
    #[derive(Clone, Debug)]
    pub struct SendGridSigner {
        key: p256::ecdsa::SigningKey,
    }

    impl Default for SendGridSigner {
        fn default() -> Self {
            Self::new()
        }
    }

    impl SendGridSigner {
        /// A fresh random key (fast: P-256 keys cost microseconds).
        pub fn new() -> Self {
            Self {
                key: p256::ecdsa::SigningKey::random(&mut OsRng),
            }
        }

        /// The public key as SendGrid's settings page shows it, which is what
        /// an operator pastes into config: base64 DER SubjectPublicKeyInfo.
        pub fn public_base64_der(&self) -> String {
            let der = self
                .key
                .verifying_key()
                .to_public_key_der()
                .expect("a P-256 public key encodes as DER");
            BASE64.encode(der.as_bytes())
        }

        /// The same key in "-----BEGIN PUBLIC KEY-----" armour.
        pub fn public_pem(&self) -> String {
            self.key
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("a P-256 public key encodes as PEM")
        }

        /// Base64 of the DER ECDSA signature over `timestamp` then `body`,
        /// as SendGrid sends it in `X-Twilio-Email-Event-Webhook-Signature`.
        pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
            let digest = sha2::Sha256::new()
                .chain_update(timestamp.as_bytes())
                .chain_update(body);
            let signature: p256::ecdsa::Signature = self.key.sign_digest(digest);
            BASE64.encode(signature.to_der().as_bytes())
        }
    }

    /// Mailgun's signature: lowercase hex HMAC-SHA256 of timestamp+token.
    pub fn mailgun_signature(signing_key: &str, timestamp: &str, token: &str) -> String {
        let mac = super::mailgun_mac(signing_key, timestamp, token)
            .expect("HMAC takes a key of any length");
        hex::encode(mac.finalize().into_bytes())
    }

    /// One RSA key and its self-signed certificate per process. A 2048-bit
    /// key took 0.07 to 0.47 s in a debug build on the 2-core dev machine
    /// (`tests::rsa_key_generation_cost`; the prime search varies a lot):
    /// under a second, but paid by every SNS test here and in the gateway's
    /// end-to-end tests it adds up, so `SnsSigner::new` shares this one.
    static SNS_KEY: LazyLock<(rsa::RsaPrivateKey, String)> = LazyLock::new(generate_sns_key);

    fn generate_sns_key() -> (rsa::RsaPrivateKey, String) {
        let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key generation");
        let pem = self_signed_pem(&key);
        (key, pem)
    }

    /// A self-signed certificate for `key` named like SNS's own
    /// (CN=sns.amazonaws.com), valid for a day from now.
    fn self_signed_pem(key: &rsa::RsaPrivateKey) -> String {
        use std::str::FromStr as _;
        use x509_cert::builder::{Builder as _, CertificateBuilder, Profile};
        use x509_cert::der::EncodePem as _;

        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
        let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(key.to_public_key())
            .expect("an RSA public key encodes as SubjectPublicKeyInfo");
        let builder = CertificateBuilder::new(
            Profile::Root,
            x509_cert::serial_number::SerialNumber::from(1u32),
            x509_cert::time::Validity::from_now(std::time::Duration::from_secs(86_400))
                .expect("a day from now is a valid X.509 time"),
            x509_cert::name::Name::from_str("CN=sns.amazonaws.com").expect("a valid name"),
            spki,
            &signer,
        )
        .expect("certificate builder");
        builder
            .build::<rsa::pkcs1v15::Signature>()
            .expect("self-signing the certificate")
            .to_pem(LineEnding::LF)
            .expect("a certificate encodes as PEM")
    }

    /// An RSA key and a self-signed X.509 certificate, standing in for an
    /// SNS signing certificate. `new` shares one key per process (see
    /// `SNS_KEY`); `fresh` makes another, for "signed by another key".
    #[derive(Clone)]
    pub struct SnsSigner {
        key: rsa::RsaPrivateKey,
        certificate_pem: String,
    }

    impl fmt::Debug for SnsSigner {
        // No private key in test logs, even a throwaway one.
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SnsSigner").finish_non_exhaustive()
        }
    }

    impl Default for SnsSigner {
        fn default() -> Self {
            Self::new()
        }
    }

    impl SnsSigner {
        /// The process's shared test key and certificate.
        pub fn new() -> Self {
            let (key, certificate_pem) = &*SNS_KEY;
            Self {
                key: key.clone(),
                certificate_pem: certificate_pem.clone(),
            }
        }

        /// A key and certificate of its own, unlike [`SnsSigner::new`]'s
        /// (takes a fraction of a second).
        pub fn fresh() -> Self {
            let (key, certificate_pem) = generate_sns_key();
            Self {
                key,
                certificate_pem,
            }
        }

        /// What SigningCertURL would serve: the certificate in PEM.
        pub fn certificate_pem(&self) -> &str {
            &self.certificate_pem
        }

        /// Base64 of the PKCS#1 v1.5 signature of `envelope.string_to_sign()`
        /// with SHA1 (version "1") or SHA256 ("2"), as SNS signs.
        ///
        /// # Panics
        /// On any other version, or an envelope without the fields its
        /// Type needs: a test that asks for either has a bug.
        pub fn sign(&self, envelope: &Envelope, version: &str) -> String {
            let text = envelope
                .string_to_sign()
                .expect("the envelope has the fields its Type needs");
            let signature = match version {
                "1" => rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(self.key.clone())
                    .sign(text.as_bytes())
                    .to_bytes(),
                "2" => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(self.key.clone())
                    .sign(text.as_bytes())
                    .to_bytes(),
                other => panic!("SNS SignatureVersion {other:?} is not 1 or 2"),
            };
            BASE64.encode(signature)
        }

        /// Sets the envelope's SignatureVersion and Signature, as SNS would.
        pub fn sign_into(&self, envelope: &mut Envelope, version: &str) {
            envelope.signature_version = version.to_owned();
            envelope.signature = self.sign(envelope, version);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::signing::{SendGridSigner, SnsSigner, mailgun_signature};
    use super::sns::{self, Certificate, Envelope};
    use super::*;

    // ---- check_age -------------------------------------------------------

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn age_inside_the_window_passes_both_ways() {
        assert_eq!(check_age(1_000, 1_030, MINUTE), Ok(()));
        assert_eq!(check_age(1_030, 1_000, MINUTE), Ok(()));
        assert_eq!(check_age(1_000, 1_000, MINUTE), Ok(()));
    }

    #[test]
    fn age_exactly_at_the_edge_passes_both_ways() {
        assert_eq!(check_age(1_000, 1_060, MINUTE), Ok(()));
        assert_eq!(check_age(1_060, 1_000, MINUTE), Ok(()));
    }

    #[test]
    fn age_beyond_the_edge_is_stale_past_and_future() {
        let past = Refusal::Stale {
            age_secs: 61,
            max_age_secs: 60,
        };
        let future = Refusal::Stale {
            age_secs: -61,
            max_age_secs: 60,
        };
        assert_eq!(check_age(1_000, 1_061, MINUTE), Err(past));
        assert_eq!(check_age(1_061, 1_000, MINUTE), Err(future));
    }

    #[test]
    fn absurd_timestamps_are_stale_not_overflows() {
        assert!(matches!(
            check_age(i64::MIN, i64::MAX, MINUTE),
            Err(Refusal::Stale { .. })
        ));
        assert!(matches!(
            check_age(i64::MAX, i64::MIN, MINUTE),
            Err(Refusal::Stale { .. })
        ));
    }

    #[test]
    fn unix_secs_reads_digits_and_refuses_the_rest() {
        assert_eq!(unix_secs("timestamp", "1600112502"), Ok(1_600_112_502));
        assert_eq!(
            unix_secs("timestamp", ""),
            Err(Refusal::Missing("timestamp"))
        );
        assert!(matches!(
            unix_secs("timestamp", "timestamp"),
            Err(Refusal::Malformed(_))
        ));
    }

    // ---- SendGrid --------------------------------------------------------

    const BODY: &[u8] = br#"[{"email":"a@example.com","event":"bounce","sg_event_id":"x"}]"#;
    const TS: &str = "1700000000";

    fn key_of(signer: &SendGridSigner) -> SendGridKey {
        SendGridKey::parse(&signer.public_base64_der()).unwrap()
    }

    #[test]
    fn sendgrid_signature_by_its_key_verifies() {
        let signer = SendGridSigner::new();
        let signature = signer.sign(TS, BODY);
        assert_eq!(key_of(&signer).verify(TS, BODY, &signature), Ok(()));
    }

    #[test]
    fn sendgrid_one_byte_changed_in_body_or_timestamp_is_bad() {
        let signer = SendGridSigner::new();
        let key = key_of(&signer);
        let signature = signer.sign(TS, BODY);
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            key.verify(TS, &body, &signature),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            key.verify("1700000001", BODY, &signature),
            Err(Refusal::BadSignature)
        );
        // Moving bytes between timestamp and body changes nothing in the
        // concatenation: SendGrid's scheme has no separator, so this must
        // verify, and the caller's age check is what pins the timestamp.
        let (head, tail) = BODY.split_at(1);
        let moved = format!("{TS}{}", String::from_utf8_lossy(head));
        assert_eq!(key.verify(&moved, tail, &signature), Ok(()));
    }

    #[test]
    fn sendgrid_signature_by_another_key_is_bad() {
        let signature = SendGridSigner::new().sign(TS, BODY);
        let other = key_of(&SendGridSigner::new());
        assert_eq!(
            other.verify(TS, BODY, &signature),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn sendgrid_unreadable_signatures_are_malformed_or_missing() {
        let key = key_of(&SendGridSigner::new());
        assert!(matches!(
            key.verify(TS, BODY, "not base64!"),
            Err(Refusal::Malformed(m)) if m.contains("not base64")
        ));
        // Base64 of bytes that are not a DER SEQUENCE of two integers.
        let not_der = BASE64.encode(b"hello, this is not DER");
        assert!(matches!(
            key.verify(TS, BODY, &not_der),
            Err(Refusal::Malformed(m)) if m.contains("DER")
        ));
        assert_eq!(
            key.verify(TS, BODY, ""),
            Err(Refusal::Missing(SendGridKey::SIGNATURE_HEADER))
        );
        let signature = SendGridSigner::new().sign(TS, BODY);
        assert_eq!(
            key.verify("", BODY, &signature),
            Err(Refusal::Missing(SendGridKey::TIMESTAMP_HEADER))
        );
    }

    #[test]
    fn sendgrid_key_parses_bare_armoured_and_wrapped() {
        let signer = SendGridSigner::new();
        let signature = signer.sign(TS, BODY);
        let bare = signer.public_base64_der();
        let (first, second) = bare.split_at(40);
        let texts = [
            bare.clone(),
            format!("  {bare}\n"),
            format!("{first}\n  {second}\n"),
            signer.public_pem(),
            format!("\n{}\n\n", signer.public_pem()),
        ];
        for text in texts {
            let key = SendGridKey::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(key.verify(TS, BODY, &signature), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn sendgrid_key_that_is_not_p256_is_refused_at_parse() {
        // A P-384 SubjectPublicKeyInfo, generated with Python's
        // `cryptography` (ec.generate_private_key(ec.SECP384R1())).
        let p384 = "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEqZKNmByWyzf+3IVsZLDig6ylDYLpMJ/yK+WveLP0wkxJow1KfJGHqxzveQl6oqISLVEKfvDyxnjmMcSR0PeuqS58noPaQoFb/9f0M4CZmgcOTFPjSjFliQc5u9aMngZf";
        // An RSA SubjectPublicKeyInfo: a valid key, of the wrong kind.
        let rsa = {
            use x509_cert::der::{DecodePem as _, Encode as _};
            let pem = SnsSigner::new().certificate_pem().to_owned();
            let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).unwrap();
            BASE64.encode(
                cert.tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .unwrap(),
            )
        };
        for text in [
            p384,
            &rsa,
            "",
            "garbage",
            "bm90IGEga2V5",
            "-----BEGIN PUBLIC KEY-----\nbm90\n-----END PUBLIC KEY-----\n",
        ] {
            let err = SendGridKey::parse(text).unwrap_err();
            assert!(
                err.starts_with("SendGrid verification key: not"),
                "{text:?}: {err}"
            );
        }
    }

    /// SendGrid's published examples: a key, timestamp, payload and the
    /// signature SendGrid's own libraries verify. Both were checked with
    /// Python's `cryptography` too.
    mod sendgrid_published {
        use super::*;

        /// sendgrid/sendgrid-python `test/unit/test_eventwebhook.py`
        /// (`PUBLIC_KEY`, `SIGNATURE`, `TIMESTAMP`, `PAYLOAD`: the JSON as
        /// `json.dumps(..., sort_keys=True, separators=(',', ':'))` gives it,
        /// with the trailing CRLF SendGrid sends).
        const PY_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
        const PY_SIGNATURE: &str = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
        const PY_TIMESTAMP: &str = "1600112502";
        const PY_PAYLOAD: &str = concat!(
            r#"[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","#,
            r#""sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","#,
            r#""sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","#,
            r#""smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]"#,
            "\r\n"
        );

        /// sendgrid/sendgrid-nodejs `packages/eventwebhook/src/eventwebhook.spec.js`
        /// (`PUBLIC_KEY`, `SIGNATURE`, `TIMESTAMP`, `PAYLOAD` =
        /// `JSON.stringify({category, event, message_id})`), and the same
        /// signature with one character changed that the spec expects refused.
        const JS_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
        const JS_SIGNATURE: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
        const JS_BAD_SIGNATURE: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=";
        const JS_TIMESTAMP: &str = "1588788367";
        const JS_PAYLOAD: &str =
            r#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;

        #[test]
        fn python_library_example_verifies() {
            let key = SendGridKey::parse(PY_KEY).unwrap();
            let body = PY_PAYLOAD.as_bytes();
            assert_eq!(key.verify(PY_TIMESTAMP, body, PY_SIGNATURE), Ok(()));
            // Without the trailing CRLF the body is not what was signed.
            let trimmed = PY_PAYLOAD.trim_end().as_bytes();
            assert_eq!(
                key.verify(PY_TIMESTAMP, trimmed, PY_SIGNATURE),
                Err(Refusal::BadSignature)
            );
        }

        #[test]
        fn node_library_example_verifies_and_its_refusals_hold() {
            let key = SendGridKey::parse(JS_KEY).unwrap();
            let body = JS_PAYLOAD.as_bytes();
            assert_eq!(key.verify(JS_TIMESTAMP, body, JS_SIGNATURE), Ok(()));
            assert_eq!(
                key.verify(JS_TIMESTAMP, body, JS_BAD_SIGNATURE),
                Err(Refusal::BadSignature)
            );
            assert_eq!(
                key.verify(JS_TIMESTAMP, b"payload", JS_SIGNATURE),
                Err(Refusal::BadSignature)
            );
            assert_eq!(
                key.verify("timestamp", body, JS_SIGNATURE),
                Err(Refusal::BadSignature)
            );
            // The other library's key does not verify this signature.
            let other = SendGridKey::parse(PY_KEY).unwrap();
            assert_eq!(
                other.verify(JS_TIMESTAMP, body, JS_SIGNATURE),
                Err(Refusal::BadSignature)
            );
        }
    }

    // ---- Mailgun ---------------------------------------------------------

    const MG_KEY: &str = "mailgun-test-signing-key";
    const MG_TS: &str = "1529006854";
    const MG_TOKEN: &str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
    /// Computed independently with Python:
    /// `hmac.new(b"mailgun-test-signing-key", b"1529006854" +
    /// b"a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
    /// hashlib.sha256).hexdigest()`.
    const MG_SIGNATURE: &str = "f1adbc71b89631d253ae9d52f234c3274ce91c2371eb1af6748f4b0d8bb0013e";

    #[test]
    fn mailgun_known_answer_verifies_and_signer_agrees() {
        assert_eq!(mailgun(MG_KEY, MG_TS, MG_TOKEN, MG_SIGNATURE), Ok(()));
        assert_eq!(mailgun_signature(MG_KEY, MG_TS, MG_TOKEN), MG_SIGNATURE);
    }

    #[test]
    fn mailgun_wrong_key_or_tampered_fields_are_bad() {
        let bad = Err(Refusal::BadSignature);
        assert_eq!(mailgun("another-key", MG_TS, MG_TOKEN, MG_SIGNATURE), bad);
        let mut token = MG_TOKEN.to_owned();
        token.replace_range(0..1, "b");
        assert_eq!(mailgun(MG_KEY, MG_TS, &token, MG_SIGNATURE), bad);
        assert_eq!(mailgun(MG_KEY, "1529006855", MG_TOKEN, MG_SIGNATURE), bad);
        // No separator is signed, so the split between the two is free;
        // the token's uniqueness and the timestamp's age are the caller's.
        assert_eq!(
            mailgun(
                MG_KEY,
                "152900685",
                "4a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
                MG_SIGNATURE
            ),
            Ok(())
        );
    }

    #[test]
    fn refusal_messages_name_the_field_and_never_the_key() {
        let refusals = [
            mailgun(MG_KEY, MG_TS, MG_TOKEN, &"0".repeat(64)).unwrap_err(),
            mailgun(MG_KEY, MG_TS, MG_TOKEN, "zz").unwrap_err(),
            mailgun(MG_KEY, MG_TS, "", MG_SIGNATURE).unwrap_err(),
        ];
        let messages: Vec<String> = refusals.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "signature does not verify",
                "malformed signature: not hex",
                "missing token"
            ]
        );
        let stale = check_age(0, 400, Duration::from_secs(300)).unwrap_err();
        assert!(stale.to_string().contains("400 s"), "{stale}");
    }

    #[test]
    fn mailgun_uppercase_hex_is_accepted() {
        let upper = MG_SIGNATURE.to_ascii_uppercase();
        assert_eq!(mailgun(MG_KEY, MG_TS, MG_TOKEN, &upper), Ok(()));
    }

    #[test]
    fn mailgun_unreadable_or_absent_signature_is_refused() {
        let not_hex = MG_SIGNATURE.replacen('f', "g", 1);
        assert!(matches!(
            mailgun(MG_KEY, MG_TS, MG_TOKEN, &not_hex),
            Err(Refusal::Malformed(m)) if m.contains("not hex")
        ));
        assert!(matches!(
            mailgun(MG_KEY, MG_TS, MG_TOKEN, &MG_SIGNATURE[..62]),
            Err(Refusal::Malformed(m)) if m.contains("64 hex digits")
        ));
        assert_eq!(
            mailgun(MG_KEY, MG_TS, MG_TOKEN, ""),
            Err(Refusal::Missing("signature"))
        );
        assert_eq!(
            mailgun(MG_KEY, MG_TS, "", MG_SIGNATURE),
            Err(Refusal::Missing("token"))
        );
    }

    // ---- SNS: string to sign ---------------------------------------------

    fn notification(subject: Option<&str>) -> Envelope {
        Envelope {
            r#type: "Notification".to_owned(),
            message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".to_owned(),
            topic_arn: "arn:aws:sns:us-east-1:123456789012:ses-events".to_owned(),
            subject: subject.map(str::to_owned),
            message: "{\"notificationType\":\"Bounce\"}".to_owned(),
            timestamp: "2012-05-02T00:54:06.655Z".to_owned(),
            signature_version: "1".to_owned(),
            signature: String::new(),
            signing_cert_url:
                "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem".to_owned(),
            subscribe_url: None,
            token: None,
            unsubscribe_url: Some(
                "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe".to_owned(),
            ),
        }
    }

    fn confirmation(kind: &str) -> Envelope {
        Envelope {
            r#type: kind.to_owned(),
            subject: None,
            message: "You have chosen to subscribe.\nVisit the SubscribeURL.".to_owned(),
            subscribe_url: Some(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336"
                    .to_owned(),
            ),
            token: Some("2336412f37".to_owned()),
            unsubscribe_url: None,
            ..notification(None)
        }
    }

    #[test]
    fn sns_notification_with_subject_string_to_sign() {
        let expected = "Message\n{\"notificationType\":\"Bounce\"}\n\
                        MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
                        Subject\nMy First Message\n\
                        Timestamp\n2012-05-02T00:54:06.655Z\n\
                        TopicArn\narn:aws:sns:us-east-1:123456789012:ses-events\n\
                        Type\nNotification\n";
        let envelope = notification(Some("My First Message"));
        assert_eq!(envelope.string_to_sign().unwrap(), expected);
    }

    #[test]
    fn sns_notification_without_subject_string_to_sign() {
        let expected = "Message\n{\"notificationType\":\"Bounce\"}\n\
                        MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
                        Timestamp\n2012-05-02T00:54:06.655Z\n\
                        TopicArn\narn:aws:sns:us-east-1:123456789012:ses-events\n\
                        Type\nNotification\n";
        assert_eq!(notification(None).string_to_sign().unwrap(), expected);
    }

    #[test]
    fn sns_confirmations_string_to_sign() {
        for kind in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
            let expected = format!(
                "Message\nYou have chosen to subscribe.\nVisit the SubscribeURL.\n\
                 MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
                 SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336\n\
                 Timestamp\n2012-05-02T00:54:06.655Z\n\
                 Token\n2336412f37\n\
                 TopicArn\narn:aws:sns:us-east-1:123456789012:ses-events\n\
                 Type\n{kind}\n"
            );
            assert_eq!(confirmation(kind).string_to_sign().unwrap(), expected);
        }
    }

    #[test]
    fn sns_unknown_type_or_missing_field_is_refused() {
        let mut envelope = notification(None);
        envelope.r#type = "Surprise".to_owned();
        assert!(matches!(
            envelope.string_to_sign(),
            Err(Refusal::Malformed(_))
        ));
        let mut envelope = confirmation("SubscriptionConfirmation");
        envelope.token = None;
        assert_eq!(envelope.string_to_sign(), Err(Refusal::Missing("Token")));
        envelope.subscribe_url = None;
        assert_eq!(
            envelope.string_to_sign(),
            Err(Refusal::Missing("SubscribeURL"))
        );
    }

    #[test]
    fn sns_signed_at_reads_the_timestamp() {
        let envelope = notification(None);
        // 2012-05-02T00:54:06Z, by `date -u -d 2012-05-02T00:54:06Z +%s`.
        assert_eq!(sns::signed_at(&envelope), Ok(1_335_920_046));
        let mut envelope = envelope;
        envelope.timestamp = "yesterday".to_owned();
        assert!(matches!(
            sns::signed_at(&envelope),
            Err(Refusal::Malformed(_))
        ));
    }

    // ---- SNS: signatures with a generated certificate ----------------------

    fn generated_certificate() -> (SnsSigner, Certificate) {
        let signer = SnsSigner::new();
        let certificate = Certificate::parse(signer.certificate_pem().as_bytes()).unwrap();
        (signer, certificate)
    }

    #[test]
    fn sns_versions_1_and_2_verify() {
        let (signer, certificate) = generated_certificate();
        for version in ["1", "2"] {
            let mut envelope = notification(Some("subject"));
            signer.sign_into(&mut envelope, version);
            assert_eq!(certificate.verify_envelope(&envelope), Ok(()), "v{version}");
            let mut confirmation = confirmation("SubscriptionConfirmation");
            signer.sign_into(&mut confirmation, version);
            assert_eq!(
                certificate.verify_envelope(&confirmation),
                Ok(()),
                "v{version}"
            );
        }
    }

    #[test]
    fn sns_signature_under_the_other_version_is_bad() {
        let (signer, certificate) = generated_certificate();
        let envelope = notification(None);
        let text = envelope.string_to_sign().unwrap();
        let v1 = signer.sign(&envelope, "1");
        let v2 = signer.sign(&envelope, "2");
        assert_eq!(
            certificate.verify("2", &text, &v1),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            certificate.verify("1", &text, &v2),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn sns_signature_by_another_key_is_bad() {
        let (_, certificate) = generated_certificate();
        let mut envelope = notification(None);
        SnsSigner::fresh().sign_into(&mut envelope, "2");
        assert_eq!(
            certificate.verify_envelope(&envelope),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn sns_tampered_fields_are_bad() {
        let (signer, certificate) = generated_certificate();
        let mut envelope = notification(Some("subject"));
        signer.sign_into(&mut envelope, "2");
        let mut tampered = envelope.clone();
        tampered.message.push(' ');
        assert_eq!(
            certificate.verify_envelope(&tampered),
            Err(Refusal::BadSignature)
        );
        let mut tampered = envelope.clone();
        tampered.subject = None;
        assert_eq!(
            certificate.verify_envelope(&tampered),
            Err(Refusal::BadSignature)
        );
        let mut tampered = envelope;
        tampered.topic_arn.push('x');
        assert_eq!(
            certificate.verify_envelope(&tampered),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn sns_unknown_version_or_unreadable_signature_is_malformed() {
        let (signer, certificate) = generated_certificate();
        let envelope = notification(None);
        let text = envelope.string_to_sign().unwrap();
        let signature = signer.sign(&envelope, "2");
        for version in ["3", "0", "SHA256"] {
            assert!(matches!(
                certificate.verify(version, &text, &signature),
                Err(Refusal::Malformed(m)) if m.contains("SignatureVersion")
            ));
        }
        assert_eq!(
            certificate.verify("", &text, &signature),
            Err(Refusal::Missing("SignatureVersion"))
        );
        assert!(matches!(
            certificate.verify("2", &text, "%%%"),
            Err(Refusal::Malformed(m)) if m.contains("not base64")
        ));
        assert_eq!(
            certificate.verify("2", &text, ""),
            Err(Refusal::Missing("Signature"))
        );
    }

    #[test]
    fn sns_certificate_parses_from_der_and_refuses_non_rsa_or_garbage() {
        use x509_cert::der::{DecodePem as _, Encode as _};
        let (signer, _) = generated_certificate();
        let pem = signer.certificate_pem();
        let der = x509_cert::Certificate::from_pem(pem.as_bytes())
            .unwrap()
            .to_der()
            .unwrap();
        let from_der = Certificate::parse(&der).unwrap();
        let mut envelope = notification(None);
        signer.sign_into(&mut envelope, "1");
        assert_eq!(from_der.verify_envelope(&envelope), Ok(()));

        // A self-signed P-256 certificate, made with Python's `cryptography`
        // (x509.CertificateBuilder, CN=sns.amazonaws.com).
        let ec_pem = "-----BEGIN CERTIFICATE-----
MIIBJTCBy6ADAgECAgEBMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMMEXNucy5hbWF6
b25hd3MuY29tMB4XDTI1MDEwMTAwMDAwMFoXDTM0MTIzMDAwMDAwMFowHDEaMBgG
A1UEAwwRc25zLmFtYXpvbmF3cy5jb20wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AATByTGVCn1ekD7VsQPODjSl+qY12i97b7M8hR8cSKMSje+RPjCsvpb9fzhnysU6
CfcgXktcgmnunU+aShBQcID6MAoGCCqGSM49BAMCA0kAMEYCIQCiTzfA0CTy0trz
Hw1Svh7XyKmjYN8hucWfZkiFhGlEvgIhAKknoRHbl0uEQzoz+A3kI4cH6ilf15aT
hQaqQ8LeYkdN
-----END CERTIFICATE-----
";
        let err = Certificate::parse(ec_pem.as_bytes()).unwrap_err();
        assert!(err.contains("not an RSA public key"), "{err}");
        for garbage in [
            &b""[..],
            b"garbage",
            b"-----BEGIN CERTIFICATE-----\nbm90\n-----END CERTIFICATE-----\n",
        ] {
            let err = Certificate::parse(garbage).unwrap_err();
            assert!(err.contains("not an X.509 certificate"), "{err}");
        }
    }

    // ---- SNS: Amazon's own deliveries --------------------------------------

    /// Real SNS deliveries and the real Amazon certificate that signed them,
    /// from the AWS SDK for Java v2 test resources (see
    /// `fixtures/sns/README.md` for the exact source path).
    mod sns_published {
        use super::*;

        const CERT_URL: &str = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem";
        const CERT: &str = include_str!(
            "../fixtures/sns/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
        );
        const DELIVERIES: [(&str, &str); 4] = [
            (
                "with subject, v1",
                include_str!("../fixtures/sns/notification-with-subject.json"),
            ),
            (
                "no subject, v1",
                include_str!("../fixtures/sns/notification-no-subject.json"),
            ),
            (
                "signature v2",
                include_str!("../fixtures/sns/notification-signature-v2.json"),
            ),
            (
                "subscription confirmation",
                include_str!("../fixtures/sns/subscription-confirmation.json"),
            ),
        ];

        fn amazon() -> Certificate {
            Certificate::parse(CERT.as_bytes()).unwrap()
        }

        #[test]
        fn amazon_deliveries_verify_with_amazon_certificate() {
            let certificate = amazon();
            for (name, json) in DELIVERIES {
                let envelope: Envelope = serde_json::from_str(json).unwrap();
                assert_eq!(envelope.signing_cert_url, CERT_URL, "{name}");
                assert!(sns::url_allowed(
                    &envelope.signing_cert_url,
                    &sns::default_patterns()
                ));
                assert_eq!(certificate.verify_envelope(&envelope), Ok(()), "{name}");
            }
        }

        #[test]
        fn amazon_deliveries_tampered_or_under_another_key_are_bad() {
            let certificate = amazon();
            let (_, generated) = generated_certificate();
            for (name, json) in DELIVERIES {
                let envelope: Envelope = serde_json::from_str(json).unwrap();
                let mut tampered = envelope.clone();
                tampered.message.replace_range(0..1, "h");
                assert_eq!(
                    certificate.verify_envelope(&tampered),
                    Err(Refusal::BadSignature),
                    "{name}"
                );
                assert_eq!(
                    generated.verify_envelope(&envelope),
                    Err(Refusal::BadSignature),
                    "{name}"
                );
            }
        }

        #[test]
        fn amazon_subscription_confirmation_reads_every_signed_field() {
            let json = DELIVERIES[3].1;
            let envelope: Envelope = serde_json::from_str(json).unwrap();
            assert_eq!(envelope.r#type, "SubscriptionConfirmation");
            assert!(envelope.token.as_deref().unwrap().starts_with("2336412f"));
            let subscribe = envelope.subscribe_url.as_deref().unwrap();
            assert!(sns::url_allowed(subscribe, &sns::default_patterns()));
            // 2026-03-06T19:31:32Z, by Python's datetime.
            assert_eq!(sns::signed_at(&envelope), Ok(1_772_825_492));
        }
    }

    // ---- SNS: where certificates may come from -----------------------------

    fn allowed(url: &str) -> bool {
        sns::url_allowed(url, &sns::default_patterns())
    }

    #[test]
    fn sns_certificate_url_on_an_sns_host_is_allowed() {
        assert!(allowed(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"
        ));
        assert!(allowed("https://SNS.EU-WEST-1.AmazonAWS.com/x.pem"));
        // The default port, written out, is still the default port.
        assert!(allowed("https://sns.us-east-1.amazonaws.com:443/x.pem"));
    }

    #[test]
    fn sns_certificate_url_elsewhere_is_refused() {
        for url in [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://example.com/SimpleNotificationService-abc.pem",
            "https://s3.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com",
            "https://sns.us-east-1.amazonaws.com@evil.com/",
            "https://user:pass@sns.us-east-1.amazonaws.com/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sns.a.b.amazonaws.com/x.pem",
            "https://sns.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.cn/x.pem",
            "https://52.94.236.248/x.pem",
            "ftp://sns.us-east-1.amazonaws.com/x.pem",
            "sns.us-east-1.amazonaws.com/x.pem",
            "",
        ] {
            assert!(!allowed(url), "{url}");
        }
    }

    #[test]
    fn sns_china_is_allowed_only_when_configured() {
        let url = "https://sns.cn-north-1.amazonaws.com.cn/x.pem";
        assert!(!allowed(url));
        let patterns = vec![
            sns::DEFAULT_HOST_PATTERN.to_owned(),
            "sns.*.amazonaws.com.cn".to_owned(),
        ];
        assert!(sns::url_allowed(url, &patterns));
        assert!(sns::allows_host(
            "sns.cn-north-1.amazonaws.com.cn",
            &patterns
        ));
        assert!(!sns::allows_host(
            "sns.cn.north.amazonaws.com.cn",
            &patterns
        ));
    }

    /// How long 2048-bit RSA keys take here, which decided that
    /// `signing::SnsSigner::new` shares one key per process. Run with
    /// `cargo test -p hush-webhooks -- --ignored rsa_key_generation_cost --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn rsa_key_generation_cost() {
        for _ in 0..8 {
            let started = std::time::Instant::now();
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
            eprintln!("2048-bit RSA key in {:?}", started.elapsed());
            assert_eq!(rsa::traits::PublicKeyParts::size(&key), 256);
        }
    }
}

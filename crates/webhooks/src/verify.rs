//! Proving that a webhook's body comes from its provider, on the raw bytes,
//! before anything parses it.

//! Checks on the request fields a client chooses freely (`model_name`, `request_id`,
//! `response_model_schema`), made before any lookup, so a hostile name never reaches the
//! catalog, the metrics, the usage log or the chunks echoed back.
//!
//! - `model_name`: at most [`MAX_MODEL_NAME_BYTES`] bytes of printable ASCII without spaces
//!   (`!` to `~`, 0x21 to 0x7E): every model id, alias and `provider/model` in use fits.
//! - `request_id`: at most [`MAX_REQUEST_ID_BYTES`] bytes of ASCII letters, digits and `-`, `_`,
//!   `.`, `:` (a UUID, which vibectl sends, fits).
//! - `response_model_schema`: at most [`MAX_RESPONSE_SCHEMA_BYTES`] bytes; it also counts
//!   against `max_input_length` with the fragments (see [`super::request_chars`]).

use tonic::Status;

use crate::proto::ExecuteRequest;

/// Longest `model_name` accepted, in bytes.
pub const MAX_MODEL_NAME_BYTES: usize = 256;
/// Longest `request_id` accepted, in bytes.
pub const MAX_REQUEST_ID_BYTES: usize = 128;
/// Largest `response_model_schema` accepted, in bytes (vibectl's own schemas are a few KB).
pub const MAX_RESPONSE_SCHEMA_BYTES: usize = 64 * 1024;

/// The wire names of the checked fields, as errors name them.
pub mod field {
    pub const MODEL_NAME: &str = "model_name";
    pub const REQUEST_ID: &str = "request_id";
    pub const RESPONSE_MODEL_SCHEMA: &str = "response_model_schema";
}

/// A request field a client may not send as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    BadChar {
        field: &'static str,
        at: usize,
        allowed: &'static str,
    },
}

impl FieldError {
    /// The field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            FieldError::TooLong { field, .. } | FieldError::BadChar { field, .. } => field,
        }
    }

    /// What is wrong, calling the field `name` (an API other than gRPC names it its own way).
    pub fn message_as(&self, name: &str) -> String {
        match self {
            FieldError::TooLong { len, max, .. } => {
                format!("{name} has {len} bytes; the limit is {max}")
            }
            FieldError::BadChar { at, allowed, .. } => {
                format!("{name} has a character outside {allowed} (byte {at})")
            }
        }
    }

    /// INVALID_ARGUMENT naming the field (never echoing its value).
    pub fn into_status(self) -> Status {
        Status::invalid_argument(self.to_string())
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message_as(self.field()))
    }
}

impl std::error::Error for FieldError {}

const MODEL_CHARS: &str = "printable ASCII without spaces";
const REQUEST_ID_CHARS: &str = "ASCII letters, digits, `-`, `_`, `.`, `:`";

/// A model name's byte: printable ASCII, no space, no control character.
pub fn is_model_byte(b: u8) -> bool {
    b.is_ascii_graphic()
}

fn is_request_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
}

fn check(
    field: &'static str,
    value: &str,
    max: usize,
    ok: fn(u8) -> bool,
    allowed: &'static str,
) -> Result<(), FieldError> {
    if value.len() > max {
        return Err(FieldError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    match value.bytes().position(|b| !ok(b)) {
        Some(at) => Err(FieldError::BadChar { field, at, allowed }),
        None => Ok(()),
    }
}

/// Check the client-chosen fields of `req`; the first one at fault is named.
pub fn check_request(req: &ExecuteRequest) -> Result<(), FieldError> {
    if let Some(name) = req.model_name.as_deref() {
        check(
            field::MODEL_NAME,
            name,
            MAX_MODEL_NAME_BYTES,
            is_model_byte,
            MODEL_CHARS,
        )?;
    }
    check(
        field::REQUEST_ID,
        &req.request_id,
        MAX_REQUEST_ID_BYTES,
        is_request_id_byte,
        REQUEST_ID_CHARS,
    )?;
    if let Some(schema) = req.response_model_schema.as_deref()
        && schema.len() > MAX_RESPONSE_SCHEMA_BYTES
    {
        return Err(FieldError::TooLong {
            field: field::RESPONSE_MODEL_SCHEMA,
            len: schema.len(),
            max: MAX_RESPONSE_SCHEMA_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(model: &str, id: &str) -> ExecuteRequest {
        ExecuteRequest {
            model_name: Some(model.to_owned()),
            request_id: id.to_owned(),
            ..ExecuteRequest::default()
        }
    }

    #[test]
    fn names_in_use_pass_and_hostile_ones_are_named() {
        let uuid = "0b7f2a39-5a41-4c1e-9f0e-1f6c2e8d9a10";
        assert_eq!(
            check_request(&req("anthropic/claude-3.5:latest", uuid)),
            Ok(())
        );
        assert_eq!(check_request(&req("", "")), Ok(()));
        let long = "m".repeat(MAX_MODEL_NAME_BYTES + 1);
        assert_eq!(
            check_request(&req(&long, "")).map_err(|e| e.field()),
            Err(field::MODEL_NAME)
        );
        for bad in ["a b", "a\nb", "a\u{7f}", "é"] {
            assert_eq!(
                check_request(&req(bad, "")).map_err(|e| e.field()),
                Err(field::MODEL_NAME),
                "{bad:?}"
            );
        }
        for bad in ["a/b", "a b", &"r".repeat(MAX_REQUEST_ID_BYTES + 1)] {
            assert_eq!(
                check_request(&req("m", bad)).map_err(|e| e.field()),
                Err(field::REQUEST_ID),
                "{bad:?}"
            );
        }
    }
}

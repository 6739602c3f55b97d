//! The one error type of the HTTP surface: API error codes (docs/api.md), the status mapping in one `match`,
//! and the JSON body `{"error": {"code", "message", "field"}}`. Internal causes are logged,
//! never sent to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// `docs/api.md` error codes, plus the few the other endpoints need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    IdempotencyKeyReuse,
    /// The resource is not in a state that allows the action (e.g. releasing a rejected event).
    Conflict,
    MissingSignature,
    InvalidSignature,
    StaleTimestamp,
    InvalidJson,
    InvalidEvent,
    InvalidRequest,
    UnsupportedMediaType,
    PayloadTooLarge,
    RateLimited,
    PlayerFlooding,
    PlayerBlocked,
    SessionPlayerMismatch,
    InvalidSession,
    Unauthorized,
    NotFound,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdempotencyKeyReuse => "idempotency_key_reuse",
            Self::Conflict => "conflict",
            Self::MissingSignature => "missing_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::InvalidJson => "invalid_json",
            Self::InvalidEvent => "invalid_event",
            Self::InvalidRequest => "invalid_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::PlayerFlooding => "player_flooding",
            Self::PlayerBlocked => "player_blocked",
            Self::SessionPlayerMismatch => "session_player_mismatch",
            Self::InvalidSession => "invalid_session",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::IdempotencyKeyReuse | Self::Conflict => StatusCode::CONFLICT,
            Self::MissingSignature
            | Self::InvalidSignature
            | Self::StaleTimestamp
            | Self::Unauthorized
            | Self::InvalidSession => StatusCode::UNAUTHORIZED,
            Self::InvalidJson | Self::InvalidEvent | Self::InvalidRequest => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited | Self::PlayerFlooding => StatusCode::TOO_MANY_REQUESTS,
            Self::PlayerBlocked | Self::SessionPlayerMismatch => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What went wrong: a stable `code`, a sentence for people, and the request field at fault.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The JSON of every error answer: `{"error": {"code", "message", "field"}}`. Handlers name it
/// in their OpenAPI `responses` (`body = ErrorEnvelope`); it is never built by hand.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub body: ErrorBody,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            body: ErrorBody {
                code,
                message: message.into(),
                field: None,
            },
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.body.code
    }

    pub fn status(&self) -> StatusCode {
        self.body.code.status()
    }

    /// A backend failure: logged with its cause, answered as 503 so clients retry.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "backend unavailable");
        Self::new(
            ErrorCode::Unavailable,
            "the service is temporarily unavailable, retry shortly",
        )
        .retry_after(1)
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.body })
    }
}

impl From<liveops_domain::ValidationError> for ApiError {
    fn from(e: liveops_domain::ValidationError) -> Self {
        match e {
            liveops_domain::ValidationError::InvalidJson { message } => {
                ApiError::new(ErrorCode::InvalidJson, message)
            }
            liveops_domain::ValidationError::InvalidEvent { field, message } => {
                let message = if field.is_empty() {
                    message
                } else {
                    format!("{field}: {message}")
                };
                let err = ApiError::new(ErrorCode::InvalidEvent, message);
                if field.is_empty() {
                    err
                } else {
                    err.with_field(field)
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = (status, Json(serde_json::json!({ "error": self.body }))).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

//! Request extractors shared by the routes: path ids parsed into the domain's types, the paging
//! parameters checked against the route's rule, and typed query strings. Each value is parsed
//! once, at the edge of the handler ("parse, don't validate"), so a handler receives a
//! `PlayerId`, never a string it must remember to check. A bad value is a 400
//! `invalid_request` whose `error.field` names the parameter and whose message states its
//! rule; never a 5xx.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use liveops_domain::{EventId, PlayerId};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// Parses a player id wherever a request carries one (path, query or body), with the answer
/// every route gives a bad one.
pub fn parse_player_id(raw: &str) -> Result<PlayerId, ApiError> {
    PlayerId::parse(raw).map_err(|m| ApiError::invalid("playerId", format!("playerId {m}")))
}

/// Parses an event id, with the answer every route gives a bad one.
pub fn parse_event_id(raw: &str) -> Result<EventId, ApiError> {
    EventId::parse(raw).map_err(|m| ApiError::invalid("eventId", format!("eventId {m}")))
}

/// The route's single path parameter as text; `field` names it if the path cannot be read
/// (a segment that is not UTF-8 once percent-decoded).
async fn path_text<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    field: &str,
) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(raw)| raw)
        .map_err(|e| ApiError::invalid(field, format!("{field}: {}", e.body_text())))
}

/// `{player_id}` in the path (`/players/{playerId}/...`), parsed into a [`PlayerId`].
#[derive(Debug, Clone)]
pub struct PlayerPath(pub PlayerId);

impl<S: Send + Sync> FromRequestParts<S> for PlayerPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_text(parts, state, "playerId").await?;
        parse_player_id(&raw).map(PlayerPath)
    }
}

/// `{event_id}` in the path (`/admin/flags/{eventId}/...`), parsed into an [`EventId`].
#[derive(Debug, Clone)]
pub struct EventIdPath(pub EventId);

impl<S: Send + Sync> FromRequestParts<S> for EventIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_text(parts, state, "eventId").await?;
        parse_event_id(&raw).map(EventIdPath)
    }
}

/// The query string deserialized into `T` (a struct of the route's own parameters, each
/// documented by its `IntoParams`), answering a malformed one as an `invalid_request`.
/// Parameters `T` does not name are left to the other extractors ([`Paging`], [`Limit`]).
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| QueryParams(q))
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
    }
}

/// The range and the default of a route's `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRule {
    pub min: usize,
    pub max: usize,
    pub default: usize,
}

/// A role's state whose routes page their answers: its rule for `limit` (it may depend on
/// the configuration, as `LB_TOPN` does for the leaderboards).
pub trait Paged {
    fn limit_rule(&self) -> LimitRule;
}

/// `limit` and `offset` of a paged list: `limit` within the state's [`LimitRule`] (its default
/// when absent), `offset` any non-negative integer (0 when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub limit: usize,
    pub offset: usize,
}

impl<S: Paged + Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let q = raw_query(parts)?;
        Ok(Paging {
            limit: limit_of(&q, state.limit_rule())?,
            offset: number_param(
                "offset",
                q.get("offset").map(String::as_str),
                0,
                0,
                usize::MAX,
            )?,
        })
    }
}

/// `limit` alone, for lists read newest first without an offset; within the state's
/// [`LimitRule`], its default when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub usize);

impl<S: Paged + Send + Sync> FromRequestParts<S> for Limit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let q = raw_query(parts)?;
        limit_of(&q, state.limit_rule()).map(Limit)
    }
}

fn raw_query(parts: &Parts) -> Result<HashMap<String, String>, ApiError> {
    Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))
}

fn limit_of(q: &HashMap<String, String>, rule: LimitRule) -> Result<usize, ApiError> {
    number_param(
        "limit",
        q.get("limit").map(String::as_str),
        rule.default,
        rule.min,
        rule.max,
    )
}

/// An integer query parameter from `min` to `max`, `default` when absent; a bad one is a 400
/// naming `name` and its range.
pub fn number_param(
    name: &str,
    raw: Option<&str>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!("{name} must be an integer from {min} to {max}, got {v:?}"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    struct Rule(LimitRule);

    impl Paged for Rule {
        fn limit_rule(&self) -> LimitRule {
            self.0
        }
    }

    const RULE: Rule = Rule(LimitRule {
        min: 1,
        max: 100,
        default: 100,
    });

    fn parts(uri: &str) -> Parts {
        Request::builder().uri(uri).body(()).unwrap().into_parts().0
    }

    async fn paging(uri: &str) -> Result<Paging, ApiError> {
        Paging::from_request_parts(&mut parts(uri), &RULE).await
    }

    #[tokio::test]
    async fn paging_takes_the_rule_s_default_and_offset_zero_when_absent() {
        assert_eq!(
            paging("/x").await.unwrap(),
            Paging {
                limit: 100,
                offset: 0
            }
        );
        assert_eq!(
            paging("/x?limit=5&offset=10").await.unwrap(),
            Paging {
                limit: 5,
                offset: 10
            }
        );
    }

    #[tokio::test]
    async fn a_limit_outside_the_rule_or_not_a_number_names_the_field_and_its_range() {
        for (uri, field, message) in [
            (
                "/x?limit=0",
                "limit",
                "limit must be an integer from 1 to 100, got \"0\"",
            ),
            (
                "/x?limit=101",
                "limit",
                "limit must be an integer from 1 to 100, got \"101\"",
            ),
            (
                "/x?limit=abc",
                "limit",
                "limit must be an integer from 1 to 100, got \"abc\"",
            ),
            (
                "/x?offset=-1",
                "offset",
                "offset must be an integer from 0 to 18446744073709551615, got \"-1\"",
            ),
        ] {
            let e = paging(uri).await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidRequest, "{uri}");
            assert_eq!(e.body.field.as_deref(), Some(field), "{uri}");
            assert_eq!(e.body.message, message, "{uri}");
        }
    }

    #[tokio::test]
    async fn limit_alone_ignores_offset() {
        let Limit(n) = Limit::from_request_parts(&mut parts("/x?offset=abc&limit=7"), &RULE)
            .await
            .unwrap();
        assert_eq!(n, 7);
    }

    #[test]
    fn a_bad_player_id_names_the_field_and_the_rule() {
        let e = parse_player_id("a b").unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("playerId"));
        assert!(
            e.body.message.starts_with("playerId "),
            "{}",
            e.body.message
        );
        assert_eq!(parse_player_id("player_1").unwrap().as_str(), "player_1");
    }
}

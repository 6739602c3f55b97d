//! The one error type of the hot state. Callers care about one distinction: the backend is
//! unreachable or too slow ([`HotStateError::Unavailable`], answered 503 with `Retry-After` and
//! retried by workers) versus everything else (a bug or a corrupt value).

/// A hot-state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HotStateError {
    /// The backend did not answer in time or the connection is down; retrying later may work.
    #[error("hot state unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error (a script error, a wrong type).
    #[error("hot state backend error: {0}")]
    Backend(String),
    /// A stored value could not be decoded.
    #[error("corrupt hot state value: {0}")]
    Corrupt(String),
    /// Bad configuration (a malformed `REDIS_URL` or `NAMESPACE`).
    #[error("hot state configuration: {0}")]
    Config(String),
}

impl HotStateError {
    /// True when the backend is down or slow (as opposed to a bug): 503 territory.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, HotStateError::Unavailable(_))
    }
}

impl From<redis::RedisError> for HotStateError {
    fn from(e: redis::RedisError) -> Self {
        use redis::ErrorKind;
        let down = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || matches!(
                e.kind(),
                ErrorKind::ClusterDown
                    | ErrorKind::TryAgain
                    | ErrorKind::MasterDown
                    | ErrorKind::BusyLoadingError
                    | ErrorKind::ClusterConnectionNotFound
            );
        if down {
            HotStateError::Unavailable(e.to_string())
        } else {
            HotStateError::Backend(e.to_string())
        }
    }
}

//! The per-client-IP limit `RATE_LIMIT_MAX` (`docs/api.md`): a burst of that many requests,
//! refilled at that many per minute (GCRA, in memory or in Redis: [`RateLimits`]). The client
//! IP is the socket peer unless the peer is a trusted proxy, in which case `X-Forwarded-For`
//! is believed; clients in `RATE_LIMIT_EXEMPT` skip the limit.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;
use liveops_hotstate::rate_limit::retry_after_secs;
use liveops_hotstate::{HotStateError, RateLimits};

pub struct IpRateLimiter {
    /// The buckets per IP (a disabled limit when `RATE_LIMIT_MAX=0`).
    limits: Arc<dyn RateLimits>,
    exempt: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
}

impl IpRateLimiter {
    pub fn new(
        limits: Arc<dyn RateLimits>,
        exempt: Vec<IpNet>,
        trusted_proxies: Vec<IpNet>,
    ) -> Self {
        Self {
            limits,
            exempt,
            trusted_proxies,
        }
    }

    /// `Ok(Some(seconds to wait))` when the client is over its limit.
    pub async fn check(&self, ip: IpAddr) -> Result<Option<u64>, HotStateError> {
        if self.exempt.iter().any(|n| n.contains(&ip)) {
            return Ok(None);
        }
        Ok(self
            .limits
            .check(&ip.to_string())
            .await?
            .map(retry_after_secs))
    }

    /// The client's address: the socket peer, or for a trusted proxy the right-most
    /// `X-Forwarded-For` hop that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted(peer) {
            return peer;
        }
        let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) else {
            return peer;
        };
        let mut client = peer;
        for hop in xff.rsplit(',').map(str::trim) {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// Forgets clients whose buckets are full again, so per-IP state stays bounded by the
    /// number of recently active clients.
    pub async fn clean(&self) -> Result<(), HotStateError> {
        self.limits.clean().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use liveops_hotstate::{MemoryRateLimits, Quota};

    fn limiter(max: u32, exempt: Vec<IpNet>, trusted: Vec<IpNet>) -> IpRateLimiter {
        IpRateLimiter::new(
            Arc::new(MemoryRateLimits::new(Quota::per_minute(max))),
            exempt,
            trusted,
        )
    }

    #[tokio::test]
    async fn burst_then_refused_and_exempt_skips() {
        let l = limiter(3, vec!["10.0.0.0/8".parse().unwrap()], vec![]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.check(ip).await.unwrap(), None);
        }
        let wait = l.check(ip).await.unwrap().expect("refused");
        assert!((1..=20).contains(&wait), "{wait}");
        let exempt: IpAddr = "10.1.2.3".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(l.check(exempt).await.unwrap(), None);
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let l = limiter(3, vec![], vec!["127.0.0.1/32".parse().unwrap()]);
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 127.0.0.1".parse().unwrap());
        assert_eq!(
            l.client_ip("127.0.0.1".parse().unwrap(), &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            l.client_ip("192.0.2.7".parse().unwrap(), &h),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }
}

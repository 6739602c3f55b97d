//! The per-client-IP limit `RATE_LIMIT_MAX` (SPEC section 4): a burst of that many requests,
//! refilled at that many per minute (GCRA via `governor`). The client IP is the socket peer
//! unless the peer is a trusted proxy, in which case `X-Forwarded-For` is believed.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::http::HeaderMap;
use governor::Quota;
use ipnet::IpNet;

use super::limiter::KeyedLimiter;

pub struct IpRateLimiter {
    /// Disabled when `RATE_LIMIT_MAX=0`.
    limiter: KeyedLimiter<IpAddr>,
    exempt: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
}

impl IpRateLimiter {
    pub fn new(max_per_minute: u32, exempt: Vec<IpNet>, trusted_proxies: Vec<IpNet>) -> Self {
        Self {
            limiter: KeyedLimiter::new(NonZeroU32::new(max_per_minute).map(Quota::per_minute)),
            exempt,
            trusted_proxies,
        }
    }

    /// `Err(seconds to wait)` when the client is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.exempt.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        self.limiter.check(&ip)
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
    pub fn clean(&self) {
        self.limiter.clean()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_and_exempt_skips() {
        let l = IpRateLimiter::new(3, vec!["10.0.0.0/8".parse().unwrap()], vec![]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(ip).is_ok());
        }
        let wait = l.check(ip).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        let exempt: IpAddr = "10.1.2.3".parse().unwrap();
        for _ in 0..10 {
            assert!(l.check(exempt).is_ok());
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let l = IpRateLimiter::new(3, vec![], vec!["127.0.0.1/32".parse().unwrap()]);
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

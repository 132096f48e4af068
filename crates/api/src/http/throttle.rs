//! Bearer tokens that do not open anything, counted per source address: a source that keeps
//! presenting bad tokens is turned away (429 with `Retry-After`) without a database lookup until
//! its window ends, with a metric and a log line, so guessing is slow and seen.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bad tokens a source may present in one window before it is turned away, by default.
pub const MAX_FAILURES: u32 = 30;
/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sources remembered at most (the oldest windows are forgotten first when full).
const MAX_SOURCES: usize = 10_000;

/// Failed authentications by source address.
#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: u32,
    sources: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Default for AuthThrottle {
    fn default() -> Self {
        AuthThrottle::new(MAX_FAILURES)
    }
}

impl AuthThrottle {
    /// A throttle turning a source away after `max_failures` bad tokens in a window.
    pub fn new(max_failures: u32) -> AuthThrottle {
        AuthThrottle {
            max_failures: max_failures.max(1),
            sources: Mutex::default(),
        }
    }

    /// Bad tokens a source may present in a window.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// How long `source` must wait, if it is turned away now.
    pub fn blocked(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        let source = bucket(source);
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        match sources.get(&source) {
            Some((start, failures)) if *failures >= self.max_failures => {
                let ends = *start + WINDOW;
                (ends > now).then(|| ends - now)
            }
            _ => None,
        }
    }

    /// Counts a bad token from `source`; true when this one reaches the limit.
    pub fn failed(&self, source: IpAddr, now: Instant) -> bool {
        let source = bucket(source);
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            sources.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if sources.len() >= MAX_SOURCES
                && let Some(oldest) = sources
                    .iter()
                    .min_by_key(|(_, (s, _))| *s)
                    .map(|(ip, _)| *ip)
            {
                sources.remove(&oldest);
            }
        }
        let entry = sources.entry(source).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 == self.max_failures
    }
}

/// The address failures count against: an IPv6 address by its /64 (one site's network, which a
/// guesser could otherwise walk), an IPv4 address as it is.
fn bucket(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// Whether failures from `source` are counted: not from this machine, where a reverse proxy
/// in front of the service would make every caller one source (limit there instead).
pub fn counted(source: IpAddr) -> bool {
    !source.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_turned_away_after_too_many_bad_tokens_until_its_window_ends() {
        let throttle = AuthThrottle::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let start = Instant::now();
        for n in 1..MAX_FAILURES {
            assert!(!throttle.failed(a, start), "{n}");
            assert_eq!(throttle.blocked(a, start), None);
        }
        assert!(throttle.failed(a, start), "the limit is reached");
        assert_eq!(throttle.blocked(a, start), Some(WINDOW));
        assert_eq!(throttle.blocked(b, start), None, "another source is not");
        let later = start + WINDOW / 2;
        assert_eq!(throttle.blocked(a, later), Some(WINDOW / 2));
        let after = start + WINDOW;
        assert_eq!(throttle.blocked(a, after), None, "the window ended");
        assert!(!throttle.failed(a, after), "counting starts again");
        // One IPv6 network is one source.
        let (x, y): (IpAddr, IpAddr) = (
            "2001:db8:1:2::10".parse().unwrap(),
            "2001:db8:1:2:ffff::99".parse().unwrap(),
        );
        for _ in 0..MAX_FAILURES {
            throttle.failed(x, start);
        }
        assert!(throttle.blocked(y, start).is_some());
        assert!(!counted("127.0.0.1".parse().unwrap()) && counted(a));
    }
}

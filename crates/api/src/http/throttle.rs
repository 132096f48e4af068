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
/// An IPv6 site (/48) holds 65,536 /64 networks: walking them would multiply the limit, so the
/// site as a whole is turned away after this many times one source's limit.
const SITE_FACTOR: u32 = 8;

/// A counted range of addresses: an address and its prefix length.
type Source = (IpAddr, u8);

/// Failed authentications by source address.
#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: u32,
    sources: Mutex<HashMap<Source, (Instant, u32)>>,
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

    /// How long `source` must wait, if it is turned away now (it, or its IPv6 site).
    pub fn blocked(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        buckets(source)
            .into_iter()
            .flatten()
            .filter_map(|(range, factor)| match sources.get(&range) {
                Some((start, failures)) if *failures >= self.max_failures * factor => {
                    let ends = *start + WINDOW;
                    (ends > now).then(|| ends - now)
                }
                _ => None,
            })
            .max()
    }

    /// Counts a bad token from `source` (and its IPv6 site); true when this one reaches a
    /// limit.
    pub fn failed(&self, source: IpAddr, now: Instant) -> bool {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let ranges = buckets(source);
        // Room is made once, before counting, so that it cannot forget a range this call has
        // just counted.
        if sources.len() + 2 > MAX_SOURCES
            && ranges
                .iter()
                .flatten()
                .any(|(range, _)| !sources.contains_key(range))
        {
            self.make_room(&mut sources, now);
        }
        let mut reached = false;
        for (range, factor) in ranges.into_iter().flatten() {
            let entry = sources.entry(range).or_insert((now, 0));
            if now.duration_since(entry.0) >= WINDOW {
                *entry = (now, 0);
            }
            entry.1 += 1;
            reached |= entry.1 == self.max_failures * factor;
        }
        reached
    }

    /// Full: forget every window that has ended and every source not turned away, in one pass,
    /// so the next thousands of new sources find room without another (a pass per new source
    /// would be O(n) under the lock for each).
    fn make_room(&self, sources: &mut HashMap<Source, (Instant, u32)>, now: Instant) {
        let max = self.max_failures;
        sources
            .retain(|_, (start, failures)| now.duration_since(*start) < WINDOW && *failures >= max);
        if sources.len() >= MAX_SOURCES / 2 {
            // Still half full of sources being turned away: keep the newest half.
            let mut starts: Vec<Instant> = sources.values().map(|(s, _)| *s).collect();
            let middle = starts.len() / 2;
            let (_, cut, _) = starts.select_nth_unstable(middle);
            let cut = *cut;
            sources.retain(|_, (start, _)| *start > cut);
        }
    }
}

/// The ranges failures count against, each with its limit as a multiple of one source's: an
/// IPv4 address as it is; an IPv6 address by its /64 (one site's network, which a guesser could
/// otherwise walk) and by its /48 (the site, whose 65,536 /64s a guesser could walk instead),
/// at [`SITE_FACTOR`] times the limit.
fn buckets(source: IpAddr) -> [Option<(Source, u32)>; 2] {
    match source {
        IpAddr::V6(v6) => {
            let prefix = |bits: u32| {
                let kept = u128::from(v6) & !((1u128 << (128 - bits)) - 1);
                (IpAddr::V6(kept.into()), bits as u8)
            };
            [Some((prefix(64), 1)), Some((prefix(48), SITE_FACTOR))]
        }
        v4 => [Some(((v4, 32), 1)), None],
    }
}

/// Whether failures from `source` are counted: not from this machine, where a reverse proxy
/// in front of the service would make every caller one source (name the proxy with
/// `--trusted-proxy`, and its callers are counted by the address it forwards).
pub fn counted(source: IpAddr) -> bool {
    !source.is_loopback()
}

/// Who is calling: the peer, or, when the peer is a trusted reverse proxy, the address it
/// forwarded. `X-Forwarded-For` lists addresses left to right, each proxy appending the one it
/// saw; only the trusted proxies' entries can be believed, so the caller is the rightmost entry
/// that is not itself a trusted proxy. A caller's own `X-Forwarded-For`, sent straight to the
/// service or through an untrusted hop, changes nothing. An entry that does not parse, where
/// the walk needs it, leaves the peer as the caller.
pub fn client_address<'h>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'h str>,
    trusted: &[IpAddr],
) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut caller = peer;
    for entry in forwarded_for.rev().flat_map(|h| h.rsplit(',')) {
        let entry = entry.trim();
        let Ok(address) = entry.parse::<IpAddr>().map(|a| a.to_canonical()) else {
            return peer;
        };
        caller = address;
        if !trusted.contains(&address) {
            break;
        }
    }
    caller
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

    #[test]
    fn walking_the_networks_of_one_ipv6_site_turns_the_site_away() {
        let throttle = AuthThrottle::new(3);
        let start = Instant::now();
        let network = |n: u16| -> IpAddr { format!("2001:db8:7:{n:x}::1").parse().unwrap() };
        // Each /64 stays under its own limit (2 of 3), but the site reaches 8 x 3.
        let mut reached = false;
        for n in 0..12 {
            for _ in 0..2 {
                reached |= throttle.failed(network(n), start);
            }
        }
        assert!(reached, "the site's limit is reported once reached");
        assert_eq!(
            throttle.blocked(network(500), start),
            Some(WINDOW),
            "a fresh /64 in the same /48 is turned away"
        );
        let elsewhere: IpAddr = "2001:db8:8::1".parse().unwrap();
        assert_eq!(
            throttle.blocked(elsewhere, start),
            None,
            "another site is not"
        );
        assert_eq!(throttle.blocked(network(500), start + WINDOW), None);
    }

    #[test]
    fn a_full_table_forgets_the_sources_not_turned_away_and_keeps_those_that_are() {
        let throttle = AuthThrottle::new(3);
        let start = Instant::now();
        let guesser: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..3 {
            throttle.failed(guesser, start);
        }
        for n in 0..(MAX_SOURCES as u32 + 10) {
            let source = IpAddr::V4((0x0a00_0000 + n).into());
            throttle.failed(source, start + Duration::from_millis(1));
        }
        let kept = throttle.sources.lock().expect("the lock").len();
        assert!(kept < MAX_SOURCES / 2, "room again after one pass: {kept}");
        assert!(
            throttle.blocked(guesser, start).is_some(),
            "a source being turned away is not forgotten by flooding the table"
        );
    }

    #[test]
    fn the_caller_behind_a_trusted_proxy_is_the_address_it_forwarded() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = ip("127.0.0.1");
        let inner = ip("10.0.0.5");
        let trusted = [proxy, inner];
        let caller = |peer: &str, headers: &[&'static str]| {
            client_address(ip(peer), headers.iter().copied(), &trusted)
        };
        // No proxy trusted for this peer: its own X-Forwarded-For is ignored.
        assert_eq!(caller("203.0.113.9", &["192.0.2.1"]), ip("203.0.113.9"));
        // Through the proxy: the address it saw.
        assert_eq!(caller("127.0.0.1", &["203.0.113.9"]), ip("203.0.113.9"));
        // A caller's forged entry is to the left of what the proxy appended.
        assert_eq!(
            caller("127.0.0.1", &["192.0.2.1, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Two trusted proxies, and the header split over two lines.
        assert_eq!(
            caller("127.0.0.1", &["192.0.2.1, 203.0.113.9", "10.0.0.5"]),
            ip("203.0.113.9")
        );
        // Nothing forwarded, or something that is no address: the peer.
        assert_eq!(caller("127.0.0.1", &[]), proxy);
        assert_eq!(caller("127.0.0.1", &["unknown"]), proxy);
        // Only trusted proxies in the chain: the leftmost of them.
        assert_eq!(caller("127.0.0.1", &["10.0.0.5"]), inner);
        // IPv6.
        assert_eq!(caller("127.0.0.1", &["2001:db8::7"]), ip("2001:db8::7"));
    }
}

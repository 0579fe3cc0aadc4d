//! Rate limits for log-in and sign-up (in memory, per web node).
//!
//! Log-in limits count *failures*, never attempts, so nobody can lock another person out by
//! guessing at their account: failures from one address close that address (and that
//! address's tries at that account) for a while; failures at one account from anywhere only
//! slow further tries at it, so the right password from another address still gets in.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failures from one address (any account) before it must wait for the window to pass.
pub const IP_FAILURES: u32 = 30;
/// Failures from one address at one account before that pair must wait.
pub const PAIR_FAILURES: u32 = 5;
/// Failures at one account (from anywhere) after which each try at it is slowed.
pub const ACCOUNT_FAILURES: u32 = 20;
/// How long failures are remembered, counted from the first one.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The pause before checking a password of an account under attack.
pub const SLOWDOWN: Duration = Duration::from_secs(2);

/// Failure counts per key over a fixed window; bounded in memory (old keys are evicted).
struct Failures {
    counts: moka::sync::Cache<String, Arc<AtomicU32>>,
}

impl Failures {
    fn new() -> Self {
        Self {
            counts: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(WINDOW)
                .build(),
        }
    }

    fn get(&self, key: &str) -> u32 {
        self.counts
            .get(key)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn add(&self, key: String) {
        self.counts
            .get_with(key, || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }

    fn clear(&self, key: &str) {
        self.counts.invalidate(key);
    }
}

/// What to do with a log-in attempt before checking its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Check it, after this pause.
    Slow(Duration),
    /// Refuse it (429) without checking.
    Closed,
}

pub struct Limits {
    ip: Failures,
    pair: Failures,
    account: Failures,
    signup_ip: DefaultKeyedRateLimiter<String>,
}

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every).map_or_else(|| Quota::per_second(burst), |q| q.allow_burst(burst))
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ip: Failures::new(),
            pair: Failures::new(),
            account: Failures::new(),
            // 5 sign-ups at once from one address, then one a minute.
            signup_ip: RateLimiter::keyed(quota(5, Duration::from_secs(60))),
        }
    }
}

fn pair_key(ip: &str, account: &str) -> String {
    format!("{}\n{ip}", account.to_lowercase())
}

impl Limits {
    /// Whether a log-in attempt at `account` from `ip` may go ahead.
    pub fn login_gate(&self, ip: &str, account: &str) -> Gate {
        if self.ip.get(ip) >= IP_FAILURES || self.pair.get(&pair_key(ip, account)) >= PAIR_FAILURES
        {
            return Gate::Closed;
        }
        if self.account.get(&account.to_lowercase()) >= ACCOUNT_FAILURES {
            return Gate::Slow(SLOWDOWN);
        }
        Gate::Open
    }

    /// Records a wrong name or password.
    pub fn login_failed(&self, ip: &str, account: &str) {
        self.ip.add(ip.to_owned());
        self.pair.add(pair_key(ip, account));
        self.account.add(account.to_lowercase());
    }

    /// A correct log-in forgets that address's failures at the account.
    pub fn login_succeeded(&self, ip: &str, account: &str) {
        self.pair.clear(&pair_key(ip, account));
    }

    pub fn signup(&self, ip: &str) -> bool {
        self.signup_ip.check_key(&ip.to_owned()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_cannot_lock_an_account() {
        let l = Limits::default();
        for i in 0..100 {
            let ip = format!("10.0.{}.{}", i / 200, i % 200);
            assert_ne!(l.login_gate(&ip, "alice"), Gate::Closed);
            l.login_failed(&ip, "alice");
        }
        // Slowed, but the owner at her own address is never refused.
        assert_eq!(l.login_gate("192.0.2.1", "alice"), Gate::Slow(SLOWDOWN));
        // Attempts are not failures: succeeding as often as one likes stays open.
        for _ in 0..100 {
            assert_eq!(l.login_gate("192.0.2.2", "bob"), Gate::Open);
            l.login_succeeded("192.0.2.2", "bob");
        }
    }

    #[test]
    fn one_address_guessing_is_closed() {
        let l = Limits::default();
        for _ in 0..PAIR_FAILURES {
            assert_eq!(l.login_gate("198.51.100.7", "carol"), Gate::Open);
            l.login_failed("198.51.100.7", "carol");
        }
        assert_eq!(l.login_gate("198.51.100.7", "carol"), Gate::Closed);
        // Other accounts from that address stay open until the address's own budget is spent.
        assert_eq!(l.login_gate("198.51.100.7", "dave"), Gate::Open);
        for i in 0..IP_FAILURES {
            l.login_failed("198.51.100.7", &format!("user{i}"));
        }
        assert_eq!(l.login_gate("198.51.100.7", "erin"), Gate::Closed);
        assert_eq!(l.login_gate("198.51.100.8", "carol"), Gate::Open);
    }
}

//! Rate limits for log-in and sign-up, per client address and per account (in memory, per
//! web node).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct Limits {
    login_ip: DefaultKeyedRateLimiter<String>,
    login_account: DefaultKeyedRateLimiter<String>,
    signup_ip: DefaultKeyedRateLimiter<String>,
}

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every).map_or_else(|| Quota::per_second(burst), |q| q.allow_burst(burst))
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // 20 attempts at once from one address, then one every 3 s.
            login_ip: RateLimiter::keyed(quota(20, Duration::from_secs(3))),
            // 5 attempts at once on one account, then one a minute: slows password guessing
            // from many addresses.
            login_account: RateLimiter::keyed(quota(5, Duration::from_secs(60))),
            // 5 sign-ups at once from one address, then one a minute.
            signup_ip: RateLimiter::keyed(quota(5, Duration::from_secs(60))),
        }
    }
}

impl Limits {
    /// Takes one log-in attempt from both budgets; false when either is spent.
    pub fn login(&self, ip: &str, account: &str) -> bool {
        let ip_ok = self.login_ip.check_key(&ip.to_owned()).is_ok();
        let account_ok = self
            .login_account
            .check_key(&account.to_lowercase())
            .is_ok();
        ip_ok && account_ok
    }

    pub fn signup(&self, ip: &str) -> bool {
        self.signup_ip.check_key(&ip.to_owned()).is_ok()
    }
}

//! Limits on signing up and logging in, shared by every node through the store.
//!
//! Sign-ups: a few at once from one address, then one a minute. Log-in limits count *failures*, never attempts, so nobody can lock another person out by guessing
//! at their account: failures from one address close that address (and that address's tries
//! at that account) for a while; failures at one account from anywhere only slow further
//! tries at it, so the right password from another address still gets in.

use std::time::Duration;

use mongodb::Database;

use super::window::Window;
use crate::error::Result;

/// Failures from one address (any account) before it must wait for the window to pass.
pub const IP_FAILURES: u64 = 30;
/// Failures from one address at one account before that pair must wait.
pub const PAIR_FAILURES: u64 = 5;
/// Failures at one account (from anywhere) after which each try at it is slowed.
pub const ACCOUNT_FAILURES: u64 = 20;
/// How long failures are remembered (a sliding window).
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The pause before checking a password of an account under attack.
pub const SLOWDOWN: Duration = Duration::from_secs(2);

/// Sign-ups from one address at once, before they are let through one a minute.
pub const SIGNUP_BURST: u32 = 5;
pub const SIGNUP_PERIOD: Duration = Duration::from_secs(60);

const IP: &str = "login-ip";
const PAIR: &str = "login-pair";
const ACCOUNT: &str = "login-account";

/// What to do with a log-in attempt before checking its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Check it, after this pause.
    Slow(Duration),
    /// Refuse it (429) without checking.
    Closed,
}

fn window() -> Window {
    Window::new(WINDOW)
}

fn pair_key(ip: &str, account: &str) -> String {
    format!("{ip}|{}", account.to_lowercase())
}

/// Whether a log-in attempt at `account` from `ip` may go ahead.
pub async fn gate(db: &Database, ip: &str, account: &str) -> Result<Gate> {
    let pair = pair_key(ip, account);
    let account = account.to_lowercase();
    let counts = window()
        .counts(db, &[(IP, ip), (PAIR, &pair), (ACCOUNT, &account)])
        .await?;
    Ok(match counts[..] {
        [ip, pair, _] if ip >= IP_FAILURES || pair >= PAIR_FAILURES => Gate::Closed,
        [_, _, account] if account >= ACCOUNT_FAILURES => Gate::Slow(SLOWDOWN),
        _ => Gate::Open,
    })
}

/// Records a wrong name or password.
pub async fn failed(db: &Database, ip: &str, account: &str) -> Result<()> {
    let w = window();
    let pair = pair_key(ip, account);
    let account = account.to_lowercase();
    tokio::try_join!(
        w.add(db, IP, ip),
        w.add(db, PAIR, &pair),
        w.add(db, ACCOUNT, &account),
    )?;
    Ok(())
}

/// A correct log-in forgets that address's failures at the account.
pub async fn succeeded(db: &Database, ip: &str, account: &str) -> Result<()> {
    window().clear(db, PAIR, &pair_key(ip, account)).await
}

/// Takes a sign-up from `ip` out of its allowance; `false` when it is spent.
pub async fn signup(db: &Database, ip: &str) -> Result<bool> {
    super::bucket(db, "signup-ip", ip, SIGNUP_BURST, SIGNUP_PERIOD).await
}

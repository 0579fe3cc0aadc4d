//! The real `forge` binary run as a child process: stopping it as an operator would.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Sends SIGTERM to `child`.
pub fn terminate(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

/// Waits for `child` to exit; fails the test (saying `what`) if it has not within `limit`.
pub fn exited(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! The program the embedded store runs, how to get it, and finding it.

use std::path::PathBuf;

/// The program the embedded store runs.
pub const SERVER_BINARY: &str = "secantusd-rs";
/// What to tell a user who has no server installed.
pub const INSTALL_HINT: &str =
    "cargo install secantus-mdb --version 0.5.3-beta.196 --ignore-rust-version --locked";

/// `secantusd-rs` on PATH, else in cargo's bin folder (where `cargo install` puts it).
pub fn find_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(SERVER_BINARY))
        .find(|p| p.is_file())
}

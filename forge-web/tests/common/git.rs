//! The git client for tests: the system `git`, without prompts, user or system configuration,
//! in a home of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A git client with its own home directory (clones share it: the same home).
#[derive(Clone)]
pub struct Git {
    home: Arc<tempfile::TempDir>,
}

impl Git {
    pub fn new() -> Self {
        Self {
            home: Arc::new(tempfile::tempdir().unwrap()),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A path in the client's home.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.home().join(name)
    }

    /// Runs git in `cwd`; returns (success, stdout+stderr).
    pub async fn run(&self, cwd: &Path, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("git");
        cmd.args([
            "-c",
            "user.name=Tester",
            "-c",
            "user.email=tester@example.org",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(cwd)
        .env("HOME", self.home())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_ASKPASS");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs git, which must succeed; returns its output.
    pub async fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let (ok, text) = self.run(cwd, args).await;
        assert!(ok, "git {args:?} failed: {text}");
        text
    }

    /// A work tree named `name` in the home, with git initialised.
    pub async fn work(&self, name: &str) -> PathBuf {
        let dir = self.dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        self.ok(&dir, &["init", "-q"]).await;
        dir
    }

    /// Writes `file` (its folders made) and commits everything; returns the commit's id.
    pub async fn commit(&self, cwd: &Path, file: &str, content: &str, message: &str) -> String {
        if let Some(parent) = Path::new(file).parent() {
            std::fs::create_dir_all(cwd.join(parent)).unwrap();
        }
        std::fs::write(cwd.join(file), content).unwrap();
        self.ok(cwd, &["add", "-A"]).await;
        self.ok(cwd, &["commit", "-q", "-m", message]).await;
        self.ok(cwd, &["rev-parse", "HEAD"]).await.trim().to_owned()
    }
}

/// `base` (`http://host:port`) with credentials, then `path`.
pub fn with_credentials(base: &str, user: &str, secret: &str, path: &str) -> String {
    format!("{}//{user}:{secret}@{}{path}", &base[..5], &base[7..])
}

//! The README's operator commands, run as written: every line of its ```sh blocks that goes
//! through `scripts/forge` runs with `bash -c` from the clone's root, against a fresh test
//! database, with `FORGE_BIN` set to this build's binary (so no release build is needed).
//! Then the first administrator those lines create logs in and opens the site admin pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::StatusCode;
use common::{Browser, TestApp};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The command lines of the document's shell blocks.
fn shell_lines(markdown: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in markdown.lines() {
        let line = line.trim();
        if inside {
            if line.starts_with("```") {
                inside = false;
            } else if !line.is_empty() && !line.starts_with('#') {
                lines.push(line.to_owned());
            }
        } else if matches!(line, "```sh" | "```bash" | "```shell") {
            inside = true;
        }
    }
    lines
}

/// The word after `flag` in a command line.
fn arg_after<'a>(line: &'a str, flag: &str) -> &'a str {
    let mut words = line.split_whitespace();
    words.find(|w| *w == flag);
    words
        .next()
        .unwrap_or_else(|| panic!("no {flag} in {line}"))
}

#[test]
fn shell_blocks_are_found() {
    let md = "text\n```sh\nscripts/run\n# comment\n\necho 'x' | scripts/forge user create\n```\n```rust\nscripts/forge no\n```\n";
    assert_eq!(
        shell_lines(md),
        ["scripts/run", "echo 'x' | scripts/forge user create"]
    );
}

#[tokio::test]
async fn readme_operator_commands_run_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let commands: Vec<String> = shell_lines(&readme)
        .into_iter()
        .filter(|l| l.contains("scripts/forge "))
        .collect();
    let admin_line = commands
        .iter()
        .find(|l| l.contains(" user create ") && l.contains("--admin"))
        .expect("the README shows how to create the first admin with scripts/forge");
    let username = arg_after(admin_line, "--username").to_owned();
    let password = admin_line
        .split_once("echo '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(pw, _)| pw.to_owned())
        .expect("the password is echoed in single quotes");

    let db_name = common::fresh_db_name("readme");
    let data = tempfile::tempdir().unwrap();
    for line in &commands {
        let out = Command::new("bash")
            .arg("-c")
            .arg(line)
            .current_dir(repo_root())
            .env("FORGE_BIN", env!("CARGO_BIN_EXE_forge"))
            .env("FORGE_MONGODB_URI", common::store_uri())
            .env("FORGE_DB_NAME", &db_name)
            .env("FORGE_DATA_DIR", data.path())
            .env_remove("FORGE_CONFIG")
            .env_remove("FORGE_AMQP_URL")
            .env_remove("FORGE_BASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The administrator exists, logs in with the README's password and is a site admin.
    let app = TestApp::with_config("readme", |c| c.db_name = db_name.clone()).await;
    let user = forge_tools::users::by_username(app.forge.db(), &username)
        .await
        .unwrap()
        .expect("the README's command created the account");
    assert!(user.site_admin);
    let login = app
        .post_form(
            "/auth/login",
            &Browser::anonymous(),
            &[("username", &username), ("password", &password)],
        )
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let session = login.set_cookie("forge_session").unwrap();
    let admin = Browser {
        csrf: forge_tools::sessions::csrf_token(&session),
        session: Some(session),
        ..Browser::anonymous()
    };
    assert_eq!(app.get("/nf/admin/", &admin).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/u/{username}/"), &admin).await.status,
        StatusCode::OK,
        "with its personal project"
    );
}

//! Where a repository lives on disk and the URL people clone it from. The path comes from the
//! tool id, never from user input.

use std::path::PathBuf;

use crate::config::Config;
use crate::projects::Project;
use crate::tool::ToolInstance;

/// Where a repository lives: `<data dir>/repos/<tool id>.git`.
pub fn repo_path(config: &Config, tool: &ToolInstance) -> PathBuf {
    repos_root(config).join(format!("{}.git", tool.id))
}

/// The folder of every repository: `<data dir>/repos`.
pub fn repos_root(config: &Config) -> PathBuf {
    config.data_dir.join("repos")
}

/// The folder repositories of removed tools are kept in: `<data dir>/repos-removed`.
pub fn removed_repos_root(config: &Config) -> PathBuf {
    config.data_dir.join("repos-removed")
}

/// The public clone URL of a repository tool.
pub fn clone_url(config: &Config, project: &Project, tool: &ToolInstance) -> String {
    format!(
        "{}/git/{}/{}/{}.git",
        config.base_url(),
        project.neighborhood.prefix(),
        project.shortname,
        tool.mount
    )
}

//! Where a repository lives on disk and the URL people clone it from. The path comes from the
//! tool id, never from user input.

use std::path::PathBuf;

use crate::config::Config;
use crate::projects::Project;
use crate::tool::ToolInstance;

/// Where a repository lives: `<data dir>/repos/<tool id>.git`.
pub fn repo_path(config: &Config, tool: &ToolInstance) -> PathBuf {
    config
        .data_dir
        .join("repos")
        .join(format!("{}.git", tool.id))
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

//! [`ProjectCtx`]: a project as a viewer sees it (loaded, with its tools and the viewer's
//! rights), and the permission checks on it and its tools.

use crate::acl::{self, Subject};
use crate::error::Result;
use crate::instances::ToolInstance;
use crate::projects::Project;

/// A project as a viewer sees it: loaded, with its tools and the viewer's rights.
#[derive(Debug, Clone)]
pub struct ProjectCtx {
    pub project: Project,
    pub tools: Vec<ToolInstance>,
    pub subject: Subject,
}

impl ProjectCtx {
    /// Checks a project-level permission (see [`acl::decide`] for the error chosen).
    pub fn authorize(&self, permission: &str) -> Result<()> {
        acl::decide(&self.subject, &[&self.project.acl], permission, "project")
    }

    pub fn can(&self, permission: &str) -> bool {
        acl::allows(&self.subject, &[&self.project.acl], permission)
    }

    pub fn tool(&self, mount: &str) -> Option<&ToolInstance> {
        self.tools.iter().find(|t| t.mount == mount)
    }

    /// Checks a permission on one tool (its ACL first, then the project's).
    pub fn authorize_tool(&self, tool: &ToolInstance, permission: &str) -> Result<()> {
        acl::decide(
            &self.subject,
            &[&tool.acl, &self.project.acl],
            permission,
            "tool",
        )
    }

    pub fn can_tool(&self, tool: &ToolInstance, permission: &str) -> bool {
        acl::allows(&self.subject, &[&tool.acl, &self.project.acl], permission)
    }
}

//! [`Viewer`]: who is making a request, and from where — what every action checks rights
//! against and records events for.

use crate::acl::Subject;
use crate::error::{Error, Result};
use crate::events::EventContext;
use crate::ids::UserId;
use crate::projects::Project;
use crate::users::User;

/// Who is making a request, and from where.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub user: Option<User>,
    pub ip: Option<String>,
}

impl Viewer {
    pub fn user_id(&self) -> Option<UserId> {
        self.user.as_ref().map(|u| u.id)
    }

    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.username.as_str())
    }

    pub fn is_site_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.site_admin)
    }

    pub fn subject(&self, project: Option<&Project>) -> Subject {
        Subject {
            user: self.user_id(),
            site_admin: self.is_site_admin(),
            role: project.and_then(|p| self.user_id().and_then(|u| p.role_of(u))),
        }
    }

    /// Requires a logged-in user.
    pub fn require_user(&self) -> Result<&User> {
        self.user.as_ref().ok_or(Error::Unauthenticated)
    }

    pub fn event_context(&self, project: Option<&Project>, tool: Option<&str>) -> EventContext {
        EventContext {
            neighborhood: project.map(|p| p.neighborhood.prefix().to_owned()),
            project: project.map(|p| p.shortname.clone()),
            tool: tool.map(str::to_owned),
            user: self.username().map(str::to_owned),
            visitor: None,
            private: project.is_some_and(|p| !p.is_public()),
            ip: self.ip.clone(),
        }
    }
}

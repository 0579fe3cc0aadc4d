//! Project members: listing them, adding, changing roles, removing (never the last admin).

use bson::{Bson, doc};

use crate::acl::{Role, perm};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::project_ctx::ProjectCtx;
use crate::projects;
use crate::tool::Forge;
use crate::users::{self, User};
use crate::viewer::Viewer;

impl Forge {
    /// Members with their accounts, admins first.
    pub async fn members(&self, ctx: &ProjectCtx) -> Result<Vec<(User, Role)>> {
        let ids: Vec<UserId> = ctx.project.members.iter().map(|m| m.user_id).collect();
        let users = users::by_ids(self.db(), &ids).await?;
        let mut out: Vec<(User, Role)> = ctx
            .project
            .members
            .iter()
            .filter_map(|m| {
                users
                    .iter()
                    .find(|u| u.id == m.user_id)
                    .map(|u| (u.clone(), m.role))
            })
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.username.cmp(&b.0.username)));
        Ok(out)
    }

    /// Adds a member or changes a member's role.
    pub async fn set_member(
        &self,
        viewer: &Viewer,
        ctx: &ProjectCtx,
        username: &str,
        role: Role,
    ) -> Result<()> {
        ctx.authorize(perm::ADMIN)?;
        let user = users::by_username(self.db(), username.trim())
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "username",
                    format!("There is no user named \"{}\"", username.trim()),
                )
            })?;
        if ctx.project.role_of(user.id) == Some(Role::Admin) && role != Role::Admin {
            self.keep_an_admin(ctx, user.id)?;
        }
        projects::set_member(self.db(), ctx.project.id, user.id, role).await?;
        self.event(
            "project.member.set",
            viewer,
            Some(&ctx.project),
            None,
            Bson::Document(doc! {"member": &user.username, "role": role.as_str()}),
        );
        Ok(())
    }

    pub async fn remove_member(
        &self,
        viewer: &Viewer,
        ctx: &ProjectCtx,
        username: &str,
    ) -> Result<()> {
        ctx.authorize(perm::ADMIN)?;
        let user = users::by_username(self.db(), username)
            .await?
            .ok_or(Error::NotFound("member"))?;
        if ctx.project.role_of(user.id).is_none() {
            return Err(Error::NotFound("member"));
        }
        self.keep_an_admin(ctx, user.id)?;
        projects::remove_member(self.db(), ctx.project.id, user.id).await?;
        self.event(
            "project.member.remove",
            viewer,
            Some(&ctx.project),
            None,
            Bson::Document(doc! {"member": &user.username}),
        );
        Ok(())
    }

    /// Refuses a change that would leave the project without an admin.
    fn keep_an_admin(&self, ctx: &ProjectCtx, losing: UserId) -> Result<()> {
        let others = ctx
            .project
            .members
            .iter()
            .filter(|m| m.role == Role::Admin && m.user_id != losing)
            .count();
        if others == 0 {
            return Err(Error::conflict(
                "last_admin",
                "A project needs at least one admin; make someone else admin first",
            ));
        }
        Ok(())
    }
}

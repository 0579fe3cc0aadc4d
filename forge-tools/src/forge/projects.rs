//! Projects: loading one as a viewer sees it, creating, editing and deleting.

use bson::Bson;

use crate::acl::{self, perm};
use crate::error::{Error, Result};
use crate::events::EventContext;
use crate::project_ctx::ProjectCtx;
use crate::projects::{self, Neighborhood, NewProject, Project};
use crate::search::indexer::queue_project;
use crate::tool::{Forge, instance};
use crate::viewer::Viewer;

/// Editable project settings.
#[derive(Debug, Clone, Default)]
pub struct ProjectUpdate {
    pub name: String,
    pub summary: String,
    pub description: String,
    pub private: bool,
}

impl Forge {
    /// Loads a live project the viewer may read; `NotFound` otherwise, so private projects
    /// do not reveal that they exist.
    pub async fn load_project(
        &self,
        viewer: &Viewer,
        nbhd: Neighborhood,
        shortname: &str,
    ) -> Result<ProjectCtx> {
        let project = self.readable_project(viewer, nbhd, shortname).await?;
        let tools = instance::list(self.db(), project.id).await?;
        let ctx = ProjectCtx {
            subject: viewer.subject(Some(&project)),
            project,
            tools,
        };
        ctx.authorize(perm::READ)?;
        Ok(ctx)
    }

    /// A live project the viewer may read, without its tools (for checks that need only
    /// the project); `NotFound` otherwise, as [`Forge::load_project`].
    pub async fn readable_project(
        &self,
        viewer: &Viewer,
        nbhd: Neighborhood,
        shortname: &str,
    ) -> Result<Project> {
        let project = projects::get(self.db(), nbhd, shortname)
            .await?
            .ok_or(Error::NotFound("project"))?;
        acl::decide(
            &viewer.subject(Some(&project)),
            &[&project.acl],
            perm::READ,
            "project",
        )?;
        Ok(project)
    }

    /// Whether the viewer may read the project (for listings that show several).
    pub fn can_read(&self, viewer: &Viewer, project: &Project) -> bool {
        acl::allows(&viewer.subject(Some(project)), &[&project.acl], perm::READ)
    }

    /// Records a view of an HTML page of a project or of one of its tools: `context` is the
    /// viewer's ([`Viewer::event_context`]) with the project and, on a tool's page, its mount;
    /// `extra` says what was viewed where the page knows (a wiki page's name), else `Null`.
    /// The web app calls this once per page it serves (`forge_web::ctx::track_views`).
    pub fn page_view(&self, context: EventContext, extra: Bson) {
        self.events().record("page.view", context, extra);
    }

    pub async fn create_project(&self, viewer: &Viewer, new: NewProject) -> Result<Project> {
        let user = viewer.require_user()?;
        if !user.site_admin {
            crate::ratelimit::hit(
                self.db(),
                "project.create",
                user.id,
                self.config().projects_per_hour,
            )
            .await?;
        }
        let project = projects::create(self.db(), new, user.id).await?;
        self.install_default_tools(&project).await?;
        let a = crate::activity::Activity::new(format!("project {}", project.name), project.url())
            .summary(&project.summary);
        let extra = Bson::Document(a.into_extra(bson::Document::new()));
        self.event("project.create", viewer, Some(&project), None, extra);
        queue_project(self, project.id).await?;
        Ok(project)
    }

    pub async fn update_project(
        &self,
        viewer: &Viewer,
        ctx: &ProjectCtx,
        upd: ProjectUpdate,
    ) -> Result<Project> {
        ctx.authorize(perm::ADMIN)?;
        let mut errs = projects::validate(&NewProject {
            neighborhood: ctx.project.neighborhood,
            shortname: ctx.project.shortname.clone(),
            name: upd.name.clone(),
            summary: upd.summary.clone(),
            private: upd.private,
        });
        // The short name is not editable here; only report the editable fields.
        errs.0.retain(|(f, _)| f != "shortname");
        if upd.description.len() > 100_000 {
            errs.add(
                "description",
                "Description must be at most 100,000 characters",
            );
        }
        errs.into_result()?;
        let mut project = ctx.project.clone();
        project.name = upd.name.trim().to_owned();
        project.summary = upd.summary.trim().to_owned();
        project.description = upd.description;
        acl::set_anonymous_read(&mut project.acl, !upd.private);
        projects::save(self.db(), &project).await?;
        self.event("project.update", viewer, Some(&project), None, Bson::Null);
        queue_project(self, project.id).await?;
        Ok(project)
    }

    /// Soft-deletes a project (its name stays reserved). Personal projects go with their user.
    pub async fn delete_project(&self, viewer: &Viewer, ctx: &ProjectCtx) -> Result<()> {
        ctx.authorize(perm::ADMIN)?;
        if ctx.project.neighborhood == Neighborhood::Users {
            return Err(Error::conflict(
                "personal_project",
                "A personal project cannot be deleted",
            ));
        }
        projects::soft_delete(self.db(), ctx.project.id).await?;
        self.event(
            "project.delete",
            viewer,
            Some(&ctx.project),
            None,
            Bson::Null,
        );
        queue_project(self, ctx.project.id).await?;
        Ok(())
    }
}

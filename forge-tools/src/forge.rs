//! The domain service: one handle over the store, the event log, the task queue and the tool
//! registry, with the actions the web layer and the command line call.

use std::sync::Arc;

use bson::{Bson, DateTime, doc};
use forge_tasks::Tasks;
use mongodb::Database;

use crate::acl::{self, Role, Subject, perm};
use crate::attachments::AttachmentStore;
use crate::config::Config;
use crate::error::{Error, FieldErrors, Result};
use crate::events::{EventContext, EventLog};
use crate::ids::UserId;
use crate::names;
use crate::projects::{self, Neighborhood, NewProject, Project};
use crate::tool::{NavEntry, ToolInstance, ToolRegistry, instance};
use crate::users::{self, NewUser, User};
use crate::{sessions, tokens};

/// Shared handle to the domain; cheap to clone.
#[derive(Clone)]
pub struct Forge {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    config: Config,
    events: EventLog,
    tasks: Tasks,
    tools: ToolRegistry,
    attachments: AttachmentStore,
    search: crate::search::SearchIndex,
    mailer: crate::mail::Mailer,
    git_slots: crate::repo::GitSlots,
}

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
            ip: self.ip.clone(),
        }
    }
}

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

/// Editable project settings.
#[derive(Debug, Clone, Default)]
pub struct ProjectUpdate {
    pub name: String,
    pub summary: String,
    pub description: String,
    pub private: bool,
}

/// Changes to an installed tool.
#[derive(Debug, Clone, Default)]
pub struct ToolUpdate {
    pub label: String,
    pub mount: String,
    pub ordinal: i32,
}

impl Forge {
    /// Opens the domain over a connected store: creates indexes and starts the event writer.
    pub async fn open(
        db: Database,
        config: Config,
        tasks: Tasks,
        tools: ToolRegistry,
        search_writer: bool,
    ) -> Result<Self> {
        users::ensure_indexes(&db).await?;
        sessions::ensure_indexes(&db).await?;
        tokens::ensure_indexes(&db).await?;
        projects::ensure_indexes(&db).await?;
        instance::ensure_indexes(&db).await?;
        crate::events::ensure_indexes(&db).await?;
        Tasks::ensure_indexes(&db).await?;
        crate::links::ensure_indexes(&db).await?;
        crate::attachments::ensure_indexes(&db).await?;
        crate::wiki::pages::ensure_indexes(&db).await?;
        crate::ratelimit::ensure_indexes(&db).await?;
        crate::repo::refresh::ensure_indexes(&db).await?;
        crate::notify::ensure_indexes(&db).await?;
        let events = EventLog::start(&db);
        let attachments = AttachmentStore::new(&config.data_dir, config.max_attachment_bytes);
        let mailer = crate::mail::Mailer::from_config(&config)?;
        let search =
            crate::search::SearchIndex::open(&config.data_dir.join("search"), search_writer)?;
        let git_slots = crate::repo::GitSlots::new(config.max_git_processes);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                config,
                events,
                tasks,
                tools,
                attachments,
                search,
                mailer,
                git_slots,
            }),
        })
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn events(&self) -> &EventLog {
        &self.inner.events
    }

    /// Outgoing mail (SMTP, or `.eml` files under the data dir).
    pub fn mailer(&self) -> &crate::mail::Mailer {
        &self.inner.mailer
    }

    /// The search index (written only by the process that runs tasks).
    pub fn search(&self) -> &crate::search::SearchIndex {
        &self.inner.search
    }

    pub fn tasks(&self) -> &Tasks {
        &self.inner.tasks
    }

    pub fn tools(&self) -> &ToolRegistry {
        &self.inner.tools
    }

    pub fn attachments(&self) -> &AttachmentStore {
        &self.inner.attachments
    }

    /// The bound on git processes (clone, push, archive, blame) running at once.
    pub fn git_slots(&self) -> &crate::repo::GitSlots {
        &self.inner.git_slots
    }

    fn event(
        &self,
        kind: &str,
        viewer: &Viewer,
        project: Option<&Project>,
        tool: Option<&str>,
        extra: Bson,
    ) {
        self.inner
            .events
            .record(kind, viewer.event_context(project, tool), extra);
    }

    // ---- accounts ----

    /// Creates an account and its personal project (`/u/<username>/`), as sign-up does
    /// (reserved usernames refused).
    pub async fn sign_up(&self, viewer: &Viewer, new: NewUser) -> Result<User> {
        self.sign_up_as(viewer, new, names::Reserved::Refuse).await
    }

    /// [`Forge::sign_up`], with reserved usernames refused or allowed (the operator's CLI).
    /// The account and its personal project are both checked before anything is written, so
    /// a refused sign-up leaves nothing behind.
    pub async fn sign_up_as(
        &self,
        viewer: &Viewer,
        new: NewUser,
        reserved: names::Reserved,
    ) -> Result<User> {
        let personal = NewProject {
            neighborhood: Neighborhood::Users,
            shortname: new.username.clone(),
            name: users::display_name_for(&new),
            summary: String::new(),
            private: false,
        };
        let mut errs = users::check(self.db(), &new, reserved).await?;
        // The personal project's name is the username and its title the display name: its
        // problems are reported on those fields (once).
        for (field, message) in projects::check(self.db(), &personal, reserved).await?.0 {
            let field = match field.as_str() {
                "shortname" => "username",
                "name" => "display_name",
                other => other,
            };
            if errs.get(field).is_none() {
                errs.add(field, message);
            }
        }
        errs.into_result()?;
        let user = users::create_as(self.db(), new, reserved).await?;
        let project = match projects::create_as(self.db(), personal, user.id, reserved).await {
            Ok(project) => project,
            Err(e) => {
                // Lost a race after the checks: no account without its personal project.
                if let Err(undo) = users::remove(self.db(), user.id).await {
                    tracing::error!(error = %undo, user = %user.username, "could not undo a failed sign-up");
                }
                return Err(e);
            }
        };
        self.install_default_tools(&project).await?;
        let as_user = Viewer {
            user: Some(user.clone()),
            ip: viewer.ip.clone(),
        };
        self.event("user.signup", &as_user, None, None, Bson::Null);
        Ok(user)
    }

    /// The user whose credentials these are; `None` for a wrong name or password.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<Option<User>> {
        let Some(user) = users::by_username(self.db(), username).await? else {
            // Spend the same effort as a real check so timing does not reveal which names exist.
            let _ = users::hash_password(password.to_owned()).await;
            return Ok(None);
        };
        if user.disabled || !users::verify_password(&user, password.to_owned()).await {
            return Ok(None);
        }
        Ok(Some(user))
    }

    /// Starts a login session; returns the cookie token.
    pub async fn log_in(&self, viewer: &Viewer, user: &User) -> Result<String> {
        let token = sessions::create(self.db(), user.id).await?;
        let as_user = Viewer {
            user: Some(user.clone()),
            ip: viewer.ip.clone(),
        };
        self.event("user.login", &as_user, None, None, Bson::Null);
        Ok(token)
    }

    pub async fn log_out(&self, viewer: &Viewer, session_token: &str) -> Result<()> {
        sessions::delete(self.db(), session_token).await?;
        self.event("user.logout", viewer, None, None, Bson::Null);
        Ok(())
    }

    /// The user behind a session cookie or an access token.
    pub async fn user_for_session(&self, token: &str) -> Result<Option<User>> {
        match sessions::lookup(self.db(), token).await? {
            Some(id) => Ok(users::by_id(self.db(), id).await?.filter(|u| !u.disabled)),
            None => Ok(None),
        }
    }

    pub async fn user_for_token(&self, token: &str) -> Result<Option<User>> {
        match tokens::lookup(self.db(), token).await? {
            Some(id) => Ok(users::by_id(self.db(), id).await?.filter(|u| !u.disabled)),
            None => Ok(None),
        }
    }

    // ---- projects ----

    /// Loads a live project the viewer may read; `NotFound` otherwise, so private projects
    /// do not reveal that they exist.
    pub async fn load_project(
        &self,
        viewer: &Viewer,
        nbhd: Neighborhood,
        shortname: &str,
    ) -> Result<ProjectCtx> {
        let project = projects::get(self.db(), nbhd, shortname)
            .await?
            .ok_or(Error::NotFound("project"))?;
        let tools = instance::list(self.db(), project.id).await?;
        let ctx = ProjectCtx {
            subject: viewer.subject(Some(&project)),
            project,
            tools,
        };
        ctx.authorize(perm::READ)?;
        Ok(ctx)
    }

    /// Whether the viewer may read the project (for listings that show several).
    pub fn can_read(&self, viewer: &Viewer, project: &Project) -> bool {
        acl::allows(&viewer.subject(Some(project)), &[&project.acl], perm::READ)
    }

    /// Records a page view in a project (or one of its tools).
    pub fn page_view(&self, viewer: &Viewer, ctx: &ProjectCtx, tool: Option<&str>) {
        self.event("page.view", viewer, Some(&ctx.project), tool, Bson::Null);
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
        self.event("project.create", viewer, Some(&project), None, Bson::Null);
        crate::search::indexer::queue_project(self, project.id).await?;
        Ok(project)
    }

    async fn install_default_tools(&self, project: &Project) -> Result<()> {
        let defaults: Vec<_> = self
            .tools()
            .all()
            .filter(|t| t.install_by_default())
            .cloned()
            .collect();
        for (i, tool) in defaults.iter().enumerate() {
            let inst = ToolInstance {
                id: crate::ids::ToolId::new(),
                project_id: project.id,
                kind: tool.kind().to_owned(),
                mount: tool.default_mount().to_owned(),
                label: tool.default_label().to_owned(),
                ordinal: i as i32,
                options: tool.options(&serde_json::Value::Null)?,
                acl: tool.default_acl(),
                created: DateTime::now(),
                epoch: 0,
            };
            instance::insert(self.db(), &inst).await?;
            tool.install(self, project, &inst).await?;
        }
        Ok(())
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
        crate::search::indexer::queue_project(self, project.id).await?;
        Ok(project)
    }

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

    pub async fn install_tool(
        &self,
        viewer: &Viewer,
        ctx: &ProjectCtx,
        kind: &str,
        mount: &str,
        label: &str,
        options: &serde_json::Value,
    ) -> Result<ToolInstance> {
        ctx.authorize(perm::ADMIN)?;
        let mut errs = FieldErrors::new();
        let tool = self.tools().get(kind).cloned();
        if tool.is_none() {
            errs.add("kind", format!("There is no tool kind \"{kind}\""));
        }
        let mount = match mount.trim() {
            "" => tool
                .as_ref()
                .map(|t| t.default_mount())
                .unwrap_or_default()
                .to_owned(),
            m => m.to_owned(),
        };
        if let Err(m) = names::check_mount(&mount) {
            errs.add("mount", format!("Mount point {m}"));
        } else if ctx.tool(&mount).is_some() {
            errs.add(
                "mount",
                format!("Mount point \"{mount}\" is already used in this project"),
            );
        }
        let label = match label.trim() {
            "" => tool
                .as_ref()
                .map(|t| t.default_label())
                .unwrap_or_default()
                .to_owned(),
            l => l.to_owned(),
        };
        if label.chars().count() > 40 {
            errs.add("label", "Label must be at most 40 characters");
        }
        let opts = match &tool {
            Some(t) => match t.options(options) {
                Ok(o) => Some(o),
                Err(Error::Invalid(more)) => {
                    errs.0.extend(more.0);
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        errs.into_result()?;
        let (Some(tool), Some(opts)) = (tool, opts) else {
            return Err(Error::Internal("tool validation inconsistent".into()));
        };
        let inst = ToolInstance {
            id: crate::ids::ToolId::new(),
            project_id: ctx.project.id,
            kind: kind.to_owned(),
            mount,
            label,
            ordinal: ctx.tools.iter().map(|t| t.ordinal + 1).max().unwrap_or(0),
            options: opts,
            acl: tool.default_acl(),
            created: DateTime::now(),
            epoch: 0,
        };
        instance::insert(self.db(), &inst).await?;
        if let Err(e) = tool.install(self, &ctx.project, &inst).await {
            // Leave nothing half-installed.
            instance::delete(self.db(), inst.id).await?;
            return Err(e);
        }
        self.event(
            "tool.install",
            viewer,
            Some(&ctx.project),
            Some(&inst.mount),
            Bson::Document(doc! {"kind": kind}),
        );
        crate::search::indexer::queue_project(self, ctx.project.id).await?;
        Ok(inst)
    }

    pub async fn update_tool(
        &self,
        viewer: &Viewer,
        ctx: &ProjectCtx,
        mount: &str,
        upd: ToolUpdate,
    ) -> Result<ToolInstance> {
        ctx.authorize(perm::ADMIN)?;
        let mut inst = ctx.tool(mount).cloned().ok_or(Error::NotFound("tool"))?;
        let mut errs = FieldErrors::new();
        let new_mount = upd.mount.trim().to_owned();
        if let Err(m) = names::check_mount(&new_mount) {
            errs.add("mount", format!("Mount point {m}"));
        } else if new_mount != inst.mount && ctx.tool(&new_mount).is_some() {
            errs.add(
                "mount",
                format!("Mount point \"{new_mount}\" is already used in this project"),
            );
        }
        let label = upd.label.trim();
        if label.is_empty() || label.chars().count() > 40 {
            errs.add("label", "Label must be 1 to 40 characters");
        }
        errs.into_result()?;
        inst.label = label.to_owned();
        inst.mount = new_mount;
        inst.ordinal = upd.ordinal;
        instance::update(self.db(), &inst).await?;
        self.event(
            "tool.update",
            viewer,
            Some(&ctx.project),
            Some(&inst.mount),
            Bson::Null,
        );
        crate::search::indexer::queue_project(self, ctx.project.id).await?;
        Ok(inst)
    }

    pub async fn uninstall_tool(
        &self,
        viewer: &Viewer,
        ctx: &ProjectCtx,
        mount: &str,
    ) -> Result<()> {
        ctx.authorize(perm::ADMIN)?;
        let inst = ctx.tool(mount).ok_or(Error::NotFound("tool"))?;
        if let Some(tool) = self.tools().get(&inst.kind) {
            tool.uninstall(self, &ctx.project, inst).await?;
        }
        instance::delete(self.db(), inst.id).await?;
        self.event(
            "tool.uninstall",
            viewer,
            Some(&ctx.project),
            Some(mount),
            Bson::Document(doc! {"kind": &inst.kind}),
        );
        crate::search::indexer::queue_project(self, ctx.project.id).await?;
        Ok(())
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
        crate::search::indexer::queue_project(self, ctx.project.id).await?;
        Ok(())
    }

    /// The project navigation: one or more entries per installed tool.
    pub fn nav(&self, ctx: &ProjectCtx) -> Vec<NavEntry> {
        ctx.tools
            .iter()
            .filter(|t| ctx.can_tool(t, perm::READ))
            .flat_map(|t| match self.tools().get(&t.kind) {
                Some(kind) => kind.nav(&ctx.project, t),
                None => Vec::new(),
            })
            .collect()
    }
}

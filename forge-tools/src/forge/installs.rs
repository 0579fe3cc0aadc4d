//! Installed tools: the defaults a new project gets, installing, configuring and removing a
//! tool, and the project navigation the tools make.

use bson::{Bson, DateTime, doc};

use crate::acl::perm;
use crate::error::{Error, FieldErrors, Result};
use crate::names;
use crate::project_ctx::ProjectCtx;
use crate::projects::Project;
use crate::search::indexer::queue_project;
use crate::tool::{Forge, NavEntry, ToolInstance, instance};
use crate::viewer::Viewer;

/// Changes to an installed tool.
#[derive(Debug, Clone, Default)]
pub struct ToolUpdate {
    pub label: String,
    pub mount: String,
    pub ordinal: i32,
}

impl Forge {
    pub(super) async fn install_default_tools(&self, project: &Project) -> Result<()> {
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
        queue_project(self, ctx.project.id).await?;
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
        queue_project(self, ctx.project.id).await?;
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
        queue_project(self, ctx.project.id).await?;
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

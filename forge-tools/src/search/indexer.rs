//! What the forge puts in the search index and the tasks that keep it current.
//!
//! Changes in the web process enqueue `search.index` (some artifacts of one tool) or
//! `search.project` (a project and everything in it: after settings, visibility or tool
//! changes); the process that runs tasks owns the index writer. Both handlers are idempotent:
//! they read the current state from the store and upsert or delete accordingly.

use bson::doc;
use forge_tasks::TaskOptions;
use serde::{Deserialize, Serialize};

use super::{Access, Change, IndexDoc, Rebuild};
use crate::acl::{self, Ace, Role, Subject, perm};
use crate::error::{Error, Result};
use crate::ids::{ProjectId, ToolId, UserId};
use crate::projects::{self, Project};
use crate::tool::{Forge, SearchDoc, ToolInstance, instance};
use crate::viewer::Viewer;

pub const TASK_INDEX: &str = "search.index";
pub const TASK_PROJECT: &str = "search.project";

/// Arguments of `search.index`.
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexArgs {
    pub project: String,
    pub tool: String,
    pub keys: Vec<String>,
}

const ANONYMOUS: &str = "anon";
const AUTHENTICATED: &str = "auth";

fn member_token(project: ProjectId, role: Role) -> String {
    format!("p:{project}:{}", role.as_str())
}

/// Everyone who may read something under this ACL chain, as tokens: one per class of viewer
/// (anonymous, any logged-in user, and each role of the project). Decisions depend only on the
/// class, so a viewer's tokens (see [`viewer_access`]) select exactly what they may read.
pub fn read_tokens(project: &Project, chain: &[&[Ace]]) -> Vec<String> {
    tokens_for(project, chain, perm::READ)
}

fn user_token(user: UserId) -> String {
    format!("u:{user}")
}

/// The tokens of a restricted document: the classes holding both read and the restriction's
/// permission, and the named accounts when people outside the project may read the tool
/// (members removed from a private project lose their access with their membership).
fn restricted_tokens(
    project: &Project,
    chain: &[&[Ace]],
    r: &crate::tool::Restricted,
) -> Vec<String> {
    let read = tokens_for(project, chain, perm::READ);
    let mut out: Vec<String> = tokens_for(project, chain, r.permission)
        .into_iter()
        .filter(|t| read.contains(t))
        .collect();
    if read.iter().any(|t| t == ANONYMOUS || t == AUTHENTICATED) {
        out.extend(r.users.iter().map(|u| user_token(*u)));
    }
    out
}

fn tokens_for(project: &Project, chain: &[&[Ace]], permission: &str) -> Vec<String> {
    let someone = Some(UserId::new());
    let mut out = Vec::new();
    let classes = [
        (Subject::anonymous(), ANONYMOUS.to_owned()),
        (
            Subject {
                user: someone,
                ..Subject::default()
            },
            AUTHENTICATED.to_owned(),
        ),
    ];
    for (subject, token) in classes {
        if acl::allows(&subject, chain, permission) {
            out.push(token);
        }
    }
    for role in Role::ALL {
        let subject = Subject {
            user: someone,
            site_admin: false,
            role: Some(role),
        };
        if acl::allows(&subject, chain, permission) {
            out.push(member_token(project.id, role));
        }
    }
    out
}

/// The tokens a viewer searches with (site admins see everything).
pub async fn viewer_access(forge: &Forge, viewer: &Viewer) -> Result<Access> {
    if viewer.is_site_admin() {
        return Ok(Access::All);
    }
    let mut tokens = vec![ANONYMOUS.to_owned()];
    if let Some(uid) = viewer.user_id() {
        tokens.push(AUTHENTICATED.to_owned());
        tokens.push(user_token(uid));
        for p in projects::of_member(forge.db(), uid).await? {
            if let Some(role) = p.role_of(uid) {
                tokens.push(member_token(p.id, role));
            }
        }
    }
    Ok(Access::Tokens(tokens))
}

/// Searches as this viewer sees the forge, and logs the search (see [`record_query`]). The
/// one way pages and the API search.
pub async fn search_as(
    forge: &Forge,
    viewer: &Viewer,
    req: &super::SearchRequest,
) -> Result<super::Results> {
    let access = viewer_access(forge, viewer).await?;
    let results = forge.search().search(req, &access)?;
    record_query(forge, viewer, req, &results).await;
    Ok(results)
}

/// Logs a search that ran as `search.query`: who searched and, when the search was limited to
/// a project the viewer may read, that project (and the tool, when limited to one of it),
/// with the number of matches (`extra.results`). Never the words searched for. A search
/// refused as malformed is not logged.
async fn record_query(
    forge: &Forge,
    viewer: &Viewer,
    req: &super::SearchRequest,
    results: &super::Results,
) {
    let mut scope = None;
    if let Some(name) = req.project.as_deref() {
        for nbhd in [
            projects::Neighborhood::Projects,
            projects::Neighborhood::Users,
        ] {
            if let Ok(ctx) = forge.load_project(viewer, nbhd, name).await {
                scope = Some(ctx);
                break;
            }
        }
    }
    let tool = scope.as_ref().and_then(|ctx| {
        let t = ctx.tool(req.tool.as_deref()?)?;
        ctx.can_tool(t, perm::READ).then_some(t.mount.as_str())
    });
    let context = viewer.event_context(scope.as_ref().map(|c| &c.project), tool);
    let extra = doc! {"results": i64::try_from(results.total).unwrap_or(i64::MAX)};
    forge
        .events()
        .record("search.query", context, bson::Bson::Document(extra));
}

fn project_doc(p: &Project) -> IndexDoc {
    IndexDoc {
        key: format!("project:{}", p.id),
        kind: "project".into(),
        project: p.shortname.clone(),
        project_id: p.id.to_string(),
        tool: String::new(),
        tool_id: String::new(),
        title: p.name.clone(),
        text: format!("{}\n{}\n{}", p.shortname, p.summary, p.description),
        author: String::new(),
        date: p.created,
        url: p.url(),
        read: read_tokens(p, &[&p.acl]),
    }
}

fn tool_doc(p: &Project, t: &ToolInstance, read: &[String], d: SearchDoc) -> IndexDoc {
    let read = match &d.restricted {
        Some(r) => restricted_tokens(p, &[&t.acl, &p.acl], r),
        None => read.to_vec(),
    };
    IndexDoc {
        key: d.id,
        kind: d.kind,
        project: p.shortname.clone(),
        project_id: p.id.to_string(),
        tool: t.mount.clone(),
        tool_id: t.id.to_string(),
        title: d.title,
        text: d.text,
        author: d.author.unwrap_or_default(),
        date: d.updated,
        url: d.url,
        read,
    }
}

/// Every document of one live project: itself and each tool's content.
async fn project_docs(forge: &Forge, p: &Project) -> Result<Vec<IndexDoc>> {
    let mut docs = vec![project_doc(p)];
    for t in instance::list(forge.db(), p.id).await? {
        let Some(kind) = forge.tools().get(&t.kind) else {
            continue;
        };
        let read = read_tokens(p, &[&t.acl, &p.acl]);
        for d in kind.search_documents(forge, p, &t).await? {
            docs.push(tool_doc(p, &t, &read, d));
        }
    }
    Ok(docs)
}

/// Queues a re-index of some artifacts of one tool (after an edit, rename, delete...).
/// Queued duplicates of the same artifact merge.
pub async fn queue_artifacts(
    forge: &Forge,
    project: &Project,
    tool: &ToolInstance,
    keys: Vec<String>,
) -> Result<()> {
    let dedup = (keys.len() == 1).then(|| format!("{TASK_INDEX}:{}", keys[0]));
    let args = IndexArgs {
        project: project.id.to_string(),
        tool: tool.id.to_string(),
        keys,
    };
    forge
        .tasks()
        .enqueue_with(
            TASK_INDEX,
            serde_json::to_value(&args).map_err(|e| Error::Internal(e.to_string()))?,
            TaskOptions {
                priority: 7,
                dedup_key: dedup,
                ..TaskOptions::default()
            },
        )
        .await?;
    Ok(())
}

/// Queues a re-index of a whole project (settings, visibility, tools or deletion changed);
/// returns the task (an already queued one for the same project is reused).
pub async fn queue_project(forge: &Forge, project: ProjectId) -> Result<forge_tasks::TaskId> {
    Ok(forge
        .tasks()
        .enqueue_with(
            TASK_PROJECT,
            serde_json::json!({ "project": project.to_string() }),
            TaskOptions {
                priority: 4,
                dedup_key: Some(format!("{TASK_PROJECT}:{project}")),
                ..TaskOptions::default()
            },
        )
        .await?)
}

/// `search.index`: upserts what still exists, deletes what does not.
pub async fn run_index(forge: &Forge, args: &serde_json::Value) -> Result<()> {
    let args: IndexArgs =
        serde_json::from_value(args.clone()).map_err(|e| Error::invalid("args", e.to_string()))?;
    let pid = ProjectId::parse(&args.project).ok_or_else(|| Error::invalid("project", "bad id"))?;
    let tid = ToolId::parse(&args.tool).ok_or_else(|| Error::invalid("tool", "bad id"))?;
    let _order = forge
        .search()
        .serialize_docs(&pid.to_string(), &args.keys)
        .await;
    let project = projects::by_id(forge.db(), pid).await?;
    let tool = instance::by_id(forge.db(), tid).await?;
    let changes = match (project, tool) {
        (Some(p), _) if p.deleted => vec![Change::DeleteProject(p.id.to_string())],
        (Some(p), Some(t)) => {
            let read = read_tokens(&p, &[&t.acl, &p.acl]);
            let found = match forge.tools().get(&t.kind) {
                Some(kind) => kind.search_documents_for(forge, &p, &t, &args.keys).await?,
                None => vec![None; args.keys.len()],
            };
            let changes: Vec<Change> = args
                .keys
                .into_iter()
                .zip(found)
                .map(|(key, doc)| match doc {
                    Some(d) => Change::Upsert(tool_doc(&p, &t, &read, d)),
                    None => Change::Delete(key),
                })
                .collect();
            changes
        }
        (_, None) => vec![Change::DeleteTool(args.tool)],
        (None, Some(_)) => vec![Change::DeleteProject(args.project)],
    };
    forge.search().apply(changes).await
}

/// `search.project`: replaces every document of the project in one commit.
pub async fn run_project(forge: &Forge, args: &serde_json::Value) -> Result<()> {
    let pid = args
        .get("project")
        .and_then(|v| v.as_str())
        .and_then(ProjectId::parse)
        .ok_or_else(|| Error::invalid("project", "missing project id"))?;
    let _order = forge.search().serialize_project(&pid.to_string()).await;
    let mut changes = vec![Change::DeleteProject(pid.to_string())];
    if let Some(p) = projects::by_id(forge.db(), pid).await?
        && !p.deleted
    {
        changes.extend(
            project_docs(forge, &p)
                .await?
                .into_iter()
                .map(Change::Upsert),
        );
    }
    forge.search().apply(changes).await
}

/// `forge reindex`: builds a new index of every live project beside the live one and swaps it
/// in. `progress(done, total)` is called after each project. Returns the documents indexed.
///
/// Edits made while it runs went to the old index; afterwards every project with activity
/// since the start is queued for a re-index, so nothing is lost in the swap.
pub async fn rebuild(forge: &Forge, mut progress: impl FnMut(u64, u64)) -> Result<u64> {
    let started = bson::DateTime::now();
    let all = projects::all_live(forge.db()).await?;
    let total = all.len() as u64;
    let root = forge.search().root().to_owned();
    let mut rebuild = tokio::task::spawn_blocking(move || Rebuild::start(&root))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let mut count = 0u64;
    for (i, p) in all.iter().enumerate() {
        for d in project_docs(forge, p).await? {
            rebuild.add(&d)?;
            count += 1;
        }
        progress(i as u64 + 1, total);
    }
    tokio::task::spawn_blocking(move || rebuild.finish())
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    forge.events().flush().await;
    for name in crate::events::projects_active_since(forge.db(), started).await? {
        if let Some(p) = all.iter().find(|p| p.shortname == name) {
            queue_project(forge, p.id).await?;
        }
    }
    Ok(count)
}

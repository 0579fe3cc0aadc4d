//! What webhooks hear of and what they are sent.
//!
//! An [`Announcement`] is a change as the platform or a tool announces it: a change watchers
//! are told of (`crate::notify` announces each one; its event is the tool's
//! `Tool::change_event`), or an event a tool announces itself (the repository's pushes, as
//! [`Push`]). [`body`] turns it into the JSON a delivery carries: the same envelope for every
//! event (`event`, `action`, `project`, `tool`, `sender`, and for changes `artifact` and
//! `comment`) with the event's own fields beside it. A push's are modelled on what CI
//! servers already read (GitHub's and Gitea's push payloads): `ref`, `before`, `after`,
//! `created`, `deleted`, `forced`, `commits[]` (`id`, `message`, `timestamp`, `url`,
//! `author`), `head_commit`, `repository{name, full_name, clone_url, html_url, ...}`,
//! `pusher`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::projects::Project;
use crate::tool::ToolInstance;

/// A change webhooks may hear of (the fan-out task's arguments).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Announcement {
    /// Unique per change; announcing the same id twice delivers once per webhook.
    pub id: String,
    /// The project's id.
    pub project: String,
    /// The id of the tool instance it happened in.
    pub tool: String,
    /// The webhook event; `None`: the tool's change event (`Tool::change_event`), for the
    /// changes `crate::notify` announces.
    #[serde(default)]
    pub event: Option<String>,
    /// What happened (`edited`, `created`, `commented on`, `pushed`...).
    pub action: String,
    /// Who did it (username); empty for anonymous.
    #[serde(default)]
    pub actor: String,
    /// The artifact a change is about.
    #[serde(default)]
    pub artifact: Option<Artifact>,
    /// The change's comment or excerpt.
    #[serde(default)]
    pub comment: String,
    /// Narrower readers than the tool's: only webhooks whose creator is one are sent it.
    #[serde(default)]
    pub readers: Option<Readers>,
    /// The event's own fields (a push's `ref`, `before`, `after`, `commits`...).
    #[serde(default)]
    pub data: Map<String, Value>,
}

/// The artifact a change is about, as the tool names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    pub key: String,
    pub title: String,
    /// Path under the base URL.
    pub url: String,
}

/// Who may hear of a restricted change: those holding `permission` on the tool, and these
/// accounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Readers {
    pub permission: String,
    pub usernames: Vec<String>,
}

/// A repository as a push payload names it.
#[derive(Debug, Clone, Serialize)]
pub struct Repository {
    /// The tool's mount point.
    pub name: String,
    /// `<project>/<mount>`.
    pub full_name: String,
    pub clone_url: String,
    /// The repository's page.
    pub html_url: String,
    pub private: bool,
    pub default_branch: String,
}

/// A person in a push payload (`pusher`, commit authors).
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The forge account, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A commit in a push payload.
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    pub id: String,
    pub message: String,
    /// RFC 3339, with the commit's own offset.
    pub timestamp: String,
    /// The commit's page.
    pub url: String,
    pub author: Person,
    pub committer: Person,
}

/// A branch or tag that moved in a push (one delivery each).
#[derive(Debug, Clone, Serialize)]
pub struct Push {
    /// Full name: `refs/heads/main`, `refs/tags/v1.0`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The commit it pointed at, or forty zeros for a new ref.
    pub before: String,
    /// The commit it points at, or forty zeros for a deleted ref.
    pub after: String,
    pub created: bool,
    pub deleted: bool,
    /// `before` is not an ancestor of `after` (history was rewritten).
    pub forced: bool,
    /// The commits it newly reaches, oldest first (at most 20: the newest).
    pub commits: Vec<Commit>,
    /// How many commits it newly reaches (counted up to 10,000).
    pub total_commits: usize,
    pub head_commit: Option<Commit>,
    pub repository: Repository,
    pub pusher: Person,
}

impl Push {
    /// The fields an [`Announcement`] carries.
    pub fn into_data(self) -> Result<Map<String, Value>> {
        match serde_json::to_value(self).map_err(|e| Error::Internal(e.to_string()))? {
            Value::Object(m) => Ok(m),
            _ => Err(Error::Internal("a push payload is an object".into())),
        }
    }
}

/// The JSON body of a delivery of `ann` as event `event`. `base`: the forge's base URL
/// (the paths it names become absolute).
pub fn body(
    ann: &Announcement,
    event: &str,
    project: &Project,
    tool: &ToolInstance,
    base: &str,
) -> Result<String> {
    let mut out = ann.data.clone();
    let project_url = format!("{base}{}", project.url());
    let envelope = json!({
        "event": event,
        "action": ann.action,
        "project": {
            "shortname": project.shortname,
            "name": project.name,
            "url": project_url,
            "private": !project.is_public(),
        },
        "tool": {
            "kind": tool.kind,
            "mount": tool.mount,
            "label": tool.label,
            "url": format!("{project_url}{}/", tool.mount),
        },
        "sender": if ann.actor.is_empty() { Value::Null } else { json!({"username": ann.actor}) },
    });
    if let Value::Object(fields) = envelope {
        out.extend(fields);
    }
    if let Some(a) = &ann.artifact {
        out.insert(
            "artifact".into(),
            json!({"key": a.key, "title": a.title, "url": format!("{base}{}", a.url)}),
        );
    }
    if !ann.comment.is_empty() {
        out.insert("comment".into(), Value::String(ann.comment.clone()));
    }
    serde_json::to_string(&out).map_err(|e| Error::Internal(e.to_string()))
}

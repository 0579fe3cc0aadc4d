//! What admins and readers do with the forums of a forum tool: list them (hidden ones for
//! moderators, deleted ones for admins), create, change, reorder, hide and delete them.

use bson::oid::ObjectId;
use bson::{DateTime, doc};

use super::model::{self, Forum, UnknownSenders};
use crate::acl::perm;
use crate::error::{Error, FieldErrors, Result};
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance, record_event};
use crate::viewer::Viewer;

/// Forums one tool may hold.
pub const MAX_FORUMS: usize = 200;
const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 4_000;
/// Forum names that would shadow the tool's own pages.
const RESERVED: &[&str] = &["thread", "new", "admin", "search", "feed"];

/// A forum as an admin creates it.
#[derive(Debug, Clone, Default)]
pub struct NewForum {
    pub shortname: String,
    pub name: String,
    pub description: String,
}

/// A forum's settings as an admin changes them.
#[derive(Debug, Clone)]
pub struct ForumUpdate {
    pub name: String,
    pub description: String,
    pub hidden: bool,
    pub unknown_senders: UnknownSenders,
}

/// Whether the viewer sees a forum at all.
pub fn visible(ctx: &ProjectCtx, tool: &ToolInstance, f: &Forum) -> bool {
    if f.deleted {
        return ctx.can_tool(tool, perm::ADMIN);
    }
    !f.hidden || ctx.can_tool(tool, perm::MODERATE)
}

/// The forums the viewer may see, in order.
pub async fn list(forge: &Forge, ctx: &ProjectCtx, tool: &ToolInstance) -> Result<Vec<Forum>> {
    ctx.authorize_tool(tool, perm::READ)?;
    Ok(model::forums_of(forge.db(), tool.id)
        .await?
        .into_iter()
        .filter(|f| visible(ctx, tool, f))
        .collect())
}

/// One forum by short name, if the viewer may see it.
pub async fn get(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    shortname: &str,
) -> Result<Forum> {
    ctx.authorize_tool(tool, perm::READ)?;
    model::forum_by_name(forge.db(), tool.id, shortname)
        .await?
        .filter(|f| visible(ctx, tool, f))
        .ok_or(Error::NotFound("forum"))
}

/// One forum by id, if the viewer may see it.
pub async fn by_id(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
) -> Result<Forum> {
    ctx.authorize_tool(tool, perm::READ)?;
    model::forum_by_id(forge.db(), tool.id, id)
        .await?
        .filter(|f| visible(ctx, tool, f))
        .ok_or(Error::NotFound("forum"))
}

/// Checks a forum short name: what its URLs and posting address are made of.
pub fn check_shortname(name: &str) -> std::result::Result<(), String> {
    let len = name.chars().count();
    if !(1..=40).contains(&len) {
        return Err("Short name must be 1 to 40 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("Short name may contain only lowercase letters, digits and '-'".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("Short name must start with a letter or digit".into());
    }
    if RESERVED.contains(&name) {
        return Err(format!("\"{name}\" is used by the forum's own pages"));
    }
    Ok(())
}

fn check_text_fields(errs: &mut FieldErrors, name: &str, description: &str) {
    let n = name.trim().chars().count();
    if n == 0 || n > MAX_NAME {
        errs.add("name", format!("Name must be 1 to {MAX_NAME} characters"));
    } else if name.chars().any(char::is_control) {
        errs.add("name", "Name may not contain control characters");
    }
    if description.chars().count() > MAX_DESCRIPTION {
        errs.add(
            "description",
            format!("Description must be at most {MAX_DESCRIPTION} characters"),
        );
    }
}

/// Adds a forum (the tool's admins), last in order.
pub async fn create(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    new: NewForum,
) -> Result<Forum> {
    ctx.authorize_tool(tool, perm::ADMIN)?;
    insert(forge, tool, new).await.inspect(|f| {
        record_event(
            forge,
            "forum.forum.create",
            viewer,
            ctx,
            tool,
            doc! {"forum": &f.shortname},
        );
    })
}

/// Writes a checked forum (also the default one a new tool gets).
pub(super) async fn insert(forge: &Forge, tool: &ToolInstance, new: NewForum) -> Result<Forum> {
    let shortname = new.shortname.trim().to_owned();
    let mut errs = FieldErrors::new();
    if let Err(m) = check_shortname(&shortname) {
        errs.add("shortname", m);
    }
    check_text_fields(&mut errs, &new.name, &new.description);
    errs.into_result()?;
    let existing = model::forums_of(forge.db(), tool.id).await?;
    if existing.len() >= MAX_FORUMS {
        return Err(Error::invalid(
            "shortname",
            format!("A forum tool holds at most {MAX_FORUMS} forums"),
        ));
    }
    let forum = Forum {
        id: ObjectId::new(),
        tool_id: tool.id,
        shortname: shortname.clone(),
        name: new.name.trim().to_owned(),
        description: new.description,
        order: existing.iter().map(|f| f.order).max().map_or(0, |o| o + 1),
        hidden: false,
        deleted: false,
        unknown_senders: UnknownSenders::default(),
        num_topics: 0,
        num_posts: 0,
        last_post: None,
        created: DateTime::now(),
    };
    match model::forums(forge.db()).insert_one(&forum).await {
        Ok(_) => Ok(forum),
        Err(e) if Error::is_duplicate_key(&e) => Err(Error::invalid(
            "shortname",
            format!("There is already a forum called \"{shortname}\""),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Changes a forum's name, description, visibility and mail policy (the tool's admins).
pub async fn update(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    shortname: &str,
    upd: ForumUpdate,
) -> Result<Forum> {
    ctx.authorize_tool(tool, perm::ADMIN)?;
    let forum = get(forge, ctx, tool, shortname).await?;
    let mut errs = FieldErrors::new();
    check_text_fields(&mut errs, &upd.name, &upd.description);
    errs.into_result()?;
    model::forums(forge.db())
        .update_one(
            doc! {"_id": forum.id},
            doc! {"$set": {
                "name": upd.name.trim(),
                "description": &upd.description,
                "hidden": upd.hidden,
                "unknown_senders": upd.unknown_senders.as_str(),
            }},
        )
        .await?;
    record_event(
        forge,
        "forum.forum.update",
        viewer,
        ctx,
        tool,
        doc! {"forum": &forum.shortname},
    );
    if upd.hidden != forum.hidden {
        // Who may find its topics changed: search and feeds follow.
        super::visibility::forum_changed(forge, ctx, tool, forum.id).await?;
    }
    get(forge, ctx, tool, shortname).await
}

/// Deletes (or restores) a forum: its topics stay stored but nobody but admins reaches them.
pub async fn set_deleted(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    shortname: &str,
    deleted: bool,
) -> Result<()> {
    ctx.authorize_tool(tool, perm::ADMIN)?;
    let forum = get(forge, ctx, tool, shortname).await?;
    model::forums(forge.db())
        .update_one(doc! {"_id": forum.id}, doc! {"$set": {"deleted": deleted}})
        .await?;
    record_event(
        forge,
        if deleted {
            "forum.forum.delete"
        } else {
            "forum.forum.restore"
        },
        viewer,
        ctx,
        tool,
        doc! {"forum": &forum.shortname},
    );
    // Its topics leave (or return to) search and feeds.
    super::visibility::forum_changed(forge, ctx, tool, forum.id).await
}

/// Puts the forums in the order given (short names; those not named keep their place after).
pub async fn reorder(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    order: &[String],
) -> Result<()> {
    ctx.authorize_tool(tool, perm::ADMIN)?;
    if order.len() > MAX_FORUMS {
        return Err(Error::bad_request(format!(
            "at most {MAX_FORUMS} forums to order"
        )));
    }
    let all = model::forums_of(forge.db(), tool.id).await?;
    for (pos, f) in all.iter().enumerate() {
        let at = order
            .iter()
            .position(|s| *s == f.shortname)
            .unwrap_or(order.len() + pos);
        let at = i32::try_from(at).unwrap_or(i32::MAX);
        if at != f.order {
            model::forums(forge.db())
                .update_one(doc! {"_id": f.id}, doc! {"$set": {"order": at}})
                .await?;
        }
    }
    record_event(forge, "forum.forum.reorder", viewer, ctx, tool, doc! {});
    Ok(())
}

/// The address that starts a topic in a forum by mail (Allura's scheme).
pub fn posting_address(
    forum: &Forum,
    tool: &ToolInstance,
    project: &crate::projects::Project,
    mail_domain: &str,
) -> String {
    format!(
        "{}@{}.{}.{}",
        forum.shortname, tool.mount, project.shortname, mail_domain
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortnames() {
        assert!(check_shortname("general").is_ok());
        assert!(check_shortname("2026-plans").is_ok());
        assert!(check_shortname("").is_err());
        assert!(check_shortname("General").is_err());
        assert!(check_shortname("a.b").is_err());
        assert!(check_shortname("../x").is_err());
        assert!(check_shortname("-x").is_err());
        assert!(check_shortname("thread").is_err());
        assert!(check_shortname(&"a".repeat(41)).is_err());
    }
}

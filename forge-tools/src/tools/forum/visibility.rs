//! Keeping what was recorded about topics in line with who may see them now: a forum hidden,
//! deleted or restored, a topic deleted or moved changes who may read its posts' activity
//! (feeds, dashboards), as it changes who finds them in search.

use bson::doc;

use crate::error::Result;
use crate::tool::{Forge, ToolInstance};

/// Brings the activity of topics in line with who may now see them (their forum hidden or
/// deleted, the topic deleted or moved): feeds and dashboards follow the forum, as search
/// does.
pub async fn restrict_activity(forge: &Forge, tool: &ToolInstance, keys: &[String]) -> Result<()> {
    let Some(kind) = forge.tools().get(&tool.kind) else {
        return Ok(());
    };
    for key in keys {
        let restricted = kind.activity_restricted(forge, tool, key).await?;
        crate::activity::set_restricted(
            forge.db(),
            doc! {"extra.artifact": key},
            restricted.as_ref(),
        )
        .await?;
    }
    Ok(())
}

//! Newtype ids, so a user id can never be passed where a project id is expected.

use bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub ObjectId);

        impl $name {
            pub fn new() -> Self {
                Self(ObjectId::new())
            }

            pub fn parse(s: &str) -> Option<Self> {
                ObjectId::parse_str(s).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for bson::Bson {
            fn from(id: $name) -> Self {
                bson::Bson::ObjectId(id.0)
            }
        }
    )*};
}

id_type!(
    /// A user account.
    UserId,
    /// A project (in any neighborhood).
    ProjectId,
    /// An installed tool instance.
    ToolId,
    /// A personal access token.
    TokenId,
);

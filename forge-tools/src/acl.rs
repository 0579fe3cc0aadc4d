//! Access control, after Allura: access-control entries `(role, permission, allow|deny)` on the
//! project and on each tool instance; roles nest (Admin ⊃ Developer ⊃ Member) and two
//! pseudo-roles cover everyone (`*anonymous`) and everyone logged in (`*authenticated`).
//!
//! [`decide`] is the one function that answers "may this viewer do this here".

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::UserId;

/// Permission names. Tools may define more (as plain strings).
pub mod perm {
    pub const READ: &str = "read";
    pub const WRITE: &str = "write";
    pub const MODERATE: &str = "moderate";
    pub const ADMIN: &str = "admin";
}

/// A project role a member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Developer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Developer, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// This role and every role it contains.
    fn implied(self) -> impl Iterator<Item = Role> {
        Self::ALL.into_iter().filter(move |r| *r <= self)
    }
}

/// Who an entry applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Principal {
    #[serde(rename = "*anonymous")]
    Anonymous,
    #[serde(rename = "*authenticated")]
    Authenticated,
    #[serde(rename = "member")]
    Member,
    #[serde(rename = "developer")]
    Developer,
    #[serde(rename = "admin")]
    Admin,
    /// One account: how a moderator blocks someone (a deny entry first in a tool's ACL).
    #[serde(rename = "user")]
    User(UserId),
}

impl From<Role> for Principal {
    fn from(r: Role) -> Self {
        match r {
            Role::Member => Principal::Member,
            Role::Developer => Principal::Developer,
            Role::Admin => Principal::Admin,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Allow,
    Deny,
}

/// One access-control entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ace {
    pub role: Principal,
    pub permission: String,
    pub access: Access,
}

impl Ace {
    pub fn allow(role: Principal, permission: &str) -> Self {
        Self {
            role,
            permission: permission.to_owned(),
            access: Access::Allow,
        }
    }

    pub fn deny(role: Principal, permission: &str) -> Self {
        Self {
            role,
            permission: permission.to_owned(),
            access: Access::Deny,
        }
    }
}

/// The project ACL a new project gets.
pub fn default_project_acl(private: bool) -> Vec<Ace> {
    use perm::*;
    let mut acl = vec![
        Ace::allow(Principal::Admin, ADMIN),
        Ace::allow(Principal::Admin, MODERATE),
        Ace::allow(Principal::Admin, WRITE),
        Ace::allow(Principal::Admin, READ),
        Ace::allow(Principal::Developer, MODERATE),
        Ace::allow(Principal::Developer, WRITE),
        Ace::allow(Principal::Developer, READ),
        Ace::allow(Principal::Member, READ),
    ];
    if !private {
        acl.push(Ace::allow(Principal::Anonymous, READ));
    }
    acl
}

/// Whether an ACL lets everybody read (a public project).
pub fn grants_anonymous_read(acl: &[Ace]) -> bool {
    acl.iter()
        .find(|a| a.role == Principal::Anonymous && a.permission == perm::READ)
        .is_some_and(|a| a.access == Access::Allow)
}

/// Sets or removes the anonymous read entry: the visibility switch.
pub fn set_anonymous_read(acl: &mut Vec<Ace>, allow: bool) {
    acl.retain(|a| !(a.role == Principal::Anonymous && a.permission == perm::READ));
    if allow {
        acl.push(Ace::allow(Principal::Anonymous, perm::READ));
    }
}

/// Who is asking: enough to decide access without further look-ups.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub user: Option<UserId>,
    pub site_admin: bool,
    /// The viewer's role in the project at hand, if a member.
    pub role: Option<Role>,
}

impl Subject {
    pub fn anonymous() -> Self {
        Self::default()
    }

    fn principals(&self) -> Vec<Principal> {
        let mut p = vec![Principal::Anonymous];
        if let Some(user) = self.user {
            p.push(Principal::Authenticated);
            p.push(Principal::User(user));
        }
        if let Some(role) = self.role {
            p.extend(role.implied().map(Principal::from));
        }
        p
    }
}

/// Evaluates an ACL chain (most specific first, e.g. tool then project): the first entry that
/// names one of the subject's principals and the permission decides; no entry means deny.
/// Site admins and project admins may do everything.
pub fn allows(subject: &Subject, chain: &[&[Ace]], permission: &str) -> bool {
    if subject.site_admin {
        return true;
    }
    let principals = subject.principals();
    if let Some(decided) = chain
        .iter()
        .find_map(|acl| check(acl, &principals, permission))
    {
        return decided;
    }
    // An admin of the project holds every permission nobody denied explicitly. The admin
    // entry lives on the project ACL (the last of the chain).
    permission != perm::ADMIN
        && chain
            .last()
            .is_some_and(|acl| check(acl, &principals, perm::ADMIN) == Some(true))
}

fn check(acl: &[Ace], principals: &[Principal], permission: &str) -> Option<bool> {
    acl.iter()
        .find(|ace| ace.permission == permission && principals.contains(&ace.role))
        .map(|ace| ace.access == Access::Allow)
}

/// The one access decision every route goes through: `Ok` when allowed; `NotFound` when the
/// subject may not even read (so nothing leaks that it exists); `Unauthenticated` for an
/// anonymous subject who could log in; else `Forbidden`.
pub fn decide(
    subject: &Subject,
    chain: &[&[Ace]],
    permission: &str,
    what: &'static str,
) -> Result<(), Error> {
    if allows(subject, chain, permission) {
        return Ok(());
    }
    if !allows(subject, chain, perm::READ) {
        return Err(Error::NotFound(what));
    }
    if subject.user.is_none() {
        Err(Error::Unauthenticated)
    } else {
        Err(Error::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Option<Role>) -> Subject {
        Subject {
            user: Some(UserId::new()),
            site_admin: false,
            role,
        }
    }

    #[test]
    fn roles_nest() {
        let acl = default_project_acl(true);
        let chain: &[&[Ace]] = &[&acl];
        assert!(allows(&user(Some(Role::Admin)), chain, perm::READ));
        assert!(allows(&user(Some(Role::Admin)), chain, perm::ADMIN));
        assert!(allows(&user(Some(Role::Developer)), chain, perm::WRITE));
        assert!(!allows(&user(Some(Role::Developer)), chain, perm::ADMIN));
        assert!(allows(&user(Some(Role::Member)), chain, perm::READ));
        assert!(!allows(&user(Some(Role::Member)), chain, perm::WRITE));
        assert!(!allows(&user(None), chain, perm::READ));
        assert!(!allows(&Subject::anonymous(), chain, perm::READ));
    }

    #[test]
    fn public_project_reads_for_everyone() {
        let acl = default_project_acl(false);
        assert!(grants_anonymous_read(&acl));
        assert!(allows(&Subject::anonymous(), &[&acl], perm::READ));
        assert!(!allows(&Subject::anonymous(), &[&acl], perm::WRITE));
    }

    #[test]
    fn tool_entries_come_first_and_deny_wins_there() {
        let project = default_project_acl(false);
        let tool = vec![
            Ace::deny(Principal::Anonymous, perm::READ),
            Ace::allow(Principal::Member, perm::WRITE),
        ];
        let chain: &[&[Ace]] = &[&tool, &project];
        assert!(!allows(&Subject::anonymous(), chain, perm::READ));
        assert!(allows(&user(Some(Role::Member)), chain, perm::WRITE));
        // The anonymous deny applies to everyone, as in Allura: *anonymous is every principal.
        assert!(!allows(&user(Some(Role::Developer)), chain, perm::READ));
        // A project admin still holds everything not denied to them by name.
        assert!(allows(&user(Some(Role::Admin)), chain, "delete"));
    }

    #[test]
    fn a_user_entry_blocks_that_account_only() {
        let project = default_project_acl(false);
        let blocked = user(None);
        let uid = blocked.user.expect("a user");
        let tool = vec![
            Ace::deny(Principal::User(uid), "post"),
            Ace::allow(Principal::Authenticated, "post"),
        ];
        let chain: &[&[Ace]] = &[&tool, &project];
        assert!(!allows(&blocked, chain, "post"));
        assert!(allows(&user(None), chain, "post"));
        // Blocking posting leaves reading alone.
        assert!(allows(&blocked, chain, perm::READ));
        let stored = bson::serialize_to_bson(&tool[0]).expect("serialize");
        let back: Ace = bson::deserialize_from_bson(stored).expect("deserialize");
        assert_eq!(back, tool[0]);
    }

    #[test]
    fn tool_defined_permissions_fall_back_to_admin_only() {
        let project = default_project_acl(false);
        let chain: &[&[Ace]] = &[&[], &project];
        assert!(!allows(&user(Some(Role::Developer)), chain, "delete"));
        assert!(allows(&user(Some(Role::Admin)), chain, "delete"));
    }

    #[test]
    fn site_admin_may_do_everything() {
        let acl = default_project_acl(true);
        let s = Subject {
            user: Some(UserId::new()),
            site_admin: true,
            role: None,
        };
        assert!(allows(&s, &[&acl], perm::ADMIN));
    }

    #[test]
    fn decide_hides_what_cannot_be_read() {
        let private = default_project_acl(true);
        let public = default_project_acl(false);
        assert!(matches!(
            decide(&Subject::anonymous(), &[&private], perm::ADMIN, "project"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            decide(&user(None), &[&private], perm::READ, "project"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            decide(&Subject::anonymous(), &[&public], perm::ADMIN, "project"),
            Err(Error::Unauthenticated)
        ));
        assert!(matches!(
            decide(&user(None), &[&public], perm::ADMIN, "project"),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            decide(
                &user(Some(Role::Member)),
                &[&private],
                perm::ADMIN,
                "project"
            ),
            Err(Error::Forbidden)
        ));
        assert!(
            decide(
                &user(Some(Role::Admin)),
                &[&private],
                perm::ADMIN,
                "project"
            )
            .is_ok()
        );
    }

    #[test]
    fn visibility_switch() {
        let mut acl = default_project_acl(false);
        set_anonymous_read(&mut acl, false);
        assert!(!grants_anonymous_read(&acl));
        set_anonymous_read(&mut acl, true);
        set_anonymous_read(&mut acl, true);
        assert_eq!(
            acl.iter()
                .filter(|a| a.role == Principal::Anonymous)
                .count(),
            1
        );
    }
}

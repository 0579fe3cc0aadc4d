//! Accounts: sign-up (with the personal project), log-in and log-out, and finding the user
//! behind a session or an access token.

use bson::Bson;

use crate::error::Result;
use crate::names;
use crate::projects::{self, Neighborhood, NewProject};
use crate::tool::Forge;
use crate::users::{self, NewUser, User};
use crate::viewer::Viewer;
use crate::{sessions, tokens};

impl Forge {
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
}

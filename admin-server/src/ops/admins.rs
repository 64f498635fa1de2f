//! Admin accounts: creation, the first-run bootstrap, passwords, and sign-in records.

use super::checks::check_username;
use super::{AdminOps, OpsError, OpsResult};
use ccp_core::domain::Admin;
use ccp_core::store::NewAdmin;
use serde_json::json;
use uuid::Uuid;

impl AdminOps {
    pub async fn record_session(
        &self,
        admin_id: Uuid,
        action: &'static str,
        detail: serde_json::Value,
    ) -> OpsResult<()> {
        let actor = format!("admin:{admin_id}");
        self.audit(&actor, action, "admin", admin_id, detail).await
    }

    /// Creates an admin account from an argon2id hash.
    pub async fn create_admin(
        &self,
        actor: &str,
        username: &str,
        password_hash: String,
    ) -> OpsResult<Admin> {
        check_username(username)?;
        let admin = self
            .store
            .create_admin(NewAdmin {
                username: username.to_owned(),
                password_hash,
            })
            .await?;
        let detail = json!({"username": admin.username});
        self.audit(actor, "admin.create", "admin", admin.id, detail)
            .await?;
        Ok(admin)
    }

    /// Creates the first admin, only while there is none (`None` otherwise). Two concurrent
    /// calls create one admin.
    pub async fn bootstrap_admin(
        &self,
        username: &str,
        password_hash: String,
    ) -> OpsResult<Option<Admin>> {
        check_username(username)?;
        let Some(admin) = self
            .store
            .create_first_admin(NewAdmin {
                username: username.to_owned(),
                password_hash,
            })
            .await?
        else {
            return Ok(None);
        };
        let detail = json!({"username": admin.username});
        self.audit("bootstrap", "admin.bootstrap", "admin", admin.id, detail)
            .await?;
        Ok(Some(admin))
    }

    /// Replaces an admin's password; every session of that admin ends.
    pub async fn set_admin_password(
        &self,
        actor: &str,
        username: &str,
        password_hash: &str,
    ) -> OpsResult<Admin> {
        let login = self
            .store
            .admin_login(username)
            .await?
            .ok_or(OpsError::NotFound("admin"))?;
        self.store
            .set_admin_password(login.admin.id, password_hash)
            .await?;
        let detail = json!({"username": login.admin.username});
        self.audit(actor, "admin.set_password", "admin", login.admin.id, detail)
            .await?;
        Ok(login.admin)
    }
}

//! The admin operations, independent of how they are asked for: the REST API and the
//! `ccp-admin` command line both call these. Each checks its input, acts through the
//! [`Store`] and writes one audit entry naming the actor (`cli`, `admin:<id>`). Audit details
//! hold masks, ids and regions, never a secret.

use ccp_core::crypto::{KeyWrapper, WrapContext, WrapError};
use ccp_core::domain::{AccessKeyRecord, Admin, KeyStatus, User, UserStatus};
use ccp_core::keys::{AccessKey, Pepper};
use ccp_core::routing::model_map;
use ccp_core::secret::SecretString;
use ccp_core::store::{
    BedrockKeyRecord, ModelMapping, ModelMappingPatch, NewAccessKey, NewAdmin, NewAuditEntry,
    NewBedrockKey, NewModelMapping, NewUser, Store, StoreError, UserPatch,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Why an operation was refused. The messages are safe to show to admins.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The input breaks a rule (an API 422).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change clashes with the current state (an API 409).
    #[error("{0}")]
    Conflict(String),
    /// The database or the key wrapper cannot answer; details go to the log, not the caller.
    #[error("{what} is unavailable")]
    Unavailable {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<StoreError> for OpsError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Unavailable {
                what: "the database",
                source: Box::new(other),
            },
        }
    }
}

impl From<WrapError> for OpsError {
    fn from(err: WrapError) -> Self {
        Self::Unavailable {
            what: "the key wrapper",
            source: Box::new(err),
        }
    }
}

fn invalid(message: impl Into<String>) -> OpsError {
    OpsError::Invalid(message.into())
}

fn conflict(message: &str) -> OpsError {
    OpsError::Conflict(message.to_owned())
}

pub type OpsResult<T> = Result<T, OpsError>;

/// A freshly issued key: the raw key exists only here, to be shown once.
#[derive(Debug)]
pub struct IssuedKey {
    pub record: AccessKeyRecord,
    pub key: AccessKey,
}

/// What admins can change, with the secrets it needs to do so.
#[derive(Debug, Clone)]
pub struct AdminOps {
    pub store: Store,
    pepper: Pepper,
    wrapper: Arc<dyn KeyWrapper>,
    /// How long a rotated key keeps working when the caller names no grace period.
    pub rotation_grace: Duration,
}

/// Longest grace period a rotation may ask for.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

impl AdminOps {
    pub fn new(
        store: Store,
        pepper: Pepper,
        wrapper: Arc<dyn KeyWrapper>,
        rotation_grace: Duration,
    ) -> Self {
        Self {
            store,
            pepper,
            wrapper,
            rotation_grace,
        }
    }

    /// The operations with the pepper and key wrapper a configuration names.
    pub async fn from_config(
        config: &ccp_core::config::Config,
        store: Store,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let pepper = config
            .load_pepper()
            .context("cannot load the access-key pepper")?;
        let wrapper = config
            .key_wrapper()
            .await
            .context("cannot set up the key wrapper")?;
        Ok(Self::new(store, pepper, wrapper, config.key_rotation_grace))
    }

    async fn audit(
        &self,
        actor: &str,
        action: &'static str,
        target_type: &'static str,
        target_id: Uuid,
        detail: serde_json::Value,
    ) -> OpsResult<()> {
        self.store
            .append_audit(NewAuditEntry {
                actor: actor.to_owned(),
                action,
                target_type: Some(target_type),
                target_id: Some(target_id.to_string()),
                detail: Some(detail),
            })
            .await?;
        Ok(())
    }

    pub async fn create_user(&self, actor: &str, name: &str, email: &str) -> OpsResult<User> {
        check_name(name)?;
        check_email(email)?;
        let user = self
            .store
            .create_user(NewUser {
                name: name.to_owned(),
                email: email.to_owned(),
            })
            .await?;
        let detail = json!({"name": user.name, "email": user.email});
        self.audit(actor, "user.create", "user", user.id, detail)
            .await?;
        Ok(user)
    }

    pub async fn update_user(&self, actor: &str, id: Uuid, patch: UserPatch) -> OpsResult<User> {
        if let Some(name) = &patch.name {
            check_name(name)?;
        }
        if let Some(email) = &patch.email {
            check_email(email)?;
        }
        if patch.name.is_none() && patch.email.is_none() && patch.status.is_none() {
            return Err(invalid("nothing to change: give name, email or status"));
        }
        let detail = json!({
            "name": patch.name,
            "email": patch.email,
            "status": patch.status.map(UserStatus::as_str),
        });
        let user = self.store.update_user(id, patch).await?;
        self.audit(actor, "user.update", "user", user.id, detail)
            .await?;
        Ok(user)
    }

    fn new_key(
        &self,
        user_id: Uuid,
        name: Option<String>,
        expires_at: Option<DateTime<Utc>>,
    ) -> OpsResult<(AccessKey, NewAccessKey)> {
        if let Some(name) = &name {
            check_label(name)?;
        }
        if expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(invalid("expires_at must be in the future"));
        }
        let key = AccessKey::generate();
        let new = NewAccessKey {
            user_id,
            name,
            display_prefix: key.masked(),
            digest: self.pepper.digest(&key),
            expires_at,
        };
        Ok((key, new))
    }

    /// Issues a key for an existing user; a disabled user gets none.
    pub async fn issue_key(
        &self,
        actor: &str,
        user_id: Uuid,
        name: Option<String>,
        expires_at: Option<DateTime<Utc>>,
    ) -> OpsResult<IssuedKey> {
        let user = self
            .store
            .get_user(user_id)
            .await?
            .ok_or(OpsError::NotFound("user"))?;
        if user.status != UserStatus::Active {
            return Err(conflict("the user is disabled; activate it first"));
        }
        let (key, new) = self.new_key(user.id, name, expires_at)?;
        let record = self.store.insert_access_key(new).await?;
        let detail = json!({"user_id": user.id, "key": record.display_prefix});
        self.audit(actor, "access_key.issue", "access_key", record.id, detail)
            .await?;
        Ok(IssuedKey { record, key })
    }

    pub async fn revoke_key(&self, actor: &str, id: Uuid) -> OpsResult<AccessKeyRecord> {
        if self.store.get_access_key(id).await?.is_none() {
            return Err(OpsError::NotFound("access key"));
        }
        let record = self.store.revoke_access_key(id).await?;
        let detail = json!({"key": record.display_prefix});
        self.audit(actor, "access_key.revoke", "access_key", record.id, detail)
            .await?;
        Ok(record)
    }

    /// Issues a replacement for an active key. The old key keeps working for `grace` (the
    /// configured default when `None`), then is revoked. A Bedrock key moves to the new key,
    /// re-wrapped under its id; the old key keeps its own until it lapses.
    pub async fn rotate_key(
        &self,
        actor: &str,
        id: Uuid,
        grace: Option<Duration>,
    ) -> OpsResult<(IssuedKey, AccessKeyRecord)> {
        let grace = grace.unwrap_or(self.rotation_grace);
        if grace > MAX_ROTATION_GRACE {
            return Err(invalid("grace_seconds must be at most 2592000 (30 days)"));
        }
        let old = self
            .store
            .get_access_key(id)
            .await?
            .ok_or(OpsError::NotFound("access key"))?;
        let lapsed = old.expires_at.is_some_and(|at| at <= Utc::now());
        if old.status != KeyStatus::Active || old.replaced_by.is_some() || lapsed {
            return Err(conflict(
                "only an active key that was not rotated yet can be rotated",
            ));
        }
        let bedrock = match self.store.bedrock_key(id).await? {
            Some(record) => Some((
                self.wrapper
                    .unwrap(&record.ciphertext, &WrapContext::new(id))
                    .await?,
                record,
            )),
            None => None,
        };
        let (key, new) = self.new_key(old.user_id, old.name.clone(), old.expires_at)?;
        let grace_until =
            Utc::now() + chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
        let (record, old) = self
            .store
            .rotate_access_key(id, new, grace_until)
            .await
            .map_err(|e| match e {
                // Rotated or revoked by someone else since the check above.
                StoreError::Conflict(_) => {
                    conflict("only an active key that was not rotated yet can be rotated")
                }
                other => other.into(),
            })?;
        if let Some((secret, previous)) = bedrock {
            self.store_bedrock_key(record.id, &secret, previous.region)
                .await?;
        }
        let detail = json!({
            "old_key": old.display_prefix,
            "new_key": record.display_prefix,
            "new_id": record.id,
            "old_key_expires_at": old.expires_at,
        });
        self.audit(actor, "access_key.rotate", "access_key", id, detail)
            .await?;
        Ok((IssuedKey { record, key }, old))
    }

    async fn store_bedrock_key(
        &self,
        access_key_id: Uuid,
        secret: &SecretString,
        region: String,
    ) -> OpsResult<BedrockKeyRecord> {
        let ciphertext = self
            .wrapper
            .wrap(secret, &WrapContext::new(access_key_id))
            .await?;
        let last4: String = {
            let chars: Vec<char> = secret.expose().chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        Ok(self
            .store
            .set_bedrock_key(NewBedrockKey {
                access_key_id,
                ciphertext,
                wrapper: self.wrapper.kind().as_str(),
                region,
                last4,
            })
            .await?)
    }

    /// Registers or replaces the Bedrock API key of an access key (stored wrapped).
    pub async fn set_bedrock_key(
        &self,
        actor: &str,
        access_key_id: Uuid,
        secret: &SecretString,
        region: &str,
    ) -> OpsResult<BedrockKeyRecord> {
        if !ccp_core::translate::models::is_valid_region(region) {
            return Err(invalid("region must be an AWS region such as us-east-1"));
        }
        let raw = secret.expose();
        let length = raw.chars().count();
        if !(8..=8192).contains(&length) || raw.chars().any(|c| is_space(c) || c.is_control()) {
            return Err(invalid(
                "the Bedrock API key must be 8 to 8192 characters without spaces or control characters",
            ));
        }
        if self.store.get_access_key(access_key_id).await?.is_none() {
            return Err(OpsError::NotFound("access key"));
        }
        let record = self
            .store_bedrock_key(access_key_id, secret, region.to_owned())
            .await?;
        let detail =
            json!({"region": record.region, "last4": record.last4, "wrapper": record.wrapper});
        self.audit(
            actor,
            "bedrock_key.set",
            "access_key",
            access_key_id,
            detail,
        )
        .await?;
        Ok(record)
    }

    pub async fn delete_bedrock_key(&self, actor: &str, access_key_id: Uuid) -> OpsResult<()> {
        if !self.store.delete_bedrock_key(access_key_id).await? {
            return Err(OpsError::NotFound("bedrock key"));
        }
        self.audit(
            actor,
            "bedrock_key.delete",
            "access_key",
            access_key_id,
            json!({}),
        )
        .await
    }

    /// Records a session event of an admin (`admin.login`, `admin.logout`).
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

    /// Creates a mapping (`replace`: or replaces the one for the same model).
    pub async fn put_model_mapping(
        &self,
        actor: &str,
        new: NewModelMapping,
        replace: bool,
    ) -> OpsResult<ModelMapping> {
        check_model_name(&new.anthropic_model)?;
        check_bedrock_model(&new.bedrock_model_id)?;
        check_max_output(new.max_output_tokens)?;
        let row = if replace {
            self.store.upsert_model_mapping(new).await?
        } else {
            self.store.insert_model_mapping(new).await?
        };
        self.audit_mapping(actor, "model_mapping.set", &row).await?;
        Ok(row)
    }

    pub async fn update_model_mapping(
        &self,
        actor: &str,
        id: Uuid,
        patch: ModelMappingPatch,
    ) -> OpsResult<ModelMapping> {
        if let Some(model) = &patch.bedrock_model_id {
            check_bedrock_model(model)?;
        }
        check_max_output(patch.max_output_tokens.flatten())?;
        if patch.bedrock_model_id.is_none()
            && patch.max_output_tokens.is_none()
            && patch.enabled.is_none()
        {
            return Err(invalid(
                "nothing to change: give bedrock_model_id, max_output_tokens or enabled",
            ));
        }
        let row = self.store.update_model_mapping(id, patch).await?;
        self.audit_mapping(actor, "model_mapping.update", &row)
            .await?;
        Ok(row)
    }

    pub async fn delete_model_mapping(&self, actor: &str, id: Uuid) -> OpsResult<ModelMapping> {
        let row = self
            .store
            .model_mapping_by_id(id)
            .await?
            .ok_or(OpsError::NotFound("model mapping"))?;
        self.store.delete_model_mapping_by_id(id).await?;
        self.audit_mapping(actor, "model_mapping.delete", &row)
            .await?;
        Ok(row)
    }

    async fn audit_mapping(
        &self,
        actor: &str,
        action: &'static str,
        row: &ModelMapping,
    ) -> OpsResult<()> {
        let detail = json!({
            "anthropic_model": row.anthropic_model,
            "bedrock_model_id": row.bedrock_model_id,
            "max_output_tokens": row.max_output_tokens,
            "enabled": row.enabled,
        });
        self.audit(actor, action, "model_mapping", row.id, detail)
            .await
    }
}

/// Whitespace as JSON Schema patterns (`\s`) see it: Unicode white space and U+FEFF. The
/// checks below read the raw text the way the OpenAPI patterns do, so that anything the
/// document admits is accepted and the other way round.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// A person's display name: at most 200 characters, not only spaces, no control characters.
pub fn check_name(name: &str) -> OpsResult<()> {
    if name.chars().all(is_space)
        || name.chars().count() > 200
        || name.chars().any(char::is_control)
    {
        return Err(invalid(
            "name must be 1 to 200 characters without control characters",
        ));
    }
    Ok(())
}

/// A plausible email address (the mailbox is not checked).
pub fn check_email(email: &str) -> OpsResult<()> {
    let plausible = email.chars().count() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && !email.chars().any(|c| is_space(c) || c.is_control());
    if !plausible {
        return Err(invalid("email must be an email address"));
    }
    Ok(())
}

/// A key's label: up to 100 characters, no control characters.
fn check_label(label: &str) -> OpsResult<()> {
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(invalid(
            "a key name is at most 100 characters without control characters",
        ));
    }
    Ok(())
}

/// An admin username: 1 to 64 letters, digits or `. _ - @`.
pub fn check_username(username: &str) -> OpsResult<()> {
    let ok = (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(invalid("a username is 1 to 64 letters, digits or . _ - @"));
    }
    Ok(())
}

/// Whether a name starts with a letter or digit (model names and ids all do).
fn starts_alphanumeric(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Models clients sent in the last `days` days that no rule maps to Bedrock: requests for
/// them cannot fail over. Most requested first.
pub async fn unmapped_models(store: &Store, days: i64) -> OpsResult<Vec<UnmappedModel>> {
    let since = Utc::now() - chrono::Duration::days(days);
    let seen = store.models_seen(since).await?;
    let rows: std::collections::HashMap<String, ModelMapping> = store
        .list_model_mappings()
        .await?
        .into_iter()
        .map(|r| (r.anthropic_model.clone(), r))
        .collect();
    Ok(seen
        .into_iter()
        .filter(|m| !model_map::is_mapped(&rows, &m.model))
        .map(|m| UnmappedModel {
            family: model_map::family(&m.model),
            suggested_bedrock_model_id: model_map::family(&m.model)
                .and_then(model_map::suggested_for_family),
            model: m.model,
            requests: m.requests,
            missed_failovers: m.missed_failovers,
            last_seen: m.last_seen,
        })
        .collect())
}

/// A model clients use that has no Bedrock mapping.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnmappedModel {
    pub model: String,
    pub requests: i64,
    /// Requests that needed Bedrock and were not sent there for want of a mapping.
    pub missed_failovers: i64,
    pub last_seen: DateTime<Utc>,
    /// The family whose default would cover it (`opus`, `sonnet`, `haiku`), if any.
    pub family: Option<&'static str>,
    /// A Bedrock model to map it (or its family) to: the family's newest built-in model.
    pub suggested_bedrock_model_id: Option<String>,
}

fn check_model_name(name: &str) -> OpsResult<()> {
    if name.starts_with(model_map::FAMILY_PREFIX) && model_map::family_row(name).is_none() {
        return Err(invalid(
            "a family default is named family:opus, family:sonnet or family:haiku",
        ));
    }
    let ok = (1..=200).contains(&name.len())
        && starts_alphanumeric(name)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    if !ok {
        return Err(invalid(
            "anthropic_model must be a model name such as claude-opus-4-5",
        ));
    }
    Ok(())
}

fn check_bedrock_model(id: &str) -> OpsResult<()> {
    if !starts_alphanumeric(id) || !ccp_core::translate::models::is_valid_model_id(id) {
        return Err(invalid(
            "bedrock_model_id must be a Bedrock model id, inference-profile id or ARN",
        ));
    }
    Ok(())
}

fn check_max_output(max: Option<i32>) -> OpsResult<()> {
    if max.is_some_and(|n| !(1..=1_000_000).contains(&n)) {
        return Err(invalid("max_output_tokens must be 1 to 1000000"));
    }
    Ok(())
}

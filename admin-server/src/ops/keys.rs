//! Access keys (issue, revoke, rotate) and the Bedrock key kept for each.

use super::checks::{check_label, is_space};
use super::{AdminOps, IssuedKey, MAX_ROTATION_GRACE, OpsError, OpsResult, conflict, invalid};
use ccp_core::crypto::WrapContext;
use ccp_core::domain::{AccessKeyRecord, KeyStatus, UserStatus};
use ccp_core::keys::AccessKey;
use ccp_core::secret::SecretString;
use ccp_core::store::{BedrockKeyRecord, NewAccessKey, NewBedrockKey, StoreError};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

impl AdminOps {
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
}

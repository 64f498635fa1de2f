//! Change notifications between processes on one PostgreSQL database: the admin server (API or
//! CLI) announces what it changed with `NOTIFY`, and every gateway `LISTEN`s and drops the
//! cache entries the change touches, instead of waiting for their TTL.
//!
//! Payloads carry a kind and an id, never a key, digest or secret. Delivery is best effort:
//! a notification sent while a gateway's listener is reconnecting is lost, so a gateway that
//! reconnects drops its caches whole ([`ListenEvent::Resync`]); while it cannot reconnect,
//! the caches' TTLs are the bound. SQLite has no `NOTIFY`: there, announcing does nothing and the caches'
//! TTLs apply as before.

use super::{Pool, Store, StoreResult};
use uuid::Uuid;

/// The channel the gateways listen on.
pub const CHANNEL: &str = "ccp_changes";

/// What changed, as far as a gateway's caches are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// An access key: revoked, rotated, or its Bedrock key set or removed.
    AccessKey(Uuid),
    /// A user: status, routing or budget.
    User(Uuid),
    /// The model map.
    ModelMap,
    /// An access key's shared circuit state (opened, probed, closed by some gateway).
    Circuit(Uuid),
}

impl Change {
    /// The change an audit row records, for the targets gateways cache.
    pub fn of_audit_target(target_type: &str, id: Uuid) -> Option<Self> {
        match target_type {
            "access_key" => Some(Self::AccessKey(id)),
            "user" => Some(Self::User(id)),
            "model_mapping" => Some(Self::ModelMap),
            _ => None,
        }
    }

    /// The notification payload: `access_key:<uuid>`, `user:<uuid>`, `circuit:<uuid>` or
    /// `model_map`.
    pub fn payload(self) -> String {
        match self {
            Self::AccessKey(id) => format!("access_key:{id}"),
            Self::User(id) => format!("user:{id}"),
            Self::Circuit(id) => format!("circuit:{id}"),
            Self::ModelMap => "model_map".to_owned(),
        }
    }

    pub fn parse(payload: &str) -> Option<Self> {
        if payload == "model_map" {
            return Some(Self::ModelMap);
        }
        let (kind, id) = payload.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "access_key" => Some(Self::AccessKey(id)),
            "user" => Some(Self::User(id)),
            "circuit" => Some(Self::Circuit(id)),
            _ => None,
        }
    }

    /// The metric label.
    pub fn kind(self) -> &'static str {
        match self {
            Self::AccessKey(_) => "access_key",
            Self::User(_) => "user",
            Self::ModelMap => "model_map",
            Self::Circuit(_) => "circuit",
        }
    }
}

/// What a listener hands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenEvent {
    Changed(Change),
    /// The connection dropped; the next call reconnects.
    Lost,
    /// Listening again after a loss: notifications may have been missed meanwhile, so drop
    /// every cached entry.
    Resync,
}

/// A `LISTEN` connection on [`CHANNEL`], reconnected on demand. It has a pool of its own
/// (one connection, never recycled), so it takes nothing from the request path's pool.
#[derive(Debug)]
pub struct ChangeListener {
    pool: sqlx::PgPool,
    inner: Option<sqlx::postgres::PgListener>,
}

impl ChangeListener {
    async fn connect(pool: &sqlx::PgPool) -> StoreResult<sqlx::postgres::PgListener> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    /// The next event. After [`ListenEvent::Lost`], the next call connects again and answers
    /// [`ListenEvent::Resync`] once it listens (so nothing announced after the resync can be
    /// missed), or an error while the database cannot be reached (wait, then call again).
    pub async fn next(&mut self) -> StoreResult<ListenEvent> {
        loop {
            let Some(inner) = self.inner.as_mut() else {
                self.inner = Some(Self::connect(&self.pool).await?);
                return Ok(ListenEvent::Resync);
            };
            match inner.try_recv().await {
                Ok(Some(n)) => match Change::parse(n.payload()) {
                    Some(change) => return Ok(ListenEvent::Changed(change)),
                    None => tracing::warn!(
                        payload = n.payload(),
                        "ignored an unknown change notification"
                    ),
                },
                Ok(None) | Err(_) => {
                    self.inner = None;
                    return Ok(ListenEvent::Lost);
                }
            }
        }
    }
}

impl Store {
    /// Tells every listening gateway about `change` (PostgreSQL; nothing on SQLite).
    pub async fn announce(&self, change: Change) -> StoreResult<()> {
        if let Pool::Postgres(pool) = &self.pool {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(change.payload())
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// A listener for the changes others announce; `None` on SQLite.
    pub async fn listen_for_changes(&self) -> StoreResult<Option<ChangeListener>> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with((*pool.connect_options()).clone());
        let inner = ChangeListener::connect(&own).await?;
        Ok(Some(ChangeListener {
            pool: own,
            inner: Some(inner),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_a_kind_and_an_id_and_round_trip() {
        let id = Uuid::now_v7();
        for change in [
            Change::AccessKey(id),
            Change::User(id),
            Change::Circuit(id),
            Change::ModelMap,
        ] {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        assert_eq!(Change::AccessKey(id).payload(), format!("access_key:{id}"));
        for bad in [
            "",
            "user",
            "user:",
            "user:nope",
            "admin:00000000-0000-0000-0000-000000000000",
        ] {
            assert_eq!(Change::parse(bad), None, "{bad}");
        }
        assert_eq!(Change::of_audit_target("admin", id), None);
        assert_eq!(
            Change::of_audit_target("model_mapping", id),
            Some(Change::ModelMap)
        );
    }
}

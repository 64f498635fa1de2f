//! Arguments of the metering writer's batch inserts, made cheap for SQLite. sqlx's SQLite
//! driver formats each bound timestamp through `core::fmt` into a new `String` in a new `Arc`,
//! and copies each `Uuid` into a new `Vec` in a new `Arc`; a metering row binds three
//! timestamps and four ids. These types bind the same values (the same text, the same 16
//! bytes) made once: a timestamp written digit by digit ([`crate::rfc3339`]), an id shared by
//! every row of a batch that has it. On PostgreSQL they bind as the values they wrap.

use crate::rfc3339::Rfc3339;
use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo};
use sqlx::{Encode, Postgres, Sqlite, Type};
use std::sync::Arc;
use uuid::Uuid;

/// Binds `$outer` on PostgreSQL as the `$inner` it wraps (the field named `$field`).
macro_rules! as_itself_on_postgres {
    ($outer:ty, $inner:ty, $field:tt) => {
        impl Type<Postgres> for $outer {
            fn type_info() -> PgTypeInfo {
                <$inner as Type<Postgres>>::type_info()
            }
        }

        impl Encode<'_, Postgres> for $outer {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                Encode::<Postgres>::encode_by_ref(&self.$field, buf)
            }
        }

        impl Type<Sqlite> for $outer {
            fn type_info() -> SqliteTypeInfo {
                <$inner as Type<Sqlite>>::type_info()
            }
        }
    };
}

/// A timestamp, bound on SQLite as the text sqlx would have written for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp(pub DateTime<Utc>);

as_itself_on_postgres!(Stamp, DateTime<Utc>, 0);

impl Encode<'_, Sqlite> for Stamp {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        match Rfc3339::sqlx(&self.0) {
            Some(text) => Encode::<Sqlite>::encode(Arc::<str>::from(text.as_str()), buf),
            None => Encode::<Sqlite>::encode_by_ref(&self.0, buf),
        }
    }
}

/// An id with its 16 bytes already in an `Arc`, for SQLite's blob.
#[derive(Debug, Clone)]
pub(super) struct SharedId {
    id: Uuid,
    bytes: Arc<[u8]>,
}

as_itself_on_postgres!(SharedId, Uuid, id);

impl Encode<'_, Sqlite> for SharedId {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(Arc::clone(&self.bytes), buf)
    }
}

/// Values a batch repeats, each made once and then shared: the first [`Self::KEPT`] distinct
/// ones are kept (so many distinct values cost a bounded scan each), later ones are made anew.
pub(super) struct Shared<K, V>(Vec<(K, V)>);

impl<K, V> Default for Shared<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: PartialEq + Copy, V: Clone> Shared<K, V> {
    const KEPT: usize = 32;

    fn get_or_make(&mut self, key: K, make: impl FnOnce(K) -> V) -> V {
        if let Some((_, shared)) = self.0.iter().find(|(kept, _)| *kept == key) {
            return shared.clone();
        }
        let made = make(key);
        if self.0.len() < Self::KEPT {
            self.0.push((key, made.clone()));
        }
        made
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.0.len()
    }
}

/// Text arguments as shared strings: a bound `&str` sqlx copies into a new `String` in a new
/// `Arc` (two allocations an argument); a bound `Arc<str>` it keeps as it is.
pub(super) type SharedTexts<'a> = Shared<&'a str, Arc<str>>;

impl<'a> SharedTexts<'a> {
    pub(super) fn get(&mut self, text: &'a str) -> Arc<str> {
        self.get_or_make(text, Arc::from)
    }

    pub(super) fn get_opt(&mut self, text: Option<&'a str>) -> Option<Arc<str>> {
        text.map(|t| self.get(t))
    }
}

pub(super) type SharedIds = Shared<Uuid, SharedId>;

impl SharedIds {
    pub(super) fn get(&mut self, id: Uuid) -> SharedId {
        self.get_or_make(id, |id| SharedId {
            id,
            bytes: Arc::from(id.as_bytes().as_slice()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_texts_share_one_string_and_distinct_ones_stay_bounded() {
        let owned = String::from("claude-sonnet-5-5");
        let mut texts = SharedTexts::default();
        let first = texts.get("plan");
        let again = texts.get("plan");
        assert!(Arc::ptr_eq(&first, &again));
        // Equal text from another allocation is the same value.
        assert!(Arc::ptr_eq(
            &texts.get(&owned),
            &texts.get("claude-sonnet-5-5")
        ));
        assert_eq!(texts.get_opt(None), None);
        assert_eq!(texts.get_opt(Some("plan")).as_deref(), Some("plan"));
        let many: Vec<String> = (0..100).map(|i| format!("model-{i}")).collect();
        for name in &many {
            assert_eq!(&*texts.get(name), name.as_str());
        }
        assert_eq!(texts.kept(), SharedTexts::KEPT);
        // Past the bound a value is still right, only not kept.
        assert_eq!(&*texts.get(&many[99]), "model-99");
        assert!(Arc::ptr_eq(&texts.get("plan"), &first));
    }

    #[test]
    fn an_id_binds_its_own_bytes_once_per_batch() {
        let mut ids = SharedIds::default();
        let id = Uuid::now_v7();
        let a = ids.get(id);
        let b = ids.get(id);
        assert!(Arc::ptr_eq(&a.bytes, &b.bytes));
        assert_eq!(&*a.bytes, id.as_bytes());
        assert_ne!(&*ids.get(Uuid::now_v7()).bytes, id.as_bytes());
    }
}

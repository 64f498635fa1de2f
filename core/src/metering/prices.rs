//! The price table in force, reloadable while the gateway runs: the price file is read again
//! on SIGHUP and when its modification time changes (the gateway looks once a minute). A file
//! that does not load leaves the prices as they were, and the reason is logged.

use super::pricing::{PriceFileError, PriceTable};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// How often the gateway looks at the price file's modification time.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug)]
pub struct Prices {
    current: RwLock<Arc<PriceTable>>,
    file: Option<PathBuf>,
    /// The modification time of the file last read (successfully or not).
    seen: Mutex<Option<SystemTime>>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// No price file is configured, or it has not changed.
    Unchanged,
    Reloaded,
}

impl Prices {
    /// The built-in prices plus the file's; fails when the file does not load (start-up).
    pub fn load(file: Option<PathBuf>) -> Result<Self, PriceFileError> {
        let seen = file.as_deref().and_then(modified);
        let table = PriceTable::load(file.as_deref())?;
        Ok(Self {
            current: RwLock::new(Arc::new(table)),
            file,
            seen: Mutex::new(seen),
        })
    }

    /// The table in force; cheap (a clone of an `Arc`).
    pub fn get(&self) -> Arc<PriceTable> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the file again (SIGHUP). On an error the prices stay as they were.
    pub fn reload(&self) -> Result<Reload, PriceFileError> {
        let Some(file) = &self.file else {
            return Ok(Reload::Unchanged);
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = modified(file);
        let table = PriceTable::load(Some(file))?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        Ok(Reload::Reloaded)
    }

    /// Reloads when the file's modification time differs from the one last read.
    pub fn reload_if_changed(&self) -> Result<Reload, PriceFileError> {
        let Some(file) = &self.file else {
            return Ok(Reload::Unchanged);
        };
        let now = modified(file);
        if now == *self.seen.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(Reload::Unchanged);
        }
        self.reload()
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::pricing::TokenCounts;
    use chrono::NaiveDate;

    const MODEL: &str = "global.anthropic.claude-test-9-v1:0";

    fn file(output: &str) -> String {
        format!(
            "[[price]]\nmodel = \"anthropic.claude-test-9*\"\neffective_from = \"2026-01-01\"\n\
             input = 0.0\noutput = {output}\ncache_write_5m = 0.0\ncache_read = 0.0\n"
        )
    }

    fn cost(prices: &Prices) -> Option<i64> {
        let tokens = TokenCounts {
            output: 1_000_000,
            ..TokenCounts::default()
        };
        prices.get().cost_micro_usd(
            MODEL,
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            &tokens,
        )
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_bad_one_keeps_the_old_prices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.toml");
        std::fs::write(&path, file("10.0")).unwrap();
        let prices = Prices::load(Some(path.clone())).unwrap();
        assert_eq!(cost(&prices), Some(10_000_000));
        assert_eq!(prices.reload_if_changed().unwrap(), Reload::Unchanged);

        std::fs::write(&path, file("12.5")).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(prices.reload_if_changed().unwrap(), Reload::Reloaded);
        assert_eq!(cost(&prices), Some(12_500_000));

        // A broken file: the error says why, the prices stay.
        std::fs::write(&path, "[[price]]\nmodel = 3\n").unwrap();
        let err = prices.reload().unwrap_err();
        assert!(err.to_string().contains("prices.toml"), "{err}");
        assert_eq!(cost(&prices), Some(12_500_000));
        // Not retried until the file changes again.
        assert_eq!(prices.reload_if_changed().unwrap(), Reload::Unchanged);

        let none = Prices::load(None).unwrap();
        assert_eq!(none.reload().unwrap(), Reload::Unchanged);
        assert_eq!(cost(&none), None);
    }
}

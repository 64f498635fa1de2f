//! Bedrock on-demand prices and the cost of one request, in exact integer arithmetic.
//!
//! Prices are USD per million tokens (AWS's Bedrock price list for Anthropic models), held as
//! nano-USD per token (3.30 USD / 1M tokens = 3 300 nano-USD a token), so sums are exact and
//! the stored cost (micro-USD) is rounded once. Claude 4.5 and newer cost 10 % more through a
//! geography inference profile (`us.`, `eu.`, `jp.`, `au.`, `apac.`) than through `global.`
//! or the base id. Each price row has the date it took effect; a request is priced with the
//! newest row not after it.
//!
//! (Over 400 lines only with its unit tests, which sit beside the code they check.)

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use std::borrow::Cow;
use std::path::Path;

/// Nano-USD per token for each token kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cache_write_5m: u64,
    /// `None` where the model has no 1-hour cache price (then the 5-minute one applies).
    pub cache_write_1h: Option<u64>,
    pub cache_read: u64,
}

/// One price row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    /// Matched against the Bedrock model id with its profile prefix removed, e.g.
    /// `anthropic.claude-sonnet-4-5-20250929-v1:0`; a row ending in `*` matches a prefix.
    pub base_id: Cow<'static, str>,
    pub effective_from: (i32, u32, u32),
    /// Through `global.` or the base id.
    pub global: Rates,
    /// Whether geography profiles cost 10 % more (4.5 generation and newer).
    pub geo_uplift: bool,
}

const fn rates(input: u64, output: u64, cw5: u64, cw1h: Option<u64>, cr: u64) -> Rates {
    Rates {
        input,
        output,
        cache_write_5m: cw5,
        cache_write_1h: cw1h,
        cache_read: cr,
    }
}

const REF_DATE: (i32, u32, u32) = (2025, 1, 1);

/// The defaults, from the reference table (LiteLLM price map, on-demand).
pub const DEFAULT_PRICES: &[PriceRow] = &[
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-sonnet-4-5-20250929-v1:0"),
        effective_from: REF_DATE,
        global: rates(3_000, 15_000, 3_750, Some(6_000), 300),
        geo_uplift: true,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-sonnet-4-6"),
        effective_from: REF_DATE,
        global: rates(3_000, 15_000, 3_750, Some(6_000), 300),
        geo_uplift: true,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-sonnet-4-20250514-v1:0"),
        effective_from: REF_DATE,
        global: rates(3_000, 15_000, 3_750, None, 300),
        geo_uplift: false,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-opus-4-1-20250805-v1:0"),
        effective_from: REF_DATE,
        global: rates(15_000, 75_000, 18_750, None, 1_500),
        geo_uplift: false,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-opus-4-20250514-v1:0"),
        effective_from: REF_DATE,
        global: rates(15_000, 75_000, 18_750, None, 1_500),
        geo_uplift: false,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-opus-4-5-20251101-v1:0"),
        effective_from: REF_DATE,
        global: rates(5_000, 25_000, 6_250, Some(10_000), 500),
        geo_uplift: true,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-opus-4-6-v1"),
        effective_from: REF_DATE,
        global: rates(5_000, 25_000, 6_250, Some(10_000), 500),
        geo_uplift: true,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-opus-4-7"),
        effective_from: REF_DATE,
        global: rates(5_000, 25_000, 6_250, Some(10_000), 500),
        geo_uplift: true,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-haiku-4-5-20251001-v1:0"),
        effective_from: REF_DATE,
        global: rates(1_000, 5_000, 1_250, Some(2_000), 100),
        geo_uplift: true,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-3-5-haiku-20241022-v1:0"),
        effective_from: REF_DATE,
        global: rates(800, 4_000, 1_000, None, 80),
        geo_uplift: false,
    },
    PriceRow {
        base_id: Cow::Borrowed("anthropic.claude-3-7-sonnet-20250219-v1:0"),
        effective_from: REF_DATE,
        global: rates(3_000, 15_000, 3_750, None, 300),
        geo_uplift: false,
    },
];

const GEO_PREFIXES: &[&str] = &["us.", "eu.", "apac.", "jp.", "au.", "us-gov."];

/// Token counts of one request, as Anthropic reports them (input excludes cache tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
}

/// The price table in force.
#[derive(Debug, Clone)]
pub struct PriceTable {
    rows: Vec<PriceRow>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            rows: DEFAULT_PRICES.to_vec(),
        }
    }
}

impl PriceTable {
    pub fn new(rows: Vec<PriceRow>) -> Self {
        Self { rows }
    }

    /// The built-in rows plus those of a price file (`CCP_PRICING_FILE`). A file row
    /// applies from its date on; on the same model and date it replaces the built-in one.
    pub fn load(file: Option<&Path>) -> Result<Self, PriceFileError> {
        let mut table = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| PriceFileError {
                path: path.display().to_string(),
                problem: e.to_string(),
            })?;
            let rows = parse_price_file(&text).map_err(|problem| PriceFileError {
                path: path.display().to_string(),
                problem,
            })?;
            table.rows.extend(rows);
        }
        Ok(table)
    }

    /// The rates for a Bedrock model id on `date`, uplift applied; `None` for unknown models.
    pub fn rates(&self, model_id: &str, date: NaiveDate) -> Option<Rates> {
        let (geo, base) = match GEO_PREFIXES.iter().find(|p| model_id.starts_with(**p)) {
            Some(prefix) => (true, &model_id[prefix.len()..]),
            None => (false, model_id.strip_prefix("global.").unwrap_or(model_id)),
        };
        let row = self
            .rows
            .iter()
            .filter(|r| match r.base_id.strip_suffix('*') {
                Some(prefix) => base.starts_with(prefix),
                None => base == r.base_id,
            })
            .filter(|r| {
                let (y, m, d) = r.effective_from;
                NaiveDate::from_ymd_opt(y, m, d).is_some_and(|from| from <= date)
            })
            // On equal dates the later row wins: file rows come after the built-in ones.
            .max_by_key(|r| r.effective_from)?;
        let uplift = |n: u64| {
            if geo && row.geo_uplift {
                n * 11 / 10
            } else {
                n
            }
        };
        let g = row.global;
        Some(Rates {
            input: uplift(g.input),
            output: uplift(g.output),
            cache_write_5m: uplift(g.cache_write_5m),
            cache_write_1h: g.cache_write_1h.map(uplift),
            cache_read: uplift(g.cache_read),
        })
    }

    /// Cost in micro-USD, rounded half up; `None` for unknown models.
    pub fn cost_micro_usd(&self, model_id: &str, date: NaiveDate, t: &TokenCounts) -> Option<i64> {
        let r = self.rates(model_id, date)?;
        let nano = u128::from(t.input) * u128::from(r.input)
            + u128::from(t.output) * u128::from(r.output)
            + u128::from(t.cache_read) * u128::from(r.cache_read)
            + u128::from(t.cache_write_5m) * u128::from(r.cache_write_5m)
            + u128::from(t.cache_write_1h)
                * u128::from(r.cache_write_1h.unwrap_or(r.cache_write_5m));
        i64::try_from((nano + 500) / 1000).ok()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("price file {path}: {problem}")]
pub struct PriceFileError {
    pub path: String,
    pub problem: String,
}

/// A price file row: USD per million tokens, as price lists give them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRow {
    model: String,
    effective_from: String,
    input: f64,
    output: f64,
    cache_write_5m: f64,
    cache_write_1h: Option<f64>,
    cache_read: f64,
    #[serde(default)]
    geo_uplift: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    price: Vec<FileRow>,
}

/// Parses a TOML price file (`[[price]]` tables; docs/configuration.md shows one).
pub fn parse_price_file(text: &str) -> Result<Vec<PriceRow>, String> {
    use figment::providers::{Format, Toml};
    let file: PriceFile = figment::Figment::from(Toml::string(text))
        .extract()
        .map_err(|e| e.to_string())?;
    file.price
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = |what: &str| format!("price #{}: {what}", i + 1);
            if row.model.trim().is_empty() {
                return Err(at("model is empty"));
            }
            let date = NaiveDate::parse_from_str(&row.effective_from, "%Y-%m-%d")
                .map_err(|_| at("effective_from must be a date like 2026-01-31"))?;
            let nano = |field: &str, usd_per_million: f64| {
                // USD per million tokens × 1 000 = nano-USD per token.
                let v = usd_per_million * 1_000.0;
                if !(0.0..=1e12).contains(&v) || (v - v.round()).abs() > 1e-6 {
                    return Err(at(&format!(
                        "{field} must be a non-negative price in USD per million tokens with at \
                         most 3 decimals"
                    )));
                }
                // Checked above: finite, whole and in range.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(v.round() as u64)
            };
            Ok(PriceRow {
                base_id: Cow::Owned(row.model.trim().to_owned()),
                effective_from: (date.year(), date.month(), date.day()),
                global: Rates {
                    input: nano("input", row.input)?,
                    output: nano("output", row.output)?,
                    cache_write_5m: nano("cache_write_5m", row.cache_write_5m)?,
                    cache_write_1h: row
                        .cache_write_1h
                        .map(|v| nano("cache_write_1h", v))
                        .transpose()?,
                    cache_read: nano("cache_read", row.cache_read)?,
                },
                geo_uplift: row.geo_uplift,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    #[test]
    fn hand_computed_costs() {
        let table = PriceTable::default();
        // Sonnet 4.5 through global: 1 000 000 input at 3 USD/M = 3 USD = 3 000 000 µUSD.
        let t = TokenCounts {
            input: 1_000_000,
            ..TokenCounts::default()
        };
        assert_eq!(
            table.cost_micro_usd(
                "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                day(),
                &t
            ),
            Some(3_000_000)
        );
        // The same through us.: +10 % = 3.30 USD.
        assert_eq!(
            table.cost_micro_usd("us.anthropic.claude-sonnet-4-5-20250929-v1:0", day(), &t),
            Some(3_300_000)
        );
        // A Claude Code turn on us. Sonnet 4.5: 1 200 input, 850 output, 30 000 cache read,
        // 2 000 cache write (5 m), 1 000 cache write (1 h):
        // 1200×3300 + 850×16500 + 30000×330 + 2000×4125 + 1000×6600 nano-USD
        // = 3 960 000 + 14 025 000 + 9 900 000 + 8 250 000 + 6 600 000 = 42 735 000 nano
        // = 42 735 µUSD (0.042735 USD).
        let turn = TokenCounts {
            input: 1_200,
            output: 850,
            cache_read: 30_000,
            cache_write_5m: 2_000,
            cache_write_1h: 1_000,
        };
        assert_eq!(
            table.cost_micro_usd("us.anthropic.claude-sonnet-4-5-20250929-v1:0", day(), &turn),
            Some(42_735)
        );
        // Opus 4.1 has no geo uplift and no 1 h price (the 5 m price applies):
        // 1000×15000 + 100×75000 + 10×18750 (1 h billed as 5 m) = 15 000 000 + 7 500 000
        // + 187 500 = 22 687 500 nano → 22 688 µUSD (rounded half up).
        let t = TokenCounts {
            input: 1_000,
            output: 100,
            cache_write_1h: 10,
            ..TokenCounts::default()
        };
        assert_eq!(
            table.cost_micro_usd("eu.anthropic.claude-opus-4-1-20250805-v1:0", day(), &t),
            Some(22_688)
        );
        // Haiku 4.5 cache reads through jp.: 0.11 USD/M → 1 000 000 tokens = 110 000 µUSD.
        let t = TokenCounts {
            cache_read: 1_000_000,
            ..TokenCounts::default()
        };
        assert_eq!(
            table.cost_micro_usd("jp.anthropic.claude-haiku-4-5-20251001-v1:0", day(), &t),
            Some(110_000)
        );
        assert_eq!(
            table.cost_micro_usd("us.anthropic.claude-unknown", day(), &t),
            None
        );
    }

    #[test]
    fn the_newest_row_in_force_applies() {
        let mut rows = DEFAULT_PRICES.to_vec();
        rows.push(PriceRow {
            base_id: Cow::Borrowed("anthropic.claude-sonnet-4-5*"),
            effective_from: (2026, 12, 1),
            global: rates(2_000, 10_000, 2_500, Some(4_000), 200),
            geo_uplift: true,
        });
        let table = PriceTable::new(rows);
        let id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
        assert_eq!(table.rates(id, day()).unwrap().input, 3_000);
        let later = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(table.rates(id, later).unwrap().input, 2_000);
        assert_eq!(
            table
                .rates("us.anthropic.claude-sonnet-4-5-20250929-v1:0", later)
                .unwrap()
                .input,
            2_200
        );
    }

    #[test]
    fn a_price_file_adds_dated_rows_and_replaces_same_day_ones() {
        let rows = parse_price_file(
            r#"
            [[price]]
            model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
            effective_from = "2026-12-01"
            input = 2.5
            output = 12.0
            cache_write_5m = 3.125
            cache_write_1h = 5.0
            cache_read = 0.25
            geo_uplift = true

            [[price]]
            model = "anthropic.claude-3-7-sonnet-20250219-v1:0"
            effective_from = "2025-01-01"
            input = 1.0
            output = 2.0
            cache_write_5m = 0.3
            cache_read = 0.1
            "#,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].global.cache_write_5m, 3_125);
        assert_eq!(rows[1].global.cache_write_1h, None);
        let mut table = PriceTable::default();
        table.rows.extend(rows);
        let sonnet = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
        // Before the file row's date the built-in price holds; from it on, the file's, with
        // the geography uplift: 2.5 USD/M × 1.1 = 2 750 nano-USD a token.
        assert_eq!(table.rates(sonnet, day()).unwrap().input, 3_300);
        let later = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(table.rates(sonnet, later).unwrap().input, 2_750);
        // Same model and date as a built-in row: the file row replaces it.
        let t = TokenCounts {
            input: 1_000_000,
            ..TokenCounts::default()
        };
        assert_eq!(
            table.cost_micro_usd("anthropic.claude-3-7-sonnet-20250219-v1:0", day(), &t),
            Some(1_000_000)
        );
    }

    #[test]
    fn a_bad_price_file_is_refused_with_the_row_and_field() {
        let row = |extra: &str| {
            format!(
                "[[price]]\nmodel = \"m\"\neffective_from = \"2026-01-01\"\ninput = 1.0\n\
                 output = 1.0\ncache_write_5m = 1.0\ncache_read = 1.0\n{extra}"
            )
        };
        assert!(parse_price_file(&row("")).is_ok());
        let err = parse_price_file(&row("cache_write_1h = -1.0")).unwrap_err();
        assert!(err.contains("price #1: cache_write_1h"), "{err}");
        let err = parse_price_file(&row("").replace("1.0\noutput", "0.0001\noutput")).unwrap_err();
        assert!(err.contains("input"), "{err}");
        let err = parse_price_file(&row("").replace("2026-01-01", "soon")).unwrap_err();
        assert!(err.contains("effective_from"), "{err}");
        assert!(parse_price_file(&row("colour = 1")).is_err());
        assert!(PriceTable::load(Some(Path::new("/nonexistent/prices.toml"))).is_err());
    }
}

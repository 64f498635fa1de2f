//! RFC 3339 timestamps written digit by digit, for the two places that write one per request:
//! the metering row (three a row, bound as text on SQLite) and the JSON log line. Each writes
//! exactly what the library it replaces writes, so stored rows, their ordering and log
//! parsers see no difference; going through `core::fmt` cost about 2 000 instructions a
//! timestamp (docs/benchmarks.md, round twelve).

use chrono::{DateTime, Utc};

/// A formatted timestamp; the longest form is `2026-11-30T02:50:01.123456789+00:00`.
#[derive(Clone, Copy)]
pub struct Rfc3339 {
    buf: [u8; 35],
    len: usize,
}

impl Rfc3339 {
    /// As chrono's `to_rfc3339_opts(SecondsFormat::AutoSi, false)`, which is how sqlx stores a
    /// `DateTime<Utc>` in SQLite: as many fraction digits (none, 3, 6 or 9) as the value needs,
    /// and `+00:00`. `None` for what chrono writes in other shapes (years outside 0–9999, a
    /// leap second): callers then use chrono.
    pub fn sqlx(t: &DateTime<Utc>) -> Option<Self> {
        let nanos = t.timestamp_subsec_nanos();
        let digits = match nanos {
            1_000_000_000.. => return None,
            0 => 0,
            n if n % 1_000_000 == 0 => 3,
            n if n % 1_000 == 0 => 6,
            _ => 9,
        };
        let mut out = Self::seconds(t.timestamp())?;
        out.fraction(nanos, digits);
        out.push(b"+00:00");
        Some(out)
    }

    /// As tracing-subscriber's `SystemTime` timer writes it: microseconds and `Z`. `None`
    /// outside years 0–9999.
    pub fn log(since_epoch: std::time::Duration) -> Option<Self> {
        let mut out = Self::seconds(i64::try_from(since_epoch.as_secs()).ok()?)?;
        out.fraction(since_epoch.subsec_nanos(), 6);
        out.push(b"Z");
        Some(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    /// `YYYY-MM-DDTHH:MM:SS` of a Unix time.
    fn seconds(unix: i64) -> Option<Self> {
        let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut out = Self {
            buf: [0; 35],
            len: 0,
        };
        // Every value below is in range, so the casts cannot truncate.
        out.digits(year as u32, 4);
        out.push(b"-");
        out.digits(month, 2);
        out.push(b"-");
        out.digits(day, 2);
        out.push(b"T");
        out.digits((secs / 3600) as u32, 2);
        out.push(b":");
        out.digits((secs / 60 % 60) as u32, 2);
        out.push(b":");
        out.digits((secs % 60) as u32, 2);
        Some(out)
    }

    /// `.` and the first `digits` digits of the nanoseconds; nothing for 0 digits.
    fn fraction(&mut self, nanos: u32, digits: u32) {
        if digits > 0 {
            self.push(b".");
            self.digits(nanos / 10u32.pow(9 - digits), digits);
        }
    }

    /// `value` in exactly `width` decimal digits, zero-padded.
    fn digits(&mut self, mut value: u32, width: u32) {
        let width = width as usize;
        for slot in self.buf[self.len..self.len + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }

    fn push(&mut self, text: &[u8]) {
        self.buf[self.len..self.len + text.len()].copy_from_slice(text);
        self.len += text.len();
    }
}

impl std::fmt::Debug for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;
    use proptest::prelude::*;
    use tracing_subscriber::fmt::time::FormatTime;

    /// 0000-01-01 to 9999-12-31, in seconds from the epoch.
    const YEARS_0_TO_9999: std::ops::Range<i64> = -62_167_219_200..253_402_300_800;

    fn chrono_time(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, nanos).expect("in chrono's range")
    }

    #[test]
    fn writes_what_chrono_writes_for_each_fraction_length() {
        for nanos in [0, 120_000_000, 123_456_000, 123_456_789, 1, 999_999_999] {
            let t = chrono_time(1_795_999_801, nanos);
            assert_eq!(
                Rfc3339::sqlx(&t).unwrap().as_str(),
                t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
            );
        }
        assert_eq!(
            Rfc3339::sqlx(&chrono_time(1_795_999_801, 123_000_000))
                .unwrap()
                .as_str(),
            "2026-11-30T00:50:01.123+00:00"
        );
    }

    #[test]
    fn leaves_other_shapes_to_chrono() {
        let leap = chrono_time(1_795_999_799, 1_500_000_000);
        assert!(Rfc3339::sqlx(&leap).is_none());
        assert!(Rfc3339::sqlx(&chrono_time(253_402_300_800, 0)).is_none());
        assert!(Rfc3339::sqlx(&chrono_time(-62_167_219_201, 0)).is_none());
    }

    #[test]
    fn has_the_shape_tracing_subscriber_writes() {
        // Its timer reads the clock itself, so the instants differ a little: the same shape,
        // both valid RFC 3339, within a second. The digits are checked against chrono below.
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(
                &mut theirs,
            ))
            .unwrap();
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let ours = Rfc3339::log(since).unwrap();
        assert_eq!(ours.as_str().len(), theirs.len());
        assert!(ours.as_str().ends_with('Z') && theirs.ends_with('Z'));
        let parse = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        let apart = parse(ours.as_str()) - parse(&theirs);
        assert!(
            apart.num_milliseconds().abs() < 1_000,
            "{ours:?} against {theirs}"
        );
    }

    proptest! {
        #[test]
        fn matches_chrono_across_the_years(secs in YEARS_0_TO_9999, nanos in 0u32..1_000_000_000, cut in 0usize..4) {
            // Every fraction length: whole seconds, milli-, micro- and nanoseconds.
            let nanos = nanos / [1_000_000_000, 1_000_000, 1_000, 1][cut] * [1_000_000_000, 1_000_000, 1_000, 1][cut];
            let t = chrono_time(secs, nanos);
            let ours = Rfc3339::sqlx(&t).unwrap();
            prop_assert_eq!(ours.as_str(), t.to_rfc3339_opts(SecondsFormat::AutoSi, false));
            if secs >= 0 {
                let since = std::time::Duration::new(secs as u64, nanos);
                let ours = Rfc3339::log(since).unwrap();
                prop_assert_eq!(ours.as_str(), t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            }
        }
    }
}

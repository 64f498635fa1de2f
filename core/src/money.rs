//! Dollar amounts as exact integers of micro-USD (millionths), the unit of the cost column:
//! parsed from and written as decimal text, never through a float.

/// The largest amount accepted: a million dollars.
pub const MAX_MICRO_USD: i64 = 1_000_000 * 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a dollar amount: write a decimal such as 25 or 12.50 (at most 6 decimals, at most 1000000)"
)]
pub struct MoneyError(pub String);

/// The accepted form, as the admin API's OpenAPI document states it: 1 to 7 digits, and if
/// a point, 1 to 6 decimals after it; at most 1000000.
pub const USD_PATTERN: &str = r"^(1000000(\.0{1,6})?|[0-9]{1,6}(\.[0-9]{1,6})?)$";

/// `"12.5"` → 12 500 000. Digits, an optional point and 1 to 6 decimals ([`USD_PATTERN`]);
/// no sign, no exponent, no spaces, no thousands separators.
pub fn parse_usd(text: &str) -> Result<i64, MoneyError> {
    let bad = || MoneyError(text.chars().take(40).collect());
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return Err(bad()),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 6
        || whole.len() > 7
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
    let micro = whole * 1_000_000 + fraction;
    if micro > MAX_MICRO_USD {
        return Err(bad());
    }
    Ok(micro)
}

/// 12 500 000 → `"12.50"`: at least two decimals, more only when they are not zero.
pub fn format_usd(micro: i64) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let abs = micro.unsigned_abs();
    let fraction = format!("{:06}", abs % 1_000_000);
    let fraction = fraction.trim_end_matches('0');
    let fraction = format!("{fraction:0<2}");
    format!("{sign}{}.{fraction}", abs / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(parse_usd("25"), Ok(25_000_000));
        assert_eq!(parse_usd("12.5"), Ok(12_500_000));
        assert_eq!(parse_usd("0.000001"), Ok(1));
        assert_eq!(parse_usd("3.41"), Ok(3_410_000));
        assert_eq!(parse_usd("1000000"), Ok(MAX_MICRO_USD));
        assert_eq!(parse_usd("1000000.000000"), Ok(MAX_MICRO_USD));
        for bad in [
            "",
            ".",
            ".5",
            "5.",
            "$3",
            " 1",
            "-1",
            "1e3",
            "1,000",
            "0.0000001",
            "1000000.01",
            "12.5.1",
            "abc",
            "nan",
            "٣",
        ] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_pattern_and_the_parser_agree() {
        let pattern = regex::Regex::new(USD_PATTERN).unwrap();
        for text in [
            "0",
            "1",
            "25",
            "12.5",
            "0.000001",
            "999999.999999",
            "1000000",
            "1000000.0",
            "1000000.01",
            "1000001",
            "01",
            ".5",
            "5.",
            "1.1234567",
            "",
            "x",
        ] {
            assert_eq!(pattern.is_match(text), parse_usd(text).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn amounts_format_for_people_and_round_trip() {
        assert_eq!(format_usd(12_500_000), "12.50");
        assert_eq!(format_usd(0), "0.00");
        assert_eq!(format_usd(1), "0.000001");
        assert_eq!(format_usd(3_410_000), "3.41");
        assert_eq!(format_usd(-50_000), "-0.05");
        for micro in [0, 1, 10, 999_999, 1_000_000, 123_456_789, MAX_MICRO_USD] {
            assert_eq!(parse_usd(&format_usd(micro)), Ok(micro));
        }
    }
}

//! The default Anthropic model name → Bedrock model map (reference §6). Rows in the
//! `model_mappings` table override and extend it.
//!
//! Claude 4.5 and newer cannot be invoked on demand by base id: requests name an inference
//! profile, `<prefix>.<base id>`, where the prefix is the geography of the endpoint region
//! (`us.`, `eu.`, `jp.`, `au.`, `apac.`, `us-gov.`) or `global.`.

/// What the gateway knows about one Claude model on Bedrock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BedrockModel {
    /// Anthropic names that map here: the dated id first, then aliases.
    pub anthropic_names: &'static [&'static str],
    pub base_id: &'static str,
    /// Inference-profile prefixes this model offers.
    pub profiles: &'static [&'static str],
    pub max_output_tokens: u32,
}

const ALL_GEOS: &[&str] = &["global", "us", "eu", "apac", "jp", "au"];

/// The defaults; see reference §6 for sources.
pub const DEFAULT_MODELS: &[BedrockModel] = &[
    BedrockModel {
        anthropic_names: &["claude-opus-4-7"],
        base_id: "anthropic.claude-opus-4-7",
        profiles: ALL_GEOS,
        max_output_tokens: 128_000,
    },
    BedrockModel {
        anthropic_names: &["claude-opus-4-6"],
        base_id: "anthropic.claude-opus-4-6-v1",
        profiles: ALL_GEOS,
        max_output_tokens: 128_000,
    },
    BedrockModel {
        anthropic_names: &["claude-sonnet-4-6"],
        base_id: "anthropic.claude-sonnet-4-6",
        profiles: &["global", "us", "eu", "jp", "au"],
        max_output_tokens: 64_000,
    },
    BedrockModel {
        anthropic_names: &["claude-opus-4-5-20251101", "claude-opus-4-5"],
        base_id: "anthropic.claude-opus-4-5-20251101-v1:0",
        profiles: &["global", "us", "eu"],
        max_output_tokens: 64_000,
    },
    BedrockModel {
        anthropic_names: &["claude-sonnet-4-5-20250929", "claude-sonnet-4-5"],
        base_id: "anthropic.claude-sonnet-4-5-20250929-v1:0",
        profiles: &["global", "us", "eu", "jp", "au"],
        max_output_tokens: 64_000,
    },
    BedrockModel {
        anthropic_names: &["claude-haiku-4-5-20251001", "claude-haiku-4-5"],
        base_id: "anthropic.claude-haiku-4-5-20251001-v1:0",
        profiles: ALL_GEOS,
        max_output_tokens: 64_000,
    },
    BedrockModel {
        anthropic_names: &["claude-opus-4-1-20250805", "claude-opus-4-1"],
        base_id: "anthropic.claude-opus-4-1-20250805-v1:0",
        profiles: &["us", "eu"],
        max_output_tokens: 32_000,
    },
    BedrockModel {
        anthropic_names: &["claude-opus-4-20250514", "claude-opus-4-0"],
        base_id: "anthropic.claude-opus-4-20250514-v1:0",
        profiles: &["us", "eu"],
        max_output_tokens: 32_000,
    },
    BedrockModel {
        anthropic_names: &["claude-sonnet-4-20250514", "claude-sonnet-4-0"],
        base_id: "anthropic.claude-sonnet-4-20250514-v1:0",
        profiles: &["global", "us", "eu", "apac"],
        max_output_tokens: 64_000,
    },
    BedrockModel {
        anthropic_names: &["claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest"],
        base_id: "anthropic.claude-3-7-sonnet-20250219-v1:0",
        profiles: &["us", "eu", "apac"],
        max_output_tokens: 8_192,
    },
    BedrockModel {
        anthropic_names: &["claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"],
        base_id: "anthropic.claude-3-5-haiku-20241022-v1:0",
        profiles: &["us"],
        max_output_tokens: 8_192,
    },
];

/// The model names Claude Code sends when the user picks none (its default, and the
/// `sonnet` / `haiku` aliases), as observed with Claude Code 2.1 (reference: claude-code-traffic).
/// Newer than the built-in table: without a row or a family default they cannot fail over.
pub const CLAUDE_CODE_DEFAULT_MODELS: [&str; 3] =
    ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"];

/// The default entry for an Anthropic model name, if any.
pub fn default_model(anthropic_name: &str) -> Option<&'static BedrockModel> {
    DEFAULT_MODELS
        .iter()
        .find(|m| m.anthropic_names.contains(&anthropic_name))
}

/// The inference-profile geography of an AWS region, e.g. `eu-west-1` → `eu`.
pub fn region_geography(region: &str) -> Option<&'static str> {
    match region {
        r if r.starts_with("us-gov-") => Some("us-gov"),
        r if r.starts_with("us-") => Some("us"),
        r if r.starts_with("eu-") => Some("eu"),
        "ap-northeast-1" | "ap-northeast-3" => Some("jp"),
        "ap-southeast-2" | "ap-southeast-4" => Some("au"),
        r if r.starts_with("ap-") => Some("apac"),
        _ => None,
    }
}

/// The model id to send from `region`: the region's geography profile when the model has
/// one (data stays in that geography), else `global.`, else none (no failover).
pub fn inference_profile_id(model: &BedrockModel, region: &str) -> Option<String> {
    let prefix = region_geography(region)
        .filter(|geo| model.profiles.contains(geo))
        .or_else(|| model.profiles.contains(&"global").then_some("global"))?;
    Some(format!("{prefix}.{}", model.base_id))
}

/// Whether a region name is well formed (`us-east-1`, `us-gov-west-1`): the region ends up
/// in a host name, so nothing else is accepted.
pub fn is_valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let letters =
        |p: &&str| !p.is_empty() && p.len() <= 12 && p.bytes().all(|b| b.is_ascii_lowercase());
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    (3..=4).contains(&parts.len())
        && first.len() == 2
        && parts[..parts.len() - 1].iter().all(letters)
        && !last.is_empty()
        && last.len() <= 2
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `id` may name a Bedrock model: a base id, an inference-profile id or an ARN,
/// 1–2048 characters of `[A-Za-z0-9._:/-]`, with no `..` (the id goes into a URL path).
pub fn is_valid_model_id(id: &str) -> bool {
    (1..=2048).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
        && !id.contains("..")
        && !id.starts_with('/')
}

/// Percent-encodes a model id for the URL path: everything but unreserved characters, so
/// `:` becomes `%3A` and an ARN's `/` becomes `%2F`, as botocore sends them.
pub fn encode_model_id(id: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(id.len() + 8);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_checked_and_encoded() {
        assert_eq!(
            encode_model_id("eu.anthropic.claude-3-7-sonnet-20250219-v1:0"),
            "eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0"
        );
        assert_eq!(
            encode_model_id("arn:aws:bedrock:us-east-1:1:inference-profile/x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx"
        );
        assert!(is_valid_model_id("global.anthropic.claude-opus-4-6-v1"));
        for bad in ["", "x/../../foo", "a?b", "a#b", "a%2Fb", "a b", "/abs", "ü"] {
            assert!(!is_valid_model_id(bad), "{bad}");
        }
        assert!(!is_valid_model_id(&"a".repeat(2049)));
    }

    #[test]
    fn names_and_aliases_resolve() {
        let m = default_model("claude-sonnet-4-5").unwrap();
        assert_eq!(m.base_id, "anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert_eq!(default_model("claude-sonnet-4-5-20250929"), Some(m));
        assert!(default_model("claude-unknown-9").is_none());
    }

    #[test]
    fn profiles_follow_the_region_geography() {
        let sonnet = default_model("claude-sonnet-4-5").unwrap();
        assert_eq!(
            inference_profile_id(sonnet, "us-east-1").unwrap(),
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
        );
        assert_eq!(
            inference_profile_id(sonnet, "eu-central-1").unwrap(),
            "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
        );
        assert_eq!(
            inference_profile_id(sonnet, "ap-northeast-1").unwrap(),
            "jp.anthropic.claude-sonnet-4-5-20250929-v1:0"
        );
        // No apac profile for Sonnet 4.5: global instead.
        assert_eq!(
            inference_profile_id(sonnet, "ap-south-1").unwrap(),
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
        );
        // Opus 4.1 has neither an apac nor a global profile: no failover from there.
        assert_eq!(
            inference_profile_id(default_model("claude-opus-4-1").unwrap(), "ap-south-1"),
            None
        );
    }

    #[test]
    fn regions_are_validated_strictly() {
        for ok in ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"] {
            assert!(is_valid_region(ok), "{ok}");
        }
        for bad in [
            "us-east-1.evil.com",
            "US-EAST-1",
            "us-east",
            "us-east-1/x",
            "",
            "us--1",
            "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-1",
        ] {
            assert!(!is_valid_region(bad), "{bad}");
        }
    }
}

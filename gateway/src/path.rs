//! The one place a request path is read. `/ak/{key}/{rest}` is split once; the key goes to
//! authentication, `rest` to the upstream, and logs only ever see a route template.

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/healthz`: the process is alive.
    Health,
    /// `/readyz`: the process can serve (database reachable, not draining).
    Ready,
    /// `/ak/{key}/{rest}` with a syntactically acceptable `rest`.
    Keyed(KeyedPath<'a>),
    /// `/ak/{key}/…` whose rest is not an API path: answered 404 after authentication.
    KeyedUnknown { key: &'a str },
    /// Anything else: 404 without any lookup.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedPath<'a> {
    /// The access key candidate, unchecked.
    pub key: &'a str,
    /// The upstream path, starting with `/v1/` or `/api/`.
    pub upstream_path: &'a str,
    /// Low-cardinality name for logs and metrics; never contains the key.
    pub template: &'static str,
}

const KEY_PREFIX: &str = "/ak/";

pub fn parse(path: &str) -> Route<'_> {
    match path {
        "/healthz" => return Route::Health,
        "/readyz" => return Route::Ready,
        _ => {}
    }
    let Some(after) = path.strip_prefix(KEY_PREFIX) else {
        return Route::NotFound;
    };
    let (key, rest) = match after.find('/') {
        Some(i) => after.split_at(i),
        None => (after, ""),
    };
    if key.is_empty() {
        return Route::NotFound;
    }
    if !is_api_path(rest) {
        return Route::KeyedUnknown { key };
    }
    Route::Keyed(KeyedPath {
        key,
        upstream_path: rest,
        template: template(rest),
    })
}

/// `/v1/…` or `/api/…`, made of non-empty segments of URL-safe characters, with no dot
/// segments and no percent-encoding (no Anthropic API path needs either).
fn is_api_path(rest: &str) -> bool {
    if !(rest.starts_with("/v1/") || rest.starts_with("/api/")) {
        return false;
    }
    rest[1..].split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:@".contains(&b))
    })
}

fn template(rest: &str) -> &'static str {
    match rest {
        "/v1/messages" => "/ak/{key}/v1/messages",
        "/v1/messages/count_tokens" => "/ak/{key}/v1/messages/count_tokens",
        "/v1/models" => "/ak/{key}/v1/models",
        r if r.starts_with("/v1/models/") => "/ak/{key}/v1/models/{id}",
        r if r.starts_with("/v1/") => "/ak/{key}/v1/*",
        _ => "/ak/{key}/api/*",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_key_and_upstream_path() {
        let Route::Keyed(p) = parse("/ak/ccp_abc/v1/messages") else {
            panic!()
        };
        assert_eq!(
            (p.key, p.upstream_path, p.template),
            ("ccp_abc", "/v1/messages", "/ak/{key}/v1/messages")
        );
        let Route::Keyed(p) = parse("/ak/k/v1/messages/count_tokens") else {
            panic!()
        };
        assert_eq!(p.template, "/ak/{key}/v1/messages/count_tokens");
        let Route::Keyed(p) = parse("/ak/k/v1/models/claude-opus-5-5") else {
            panic!()
        };
        assert_eq!(p.template, "/ak/{key}/v1/models/{id}");
        let Route::Keyed(p) = parse("/ak/k/api/hello") else {
            panic!()
        };
        assert_eq!(p.upstream_path, "/api/hello");
    }

    #[test]
    fn health_paths() {
        assert_eq!(parse("/healthz"), Route::Health);
        assert_eq!(parse("/readyz"), Route::Ready);
        assert_eq!(parse("/healthz/"), Route::NotFound);
    }

    #[test]
    fn odd_paths_never_reach_an_upstream() {
        for path in [
            "/",
            "",
            "/ak",
            "/ak/",
            "/ak//v1/messages",
            "/v1/messages",
            "/AK/k/v1/messages",
        ] {
            assert_eq!(parse(path), Route::NotFound, "{path}");
        }
        for path in [
            "/ak/k",
            "/ak/k/",
            "/ak/k/v1",
            "/ak/k/v1/",
            "/ak/k/v1//messages",
            "/ak/k/v1/messages/",
            "/ak/k/v1/../admin",
            "/ak/k/v1/./messages",
            "/ak/k/v1/%2e%2e/x",
            "/ak/k/v1/a%2Fb",
            "/ak/k/v2/messages",
            "/ak/k/v1/mess ages",
            "/ak/k/v1/é",
        ] {
            assert!(
                matches!(parse(path), Route::KeyedUnknown { key: "k" }),
                "{path}"
            );
        }
    }

    #[test]
    fn key_segment_is_taken_verbatim_for_the_key_check() {
        // `%2F` inside the key segment stays in the key, which then fails its format check.
        assert!(matches!(
            parse("/ak/ab%2Fcd/v1/messages"),
            Route::Keyed(KeyedPath { key: "ab%2Fcd", .. })
        ));
        let long = format!("/ak/{}/v1/messages", "k".repeat(10_000));
        assert!(matches!(parse(&long), Route::Keyed(p) if p.key.len() == 10_000));
    }

    proptest! {
        #[test]
        fn templates_never_contain_the_key(key in "[A-Za-z0-9_]{1,60}", rest in "(/[a-z0-9_]{1,12}){1,4}") {
            let path = format!("/ak/{key}/v1{rest}");
            if let Route::Keyed(p) = parse(&path) {
                prop_assert!(!p.template.contains(&key) || key.len() < 4);
                prop_assert_eq!(p.key, key.as_str());
            }
        }

        #[test]
        fn arbitrary_paths_do_not_panic(path in "\\PC{0,200}") {
            let _ = parse(&path);
        }
    }
}

//! Request header hygiene for the Plan upstream: every end-to-end header is forwarded
//! unchanged (both `x-api-key` and `Authorization` when a client sends both); hop-by-hop
//! headers, the client's forwarding headers and `Host` are not.

use bytes::Bytes;
use ccp_core::secret::SecretString;
use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::prelude::*;

/// Hop-by-hop headers (RFC 9110 §7.6.1) and proxy credentials meant for us, not the upstream.
/// `Transfer-Encoding` and `Content-Length` stay: Pingora frames the body with them.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "http2-settings",
];

/// Headers a client could use to lie about where the request came from.
fn is_forwarding_header(name: &str) -> bool {
    name.starts_with("x-forwarded-") || name == "forwarded" || name == "x-real-ip"
}

/// Rewrites `req` (a copy of the client's request) into the Plan upstream request.
/// `path_and_query` goes into the URI as it is (shared, not copied).
pub fn prepare_plan_request(
    req: &mut RequestHeader,
    path_and_query: Bytes,
    host: &HeaderValue,
    default_api_key: Option<&SecretString>,
) -> Result<()> {
    let path = http::uri::PathAndQuery::from_maybe_shared(path_and_query)
        .map_err(|_| Error::explain(ErrorType::InternalError, "upstream path rejected"))?;
    req.set_uri(http::Uri::from(path));

    // Headers named by `Connection` are hop-by-hop too.
    let named: Vec<String> = req
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != "content-length" && t != "transfer-encoding")
        .collect();
    // One pass over the names present (usually none of these are): removing by a `&str`
    // name parses it first, nine times a request for the list alone.
    let doomed: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            HOP_BY_HOP.contains(&k) || is_forwarding_header(k) || named.iter().any(|n| n == k)
        })
        .cloned()
        .collect();
    for name in &doomed {
        req.remove_header(name);
    }

    // The client's `Host` goes first: Pingora parses a request into header maps of its exact
    // size, so inserting beside it grew both maps (reallocated and rehashed) on every request.
    req.remove_header(&http::header::HOST);
    req.insert_header(http::header::HOST, host.clone())?;

    if let Some(key) = default_api_key {
        let has_credential =
            req.headers.contains_key("x-api-key") || req.headers.contains_key("authorization");
        if !has_credential {
            req.insert_header("x-api-key", key.expose().as_str())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req =
            RequestHeader::build("POST", b"/ak/ccp_x/v1/messages?beta=true", None).unwrap();
        for (k, v) in headers {
            req.append_header(k.to_string(), *v).unwrap();
        }
        req
    }

    fn names(req: &RequestHeader) -> Vec<String> {
        req.headers.keys().map(|k| k.as_str().to_owned()).collect()
    }

    #[test]
    fn drops_hop_by_hop_and_forwarding_headers() {
        let mut req = request(&[
            ("host", "gateway.example"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic abc"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "http"),
            ("forwarded", "for=1.2.3.4"),
            ("content-length", "10"),
            ("anthropic-beta", "a,b"),
            ("x-api-key", "sk-client"),
            ("authorization", "Bearer tok"),
        ]);
        prepare_plan_request(
            &mut req,
            Bytes::from_static(b"/v1/messages?beta=true"),
            &HeaderValue::from_static("api.anthropic.com"),
            None,
        )
        .unwrap();
        let kept = names(&req);
        for gone in [
            "connection",
            "x-secret-hop",
            "keep-alive",
            "proxy-authorization",
            "te",
            "upgrade",
            "x-forwarded-for",
            "x-forwarded-proto",
            "forwarded",
        ] {
            assert!(!kept.iter().any(|k| k == gone), "{gone} was forwarded");
        }
        assert_eq!(req.headers["host"], "api.anthropic.com");
        assert_eq!(req.headers["content-length"], "10");
        assert_eq!(req.headers["anthropic-beta"], "a,b");
        assert_eq!(req.headers["x-api-key"], "sk-client");
        assert_eq!(req.headers["authorization"], "Bearer tok");
        assert_eq!(req.uri.to_string(), "/v1/messages?beta=true");
    }

    fn models() -> Bytes {
        Bytes::from_static(b"/v1/models")
    }

    #[test]
    fn the_plan_host_replaces_every_client_host() {
        let host = HeaderValue::from_static("api.anthropic.com");
        for sent in [
            &[][..],
            &[("host", "gateway.example")],
            &[("Host", "a"), ("host", "b")],
        ] {
            let mut req = request(sent);
            prepare_plan_request(&mut req, models(), &host, None).unwrap();
            let hosts: Vec<_> = req.headers.get_all("host").iter().collect();
            assert_eq!(hosts, [&host], "{sent:?}");
        }
    }

    #[test]
    fn default_key_only_when_the_client_sends_no_credential() {
        let host = HeaderValue::from_static("h");
        let key = SecretString::from("sk-default");
        let mut bare = request(&[]);
        prepare_plan_request(&mut bare, models(), &host, Some(&key)).unwrap();
        assert_eq!(bare.headers["x-api-key"], "sk-default");

        let mut bearer = request(&[("authorization", "Bearer mine")]);
        prepare_plan_request(&mut bearer, models(), &host, Some(&key)).unwrap();
        assert!(bearer.headers.get("x-api-key").is_none());

        let mut own = request(&[("x-api-key", "sk-mine")]);
        prepare_plan_request(&mut own, models(), &host, Some(&key)).unwrap();
        assert_eq!(own.headers["x-api-key"], "sk-mine");
    }
}

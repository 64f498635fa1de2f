//! Two members of a Messages answer read without parsing the answer around them.
//!
//! A JSON answer carries its `model` near the start and its `usage` as the last member, with
//! the whole reply in between. Parsing all of it to read those two cost about 1 ns a byte
//! (criterion `usage_tap_json_edit_20k`, an answer editing 20 KB of code: 20.7 µs, against
//! 0.75 µs now; docs/benchmarks.md, round fifteen). Here `usage` is found from the end and
//! `model` by following the members from the start until it comes; only those two values are
//! handed to serde. When the answer is not laid out that way, the caller parses it whole, as
//! before.

use memchr::memmem;

/// The raw value of `name` when it is the last member of the JSON object in `json`.
///
/// `needle` finds the name in quotes (`"usage"`), built once. The last place it occurs must be a member name
/// (its opening quote not escaped, a colon after it) whose value runs to the object's closing
/// brace, which must end the text. In valid JSON an unescaped quote followed by `usage"` opens
/// a string holding exactly `usage`, and the brace that ends the text closes the top-level
/// object; so the member found is that object's. Where the answer is not valid JSON, or holds
/// a duplicate name that serde would refuse, this may still find a value: what it finds is
/// what the text says, read leniently.
pub(crate) fn last_member<'a>(json: &'a [u8], needle: &memmem::FinderRev<'_>) -> Option<&'a [u8]> {
    let end = json.len() - json.iter().rev().take_while(|b| is_space(**b)).count();
    let closing = end.checked_sub(1).filter(|&at| json[at] == b'}')?;
    let body = &json[..closing];
    let at = needle.rfind(body)?;
    let backslashes = body[..at].iter().rev().take_while(|b| **b == b'\\').count();
    if backslashes % 2 == 1 {
        return None;
    }
    let colon = skip_space(body, at + needle.needle().len());
    if body.get(colon) != Some(&b':') {
        return None;
    }
    let start = skip_space(body, colon + 1);
    let stop = value_end(body, start)?;
    (skip_space(body, stop) == closing).then(|| &json[start..stop])
}

/// The raw value of the member `name` of the JSON object in `json`, following the members
/// from the first and stopping at the one named: `Some(None)` when the object has no such
/// member, `None` when the text is not laid out as one object. A name with an escape in it
/// is compared as serde reads it (`us\u0061ge` is `usage`). Values passed over are skipped by
/// their quotes and brackets, not validated.
pub(crate) fn leading_member<'a>(json: &'a [u8], name: &str) -> Option<Option<&'a [u8]>> {
    let mut at = skip_space(json, 0);
    if json.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_space(json, at + 1);
    if json.get(at) == Some(&b'}') {
        return Some(None);
    }
    loop {
        if json.get(at) != Some(&b'"') {
            return None;
        }
        let name_end = string_end(json, at)?;
        let raw = &json[at + 1..name_end - 1];
        let matches = if memchr::memchr(b'\\', raw).is_some() {
            serde_json::from_slice::<String>(&json[at..name_end]).ok()? == name
        } else {
            raw == name.as_bytes()
        };
        at = skip_space(json, name_end);
        if json.get(at) != Some(&b':') {
            return None;
        }
        let start = skip_space(json, at + 1);
        let end = value_end(json, start)?;
        if matches {
            return Some(Some(&json[start..end]));
        }
        at = skip_space(json, end);
        match json.get(at) {
            Some(b',') => at = skip_space(json, at + 1),
            Some(b'}') => return Some(None),
            _ => return None,
        }
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_space(json: &[u8], from: usize) -> usize {
    from + json
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| is_space(**b)).count())
}

/// Where the string opening at `open` (a `"`) ends: the index after its closing quote.
fn string_end(json: &[u8], open: usize) -> Option<usize> {
    let mut at = open + 1;
    loop {
        let hit = at + memchr::memchr2(b'"', b'\\', json.get(at..)?)?;
        if json[hit] == b'"' {
            return Some(hit + 1);
        }
        // A backslash: the byte after it is escaped, whatever it is.
        at = hit + 2;
    }
}

/// Where the value starting at `start` ends: the index after its last byte.
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    match *json.get(start)? {
        b'"' => string_end(json, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = start;
            loop {
                match *json.get(at)? {
                    b'"' => {
                        at = string_end(json, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        // A number, `true`, `false` or `null`: up to the next delimiter.
        _ => {
            let len = json[start..]
                .iter()
                .take_while(|b| !matches!(b, b',' | b'}' | b']') && !is_space(**b))
                .count();
            (len > 0).then_some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(json: &str) -> Option<&str> {
        last_member(json.as_bytes(), &memmem::FinderRev::new(b"\"usage\""))
            .map(|v| std::str::from_utf8(v).unwrap())
    }

    fn leading(json: &str) -> Option<Option<&str>> {
        leading_member(json.as_bytes(), "model")
            .map(|found| found.map(|v| std::str::from_utf8(v).unwrap()))
    }

    #[test]
    fn finds_the_last_member_past_nested_lookalikes() {
        let json = r#" { "content" : [{"type":"tool_use","input":{"usage":{"x":"}]\"usage\""}}}],
            "n":-1.5e3,"t":true,"z":null, "usage" : {"input_tokens":3} }
            "#;
        assert_eq!(last(json), Some(r#"{"input_tokens":3}"#));
        for json in [
            r#"{"usage":{"a":1},"id":"x"}"#,        // not the last member
            r#"{"a":{"usage":{"b":1}}}"#,           // nested: two braces after it
            r#"{"usage":{"usage":{}}}"#,            // the last occurrence is nested
            r#"{"a":"say \"usage":{"b":1}}"#,       // its opening quote is escaped
            r#"[{"usage":{}}]"#,                    // not an object
            r#"{"usage":{}} x"#,                    // text after it
            r#"{"usage" {}}"#,                      // no colon
            r#"{"us\u0061ge":{"input_tokens":3}}"#, // an escaped name: left to serde
            r#"{"id":"x"}"#,
            "",
        ] {
            assert_eq!(last(json), None, "{json}");
        }
        // An even number of backslashes before the quote leaves it unescaped.
        assert_eq!(last(r#"{"a":"\\","usage":{}}"#), Some("{}"));
    }

    #[test]
    fn follows_members_to_the_one_named() {
        let json = r#"{"id":"m\"odel","content":[{"model":"no"}],"model" : "claude","model":1"#;
        // It stops at the first: what comes after is not read.
        assert_eq!(leading(json), Some(Some(r#""claude""#)));
        assert_eq!(leading(r#"{"mod\u0065l":"m"}"#), Some(Some(r#""m""#)));
        assert_eq!(leading(r#"{"id":"x","usage":{}}"#), Some(None));
        assert_eq!(leading("{ }"), Some(None));
        for json in [
            r#"["model"]"#,
            r#"{"id" "x"}"#,
            r#"{"id":"x" "model":"m"}"#,
            r#"{"id":}"#,
        ] {
            assert_eq!(leading(json), None, "{json}");
        }
    }
}

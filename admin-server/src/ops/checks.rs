//! Input checks that mirror the OpenAPI document's patterns, shared by the API and the CLI.

use super::{OpsResult, invalid};

/// Whitespace as JSON Schema patterns (`\s`) see it: Unicode white space and U+FEFF. The
/// checks below read the raw text the way the OpenAPI patterns do, so that anything the
/// document admits is accepted and the other way round.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// A person's display name: at most 200 characters, not only spaces, no control characters.
pub fn check_name(name: &str) -> OpsResult<()> {
    if name.chars().all(is_space)
        || name.chars().count() > 200
        || name.chars().any(char::is_control)
    {
        return Err(invalid(
            "name must be 1 to 200 characters without control characters",
        ));
    }
    Ok(())
}

/// A plausible email address (the mailbox is not checked).
pub fn check_email(email: &str) -> OpsResult<()> {
    let plausible = email.chars().count() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && !email.chars().any(|c| is_space(c) || c.is_control());
    if !plausible {
        return Err(invalid("email must be an email address"));
    }
    Ok(())
}

/// A key's label: up to 100 characters, no control characters.
pub(super) fn check_label(label: &str) -> OpsResult<()> {
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(invalid(
            "a key name is at most 100 characters without control characters",
        ));
    }
    Ok(())
}

/// An admin username: 1 to 64 letters, digits or `. _ - @`.
pub fn check_username(username: &str) -> OpsResult<()> {
    let ok = (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(invalid("a username is 1 to 64 letters, digits or . _ - @"));
    }
    Ok(())
}

/// Whether a name starts with a letter or digit (model names and ids all do).
pub(super) fn starts_alphanumeric(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
}

//! Validation of names: short names (projects, users, tool mounts), one rule set used
//! everywhere a name becomes part of a URL or a path; and display names (a user's full name, a
//! project's name), one rule set used wherever one is stored.

use std::fmt;

/// Names that would collide with site routes.
pub const RESERVED: &[&str] = &[
    "add",
    "admin",
    "api",
    "auth",
    "git",
    "healthz",
    "metrics",
    "nf",
    "p",
    "u",
    "rest",
    "static",
    "search",
    "login",
    "logout",
    "signup",
    "new",
    "www",
    "settings",
    "projects",
    "users",
    "user",
    "help",
    "about",
    "assets",
    "favicon.ico",
    "robots.txt",
    "feed",
    "home",
    "root",
    "system",
    "tokens",
];

/// Whether a name on the [`RESERVED`] list may be taken. The list guards sign-up and the
/// project form; the operator's command line may create such names (e.g. an `admin` account).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reserved {
    #[default]
    Refuse,
    Allow,
}

/// Checks a project short name or username: 3 to 63 characters, lowercase letters, digits
/// and `-`, starting with a letter, not ending with `-`, not reserved.
pub fn check_shortname(name: &str) -> Result<(), String> {
    check_shortname_with(name, Reserved::Refuse)
}

/// [`check_shortname`], with reserved names refused or allowed.
pub fn check_shortname_with(name: &str, reserved: Reserved) -> Result<(), String> {
    check_slug(name, 3, 63)?;
    if reserved == Reserved::Refuse && RESERVED.contains(&name) {
        return Err(format!("\"{name}\" is reserved; choose another name"));
    }
    Ok(())
}

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 80;

/// Why a display name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayNameError {
    Empty,
    TooLong,
    ControlCharacter,
}

impl fmt::Display for DisplayNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("Name must not be empty"),
            Self::TooLong => write!(f, "Name must be at most {MAX_DISPLAY_NAME} characters"),
            Self::ControlCharacter => {
                f.write_str("Name must be one line without tabs or other control characters")
            }
        }
    }
}

/// Checks a display name (a user's full name, a project's name) and returns it trimmed: at
/// most [`MAX_DISPLAY_NAME`] characters, no control characters (line breaks and tabs
/// included, also Unicode line separators and bidirectional overrides, which would garble the
/// pages it is shown on), and not empty when `required`.
pub fn check_display_name(name: &str, required: bool) -> Result<String, DisplayNameError> {
    let name = name.trim();
    if name.is_empty() && required {
        return Err(DisplayNameError::Empty);
    }
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(DisplayNameError::TooLong);
    }
    let garbling = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if name.chars().any(garbling) {
        return Err(DisplayNameError::ControlCharacter);
    }
    Ok(name.to_owned())
}

/// Checks a tool mount point: 1 to 63 characters, same alphabet; `admin` and `stats` are
/// taken by the project's settings and statistics pages.
pub fn check_mount(name: &str) -> Result<(), String> {
    check_slug(name, 1, 63)?;
    if let Some(page) = [("admin", "settings"), ("stats", "statistics")]
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| p)
    {
        return Err(format!(
            "\"{name}\" is used by the project {page}; choose another mount point"
        ));
    }
    Ok(())
}

fn check_slug(name: &str, min: usize, max: usize) -> Result<(), String> {
    let len = name.chars().count();
    if len < min {
        return Err(format!("must be at least {min} characters long"));
    }
    if len > max {
        return Err(format!("must be at most {max} characters long"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("must be lowercase".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("may contain only lowercase letters, digits and '-'".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a letter".into());
    }
    if name.ends_with('-') {
        return Err("must not end with '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortnames() {
        assert!(check_shortname("forge").is_ok());
        assert!(check_shortname("a1-b2").is_ok());
        assert!(check_shortname("ab").unwrap_err().contains("at least 3"));
        assert!(
            check_shortname(&"a".repeat(64))
                .unwrap_err()
                .contains("at most 63")
        );
        assert!(check_shortname("Forge").unwrap_err().contains("lowercase"));
        assert!(
            check_shortname("1abc")
                .unwrap_err()
                .contains("start with a letter")
        );
        assert!(
            check_shortname("ab_c")
                .unwrap_err()
                .contains("only lowercase")
        );
        assert!(check_shortname("../x").is_err());
        assert!(check_shortname("abc-").is_err());
        assert!(check_shortname("admin").unwrap_err().contains("reserved"));
        assert!(check_shortname("rest").unwrap_err().contains("reserved"));
    }

    #[test]
    fn reserved_names_are_refused_unless_allowed() {
        assert!(check_shortname_with("admin", Reserved::Allow).is_ok());
        assert!(check_shortname_with("root", Reserved::Allow).is_ok());
        assert!(
            check_shortname_with("admin", Reserved::Refuse)
                .unwrap_err()
                .contains("reserved")
        );
        // Allowed reserved names are still well-formed slugs.
        assert!(check_shortname_with("Admin", Reserved::Allow).is_err());
        assert!(check_shortname_with("favicon.ico", Reserved::Allow).is_err());
        assert!(check_shortname_with("../admin", Reserved::Allow).is_err());
    }

    #[test]
    fn display_names() {
        assert_eq!(check_display_name("  Rocket  ", true).unwrap(), "Rocket");
        assert_eq!(check_display_name("", false).unwrap(), "");
        assert_eq!(
            check_display_name(" \t ", true),
            Err(DisplayNameError::Empty)
        );
        let longest = "é".repeat(MAX_DISPLAY_NAME);
        assert_eq!(check_display_name(&longest, true).unwrap(), longest);
        assert_eq!(
            check_display_name(&"a".repeat(MAX_DISPLAY_NAME + 1), false),
            Err(DisplayNameError::TooLong)
        );
        for bad in [
            "two\nlines",
            "cr\rhere",
            "tab\there",
            "nul\0x",
            "esc\u{1b}[31m",
            "del\u{7f}x",
            "c1\u{85}next",
            "line\u{2028}sep",
            "bidi\u{202e}txt",
            "iso\u{2066}late",
        ] {
            assert_eq!(
                check_display_name(bad, false),
                Err(DisplayNameError::ControlCharacter),
                "{bad:?}"
            );
        }
        // Surrounding whitespace, line breaks included, is trimmed rather than refused.
        assert_eq!(check_display_name("Name\r\n", true).unwrap(), "Name");
        assert_eq!(
            check_display_name("Zoë 🚀 O'Brien", true).unwrap(),
            "Zoë 🚀 O'Brien"
        );
    }

    #[test]
    fn mounts() {
        assert!(check_mount("wiki").is_ok());
        assert!(check_mount("w").is_ok());
        assert!(check_mount("admin").is_err());
        assert!(check_mount("stats").unwrap_err().contains("statistics"));
        assert!(check_mount("").is_err());
        assert!(check_mount("a/b").is_err());
        assert!(check_mount("--upload-pack").is_err());
    }
}

//! Validation of short names (projects, users, tool mounts): one rule set, used everywhere a
//! name becomes part of a URL or a path.

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

/// Checks a project short name or username: 3 to 63 characters, lowercase letters, digits
/// and `-`, starting with a letter, not ending with `-`, not reserved.
pub fn check_shortname(name: &str) -> Result<(), String> {
    check_slug(name, 3, 63)?;
    if RESERVED.contains(&name) {
        return Err(format!("\"{name}\" is reserved; choose another name"));
    }
    Ok(())
}

/// Checks a tool mount point: 1 to 63 characters, same alphabet; `admin` is taken by the
/// project admin pages.
pub fn check_mount(name: &str) -> Result<(), String> {
    check_slug(name, 1, 63)?;
    if name == "admin" {
        return Err("\"admin\" is used by the project settings; choose another mount point".into());
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
    fn mounts() {
        assert!(check_mount("wiki").is_ok());
        assert!(check_mount("w").is_ok());
        assert!(check_mount("admin").is_err());
        assert!(check_mount("").is_err());
        assert!(check_mount("a/b").is_err());
        assert!(check_mount("--upload-pack").is_err());
    }
}

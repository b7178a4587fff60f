//! Names that reach libvirt (host, class, pool, volume and version labels) are validated here,
//! once, so no later layer has to wonder whether a name can break XML or a path.

/// Longest accepted name. Desktop names are derived from class names (`dp-<class>-<id>`), and
/// libvirt and filesystems are happier with short names.
pub const MAX_NAME_LEN: usize = 48;

/// Checks that `name` is a safe libvirt object name: ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit, no `..`, at most [`MAX_NAME_LEN`] characters.
/// Returns a sentence saying what is wrong otherwise.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "name is {} characters long; at most {MAX_NAME_LEN} are allowed",
            name.chars().count()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "name {name:?} contains {bad:?}; only ASCII letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("name {name:?} must start with a letter or a digit"));
    }
    if name.contains("..") {
        return Err(format!("name {name:?} must not contain '..'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["office", "dev-2", "cad_v3", "h1.example", "2026.11"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_names_that_could_inject_xml_or_paths() {
        let long = "a".repeat(300);
        for bad in [
            "", "a<b", "a'b", "a&b", "a/b", "..", "a..b", "a b", ".hidden", "-x", &long, "é",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}

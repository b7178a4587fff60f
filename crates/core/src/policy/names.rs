//! Names that reach libvirt (host, class, pool, volume and version labels) are validated here,
//! once, so no later layer has to wonder whether a name can break XML or a path.

/// Longest accepted name. Desktop names are derived from class names (`dp-<class>-<id>`), and
/// libvirt and filesystems are happier with short names.
pub const MAX_NAME_LEN: usize = 48;

/// Why a name is not a safe libvirt object name. The message is the sentence users see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {chars} characters long; at most {MAX_NAME_LEN} are allowed")]
    TooLong { chars: usize },
    #[error(
        "name {name:?} contains {bad:?}; only ASCII letters, digits, '-', '_' and '.' are allowed"
    )]
    ForbiddenCharacter { name: String, bad: char },
    #[error("name {name:?} must start with a letter or a digit")]
    BadFirstCharacter { name: String },
    #[error("name {name:?} must not contain '..'")]
    DoubleDot { name: String },
}

/// Checks that `name` is a safe libvirt object name: ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit, no `..`, at most [`MAX_NAME_LEN`] characters.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            chars: name.chars().count(),
        });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(NameError::ForbiddenCharacter {
            name: name.to_string(),
            bad,
        });
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(NameError::BadFirstCharacter {
            name: name.to_string(),
        });
    }
    if name.contains("..") {
        return Err(NameError::DoubleDot {
            name: name.to_string(),
        });
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

    #[test]
    fn each_refusal_names_its_kind_and_keeps_its_sentence() {
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(
            check_name(&"é".repeat(30)),
            Err(NameError::TooLong { chars: 30 })
        );
        let bad = check_name("a<b").unwrap_err();
        assert_eq!(
            bad,
            NameError::ForbiddenCharacter {
                name: "a<b".into(),
                bad: '<'
            }
        );
        assert_eq!(
            bad.to_string(),
            "name \"a<b\" contains '<'; only ASCII letters, digits, '-', '_' and '.' are allowed"
        );
        assert_eq!(
            check_name("-x").unwrap_err().to_string(),
            "name \"-x\" must start with a letter or a digit"
        );
        assert_eq!(
            check_name("a..b"),
            Err(NameError::DoubleDot {
                name: "a..b".into()
            })
        );
    }
}

//! `[ha]`: the election's etcd endpoints, this controller's name and its lease.

use std::path::Path;

use super::*;

fn parse(ha: &str) -> Result<Fleet, String> {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deskpool.toml"),
    )
    .unwrap();
    parse_str(
        &format!("[ha]\n{ha}\n{base}"),
        Path::new("/etc/deskpool.toml"),
    )
    .map_err(|e| e.to_string())
}

/// The one error `ha` gets: at `line:col`, containing `needle`.
fn refused(ha: &str, at: &str, needle: &str) {
    let errors = parse(ha).unwrap_err();
    let prefix = format!("/etc/deskpool.toml:{at}: ");
    assert!(
        errors.lines().count() == 1 && errors.starts_with(&prefix) && errors.contains(needle),
        "{ha:?} gave:\n{errors}"
    );
}

#[test]
fn an_ha_section_is_read_with_its_defaults() {
    let fleet =
        parse("etcd = [\"http://10.0.0.5:2379\", \"http://10.0.0.6:2379/\"]\nname = \"ctl-a\"")
            .unwrap();
    let ha = fleet.ha.unwrap();
    assert_eq!(ha.etcd, ["http://10.0.0.5:2379", "http://10.0.0.6:2379"]);
    assert_eq!(ha.name, "ctl-a");
    assert_eq!(ha.lease_ttl_secs, 15);
    assert_eq!(ha.election, "deskpool");
    assert_eq!(ha.advertise, None);
    let fleet = parse(
        "etcd = [\"http://e:2379\"]\nname = \"b\"\nadvertise = \"https://ctl-b:8443\"\nlease_ttl_secs = 5\nelection = \"site/vdi\"",
    )
    .unwrap();
    let ha = fleet.ha.unwrap();
    assert_eq!((ha.lease_ttl_secs, ha.election.as_str()), (5, "site/vdi"));
    assert_eq!(ha.advertise.as_deref(), Some("https://ctl-b:8443"));
}

#[test]
fn without_an_ha_section_the_controller_is_alone() {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deskpool.toml"),
    )
    .unwrap();
    let fleet = parse_str(&base, Path::new("/etc/deskpool.toml")).unwrap();
    assert_eq!(fleet.ha, None);
}

#[test]
fn bad_ha_values_are_refused_where_they_are() {
    refused("name = \"a\"", "1:1", "missing key \"etcd\"");
    refused(
        "etcd = []\nname = \"a\"",
        "2:8",
        "at least one etcd endpoint",
    );
    refused(
        "etcd = [\"10.0.0.5:2379\"]\nname = \"a\"",
        "2:9",
        "not a http:// URL",
    );
    refused(
        "etcd = [\"http://e:2379\"]\nname = \"a\"\nlease_ttl_secs = 1",
        "4:18",
        "",
    );
    refused("etcd = [\"http://e:2379\"]\nname = \"a b\"", "3:8", "");
    refused(
        "etcd = [\"http://e:2379\"]\nname = \"a\"\nadvertise = \"ctl-a\"",
        "4:13",
        "URL",
    );
    refused(
        "etcd = [\"http://e:2379\"]\nname = \"a\"\nelection = \"/x\"",
        "4:12",
        "election key",
    );
    refused(
        "etcd = [\"http://e:2379\"]\nname = \"a\"\nlease_tll_secs = 5",
        "4:1",
        "lease_ttl_secs",
    );
}

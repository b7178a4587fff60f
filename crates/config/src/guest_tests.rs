//! Loading what a guest boots on each host: `[[hosts]] domain_type` and `[[classes]] boot`, the
//! values read and each mistake at its position.

use super::tests::{assert_one_error, parse};
use deskpool_core::policy::{DirectBoot, DomainTypeSetting};

/// One host at line 1 (its last key at line 4), one class from line 6 (`boot` at line 11).
fn config(host_extra: &str, boot: &str) -> String {
    format!(
        "[[hosts]]\nname = \"h1\"\nuri = \"qemu:///system\"\ncapacity = {{ desktops = 4 }}\n\
         {host_extra}\n[[classes]]\nname = \"seed\"\nmemory_mib = 256\nvcpus = 1\ndisk_gib = 1\n\
         {boot}\nseed = {{ pool = \"seeds\", volume = \"seed.qcow2\", version = \"v1\" }}\n\
         [classes.policy]\ncap = 10\n"
    )
}

#[test]
fn domain_type_is_auto_unless_a_host_says_kvm_or_qemu() {
    let fleet = parse(&config("", "")).unwrap();
    assert_eq!(fleet.hosts[0].domain_type, DomainTypeSetting::Auto);
    for (text, want) in [
        ("auto", DomainTypeSetting::Auto),
        ("kvm", DomainTypeSetting::Kvm),
        ("qemu", DomainTypeSetting::Qemu),
    ] {
        let fleet = parse(&config(&format!("domain_type = \"{text}\""), "")).unwrap();
        assert_eq!(fleet.hosts[0].domain_type, want);
    }
}

#[test]
fn an_unknown_domain_type_is_refused_at_its_value() {
    let e = assert_one_error(
        &config("domain_type = \"tcg\"", ""),
        5,
        15,
        "hosts[1].domain_type: unknown domain type \"tcg\"; expected \"auto\", \"kvm\", \"qemu\"",
    );
    assert!(e.message.contains("TCG emulation"), "{e}");
    assert_one_error(
        &config("domain_type = 1", ""),
        5,
        15,
        "hosts[1].domain_type",
    );
}

#[test]
fn boot_reads_kernel_initrd_and_cmdline() {
    let boot = "boot = { kernel = \"/var/cache/k\", initrd = \"/var/cache/i\", \
                cmdline = \"root=/dev/vda rw console=ttyS0\" }";
    let fleet = parse(&config("", boot)).unwrap();
    assert_eq!(
        fleet.classes[0].boot,
        Some(DirectBoot {
            kernel: "/var/cache/k".into(),
            initrd: Some("/var/cache/i".into()),
            cmdline: Some("root=/dev/vda rw console=ttyS0".into()),
        })
    );
    let kernel_only = parse(&config("", "boot = { kernel = \"/k\" }")).unwrap();
    assert_eq!(kernel_only.classes[0].boot.as_ref().unwrap().initrd, None);
    assert_eq!(parse(&config("", "")).unwrap().classes[0].boot, None);
}

#[test]
fn bad_boot_values_are_refused_where_they_are() {
    assert_one_error(
        &config("", "boot = { initrd = \"/i\" }"),
        11,
        8,
        "classes[1].boot: missing key \"kernel\"",
    );
    assert_one_error(
        &config("", "boot = { kernel = \"vmlinuz\" }"),
        11,
        19,
        "classes[1].boot.kernel: path \"vmlinuz\" is not absolute",
    );
    assert_one_error(
        &config("", "boot = { kernel = \"/k\", initrd = \"/a/../i\" }"),
        11,
        34,
        "classes[1].boot.initrd: path \"/a/../i\" must not contain '..'",
    );
    assert_one_error(
        &config("", "boot = { kernel = \"/k\", cmdline = \"a\\nb\" }"),
        11,
        35,
        "classes[1].boot.cmdline: cmdline contains '\\n'",
    );
    let long = "x".repeat(2048);
    assert_one_error(
        &config(
            "",
            &format!("boot = {{ kernel = \"/k\", cmdline = \"{long}\" }}"),
        ),
        11,
        35,
        "cmdline is 2048 bytes long; the kernel takes at most 2047",
    );
    assert_one_error(
        &config("", "boot = { kernel = \"/k\", kernal = \"/k\" }"),
        11,
        25,
        "unknown key \"kernal\"",
    );
}

#[test]
fn a_template_that_boots_its_own_kernel_is_refused_for_a_class_with_boot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("own-kernel.xml"),
        "<domain><name>{name}</name><os><type>hvm</type><kernel>/mine</kernel></os><devices>\
         <disk type='file' device='disk'><source file='{disk_path}'/></disk></devices></domain>",
    )
    .unwrap();
    let path = dir.path().join("deskpool.toml");
    let with_boot = config(
        "",
        "template = \"own-kernel.xml\"\nboot = { kernel = \"/k\" }",
    );
    std::fs::write(&path, &with_boot).unwrap();
    let errors = super::load_file(&path).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    let e = &errors.0[0];
    assert_eq!((e.line, e.col), (11, 12), "{e}");
    assert!(
        e.message.starts_with("classes[1].template: template ")
            && e.message
                .contains("the template's <os> has its own <kernel>"),
        "{e}"
    );
    // The same template without a class boot is the admin's own way to boot, and accepted (for
    // a class that does not wait for an agent: the template has no agent channel).
    std::fs::write(
        &path,
        config("", "template = \"own-kernel.xml\"\nready = \"running\""),
    )
    .unwrap();
    if let Err(e) = super::load_file(&path) {
        panic!("{e}");
    }
}

#[test]
fn check_summary_names_a_set_domain_type_and_the_kernel_a_class_boots() {
    let boot =
        "boot = { kernel = \"/k/vmlinuz\", initrd = \"/k/initrd.img\", cmdline = \"quiet\" }";
    let fleet = parse(&config("domain_type = \"qemu\"", boot)).unwrap();
    let text = super::summary(&fleet);
    assert!(text.contains("    domain type qemu\n"), "{text}");
    assert!(
        text.contains("    boots kernel /k/vmlinuz, initrd /k/initrd.img, cmdline quiet\n"),
        "{text}"
    );
    let plain = super::summary(&parse(&config("", "")).unwrap());
    assert!(
        !plain.contains("domain type") && !plain.contains("boots kernel"),
        "{plain}"
    );
}

//! The hypervisor layer against libvirt's test driver: each test writes its own node file and
//! opens `test:///<file>`, an independent in-memory host.

use std::cell::RefCell;
use std::time::Instant;

use deskpool_core::model::{self, DesktopMeta, METADATA_URI, PoolState, SeedCopy};
use deskpool_core::policy::{BufferRule, ClassSpec, LogoutAction, Pacing, Policy, SeedSpec};
use deskpool_hypervisor::{
    DesktopDefinition, HostConnection, HvErrorKind, UnusableDesktop, demo_uri, write_demo_node,
};

const SEED_POOL: &str = "seeds";
const SEED_VOL: &str = "office.qcow2";
const SEED_BYTES: u64 = 10 << 30;
const POOL: &str = "deskpool";
const POOL_PATH: &str = "/var/lib/libvirt/deskpool";

struct Host {
    _dir: tempfile::TempDir,
    conn: HostConnection,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h1.xml");
    write_demo_node(
        &path,
        &[
            (SEED_POOL, SEED_VOL, SEED_BYTES),
            (SEED_POOL, "dev.qcow2", SEED_BYTES),
        ],
    )
    .unwrap();
    let conn = HostConnection::open(&demo_uri(&path).unwrap(), false).unwrap();
    Host { _dir: dir, conn }
}

fn class(name: &str, seed_volume: &str) -> ClassSpec {
    ClassSpec {
        name: name.into(),
        seed: SeedSpec {
            pool: SEED_POOL.into(),
            volume: seed_volume.into(),
            version: "v1".into(),
            host: None,
        },
        memory_mib: 2048,
        vcpus: 2,
        disk_gib: 20,
        template: None,
        boot: None,
        ready: Default::default(),
        policy: Policy {
            cap: 10,
            buffer: BufferRule {
                floor: 1,
                percent: 10,
                ceiling: 5,
            },
            production: 0,
            periods: vec![],
            events: vec![],
            pacing: Pacing {
                clones_per_host: 2,
                boots_per_host: 2,
            },
            on_logout: LogoutAction::Recycle,
            on_shutoff: Default::default(),
            ready_secs: 60,
            scale_down_delay_secs: 600,
            disconnect_grace_secs: 0,
            predictive: None,
        },
    }
}

fn meta(pool: PoolState) -> DesktopMeta {
    DesktopMeta {
        class: "office".into(),
        pool,
        seed_version: "v1".into(),
        user: None,
        created_at: 1_700_000_000,
        changed_at: 1_700_000_000,
        attempts: 0,
        term: 0,
    }
}

fn no_progress(_: u64, _: u64) {}

fn seed_copy(conn: &HostConnection) -> SeedCopy {
    conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    conn.copy_seed_local(SEED_POOL, SEED_VOL, POOL, "office", "v1", &no_progress)
        .unwrap()
}

/// Makes a complete desktop: overlay, domain with metadata.
fn make_desktop(conn: &HostConnection, seed: &SeedCopy, name: &str, class: &ClassSpec) {
    let path = conn.create_overlay(POOL, name, seed, 20 << 30).unwrap();
    conn.define_desktop(&DesktopDefinition {
        name,
        class,
        disk_path: &path,
        disk_format: "qcow2",
        meta: &meta(PoolState::Creation),
        display_password: "test0pw1",
    })
    .unwrap();
}

fn volume_names(conn: &HostConnection, pool: &str) -> Vec<String> {
    let pool = conn.raw().lookup_storage_pool_by_name(pool).unwrap();
    let mut names: Vec<_> = pool
        .list_all_volumes(0)
        .unwrap()
        .iter()
        .map(|v| v.name().unwrap())
        .collect();
    names.sort();
    names
}

fn define_raw(conn: &HostConnection, name: &str) {
    let xml = format!(
        "<domain type='test'><name>{name}</name><memory unit='KiB'>1024</memory>\
         <os><type>hvm</type></os></domain>"
    );
    conn.raw().define_domain_xml(&xml).unwrap();
}

#[test]
fn an_empty_host_observes_empty_and_finds_its_seed_sources() {
    let h = host();
    assert_eq!(h.conn.domain_type(), "test");
    let classes = [class("office", SEED_VOL), class("cad", "missing.qcow2")];
    let obs = h.conn.observe("h1", POOL, &classes).unwrap();
    assert!(obs.desktops.is_empty());
    assert!(obs.unlabelled_desktops.is_empty());
    assert!(obs.desktop_volumes.is_empty());
    assert!(obs.seed_copies.is_empty());
    assert_eq!(
        obs.seed_sources,
        vec![(SEED_POOL.to_string(), SEED_VOL.to_string())]
    );
}

#[test]
fn demo_node_gives_the_host_its_cpus_and_memory() {
    let h = host();
    let (memory_mib, cpus) = h.conn.node_capacity().unwrap();
    assert_eq!(cpus, deskpool_hypervisor::testbed::DEMO_CPUS);
    assert_eq!(memory_mib, deskpool_hypervisor::testbed::DEMO_MEMORY_MIB);
    assert!(h.conn.is_alive());
}

#[test]
fn each_open_of_a_node_file_is_an_independent_host() {
    let h = host();
    let again = HostConnection::open(h.conn.uri(), false).unwrap();
    define_raw(&h.conn, "dp-only-on-first");
    assert!(h.conn.is_running("dp-only-on-first").is_ok());
    let err = again.is_running("dp-only-on-first").unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn ensuring_the_creation_pool_is_idempotent() {
    let h = host();
    h.conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    h.conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    let pool = h.conn.raw().lookup_storage_pool_by_name(POOL).unwrap();
    assert!(pool.is_active().unwrap());
    assert!(pool.autostart().unwrap());
    assert!(pool.is_persistent().unwrap());
    // A stopped pool is started again.
    pool.destroy().unwrap();
    h.conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    assert!(pool.is_active().unwrap());
    let bad = h
        .conn
        .ensure_creation_pool(POOL, "relative/path")
        .unwrap_err();
    assert_eq!(bad.kind, HvErrorKind::InvalidInput);
}

#[test]
fn a_local_seed_copy_gets_its_marker_and_reports_progress() {
    let h = host();
    h.conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    let calls = RefCell::new(Vec::new());
    let progress = |done: u64, total: u64| calls.borrow_mut().push((done, total));
    let copy = h
        .conn
        .copy_seed_local(SEED_POOL, SEED_VOL, POOL, "office", "v1", &progress)
        .unwrap();
    assert!(copy.complete);
    assert_eq!(copy.format, "qcow2");
    assert_eq!(copy.volume, model::seed_copy_volume_name("office", "v1"));
    assert_eq!(copy.path, format!("{POOL_PATH}/seed-office@v1.img"));
    assert_eq!(
        calls.borrow().as_slice(),
        [(0, SEED_BYTES), (SEED_BYTES, SEED_BYTES)]
    );
    assert_eq!(
        volume_names(&h.conn, POOL),
        ["seed-office@v1.complete", "seed-office@v1.img"]
    );
    let obs = h.conn.observe("h1", POOL, &[]).unwrap();
    assert_eq!(obs.seed_copies, vec![copy.clone()]);
    // Copying again finds the complete copy and keeps it.
    let again = h
        .conn
        .copy_seed_local(SEED_POOL, SEED_VOL, POOL, "office", "v1", &no_progress)
        .unwrap();
    assert_eq!(again, copy);
}

#[test]
fn a_seed_copy_without_marker_is_reported_incomplete_and_redone() {
    let h = host();
    h.conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    let pool = h.conn.raw().lookup_storage_pool_by_name(POOL).unwrap();
    let xml = "<volume><name>seed-office@v2.img</name><capacity unit='bytes'>1024</capacity>\
               <target><format type='raw'/></target></volume>";
    virt::storage_vol::StorageVol::create_xml(&pool, xml, 0).unwrap();
    let obs = h.conn.observe("h1", POOL, &[]).unwrap();
    assert_eq!(obs.seed_copies.len(), 1);
    let found = &obs.seed_copies[0];
    assert_eq!(
        (found.class.as_str(), found.version.as_str()),
        ("office", "v2")
    );
    assert!(!found.complete);
    assert_eq!(found.format, "raw");

    let copy = h
        .conn
        .copy_seed_local(SEED_POOL, SEED_VOL, POOL, "office", "v2", &no_progress)
        .unwrap();
    assert!(copy.complete);
    assert_eq!(copy.format, "qcow2", "the incomplete raw copy was replaced");
    let obs = h.conn.observe("h1", POOL, &[]).unwrap();
    assert!(obs.seed_copies[0].complete);

    h.conn.delete_seed_copy(POOL, "office", "v2").unwrap();
    h.conn.delete_seed_copy(POOL, "office", "v2").unwrap();
    assert!(volume_names(&h.conn, POOL).is_empty());
}

#[test]
fn an_overlay_declares_its_backing_store_and_formats() {
    let h = host();
    let seed = seed_copy(&h.conn);
    let path = h
        .conn
        .create_overlay(POOL, "dp-office-1", &seed, 20 << 30)
        .unwrap();
    assert_eq!(path, format!("{POOL_PATH}/dp-office-1.qcow2"));
    let pool = h.conn.raw().lookup_storage_pool_by_name(POOL).unwrap();
    let vol = pool
        .lookup_storage_vol_by_name("dp-office-1.qcow2")
        .unwrap();
    let info = deskpool_core::xml::parse_volume_xml(&vol.xml_desc(0).unwrap()).unwrap();
    assert_eq!(info.format.as_deref(), Some("qcow2"));
    assert_eq!(info.backing_path.as_deref(), Some(seed.path.as_str()));
    assert_eq!(info.backing_format.as_deref(), Some("qcow2"));
    assert_eq!(vol.info().unwrap().capacity, 20 << 30);
    // Re-run after an interruption: same seed, same path.
    let again = h
        .conn
        .create_overlay(POOL, "dp-office-1", &seed, 20 << 30)
        .unwrap();
    assert_eq!(again, path);
    // Another seed under the same name is a conflict, not a silent reuse.
    let other = SeedCopy {
        path: "/elsewhere/seed.img".into(),
        ..seed
    };
    let err = h
        .conn
        .create_overlay(POOL, "dp-office-1", &other, 20 << 30)
        .unwrap_err();
    assert!(err.is_already_exists(), "{err}");
}

#[test]
fn define_start_relabel_and_observe_round_trip() {
    let h = host();
    let seed = seed_copy(&h.conn);
    let office = class("office", SEED_VOL);
    make_desktop(&h.conn, &seed, "dp-office-1", &office);

    let obs = h
        .conn
        .observe("h1", POOL, std::slice::from_ref(&office))
        .unwrap();
    assert_eq!(obs.desktops.len(), 1);
    let d = &obs.desktops[0];
    assert_eq!(d.name, "dp-office-1");
    assert_eq!(d.host, "h1");
    assert_eq!(d.meta, meta(PoolState::Creation));
    assert!(!d.running);
    assert_eq!(obs.desktop_volumes, ["dp-office-1.qcow2"]);

    h.conn.start("dp-office-1").unwrap();
    h.conn.start("dp-office-1").unwrap();
    assert!(h.conn.is_running("dp-office-1").unwrap());

    let assigned = DesktopMeta {
        pool: PoolState::Production,
        user: Some("ann <o'neil> & \"co\"".into()),
        changed_at: 1_700_000_500,
        term: 0,
        attempts: 1,
        ..meta(PoolState::Creation)
    };
    h.conn.set_meta("dp-office-1", &assigned).unwrap();
    let obs = h.conn.observe("h1", POOL, &[office]).unwrap();
    assert_eq!(obs.desktops[0].meta, assigned);
    assert!(obs.desktops[0].running);

    // Both the live domain and its persistent config carry the change.
    let dom = h.conn.raw().lookup_domain_by_name("dp-office-1").unwrap();
    let config = dom
        .metadata(
            virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
            Some(METADATA_URI),
            virt::sys::VIR_DOMAIN_AFFECT_CONFIG,
        )
        .unwrap();
    assert_eq!(
        deskpool_hypervisor::parse_meta(&config),
        Some(assigned.clone())
    );
    // The domain XML holds it under deskpool's prefix.
    let xml = dom.xml_desc(0).unwrap();
    assert!(xml.contains("<deskpool:desktop"), "{xml}");
    // Redefining keeps the domain (and its UUID).
    let uuid = dom.uuid_string().unwrap();
    let path = format!("{POOL_PATH}/dp-office-1.qcow2");
    h.conn
        .define_desktop(&DesktopDefinition {
            name: "dp-office-1",
            class: &class("office", SEED_VOL),
            disk_path: &path,
            disk_format: "qcow2",
            meta: &assigned,
            display_password: "test0pw1",
        })
        .unwrap();
    let dom = h.conn.raw().lookup_domain_by_name("dp-office-1").unwrap();
    assert_eq!(dom.uuid_string().unwrap(), uuid);
}

/// A desktop is usable only running and with its own disk; each refusal says which it is.
#[test]
fn check_usable_names_why_a_desktop_cannot_be_handed_out() {
    let h = host();
    let seed = seed_copy(&h.conn);
    make_desktop(&h.conn, &seed, "dp-office-1", &class("office", SEED_VOL));

    let stopped = h.conn.check_usable("dp-office-1").unwrap();
    assert!(
        matches!(stopped, Err(UnusableDesktop::NotRunning)),
        "{stopped:?}"
    );
    assert_eq!(stopped.unwrap_err().to_string(), "it is not running");

    h.conn.start("dp-office-1").unwrap();
    assert!(h.conn.check_usable("dp-office-1").unwrap().is_ok());

    // Removed behind deskpool's back (deskpool itself refuses to delete a disk in use).
    let path = format!("{POOL_PATH}/dp-office-1.qcow2");
    let volume = h.conn.raw().lookup_storage_vol_by_path(&path).unwrap();
    volume.delete(0).unwrap();
    match h.conn.check_usable("dp-office-1").unwrap() {
        Err(UnusableDesktop::DiskGone { path: gone }) => assert_eq!(gone, path),
        other => panic!("expected the disk to be gone, got {other:?}"),
    }
    let why = h.conn.check_usable("dp-office-1").unwrap().unwrap_err();
    assert_eq!(why.to_string(), format!("its disk {path} is gone"));
}

/// `virsh undefine` of a running desktop leaves a transient domain: it is observed as not
/// persistent, and its metadata can still be changed (live, all there is).
#[test]
fn a_desktop_undefined_while_running_is_observed_transient_and_can_be_relabelled() {
    let h = host();
    let seed = seed_copy(&h.conn);
    let office = class("office", SEED_VOL);
    make_desktop(&h.conn, &seed, "dp-office-1", &office);
    h.conn.start("dp-office-1").unwrap();
    let obs = h
        .conn
        .observe("h1", POOL, std::slice::from_ref(&office))
        .unwrap();
    assert!(obs.desktops[0].persistent);

    let dom = h.conn.raw().lookup_domain_by_name("dp-office-1").unwrap();
    dom.undefine().unwrap();
    let obs = h
        .conn
        .observe("h1", POOL, std::slice::from_ref(&office))
        .unwrap();
    assert_eq!(obs.desktops.len(), 1);
    assert!(!obs.desktops[0].persistent);
    assert!(obs.desktops[0].running);

    let retired = DesktopMeta {
        pool: PoolState::Retired,
        ..meta(PoolState::Buffer)
    };
    h.conn.set_meta("dp-office-1", &retired).unwrap();
    let obs = h.conn.observe("h1", POOL, &[office]).unwrap();
    assert_eq!(obs.desktops[0].meta, retired);
}

/// The built-in template gives the guest agent its channel only to a class that waits for it
/// (a class ready when running does not need the socket libvirt makes for it).
#[test]
fn the_built_in_template_has_the_agent_channel_for_classes_that_wait_for_their_agent() {
    let h = host();
    let agent = class("office", SEED_VOL);
    let mut running = class("office", SEED_VOL);
    running.ready.when = deskpool_core::readiness::ReadyWhen::Running;
    for (name, class, channel) in [
        ("dp-office-8", &agent, true),
        ("dp-office-9", &running, false),
    ] {
        h.conn
            .define_desktop(&DesktopDefinition {
                name,
                class,
                disk_path: "/var/lib/libvirt/deskpool/a.qcow2",
                disk_format: "qcow2",
                meta: &meta(PoolState::Creation),
                display_password: "test0pw1",
            })
            .unwrap();
        let xml = h
            .conn
            .raw()
            .lookup_domain_by_name(name)
            .unwrap()
            .xml_desc(0)
            .unwrap();
        assert_eq!(
            deskpool_core::xml::has_agent_channel(&xml),
            channel,
            "{name}:\n{xml}"
        );
    }
}

#[test]
fn a_class_template_is_used_with_escaped_values() {
    let h = host();
    let mut office = class("office", SEED_VOL);
    office.template = Some(
        "<domain type='{domain_type}'><name>{name}</name><uuid>{uuid}</uuid>\
         <description>{memory_mib} MiB for {name}</description>\
         <memory unit='KiB'>{memory_kib}</memory><vcpu>{vcpus}</vcpu>\
         <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
         <driver name='qemu' type='{disk_format}'/><source file='{disk_path}'/>\
         <target dev='vda' bus='virtio'/></disk></devices></domain>"
            .into(),
    );
    let odd_path = "/var/lib/libvirt/deskpool/it's <odd> & \"quoted\".qcow2";
    h.conn
        .define_desktop(&DesktopDefinition {
            name: "dp-office-7",
            class: &office,
            disk_path: odd_path,
            disk_format: "qcow2",
            meta: &meta(PoolState::Creation),
            display_password: "test0pw1",
        })
        .unwrap();
    let xml = h
        .conn
        .raw()
        .lookup_domain_by_name("dp-office-7")
        .unwrap()
        .xml_desc(0)
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    let text = |tag: &str| {
        root.children()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.text())
            .map(str::to_string)
    };
    assert_eq!(
        text("description").as_deref(),
        Some("2048 MiB for dp-office-7")
    );
    assert_eq!(text("memory").as_deref(), Some("2097152"));
    let source = root
        .descendants()
        .find(|n| n.has_tag_name("source"))
        .unwrap();
    assert_eq!(source.attribute("file"), Some(odd_path));
    assert!(
        deskpool_hypervisor::parse_meta(&xml).is_some(),
        "metadata embedded at define time"
    );
}

#[test]
fn a_broken_template_is_refused_before_libvirt() {
    let h = host();
    let mut office = class("office", SEED_VOL);
    office.template = Some("<domain><name>{name}</name>".into());
    let err = h
        .conn
        .define_desktop(&DesktopDefinition {
            name: "dp-office-1",
            class: &office,
            disk_path: "/d",
            disk_format: "qcow2",
            meta: &meta(PoolState::Creation),
            display_password: "test0pw1",
        })
        .unwrap_err();
    assert_eq!(err.kind, HvErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .starts_with("define domain dp-office-1 on test:///"),
        "{err}"
    );
    assert!(
        err.to_string().contains("template of class office"),
        "{err}"
    );
}

#[test]
fn removing_a_desktop_twice_succeeds_and_leaves_no_volume() {
    let h = host();
    let seed = seed_copy(&h.conn);
    let office = class("office", SEED_VOL);
    make_desktop(&h.conn, &seed, "dp-office-1", &office);
    make_desktop(&h.conn, &seed, "dp-office-2", &office);
    h.conn.start("dp-office-1").unwrap();

    h.conn.remove_desktop("dp-office-1", POOL).unwrap();
    h.conn.remove_desktop("dp-office-1", POOL).unwrap();
    let err = h.conn.is_running("dp-office-1").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let obs = h.conn.observe("h1", POOL, &[]).unwrap();
    let names: Vec<_> = obs.desktops.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["dp-office-2"]);
    assert_eq!(obs.desktop_volumes, ["dp-office-2.qcow2"]);

    // A leftover volume without a domain is cleaned up too.
    h.conn
        .raw()
        .lookup_domain_by_name("dp-office-2")
        .unwrap()
        .undefine()
        .unwrap();
    h.conn.remove_desktop("dp-office-2", POOL).unwrap();
    assert_eq!(
        volume_names(&h.conn, POOL),
        ["seed-office@v1.complete", "seed-office@v1.img"]
    );
    h.conn.delete_volume(POOL, "dp-office-2.qcow2").unwrap();
    h.conn.delete_volume("no-such-pool", "x.qcow2").unwrap();
}

#[test]
fn a_desktop_domain_without_metadata_is_reported_unlabelled() {
    let h = host();
    define_raw(&h.conn, "dp-office-9");
    // A dp- domain with some other tool's metadata is just as unlabelled.
    define_raw(&h.conn, "dp-office-8");
    h.conn
        .raw()
        .lookup_domain_by_name("dp-office-8")
        .unwrap()
        .set_metadata(
            virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
            Some("<desktop class='x'/>"),
            Some("other"),
            Some("urn:someone-else"),
            virt::sys::VIR_DOMAIN_AFFECT_CONFIG,
        )
        .unwrap();
    // And one with deskpool's namespace but a broken element.
    define_raw(&h.conn, "dp-office-7");
    h.conn
        .raw()
        .lookup_domain_by_name("dp-office-7")
        .unwrap()
        .set_metadata(
            virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
            Some("<desktop class='office' pool='limbo'/>"),
            Some("deskpool"),
            Some(METADATA_URI),
            virt::sys::VIR_DOMAIN_AFFECT_CONFIG,
        )
        .unwrap();
    let obs = h.conn.observe("h1", POOL, &[]).unwrap();
    assert!(obs.desktops.is_empty());
    assert_eq!(
        obs.unlabelled_desktops,
        ["dp-office-7", "dp-office-8", "dp-office-9"]
    );
    // Labelling it makes it a desktop.
    h.conn
        .set_meta("dp-office-9", &meta(PoolState::Buffer))
        .unwrap();
    let obs = h.conn.observe("h1", POOL, &[]).unwrap();
    assert_eq!(obs.desktops.len(), 1);
    assert_eq!(obs.unlabelled_desktops, ["dp-office-7", "dp-office-8"]);
}

#[test]
fn a_foreign_domain_is_never_observed_or_touched() {
    let h = host();
    define_raw(&h.conn, "webserver");
    h.conn
        .raw()
        .lookup_domain_by_name("webserver")
        .unwrap()
        .create()
        .unwrap();
    let obs = h.conn.observe("h1", POOL, &[]).unwrap();
    assert!(obs.desktops.is_empty());
    assert!(obs.unlabelled_desktops.is_empty());
    for err in [
        h.conn.remove_desktop("webserver", POOL).unwrap_err(),
        h.conn.start("webserver").unwrap_err(),
        h.conn
            .set_meta("webserver", &meta(PoolState::Buffer))
            .unwrap_err(),
    ] {
        assert_eq!(err.kind, HvErrorKind::InvalidInput, "{err}");
    }
    assert!(h.conn.is_running("webserver").unwrap());
}

#[test]
fn a_stream_copy_on_the_test_driver_fails_cleanly() {
    let src = host();
    let dst = host();
    dst.conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    let err = HostConnection::copy_seed_between(
        &src.conn,
        SEED_POOL,
        SEED_VOL,
        &dst.conn,
        POOL,
        "office",
        "v1",
        &no_progress,
    )
    .unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("download volume seeds/office.qcow2 on test:///"),
        "{text}"
    );
    assert!(text.contains("test driver"), "{text}");
    assert!(
        volume_names(&dst.conn, POOL).is_empty(),
        "no partial volume left"
    );
}

#[test]
fn errors_name_the_operation_and_say_not_found() {
    let h = host();
    let err = h.conn.start("dp-ghost").unwrap_err();
    assert!(err.is_not_found());
    assert!(
        err.to_string()
            .starts_with(&format!("start domain dp-ghost on {}: ", h.conn.uri())),
        "{err}"
    );
    let err = h
        .conn
        .copy_seed_local(SEED_POOL, "nope.qcow2", POOL, "office", "v1", &no_progress)
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = h.conn.start("dp-bad<name>").unwrap_err();
    assert_eq!(err.kind, HvErrorKind::InvalidInput);
}

#[test]
fn display_address_is_none_without_an_assigned_port() {
    // The test driver never assigns graphics ports (autoport stays unresolved).
    let h = host();
    let seed = seed_copy(&h.conn);
    make_desktop(&h.conn, &seed, "dp-office-1", &class("office", SEED_VOL));
    assert_eq!(h.conn.display_address("dp-office-1").unwrap(), None);
    h.conn.start("dp-office-1").unwrap();
    assert_eq!(h.conn.display_address("dp-office-1").unwrap(), None);
}

#[test]
fn two_thousand_desktops_are_observed_with_their_disks_judged() {
    let h = host();
    let seed = seed_copy(&h.conn);
    let office = class("office", SEED_VOL);
    let started = Instant::now();
    for i in 0..2000 {
        let name = format!("dp-office-{i:04}");
        h.conn
            .define_desktop(&DesktopDefinition {
                name: &name,
                class: &office,
                disk_path: &format!("{POOL_PATH}/{name}.qcow2"),
                disk_format: "qcow2",
                meta: &meta(PoolState::Buffer),
                display_password: "test0pw1",
            })
            .unwrap();
        if i % 2 == 0 {
            h.conn.start(&name).unwrap();
        }
        if i < 200 {
            h.conn.create_overlay(POOL, &name, &seed, 20 << 30).unwrap();
        }
    }
    let defined = started.elapsed();
    define_raw(&h.conn, "foreign-vm");

    let started = Instant::now();
    let obs = h.conn.observe("h1", POOL, &[office]).unwrap();
    let took = started.elapsed();
    println!("defined 2000 desktops in {defined:?}; observed them in {took:?}");
    assert_eq!(obs.desktops.len(), 2000);
    assert_eq!(obs.desktops.iter().filter(|d| d.running).count(), 1000);
    assert!(obs.desktops[0].running && !obs.desktops[1].running);
    assert_eq!(obs.desktop_volumes.len(), 200);
    // Only the 200 with a disk volume are usable; the others are marked, never handed out.
    let usable = obs.desktops.iter().filter(|d| d.disk_problem.is_none());
    assert_eq!(usable.count(), 200);
    assert!(
        obs.desktops[1999]
            .disk_problem
            .as_deref()
            .unwrap()
            .contains("is gone")
    );
}

#[test]
fn connections_can_be_shared_across_threads_and_dropped() {
    let h = host();
    h.conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    let seed = seed_copy(&h.conn);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let conn = h.conn.clone();
            let seed = seed.clone();
            std::thread::spawn(move || {
                let name = format!("dp-office-{i}");
                conn.create_overlay(POOL, &name, &seed, 1 << 30).unwrap();
                conn.remove_desktop(&name, POOL).unwrap();
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(volume_names(&h.conn, POOL).len(), 2);
    drop(h);
}

// ---- issue 9: no disk deleted under a domain; a disk deleted where it is; one daemon once ----

#[test]
fn a_volume_a_domain_uses_is_never_deleted_even_when_asked_directly() {
    let h = host();
    let seed = seed_copy(&h.conn);
    let office = class("office", SEED_VOL);
    make_desktop(&h.conn, &seed, "dp-office-1", &office);
    make_desktop(&h.conn, &seed, "dp-office-2", &office);
    h.conn.start("dp-office-1").unwrap();

    // Running or only defined: its disk stays, and the refusal names who uses it.
    for d in ["dp-office-1", "dp-office-2"] {
        let err = h
            .conn
            .delete_volume(POOL, &format!("{d}.qcow2"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("is in use by domain {d}")),
            "{err}"
        );
    }
    // A domain that is not a desktop protects a disk it uses just as well.
    let xml = format!(
        "<domain type='test'><name>foreign-vm</name><memory unit='KiB'>1024</memory>\
         <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
         <source file='{POOL_PATH}//dp-office-3.qcow2'/><target dev='vda'/></disk></devices>\
         </domain>"
    );
    h.conn
        .create_overlay(POOL, "dp-office-3", &seed, 1 << 30)
        .unwrap();
    h.conn.raw().define_domain_xml(&xml).unwrap();
    let err = h.conn.delete_volume(POOL, "dp-office-3.qcow2").unwrap_err();
    assert!(
        err.to_string().contains("in use by domain foreign-vm"),
        "{err}"
    );
    // The seed copy backs overlays: neither it nor its marker goes.
    let err = h.conn.delete_seed_copy(POOL, "office", "v1").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("is in use by") && text.contains("volume dp-office-1.qcow2"),
        "{err}"
    );
    assert_eq!(
        volume_names(&h.conn, POOL),
        [
            "dp-office-1.qcow2",
            "dp-office-2.qcow2",
            "dp-office-3.qcow2",
            "seed-office@v1.complete",
            "seed-office@v1.img"
        ]
    );

    // Once nothing uses them, they go.
    h.conn.remove_desktop("dp-office-1", POOL).unwrap();
    h.conn.remove_desktop("dp-office-2", POOL).unwrap();
    h.conn
        .raw()
        .lookup_domain_by_name("foreign-vm")
        .unwrap()
        .undefine()
        .unwrap();
    h.conn.delete_volume(POOL, "dp-office-3.qcow2").unwrap();
    h.conn.delete_seed_copy(POOL, "office", "v1").unwrap();
    assert!(volume_names(&h.conn, POOL).is_empty());
}

#[test]
fn a_desktop_is_removed_with_its_disk_in_the_pool_it_was_made_in_and_no_other_disk() {
    const OLD: &str = "deskpool-old";
    let h = host();
    h.conn
        .ensure_creation_pool(OLD, "/var/lib/libvirt/deskpool-old")
        .unwrap();
    let seed = h
        .conn
        .copy_seed_local(SEED_POOL, SEED_VOL, OLD, "office", "v1", &no_progress)
        .unwrap();
    // A template that also attaches a shared data disk of the same pool.
    let mut office = class("office", SEED_VOL);
    let shared = "/var/lib/libvirt/deskpool-old/shared-data.qcow2";
    let template = deskpool_hypervisor::DEFAULT_DOMAIN_TEMPLATE.replace(
        "    <graphics",
        &format!(
            "    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='{shared}'/><target dev='vdb' bus='virtio'/></disk>\n    <graphics"
        ),
    );
    office.template = Some(template);
    let old_pool = h.conn.raw().lookup_storage_pool_by_name(OLD).unwrap();
    virt::storage_vol::StorageVol::create_xml(
        &old_pool,
        "<volume><name>shared-data.qcow2</name><capacity>1048576</capacity>\
         <target><format type='qcow2'/></target></volume>",
        0,
    )
    .unwrap();
    let path = h
        .conn
        .create_overlay(OLD, "dp-office-1", &seed, 1 << 30)
        .unwrap();
    h.conn
        .define_desktop(&DesktopDefinition {
            name: "dp-office-1",
            class: &office,
            disk_path: &path,
            disk_format: "qcow2",
            meta: &meta(PoolState::Buffer),
            display_password: "test0pw1",
        })
        .unwrap();
    h.conn.start("dp-office-1").unwrap();

    // The engine's creation pool is another one now.
    h.conn.ensure_creation_pool(POOL, POOL_PATH).unwrap();
    h.conn.remove_desktop("dp-office-1", POOL).unwrap();
    assert!(h.conn.is_running("dp-office-1").unwrap_err().is_not_found());
    assert_eq!(
        volume_names(&h.conn, OLD),
        [
            "seed-office@v1.complete",
            "seed-office@v1.img",
            "shared-data.qcow2"
        ],
        "the desktop's disk is gone from the pool it was in; the template's other disk stays"
    );
}

#[test]
fn one_daemon_opened_twice_is_the_same_daemon_and_two_node_files_are_two() {
    // test:///default: every open in one process shares one state (one daemon).
    let a = HostConnection::open("test:///default", false).unwrap();
    let b = HostConnection::open("test:///default", false).unwrap();
    a.ensure_creation_pool("dp-ident", "/dp-ident").unwrap();
    b.ensure_creation_pool("dp-ident", "/dp-ident").unwrap();
    let (ia, ib) = (
        a.identify("dp-ident").unwrap(),
        b.identify("dp-ident").unwrap(),
    );
    assert!(ia.same_daemon(&ib), "{ia} vs {ib}");
    assert_eq!(b.identity(), Some(ib.clone()));
    assert!(
        ia.to_string().contains("creation pool dp-ident UUID"),
        "{ia}"
    );

    // Each open of a node file is its own state: two daemons, even for one file.
    let h1 = host();
    let h2 = host();
    let again = HostConnection::open(h1.conn.uri(), false).unwrap();
    let mut ids = Vec::new();
    for c in [&h1.conn, &h2.conn, &again] {
        c.ensure_creation_pool(POOL, POOL_PATH).unwrap();
        ids.push(c.identify(POOL).unwrap());
    }
    for (i, x) in ids.iter().enumerate() {
        assert!(!x.same_daemon(&ia), "{x} vs {ia}");
        for y in &ids[i + 1..] {
            assert!(!x.same_daemon(y), "{x} vs {y}");
        }
    }
    let pool = a.raw().lookup_storage_pool_by_name("dp-ident").unwrap();
    pool.destroy().unwrap();
    pool.undefine().unwrap();
}

//! Demo and test hosts on libvirt's `test` driver. [`write_demo_node`] writes a `<node>` file;
//! opening `test:///ABS/PATH.xml` then gives an independent in-memory hypervisor per open (no
//! daemon, no disks: volumes hold no data, and streams are not supported).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use super::xml::escape_xml;

/// Active CPUs of a demo host made by [`write_demo_node`].
pub const DEMO_CPUS: u32 = 64;
/// Memory of a demo host made by [`write_demo_node`], in MiB (256 GiB).
pub const DEMO_MEMORY_MIB: u64 = 256 * 1024;

/// Writes a test-driver node file at `path` (atomically): no domains, and one running `dir`
/// storage pool per distinct pool name in `seeds`, holding those seed volumes as qcow2
/// (`(pool, volume, capacity_bytes)`). The host has [`DEMO_CPUS`] CPUs and
/// [`DEMO_MEMORY_MIB`] MiB (the driver's own default, 16 CPUs and 3 GiB, is too small to
/// place many desktops).
pub fn write_demo_node(path: &Path, seeds: &[(&str, &str, u64)]) -> io::Result<()> {
    write_demo_node_sized(path, seeds, DEMO_CPUS, DEMO_MEMORY_MIB)
}

/// [`write_demo_node`] with the host's CPUs and memory given.
pub fn write_demo_node_sized(
    path: &Path,
    seeds: &[(&str, &str, u64)],
    cpus: u32,
    memory_mib: u64,
) -> io::Result<()> {
    write_atomically(path, demo_node_xml(seeds, cpus, memory_mib).as_bytes())
}

/// The libvirt URI that opens the node file at `path` (which must be absolute).
pub fn demo_uri(path: &Path) -> io::Result<String> {
    let s = path.to_str().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "node file path is not UTF-8")
    })?;
    if !s.starts_with('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("node file path {s:?} must be absolute"),
        ));
    }
    Ok(format!("test://{s}"))
}

/// The `<node>` document (see [`write_demo_node`]).
pub fn demo_node_xml(seeds: &[(&str, &str, u64)], cpus: u32, memory_mib: u64) -> String {
    // Pools in name order; volumes in the order given (a repeated volume once).
    let mut pools: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for &(pool, volume, capacity) in seeds {
        let vols = pools.entry(pool).or_default();
        if !vols.iter().any(|(v, _)| *v == volume) {
            vols.push((volume, capacity));
        }
    }
    let cpus = cpus.max(1);
    let mut s = String::from("<?xml version='1.0'?>\n<node>\n");
    s.push_str(&format!(
        "  <cpu>\n    <mhz>2400</mhz>\n    <model>x86_64</model>\n    <active>{cpus}</active>\n    \
         <nodes>1</nodes>\n    <sockets>1</sockets>\n    <cores>{cpus}</cores>\n    \
         <threads>1</threads>\n  </cpu>\n  <memory>{}</memory>\n",
        memory_mib.saturating_mul(1024)
    ));
    for (pool, vols) in pools {
        let pool_e = escape_xml(pool);
        s.push_str(&format!(
            "  <pool type='dir'>\n    <name>{pool_e}</name>\n    <target>\n      \
             <path>/deskpool-demo/{pool_e}</path>\n    </target>\n"
        ));
        for (volume, capacity) in vols {
            // Nothing allocated: the test driver counts allocations against a fixed 100 GiB
            // per pool.
            s.push_str(&format!(
                "    <volume type='file'>\n      <name>{}</name>\n      \
                 <capacity unit='bytes'>{capacity}</capacity>\n      \
                 <allocation unit='bytes'>0</allocation>\n      \
                 <target>\n        <format type='qcow2'/>\n      </target>\n    </volume>\n",
                escape_xml(volume)
            ));
        }
        s.push_str("  </pool>\n");
    }
    s.push_str("</node>\n");
    s
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_groups_volumes_by_pool_and_escapes_names() {
        let xml = demo_node_xml(
            &[
                ("seeds", "office.qcow2", 10),
                ("seeds", "dev.qcow2", 20),
                ("other", "a&b", 30),
                ("seeds", "office.qcow2", 10),
            ],
            8,
            1024,
        );
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let pools: Vec<_> = doc
            .root_element()
            .children()
            .filter(|n| n.has_tag_name("pool"))
            .collect();
        assert_eq!(pools.len(), 2);
        let volumes = |p: &roxmltree::Node| {
            p.children()
                .filter(|n| n.has_tag_name("volume"))
                .map(|v| {
                    v.children()
                        .find(|n| n.has_tag_name("name"))
                        .and_then(|n| n.text())
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(volumes(&pools[0]), ["a&b"]);
        assert_eq!(volumes(&pools[1]), ["office.qcow2", "dev.qcow2"]);
        let memory = doc
            .descendants()
            .find(|n| n.has_tag_name("memory"))
            .unwrap();
        assert_eq!(memory.text(), Some("1048576"));
    }

    #[test]
    fn written_atomically_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h1.xml");
        write_demo_node(&path, &[("seeds", "office.qcow2", 1)]).unwrap();
        write_demo_node(&path, &[("seeds", "dev.qcow2", 1)]).unwrap();
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("dev.qcow2")
        );
        assert!(demo_uri(&path).unwrap().starts_with("test:///"));
        assert!(demo_uri(Path::new("rel.xml")).is_err());
    }
}

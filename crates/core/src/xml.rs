//! XML that deskpool sends to libvirt (domains from templates, volumes) and reads back from it
//! (its metadata element, volume descriptions, graphics). Everything inserted is escaped; every
//! document built here is parsed again before it leaves, so a broken template is a clear error
//! rather than a libvirt parse failure on some host.

use roxmltree::{Document, Node};

use super::model::{DesktopMeta, METADATA_PREFIX, METADATA_URI, PoolState};
use super::policy::DirectBoot;

/// Local name of deskpool's metadata element (`<deskpool:desktop .../>`).
pub const METADATA_ELEMENT: &str = "desktop";

mod guest;
mod reach;

pub use reach::{display_address_from_xml, network_interface_count};

/// The guest agent's channel in the built-in template.
pub const AGENT_CHANNEL_XML: &str = "    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
";

/// The built-in template for a class: [`DEFAULT_DOMAIN_TEMPLATE`], without the agent's channel
/// when the class does not wait for its agent (`ready = "running"`). libvirt makes that channel
/// a socket under the daemon's own directories, and one whose path is too long to bind
/// (a session daemon in a long home directory: "UNIX socket path ... too long") fails the
/// start; a class that never asks its agent need not risk it.
pub fn builtin_template(with_agent: bool) -> std::borrow::Cow<'static, str> {
    if with_agent {
        DEFAULT_DOMAIN_TEMPLATE.into()
    } else {
        DEFAULT_DOMAIN_TEMPLATE
            .replace(AGENT_CHANNEL_XML, "")
            .into()
    }
}

/// The built-in domain template: a minimal machine that starts on qemu/kvm without an operating
/// system (it boots from its one virtio disk, shows a VNC console on 127.0.0.1) and that the
/// test driver accepts with `type='test'`. The desktop's name is its SMBIOS serial number, so
/// the guest can take its identity from it at first boot (`/sys/class/dmi/id/product_serial`),
/// and the guest agent has its virtio-serial port `org.qemu.guest_agent.0`, which readiness
/// probes ([`builtin_template`] leaves it out for a class that does not wait for its agent).
pub const DEFAULT_DOMAIN_TEMPLATE: &str = "<domain type='{domain_type}'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>{memory_kib}</memory>
  <currentMemory unit='KiB'>{memory_kib}</currentMemory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <sysinfo type='smbios'>
    <system>
      <entry name='serial'>{name}</entry>
    </system>
  </sysinfo>
  <os>
    <type>hvm</type>
    <boot dev='hd'/>
    <smbios mode='sysinfo'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='{disk_format}'/>
      <source file='{disk_path}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1' passwd='{display_password}'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video>
      <model type='vga'/>
    </video>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
  </devices>
</domain>
";

/// Escapes `& < > " '` for use in XML text and attribute values (either quote style).
/// Characters XML 1.0 cannot carry at all (NUL and most other control characters) become
/// U+FFFD, so the result is always well-formed.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The values a domain template's placeholders are filled with.
#[derive(Debug, Clone)]
pub struct DomainValues<'a> {
    pub name: &'a str,
    pub uuid: &'a str,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub disk_path: &'a str,
    pub disk_format: &'a str,
    pub domain_type: &'a str,
    /// The desktop's own display password (VNC takes at most 8 characters), handed only to
    /// the user it is assigned to.
    pub display_password: &'a str,
    /// The class's direct kernel boot, put into the domain's `<os>` (not a placeholder).
    pub boot: Option<&'a DirectBoot>,
}

impl DomainValues<'_> {
    fn lookup(&self, key: &str) -> Option<String> {
        Some(match key {
            "name" => self.name.to_string(),
            "uuid" => self.uuid.to_string(),
            "memory_mib" => self.memory_mib.to_string(),
            "memory_kib" => self.memory_mib.saturating_mul(1024).to_string(),
            "vcpus" => self.vcpus.to_string(),
            "disk_path" => self.disk_path.to_string(),
            "disk_format" => self.disk_format.to_string(),
            "domain_type" => self.domain_type.to_string(),
            "display_password" => self.display_password.to_string(),
            _ => return None,
        })
    }
}

/// Fills `{placeholders}` in one pass (an inserted value is never scanned again), escaping each
/// value. Unknown `{...}` are left as they are.
pub fn fill_template(template: &str, values: &DomainValues<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let replaced = after.find('}').and_then(|close| {
            let key = &after[..close];
            values.lookup(key).map(|v| (v, close))
        });
        match replaced {
            Some((value, close)) => {
                out.push_str(&escape_xml(&value));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a domain template cannot make a desktop's domain XML. The message is the sentence users
/// see (after `template of class NAME: ` or the template file's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the template is not well-formed XML after filling its placeholders: {0}")]
    TemplateNotWellFormed(roxmltree::Error),
    #[error("the template's root element is <{root}>, not <domain>")]
    RootNotDomain { root: String },
    #[error(
        "the template's <metadata> already holds an element in deskpool's namespace \
         {METADATA_URI}; remove it"
    )]
    MetadataAlreadyOurs,
    #[error("the template's <domain> element is empty")]
    EmptyDomain,
    /// `element` is `metadata` or `domain`.
    #[error("cannot find the end of the template's <{element}>")]
    NoEndTag { element: &'static str },
    #[error("the domain XML is not well-formed after embedding metadata: {0}")]
    NotWellFormedWithMetadata(roxmltree::Error),
    #[error(
        "the template's <name> is {found:?}, not the desktop's name {expected:?} (use {{name}})"
    )]
    WrongName { found: String, expected: String },
    #[error("the embedded deskpool metadata does not read back")]
    MetadataUnreadable,
    #[error("the class boots a kernel (boot.kernel), but the template has no <os> element for it")]
    NoOsForKernel,
    #[error(
        "the class boots a kernel (boot.kernel), and the template's <os> has its own <{element}>; \
         keep one of the two"
    )]
    TemplateBootsItself { element: String },
}

/// Renders a desktop's domain XML: the template (or [`DEFAULT_DOMAIN_TEMPLATE`]) filled with
/// `values`, with deskpool's metadata element embedded in `<metadata>` (created before
/// `</domain>` when the template has none) and the class's direct kernel boot in `<os>`. Checks
/// that the result is well-formed, is a `<domain>`, and names the desktop; says what is wrong
/// otherwise.
pub fn render_domain_xml(
    template: Option<&str>,
    values: &DomainValues<'_>,
    meta: &DesktopMeta,
) -> Result<String, XmlError> {
    let filled = fill_template(template.unwrap_or(DEFAULT_DOMAIN_TEMPLATE), values);
    let element = meta_element(meta, true);
    let mut xml = embed_metadata(&filled, &element)?;
    if let Some(direct) = values.boot {
        xml = guest::insert_direct_boot(&xml, direct)?;
    }
    let doc = Document::parse(&xml).map_err(XmlError::NotWellFormedWithMetadata)?;
    let name = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("name"))
        .and_then(|n| n.text())
        .unwrap_or("");
    if name.trim() != values.name {
        return Err(XmlError::WrongName {
            found: name.to_string(),
            expected: values.name.to_string(),
        });
    }
    match parse_meta(&xml) {
        Some(ref parsed) if parsed == meta => Ok(xml),
        _ => Err(XmlError::MetadataUnreadable),
    }
}

/// Inserts `element` into the `<metadata>` of the domain document `xml`.
fn embed_metadata(xml: &str, element: &str) -> Result<String, XmlError> {
    let doc = Document::parse(xml).map_err(XmlError::TemplateNotWellFormed)?;
    let root = doc.root_element();
    if !root.has_tag_name("domain") {
        return Err(XmlError::RootNotDomain {
            root: root.tag_name().name().to_string(),
        });
    }
    let metadata = root
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == "metadata");
    let mut out = String::with_capacity(xml.len() + element.len() + 32);
    match metadata {
        Some(md) => {
            if md
                .children()
                .any(|c| c.is_element() && c.tag_name().namespace() == Some(METADATA_URI))
            {
                return Err(XmlError::MetadataAlreadyOurs);
            }
            let range = md.range();
            let text = &xml[range.clone()];
            if text.ends_with("/>") {
                out.push_str(&xml[..range.start]);
                out.push_str("<metadata>");
                out.push_str(element);
                out.push_str("</metadata>");
                out.push_str(&xml[range.end..]);
            } else {
                let close = text.rfind("</").ok_or(XmlError::NoEndTag {
                    element: "metadata",
                })?;
                out.push_str(&xml[..range.start + close]);
                out.push_str(element);
                out.push_str(&xml[range.start + close..]);
            }
        }
        None => {
            let range = root.range();
            let text = &xml[range.clone()];
            if text.ends_with("/>") {
                return Err(XmlError::EmptyDomain);
            }
            let close = text
                .rfind("</")
                .ok_or(XmlError::NoEndTag { element: "domain" })?;
            out.push_str(&xml[..range.start + close]);
            out.push_str("  <metadata>\n    ");
            out.push_str(element);
            out.push_str("\n  </metadata>\n");
            out.push_str(&xml[range.start + close..]);
        }
    }
    Ok(out)
}

/// deskpool's metadata element for `meta`. With `namespaced`, it carries the `deskpool` prefix
/// and namespace declaration (for embedding in domain XML); without, it is the bare element
/// `virDomainSetMetadata` expects (libvirt adds prefix and namespace itself).
pub fn meta_element(meta: &DesktopMeta, namespaced: bool) -> String {
    let mut s = String::with_capacity(256);
    if namespaced {
        s.push_str(&format!(
            "<{METADATA_PREFIX}:{METADATA_ELEMENT} xmlns:{METADATA_PREFIX}=\"{}\"",
            escape_xml(METADATA_URI)
        ));
    } else {
        s.push_str(&format!("<{METADATA_ELEMENT}"));
    }
    let mut attr = |k: &str, v: &str| {
        s.push_str(&format!(" {k}=\"{}\"", escape_xml(v)));
    };
    attr("class", &meta.class);
    attr("pool", meta.pool.as_str());
    attr("seed_version", &meta.seed_version);
    if let Some(user) = &meta.user {
        attr("user", user);
    }
    attr("created_at", &meta.created_at.to_string());
    attr("changed_at", &meta.changed_at.to_string());
    attr("attempts", &meta.attempts.to_string());
    if meta.term > 0 {
        attr("term", &meta.term.to_string());
    }
    s.push_str("/>");
    s
}

/// Reads deskpool's metadata from either the element returned by `virDomainGetMetadata`
/// (`<desktop .../>`, with or without deskpool's namespace) or a whole domain XML (its
/// `<metadata>` child in deskpool's namespace). `None` for anything else: foreign elements,
/// missing or malformed fields, broken XML.
pub fn parse_meta(xml: &str) -> Option<DesktopMeta> {
    let doc = Document::parse(xml).ok()?;
    let root = doc.root_element();
    if root.has_tag_name("domain") {
        let md = root
            .children()
            .find(|n| n.is_element() && n.tag_name().name() == "metadata")?;
        let el = md
            .children()
            .find(|n| n.has_tag_name((METADATA_URI, METADATA_ELEMENT)))?;
        return meta_from_node(el);
    }
    if root.tag_name().name() != METADATA_ELEMENT {
        return None;
    }
    match root.tag_name().namespace() {
        None => meta_from_node(root),
        Some(ns) if ns == METADATA_URI => meta_from_node(root),
        Some(_) => None,
    }
}

fn meta_from_node(n: Node<'_, '_>) -> Option<DesktopMeta> {
    let text = |k: &str| -> Option<String> {
        let v = n.attribute(k)?;
        (!v.is_empty()).then(|| v.to_string())
    };
    Some(DesktopMeta {
        class: text("class")?,
        pool: PoolState::parse(n.attribute("pool")?)?,
        seed_version: text("seed_version")?,
        user: n.attribute("user").map(str::to_string),
        created_at: n.attribute("created_at")?.trim().parse().ok()?,
        changed_at: n.attribute("changed_at")?.trim().parse().ok()?,
        attempts: match n.attribute("attempts") {
            Some(a) => a.trim().parse().ok()?,
            None => 0,
        },
        term: match n.attribute("term") {
            Some(t) => t.trim().parse().ok()?,
            None => 0,
        },
    })
}

/// A storage volume description: `name` in `format`, `capacity` bytes, with `allocation` bytes
/// allocated up front (`None` lets libvirt decide), optionally an overlay over `backing`
/// (path, format).
pub fn volume_xml(
    name: &str,
    capacity: u64,
    allocation: Option<u64>,
    format: &str,
    backing: Option<(&str, &str)>,
) -> String {
    let mut s = format!(
        "<volume type='file'>\n  <name>{}</name>\n  <capacity unit='bytes'>{capacity}</capacity>\n",
        escape_xml(name)
    );
    if let Some(a) = allocation {
        s.push_str(&format!("  <allocation unit='bytes'>{a}</allocation>\n"));
    }
    s.push_str(&format!(
        "  <target>\n    <format type='{}'/>\n  </target>\n",
        escape_xml(format)
    ));
    if let Some((path, fmt)) = backing {
        s.push_str(&format!(
            "  <backingStore>\n    <path>{}</path>\n    <format type='{}'/>\n  </backingStore>\n",
            escape_xml(path),
            escape_xml(fmt)
        ));
    }
    s.push_str("</volume>\n");
    s
}

/// The overlay volume of a desktop: a qcow2 of `capacity` bytes over `backing_path` in
/// `backing_format`, nothing allocated up front.
pub fn overlay_volume_xml(
    name: &str,
    capacity: u64,
    backing_path: &str,
    backing_format: &str,
) -> String {
    volume_xml(
        name,
        capacity,
        Some(0),
        "qcow2",
        Some((backing_path, backing_format)),
    )
}

/// What deskpool reads from a volume's XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeXmlInfo {
    pub path: Option<String>,
    pub format: Option<String>,
    pub capacity: Option<u64>,
    pub backing_path: Option<String>,
    pub backing_format: Option<String>,
}

/// Parses a volume description (`virStorageVolGetXMLDesc`). `None` if it is not one.
pub fn parse_volume_xml(xml: &str) -> Option<VolumeXmlInfo> {
    let doc = Document::parse(xml).ok()?;
    let root = doc.root_element();
    if !root.has_tag_name("volume") {
        return None;
    }
    let target = child(root, "target");
    let backing = child(root, "backingStore");
    let path_of = |n: Option<Node<'_, '_>>| {
        n.and_then(|n| child(n, "path"))
            .and_then(|p| p.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let format_of = |n: Option<Node<'_, '_>>| {
        n.and_then(|n| child(n, "format"))
            .and_then(|f| f.attribute("type"))
            .map(str::to_string)
    };
    let capacity = child(root, "capacity").and_then(|c| {
        let value: u64 = c.text()?.trim().parse().ok()?;
        let unit = c.attribute("unit").unwrap_or("bytes");
        Some(value.saturating_mul(unit_bytes(unit)?))
    });
    Some(VolumeXmlInfo {
        path: path_of(target),
        format: format_of(target),
        capacity,
        backing_path: path_of(backing),
        backing_format: format_of(backing),
    })
}

fn child<'a, 'input>(n: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    n.children().find(|c| c.has_tag_name(name))
}

/// Bytes per libvirt size unit.
fn unit_bytes(unit: &str) -> Option<u64> {
    Some(match unit {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1000 * 1000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1000 * 1000 * 1000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1000 * 1000 * 1000 * 1000,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    })
}

/// The virtio-serial port name qemu-guest-agent answers on.
pub const AGENT_CHANNEL: &str = "org.qemu.guest_agent.0";

/// Whether a domain XML has the guest agent's channel (`<channel><target type='virtio'
/// name='org.qemu.guest_agent.0'/></channel>` under `<devices>`).
pub fn has_agent_channel(xml: &str) -> bool {
    let Ok(doc) = Document::parse(xml) else {
        return false;
    };
    let Some(devices) = child(doc.root_element(), "devices") else {
        return false;
    };
    devices
        .children()
        .filter(|n| n.has_tag_name("channel"))
        .filter_map(|c| child(c, "target"))
        .any(|t| {
            t.attribute("type") == Some("virtio") && t.attribute("name") == Some(AGENT_CHANNEL)
        })
}

/// The `passwd` of the first `<graphics>` of a domain XML read with the secure flag (libvirt
/// leaves it out otherwise).
pub fn display_password_from_xml(xml: &str) -> Option<String> {
    let doc = Document::parse(xml).ok()?;
    let devices = child(doc.root_element(), "devices")?;
    let g = child(devices, "graphics")?;
    g.attribute("passwd")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// The `<target><path>` of a storage pool's XML, without a trailing `/`.
pub fn pool_target_path(xml: &str) -> Option<String> {
    let doc = Document::parse(xml).ok()?;
    let target = child(doc.root_element(), "target")?;
    let path = child(target, "path")?.text()?.trim();
    let path = path.trim_end_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

/// A file-backed disk of a domain: its image, and the images that back it (outermost first)
/// where the XML shows a chain (the live XML of a running domain does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskSource {
    pub path: String,
    pub backing: Vec<String>,
}

/// The file-backed `<disk device='disk'>` images of a domain XML (CD-ROMs, network disks and
/// volumes named by pool are not files deskpool could delete, and are left out).
pub fn domain_disk_sources(xml: &str) -> Vec<DiskSource> {
    let Ok(doc) = Document::parse(xml) else {
        return Vec::new();
    };
    let Some(devices) = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("devices"))
    else {
        return Vec::new();
    };
    let file_of = |n: Node<'_, '_>| {
        child(n, "source")
            .and_then(|s| s.attribute("file"))
            .map(str::to_string)
    };
    devices
        .children()
        .filter(|n| n.has_tag_name("disk") && n.attribute("device").unwrap_or("disk") == "disk")
        .filter_map(|disk| {
            let path = file_of(disk)?;
            let mut backing = Vec::new();
            let mut next = child(disk, "backingStore");
            while let Some(b) = next {
                match file_of(b) {
                    Some(p) => backing.push(p),
                    None => break,
                }
                next = child(b, "backingStore");
            }
            Some(DiskSource { path, backing })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(user: Option<&str>) -> DesktopMeta {
        DesktopMeta {
            class: "office".into(),
            pool: PoolState::Buffer,
            seed_version: "2026.1".into(),
            user: user.map(str::to_string),
            created_at: 1_700_000_000,
            changed_at: 1_700_000_100,
            attempts: 2,
            term: 0,
        }
    }

    fn values<'a>(name: &'a str, disk: &'a str) -> DomainValues<'a> {
        DomainValues {
            name,
            uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f",
            memory_mib: 2048,
            vcpus: 2,
            disk_path: disk,
            disk_format: "qcow2",
            domain_type: "kvm",
            display_password: "s3cr3t01",
            boot: None,
        }
    }

    #[test]
    fn escapes_the_five_special_characters() {
        assert_eq!(
            escape_xml(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(escape_xml("plain-name_1.2"), "plain-name_1.2");
        assert_eq!(escape_xml("nul\0bell\x07"), "nul\u{FFFD}bell\u{FFFD}");
    }

    #[test]
    fn metadata_round_trips_with_hostile_characters_in_every_field() {
        let hostile = "<'&\">";
        let m = DesktopMeta {
            class: format!("c{hostile}"),
            pool: PoolState::Production,
            seed_version: format!("v{hostile}"),
            user: Some(format!("u{hostile}")),
            created_at: -5,
            changed_at: 7,
            term: 9,
            attempts: 3,
        };
        for namespaced in [true, false] {
            let el = meta_element(&m, namespaced);
            assert!(!el[1..el.len() - 2].contains('<'), "unescaped < in {el}");
            assert_eq!(parse_meta(&el), Some(m.clone()), "{el}");
        }
    }

    #[test]
    fn metadata_omits_user_when_none() {
        let el = meta_element(&meta(None), true);
        assert!(!el.contains("user="), "{el}");
        assert_eq!(parse_meta(&el), Some(meta(None)));
    }

    #[test]
    fn parse_meta_refuses_foreign_and_broken_elements() {
        let ours = meta_element(&meta(Some("ann")), false);
        assert!(parse_meta(&ours).is_some());
        for bad in [
            "",
            "<desktop",
            "<other class='office'/>",
            "<x:desktop xmlns:x='urn:someone-else' class='office' pool='buffer' seed_version='1' \
             created_at='1' changed_at='1' attempts='0'/>",
            "<desktop class='office' pool='nowhere' seed_version='1' created_at='1' \
             changed_at='1' attempts='0'/>",
            "<desktop class='office' pool='buffer' seed_version='1' created_at='soon' \
             changed_at='1' attempts='0'/>",
            "<desktop pool='buffer' seed_version='1' created_at='1' changed_at='1'/>",
        ] {
            assert_eq!(parse_meta(bad), None, "{bad}");
        }
    }

    #[test]
    fn default_template_renders_with_metadata_and_parses() {
        let m = meta(Some("ann"));
        let xml =
            render_domain_xml(None, &values("dp-office-1", "/p/dp-office-1.qcow2"), &m).unwrap();
        let doc = Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("type"), Some("kvm"));
        let memory = root.children().find(|n| n.has_tag_name("memory")).unwrap();
        assert_eq!(memory.text(), Some("2097152"));
        let disk_source = root
            .descendants()
            .find(|n| n.has_tag_name("source"))
            .unwrap();
        assert_eq!(disk_source.attribute("file"), Some("/p/dp-office-1.qcow2"));
        let on_crash = root
            .children()
            .find(|n| n.has_tag_name("on_crash"))
            .unwrap();
        assert_eq!(on_crash.text(), Some("destroy"));
        assert_eq!(parse_meta(&xml).as_ref(), Some(&m));
        // The guest agent's port, which readiness probes ask through.
        assert!(has_agent_channel(&xml), "{xml}");
        assert!(!has_agent_channel(
            &xml.replace(AGENT_CHANNEL, "org.example.other")
        ));
        assert!(!has_agent_channel("<domain><devices/></domain>"));
        let without = render_domain_xml(
            Some(&builtin_template(false)),
            &values("dp-office-1", "/p/dp-office-1.qcow2"),
            &m,
        )
        .unwrap();
        assert!(!has_agent_channel(&without), "{without}");
        assert_eq!(builtin_template(true), DEFAULT_DOMAIN_TEMPLATE);
    }

    #[test]
    fn injected_markup_stays_text_in_one_name_element() {
        let evil = "dp-x</name><evil/><name>";
        let xml = fill_template(DEFAULT_DOMAIN_TEMPLATE, &values(evil, "/p/a'b\"c<d>&e"));
        let doc = Document::parse(&xml).unwrap();
        let root = doc.root_element();
        let names: Vec<_> = root.children().filter(|n| n.has_tag_name("name")).collect();
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].text(), Some(evil));
        assert!(!doc.descendants().any(|n| n.has_tag_name("evil")));
        let source = root
            .descendants()
            .find(|n| n.has_tag_name("source"))
            .unwrap();
        assert_eq!(source.attribute("file"), Some("/p/a'b\"c<d>&e"));
        // And the full render (with metadata) keeps it one well-formed document too.
        let rendered = render_domain_xml(None, &values(evil, "/p/x"), &meta(None)).unwrap();
        assert!(Document::parse(&rendered).is_ok());
    }

    #[test]
    fn a_placeholder_inside_a_value_is_not_expanded_again() {
        let xml = fill_template(
            "<n>{name}</n><u>{uuid}</u>{unknown}",
            &values("{uuid}", "/d"),
        );
        assert_eq!(
            xml,
            "<n>{uuid}</n><u>6695eb01-f6a4-8304-79aa-97f2502e193f</u>{unknown}"
        );
    }

    #[test]
    fn metadata_goes_into_an_existing_metadata_element() {
        let m = meta(None);
        for template in [
            "<domain type='{domain_type}'><name>{name}</name><metadata><foo:x xmlns:foo='urn:foo'/></metadata></domain>",
            "<domain type='{domain_type}'><name>{name}</name><metadata/></domain>",
            "<domain type='{domain_type}'><name>{name}</name><metadata></metadata></domain>",
        ] {
            let xml = render_domain_xml(Some(template), &values("dp-a", "/d"), &m).unwrap();
            let doc = Document::parse(&xml).unwrap();
            let mds: Vec<_> = doc
                .root_element()
                .children()
                .filter(|n| n.has_tag_name("metadata"))
                .collect();
            assert_eq!(mds.len(), 1, "{xml}");
            assert!(
                mds[0]
                    .children()
                    .any(|n| n.has_tag_name((METADATA_URI, METADATA_ELEMENT))),
                "{xml}"
            );
            if template.contains("urn:foo") {
                assert!(mds[0].children().any(|n| n.has_tag_name(("urn:foo", "x"))));
            }
        }
    }

    #[test]
    fn broken_templates_are_refused_with_a_reason() {
        let m = meta(None);
        let v = values("dp-a", "/d");
        assert!(matches!(
            render_domain_xml(Some("<domain><name>{name}</name>"), &v, &m),
            Err(XmlError::TemplateNotWellFormed(_))
        ));
        assert_eq!(
            render_domain_xml(Some("<vm><name>{name}</name></vm>"), &v, &m),
            Err(XmlError::RootNotDomain { root: "vm".into() })
        );
        assert_eq!(
            render_domain_xml(Some("<domain/>"), &v, &m),
            Err(XmlError::EmptyDomain)
        );
        let fixed_name = render_domain_xml(Some("<domain><name>fixed</name></domain>"), &v, &m);
        assert_eq!(
            fixed_name.unwrap_err().to_string(),
            "the template's <name> is \"fixed\", not the desktop's name \"dp-a\" (use {name})"
        );
        let ours = format!(
            "<domain><name>{{name}}</name><metadata>{}</metadata></domain>",
            meta_element(&m, true)
        );
        let taken = render_domain_xml(Some(&ours), &v, &m).unwrap_err();
        assert_eq!(taken, XmlError::MetadataAlreadyOurs);
        assert!(taken.to_string().contains(METADATA_URI), "{taken}");
    }

    #[test]
    fn overlay_xml_declares_both_formats_and_capacity_in_bytes() {
        let xml = overlay_volume_xml("dp-a.qcow2", 21_474_836_480, "/p/seed-o@1.img", "raw");
        let info = parse_volume_xml(&xml).unwrap();
        assert_eq!(info.format.as_deref(), Some("qcow2"));
        assert_eq!(info.capacity, Some(21_474_836_480));
        assert_eq!(info.backing_path.as_deref(), Some("/p/seed-o@1.img"));
        assert_eq!(info.backing_format.as_deref(), Some("raw"));
    }

    #[test]
    fn disk_sources_follow_the_backing_chain_and_skip_cdroms() {
        let xml = "<domain><devices>
          <disk type='file' device='disk'><source file='/p/dp-a.qcow2'/>
            <backingStore type='file'><source file='/p/seed-a@1.img'/><backingStore/></backingStore>
          </disk>
          <disk type='file' device='cdrom'><source file='/iso/x.iso'/></disk>
          <disk type='network' device='disk'><source protocol='nbd' name='x'/></disk>
        </devices></domain>";
        assert_eq!(
            domain_disk_sources(xml),
            vec![DiskSource {
                path: "/p/dp-a.qcow2".into(),
                backing: vec!["/p/seed-a@1.img".into()],
            }]
        );
        assert!(domain_disk_sources("not xml").is_empty());
    }
}

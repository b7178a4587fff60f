//! Where a user reaches a running desktop, read from its live domain XML: the display a
//! client connects to, and whether the guest has a network interface (then readiness also waits
//! for the address its agent reports).

use roxmltree::Document;

/// The first `<graphics>` of a (live) domain XML as an address like `spice://127.0.0.1:5901` or
/// `vnc://[::1]:5900`. `None` when there is no graphics device or no port is assigned yet
/// (autoport on a domain that is not running).
pub fn display_address_from_xml(xml: &str) -> Option<String> {
    let doc = Document::parse(xml).ok()?;
    let devices = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("devices"))?;
    let g = devices.children().find(|n| n.has_tag_name("graphics"))?;
    let kind = g.attribute("type")?;
    let port = g
        .attribute("port")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p > 0)
        .or_else(|| {
            g.attribute("tlsPort")
                .and_then(|p| p.parse::<i64>().ok())
                .filter(|p| *p > 0)
        })?;
    let listen = g
        .attribute("listen")
        .or_else(|| {
            g.children()
                .find(|n| n.has_tag_name("listen"))
                .and_then(|l| l.attribute("address"))
        })
        .unwrap_or("127.0.0.1");
    let host = if listen.contains(':') {
        format!("[{listen}]")
    } else {
        listen.to_string()
    };
    Some(format!("{kind}://{host}:{port}"))
}

/// How many network interfaces (`<devices><interface>`) a domain XML gives its guest; 0 when
/// the XML cannot be read.
pub fn network_interface_count(xml: &str) -> usize {
    let Ok(doc) = Document::parse(xml) else {
        return 0;
    };
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("devices"))
        .flat_map(|d| d.children())
        .filter(|n| n.has_tag_name("interface"))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_address_reads_graphics() {
        let xml = "<domain><devices><graphics type='spice' port='5901' autoport='yes' \
                   listen='127.0.0.1'><listen type='address' address='127.0.0.1'/></graphics>\
                   </devices></domain>";
        assert_eq!(
            display_address_from_xml(xml).as_deref(),
            Some("spice://127.0.0.1:5901")
        );
        let v6 = "<domain><devices><graphics type='vnc' port='5900'><listen type='address' \
                  address='::1'/></graphics></devices></domain>";
        assert_eq!(
            display_address_from_xml(v6).as_deref(),
            Some("vnc://[::1]:5900")
        );
        let unassigned = "<domain><devices><graphics type='vnc' port='-1' autoport='yes'/>\
                          </devices></domain>";
        assert_eq!(display_address_from_xml(unassigned), None);
        assert_eq!(display_address_from_xml("<domain/>"), None);
    }

    #[test]
    fn interfaces_are_counted_under_devices_only() {
        let two = "<domain><devices><interface type='user'><model type='virtio'/></interface>\
                   <interface type='bridge'><source bridge='br0'/></interface></devices></domain>";
        assert_eq!(network_interface_count(two), 2);
        let none = "<domain><devices><disk type='file'/></devices>\
                    <metadata><interface/></metadata></domain>";
        assert_eq!(network_interface_count(none), 0);
        assert_eq!(network_interface_count("not xml"), 0);
    }
}

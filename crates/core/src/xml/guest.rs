//! What the guest boots and who it is: a class's direct kernel boot put into the domain's
//! `<os>`, and (in the built-in template) the desktop's name as its SMBIOS serial number.

use roxmltree::Document;

use super::{XmlError, escape_xml};
use crate::policy::DirectBoot;

/// Inserts `<kernel>`, `<initrd>` and `<cmdline>` (those `boot` sets, escaped) at the end of the
/// `<os>` of the domain document `xml`. A template that boots a kernel of its own is refused
/// rather than given two.
pub(super) fn insert_direct_boot(xml: &str, boot: &DirectBoot) -> Result<String, XmlError> {
    let doc = Document::parse(xml).map_err(XmlError::NotWellFormedWithMetadata)?;
    let os = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("os"))
        .ok_or(XmlError::NoOsForKernel)?;
    if let Some(own) = os
        .children()
        .find(|n| n.is_element() && ["kernel", "initrd", "cmdline"].contains(&n.tag_name().name()))
    {
        return Err(XmlError::TemplateBootsItself {
            element: own.tag_name().name().to_string(),
        });
    }
    let mut elements = format!("<kernel>{}</kernel>", escape_xml(&boot.kernel));
    if let Some(initrd) = &boot.initrd {
        elements.push_str(&format!("<initrd>{}</initrd>", escape_xml(initrd)));
    }
    if let Some(cmdline) = &boot.cmdline {
        elements.push_str(&format!("<cmdline>{}</cmdline>", escape_xml(cmdline)));
    }
    let range = os.range();
    let text = &xml[range.clone()];
    let mut out = String::with_capacity(xml.len() + elements.len() + 16);
    if let Some(open) = text.strip_suffix("/>") {
        out.push_str(&xml[..range.start]);
        out.push_str(open);
        out.push('>');
        out.push_str(&elements);
        out.push_str("</os>");
    } else {
        let close = text
            .rfind("</")
            .ok_or(XmlError::NoEndTag { element: "os" })?;
        out.push_str(&xml[..range.start + close]);
        out.push_str(&elements);
        out.push_str(&text[close..]);
    }
    out.push_str(&xml[range.end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{DomainValues, render_domain_xml};
    use super::*;
    use crate::model::{DesktopMeta, PoolState};

    fn meta() -> DesktopMeta {
        DesktopMeta {
            class: "seed".into(),
            pool: PoolState::Creation,
            seed_version: "v1".into(),
            user: None,
            created_at: 1,
            changed_at: 1,
            attempts: 0,
            term: 0,
        }
    }

    fn render(template: Option<&str>, boot: Option<&DirectBoot>) -> Result<String, XmlError> {
        let values = DomainValues {
            name: "dp-seed-abc",
            uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f",
            memory_mib: 256,
            vcpus: 1,
            disk_path: "/p/dp-seed-abc.qcow2",
            disk_format: "qcow2",
            domain_type: "qemu",
            display_password: "s3cr3t01",
            boot,
        };
        render_domain_xml(template, &values, &meta())
    }

    fn os_children(xml: &str) -> Vec<(String, String)> {
        let doc = Document::parse(xml).unwrap();
        let os = doc
            .root_element()
            .children()
            .find(|n| n.has_tag_name("os"))
            .unwrap();
        os.children()
            .filter(|n| n.is_element())
            .map(|n| {
                (
                    n.tag_name().name().to_string(),
                    n.text().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn the_built_in_template_gives_the_desktop_its_name_as_smbios_serial() {
        let xml = render(None, None).unwrap();
        let doc = Document::parse(&xml).unwrap();
        let root = doc.root_element();
        let sysinfo = root.children().find(|n| n.has_tag_name("sysinfo")).unwrap();
        assert_eq!(sysinfo.attribute("type"), Some("smbios"));
        let serial = sysinfo
            .descendants()
            .find(|n| n.has_tag_name("entry") && n.attribute("name") == Some("serial"))
            .unwrap();
        assert_eq!(serial.text(), Some("dp-seed-abc"));
        let smbios = root
            .descendants()
            .find(|n| n.has_tag_name("smbios"))
            .unwrap();
        assert_eq!(smbios.attribute("mode"), Some("sysinfo"));
        let agent = root
            .descendants()
            .find(|n| n.has_tag_name("target") && n.attribute("type") == Some("virtio"))
            .unwrap();
        assert_eq!(agent.attribute("name"), Some("org.qemu.guest_agent.0"));
    }

    #[test]
    fn direct_boot_goes_into_os_escaped_and_only_what_is_set() {
        let boot = DirectBoot {
            kernel: "/boot/vmlinuz".into(),
            initrd: Some("/boot/initrd.img".into()),
            cmdline: Some("root=/dev/vda rw x=\"<&>\"".into()),
        };
        let xml = render(None, Some(&boot)).unwrap();
        let os = os_children(&xml);
        assert!(
            os.contains(&("kernel".into(), "/boot/vmlinuz".into())),
            "{os:?}"
        );
        assert!(os.contains(&("initrd".into(), "/boot/initrd.img".into())));
        assert!(os.contains(&("cmdline".into(), "root=/dev/vda rw x=\"<&>\"".into())));
        let kernel_only = DirectBoot {
            initrd: None,
            cmdline: None,
            ..boot
        };
        let xml = render(None, Some(&kernel_only)).unwrap();
        let names: Vec<String> = os_children(&xml).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["type", "boot", "smbios", "kernel"]);
        assert!(!render(None, None).unwrap().contains("<kernel>"));
    }

    #[test]
    fn a_self_closed_os_is_opened_and_a_template_with_its_own_kernel_is_refused() {
        let boot = DirectBoot {
            kernel: "/k".into(),
            initrd: None,
            cmdline: None,
        };
        let disk = "<devices><disk type='file' device='disk'><source file='{disk_path}'/>\
                    </disk></devices>";
        let closed = format!("<domain><name>{{name}}</name><os/>{disk}</domain>");
        let xml = render(Some(&closed), Some(&boot)).unwrap();
        assert_eq!(os_children(&xml), [("kernel".into(), "/k".into())]);
        let own = format!(
            "<domain><name>{{name}}</name><os><type>hvm</type><kernel>/mine</kernel></os>\
             {disk}</domain>"
        );
        let refused = render(Some(&own), Some(&boot)).unwrap_err();
        assert_eq!(
            refused,
            XmlError::TemplateBootsItself {
                element: "kernel".into()
            }
        );
        assert!(
            render(Some(&own), None).is_ok(),
            "its own kernel alone is fine"
        );
        let no_os = format!("<domain><name>{{name}}</name>{disk}</domain>");
        assert_eq!(
            render(Some(&no_os), Some(&boot)),
            Err(XmlError::NoOsForKernel)
        );
    }
}

//! The one error type of the hypervisor layer. Every error names the operation, the object and
//! the host URI, so a line in the event log says what failed where without more context:
//! `define domain dp-office-x on test:///tmp/h1.xml: <libvirt message>`.

use std::fmt;

use virt::error::{ErrorNumber, ErrorNumberEnum};

/// What kind of failure an [`HvError`] is; lets callers make steps idempotent and decide whether
/// a retry makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HvErrorKind {
    /// The domain, storage volume or storage pool does not exist.
    NotFound,
    /// The object already exists (a domain or volume of that name).
    AlreadyExists,
    /// The libvirt driver does not support the operation (e.g. streams on the test driver).
    Unsupported,
    /// deskpool refused the input before calling libvirt (bad name, broken template, ...).
    InvalidInput,
    /// Any other libvirt failure (connection lost, permission, I/O on the host, ...).
    Libvirt,
}

/// A failed hypervisor operation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} {object} on {uri}: {message}")]
pub struct HvError {
    /// What was attempted, e.g. `define domain`.
    pub op: String,
    /// What it was attempted on, e.g. `dp-office-x` or `deskpool/seed-office@v1.img`.
    pub object: String,
    /// The host's libvirt URI.
    pub uri: String,
    pub kind: HvErrorKind,
    /// libvirt's error code, when the error came from libvirt.
    pub code: Option<ErrorNumber>,
    /// libvirt's message (without its code noise), or deskpool's own explanation.
    pub message: String,
}

impl HvError {
    /// An error reported by libvirt. Must be built on the thread that made the failing call
    /// (the `virt` crate reads libvirt's thread-local last error when the call fails, so the
    /// `virt::error::Error` passed here already carries it).
    pub fn libvirt(
        op: &str,
        object: impl fmt::Display,
        uri: &str,
        err: virt::error::Error,
    ) -> Self {
        let code = match err.code() {
            ErrorNumberEnum::Known(code) => Some(code),
            _ => None,
        };
        let kind = match code {
            Some(
                ErrorNumber::NoDomain | ErrorNumber::NoStorageVolume | ErrorNumber::NoStoragePool,
            ) => HvErrorKind::NotFound,
            Some(ErrorNumber::DomExist | ErrorNumber::StorageVolExist) => {
                HvErrorKind::AlreadyExists
            }
            Some(
                ErrorNumber::NoSupport
                | ErrorNumber::OperationUnsupported
                | ErrorNumber::ArgumentUnsupported,
            ) => HvErrorKind::Unsupported,
            _ => HvErrorKind::Libvirt,
        };
        HvError {
            op: op.to_string(),
            object: object.to_string(),
            uri: uri.to_string(),
            kind,
            code,
            message: err.message().to_string(),
        }
    }

    /// An error deskpool raises itself.
    pub fn new(
        kind: HvErrorKind,
        op: &str,
        object: impl fmt::Display,
        uri: &str,
        message: impl Into<String>,
    ) -> Self {
        HvError {
            op: op.to_string(),
            object: object.to_string(),
            uri: uri.to_string(),
            kind,
            code: None,
            message: message.into(),
        }
    }

    /// The domain, storage volume or storage pool does not exist: a delete can count as done.
    pub fn is_not_found(&self) -> bool {
        self.kind == HvErrorKind::NotFound
    }

    /// The object already exists.
    pub fn is_already_exists(&self) -> bool {
        self.kind == HvErrorKind::AlreadyExists
    }

    /// The driver does not support the operation.
    pub fn is_unsupported(&self) -> bool {
        self.kind == HvErrorKind::Unsupported
    }

    /// Whether libvirt reported exactly this error code.
    pub fn has_code(&self, code: ErrorNumber) -> bool {
        self.code == Some(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_operation_object_and_host() {
        let e = HvError::new(
            HvErrorKind::InvalidInput,
            "define domain",
            "dp-office-x",
            "test:///tmp/h1.xml",
            "bad template",
        );
        assert_eq!(
            e.to_string(),
            "define domain dp-office-x on test:///tmp/h1.xml: bad template"
        );
        assert!(!e.is_not_found());
    }
}

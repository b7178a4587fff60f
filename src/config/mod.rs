//! The configuration file: format, loading, and validation errors with file:line:col.

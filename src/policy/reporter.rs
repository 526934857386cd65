//! The findings of one object's checks, reported at its fields.

use super::diag::{Diagnostics, Severity};
use super::document::{Origin, steps};

/// Reports findings about one object, at its fields.
pub(super) struct Reporter<'a> {
    pub(super) origin: &'a Origin,
    pub(super) object: String,
    pub(super) diags: &'a mut Diagnostics,
}

impl Reporter<'_> {
    pub(super) fn error(&mut self, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        let d = self.origin.diag(Severity::Error, &self.object, &steps(field), message, hint);
        self.diags.push(d);
    }

    pub(super) fn warning(&mut self, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        let d = self.origin.diag(Severity::Warning, &self.object, &steps(field), message, hint);
        self.diags.push(d);
    }

    /// Whether the user wrote `field` (translated objects have no written fields).
    pub(super) fn written(&self, field: &str) -> bool {
        self.origin.translated_at.is_none() && self.origin.layers.iter().any(|d| d.node.get(&steps(field)).is_some())
    }
}

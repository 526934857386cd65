//! The kOps state store: objects with versions, written only with compare-and-swap so that a
//! concurrent `kops edit ig` is never lost.

pub mod store;

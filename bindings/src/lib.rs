//! uniffi bindings.

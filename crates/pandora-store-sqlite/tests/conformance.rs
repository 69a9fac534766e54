//! The store conformance suite (`pandora_core::testing`) on SQLite: every test
//! runs on its own fresh database file.

mod common;

pandora_core::store_conformance_suite!(common::fresh_store());

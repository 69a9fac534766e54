//! The store conformance suite (pandora-core, feature `testing`) on PostgreSQL.

pandora_core::store_conformance_suite!(pandora_store_postgres::testing::fresh_store());

use std::collections::HashSet;

use uuid::Uuid;
use zeroize::Zeroizing;

use super::format::{self, SealRandomness};
use super::*;
use crate::model::StoredCredentials;

fn binding() -> Binding {
    Binding {
        workspace_id: Uuid::from_u128(0x0194_0000_0000_7000_8000_0000_0000_0001),
        connection_id: Uuid::from_u128(0x0194_0000_0000_7000_8000_0000_0000_0002),
    }
}

fn vault() -> LocalVault {
    LocalVault::new(MasterKey::from_bytes(&[7u8; 32]))
}

fn creds() -> Credentials {
    Credentials::from_json(
        &serde_json::json!({"access_token": "tok-123", "refresh_token": "ref-456"}),
    )
}

/// The layout of format version 1, pinned: a blob written by any earlier build must still open.
const VECTOR: &str = "pv1.AbMS_2Ta6zMXIiIiIiIiIiIiIiIiKhO53vOYC8-GoO3EP2Iia9LU8FtsVvI70DP08398rqhX71wrwNjzRyBGSqKbwSxLMzMzMzMzMzMzMzMz_6EzNqPNHknLmtFP006QXCS1XXYdqLaSJNRS1ZlQLfImTA";

fn fixed_randomness() -> SealRandomness {
    SealRandomness {
        data_key: Zeroizing::new([0x11; 32]),
        wrap_nonce: [0x22; 12],
        data_nonce: [0x33; 12],
    }
}

#[test]
fn test_vector_pins_the_layout() {
    let master = MasterKey::from_bytes(&[0x42; 32]);
    let plaintext = Credentials::from_bytes(br#"{"api_key":"test"}"#.to_vec());
    let sealed =
        format::seal_with(&master, binding(), &plaintext, &fixed_randomness()).expect("seal");
    assert_eq!(sealed, VECTOR);
    let opened = LocalVault::new(master)
        .open_now(binding(), &StoredCredentials(VECTOR.into()))
        .expect("open");
    assert_eq!(opened.expose_bytes(), br#"{"api_key":"test"}"#);
}

#[test]
fn layout_offsets_match_the_documentation() {
    use base64::Engine;
    let master = MasterKey::from_bytes(&[0x42; 32]);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(VECTOR.strip_prefix("pv1.").expect("prefix"))
        .expect("base64url");
    let plaintext_len = br#"{"api_key":"test"}"#.len();
    assert_eq!(bytes.len(), 1 + 8 + 12 + 48 + 12 + plaintext_len + 16);
    assert_eq!(bytes[0], 1, "version");
    assert_eq!(&bytes[1..9], &master.id().0, "key id");
    assert_eq!(&bytes[9..21], &[0x22; 12], "wrap nonce");
    assert_eq!(&bytes[69..81], &[0x33; 12], "data nonce");
    assert_eq!(format::key_id_of(VECTOR), Some(master.id()));
}

#[test]
fn seal_open_round_trip_and_nothing_leaks() {
    let v = vault();
    let sealed = v.seal_now(binding(), &creds()).expect("seal");
    assert!(sealed.0.starts_with("pv1."));
    assert!(!sealed.0.contains("tok-123"));
    assert_eq!(
        CredentialState::of(&sealed),
        CredentialState::Sealed(v.current_key_id().expect("key"))
    );
    let opened = v.open_now(binding(), &sealed).expect("open");
    assert_eq!(opened, creds());
    assert_eq!(format!("{opened:?}"), "Credentials([redacted])");
    assert_eq!(opened.to_string(), "[redacted]");
    assert_eq!(format!("{sealed:?}"), "StoredCredentials([redacted])");
}

#[test]
fn every_single_byte_flip_fails_to_open_without_panicking() {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let v = vault();
    let sealed = v.seal_now(binding(), &creds()).expect("seal");
    let bytes = engine.decode(&sealed.0[4..]).expect("decode");
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            let tampered = StoredCredentials(format!("pv1.{}", engine.encode(&b)));
            assert!(
                v.open_now(binding(), &tampered).is_err(),
                "byte {i} ^ {flip:#x} opened"
            );
        }
    }
    // Truncations and garbage too.
    for cut in [0, 5, 10, sealed.0.len() / 2, sealed.0.len() - 1] {
        let t = StoredCredentials(sealed.0[..cut].to_string());
        assert!(v.open_now(binding(), &t).is_err());
    }
    assert!(v
        .open_now(binding(), &StoredCredentials("pv1.!!!".into()))
        .is_err());
}

#[test]
fn a_blob_does_not_open_under_another_workspace_or_connection() {
    let v = vault();
    let sealed = v.seal_now(binding(), &creds()).expect("seal");
    let other_ws = Binding {
        workspace_id: Uuid::now_v7(),
        ..binding()
    };
    let other_conn = Binding {
        connection_id: Uuid::now_v7(),
        ..binding()
    };
    for b in [other_ws, other_conn] {
        assert!(matches!(
            v.open_now(b, &sealed),
            Err(VaultError::CannotOpen(_))
        ));
    }
}

#[test]
fn an_unknown_key_is_named_in_the_error() {
    let old = LocalVault::new(MasterKey::from_bytes(&[1u8; 32]));
    let sealed = old.seal_now(binding(), &creds()).expect("seal");
    let old_id = old.current_key_id().expect("id");
    let err = vault().open_now(binding(), &sealed).unwrap_err();
    assert_eq!(err, VaultError::UnknownKey(old_id));
    assert!(err.to_string().contains(&old_id.to_string()), "{err}");
    // With the old key among the previous ones it opens, and rewraps under the new key.
    let ring = vault().with_previous([MasterKey::from_bytes(&[1u8; 32])]);
    assert_eq!(ring.open_now(binding(), &sealed).expect("open"), creds());
    let rewrapped = ring
        .rewrap_now(binding(), &sealed)
        .expect("rewrap")
        .expect("changed");
    assert_eq!(format::key_id_of(&rewrapped.0), ring.current_key_id());
    assert_eq!(
        vault()
            .open_now(binding(), &rewrapped)
            .expect("open with new only"),
        creds()
    );
    assert_eq!(
        ring.rewrap_now(binding(), &rewrapped).expect("rewrap"),
        None,
        "already current"
    );
    // The payload is not re-encrypted: the tail after the wrapped key is unchanged.
    assert_eq!(sealed.0.len(), rewrapped.0.len());
}

#[test]
fn without_a_key_nothing_is_sealed_but_plaintext_still_reads() {
    let v = LocalVault::without_key();
    assert_eq!(
        v.seal_now(binding(), &creds()).unwrap_err(),
        VaultError::NoKey
    );
    assert!(VaultError::NoKey.to_string().contains("pandora keygen"));
    let legacy = StoredCredentials(r#"{"api_key":"legacy"}"#.into());
    assert_eq!(CredentialState::of(&legacy), CredentialState::Plaintext);
    let opened = v.open_now(binding(), &legacy).expect("legacy");
    assert_eq!(opened.expose_json().expect("json")["api_key"], "legacy");
    assert_eq!(
        CredentialState::of(&StoredCredentials("garbage".into())),
        CredentialState::Unreadable
    );
}

#[test]
fn hundred_thousand_seals_draw_distinct_nonces_and_data_keys() {
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = [9u8; 32];
    let v = LocalVault::new(MasterKey::from_bytes(&key));
    let master = Aes256Gcm::new((&key).into());
    let plaintext = Credentials::from_bytes(b"{}".to_vec());
    let (mut nonces, mut data_keys) = (HashSet::new(), HashSet::new());
    for _ in 0..100_000 {
        let sealed = v.seal_now(binding(), &plaintext).expect("seal");
        let b = engine.decode(&sealed.0[4..]).expect("decode");
        assert!(nonces.insert(b[9..21].to_vec()), "wrap nonce repeated");
        assert!(nonces.insert(b[69..81].to_vec()), "data nonce repeated");
        let mut aad = b"pandora/data-key".to_vec();
        aad.push(1);
        aad.extend_from_slice(&b[1..9]);
        aad.extend_from_slice(binding().workspace_id.as_bytes());
        aad.extend_from_slice(binding().connection_id.as_bytes());
        let dk = master
            .decrypt(
                Nonce::from_slice(&b[9..21]),
                Payload {
                    msg: &b[21..69],
                    aad: &aad,
                },
            )
            .expect("unwrap");
        assert!(data_keys.insert(dk), "data key repeated");
    }
    assert_eq!(data_keys.len(), 100_000);
    assert_eq!(nonces.len(), 200_000);
}

#[test]
fn key_configuration_errors_are_one_line_naming_the_variable() {
    let short = "ab".repeat(31) + "a";
    let e = LocalVault::from_values(Some(&short), None).unwrap_err();
    let line = e.to_string();
    assert!(line.starts_with("CREDENTIAL_ENCRYPTION_KEY "), "{line}");
    assert!(
        line.contains("63 characters") && line.contains("pandora keygen"),
        "{line}"
    );
    assert!(!line.contains('\n'));
    let nonhex = "z".repeat(64);
    let line = LocalVault::from_values(Some(&nonhex), None)
        .unwrap_err()
        .to_string();
    assert!(line.contains("non-hex"), "{line}");
    let good = MasterKey::generate_hex();
    let line = LocalVault::from_values(Some(&good), Some(&format!("{},xyz", *good)))
        .unwrap_err()
        .to_string();
    assert!(
        line.starts_with("CREDENTIAL_ENCRYPTION_KEY_PREVIOUS entry 2"),
        "{line}"
    );
    let ring = LocalVault::from_values(
        Some(&good),
        Some(&format!(" {} ,", MasterKey::generate_hex().as_str())),
    )
    .expect("ring");
    assert_eq!(ring.key_ids().len(), 2);
    assert!(!LocalVault::from_values(None, None)
        .expect("no key")
        .has_key());
    assert!(!LocalVault::from_values(Some("  "), None)
        .expect("blank")
        .has_key());
}

fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn any_credential_json_round_trips(value in json_value()) {
        let v = vault();
        let c = Credentials::from_json(&value);
        let sealed = v.seal_now(binding(), &c).expect("seal");
        let opened = v.open_now(binding(), &sealed).expect("open");
        proptest::prop_assert_eq!(opened.expose_json().expect("json"), value);
    }
}

//! Median time to seal and to open one credential with the local vault.
//!
//! `cargo bench -p pandora-core --bench vault` (`PANDORA_BENCH_SAMPLES` to change the sample count).

use std::time::Instant;

use pandora_core::vault::{Binding, Credentials, LocalVault, MasterKey};
use uuid::Uuid;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let samples: usize = std::env::var("PANDORA_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let vault = LocalVault::new(MasterKey::from_bytes(&[7u8; 32]));
    let binding = Binding {
        workspace_id: Uuid::now_v7(),
        connection_id: Uuid::now_v7(),
    };
    // A realistic OAuth credential (~300 bytes of JSON).
    let creds = Credentials::from_json(&serde_json::json!({
        "access_token": "CJT4xYqGMhIHAAEAQAAAARi8wIkBIJaQ2wEoxPbcATIU".repeat(3),
        "refresh_token": "na1-6d8c-5f4e-4b7d-9b1a-0f2e3d4c5b6a",
        "expires_at": "2026-11-25T12:30:00Z",
        "instance_url": "https://example.my.salesforce.com"
    }));
    let mut sealed = Vec::with_capacity(samples);
    let mut seal_ns = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let s = vault.seal_now(binding, &creds).expect("seal");
        seal_ns.push(t.elapsed().as_nanos() as f64);
        sealed.push(s);
    }
    let mut open_ns = Vec::with_capacity(samples);
    for s in &sealed {
        let t = Instant::now();
        let c = vault.open_now(binding, s).expect("open");
        open_ns.push(t.elapsed().as_nanos() as f64);
        std::hint::black_box(c);
    }
    // Baseline in the same run: one SHA-256 of the same plaintext.
    let mut sha_ns = Vec::with_capacity(samples);
    for _ in 0..samples {
        use sha2::Digest;
        let t = Instant::now();
        std::hint::black_box(sha2::Sha256::digest(creds.expose_bytes()));
        sha_ns.push(t.elapsed().as_nanos() as f64);
    }
    let (seal, open, sha) = (median(seal_ns), median(open_ns), median(sha_ns));
    println!(
        "vault ({samples} samples, {} byte credential)",
        creds.expose_bytes().len()
    );
    println!("  seal  median {:>8.2} µs", seal / 1000.0);
    println!("  open  median {:>8.2} µs", open / 1000.0);
    println!(
        "  baseline sha256 of the plaintext {:>8.2} µs (seal/sha256 = {:.1}x)",
        sha / 1000.0,
        seal / sha
    );
}

//! Single-thread throughput of vault decrypt and encrypt on a ~400-byte token set.
//! Run with `cargo bench -p patchbay-token-vault`; no harness, so it builds fast and prints plain lines.

use patchbay_token_vault::{Aad, KeyRing, Purpose, Vault};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUN_FOR: Duration = Duration::from_secs(2);
const DECRYPT_TARGET: f64 = 200_000.0;

fn main() {
    let (ring, _text) = KeyRing::generate();
    let vault = Vault::new(ring);
    let aad = Aad::connection(Purpose::TokenSet, [0x11; 16], [0x22; 16]);
    let plaintext = token_set();
    let blob = vault.encrypt(&plaintext, &aad);
    assert_eq!(vault.decrypt(&blob, &aad).unwrap().as_slice(), plaintext.as_slice());
    println!(
        "plaintext {} bytes, envelope {} bytes, one thread, ~{}s per measurement",
        plaintext.len(),
        blob.len(),
        RUN_FOR.as_secs()
    );

    // Warm up caches and the CPU clock before measuring.
    ops_per_second(Duration::from_millis(300), || drop(black_box(vault.decrypt(black_box(&blob), &aad))));

    let decrypt = ops_per_second(RUN_FOR, || drop(black_box(vault.decrypt(black_box(&blob), &aad))));
    let verdict = if decrypt >= DECRYPT_TARGET { "ok" } else { "BELOW TARGET" };
    println!("vault decrypt: {decrypt:.0} ops/s (target ≥ {DECRYPT_TARGET:.0}) {verdict}");

    let encrypt = ops_per_second(RUN_FOR, || drop(black_box(vault.encrypt(black_box(&plaintext), &aad))));
    println!("vault encrypt: {encrypt:.0} ops/s (fresh OsRng nonce each)");
}

/// Calls `op` in batches until `duration` has passed; returns calls per second.
fn ops_per_second(duration: Duration, mut op: impl FnMut()) -> f64 {
    const BATCH: u64 = 1_000;
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < duration {
        for _ in 0..BATCH {
            op();
        }
        done += BATCH;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// A realistic token response stored as one value: ~400 bytes of JSON.
fn token_set() -> Vec<u8> {
    let access = format!("ya29.{}", "A".repeat(160));
    let refresh = format!("1//0g{}", "R".repeat(98));
    format!(
        r#"{{"access_token":"{access}","refresh_token":"{refresh}","token_type":"Bearer","expires_at":"2030-01-01T00:00:00Z","scope":"openid email https://www.googleapis.com/auth/calendar.readonly"}}"#
    )
    .into_bytes()
}

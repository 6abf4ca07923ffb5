//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the
//! directory at compile time and cannot tell Cargo about it on stable Rust.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
}

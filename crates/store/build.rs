//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the
//! `migrations` directory at compile time, and cargo does not otherwise know that a
//! new file there changes the crate (a build without this kept the old schema).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

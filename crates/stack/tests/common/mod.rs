//! Helpers shared by the stack checks: facts read from the workspace `Cargo.toml`
//! (without a TOML parser: the few keys needed are one-liners) and image references.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

use serde_norway::Value;

/// The root `Cargo.toml` as text.
fn cargo_toml() -> String {
    let path = vigil_stack::repo_root().join("Cargo.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A `key = "value"` line of the `[workspace.package]` table.
fn workspace_package(key: &str) -> String {
    let text = cargo_toml();
    let table = text
        .split("\n[")
        .find(|t| t.starts_with("workspace.package]"))
        .expect("Cargo.toml has [workspace.package]");
    table
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("[workspace.package] has no {key}"))
}

/// The workspace version (`0.1.0`): the tag of the images built from this tree.
pub fn workspace_version() -> String {
    workspace_package("version")
}

/// The minimum Rust version (`1.94`).
pub fn rust_version() -> String {
    workspace_package("rust-version")
}

/// Paths of the workspace members (`crates/vigil`, `bench/hello`, …).
pub fn workspace_members() -> Vec<String> {
    let text = cargo_toml();
    let start = text.find("members").expect("Cargo.toml has members");
    let list = &text[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// An image reference split into name and tag; `None` tag when there is none.
/// A registry port (`localhost:5000/x`) is not mistaken for a tag.
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    let image = image.split('@').next().unwrap();
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], Some(&image[slash + i + 1..])),
        None => (image, None),
    }
}

/// Why `image` is not pinned to an exact version, or `None` when it is: a digest, or a
/// tag naming at least `major.minor` (`v2.53.4`, `12.12-slim`) — never `latest`, a bare
/// name, a codename or a major-only tag that moves under you.
pub fn unpinned(image: &str) -> Option<String> {
    if image.contains('$') {
        return Some(format!("{image}: variable in the image reference"));
    }
    if image.contains("@sha256:") {
        return None;
    }
    let (_, tag) = split_image(image);
    let Some(tag) = tag else {
        return Some(format!("{image}: no tag"));
    };
    if tag == "latest" {
        return Some(format!("{image}: `latest`"));
    }
    let version = tag.trim_start_matches('v');
    let numeric: Vec<&str> = version
        .split(['-', '_'])
        .next()
        .unwrap()
        .split('.')
        .collect();
    if numeric.len() < 2 || numeric.iter().any(|p| p.parse::<u32>().is_err()) {
        return Some(format!("{image}: tag {tag:?} is not an exact version"));
    }
    None
}

/// `v[key]` as a string, or a panic naming `what`.
pub fn str_at<'a>(v: &'a Value, key: &str, what: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: `{key}` is not a string: {:?}", v[key]))
}

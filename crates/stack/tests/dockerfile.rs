//! Checks of the `Dockerfile` and `.dockerignore`: a multi-stage build from pinned
//! images, `cargo build --release --locked -p vigil` on the workspace's Rust, a final
//! stage without the toolchain that runs vigil as a non-root user with a /data
//! volume it owns, and a build context that leaves target/ out but keeps everything
//! the build needs.

mod common;

use vigil_stack::repo_root;

/// One instruction, continuation lines joined and comments dropped.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// A build stage: its base image, its name and its instructions after `FROM`.
#[derive(Debug)]
struct Stage {
    image: String,
    alias: Option<String>,
    body: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.body
            .iter()
            .filter(move |i| i.keyword == keyword)
            .map(|i| i.args.as_str())
    }

    fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last()
    }
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue; // comments (also inside continuations) and blank lines
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let full = std::mem::take(&mut current);
                let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_string(),
                });
            }
        }
    }
    assert!(
        current.trim().is_empty(),
        "Dockerfile ends inside a continuation"
    );
    out
}

fn stages() -> Vec<Stage> {
    let path = repo_root().join("Dockerfile");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(&text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let alias = match words.as_slice() {
                [_, as_, alias] if as_.eq_ignore_ascii_case("as") => Some(alias.to_string()),
                [_] => None,
                other => panic!("FROM {other:?}"),
            };
            stages.push(Stage {
                image: words[0].to_string(),
                alias,
                body: Vec::new(),
            });
        } else {
            let stage = stages
                .last_mut()
                .unwrap_or_else(|| panic!("{instruction:?} before the first FROM"));
            stage.body.push(instruction);
        }
    }
    stages
}

/// The JSON (exec) form of ENTRYPOINT/CMD as a list of strings.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not exec form: {args}: {e}"))
}

#[test]
fn image_pinning_rules() {
    assert_eq!(common::unpinned("prom/prometheus:v2.53.4"), None);
    assert_eq!(common::unpinned("debian:12.12-slim"), None);
    assert_eq!(common::unpinned("localhost:5000/vigil:0.1.0"), None);
    assert_eq!(common::unpinned("rust@sha256:abcd"), None);
    for bad in [
        "prom/prometheus",
        "prom/prometheus:latest",
        "debian:bookworm-slim",
        "grafana/loki:3",
        "localhost:5000/vigil",
        "rust:${RUST}",
    ] {
        assert!(common::unpinned(bad).is_some(), "{bad} passed as pinned");
    }
}

#[test]
fn multi_stage_build() {
    let stages = stages();
    assert!(stages.len() >= 2, "{} FROM lines", stages.len());
    // Later stages refer to earlier ones by name, not by index.
    for stage in &stages[..stages.len() - 1] {
        assert!(
            stage.alias.is_some(),
            "stage FROM {} has no name",
            stage.image
        );
    }
}

#[test]
fn every_base_image_is_pinned() {
    let stages = stages();
    let mut aliases = Vec::new();
    for stage in &stages {
        if !aliases.contains(&stage.image)
            && let Some(why) = common::unpinned(&stage.image)
        {
            panic!("FROM {why}");
        }
        // COPY --from=<image> pulls an image too.
        for copy in stage.all("COPY") {
            for from in copy
                .split_whitespace()
                .filter_map(|w| w.strip_prefix("--from="))
            {
                let image = !aliases.iter().any(|a| a == from) && from.parse::<usize>().is_err();
                if image && let Some(why) = common::unpinned(from) {
                    panic!("COPY --from={why}");
                }
            }
        }
        aliases.extend(stage.alias.clone());
    }
}

/// The stage that runs `cargo build`.
fn build_stage(stages: &[Stage]) -> &Stage {
    stages
        .iter()
        .find(|s| s.all("RUN").any(|r| r.contains("cargo build")))
        .expect("a stage runs cargo build")
}

#[test]
fn builds_vigil_locked_in_release() {
    let stages = stages();
    let run = build_stage(&stages)
        .all("RUN")
        .find(|r| r.contains("cargo build"))
        .unwrap();
    let words: Vec<&str> = run.split_whitespace().collect();
    for flag in ["--release", "--locked"] {
        assert!(words.contains(&flag), "cargo build without {flag}: {run}");
    }
    let package = words
        .windows(2)
        .any(|w| matches!(w[0], "-p" | "--package") && w[1] == "vigil")
        || words.contains(&"--package=vigil");
    assert!(package, "cargo build does not select -p vigil: {run}");
}

#[test]
fn build_stage_uses_the_workspace_rust_version() {
    let stages = stages();
    let image = &build_stage(&stages).image;
    let (name, tag) = common::split_image(image);
    assert!(
        name == "rust" || name.ends_with("/rust"),
        "build image {image}"
    );
    let tag = tag.expect("tagged");
    let rust = common::rust_version();
    assert!(
        tag == rust || tag.starts_with(&format!("{rust}.")) || tag.starts_with(&format!("{rust}-")),
        "build image {image} is not Rust {rust} (rust-version in Cargo.toml)"
    );
}

#[test]
fn final_stage_runs_as_a_non_root_user_that_owns_data() {
    let stages = stages();
    let last = stages.last().unwrap();
    let user = last.last("USER").expect("the final stage sets USER");
    let name = user.split(':').next().unwrap();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "final stage runs as {user}"
    );
    // Kubernetes' runAsNonRoot can only verify a numeric user.
    let uid: u32 = name
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} is not numeric"));
    assert_ne!(uid, 0);
    let volumes = last.all("VOLUME").collect::<Vec<_>>().join(" ");
    assert!(volumes.contains("/data"), "no /data volume");
    let owned = last
        .all("RUN")
        .any(|r| r.contains("chown") && r.contains(&format!("{uid}:")) && r.contains("/data"));
    assert!(
        owned,
        "/data is not chowned to {uid}: vigil could not write there"
    );
}

#[test]
fn final_stage_is_minimal_and_runs_vigil() {
    let stages = stages();
    let last = stages.last().unwrap();
    let (base, _) = common::split_image(&last.image);
    assert!(
        !base.contains("rust"),
        "the final stage ships a toolchain: {}",
        last.image
    );
    let build = build_stage(&stages).alias.clone().unwrap();
    let copies_binary = last
        .all("COPY")
        .any(|c| c.contains(&format!("--from={build}")) && c.contains("vigil"));
    assert!(
        copies_binary,
        "the final stage does not copy vigil from {build}"
    );
    assert_eq!(
        exec_form(last.last("ENTRYPOINT").expect("ENTRYPOINT")),
        ["vigil"]
    );
    assert_eq!(
        exec_form(last.last("CMD").expect("CMD")),
        ["up", "--host", "0.0.0.0"]
    );
    let exposed: Vec<&str> = last.all("EXPOSE").flat_map(str::split_whitespace).collect();
    for port in ["8000", "8001"] {
        assert!(
            exposed.contains(&port),
            "port {port} not exposed: {exposed:?}"
        );
    }
}

#[test]
fn healthcheck_uses_a_tool_the_image_has() {
    let stages = stages();
    let last = stages.last().unwrap();
    let check = last.last("HEALTHCHECK").expect("HEALTHCHECK");
    let (_, command) = check.split_once("CMD").expect("HEALTHCHECK CMD …");
    assert!(
        command.contains("/health/ready"),
        "health check does not probe readiness"
    );
    let tool = command.split_whitespace().next().unwrap();
    let installed = last
        .all("RUN")
        .any(|r| r.contains("install") && r.split_whitespace().any(|w| w == tool));
    assert!(
        installed,
        "the health check runs {tool}, which the final stage does not install"
    );
}

/// Whether `.dockerignore` leaves `path` out of the build context (Docker semantics:
/// patterns anchored at the root, `*`/`**` globs, later `!` patterns re-include; a
/// matching parent directory excludes everything under it).
fn ignored(patterns: &[String], path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    let mut excluded = false;
    for pattern in patterns {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
        let hit = (1..=segments.len()).any(|n| glob(&pattern, &segments[..n]));
        if hit {
            excluded = !negated;
        }
    }
    excluded
}

fn glob(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            glob(&pattern[1..], path) || (!path.is_empty() && glob(pattern, &path[1..]))
        }
        (Some(p), Some(s)) => {
            segment(p.as_bytes(), s.as_bytes()) && glob(&pattern[1..], &path[1..])
        }
        _ => false,
    }
}

fn segment(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => segment(&p[1..], s) || (!s.is_empty() && segment(p, &s[1..])),
        (Some(b'?'), Some(_)) => segment(&p[1..], &s[1..]),
        (Some(a), Some(b)) => a == b && segment(&p[1..], &s[1..]),
        _ => false,
    }
}

fn dockerignore() -> Vec<String> {
    let path = repo_root().join(".dockerignore");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn dockerignore_matcher() {
    let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(ignored(&p(&["target/"]), "target/release/vigil"));
    assert!(!ignored(&p(&["target/"]), "crates/target.rs"));
    assert!(ignored(&p(&["**/*.pyc"]), "scripts/x.pyc"));
    assert!(!ignored(&p(&["*.log"]), "crates/a.log"));
    assert!(!ignored(
        &p(&["bench", "!bench/hello"]),
        "bench/hello/Cargo.toml"
    ));
    assert!(ignored(&p(&["bench", "!bench/hello"]), "bench/http.sh"));
}

#[test]
fn build_context_leaves_out_target_and_keeps_the_sources() {
    let patterns = dockerignore();
    // 40 GB of build output, local databases, history.
    for path in ["target/release/vigil", "data/vigil.db", ".git/HEAD"] {
        assert!(
            ignored(&patterns, path),
            "{path} is sent to the Docker daemon"
        );
    }
    // cargo loads every workspace member; the models are include_bytes!'d; the store
    // embeds its migrations.
    let mut needed: Vec<String> = ["Cargo.toml", "Cargo.lock", "crates/store/migrations"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for member in common::workspace_members() {
        needed.push(format!("{member}/Cargo.toml"));
        needed.push(format!("{member}/src"));
    }
    for entry in std::fs::read_dir(repo_root().join("models")).unwrap() {
        let model = entry.unwrap().file_name().into_string().unwrap();
        needed.push(format!("models/{model}/model.onnx"));
        needed.push(format!("models/{model}/model.toml"));
    }
    for path in needed {
        assert!(repo_root().join(&path).exists(), "{path} does not exist");
        assert!(
            !ignored(&patterns, &path),
            ".dockerignore leaves out {path}, which the build needs"
        );
    }
}

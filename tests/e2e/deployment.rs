//! The deployment files stay in step with the workspace: the Dockerfile's
//! build stage must copy every workspace member, or `cargo build` inside
//! the image stops at "failed to load manifest for workspace member" (it
//! did once, when `bench` joined the workspace after the Dockerfile was
//! written). No Docker engine runs here, so this reads the files.

use std::path::Path;

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The top-level folders of the workspace's `members` globs.
fn member_roots() -> Vec<String> {
    let manifest = repo_file("Cargo.toml");
    let members = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = "))
        .expect("Cargo.toml has a members line");
    members
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| m.split('/').next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_dockerfile_copies_every_workspace_member() {
    let dockerfile = repo_file("Dockerfile");
    let roots = member_roots();
    assert!(roots.contains(&"crates".to_owned()), "{roots:?}");
    for root in roots {
        assert!(
            dockerfile
                .lines()
                .any(|l| l.trim() == format!("COPY {root} {root}")),
            "the Dockerfile's build stage does not copy workspace member folder {root}/"
        );
    }
}

#[test]
fn compose_builds_the_image_from_the_dockerfile_and_checks_readiness() {
    let compose = repo_file("docker-compose.yml");
    assert!(
        compose.contains("build: ."),
        "compose builds from ./Dockerfile"
    );
    assert!(
        compose.contains("/readyz"),
        "compose health checks use /readyz"
    );
    assert!(compose.contains("HUSH_STORAGE__BACKEND: postgres"));
}

//! The krew manifest and the release archive: structure, and that the archive's layout matches
//! the manifest's `files` and `bin`.

use std::path::PathBuf;
use std::process::Command;

use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest(path: &PathBuf) -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The manifest as krew reads it: YAML to JSON first (sigs.k8s.io/yaml), then into typed
/// fields, so every string field must be a JSON string (an unquoted all-digit hash is a number).
fn krew_json(path: &PathBuf) -> serde_json::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check_krew_strings(m: &serde_json::Value) {
    for p in m["spec"]["platforms"].as_array().unwrap() {
        for field in ["uri", "sha256", "bin"] {
            assert!(p[field].is_string(), "spec.platforms[].{field} must be a string for krew: {}", p[field]);
        }
    }
    for field in ["version", "homepage", "shortDescription"] {
        assert!(m["spec"][field].is_string(), "spec.{field}");
    }
}

fn check_structure(m: &Value, version: &str) {
    assert_eq!(m["apiVersion"].as_str(), Some("krew.googlecontainertools.github.com/v1alpha2"));
    assert_eq!(m["kind"].as_str(), Some("Plugin"));
    assert_eq!(m["metadata"]["name"].as_str(), Some("grayscale"));
    let spec = &m["spec"];
    assert_eq!(spec["version"].as_str(), Some(format!("v{version}").as_str()));
    for field in ["homepage", "shortDescription", "description", "caveats"] {
        assert!(spec[field].as_str().is_some_and(|s| !s.trim().is_empty()), "spec.{field}");
    }
    assert!(spec["shortDescription"].as_str().unwrap().len() <= 50);
    let platforms = spec["platforms"].as_sequence().unwrap();
    let mut seen = Vec::new();
    for p in platforms {
        let os = p["selector"]["matchLabels"]["os"].as_str().unwrap();
        let arch = p["selector"]["matchLabels"]["arch"].as_str().unwrap();
        seen.push(format!("{os}/{arch}"));
        let uri = p["uri"].as_str().unwrap();
        assert!(uri.starts_with("https://"), "{uri}");
        assert!(uri.ends_with(&format!("kubectl-grayscale-v{version}-{os}-{arch}.tar.gz")), "{uri}");
        let sha = p["sha256"].as_str().unwrap();
        assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{sha}");
        let bin = p["bin"].as_str().unwrap();
        assert_eq!(bin, if os == "windows" { "kubectl-grayscale.exe" } else { "kubectl-grayscale" });
        let from: Vec<&str> =
            p["files"].as_sequence().unwrap().iter().map(|f| f["from"].as_str().unwrap()).collect();
        assert!(from.contains(&bin) && from.contains(&"LICENSE"), "{from:?}");
    }
    seen.sort();
    assert_eq!(
        seen,
        ["darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64", "windows/amd64", "windows/arm64"]
    );
}

#[test]
fn the_committed_manifest_is_a_valid_krew_plugin_for_six_platforms() {
    let path = repo().join("plugin-manifest/grayscale.yaml");
    check_krew_strings(&krew_json(&path));
    check_structure(&manifest(&path), env!("CARGO_PKG_VERSION"));
}

#[test]
fn the_package_script_builds_an_archive_matching_the_rendered_manifest() {
    let version = "9.8.7";
    let out = Command::new("bash")
        .arg(repo().join("hack/package.sh"))
        .arg(version)
        .env("PACKAGE_BINARY", env!("CARGO_BIN_EXE_kubectl-grayscale"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let archive = repo().join(format!("dist/kubectl-grayscale-v{version}-{os}-{arch}.tar.gz"));
    let rendered = manifest(&repo().join("dist/grayscale.yaml"));
    check_krew_strings(&krew_json(&repo().join("dist/grayscale.yaml")));
    check_structure(&rendered, version);
    let sha = Command::new("sha256sum").arg(&archive).output().unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap().to_string();
    let host = rendered["spec"]["platforms"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| {
            p["selector"]["matchLabels"]["os"].as_str() == Some(os)
                && p["selector"]["matchLabels"]["arch"].as_str() == Some(arch)
        })
        .unwrap()
        .clone();
    assert_eq!(host["sha256"].as_str(), Some(sha.as_str()));
    let list = Command::new("tar").arg("tzf").arg(&archive).output().unwrap();
    let mut entries: Vec<String> =
        String::from_utf8_lossy(&list.stdout).lines().map(str::to_string).collect();
    entries.sort();
    let mut files: Vec<String> = host["files"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| f["from"].as_str().unwrap().to_string())
        .collect();
    files.sort();
    assert_eq!(entries, files, "the archive holds exactly the manifest's files");
    assert!(entries.contains(&host["bin"].as_str().unwrap().to_string()));
}

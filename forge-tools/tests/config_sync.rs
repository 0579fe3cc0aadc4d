//! `deploy/forge.env.example` and the README list exactly the variables the config code reads.

use std::collections::BTreeSet;

use forge_tools::config::{Config, VARIABLES};

fn listed_in(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .filter(|k| {
            k.starts_with("FORGE_") && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .collect()
}

#[test]
fn env_example_lists_every_variable() {
    let text = include_str!("../../deploy/forge.env.example");
    let listed = listed_in(text);
    let known: BTreeSet<String> = VARIABLES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        listed, known,
        "deploy/forge.env.example and config::VARIABLES differ"
    );
}

#[test]
fn every_config_field_has_its_variable() {
    let json = serde_json::to_value(Config::default()).expect("config serializes");
    let fields: BTreeSet<String> = json
        .as_object()
        .expect("object")
        .keys()
        .map(|k| format!("FORGE_{}", k.to_uppercase()))
        .collect();
    let known: BTreeSet<String> = VARIABLES.iter().map(|s| (*s).to_owned()).collect();
    let extra: BTreeSet<String> = ["FORGE_CONFIG", "FORGE_LOG", "FORGE_LOG_FORMAT"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(fields, known.difference(&extra).cloned().collect());
}

#[test]
fn readme_documents_every_variable() {
    let readme = include_str!("../../README.md");
    for v in VARIABLES {
        assert!(
            readme.contains(&format!("`{v}`")),
            "README.md does not document {v}"
        );
    }
}

//! A test of the module graph drawn in `main.rs`: a command imports only the shared modules
//! (`flags`, `output`, `progress`, `secrets`, `settings`, `shutdown`), never another command,
//! `cli` or `main`; of the shared modules only `flags` imports others (`secrets`,
//! `settings`). It reads this crate's sources as text; it runs nothing else.

use std::{fs, path::Path};

/// The modules every command may use, and what each of them may import from this crate.
const SHARED: [(&str, &[&str]); 6] = [
    ("flags", &["secrets", "settings"]),
    ("output", &[]),
    ("progress", &[]),
    ("secrets", &[]),
    ("settings", &[]),
    ("shutdown", &[]),
];

fn source(module: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(format!("{module}.rs"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The `crate::` modules `src` names (the first segment after `crate::`, braces expanded one
/// level: `use crate::{a, b::c}` names `a` and `b`).
fn crate_modules(src: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in src.match_indices("crate::") {
        let rest = &src[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find(';').unwrap_or(group.len())];
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => found.push(std::mem::take(&mut item)),
                    _ => item.push(c),
                }
            }
            found.push(item);
        } else {
            found.push(rest.to_owned());
        }
    }
    found
        .iter()
        .map(|m| {
            m.trim()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn no_command_imports_another_command_or_the_top() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    let commands: Vec<String> = fs::read_dir(&dir)
        .expect("src/commands")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".rs").map(str::to_owned))
        .filter(|f| f != "mod")
        .collect();
    assert!(commands.len() >= 8, "{commands:?}");
    let shared: Vec<&str> = SHARED.iter().map(|(m, _)| *m).collect();
    for command in &commands {
        let src = source(&format!("commands/{command}"));
        for used in crate_modules(&src) {
            assert!(
                shared.contains(&used.as_str()),
                "commands::{command} imports crate::{used}; a command uses only {shared:?}"
            );
        }
        for other in commands.iter().filter(|o| *o != command) {
            assert!(
                !src.contains(&format!("super::{other}")),
                "commands::{command} imports commands::{other}"
            );
        }
    }
}

#[test]
fn shared_modules_import_no_command() {
    for (module, allowed) in SHARED {
        for used in crate_modules(&source(module)) {
            assert!(
                allowed.contains(&used.as_str()),
                "{module} imports crate::{used}; it may import only {allowed:?}"
            );
        }
    }
}

#[test]
fn crate_modules_reads_grouped_imports() {
    assert_eq!(
        crate_modules(
            "use crate::{\n    flags::{A, B},\n    output::{self, C},\n    shutdown,\n};"
        ),
        ["flags", "output", "shutdown"]
    );
    assert_eq!(crate_modules("let k = crate::flags::key();"), ["flags"]);
}

//! docs/REFERENCE.md against the binary's own `--help`: every environment variable a
//! subcommand reads is a row of the "Variables" table, and every subcommand, nested ones
//! included, is named in "Subcommands". What the reference marks as not yet available must
//! not exist in the binary, so the mark goes when the feature comes.
//!
//! It reads only `--help` output, never the CLI's source, so it keeps working however the
//! flags are organised in code.

use std::{collections::BTreeSet, path::Path, process::Command};

/// The binary under test, built by Cargo for this test run.
const BIN: &str = env!("CARGO_BIN_EXE_wa-onboard");

/// The exact words docs/REFERENCE.md puts on what it specifies but this version lacks.
const NOT_YET: &str = "*Not yet available in this version.*";

/// What the binary's help says: every subcommand path and every `[env: NAME]`.
#[derive(Default)]
struct Help {
    commands: BTreeSet<String>,
    vars: BTreeSet<String>,
}

/// `wa-onboard <path…> --help`, with an empty environment so no value leaks in.
fn help_text(path: &[String]) -> String {
    let output = Command::new(BIN)
        .args(path)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run wa-onboard --help");
    assert!(
        output.status.success(),
        "`wa-onboard {} --help` failed: {}",
        path.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The names listed under `Commands:` (clap's own `help` left out).
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every `NAME` of `[env: NAME=…]` or `[env: NAME]` (secrets hide their value).
fn env_vars(text: &str) -> Vec<String> {
    text.split("[env:")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Walks the subcommand tree from `path`.
fn collect(path: &mut Vec<String>, help: &mut Help) {
    let text = help_text(path);
    help.vars.extend(env_vars(&text));
    if !path.is_empty() {
        help.commands.insert(path.join(" "));
    }
    for name in subcommands(&text) {
        path.push(name);
        collect(path, help);
        path.pop();
    }
}

fn reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/REFERENCE.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of `## <title>`, up to the next `## ` heading.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let heading = format!("\n## {title}\n");
    let start = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/REFERENCE.md has no `## {title}` section"))
        + heading.len();
    let body = &doc[start..];
    body.find("\n## ").map_or(body, |end| &body[..end])
}

/// Table rows of a section: (first cell, whole row).
fn rows(section: &str) -> impl Iterator<Item = (&str, &str)> {
    section
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("|---"))
        .filter_map(|line| Some((line.split(" | ").next()?.trim_start_matches("| "), line)))
}

/// The backticked words of a cell: `` `A`, `B` `` gives `A`, `B`.
fn backticked(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('`').skip(1).step_by(2)
}

#[test]
fn every_variable_and_subcommand_of_the_help_is_in_the_reference() {
    let mut help = Help::default();
    collect(&mut Vec::new(), &mut help);
    assert!(
        help.commands.contains("tenants get"),
        "nested subcommands are walked"
    );
    assert!(
        help.vars.contains("WA_APP_SECRET"),
        "hidden values are read too"
    );

    let doc = reference();
    let variables = section(&doc, "Variables");
    let documented: BTreeSet<&str> = rows(variables)
        .flat_map(|(first, _)| backticked(first))
        .collect();
    let missing: Vec<_> = help
        .vars
        .iter()
        .filter(|v| !documented.contains(v.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "variables of `--help` missing from the Variables table of docs/REFERENCE.md: {missing:?}"
    );

    let commands = section(&doc, "Subcommands");
    let missing: Vec<_> = help
        .commands
        .iter()
        .filter(|c| !commands.contains(&format!("`{c}`")) && !commands.contains(&format!("`{c} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "subcommands missing from the Subcommands section of docs/REFERENCE.md: {missing:?}"
    );
}

#[test]
fn what_the_reference_calls_not_yet_available_is_not_in_the_binary() {
    let mut help = Help::default();
    collect(&mut Vec::new(), &mut help);
    let doc = reference();

    let announced: Vec<&str> = rows(section(&doc, "Variables"))
        .filter(|(_, row)| row.contains(NOT_YET))
        .flat_map(|(first, _)| backticked(first))
        .collect();
    assert_eq!(
        announced.is_empty(),
        !section(&doc, "Variables").contains(NOT_YET),
        "the marker is found wherever the Variables table has it"
    );
    let built: Vec<_> = announced
        .iter()
        .filter(|v| help.vars.contains(**v))
        .collect();
    assert!(
        built.is_empty(),
        "docs/REFERENCE.md says these variables are not yet available, but `--help` lists \
         them: {built:?}"
    );

    let built: Vec<_> = rows(section(&doc, "Subcommands"))
        .filter(|(_, row)| row.contains(NOT_YET))
        .filter_map(|(first, _)| backticked(first).next()?.split_whitespace().next())
        .filter(|command| help.commands.contains(*command))
        .collect();
    assert!(
        built.is_empty(),
        "docs/REFERENCE.md says these subcommands are not yet available, but `--help` lists \
         them: {built:?}"
    );
}

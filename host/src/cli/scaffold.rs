//! `weir new`: writes a ready-to-build plugin project for one language and
//! world from the templates under `host/templates/<language>/<world>/` plus
//! the language's `host/templates/<language>/common/` (its `build.sh`),
//! which `build.rs` embeds at compile time.
//!
//! Invariants: every occurrence of `{{name}}`, `{{name_snake}}` (the name
//! with `-` turned into `_`) and `{{world}}` (`validator-plugin` or
//! `transformer-plugin`) is replaced, in file contents and in paths;
//! `wit/plugin.wit` is always the host's own copy of the contract, so a
//! project built from it matches the weir that wrote it; executable template
//! files (`build.sh`) stay executable; nothing is written into a directory
//! that already has something in it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// The contract every generated project is built against.
const PLUGIN_WIT: &str = include_str!("../../../wit/plugin.wit");

/// One embedded template file.
pub struct TemplateFile {
    pub language: &'static str,
    pub world: &'static str,
    /// Relative, `/`-separated, may hold `{{name}}` / `{{name_snake}}`.
    pub path: &'static str,
    pub contents: &'static [u8],
    pub executable: bool,
}

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// Writes a new plugin project, ready to build and test.
#[derive(Parser)]
pub struct New {
    /// The plugin's language.
    #[arg(value_enum)]
    language: Language,
    /// The plugin's name: lowercase letters, digits, `-` and `_`, starting
    /// with a letter (e.g. `order-check`).
    name: String,
    /// Which world the plugin implements.
    #[arg(long, value_enum, default_value_t = WorldArg::Validator)]
    world: WorldArg,
    /// Where to write the project (default: ./<name>); must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Language {
    Rust,
    Python,
    Js,
    C,
    Go,
}

impl Language {
    fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
            Language::C => "c",
            Language::Go => "go",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum WorldArg {
    Validator,
    Transformer,
}

impl WorldArg {
    fn as_str(self) -> &'static str {
        match self {
            WorldArg::Validator => "validator",
            WorldArg::Transformer => "transformer",
        }
    }
}

/// Why a project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "bad plugin name {0:?}: use lowercase letters, digits, `-` and `_`, starting with a letter and ending with a letter or digit (e.g. order-check)"
    )]
    BadName(String),
    #[error("{0} already exists and is not empty: choose another --dir or remove it")]
    NotEmpty(PathBuf),
    #[error("{0} exists and is not a directory")]
    NotADirectory(PathBuf),
    #[error("this weir has no {language} {world} template (it has: {available})")]
    NoTemplate {
        language: &'static str,
        world: &'static str,
        available: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl New {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(&self.name));
        let written = write_project(self.language, self.world, &self.name, &dir)?;
        let snake = snake(&self.name);
        let shown = dir.display();
        println!(
            "created {} {} plugin `{}` in {shown} ({} files)",
            self.language.as_str(),
            self.world.as_str(),
            self.name,
            written.len()
        );
        println!("next:");
        println!("  cd {shown}");
        println!("  ./build.sh          # builds {snake}.wasm");
        println!("  weir test {snake}.wasm --input input.jsonl --expect expected.jsonl");
        println!(
            "then point a pipeline's `plugin =` at {shown}/{snake}.wasm (see README.md there)"
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// `my-plugin` → `my_plugin`.
pub fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// A name that is a valid package name in every language once snake-cased.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.to_string()))
    }
}

/// `templates/<language>/common/` goes into every world's project of that language.
const COMMON: &str = "common";

/// Fills in `{{name}}`, `{{name_snake}}` and `{{world}}` (the WIT world,
/// e.g. `validator-plugin`).
fn substitute(text: &str, name: &str, world: &str) -> String {
    text.replace("{{name_snake}}", &snake(name))
        .replace("{{name}}", name)
        .replace("{{world}}", &format!("{world}-plugin"))
}

/// Writes the project into `dir`; returns the files written.
pub fn write_project(
    language: Language,
    world: WorldArg,
    name: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name)?;
    let (language, world) = (language.as_str(), world.as_str());
    let own = |f: &&TemplateFile| f.language == language && f.world == world;
    if !TEMPLATE_FILES.iter().any(|f| own(&f)) {
        let mut available: Vec<String> = TEMPLATE_FILES
            .iter()
            .filter(|f| f.world != COMMON)
            .map(|f| format!("{} {}", f.language, f.world))
            .collect();
        available.dedup();
        return Err(ScaffoldError::NoTemplate {
            language,
            world,
            available: if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            },
        });
    }
    if dir.exists() {
        if !dir.is_dir() {
            return Err(ScaffoldError::NotADirectory(dir.to_path_buf()));
        }
        let mut entries = std::fs::read_dir(dir).map_err(|source| ScaffoldError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        if entries.next().is_some() {
            return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
        }
    }

    let files = TEMPLATE_FILES
        .iter()
        .filter(|f| own(f) || (f.language == language && f.world == COMMON));
    let mut written = Vec::new();
    let contract = TemplateFile {
        language,
        world,
        path: "wit/plugin.wit",
        contents: PLUGIN_WIT.as_bytes(),
        executable: false,
    };
    for file in files.filter(|f| f.path != contract.path).chain([&contract]) {
        let path = dir.join(substitute(file.path, name, world));
        let contents = match std::str::from_utf8(file.contents) {
            Ok(text) if file.path != contract.path => substitute(text, name, world).into_bytes(),
            _ => file.contents.to_vec(),
        };
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, &contents)?;
            if file.executable {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
            }
            Ok(())
        };
        write(&path).map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "order-check", "v2_filter", "x1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Order", "1st", "-x", "x-", "a b", "a/b", "ü", "a.b"] {
            assert!(
                matches!(check_name(bad), Err(ScaffoldError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn both_names_are_substituted() {
        assert_eq!(
            substitute(
                "{{name}} {{name_snake}}.wasm {{name}} {{world}}",
                "my-plugin",
                "validator"
            ),
            "my-plugin my_plugin.wasm my-plugin validator-plugin"
        );
    }

    #[test]
    fn every_language_template_has_a_build_script_and_a_test() {
        let worlds = TEMPLATE_FILES.iter().filter(|f| f.world != COMMON);
        for (language, world) in worlds.map(|f| (f.language, f.world)) {
            // In the world's own folder or in the language's common one.
            let find = |path: &str| {
                TEMPLATE_FILES.iter().find(|f| {
                    f.language == language
                        && (f.world == world || f.world == COMMON)
                        && f.path == path
                })
            };
            for needed in ["build.sh", "input.jsonl", "expected.jsonl", "README.md"] {
                assert!(
                    find(needed).is_some(),
                    "templates/{language}/{world} has no {needed}"
                );
            }
            assert!(
                find("build.sh").is_some_and(|f| f.executable),
                "templates/{language}/{world}/build.sh is not executable"
            );
        }
    }

    #[test]
    fn a_project_is_written_with_the_contract_and_refuses_a_full_dir() {
        let dir = std::env::temp_dir().join(format!("weir-scaffold-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let written =
            write_project(Language::Rust, WorldArg::Transformer, "my-plugin", &dir).unwrap();
        assert!(written.contains(&dir.join("wit/plugin.wit")));
        let wit = std::fs::read_to_string(dir.join("wit/plugin.wit")).unwrap();
        assert_eq!(wit, PLUGIN_WIT);
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-plugin\""), "{cargo}");
        assert!(!cargo.contains("{{"), "{cargo}");
        let mode = std::fs::metadata(dir.join("build.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        let again = write_project(Language::Rust, WorldArg::Transformer, "my-plugin", &dir);
        assert!(matches!(again, Err(ScaffoldError::NotEmpty(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

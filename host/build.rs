//! Embeds the `weir new` project templates (`host/templates/<language>/<world>/`)
//! into the binary: writes `$OUT_DIR/templates.rs`, a table of every file with
//! its path, contents (`include_bytes!`) and whether it is executable.
//! std only, so the host gains no build dependency; adding a template needs
//! no code change. Build outputs that may sit in a template directory while
//! someone tries it (`target/`, `node_modules/`, `__pycache__/`, `*.wasm`)
//! are left out.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

const SKIPPED_DIRS: &[&str] = &["target", "node_modules", "__pycache__"];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    if root.is_dir() {
        walk(&root, &mut files);
    }
    files.sort();
    let mut table = String::from(
        "/// Every template file: (language, world, path in the project, contents, executable).\n\
         pub static TEMPLATE_FILES: &[TemplateFile] = &[\n",
    );
    for path in &files {
        let relative = path.strip_prefix(&root).expect("walked under root");
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        // A stray file (a README beside the languages) is not a template:
        // say so, but do not break everyone's build over it.
        let [language, world, rest @ ..] = parts.as_slice() else {
            println!(
                "cargo:warning={}: not under templates/<language>/<world>/: left out",
                path.display()
            );
            continue;
        };
        if rest.is_empty() {
            println!(
                "cargo:warning={}: not under templates/<language>/<world>/: left out",
                path.display()
            );
            continue;
        }
        let mode = std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            table,
            "    TemplateFile {{ language: {language:?}, world: {world:?}, path: {:?}, contents: include_bytes!({:?}), executable: {} }},",
            rest.join("/"),
            path.display().to_string(),
            mode & 0o111 != 0
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("templates.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            // Directories are watched too, so a new file triggers a rebuild.
            println!("cargo:rerun-if-changed={}", path.display());
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                walk(&path, files);
            }
        } else if !name.ends_with(".wasm") {
            files.push(path);
        }
    }
}

//! What a component says about how it was made: the `producers` custom
//! sections (tool conventions: fields `language`, `processed-by`, `sdk`,
//! each a list of name and version), read from the component itself and
//! from every core module and component nested in it, merged in that order
//! without repeats, fields shown as language, sdk, processed-by. Toolchains put them in different places (rustc in the
//! core module, wit-component in the component, componentize-py and jco in
//! both), so only the merge says the whole story.
//!
//! Reading them never fails a load: a component without the section, or
//! with one that does not parse, just reports less.

use std::fmt;

use wasmparser::{KnownCustom, Parser, Payload};

/// The merged producers fields, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Producers {
    /// Field name (`language`, `processed-by`, `sdk`) and its entries
    /// (`"Rust"`, `"rustc 1.95.0 (…)"`, `"wit-component 0.2xx"`).
    pub fields: Vec<(String, Vec<String>)>,
}

impl Producers {
    /// Reads every `producers` section of a component or module.
    pub fn read(wasm: &[u8]) -> Producers {
        let mut producers = Producers::default();
        for payload in Parser::new(0).parse_all(wasm) {
            // Nested modules and components come through parse_all as
            // payloads of their own, so one loop sees every section.
            let Ok(Payload::CustomSection(section)) = payload else {
                continue;
            };
            let KnownCustom::Producers(reader) = section.as_known() else {
                continue;
            };
            for field in reader.into_iter().flatten() {
                for value in field.values.into_iter().flatten() {
                    // rustc and clang append "(commit date)" or "(url commit)": noise in a log line.
                    let version = value.version.split(" (").next().unwrap_or_default();
                    let entry = if version.is_empty() {
                        value.name.to_string()
                    } else {
                        format!("{} {version}", value.name)
                    };
                    producers.add(field.name, entry);
                }
            }
        }
        // The same order whatever order the sections came in.
        producers
            .fields
            .sort_by_key(|(name, _)| match name.as_str() {
                "language" => 0,
                "sdk" => 1,
                "processed-by" => 2,
                _ => 3,
            });
        producers
    }

    fn add(&mut self, field: &str, entry: String) {
        let index = match self.fields.iter().position(|(name, _)| name == field) {
            Some(i) => i,
            None => {
                self.fields.push((field.to_string(), Vec::new()));
                self.fields.len() - 1
            }
        };
        let entries = &mut self.fields[index].1;
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }

    /// The entries of one field (`"language"`, …), empty when absent.
    pub fn get(&self, field: &str) -> &[String] {
        self.fields
            .iter()
            .find(|(name, _)| name == field)
            .map_or(&[], |(_, entries)| entries.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// `language: Rust; processed-by: rustc 1.95.0, wit-component 0.258.3`, or
/// `no producers section`.
impl fmt::Display for Producers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fields.is_empty() {
            return f.write_str("no producers section");
        }
        for (i, (name, entries)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name}: {}", entries.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A producers section: field count, then per field its name and (name, version) pairs.
    fn section(fields: &[(&str, &[(&str, &str)])]) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.push(u8::try_from(s.len()).unwrap());
            out.extend_from_slice(s.as_bytes());
        }
        let mut body = vec![u8::try_from(fields.len()).unwrap()];
        for (name, values) in fields {
            string(&mut body, name);
            body.push(u8::try_from(values.len()).unwrap());
            for (n, v) in *values {
                string(&mut body, n);
                string(&mut body, v);
            }
        }
        let mut custom = Vec::new();
        string(&mut custom, "producers");
        custom.extend_from_slice(&body);
        // The section size as unsigned LEB128.
        let mut out = vec![0u8];
        let mut size = custom.len();
        loop {
            let byte = (size & 0x7f) as u8;
            size >>= 7;
            if size == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(&custom);
        out
    }

    #[test]
    fn a_module_with_two_sections_merges_without_repeats() {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend(section(&[
            ("language", &[("Rust", "")]),
            (
                "processed-by",
                &[("rustc", "1.95.0 (59807616e 2026-04-14)")],
            ),
        ]));
        module.extend(section(&[
            (
                "processed-by",
                &[("rustc", "1.95.0"), ("wit-component", "0.258.3")],
            ),
            ("sdk", &[("componentize-py", "0.19.3")]),
            ("language", &[("Rust", ""), ("C11", "")]),
        ]));
        let p = Producers::read(&module);
        assert_eq!(p.get("language"), ["Rust", "C11"]);
        assert_eq!(
            p.to_string(),
            "language: Rust, C11; sdk: componentize-py 0.19.3; processed-by: rustc 1.95.0, wit-component 0.258.3"
        );
    }

    #[test]
    fn no_section_and_garbage_report_nothing() {
        assert!(Producers::read(b"\0asm\x01\0\0\0").is_empty());
        assert!(Producers::read(b"not wasm at all").is_empty());
        assert_eq!(Producers::default().to_string(), "no producers section");
    }

    /// The Rust example as `plugins/build.sh` builds it: rustc names the
    /// language in the core module, wit-component and wit-bindgen sign the
    /// component.
    #[test]
    fn the_rust_example_names_its_toolchain() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/dist/router.wasm");
        let wasm = std::fs::read(path)
            .unwrap_or_else(|e| panic!("{path}: {e}: build it with `bash plugins/build.sh`"));
        let p = Producers::read(&wasm);
        // wasi-libc's C start-up code, linked in by rustc, says C11.
        assert_eq!(
            p.get("language").first().map(String::as_str),
            Some("Rust"),
            "{p}"
        );
        let tools = p.get("processed-by").join(", ");
        assert!(
            !tools.contains(" ("),
            "versions are cut before their comment: {tools}"
        );
        for tool in ["rustc 1.", "wit-component 0.", "wit-bindgen-rust 0."] {
            assert!(tools.contains(tool), "{tool} missing in {p}");
        }
    }
}

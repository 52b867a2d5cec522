//! Source rules the compiler does not check, for every interface crate (`crates/*` but the
//! core, which keeps its own in `crates/core/tests/tidy.rs`), run as tests:
//!
//! - **Layers without circles.** An interface crate is layered (docs/ARCHITECTURE.md): the
//!   author's API (traits, guards, typed values) → the runtime → `abi` → `testing`. Each
//!   top-level module is one node (a directory module and its files are one); an edge is a
//!   `crate::` path in a module's code (re-exports of the crate root resolved to the module
//!   that defines the item). No module may reach itself along the edges, and `runtime` never
//!   names `abi`.
//! - **`unsafe` only where the layout allows**: `abi` (the exports) and `testing` (the host
//!   simulator, which calls them with raw pointers).
//! - **Samples have no `unsafe` code**: every target of every package under `samples/` (its
//!   library, programs, tests, benchmarks and examples) starts with `#![forbid(unsafe_code)]`;
//!   what must be `unsafe` (an export, a call into the system) is the interface crates'.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// Modules that may contain `unsafe`.
    const UNSAFE_ALLOWED: &[&str] = &["abi", "testing"];

    /// One interface crate's modules: name → the code of its files (comments removed).
    struct Crate {
        name: String,
        modules: BTreeMap<String, String>,
        /// Items the crate root re-exports, by the module that defines them.
        reexports: BTreeMap<String, String>,
    }

    fn interface_crates() -> Vec<Crate> {
        let crates = crate::workspace_root().join("crates");
        let mut found: Vec<Crate> = std::fs::read_dir(&crates)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|dir| dir.join("src/lib.rs").is_file() && !dir.ends_with("core"))
            .map(|dir| read_crate(&dir))
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found
    }

    /// The top-level module a file under `src` belongs to: its first path component, or the
    /// module that attaches it with `#[path = "…"]` (a test module kept in a file of its own).
    fn top_module(relative: &Path) -> String {
        relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string()
    }

    fn read_crate(dir: &Path) -> Crate {
        let src = dir.join("src");
        let files = rust_files(&src);
        let mut attached = BTreeMap::new();
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            let owner = top_module(path.strip_prefix(&src).unwrap());
            for part in text.split("#[path = \"").skip(1) {
                if let Some((file, _)) = part.split_once('"') {
                    let file = path.parent().unwrap().join(file);
                    attached.insert(file, owner.clone());
                }
            }
        }
        let mut modules = BTreeMap::new();
        for path in files {
            let relative = path.strip_prefix(&src).unwrap();
            let top = attached
                .get(&path)
                .cloned()
                .unwrap_or_else(|| top_module(relative));
            let code = strip_comments(&std::fs::read_to_string(&path).unwrap());
            let text: &mut String = modules.entry(top).or_default();
            text.push_str(&code);
            text.push('\n');
        }
        let root = modules.remove("lib").expect("src/lib.rs");
        let reexports = reexports(&root, &modules);
        Crate {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            modules,
            reexports,
        }
    }

    fn rust_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(rust_files(&path));
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
        files.sort();
        files
    }

    /// The code without `//` comments (doc comments included) and without string contents.
    fn strip_comments(text: &str) -> String {
        text.lines()
            .map(|line| {
                let mut code = String::new();
                let mut in_string = false;
                let mut chars = line.chars().peekable();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            in_string = !in_string;
                            code.push(c);
                        }
                        '\\' if in_string => {
                            chars.next();
                        }
                        '/' if !in_string && chars.peek() == Some(&'/') => break,
                        _ if in_string => {}
                        _ => code.push(c),
                    }
                }
                code
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn is_ident(c: char) -> bool {
        c.is_alphanumeric() || c == '_'
    }

    /// The first path segment after each `crate::` (each item of a `crate::{…}` group).
    fn crate_paths(code: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| is_ident(c) || c == '$') {
                continue; // `$crate::` in a macro, or part of a longer identifier
            }
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 1;
                let mut item = String::new();
                let mut first = true;
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 1 => break,
                        '}' => depth -= 1,
                        ',' if depth == 1 => {
                            first = true;
                            names.extend(take(&mut item));
                            continue;
                        }
                        ':' => first = false,
                        _ => {}
                    }
                    if depth == 1 && first && is_ident(c) {
                        item.push(c);
                    }
                }
                names.extend(take(&mut item));
            } else {
                let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
        names
    }

    fn take(item: &mut String) -> Option<String> {
        let name = std::mem::take(item);
        (!name.is_empty()).then_some(name)
    }

    /// `pub use module::{A, B as C}` in the crate root: `A` and `C` → `module`.
    fn reexports(root: &str, modules: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for statement in root.split(';') {
            let statement = statement.trim();
            let Some(path) = statement.strip_prefix("pub use ") else {
                continue;
            };
            let path = path.trim_start_matches("crate::");
            let module: String = path.chars().take_while(|&c| is_ident(c)).collect();
            if !modules.contains_key(&module) {
                continue;
            }
            let items = &path[module.len()..];
            for item in items.split([',', '{', '}']) {
                let item = item.trim().trim_start_matches("::");
                let name = match item.split_once(" as ") {
                    Some((_, alias)) => alias.trim(),
                    None => item.rsplit("::").next().unwrap_or_default(),
                };
                if !name.is_empty() && name.chars().all(is_ident) {
                    map.insert(name.to_string(), module.clone());
                }
            }
        }
        map
    }

    /// Module → the modules its code names.
    fn edges(krate: &Crate) -> BTreeMap<String, BTreeSet<String>> {
        krate
            .modules
            .iter()
            .map(|(name, code)| {
                let targets = crate_paths(code)
                    .into_iter()
                    .filter_map(|first| {
                        if krate.modules.contains_key(&first) {
                            Some(first)
                        } else {
                            krate.reexports.get(&first).cloned()
                        }
                    })
                    .filter(|target| target != name)
                    .collect();
                (name.clone(), targets)
            })
            .collect()
    }

    /// A cycle through the graph, if there is one (as the list of its modules).
    fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|n| n == node) {
                let mut cycle = path[at..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            if done.contains(node) {
                return None;
            }
            path.push(node.to_string());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(cycle) = visit(next, graph, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            done.insert(node.to_string());
            None
        }
        let mut done = BTreeSet::new();
        graph
            .keys()
            .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
    }

    /// The code's tokens: identifiers, and every other character but spaces on its own.
    fn tokens(code: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut word = String::new();
        for c in code.chars() {
            if is_ident(c) {
                word.push(c);
                continue;
            }
            tokens.extend(take(&mut word));
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
        }
        tokens.extend(take(&mut word));
        tokens
    }

    /// Whether the code has an `unsafe` that is not the `unsafe extern "…" fn(…)` of a
    /// function-pointer *type* (naming the type of a host callback is not unsafe code).
    fn has_unsafe_code(code: &str) -> bool {
        let tokens = tokens(code);
        tokens.iter().enumerate().any(|(at, token)| {
            if token != "unsafe" {
                return false;
            }
            let rest: Vec<&str> = tokens[at + 1..]
                .iter()
                .take(6)
                .map(String::as_str)
                .collect();
            let fn_pointer_type = matches!(
                rest.as_slice(),
                ["extern", "\"", "\"", "fn", "(", ..] | ["fn", "(", ..]
            );
            !fn_pointer_type
        })
    }

    #[test]
    fn interface_crates_have_no_import_circles() {
        let crates = interface_crates();
        assert!(crates.iter().any(|c| c.name == "nspv2"), "found the crates");
        for krate in &crates {
            let graph = edges(krate);
            if let Some(cycle) = find_cycle(&graph) {
                panic!(
                    "crates/{}: modules import each other in a circle: {}",
                    krate.name,
                    cycle.join(" → ")
                );
            }
            if let Some(runtime) = graph.get("runtime") {
                assert!(
                    !runtime.contains("abi"),
                    "crates/{}: the runtime names the abi module",
                    krate.name
                );
            }
        }
    }

    #[test]
    fn unsafe_code_is_only_in_the_export_and_simulator_modules() {
        for krate in interface_crates() {
            for (module, code) in &krate.modules {
                if UNSAFE_ALLOWED.contains(&module.as_str()) {
                    continue;
                }
                assert!(
                    !has_unsafe_code(code),
                    "crates/{}: `unsafe` in module {module} (allowed only in {UNSAFE_ALLOWED:?})",
                    krate.name
                );
            }
        }
    }

    /// The root file of every target of every package under `dir` (recursively): `src/lib.rs`,
    /// `src/main.rs`, `src/bin/*.rs`, `tests/*.rs`, `benches/*.rs`, `examples/*.rs`.
    fn target_roots(dir: &Path) -> Vec<PathBuf> {
        let mut roots = Vec::new();
        if dir.join("Cargo.toml").is_file() {
            let in_dir = |sub: &str| -> Vec<PathBuf> {
                let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                    return Vec::new();
                };
                entries
                    .map(|entry| entry.unwrap().path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
                    .collect()
            };
            roots.extend(
                ["src/lib.rs", "src/main.rs"]
                    .map(|file| dir.join(file))
                    .into_iter()
                    .filter(|path| path.is_file()),
            );
            for sub in ["src/bin", "tests", "benches", "examples"] {
                roots.extend(in_dir(sub));
            }
        }
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let skipped = ["src", "tests", "benches", "examples", "target"];
            if path.is_dir() && !skipped.contains(&name.as_str()) && !name.starts_with('.') {
                roots.extend(target_roots(&path));
            }
        }
        roots.sort();
        roots
    }

    #[test]
    fn samples_forbid_unsafe_code_in_every_target() {
        let root = crate::workspace_root();
        let roots = target_roots(&root.join("samples"));
        assert!(
            roots
                .iter()
                .any(|path| path.ends_with("line-simulator/src/lib.rs"))
                && roots
                    .iter()
                    .any(|path| path.ends_with("email-directory/file/src/lib.rs"))
                && roots
                    .iter()
                    .any(|path| path.ends_with("traffic-meter/tests/meter.rs")),
            "found the samples' targets: {roots:?}"
        );
        for path in roots {
            let code = strip_comments(&std::fs::read_to_string(&path).unwrap());
            assert!(
                code.lines()
                    .any(|line| line.trim() == "#![forbid(unsafe_code)]"),
                "{}: every target of a sample starts with #![forbid(unsafe_code)]",
                path.strip_prefix(&root).unwrap().display()
            );
        }
    }

    #[test]
    fn the_checks_see_circles_and_paths() {
        let paths = crate_paths(
            "use crate::a::B;\nuse crate::{b::{self, C}, c};\n$crate::d::x();\nfoo(crate::e);",
        );
        assert_eq!(
            paths,
            BTreeSet::from(["a", "b", "c", "e"].map(String::from))
        );
        let graph: BTreeMap<String, BTreeSet<String>> = [
            ("api", vec!["values"]),
            ("runtime", vec!["api", "values"]),
            ("values", vec!["runtime"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        let cycle = find_cycle(&graph).expect("a circle");
        assert!(cycle.len() >= 3 && cycle.first() == cycle.last());
        let mut acyclic = graph.clone();
        acyclic.get_mut("values").unwrap().clear();
        assert_eq!(find_cycle(&acyclic), None);
        assert_eq!(
            strip_comments("let s = \"crate::x\"; // crate::y\ncrate::z"),
            "let s = \"\"; \ncrate::z"
        );
        assert!(!has_unsafe_code(
            "type P = unsafe extern \"\" fn(u32) -> i32;"
        ));
        assert!(!has_unsafe_code("type Q = unsafe fn();"));
        assert!(has_unsafe_code("let x = unsafe { f() };"));
        assert!(has_unsafe_code("unsafe extern \"\" fn export(x: u32) {}"));
        assert!(has_unsafe_code("unsafe impl Send for X {}"));
        let root = "mod a;\npub use a::{Thing, Other as Renamed};\npub use b::Missing;";
        let modules = BTreeMap::from([("a".to_string(), String::new())]);
        let map = reexports(root, &modules);
        assert_eq!(map.get("Thing").map(String::as_str), Some("a"));
        assert_eq!(map.get("Renamed").map(String::as_str), Some("a"));
        assert_eq!(map.get("Missing"), None);
    }
}

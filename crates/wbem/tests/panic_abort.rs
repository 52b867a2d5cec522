//! A provider built with `panic = "abort"` does not compile: the crate `export_provider!`
//! expands in gets the error, with its reason (`winprov_core::refuse_panic_abort!`).
//!
//! The fixture is compiled by `rustc` against this crate's rlib, once as is and once with
//! `-C panic=abort` (what a `[profile] panic = "abort"` passes for every crate): trybuild
//! cannot choose the panic strategy.

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = r#"
use winprov_wbem::{EventProvider, GUID, InstanceProvider, MethodProvider, ProviderInit};

pub struct Echo;
impl ProviderInit for Echo {}
impl InstanceProvider for Echo {}
impl MethodProvider for Echo {}
impl EventProvider for Echo {}

winprov_wbem::export_provider!(GUID::from_u128(0x5eed), Echo, || Echo);
"#;

/// The rlib of this crate the test was built with: the newest `lib<name>-*.rlib` beside this
/// test whose metadata names this package's `src/lib.rs` by its absolute path (another
/// checkout sharing the target directory has rlibs of its own).
fn own_rlib(deps: &Path, name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("lib.rs");
    let source = source.to_str().expect("a UTF-8 path").as_bytes();
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(deps).expect("the deps directory") {
        let path = entry.expect("an entry").path();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        if !(file.starts_with(&format!("lib{name}-")) && file.ends_with(".rlib")) {
            continue;
        }
        let names_source = std::fs::read(path.with_extension("rmeta"))
            .is_ok_and(|meta| meta.windows(source.len()).any(|w| w == source));
        if names_source {
            let modified = path
                .metadata()
                .and_then(|m| m.modified())
                .expect("an mtime");
            found.push((modified, path));
        }
    }
    found
        .into_iter()
        .max()
        .map(|(_, path)| path)
        .expect("this crate's rlib beside the test")
}

fn compile(panic: &str) -> std::process::Output {
    let exe = std::env::current_exe().expect("the test's path");
    let deps = exe.parent().expect("the deps directory");
    let rlib = own_rlib(deps, "winprov_wbem");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("panic-abort-wbem-{panic}"));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let source = dir.join("provider.rs");
    std::fs::write(&source, FIXTURE).expect("the fixture");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "lib",
            "--emit",
            "metadata",
        ])
        .args(["--crate-name", "provider", "-C", &format!("panic={panic}")])
        .arg("--extern")
        .arg(format!("winprov_wbem={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("--out-dir")
        .arg(&dir)
        .arg(&source)
        .output()
        .expect("rustc runs")
}

#[test]
fn a_provider_built_with_panic_abort_does_not_compile() {
    let unwind = compile("unwind");
    assert!(
        unwind.status.success(),
        "the fixture compiles with unwinding: {}",
        String::from_utf8_lossy(&unwind.stderr)
    );

    let abort = compile("abort");
    let stderr = String::from_utf8_lossy(&abort.stderr);
    assert!(!abort.status.success(), "compiled under panic=abort");
    assert!(
        stderr.contains(
            "winprov-wbem cannot be built with `panic = \"abort\"`: each export's panic boundary is `catch_unwind`"
        ) && stderr.contains("kills the host process (wmiprvse.exe"),
        "{stderr}"
    );
}

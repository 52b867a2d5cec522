//! The directory-admin provider, driven by winprov-wbem's WMI simulator against directory
//! files in a temporary folder.
#![forbid(unsafe_code)]

use directory_admin::DirectoryAdmin;
use directory_admin::classes::{
    Winprov_DirectoryChanged, Winprov_DirectoryEntry, entry_path, entry_to_instance,
};
use email_directory_file::{DirectoryFile, Entry};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use winprov_wbem::testing::{EventLog, Host};
use winprov_wbem::{CallFlags, HResult, Instance, Value};

const ENTRY: &str = "Winprov_DirectoryEntry";

/// A directory file in a folder of its own, removed at the end.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "directory-admin-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn file(&self) -> DirectoryFile {
        DirectoryFile::new(self.dir.join("directory.txt"))
    }

    /// A file holding `names`, each with one address.
    fn with(&self, names: &[&str]) -> DirectoryFile {
        let file = self.file();
        file.update(|directory| {
            for (i, name) in names.iter().enumerate() {
                directory.get_or_insert(name).addresses =
                    vec![format!("192.0.2.{}:25", i % 250 + 1).parse().unwrap()];
            }
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        file
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// WMI with the provider's classes, serving `provider`.
fn host(provider: DirectoryAdmin) -> Host<DirectoryAdmin> {
    let host = Host::new(provider);
    host.declare_class::<Winprov_DirectoryEntry>();
    host.declare_class::<Winprov_DirectoryChanged>();
    host
}

fn names(instances: &[Instance]) -> Vec<String> {
    instances
        .iter()
        .map(|i| match i.get("Name") {
            Some(Value::Str(name)) => name.clone(),
            other => panic!("no name: {other:?}"),
        })
        .collect()
}

#[test]
fn enumerates_gets_and_queries_the_file() {
    let scratch = Scratch::new();
    let host = host(DirectoryAdmin::new(scratch.with(&["a@x.org", "b@x.org"])));
    let sink = host.sink();

    let all = host.enumerate(&sink, ENTRY, CallFlags::empty());
    assert_eq!(all.status, Some((HResult::S_OK, None)));
    assert_eq!(names(&all.indicated), ["a@x.org", "b@x.org"]);
    assert_eq!(
        all.indicated[0].get("Addresses"),
        Some(&Value::StrArray(vec!["192.0.2.1:25".into()]))
    );

    let got = host.get_object(&sink, &entry_path("b@x.org"), CallFlags::empty());
    assert_eq!(names(&got.indicated), ["b@x.org"]);
    let missing = host.get_object(&sink, &entry_path("c@x.org"), CallFlags::empty());
    assert_eq!(missing.status, Some((HResult::WBEM_E_NOT_FOUND, None)));
    assert!(missing.indicated.is_empty());
    let malformed = host.get_object(&sink, "Winprov_DirectoryEntry.Name=b", CallFlags::empty());
    assert_eq!(
        malformed.status,
        Some((HResult::WBEM_E_INVALID_OBJECT_PATH, None))
    );

    let one = host.query(
        &sink,
        "SELECT * FROM Winprov_DirectoryEntry WHERE Name = 'a@x.org'",
        CallFlags::empty(),
    );
    assert_eq!(names(&one.indicated), ["a@x.org"]);
    let complex = host.query(
        &sink,
        "SELECT * FROM Winprov_DirectoryEntry WHERE Comment = 'x'",
        CallFlags::empty(),
    );
    assert_eq!(
        complex.status,
        Some((HResult::WBEM_E_PROVIDER_NOT_CAPABLE, None))
    );

    let other = host.enumerate(&sink, "Win32_Process", CallFlags::empty());
    assert_eq!(other.status, Some((HResult::WBEM_E_INVALID_CLASS, None)));
}

#[test]
fn put_and_delete_change_the_file_the_namespace_provider_serves() {
    let scratch = Scratch::new();
    let host = host(DirectoryAdmin::new(scratch.with(&["a@x.org"])));
    let sink = host.sink();
    let mut entry = Entry::new("new@x.org");
    entry.addresses = vec!["198.51.100.7:587".parse().unwrap()];
    entry.comment = Some("added by WMI".into());

    let put = host.put(&sink, entry_to_instance(&entry), CallFlags::CREATE_ONLY);
    assert_eq!(
        put.status,
        Some((HResult::S_OK, Some(entry_path("new@x.org"))))
    );
    // Another reader of the file (as the email-directory service is) sees the entry.
    let seen = scratch.file().read().unwrap();
    assert_eq!(seen.get("new@x.org"), Some(&entry));

    let again = host.put(&sink, entry_to_instance(&entry), CallFlags::CREATE_ONLY);
    assert_eq!(again.status, Some((HResult::WBEM_E_ALREADY_EXISTS, None)));
    let absent = host.put(
        &sink,
        entry_to_instance(&Entry::new("zz@x.org")),
        CallFlags::UPDATE_ONLY,
    );
    assert_eq!(absent.status, Some((HResult::WBEM_E_NOT_FOUND, None)));
    entry.comment = None;
    let updated = host.put(&sink, entry_to_instance(&entry), CallFlags::UPDATE_ONLY);
    assert_eq!(updated.status.unwrap().0, HResult::S_OK);
    assert_eq!(
        scratch.file().read().unwrap().get("new@x.org"),
        Some(&entry)
    );

    let bad = Instance::new(ENTRY).with("Name", Value::Str("not-an-address".into()));
    let refused = host.put(&sink, bad, CallFlags::empty());
    assert_eq!(
        refused.status,
        Some((HResult::WBEM_E_INVALID_PARAMETER, None))
    );
    let mistyped = Instance::new(ENTRY).with("Name", Value::U32(5));
    assert_eq!(
        host.put(&sink, mistyped, CallFlags::empty()).status,
        Some((HResult::WBEM_E_TYPE_MISMATCH, None))
    );

    let deleted = host.delete(&sink, &entry_path("a@x.org"), CallFlags::empty());
    assert_eq!(deleted.status, Some((HResult::S_OK, None)));
    assert_eq!(
        host.delete(&sink, &entry_path("a@x.org"), CallFlags::empty())
            .status,
        Some((HResult::WBEM_E_NOT_FOUND, None))
    );
    assert_eq!(
        names(&host.enumerate(&sink, ENTRY, CallFlags::empty()).indicated),
        ["new@x.org"]
    );
}

#[test]
fn count_is_a_static_method() {
    let scratch = Scratch::new();
    let host = host(DirectoryAdmin::new(
        scratch.with(&["a@x.org", "b@x.org", "c@x.org"]),
    ));
    let sink = host.sink();
    let count = host.exec_method(&sink, ENTRY, "Count", None, CallFlags::empty());
    assert_eq!(count.status, Some((HResult::S_OK, None)));
    assert_eq!(count.indicated, [Instance::out_parameters(Value::U32(3))]);
    let unknown = host.exec_method(&sink, ENTRY, "Explode", None, CallFlags::empty());
    assert_eq!(unknown.status, Some((HResult::WBEM_E_INVALID_METHOD, None)));
    let on_instance = host.exec_method(
        &sink,
        &entry_path("a@x.org"),
        "Count",
        None,
        CallFlags::empty(),
    );
    assert_eq!(
        on_instance.status,
        Some((HResult::WBEM_E_INVALID_METHOD, None))
    );
}

#[test]
fn a_cancelled_enumeration_ends_with_the_cancels_status() {
    let scratch = Scratch::new();
    let names: Vec<String> = (0..500).map(|i| format!("user{i}@x.org")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let host = host(DirectoryAdmin::new(scratch.with(&refs)));
    let cancelled = std::sync::Arc::new(std::sync::OnceLock::new());
    let host = std::sync::Arc::new(host);
    let sink = {
        let (host, cancelled) = (
            std::sync::Arc::clone(&host),
            std::sync::Arc::clone(&cancelled),
        );
        let sink = host.sink();
        let me = sink.clone();
        // The client cancels when the first batch reaches it.
        sink.on_indicate(move || {
            cancelled.get_or_init(|| host.cancel(&me));
        })
    };
    let record = host.enumerate(&sink, ENTRY, CallFlags::empty());
    assert_eq!(record.status, Some((HResult::WBEM_E_CALL_CANCELLED, None)));
    assert_eq!(cancelled.get(), Some(&1));
    assert!(
        record.indicated.len() < 500,
        "the enumeration went on after the cancel"
    );
}

#[test]
fn a_file_change_fires_an_event_and_a_busy_wmi_gets_it_again() {
    let scratch = Scratch::new();
    let file = scratch.with(&["a@x.org"]);
    let host =
        host(DirectoryAdmin::new(file.clone()).with_poll_interval(Duration::from_millis(20)));
    // WMI is too busy for the first event (R-WMI-15): the provider fires it again.
    let events = EventLog::answering([HResult::WBEM_E_SERVER_TOO_BUSY]);
    assert_eq!(host.provide_events(&events, 0), HResult::S_OK);
    std::thread::sleep(Duration::from_millis(60));
    assert!(events.events().is_empty(), "an event without a change");

    file.update(|directory| {
        directory.get_or_insert("b@x.org");
        Ok::<(), ()>(())
    })
    .unwrap()
    .unwrap();
    assert!(
        events.wait_events(1, Duration::from_secs(10)),
        "the event, fired again"
    );
    assert_eq!(
        events.events(),
        [Instance::new("Winprov_DirectoryChanged").with("Entries", Value::U32(2))]
    );
    // Dropping the provider stops the watcher (the test would hang otherwise).
    drop(host);
}

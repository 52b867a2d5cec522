//! The provider driven through the real routine table by the `winprov-nspv2` host simulator,
//! against directory files in a temporary folder.
#![forbid(unsafe_code)]

use email_directory::{Config, Directory, EmailDirectory};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use winprov_nspv2::testing::{Host, SessionArg, conformance};
use winprov_nspv2::{
    AfProtocol, ControlFlags, CsAddr, Query, QueryResult, RegInfo, SetServiceOp, WsaError,
};

const ALL: ControlFlags = ControlFlags::RETURN_ALL;

const DIRECTORY: &str = "\
# test directory
[alice@example.org]
address = 192.0.2.10:25
address = [2001:db8::1]:587
comment = Alice Example
data = any text, stored as the UTF-8 bytes of the result blob

[bob@example.org]
address = 198.51.100.7:2525

[carol@other.test]
address = 203.0.113.5:25
comment = Carol
";

/// A folder of its own for one test, removed when the test ends.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "email-directory-test-{}-{test}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// The directory file, with `text` written to it.
    fn with_file(test: &str, text: &str) -> (Self, PathBuf) {
        let scratch = Self::new(test);
        let file = scratch.file();
        fs::write(&file, text).unwrap();
        (scratch, file)
    }

    fn file(&self) -> PathBuf {
        self.dir.join("directory.txt")
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn host(file: &Path) -> Host {
    Host::advertise_new(EmailDirectory::new(Config::new(file)))
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Every result of a lookup of `query`, and the code that ended it.
fn lookup(host: &Host, session: SessionArg, query: &Query) -> (Vec<QueryResult>, WsaError) {
    let handle = host.begin(session, query, ALL).expect("Begin");
    let mut results = Vec::new();
    let end = loop {
        let next = host.next_sized(handle, ALL);
        match next.status() {
            Ok(()) => results.push(next.result.expect("a result").result),
            Err(code) => break code,
        }
        assert!(results.len() < 100, "the lookup never ends");
    };
    host.end(handle).expect("End");
    (results, end)
}

/// The one result for `name`.
fn lookup_one(host: &Host, session: SessionArg, name: &str) -> QueryResult {
    let (mut results, end) = lookup(host, session, &Query::name(name));
    assert_eq!(end, WsaError::WSA_E_NO_MORE, "{name}");
    assert_eq!(results.len(), 1, "{name}");
    results.remove(0)
}

fn read_back(file: &Path) -> Directory {
    Directory::parse(&fs::read_to_string(file).unwrap()).unwrap()
}

fn set(host: &Host, session: SessionArg, reg: &RegInfo, op: SetServiceOp) -> Result<(), WsaError> {
    host.set_service(session, reg, op)
}

/// A registration of `name` at `addresses` with `data` as its blob.
fn registration(name: &str, addresses: &[&str], data: &str) -> RegInfo {
    let mut reg = RegInfo::named(name);
    reg.addresses = addresses.iter().map(|a| CsAddr::tcp(addr(a))).collect();
    reg.blob = Some(data.as_bytes().to_vec());
    reg
}

const REPLACE: SetServiceOp = SetServiceOp::Register { multiple: false };
const ADD: SetServiceOp = SetServiceOp::Register { multiple: true };

#[test]
fn a_known_name_returns_its_addresses_comment_blob_and_domain() {
    let (_scratch, file) = Scratch::with_file("known", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();
    let result = lookup_one(&host, session, "alice@example.org");
    assert_eq!(
        result.service_instance_name.as_deref(),
        Some("alice@example.org")
    );
    assert_eq!(result.comment.as_deref(), Some("Alice Example"));
    assert_eq!(result.context.as_deref(), Some("example.org"));
    assert_eq!(
        result.addresses,
        [
            CsAddr::tcp(addr("192.0.2.10:25")),
            CsAddr::tcp(addr("[2001:db8::1]:587"))
        ]
    );
    assert_eq!(
        result.blob.as_deref(),
        Some(&b"any text, stored as the UTF-8 bytes of the result blob"[..])
    );
    // ASCII case-insensitive; the name comes back as the directory spells it.
    let result = lookup_one(&host, session, "ALICE@Example.Org");
    assert_eq!(
        result.service_instance_name.as_deref(),
        Some("alice@example.org")
    );
    // No comment, no data: no comment, no blob.
    let bob = lookup_one(&host, session, "bob@example.org");
    assert_eq!((bob.comment, bob.blob), (None, None));
    host.cleanup(session).unwrap();
}

#[test]
fn addresses_are_filtered_by_the_requested_families() {
    let (_scratch, file) = Scratch::with_file("families", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();
    let mut query = Query::name("alice@example.org");
    query.protocols.push(AfProtocol {
        address_family: 23, // AF_INET6
        protocol: 6,
    });
    let (results, _) = lookup(&host, session, &query);
    assert_eq!(
        results[0].addresses,
        [CsAddr::tcp(addr("[2001:db8::1]:587"))]
    );
    query.protocols[0].address_family = 2; // AF_INET
    let (results, _) = lookup(&host, session, &query);
    assert_eq!(results[0].addresses, [CsAddr::tcp(addr("192.0.2.10:25"))]);
    host.cleanup(session).unwrap();
}

#[test]
fn an_unknown_name_is_service_not_found() {
    let (_scratch, file) = Scratch::with_file("unknown", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();
    let handle = host
        .begin(session, &Query::name("nobody@example.org"), ALL)
        .unwrap();
    assert_eq!(
        host.next_sized(handle, ALL).status(),
        Err(WsaError::WSASERVICE_NOT_FOUND)
    );
    assert_eq!(
        host.next_sized(handle, ALL).status(),
        Err(WsaError::WSA_E_NO_MORE)
    );
    host.end(handle).unwrap();
    // A missing file is an empty directory.
    fs::remove_file(&file).unwrap();
    let (results, end) = lookup(&host, session, &Query::name("alice@example.org"));
    assert!(results.is_empty());
    assert_eq!(end, WsaError::WSASERVICE_NOT_FOUND);
    host.cleanup(session).unwrap();
}

#[test]
fn a_wildcard_returns_every_entry_of_the_domain_one_per_call() {
    let (_scratch, file) = Scratch::with_file("wildcard", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();
    let (results, end) = lookup(&host, session, &Query::name("*@EXAMPLE.org"));
    let names: Vec<_> = results
        .iter()
        .map(|r| r.service_instance_name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["alice@example.org", "bob@example.org"]);
    assert!(
        results
            .iter()
            .all(|r| r.context.as_deref() == Some("example.org"))
    );
    assert_eq!(end, WsaError::WSA_E_NO_MORE);
    let (results, end) = lookup(&host, session, &Query::name("*@nowhere.test"));
    assert!(results.is_empty());
    assert_eq!(end, WsaError::WSA_E_NO_MORE);
    host.cleanup(session).unwrap();
}

#[test]
fn lookups_see_the_file_after_it_changes() {
    let (_scratch, file) = Scratch::with_file("reload", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();
    assert_eq!(
        lookup_one(&host, session, "bob@example.org").addresses,
        [CsAddr::tcp(addr("198.51.100.7:2525"))]
    );
    // A different length, so the change is seen whatever the timestamp resolution.
    let changed = DIRECTORY.replace(
        "address = 198.51.100.7:2525",
        "address = 198.51.100.8:25\ncomment = Bob, moved",
    );
    fs::write(&file, changed).unwrap();
    let bob = lookup_one(&host, session, "bob@example.org");
    assert_eq!(bob.addresses, [CsAddr::tcp(addr("198.51.100.8:25"))]);
    assert_eq!(bob.comment.as_deref(), Some("Bob, moved"));
    host.cleanup(session).unwrap();
}

#[test]
fn begin_reads_nothing_and_a_broken_file_fails_lookups_without_being_overwritten() {
    let broken = "[alice@example.org]\naddress = not an address\n";
    let (scratch, file) = Scratch::with_file("broken", broken);
    let host = host(&file);
    let session = host.startup().unwrap();
    let handle = host
        .begin(session, &Query::name("alice@example.org"), ALL)
        .expect("Begin does not read the file");
    assert_eq!(
        host.next_sized(handle, ALL).status(),
        Err(WsaError::WSANO_RECOVERY)
    );
    host.end(handle).unwrap();
    let reg = registration("dave@example.org", &[], "");
    assert_eq!(
        set(&host, session, &reg, REPLACE),
        Err(WsaError::WSANO_RECOVERY)
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), broken);
    assert_eq!(scratch.names(), ["directory.txt"]);
    // Fixed (a different length): served again.
    fs::write(&file, DIRECTORY).unwrap();
    lookup_one(&host, session, "alice@example.org");
    host.cleanup(session).unwrap();
}

#[test]
fn register_replaces_or_adds_and_persists() {
    let (scratch, file) = Scratch::with_file("register", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();

    // Replace: exactly the given addresses; comment and blob update comment and data.
    let mut reg = RegInfo::named("ALICE@example.org");
    reg.addresses = vec![CsAddr::tcp(addr("192.0.2.99:25"))];
    reg.comment = Some("Alice, new".into());
    reg.blob = Some(b"new data".to_vec());
    set(&host, session, &reg, REPLACE).unwrap();
    let alice = read_back(&file).get("alice@example.org").unwrap().clone();
    assert_eq!(alice.name, "alice@example.org", "the stored spelling stays");
    assert_eq!(alice.addresses, [addr("192.0.2.99:25")]);
    assert_eq!(alice.comment.as_deref(), Some("Alice, new"));
    assert_eq!(alice.data.as_deref(), Some("new data"));
    let result = lookup_one(&host, session, "alice@example.org");
    assert_eq!(result.addresses, [CsAddr::tcp(addr("192.0.2.99:25"))]);
    assert_eq!(result.blob.as_deref(), Some(&b"new data"[..]));

    // Multiple: added to the set (duplicates once); no comment: unchanged.
    let reg = registration(
        "alice@example.org",
        &["192.0.2.99:25", "[2001:db8::2]:25"],
        "newer data",
    );
    set(&host, session, &reg, ADD).unwrap();
    let alice = read_back(&file).get("alice@example.org").unwrap().clone();
    assert_eq!(
        alice.addresses,
        [addr("192.0.2.99:25"), addr("[2001:db8::2]:25")]
    );
    assert_eq!(alice.comment.as_deref(), Some("Alice, new"));
    assert_eq!(alice.data.as_deref(), Some("newer data"));

    // An empty blob clears the data (a Register always carries a blob in NS_EMAIL).
    let reg = registration("alice@example.org", &["192.0.2.99:25"], "");
    set(&host, session, &reg, ADD).unwrap();
    let alice = read_back(&file).get("alice@example.org").unwrap().clone();
    assert_eq!(alice.data, None);
    assert_eq!(alice.addresses.len(), 2);
    assert_eq!(lookup_one(&host, session, "alice@example.org").blob, None);

    // A new name is created, at the end of the file.
    let reg = registration("dave@example.org", &["192.0.2.44:587"], "Dave");
    set(&host, session, &reg, ADD).unwrap();
    let directory = read_back(&file);
    assert_eq!(directory.entries().last().unwrap().name, "dave@example.org");
    assert_eq!(directory.entries().len(), 4);
    let (results, _) = lookup(&host, session, &Query::name("*@example.org"));
    assert_eq!(results.len(), 3);

    assert_eq!(scratch.names(), ["directory.txt"], "no temporary file left");
    host.cleanup(session).unwrap();
}

#[test]
fn deregister_removes_addresses_and_keeps_the_entry_delete_removes_it() {
    let (scratch, file) = Scratch::with_file("deregister", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();

    // The given addresses only; comment and blob of a Deregister are ignored.
    let mut reg = RegInfo::named("alice@example.org");
    reg.addresses = vec![CsAddr::tcp(addr("192.0.2.10:25"))];
    reg.comment = Some("ignored".into());
    reg.blob = Some(vec![0xff, 0xfe]);
    set(&host, session, &reg, SetServiceOp::Deregister).unwrap();
    let alice = read_back(&file).get("alice@example.org").unwrap().clone();
    assert_eq!(alice.addresses, [addr("[2001:db8::1]:587")]);
    assert_eq!(alice.comment.as_deref(), Some("Alice Example"));
    assert!(alice.data.is_some());

    // None given: all of them; the entry is still known.
    let reg = RegInfo::named("alice@example.org");
    set(&host, session, &reg, SetServiceOp::Deregister).unwrap();
    assert!(
        read_back(&file)
            .get("alice@example.org")
            .unwrap()
            .addresses
            .is_empty()
    );
    let result = lookup_one(&host, session, "alice@example.org");
    assert!(result.addresses.is_empty());

    // Delete: gone.
    set(&host, session, &reg, SetServiceOp::Delete).unwrap();
    assert!(read_back(&file).get("alice@example.org").is_none());
    let (_, end) = lookup(&host, session, &Query::name("alice@example.org"));
    assert_eq!(end, WsaError::WSASERVICE_NOT_FOUND);

    // Unknown names: WSASERVICE_NOT_FOUND (R-NSP-14), and the file is not rewritten.
    let before = fs::read_to_string(&file).unwrap();
    for op in [SetServiceOp::Deregister, SetServiceOp::Delete] {
        assert_eq!(
            set(&host, session, &reg, op),
            Err(WsaError::WSASERVICE_NOT_FOUND),
            "{op:?}"
        );
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
    assert_eq!(scratch.names(), ["directory.txt"], "no temporary file left");
    host.cleanup(session).unwrap();
}

#[test]
fn registrations_the_file_cannot_hold_are_invalid() {
    let (_scratch, file) = Scratch::with_file("invalid", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();
    let before = fs::read_to_string(&file).unwrap();
    let valid = registration("alice@example.org", &["192.0.2.1:25"], "data");
    let mut no_name = valid.clone();
    no_name.service_instance_name = None;
    let mut two_lines = valid.clone();
    two_lines.comment = Some("one\ntwo".into());
    let mut multi_line_blob = valid.clone();
    multi_line_blob.blob = Some(b"one\ntwo".to_vec());
    let mut not_utf8 = valid.clone();
    not_utf8.blob = Some(vec![0xff, 0xfe]);
    let mut no_blob = valid.clone();
    no_blob.blob = None;
    let mut no_remote = valid.clone();
    no_remote.addresses[0].remote = None;
    for reg in [
        no_name,
        registration("no-domain", &[], ""),
        registration("*@example.org", &[], ""),
        two_lines,
        multi_line_blob,
        not_utf8,
        no_blob,
        no_remote,
    ] {
        assert_eq!(
            set(&host, session, &reg, REPLACE),
            Err(WsaError::WSAEINVAL),
            "{reg:?}"
        );
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
    host.cleanup(session).unwrap();
}

#[test]
fn the_first_registration_creates_the_file() {
    let scratch = Scratch::new("create");
    let file = scratch.dir.join("sub").join("directory.txt");
    let host = host(&file);
    let session = host.startup().unwrap();
    let mut reg = RegInfo::named("erin@example.org");
    reg.addresses = vec![CsAddr::tcp(addr("192.0.2.5:25"))];
    reg.blob = Some(b"first".to_vec());
    set(&host, session, &reg, REPLACE).unwrap();
    let erin = read_back(&file).get("erin@example.org").unwrap().clone();
    assert_eq!(erin.addresses, [addr("192.0.2.5:25")]);
    assert_eq!(erin.data.as_deref(), Some("first"));
    assert_eq!(
        lookup_one(&host, session, "erin@example.org")
            .blob
            .as_deref(),
        Some(&b"first"[..])
    );
    host.cleanup(session).unwrap();
}

#[test]
fn concurrent_registrations_are_all_kept() {
    let (scratch, file) = Scratch::with_file("concurrent", DIRECTORY);
    let host = host(&file);
    let session = host.startup().unwrap();
    std::thread::scope(|threads| {
        for t in 0..4u8 {
            let host = &host;
            threads.spawn(move || {
                for i in 0..10u8 {
                    let mut reg = RegInfo::named(format!("user{t}-{i}@example.org"));
                    reg.addresses = vec![CsAddr::tcp(SocketAddr::from(([192, 0, 2, t], 25)))];
                    reg.blob = Some(Vec::new());
                    set(host, session, &reg, ADD).unwrap();
                }
            });
        }
    });
    assert_eq!(read_back(&file).entries().len(), 3 + 40);
    assert_eq!(scratch.names(), ["directory.txt"], "no temporary file left");
    host.cleanup(session).unwrap();
}

#[test]
fn end_cancels_a_next_waiting_on_a_slow_backend() {
    let (_scratch, file) = Scratch::with_file("cancel", DIRECTORY);
    let config = Config::new(&file).with_lookup_delay(Duration::from_secs(60));
    let host = Host::advertise_new(EmailDirectory::new(config));
    let before = host.stats().live_lookups;
    let session = host.startup().unwrap();
    let handle = host
        .begin(session, &Query::name("alice@example.org"), ALL)
        .unwrap();
    let (next, returned_after) = std::thread::scope(|threads| {
        let next = threads.spawn(|| {
            let next = host.next(handle, ALL, 64 * 1024);
            (next, Instant::now())
        });
        // End once NextEx is inside the provider's wait (the simulator's barrier).
        assert!(host.wait_nexts_entered(1, Duration::from_secs(5)));
        let ended = Instant::now();
        host.end(handle).expect("End");
        let (next, returned) = next.join().expect("NextEx thread");
        (next, returned.saturating_duration_since(ended))
    });
    assert_eq!(next.status(), Err(WsaError::WSA_E_CANCELLED));
    assert!(
        returned_after < Duration::from_secs(5),
        "NextEx returned {returned_after:?} after End"
    );
    host.cleanup(session).unwrap();
    assert_eq!(host.stats().live_lookups, before);
}

#[test]
fn a_slow_backend_still_answers() {
    let (_scratch, file) = Scratch::with_file("slow", DIRECTORY);
    let config = Config::new(&file).with_lookup_delay(Duration::from_millis(50));
    let host = Host::advertise_new(EmailDirectory::new(config));
    let session = host.startup().unwrap();
    let started = Instant::now();
    lookup_one(&host, session, "carol@other.test");
    assert!(started.elapsed() >= Duration::from_millis(50));
    host.cleanup(session).unwrap();
}

#[test]
fn conformance_for_a_name_and_a_wildcard() {
    let (_scratch, file) = Scratch::with_file("conformance", DIRECTORY);
    let host = host(&file);
    conformance(&host, &Query::name("alice@example.org"));
    conformance(&host, &Query::name("*@example.org"));
}

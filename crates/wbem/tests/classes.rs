//! Typed classes: the classes of an e-mail directory, each described once with `wmi_class!`,
//! convert to and from `Instance` (any values), their object paths read back as the same keys,
//! every conversion failure keeps its documented WBEM code, a provider written against them
//! serves the simulator, and the MOF written from them is the checked-in one.
//!
//! The MOF files in `tests/golden/` are what an installer gives `mofcomp`. When a class
//! description or the MOF writer changes, `the_mof_is_the_checked_in_golden_mof` fails until
//! the files are rewritten on purpose:
//!
//! ```text
//! WINPROV_BLESS=1 cargo test -p winprov-wbem --test classes
//! ```
//!
//! then review the diff like any other change.

use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::Mutex;
use winprov_wbem::CallFlags;
use winprov_wbem::class::{Datetime, KeyedClass, MethodParameters, WmiClass};
use winprov_wbem::mof::{DECOUPLED_CLSID, Guid};
use winprov_wbem::testing::Host;
use winprov_wbem::{
    ClassError, Completed, EventProvider, GetCall, HResult, Hosting, Instance, InstanceProvider,
    InstanceRegistration, MethodCall, MethodProvider, Mof, MofError, ProviderInit, PutCall,
    Registration, Response, Value, wmi_class,
};

const PROVIDER: &str = "WinProvEmailDirectory";
const CLSID: Guid = Guid::from_u128(0x6d2b_54e2_0c55_4d1f_9a55_0b7e_91a4_6c01);

wmi_class! {
    /// An entry of the e-mail directory.
    [dynamic, provider(PROVIDER), description("An entry of the e-mail directory")]
    class WinProv_EmailEntry {
        key {
            [read, description("The name looked up")]
            Name: String,
        }
        properties {
            [read, write, description("The addresses the name resolves to (host:port)")]
            Addresses: Vec<String>,
            [read, write]
            Comment: Option<String>,
        }
        methods {
            /// How many entries the directory holds.
            [static, implemented, description("How many entries the directory holds")]
            fn Count(CountIn {}) -> CountOut { ReturnValue: u32 };

            /// Renames an entry.
            [implemented]
            fn Rename(RenameIn {
                [description("The entry's new name")] NewName: String,
                Force: Option<bool>,
            }) -> RenameOut {
                ReturnValue: u32,
                [description("The name the entry had")] OldName: Option<String>,
            };
        }
    }
}

wmi_class! {
    /// An entry was added, changed or removed.
    [description("A change of the e-mail directory")]
    event class WinProv_EntryChanged : "__ExtrinsicEvent" {
        properties {
            Name: String,
            [Values{"Added", "Changed", "Removed"}, ValueMap{"0", "1", "2"}]
            Change: u32,
            At: Option<Datetime>,
        }
    }
}

wmi_class! {
    /// A route of a domain: a key of every key type.
    [dynamic, provider(PROVIDER)]
    class WinProv_Route {
        key {
            Domain: String,
            Port: u32,
            Metric: i64,
            Id: u64,
            Offset: i32,
            Secure: bool,
            [description("When the route was learned")] Since: Datetime,
        }
        properties {
            [MaxLen(64), read(false)] Via: Option<String>,
            Weight: i32,
        }
    }
}

fn entry(name: &str, addresses: &[&str], comment: Option<&str>) -> WinProv_EmailEntry {
    WinProv_EmailEntry {
        Name: name.into(),
        Addresses: addresses.iter().map(|a| a.to_string()).collect(),
        Comment: comment.map(str::to_string),
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips

/// Any text, and text made of what paths and MOF escape.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\"\\\\',.=:@ aZ_\t\n]{0,12}"]
}

fn datetime() -> impl Strategy<Value = Datetime> {
    "[0-9*]{14}\\.[0-9]{6}[+-][0-9]{3}".prop_map(|s| s.parse().unwrap())
}

prop_compose! {
    fn entries()(
        name in text(),
        addresses in prop::collection::vec(text(), 0..4),
        comment in prop::option::of(text()),
    ) -> WinProv_EmailEntry {
        WinProv_EmailEntry { Name: name, Addresses: addresses, Comment: comment }
    }
}

prop_compose! {
    fn routes()(
        domain in text(),
        keys in (any::<u32>(), any::<i64>(), any::<u64>(), any::<i32>(), any::<bool>()),
        since in datetime(),
        via in prop::option::of(text()),
        weight in any::<i32>(),
    ) -> WinProv_Route {
        let (port, metric, id, offset, secure) = keys;
        WinProv_Route {
            Domain: domain,
            Port: port,
            Metric: metric,
            Id: id,
            Offset: offset,
            Secure: secure,
            Since: since,
            Via: via,
            Weight: weight,
        }
    }
}

proptest! {
    #[test]
    fn entries_round_trip_through_instances(entry in entries()) {
        let instance = Instance::from(&entry);
        prop_assert_eq!(instance.class(), "WinProv_EmailEntry");
        let names: Vec<&str> = instance.properties().map(|(name, _)| name).collect();
        prop_assert_eq!(names, ["Addresses", "Comment", "Name"]);
        prop_assert_eq!(instance.get("Name"), Some(&Value::Str(entry.Name.clone())));
        prop_assert_eq!(WinProv_EmailEntry::try_from(&instance), Ok(entry));
    }

    #[test]
    fn routes_round_trip_through_instances(route in routes()) {
        let instance = Instance::from(route.clone());
        prop_assert_eq!(instance.get("Id"), Some(&Value::U64(route.Id)));
        prop_assert_eq!(instance.get("Since"), Some(&Value::Str(route.Since.to_string())));
        prop_assert_eq!(WinProv_Route::from_instance(&instance), Ok(route));
    }

    #[test]
    fn events_round_trip_through_instances(name in text(), change in any::<u32>(), at in prop::option::of(datetime())) {
        let event = WinProv_EntryChanged { Name: name, Change: change, At: at };
        prop_assert_eq!(WinProv_EntryChanged::try_from(&Instance::from(&event)), Ok(event));
    }

    #[test]
    fn method_parameters_round_trip(
        new_name in text(),
        force in prop::option::of(any::<bool>()),
        result in any::<u32>(),
        old_name in prop::option::of(text()),
    ) {
        let input = RenameIn { NewName: new_name, Force: force };
        let instance = Instance::from(&input);
        prop_assert_eq!(instance.class(), "__PARAMETERS");
        prop_assert_eq!(RenameIn::from_parameters(Some(&instance)), Ok(input));
        let output = RenameOut { ReturnValue: result, OldName: old_name };
        let instance = Instance::from(&output);
        prop_assert_eq!(instance.get("ReturnValue"), Some(&Value::U32(result)));
        prop_assert_eq!(RenameOut::try_from(&instance), Ok(output));
    }

    /// path → parse → the same keys, in WMI's relative-path form and in the other forms WMI
    /// accepts: the one-key form, a namespace before the class, names in another case.
    #[test]
    fn entry_paths_read_back_as_their_key(entry in entries()) {
        let path = entry.path();
        let quoted = path.strip_prefix("WinProv_EmailEntry.Name=").expect("the relative path");
        let key = (entry.Name.clone(),);
        prop_assert_eq!(WinProv_EmailEntry::path_of(&key), path.clone());
        for form in [
            path.clone(),
            format!("WinProv_EmailEntry={quoted}"),
            format!("\\\\.\\root\\winprov:{path}"),
            format!("winprov_emailentry.NAME={quoted}"),
        ] {
            prop_assert_eq!(WinProv_EmailEntry::parse_path(&form), Ok(key.clone()), "{}", form);
        }
    }

    #[test]
    fn route_paths_read_back_as_their_keys(route in routes()) {
        let path = route.path();
        prop_assert_eq!(WinProv_Route::parse_path(&path), Ok(route.key()));
        // Keys in another order are the same keys.
        let (class, keys) = path.split_once('.').unwrap();
        let mut parts = split_keys(keys);
        parts.reverse();
        let reversed = format!("{class}.{}", parts.join(","));
        prop_assert_eq!(WinProv_Route::parse_path(&reversed), Ok(route.key()));
    }
}

/// The `Name=value` parts of a path's key list (commas inside quotes are not separators).
fn split_keys(keys: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted, mut escaped) =
        (Vec::new(), String::new(), false, false);
    for c in keys.chars() {
        match (c, quoted, escaped) {
            (_, true, true) => escaped = false,
            ('\\', true, false) => escaped = true,
            ('"', _, false) => quoted = !quoted,
            (',', false, _) => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

#[test]
fn paths_are_wmis_relative_paths() {
    let tricky = entry(r#"a "quoted" \ name"#, &[], None);
    assert_eq!(
        tricky.path(),
        r#"WinProv_EmailEntry.Name="a \"quoted\" \\ name""#
    );
    let route = WinProv_Route {
        Domain: "example.org".into(),
        Port: 25,
        Metric: -3,
        Id: u64::MAX,
        Offset: -1,
        Secure: true,
        Since: "20240131120000.000000+060".parse().unwrap(),
        Via: None,
        Weight: 0,
    };
    // Keys in alphabetical order, whatever the declaration's.
    assert_eq!(
        route.path(),
        "WinProv_Route.Domain=\"example.org\",Id=18446744073709551615,Metric=-3,Offset=-1,\
         Port=25,Secure=TRUE,Since=\"20240131120000.000000+060\""
    );
    assert_eq!(
        WinProv_Route::KEYS,
        [
            "Domain", "Port", "Metric", "Id", "Offset", "Secure", "Since"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Failures and their codes

#[test]
fn a_missing_key_or_required_property_is_invalid_parameter() {
    let full = Instance::from(entry("alice", &["192.0.2.1:25"], Some("A")));
    for (property, missing) in [
        ("Name", None),
        ("Name", Some(Value::Null)),
        ("Addresses", None),
    ] {
        let mut instance = Instance::new("WinProv_EmailEntry");
        for (name, value) in full.properties().filter(|(name, _)| *name != property) {
            instance.set(name, value.clone());
        }
        if let Some(value) = missing {
            instance.set(property, value);
        }
        let error = WinProv_EmailEntry::try_from(&instance).unwrap_err();
        assert_eq!(
            error,
            ClassError::MissingProperty {
                class: "WinProv_EmailEntry",
                property: if property == "Name" {
                    "Name"
                } else {
                    "Addresses"
                },
            }
        );
        assert_eq!(error.hresult(), HResult::WBEM_E_INVALID_PARAMETER);
    }
    // An optional property may be missing or NULL.
    let mut instance = full.clone();
    instance.set("Comment", Value::Null);
    assert_eq!(
        WinProv_EmailEntry::try_from(&instance).unwrap().Comment,
        None
    );
    let without = Instance::new("WinProv_EmailEntry")
        .with("Name", Value::Str("bob".into()))
        .with("Addresses", Value::StrArray(vec![]));
    assert_eq!(
        WinProv_EmailEntry::try_from(&without),
        Ok(entry("bob", &[], None))
    );
}

#[test]
fn a_value_of_another_cim_type_is_a_type_mismatch() {
    let base = Instance::from(entry("alice", &[], None));
    for (property, value, expected, found) in [
        ("Name", Value::U32(5), "string", "uint32"),
        ("Addresses", Value::Str("x".into()), "string[]", "string"),
        ("Comment", Value::Bool(true), "string", "boolean"),
    ] {
        let error = WinProv_EmailEntry::try_from(&base.clone().with(property, value)).unwrap_err();
        let ClassError::TypeMismatch {
            owner,
            name,
            expected: cim,
            found: was,
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!((*owner, *name), ("WinProv_EmailEntry", property));
        assert_eq!((cim.to_string().as_str(), *was), (expected, found));
        assert_eq!(error.hresult(), HResult::WBEM_E_TYPE_MISMATCH);
    }
    // A sint32 is not a uint32, nor a string a datetime.
    let event = Instance::from(WinProv_EntryChanged {
        Name: "x".into(),
        Change: 1,
        At: None,
    });
    for (property, value) in [
        ("Change", Value::I32(1)),
        ("At", Value::Str("2024-01-31".into())),
    ] {
        let error = WinProv_EntryChanged::try_from(&event.clone().with(property, value));
        assert_eq!(error.unwrap_err().hresult(), HResult::WBEM_E_TYPE_MISMATCH);
    }
}

#[test]
fn an_instance_of_another_class_is_an_invalid_class() {
    let mut other = Instance::new("WinProv_Other");
    for (name, value) in Instance::from(entry("alice", &[], None)).properties() {
        other.set(name, value.clone());
    }
    let error = WinProv_EmailEntry::try_from(&other).unwrap_err();
    assert_eq!(
        error,
        ClassError::WrongClass {
            expected: "WinProv_EmailEntry",
            found: "WinProv_Other".into()
        }
    );
    assert_eq!(error.hresult(), HResult::WBEM_E_INVALID_CLASS);
    assert_eq!(HResult::from(error), HResult::WBEM_E_INVALID_CLASS);
    // WMI's class names ignore case.
    let mut lower = Instance::new("winprov_emailentry");
    for (name, value) in other.properties() {
        lower.set(name, value.clone());
    }
    assert!(WinProv_EmailEntry::try_from(&lower).is_ok());
}

#[test]
fn method_parameters_missing_or_mistyped_keep_their_codes() {
    // No in-parameters at all: the required NewName is missing.
    let error = RenameIn::from_parameters(None).unwrap_err();
    assert_eq!(
        error,
        ClassError::MissingParameter {
            method: "Rename",
            parameter: "NewName"
        }
    );
    assert_eq!(error.hresult(), HResult::WBEM_E_INVALID_METHOD_PARAMETERS);
    // A method without in-parameters reads them from nothing.
    assert_eq!(CountIn::from_parameters(None), Ok(CountIn {}));
    let mistyped = Instance::new("__PARAMETERS").with("NewName", Value::I64(1));
    assert_eq!(
        RenameIn::from_parameters(Some(&mistyped))
            .unwrap_err()
            .hresult(),
        HResult::WBEM_E_TYPE_MISMATCH
    );
    let not_parameters = Instance::from(entry("alice", &[], None));
    assert_eq!(
        RenameIn::from_parameters(Some(&not_parameters))
            .unwrap_err()
            .hresult(),
        HResult::WBEM_E_INVALID_CLASS
    );
    // Out-parameters without their ReturnValue.
    assert_eq!(
        RenameOut::try_from(&Instance::new("__PARAMETERS")),
        Err(ClassError::MissingParameter {
            method: "Rename",
            parameter: "ReturnValue"
        })
    );
    assert_eq!(
        (RenameIn::CLASS, RenameIn::METHOD, CountOut::METHOD),
        ("WinProv_EmailEntry", "Rename", "Count")
    );
}

#[test]
fn malformed_paths_are_invalid_object_paths_and_other_classes_invalid_classes() {
    for path in [
        "",
        "WinProv_EmailEntry",
        "WinProv_EmailEntry.Name",
        "WinProv_EmailEntry.Name=alice",
        "WinProv_EmailEntry.Name=\"alice",
        "WinProv_EmailEntry.Name=\"a\\lice\"",
        "WinProv_EmailEntry.Name=\"alice\",Name=\"bob\"",
        "WinProv_EmailEntry.Name=\"alice\",Other=1",
        "WinProv_EmailEntry.Nom=\"alice\"",
        "WinProv_EmailEntry.Name=5",
        "WinProv_EmailEntry.Name=\"alice\"x",
        "WinProv_EmailEntry=@",
    ] {
        let error = WinProv_EmailEntry::parse_path(path).unwrap_err();
        assert!(
            matches!(error, ClassError::InvalidPath { .. }),
            "{path}: {error}"
        );
        assert_eq!(
            error.hresult(),
            HResult::WBEM_E_INVALID_OBJECT_PATH,
            "{path}"
        );
    }
    let good = "WinProv_Route.Domain=\"d\",Id=1,Metric=2,Offset=3,Port=4,Secure=FALSE,\
                Since=\"20240131120000.000000+060\"";
    assert!(WinProv_Route::parse_path(good).is_ok());
    for path in [
        // The one-key form for a class of several keys.
        "WinProv_Route=\"d\"".to_string(),
        // A key missing, out of range, of another type; a datetime that is none.
        good.replace("Id=1,", ""),
        good.replace("Port=4", "Port=4294967296"),
        good.replace("Port=4", "Port=-4"),
        good.replace("Secure=FALSE", "Secure=0x1"),
        good.replace("Secure=FALSE", "Secure=\"FALSE\""),
        good.replace("Domain=\"d\"", "Domain=7"),
        good.replace("+060", "+60"),
    ] {
        let error = WinProv_Route::parse_path(&path).unwrap_err();
        assert_eq!(
            error.hresult(),
            HResult::WBEM_E_INVALID_OBJECT_PATH,
            "{path}"
        );
    }
    let error = WinProv_EmailEntry::parse_path("WinProv_Route.Domain=\"d\"").unwrap_err();
    assert_eq!(error.hresult(), HResult::WBEM_E_INVALID_CLASS);
}

/// R-WMI-7: a provider of a derived class fills only the class's own properties — the
/// instance of an event class carries its three, none of `__ExtrinsicEvent`'s.
#[test]
fn r_wmi_7_a_derived_class_fills_only_its_own_properties() {
    let event = Instance::from(WinProv_EntryChanged {
        Name: "alice".into(),
        Change: 0,
        At: Some("20240131120000.000000+060".parse().unwrap()),
    });
    let names: Vec<&str> = event.properties().map(|(name, _)| name).collect();
    assert_eq!(names, ["At", "Change", "Name"]);
    let definition = WinProv_EntryChanged::definition();
    assert_eq!(definition.superclass(), Some("__ExtrinsicEvent"));
    assert!(definition.properties().iter().all(|p| !p.is_key()));
}

// ---------------------------------------------------------------------------------------------
// A provider written against the classes

/// An e-mail directory served through its typed classes.
struct Directory {
    entries: Mutex<Vec<WinProv_EmailEntry>>,
}

impl Directory {
    fn new() -> Self {
        Self {
            entries: Mutex::new(vec![
                entry("alice", &["192.0.2.1:25"], Some("Alice")),
                entry(r#"b"ob\"#, &[], None),
            ]),
        }
    }
}

impl InstanceProvider for Directory {
    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        let (name,) = match WinProv_EmailEntry::parse_path(path) {
            Ok(key) => key,
            Err(error) => return call.fail(error.hresult()),
        };
        let entries = self.entries.lock().unwrap();
        let found = entries.iter().find(|e| e.Name == name).map(Instance::from);
        drop(entries);
        call.complete(Ok(found))
    }

    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        let entries = self.entries.lock().unwrap().clone();
        for entry in entries {
            if call.indicate(entry.into()).is_err() {
                break;
            }
        }
        call.finish(Ok(()))
    }

    fn put<'call>(&self, instance: Instance, call: PutCall<'call>) -> Completed<'call> {
        let entry = match WinProv_EmailEntry::try_from(&instance) {
            Ok(entry) => entry,
            Err(error) => return call.complete(Err(error.hresult())),
        };
        let path = entry.path();
        self.entries.lock().unwrap().push(entry);
        call.complete(Ok(path))
    }
}

impl MethodProvider for Directory {
    fn exec_method<'call>(
        &self,
        _path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
        call: MethodCall<'call>,
    ) -> Completed<'call> {
        match method {
            CountIn::METHOD => {
                if let Err(error) = CountIn::from_parameters(in_parameters) {
                    return call.complete(Err(error.hresult()));
                }
                let count = self.entries.lock().unwrap().len() as u32;
                call.complete(Ok(Some(CountOut { ReturnValue: count }.into())))
            }
            RenameIn::METHOD => {
                let input = match RenameIn::from_parameters(in_parameters) {
                    Ok(input) => input,
                    Err(error) => return call.complete(Err(error.hresult())),
                };
                let mut entries = self.entries.lock().unwrap();
                let old = entries
                    .first_mut()
                    .map(|e| std::mem::replace(&mut e.Name, input.NewName));
                let out = RenameOut {
                    ReturnValue: 0,
                    OldName: old,
                };
                call.complete(Ok(Some(out.into())))
            }
            _ => call.complete(Err(HResult::WBEM_E_INVALID_METHOD)),
        }
    }
}

impl EventProvider for Directory {}

impl ProviderInit for Directory {}

#[test]
fn a_provider_serves_its_typed_classes() {
    let host = Host::new(Directory::new());
    host.declare_class::<WinProv_EmailEntry>();
    let sink = host.sink();
    // Get, by the path an entry reports, in another accepted form, and a malformed one.
    let bob = entry(r#"b"ob\"#, &[], None);
    let record = host.get_object(&sink, &bob.path(), CallFlags::empty());
    assert_eq!(record.indicated, [Instance::from(&bob)]);
    let record = host.get_object(&sink, r#"WinProv_EmailEntry='b"ob\\'"#, CallFlags::empty());
    assert_eq!(record.indicated, [Instance::from(&bob)]);
    let record = host.get_object(&sink, "WinProv_EmailEntry.Name=bob", CallFlags::empty());
    assert_eq!(
        record.status,
        Some((HResult::WBEM_E_INVALID_OBJECT_PATH, None))
    );
    // Enumerate; put reports the typed path (R-WMI-9); a put without the key is refused.
    let record = host.enumerate(&sink, "WinProv_EmailEntry", CallFlags::empty());
    let entries: Vec<WinProv_EmailEntry> = record
        .indicated
        .iter()
        .map(|i| i.try_into().unwrap())
        .collect();
    assert_eq!(entries, Directory::new().entries.into_inner().unwrap());
    let carol = entry("carol", &["198.51.100.7:587"], None);
    let record = host.put(&sink, carol.into(), CallFlags::empty());
    assert_eq!(
        record.status,
        Some((
            HResult::S_OK,
            Some(r#"WinProv_EmailEntry.Name="carol""#.into())
        ))
    );
    let keyless = Instance::new("WinProv_EmailEntry").with("Addresses", Value::StrArray(vec![]));
    let record = host.put(&sink, keyless, CallFlags::empty());
    assert_eq!(
        record.status,
        Some((HResult::WBEM_E_INVALID_PARAMETER, None))
    );
    // Methods: typed out-parameters (R-WMI-8's one object), and in-parameters checked.
    let record = host.exec_method(
        &sink,
        "WinProv_EmailEntry",
        "Count",
        None,
        CallFlags::empty(),
    );
    assert_eq!(record.indicated, [Instance::out_parameters(Value::U32(3))]);
    let input = Instance::from(RenameIn {
        NewName: "alicia".into(),
        Force: None,
    });
    let record = host.exec_method(
        &sink,
        &entry("alice", &[], None).path(),
        "Rename",
        Some(&input),
        CallFlags::empty(),
    );
    assert_eq!(
        RenameOut::try_from(&record.indicated[0]),
        Ok(RenameOut {
            ReturnValue: 0,
            OldName: Some("alice".into())
        })
    );
    let record = host.exec_method(
        &sink,
        "WinProv_EmailEntry",
        "Rename",
        None,
        CallFlags::empty(),
    );
    assert_eq!(
        record.status,
        Some((HResult::WBEM_E_INVALID_METHOD_PARAMETERS, None))
    );
}

// ---------------------------------------------------------------------------------------------
// The MOF

fn directory_mof(hosting: Hosting) -> Mof {
    let registration = Registration::new(PROVIDER, hosting)
        .instances(
            InstanceRegistration::new()
                .supports_get()
                .supports_put()
                .supports_enumeration()
                .query_support_levels(["WQL:UnarySelect"]),
        )
        .methods()
        .events(["SELECT * FROM WinProv_EntryChanged"]);
    let registration = match hosting {
        Hosting::Decoupled => registration.security_descriptor("O:BAG:BAD:(A;;0x1;;;BA)"),
        _ => registration,
    };
    Mof::new(r"root\winprov")
        .create_namespace()
        .autorecover()
        .class::<WinProv_EmailEntry>()
        .class::<WinProv_EntryChanged>()
        .class::<WinProv_Route>()
        .provider(registration)
}

/// Compares `text` with the golden file `name`, or rewrites it under `WINPROV_BLESS=1`.
fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("WINPROV_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("\r\n", "\n");
    if expected != text {
        let line = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(text.lines().count()));
        panic!(
            "the MOF written from the class descriptions differs from {} at line {}:\n  \
             checked in: {:?}\n  written:    {:?}\nreview the change, then rewrite the file with \
             `WINPROV_BLESS=1 cargo test -p winprov-wbem --test classes`",
            path.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            text.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

#[test]
fn the_mof_is_the_checked_in_golden_mof() {
    let hosted = directory_mof(Hosting::NetworkService { clsid: CLSID });
    golden("email_directory.mof", &hosted.install().unwrap());
    golden(
        "email_directory.uninstall.mof",
        &hosted.uninstall().unwrap(),
    );
    let decoupled = directory_mof(Hosting::Decoupled);
    golden(
        "email_directory.decoupled.mof",
        &decoupled.install().unwrap(),
    );
}

/// R-WMI-16 (the MOF half): a decoupled provider's `__Win32Provider` names WMI's adapter and
/// `HostingModel = "Decoupled:Com"`; an in-process one its own CLSID.
#[test]
fn r_wmi_16_a_decoupled_provider_registers_with_the_decoupled_hosting_model() {
    let text = directory_mof(Hosting::Decoupled).install().unwrap();
    assert!(text.contains("    HostingModel = \"Decoupled:Com\";\n"));
    assert!(text.contains(&format!("    CLSID = \"{DECOUPLED_CLSID}\";\n")));
    let text = directory_mof(Hosting::NetworkService { clsid: CLSID })
        .install()
        .unwrap();
    assert!(text.contains("    HostingModel = \"NetworkServiceHost\";\n"));
    assert!(text.contains("    CLSID = \"{6D2B54E2-0C55-4D1F-9A55-0B7E91A46C01}\";\n"));
}

#[test]
fn the_mof_is_written_from_the_classes_as_declared() {
    let text = directory_mof(Hosting::NetworkService { clsid: CLSID })
        .install()
        .unwrap();
    // Every property and parameter of the descriptions, with its CIM type.
    for line in [
        "    [key, read, description(\"The name looked up\")] string Name;\n",
        "    [read, write, description(\"The addresses the name resolves to (host:port)\")] string Addresses[];\n",
        "    [static, implemented, description(\"How many entries the directory holds\")] uint32 Count();\n",
        "    [implemented] uint32 Rename([in, ID(0), description(\"The entry's new name\")] string NewName, [in, ID(1)] boolean Force, [out, ID(2), description(\"The name the entry had\")] string OldName);\n",
        "class WinProv_EntryChanged : __ExtrinsicEvent\n",
        "    [Values{\"Added\", \"Changed\", \"Removed\"}, ValueMap{\"0\", \"1\", \"2\"}] uint32 Change;\n",
        "    datetime At;\n",
        "    [key] uint64 Id;\n",
        "    [key, description(\"When the route was learned\")] datetime Since;\n",
        "    [MaxLen(64), read(FALSE)] string Via;\n",
    ] {
        assert!(text.contains(line), "{line}");
    }
}

#[test]
fn a_mof_that_would_not_register_is_refused() {
    let hosting = Hosting::NetworkService { clsid: CLSID };
    let entries = || Mof::new(r"root\winprov").class::<WinProv_EmailEntry>();
    let instances = || Registration::new(PROVIDER, hosting).instances(InstanceRegistration::new());
    // The class names a provider the MOF does not register.
    assert_eq!(
        entries()
            .provider(Registration::new("Other", hosting).methods())
            .install(),
        Err(MofError::UnknownProvider {
            class: "WinProv_EmailEntry",
            provider: PROVIDER.into()
        })
    );
    assert!(matches!(
        entries().install(),
        Err(MofError::UnknownProvider { .. })
    ));
    // A class or provider declared twice; a provider of no role; a namespace not under root.
    assert!(matches!(
        entries()
            .class::<WinProv_EmailEntry>()
            .provider(instances())
            .install(),
        Err(MofError::Duplicate { .. })
    ));
    assert!(matches!(
        entries()
            .provider(instances())
            .provider(instances())
            .uninstall(),
        Err(MofError::Duplicate { .. })
    ));
    assert_eq!(
        entries()
            .provider(Registration::new(PROVIDER, hosting))
            .install(),
        Err(MofError::NoRole {
            provider: PROVIDER.into()
        })
    );
    for namespace in ["winprov", r"root\", r"\\.\root\winprov", r"root\win prov"] {
        assert!(matches!(
            Mof::new(namespace).install(),
            Err(MofError::InvalidNamespace { .. })
        ));
    }
    assert!(entries().provider(instances()).install().is_ok());
}

wmi_class! {
    [dynamic]
    class WinProv_Orphan {
        key { Name: String }
    }
}

wmi_class! {
    [read, Read]
    class WinProv_Twice {
        key { Name: String }
    }
}

wmi_class! {
    class WinProv_Parameters {
        key { Name: String }
        methods {
            fn Run(RunIn { ReturnValue: u32 }) -> RunOut { ReturnValue: u32 };
        }
    }
}

#[test]
fn a_class_mof_would_reject_is_refused() {
    let mof = |m: Mof| m.provider(Registration::new(PROVIDER, Hosting::Decoupled).methods());
    assert_eq!(
        mof(Mof::new("root").class::<WinProv_Orphan>()).install(),
        Err(MofError::DynamicWithoutProvider {
            class: "WinProv_Orphan"
        })
    );
    assert!(matches!(
        mof(Mof::new("root").class::<WinProv_Twice>()).install(),
        Err(MofError::Duplicate { name, .. }) if name == "Read"
    ));
    assert!(matches!(
        mof(Mof::new("root").class::<WinProv_Parameters>()).install(),
        Err(MofError::Duplicate { name, .. }) if name == "ReturnValue"
    ));
}

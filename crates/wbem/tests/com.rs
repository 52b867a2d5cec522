//! The COM layer at its edges, through the provider object's vtables: NULL and malformed
//! arguments, `VARIANT`s of the wrong type, the CIM conventions of every value both ways,
//! panics of the author's code, and the live COM objects of both sides after a run.

use std::sync::Mutex;
use winprov_wbem::CallFlags;
use winprov_wbem::testing::{Cim, ClientObject, Dll, EventLog, Host, Raw};
use winprov_wbem::{
    Completed, EventProvider, EventSink, GetCall, HResult, Instance, InstanceProvider, MethodCall,
    MethodProvider, ProviderInit, PutCall, Response, Value,
};
use winprov_wbem::{GUID, Server};

/// Records what it is given and answers with what it is told.
#[derive(Default)]
struct Echo {
    put: Mutex<Vec<Instance>>,
    answer: Mutex<Option<Instance>>,
    methods: Mutex<Vec<Option<Instance>>>,
}

impl ProviderInit for Echo {}
impl InstanceProvider for Echo {
    fn get_object<'call>(&self, _path: &str, call: GetCall<'call>) -> Completed<'call> {
        let answer = self.answer.lock().unwrap().clone();
        call.complete(Ok(answer))
    }
    fn put<'call>(&self, instance: Instance, call: PutCall<'call>) -> Completed<'call> {
        self.put.lock().unwrap().push(instance);
        call.complete(Ok("Typed=@".into()))
    }
}
impl MethodProvider for Echo {
    fn exec_method<'call>(
        &self,
        _path: &str,
        _method: &str,
        in_parameters: Option<&Instance>,
        call: MethodCall<'call>,
    ) -> Completed<'call> {
        self.methods.lock().unwrap().push(in_parameters.cloned());
        call.complete(Ok(Some(Instance::out_parameters(Value::U32(u32::MAX)))))
    }
}
impl EventProvider for Echo {}

fn every_kind() -> Instance {
    Instance::new("Typed")
        .with("Flag", Value::Bool(true))
        .with("Small", Value::I32(-7))
        .with("Count", Value::U32(u32::MAX))
        .with("Offset", Value::I64(i64::MIN))
        .with("Size", Value::U64(u64::MAX))
        .with("Name", Value::Str("ünï".into()))
        .with(
            "Tags",
            Value::StrArray(vec!["a".into(), String::new(), "c".into()]),
        )
        .with("Nothing", Value::Null)
}

fn declare_typed(host: &Host<Echo>) {
    host.declare(
        "Typed",
        &[
            ("Flag", Cim::Boolean),
            ("Small", Cim::Sint32),
            ("Count", Cim::Uint32),
            ("Offset", Cim::Sint64),
            ("Size", Cim::Uint64),
            ("Name", Cim::String),
            ("Tags", Cim::StringArray),
            ("Nothing", Cim::String),
        ],
    );
}

#[test]
fn every_value_crosses_as_wmi_types_it_both_ways() {
    let host = Host::new(Echo::default());
    declare_typed(&host);
    let sink = host.sink();
    // In: the client's object (uint32 as VT_I4, 64-bit integers as strings) becomes the
    // instance the author gets.
    let record = host.put(&sink, every_kind(), CallFlags::empty());
    assert_eq!(record.status, Some((HResult::S_OK, Some("Typed=@".into()))));
    assert_eq!(
        *host.runtime().provider().put.lock().unwrap(),
        [every_kind()]
    );
    // Out: the author's instance is put property by property into an instance of the declared
    // class, which accepts only the CIM types it declares.
    *host.runtime().provider().answer.lock().unwrap() = Some(every_kind());
    let record = host.get_object(&sink, "Typed=@", CallFlags::empty());
    assert_eq!(record.indicated, [every_kind()]);
    // Method in- and out-parameters.
    let record = host.exec_method(
        &sink,
        "Typed=@",
        "Reset",
        Some(&every_kind()),
        CallFlags::empty(),
    );
    assert_eq!(
        record.indicated,
        [Instance::out_parameters(Value::U32(u32::MAX))]
    );
    assert_eq!(
        *host.runtime().provider().methods.lock().unwrap(),
        [Some(every_kind())]
    );
}

#[test]
fn wrong_variant_types_are_refused_before_the_call_runs() {
    let host = Host::new(Echo::default());
    let sink = host.sink();
    let wrong = [
        ClientObject::new("Typed").with("Size", Cim::Uint64.raw(), Raw::I4(5)),
        ClientObject::new("Typed").with("Size", Cim::Uint64.raw(), Raw::Bstr("-1".into())),
        ClientObject::new("Typed").with("Count", Cim::Uint32.raw(), Raw::Bstr("5".into())),
        ClientObject::new("Typed").with("Flag", Cim::Boolean.raw(), Raw::I4(1)),
        ClientObject::new("Typed").with("Ratio", Cim::Real64.raw(), Raw::R8(0.5)),
        ClientObject::new("Typed").with("Tags", Cim::String.raw(), Raw::Strings(vec![])),
    ];
    for object in &wrong {
        let record = host.put_object(&sink, Some(object), CallFlags::empty());
        assert_eq!(
            record.returned,
            Some(HResult::WBEM_E_TYPE_MISMATCH),
            "{object:?}"
        );
        assert_eq!(record.finals, 0);
    }
    assert!(host.runtime().provider().put.lock().unwrap().is_empty());
    // Untyped properties are taken by their VARIANT's own type.
    let untyped =
        ClientObject::new("Loose")
            .with("N", 0, Raw::I4(3))
            .with("S", 0, Raw::Bstr("s".into()));
    assert_eq!(
        host.put_object(&sink, Some(&untyped), CallFlags::empty())
            .finals,
        1
    );
    assert_eq!(
        host.runtime().provider().put.lock().unwrap()[0],
        Instance::new("Loose")
            .with("N", Value::I32(3))
            .with("S", Value::Str("s".into()))
    );
}

#[test]
fn a_value_the_class_does_not_take_fails_the_call_instead_of_vanishing() {
    let host = Host::new(Echo::default());
    declare_typed(&host);
    *host.runtime().provider().answer.lock().unwrap() =
        Some(Instance::new("Typed").with("Count", Value::Str("many".into())));
    let record = host.get_object(&host.sink(), "Typed=@", CallFlags::empty());
    assert!(record.indicated.is_empty());
    assert_eq!(record.status, Some((HResult::WBEM_E_TYPE_MISMATCH, None)));
    // A property the class does not have.
    *host.runtime().provider().answer.lock().unwrap() =
        Some(Instance::new("Typed").with("Colour", Value::Str("red".into())));
    let record = host.get_object(&host.sink(), "Typed=@", CallFlags::empty());
    assert_eq!(record.status, Some((HResult::WBEM_E_NOT_FOUND, None)));
}

#[test]
fn null_and_malformed_arguments_get_documented_codes() {
    let host = Host::new(Echo::default());
    let sink = host.sink();
    assert_eq!(
        host.get_object_without_sink("Typed=@"),
        HResult::WBEM_E_INVALID_PARAMETER
    );
    assert_eq!(
        host.cancel_without_sink(),
        HResult::WBEM_E_INVALID_PARAMETER
    );
    // A NULL BSTR is the empty string.
    let record = host.get_object(&sink, "", CallFlags::empty());
    assert_eq!(record.returned, Some(HResult::WBEM_E_INVALID_OBJECT_PATH));
    assert_eq!(
        host.enumerate(&sink, "", CallFlags::empty()).returned,
        Some(HResult::WBEM_E_INVALID_CLASS)
    );
    assert_eq!(
        host.query(&sink, "", CallFlags::empty()).returned,
        Some(HResult::WBEM_E_INVALID_QUERY)
    );
    assert_eq!(
        host.delete(&sink, "", CallFlags::empty()).returned,
        Some(HResult::WBEM_E_INVALID_OBJECT_PATH)
    );
    assert_eq!(
        host.exec_method(&sink, "Typed=@", "", None, CallFlags::empty())
            .returned,
        Some(HResult::WBEM_E_INVALID_METHOD)
    );
    // A NULL instance to put.
    let record = host.put_object(&sink, None, CallFlags::empty());
    assert_eq!(record.returned, Some(HResult::WBEM_E_INVALID_PARAMETER));
    // A method call without in-parameters is fine.
    assert_eq!(
        host.exec_method(&sink, "Typed=@", "Reset", None, CallFlags::empty())
            .finals,
        1
    );
}

/// Panics wherever it can.
struct Panicky;

impl ProviderInit for Panicky {}
impl InstanceProvider for Panicky {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        call.indicate(Instance::new("Entry")).unwrap();
        panic!("enumerate broke")
    }
}
impl MethodProvider for Panicky {}
impl EventProvider for Panicky {
    fn provide_events(&self, _sink: EventSink, _flags: i32) -> Result<(), HResult> {
        panic!("provide_events broke")
    }
}
impl Drop for Panicky {
    fn drop(&mut self) {
        panic!("drop broke")
    }
}

#[test]
fn a_panicking_provider_never_unwinds_into_wmi() {
    let host = Host::new(Panicky);
    let record = host.enumerate(&host.sink(), "Entry", CallFlags::empty());
    assert_eq!(record.returned, Some(HResult::S_OK));
    // The instance was still batched when the author panicked: it is not sent.
    assert!(record.batches.is_empty());
    assert_eq!(record.status, Some((HResult::WBEM_E_FAILED, None)));
    assert_eq!(
        host.provide_events(&EventLog::answering([]), 0),
        HResult::WBEM_E_FAILED
    );
    // The provider's Drop panics in the last Release: caught there too.
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
}

#[test]
fn every_com_object_is_released_after_a_run() {
    let host = Host::new(Echo::default());
    declare_typed(&host);
    let sinks = [host.sink(), host.sink()];
    *host.runtime().provider().answer.lock().unwrap() = Some(every_kind());
    for round in 0..20 {
        let sink = &sinks[round % 2];
        host.get_object(sink, "Typed=@", CallFlags::empty());
        host.put(sink, every_kind(), CallFlags::empty());
        host.exec_method(
            sink,
            "Typed=@",
            "Reset",
            Some(&every_kind()),
            CallFlags::empty(),
        );
        host.cancel(sink);
    }
    assert!(host.module().objects() >= 1);
    drop(sinks);
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
}

/// Indicates [`mixed`]: instances of two classes, interleaved.
struct Mixed;

impl ProviderInit for Mixed {}
impl InstanceProvider for Mixed {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        for instance in mixed() {
            if call.indicate(instance).is_err() {
                break;
            }
        }
        call.finish(Ok(()))
    }
}
impl MethodProvider for Mixed {}
impl EventProvider for Mixed {}

/// 100 instances, of `Alpha` (every third) and `Beta`, each with a name longer than the short
/// names the conversion encodes on the stack, and strings of 0 to 990 bytes (120 to 129
/// around that limit).
fn mixed() -> Vec<Instance> {
    let long_name = format!("Long{}", "ë".repeat(150));
    (0..100)
        .map(|i| {
            let class = if i % 3 == 0 { "Alpha" } else { "Beta" };
            Instance::new(class)
                .with("Index", Value::Str(i.to_string()))
                .with("Edge", Value::Str("e".repeat(120 + i % 10)))
                .with(long_name.as_str(), Value::Str("ü".repeat(i * 5)))
        })
        .collect()
}

#[test]
fn each_object_is_spawned_from_its_own_class_fetched_once_per_call() {
    let host = Host::new(Mixed);
    let record = host.enumerate(&host.sink(), "Alpha", CallFlags::empty());
    assert_eq!(record.status, Some((HResult::S_OK, None)));
    assert_eq!(record.batches, [64, 36]);
    assert_eq!(record.indicated, mixed());
    // Each class definition is asked of the namespace once in the call, whatever the batches.
    let paths: Vec<String> = host.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["Alpha", "Beta"]);
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
}

const CLSID: GUID = GUID::from_u128(0x5eed_0003_0000_4000_8000_0000_0000_0001);
static SERVER: Server<Echo> = Server::new(CLSID, Echo::new);

impl Echo {
    fn new() -> Self {
        Self::default()
    }
}

#[test]
fn the_class_factory_and_the_module_counts_decide_unloading() {
    let dll = Dll::new(&SERVER);
    assert_eq!(dll.can_unload_now(), HResult::S_OK);
    assert_eq!(
        dll.get_class_object(GUID::from_u128(7)).err(),
        Some(HResult::CLASS_E_CLASSNOTAVAILABLE)
    );
    assert_eq!(dll.get_class_object_without_out(), HResult::E_POINTER);
    let factory = dll.get_class_object(CLSID).unwrap();
    assert_eq!(
        dll.can_unload_now(),
        HResult::S_FALSE,
        "the factory is alive"
    );
    assert_eq!(
        factory.create_instance(true).err(),
        Some(HResult::CLASS_E_NOAGGREGATION)
    );
    assert_eq!(factory.lock_server(true), HResult::S_OK);
    drop(factory);
    assert_eq!(dll.can_unload_now(), HResult::S_FALSE, "locked");
    // An activated object, served through its vtables, holds the DLL too.
    let host = Host::activate(&SERVER);
    *host.runtime().provider().answer.lock().unwrap() = Some(Instance::new("Entry"));
    let sink = host.sink();
    assert_eq!(
        host.get_object(&sink, "Entry=@", CallFlags::empty())
            .indicated,
        [Instance::new("Entry")]
    );
    let factory = dll.get_class_object(CLSID).unwrap();
    assert_eq!(factory.lock_server(false), HResult::S_OK);
    assert_eq!(
        factory.lock_server(false),
        HResult::S_OK,
        "never below zero"
    );
    drop(factory);
    assert_eq!(
        dll.can_unload_now(),
        HResult::S_FALSE,
        "the provider object is alive"
    );
    drop(sink);
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
    assert_eq!(SERVER.module().locks(), 0);
    assert_eq!(dll.can_unload_now(), HResult::S_OK);
    // Off Windows there is no registry: unregistering what is not registered succeeds.
    assert_eq!(dll.unregister_server(), HResult::S_OK);
}

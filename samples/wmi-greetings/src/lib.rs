//! A WMI instance provider of `Winprov_Greeting` (key `Language`, property `Text`): the
//! smallest provider the framework serves, built as the in-process COM server DLL WMI loads.
//! Its exports (`DllGetClassObject`, `DllCanUnloadNow`, `DllRegisterServer`,
//! `DllUnregisterServer`) are the one line of [`winprov_wbem::export_provider!`] below.
#![forbid(unsafe_code)]

use winprov_wbem::{
    Completed, EventProvider, GUID, GetCall, Instance, InstanceProvider, MethodProvider,
    ProviderInit, Response, Value,
};

/// The provider's COM class (`__Win32Provider.CLSID` in its MOF).
pub const CLSID: GUID = GUID::from_u128(0x3f0b_6c2e_5a41_4d8e_9b1f_7c2d_0e4a_6b95);

/// The greetings, by language.
const GREETINGS: [(&str, &str); 3] = [("en", "Hello"), ("fr", "Bonjour"), ("de", "Hallo")];

/// The provider: every greeting, and a get by object path.
#[derive(Debug, Default)]
pub struct Greetings;

impl Greetings {
    /// A provider (what each `CreateInstance` of the class serves).
    pub fn new() -> Self {
        Self
    }
}

/// The instance of one greeting.
pub fn greeting(language: &str, text: &str) -> Instance {
    Instance::new("Winprov_Greeting")
        .with("Language", Value::Str(language.into()))
        .with("Text", Value::Str(text.into()))
}

impl ProviderInit for Greetings {}

impl InstanceProvider for Greetings {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        for (language, text) in GREETINGS {
            if call.indicate(greeting(language, text)).is_err() {
                break;
            }
        }
        call.finish(Ok(()))
    }

    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        let found = GREETINGS
            .iter()
            .find(|(language, _)| path == format!("Winprov_Greeting.Language=\"{language}\""))
            .map(|(language, text)| greeting(language, text));
        call.complete(Ok(found))
    }
}

impl MethodProvider for Greetings {}
impl EventProvider for Greetings {}

winprov_wbem::export_provider!(CLSID, Greetings, Greetings::new);

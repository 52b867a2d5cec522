//! A WMI instance provider of one class, `Guide_Greeting`, with a fixed set of instances.
#![allow(non_snake_case, reason = "WMI's property names")]

use winprov_wbem::class::{KeyedClass, WmiClass};
use winprov_wbem::{
    Completed, EventProvider, GUID, GetCall, HResult, Hosting, Instance, InstanceProvider,
    InstanceRegistration, MethodProvider, Mof, ProviderInit, Registration, Response, wmi_class,
};

/// The provider's COM class id: the CLSID in its MOF registration and in the MSI's
/// `com-server` table.
pub const CLSID: GUID = GUID::from_u128(0x3c9e_71a2_5b04_4e8f_9d17_6a2b_c0e4_58f1);

/// The provider's name in its `__Win32Provider` registration.
pub const PROVIDER_NAME: &str = "GuideGreetings";

wmi_class! {
    /// A greeting, by language.
    [dynamic, provider(PROVIDER_NAME), description("A greeting, by language")]
    class Guide_Greeting {
        key {
            /// The language's code, `en`.
            [read] Language: String,
        }
        properties {
            /// The greeting in that language.
            [read] Text: String,
        }
    }
}

/// The MOF its installer compiles into WMI (`winprov_wbem::compile_mof`): the namespace, the
/// class, and the provider's registration by its CLSID.
pub fn mof() -> Mof {
    Mof::new(r"root\guide")
        .create_namespace()
        .class::<Guide_Greeting>()
        .provider(
            Registration::new(PROVIDER_NAME, Hosting::NetworkService { clsid: CLSID }).instances(
                InstanceRegistration::new()
                    .supports_get()
                    .supports_enumeration(),
            ),
        )
}

/// The provider: instances of `Guide_Greeting`.
#[derive(Debug, Default)]
pub struct Greetings;

impl Greetings {
    fn all() -> Vec<Guide_Greeting> {
        [("en", "Hello"), ("fr", "Bonjour")]
            .into_iter()
            .map(|(language, text)| Guide_Greeting {
                Language: language.into(),
                Text: text.into(),
            })
            .collect()
    }
}

impl InstanceProvider for Greetings {
    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        let (language,) = match Guide_Greeting::parse_path(path) {
            Ok(key) => key,
            Err(error) => return call.fail(error.hresult()),
        };
        let found = Self::all().into_iter().find(|g| g.Language == language);
        call.complete(Ok(found.map(|g| Instance::from(&g))))
    }

    fn enumerate<'call>(&self, class: &str, mut call: Response<'call>) -> Completed<'call> {
        if !class.eq_ignore_ascii_case(Guide_Greeting::NAME) {
            return call.finish(Err(HResult::WBEM_E_INVALID_CLASS));
        }
        for greeting in Self::all() {
            if call.indicate(Instance::from(&greeting)).is_err() {
                break; // cancelled: WMI has its final status already
            }
        }
        call.finish(Ok(()))
    }
}

// The roles it does not play answer WBEM_E_PROVIDER_NOT_CAPABLE; initialization is accepted.
impl MethodProvider for Greetings {}
impl EventProvider for Greetings {}
impl ProviderInit for Greetings {}

// DllGetClassObject, DllCanUnloadNow, DllRegisterServer and DllUnregisterServer.
winprov_wbem::export_provider!(CLSID, Greetings, Greetings::default);

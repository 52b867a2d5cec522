//! The WMI provider activated and driven through its COM vtables by winprov-wbem's simulator.
#![forbid(unsafe_code)]

use winprov_authoring_examples::wmi::{Greetings, Guide_Greeting};
use winprov_wbem::testing::Host;
use winprov_wbem::{CallFlags, HResult};

#[test]
fn greetings_are_enumerated_and_found_by_path() {
    let host = Host::new(Greetings);
    host.declare_class::<Guide_Greeting>();
    let sink = host.sink();

    let all = host.enumerate(&sink, "Guide_Greeting", CallFlags::empty());
    assert_eq!(all.status, Some((HResult::S_OK, None)));
    assert_eq!(all.indicated.len(), 2);

    let french = host.get_object(&sink, r#"Guide_Greeting.Language="fr""#, CallFlags::empty());
    assert_eq!(french.status, Some((HResult::S_OK, None)));
    let greeting = Guide_Greeting::try_from(&french.indicated[0]).unwrap();
    assert_eq!(greeting.Text, "Bonjour");

    let missing = host.get_object(&sink, r#"Guide_Greeting.Language="de""#, CallFlags::empty());
    assert_eq!(missing.status, Some((HResult::WBEM_E_NOT_FOUND, None)));
    assert!(missing.indicated.is_empty());

    drop(sink);
    let leftovers = host.release(); // every COM object released: the provider's and WMI's
    assert_eq!((leftovers.provider, leftovers.simulator), (0, 0));
}

#[test]
fn the_mof_registers_the_provider_by_its_clsid() {
    let text = winprov_authoring_examples::wmi::mof().install().unwrap();
    assert!(text.contains("class Guide_Greeting"), "{text}");
    assert!(
        text.contains("CLSID = \"{3C9E71A2-5B04-4E8F-9D17-6A2BC0E458F1}\";"),
        "{text}"
    );
}

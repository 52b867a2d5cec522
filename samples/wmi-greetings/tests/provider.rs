//! The sample played by the host simulator, through its COM object's vtables.

use winprov_wbem::HResult;
use winprov_wbem::testing::Host;
use wmi_greetings::{Greetings, greeting};

#[test]
fn enumerates_and_gets_greetings() {
    let host = Host::new(Greetings::new());
    let sink = host.sink();
    let all = host.enumerate(&sink, "Winprov_Greeting", 0);
    assert_eq!(all.indicated.len(), 3);
    assert_eq!(all.status, Some((HResult::S_OK, None)));
    let one = host.get_object(&sink, "Winprov_Greeting.Language=\"fr\"", 0);
    assert_eq!(one.indicated, [greeting("fr", "Bonjour")]);
    let none = host.get_object(&sink, "Winprov_Greeting.Language=\"xx\"", 0);
    assert_eq!(none.status, Some((HResult::WBEM_E_NOT_FOUND, None)));
    drop(sink);
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
}

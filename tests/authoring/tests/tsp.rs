//! The TSP driven through its TSPI_* export bodies by winprov-tspi's TAPISRV simulator.
#![forbid(unsafe_code)]

use winprov_authoring_examples::tsp::Loopback;
use winprov_tspi::testing::Host;

#[test]
fn an_outbound_call_connects_and_drops() {
    let host = Host::new(Loopback);
    host.start().unwrap();
    let line = host.open(0).unwrap();
    let call = host.make_call(line, Some("5551234"));
    assert_eq!(
        host.completion(call.request),
        Some(Ok(())),
        "lineMakeCall succeeded"
    );
    let call = call.value.unwrap();
    let dropped = host.drop_call(call);
    assert_eq!(
        host.completion(dropped.request),
        Some(Ok(())),
        "lineDrop succeeded"
    );
    assert_eq!(host.close_call(call), Ok(()));
    assert_eq!(host.close(line), Ok(()));
    host.assert_clean(); // no rule of the interface was broken on the way
}

//! The provider driven through its routine table by winprov-nspv2's Winsock simulator.
#![forbid(unsafe_code)]

use outside_provider::{FixedTable, PROVIDER_ID};
use winprov_nspv2::testing::{Host, conformance};
use winprov_nspv2::{ControlFlags, Query, WsaError};

#[test]
fn a_name_in_the_table_is_found_once() {
    let host = Host::advertise(PROVIDER_ID, FixedTable).unwrap();
    let session = host.startup().unwrap();
    let lookup = host
        .begin(
            session,
            &Query::name("alice@outside.example"),
            ControlFlags::RETURN_ALL,
        )
        .unwrap();
    let first = host.next_sized(lookup, ControlFlags::RETURN_ALL);
    assert_eq!(first.name(), Some("alice@outside.example"));
    let second = host.next_sized(lookup, ControlFlags::RETURN_ALL);
    assert_eq!(second.status(), Err(WsaError::WSA_E_NO_MORE));
    host.end(lookup).unwrap();
    host.cleanup(session).unwrap();
}

#[test]
fn an_unknown_name_is_not_found() {
    let host = Host::advertise(PROVIDER_ID, FixedTable).unwrap();
    let session = host.startup().unwrap();
    let lookup = host
        .begin(
            session,
            &Query::name("carol@outside.example"),
            ControlFlags::RETURN_ALL,
        )
        .unwrap();
    let next = host.next_sized(lookup, ControlFlags::RETURN_ALL);
    assert_eq!(next.status(), Err(WsaError::WSASERVICE_NOT_FOUND));
    host.end(lookup).unwrap();
    host.cleanup(session).unwrap();
}

/// The interface's lookup rules, checked by the simulator on a query the provider answers.
#[test]
fn the_lookup_rules_hold() {
    let host = Host::advertise(PROVIDER_ID, FixedTable).unwrap();
    conformance(&host, &Query::name("bob@outside.example"));
}

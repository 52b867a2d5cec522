//! Property tests of the chain decoder and of R-WSP-4: random chains (lengths in and out of
//! range, the layer anywhere, absent or repeated, ids from a small space so they collide) and
//! random catalogs (the entry below present or not, of every `ChainLen`), against a model
//! written from the documented rules (interfaces.md §4.2). Structures are compared byte for
//! byte. Failure persistence is off: a case a property finds becomes a plain unit test here.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The structure's bytes (it has no padding: 4-byte fields, a GUID, 2-byte units).
fn bytes(info: &WSAPROTOCOL_INFOW) -> &[u8] {
    // SAFETY: a live, initialised structure of plain integers read as bytes for its own size,
    // borrowed as long as `info`.
    unsafe {
        std::slice::from_raw_parts(
            std::ptr::from_ref(info).cast::<u8>(),
            size_of::<WSAPROTOCOL_INFOW>(),
        )
    }
}

/// Any structure: every field random (the chain is set by the caller).
fn info() -> impl Strategy<Value = WSAPROTOCOL_INFOW> {
    (
        any::<u128>(),
        any::<[u32; 8]>(),
        any::<[i32; 9]>(),
        vec(any::<u16>(), 256),
    )
        .prop_map(|(guid, words, ints, name)| {
            let mut info = WSAPROTOCOL_INFOW {
                dwServiceFlags1: words[0],
                dwServiceFlags2: words[1],
                dwServiceFlags3: words[2],
                dwServiceFlags4: words[3],
                dwProviderFlags: words[4],
                ProviderId: GUID::from_u128(guid),
                dwCatalogEntryId: words[5],
                iVersion: ints[0],
                iAddressFamily: ints[1],
                iMaxSockAddr: ints[2],
                iMinSockAddr: ints[3],
                iSocketType: ints[4],
                iProtocol: ints[5],
                iProtocolMaxOffset: ints[6],
                iNetworkByteOrder: ints[7],
                iSecurityScheme: ints[8],
                dwMessageSize: words[6],
                dwProviderReserved: words[7],
                ..WSAPROTOCOL_INFOW::default()
            };
            info.szProtocol.copy_from_slice(&name);
            info
        })
}

fn with_chain(mut info: WSAPROTOCOL_INFOW, id: u32, len: i32, ids: &[u32]) -> WSAPROTOCOL_INFOW {
    info.dwCatalogEntryId = id;
    info.ProtocolChain.ChainLen = len;
    info.ProtocolChain.ChainEntries = [0; 7];
    info.ProtocolChain.ChainEntries[..ids.len()].copy_from_slice(ids);
    info
}

/// What `locate` must answer, from the rules: a chain is `ChainLen` 2 to 7 ids, top first;
/// the layer is there exactly once, and not last; below it is the next id.
fn model_locate(len: i32, ids: &[u32; 7], own: u32) -> Result<(usize, u32, bool), &'static str> {
    if !(0..=7).contains(&len) {
        return Err("ChainLen");
    }
    if len < 2 {
        return Err("NotAChain");
    }
    let len = len as usize;
    let places: Vec<usize> = (0..len).filter(|&i| ids[i] == own).collect();
    match places[..] {
        [] => Err("NotInChain"),
        [i] if i == len - 1 => Err("AtBottom"),
        [i] => Ok((i, ids[i + 1], i + 2 == len)),
        _ => Err("Repeated"),
    }
}

fn kind(error: &ChainError) -> &'static str {
    match error {
        ChainError::ChainLen { .. } => "ChainLen",
        ChainError::NotAChain { .. } => "NotAChain",
        ChainError::NotInChain { .. } => "NotInChain",
        ChainError::AtBottom { .. } => "AtBottom",
        ChainError::Repeated { .. } => "Repeated",
        ChainError::LowerNotInCatalog { .. } => "LowerNotInCatalog",
        ChainError::LowerMisplaced { .. } => "LowerMisplaced",
        ChainError::OtherChain { .. } => "OtherChain",
        ChainError::NotInstalled { .. } => "NotInstalled",
        ChainError::InstalledTwice { .. } => "InstalledTwice",
    }
}

/// A well-formed chain: 2 to 7 distinct ids, the layer at `index` (not last).
fn placed_chain() -> impl Strategy<Value = (Vec<u32>, usize)> {
    (2usize..=7).prop_flat_map(|len| {
        (
            proptest::sample::subsequence((1u32..=40).collect::<Vec<_>>(), len).prop_shuffle(),
            0..len - 1,
        )
    })
}

/// What the catalog holds for the entry below the layer.
#[derive(Clone, Copy, Debug)]
enum Lower {
    Missing,
    ChainLen(i32),
}

fn lower_entry() -> impl Strategy<Value = Lower> {
    prop_oneof![
        1 => Just(Lower::Missing),
        3 => Just(Lower::ChainLen(0)),
        3 => Just(Lower::ChainLen(1)),
        1 => (2i32..=7).prop_map(Lower::ChainLen),
    ]
}

const CALLS: [Call; 4] = [
    Call::Startup,
    Call::Socket,
    Call::AddressToString,
    Call::StringToAddress,
];

proptest! {
    #![proptest_config(config(1024))]

    /// `locate` on anything: `ChainLen` from -3 to 10, ids from a space of 6 (repeats and
    /// absences are common), ids past `ChainLen` never counted.
    #[test]
    fn locate_matches_the_rules(
        base in info(),
        len in -3i32..=10,
        ids in any::<[u8; 7]>(),
        own in 0u32..6,
    ) {
        let ids = ids.map(|i| u32::from(i % 6));
        let info = with_chain(base, 999, len, &ids);
        let got = locate(&info, own);
        match (model_locate(len, &ids, own), got) {
            (Ok((index, next, bottom)), Ok(link)) => {
                prop_assert_eq!(link.index(), index);
                prop_assert_eq!(link.next(), next);
                prop_assert_eq!(link.next_is_bottom(), bottom);
                prop_assert_eq!(link.chain_len(), len as usize);
                prop_assert_eq!(link.chain_entry_id(), 999);
            }
            (Err(expected), Err(error)) => {
                prop_assert_eq!(kind(&error), expected);
                let code = if expected == "ChainLen" {
                    WsaError::WSAEINVAL
                } else {
                    WsaError::WSAEINVALIDPROVIDER
                };
                prop_assert_eq!(error.code(), code);
            }
            (expected, got) => prop_assert!(false, "model {:?}, got {:?}", expected, got),
        }
    }

    /// A layer placed anywhere but last in a chain of distinct ids is found there; what is
    /// below is the next id.
    #[test]
    fn a_placed_layer_is_found(base in info(), (ids, index) in placed_chain()) {
        let info = with_chain(base, 999, ids.len() as i32, &ids);
        let link = locate(&info, ids[index]).unwrap();
        prop_assert_eq!(link.index(), index);
        prop_assert_eq!(link.next(), ids[index + 1]);
        prop_assert_eq!(link.next_is_bottom(), index + 2 == ids.len());
    }

    /// `resolve` against a random catalog, and what goes down for every call (R-WSP-4): the
    /// chain's structure unmodified for a lower layer; the base's own entry for the base, with
    /// the caller's `dwProviderReserved` for `WSPSocket`; the duplicated socket's structure
    /// goes up as the chain's with the lower provider's `dwProviderReserved`.
    #[test]
    fn what_goes_down_is_r_wsp_4(
        given in info(),
        below in info(),
        other in info(),
        filled in info(),
        (ids, index) in placed_chain(),
        lower in lower_entry(),
        reserved in any::<u32>(),
    ) {
        let chain_id = 1000;
        let given = with_chain(given, chain_id, ids.len() as i32, &ids);
        let next = ids[index + 1];
        let bottom = index + 2 == ids.len();
        let mut catalog = vec![with_chain(other, 2000, 1, &[])];
        if let Lower::ChainLen(len) = lower {
            catalog.push(with_chain(below, next, len, &[]));
        }
        let route = resolve(&given, ids[index], &catalog);
        let expected_kind = match (lower, bottom) {
            (Lower::Missing, _) => Err("LowerNotInCatalog"),
            (Lower::ChainLen(1), true) => Ok(true),
            (Lower::ChainLen(0), false) => Ok(false),
            _ => Err("LowerMisplaced"),
        };
        let route = match (expected_kind, route) {
            (Err(expected), Err(error)) => {
                prop_assert_eq!(kind(&error), expected);
                prop_assert_eq!(error.code(), WsaError::WSAEINVALIDPROVIDER);
                return Ok(());
            }
            (Ok(base), Ok(route)) => {
                prop_assert_eq!(matches!(route.below(), Below::Base(_)), base);
                route
            }
            (expected, got) => {
                return Err(TestCaseError::fail(format!("model {expected:?}, got {got:?}")));
            }
        };
        let entry = *catalog.last().unwrap();
        prop_assert_eq!(bytes(route.below().entry()), bytes(&entry));
        prop_assert_eq!(route.lower_provider_id(), entry.ProviderId);

        // The caller's structure may carry a duplicated socket's token.
        let called = WSAPROTOCOL_INFOW { dwProviderReserved: reserved, ..given };
        for call in CALLS {
            let down = route.pass_down(call, &called).unwrap();
            match (route.below(), call) {
                (Below::Layer(_), _) => prop_assert_eq!(bytes(&down), bytes(&called)),
                (Below::Base(_), Call::Socket) => {
                    let expected = WSAPROTOCOL_INFOW { dwProviderReserved: reserved, ..entry };
                    prop_assert_eq!(bytes(&down), bytes(&expected));
                }
                (Below::Base(_), _) => prop_assert_eq!(bytes(&down), bytes(&entry)),
            }
        }
        let up = route.duplicated(&called, &filled).unwrap();
        let expected = WSAPROTOCOL_INFOW { dwProviderReserved: filled.dwProviderReserved, ..called };
        prop_assert_eq!(bytes(&up), bytes(&expected));

        // A structure of another chain is refused, whatever the call.
        let mut elsewhere = called;
        elsewhere.dwCatalogEntryId = chain_id + 1;
        let mut rechained = called;
        rechained.ProtocolChain.ChainEntries[index] ^= 0x8000_0000;
        for stranger in [elsewhere, rechained] {
            for call in CALLS {
                let error = route.pass_down(call, &stranger).unwrap_err();
                prop_assert_eq!(kind(&error), "OtherChain");
            }
            prop_assert!(route.duplicated(&stranger, &filled).is_err());
        }
    }

    /// The layer's hidden entry is the one `ChainLen` 0 entry with its GUID: chains and base
    /// entries with the GUID do not count, nor hidden entries of other GUIDs.
    #[test]
    fn the_hidden_entry_is_found_by_guid(
        entries in vec((info(), 0i32..=3, any::<bool>()), 0..8),
    ) {
        let ours = GUID::from_u128(0x5eed);
        let catalog: Vec<WSAPROTOCOL_INFOW> = entries
            .iter()
            .enumerate()
            .map(|(i, (info, len, mine))| {
                let mut entry = with_chain(*info, 100 + i as u32, *len, &[]);
                if *mine {
                    entry.ProviderId = ours;
                }
                entry
            })
            .collect();
        let hidden: Vec<u32> = catalog
            .iter()
            .filter(|e| e.ProtocolChain.ChainLen == 0 && e.ProviderId == ours)
            .map(|e| e.dwCatalogEntryId)
            .collect();
        match (own_entry(&catalog, &ours), &hidden[..]) {
            (Ok(id), [only]) => prop_assert_eq!(id, *only),
            (Err(ChainError::NotInstalled { provider }), []) => prop_assert_eq!(provider, ours),
            (Err(ChainError::InstalledTwice { entries, .. }), [a, b, ..]) => {
                prop_assert_eq!(entries, [*a, *b]);
            }
            (got, hidden) => prop_assert!(false, "{:?} for hidden entries {:?}", got, hidden),
        }
    }
}

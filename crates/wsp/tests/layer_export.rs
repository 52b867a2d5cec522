//! `export_provider!(layer: …)`: the DLL's `WSPStartup` for a layered provider over the
//! system's catalog. Off Windows there is no catalog: the layer starts (its lower providers
//! start lazily), and the first socket, which needs the provider below, fails with
//! `WSAEPROVIDERFAILEDINIT` (the catalog's failure) without leaving anything behind.

use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::WSAPROTOCOL_INFOW;
use winprov_wsp::layer::{NonIfs, Opened};
use winprov_wsp::testing::winsock::Winsock;
use winprov_wsp::{Layer, WsaError};

struct Transparent;

impl Layer for Transparent {
    type Handles = NonIfs;
    type Socket = ();
    const PROVIDER_ID: GUID = GUID::from_u128(0x7769_6e70_726f_7600_1a7e_0000_0000_0002);
    const DESCRIPTION: &'static str = "transparent layer";

    fn open(&self, _: &Opened<'_>) {}
}

winprov_wsp::export_provider!(layer: Transparent, || Transparent);

#[test]
fn a_layer_exported_by_the_macro_starts_and_fails_its_first_socket_without_a_catalog() {
    let mut info = WSAPROTOCOL_INFOW {
        dwCatalogEntryId: 3001,
        ProviderId: Transparent::PROVIDER_ID,
        iVersion: 2,
        iAddressFamily: 2,
        iSocketType: 1,
        iProtocol: 6,
        ..WSAPROTOCOL_INFOW::default()
    };
    info.ProtocolChain.ChainLen = 2;
    info.ProtocolChain.ChainEntries[..2].copy_from_slice(&[3000, 2999]);
    let ws = Winsock::start(WSPStartup, info).expect("WSPStartup");
    let description: String = char::decode_utf16(ws.data().szDescription)
        .map(|c| c.unwrap_or('?'))
        .take_while(|&c| c != '\0')
        .collect();
    assert_eq!(description, "transparent layer");
    assert_eq!(
        ws.socket(2, 1, 6),
        Err(WsaError::WSAEPROVIDERFAILEDINIT),
        "no system catalog off Windows: the provider below cannot be found"
    );
    assert_eq!(wsp_process().dispatch().unwrap().sockets(), 0);
    assert!(
        wsp_process()
            .dispatch()
            .unwrap()
            .lowers()
            .started()
            .is_empty()
    );
    ws.finish();
    assert_eq!(wsp_process().startups(), 0);
}

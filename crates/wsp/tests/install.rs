//! Installing and removing a layered provider ([`winprov_wsp::install`]) in the simulated
//! Winsock catalogs of 64-bit Windows ([`Simulated`]: the native catalog and the 32-bit one,
//! Microsoft's TCP/IP base entries in each), with failures injected where the system could
//! fail. A catalog "as it was" is compared entry by entry, in order.

use std::panic::{AssertUnwindSafe, catch_unwind};
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{WSAPROTOCOL_INFOW, XP1_IFS_HANDLES};
use winprov_wsp::WsaError;
use winprov_wsp::abi::catalog::Catalog;
use winprov_wsp::abi::chain::{self, Below};
use winprov_wsp::abi::{CatalogWriter, ChainsRequest, ProtocolKey, ProviderOrder, View, WscError};
use winprov_wsp::install::{
    self, BaseMatch, Duplicate, Handles, InstallError, LayerInstall, LspCategories, Over,
    Placement, Undo, UninstallError, Uninstalled, entry_name,
};
use winprov_wsp::testing::catalog::{Call, ChainIds, MSAFD, MSAFD_PATH, NewChains, Simulated};

const LAYER: GUID = GUID::from_u128(0x6c61_7965_7200_4000_8000_0000_0000_0001);
const OTHER_LAYER: GUID = GUID::from_u128(0x6c61_7965_7200_4000_8000_0000_0000_0002);
const OTHER_BASE: GUID = GUID::from_u128(0x6261_7365_0000_4000_8000_0000_0000_0002);
const PATH: &str = "%ProgramFiles%\\Example\\layer64.dll";
const PATH32: &str = "%ProgramFiles(x86)%\\Example\\layer32.dll";

const BOTH: [View; 2] = [View::Native, View::Wow64];

const TCP4: ProtocolKey = ProtocolKey {
    address_family: 2,
    socket_type: 1,
    protocol: 6,
};

fn layer() -> LayerInstall {
    LayerInstall::new(LAYER, "Example Layer", PATH).path32(PATH32)
}

fn other_layer() -> LayerInstall {
    LayerInstall::new(OTHER_LAYER, "Other Layer", PATH).path32(PATH32)
}

fn chain_of(entry: &WSAPROTOCOL_INFOW) -> Vec<u32> {
    entry.ProtocolChain.ChainEntries[..entry.ProtocolChain.ChainLen as usize].to_vec()
}

/// Both catalogs, in order.
fn snapshot(catalog: &Simulated) -> Vec<Vec<WSAPROTOCOL_INFOW>> {
    BOTH.iter().map(|&view| catalog.entries(view)).collect()
}

fn writes(catalog: &Simulated) -> Vec<Call> {
    catalog
        .calls()
        .into_iter()
        .filter(|call| !matches!(call, Call::EnumProtocols(_)))
        .collect()
}

#[test]
fn install_then_list() {
    let catalog = Simulated::msafd();
    let before = snapshot(&catalog);
    let installed = install::install(&catalog, &layer()).unwrap();

    assert_eq!(installed.layers.len(), 2);
    for (layer, (view, base_ids)) in installed
        .layers
        .iter()
        .zip([(View::Native, [1001, 1004]), (View::Wow64, [2001, 2004])])
    {
        assert_eq!(layer.view, view);
        assert_eq!(layer.provider(), LAYER);
        assert_eq!(layer.name(), "Example Layer");
        assert_eq!(layer.entry.ProtocolChain.ChainLen, 0);
        assert!(!layer.ifs());
        // One chain [layer, base] over TCP/IPv4 and one over TCP/IPv6.
        let chains: Vec<Vec<u32>> = layer.chains.iter().map(chain_of).collect();
        assert_eq!(
            chains,
            [
                vec![layer.catalog_id(), base_ids[0]],
                vec![layer.catalog_id(), base_ids[1]]
            ]
        );
        let names: Vec<String> = layer.chains.iter().map(entry_name).collect();
        assert_eq!(
            names,
            [
                "Example Layer over [MSAFD Tcpip [TCP/IP]]",
                "Example Layer over [MSAFD Tcpip [TCP/IPv6]]"
            ]
        );
        // R-WSP-19: a non-IFS layer's chains do not declare XP1_IFS_HANDLES, though the
        // bases they go over do.
        assert!(
            layer
                .chains
                .iter()
                .all(|c| c.dwServiceFlags1 & XP1_IFS_HANDLES == 0)
        );
        // The base entries are untouched.
        let bases: Vec<WSAPROTOCOL_INFOW> = catalog
            .entries(view)
            .into_iter()
            .filter(|e| e.ProtocolChain.ChainLen == 1)
            .collect();
        assert_eq!(bases, before[if view == View::Native { 0 } else { 1 }]);
    }
    assert_eq!(catalog.path(View::Native, &LAYER).as_deref(), Some(PATH));
    assert_eq!(catalog.path(View::Wow64, &LAYER).as_deref(), Some(PATH32));
    assert_eq!(install::find(&catalog, &LAYER).unwrap(), installed.layers);
    assert_eq!(install::list(&catalog).unwrap(), installed.layers);
    assert_eq!(install::find(&catalog, &OTHER_LAYER).unwrap(), []);
}

#[test]
fn an_ifs_layer_keeps_its_bases_ifs_flag_and_every_base_gets_a_chain() {
    let catalog = Simulated::msafd();
    let installed = install::install(
        &catalog,
        &layer().handles(Handles::Ifs).over(Over::EveryBase),
    )
    .unwrap();
    let native = &installed.layers[0];
    assert!(native.ifs());
    assert_eq!(native.chains.len(), 6);
    assert!(
        native
            .chains
            .iter()
            .all(|c| c.dwServiceFlags1 & XP1_IFS_HANDLES != 0)
    );
}

#[test]
fn categories_are_set_in_every_catalog() {
    let catalog = Simulated::msafd();
    let categories = LspCategories::INSPECTOR | LspCategories::SYSTEM;
    install::install(&catalog, &layer().categories(categories)).unwrap();
    for view in BOTH {
        assert_eq!(catalog.categories(view, &LAYER), Some(0x8000_0001));
    }
    // None asked: no call.
    let plain = Simulated::msafd();
    install::install(&plain, &layer()).unwrap();
    assert!(
        !plain
            .calls()
            .iter()
            .any(|c| matches!(c, Call::SetProviderInfo(_)))
    );
}

#[test]
fn the_chains_go_first_in_the_catalog_order() {
    // A system that appends the new chains: the installer's order puts them first, every other
    // entry keeping its place relative to the others.
    let catalog = Simulated::msafd().new_chains(NewChains::Last);
    let before = snapshot(&catalog);
    let installed = install::install(&catalog, &layer()).unwrap();
    for (layer, before) in installed.layers.iter().zip(&before) {
        let ids = catalog.ids(layer.view);
        let chains: Vec<u32> = layer.chains.iter().map(|c| c.dwCatalogEntryId).collect();
        assert_eq!(ids[..2], chains[..]);
        let mut others: Vec<u32> = before.iter().map(|e| e.dwCatalogEntryId).collect();
        others.push(layer.catalog_id());
        assert_eq!(ids[2..], others[..]);
    }
    assert_eq!(
        writes(&catalog),
        [
            Call::InstallProviderAndChains,
            Call::WriteProviderOrder(View::Native),
            Call::WriteProviderOrder(View::Wow64)
        ]
    );

    // As installed: no order written, the chains stay where the system put them.
    let catalog = Simulated::msafd().new_chains(NewChains::Last);
    let installed = install::install(&catalog, &layer().placement(Placement::AsInstalled)).unwrap();
    let ids = catalog.ids(View::Native);
    assert_eq!(ids[ids.len() - 2..], [1008, 1009]);
    assert_eq!(installed.layers[0].catalog_id(), 1007);
    assert_eq!(writes(&catalog), [Call::InstallProviderAndChains]);
}

#[test]
fn r_wsp_21_the_installer_writes_a_permutation_of_each_catalog() {
    let catalog = Simulated::msafd();
    install::install(&catalog, &layer()).unwrap();
    install::install(
        &catalog,
        &other_layer().over(Over::Bases(vec![BaseMatch::udp_ipv4()])),
    )
    .unwrap();
    // Four order writes, each accepted by a catalog that refuses anything but a permutation.
    let orders = writes(&catalog)
        .into_iter()
        .filter(|c| matches!(c, Call::WriteProviderOrder(_)))
        .count();
    assert_eq!(orders, 4);
    for view in BOTH {
        let ids = catalog.ids(view);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert_eq!(ids.len(), 6 + 3 + 2);
    }
}

#[test]
fn r_wsp_21_an_order_that_is_not_a_permutation_is_refused() {
    let catalog = Simulated::msafd();
    let entries = catalog.entries(View::Native);
    let ids: Vec<u32> = entries.iter().map(|e| e.dwCatalogEntryId).collect();
    // Made by hand: one id missing, one twice, one unknown.
    for bad in [
        ids[1..].to_vec(),
        [ids.clone(), vec![ids[0]]].concat(),
        [&ids[1..], &[4242]].concat(),
    ] {
        assert_eq!(
            ProviderOrder::check(&bad, &entries),
            Err(WsaError::WSAEINVAL)
        );
    }
    // Made from a catalog that changed since: ws2_32 refuses it, and nothing moves.
    let stale = ProviderOrder::check(&ids, &entries).unwrap();
    install::install(&catalog, &layer()).unwrap();
    let now = catalog.ids(View::Native);
    assert_eq!(
        catalog.write_order(View::Native, &stale),
        Err(WscError::Failed {
            function: "WSCWriteProviderOrder",
            code: WsaError::WSAEINVAL
        })
    );
    assert_eq!(catalog.ids(View::Native), now);
}

#[test]
fn r_wsp_22_a_second_install_with_the_same_id_or_name_is_already_installed() {
    for code in [WsaError::WSAEINVAL, WsaError::WSANO_RECOVERY] {
        let catalog = Simulated::msafd().refusing_duplicates_with(code);
        install::install(&catalog, &layer().categories(LspCategories::INSPECTOR)).unwrap();
        let before = snapshot(&catalog);
        let calls = catalog.calls().len();
        let same_id = LayerInstall::new(LAYER, "Another Name", PATH).path32(PATH32);
        let same_name = LayerInstall::new(OTHER_LAYER, "Example Layer", PATH).path32(PATH32);
        for (again, duplicate) in [
            (same_id, Duplicate::ProviderId),
            (same_name, Duplicate::Name),
        ] {
            assert_eq!(
                install::install(&catalog, &again),
                Err(InstallError::AlreadyInstalled {
                    view: View::Native,
                    duplicate,
                    code,
                }),
                "{code}"
            );
        }
        // Nothing changed, nothing was removed or reordered.
        assert_eq!(snapshot(&catalog), before);
        assert_eq!(catalog.categories(View::Native, &LAYER), Some(1));
        assert!(
            catalog.calls()[calls..]
                .iter()
                .all(|c| matches!(c, Call::EnumProtocols(_) | Call::InstallProviderAndChains))
        );
    }
}

#[test]
fn r_wsp_22_a_leftover_in_the_32_bit_catalog_is_already_installed_too() {
    let catalog = Simulated::msafd().chain_ids(ChainIds::Layer);
    install::install(&catalog, &layer()).unwrap();
    // An uninstaller that knew only the native catalog.
    catalog.deinstall(View::Native, &LAYER).unwrap();
    assert_eq!(
        install::find(&catalog, &LAYER).unwrap()[0].view,
        View::Wow64
    );
    assert_eq!(
        install::install(&catalog, &layer()),
        Err(InstallError::AlreadyInstalled {
            view: View::Wow64,
            duplicate: Duplicate::ProviderId,
            code: WsaError::WSAEINVAL,
        })
    );
    // Uninstalling cleans it.
    install::uninstall(&catalog, &LAYER).unwrap();
    install::install(&catalog, &layer()).unwrap();
}

#[test]
fn r_wsp_22_the_same_codes_for_another_reason_are_not_already_installed() {
    let catalog = Simulated::msafd();
    let before = snapshot(&catalog);
    // Not an administrator.
    catalog.fail(Call::InstallProviderAndChains, WsaError::WSANO_RECOVERY);
    assert_eq!(
        install::install(&catalog, &layer()),
        Err(InstallError::Failed {
            error: WscError::Failed {
                function: "WSCInstallProviderAndChains64_32",
                code: WsaError::WSANO_RECOVERY
            },
            undo: Undo::NothingInstalled,
        })
    );
    // No 32-bit DLL given, and the path is not %windir%\system32\<dll>.
    let error =
        install::install(&catalog, &LayerInstall::new(LAYER, "Example Layer", PATH)).unwrap_err();
    assert_eq!(error.code(), Some(WsaError::WSAEINVAL));
    assert!(matches!(error, InstallError::Failed { .. }));
    assert_eq!(snapshot(&catalog), before);
    // With one in the system directory, both catalogs get it.
    let system32 = "%windir%\\system32\\layer.dll";
    install::install(
        &catalog,
        &LayerInstall::new(LAYER, "Example Layer", system32),
    )
    .unwrap();
    assert_eq!(catalog.path(View::Wow64, &LAYER).as_deref(), Some(system32));
}

#[test]
fn a_failed_install_call_leaves_an_installed_layer_alone() {
    let catalog = Simulated::msafd();
    install::install(&catalog, &layer()).unwrap();
    let before = snapshot(&catalog);
    // Another installation in progress: not a duplicate's code, and the layer was there.
    catalog.fail(Call::InstallProviderAndChains, WsaError::WSAEINPROGRESS);
    assert_eq!(
        install::install(&catalog, &layer()),
        Err(InstallError::Failed {
            error: WscError::Failed {
                function: "WSCInstallProviderAndChains64_32",
                code: WsaError::WSAEINPROGRESS
            },
            undo: Undo::NothingInstalled,
        })
    );
    assert_eq!(snapshot(&catalog), before);
}

/// A failure injected at `call`, after the system installed the layer, undoes the install.
fn undone_after(call: Call, categories: LspCategories) {
    let catalog = Simulated::msafd();
    let before = snapshot(&catalog);
    catalog.fail(call, WsaError::WSANO_RECOVERY);
    let error = install::install(&catalog, &layer().categories(categories)).unwrap_err();
    assert_eq!(error.code(), Some(WsaError::WSANO_RECOVERY), "{call:?}");
    assert_eq!(error.undo(), Some(&Undo::Undone), "{call:?}");
    assert_eq!(snapshot(&catalog), before, "{call:?}");
    for view in BOTH {
        assert_eq!(catalog.categories(view, &LAYER), None);
        assert_eq!(catalog.path(view, &LAYER), None);
    }
    assert_eq!(install::find(&catalog, &LAYER).unwrap(), []);
    // And the layer installs afterwards.
    install::install(&catalog, &layer()).unwrap();
}

#[test]
fn a_failure_at_the_categories_undoes_the_install() {
    undone_after(Call::SetProviderInfo(View::Native), LspCategories::PROXY);
    undone_after(Call::SetProviderInfo(View::Wow64), LspCategories::PROXY);
}

#[test]
fn a_failure_at_the_order_undoes_the_install() {
    undone_after(
        Call::WriteProviderOrder(View::Native),
        LspCategories::empty(),
    );
    // The native catalog's order was written already: removing the layer leaves it as it was.
    undone_after(Call::WriteProviderOrder(View::Wow64), LspCategories::SYSTEM);
}

#[test]
fn an_install_call_that_wrote_one_catalog_and_failed_is_undone() {
    let catalog = Simulated::msafd();
    let before = snapshot(&catalog);
    catalog.fail_install_after_native(WsaError::WSASYSCALLFAILURE);
    let error = install::install(&catalog, &layer()).unwrap_err();
    assert_eq!(
        error,
        InstallError::Failed {
            error: WscError::Failed {
                function: "WSCInstallProviderAndChains64_32",
                code: WsaError::WSASYSCALLFAILURE
            },
            undo: Undo::Undone,
        }
    );
    assert_eq!(snapshot(&catalog), before);
}

#[test]
fn an_undo_that_fails_says_so_and_uninstall_finishes_it() {
    let catalog = Simulated::msafd();
    let before = snapshot(&catalog);
    catalog.fail(
        Call::WriteProviderOrder(View::Native),
        WsaError::WSANO_RECOVERY,
    );
    catalog.fail(
        Call::DeinstallProvider(View::Native),
        WsaError::WSANO_RECOVERY,
    );
    let error = install::install(&catalog, &layer()).unwrap_err();
    assert!(
        matches!(
            error.undo(),
            Some(Undo::Incomplete(UninstallError::Failed(WscError::Failed {
                code: WsaError::WSANO_RECOVERY,
                ..
            })))
        ),
        "{error}"
    );
    assert!(matches!(
        install::uninstall(&catalog, &LAYER),
        Ok(Uninstalled::Removed { .. })
    ));
    // The native order may differ (nothing else): the same entries.
    for (now, before) in snapshot(&catalog).iter().zip(&before) {
        let mut now = now.clone();
        now.sort_by_key(|e| e.dwCatalogEntryId);
        assert_eq!(&now, before);
    }
}

/// A system whose `WSCSetProviderInfo` panics, or that has no install function.
struct Faulty<'a> {
    inner: &'a Simulated,
    no_install: bool,
}

impl CatalogWriter for Faulty<'_> {
    fn views(&self) -> Vec<View> {
        self.inner.views()
    }
    fn enumerate(&self, view: View) -> Result<Vec<WSAPROTOCOL_INFOW>, WscError> {
        self.inner.enumerate(view)
    }
    fn install_provider_and_chains(&self, request: &ChainsRequest) -> Result<(), WscError> {
        if self.no_install {
            return Err(WscError::Unavailable {
                function: "WSCInstallProviderAndChains64_32",
            });
        }
        self.inner.install_provider_and_chains(request)
    }
    fn set_lsp_categories(&self, _: View, _: &GUID, _: u32) -> Result<(), WscError> {
        panic!("WSCSetProviderInfo panicked");
    }
    fn write_order(&self, view: View, order: &ProviderOrder) -> Result<(), WscError> {
        self.inner.write_order(view, order)
    }
    fn deinstall(&self, view: View, provider: &GUID) -> Result<(), WscError> {
        self.inner.deinstall(view, provider)
    }
}

#[test]
fn an_install_abandoned_by_a_panic_is_undone() {
    let catalog = Simulated::msafd();
    let before = snapshot(&catalog);
    let faulty = Faulty {
        inner: &catalog,
        no_install: false,
    };
    let layer = layer().categories(LspCategories::FIREWALL);
    assert!(catch_unwind(AssertUnwindSafe(|| install::install(&faulty, &layer))).is_err());
    assert_eq!(snapshot(&catalog), before);
}

#[test]
fn a_system_without_the_install_function_changes_nothing() {
    let catalog = Simulated::msafd();
    let faulty = Faulty {
        inner: &catalog,
        no_install: true,
    };
    assert_eq!(
        install::install(&faulty, &layer()),
        Err(InstallError::Failed {
            error: WscError::Unavailable {
                function: "WSCInstallProviderAndChains64_32"
            },
            undo: Undo::NothingInstalled,
        })
    );
}

#[test]
fn a_selection_by_provider_is_checked_against_the_chains_the_system_made() {
    let catalog = Simulated::msafd();
    let other = catalog.add_base(OTHER_BASE, "other.dll", TCP4, "Other TCP", 0);
    let before = snapshot(&catalog);
    let over_other = layer().over(Over::Bases(vec![
        BaseMatch::tcp_ipv4().provider(OTHER_BASE),
    ]));
    // MSAFD's TCP/IPv4 entry is above it: the system layers over that one.
    let error = install::install(&catalog, &over_other).unwrap_err();
    assert!(
        matches!(
            error,
            InstallError::Unexpected {
                view: View::Native,
                undo: Undo::Undone,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(snapshot(&catalog), before);

    // With the other provider first, the chain goes over it.
    for (view, &other) in BOTH.into_iter().zip(&other) {
        let entries = catalog.entries(view);
        let mut ids = vec![other];
        ids.extend(
            entries
                .iter()
                .map(|e| e.dwCatalogEntryId)
                .filter(|id| *id != other),
        );
        let order = ProviderOrder::check(&ids, &entries).unwrap();
        catalog.write_order(view, &order).unwrap();
    }
    let installed = install::install(&catalog, &over_other).unwrap();
    assert_eq!(
        chain_of(&installed.layers[0].chains[0]).last(),
        Some(&other[0])
    );
}

#[test]
fn nothing_to_layer_over_asks_nothing() {
    let catalog = Simulated::msafd();
    let nowhere = layer().over(Over::Bases(vec![BaseMatch::any().address_family(99)]));
    assert_eq!(
        install::install(&catalog, &nowhere),
        Err(InstallError::NothingToLayerOver)
    );
    assert_eq!(writes(&catalog), []);
    // An invalid description does not even read the catalog.
    let unnamed = LayerInstall::new(LAYER, "", PATH);
    assert!(matches!(
        install::install(&catalog, &unnamed),
        Err(InstallError::InvalidDescription(_))
    ));
    assert_eq!(catalog.calls().len(), 2);
}

#[test]
fn uninstall_removes_the_layer_and_its_chains_and_leaves_everything_else() {
    for ids in [ChainIds::Own, ChainIds::Layer] {
        let catalog = Simulated::msafd().chain_ids(ids);
        let original = snapshot(&catalog);
        install::install(
            &catalog,
            &other_layer().over(Over::Bases(vec![BaseMatch::udp_ipv4()])),
        )
        .unwrap();
        let without = snapshot(&catalog);
        let installed = install::install(
            &catalog,
            &layer().over(Over::Bases(vec![
                BaseMatch::tcp_ipv4(),
                BaseMatch::tcp_ipv6(),
                BaseMatch::udp_ipv6(),
            ])),
        )
        .unwrap();
        let chain_ids = installed.layers[0].chain_providers();
        assert_eq!(chain_ids.len(), 1);
        assert_eq!(chain_ids[0] == LAYER, ids == ChainIds::Layer);
        let calls = catalog.calls().len();

        let Ok(Uninstalled::Removed { entries }) = install::uninstall(&catalog, &LAYER) else {
            panic!("not removed");
        };
        assert_eq!(entries.len(), 2 * 4, "{ids:?}");
        // Every other entry, in its order: the other layer's chains first (its install wrote
        // that), then the bases in their original order, then its hidden entry.
        assert_eq!(snapshot(&catalog), without, "{ids:?}");
        for (now, original) in snapshot(&catalog).iter().zip(&original) {
            let bases: Vec<WSAPROTOCOL_INFOW> = now
                .iter()
                .filter(|e| e.ProtocolChain.ChainLen == 1)
                .copied()
                .collect();
            assert_eq!(&bases, original);
        }
        // The chains' id first, then the layer's, in each catalog.
        let expected: Vec<Call> = BOTH
            .iter()
            .flat_map(|&view| {
                let mut deinstalls = Vec::new();
                if ids == ChainIds::Own {
                    deinstalls.push(Call::DeinstallProvider(view));
                }
                deinstalls.push(Call::DeinstallProvider(view));
                deinstalls
            })
            .collect();
        let deinstalls: Vec<Call> = catalog.calls()[calls..]
            .iter()
            .copied()
            .filter(|c| matches!(c, Call::DeinstallProvider(_)))
            .collect();
        assert_eq!(deinstalls, expected, "{ids:?}");
        for view in BOTH {
            assert_eq!(catalog.path(view, &LAYER), None);
            assert!(catalog.path(view, &chain_ids[0]).is_none());
        }
        assert_eq!(install::find(&catalog, &LAYER).unwrap(), []);
        assert_eq!(install::find(&catalog, &OTHER_LAYER).unwrap().len(), 2);
    }
}

#[test]
fn uninstall_twice_succeeds_and_the_second_does_nothing() {
    let catalog = Simulated::msafd();
    install::install(&catalog, &layer()).unwrap();
    assert!(matches!(
        install::uninstall(&catalog, &LAYER),
        Ok(Uninstalled::Removed { .. })
    ));
    let calls = catalog.calls().len();
    assert_eq!(
        install::uninstall(&catalog, &LAYER),
        Ok(Uninstalled::NotInstalled)
    );
    assert_eq!(
        install::uninstall(&catalog, &OTHER_LAYER),
        Ok(Uninstalled::NotInstalled)
    );
    assert!(
        catalog.calls()[calls..]
            .iter()
            .all(|c| matches!(c, Call::EnumProtocols(_)))
    );
}

#[test]
fn uninstall_refuses_what_would_break_other_entries() {
    let catalog = Simulated::msafd();
    install::install(&catalog, &layer()).unwrap();
    // Another layer over this one's TCP chains (the top-most TCP entries).
    install::install(&catalog, &other_layer()).unwrap();
    let top = install::find(&catalog, &OTHER_LAYER).unwrap();
    assert_eq!(chain_of(&top[0].chains[0]).len(), 3);
    let before = snapshot(&catalog);
    assert_eq!(
        install::uninstall(&catalog, &LAYER),
        Err(UninstallError::LayeredOver {
            view: View::Native,
            layers: vec![OTHER_LAYER],
        })
    );
    // A base provider is not a layer.
    assert_eq!(
        install::uninstall(&catalog, &MSAFD),
        Err(UninstallError::NotALayer {
            view: View::Native,
            provider: MSAFD,
        })
    );
    assert_eq!(snapshot(&catalog), before);
    // Top first, then this one.
    install::uninstall(&catalog, &OTHER_LAYER).unwrap();
    install::uninstall(&catalog, &LAYER).unwrap();
    assert_eq!(install::list(&catalog).unwrap(), []);
}

#[test]
fn the_simulated_catalog_is_what_the_running_layer_reads() {
    let catalog = Simulated::msafd();
    install::install(&catalog, &layer()).unwrap();
    install::install(&catalog, &other_layer()).unwrap();
    let entries = Catalog::protocols(&catalog).unwrap();
    assert_eq!(entries, catalog.entries(View::Native));
    // The layer finds itself, and the base below it, in each of its chains.
    let own = chain::own_entry(&entries, &LAYER).unwrap();
    let mine = install::find(&catalog, &LAYER).unwrap().remove(0);
    for chain_entry in &mine.chains {
        let route = chain::resolve(chain_entry, own, &entries).unwrap();
        assert!(matches!(route.below(), Below::Base(base) if base.ProviderId == MSAFD));
        assert_eq!(
            catalog
                .provider_path(&route.lower_provider_id())
                .unwrap()
                .to_string(),
            MSAFD_PATH
        );
    }
    // The other layer's chains have this one below.
    let top = install::find(&catalog, &OTHER_LAYER).unwrap().remove(0);
    let top_own = chain::own_entry(&entries, &OTHER_LAYER).unwrap();
    let route = chain::resolve(&top.chains[0], top_own, &entries).unwrap();
    assert!(matches!(route.below(), Below::Layer(hidden) if hidden.ProviderId == LAYER));
    assert_eq!(catalog.provider_path(&LAYER).unwrap().to_string(), PATH);
}

#[test]
fn a_layer_without_a_32_bit_dll_is_installed_in_the_native_catalog_only() {
    let catalog = Simulated::msafd();
    let wow64_before = catalog.entries(View::Wow64);
    let system32 = "%windir%\\system32\\layer.dll";
    let installed = install::install(
        &catalog,
        &LayerInstall::new(LAYER, "Example Layer", system32).native_only(),
    )
    .unwrap();
    assert!(
        installed
            .layers
            .iter()
            .all(|found| found.view == View::Native),
        "only the native catalog's entries are reported"
    );
    assert_eq!(
        catalog.entries(View::Wow64),
        wow64_before,
        "32-bit processes keep the catalog they had"
    );
    let found = install::find(&catalog, &LAYER).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].view, View::Native);
    assert!(!found[0].chains.is_empty());
    // Uninstalling finds it in the native catalog only, and removes it.
    assert!(matches!(
        install::uninstall(&catalog, &LAYER).unwrap(),
        Uninstalled::Removed { .. }
    ));
    assert!(install::find(&catalog, &LAYER).unwrap().is_empty());
}

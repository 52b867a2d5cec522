//! What `line-simulator install` / `uninstall` ask TAPI, against its provider registry played in
//! memory (`winprov_tspi::testing::registry::Simulated`): the Windows case, Wine's (a `tapi32`
//! whose provider list cannot be read and whose `lineAddProviderW` fails), and the record.
#![forbid(unsafe_code)]

use line_simulator::config::TSP_FILE_NAME;
use line_simulator::install::{Unregistered, register, unregister};
use winprov_tspi::LineErr;
use winprov_tspi::install::{Added, InstallError};
use winprov_tspi::testing::registry::{Call, Function, Simulated};

#[test]
fn install_adds_the_tsp_once_and_uninstall_removes_it() {
    let tapi = Simulated::windows();
    let id = match register(&tapi).unwrap() {
        Added::Added { id } => id,
        other => panic!("{other:?}"),
    };
    assert!(
        tapi.calls()
            .contains(&Call::AddProvider(TSP_FILE_NAME.into()))
    );
    assert_eq!(register(&tapi).unwrap(), Added::AlreadyAdded { id });
    assert_eq!(
        unregister(&tapi, None).unwrap(),
        Unregistered::Removed {
            ids: vec![id],
            listed: true
        }
    );
    assert_eq!(tapi.providers().len(), 6, "the system's providers stay");
    assert_eq!(unregister(&tapi, Some(id)).unwrap(), Unregistered::NotAdded);
}

#[test]
fn uninstall_goes_by_the_record_when_the_list_cannot_be_read() {
    let tapi = Simulated::new().with("unimdm.tsp").with(TSP_FILE_NAME);
    tapi.fail(Function::GetProviderList, LineErr::LINEERR_NOMEM);
    assert_eq!(
        unregister(&tapi, Some(2)).unwrap(),
        Unregistered::Removed {
            ids: vec![2],
            listed: false
        }
    );
    assert_eq!(tapi.providers().len(), 1);
    assert!(!tapi.calls().contains(&Call::RemoveProvider(1)));
}

#[test]
fn under_wine_install_fails_naming_the_function_and_uninstall_has_nothing_to_do() {
    // Wine's tapi32: lineGetProviderListW fails, lineAddProviderW returns
    // LINEERR_OPERATIONFAILED (docs/dist.md, the MSI's rollback step).
    let tapi = Simulated::new();
    tapi.fail(Function::GetProviderList, LineErr::LINEERR_OPERATIONFAILED);
    tapi.fail(Function::AddProvider, LineErr::LINEERR_OPERATIONFAILED);
    let error = register(&tapi).unwrap_err();
    assert_eq!(
        error.to_string(),
        "lineAddProviderW failed: LINEERR_OPERATIONFAILED (0x80000048)"
    );
    match unregister(&tapi, None).unwrap() {
        Unregistered::NothingRecorded { why } => {
            assert!(matches!(why, InstallError::ListUnavailable(_)), "{why:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        tapi.calls()
            .iter()
            .all(|call| !matches!(call, Call::RemoveProvider(_)))
    );
}

#[test]
fn a_failed_removal_is_an_error() {
    let tapi = Simulated::new().with(TSP_FILE_NAME);
    tapi.fail(Function::RemoveProvider, LineErr::LINEERR_INIFILECORRUPT);
    let error = unregister(&tapi, None).unwrap_err();
    assert_eq!(error.code(), Some(LineErr::LINEERR_INIFILECORRUPT));
    // The list unreadable too: the record's id is tried, and its failure stands.
    tapi.fail(Function::GetProviderList, LineErr::LINEERR_NOMEM);
    let error = unregister(&tapi, Some(1)).unwrap_err();
    assert_eq!(error.code(), Some(LineErr::LINEERR_INIFILECORRUPT));
    assert_eq!(tapi.providers().len(), 1);
}

//! `winprov_tspi::install` against TAPI's provider registry played in memory
//! (`testing::registry::Simulated`): what each function asks TAPI, in which order, and what it
//! reports when TAPI fails or does not list the provider.

use winprov_tspi::LineErr;
use winprov_tspi::install::{self, Added, InstallError, ProviderEntry, Removed, TapiError};
use winprov_tspi::testing::registry::{Call, Function, Simulated};

const FILE: &str = "LineSimulator.tsp";

fn adds(tapi: &Simulated) -> usize {
    tapi.calls()
        .iter()
        .filter(|call| matches!(call, Call::AddProvider(_)))
        .count()
}

#[test]
fn add_adds_once_and_reports_a_file_listed_already() {
    let tapi = Simulated::windows();
    let added = install::add(&tapi, FILE).unwrap();
    assert_eq!(added, Added::Added { id: 7 });
    assert_eq!(
        tapi.providers().last(),
        Some(&ProviderEntry {
            id: 7,
            file_name: FILE.into()
        })
    );
    // TAPI itself would make a second instance: add asks the list first.
    assert_eq!(
        install::add(&tapi, "linesimulator.TSP").unwrap(),
        Added::AlreadyAdded { id: 7 }
    );
    assert_eq!(adds(&tapi), 1);
    assert_eq!(tapi.providers().len(), 7);
}

#[test]
fn a_provider_listed_under_a_path_is_found() {
    let tapi = Simulated::windows().with(r"C:\Windows\System32\LINESIMULATOR.TSP");
    assert_eq!(
        install::find(&tapi, FILE).unwrap(),
        vec![ProviderEntry {
            id: 7,
            file_name: r"C:\Windows\System32\LINESIMULATOR.TSP".into()
        }]
    );
    assert_eq!(
        install::add(&tapi, FILE).unwrap(),
        Added::AlreadyAdded { id: 7 }
    );
    assert_eq!(adds(&tapi), 0);
}

#[test]
fn add_goes_ahead_when_the_list_cannot_be_read_and_keeps_tapis_code() {
    let tapi = Simulated::new();
    tapi.fail(Function::GetProviderList, LineErr::LINEERR_NOMEM);
    assert_eq!(install::add(&tapi, FILE).unwrap(), Added::Added { id: 1 });
    // Wine's tapi32: the list unreadable, lineAddProviderW refused.
    tapi.fail(Function::AddProvider, LineErr::LINEERR_OPERATIONFAILED);
    let error = install::add(&tapi, "Other.tsp").unwrap_err();
    assert_eq!(
        error,
        InstallError::Failed(TapiError::Failed {
            function: "lineAddProviderW",
            code: LineErr::LINEERR_OPERATIONFAILED
        })
    );
    assert_eq!(error.code(), Some(LineErr::LINEERR_OPERATIONFAILED));
    assert_eq!(
        error.to_string(),
        "lineAddProviderW failed: LINEERR_OPERATIONFAILED (0x80000048)"
    );
    tapi.unavailable(Function::AddProvider);
    let error = install::add(&tapi, "Other.tsp").unwrap_err();
    assert_eq!(error.code(), None);
    assert!(
        error
            .to_string()
            .contains("lineAddProviderW is not available")
    );
}

#[test]
fn a_file_name_with_a_path_or_nothing_in_it_is_refused_before_tapi_is_asked() {
    let tapi = Simulated::new();
    for name in ["", r"C:\x.tsp", "dir/x.tsp", "x\0.tsp"] {
        assert!(
            matches!(
                install::add(&tapi, name),
                Err(InstallError::InvalidFileName { .. })
            ),
            "{name:?}"
        );
        assert!(matches!(
            install::remove(&tapi, name),
            Err(InstallError::InvalidFileName { .. })
        ));
    }
    assert_eq!(tapi.calls(), vec![]);
}

#[test]
fn remove_removes_every_instance_and_nothing_else() {
    let tapi = Simulated::windows()
        .with(FILE)
        .with("other.tsp")
        .with(r"c:\windows\system32\linesimulator.tsp");
    assert_eq!(
        install::remove(&tapi, FILE).unwrap(),
        Removed::Removed { ids: vec![7, 9] }
    );
    let left: Vec<String> = tapi.providers().into_iter().map(|p| p.file_name).collect();
    assert_eq!(left.len(), 7);
    assert!(
        left.iter()
            .all(|name| !name.to_lowercase().ends_with("linesimulator.tsp"))
    );
    assert!(left.contains(&"other.tsp".to_string()));
}

#[test]
fn removing_what_is_not_there_succeeds_and_says_so() {
    let tapi = Simulated::windows();
    assert_eq!(install::remove(&tapi, FILE).unwrap(), Removed::NotAdded);
    assert!(
        tapi.calls()
            .iter()
            .all(|call| matches!(call, Call::GetProviderList { .. })),
        "{:?}",
        tapi.calls()
    );
    assert_eq!(tapi.providers().len(), 6);
}

#[test]
fn remove_changes_nothing_when_the_list_cannot_be_read() {
    let tapi = Simulated::new().with(FILE);
    tapi.fail(Function::GetProviderList, LineErr::LINEERR_INIFILECORRUPT);
    let error = install::remove(&tapi, FILE).unwrap_err();
    assert!(
        matches!(error, InstallError::ListUnavailable(_)),
        "{error:?}"
    );
    assert_eq!(error.code(), Some(LineErr::LINEERR_INIFILECORRUPT));
    assert_eq!(tapi.providers().len(), 1);
    // The id the installer recorded still reaches it.
    assert_eq!(
        install::remove_id(&tapi, 1).unwrap(),
        Removed::Removed { ids: vec![1] }
    );
    assert_eq!(tapi.providers(), vec![]);
    tapi.heal();
    assert_eq!(install::remove_id(&tapi, 1).unwrap(), Removed::NotAdded);
    assert!(!tapi.calls().contains(&Call::RemoveProvider(2)));
}

#[test]
fn a_failed_remove_keeps_tapis_code() {
    let tapi = Simulated::new().with(FILE);
    tapi.fail(Function::RemoveProvider, LineErr::LINEERR_OPERATIONFAILED);
    let error = install::remove(&tapi, FILE).unwrap_err();
    assert_eq!(
        error,
        InstallError::Failed(TapiError::Failed {
            function: "lineRemoveProvider",
            code: LineErr::LINEERR_OPERATIONFAILED
        })
    );
    assert_eq!(tapi.providers().len(), 1);
}

#[test]
fn a_list_larger_than_the_first_buffer_is_read_in_a_second_call() {
    let tapi = (0..100).fold(Simulated::new(), |tapi, n| {
        tapi.with(&format!(r"C:\Windows\System32\provider-number-{n:03}.tsp"))
    });
    let listed = install::list(&tapi).unwrap();
    assert_eq!(listed, tapi.providers());
    let sizes: Vec<u32> = tapi
        .calls()
        .iter()
        .map(|call| match call {
            Call::GetProviderList { total_size } => *total_size,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert_eq!(sizes[0], 4096);
    assert!(sizes[1] > 4096);
}

#[test]
fn a_list_that_keeps_growing_is_given_up_after_four_calls() {
    let tapi = (0..60).fold(Simulated::new(), |tapi, n| {
        tapi.with(&format!("provider-with-a-rather-long-name-{n:03}.tsp"))
    });
    tapi.growing();
    let error = install::list(&tapi).unwrap_err();
    assert!(matches!(error, InstallError::MalformedList(_)), "{error:?}");
    assert_eq!(tapi.calls().len(), 4);
}

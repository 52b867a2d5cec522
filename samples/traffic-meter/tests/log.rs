//! The log: lines `show` reads back, rotation at the size limit, and a directory that cannot be
//! written (a line lost, nothing else).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use traffic_meter::figures::{
    Connection, Endpoint, Figures, Line, LocalEnd, PeerEnd, ProcessId, Summary,
};
use traffic_meter::log::{Log, LogConfig};

fn directory(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("traffic-meter-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn process() -> ProcessId {
    ProcessId {
        pid: 77,
        exe: "my app.exe".into(),
    }
}

fn connection(endpoint: &str, sent: u64) -> Line {
    Line::Connection {
        process: process(),
        time: 1_718_000_000,
        connection: Connection {
            endpoint: Endpoint::parse(endpoint).unwrap(),
            sent,
            received: 2 * sent,
            local: LocalEnd::Shutdown,
            peer: PeerEnd::Reset,
        },
    }
}

#[test]
fn every_line_reads_back() {
    let lines = [
        connection("192.0.2.1:443", 5),
        connection("[2001:db8::1]:80", 6),
        connection("unknown", 0),
        Line::Totals {
            process: process(),
            time: 9,
            figures: Figures {
                connections: 3,
                sent: 11,
                received: 22,
                graceful: 3,
                abortive: 0,
                peer_fin: 0,
                peer_reset: 3,
            },
        },
    ];
    for line in &lines {
        let text = line.to_text();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text:?}"
        );
        assert_eq!(Line::parse(&text).as_ref(), Some(line), "{text:?}");
    }
    assert_eq!(
        connection("192.0.2.1:443", 5).to_text(),
        "connection pid=77 endpoint=192.0.2.1:443 sent=5 received=10 local=shutdown \
         peer=reset time=1718000000 exe=my app.exe\n"
    );
    for bad in [
        "",
        "connection pid=1",
        "connection pid=x endpoint=unknown sent=1 received=1 local=close peer=fin time=1 exe=a",
        "connection pid=1 endpoint=unknown sent=1 received=1 local=closed peer=fin time=1 exe=a",
        "connection pid=1 endpoint=1.2.3.4 sent=1 received=1 local=close peer=fin time=1 exe=a",
        "connection pid=1 sent=1 endpoint=unknown received=1 local=close peer=fin time=1 exe=a",
        "totals pid=1 connections=1 exe=a",
    ] {
        assert_eq!(Line::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn the_sockaddr_decoding_is_safe_on_any_bytes() {
    let v4 = [2, 0, 0x01, 0xbb, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(Endpoint::from_sockaddr(&v4).to_string(), "192.0.2.1:443");
    let mut v6 = vec![23, 0, 0, 80, 0, 0, 0, 0];
    v6.extend([0x20, 0x01, 0x0d, 0xb8]);
    v6.extend([0; 11]);
    v6.push(1);
    v6.extend([0; 4]);
    assert_eq!(Endpoint::from_sockaddr(&v6).to_string(), "[2001:db8::1]:80");
    for short in 0..8 {
        assert_eq!(Endpoint::from_sockaddr(&v4[..short]), Endpoint::Unknown);
    }
    assert_eq!(
        Endpoint::from_sockaddr(&v4[..8]).to_string(),
        "192.0.2.1:443",
        "no more is read"
    );
    for short in 0..24 {
        assert_eq!(Endpoint::from_sockaddr(&v6[..short]), Endpoint::Unknown);
    }
    assert_eq!(
        Endpoint::from_sockaddr(&[1, 0, 0, 0, 0, 0, 0, 0]),
        Endpoint::Unknown
    );
    assert_eq!(Endpoint::from_sockaddr(&[]), Endpoint::Unknown);
}

#[test]
fn the_log_rotates_at_the_limit() {
    let dir = directory("rotate");
    let line = connection("192.0.2.1:443", 5).to_text();
    let per_file = 3;
    let log = Log::new(
        LogConfig {
            directory: dir.clone(),
            limit: (per_file * line.len()) as u64,
        },
        "my app.exe",
    );
    assert_eq!(log.path(), dir.join("my app.exe.log"));
    for _ in 0..per_file {
        log.append(&line);
    }
    assert!(!log.rotated_path().exists(), "at the limit, not past it");
    log.append(&line);
    let current = std::fs::read_to_string(log.path()).unwrap();
    let rotated = std::fs::read_to_string(log.rotated_path()).unwrap();
    assert_eq!(current, line);
    assert_eq!(rotated, line.repeat(per_file));
    for _ in 0..per_file {
        log.append(&line);
    }
    assert_eq!(
        std::fs::read_to_string(log.rotated_path()).unwrap(),
        line.repeat(per_file),
        "the older .1 replaced"
    );
    assert_eq!(std::fs::read_to_string(log.path()).unwrap(), line);

    let mut summary = Summary::default();
    summary.add_text(&std::fs::read_to_string(log.rotated_path()).unwrap());
    summary.add_text(&std::fs::read_to_string(log.path()).unwrap());
    let figures = summary.processes[&process()];
    assert_eq!(
        (figures.connections, figures.sent, figures.received),
        (4, 20, 40)
    );
    assert_eq!(summary.unreadable, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_that_cannot_be_made_loses_the_line_and_nothing_else() {
    let dir = directory("blocked");
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    std::fs::write(&dir, "a file where the directory should be").unwrap();
    let log = Log::new(
        LogConfig {
            directory: dir.clone(),
            limit: 1 << 20,
        },
        "app.exe",
    );
    log.append(&connection("unknown", 1).to_text());
    assert!(!log.path().exists());
    std::fs::remove_file(&dir).unwrap();
}

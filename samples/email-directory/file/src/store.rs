//! The directory file: read when it changed (a metadata check per lookup), replaced whole.
//!
//! Reading compares the file's modification time and length with those of the copy in memory
//! and parses the file again only when either differs (an edit that keeps both, within the
//! file system's timestamp resolution, is seen at the next change).
//!
//! Writing goes to a temporary file in the same directory, which is flushed to disk and renamed
//! over the original, so a reader sees the old or the new file and never a part of one. That
//! rename can be refused while another handle has the file open: always under the classic
//! Windows rename semantics (what `std::fs::rename` falls back to where the file system offers
//! no POSIX rename semantics: older Windows, FAT and network volumes, Wine), and under POSIX
//! semantics while a handle that does not share delete access is open. So:
//!
//! - within the process, readers and the rename are kept apart by a read-write lock: lookups
//!   share it while they hold a handle (the metadata check, the read), the rename takes it
//!   alone, so no handle of this process is open on the file when it is replaced. Writers are
//!   serialized, each one reading, changing and replacing the file as one step;
//! - another process (an editor, a management tool) may hold the file open at any time: a rename
//!   refused with `ERROR_ACCESS_DENIED`, `ERROR_SHARING_VIOLATION` or `ERROR_LOCK_VIOLATION` is
//!   tried again after each of [`REPLACE_PAUSES`] (155 ms in all) before the write reports the
//!   error; lookups go on during the pauses. The file is not locked against other processes:
//!   two processes that update it at the same time may lose one of the two updates.

use crate::directory::{Directory, ParseError};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

/// The pauses between the attempts of a replace another process keeps failing: six attempts
/// over 155 ms.
pub(crate) const REPLACE_PAUSES: [Duration; 5] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
];

/// Why the directory cannot be used.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// Reading or writing the file failed.
    Io(io::Error),
    /// The file is not a valid directory.
    Parse(ParseError),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(error) => write!(f, "{error}"),
            Self::Parse(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(error) => Some(error),
            Self::Parse(error) => Some(error),
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// What identifies one version of the file, cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stamp {
    Missing,
    Present {
        modified: Option<SystemTime>,
        len: u64,
    },
}

impl Stamp {
    fn of(metadata: &fs::Metadata) -> Self {
        Self::Present {
            modified: metadata.modified().ok(),
            len: metadata.len(),
        }
    }

    fn of_path(path: &Path) -> io::Result<Self> {
        match fs::metadata(path) {
            Ok(metadata) => Ok(Self::of(&metadata)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Self::Missing),
            Err(error) => Err(error),
        }
    }
}

/// One version of the file: its stamp and what it parsed to.
#[derive(Debug)]
struct Loaded {
    stamp: Stamp,
    directory: Result<Arc<Directory>, ParseError>,
}

/// The directory file and the copy of it in memory.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    /// Shared by the readers of the file while they hold a handle on it, taken alone by the
    /// rename that replaces it.
    file: RwLock<()>,
    cache: Mutex<Option<Loaded>>,
    writer: Mutex<()>,
    #[cfg(test)]
    probe: tests::Probe,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: RwLock::new(()),
            cache: Mutex::new(None),
            writer: Mutex::new(()),
            #[cfg(test)]
            probe: tests::Probe::default(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current stamp, without reading it.
    pub(crate) fn stamp(&self) -> io::Result<Stamp> {
        let _reading = self.file.read().unwrap_or_else(PoisonError::into_inner);
        Stamp::of_path(&self.path)
    }

    /// The current directory, read again if the file changed since the last call. A missing
    /// file is an empty directory. A broken file stays an error until it changes again (logged
    /// once per version); a failed read is tried again by the next call.
    pub(crate) fn current(&self) -> Result<Arc<Directory>, StoreError> {
        // No replace runs while this reader holds a handle on the file.
        let _reading = self.file.read().unwrap_or_else(PoisonError::into_inner);
        #[cfg(test)]
        let _inside = self.probe.reading();
        let stamp = Stamp::of_path(&self.path).inspect_err(|error| self.log_io(error))?;
        let mut cache = lock(&self.cache);
        if let Some(loaded) = cache.as_ref().filter(|loaded| loaded.stamp == stamp) {
            return loaded.directory.clone().map_err(StoreError::Parse);
        }
        let loaded = self.read().inspect_err(|error| self.log_io(error))?;
        match &loaded.directory {
            Ok(directory) => tracing::info!(
                path = %self.path.display(),
                entries = directory.entries().len(),
                "directory loaded"
            ),
            Err(error) => tracing::error!(
                path = %self.path.display(),
                %error,
                "directory file is invalid; lookups fail until it is fixed"
            ),
        }
        let directory = loaded.directory.clone().map_err(StoreError::Parse);
        *cache = Some(loaded);
        directory
    }

    fn log_io(&self, error: &io::Error) {
        tracing::error!(path = %self.path.display(), %error, "reading the directory file");
    }

    fn read(&self) -> io::Result<Loaded> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    stamp: Stamp::Missing,
                    directory: Ok(Arc::new(Directory::new())),
                });
            }
            Err(error) => return Err(error),
        };
        // The stamp and the text of the same open file, so a concurrent rename cannot pair
        // the new stamp with the old text.
        let stamp = Stamp::of(&file.metadata()?);
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(Loaded {
            stamp,
            directory: Directory::parse(&text).map(Arc::new),
        })
    }

    /// Applies `change` to the current directory and replaces the file with the result, with
    /// writers serialized. Nothing is written when `change` fails (or the current file cannot
    /// be read: a broken file is never overwritten).
    pub(crate) fn update<E>(
        &self,
        change: impl FnOnce(&mut Directory) -> Result<(), E>,
    ) -> Result<Result<(), E>, StoreError> {
        let _writer = lock(&self.writer);
        let mut directory = Directory::clone(&*self.current()?);
        if let Err(error) = change(&mut directory) {
            return Ok(Err(error));
        }
        let directory = Arc::new(directory);
        let written =
            write_temporary(&self.path, directory.to_string().as_bytes()).and_then(|temp| {
                let replaced = retrying(
                    || self.replace(&temp, &directory),
                    is_transient,
                    &REPLACE_PAUSES,
                );
                match replaced {
                    Ok(()) => sync_parent(&self.path),
                    Err(_) => {
                        let _ = fs::remove_file(&temp);
                    }
                }
                replaced
            });
        written.inspect_err(|error| {
            tracing::error!(path = %self.path.display(), %error, "writing the directory file");
        })?;
        tracing::debug!(path = %self.path.display(), "directory written");
        Ok(Ok(()))
    }

    /// One attempt to rename `temp` over the file, with no reader of this process holding a
    /// handle on it; on success the copy in memory becomes `directory`, so the next lookup need
    /// not read it back (if the new stamp is unavailable, it will).
    fn replace(&self, temp: &Path, directory: &Arc<Directory>) -> io::Result<()> {
        let _replacing = self.file.write().unwrap_or_else(PoisonError::into_inner);
        #[cfg(test)]
        let _probe = self.probe.replacing();
        fs::rename(temp, &self.path)?;
        *lock(&self.cache) = Stamp::of_path(&self.path).ok().map(|stamp| Loaded {
            stamp,
            directory: Ok(Arc::clone(directory)),
        });
        Ok(())
    }
}

/// Runs `attempt` until it succeeds, fails for good, or has failed transiently (see
/// `is_transient`) once more than there are `pauses`, pausing between attempts.
fn retrying(
    mut attempt: impl FnMut() -> io::Result<()>,
    is_transient: impl Fn(&io::Error) -> bool,
    pauses: &[Duration],
) -> io::Result<()> {
    let mut pauses = pauses.iter();
    loop {
        match attempt() {
            Err(error) if is_transient(&error) => match pauses.next() {
                Some(pause) => {
                    tracing::debug!(%error, ?pause, "the directory file is in use; trying again");
                    std::thread::sleep(*pause);
                }
                None => return Err(error),
            },
            done => return done,
        }
    }
}

/// Whether a rename failed only because another handle has the file open: what classic Windows
/// rename semantics answer then (`ERROR_ACCESS_DENIED`, `ERROR_SHARING_VIOLATION`,
/// `ERROR_LOCK_VIOLATION`). A POSIX rename never fails for that reason.
fn is_transient(error: &io::Error) -> bool {
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    const ERROR_LOCK_VIOLATION: i32 = 33;
    cfg!(windows)
        && matches!(
            error.raw_os_error(),
            Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
        )
}

/// The directory of the file at `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Writes `contents` to a new temporary file next to `path` (flushed and synced) and returns its
/// path, to be renamed over `path`.
fn write_temporary(path: &Path, contents: &[u8]) -> io::Result<PathBuf> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let parent = parent_of(path);
    fs::create_dir_all(parent)?;
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the directory path names no file",
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = parent.join(temp_name);
    let written = (|| {
        let mut file = File::options().write(true).create_new(true).open(&temp)?;
        file.write_all(contents)?;
        file.flush()?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(temp),
        Err(error) => {
            let _ = fs::remove_file(&temp);
            Err(error)
        }
    }
}

/// Makes a rename in the directory of `path` durable where the file system allows syncing a
/// directory.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Err(error) = File::open(parent_of(path)).and_then(|dir| dir.sync_all()) {
        tracing::debug!(%error, "syncing the directory of the directory file");
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::time::Instant;

    /// What the store's readers and renames did, for the tests: a rename while a reader of
    /// the same store is inside `current` is one that classic Windows rename semantics refuse.
    #[derive(Debug, Default)]
    pub(super) struct Probe {
        readers: AtomicUsize,
        renames: AtomicUsize,
        collisions: AtomicUsize,
    }

    /// A reader inside `current`, from before its first handle until after its last.
    pub(super) struct Reading<'a>(&'a Probe);

    impl Drop for Reading<'_> {
        fn drop(&mut self) {
            self.0.readers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A rename attempt, checked for readers when it starts and when it ends.
    pub(super) struct Replacing<'a>(&'a Probe);

    impl Drop for Replacing<'_> {
        fn drop(&mut self) {
            self.0.check();
        }
    }

    impl Probe {
        pub(super) fn reading(&self) -> Reading<'_> {
            self.readers.fetch_add(1, Ordering::SeqCst);
            Reading(self)
        }

        pub(super) fn replacing(&self) -> Replacing<'_> {
            self.renames.fetch_add(1, Ordering::SeqCst);
            self.check();
            Replacing(self)
        }

        fn check(&self) {
            if self.readers.load(Ordering::SeqCst) > 0 {
                self.collisions.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// A folder of its own for one test, removed when the test ends.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "email-directory-store-{}-{test}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const ENTRIES: usize = 400;
    const WRITERS: usize = 3;
    const UPDATES: usize = 40;

    /// A directory of `ENTRIES` entries whose data all say `generation`: a file of about 25 KB,
    /// so a reader of a partly written file would see fewer entries or mixed generations.
    fn generation_file(generation: usize) -> String {
        let mut directory = Directory::new();
        for i in 0..ENTRIES {
            let entry = directory.get_or_insert(&format!("user{i}@example.org"));
            entry.addresses.push(([192, 0, 2, 1], 25).into());
            entry.comment = Some(format!("user number {i}"));
            entry.data = Some(generation.to_string());
        }
        directory.to_string()
    }

    /// The generation of a whole directory; panics on a torn one.
    fn generation_of(directory: &Directory, who: &str) -> usize {
        let entries = directory.entries();
        assert_eq!(
            entries.len(),
            ENTRIES,
            "{who} read a directory with missing entries"
        );
        let generation = entries[0].data.as_deref().unwrap();
        assert!(
            entries
                .iter()
                .all(|entry| entry.data.as_deref() == Some(generation)),
            "{who} read a directory mixing generations"
        );
        generation.parse().unwrap()
    }

    /// Reads `store` until `stop`, checking each directory is whole and no older than the one
    /// before; returns how many reads it made.
    fn read_until(store: &Store, stop: &AtomicBool, who: &str) -> usize {
        let mut last = 0;
        let mut reads = 0;
        while !stop.load(Ordering::SeqCst) {
            let directory = store
                .current()
                .unwrap_or_else(|error| panic!("{who}: reading failed: {error}"));
            let generation = generation_of(&directory, who);
            assert!(
                generation >= last,
                "{who} went back from {last} to {generation}"
            );
            last = generation;
            reads += 1;
        }
        reads
    }

    #[test]
    fn every_write_succeeds_and_every_read_is_whole_while_threads_read_and_write() {
        let scratch = Scratch::new("concurrent");
        let path = scratch.0.join("directory.txt");
        fs::write(&path, generation_file(0)).unwrap();
        // The writers and two readers share one store, as the provider's threads do; two more
        // readers have a store each, as other processes would (they read the file from disk
        // at every change the stamp shows).
        let store = Store::new(path.clone());
        let stop = AtomicBool::new(false);
        let start = Barrier::new(WRITERS + 4);
        let (reads, others) = std::thread::scope(|scope| {
            let shared: Vec<_> = (0..2)
                .map(|i| {
                    let (store, stop, start) = (&store, &stop, &start);
                    scope.spawn(move || {
                        start.wait();
                        read_until(store, stop, &format!("shared reader {i}"))
                    })
                })
                .collect();
            let separate: Vec<_> = (0..2)
                .map(|i| {
                    let (path, stop, start) = (&path, &stop, &start);
                    scope.spawn(move || {
                        let own = Store::new(path.clone());
                        start.wait();
                        read_until(&own, stop, &format!("separate reader {i}"))
                    })
                })
                .collect();
            let writers: Vec<_> = (0..WRITERS)
                .map(|_| {
                    let (store, start) = (&store, &start);
                    scope.spawn(move || {
                        start.wait();
                        for _ in 0..UPDATES {
                            store
                                .update(|directory| {
                                    let next = generation_of(directory, "a writer") + 1;
                                    let data = next.to_string();
                                    for i in 0..ENTRIES {
                                        let name = format!("user{i}@example.org");
                                        directory.get_mut(&name).unwrap().data = Some(data.clone());
                                    }
                                    Ok::<(), ()>(())
                                })
                                .expect("the write succeeds")
                                .unwrap();
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            stop.store(true, Ordering::SeqCst);
            let join = |threads: Vec<std::thread::ScopedJoinHandle<'_, usize>>| -> Vec<usize> {
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            };
            (join(shared), join(separate))
        });
        assert!(
            reads.iter().chain(&others).all(|&n| n > 0),
            "every reader read ({reads:?}, {others:?})"
        );
        // No update was lost, and the file on disk is the last one.
        let fresh = Store::new(path.clone());
        assert_eq!(
            generation_of(&fresh.current().unwrap(), "a fresh store"),
            WRITERS * UPDATES
        );
        assert_eq!(
            generation_of(&store.current().unwrap(), "the store"),
            WRITERS * UPDATES
        );
        // Every rename was made once (none retried) and with no reader of the store inside.
        let probe = &store.probe;
        assert_eq!(probe.renames.load(Ordering::SeqCst), WRITERS * UPDATES);
        assert_eq!(
            probe.collisions.load(Ordering::SeqCst),
            0,
            "renames while a reader of the same store held the file"
        );
        // No temporary file is left behind.
        let left: Vec<_> = fs::read_dir(&scratch.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("directory.txt")]);
    }

    fn in_use() -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, "in use")
    }

    fn is_in_use(error: &io::Error) -> bool {
        error.to_string() == "in use"
    }

    const PAUSES: [Duration; 3] = [
        Duration::from_millis(10),
        Duration::from_millis(20),
        Duration::from_millis(30),
    ];

    #[test]
    fn a_replace_refused_while_the_file_is_in_use_is_tried_again() {
        let mut attempts = 0;
        let started = Instant::now();
        let outcome = retrying(
            || {
                attempts += 1;
                if attempts <= 2 { Err(in_use()) } else { Ok(()) }
            },
            is_in_use,
            &PAUSES,
        );
        assert!(outcome.is_ok());
        assert_eq!(attempts, 3);
        assert!(started.elapsed() >= PAUSES[0] + PAUSES[1]);
    }

    #[test]
    fn a_replace_refused_for_longer_than_the_pauses_fails_with_the_last_error() {
        let mut attempts = 0;
        let started = Instant::now();
        let outcome = retrying(
            || {
                attempts += 1;
                Err(in_use())
            },
            is_in_use,
            &PAUSES,
        );
        assert!(is_in_use(&outcome.unwrap_err()));
        assert_eq!(attempts, PAUSES.len() + 1);
        let elapsed = started.elapsed();
        assert!(elapsed >= PAUSES.iter().sum::<Duration>(), "{elapsed:?}");
    }

    #[test]
    fn other_failures_of_a_replace_are_not_tried_again() {
        let mut attempts = 0;
        let outcome = retrying(
            || {
                attempts += 1;
                Err(io::Error::from(io::ErrorKind::NotFound))
            },
            is_in_use,
            &PAUSES,
        );
        assert_eq!(outcome.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(attempts, 1);
    }

    #[test]
    fn the_pauses_last_about_150_ms() {
        let total: Duration = REPLACE_PAUSES.iter().sum();
        assert!(
            total >= Duration::from_millis(100) && total <= Duration::from_millis(200),
            "{total:?}"
        );
    }

    #[test]
    fn only_the_in_use_errors_of_classic_windows_renames_are_transient() {
        for code in [5, 32, 33] {
            assert_eq!(
                is_transient(&io::Error::from_raw_os_error(code)),
                cfg!(windows),
                "{code}"
            );
        }
        for code in [2, 3, 112] {
            assert!(!is_transient(&io::Error::from_raw_os_error(code)), "{code}");
        }
    }
}

//! Stories' canonical records on local disk ([`DiskStore`]), so that the engine's memory holds
//! what matching needs and not a copy of every open story's founding article.
//!
//! The files are a cache, not a record of truth: each engine writes its own directory, removes
//! it when dropped, and rebuilds it from what it decides again (the input, or the fingerprint
//! topic for a decider's restore). Records are appended to segment files; a segment no open
//! story points into is deleted, so the disk holds about what the heap would have.

use crate::pipeline::story::{CanonicalStore, HeapStore, Kept, Unreadable};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A segment file's size before the next one starts: large enough that files stay few, small
/// enough that one long-lived story pins little disk.
const SEGMENT_BYTES: usize = 64 << 20;
/// Bytes gathered before they are written: one system call per this many.
const WRITE_BATCH: usize = 1 << 20;

/// Directories made by this process, for unique names.
static MADE: AtomicU64 = AtomicU64::new(0);

/// The `[store]` section: where stories' canonical records are kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `disk`: in files under `dir`, read back when a later copy joins (about 3 KB per open
    /// story off the heap); `memory`: on the heap.
    pub canonical_records: String,
    /// Directory for the disk store's files; empty: the system's temporary directory.
    pub dir: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            canonical_records: "disk".to_string(),
            dir: None,
        }
    }
}

impl StoreConfig {
    /// The store this section names (a new directory for the disk store).
    pub fn canonical_store(&self) -> Result<Box<dyn CanonicalStore>, StoreError> {
        match self.canonical_records.as_str() {
            "memory" => Ok(Box::new(HeapStore)),
            _ => Ok(Box::new(DiskStore::create(self.dir.as_deref())?)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot create the canonical record store in {dir}: {source}; set store.dir to a writable directory (an emptyDir volume on Kubernetes) or store.canonical_records = \"memory\"")]
pub struct StoreError {
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

const PREFIX: &str = "syndic-canonical-";

/// Removes the directories that processes no longer running left under `parent` (killed before
/// they could remove their own). A container's process has the same pid after each restart,
/// so a directory named with this process's pid is always a dead one's; other pids are dead
/// when `/proc` does not list them. `store.dir` is therefore one process's or one host's, not
/// a volume shared between containers.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let dead = pid == own || (Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists());
        if dead {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(dir = %entry.path().display(), "removed a canonical record store a stopped process left")
                }
                Err(e) => {
                    tracing::warn!(error = %e, dir = %entry.path().display(), "cannot remove a canonical record store a stopped process left")
                }
            }
        }
    }
}

#[derive(Debug)]
struct Segment {
    file: File,
    /// Records of open stories in it.
    live: u32,
}

/// See the module documentation.
#[derive(Debug)]
pub struct DiskStore {
    dir: PathBuf,
    segments: HashMap<u32, Segment>,
    current: u32,
    /// Bytes of the current segment written to its file.
    written: usize,
    /// Bytes of the current segment not written yet (read back from here).
    pending: Vec<u8>,
    /// Records kept on the heap because the disk refused them.
    on_heap: u64,
    segment_bytes: usize,
}

impl DiskStore {
    /// A store in a new directory under `parent` (the system's temporary directory when
    /// `None`).
    pub fn create(parent: Option<&Path>) -> Result<Self, StoreError> {
        Self::with_segments_of(parent, SEGMENT_BYTES)
    }

    fn with_segments_of(parent: Option<&Path>, segment_bytes: usize) -> Result<Self, StoreError> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            remove_stale(&parent);
        }
        let dir = parent.join(format!("{PREFIX}{}-{n}", std::process::id()));
        let error = |source| StoreError {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(error)?;
        let mut store = Self {
            dir: dir.clone(),
            segments: HashMap::new(),
            current: 0,
            written: 0,
            pending: Vec::with_capacity(WRITE_BATCH),
            on_heap: 0,
            segment_bytes,
        };
        let first = store.open_segment(0).map_err(error)?;
        store.segments.insert(0, first);
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, segment: u32) -> PathBuf {
        self.dir.join(format!("{segment:08}.seg"))
    }

    fn open_segment(&self, segment: u32) -> std::io::Result<Segment> {
        let file = File::options()
            .create_new(true)
            .read(true)
            .append(true)
            .open(self.path(segment))?;
        Ok(Segment { file, live: 0 })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(segment) = self.segments.get_mut(&self.current) {
            segment.file.write_all(&self.pending)?;
        }
        self.written += self.pending.len();
        self.pending.clear();
        Ok(())
    }

    /// Writes what is pending and starts the next segment.
    fn next_segment(&mut self) -> std::io::Result<()> {
        self.flush()?;
        let next = self.current + 1;
        let segment = self.open_segment(next)?;
        self.segments.insert(next, segment);
        let full = self.current;
        self.current = next;
        self.written = 0;
        if self.segments.get(&full).is_some_and(|s| s.live == 0) {
            self.remove(full);
        }
        Ok(())
    }

    fn remove(&mut self, segment: u32) {
        self.segments.remove(&segment);
        if let Err(e) = std::fs::remove_file(self.path(segment)) {
            tracing::warn!(error = %e, dir = %self.dir.display(), segment, "cannot delete a canonical record segment no story needs; it stays on disk until syndic exits");
        }
    }

    fn try_keep(&mut self, raw: &str) -> std::io::Result<Kept> {
        let len = raw.len();
        if self.written + self.pending.len() + len > self.segment_bytes && self.written + self.pending.len() > 0 {
            self.next_segment()?;
        }
        let offset = self.written + self.pending.len();
        let (Ok(offset), Ok(len32)) = (u32::try_from(offset), u32::try_from(len)) else {
            return Err(std::io::Error::other("a record past 4 GB in one segment"));
        };
        self.pending.extend_from_slice(raw.as_bytes());
        if self.pending.len() >= WRITE_BATCH {
            self.flush()?;
        }
        if let Some(segment) = self.segments.get_mut(&self.current) {
            segment.live += 1;
        }
        Ok(Kept::Stored {
            segment: self.current,
            offset,
            len: len32,
        })
    }
}

impl CanonicalStore for DiskStore {
    fn keep(&mut self, raw: &Arc<str>) -> Kept {
        match self.try_keep(raw) {
            Ok(kept) => kept,
            Err(e) => {
                self.on_heap += 1;
                // Once, then every thousandth: a full disk would otherwise log every record.
                if self.on_heap % 1000 == 1 {
                    tracing::warn!(error = %e, dir = %self.dir.display(), kept_on_heap = self.on_heap, "cannot write a canonical record to disk; it is kept in memory instead (free space under store.dir)");
                }
                Kept::Held(raw.clone())
            }
        }
    }

    fn read(&self, kept: &Kept) -> Result<Arc<str>, Unreadable> {
        let (segment, offset, len) = match kept {
            Kept::Held(raw) => return Ok(raw.clone()),
            Kept::Stored { segment, offset, len } => (*segment, *offset as usize, *len as usize),
        };
        let unreadable = |reason: String| Unreadable {
            place: self.path(segment).display().to_string(),
            reason,
        };
        let bytes = if segment == self.current && offset >= self.written {
            let start = offset - self.written;
            self.pending
                .get(start..start + len)
                .ok_or_else(|| unreadable(format!("bytes {offset}..{} were never written", offset + len)))?
                .to_vec()
        } else {
            let file = &self
                .segments
                .get(&segment)
                .ok_or_else(|| unreadable("the segment was deleted".to_string()))?
                .file;
            let mut bytes = vec![0; len];
            file.read_exact_at(&mut bytes, offset as u64)
                .map_err(|e| unreadable(format!("reading {len} bytes at {offset}: {e}")))?;
            bytes
        };
        String::from_utf8(bytes)
            .map(Arc::from)
            .map_err(|_| unreadable(format!("the {len} bytes at {offset} are not the UTF-8 written there")))
    }

    fn forget(&mut self, kept: Kept) {
        let Kept::Stored { segment, .. } = kept else {
            return;
        };
        let Some(entry) = self.segments.get_mut(&segment) else {
            return;
        };
        entry.live = entry.live.saturating_sub(1);
        if entry.live == 0 && segment != self.current {
            self.remove(segment);
        }
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        self.segments.clear();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "cannot delete the canonical record store's directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn files(store: &DiskStore) -> usize {
        std::fs::read_dir(store.dir()).map(|d| d.count()).unwrap_or(0)
    }

    proptest! {
        /// Whatever is kept and forgotten, in any order, each record still kept reads back as
        /// it was, and segments that hold only forgotten records are gone from disk.
        #[test]
        fn kept_records_read_back_and_forgotten_segments_are_deleted(
            ops in proptest::collection::vec((0usize..20_000, any::<bool>()), 1..200),
        ) {
            // Small segments, so that records cross them often.
            let mut store = DiskStore::with_segments_of(None, 64 << 10).unwrap();
            let mut kept: Vec<(Arc<str>, Kept)> = Vec::new();
            for (i, (size, forget)) in ops.into_iter().enumerate() {
                if forget && !kept.is_empty() {
                    let (_, k) = kept.swap_remove(i % kept.len());
                    store.forget(k);
                } else {
                    let text: Arc<str> = Arc::from(format!("{i}:{}", "é".repeat(size / 2)).as_str());
                    let k = store.keep(&text);
                    kept.push((text, k));
                }
                for (text, k) in &kept {
                    prop_assert_eq!(&store.read(k).unwrap(), text);
                }
            }
            let live: std::collections::BTreeSet<u32> = kept
                .iter()
                .filter_map(|(_, k)| match k {
                    Kept::Stored { segment, .. } => Some(*segment),
                    Kept::Held(_) => None,
                })
                .chain([store.current])
                .collect();
            prop_assert_eq!(files(&store), live.len());
            let dir = store.dir().to_path_buf();
            drop(store);
            prop_assert!(!dir.exists(), "the store removes its directory");
        }
    }

    #[test]
    fn stores_left_by_dead_processes_are_removed_and_live_ones_kept() {
        let parent = std::env::temp_dir().join(format!("syndic-stale-test-{}", std::process::id()));
        std::fs::create_dir_all(&parent).unwrap();
        // A pid no process has (above the kernel's maximum), this process's own (a restarted
        // container's predecessor), and the parent of this process, which runs.
        let dead = parent.join(format!("{PREFIX}{}-0", u32::MAX));
        let own = parent.join(format!("{PREFIX}{}-7", std::process::id()));
        let live = parent.join(format!("{PREFIX}{}-0", std::os::unix::process::parent_id()));
        let other = parent.join("unrelated");
        for dir in [&dead, &own, &live, &other] {
            std::fs::create_dir_all(dir.join("sub")).unwrap();
        }
        remove_stale(&parent);
        assert!(!dead.exists() && !own.exists(), "stale stores removed");
        assert!(
            live.exists() && other.exists(),
            "a running process's store and other files kept"
        );
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error_that_names_it_and_the_settings() {
        let err = DiskStore::create(Some(Path::new("/proc/syndic-cannot-write-here"))).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("/proc/syndic-cannot-write-here") && message.contains("store.dir"),
            "{message}"
        );
    }
}

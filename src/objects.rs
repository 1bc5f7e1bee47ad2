//! Where log objects come from: the [`ObjectSource`] seam with an in-memory
//! implementation (tests), local files (`scan`) and S3 (`aws::s3`).
//!
//! An object is read exactly as the event names it: the version the event names, or
//! the current one when it names none; [`OpenedObject::version`] says which was read,
//! and that is what the object's identity is made of (docs/DESIGN.md, "Object
//! identity").

use crate::errors::BoxError;
use crate::event::ObjectRef;
use crate::identity::ObjectId;
use std::fs::File;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// An object opened for streaming.
pub struct OpenedObject {
    /// What is being read: the object's name and its identity (docs/DESIGN.md,
    /// "Object identity"), decided by the source.
    pub id: ObjectId,
    /// Blocking reader over the body: read it from a blocking thread.
    pub body: Box<dyn Read + Send>,
    /// Version of what is being read (version id, else ETag), for the object id.
    pub version: String,
    /// ETag of what is being read, for the object's marker (docs/DESIGN.md, "The sweep").
    pub etag: Option<String>,
    pub size: Option<u64>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// Last modified, epoch seconds (0 when unknown).
    pub modified: i64,
}

/// What a listing found: objects, and with a delimiter the "folders" below the prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<ListedObject>,
    pub prefixes: Vec<String>,
    /// More objects (or folders) were in range than [`KeyRange::max_objects`]: the
    /// listing stops there.
    pub cut: bool,
}

/// Which keys below a prefix a listing returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyRange<'a> {
    /// Only keys that sort after this one.
    pub start_after: Option<&'a str>,
    /// Only keys that sort before this one.
    pub end_before: Option<&'a str>,
    /// At most this many objects, and at most this many folders in a folder listing
    /// (a listing of what a writer may grow is bounded).
    pub max_objects: Option<usize>,
}

impl KeyRange<'_> {
    /// Whether `key` is within the range's bounds (its count aside).
    pub fn contains(&self, key: &str) -> bool {
        self.start_after.is_none_or(|a| key > a) && self.end_before.is_none_or(|e| key < e)
    }
}

impl Listing {
    /// Lists `all` as S3 does: the objects whose key starts with `prefix` and is in
    /// `range`, in key order; with `folders`, those directly below it and the next
    /// `/`-ended prefixes instead.
    pub fn of(
        all: impl IntoIterator<Item = ListedObject>,
        prefix: &str,
        folders: bool,
        range: KeyRange<'_>,
    ) -> Listing {
        let mut found: Vec<ListedObject> = all
            .into_iter()
            .filter(|o| o.key.starts_with(prefix) && range.contains(&o.key))
            .collect();
        found.sort_by(|a, b| a.key.cmp(&b.key));
        let mut listing = Listing::default();
        for object in found {
            match object.key[prefix.len()..].find('/') {
                Some(i) if folders => {
                    let folder = object.key[..=prefix.len() + i].to_string();
                    if listing.prefixes.last() != Some(&folder) {
                        if range
                            .max_objects
                            .is_some_and(|m| listing.prefixes.len() >= m)
                        {
                            listing.cut = true;
                            break;
                        }
                        listing.prefixes.push(folder);
                    }
                }
                _ if range
                    .max_objects
                    .is_some_and(|m| listing.objects.len() >= m) =>
                {
                    listing.cut = true;
                    break;
                }
                _ => listing.objects.push(object),
            }
        }
        listing
    }
}

/// Opening or listing failed for a reason a retry may fix (access, throttling, network).
#[derive(Debug, Error)]
#[error("{operation} {uri} failed")]
pub struct SourceError {
    /// `GetObject`, `ListObjectsV2`, `open`, `list`.
    pub operation: &'static str,
    /// The object, or the prefix listed: `s3://bucket/key`, or a path.
    pub uri: String,
    #[source]
    pub source: BoxError,
}

impl SourceError {
    /// A failure on the object (or prefix) `key` of the S3 bucket `bucket`.
    pub fn s3(
        operation: &'static str,
        bucket: &str,
        key: &str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self {
            operation,
            uri: format!("s3://{bucket}/{key}"),
            source: source.into(),
        }
    }
}

pub trait ObjectSource: Send + Sync {
    /// `Ok(None)` when the object (or the version the event names) does not exist
    /// (any more).
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<OpenedObject>, SourceError>> + Send;

    /// Every object whose key starts with `prefix` and is within `range`, in key
    /// order; with `folders`, the objects directly below it and the next `/`-ended
    /// prefixes instead.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        folders: bool,
        range: KeyRange<'_>,
    ) -> impl Future<Output = Result<Listing, SourceError>> + Send;
}

/// Objects held in memory, for tests.
#[cfg(any(test, feature = "testing"))]
mod memory {
    use super::*;
    use crate::errors::lock;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Bodies of every version of one object, oldest first.
    type Versions = Vec<Vec<u8>>;

    /// Objects held in memory, keyed by (bucket, key), each with its versions.
    #[derive(Debug, Default)]
    pub struct MemorySource {
        objects: Mutex<HashMap<(String, String), Versions>>,
    }

    impl MemorySource {
        pub fn new() -> Self {
            Self::default()
        }

        /// Writes a new version of the object; returns its version id.
        pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) -> String {
            let mut objects = lock(&self.objects);
            let versions = objects
                .entry((bucket.to_string(), key.to_string()))
                .or_default();
            versions.push(body.into());
            format!("v{}", versions.len())
        }
    }

    impl ObjectSource for MemorySource {
        async fn open(&self, object: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
            let objects = lock(&self.objects);
            let Some(versions) = objects.get(&(object.bucket.clone(), object.key.clone())) else {
                return Ok(None);
            };
            let index = match &object.version_id {
                Some(v) => match v.strip_prefix('v').and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) if n >= 1 && n <= versions.len() => n - 1,
                    _ => return Ok(None),
                },
                None => versions.len() - 1,
            };
            let body = versions[index].clone();
            let version = format!("v{}", index + 1);
            Ok(Some(OpenedObject {
                id: ObjectId::s3(&object.bucket, &object.key, &version),
                version,
                etag: Some(memory_etag(&body)),
                size: Some(body.len() as u64),
                body: Box::new(std::io::Cursor::new(body)),
            }))
        }

        async fn list(
            &self,
            bucket: &str,
            prefix: &str,
            folders: bool,
            range: KeyRange<'_>,
        ) -> Result<Listing, SourceError> {
            let objects = lock(&self.objects);
            let all =
                objects
                    .iter()
                    .filter(|((b, _), _)| b == bucket)
                    .map(|((_, key), versions)| {
                        let body = versions.last().map(Vec::as_slice).unwrap_or_default();
                        ListedObject {
                            key: key.clone(),
                            size: body.len() as u64,
                            etag: Some(memory_etag(body)),
                            modified: 0,
                        }
                    });
            Ok(Listing::of(all, prefix, folders, range))
        }
    }

    /// A content digest standing in for S3's ETag.
    fn memory_etag(body: &[u8]) -> String {
        ObjectId::file("memory", &String::from_utf8_lossy(body)).token
    }
}
#[cfg(any(test, feature = "testing"))]
pub use memory::MemorySource;

/// Local files as objects (`scan`): the "bucket" is a folder, a key is a path below
/// it, '/'-separated with a leading '/' (what housekeeping rules and key dates are
/// matched against, as for an S3 key). A file's identity is its real path, its size
/// and its modification time, so an edited file counts again and a renamed link does
/// not.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileSource;

impl FileSource {
    /// The path of `key` below the folder `bucket`.
    pub fn path(bucket: &str, key: &str) -> PathBuf {
        Path::new(bucket).join(key.trim_start_matches('/'))
    }
}

impl ObjectSource for FileSource {
    async fn open(&self, object: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
        let path = Self::path(&object.bucket, &object.key);
        let failed = |e: std::io::Error| SourceError {
            operation: "open",
            uri: path.display().to_string(),
            source: Box::new(e),
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        let meta = file.metadata().map_err(failed)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let version = format!("{}:{mtime}", meta.len());
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        Ok(Some(OpenedObject {
            id: ObjectId::file(&real.to_string_lossy(), &version),
            body: Box::new(file),
            version,
            etag: None,
            size: Some(meta.len()),
        }))
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        folders: bool,
        range: KeyRange<'_>,
    ) -> Result<Listing, SourceError> {
        let root = Path::new(bucket);
        let failed = |e: std::io::Error| SourceError {
            operation: "list",
            uri: Self::path(bucket, prefix).display().to_string(),
            source: Box::new(e),
        };
        let files = walk_files(root, &mut Vec::new())
            .map_err(failed)?
            .into_iter()
            .map(|f| ListedObject {
                key: file_key(root, &f.path),
                size: f.size,
                etag: None,
                modified: f.modified,
            });
        Ok(Listing::of(files, prefix, folders, range))
    }
}

/// A file found by [`walk_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    pub path: PathBuf,
    pub size: u64,
    /// Last modified, epoch seconds (0 when unknown).
    pub modified: i64,
}

/// The one walk over local files (`scan`'s inputs and [`FileSource::list`]): every
/// file under `path` (or `path` itself), sorted, following links but never into a
/// folder twice (a symlink cycle ends there, with a note). A name that is not UTF-8 is
/// skipped with a note: a file is named by strings, as an S3 object is, and such a
/// name could not be opened again from them. A folder that cannot be read is noted.
pub fn walk_files(path: &Path, notes: &mut Vec<String>) -> std::io::Result<Vec<FoundFile>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    walk(path, &mut seen, &mut out, notes)?;
    Ok(out)
}

fn walk(
    path: &Path,
    seen: &mut std::collections::HashSet<PathBuf>,
    out: &mut Vec<FoundFile>,
    notes: &mut Vec<String>,
) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let real = std::fs::canonicalize(path)?;
        if !seen.insert(real) {
            notes.push(format!(
                "{}: folder already read (a symlink cycle?); skipped",
                path.display()
            ));
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            if let Err(err) = walk(&e, seen, out, notes) {
                notes.push(format!("cannot read {}: {err}", e.display()));
            }
        }
    } else if path.to_str().is_none() {
        notes.push(format!(
            "{}: the path is not UTF-8; skipped",
            path.display()
        ));
    } else {
        out.push(FoundFile {
            path: path.to_path_buf(),
            size: meta.len(),
            modified: modified_secs(&meta),
        });
    }
    Ok(())
}

/// The key of `path` below `root`: '/'-separated, with a leading '/'.
pub fn file_key(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    format!("/{}", parts.join("/"))
}

/// Modification time, epoch seconds (0 when unknown).
pub fn modified_secs(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_ref(root: &Path, key: &str) -> ObjectRef {
        ObjectRef {
            bucket: root.to_string_lossy().into_owned(),
            key: key.into(),
            raw_key: key.into(),
            size: None,
            etag: None,
            version_id: None,
        }
    }

    #[tokio::test]
    async fn a_file_is_an_object_named_by_its_folder_and_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        std::fs::write(dir.path().join("a/b/x.json"), "one").expect("write");
        std::fs::write(dir.path().join("a/y.json"), "two").expect("write");
        std::fs::write(dir.path().join("z.json"), "three").expect("write");

        let opened = FileSource
            .open(&file_ref(dir.path(), "/a/b/x.json"))
            .await
            .expect("open")
            .expect("exists");
        assert!(opened.id.uri.ends_with("/a/b/x.json"), "{}", opened.id.uri);
        assert_eq!(opened.size, Some(3));
        let missing = FileSource.open(&file_ref(dir.path(), "/gone.json")).await;
        assert!(
            matches!(missing, Ok(None)),
            "a missing file is gone, not an error"
        );

        // Rewritten: another identity, so it counts again.
        std::fs::write(dir.path().join("a/b/x.json"), "changed").expect("write");
        let again = FileSource
            .open(&file_ref(dir.path(), "/a/b/x.json"))
            .await
            .expect("open")
            .expect("exists");
        assert_ne!(again.id.token, opened.id.token);

        let root = dir.path().to_string_lossy().into_owned();
        let all = FileSource
            .list(&root, "/", false, KeyRange::default())
            .await
            .expect("list");
        let keys: Vec<&str> = all.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["/a/b/x.json", "/a/y.json", "/z.json"]);
        let top = FileSource
            .list(&root, "/", true, KeyRange::default())
            .await
            .expect("list");
        assert_eq!(top.prefixes, ["/a/"]);
        assert_eq!(top.objects.len(), 1);
        let after = FileSource
            .list(
                &root,
                "/a/",
                false,
                KeyRange {
                    start_after: Some("/a/b/x.json"),
                    ..KeyRange::default()
                },
            )
            .await
            .expect("list");
        assert_eq!(after.objects.len(), 1);
        assert_eq!(after.objects[0].key, "/a/y.json");
    }
}

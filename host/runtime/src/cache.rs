//! The on-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes milliseconds for a small Rust
//! guest and tens of seconds for a Python or JavaScript one, whose
//! interpreter is part of the component. The cache keeps each compiled
//! component in a file named after the SHA-256 of the component's bytes and
//! the engine's [compatibility hash](wasmtime::Engine::precompile_compatibility_hash),
//! so a restart (or a second service shipping the same component) maps the
//! compiled code from the file instead of compiling it again.
//!
//! Entries are loaded with [`Component::deserialize_file`]: the code is
//! mapped from the file, so its pages are clean, shared between services
//! using the same component, and reclaimable by the kernel; a component's
//! initial memory image is mapped copy-on-write from the same file.
//!
//! # Trust
//!
//! A compiled component is machine code run as is, so an entry is used only
//! when the SHA-256 of the file matches the digest recorded beside it when
//! the host wrote it; wasmtime itself refuses a file compiled by another
//! version or configuration. A corrupt, truncated, foreign or unreadable
//! entry is compiled again (and rewritten), never trusted. Entries are
//! written to a temporary file and renamed, so a crash mid-write leaves no
//! half-written entry under a real name. The cache guards against damage,
//! not against someone who may write the data directory: they could change
//! the database as well.
//!
//! # Size
//!
//! [`ComponentCache::prune`] removes entries no installed service uses,
//! least recently used first, until the cache fits its size limit; entries
//! in use are never removed.

use std::collections::HashSet;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The extension of a compiled component in the cache.
const CODE_EXT: &str = "cwasm";
/// The extension of the file holding a compiled component's SHA-256.
const DIGEST_EXT: &str = "sha256";

/// Default size limit of the cache: 4 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

/// How a component was obtained from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Mapped from a valid cache entry.
    Hit,
    /// Compiled and written to the cache (there was no entry).
    Compiled,
    /// The entry was corrupt, foreign or unreadable: compiled and
    /// rewritten.
    Replaced,
}

/// A directory of compiled components, keyed by component digest and
/// engine configuration. See the [module documentation](self).
#[derive(Debug)]
pub struct ComponentCache {
    dir: PathBuf,
    max_bytes: u64,
    /// Keys loaded by this process: kept by [`ComponentCache::prune`].
    used: Mutex<HashSet<String>>,
}

impl ComponentCache {
    /// Opens (creating it if needed) the cache in `dir`, which may hold up
    /// to `max_bytes` of entries no loaded component uses.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> io::Result<ComponentCache> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(ComponentCache {
            dir,
            max_bytes,
            used: Mutex::default(),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `wasm` compiled by `engine`: the component's SHA-256 and
    /// the engine's compatibility hash.
    pub fn key(engine: &Engine, wasm: &[u8]) -> String {
        Self::key_of_digest(engine, &digest(wasm))
    }

    /// The key of the component whose SHA-256 is `digest` (hex).
    pub fn key_of_digest(engine: &Engine, digest: &str) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{digest}-{:016x}", hasher.finish())
    }

    /// The component whose SHA-256 is `digest`, mapped from a valid cache
    /// entry; `None` when there is none (the caller then needs its bytes
    /// for [`ComponentCache::load`]).
    pub fn load_cached(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let key = Self::key_of_digest(engine, digest);
        let code = self.code_path(&key);
        if !code.exists() {
            return None;
        }
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        match self.map_verified(engine, &key) {
            Ok(component) => {
                touch(&code);
                Some(component)
            }
            Err(why) => {
                tracing::warn!(
                    entry = %code.display(),
                    reason = %why,
                    "compiled component in the cache is not usable; compiling it again"
                );
                // Gone, so that the compile that follows writes it anew.
                let _ = fs::remove_file(self.digest_path(&key));
                let _ = fs::remove_file(&code);
                None
            }
        }
    }

    fn code_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{CODE_EXT}"))
    }

    fn digest_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{DIGEST_EXT}"))
    }

    /// The compiled `wasm`: mapped from its cache entry when there is a
    /// valid one, else compiled and written to the cache first.
    ///
    /// # Errors
    ///
    /// When `wasm` does not compile. A cache that cannot be written is
    /// logged and the component is compiled in memory instead.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, CacheUse)> {
        let wasm_digest = digest(wasm);
        let key = Self::key_of_digest(engine, &wasm_digest);
        let had_entry = self.code_path(&key).exists();
        if let Some(component) = self.load_cached(engine, &wasm_digest) {
            return Ok((component, CacheUse::Hit));
        }
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        let compiled = engine.precompile_component(wasm)?;
        let used = if had_entry {
            CacheUse::Replaced
        } else {
            CacheUse::Compiled
        };
        match self.write(&key, &compiled) {
            // Map it back so that even a freshly compiled component's code
            // is file-backed: clean pages, not private memory.
            Ok(()) => match self.map_verified(engine, &key) {
                Ok(component) => return Ok((component, used)),
                Err(why) => {
                    tracing::warn!(reason = %why, "cannot map a compiled component just written")
                }
            },
            Err(e) => tracing::warn!(
                dir = %self.dir.display(),
                error = %e,
                "cannot write the component cache; the component stays in memory only"
            ),
        }
        // SAFETY: `compiled` was produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, used))
    }

    /// Maps the entry `key` after checking the file against its recorded
    /// digest.
    fn map_verified(&self, engine: &Engine, key: &str) -> Result<Component, String> {
        let code = self.code_path(key);
        let recorded = fs::read_to_string(self.digest_path(key))
            .map_err(|e| format!("its digest cannot be read: {e}"))?;
        let actual = file_digest(&code).map_err(|e| format!("it cannot be read: {e}"))?;
        if recorded.trim() != actual {
            return Err(
                "its content does not match the digest recorded when it was written".into(),
            );
        }
        // SAFETY: the file is the one this host wrote (its SHA-256 matches
        // the digest written with it), and wasmtime checks that it was
        // compiled by a compatible engine. Nothing else writes the cache
        // directory while the host runs.
        unsafe { Component::deserialize_file(engine, &code) }.map_err(|e| format!("{e:#}"))
    }

    /// Writes an entry: the code, then its digest, each through a temporary
    /// file renamed into place.
    fn write(&self, key: &str, compiled: &[u8]) -> io::Result<()> {
        // The digest goes first: an entry without a valid digest is never
        // used, so a crash between the two renames leaves a miss.
        let _ = fs::remove_file(self.digest_path(key));
        write_atomically(&self.code_path(key), compiled)?;
        write_atomically(
            &self.digest_path(key),
            hex(&Sha256::digest(compiled)).as_bytes(),
        )
    }

    /// Removes entries this process has not loaded, least recently used
    /// first, until the cache holds at most its size limit. Returns the
    /// number of entries removed.
    pub fn prune(&self) -> usize {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut total = 0u64;
        let mut unused: Vec<(SystemTime, u64, String)> = Vec::new();
        for entry in dir.flatten() {
            let path = entry.path();
            let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            total += meta.len();
            if ext != CODE_EXT {
                continue;
            }
            let Some(key) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !used.contains(key) {
                let when = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                unused.push((when, meta.len(), key.to_owned()));
            }
        }
        unused.sort();
        let mut removed = 0;
        for (_, len, key) in unused {
            if total <= self.max_bytes {
                break;
            }
            let digest = self.digest_path(&key);
            let digest_len = fs::metadata(&digest).map_or(0, |m| m.len());
            if fs::remove_file(&digest).is_ok() {
                total = total.saturating_sub(digest_len);
            }
            if fs::remove_file(self.code_path(&key)).is_ok() {
                total = total.saturating_sub(len);
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %self.dir.display(), "pruned the component cache");
        }
        removed
    }
}

/// Marks an entry as just used, for least-recently-used pruning.
fn touch(path: &Path) {
    if let Ok(file) = fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn file_digest(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The SHA-256 of `bytes`, in hex: a component's identity.
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).expect("engine")
    }

    /// An empty component with a custom section `tag`, so that each tag
    /// gives other bytes (and another cache key).
    fn component(tag: &str) -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        let name = b"syncplane-test";
        let size = 1 + name.len() + tag.len();
        bytes.extend([0, u8::try_from(size).expect("small")]);
        bytes.push(u8::try_from(name.len()).expect("small"));
        bytes.extend(name);
        bytes.extend(tag.as_bytes());
        bytes
    }

    fn component_bytes() -> Vec<u8> {
        component("kept")
    }

    #[test]
    fn a_component_is_compiled_once_then_mapped_from_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let wasm = component_bytes();
        let cache = ComponentCache::open(dir.path(), DEFAULT_MAX_BYTES).expect("cache");
        let (_, first) = cache.load(&engine, &wasm).expect("load");
        assert_eq!(first, CacheUse::Compiled);
        let again = ComponentCache::open(dir.path(), DEFAULT_MAX_BYTES).expect("cache");
        let (_, second) = again.load(&engine, &wasm).expect("load");
        assert_eq!(second, CacheUse::Hit);
    }

    #[test]
    fn a_corrupt_or_truncated_entry_is_compiled_again_never_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let wasm = component_bytes();
        let cache = ComponentCache::open(dir.path(), DEFAULT_MAX_BYTES).expect("cache");
        cache.load(&engine, &wasm).expect("load");
        let key = ComponentCache::key(&engine, &wasm);
        let code = cache.code_path(&key);

        // One flipped byte.
        let mut bytes = fs::read(&code).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        fs::write(&code, &bytes).expect("write");
        let (_, used) = cache.load(&engine, &wasm).expect("load");
        assert_eq!(used, CacheUse::Replaced);
        assert_eq!(cache.load(&engine, &wasm).expect("load").1, CacheUse::Hit);

        // Truncated, and its digest lost.
        fs::write(&code, &bytes[..10]).expect("write");
        fs::remove_file(cache.digest_path(&key)).expect("rm");
        assert_eq!(
            cache.load(&engine, &wasm).expect("load").1,
            CacheUse::Replaced
        );
        assert_eq!(cache.load(&engine, &wasm).expect("load").1, CacheUse::Hit);
    }

    #[test]
    fn an_entry_of_another_engine_configuration_is_not_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wasm = component_bytes();
        let cache = ComponentCache::open(dir.path(), DEFAULT_MAX_BYTES).expect("cache");
        let plain = engine();
        cache.load(&plain, &wasm).expect("load");
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let other = Engine::new(&config).expect("engine");
        assert_ne!(
            ComponentCache::key(&plain, &wasm),
            ComponentCache::key(&other, &wasm)
        );
        assert_eq!(
            cache.load(&other, &wasm).expect("load").1,
            CacheUse::Compiled
        );
    }

    #[test]
    fn pruning_removes_unused_entries_oldest_first_and_keeps_those_in_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let old = component("old");
        let newer = component("newer");
        let kept = component_bytes();
        let writer = ComponentCache::open(dir.path(), DEFAULT_MAX_BYTES).expect("cache");
        writer.load(&engine, &old).expect("load");
        let old_code = writer.code_path(&ComponentCache::key(&engine, &old));
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .append(true)
            .open(&old_code)
            .expect("open")
            .set_modified(past)
            .expect("mtime");
        writer.load(&engine, &newer).expect("load");

        // A restarted host that loads only `kept`, with room for one more
        // entry besides it.
        let restarted = ComponentCache::open(dir.path(), 0).expect("cache");
        restarted.load(&engine, &kept).expect("load");
        let kept_code = restarted.code_path(&ComponentCache::key(&engine, &kept));
        let newer_code = restarted.code_path(&ComponentCache::key(&engine, &newer));
        let size = |p: &Path| fs::metadata(p).expect("meta").len();
        // Exactly `kept` and `newer` with their digests.
        let room = size(&kept_code)
            + size(&newer_code)
            + size(&restarted.digest_path(&ComponentCache::key(&engine, &kept)))
            + size(&restarted.digest_path(&ComponentCache::key(&engine, &newer)));
        let restarted = ComponentCache {
            max_bytes: room,
            ..restarted
        };
        assert_eq!(restarted.prune(), 1);
        assert!(!old_code.exists(), "the least recently used entry goes");
        assert!(newer_code.exists());
        assert!(kept_code.exists());
        let strict = ComponentCache {
            max_bytes: 0,
            ..restarted
        };
        assert_eq!(strict.prune(), 1);
        assert!(kept_code.exists(), "an entry in use is never removed");
    }
}

//! Durable replacement of small configuration files (topics, offsets, groups): temp file,
//! fsync, rename, fsync of the directory.

use std::path::{Path, PathBuf};

/// Writes `data` to `path` atomically and durably: temp file, fsync, rename, fsync of the
/// directory. Runs on glommio's blocking pool so a shard never stalls on it.
///
/// # Errors
/// Any I/O error of the steps above.
pub async fn write_file_durably(path: PathBuf, data: Vec<u8>) -> std::io::Result<()> {
    glommio::executor().spawn_blocking(move || write_file_durably_sync(&path, &data)).await
}

/// The blocking body of [`write_file_durably`], also used before executors start.
///
/// # Errors
/// Any I/O error of the steps.
pub fn write_file_durably_sync(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

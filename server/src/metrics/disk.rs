//! Disk facts of the store: filesystem capacity and free space, segment bytes and count.

/// Disk facts of the store: filesystem capacity and free space (statvfs), segment bytes and
/// count (a directory walk). Blocking; run it on the blocking pool.
pub fn disk_facts(store: &std::path::Path) -> (u64, u64, u64, u64) {
    let (total, free) = statvfs(store).unwrap_or((0, 0));
    let mut bytes = 0;
    let mut segments = 0;
    if let Ok(logs) = std::fs::read_dir(store.join("commitlog")) {
        for log in logs.flatten() {
            let Ok(files) = std::fs::read_dir(log.path()) else { continue };
            for f in files.flatten() {
                if let Ok(md) = f.metadata() {
                    if md.is_file() {
                        bytes += md.len();
                        segments += 1;
                    }
                }
            }
        }
    }
    (total, free, bytes, segments)
}

/// (capacity, free) bytes. Free counts blocks reserved for root too (`f_bfree`), as the
/// reference's `File.getFreeSpace()` and storage's retention ratio do, so the gauge and
/// the cleaning thresholds agree.
fn statvfs(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-struct that
    // statvfs fills; nothing is retained after the call.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        let frsize = st.f_frsize as u64;
        Some((st.f_blocks as u64 * frsize, st.f_bfree as u64 * frsize))
    }
}

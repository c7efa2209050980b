//! SIGTERM / SIGINT handling for the daemons: the first signal asks for a clean stop, a
//! second one exits at once.
//!
//! The signals are blocked in the main thread before any executor starts, so every thread
//! inherits the mask and only the main thread's `sigwait` ever sees them.

/// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts later).
pub fn block_stop_signals() {
    // SAFETY: sigemptyset/sigaddset initialise a local sigset_t; pthread_sigmask only reads
    // it. No memory is shared with the kernel after the calls return.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGINT or SIGTERM (which must be blocked, see [`block_stop_signals`]).
pub fn wait_stop_signal() -> i32 {
    // SAFETY: as above; sigwait writes the signal number into a local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let mut sig: libc::c_int = 0;
        libc::sigwait(&set, &mut sig);
        sig
    }
}

/// After the first signal: a thread that exits the process at the second one.
pub fn exit_on_second_signal() {
    std::thread::spawn(|| {
        let sig = wait_stop_signal();
        eprintln!("second signal {sig}: exiting now");
        std::process::exit(130);
    });
}

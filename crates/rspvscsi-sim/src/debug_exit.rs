//! QEMU's `isa-debug-exit` device: a byte written to its I/O port ends the VM with exit status
//! `(value << 1) | 1`. A test guest's last command reports its verdict this way (0: pass → 1,
//! 1: fail → 3). Linux guests without `/dev/port` need a process that takes the port with
//! `ioperm` and writes it itself.

/// The port `tests/qemu/run` gives the device (`-device isa-debug-exit,iobase=0xf4`).
pub const PORT: u16 = 0xf4;

/// Writes `code` to the debug-exit port. Returns only if nothing ended the VM.
///
/// # Errors
/// The port cannot be had (not root, not x86), or no device listens there.
pub fn write(code: u8) -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: ioperm changes only this process's I/O permission bitmap.
        let r = unsafe { libc::ioperm(libc::c_ulong::from(PORT), 1, 1) };
        if r != 0 {
            return Err(format!("ioperm({PORT:#x}): {} (root is needed)", std::io::Error::last_os_error()));
        }
        // SAFETY: the port is this process's now (ioperm above); an OUT touches no memory.
        // Under QEMU with isa-debug-exit the VM ends here; elsewhere the byte goes nowhere.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") PORT, in("al") code, options(nomem, nostack, preserves_flags));
        }
        Err(format!("no isa-debug-exit device answered at port {PORT:#x}"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = code;
        Err("isa-debug-exit needs an x86-64 guest".into())
    }
}

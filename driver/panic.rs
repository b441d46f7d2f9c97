//! The kernel driver's panic handler: a bug check, without an import.
//!
//! In kernel mode a panic can only end in a bug check. wdk-panic's handler gets there through
//! `KeBugCheckEx`, an ntoskrnl import that a storage miniport may not have (HLK's Storage Imports
//! test; the SCSI Port overview forbids linking ntoskrnl.lib). `__fastfail` needs no import: it is
//! the `int 0x29` instruction with the failure code in ECX, and in kernel mode Windows turns it
//! into bug check 0x139 (`KERNEL_SECURITY_CHECK_FAILURE`) with that code as parameter 1
//! (MSVC intrinsics, "__fastfail"; "Bug Check 0x139"). The code is `FAST_FAIL_FATAL_APP_EXIT`,
//! what Rust's own `abort` uses on Windows, so a crash dump reads "139, 7": a Rust panic.
//!
//! Every panic path in the driver is a bug that clippy denies (`lib.rs`); with LTO nothing should
//! reach this handler, and `tests/pe_image.rs` reports whether the shipping image still has it.

use core::panic::PanicInfo;

/// `FAST_FAIL_FATAL_APP_EXIT` (winnt.h).
const FAST_FAIL_FATAL_APP_EXIT: u32 = 7;

#[panic_handler]
fn panic(_info: &PanicInfo<'_>) -> ! {
    // SAFETY: `int 0x29` does not return: the kernel raises the security check failure bug
    // check. It reads only ECX.
    unsafe {
        core::arch::asm!("int 0x29", in("ecx") FAST_FAIL_FATAL_APP_EXIT, options(noreturn, nomem, nostack));
    }
}

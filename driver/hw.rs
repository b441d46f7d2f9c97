//! One small helper per hardware operation, in the manner of Linux's `vmw_pvscsi.c`.
//!
//! Every register access of the driver is in this file, and goes through the port wrapper's
//! `Registers` ([`crate::port::Registers`]): volatile MMIO on Windows, the emulator's device model
//! on Linux. The helpers are the same for both port flavours.

use crate::port::Registers;

use crate::pvscsi::{COMMAND_STATUS_FAILED, cmd, intr, reg};

/// Reads `INTR_STATUS`. Reading does not clear it (§2).
pub fn read_intr_status(regs: &impl Registers) -> u32 {
    regs.read_u32::<{ reg::INTR_STATUS }>()
}

/// Reads `INTR_MASK`, which reads back as last written (§2): a device that is gone reads all
/// ones here too.
pub fn read_intr_mask(regs: &impl Registers) -> u32 {
    regs.read_u32::<{ reg::INTR_MASK }>()
}

/// Clears `bits` of `INTR_STATUS` (write-1-to-clear). Dropping the pending bits drops the line
/// unless a new completion sets them again (§3).
pub fn ack_intr(regs: &impl Registers, bits: u32) {
    regs.write_u32::<{ reg::INTR_STATUS }>(bits);
}

/// Masks every HBA interrupt: `INTR_MASK = 0` lowers the line at once and keeps the pending
/// status, which is what `HwScsiInterrupt` needs before it defers (§3).
pub fn mask_intr(regs: &impl Registers) {
    regs.write_u32::<{ reg::INTR_MASK }>(0);
}

/// Unmasks `mask`. With status still pending the device re-asserts the line immediately, so
/// nothing that arrived while masked is lost (§3).
pub fn unmask_intr(regs: &impl Registers, mask: u32) {
    regs.write_u32::<{ reg::INTR_MASK }>(mask);
}

/// Issues a command with its descriptor words and returns `COMMAND_STATUS`. The device runs
/// the command when the last word arrives, so the word count must be exact (§4.1, Q13).
pub fn write_command(regs: &impl Registers, command: u32, words: &[u32]) -> u32 {
    write_command_words(regs, command, words.iter().copied())
}

/// [`write_command`] with the descriptor produced on the fly, for the long ones. Inlined, so
/// that the iterator is consumed where it is built: passing a long descriptor's iterator (132
/// words of `SETUP_RINGS`, chained closures) by value is a `memcpy`, which the kernel image does
/// not link.
#[allow(clippy::inline_always)] // the kernel image links no memcpy (see above)
#[inline(always)]
pub fn write_command_words(regs: &impl Registers, command: u32, words: impl IntoIterator<Item = u32>) -> u32 {
    regs.write_u32::<{ reg::COMMAND }>(command);
    for word in words {
        regs.write_u32::<{ reg::COMMAND_DATA }>(word);
    }
    regs.read_u32::<{ reg::COMMAND_STATUS }>()
}

/// Whether the device knows `command`: the probing convention of the interface header is to
/// write the code alone and look for anything but 0xFFFFFFFF (§4.1).
pub fn command_supported(regs: &impl Registers, command: u32) -> bool {
    regs.write_u32::<{ reg::COMMAND }>(command);
    regs.read_u32::<{ reg::COMMAND_STATUS }>() != COMMAND_STATUS_FAILED
}

/// `SETUP_REQCALLTHRESHOLD` with `enable = 1`, where the device has it (§4.8): probed by the
/// header's convention first (QEMU answers the probe 0xFFFFFFFF), then issued; the device took it
/// when it answers neither 0 (Linux's `pvscsi_setup_req_threshold` reads any other status as
/// enabled) nor 0xFFFFFFFF. Once on, the device publishes `reqCallThreshold` in the rings-state
/// page and READ/WRITE requests need a kick only as [`kick`]'s caller decides.
pub fn enable_req_call_threshold(regs: &impl Registers) -> bool {
    if !command_supported(regs, cmd::SETUP_REQCALLTHRESHOLD) {
        return false;
    }
    let status = write_command(regs, cmd::SETUP_REQCALLTHRESHOLD, &[1]);
    status != 0 && status != COMMAND_STATUS_FAILED
}

/// `ADAPTER_RESET`: the device cancels everything, writes what completed into the old ring,
/// forgets the rings and clears `INTR_STATUS` without re-evaluating the line; `INTR_MASK`
/// survives (§7, Q11). Callers therefore acknowledge and rewrite the mask afterwards.
pub fn adapter_reset(regs: &impl Registers) {
    write_command(regs, cmd::ADAPTER_RESET, &[]);
    ack_intr(regs, intr::ALL_SUPPORTED);
}

/// `RESET_DEVICE` for one target, addressed as its LUN 0, the only one PVSCSI exposes (§4.6):
/// the LUN words are zero whatever the SRB's `Lun` holds, which is not valid in a target reset
/// (only `Function`, `TargetId` and `PathId` are, `DDI-storport:ns-storport-_scsi_request_block`).
/// Requests cancelled by it complete later through the ring with BUSRESET.
pub fn reset_device(regs: &impl Registers, target: u8) -> bool {
    let words = [u32::from(target), 0, 0];
    write_command(regs, cmd::RESET_DEVICE, &words) == 0
}

/// `ABORT_CMD` for the request with `context` on `target` (§4.5). The aborted request, if the
/// device still had it, completes later through the ring with ABORTQUEUE.
pub fn abort_command(regs: &impl Registers, context: u64, target: u8) {
    #[allow(clippy::cast_possible_truncation)] // splitting a u64 into its two words
    let words = [context as u32, (context >> 32) as u32, u32::from(target), 0];
    write_command(regs, cmd::ABORT_CMD, &words);
}

/// Rings the doorbell: `KICK_RW_IO` for READ/WRITE, `KICK_NON_RW_IO` otherwise, the Linux
/// convention, which is right on VMware and harmless on QEMU (§5.7).
pub fn kick(regs: &impl Registers, read_write: bool) {
    if read_write {
        regs.write_u32::<{ reg::KICK_RW_IO }>(0);
    } else {
        regs.write_u32::<{ reg::KICK_NON_RW_IO }>(0);
    }
}

#![allow(clippy::cast_possible_truncation)]

//! What the two raw test miniports (`test_miniport` on SCSI Port, `stor_test_miniport` on
//! Storport) share: PVSCSI's registers and constants as they use them, the `SETUP_RINGS` words,
//! the completion-status mapping and the `ArgumentString` knob syntax. Each miniport keeps what
//! its port makes different (entry points, locks, notifications, the rules it breaks).

use scsiport_sys as sys;
use sys::{PCHAR, SCSI_REQUEST_BLOCK};

// PVSCSI registers and commands (pvscsi-facts.md §2, §4).
pub(crate) const REG_COMMAND: usize = 0x0;
pub(crate) const REG_COMMAND_DATA: usize = 0x4;
pub(crate) const REG_COMMAND_STATUS: usize = 0x8;
pub(crate) const REG_INTR_STATUS: usize = 0x100C;
pub(crate) const REG_INTR_MASK: usize = 0x2010;
pub(crate) const REG_KICK_NON_RW: usize = 0x3014;
pub(crate) const REG_KICK_RW: usize = 0x4018;
pub(crate) const CMD_ADAPTER_RESET: u32 = 1;
pub(crate) const CMD_SETUP_RINGS: u32 = 3;
pub(crate) const CMD_ABORT_CMD: u32 = 6;
pub(crate) const INTR_CMPL_MASK: u32 = 0x3;
pub(crate) const INTR_ALL: u32 = 0xF;
pub(crate) const FLAG_SG: u32 = 0x1;
pub(crate) const FLAG_DIR_NONE: u32 = 0x4;
pub(crate) const FLAG_DIR_TOHOST: u32 = 0x8;
pub(crate) const FLAG_DIR_TODEVICE: u32 = 0x10;
const BT_SUCCESS: u16 = 0x00;
const BT_LINKED: u16 = 0x0A;
const BT_LINKED_FLAG: u16 = 0x0B;
const BT_DATA_UNDERRUN: u16 = 0x0C;
const BT_SELTIMEO: u16 = 0x11;
const BT_DATARUN: u16 = 0x12;
const BT_SENTRST: u16 = 0x22;
const BT_RECVRST: u16 = 0x23;
const BT_BUSRESET: u16 = 0x25;
const BT_ABORTQUEUE: u16 = 0x26;
pub(crate) const PAGE: usize = 4096;

/// The 132 words of `SETUP_RINGS` (§4.3) for the layout both miniports use: the rings-state page,
/// one request page and one completion page, the first three pages of the uncached extension
/// at bus address `uc_pa`.
pub(crate) fn setup_rings_words(uc_pa: u64) -> [u32; 132] {
    let ppn = |page: usize| (uc_pa + (page * PAGE) as u64) >> 12;
    let mut words = [0u32; 132];
    words[0] = 1;
    words[1] = 1;
    let rs = ppn(0);
    words[2] = rs as u32;
    words[3] = (rs >> 32) as u32;
    let req = ppn(1);
    words[4] = req as u32;
    words[5] = (req >> 32) as u32;
    let cmp = ppn(2);
    words[68] = cmp as u32;
    words[69] = (cmp >> 32) as u32;
    words
}

/// The SRB status of a completion (§6: the host status in `BusLogic` codes, the SCSI status), setting the SRB's
/// `DataTransferLength` for an underrun and `SenseInfoBufferLength` for autosense as it goes.
/// `aborting`: the miniport asked the device to abort this request.
pub(crate) fn srb_status(srb: &mut SCSI_REQUEST_BLOCK, host: u16, scsi: u8, data_len: u64, sense_len: u32, aborting: bool) -> u8 {
    match host {
        BT_SUCCESS | BT_LINKED | BT_LINKED_FLAG | BT_DATARUN | BT_DATA_UNDERRUN => {
            if scsi == 0 {
                if (host == BT_DATARUN || host == BT_DATA_UNDERRUN) && data_len != 0 && data_len < u64::from(srb.DataTransferLength) {
                    srb.DataTransferLength = data_len as u32;
                    sys::SRB_STATUS_DATA_OVERRUN
                } else {
                    sys::SRB_STATUS_SUCCESS
                }
            } else if scsi == 2 && sense_len > 0 && srb.SrbFlags & sys::SRB_FLAGS_DISABLE_AUTOSENSE == 0 {
                srb.SenseInfoBufferLength = sense_len.min(u32::from(srb.SenseInfoBufferLength)) as u8;
                sys::SRB_STATUS_ERROR | sys::SRB_STATUS_AUTOSENSE_VALID
            } else if scsi == 8 {
                sys::SRB_STATUS_BUSY
            } else {
                sys::SRB_STATUS_ERROR
            }
        }
        BT_SELTIMEO => sys::SRB_STATUS_SELECTION_TIMEOUT,
        BT_BUSRESET | BT_SENTRST | BT_RECVRST => sys::SRB_STATUS_BUS_RESET,
        BT_ABORTQUEUE if aborting => sys::SRB_STATUS_ABORTED,
        BT_ABORTQUEUE => sys::SRB_STATUS_BUSY,
        _ => sys::SRB_STATUS_ERROR,
    }
}

/// The knobs of an `ArgumentString` such as `"qd=16 break=complete_twice"`: `(key, value, on)`
/// for each token separated by spaces, commas or semicolons; a bare key is `key=1`, and `on` is
/// whether the value is not `0`.
///
/// # Safety
/// `arg` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn knobs<'a>(arg: PCHAR) -> impl Iterator<Item = (&'a str, &'a str, bool)> {
    let s = if arg.is_null() {
        ""
    } else {
        // SAFETY: per the caller.
        unsafe { core::ffi::CStr::from_ptr(arg) }.to_str().unwrap_or("")
    };
    s.split([' ', ',', ';']).map(|tok| {
        let (k, v) = tok.split_once('=').unwrap_or((tok, "1"));
        (k, v, v != "0")
    })
}

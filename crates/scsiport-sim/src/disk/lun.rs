//! The answers a target gives for a LUN that does not exist on it, and REPORT LUNS.
//!
//! pvscsi-facts.md §6.4: when a device exists at the target id but not at the requested LUN,
//! QEMU's bus falls back to that device and answers through its generic "target" emulation
//! (QEMU `scsi_target_send_command`, `scsi_target_emulate_inquiry`). A LUN scan therefore sees
//! LUN 0 only; other LUNs answer INQUIRY with peripheral qualifier 3.

use super::cdb::{self, Parsed};
use super::{DataBuffer, ScsiResponse, Sense};

/// INQUIRY peripheral byte of a LUN that is not there: qualifier 3, device type 0x1F.
pub const PERIPHERAL_NO_LUN: u8 = 0x7F;

/// Standard INQUIRY length.
const INQUIRY_LEN: usize = 36;

/// Answers a command addressed to a LUN other than the target's LUN 0 (pvscsi-facts.md §6.4,
/// QEMU 7.2 `scsi_target_send_command` as the probe observed it): standard INQUIRY → GOOD with
/// 36 bytes, byte 0 = 0x7F; EVPD INQUIRY → page 0x00 only; REQUEST SENSE → GOOD with sense
/// data 05/25/00 (fixed, or descriptor format with DESC); anything else, REPORT LUNS included →
/// CHECK CONDITION 05/25/00.
pub fn foreign_lun(parsed: &Parsed, cdb: &[u8], data: &mut dyn DataBuffer) -> ScsiResponse {
    let xfer = parsed.xfer.len;
    match parsed.opcode {
        cdb::op::INQUIRY => {
            let b1 = cdb.get(1).copied().unwrap_or(0);
            let page = cdb.get(2).copied().unwrap_or(0);
            let answer: Vec<u8> = if b1 & 0x02 != 0 {
                // CmdDt: not implemented.
                return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
            } else if b1 & 0x01 != 0 {
                if page != 0x00 {
                    return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
                }
                // Supported pages: only this one, in QEMU's layout for a missing LUN, which
                // differs from the VPD format: the page code in byte 0, a one-byte page length
                // in byte 2 (`scsi_target_emulate_inquiry`).
                vec![0x00, 0x00, 0x01, 0x00]
            } else {
                if page != 0 {
                    return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
                }
                let mut a = vec![0u8; INQUIRY_LEN];
                a[0] = PERIPHERAL_NO_LUN;
                a
            };
            truncated(answer, xfer, data)
        }
        cdb::op::REQUEST_SENSE => {
            let s = Sense::LUN_NOT_SUPPORTED;
            let desc = cdb.get(1).is_some_and(|b| b & 1 != 0);
            truncated(if desc { s.descriptor().to_vec() } else { s.fixed().to_vec() }, xfer, data)
        }
        _ => ScsiResponse::check(Sense::LUN_NOT_SUPPORTED, xfer),
    }
}

/// REPORT LUNS (SPC-4 §6.33) listing `luns` (single-level, peripheral addressing). An allocation
/// length under 16 or a SELECT REPORT above 2 is an invalid field; the answer is cut to a
/// multiple of 8 bytes of the allocation length (QEMU `scsi_target_emulate_report_luns`).
pub fn report_luns(cdb: &[u8], xfer: u64, luns: &[u8], data: &mut dyn DataBuffer) -> ScsiResponse {
    if xfer < 16 || cdb.get(2).copied().unwrap_or(0) > 2 {
        return ScsiResponse::check(Sense::INVALID_FIELD, xfer);
    }
    let list_len = u32::try_from(luns.len() * 8).unwrap_or(u32::MAX);
    let mut answer = Vec::with_capacity(8 + luns.len() * 8);
    answer.extend_from_slice(&list_len.to_be_bytes());
    answer.extend_from_slice(&[0; 4]);
    for &lun in luns {
        answer.extend_from_slice(&[0, lun, 0, 0, 0, 0, 0, 0]);
    }
    answer.truncate(usize::try_from(xfer & !7).unwrap_or(usize::MAX));
    ScsiResponse::data_in(&answer, xfer, data)
}

/// Truncates `answer` to the allocation length and sends it.
pub(crate) fn truncated(mut answer: Vec<u8>, xfer: u64, data: &mut dyn DataBuffer) -> ScsiResponse {
    answer.truncate(usize::try_from(xfer).unwrap_or(usize::MAX));
    ScsiResponse::data_in(&answer, xfer, data)
}

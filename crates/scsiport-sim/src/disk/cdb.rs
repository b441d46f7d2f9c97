//! CDB parsing as the SCSI layer in front of a target does it: CDB length by opcode group,
//! transfer length and direction, and the block range of READ/WRITE/VERIFY.
//!
//! The rules follow QEMU's generic SCSI layer, because the PVSCSI model must reach the same
//! verdicts as QEMU on the same descriptor: the transfer direction QEMU uses to reject a
//! contradicting descriptor (pvscsi-facts.md §8 Q4, QEMU `scsi_cmd_xfer_mode`), the transfer
//! length the residual starts from (§6.3, QEMU `scsi_req_xfer`), and the "CDB too short" check
//! (§5.3 cdbLen, QEMU `scsi_req_parse_cdb`).

/// SCSI operation codes used by the targets (SPC-4, SBC-3).
#[allow(missing_docs)]
pub mod op {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const REZERO_UNIT: u8 = 0x01;
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const FORMAT_UNIT: u8 = 0x04;
    pub const READ_BLOCK_LIMITS: u8 = 0x05;
    pub const REASSIGN_BLOCKS: u8 = 0x07;
    pub const READ_6: u8 = 0x08;
    pub const WRITE_6: u8 = 0x0A;
    pub const SEEK_6: u8 = 0x0B;
    pub const READ_REVERSE: u8 = 0x0F;
    pub const WRITE_FILEMARKS: u8 = 0x10;
    pub const SPACE: u8 = 0x11;
    pub const INQUIRY: u8 = 0x12;
    pub const MODE_SELECT_6: u8 = 0x15;
    pub const RESERVE_6: u8 = 0x16;
    pub const RELEASE_6: u8 = 0x17;
    pub const COPY: u8 = 0x18;
    pub const ERASE: u8 = 0x19;
    pub const MODE_SENSE_6: u8 = 0x1A;
    pub const START_STOP_UNIT: u8 = 0x1B;
    pub const RECEIVE_DIAGNOSTIC: u8 = 0x1C;
    pub const SEND_DIAGNOSTIC: u8 = 0x1D;
    pub const ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
    pub const SET_WINDOW: u8 = 0x24;
    pub const READ_CAPACITY_10: u8 = 0x25;
    pub const READ_10: u8 = 0x28;
    pub const WRITE_10: u8 = 0x2A;
    pub const SEEK_10: u8 = 0x2B;
    pub const WRITE_VERIFY_10: u8 = 0x2E;
    pub const VERIFY_10: u8 = 0x2F;
    pub const SEARCH_HIGH: u8 = 0x30;
    pub const SEARCH_EQUAL: u8 = 0x31;
    pub const SEARCH_LOW: u8 = 0x32;
    pub const SET_LIMITS: u8 = 0x33;
    pub const PRE_FETCH_10: u8 = 0x34;
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    pub const LOCK_UNLOCK_CACHE: u8 = 0x36;
    pub const MEDIUM_SCAN: u8 = 0x38;
    pub const COMPARE: u8 = 0x39;
    pub const COPY_VERIFY: u8 = 0x3A;
    pub const WRITE_BUFFER: u8 = 0x3B;
    pub const READ_BUFFER: u8 = 0x3C;
    pub const UPDATE_BLOCK: u8 = 0x3D;
    pub const WRITE_LONG_10: u8 = 0x3F;
    pub const CHANGE_DEFINITION: u8 = 0x40;
    pub const WRITE_SAME_10: u8 = 0x41;
    pub const UNMAP: u8 = 0x42;
    pub const READ_TOC: u8 = 0x43;
    pub const GET_CONFIGURATION: u8 = 0x46;
    pub const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4A;
    pub const LOG_SELECT: u8 = 0x4C;
    pub const LOG_SENSE: u8 = 0x4D;
    pub const READ_DISC_INFORMATION: u8 = 0x51;
    pub const RESERVE_TRACK: u8 = 0x53;
    pub const MODE_SELECT_10: u8 = 0x55;
    pub const RESERVE_10: u8 = 0x56;
    pub const RELEASE_10: u8 = 0x57;
    pub const MODE_SENSE_10: u8 = 0x5A;
    pub const SEND_CUE_SHEET: u8 = 0x5D;
    pub const PERSISTENT_RESERVE_OUT: u8 = 0x5F;
    pub const WRITE_FILEMARKS_16: u8 = 0x80;
    pub const ALLOW_OVERWRITE: u8 = 0x82;
    pub const ATA_PASSTHROUGH_16: u8 = 0x85;
    pub const READ_16: u8 = 0x88;
    pub const WRITE_16: u8 = 0x8A;
    pub const WRITE_VERIFY_16: u8 = 0x8E;
    pub const VERIFY_16: u8 = 0x8F;
    pub const PRE_FETCH_16: u8 = 0x90;
    pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    pub const LOCATE_16: u8 = 0x92;
    pub const WRITE_SAME_16: u8 = 0x93;
    pub const SERVICE_ACTION_IN_16: u8 = 0x9E;
    pub const REPORT_LUNS: u8 = 0xA0;
    pub const ATA_PASSTHROUGH_12: u8 = 0xA1;
    pub const MAINTENANCE_OUT: u8 = 0xA4;
    pub const SET_READ_AHEAD: u8 = 0xA7;
    pub const READ_12: u8 = 0xA8;
    pub const WRITE_12: u8 = 0xAA;
    pub const WRITE_VERIFY_12: u8 = 0xAE;
    pub const VERIFY_12: u8 = 0xAF;
    pub const SEARCH_HIGH_12: u8 = 0xB0;
    pub const SEARCH_EQUAL_12: u8 = 0xB1;
    pub const SEARCH_LOW_12: u8 = 0xB2;
    pub const SEND_VOLUME_TAG: u8 = 0xB6;
    pub const READ_DVD_STRUCTURE: u8 = 0xAD;
    pub const SET_CD_SPEED: u8 = 0xBB;
    pub const MECHANISM_STATUS: u8 = 0xBD;
    pub const READ_CD: u8 = 0xBE;
    pub const SEND_DVD_STRUCTURE: u8 = 0xBF;
}

/// SERVICE ACTION IN(16) service action of READ CAPACITY(16).
pub const SAI_READ_CAPACITY_16: u8 = 0x10;

/// Direction of the data phase, as the SCSI layer derives it from the CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XferDir {
    /// No data phase (transfer length 0, or an unparsable CDB).
    None,
    /// Device → memory (reads).
    FromDevice,
    /// Memory → device (writes).
    ToDevice,
}

/// Transfer length (bytes) and direction of a CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes the CDB asks to move (allocation length or blocks × block size).
    pub len: u64,
    /// Direction of the data phase.
    pub dir: XferDir,
}

impl Transfer {
    /// No data phase.
    pub const NONE: Self = Self { len: 0, dir: XferDir::None };
}

/// The CDB length implied by the opcode group; `None` for the groups a disk cannot take
/// (3, 6, 7: opcodes 0x60–0x7F and 0xC0–0xFF), per pvscsi-facts.md §5.3 (QEMU `scsi_cdb_length`).
#[must_use]
pub fn cdb_len(opcode: u8) -> Option<usize> {
    match opcode >> 5 {
        0 => Some(6),
        1 | 2 => Some(10),
        4 => Some(16),
        5 => Some(12),
        _ => None,
    }
}

/// A CDB the SCSI layer accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Operation code.
    pub opcode: u8,
    /// CDB length implied by the group.
    pub len: usize,
    /// Transfer length and direction.
    pub xfer: Transfer,
    /// The LBA field as the group lays it out (QEMU `scsi_cmd_lba`); 0 where there is none.
    pub lba: u64,
}

fn be16(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2).map_or(0, |s| u64::from(u16::from_be_bytes([s[0], s[1]])))
}

fn be32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |s| u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
}

fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_be_bytes(a)
    })
}

fn be24(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 3).map_or(0, |s| (u64::from(s[0]) << 16) | (u64::from(s[1]) << 8) | u64::from(s[2]))
}

/// QEMU `ata_passthrough_12_xfer` / `ata_passthrough_16_xfer` for a disk: `T_LENGTH` says where
/// the count is; `BYTE_BLOCK` counts blocks (512-byte ones, or logical ones with `T_TYPE`).
fn ata_pass_through_len(cdb: &[u8], bs: u64) -> u64 {
    let b2 = byte(cdb, 2);
    let extend = cdb.first() == Some(&op::ATA_PASSTHROUGH_16) && byte(cdb, 1) & 0x01 != 0;
    let count = match (cdb.first() == Some(&op::ATA_PASSTHROUGH_12), b2 & 0x03) {
        (true, 1) => u64::from(byte(cdb, 3)),
        (true, 2) => u64::from(byte(cdb, 4)),
        (false, 1) => u64::from(byte(cdb, 4)) | if extend { u64::from(byte(cdb, 3)) << 8 } else { 0 },
        (false, 2) => u64::from(byte(cdb, 6)) | if extend { u64::from(byte(cdb, 5)) << 8 } else { 0 },
        _ => 0,
    };
    let unit = match (b2 & 0x04 != 0, b2 & 0x10 != 0) {
        (false, _) => 1,
        (true, false) => 512,
        (true, true) => bs,
    };
    count * unit
}

fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Whether the opcode moves data to the device (QEMU `scsi_cmd_xfer_mode`'s list, pvscsi-facts.md
/// §8 Q4); every other opcode with a non-zero length moves data from the device.
#[must_use]
pub fn is_to_device(opcode: u8, cdb: &[u8]) -> bool {
    use op::{
        CHANGE_DEFINITION, COMPARE, COPY, COPY_VERIFY, FORMAT_UNIT, LOG_SELECT, MAINTENANCE_OUT,
        MEDIUM_SCAN, MODE_SELECT_6, MODE_SELECT_10, PERSISTENT_RESERVE_OUT, REASSIGN_BLOCKS,
        SEARCH_EQUAL, SEARCH_EQUAL_12, SEARCH_HIGH, SEARCH_HIGH_12, SEARCH_LOW, SEARCH_LOW_12,
        SEND_CUE_SHEET, SEND_DIAGNOSTIC, SEND_DVD_STRUCTURE, SEND_VOLUME_TAG, UNMAP, UPDATE_BLOCK,
        VERIFY_10, VERIFY_12, VERIFY_16, WRITE_6, WRITE_10, WRITE_12, WRITE_16, WRITE_BUFFER,
        WRITE_LONG_10, WRITE_SAME_10, WRITE_SAME_16, WRITE_VERIFY_10, WRITE_VERIFY_12,
        WRITE_VERIFY_16,
    };
    match opcode {
        WRITE_6 | WRITE_10 | WRITE_VERIFY_10 | WRITE_12 | WRITE_VERIFY_12 | WRITE_16
        | WRITE_VERIFY_16 | VERIFY_10 | VERIFY_12 | VERIFY_16 | COPY | COPY_VERIFY | COMPARE
        | CHANGE_DEFINITION | LOG_SELECT | MODE_SELECT_6 | MODE_SELECT_10 | SEND_DIAGNOSTIC
        | WRITE_BUFFER | FORMAT_UNIT | REASSIGN_BLOCKS | SEARCH_EQUAL | SEARCH_HIGH | SEARCH_LOW
        | UPDATE_BLOCK | WRITE_LONG_10 | WRITE_SAME_10 | WRITE_SAME_16 | UNMAP | SEARCH_HIGH_12
        | SEARCH_EQUAL_12 | SEARCH_LOW_12 | MEDIUM_SCAN | SEND_VOLUME_TAG | SEND_CUE_SHEET
        | SEND_DVD_STRUCTURE | PERSISTENT_RESERVE_OUT | MAINTENANCE_OUT
        // Scanner commands, in QEMU's list for every device type: SET WINDOW, and SCAN, which
        // shares START STOP UNIT's opcode (no data for a disk, so never reached for it).
        | op::SET_WINDOW | op::START_STOP_UNIT => true,
        // ATA PASS-THROUGH: T_DIR (byte 2 bit 3) set means from the device.
        op::ATA_PASSTHROUGH_12 | op::ATA_PASSTHROUGH_16 => byte(cdb, 2) & 0x08 == 0,
        _ => false,
    }
}

/// Parses a CDB for a block device of `block_size` bytes. `None` means the CDB is unusable
/// (empty, bad group, or shorter than its group): the target answers INVALID COMMAND OPERATION
/// CODE with no data phase.
#[must_use]
pub fn parse(cdb: &[u8], block_size: u32) -> Option<Parsed> {
    use op::{
        ALLOW_MEDIUM_REMOVAL, FORMAT_UNIT, INQUIRY, PRE_FETCH_10, PRE_FETCH_16, READ_6, READ_10,
        READ_12, READ_16, READ_BLOCK_LIMITS, READ_CAPACITY_10, RELEASE_6, RESERVE_6, REZERO_UNIT,
        SEEK_6, SEEK_10, START_STOP_UNIT, SYNCHRONIZE_CACHE_10, SYNCHRONIZE_CACHE_16,
        TEST_UNIT_READY, UPDATE_BLOCK, VERIFY_10, VERIFY_12, VERIFY_16, WRITE_6, WRITE_10,
        WRITE_12, WRITE_16, WRITE_LONG_10, WRITE_SAME_10, WRITE_SAME_16, WRITE_VERIFY_10,
        WRITE_VERIFY_12, WRITE_VERIFY_16,
    };
    let opcode = *cdb.first()?;
    let len = cdb_len(opcode)?;
    if cdb.len() < len {
        return None;
    }
    let bs = u64::from(block_size);
    let (base, lba) = match opcode >> 5 {
        0 => (u64::from(byte(cdb, 4)), (u64::from(byte(cdb, 1) & 0x1F) << 16) | be16(cdb, 2)),
        1 | 2 => (be16(cdb, 7), be32(cdb, 2)),
        4 => (be32(cdb, 10), be64(cdb, 2)),
        _ => (be32(cdb, 6), be32(cdb, 2)),
    };
    // QEMU `scsi_req_xfer` for a disk.
    let xfer_len = match opcode {
        TEST_UNIT_READY | REZERO_UNIT | START_STOP_UNIT | SEEK_6 | op::WRITE_FILEMARKS | op::WRITE_FILEMARKS_16
        | op::SPACE | RESERVE_6 | RELEASE_6 | op::ERASE | ALLOW_MEDIUM_REMOVAL | SEEK_10 | SYNCHRONIZE_CACHE_10
        | SYNCHRONIZE_CACHE_16 | op::LOCATE_16 | op::LOCK_UNLOCK_CACHE | op::SET_CD_SPEED | op::SET_LIMITS
        | WRITE_LONG_10 | UPDATE_BLOCK | op::RESERVE_TRACK | op::SET_READ_AHEAD | PRE_FETCH_10 | PRE_FETCH_16
        | op::ALLOW_OVERWRITE => 0,
        // BYTCHK: no data with bit 1 clear; one block with 11b (QEMU tests both bits).
        VERIFY_10 | VERIFY_12 | VERIFY_16 => match byte(cdb, 1) & 0x06 {
            0x02 => base * bs,
            0x06 => bs,
            _ => 0,
        },
        READ_CAPACITY_10 => 8,
        READ_BLOCK_LIMITS => 6,
        // SET STREAMING (SEND VOLUME TAG's opcode): bytes 8-9 for a disk.
        op::SEND_VOLUME_TAG => be16(cdb, 8),
        READ_6 | WRITE_6 | op::READ_REVERSE => {
            // A transfer length of 0 in a 6-byte READ/WRITE means 256 blocks (SBC-3).
            if base == 0 { 256 * bs } else { base * bs }
        }
        READ_10 | READ_12 | READ_16 | WRITE_10 | WRITE_12 | WRITE_16 | WRITE_VERIFY_10
        | WRITE_VERIFY_12 | WRITE_VERIFY_16 => base * bs,
        WRITE_SAME_10 | WRITE_SAME_16 => {
            if byte(cdb, 1) & 0x01 != 0 {
                0
            } else {
                bs
            }
        }
        // FMTDATA: the parameter list header, 8 bytes with LONGLIST.
        FORMAT_UNIT => match byte(cdb, 1) & 0x30 {
            0x10 => 4,
            0x30 => 8,
            _ => 0,
        },
        INQUIRY | op::RECEIVE_DIAGNOSTIC | op::SEND_DIAGNOSTIC => be16(cdb, 3),
        op::READ_CD | op::READ_BUFFER | op::WRITE_BUFFER | op::SEND_CUE_SHEET => be24(cdb, 6),
        op::PERSISTENT_RESERVE_OUT => be32(cdb, 5),
        op::ATA_PASSTHROUGH_12 | op::ATA_PASSTHROUGH_16 => ata_pass_through_len(cdb, bs),
        _ => base,
    };
    let dir = if xfer_len == 0 {
        XferDir::None
    } else if is_to_device(opcode, cdb) {
        XferDir::ToDevice
    } else {
        XferDir::FromDevice
    };
    Some(Parsed { opcode, len, xfer: Transfer { len: xfer_len, dir }, lba })
}

/// Block range of a READ, WRITE, WRITE AND VERIFY or VERIFY CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRange {
    /// First block.
    pub lba: u64,
    /// Number of blocks (READ(6)/WRITE(6) length 0 already turned into 256).
    pub blocks: u64,
}

/// Kind of a block command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOp {
    /// READ(6/10/12/16).
    Read,
    /// WRITE(6/10/12/16).
    Write,
    /// WRITE AND VERIFY(10/12/16).
    WriteVerify,
    /// VERIFY(10/12/16).
    Verify,
}

/// The kind and block range of a block command; `None` for any other opcode or a short CDB.
#[must_use]
pub fn block_range(cdb: &[u8]) -> Option<(BlockOp, BlockRange)> {
    use op::{
        READ_6, READ_10, READ_12, READ_16, VERIFY_10, VERIFY_12, VERIFY_16, WRITE_6, WRITE_10,
        WRITE_12, WRITE_16, WRITE_VERIFY_10, WRITE_VERIFY_12, WRITE_VERIFY_16,
    };
    let opcode = *cdb.first()?;
    if cdb.len() < cdb_len(opcode)? {
        return None;
    }
    let kind = match opcode {
        READ_6 | READ_10 | READ_12 | READ_16 => BlockOp::Read,
        WRITE_6 | WRITE_10 | WRITE_12 | WRITE_16 => BlockOp::Write,
        WRITE_VERIFY_10 | WRITE_VERIFY_12 | WRITE_VERIFY_16 => BlockOp::WriteVerify,
        VERIFY_10 | VERIFY_12 | VERIFY_16 => BlockOp::Verify,
        _ => return None,
    };
    let range = match opcode {
        READ_6 | WRITE_6 => {
            let n = u64::from(byte(cdb, 4));
            BlockRange {
                lba: (u64::from(byte(cdb, 1) & 0x1F) << 16) | be16(cdb, 2),
                blocks: if n == 0 { 256 } else { n },
            }
        }
        READ_10 | WRITE_10 | WRITE_VERIFY_10 | VERIFY_10 => BlockRange { lba: be32(cdb, 2), blocks: be16(cdb, 7) },
        READ_12 | WRITE_12 | WRITE_VERIFY_12 | VERIFY_12 => BlockRange { lba: be32(cdb, 2), blocks: be32(cdb, 6) },
        _ => BlockRange { lba: be64(cdb, 2), blocks: be32(cdb, 10) },
    };
    Some((kind, range))
}

/// Builders for the CDBs the tests and the emulator's class-driver edge send.
pub mod build {
    use super::op;

    /// READ(10) or WRITE(10).
    #[must_use]
    pub fn rw10(write: bool, lba: u32, blocks: u16) -> [u8; 10] {
        let mut c = [0u8; 10];
        c[0] = if write { op::WRITE_10 } else { op::READ_10 };
        c[2..6].copy_from_slice(&lba.to_be_bytes());
        c[7..9].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    /// READ(16) or WRITE(16).
    #[must_use]
    pub fn rw16(write: bool, lba: u64, blocks: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = if write { op::WRITE_16 } else { op::READ_16 };
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[10..14].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    /// Standard INQUIRY (`evpd` false) or a VPD page.
    #[must_use]
    pub fn inquiry(evpd: bool, page: u8, alloc: u16) -> [u8; 6] {
        let mut c = [0u8; 6];
        c[0] = op::INQUIRY;
        c[1] = u8::from(evpd);
        c[2] = page;
        c[3..5].copy_from_slice(&alloc.to_be_bytes());
        c
    }

    /// TEST UNIT READY.
    #[must_use]
    pub fn test_unit_ready() -> [u8; 6] {
        [op::TEST_UNIT_READY, 0, 0, 0, 0, 0]
    }

    /// READ CAPACITY(10).
    #[must_use]
    pub fn read_capacity10() -> [u8; 10] {
        let mut c = [0u8; 10];
        c[0] = op::READ_CAPACITY_10;
        c
    }

    /// READ CAPACITY(16) (SERVICE ACTION IN(16), service action 0x10).
    #[must_use]
    pub fn read_capacity16(alloc: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = op::SERVICE_ACTION_IN_16;
        c[1] = super::SAI_READ_CAPACITY_16;
        c[10..14].copy_from_slice(&alloc.to_be_bytes());
        c
    }

    /// REQUEST SENSE.
    #[must_use]
    pub fn request_sense(alloc: u8) -> [u8; 6] {
        [op::REQUEST_SENSE, 0, 0, 0, alloc, 0]
    }

    /// MODE SENSE(6).
    #[must_use]
    pub fn mode_sense6(dbd: bool, pc: u8, page: u8, alloc: u8) -> [u8; 6] {
        [op::MODE_SENSE_6, if dbd { 0x08 } else { 0 }, (pc << 6) | (page & 0x3F), 0, alloc, 0]
    }

    /// MODE SENSE(10).
    #[must_use]
    pub fn mode_sense10(dbd: bool, pc: u8, page: u8, alloc: u16) -> [u8; 10] {
        let mut c = [0u8; 10];
        c[0] = op::MODE_SENSE_10;
        c[1] = if dbd { 0x08 } else { 0 };
        c[2] = (pc << 6) | (page & 0x3F);
        c[7..9].copy_from_slice(&alloc.to_be_bytes());
        c
    }

    /// REPORT LUNS.
    #[must_use]
    pub fn report_luns(alloc: u32) -> [u8; 12] {
        let mut c = [0u8; 12];
        c[0] = op::REPORT_LUNS;
        c[6..10].copy_from_slice(&alloc.to_be_bytes());
        c
    }

    /// SYNCHRONIZE CACHE(10) of the whole medium.
    #[must_use]
    pub fn synchronize_cache10() -> [u8; 10] {
        let mut c = [0u8; 10];
        c[0] = op::SYNCHRONIZE_CACHE_10;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_lengths() {
        assert_eq!(cdb_len(0x00), Some(6));
        assert_eq!(cdb_len(0x28), Some(10));
        assert_eq!(cdb_len(0x5A), Some(10));
        assert_eq!(cdb_len(0x88), Some(16));
        assert_eq!(cdb_len(0xA0), Some(12));
        assert_eq!(cdb_len(0x60), None);
        assert_eq!(cdb_len(0xC0), None);
        assert!(parse(&[0x28, 0, 0, 0, 0, 0], 512).is_none(), "READ(10) in 6 bytes is too short");
        assert!(parse(&[], 512).is_none());
    }

    #[test]
    fn transfer_lengths_and_directions() {
        let p = parse(&build::rw10(false, 5, 8), 512).unwrap();
        assert_eq!(p.xfer, Transfer { len: 4096, dir: XferDir::FromDevice });
        assert_eq!(p.lba, 5);
        let p = parse(&build::rw16(true, 1 << 40, 2), 4096).unwrap();
        assert_eq!(p.xfer, Transfer { len: 8192, dir: XferDir::ToDevice });
        let p = parse(&[op::READ_6, 0, 0, 1, 0, 0], 512).unwrap();
        assert_eq!(p.xfer.len, 256 * 512, "READ(6) length 0 is 256 blocks");
        assert_eq!(parse(&build::inquiry(false, 0, 0x1FF), 512).unwrap().xfer.len, 0x1FF);
        assert_eq!(parse(&build::test_unit_ready(), 512).unwrap().xfer, Transfer::NONE);
        assert_eq!(parse(&build::read_capacity10(), 512).unwrap().xfer.len, 8);
        assert_eq!(parse(&build::rw10(false, 0, 0), 512).unwrap().xfer, Transfer::NONE);
        let mut v = [0u8; 10];
        v[0] = op::VERIFY_10;
        v[8] = 4;
        assert_eq!(parse(&v, 512).unwrap().xfer, Transfer::NONE, "VERIFY BYTCHK 0 has no data");
        v[1] = 0x02;
        assert_eq!(parse(&v, 512).unwrap().xfer, Transfer { len: 2048, dir: XferDir::ToDevice });
    }

    #[test]
    fn lengths_as_qemu_derives_them() {
        let len = |c: &[u8]| parse(c, 512).unwrap().xfer;
        assert_eq!(len(&[op::FORMAT_UNIT, 0x30, 0, 0, 0, 0]), Transfer { len: 8, dir: XferDir::ToDevice }, "LONGLIST");
        assert_eq!(len(&[op::VERIFY_10, 0x06, 0, 0, 0, 0, 0, 0, 4, 0]).len, 512, "BYTCHK 11b: one block");
        assert_eq!(len(&[op::SEND_DIAGNOSTIC, 0x10, 0, 0x01, 0x00, 0]), Transfer { len: 256, dir: XferDir::ToDevice });
        assert_eq!(len(&[op::WRITE_BUFFER, 2, 0, 0, 0, 0, 0x01, 0, 0, 0]).len, 0x1_0000);
        assert_eq!(len(&[op::PERSISTENT_RESERVE_OUT, 0, 0, 0, 0, 0, 0, 0, 24, 0]).len, 24);
        assert_eq!(len(&[op::LOCK_UNLOCK_CACHE, 0, 0, 0, 0, 0, 0, 0, 8, 0]), Transfer::NONE);
        assert_eq!(len(&[op::SET_WINDOW, 0, 0, 0, 0, 0, 0, 0, 8, 0]).dir, XferDir::ToDevice);
        assert_eq!(len(&[op::READ_REVERSE, 0, 0, 0, 0, 0]).len, 256 * 512);
        // ATA PASS-THROUGH(16), one 512-byte sector in, and out.
        assert_eq!(len(&[0x85, 0, 0x0E, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xEC, 0]), Transfer { len: 512, dir: XferDir::FromDevice });
        assert_eq!(len(&[0x85, 0, 0x06, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Transfer { len: 512, dir: XferDir::ToDevice });
        // Data-out commands missing from QEMU's list count as data-in.
        assert_eq!(len(&[0x9C, 0, 0, 0, 0, 0, 0, 0, 0, 0x64, 0, 0, 0, 1, 0, 0]).dir, XferDir::FromDevice, "WRITE ATOMIC(16)");
    }

    #[test]
    fn block_ranges() {
        assert_eq!(block_range(&build::rw10(true, 7, 3)), Some((BlockOp::Write, BlockRange { lba: 7, blocks: 3 })));
        let (k, r) = block_range(&[op::READ_6, 0x1F, 0xFF, 0xFF, 0, 0]).unwrap();
        assert_eq!((k, r), (BlockOp::Read, BlockRange { lba: 0x1F_FFFF, blocks: 256 }));
        assert_eq!(block_range(&build::inquiry(false, 0, 36)), None);
    }
}

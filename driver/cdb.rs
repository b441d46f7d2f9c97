//! What the driver needs to know about a CDB: which doorbell it rings, and how much data moves
//! which way as the device will see it.
//!
//! QEMU's pvscsi does not take the direction or the length of a transfer from the request: it
//! derives both from the CDB (QEMU `scsi_req_parse_cdb`, `scsi_req_xfer`, `scsi_cmd_xfer_mode`
//! in `hw/scsi/scsi-bus.c`, and `scsi_cdb_length`, `scsi_cdb_xfer` in `scsi/utils.c`; the same
//! in QEMU 7.2, Debian 12's, and in current QEMU), and it never completes a request whose
//! direction bits contradict that (pvscsi-facts.md Q4: `pvscsi_process_request_descriptor`
//! cancels a request it never enqueued, and the next `ADAPTER_RESET` fails QEMU's assertion
//! that its request list is empty). [`transfer`] reproduces that derivation for a disk, so the
//! driver never sends a request the device reads differently from the class driver.

/// Which way a command moves data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// No data phase.
    None,
    /// Device to memory.
    In,
    /// Memory to device.
    Out,
}

/// How long a transfer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// Bytes, from the CDB alone.
    Bytes(u64),
    /// Logical blocks: the bytes depend on the logical unit's block size.
    Blocks(u64),
}

/// A CDB's data phase as the device derives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// How much moves (zero when `dir` is [`Direction::None`]).
    pub len: Length,
    /// Which way.
    pub dir: Direction,
    /// READ, WRITE or WRITE AND VERIFY: moved by DMA straight between the buffer and the medium,
    /// so the buffer must hold exactly what the CDB says (QEMU transfers the whole buffer,
    /// whatever the CDB's length, pvscsi-facts.md §6.3).
    pub media: bool,
}

impl Transfer {
    const NONE: Self = Self { len: Length::Bytes(0), dir: Direction::None, media: false };
}

/// READ/WRITE(6/10/12/16): the commands Linux and FreeBSD send through `KICK_RW_IO` (§5.7).
#[must_use]
pub fn is_read_write(opcode: u8) -> bool {
    matches!(opcode, 0x08 | 0x0A | 0x28 | 0x2A | 0xA8 | 0xAA | 0x88 | 0x8A)
}

/// The CDB length of an opcode's group; `None` for groups 3, 6 and 7, which QEMU refuses
/// (INVALID COMMAND OPERATION CODE, no data phase: `scsi_cdb_length`).
#[must_use]
pub fn group_length(opcode: u8) -> Option<usize> {
    match opcode >> 5 {
        0 => Some(6),
        1 | 2 => Some(10),
        4 => Some(16),
        5 => Some(12),
        _ => None,
    }
}

fn byte(cdb: &[u8], at: usize) -> u64 {
    cdb.get(at).copied().map_or(0, u64::from)
}

/// `n` big-endian bytes from `at`.
fn be(cdb: &[u8], at: usize, n: usize) -> u64 {
    (0..n).fold(0, |acc, i| (acc << 8) | byte(cdb, at.saturating_add(i)))
}

/// WRITE SAME(10/16) with NDOB (byte 1 bit 0, "no data-out buffer"): QEMU derives no data
/// phase and completes the command GOOD without writing anything (`scsi_req_xfer` gives it no
/// length, `scsi_disk_emulate_command` then completes it; the zeroing in
/// `scsi_disk_emulate_write_same` is reached only with a data phase), in 7.2 and now.
#[must_use]
pub fn is_write_same_without_data(cdb: &[u8]) -> bool {
    matches!(cdb.first(), Some(0x41 | 0x93)) && byte(cdb, 1) & 0x01 != 0
}

/// The data phase of `cdb` (exactly the CDB bytes the request carries) as QEMU derives it for a
/// disk (`TYPE_DISK`).
#[must_use]
#[allow(clippy::match_same_arms)] // arms follow QEMU's case list, one group of opcodes each
pub fn transfer(cdb: &[u8]) -> Transfer {
    let Some(&opcode) = cdb.first() else { return Transfer::NONE };
    // A group QEMU refuses, or a CDB shorter than its group: INVALID COMMAND OPERATION CODE
    // before anything moves.
    let Some(group_len) = group_length(opcode) else { return Transfer::NONE };
    if cdb.len() < group_len {
        return Transfer::NONE;
    }
    // `scsi_cdb_xfer`: the group's transfer length field.
    let base = match opcode >> 5 {
        0 => byte(cdb, 4),
        1 | 2 => be(cdb, 7, 2),
        4 => be(cdb, 10, 4),
        _ => be(cdb, 6, 4),
    };
    let blocks = |n: u64| Length::Blocks(n);
    let mut media = false;
    // `scsi_req_xfer` for a disk.
    let len = match opcode {
        // TEST UNIT READY, REZERO UNIT (REWIND), START STOP UNIT, SEEK(6) (SET CAPACITY),
        // WRITE FILEMARKS(6/16), SPACE, RESERVE(6), RELEASE(6), ERASE, PREVENT ALLOW MEDIUM
        // REMOVAL, SEEK(10), SYNCHRONIZE CACHE(10/16), LOCATE(16), LOCK UNLOCK CACHE, SET CD
        // SPEED, SET LIMITS, WRITE LONG(10), UPDATE BLOCK, RESERVE TRACK, SET READ AHEAD,
        // PRE-FETCH(10/16), ALLOW OVERWRITE: no data.
        0x00 | 0x01 | 0x1B | 0x0B | 0x10 | 0x80 | 0x11 | 0x16 | 0x17 | 0x19 | 0x1E | 0x2B | 0x35 | 0x91 | 0x92
        | 0x36 | 0xBB | 0x33 | 0x3F | 0x3D | 0x53 | 0xA7 | 0x34 | 0x90 | 0x82 => Length::Bytes(0),
        // VERIFY(10/12/16): data only with BYTCHK; one block with BYTCHK 11b.
        0x2F | 0xAF | 0x8F => match byte(cdb, 1) & 0x06 {
            0x00 | 0x04 => blocks(0),
            0x06 => blocks(1),
            _ => blocks(base),
        },
        // WRITE SAME(10/16): one block, none with NDOB.
        0x41 | 0x93 => blocks(u64::from(byte(cdb, 1) & 0x01 == 0)),
        // READ CAPACITY(10), READ BLOCK LIMITS.
        0x25 => Length::Bytes(8),
        0x05 => Length::Bytes(6),
        // SEND VOLUME TAG / SET STREAMING: bytes 8-9 on a disk.
        0xB6 => Length::Bytes(be(cdb, 8, 2)),
        // READ(6), READ REVERSE(6), WRITE(6): 0 means 256 blocks.
        0x08 | 0x0F | 0x0A => {
            media = opcode != 0x0F;
            blocks(if base == 0 { 256 } else { base })
        }
        // READ/WRITE/WRITE AND VERIFY(10/12/16).
        0x28 | 0xA8 | 0x88 | 0x2A | 0xAA | 0x8A | 0x2E | 0xAE | 0x8E => {
            media = true;
            blocks(base)
        }
        // FORMAT UNIT: the parameter list header with FMTDATA (8 bytes with LONGLIST).
        0x04 => Length::Bytes(match byte(cdb, 1) & 0x30 {
            0x10 => 4,
            0x30 => 8,
            _ => 0,
        }),
        // INQUIRY, RECEIVE DIAGNOSTIC RESULTS, SEND DIAGNOSTIC: bytes 3-4.
        0x12 | 0x1C | 0x1D => Length::Bytes(be(cdb, 3, 2)),
        // READ CD, READ BUFFER, WRITE BUFFER, SEND CUE SHEET: bytes 6-8.
        0xBE | 0x3C | 0x3B | 0x5D => Length::Bytes(be(cdb, 6, 3)),
        // PERSISTENT RESERVE OUT: bytes 5-8.
        0x5F => Length::Bytes(be(cdb, 5, 4)),
        // ATA PASS-THROUGH(12/16): from the T_LENGTH, BYTE_BLOCK and T_TYPE fields.
        0xA1 | 0x85 => ata_pass_through(cdb),
        _ => Length::Bytes(base),
    };
    let zero = matches!(len, Length::Bytes(0) | Length::Blocks(0));
    // `scsi_cmd_xfer_mode`.
    let dir = if zero {
        Direction::None
    } else if matches!(opcode, 0xA1 | 0x85) {
        // T_DIR.
        if byte(cdb, 2) & 0x08 != 0 { Direction::In } else { Direction::Out }
    } else if to_device(opcode) {
        Direction::Out
    } else {
        Direction::In
    };
    Transfer { len, dir, media: media && !zero }
}

/// QEMU's list of data-out opcodes (`scsi_cmd_xfer_mode`): every other opcode with a transfer
/// length moves data from the device, whatever the SCSI standard says.
fn to_device(opcode: u8) -> bool {
    matches!(
        opcode,
        // WRITE(6/10/12/16), WRITE AND VERIFY(10/12/16), VERIFY(10/12/16), COPY, COPY AND
        // VERIFY, COMPARE, CHANGE DEFINITION, LOG SELECT, MODE SELECT(6/10), SEND DIAGNOSTIC,
        // WRITE BUFFER, FORMAT UNIT, REASSIGN BLOCKS, SEARCH DATA EQUAL/HIGH/LOW(10/12), UPDATE
        // BLOCK, WRITE LONG(10), WRITE SAME(10/16), UNMAP, MEDIUM SCAN, SEND VOLUME TAG, SEND
        // CUE SHEET, SEND DVD STRUCTURE, PERSISTENT RESERVE OUT, MAINTENANCE OUT, SET WINDOW and
        // SCAN (scanner commands: 0x24 is reserved for a disk, SCAN shares START STOP UNIT's
        // opcode, which has no data).
        0x0A | 0x2A | 0x2E | 0xAA | 0xAE | 0x8A | 0x8E | 0x2F | 0xAF | 0x8F | 0x18 | 0x3A | 0x39 | 0x40 | 0x4C | 0x15
            | 0x55 | 0x1D | 0x3B | 0x04 | 0x07 | 0x31 | 0x30 | 0x32 | 0x3D | 0x3F | 0x41 | 0x93 | 0x42 | 0xB0
            | 0xB1 | 0xB2 | 0x38 | 0xB6 | 0x5D | 0xBF | 0x5F | 0xA4 | 0x24 | 0x1B
    )
}

/// QEMU `ata_passthrough_12_xfer` / `ata_passthrough_16_xfer` for a disk.
fn ata_pass_through(cdb: &[u8]) -> Length {
    let b2 = byte(cdb, 2);
    let count = match (cdb.first(), b2 & 0x03) {
        (Some(0xA1), 1) => byte(cdb, 3),
        (Some(0xA1), 2) => byte(cdb, 4),
        (_, 1) => byte(cdb, 4) | if byte(cdb, 1) & 0x01 != 0 { byte(cdb, 3) << 8 } else { 0 },
        (_, 2) => byte(cdb, 6) | if byte(cdb, 1) & 0x01 != 0 { byte(cdb, 5) << 8 } else { 0 },
        _ => 0,
    };
    // BYTE_BLOCK: count in blocks (T_TYPE: 512-byte or logical ones), else in bytes.
    match (b2 & 0x04 != 0, b2 & 0x10 != 0) {
        (false, _) => Length::Bytes(count),
        (true, false) => Length::Bytes(count.saturating_mul(512)),
        (true, true) => Length::Blocks(count),
    }
}

/// Where a READ CAPACITY answer holds the logical block length: READ CAPACITY(10) at byte 4,
/// READ CAPACITY(16) (SERVICE ACTION IN(16), service action 0x10) at byte 8.
#[must_use]
pub fn capacity_block_length_at(cdb: &[u8]) -> Option<usize> {
    match cdb.first()? {
        0x25 => Some(4),
        0x9E if byte(cdb, 1) & 0x1F == 0x10 => Some(8),
        _ => None,
    }
}

/// The logical block length at `at` of a READ CAPACITY answer (see
/// [`capacity_block_length_at`]).
#[must_use]
pub fn capacity_block_length(at: usize, data: &[u8]) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(cdb: &[u8]) -> (Length, Direction) {
        let x = transfer(cdb);
        (x.len, x.dir)
    }

    #[test]
    fn read_write_opcodes_ring_the_rw_doorbell() {
        for op in [0x08, 0x0A, 0x28, 0x2A, 0xA8, 0xAA, 0x88, 0x8A] {
            assert!(is_read_write(op), "{op:#x}");
        }
        for op in [0x00, 0x12, 0x25, 0x35, 0x2F, 0x8F, 0x9E] {
            assert!(!is_read_write(op), "{op:#x}");
        }
    }

    #[test]
    fn block_transfers() {
        let read10 = [0x28, 0, 0, 0, 0, 5, 0, 0, 8, 0];
        assert_eq!(t(&read10), (Length::Blocks(8), Direction::In));
        assert!(transfer(&read10).media);
        let write16 = [0x8A, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0];
        assert_eq!(t(&write16), (Length::Blocks(2), Direction::Out));
        assert_eq!(t(&[0x08, 0, 0, 1, 0, 0]), (Length::Blocks(256), Direction::In), "READ(6) 0 is 256 blocks");
        assert_eq!(t(&[0x2A, 0, 0, 0, 0, 0, 0, 0, 0, 0]), (Length::Blocks(0), Direction::None));
        assert!(!transfer(&[0x2A, 0, 0, 0, 0, 0, 0, 0, 0, 0]).media);
        // VERIFY: BYTCHK 0 none, 01b the blocks, 11b one block.
        assert_eq!(t(&[0x2F, 0, 0, 0, 0, 0, 0, 0, 4, 0]), (Length::Blocks(0), Direction::None));
        assert_eq!(t(&[0x2F, 2, 0, 0, 0, 0, 0, 0, 4, 0]), (Length::Blocks(4), Direction::Out));
        assert_eq!(t(&[0x2F, 6, 0, 0, 0, 0, 0, 0, 4, 0]), (Length::Blocks(1), Direction::Out));
        // WRITE SAME: one block of data, none with NDOB.
        assert_eq!(t(&[0x41, 0, 0, 0, 0, 0, 0, 0, 4, 0]), (Length::Blocks(1), Direction::Out));
        let ndob = [0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0];
        assert_eq!(t(&ndob), (Length::Blocks(0), Direction::None));
        assert!(is_write_same_without_data(&ndob));
    }

    #[test]
    fn qemu_lengths_and_directions() {
        assert_eq!(t(&[0x12, 0, 0, 0x01, 0x02, 0]), (Length::Bytes(0x102), Direction::In));
        assert_eq!(t(&[0x00, 0, 0, 0, 9, 0]), (Length::Bytes(0), Direction::None), "TEST UNIT READY has no data");
        assert_eq!(t(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]), (Length::Bytes(8), Direction::In));
        assert_eq!(t(&[0x15, 0x10, 0, 0, 24, 0]), (Length::Bytes(24), Direction::Out));
        assert_eq!(t(&[0x3B, 2, 0, 0, 0, 0, 0x01, 0, 0, 0]), (Length::Bytes(0x10000), Direction::Out));
        assert_eq!(t(&[0x5F, 0, 0, 0, 0, 0, 0, 0, 24, 0]), (Length::Bytes(24), Direction::Out));
        assert_eq!(t(&[0x04, 0x10, 0, 0, 0, 0]), (Length::Bytes(4), Direction::Out));
        assert_eq!(t(&[0x04, 0x30, 0, 0, 0, 0]), (Length::Bytes(8), Direction::Out));
        // Data-out commands missing from QEMU's list: QEMU takes them as data-in.
        let write_atomic = [0x9C, 0, 0, 0, 0, 0, 0, 0, 0, 0x64, 0, 0, 0, 1, 0, 0];
        assert_eq!(t(&write_atomic), (Length::Bytes(1), Direction::In));
        assert_eq!(t(&[0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]).1, Direction::In, "COMPARE AND WRITE");
        assert_eq!(t(&[0x48, 0x01, 0, 0, 0, 0, 0, 0, 8, 0]).1, Direction::In, "SANITIZE");
        assert_eq!(t(&[0xB5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]).1, Direction::In, "SECURITY PROTOCOL OUT");
        assert_eq!(t(&[0x83, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]).1, Direction::In, "POPULATE TOKEN");
        // And a number that is data-in for a disk but a scanner's data-out command to QEMU.
        assert_eq!(t(&[0x24, 0, 0, 0, 0, 0, 0, 0, 8, 0]).1, Direction::Out);
        // ATA PASS-THROUGH(16): T_DIR, BYTE_BLOCK.
        assert_eq!(t(&[0x85, 0, 0x0E, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xEC, 0]), (Length::Bytes(512), Direction::In));
        assert_eq!(t(&[0x85, 0, 0x06, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), (Length::Bytes(512), Direction::Out));
    }

    #[test]
    fn refused_groups_and_short_cdbs_move_nothing() {
        assert_eq!(transfer(&[0xC7, 0, 0, 0, 0, 0]), Transfer::NONE);
        assert_eq!(transfer(&[0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0, 0]), Transfer::NONE);
        assert_eq!(transfer(&[0x28, 0, 0, 0, 0, 0]), Transfer::NONE, "READ(10) in 6 bytes");
        assert_eq!(transfer(&[]), Transfer::NONE);
    }

    #[test]
    fn capacity_answers() {
        let rc10 = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let at = capacity_block_length_at(&rc10).unwrap();
        assert_eq!(capacity_block_length(at, &[0, 0, 0x3F, 0xFF, 0, 0, 2, 0]), Some(512));
        let mut rc16 = [0u8; 16];
        rc16[0] = 0x9E;
        rc16[1] = 0x10;
        let mut answer = [0u8; 32];
        answer[8..12].copy_from_slice(&4096u32.to_be_bytes());
        let at = capacity_block_length_at(&rc16).unwrap();
        assert_eq!(capacity_block_length(at, &answer), Some(4096));
        assert_eq!(capacity_block_length(at, &answer[..10]), None, "too short to hold it");
        assert_eq!(capacity_block_length_at(&[0x12, 0, 0, 0, 36, 0]), None);
        rc16[1] = 0x12;
        assert_eq!(capacity_block_length_at(&rc16), None, "GET LBA STATUS");
    }
}

//! What the driver needs to know about a CDB: which doorbell it rings and which way its data
//! moves.

/// Which way a command moves data, as the SCSI command set defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// No data phase.
    None,
    /// Device to memory.
    In,
    /// Memory to device.
    Out,
}

/// READ/WRITE(6/10/12/16): the commands Linux and FreeBSD send through `KICK_RW_IO` (§5.7).
#[must_use]
pub fn is_read_write(opcode: u8) -> bool {
    matches!(opcode, 0x08 | 0x0A | 0x28 | 0x2A | 0xA8 | 0xAA | 0x88 | 0x8A)
}

/// The data direction of well-known opcodes, `None` for the rest.
///
/// QEMU takes the direction from the CDB and, when the request's direction flag contradicts it,
/// never completes the request (pvscsi-facts.md Q4). So the driver refuses a contradiction
/// instead of sending it, and fills in the direction from here when the SRB leaves it
/// unspecified.
#[must_use]
pub fn direction(opcode: u8) -> Option<Direction> {
    Some(match opcode {
        // WRITE(6/10/12/16), WRITE AND VERIFY(10/12/16), MODE SELECT(6/10), FORMAT UNIT,
        // REASSIGN BLOCKS, SEND DIAGNOSTIC, WRITE BUFFER, LOG SELECT, WRITE SAME(10/16), UNMAP,
        // PERSISTENT RESERVE OUT, WRITE LONG, WRITE ATOMIC.
        0x0A | 0x2A | 0xAA | 0x8A | 0x2E | 0xAE | 0x8E | 0x15 | 0x55 | 0x04 | 0x07 | 0x1D | 0x3B | 0x4C
        | 0x41 | 0x93 | 0x42 | 0x5F | 0x3F | 0x9C => Direction::Out,
        // READ(6/10/12/16), INQUIRY, READ CAPACITY(10), SERVICE ACTION IN(16), MODE SENSE(6/10),
        // REQUEST SENSE, REPORT LUNS, READ BUFFER, LOG SENSE, PERSISTENT RESERVE IN,
        // READ DEFECT DATA, MAINTENANCE IN.
        0x08 | 0x28 | 0xA8 | 0x88 | 0x12 | 0x25 | 0x9E | 0x1A | 0x5A | 0x03 | 0xA0 | 0x3C | 0x4D | 0x5E
        | 0x37 | 0xA3 => Direction::In,
        // TEST UNIT READY, START STOP UNIT, SYNCHRONIZE CACHE(10/16), PREVENT ALLOW MEDIUM
        // REMOVAL, RESERVE(6), RELEASE(6), SEEK(10).
        0x00 | 0x1B | 0x35 | 0x91 | 0x1E | 0x16 | 0x17 | 0x2B => Direction::None,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn directions_of_common_opcodes() {
        assert_eq!(direction(0x28), Some(Direction::In));
        assert_eq!(direction(0x2A), Some(Direction::Out));
        assert_eq!(direction(0x12), Some(Direction::In));
        assert_eq!(direction(0x00), Some(Direction::None));
        assert_eq!(direction(0x35), Some(Direction::None));
        assert_eq!(direction(0xC0), None);
    }
}

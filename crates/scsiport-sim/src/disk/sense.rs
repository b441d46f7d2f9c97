//! Fixed-format sense data and the sense codes the virtual targets report.
//!
//! Only fixed format (response code 0x70, 18 bytes) is produced: it is what QEMU's SCSI layer
//! hands to PVSCSI for autosense (pvscsi-facts.md §6.2, QEMU `scsi_req_get_sense` converts to
//! fixed format for the HBA) and what every Windows class driver parses.

/// Length of the fixed-format sense data the targets build.
pub const FIXED_SENSE_LEN: usize = 18;

/// Sense keys (SPC-4 table 48).
pub mod key {
    /// No sense.
    pub const NO_SENSE: u8 = 0x0;
    /// Recovered error.
    pub const RECOVERED_ERROR: u8 = 0x1;
    /// Not ready.
    pub const NOT_READY: u8 = 0x2;
    /// Medium error.
    pub const MEDIUM_ERROR: u8 = 0x3;
    /// Hardware error.
    pub const HARDWARE_ERROR: u8 = 0x4;
    /// Illegal request.
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    /// Unit attention.
    pub const UNIT_ATTENTION: u8 = 0x6;
    /// Data protect.
    pub const DATA_PROTECT: u8 = 0x7;
    /// Aborted command.
    pub const ABORTED_COMMAND: u8 = 0xB;
    /// Miscompare.
    pub const MISCOMPARE: u8 = 0xE;
}

/// A sense key with its additional sense code and qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sense {
    /// Sense key (low 4 bits).
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

impl Sense {
    /// Builds a sense triple.
    #[must_use]
    pub const fn new(key: u8, asc: u8, ascq: u8) -> Self {
        Self { key, asc, ascq }
    }

    /// NO SENSE: what REQUEST SENSE returns when nothing is pending.
    pub const NO_SENSE: Self = Self::new(key::NO_SENSE, 0, 0);
    /// ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE (05/20/00): unknown opcode, or a CDB
    /// shorter than its group implies (pvscsi-facts.md §5.3 cdbLen, QEMU `scsi_req_parse_cdb`).
    pub const INVALID_OPCODE: Self = Self::new(key::ILLEGAL_REQUEST, 0x20, 0x00);
    /// ILLEGAL REQUEST / LOGICAL BLOCK ADDRESS OUT OF RANGE (05/21/00).
    pub const LBA_OUT_OF_RANGE: Self = Self::new(key::ILLEGAL_REQUEST, 0x21, 0x00);
    /// ILLEGAL REQUEST / INVALID FIELD IN CDB (05/24/00).
    pub const INVALID_FIELD: Self = Self::new(key::ILLEGAL_REQUEST, 0x24, 0x00);
    /// ILLEGAL REQUEST / LOGICAL UNIT NOT SUPPORTED (05/25/00): any LUN but 0 (pvscsi-facts.md §6.4).
    pub const LUN_NOT_SUPPORTED: Self = Self::new(key::ILLEGAL_REQUEST, 0x25, 0x00);
    /// ILLEGAL REQUEST / PARAMETER LIST LENGTH ERROR (05/1A/00): a parameter list shorter than
    /// its own headers say (MODE SELECT, UNMAP).
    pub const INVALID_PARAM_LEN: Self = Self::new(key::ILLEGAL_REQUEST, 0x1A, 0x00);
    /// ILLEGAL REQUEST / INVALID FIELD IN PARAMETER LIST (05/26/00): MODE SELECT of a page or
    /// value the device does not have or cannot change.
    pub const INVALID_PARAM: Self = Self::new(key::ILLEGAL_REQUEST, 0x26, 0x00);
    /// ILLEGAL REQUEST / SAVING PARAMETERS NOT SUPPORTED (05/39/00): MODE SENSE of saved values.
    pub const SAVING_PARAMS_NOT_SUPPORTED: Self = Self::new(key::ILLEGAL_REQUEST, 0x39, 0x00);
    /// UNIT ATTENTION / POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (06/29/00), held by every
    /// disk after power-on and after each reset (pvscsi-facts.md §6.4, Q17).
    pub const POWER_ON_RESET: Self = Self::new(key::UNIT_ATTENTION, 0x29, 0x00);
    /// UNIT ATTENTION / REPORTED LUNS DATA HAS CHANGED (06/3F/0E).
    pub const REPORTED_LUNS_CHANGED: Self = Self::new(key::UNIT_ATTENTION, 0x3F, 0x0E);
    /// DATA PROTECT / WRITE PROTECTED (07/27/00).
    pub const WRITE_PROTECTED: Self = Self::new(key::DATA_PROTECT, 0x27, 0x00);
    /// MEDIUM ERROR / UNRECOVERED READ ERROR (03/11/00): the backing store failed a read.
    pub const READ_ERROR: Self = Self::new(key::MEDIUM_ERROR, 0x11, 0x00);
    /// MEDIUM ERROR / WRITE ERROR (03/0C/00): the backing store failed a write or flush.
    pub const WRITE_ERROR: Self = Self::new(key::MEDIUM_ERROR, 0x0C, 0x00);
    /// MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION (0E/1D/00).
    pub const MISCOMPARE: Self = Self::new(key::MISCOMPARE, 0x1D, 0x00);

    /// The 18-byte fixed-format sense data: response code 0x70 (current error), additional length
    /// 10, no information or sense-key-specific fields (QEMU's SCSI layer fills neither).
    #[must_use]
    pub fn fixed(&self) -> [u8; FIXED_SENSE_LEN] {
        let mut s = [0u8; FIXED_SENSE_LEN];
        s[0] = 0x70;
        s[2] = self.key & 0x0F;
        s[7] = 10;
        s[12] = self.asc;
        s[13] = self.ascq;
        s
    }

    /// The 8-byte descriptor-format sense data: response code 0x72 (current error), no
    /// descriptors (what QEMU's REQUEST SENSE returns with DESC set).
    #[must_use]
    pub fn descriptor(&self) -> [u8; 8] {
        [0x72, self.key & 0x0F, self.asc, self.ascq, 0, 0, 0, 0]
    }

    /// Parses fixed (0x70/0x71) or descriptor (0x72/0x73) sense data; `None` if it is neither.
    #[must_use]
    pub fn parse(data: &[u8]) -> Option<Self> {
        match data.first().map(|b| b & 0x7F)? {
            0x70 | 0x71 => Some(Self::new(data.get(2)? & 0x0F, *data.get(12)?, *data.get(13)?)),
            0x72 | 0x73 => Some(Self::new(data.get(1)? & 0x0F, *data.get(2)?, *data.get(3)?)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Sense {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02X}/{:02X}/{:02X}", self.key, self.asc, self.ascq)
    }
}

//! `scsi.h`: what a miniport reads of the SCSI command set — operation codes, status bytes, sense
//! keys and codes, INQUIRY and READ CAPACITY data, and the CDB layouts.
//!
//! The values are the T10 standards' as the WDK's `scsi.h` names them. Multi-byte fields of wire
//! data (CDBs, `READ_CAPACITY_DATA`, sense information) are big-endian and are kept raw, as in the
//! header; byte-exact structures have alignment 1 unless the header gives them a wider member.

use crate::types::{LARGE_INTEGER, UCHAR, ULONG, USHORT};

// ---------------------------------------------------------------------------------------------
// Lengths and fixed values
// ---------------------------------------------------------------------------------------------

/// Length of a 6-byte CDB (`scsi.h`).
pub const CDB6GENERIC_LENGTH: UCHAR = 6;
/// Length of a 10-byte CDB (`scsi.h`).
pub const CDB10GENERIC_LENGTH: UCHAR = 10;
/// Length of a 12-byte CDB (`scsi.h`).
pub const CDB12GENERIC_LENGTH: UCHAR = 12;
/// INQUIRY CDB byte 1: return the vital product data page in `PageCode` (`scsi.h`).
pub const CDB_INQUIRY_EVPD: UCHAR = 0x01;
/// START STOP UNIT `Start` value: start (`scsi.h`).
pub const START_UNIT_CODE: UCHAR = 0x01;
/// START STOP UNIT `Start` value: stop (`scsi.h`).
pub const STOP_UNIT_CODE: UCHAR = 0x00;
/// READ CAPACITY(16) service action of `SCSIOP_SERVICE_ACTION_IN16` (`scsi.h`).
pub const SERVICE_ACTION_READ_CAPACITY16: UCHAR = 0x10;
/// GET LBA STATUS service action of `SCSIOP_SERVICE_ACTION_IN16` (`scsi.h`).
pub const SERVICE_ACTION_GET_LBA_STATUS: UCHAR = 0x12;

/// Bytes of standard INQUIRY data a class driver asks for (`scsi.h`).
pub const INQUIRYDATABUFFERSIZE: ULONG = 36;
/// Bytes of fixed-format sense data, `sizeof(SENSE_DATA)` (`scsi.h`).
pub const SENSE_BUFFER_SIZE: UCHAR = 18;
/// Largest sense buffer (`scsi.h`).
pub const MAX_SENSE_BUFFER_SIZE: UCHAR = 255;
/// Additional sense bytes beyond `SENSE_DATA` that fit in the largest buffer (`scsi.h`).
pub const MAX_ADDITIONAL_SENSE_BYTES: UCHAR = MAX_SENSE_BUFFER_SIZE - SENSE_BUFFER_SIZE;

/// `SENSE_DATA.ErrorCode`: fixed format, current error (`scsi.h`; SPC).
pub const SCSI_SENSE_ERRORCODE_FIXED_CURRENT: UCHAR = 0x70;
/// `SENSE_DATA.ErrorCode`: fixed format, deferred error (`scsi.h`; SPC).
pub const SCSI_SENSE_ERRORCODE_FIXED_DEFERRED: UCHAR = 0x71;
/// `SENSE_DATA.ErrorCode`: descriptor format, current error (`scsi.h`; SPC).
pub const SCSI_SENSE_ERRORCODE_DESCRIPTOR_CURRENT: UCHAR = 0x72;
/// `SENSE_DATA.ErrorCode`: descriptor format, deferred error (`scsi.h`; SPC).
pub const SCSI_SENSE_ERRORCODE_DESCRIPTOR_DEFERRED: UCHAR = 0x73;

/// `OFFSET_VER_DESCRIPTOR_ONE`: offset of the first version descriptor in INQUIRY data (`scsi.h`).
#[allow(clippy::cast_possible_truncation)]
pub const OFFSET_VER_DESCRIPTOR_ONE: ULONG = core::mem::offset_of!(INQUIRYDATA, VersionDescriptors) as ULONG;
/// `OFFSET_VER_DESCRIPTOR_EIGHT`: offset just past the eighth version descriptor (`scsi.h`).
#[allow(clippy::cast_possible_truncation)]
pub const OFFSET_VER_DESCRIPTOR_EIGHT: ULONG =
    (core::mem::offset_of!(INQUIRYDATA, VersionDescriptors) + core::mem::size_of::<[VERSION_DESCRIPTOR; 8]>()) as ULONG;

// ---------------------------------------------------------------------------------------------
// SCSI operation codes (opcode byte 0 of the CDB)
// ---------------------------------------------------------------------------------------------

/// Operation code of TEST UNIT READY (`scsi.h`).
pub const SCSIOP_TEST_UNIT_READY: UCHAR = 0x00;
/// Operation code of REZERO UNIT (`scsi.h`).
pub const SCSIOP_REZERO_UNIT: UCHAR = 0x01;
/// Operation code of REWIND (`scsi.h`).
pub const SCSIOP_REWIND: UCHAR = 0x01;
/// Operation code of REQUEST BLOCK ADDR (`scsi.h`).
pub const SCSIOP_REQUEST_BLOCK_ADDR: UCHAR = 0x02;
/// Operation code of REQUEST SENSE (`scsi.h`).
pub const SCSIOP_REQUEST_SENSE: UCHAR = 0x03;
/// Operation code of FORMAT UNIT (`scsi.h`).
pub const SCSIOP_FORMAT_UNIT: UCHAR = 0x04;
/// Operation code of READ BLOCK LIMITS (`scsi.h`).
pub const SCSIOP_READ_BLOCK_LIMITS: UCHAR = 0x05;
/// Operation code of REASSIGN BLOCKS (`scsi.h`).
pub const SCSIOP_REASSIGN_BLOCKS: UCHAR = 0x07;
/// Operation code of INIT ELEMENT STATUS (`scsi.h`).
pub const SCSIOP_INIT_ELEMENT_STATUS: UCHAR = 0x07;
/// Operation code of READ6 (`scsi.h`).
pub const SCSIOP_READ6: UCHAR = 0x08;
/// Operation code of RECEIVE (`scsi.h`).
pub const SCSIOP_RECEIVE: UCHAR = 0x08;
/// Operation code of WRITE6 (`scsi.h`).
pub const SCSIOP_WRITE6: UCHAR = 0x0A;
/// Operation code of PRINT (`scsi.h`).
pub const SCSIOP_PRINT: UCHAR = 0x0A;
/// Operation code of SEND (`scsi.h`).
pub const SCSIOP_SEND: UCHAR = 0x0A;
/// Operation code of SEEK6 (`scsi.h`).
pub const SCSIOP_SEEK6: UCHAR = 0x0B;
/// Operation code of TRACK SELECT (`scsi.h`).
pub const SCSIOP_TRACK_SELECT: UCHAR = 0x0B;
/// Operation code of SLEW PRINT (`scsi.h`).
pub const SCSIOP_SLEW_PRINT: UCHAR = 0x0B;
/// Operation code of SET CAPACITY (`scsi.h`).
pub const SCSIOP_SET_CAPACITY: UCHAR = 0x0B;
/// Operation code of SEEK BLOCK (`scsi.h`).
pub const SCSIOP_SEEK_BLOCK: UCHAR = 0x0C;
/// Operation code of PARTITION (`scsi.h`).
pub const SCSIOP_PARTITION: UCHAR = 0x0D;
/// Operation code of READ REVERSE (`scsi.h`).
pub const SCSIOP_READ_REVERSE: UCHAR = 0x0F;
/// Operation code of WRITE FILEMARKS (`scsi.h`).
pub const SCSIOP_WRITE_FILEMARKS: UCHAR = 0x10;
/// Operation code of FLUSH BUFFER (`scsi.h`).
pub const SCSIOP_FLUSH_BUFFER: UCHAR = 0x10;
/// Operation code of SPACE (`scsi.h`).
pub const SCSIOP_SPACE: UCHAR = 0x11;
/// Operation code of INQUIRY (`scsi.h`).
pub const SCSIOP_INQUIRY: UCHAR = 0x12;
/// Operation code of VERIFY6 (`scsi.h`).
pub const SCSIOP_VERIFY6: UCHAR = 0x13;
/// Operation code of RECOVER BUF DATA (`scsi.h`).
pub const SCSIOP_RECOVER_BUF_DATA: UCHAR = 0x14;
/// Operation code of MODE SELECT (`scsi.h`).
pub const SCSIOP_MODE_SELECT: UCHAR = 0x15;
/// Operation code of RESERVE UNIT (`scsi.h`).
pub const SCSIOP_RESERVE_UNIT: UCHAR = 0x16;
/// Operation code of RELEASE UNIT (`scsi.h`).
pub const SCSIOP_RELEASE_UNIT: UCHAR = 0x17;
/// Operation code of COPY (`scsi.h`).
pub const SCSIOP_COPY: UCHAR = 0x18;
/// Operation code of ERASE (`scsi.h`).
pub const SCSIOP_ERASE: UCHAR = 0x19;
/// Operation code of MODE SENSE (`scsi.h`).
pub const SCSIOP_MODE_SENSE: UCHAR = 0x1A;
/// Operation code of START STOP UNIT (`scsi.h`).
pub const SCSIOP_START_STOP_UNIT: UCHAR = 0x1B;
/// Operation code of STOP PRINT (`scsi.h`).
pub const SCSIOP_STOP_PRINT: UCHAR = 0x1B;
/// Operation code of LOAD UNLOAD (`scsi.h`).
pub const SCSIOP_LOAD_UNLOAD: UCHAR = 0x1B;
/// Operation code of RECEIVE DIAGNOSTIC (`scsi.h`).
pub const SCSIOP_RECEIVE_DIAGNOSTIC: UCHAR = 0x1C;
/// Operation code of SEND DIAGNOSTIC (`scsi.h`).
pub const SCSIOP_SEND_DIAGNOSTIC: UCHAR = 0x1D;
/// Operation code of MEDIUM REMOVAL (`scsi.h`).
pub const SCSIOP_MEDIUM_REMOVAL: UCHAR = 0x1E;
/// Operation code of READ FORMATTED CAPACITY (`scsi.h`).
pub const SCSIOP_READ_FORMATTED_CAPACITY: UCHAR = 0x23;
/// Operation code of READ CAPACITY (`scsi.h`).
pub const SCSIOP_READ_CAPACITY: UCHAR = 0x25;
/// Operation code of READ (`scsi.h`).
pub const SCSIOP_READ: UCHAR = 0x28;
/// Operation code of WRITE (`scsi.h`).
pub const SCSIOP_WRITE: UCHAR = 0x2A;
/// Operation code of SEEK (`scsi.h`).
pub const SCSIOP_SEEK: UCHAR = 0x2B;
/// Operation code of LOCATE (`scsi.h`).
pub const SCSIOP_LOCATE: UCHAR = 0x2B;
/// Operation code of POSITION TO ELEMENT (`scsi.h`).
pub const SCSIOP_POSITION_TO_ELEMENT: UCHAR = 0x2B;
/// Operation code of WRITE VERIFY (`scsi.h`).
pub const SCSIOP_WRITE_VERIFY: UCHAR = 0x2E;
/// Operation code of VERIFY (`scsi.h`).
pub const SCSIOP_VERIFY: UCHAR = 0x2F;
/// Operation code of SEARCH DATA HIGH (`scsi.h`).
pub const SCSIOP_SEARCH_DATA_HIGH: UCHAR = 0x30;
/// Operation code of SEARCH DATA EQUAL (`scsi.h`).
pub const SCSIOP_SEARCH_DATA_EQUAL: UCHAR = 0x31;
/// Operation code of SEARCH DATA LOW (`scsi.h`).
pub const SCSIOP_SEARCH_DATA_LOW: UCHAR = 0x32;
/// Operation code of SET LIMITS (`scsi.h`).
pub const SCSIOP_SET_LIMITS: UCHAR = 0x33;
/// Operation code of READ POSITION (`scsi.h`).
pub const SCSIOP_READ_POSITION: UCHAR = 0x34;
/// Operation code of SYNCHRONIZE CACHE (`scsi.h`).
pub const SCSIOP_SYNCHRONIZE_CACHE: UCHAR = 0x35;
/// Operation code of COMPARE (`scsi.h`).
pub const SCSIOP_COMPARE: UCHAR = 0x39;
/// Operation code of COPY COMPARE (`scsi.h`).
pub const SCSIOP_COPY_COMPARE: UCHAR = 0x3A;
/// Operation code of WRITE DATA BUFF (`scsi.h`).
pub const SCSIOP_WRITE_DATA_BUFF: UCHAR = 0x3B;
/// Operation code of READ DATA BUFF (`scsi.h`).
pub const SCSIOP_READ_DATA_BUFF: UCHAR = 0x3C;
/// Operation code of WRITE LONG (`scsi.h`).
pub const SCSIOP_WRITE_LONG: UCHAR = 0x3F;
/// Operation code of CHANGE DEFINITION (`scsi.h`).
pub const SCSIOP_CHANGE_DEFINITION: UCHAR = 0x40;
/// Operation code of WRITE SAME (`scsi.h`).
pub const SCSIOP_WRITE_SAME: UCHAR = 0x41;
/// Operation code of READ SUB CHANNEL (`scsi.h`).
pub const SCSIOP_READ_SUB_CHANNEL: UCHAR = 0x42;
/// Operation code of UNMAP (`scsi.h`).
pub const SCSIOP_UNMAP: UCHAR = 0x42;
/// Operation code of READ TOC (`scsi.h`).
pub const SCSIOP_READ_TOC: UCHAR = 0x43;
/// Operation code of READ HEADER (`scsi.h`).
pub const SCSIOP_READ_HEADER: UCHAR = 0x44;
/// Operation code of REPORT DENSITY SUPPORT (`scsi.h`).
pub const SCSIOP_REPORT_DENSITY_SUPPORT: UCHAR = 0x44;
/// Operation code of PLAY AUDIO (`scsi.h`).
pub const SCSIOP_PLAY_AUDIO: UCHAR = 0x45;
/// Operation code of GET CONFIGURATION (`scsi.h`).
pub const SCSIOP_GET_CONFIGURATION: UCHAR = 0x46;
/// Operation code of PLAY AUDIO MSF (`scsi.h`).
pub const SCSIOP_PLAY_AUDIO_MSF: UCHAR = 0x47;
/// Operation code of PLAY TRACK INDEX (`scsi.h`).
pub const SCSIOP_PLAY_TRACK_INDEX: UCHAR = 0x48;
/// Operation code of SANITIZE (`scsi.h`).
pub const SCSIOP_SANITIZE: UCHAR = 0x48;
/// Operation code of PLAY TRACK RELATIVE (`scsi.h`).
pub const SCSIOP_PLAY_TRACK_RELATIVE: UCHAR = 0x49;
/// Operation code of GET EVENT STATUS (`scsi.h`).
pub const SCSIOP_GET_EVENT_STATUS: UCHAR = 0x4A;
/// Operation code of PAUSE RESUME (`scsi.h`).
pub const SCSIOP_PAUSE_RESUME: UCHAR = 0x4B;
/// Operation code of LOG SELECT (`scsi.h`).
pub const SCSIOP_LOG_SELECT: UCHAR = 0x4C;
/// Operation code of LOG SENSE (`scsi.h`).
pub const SCSIOP_LOG_SENSE: UCHAR = 0x4D;
/// Operation code of STOP PLAY SCAN (`scsi.h`).
pub const SCSIOP_STOP_PLAY_SCAN: UCHAR = 0x4E;
/// Operation code of XDWRITE (`scsi.h`).
pub const SCSIOP_XDWRITE: UCHAR = 0x50;
/// Operation code of XPWRITE (`scsi.h`).
pub const SCSIOP_XPWRITE: UCHAR = 0x51;
/// Operation code of READ DISK INFORMATION (`scsi.h`).
pub const SCSIOP_READ_DISK_INFORMATION: UCHAR = 0x51;
/// Operation code of READ DISC INFORMATION (`scsi.h`).
pub const SCSIOP_READ_DISC_INFORMATION: UCHAR = 0x51;
/// Operation code of READ TRACK INFORMATION (`scsi.h`).
pub const SCSIOP_READ_TRACK_INFORMATION: UCHAR = 0x52;
/// Operation code of XDWRITE READ (`scsi.h`).
pub const SCSIOP_XDWRITE_READ: UCHAR = 0x53;
/// Operation code of RESERVE TRACK RZONE (`scsi.h`).
pub const SCSIOP_RESERVE_TRACK_RZONE: UCHAR = 0x53;
/// Operation code of SEND OPC INFORMATION (`scsi.h`).
pub const SCSIOP_SEND_OPC_INFORMATION: UCHAR = 0x54;
/// Operation code of MODE SELECT10 (`scsi.h`).
pub const SCSIOP_MODE_SELECT10: UCHAR = 0x55;
/// Operation code of RESERVE UNIT10 (`scsi.h`).
pub const SCSIOP_RESERVE_UNIT10: UCHAR = 0x56;
/// Operation code of RESERVE ELEMENT (`scsi.h`).
pub const SCSIOP_RESERVE_ELEMENT: UCHAR = 0x56;
/// Operation code of RELEASE UNIT10 (`scsi.h`).
pub const SCSIOP_RELEASE_UNIT10: UCHAR = 0x57;
/// Operation code of RELEASE ELEMENT (`scsi.h`).
pub const SCSIOP_RELEASE_ELEMENT: UCHAR = 0x57;
/// Operation code of REPAIR TRACK (`scsi.h`).
pub const SCSIOP_REPAIR_TRACK: UCHAR = 0x58;
/// Operation code of MODE SENSE10 (`scsi.h`).
pub const SCSIOP_MODE_SENSE10: UCHAR = 0x5A;
/// Operation code of CLOSE TRACK SESSION (`scsi.h`).
pub const SCSIOP_CLOSE_TRACK_SESSION: UCHAR = 0x5B;
/// Operation code of READ BUFFER CAPACITY (`scsi.h`).
pub const SCSIOP_READ_BUFFER_CAPACITY: UCHAR = 0x5C;
/// Operation code of SEND CUE SHEET (`scsi.h`).
pub const SCSIOP_SEND_CUE_SHEET: UCHAR = 0x5D;
/// Operation code of PERSISTENT RESERVE IN (`scsi.h`).
pub const SCSIOP_PERSISTENT_RESERVE_IN: UCHAR = 0x5E;
/// Operation code of PERSISTENT RESERVE OUT (`scsi.h`).
pub const SCSIOP_PERSISTENT_RESERVE_OUT: UCHAR = 0x5F;
/// Operation code of REPORT LUNS (`scsi.h`).
pub const SCSIOP_REPORT_LUNS: UCHAR = 0xA0;
/// Operation code of BLANK (`scsi.h`).
pub const SCSIOP_BLANK: UCHAR = 0xA1;
/// Operation code of ATA PASSTHROUGH12 (`scsi.h`).
pub const SCSIOP_ATA_PASSTHROUGH12: UCHAR = 0xA1;
/// Operation code of SEND EVENT (`scsi.h`).
pub const SCSIOP_SEND_EVENT: UCHAR = 0xA2;
/// Operation code of SECURITY PROTOCOL IN (`scsi.h`).
pub const SCSIOP_SECURITY_PROTOCOL_IN: UCHAR = 0xA2;
/// Operation code of SEND KEY (`scsi.h`).
pub const SCSIOP_SEND_KEY: UCHAR = 0xA3;
/// Operation code of MAINTENANCE IN (`scsi.h`).
pub const SCSIOP_MAINTENANCE_IN: UCHAR = 0xA3;
/// Operation code of REPORT KEY (`scsi.h`).
pub const SCSIOP_REPORT_KEY: UCHAR = 0xA4;
/// Operation code of MAINTENANCE OUT (`scsi.h`).
pub const SCSIOP_MAINTENANCE_OUT: UCHAR = 0xA4;
/// Operation code of MOVE MEDIUM (`scsi.h`).
pub const SCSIOP_MOVE_MEDIUM: UCHAR = 0xA5;
/// Operation code of LOAD UNLOAD SLOT (`scsi.h`).
pub const SCSIOP_LOAD_UNLOAD_SLOT: UCHAR = 0xA6;
/// Operation code of EXCHANGE MEDIUM (`scsi.h`).
pub const SCSIOP_EXCHANGE_MEDIUM: UCHAR = 0xA6;
/// Operation code of SET READ AHEAD (`scsi.h`).
pub const SCSIOP_SET_READ_AHEAD: UCHAR = 0xA7;
/// Operation code of MOVE MEDIUM ATTACHED (`scsi.h`).
pub const SCSIOP_MOVE_MEDIUM_ATTACHED: UCHAR = 0xA7;
/// Operation code of READ12 (`scsi.h`).
pub const SCSIOP_READ12: UCHAR = 0xA8;
/// Operation code of GET MESSAGE (`scsi.h`).
pub const SCSIOP_GET_MESSAGE: UCHAR = 0xA8;
/// Operation code of SERVICE ACTION OUT12 (`scsi.h`).
pub const SCSIOP_SERVICE_ACTION_OUT12: UCHAR = 0xA9;
/// Operation code of WRITE12 (`scsi.h`).
pub const SCSIOP_WRITE12: UCHAR = 0xAA;
/// Operation code of SEND MESSAGE (`scsi.h`).
pub const SCSIOP_SEND_MESSAGE: UCHAR = 0xAB;
/// Operation code of SERVICE ACTION IN12 (`scsi.h`).
pub const SCSIOP_SERVICE_ACTION_IN12: UCHAR = 0xAB;
/// Operation code of GET PERFORMANCE (`scsi.h`).
pub const SCSIOP_GET_PERFORMANCE: UCHAR = 0xAC;
/// Operation code of READ DVD STRUCTURE (`scsi.h`).
pub const SCSIOP_READ_DVD_STRUCTURE: UCHAR = 0xAD;
/// Operation code of WRITE VERIFY12 (`scsi.h`).
pub const SCSIOP_WRITE_VERIFY12: UCHAR = 0xAE;
/// Operation code of VERIFY12 (`scsi.h`).
pub const SCSIOP_VERIFY12: UCHAR = 0xAF;
/// Operation code of SEARCH DATA HIGH12 (`scsi.h`).
pub const SCSIOP_SEARCH_DATA_HIGH12: UCHAR = 0xB0;
/// Operation code of SEARCH DATA EQUAL12 (`scsi.h`).
pub const SCSIOP_SEARCH_DATA_EQUAL12: UCHAR = 0xB1;
/// Operation code of SEARCH DATA LOW12 (`scsi.h`).
pub const SCSIOP_SEARCH_DATA_LOW12: UCHAR = 0xB2;
/// Operation code of SET LIMITS12 (`scsi.h`).
pub const SCSIOP_SET_LIMITS12: UCHAR = 0xB3;
/// Operation code of READ ELEMENT STATUS ATTACHED (`scsi.h`).
pub const SCSIOP_READ_ELEMENT_STATUS_ATTACHED: UCHAR = 0xB4;
/// Operation code of REQUEST VOL ELEMENT (`scsi.h`).
pub const SCSIOP_REQUEST_VOL_ELEMENT: UCHAR = 0xB5;
/// Operation code of SECURITY PROTOCOL OUT (`scsi.h`).
pub const SCSIOP_SECURITY_PROTOCOL_OUT: UCHAR = 0xB5;
/// Operation code of SEND VOLUME TAG (`scsi.h`).
pub const SCSIOP_SEND_VOLUME_TAG: UCHAR = 0xB6;
/// Operation code of SET STREAMING (`scsi.h`).
pub const SCSIOP_SET_STREAMING: UCHAR = 0xB6;
/// Operation code of READ DEFECT DATA (`scsi.h`).
pub const SCSIOP_READ_DEFECT_DATA: UCHAR = 0xB7;
/// Operation code of READ ELEMENT STATUS (`scsi.h`).
pub const SCSIOP_READ_ELEMENT_STATUS: UCHAR = 0xB8;
/// Operation code of READ CD MSF (`scsi.h`).
pub const SCSIOP_READ_CD_MSF: UCHAR = 0xB9;
/// Operation code of SCAN CD (`scsi.h`).
pub const SCSIOP_SCAN_CD: UCHAR = 0xBA;
/// Operation code of REDUNDANCY GROUP IN (`scsi.h`).
pub const SCSIOP_REDUNDANCY_GROUP_IN: UCHAR = 0xBA;
/// Operation code of SET CD SPEED (`scsi.h`).
pub const SCSIOP_SET_CD_SPEED: UCHAR = 0xBB;
/// Operation code of REDUNDANCY GROUP OUT (`scsi.h`).
pub const SCSIOP_REDUNDANCY_GROUP_OUT: UCHAR = 0xBB;
/// Operation code of PLAY CD (`scsi.h`).
pub const SCSIOP_PLAY_CD: UCHAR = 0xBC;
/// Operation code of SPARE IN (`scsi.h`).
pub const SCSIOP_SPARE_IN: UCHAR = 0xBC;
/// Operation code of MECHANISM STATUS (`scsi.h`).
pub const SCSIOP_MECHANISM_STATUS: UCHAR = 0xBD;
/// Operation code of SPARE OUT (`scsi.h`).
pub const SCSIOP_SPARE_OUT: UCHAR = 0xBD;
/// Operation code of READ CD (`scsi.h`).
pub const SCSIOP_READ_CD: UCHAR = 0xBE;
/// Operation code of VOLUME SET IN (`scsi.h`).
pub const SCSIOP_VOLUME_SET_IN: UCHAR = 0xBE;
/// Operation code of SEND DVD STRUCTURE (`scsi.h`).
pub const SCSIOP_SEND_DVD_STRUCTURE: UCHAR = 0xBF;
/// Operation code of VOLUME SET OUT (`scsi.h`).
pub const SCSIOP_VOLUME_SET_OUT: UCHAR = 0xBF;
/// Operation code of INIT ELEMENT RANGE (`scsi.h`).
pub const SCSIOP_INIT_ELEMENT_RANGE: UCHAR = 0xE7;
/// Operation code of XDWRITE EXTENDED16 (`scsi.h`).
pub const SCSIOP_XDWRITE_EXTENDED16: UCHAR = 0x80;
/// Operation code of WRITE FILEMARKS16 (`scsi.h`).
pub const SCSIOP_WRITE_FILEMARKS16: UCHAR = 0x80;
/// Operation code of REBUILD16 (`scsi.h`).
pub const SCSIOP_REBUILD16: UCHAR = 0x81;
/// Operation code of READ REVERSE16 (`scsi.h`).
pub const SCSIOP_READ_REVERSE16: UCHAR = 0x81;
/// Operation code of REGENERATE16 (`scsi.h`).
pub const SCSIOP_REGENERATE16: UCHAR = 0x82;
/// Operation code of EXTENDED COPY (`scsi.h`).
pub const SCSIOP_EXTENDED_COPY: UCHAR = 0x83;
/// Operation code of POPULATE TOKEN (`scsi.h`).
pub const SCSIOP_POPULATE_TOKEN: UCHAR = 0x83;
/// Operation code of WRITE USING TOKEN (`scsi.h`).
pub const SCSIOP_WRITE_USING_TOKEN: UCHAR = 0x83;
/// Operation code of RECEIVE COPY RESULTS (`scsi.h`).
pub const SCSIOP_RECEIVE_COPY_RESULTS: UCHAR = 0x84;
/// Operation code of RECEIVE ROD TOKEN INFORMATION (`scsi.h`).
pub const SCSIOP_RECEIVE_ROD_TOKEN_INFORMATION: UCHAR = 0x84;
/// Operation code of ATA PASSTHROUGH16 (`scsi.h`).
pub const SCSIOP_ATA_PASSTHROUGH16: UCHAR = 0x85;
/// Operation code of ACCESS CONTROL IN (`scsi.h`).
pub const SCSIOP_ACCESS_CONTROL_IN: UCHAR = 0x86;
/// Operation code of ACCESS CONTROL OUT (`scsi.h`).
pub const SCSIOP_ACCESS_CONTROL_OUT: UCHAR = 0x87;
/// Operation code of READ16 (`scsi.h`).
pub const SCSIOP_READ16: UCHAR = 0x88;
/// Operation code of COMPARE AND WRITE (`scsi.h`).
pub const SCSIOP_COMPARE_AND_WRITE: UCHAR = 0x89;
/// Operation code of WRITE16 (`scsi.h`).
pub const SCSIOP_WRITE16: UCHAR = 0x8A;
/// Operation code of READ ATTRIBUTES (`scsi.h`).
pub const SCSIOP_READ_ATTRIBUTES: UCHAR = 0x8C;
/// Operation code of WRITE ATTRIBUTES (`scsi.h`).
pub const SCSIOP_WRITE_ATTRIBUTES: UCHAR = 0x8D;
/// Operation code of WRITE VERIFY16 (`scsi.h`).
pub const SCSIOP_WRITE_VERIFY16: UCHAR = 0x8E;
/// Operation code of VERIFY16 (`scsi.h`).
pub const SCSIOP_VERIFY16: UCHAR = 0x8F;
/// Operation code of PREFETCH16 (`scsi.h`).
pub const SCSIOP_PREFETCH16: UCHAR = 0x90;
/// Operation code of SYNCHRONIZE CACHE16 (`scsi.h`).
pub const SCSIOP_SYNCHRONIZE_CACHE16: UCHAR = 0x91;
/// Operation code of SPACE16 (`scsi.h`).
pub const SCSIOP_SPACE16: UCHAR = 0x91;
/// Operation code of LOCK UNLOCK CACHE16 (`scsi.h`).
pub const SCSIOP_LOCK_UNLOCK_CACHE16: UCHAR = 0x92;
/// Operation code of LOCATE16 (`scsi.h`).
pub const SCSIOP_LOCATE16: UCHAR = 0x92;
/// Operation code of WRITE SAME16 (`scsi.h`).
pub const SCSIOP_WRITE_SAME16: UCHAR = 0x93;
/// Operation code of ERASE16 (`scsi.h`).
pub const SCSIOP_ERASE16: UCHAR = 0x93;
/// Operation code of ZBC OUT (`scsi.h`).
pub const SCSIOP_ZBC_OUT: UCHAR = 0x94;
/// Operation code of ZBC IN (`scsi.h`).
pub const SCSIOP_ZBC_IN: UCHAR = 0x95;
/// Operation code of READ DATA BUFF16 (`scsi.h`).
pub const SCSIOP_READ_DATA_BUFF16: UCHAR = 0x9B;
/// Operation code of READ CAPACITY16 (`scsi.h`).
pub const SCSIOP_READ_CAPACITY16: UCHAR = 0x9E;
/// Operation code of GET LBA STATUS (`scsi.h`).
pub const SCSIOP_GET_LBA_STATUS: UCHAR = 0x9E;
/// Operation code of GET PHYSICAL ELEMENT STATUS (`scsi.h`).
pub const SCSIOP_GET_PHYSICAL_ELEMENT_STATUS: UCHAR = 0x9E;
/// Operation code of REMOVE ELEMENT AND TRUNCATE (`scsi.h`).
pub const SCSIOP_REMOVE_ELEMENT_AND_TRUNCATE: UCHAR = 0x9E;
/// Operation code of SERVICE ACTION IN16 (`scsi.h`).
pub const SCSIOP_SERVICE_ACTION_IN16: UCHAR = 0x9E;
/// Operation code of SERVICE ACTION OUT16 (`scsi.h`).
pub const SCSIOP_SERVICE_ACTION_OUT16: UCHAR = 0x9F;
/// Operation code of OPERATION32 (`scsi.h`).
pub const SCSIOP_OPERATION32: UCHAR = 0x7F;

// ---------------------------------------------------------------------------------------------
// Vendor-specific operation codes
// ---------------------------------------------------------------------------------------------

/// Vendor (Denon) operation code DENON EJECT DISC (`scsi.h`).
pub const SCSIOP_DENON_EJECT_DISC: UCHAR = 0xE6;
/// Vendor (Denon) operation code DENON STOP AUDIO (`scsi.h`).
pub const SCSIOP_DENON_STOP_AUDIO: UCHAR = 0xE7;
/// Vendor (Denon) operation code DENON PLAY AUDIO (`scsi.h`).
pub const SCSIOP_DENON_PLAY_AUDIO: UCHAR = 0xE8;
/// Vendor (Denon) operation code DENON READ TOC (`scsi.h`).
pub const SCSIOP_DENON_READ_TOC: UCHAR = 0xE9;
/// Vendor (Denon) operation code DENON READ SUBCODE (`scsi.h`).
pub const SCSIOP_DENON_READ_SUBCODE: UCHAR = 0xEB;

// ---------------------------------------------------------------------------------------------
// SCSI status bytes (SCSI_REQUEST_BLOCK.ScsiStatus)
// ---------------------------------------------------------------------------------------------

/// SCSI status GOOD (`scsi.h`).
pub const SCSISTAT_GOOD: UCHAR = 0x00;
/// SCSI status CHECK CONDITION (`scsi.h`).
pub const SCSISTAT_CHECK_CONDITION: UCHAR = 0x02;
/// SCSI status CONDITION MET (`scsi.h`).
pub const SCSISTAT_CONDITION_MET: UCHAR = 0x04;
/// SCSI status BUSY (`scsi.h`).
pub const SCSISTAT_BUSY: UCHAR = 0x08;
/// SCSI status INTERMEDIATE (`scsi.h`).
pub const SCSISTAT_INTERMEDIATE: UCHAR = 0x10;
/// SCSI status INTERMEDIATE COND MET (`scsi.h`).
pub const SCSISTAT_INTERMEDIATE_COND_MET: UCHAR = 0x14;
/// SCSI status RESERVATION CONFLICT (`scsi.h`).
pub const SCSISTAT_RESERVATION_CONFLICT: UCHAR = 0x18;
/// SCSI status COMMAND TERMINATED (`scsi.h`).
pub const SCSISTAT_COMMAND_TERMINATED: UCHAR = 0x22;
/// SCSI status QUEUE FULL (`scsi.h`).
pub const SCSISTAT_QUEUE_FULL: UCHAR = 0x28;

// ---------------------------------------------------------------------------------------------
// Sense keys (SENSE_DATA.SenseKey)
// ---------------------------------------------------------------------------------------------

/// Sense key: no sense (`scsi.h`).
pub const SCSI_SENSE_NO_SENSE: UCHAR = 0x00;
/// Sense key: recovered error (`scsi.h`).
pub const SCSI_SENSE_RECOVERED_ERROR: UCHAR = 0x01;
/// Sense key: not ready (`scsi.h`).
pub const SCSI_SENSE_NOT_READY: UCHAR = 0x02;
/// Sense key: medium error (`scsi.h`).
pub const SCSI_SENSE_MEDIUM_ERROR: UCHAR = 0x03;
/// Sense key: hardware error (`scsi.h`).
pub const SCSI_SENSE_HARDWARE_ERROR: UCHAR = 0x04;
/// Sense key: illegal request (`scsi.h`).
pub const SCSI_SENSE_ILLEGAL_REQUEST: UCHAR = 0x05;
/// Sense key: unit attention (`scsi.h`).
pub const SCSI_SENSE_UNIT_ATTENTION: UCHAR = 0x06;
/// Sense key: data protect (`scsi.h`).
pub const SCSI_SENSE_DATA_PROTECT: UCHAR = 0x07;
/// Sense key: blank check (`scsi.h`).
pub const SCSI_SENSE_BLANK_CHECK: UCHAR = 0x08;
/// Sense key: unique (`scsi.h`).
pub const SCSI_SENSE_UNIQUE: UCHAR = 0x09;
/// Sense key: copy aborted (`scsi.h`).
pub const SCSI_SENSE_COPY_ABORTED: UCHAR = 0x0A;
/// Sense key: aborted command (`scsi.h`).
pub const SCSI_SENSE_ABORTED_COMMAND: UCHAR = 0x0B;
/// Sense key: equal (`scsi.h`).
pub const SCSI_SENSE_EQUAL: UCHAR = 0x0C;
/// Sense key: vol overflow (`scsi.h`).
pub const SCSI_SENSE_VOL_OVERFLOW: UCHAR = 0x0D;
/// Sense key: miscompare (`scsi.h`).
pub const SCSI_SENSE_MISCOMPARE: UCHAR = 0x0E;
/// Sense key: reserved (`scsi.h`).
pub const SCSI_SENSE_RESERVED: UCHAR = 0x0F;

// ---------------------------------------------------------------------------------------------
// Tape flags in sense byte 2
// ---------------------------------------------------------------------------------------------

/// Sense byte 2 flag: illegal length (`scsi.h`).
pub const SCSI_ILLEGAL_LENGTH: UCHAR = 0x20;
/// Sense byte 2 flag: eom (`scsi.h`).
pub const SCSI_EOM: UCHAR = 0x40;
/// Sense byte 2 flag: file mark (`scsi.h`).
pub const SCSI_FILE_MARK: UCHAR = 0x80;

// ---------------------------------------------------------------------------------------------
// Additional sense codes (SENSE_DATA.AdditionalSenseCode)
// ---------------------------------------------------------------------------------------------

/// Additional sense code: no sense (`scsi.h`).
pub const SCSI_ADSENSE_NO_SENSE: UCHAR = 0x00;
/// Additional sense code: no seek complete (`scsi.h`).
pub const SCSI_ADSENSE_NO_SEEK_COMPLETE: UCHAR = 0x02;
/// Additional sense code: lun not ready (`scsi.h`).
pub const SCSI_ADSENSE_LUN_NOT_READY: UCHAR = 0x04;
/// Additional sense code: lun communication (`scsi.h`).
pub const SCSI_ADSENSE_LUN_COMMUNICATION: UCHAR = 0x08;
/// Additional sense code: write error (`scsi.h`).
pub const SCSI_ADSENSE_WRITE_ERROR: UCHAR = 0x0C;
/// Additional sense code: track error (`scsi.h`).
pub const SCSI_ADSENSE_TRACK_ERROR: UCHAR = 0x14;
/// Additional sense code: seek error (`scsi.h`).
pub const SCSI_ADSENSE_SEEK_ERROR: UCHAR = 0x15;
/// Additional sense code: rec data noecc (`scsi.h`).
pub const SCSI_ADSENSE_REC_DATA_NOECC: UCHAR = 0x17;
/// Additional sense code: rec data ecc (`scsi.h`).
pub const SCSI_ADSENSE_REC_DATA_ECC: UCHAR = 0x18;
/// Additional sense code: parameter list length (`scsi.h`).
pub const SCSI_ADSENSE_PARAMETER_LIST_LENGTH: UCHAR = 0x1A;
/// Additional sense code: illegal command (`scsi.h`).
pub const SCSI_ADSENSE_ILLEGAL_COMMAND: UCHAR = 0x20;
/// Additional sense code: illegal block (`scsi.h`).
pub const SCSI_ADSENSE_ILLEGAL_BLOCK: UCHAR = 0x21;
/// Additional sense code: invalid cdb (`scsi.h`).
pub const SCSI_ADSENSE_INVALID_CDB: UCHAR = 0x24;
/// Additional sense code: invalid lun (`scsi.h`).
pub const SCSI_ADSENSE_INVALID_LUN: UCHAR = 0x25;
/// Additional sense code: invalid field parameter list (`scsi.h`).
pub const SCSI_ADSENSE_INVALID_FIELD_PARAMETER_LIST: UCHAR = 0x26;
/// Additional sense code: write protect (`scsi.h`).
pub const SCSI_ADSENSE_WRITE_PROTECT: UCHAR = 0x27;
/// Additional sense code: medium changed (`scsi.h`).
pub const SCSI_ADSENSE_MEDIUM_CHANGED: UCHAR = 0x28;
/// Additional sense code: bus reset (`scsi.h`).
pub const SCSI_ADSENSE_BUS_RESET: UCHAR = 0x29;
/// Additional sense code: parameters changed (`scsi.h`).
pub const SCSI_ADSENSE_PARAMETERS_CHANGED: UCHAR = 0x2A;
/// Additional sense code: insufficient time for operation (`scsi.h`).
pub const SCSI_ADSENSE_INSUFFICIENT_TIME_FOR_OPERATION: UCHAR = 0x2E;
/// Additional sense code: invalid media (`scsi.h`).
pub const SCSI_ADSENSE_INVALID_MEDIA: UCHAR = 0x30;
/// Additional sense code: no media in device (`scsi.h`).
pub const SCSI_ADSENSE_NO_MEDIA_IN_DEVICE: UCHAR = 0x3A;
/// Additional sense code: position error (`scsi.h`).
pub const SCSI_ADSENSE_POSITION_ERROR: UCHAR = 0x3B;
/// Additional sense code: operating conditions changed (`scsi.h`).
pub const SCSI_ADSENSE_OPERATING_CONDITIONS_CHANGED: UCHAR = 0x3F;
/// Additional sense code: operator request (`scsi.h`).
pub const SCSI_ADSENSE_OPERATOR_REQUEST: UCHAR = 0x5A;
/// Additional sense code: failure prediction threshold exceeded (`scsi.h`).
pub const SCSI_ADSENSE_FAILURE_PREDICTION_THRESHOLD_EXCEEDED: UCHAR = 0x5D;
/// Additional sense code: illegal mode for this track (`scsi.h`).
pub const SCSI_ADSENSE_ILLEGAL_MODE_FOR_THIS_TRACK: UCHAR = 0x64;
/// Additional sense code: copy protection failure (`scsi.h`).
pub const SCSI_ADSENSE_COPY_PROTECTION_FAILURE: UCHAR = 0x6F;
/// Additional sense code: power calibration error (`scsi.h`).
pub const SCSI_ADSENSE_POWER_CALIBRATION_ERROR: UCHAR = 0x73;
/// Additional sense code: vendor unique (`scsi.h`).
pub const SCSI_ADSENSE_VENDOR_UNIQUE: UCHAR = 0x80;
/// Additional sense code: music area (`scsi.h`).
pub const SCSI_ADSENSE_MUSIC_AREA: UCHAR = 0xA0;
/// Additional sense code: data area (`scsi.h`).
pub const SCSI_ADSENSE_DATA_AREA: UCHAR = 0xA1;
/// Additional sense code: volume overflow (`scsi.h`).
pub const SCSI_ADSENSE_VOLUME_OVERFLOW: UCHAR = 0xA7;
/// Additional sense code: adwrite protect (`scsi.h`).
pub const SCSI_ADWRITE_PROTECT: UCHAR = SCSI_ADSENSE_WRITE_PROTECT;
/// Additional sense code: failure prediction threshold exceeded (`scsi.h`).
pub const SCSI_FAILURE_PREDICTION_THRESHOLD_EXCEEDED: UCHAR = SCSI_ADSENSE_FAILURE_PREDICTION_THRESHOLD_EXCEEDED;

// ---------------------------------------------------------------------------------------------
// Additional sense code qualifiers (SENSE_DATA.AdditionalSenseCodeQualifier)
// ---------------------------------------------------------------------------------------------

/// Additional sense code qualifier: cause not reportable (`scsi.h`).
pub const SCSI_SENSEQ_CAUSE_NOT_REPORTABLE: UCHAR = 0x00;
/// Additional sense code qualifier: becoming ready (`scsi.h`).
pub const SCSI_SENSEQ_BECOMING_READY: UCHAR = 0x01;
/// Additional sense code qualifier: init command required (`scsi.h`).
pub const SCSI_SENSEQ_INIT_COMMAND_REQUIRED: UCHAR = 0x02;
/// Additional sense code qualifier: manual intervention required (`scsi.h`).
pub const SCSI_SENSEQ_MANUAL_INTERVENTION_REQUIRED: UCHAR = 0x03;
/// Additional sense code qualifier: format in progress (`scsi.h`).
pub const SCSI_SENSEQ_FORMAT_IN_PROGRESS: UCHAR = 0x04;
/// Additional sense code qualifier: rebuild in progress (`scsi.h`).
pub const SCSI_SENSEQ_REBUILD_IN_PROGRESS: UCHAR = 0x05;
/// Additional sense code qualifier: recalculation in progress (`scsi.h`).
pub const SCSI_SENSEQ_RECALCULATION_IN_PROGRESS: UCHAR = 0x06;
/// Additional sense code qualifier: operation in progress (`scsi.h`).
pub const SCSI_SENSEQ_OPERATION_IN_PROGRESS: UCHAR = 0x07;
/// Additional sense code qualifier: long write in progress (`scsi.h`).
pub const SCSI_SENSEQ_LONG_WRITE_IN_PROGRESS: UCHAR = 0x08;
/// Additional sense code qualifier: loss of streaming (`scsi.h`).
pub const SCSI_SENSEQ_LOSS_OF_STREAMING: UCHAR = 0x09;
/// Additional sense code qualifier: padding blocks added (`scsi.h`).
pub const SCSI_SENSEQ_PADDING_BLOCKS_ADDED: UCHAR = 0x0A;
/// Additional sense code qualifier: comm failure (`scsi.h`).
pub const SCSI_SENSEQ_COMM_FAILURE: UCHAR = 0x00;
/// Additional sense code qualifier: comm timeout (`scsi.h`).
pub const SCSI_SENSEQ_COMM_TIMEOUT: UCHAR = 0x01;
/// Additional sense code qualifier: comm parity error (`scsi.h`).
pub const SCSI_SENSEQ_COMM_PARITY_ERROR: UCHAR = 0x02;
/// Additional sense code qualifier: comm crc error (`scsi.h`).
pub const SCSI_SESNEQ_COMM_CRC_ERROR: UCHAR = 0x03;
/// Additional sense code qualifier: unreachable target (`scsi.h`).
pub const SCSI_SENSEQ_UNREACHABLE_TARGET: UCHAR = 0x04;
/// Additional sense code qualifier: filemark detected (`scsi.h`).
pub const SCSI_SENSEQ_FILEMARK_DETECTED: UCHAR = 0x01;
/// Additional sense code qualifier: end of media detected (`scsi.h`).
pub const SCSI_SENSEQ_END_OF_MEDIA_DETECTED: UCHAR = 0x02;
/// Additional sense code qualifier: setmark detected (`scsi.h`).
pub const SCSI_SENSEQ_SETMARK_DETECTED: UCHAR = 0x03;
/// Additional sense code qualifier: beginning of media detected (`scsi.h`).
pub const SCSI_SENSEQ_BEGINNING_OF_MEDIA_DETECTED: UCHAR = 0x04;
/// Additional sense code qualifier: illegal element addr (`scsi.h`).
pub const SCSI_SENSEQ_ILLEGAL_ELEMENT_ADDR: UCHAR = 0x01;
/// Additional sense code qualifier: destination full (`scsi.h`).
pub const SCSI_SENSEQ_DESTINATION_FULL: UCHAR = 0x0D;
/// Additional sense code qualifier: source empty (`scsi.h`).
pub const SCSI_SENSEQ_SOURCE_EMPTY: UCHAR = 0x0E;
/// Additional sense code qualifier: incompatible media installed (`scsi.h`).
pub const SCSI_SENSEQ_INCOMPATIBLE_MEDIA_INSTALLED: UCHAR = 0x00;
/// Additional sense code qualifier: unknown format (`scsi.h`).
pub const SCSI_SENSEQ_UNKNOWN_FORMAT: UCHAR = 0x01;
/// Additional sense code qualifier: incompatible format (`scsi.h`).
pub const SCSI_SENSEQ_INCOMPATIBLE_FORMAT: UCHAR = 0x02;
/// Additional sense code qualifier: cleaning cartridge installed (`scsi.h`).
pub const SCSI_SENSEQ_CLEANING_CARTRIDGE_INSTALLED: UCHAR = 0x03;
/// Additional sense code qualifier: target operating conditions changed (`scsi.h`).
pub const SCSI_SENSEQ_TARGET_OPERATING_CONDITIONS_CHANGED: UCHAR = 0x00;
/// Additional sense code qualifier: microcode changed (`scsi.h`).
pub const SCSI_SENSEQ_MICROCODE_CHANGED: UCHAR = 0x01;
/// Additional sense code qualifier: operating definition changed (`scsi.h`).
pub const SCSI_SENSEQ_OPERATING_DEFINITION_CHANGED: UCHAR = 0x02;
/// Additional sense code qualifier: inquiry data changed (`scsi.h`).
pub const SCSI_SENSEQ_INQUIRY_DATA_CHANGED: UCHAR = 0x03;
/// Additional sense code qualifier: component device attached (`scsi.h`).
pub const SCSI_SENSEQ_COMPONENT_DEVICE_ATTACHED: UCHAR = 0x04;
/// Additional sense code qualifier: device identifier changed (`scsi.h`).
pub const SCSI_SENSEQ_DEVICE_IDENTIFIER_CHANGED: UCHAR = 0x05;
/// Additional sense code qualifier: redundancy group modified (`scsi.h`).
pub const SCSI_SENSEQ_REDUNDANCY_GROUP_MODIFIED: UCHAR = 0x06;
/// Additional sense code qualifier: redundancy group deleted (`scsi.h`).
pub const SCSI_SENSEQ_REDUNDANCY_GROUP_DELETED: UCHAR = 0x07;
/// Additional sense code qualifier: spare modified (`scsi.h`).
pub const SCSI_SENSEQ_SPARE_MODIFIED: UCHAR = 0x08;
/// Additional sense code qualifier: spare deleted (`scsi.h`).
pub const SCSI_SENSEQ_SPARE_DELETED: UCHAR = 0x09;
/// Additional sense code qualifier: volume set modified (`scsi.h`).
pub const SCSI_SENSEQ_VOLUME_SET_MODIFIED: UCHAR = 0x0A;
/// Additional sense code qualifier: volume set deleted (`scsi.h`).
pub const SCSI_SENSEQ_VOLUME_SET_DELETED: UCHAR = 0x0B;
/// Additional sense code qualifier: volume set deassigned (`scsi.h`).
pub const SCSI_SENSEQ_VOLUME_SET_DEASSIGNED: UCHAR = 0x0C;
/// Additional sense code qualifier: volume set reassigned (`scsi.h`).
pub const SCSI_SENSEQ_VOLUME_SET_REASSIGNED: UCHAR = 0x0D;
/// Additional sense code qualifier: reported luns data changed (`scsi.h`).
pub const SCSI_SENSEQ_REPORTED_LUNS_DATA_CHANGED: UCHAR = 0x0E;
/// Additional sense code qualifier: echo buffer overwritten (`scsi.h`).
pub const SCSI_SENSEQ_ECHO_BUFFER_OVERWRITTEN: UCHAR = 0x0F;
/// Additional sense code qualifier: medium loadable (`scsi.h`).
pub const SCSI_SENSEQ_MEDIUM_LOADABLE: UCHAR = 0x10;
/// Additional sense code qualifier: medium auxiliary memory accessible (`scsi.h`).
pub const SCSI_SENSEQ_MEDIUM_AUXILIARY_MEMORY_ACCESSIBLE: UCHAR = 0x11;
/// Additional sense code qualifier: state change input (`scsi.h`).
pub const SCSI_SENSEQ_STATE_CHANGE_INPUT: UCHAR = 0x00;
/// Additional sense code qualifier: medium removal (`scsi.h`).
pub const SCSI_SENSEQ_MEDIUM_REMOVAL: UCHAR = 0x01;
/// Additional sense code qualifier: write protect enable (`scsi.h`).
pub const SCSI_SENSEQ_WRITE_PROTECT_ENABLE: UCHAR = 0x02;
/// Additional sense code qualifier: write protect disable (`scsi.h`).
pub const SCSI_SENSEQ_WRITE_PROTECT_DISABLE: UCHAR = 0x03;
/// Additional sense code qualifier: authentication failure (`scsi.h`).
pub const SCSI_SENSEQ_AUTHENTICATION_FAILURE: UCHAR = 0x00;
/// Additional sense code qualifier: key not present (`scsi.h`).
pub const SCSI_SENSEQ_KEY_NOT_PRESENT: UCHAR = 0x01;
/// Additional sense code qualifier: key not established (`scsi.h`).
pub const SCSI_SENSEQ_KEY_NOT_ESTABLISHED: UCHAR = 0x02;
/// Additional sense code qualifier: read of scrambled sector without authentication (`scsi.h`).
pub const SCSI_SENSEQ_READ_OF_SCRAMBLED_SECTOR_WITHOUT_AUTHENTICATION: UCHAR = 0x03;
/// Additional sense code qualifier: media code mismatched to logical unit (`scsi.h`).
pub const SCSI_SENSEQ_MEDIA_CODE_MISMATCHED_TO_LOGICAL_UNIT: UCHAR = 0x04;
/// Additional sense code qualifier: logical unit reset count error (`scsi.h`).
pub const SCSI_SENSEQ_LOGICAL_UNIT_RESET_COUNT_ERROR: UCHAR = 0x05;
/// Additional sense code qualifier: power calibration area almost full (`scsi.h`).
pub const SCSI_SENSEQ_POWER_CALIBRATION_AREA_ALMOST_FULL: UCHAR = 0x01;
/// Additional sense code qualifier: power calibration area full (`scsi.h`).
pub const SCSI_SENSEQ_POWER_CALIBRATION_AREA_FULL: UCHAR = 0x02;
/// Additional sense code qualifier: power calibration area error (`scsi.h`).
pub const SCSI_SENSEQ_POWER_CALIBRATION_AREA_ERROR: UCHAR = 0x03;
/// Additional sense code qualifier: pma rma update failure (`scsi.h`).
pub const SCSI_SENSEQ_PMA_RMA_UPDATE_FAILURE: UCHAR = 0x04;
/// Additional sense code qualifier: pma rma is full (`scsi.h`).
pub const SCSI_SENSEQ_PMA_RMA_IS_FULL: UCHAR = 0x05;
/// Additional sense code qualifier: pma rma almost full (`scsi.h`).
pub const SCSI_SENSEQ_PMA_RMA_ALMOST_FULL: UCHAR = 0x06;

// ---------------------------------------------------------------------------------------------
// INQUIRY: vital product data pages
// ---------------------------------------------------------------------------------------------

/// Largest VPD page buffer the class driver asks for (`scsi.h`).
pub const VPD_MAX_BUFFER_SIZE: UCHAR = 0xFF;
/// Vital product data page: supported pages (`scsi.h`).
pub const VPD_SUPPORTED_PAGES: UCHAR = 0x00;
/// Vital product data page: serial number (`scsi.h`).
pub const VPD_SERIAL_NUMBER: UCHAR = 0x80;
/// Vital product data page: device identifiers (`scsi.h`).
pub const VPD_DEVICE_IDENTIFIERS: UCHAR = 0x83;
/// Vital product data page: media serial number (`scsi.h`).
pub const VPD_MEDIA_SERIAL_NUMBER: UCHAR = 0x84;
/// Vital product data page: software interface identifiers (`scsi.h`).
pub const VPD_SOFTWARE_INTERFACE_IDENTIFIERS: UCHAR = 0x84;
/// Vital product data page: network management addresses (`scsi.h`).
pub const VPD_NETWORK_MANAGEMENT_ADDRESSES: UCHAR = 0x85;
/// Vital product data page: extended inquiry data (`scsi.h`).
pub const VPD_EXTENDED_INQUIRY_DATA: UCHAR = 0x86;
/// Vital product data page: mode page policy (`scsi.h`).
pub const VPD_MODE_PAGE_POLICY: UCHAR = 0x87;
/// Vital product data page: scsi ports (`scsi.h`).
pub const VPD_SCSI_PORTS: UCHAR = 0x88;

// ---------------------------------------------------------------------------------------------
// INQUIRY: peripheral device types (INQUIRYDATA.DeviceType)
// ---------------------------------------------------------------------------------------------

/// Peripheral device type: direct access device (`scsi.h`).
pub const DIRECT_ACCESS_DEVICE: UCHAR = 0x00;
/// Peripheral device type: sequential access device (`scsi.h`).
pub const SEQUENTIAL_ACCESS_DEVICE: UCHAR = 0x01;
/// Peripheral device type: printer device (`scsi.h`).
pub const PRINTER_DEVICE: UCHAR = 0x02;
/// Peripheral device type: processor device (`scsi.h`).
pub const PROCESSOR_DEVICE: UCHAR = 0x03;
/// Peripheral device type: write once read multiple device (`scsi.h`).
pub const WRITE_ONCE_READ_MULTIPLE_DEVICE: UCHAR = 0x04;
/// Peripheral device type: read only direct access device (`scsi.h`).
pub const READ_ONLY_DIRECT_ACCESS_DEVICE: UCHAR = 0x05;
/// Peripheral device type: scanner device (`scsi.h`).
pub const SCANNER_DEVICE: UCHAR = 0x06;
/// Peripheral device type: optical device (`scsi.h`).
pub const OPTICAL_DEVICE: UCHAR = 0x07;
/// Peripheral device type: medium changer (`scsi.h`).
pub const MEDIUM_CHANGER: UCHAR = 0x08;
/// Peripheral device type: communication device (`scsi.h`).
pub const COMMUNICATION_DEVICE: UCHAR = 0x09;
/// Peripheral device type: array controller device (`scsi.h`).
pub const ARRAY_CONTROLLER_DEVICE: UCHAR = 0x0C;
/// Peripheral device type: scsi enclosure device (`scsi.h`).
pub const SCSI_ENCLOSURE_DEVICE: UCHAR = 0x0D;
/// Peripheral device type: reduced block device (`scsi.h`).
pub const REDUCED_BLOCK_DEVICE: UCHAR = 0x0E;
/// Peripheral device type: optical card reader writer device (`scsi.h`).
pub const OPTICAL_CARD_READER_WRITER_DEVICE: UCHAR = 0x0F;
/// Peripheral device type: bridge controller device (`scsi.h`).
pub const BRIDGE_CONTROLLER_DEVICE: UCHAR = 0x10;
/// Peripheral device type: object based storage device (`scsi.h`).
pub const OBJECT_BASED_STORAGE_DEVICE: UCHAR = 0x11;
/// Peripheral device type: host managed zoned block device (`scsi.h`).
pub const HOST_MANAGED_ZONED_BLOCK_DEVICE: UCHAR = 0x14;
/// Peripheral device type: unknown or no device (`scsi.h`).
pub const UNKNOWN_OR_NO_DEVICE: UCHAR = 0x1F;
/// Peripheral device type: logical unit not present device (`scsi.h`).
pub const LOGICAL_UNIT_NOT_PRESENT_DEVICE: UCHAR = 0x7F;

// ---------------------------------------------------------------------------------------------
// INQUIRY: peripheral qualifiers (INQUIRYDATA.DeviceTypeQualifier)
// ---------------------------------------------------------------------------------------------

/// Peripheral qualifier: active (`scsi.h`).
pub const DEVICE_QUALIFIER_ACTIVE: UCHAR = 0x00;
/// Peripheral qualifier: not active (`scsi.h`).
pub const DEVICE_QUALIFIER_NOT_ACTIVE: UCHAR = 0x01;
/// Peripheral qualifier: not supported (`scsi.h`).
pub const DEVICE_QUALIFIER_NOT_SUPPORTED: UCHAR = 0x03;
/// Peripheral qualifier: device connected (`scsi.h`).
pub const DEVICE_CONNECTED: UCHAR = 0x00;

// ---------------------------------------------------------------------------------------------
// MODE SENSE / MODE SELECT
// ---------------------------------------------------------------------------------------------

/// Mode page code: vendor specific (`scsi.h`).
pub const MODE_PAGE_VENDOR_SPECIFIC: UCHAR = 0x00;
/// Mode page code: error recovery (`scsi.h`).
pub const MODE_PAGE_ERROR_RECOVERY: UCHAR = 0x01;
/// Mode page code: disconnect (`scsi.h`).
pub const MODE_PAGE_DISCONNECT: UCHAR = 0x02;
/// Mode page code: format device (`scsi.h`).
pub const MODE_PAGE_FORMAT_DEVICE: UCHAR = 0x03;
/// Mode page code: mrw (`scsi.h`).
pub const MODE_PAGE_MRW: UCHAR = 0x03;
/// Mode page code: rigid geometry (`scsi.h`).
pub const MODE_PAGE_RIGID_GEOMETRY: UCHAR = 0x04;
/// Mode page code: flexibile (`scsi.h`).
pub const MODE_PAGE_FLEXIBILE: UCHAR = 0x05;
/// Mode page code: write parameters (`scsi.h`).
pub const MODE_PAGE_WRITE_PARAMETERS: UCHAR = 0x05;
/// Mode page code: verify error (`scsi.h`).
pub const MODE_PAGE_VERIFY_ERROR: UCHAR = 0x07;
/// Mode page code: caching (`scsi.h`).
pub const MODE_PAGE_CACHING: UCHAR = 0x08;
/// Mode page code: peripheral (`scsi.h`).
pub const MODE_PAGE_PERIPHERAL: UCHAR = 0x09;
/// Mode page code: control (`scsi.h`).
pub const MODE_PAGE_CONTROL: UCHAR = 0x0A;
/// Mode page code: medium types (`scsi.h`).
pub const MODE_PAGE_MEDIUM_TYPES: UCHAR = 0x0B;
/// Mode page code: notch partition (`scsi.h`).
pub const MODE_PAGE_NOTCH_PARTITION: UCHAR = 0x0C;
/// Mode page code: cd audio control (`scsi.h`).
pub const MODE_PAGE_CD_AUDIO_CONTROL: UCHAR = 0x0E;
/// Mode page code: data compress (`scsi.h`).
pub const MODE_PAGE_DATA_COMPRESS: UCHAR = 0x0F;
/// Mode page code: device config (`scsi.h`).
pub const MODE_PAGE_DEVICE_CONFIG: UCHAR = 0x10;
/// Mode page code: xor control (`scsi.h`).
pub const MODE_PAGE_XOR_CONTROL: UCHAR = 0x10;
/// Mode page code: medium partition (`scsi.h`).
pub const MODE_PAGE_MEDIUM_PARTITION: UCHAR = 0x11;
/// Mode page code: enclosure services management (`scsi.h`).
pub const MODE_PAGE_ENCLOSURE_SERVICES_MANAGEMENT: UCHAR = 0x14;
/// Mode page code: extended (`scsi.h`).
pub const MODE_PAGE_EXTENDED: UCHAR = 0x15;
/// Mode page code: extended device specific (`scsi.h`).
pub const MODE_PAGE_EXTENDED_DEVICE_SPECIFIC: UCHAR = 0x16;
/// Mode page code: cdvd feature set (`scsi.h`).
pub const MODE_PAGE_CDVD_FEATURE_SET: UCHAR = 0x18;
/// Mode page code: protocol specific lun (`scsi.h`).
pub const MODE_PAGE_PROTOCOL_SPECIFIC_LUN: UCHAR = 0x18;
/// Mode page code: protocol specific port (`scsi.h`).
pub const MODE_PAGE_PROTOCOL_SPECIFIC_PORT: UCHAR = 0x19;
/// Mode page code: power condition (`scsi.h`).
pub const MODE_PAGE_POWER_CONDITION: UCHAR = 0x1A;
/// Mode page code: lun mapping (`scsi.h`).
pub const MODE_PAGE_LUN_MAPPING: UCHAR = 0x1B;
/// Mode page code: fault reporting (`scsi.h`).
pub const MODE_PAGE_FAULT_REPORTING: UCHAR = 0x1C;
/// Mode page code: cdvd inactivity (`scsi.h`).
pub const MODE_PAGE_CDVD_INACTIVITY: UCHAR = 0x1D;
/// Mode page code: element address (`scsi.h`).
pub const MODE_PAGE_ELEMENT_ADDRESS: UCHAR = 0x1D;
/// Mode page code: transport geometry (`scsi.h`).
pub const MODE_PAGE_TRANSPORT_GEOMETRY: UCHAR = 0x1E;
/// Mode page code: device capabilities (`scsi.h`).
pub const MODE_PAGE_DEVICE_CAPABILITIES: UCHAR = 0x1F;
/// Mode page code: capabilities (`scsi.h`).
pub const MODE_PAGE_CAPABILITIES: UCHAR = 0x2A;
/// Mode sense/select value: sense return all (`scsi.h`).
pub const MODE_SENSE_RETURN_ALL: UCHAR = 0x3F;
/// Mode sense/select value: sense current values (`scsi.h`).
pub const MODE_SENSE_CURRENT_VALUES: UCHAR = 0x00;
/// Mode sense/select value: sense changeable values (`scsi.h`).
pub const MODE_SENSE_CHANGEABLE_VALUES: UCHAR = 0x40;
/// Mode sense/select value: sense default vaules (`scsi.h`).
pub const MODE_SENSE_DEFAULT_VAULES: UCHAR = 0x80;
/// Mode sense/select value: sense saved values (`scsi.h`).
pub const MODE_SENSE_SAVED_VALUES: UCHAR = 0xC0;
/// Mode sense/select value: fd single side (`scsi.h`).
pub const MODE_FD_SINGLE_SIDE: UCHAR = 0x01;
/// Mode sense/select value: fd double side (`scsi.h`).
pub const MODE_FD_DOUBLE_SIDE: UCHAR = 0x02;
/// Mode sense/select value: fd maximum type (`scsi.h`).
pub const MODE_FD_MAXIMUM_TYPE: UCHAR = 0x1E;
/// Mode sense/select value: dsp fua supported (`scsi.h`).
pub const MODE_DSP_FUA_SUPPORTED: UCHAR = 0x10;
/// Mode sense/select value: dsp write protect (`scsi.h`).
pub const MODE_DSP_WRITE_PROTECT: UCHAR = 0x80;
/// Mode sense/select value: block desc length (`scsi.h`).
pub const MODE_BLOCK_DESC_LENGTH: UCHAR = 8;
/// Mode sense/select value: header length (`scsi.h`).
pub const MODE_HEADER_LENGTH: UCHAR = 4;
/// Mode sense/select value: header length10 (`scsi.h`).
pub const MODE_HEADER_LENGTH10: UCHAR = 8;
/// Mode sense/select value: select immediate (`scsi.h`).
pub const MODE_SELECT_IMMEDIATE: UCHAR = 0x04;
/// Mode sense/select value: select pfbit (`scsi.h`).
pub const MODE_SELECT_PFBIT: UCHAR = 0x10;

// ---------------------------------------------------------------------------------------------
// Sense data (SPC fixed format)
// ---------------------------------------------------------------------------------------------

/// `SENSE_DATA`: fixed-format sense data, 18 bytes, what autosense returns in
/// `SenseInfoBuffer` (`scsi.h`; `ns-srb-_scsi_request_block` on autosense).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SENSE_DATA {
    /// `ErrorCode`, `Valid`; see the accessor methods.
    pub bitfield_1: UCHAR,
    /// Obsolete segment number.
    pub SegmentNumber: UCHAR,
    /// `SenseKey`, `Reserved`, `IncorrectLength`, `EndOfMedia`, `FileMark`.
    pub bitfield_2: UCHAR,
    /// Command-specific information, big-endian; valid when `Valid` is set.
    pub Information: [UCHAR; 4],
    /// Bytes that follow this field (10 for the 18-byte form).
    pub AdditionalSenseLength: UCHAR,
    /// Command-specific information, big-endian.
    pub CommandSpecificInformation: [UCHAR; 4],
    /// `SCSI_ADSENSE_*`.
    pub AdditionalSenseCode: UCHAR,
    /// `SCSI_SENSEQ_*`.
    pub AdditionalSenseCodeQualifier: UCHAR,
    /// Field replaceable unit code.
    pub FieldReplaceableUnitCode: UCHAR,
    /// Sense-key specific bytes.
    pub SenseKeySpecific: [UCHAR; 3],
}
/// `PSENSE_DATA` (`scsi.h`).
pub type PSENSE_DATA = *mut SENSE_DATA;

crate::bitfield::bitfields! {
    impl SENSE_DATA.bitfield_1: UCHAR {
        ErrorCode, set_ErrorCode: 0, 7;
        Valid, set_Valid: 7, 1;
    }
    impl SENSE_DATA.bitfield_2: UCHAR {
        SenseKey, set_SenseKey: 0, 4;
        Reserved, set_Reserved: 4, 1;
        IncorrectLength, set_IncorrectLength: 5, 1;
        EndOfMedia, set_EndOfMedia: 6, 1;
        FileMark, set_FileMark: 7, 1;
    }
}

// ---------------------------------------------------------------------------------------------
// INQUIRY data (SPC standard INQUIRY data)
// ---------------------------------------------------------------------------------------------

/// `VERSION_DESCRIPTOR`: one version descriptor of INQUIRY data. The WDK's `scsi.h` declares it
/// `typedef USHORT VERSION_DESCRIPTOR` (WDK 10.0.16299.0 `shared/scsi.h`); the two bytes on the
/// wire are big-endian (SPC), so read it with `u16::from_be(..)`.
pub type VERSION_DESCRIPTOR = USHORT;
/// `PVERSION_DESCRIPTOR` (`scsi.h`).
pub type PVERSION_DESCRIPTOR = *mut VERSION_DESCRIPTOR;

/// `INQUIRYDATA`: standard INQUIRY data (`scsi.h`); a device returns at least the first
/// `INQUIRYDATABUFFERSIZE` (36) bytes.
///
/// The WDK declares it under `#pragma pack(push, inquiry, 1)` with a `USHORT` array at byte 58,
/// so it is packed here too: 104 bytes, alignment 1 (WDK 10.0.16299.0 `shared/scsi.h`). Copy
/// `VersionDescriptors` out before use; a reference to it may be unaligned.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct INQUIRYDATA {
    /// `DeviceType`, `DeviceTypeQualifier`; see the accessor methods.
    pub bitfield_1: UCHAR,
    /// `DeviceTypeModifier`, `RemovableMedia`.
    pub bitfield_2: UCHAR,
    /// Version byte; also `ANSIVersion`, `ECMAVersion`, `ISOVersion` (a union in the header).
    pub Versions: UCHAR,
    /// `ResponseDataFormat`, `HiSupport`, `NormACA`, `TerminateTask`, `AERC`.
    pub bitfield_3: UCHAR,
    /// Bytes that follow this field.
    pub AdditionalLength: UCHAR,
    /// Byte 5; also `PROTECT`, `ThirdPartyCoppy`, `TPGS`, `ACC`, `SCCS` (a union in the header).
    pub Reserved: UCHAR,
    /// `Addr16`, `Addr32`, `AckReqQ`, `MediumChanger`, `MultiPort`, `EnclosureServices`, ...
    pub bitfield_4: UCHAR,
    /// `SoftReset`, `CommandQueue`, `TransferDisable`, `LinkedCommands`, `Synchronous`, ...
    pub bitfield_5: UCHAR,
    /// T10 vendor identification, ASCII, space padded.
    pub VendorId: [UCHAR; 8],
    /// Product identification, ASCII, space padded.
    pub ProductId: [UCHAR; 16],
    /// Product revision level, ASCII.
    pub ProductRevisionLevel: [UCHAR; 4],
    /// Vendor specific.
    pub VendorSpecific: [UCHAR; 20],
    /// Reserved.
    pub Reserved3: [UCHAR; 2],
    /// Version descriptors (bytes 58..74), each big-endian on the wire.
    pub VersionDescriptors: [VERSION_DESCRIPTOR; 8],
    /// Reserved: 30 bytes in the WDK, to byte 104 (SPC reserves bytes 74..96; 96.. is vendor data).
    pub Reserved4: [UCHAR; 30],
}
/// `PINQUIRYDATA` (`scsi.h`).
pub type PINQUIRYDATA = *mut INQUIRYDATA;

crate::bitfield::bitfields! {
    impl INQUIRYDATA.bitfield_1: UCHAR {
        DeviceType, set_DeviceType: 0, 5;
        DeviceTypeQualifier, set_DeviceTypeQualifier: 5, 3;
    }
    impl INQUIRYDATA.bitfield_2: UCHAR {
        DeviceTypeModifier, set_DeviceTypeModifier: 0, 7;
        RemovableMedia, set_RemovableMedia: 7, 1;
    }
    impl INQUIRYDATA.Versions: UCHAR {
        ANSIVersion, set_ANSIVersion: 0, 3;
        ECMAVersion, set_ECMAVersion: 3, 3;
        ISOVersion, set_ISOVersion: 6, 2;
    }
    impl INQUIRYDATA.bitfield_3: UCHAR {
        ResponseDataFormat, set_ResponseDataFormat: 0, 4;
        HiSupport, set_HiSupport: 4, 1;
        NormACA, set_NormACA: 5, 1;
        TerminateTask, set_TerminateTask: 6, 1;
        AERC, set_AERC: 7, 1;
    }
    impl INQUIRYDATA.Reserved: UCHAR {
        PROTECT, set_PROTECT: 0, 1;
        Reserved_1, set_Reserved_1: 1, 2;
        ThirdPartyCoppy, set_ThirdPartyCoppy: 3, 1;
        TPGS, set_TPGS: 4, 2;
        ACC, set_ACC: 6, 1;
        SCCS, set_SCCS: 7, 1;
    }
    impl INQUIRYDATA.bitfield_4: UCHAR {
        Addr16, set_Addr16: 0, 1;
        Addr32, set_Addr32: 1, 1;
        AckReqQ, set_AckReqQ: 2, 1;
        MediumChanger, set_MediumChanger: 3, 1;
        MultiPort, set_MultiPort: 4, 1;
        ReservedBit2, set_ReservedBit2: 5, 1;
        EnclosureServices, set_EnclosureServices: 6, 1;
        ReservedBit3, set_ReservedBit3: 7, 1;
    }
    impl INQUIRYDATA.bitfield_5: UCHAR {
        SoftReset, set_SoftReset: 0, 1;
        CommandQueue, set_CommandQueue: 1, 1;
        TransferDisable, set_TransferDisable: 2, 1;
        LinkedCommands, set_LinkedCommands: 3, 1;
        Synchronous, set_Synchronous: 4, 1;
        Wide16Bit, set_Wide16Bit: 5, 1;
        Wide32Bit, set_Wide32Bit: 6, 1;
        RelativeAddressing, set_RelativeAddressing: 7, 1;
    }
}

// ---------------------------------------------------------------------------------------------
// READ CAPACITY data and mode parameter headers
// ---------------------------------------------------------------------------------------------

/// `READ_CAPACITY_DATA`: READ CAPACITY(10) data; both fields big-endian on the wire (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct READ_CAPACITY_DATA {
    /// Last logical block address, big-endian.
    pub LogicalBlockAddress: ULONG,
    /// Block length in bytes, big-endian.
    pub BytesPerBlock: ULONG,
}
/// `PREAD_CAPACITY_DATA` (`scsi.h`).
pub type PREAD_CAPACITY_DATA = *mut READ_CAPACITY_DATA;

/// `READ_CAPACITY_DATA_EX`: the first 12 bytes of READ CAPACITY(16) data, big-endian; the C
/// structure is 16 bytes because `LARGE_INTEGER` is 8-aligned (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct READ_CAPACITY_DATA_EX {
    /// Last logical block address, big-endian.
    pub LogicalBlockAddress: LARGE_INTEGER,
    /// Block length in bytes, big-endian.
    pub BytesPerBlock: ULONG,
}
/// `PREAD_CAPACITY_DATA_EX` (`scsi.h`).
pub type PREAD_CAPACITY_DATA_EX = *mut READ_CAPACITY_DATA_EX;

/// `MODE_PARAMETER_HEADER`: the header of MODE SENSE(6) data (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MODE_PARAMETER_HEADER {
    /// Bytes that follow this field.
    pub ModeDataLength: UCHAR,
    /// Medium type.
    pub MediumType: UCHAR,
    /// `MODE_DSP_*` bits.
    pub DeviceSpecificParameter: UCHAR,
    /// Bytes of block descriptors that follow.
    pub BlockDescriptorLength: UCHAR,
}
/// `PMODE_PARAMETER_HEADER` (`scsi.h`).
pub type PMODE_PARAMETER_HEADER = *mut MODE_PARAMETER_HEADER;

/// `MODE_PARAMETER_HEADER10`: the header of MODE SENSE(10) data, big-endian lengths (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MODE_PARAMETER_HEADER10 {
    /// Bytes that follow this field, big-endian.
    pub ModeDataLength: [UCHAR; 2],
    /// Medium type.
    pub MediumType: UCHAR,
    /// `MODE_DSP_*` bits.
    pub DeviceSpecificParameter: UCHAR,
    /// Reserved.
    pub Reserved: [UCHAR; 2],
    /// Bytes of block descriptors that follow, big-endian.
    pub BlockDescriptorLength: [UCHAR; 2],
}
/// `PMODE_PARAMETER_HEADER10` (`scsi.h`).
pub type PMODE_PARAMETER_HEADER10 = *mut MODE_PARAMETER_HEADER10;

/// `MODE_PARAMETER_BLOCK`: a short block descriptor of mode data (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MODE_PARAMETER_BLOCK {
    /// Density code.
    pub DensityCode: UCHAR,
    /// Number of blocks, big-endian.
    pub NumberOfBlocks: [UCHAR; 3],
    /// Reserved.
    pub Reserved: UCHAR,
    /// Block length, big-endian.
    pub BlockLength: [UCHAR; 3],
}
/// `PMODE_PARAMETER_BLOCK` (`scsi.h`).
pub type PMODE_PARAMETER_BLOCK = *mut MODE_PARAMETER_BLOCK;

// ---------------------------------------------------------------------------------------------
// CDB layouts (members of the CDB union; `struct _NAME` in the header)
// ---------------------------------------------------------------------------------------------

/// `struct _CDB6GENERIC`: any 6-byte CDB (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CDB6GENERIC {
    /// `SCSIOP_*`.
    pub OperationCode: UCHAR,
    /// `Immediate`, `CommandUniqueBits`, `LogicalUnitNumber`; see the accessor methods.
    pub bitfield_1: UCHAR,
    /// Command-specific bytes.
    pub CommandUniqueBytes: [UCHAR; 3],
    /// `Link`, `Flag`, `Reserved`, `VendorUnique` (the control byte).
    pub bitfield_2: UCHAR,
}

crate::bitfield::bitfields! {
    impl CDB6GENERIC.bitfield_1: UCHAR {
        Immediate, set_Immediate: 0, 1;
        CommandUniqueBits, set_CommandUniqueBits: 1, 4;
        LogicalUnitNumber, set_LogicalUnitNumber: 5, 3;
    }
    impl CDB6GENERIC.bitfield_2: UCHAR {
        Link, set_Link: 0, 1;
        Flag, set_Flag: 1, 1;
        Reserved, set_Reserved: 2, 4;
        VendorUnique, set_VendorUnique: 6, 2;
    }
}

/// `struct _CDB6READWRITE`: READ(6) / WRITE(6); a 21-bit LBA in three pieces (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CDB6READWRITE {
    /// `SCSIOP_READ6` or `SCSIOP_WRITE6`.
    pub OperationCode: UCHAR,
    /// `LogicalBlockMsb1` (LBA bits 16..21), `LogicalUnitNumber`.
    pub bitfield_1: UCHAR,
    /// LBA bits 8..16.
    pub LogicalBlockMsb0: UCHAR,
    /// LBA bits 0..8.
    pub LogicalBlockLsb: UCHAR,
    /// Blocks to transfer; 0 means 256.
    pub TransferBlocks: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl CDB6READWRITE.bitfield_1: UCHAR {
        LogicalBlockMsb1, set_LogicalBlockMsb1: 0, 5;
        LogicalUnitNumber, set_LogicalUnitNumber: 5, 3;
    }
}

/// `struct _CDB6INQUIRY`: INQUIRY, old form (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CDB6INQUIRY {
    /// `SCSIOP_INQUIRY`.
    pub OperationCode: UCHAR,
    /// `Reserved1`, `LogicalUnitNumber`.
    pub bitfield_1: UCHAR,
    /// VPD page code.
    pub PageCode: UCHAR,
    /// Reserved.
    pub IReserved: UCHAR,
    /// Allocation length.
    pub AllocationLength: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl CDB6INQUIRY.bitfield_1: UCHAR {
        Reserved1, set_Reserved1: 0, 5;
        LogicalUnitNumber, set_LogicalUnitNumber: 5, 3;
    }
}

/// `struct _CDB6INQUIRY3`: INQUIRY as SPC-3 defines it (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CDB6INQUIRY3 {
    /// `SCSIOP_INQUIRY`.
    pub OperationCode: UCHAR,
    /// `EnableVitalProductData` (EVPD), `CommandSupportData`, `Reserved1`.
    pub bitfield_1: UCHAR,
    /// VPD page code (`VPD_*`) when EVPD is set.
    pub PageCode: UCHAR,
    /// Reserved (high byte of the allocation length in SPC-4).
    pub Reserved2: UCHAR,
    /// Allocation length.
    pub AllocationLength: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl CDB6INQUIRY3.bitfield_1: UCHAR {
        EnableVitalProductData, set_EnableVitalProductData: 0, 1;
        CommandSupportData, set_CommandSupportData: 1, 1;
        Reserved1, set_Reserved1: 2, 6;
    }
}

/// `struct _CDB10`: READ(10), WRITE(10), VERIFY(10) and other 10-byte CDBs (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CDB10 {
    /// `SCSIOP_*`.
    pub OperationCode: UCHAR,
    /// `RelativeAddress`, `Reserved1`, `ForceUnitAccess`, `DisablePageOut`, `LogicalUnitNumber`.
    pub bitfield_1: UCHAR,
    /// LBA, most significant byte.
    pub LogicalBlockByte0: UCHAR,
    /// LBA byte 1.
    pub LogicalBlockByte1: UCHAR,
    /// LBA byte 2.
    pub LogicalBlockByte2: UCHAR,
    /// LBA, least significant byte.
    pub LogicalBlockByte3: UCHAR,
    /// Reserved (group number).
    pub Reserved2: UCHAR,
    /// Transfer length, high byte.
    pub TransferBlocksMsb: UCHAR,
    /// Transfer length, low byte.
    pub TransferBlocksLsb: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl CDB10.bitfield_1: UCHAR {
        RelativeAddress, set_RelativeAddress: 0, 1;
        Reserved1, set_Reserved1: 1, 2;
        ForceUnitAccess, set_ForceUnitAccess: 3, 1;
        DisablePageOut, set_DisablePageOut: 4, 1;
        LogicalUnitNumber, set_LogicalUnitNumber: 5, 3;
    }
}

/// `struct _CDB12`: READ(12), WRITE(12) and other 12-byte CDBs (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CDB12 {
    /// `SCSIOP_*`.
    pub OperationCode: UCHAR,
    /// `RelativeAddress`, `Reserved1`, `ForceUnitAccess`, `DisablePageOut`, `LogicalUnitNumber`.
    pub bitfield_1: UCHAR,
    /// LBA, big-endian.
    pub LogicalBlock: [UCHAR; 4],
    /// Transfer length, big-endian.
    pub TransferLength: [UCHAR; 4],
    /// Reserved.
    pub Reserved2: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl CDB12.bitfield_1: UCHAR {
        RelativeAddress, set_RelativeAddress: 0, 1;
        Reserved1, set_Reserved1: 1, 2;
        ForceUnitAccess, set_ForceUnitAccess: 3, 1;
        DisablePageOut, set_DisablePageOut: 4, 1;
        LogicalUnitNumber, set_LogicalUnitNumber: 5, 3;
    }
}

/// `struct _CDB16`: READ(16), WRITE(16) and other 16-byte CDBs (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CDB16 {
    /// `SCSIOP_*`.
    pub OperationCode: UCHAR,
    /// `Reserved1`, `ForceUnitAccess`, `DisablePageOut`, `Protection`.
    pub bitfield_1: UCHAR,
    /// LBA, big-endian.
    pub LogicalBlock: [UCHAR; 8],
    /// Transfer length, big-endian.
    pub TransferLength: [UCHAR; 4],
    /// Reserved.
    pub Reserved2: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl CDB16.bitfield_1: UCHAR {
        Reserved1, set_Reserved1: 0, 3;
        ForceUnitAccess, set_ForceUnitAccess: 3, 1;
        DisablePageOut, set_DisablePageOut: 4, 1;
        Protection, set_Protection: 5, 3;
    }
}

/// `struct _MODE_SENSE`: MODE SENSE(6), as the header declares it from Windows 8 on (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MODE_SENSE {
    /// `SCSIOP_MODE_SENSE`.
    pub OperationCode: UCHAR,
    /// `Reserved1`, `Dbd`, `Reserved2`.
    pub bitfield_1: UCHAR,
    /// `PageCode`, `Pc`.
    pub bitfield_2: UCHAR,
    /// Sub-page code.
    pub SubPageCode: UCHAR,
    /// Allocation length.
    pub AllocationLength: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl MODE_SENSE.bitfield_1: UCHAR {
        Reserved1, set_Reserved1: 0, 3;
        Dbd, set_Dbd: 3, 1;
        Reserved2, set_Reserved2: 4, 4;
    }
    impl MODE_SENSE.bitfield_2: UCHAR {
        PageCode, set_PageCode: 0, 6;
        Pc, set_Pc: 6, 2;
    }
}

/// `struct _MODE_SENSE10`: MODE SENSE(10), as the header declares it from Windows 8 on (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MODE_SENSE10 {
    /// `SCSIOP_MODE_SENSE10`.
    pub OperationCode: UCHAR,
    /// `Reserved1`, `Dbd`, `LongLBAAccepted`, `Reserved2`.
    pub bitfield_1: UCHAR,
    /// `PageCode`, `Pc`.
    pub bitfield_2: UCHAR,
    /// Sub-page code.
    pub SubPageCode: UCHAR,
    /// Reserved.
    pub Reserved3: [UCHAR; 3],
    /// Allocation length, big-endian.
    pub AllocationLength: [UCHAR; 2],
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl MODE_SENSE10.bitfield_1: UCHAR {
        Reserved1, set_Reserved1: 0, 3;
        Dbd, set_Dbd: 3, 1;
        LongLBAAccepted, set_LongLBAAccepted: 4, 1;
        Reserved2, set_Reserved2: 5, 3;
    }
    impl MODE_SENSE10.bitfield_2: UCHAR {
        PageCode, set_PageCode: 0, 6;
        Pc, set_Pc: 6, 2;
    }
}

/// `struct _START_STOP`: START STOP UNIT (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct START_STOP {
    /// `SCSIOP_START_STOP_UNIT`.
    pub OperationCode: UCHAR,
    /// `Immediate`, `Reserved1`, `LogicalUnitNumber`.
    pub bitfield_1: UCHAR,
    /// Reserved.
    pub Reserved2: [UCHAR; 2],
    /// `Start`, `LoadEject`, `Reserved3`.
    pub bitfield_2: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl START_STOP.bitfield_1: UCHAR {
        Immediate, set_Immediate: 0, 1;
        Reserved1, set_Reserved1: 1, 4;
        LogicalUnitNumber, set_LogicalUnitNumber: 5, 3;
    }
    impl START_STOP.bitfield_2: UCHAR {
        Start, set_Start: 0, 1;
        LoadEject, set_LoadEject: 1, 1;
        Reserved3, set_Reserved3: 2, 6;
    }
}

/// `struct _SYNCHRONIZE_CACHE10`: SYNCHRONIZE CACHE(10) (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SYNCHRONIZE_CACHE10 {
    /// `SCSIOP_SYNCHRONIZE_CACHE`.
    pub OperationCode: UCHAR,
    /// `RelAddr`, `Immediate`, `Reserved`, `Lun`.
    pub bitfield_1: UCHAR,
    /// First block, big-endian.
    pub LogicalBlockAddress: [UCHAR; 4],
    /// Reserved.
    pub Reserved2: UCHAR,
    /// Blocks; 0 means to the end, big-endian.
    pub BlockCount: [UCHAR; 2],
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl SYNCHRONIZE_CACHE10.bitfield_1: UCHAR {
        RelAddr, set_RelAddr: 0, 1;
        Immediate, set_Immediate: 1, 1;
        Reserved, set_Reserved: 2, 3;
        Lun, set_Lun: 5, 3;
    }
}

/// `struct _SYNCHRONIZE_CACHE16`: SYNCHRONIZE CACHE(16) (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SYNCHRONIZE_CACHE16 {
    /// `SCSIOP_SYNCHRONIZE_CACHE16`.
    pub OperationCode: UCHAR,
    /// `Reserved1`, `Immediate`, `Reserved2`.
    pub bitfield_1: UCHAR,
    /// First block, big-endian.
    pub LogicalBlock: [UCHAR; 8],
    /// Blocks; 0 means to the end, big-endian.
    pub BlockCount: [UCHAR; 4],
    /// Reserved.
    pub Reserved3: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl SYNCHRONIZE_CACHE16.bitfield_1: UCHAR {
        Reserved1, set_Reserved1: 0, 1;
        Immediate, set_Immediate: 1, 1;
        Reserved2, set_Reserved2: 2, 6;
    }
}

/// `struct _READ_CAPACITY16`: SERVICE ACTION IN(16) with READ CAPACITY(16) (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct READ_CAPACITY16 {
    /// `SCSIOP_READ_CAPACITY16`.
    pub OperationCode: UCHAR,
    /// `ServiceAction` (`SERVICE_ACTION_READ_CAPACITY16`), `Reserved1`.
    pub bitfield_1: UCHAR,
    /// Obsolete LBA, big-endian.
    pub LogicalBlock: [UCHAR; 8],
    /// Allocation length, big-endian.
    pub BlockCount: [UCHAR; 4],
    /// `PMI`, `Reserved2`.
    pub bitfield_2: UCHAR,
    /// Control byte.
    pub Control: UCHAR,
}

crate::bitfield::bitfields! {
    impl READ_CAPACITY16.bitfield_1: UCHAR {
        ServiceAction, set_ServiceAction: 0, 5;
        Reserved1, set_Reserved1: 5, 3;
    }
    impl READ_CAPACITY16.bitfield_2: UCHAR {
        PMI, set_PMI: 0, 1;
        Reserved2, set_Reserved2: 1, 7;
    }
}

/// `struct _REPORT_LUNS`: REPORT LUNS (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct REPORT_LUNS {
    /// `SCSIOP_REPORT_LUNS`.
    pub OperationCode: UCHAR,
    /// Reserved (select report in byte 2).
    pub Reserved1: [UCHAR; 5],
    /// Allocation length, big-endian.
    pub AllocationLength: [UCHAR; 4],
    /// Reserved.
    pub Reserved2: [UCHAR; 1],
    /// Control byte.
    pub Control: UCHAR,
}

/// `CDB`: the views of `SCSI_REQUEST_BLOCK.Cdb` a miniport reads; the header's union has many
/// more members, all within the same 16 bytes (`scsi.h`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union CDB {
    /// Any 6-byte CDB.
    pub CDB6GENERIC: CDB6GENERIC,
    /// READ(6) / WRITE(6).
    pub CDB6READWRITE: CDB6READWRITE,
    /// INQUIRY, old form.
    pub CDB6INQUIRY: CDB6INQUIRY,
    /// INQUIRY, SPC-3 form.
    pub CDB6INQUIRY3: CDB6INQUIRY3,
    /// 10-byte CDBs.
    pub CDB10: CDB10,
    /// 12-byte CDBs.
    pub CDB12: CDB12,
    /// 16-byte CDBs.
    pub CDB16: CDB16,
    /// MODE SENSE(6).
    pub MODE_SENSE: MODE_SENSE,
    /// MODE SENSE(10).
    pub MODE_SENSE10: MODE_SENSE10,
    /// START STOP UNIT.
    pub START_STOP: START_STOP,
    /// SYNCHRONIZE CACHE(10).
    pub SYNCHRONIZE_CACHE10: SYNCHRONIZE_CACHE10,
    /// SYNCHRONIZE CACHE(16).
    pub SYNCHRONIZE_CACHE16: SYNCHRONIZE_CACHE16,
    /// READ CAPACITY(16).
    pub READ_CAPACITY16: READ_CAPACITY16,
    /// REPORT LUNS.
    pub REPORT_LUNS: REPORT_LUNS,
    /// The CDB as four ULONGs (gives the union its 4-byte alignment).
    pub AsUlong: [ULONG; 4],
    /// The CDB as bytes.
    pub AsByte: [UCHAR; 16],
}
/// `PCDB` (`scsi.h`).
pub type PCDB = *mut CDB;

impl CDB {
    /// A CDB from the 16 bytes of `SCSI_REQUEST_BLOCK.Cdb`.
    #[must_use]
    pub const fn from_bytes(AsByte: [UCHAR; 16]) -> Self {
        Self { AsByte }
    }

    /// The 16 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> [UCHAR; 16] {
        // SAFETY: every member is plain bytes or integers within the same 16 bytes, so any bit
        // pattern read as bytes is valid.
        unsafe { self.AsByte }
    }
}

impl Default for CDB {
    fn default() -> Self {
        Self { AsByte: [0; 16] }
    }
}

impl core::fmt::Debug for CDB {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CDB").field("AsByte", &self.as_bytes()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};

    #[test]
    fn wire_sizes() {
        assert_eq!(size_of::<SENSE_DATA>(), usize::from(SENSE_BUFFER_SIZE));
        assert_eq!(size_of::<INQUIRYDATA>(), 104);
        assert_eq!(align_of::<INQUIRYDATA>(), 1);
        assert_eq!((OFFSET_VER_DESCRIPTOR_ONE, OFFSET_VER_DESCRIPTOR_EIGHT), (58, 74));
        assert_eq!(size_of::<READ_CAPACITY_DATA>(), 8);
        assert_eq!(size_of::<READ_CAPACITY_DATA_EX>(), 16);
        assert_eq!((size_of::<CDB>(), align_of::<CDB>()), (16, 4));
        assert_eq!(size_of::<CDB6GENERIC>(), 6);
        assert_eq!(size_of::<CDB10>(), 10);
        assert_eq!(size_of::<CDB12>(), 12);
        assert_eq!(size_of::<CDB16>(), 16);
    }

    #[test]
    fn sense_bits() {
        let mut sense = SENSE_DATA::default();
        sense.set_ErrorCode(SCSI_SENSE_ERRORCODE_FIXED_CURRENT);
        sense.set_Valid(1);
        sense.set_SenseKey(SCSI_SENSE_ILLEGAL_REQUEST);
        assert_eq!(sense.bitfield_1, 0xF0);
        assert_eq!(sense.bitfield_2, 0x05);
        assert_eq!((sense.ErrorCode(), sense.Valid(), sense.SenseKey()), (0x70, 1, 5));
    }

    #[test]
    fn inquiry_bits() {
        let mut inquiry = INQUIRYDATA::default();
        inquiry.set_DeviceType(SEQUENTIAL_ACCESS_DEVICE);
        inquiry.set_DeviceTypeQualifier(DEVICE_QUALIFIER_NOT_SUPPORTED);
        inquiry.set_CommandQueue(1);
        inquiry.set_ANSIVersion(5);
        assert_eq!(inquiry.bitfield_1, 0x61);
        assert_eq!(inquiry.bitfield_5, 0x02);
        assert_eq!(inquiry.Versions, 5);
        assert_eq!(inquiry.DeviceTypeQualifier(), 3);
    }

    #[test]
    fn cdb_views_share_the_bytes() {
        let cdb = CDB::from_bytes([SCSIOP_READ, 0x08, 0x12, 0x34, 0x56, 0x78, 0, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0]);
        // SAFETY: every view is plain bytes; any bit pattern is valid.
        let read10 = unsafe { cdb.CDB10 };
        assert_eq!(read10.OperationCode, 0x28);
        assert_eq!(read10.ForceUnitAccess(), 1);
        assert_eq!(
            u32::from_be_bytes([
                read10.LogicalBlockByte0,
                read10.LogicalBlockByte1,
                read10.LogicalBlockByte2,
                read10.LogicalBlockByte3
            ]),
            0x1234_5678
        );
        assert_eq!(u16::from_be_bytes([read10.TransferBlocksMsb, read10.TransferBlocksLsb]), 256);
    }
}

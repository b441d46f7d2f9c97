//! From a PVSCSI completion to what the port expects in the SRB (the same for SCSI Port and
//! Storport).

use scsiport_sys as sys;

use crate::port::SrbStatus;

use crate::pvscsi::host;

/// SCSI status GOOD.
pub const SCSISTAT_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION.
pub const SCSISTAT_CHECK_CONDITION: u8 = 0x02;

/// The fields of a completion descriptor the driver uses, as read (untrusted) from the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Bytes transferred, as the device reports them (VMware; QEMU writes 0, §6.3).
    pub data_len: u64,
    /// Sense bytes the device wrote.
    pub sense_len: u32,
    /// Adapter status.
    pub host_status: u16,
    /// SCSI status (one byte in a 16-bit field).
    pub scsi_status: u16,
}

/// What to do with the SRB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Completion status.
    pub status: SrbStatus,
    /// `ScsiStatus`.
    pub scsi_status: u8,
    /// `Some(n)`: an underrun, `DataTransferLength` becomes `n`.
    pub transferred: Option<u32>,
    /// Copy this many sense bytes (already bounded by the driver's sense buffer and the
    /// request's).
    pub sense_bytes: u32,
    /// `ScsiPortLogError` / `StorPortLogError` code worth logging, if any.
    pub log: Option<u32>,
}

/// The I/O path's completion: host status SUCCESS, SCSI status GOOD, and all of the `requested`
/// bytes transferred (or, from QEMU, no length, §6.3). [`classify`] makes it
/// `SRB_STATUS_SUCCESS` with nothing else to report, and so can its caller, without walking the
/// rules.
#[must_use]
pub fn is_good(c: &Completion, requested: u32) -> bool {
    c.host_status == host::SUCCESS && c.scsi_status & 0xFF == u16::from(SCSISTAT_GOOD) && (c.data_len == 0 || c.data_len == u64::from(requested))
}

/// Maps a completion (§6) to the SRB's outcome.
///
/// - `requested`: the SRB's `DataTransferLength`; `sense_capacity`: the most sense bytes the
///   request can take (0 when autosense is disabled); `sense_buffer`: the driver's own sense
///   buffer size; `aborted`: the driver asked the device to abort this request.
/// - Host statuses follow the Linux and FreeBSD drivers' reading (§6.1): selection timeout
///   means no device; resets mean `SRB_STATUS_BUS_RESET`; an abort the driver did not ask for
///   (e.g. a hot-unplug purge) is `SRB_STATUS_BUSY`, so SCSI Port retries it.
/// - QEMU reports every residual as DATARUN with a transferred length of 0 (§6.3): with GOOD
///   status that is a successful short answer (INQUIRY with a large allocation length) whose
///   length the driver cannot know, so it completes with success (a READ or WRITE with a
///   residual is the exception, made by the caller, which knows the command: `complete_one`).
///   When the device reports a length (VMware), a shorter one is an underrun:
///   `SRB_STATUS_DATA_OVERRUN` with the reduced length, as
///   `KG:error-handling-in-scsi-miniport-drivers` requires.
/// - The SCSI status is one byte; a device writing more is taken at its low byte.
///
/// `extern "win64"`: see the doc of `device.rs`.
#[must_use]
#[allow(improper_ctypes_definitions)] // called from Rust only: see the doc of device.rs
pub extern "win64" fn classify(c: &Completion, requested: u32, sense_capacity: u8, sense_buffer: u32, aborted: bool) -> Outcome {
    #[allow(clippy::cast_possible_truncation)] // the SCSI status byte is the low byte
    let scsi_status = c.scsi_status as u8;
    if is_good(c, requested) {
        return Outcome { status: SrbStatus::Success, scsi_status, transferred: None, sense_bytes: 0, log: None };
    }
    let mut outcome = Outcome { status: SrbStatus::Success, scsi_status, transferred: None, sense_bytes: 0, log: None };
    let fail = |status: SrbStatus, log: Option<u32>| Outcome { status, scsi_status: 0, log, ..outcome };
    match c.host_status {
        host::SUCCESS
        | host::LINKED_COMMAND_COMPLETED
        | host::LINKED_COMMAND_COMPLETED_WITH_FLAG
        | host::DATARUN
        | host::DATA_UNDERRUN => {}
        // Not logged, against "Always log an error for SRB_STATUS_SELECTION_TIMEOUT"
        // (`KG:error-handling-in-scsi-miniport-drivers`): PVSCSI answers every empty target of a
        // bus scan with it (§6.4), which would put an event per empty target, up to 63, into the
        // system log at every scan. A disk that goes away is reported by the device's hot-plug
        // message (`drain_messages`), which makes the port rescan.
        host::SELTIMEO => return fail(SrbStatus::SelectionTimeout, None),
        host::NORESPONSE => return fail(SrbStatus::NoDevice, None),
        host::LUNMISMATCH => return fail(SrbStatus::InvalidLun, None),
        host::BUSRESET | host::SENTRST | host::RECVRST => return fail(SrbStatus::BusReset, None),
        host::ABORTQUEUE => {
            return fail(if aborted { SrbStatus::Aborted } else { SrbStatus::Busy }, None);
        }
        host::HATIMEOUT => return fail(SrbStatus::CommandTimeout, Some(sys::SP_REQUEST_TIMEOUT)),
        host::SCSIPARITY => return fail(SrbStatus::ParityError, Some(sys::SP_BUS_PARITY_ERROR)),
        host::BUSFREE => return fail(SrbStatus::UnexpectedBusFree, Some(sys::SP_UNEXPECTED_DISCONNECT)),
        host::INVPHASE => return fail(SrbStatus::PhaseSequenceFailure, Some(sys::SP_PROTOCOL_ERROR)),
        host::TAGREJECT | host::BADMSG => return fail(SrbStatus::MessageRejected, Some(sys::SP_PROTOCOL_ERROR)),
        host::SENSFAILED => {
            return Outcome { status: SrbStatus::RequestSenseFailed, log: None, ..outcome };
        }
        // INVPARAM, HAHARDWARE, HASOFTWARE, DISCONNECT and anything unknown: the adapter failed
        // the request.
        _ => return fail(SrbStatus::Error, Some(sys::SP_INTERNAL_ADAPTER_ERROR)),
    }

    if scsi_status != SCSISTAT_GOOD {
        outcome.status = SrbStatus::Error;
        if scsi_status == SCSISTAT_CHECK_CONDITION {
            outcome.sense_bytes = c.sense_len.min(u32::from(sense_capacity)).min(sense_buffer);
        }
        return outcome;
    }

    let reported = c.data_len;
    if reported != 0 && reported < u64::from(requested) {
        // `reported < requested <= u32::MAX`, so it fits.
        outcome.transferred = u32::try_from(reported).ok();
        outcome.status = SrbStatus::DataOverrun;
    } else if reported > u64::from(requested) {
        outcome.status = SrbStatus::DataOverrun;
        outcome.log = Some(sys::SP_PROTOCOL_ERROR);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(host_status: u16, scsi_status: u16, data_len: u64, sense_len: u32) -> Completion {
        Completion { data_len, sense_len, host_status, scsi_status }
    }

    #[test]
    fn good_completions() {
        let o = classify(&done(host::SUCCESS, 0, 0, 0), 4096, 18, 256, false);
        assert_eq!((o.status, o.transferred, o.sense_bytes), (SrbStatus::Success, None, 0));
        // QEMU: a short INQUIRY answer is DATARUN + GOOD with length 0.
        let o = classify(&done(host::DATARUN, 0, 0, 0), 255, 18, 256, false);
        assert_eq!(o.status, SrbStatus::Success);
        // VMware: full length reported.
        let o = classify(&done(host::SUCCESS, 0, 4096, 0), 4096, 18, 256, false);
        assert_eq!(o.status, SrbStatus::Success);
    }

    #[test]
    fn underrun_reduces_length_and_overrun_is_logged() {
        let o = classify(&done(host::DATA_UNDERRUN, 0, 36, 0), 255, 18, 256, false);
        assert_eq!((o.status, o.transferred), (SrbStatus::DataOverrun, Some(36)));
        let o = classify(&done(host::SUCCESS, 0, 8192, 0), 4096, 18, 256, false);
        assert_eq!((o.status, o.transferred), (SrbStatus::DataOverrun, None));
        assert!(o.log.is_some());
    }

    #[test]
    fn check_condition_returns_bounded_sense() {
        let o = classify(&done(host::DATARUN, 2, 0, 18), 4096, 18, 256, false);
        assert_eq!((o.status, o.scsi_status, o.sense_bytes), (SrbStatus::Error, 2, 18));
        // A device claiming more sense than anyone has room for.
        let o = classify(&done(host::SUCCESS, 2, 0, 0xFFFF_FFFF), 4096, 96, 256, false);
        assert_eq!(o.sense_bytes, 96);
        let o = classify(&done(host::SUCCESS, 2, 0, 0xFFFF_FFFF), 4096, 255, 64, false);
        assert_eq!(o.sense_bytes, 64);
        // Autosense disabled: nothing copied.
        let o = classify(&done(host::SUCCESS, 2, 0, 18), 4096, 0, 256, false);
        assert_eq!(o.sense_bytes, 0);
        // Other statuses carry no sense.
        let o = classify(&done(host::SUCCESS, 8, 0, 18), 4096, 18, 256, false);
        assert_eq!((o.status, o.scsi_status, o.sense_bytes), (SrbStatus::Error, 8, 0));
    }

    #[test]
    fn host_errors() {
        let st = |h| classify(&done(h, 0, 0, 0), 512, 18, 256, false).status;
        assert_eq!(st(host::SELTIMEO), SrbStatus::SelectionTimeout);
        assert_eq!(st(host::BUSRESET), SrbStatus::BusReset);
        assert_eq!(st(host::ABORTQUEUE), SrbStatus::Busy);
        assert_eq!(classify(&done(host::ABORTQUEUE, 0, 0, 0), 512, 18, 256, true).status, SrbStatus::Aborted);
        assert_eq!(st(0x7777), SrbStatus::Error);
        assert_eq!(classify(&done(host::SELTIMEO, 2, 0, 18), 512, 18, 256, false).sense_bytes, 0);
    }
}

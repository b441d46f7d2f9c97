//! The verifier: the rules a miniport must keep, their stable codes, and the bug check that stops a
//! machine when one is broken.
//!
//! Codes follow Driver Verifier's SCSI Verification where it has one (bug check 0xF1, P1 =
//! 0x1000–0x1007, `DT:scsi-verification`, `DBG:bug-check-0xf1--scsi-verifier-detected-violation`),
//! 0xD1 for the memory-monitor class (touching an SRB or its extension after completion, touching
//! `DataBuffer` without `MapBuffers`), and an emulator-specific range 0x1100–0x11FF for the
//! documented contract rules Driver Verifier does not check itself (contract §10). See
//! `VERIFIER.md` for the full table, the tests that prove each rule, and the rules that cannot be
//! checked.

use std::collections::BTreeSet;
use std::fmt;

macro_rules! rules {
    ($( $(#[$m:meta])* $name:ident = $code:literal, $fatal:literal, $line:literal, $doc:literal, $text:literal; )*) => {
        /// One verifier rule. Several rules may share a bug-check code (e.g. 0x1003 covers both a
        /// second completion and the completion of a request the miniport never had).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Rule { $( $(#[$m])* $name, )* }

        impl Rule {
            /// Every rule, in code order.
            pub const ALL: &'static [Rule] = &[$(Rule::$name,)*];

            /// The stable code: the 0xF1 P1 value, 0xD1, or an emulator code 0x11xx.
            #[must_use]
            pub const fn code(self) -> u32 { match self { $(Rule::$name => $code,)* } }

            /// Whether breaking it halts the machine (a bug check) or only records a warning.
            #[must_use]
            pub const fn fatal(self) -> bool { match self { $(Rule::$name => $fatal,)* } }

            /// The line of the contract's §10 checklist the rule comes from (0: none).
            #[must_use]
            pub const fn checklist_line(self) -> u8 { match self { $(Rule::$name => $line,)* } }

            /// The citation key of the page that states the rule (contract §0 keys).
            #[must_use]
            pub const fn doc(self) -> &'static str { match self { $(Rule::$name => $doc,)* } }

            /// The rule in one sentence.
            #[must_use]
            pub const fn text(self) -> &'static str { match self { $(Rule::$name => $text,)* } }
        }
    };
}

rules! {
    /// 0x1000: bad arguments to `ScsiPortInitialize`, or a call outside `DriverEntry`.
    InitializeArguments = 0x1000, true, 1, "DDI:nf-srb-scsiportinitialize",
        "ScsiPortInitialize must be called from DriverEntry with its two arguments and a valid HW_INITIALIZATION_DATA";
    /// 0x1001: `ScsiPortStallExecution` longer than 0.1 s.
    StallTooLong = 0x1001, true, 23, "DDI:nf-srb-scsiportstallexecution",
        "ScsiPortStallExecution must not stall longer than 0.1 s";
    /// 0x1002: a miniport routine ran too long (0.5 s; `HwScsiInitialize` 5 s; `FindAdapter` exempt).
    RoutineTooLong = 0x1002, true, 7, "DT:scsi-verification",
        "a miniport routine must return within 0.5 s (HwScsiInitialize 5 s)";
    /// 0x1003: `RequestComplete` of an SRB that was already completed.
    CompletedTwice = 0x1003, true, 9, "DDI:nf-srb-scsiportnotification",
        "each SRB must be completed exactly once";
    /// 0x1003: `RequestComplete` of an SRB the miniport does not own.
    CompletedNotOutstanding = 0x1003, true, 9, "DDI:nf-srb-scsiportnotification",
        "only an SRB the port handed to HwScsiStartIo and that is still outstanding may be completed";
    /// 0x1004: completion with an invalid `SrbStatus`.
    InvalidSrbStatus = 0x1004, true, 11, "DDI:ns-srb-_scsi_request_block",
        "a completed SRB must carry a valid SrbStatus (not PENDING, not QUEUE_FROZEN, not INTERNAL_ERROR, AUTOSENSE_VALID only with sense)";
    /// 0x1005: `NextLuRequest` while an untagged request is active on that LU.
    NextLuWithUntaggedActive = 0x1005, true, 16, "DT:scsi-verification",
        "NextLuRequest must not be signalled while an untagged request is active on that logical unit";
    /// 0x1006: `ScsiPortGetPhysicalAddress` of an address outside the permitted buffers.
    BadPhysicalAddressQuery = 0x1006, true, 19, "DDI:nf-srb-scsiportgetphysicaladdress",
        "ScsiPortGetPhysicalAddress accepts only the SRB's data or sense buffer, or (Srb NULL) the uncached extension, an SRB extension or a sense buffer";
    /// 0x1007: the reset hold ended with requests still outstanding.
    ResetHoldOutstanding = 0x1007, true, 27, "DT:scsi-verification",
        "every request outstanding at a bus reset must be completed before the reset hold ends";
    /// 0xD1: an SRB or its SRB extension was touched after completion.
    TouchedAfterCompletion = 0xD1, true, 10, "DT:scsi-verification",
        "the miniport must not touch an SRB or its SrbExtension after completing it";
    /// 0xD1: `Srb->DataBuffer` dereferenced although `MapBuffers` is FALSE.
    DataBufferNotMapped = 0xD1, true, 14, "DDI:ns-srb-_scsi_request_block",
        "Srb->DataBuffer may be dereferenced only when MapBuffers is TRUE";
    /// 0xD1: a mapped register address dereferenced directly instead of through `ScsiPortRead/Write*`.
    DirectRegisterAccess = 0xD1, true, 21, "DDI:nf-srb-scsiportgetdevicebase",
        "mapped device addresses must be accessed only through ScsiPortRead/Write{Register,Port}*";
    /// 0x1101: `DriverEntry` did not return the lowest `ScsiPortInitialize` status.
    DriverEntryReturn = 0x1101, true, 2, "KG:driverentry-of-scsi-miniport-driver (arch)",
        "DriverEntry must return the lowest value ScsiPortInitialize returned";
    /// 0x1102: `HwScsiFindAdapter` returned an undefined code or left `*Again` unset.
    FindAdapterResult = 0x1102, true, 4, "DDI:nc-srb-phw_find_adapter",
        "HwScsiFindAdapter must return an SP_RETURN_* code and set *Again";
    /// 0x1103: `HwScsiFindAdapter` left `ConfigInfo` inconsistent.
    FindAdapterConfig = 0x1103, true, 4, "DDI:ns-srb-_port_configuration_information",
        "HwScsiFindAdapter must leave ConfigInfo consistent, and free its mappings when it finds no HBA";
    /// 0x1104: `ScsiPortGetUncachedExtension` misused.
    UncachedExtension = 0x1104, true, 5, "DDI:nf-srb-scsiportgetuncachedextension",
        "ScsiPortGetUncachedExtension: only from HwScsiFindAdapter, once, bus masters only, with ConfigInfo final, under 32 KiB in dump mode";
    /// 0x1105: a FindAdapter-only service called elsewhere.
    FindAdapterOnlyService = 0x1105, true, 6, "KG:calling-scsiportxxx--from-hwscsifindadapter (arch)",
        "ValidateRange/FreeDeviceBase only from HwScsiFindAdapter; GetDeviceBase/GetBusData/SetBusDataByOffset only there or in ScsiSetRunningConfig";
    /// 0x1106: `ScsiPortGetDeviceBase` of a range the port did not assign.
    UnassignedRange = 0x1106, true, 4, "KG:use-only-supplied-resources-in-a-plug-and-play-scsi-miniport (arch)",
        "a PnP miniport may map only the access ranges the port supplied";
    /// 0x1110: `HwScsiStartIo` returned FALSE.
    StartIoReturnedFalse = 0x1110, true, 8, "KG:return-from-hwscsistartio (arch)",
        "HwScsiStartIo must return TRUE";
    /// 0x1111: an already completed SRB was passed to a port service.
    CompletedSrbPassed = 0x1111, true, 10, "DDI:nf-srb-scsiportlogerror",
        "an SRB must not be passed to any port routine after its completion";
    /// 0x1112: the miniport wrote an SRB field it must only read.
    ReadOnlySrbField = 0x1112, true, 12, "KG:modifying-srbs (arch)",
        "the miniport may write only SrbStatus, ScsiStatus, DataTransferLength, SenseInfoBufferLength (and Lun beyond 8 LUs)";
    /// 0x1113: `DataTransferLength` grew.
    TransferLengthGrown = 0x1113, true, 12, "DDI:ns-srb-_scsi_request_block",
        "DataTransferLength may only be reduced (underrun), never grown";
    /// 0x1114: an underrun reported without `SRB_STATUS_DATA_OVERRUN`.
    UnderrunStatus = 0x1114, true, 13, "KG:error-handling-in-scsi-miniport-drivers (arch)",
        "a reduced DataTransferLength must come with SRB_STATUS_DATA_OVERRUN";
    /// 0x1115: the miniport stopped asking for requests (missing `NextRequest`).
    MissingNextRequest = 0x1115, true, 15, "KG:scsi-port-i-o-model",
        "after each HwScsiStartIo the miniport must eventually signal NextRequest or NextLuRequest";
    /// 0x1116: `NextLuRequest` from a miniport without tagged queuing or multiple requests per LU.
    NextLuNotAllowed = 0x1116, true, 16, "DDI:nf-srb-scsiportnotification",
        "NextLuRequest is only for miniports with TaggedQueuing or MultipleRequestPerLu";
    /// 0x1117: `ScsiPortGetPhysicalAddress` of an SRB extension without `NeedPhysicalAddresses`.
    ExtensionNeedsPhysical = 0x1117, true, 19, "DDI:nf-srb-scsiportgetphysicaladdress",
        "translating an SRB extension address needs NeedPhysicalAddresses TRUE";
    /// 0x1118: `ScsiPortGetVirtualAddress` of a PA outside the uncached and SRB extensions.
    BadVirtualAddressQuery = 0x1118, true, 20, "DDI:nf-srb-scsiportgetvirtualaddress",
        "ScsiPortGetVirtualAddress accepts only physical addresses of the uncached extension or an SRB extension";
    /// 0x1120: register or port access outside a mapped range, or of the wrong kind.
    RegisterAccess = 0x1120, true, 21, "DDI:nf-srb-scsiportgetdevicebase",
        "ScsiPortRead/Write*: Register forms in mapped memory ranges, Port forms in mapped I/O ranges, whole access inside";
    /// 0x1121: a port service called with a foreign device extension or from no miniport routine.
    WrongDeviceExtension = 0x1121, true, 0, "DDI:nf-srb-scsiportnotification",
        "port services take the HwDeviceExtension of the adapter whose routine is running";
    /// 0x1130: the ISR claimed an interrupt its HBA did not raise.
    IsrClaimedForeign = 0x1130, true, 22, "REF:HwScsiInterrupt",
        "HwScsiInterrupt must return FALSE when its HBA did not interrupt";
    /// 0x1131: interrupt storm: the ISR keeps returning FALSE while its HBA's line stays asserted.
    InterruptStorm = 0x1131, true, 22, "REF:HwScsiInterrupt",
        "HwScsiInterrupt must dismiss its HBA's interrupt; a line that stays asserted is an interrupt storm";
    /// 0x1132: the ISR returned TRUE without clearing or masking the interrupt.
    IsrDidNotClear = 0x1132, true, 22, "REF:HwScsiInterrupt",
        "HwScsiInterrupt must clear or mask the interrupt on the HBA before returning TRUE";
    /// 0x1133: `CallEnableInterrupts` outside the ISR, twice, or in dump mode.
    CallEnableOutsideIsr = 0x1133, true, 25, "DDI:nf-srb-scsiportnotification",
        "CallEnableInterrupts only from HwScsiInterrupt, one at a time, never in the dump path";
    /// 0x1134: the ISR requested `CallEnableInterrupts` without masking the HBA's interrupt.
    EnableWithoutMask = 0x1134, true, 25, "KG:deferring-interrupt-driven-i-o-from-hwscsiinterrupt (arch)",
        "before CallEnableInterrupts the ISR must disable interrupts on the HBA";
    /// 0x1135: the enable callback returned without `CallDisableInterrupts`.
    EnableWithoutDisable = 0x1135, true, 25, "REF:HwScsiEnableInterruptsCallback",
        "HwScsiEnableInterruptsCallback must end by requesting CallDisableInterrupts";
    /// 0x1136: `CallDisableInterrupts` outside the enable callback, or twice.
    CallDisableOutsideEnable = 0x1136, true, 25, "DDI:nf-srb-scsiportnotification",
        "CallDisableInterrupts only from HwScsiEnableInterruptsCallback, exactly once";
    /// 0x1137: the disable callback left the HBA's interrupts masked.
    DisableLeftMasked = 0x1137, true, 25, "REF:HwScsiDisableInterruptsCallback",
        "HwScsiDisableInterruptsCallback must re-enable interrupts on the HBA";
    /// 0x1138: a stall over 1 ms, or over 1 ms in total in one routine (warning).
    StallOverMillisecond = 0x1138, false, 23, "DDI:nf-srb-scsiportstallexecution",
        "each stall and the total stall in one routine should stay under 1 ms";
    /// 0x1139: the ISR ran longer than 50 µs (warning; off by default).
    IsrOver50us = 0x1139, false, 24, "REF:HwScsiInterrupt",
        "interrupt processing over 50 µs should be deferred with CallEnableInterrupts";
    /// 0x113A: `RequestTimerCall` without a timer routine, or from `HwScsiFindAdapter`.
    TimerMisuse = 0x113A, true, 26, "DDI:nf-srb-scsiportnotification",
        "RequestTimerCall needs a HwScsiTimer routine";
    /// 0x113B: a notification from `HwScsiFindAdapter` (warning).
    NotificationInFindAdapter = 0x113B, false, 0, "KG:calling-scsiportxxx--from-hwscsifindadapter (arch)",
        "ScsiPortNotification from HwScsiFindAdapter is not documented (no interrupt, no I/O yet)";
    /// 0x1150: `ScsiQuerySupportedControlTypes` wrote past the list.
    ControlListOverrun = 0x1150, true, 30, "REF:HwScsiAdapterControl",
        "ScsiQuerySupportedControlTypes must not write past SupportedTypeList[MaxControlType-1]";
    /// 0x1151: `HwScsiAdapterControl` returned other than `ScsiAdapterControlSuccess`.
    ControlNotSuccess = 0x1151, true, 30, "REF:HwScsiAdapterControl",
        "HwScsiAdapterControl must return ScsiAdapterControlSuccess";
    /// 0x1152: a PnP miniport without `ScsiStopAdapter` support.
    ControlStopUnsupported = 0x1152, true, 30, "REF:HwScsiAdapterControl",
        "a PnP miniport must support ScsiQuerySupportedControlTypes and ScsiStopAdapter";
    /// 0x1153: the HBA interrupted while the interrupt was disconnected (`ScsiSetRunningConfig`, stopped).
    InterruptWhileDisconnected = 0x1153, true, 31, "REF:HwScsiAdapterControl",
        "ScsiSetRunningConfig runs with the interrupt disconnected and must not generate an interrupt";
    /// 0x1160: a notification type SCSI Port does not support.
    UnsupportedNotification = 0x1160, true, 32, "DDI:nf-srb-scsiportnotification",
        "LinkUp, LinkDown, QueryTickCount, BufferOverrunDetected, TraceNotification and unknown types are not SCSI Port notifications";
    /// 0x1161: a `NextLuRequest` or `ScsiPortCompleteRequest` with an impossible address, or a bad argument to a service.
    BadServiceArgument = 0x1161, true, 0, "DDI:nf-srb-scsiportnotification",
        "port services need valid arguments (existing PathId/TargetId/Lun, non-NULL routine pointers)";
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:#x})", self, self.code())
    }
}

/// A recorded rule break. For fatal rules this is also the [`BugCheck`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BugCheck {
    /// The stable code (`Rule::code`).
    pub code: u32,
    /// Bug-check style parameters (for 0xF1 codes, P2–P4 as Driver Verifier defines them).
    pub params: [u64; 3],
    /// The rule.
    pub rule: Rule,
    /// Citation key of the page stating the rule.
    pub doc: &'static str,
    /// What happened, naming the rule.
    pub message: String,
    /// The adapter (index in the machine) it concerns, if any.
    pub adapter: Option<usize>,
    /// The miniport routine that was running, if any.
    pub routine: Option<&'static str>,
    /// Machine time (ns) when it was detected.
    pub t_ns: u64,
}

/// A recorded rule break: a bug check, or a warning for non-fatal rules.
pub type Violation = BugCheck;

impl fmt::Display for BugCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:#x} ({:?}): {} [rule: {}; see {}] params {:#x} {:#x} {:#x}",
            if self.rule.fatal() { "bug check" } else { "warning" },
            self.code,
            self.rule,
            self.message,
            self.rule.text(),
            self.doc,
            self.params[0],
            self.params[1],
            self.params[2]
        )?;
        if let Some(r) = self.routine {
            write!(f, " in {r}")?;
        }
        if let Some(a) = self.adapter {
            write!(f, " (adapter {a})")?;
        }
        Ok(())
    }
}

impl std::error::Error for BugCheck {}

/// Verifier settings (the `VerifyLevel` analogue).
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// Master switch. Off: nothing is checked (the port still behaves the same).
    pub enabled: bool,
    /// Memory-access monitoring (`VerifyLevel` bit 0): guard completed SRBs and extensions, and
    /// hand out guarded `DataBuffer` addresses when `MapBuffers` is FALSE.
    pub memory_monitor: bool,
    /// Rules switched off (like `VerifyLevel` bits 28–31 for 0x1002 `AdapterControl`, 0x1007,
    /// 0x1005 and 0x1002 `HwInitialize`).
    pub disabled: BTreeSet<Rule>,
    /// Multiplier on the routine time limits of 0x1002 (e.g. 4.0 for slow debug builds).
    pub time_scale: f64,
    /// How long (ns, machine time) requests may wait with nothing outstanding at the miniport and
    /// no readiness signalled before 0x1115 is raised.
    pub hang_threshold_ns: u64,
    /// Consecutive unclaimed ISR calls with the HBA's line asserted that make an interrupt storm.
    pub storm_threshold: u32,
    /// Whether warnings (non-fatal rules) halt the machine too.
    pub warnings_fatal: bool,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        let mut disabled = BTreeSet::new();
        disabled.insert(Rule::IsrOver50us);
        Self {
            enabled: true,
            memory_monitor: true,
            disabled,
            time_scale: 1.0,
            hang_threshold_ns: 2_000_000_000,
            storm_threshold: 1000,
            warnings_fatal: false,
        }
    }
}

impl VerifierConfig {
    /// Everything off.
    #[must_use]
    pub fn off() -> Self {
        Self { enabled: false, memory_monitor: false, ..Self::default() }
    }

    /// Switches one rule off.
    #[must_use]
    pub fn without(mut self, rule: Rule) -> Self {
        self.disabled.insert(rule);
        self
    }

    /// Switches one rule on (e.g. the 50 µs ISR warning).
    #[must_use]
    pub fn with(mut self, rule: Rule) -> Self {
        self.disabled.remove(&rule);
        self
    }

    /// Whether a rule is checked.
    #[must_use]
    pub fn checks(&self, rule: Rule) -> bool {
        self.enabled && !self.disabled.contains(&rule)
    }
}

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
    /// 0xD1: a device extension touched after the port released it (a PnP stop/start gave the
    /// miniport a new one); seen by the full quarantine, which keeps released ones guarded.
    ReleasedExtensionTouched = 0xD1, true, 10, "DDI:ns-srb-_hw_initialization_data",
        "the miniport (and whatever runs on its behalf) must not touch a device extension after the port released it";
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

    // Storport: Driver Verifier's Storport Verification (bug check 0xF1, P1 0x2001-0x2005).

    /// 0x2001: `StorPortStallExecution` longer than 0.1 s.
    StorStallTooLong = 0x2001, true, 0, "DBG:bug-check-0xf1--scsi-verifier-detected-violation",
        "StorPortStallExecution must not stall longer than 0.1 s";
    /// 0x2002: `StorPortGetUncachedExtension` outside `HwStorFindAdapter`, for a non-bus-master, or before its `ConfigInfo` is final.
    StorUncachedExtension = 0x2002, true, 0, "DBG:bug-check-0xf1--scsi-verifier-detected-violation",
        "StorPortGetUncachedExtension only from HwStorFindAdapter, for a bus master, with SrbExtensionSize (and the DMA fields) set before the call";
    /// 0x2003: `StorPortGetDeviceBase` of an address PnP did not assign.
    StorUnassignedRange = 0x2003, true, 0, "DBG:bug-check-0xf1--scsi-verifier-detected-violation",
        "StorPortGetDeviceBase supports only the addresses the PnP manager assigned";
    /// 0x2004: the same request completed more than once.
    StorCompletedTwice = 0x2004, true, 0, "DBG:bug-check-0xf1--scsi-verifier-detected-violation",
        "a Storport miniport must complete each request once";
    /// 0x2005: an invalid address passed to a `StorPortRead/Write*` routine.
    StorRegisterAccess = 0x2005, true, 0, "DBG:bug-check-0xf1--scsi-verifier-detected-violation",
        "StorPortRead/Write*: the address must lie in a range StorPortGetDeviceBase mapped, of the routine's kind, the whole access inside";

    // Storport: the memory monitor.

    /// 0xD1: an SRB, its SRB extension or its scatter/gather list touched after completion.
    StorTouchedAfterCompletion = 0xD1, true, 0, "DDI-storport:nf-storport-storportnotification",
        "after RequestComplete the port driver owns the request: the miniport must not access it, its SRB extension or its scatter/gather list";
    /// 0xD1: `Srb->DataBuffer` dereferenced although Storport did not map it.
    StorDataBufferNotMapped = 0xD1, true, 0, "KG:use-of-mapping-buffers-in-the-storport-i-o-model",
        "Srb->DataBuffer may be dereferenced only when MapBuffers maps that request's buffer";

    // Storport: the rules its documentation states (emulator codes 0x12xx).

    /// 0x1200: `StorPortInitialize` with a NULL or foreign argument, or outside `DriverEntry`.
    StorInitializeArguments = 0x1200, true, 0, "DDI-storport:nf-storport-storportinitialize",
        "StorPortInitialize must be called from DriverEntry with its two arguments and a HW_INITIALIZATION_DATA (Storport Verification: no NULL pointer)";
    /// 0x1201: a `HW_INITIALIZATION_DATA` Storport does not accept.
    StorInitializeData = 0x1201, true, 0, "DDI-storport:ns-storport-_hw_initialization_data~r1",
        "HW_INITIALIZATION_DATA: its size, every required routine, HwDmaStarted and HwAdapterState NULL, NeedPhysicalAddresses, TaggedQueuing, AutoRequestSense and MultipleRequestPerLu TRUE, AddressTypeFlags BTL8, no virtual-miniport routine";
    /// 0x1202: `DriverEntry` did not return what `StorPortInitialize` returned.
    StorDriverEntryReturn = 0x1202, true, 0, "DDI-storport:nf-storport-storportinitialize",
        "DriverEntry returns the value StorPortInitialize returned";
    /// 0x1203: `HwStorFindAdapter` returned something else than an `SP_RETURN_*` code.
    StorFindAdapterResult = 0x1203, true, 0, "DT:storport-spreturnvalue",
        "HwStorFindAdapter returns SP_RETURN_FOUND, SP_RETURN_ERROR, SP_RETURN_BAD_CONFIG or SP_RETURN_NOT_FOUND";
    /// 0x1204: `HwStorFindAdapter` left `MaximumTransferLength` or `NumberOfPhysicalBreaks` unset.
    StorFindAdapterLimits = 0x1204, true, 0, "DT:storport-storportfindadapter",
        "HwStorFindAdapter must set MaximumTransferLength and NumberOfPhysicalBreaks";
    /// 0x1205: the miniport did not choose full duplex.
    StorFullDuplex = 0x1205, true, 0, "DT:storport-spduplex",
        "a Storport miniport must run in full-duplex mode (SynchronizationModel = StorSynchronizeFullDuplex)";
    /// 0x1206: `HwStorFindAdapter` changed what Storport owns in `ConfigInfo`, or left it inconsistent.
    StorFindAdapterConfig = 0x1206, true, 0, "DDI-storport:ns-storport-_port_configuration_information",
        "ConfigInfo: the members Storport initialises and miniports must not modify stay as they were; MaxIOsPerLun at most 255 with SCSI_REQUEST_BLOCKs; at least 16 physical breaks";
    /// 0x1207: `StorPortFreeDeviceBase` outside `HwStorFindAdapter`.
    StorFreeDeviceBaseOutside = 0x1207, true, 0, "DT:dv-storport-verification",
        "StorPortFreeDeviceBase can be called only from HwStorFindAdapter";
    /// 0x1208: `StorPortEnablePassiveInitialization` outside `HwStorInitialize`.
    StorEnablePassive = 0x1208, true, 0, "DT:storport-storportenablepassive",
        "StorPortEnablePassiveInitialization only from HwStorInitialize";
    /// 0x1209: `StorPortEnablePassiveInitialization` from a `HwStorInitialize` called by `HwStorAdapterControl`.
    StorPassiveFromHwInit = 0x1209, true, 0, "DT:storport-storportpassivefromhwinit",
        "StorPortEnablePassiveInitialization must not be reached from HwStorAdapterControl through HwStorInitialize";
    /// 0x120A: `StorPortInitializeDpc` outside `HwStorPassiveInitializeRoutine`.
    StorInitializeDpcOutside = 0x120A, true, 0, "DDI-storport:nf-storport-storportinitializedpc",
        "StorPortInitializeDpc must be called from HwStorPassiveInitializeRoutine";
    /// 0x120B: `StorPortIssueDpc` of a DPC object `StorPortInitializeDpc` did not initialise.
    StorIssueDpcUninitialized = 0x120B, true, 0, "DDI-storport:nf-storport-storportissuedpc",
        "StorPortIssueDpc needs a DPC object initialised by StorPortInitializeDpc";
    /// 0x120C: a spin lock the running routine may not take.
    StorLockNotAllowed = 0x120C, true, 0, "DDI-storport:nf-storport-storportacquirespinlock",
        "each miniport routine may acquire only the spin locks the StorPortAcquireSpinLock table allows it";
    /// 0x120D: a lock acquired while held, or against the order (`StartIo` or DPC after interrupt).
    StorLockOrder = 0x120D, true, 0, "DT:storport-storportspinlock3",
        "never acquire a lock already held, and take the DPC or StartIo lock before the interrupt lock (StorPortSynchronizeAccess takes the interrupt lock)";
    /// 0x120E: `StorPortReleaseSpinLock` of a lock not acquired.
    StorLockRelease = 0x120E, true, 0, "DT:storport-storportspinlock4",
        "StorPortReleaseSpinLock only releases a lock StorPortAcquireSpinLock acquired, with its handle";
    /// 0x120F: a routine returned holding a lock it acquired.
    StorLockHeldAtReturn = 0x120F, true, 0, "DT:storport-storportspinlock",
        "a lock acquired with StorPortAcquireSpinLock is released before the routine returns";
    /// 0x1210: `StorPortStallExecution` in `HwStorStartIo`.
    StorStallInStartIo = 0x1210, true, 0, "DT:storport-storportstartio",
        "no waits in HwStorStartIo: StorPortStallExecution belongs in HwStorBuildIo";
    /// 0x1211: a stall of a millisecond or more.
    StorStallOverMillisecond = 0x1211, true, 0, "DDI-storport:nf-storport-storportstallexecution",
        "StorPortStallExecution's delay must be less than a full millisecond";
    /// 0x1212: `HwStorBuildIo` completed its request and returned TRUE.
    StorBuildIoCompletedTrue = 0x1212, true, 0, "DDI-storport:nc-storport-hw_buildio",
        "HwStorBuildIo that completes its request returns FALSE: a completed request is not passed on";
    /// 0x1213: `HwStorBuildIo` returned FALSE and the request was not completed by its timeout.
    StorBuildIoNotCompleted = 0x1213, true, 0, "DDI-storport:nc-storport-hw_buildio",
        "after HwStorBuildIo returns FALSE the miniport must complete the request before its TimeOutValue";
    /// 0x1214: `RequestComplete` of a pointer that is no request the miniport holds.
    StorCompletedNotOutstanding = 0x1214, true, 0, "DDI-storport:nf-storport-storportnotification",
        "RequestComplete names a request the miniport was given and has not completed";
    /// 0x1215: completion with a status a miniport may not report.
    StorInvalidSrbStatus = 0x1215, true, 0, "DT:storport-storportstatuspending",
        "a request is never completed with SRB_STATUS_PENDING (nor QUEUE_FROZEN, INTERNAL_ERROR, an undefined code, or AUTOSENSE_VALID without sense)";
    /// 0x1216: a completed request passed to a port service.
    StorCompletedSrbPassed = 0x1216, true, 0, "DDI-storport:nf-storport-storportnotification",
        "after RequestComplete the miniport must not pass the SRB to another routine";
    /// 0x1217: the miniport wrote an SRB field it must only read.
    StorReadOnlySrbField = 0x1217, true, 0, "DDI-storport:nc-storport-hw_startio",
        "the miniport returns only SrbStatus, ScsiStatus, DataTransferLength (underrun) and the sense length in the SRB";
    /// 0x1218: `DataTransferLength` grew.
    StorTransferLengthGrown = 0x1218, true, 0, "KG:error-handling-in-storport-miniport-drivers",
        "DataTransferLength is set to what was actually transferred: it can only shrink";
    /// 0x1219: an underrun without `SRB_STATUS_DATA_OVERRUN`.
    StorUnderrunStatus = 0x1219, true, 0, "KG:error-handling-in-storport-miniport-drivers",
        "an underrun is reported with SRB_STATUS_DATA_OVERRUN";
    /// 0x121A: the miniport modified a scatter/gather list Storport built.
    StorScatterGatherModified = 0x121A, true, 0, "DDI-storport:nf-storport-storportgetscattergatherlist",
        "the miniport must not modify the scatter/gather list";
    /// 0x121B: `RequestTimerCall` without a `HwStorTimer` routine.
    StorTimerMisuse = 0x121B, true, 0, "DT:storport-storporttimer",
        "RequestTimerCall needs a HwStorTimer routine";
    /// 0x121C: a notification type Storport does not document.
    StorUnsupportedNotification = 0x121C, true, 0, "DT:storport-storportnotification2",
        "StorPortNotification takes only the documented notification types";
    /// 0x121D: `NextRequest` or `NextLuRequest`, which Storport ignores (warning).
    StorIgnoredNotification = 0x121D, false, 0, "KG:storport-queue-management",
        "Storport ignores NextRequest and NextLuRequest: its queues are managed with StorPortPause/Busy";
    /// 0x121E: `HwStorAdapterControl` returned other than `ScsiAdapterControlSuccess`.
    StorControlNotSuccess = 0x121E, true, 0, "DDI-storport:nc-storport-hw_adapter_control",
        "HwStorAdapterControl must return ScsiAdapterControlSuccess for all control types";
    /// 0x121F: `ScsiStopAdapter` or `ScsiRestartAdapter` not supported.
    StorControlRequired = 0x121F, true, 0, "DDI-storport:nc-storport-hw_adapter_control",
        "a Storport miniport must support ScsiStopAdapter and ScsiRestartAdapter";
    /// 0x1220: `ScsiQuerySupportedControlTypes` wrote past the list.
    StorControlListOverrun = 0x1220, true, 0, "DDI-storport:ns-storport-scsi_supported_control_type_list",
        "ScsiQuerySupportedControlTypes must not write past SupportedTypeList[MaxControlType-1]";
    /// 0x1221: `HwStorResetBus` returned with requests of that bus still outstanding.
    StorResetBusLeftRequests = 0x1221, true, 0, "DDI-storport:nc-storport-hw_reset_bus",
        "HwStorResetBus completes the SRBs HwStorStartIo received for PathId during the routine";
    /// 0x1222: `StorPortGetPhysicalAddress` misused.
    StorPhysicalAddress = 0x1222, true, 0, "DDI-storport:nf-storport-storportgetphysicaladdress",
        "StorPortGetPhysicalAddress of a data or sense buffer address needs that SRB; with an SRB, the address must be in its buffers";
    /// 0x1223: `StorPortGetVirtualAddress` of a physical address Storport did not give out.
    StorVirtualAddress = 0x1223, true, 0, "DDI-storport:nf-storport-storportgetvirtualaddress",
        "StorPortGetVirtualAddress takes a physical address of the uncached extension or an SRB extension";
    /// 0x1224: a service called with another adapter's device extension, or from no routine.
    StorWrongDeviceExtension = 0x1224, true, 0, "DDI-storport:nf-storport-storportnotification",
        "port services take the HwDeviceExtension of the adapter whose routine is running";
    /// 0x1225: a routine ran too long (the emulator uses SCSI Verification's limits: 0.5 s, `HwStorInitialize` 5 s).
    StorRoutineTooLong = 0x1225, true, 0, "DT:dv-storport-verification",
        "a miniport routine must not take an excessive time (0.5 s; HwStorInitialize 5 s)";
    /// 0x1226: the ISR claimed an interrupt its HBA did not raise.
    StorIsrClaimedForeign = 0x1226, true, 0, "DDI-storport:nc-storport-hw_interrupt",
        "HwStorInterrupt returns FALSE when its HBA did not generate the interrupt";
    /// 0x1227: interrupt storm: the ISR keeps returning FALSE while its HBA's line stays asserted.
    StorInterruptStorm = 0x1227, true, 0, "DDI-storport:nc-storport-hw_interrupt",
        "HwStorInterrupt must claim and dismiss its HBA's interrupt; a line that stays asserted is a storm";
    /// 0x1228: the ISR returned TRUE without clearing its HBA's interrupt.
    StorIsrDidNotClear = 0x1228, true, 0, "DDI-storport:nc-storport-hw_interrupt",
        "HwStorInterrupt must dismiss the interrupt on the HBA before returning TRUE";
    /// 0x1229: the ISR ran longer than 50 µs (warning; off by default).
    StorIsrOver50us = 0x1229, false, 0, "DDI-storport:nc-storport-hw_interrupt",
        "HwStorInterrupt should return within 50 microseconds, deferring the rest to a DPC";
    /// 0x122A: `StorPortCompleteRequest` (warning).
    StorCompleteRequestCalled = 0x122A, false, 0, "DT:storport-storportcompleterequest",
        "miniports should call RequestComplete for each request, not StorPortCompleteRequest";
    /// 0x122B: a bad argument to a service.
    StorBadServiceArgument = 0x122B, true, 0, "DDI-storport:nf-storport-storportacquirespinlock",
        "port services need valid arguments (a STOR_SPINLOCK value, a DPC object with DpcLock, an address GetDeviceBase returned)";
    /// 0x122C: `StorPortValidateRange`, deprecated (warning).
    StorDeprecatedRoutine = 0x122C, false, 0, "DT:storport-storportdeprecated",
        "StorPortValidateRange is deprecated (obsolete since Windows NT 4.0): miniports use the ranges PnP assigned";
}

impl Rule {
    /// The rule a check shared by both ports raises on `port`: the Storport rule that states the
    /// same thing, or the rule itself.
    #[must_use]
    pub const fn on_port(self, port: crate::Port) -> Rule {
        if matches!(port, crate::Port::ScsiPort) {
            return self;
        }
        match self {
            Rule::StallTooLong => Rule::StorStallTooLong,
            Rule::UncachedExtension => Rule::StorUncachedExtension,
            Rule::UnassignedRange => Rule::StorUnassignedRange,
            Rule::CompletedTwice => Rule::StorCompletedTwice,
            Rule::RegisterAccess => Rule::StorRegisterAccess,
            Rule::TouchedAfterCompletion => Rule::StorTouchedAfterCompletion,
            Rule::DataBufferNotMapped => Rule::StorDataBufferNotMapped,
            Rule::InitializeArguments => Rule::StorInitializeArguments,
            Rule::DriverEntryReturn => Rule::StorDriverEntryReturn,
            Rule::FindAdapterResult => Rule::StorFindAdapterResult,
            Rule::FindAdapterConfig => Rule::StorFindAdapterConfig,
            Rule::FindAdapterOnlyService => Rule::StorFreeDeviceBaseOutside,
            Rule::CompletedNotOutstanding => Rule::StorCompletedNotOutstanding,
            Rule::InvalidSrbStatus => Rule::StorInvalidSrbStatus,
            Rule::CompletedSrbPassed => Rule::StorCompletedSrbPassed,
            Rule::ReadOnlySrbField => Rule::StorReadOnlySrbField,
            Rule::TransferLengthGrown => Rule::StorTransferLengthGrown,
            Rule::UnderrunStatus => Rule::StorUnderrunStatus,
            Rule::BadPhysicalAddressQuery => Rule::StorPhysicalAddress,
            Rule::BadVirtualAddressQuery => Rule::StorVirtualAddress,
            Rule::WrongDeviceExtension => Rule::StorWrongDeviceExtension,
            Rule::RoutineTooLong => Rule::StorRoutineTooLong,
            Rule::IsrClaimedForeign => Rule::StorIsrClaimedForeign,
            Rule::InterruptStorm => Rule::StorInterruptStorm,
            Rule::IsrDidNotClear => Rule::StorIsrDidNotClear,
            Rule::IsrOver50us => Rule::StorIsrOver50us,
            Rule::StallOverMillisecond => Rule::StorStallOverMillisecond,
            Rule::TimerMisuse => Rule::StorTimerMisuse,
            Rule::ControlListOverrun => Rule::StorControlListOverrun,
            Rule::ControlNotSuccess => Rule::StorControlNotSuccess,
            Rule::ControlStopUnsupported => Rule::StorControlRequired,
            Rule::UnsupportedNotification => Rule::StorUnsupportedNotification,
            Rule::BadServiceArgument => Rule::StorBadServiceArgument,
            other => other,
        }
    }

    /// Whether the rule belongs to Storport's verifier (the SCSI Port rules are the others).
    #[must_use]
    pub const fn storport(self) -> bool {
        matches!(self.code(), 0x2000..=0x20FF | 0x1200..=0x12FF)
            || matches!(self, Rule::StorTouchedAfterCompletion | Rule::StorDataBufferNotMapped)
    }
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
#[allow(clippy::struct_excessive_bools)] // independent switches, as Driver Verifier's are
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// Master switch. Off: nothing is checked (the port still behaves the same).
    pub enabled: bool,
    /// Memory-access monitoring (`VerifyLevel` bit 0): guard completed SRBs and extensions, and
    /// hand out guarded `DataBuffer` addresses when `MapBuffers` is FALSE.
    pub memory_monitor: bool,
    /// The memory monitor's full quarantine: every completed SRB's pages (the SRB, its
    /// extension, its sense buffer, Storport's scatter/gather list) stay poisoned and guarded,
    /// out of the device's reach, and are never unmapped or reused for the machine's life (up to
    /// [`QUARANTINE_ALL_CAP`] per adapter), so that a late access by the miniport, however late,
    /// is a `TouchedAfterCompletion` violation naming the routine and the SRB instead of a write
    /// into memory the port has handed out again. Without it the last 48 are kept. Costs a
    /// mapping per page kept: for hunting, not for every run. Default: on when the environment
    /// variable `SCSIPORT_SIM_QUARANTINE` is `all` (VERIFIER.md).
    pub quarantine_all: bool,
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

/// The environment variable that switches [`VerifierConfig::quarantine_all`] on by default.
pub const QUARANTINE_ENV: &str = "SCSIPORT_SIM_QUARANTINE";

/// Completed SRBs [`VerifierConfig::quarantine_all`] keeps per adapter; past it the oldest are
/// released as without it, and counted (`Stats::quarantine_released`). A block is one to four
/// mappings and guarded ranges: this keeps two machines at a time well inside the kernel's
/// default limit of 65,530 mappings per process and the monitor's table of guarded ranges.
pub const QUARANTINE_ALL_CAP: usize = 6000;

impl Default for VerifierConfig {
    fn default() -> Self {
        let mut disabled = BTreeSet::new();
        disabled.insert(Rule::IsrOver50us);
        disabled.insert(Rule::StorIsrOver50us);
        Self {
            enabled: true,
            memory_monitor: true,
            quarantine_all: std::env::var_os(QUARANTINE_ENV).is_some_and(|v| v == "all"),
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

//! Host tests of the parts of the wrapper that need no port: the `HW_INITIALIZATION_DATA` it
//! registers, the configuration it forces and the limits it sets, the control types it reports,
//! request views, scatter/gather lists, the accessors' bounds, the device-extension layout and
//! the DPC bookkeeping; `routines` runs the trampolines against a recording stand-in for
//! `storport.sys` (`fake_port`). The routines against the real port are in
//! `tests/on_emulator.rs` (the Storport emulator), which these unit tests must not link: see
//! `fake_port`.

mod fake_port;
mod routines;

use std::vec;
use std::vec::Vec;

use scsiport_sys as sys;
use sys::storport as stor;

use crate::context::FindAdapterCtx;
use crate::extension::Extension;
use crate::miniport::{hw_initialization_data, report_supported_control_types};
use crate::*;

struct Test;
// SAFETY: a unit struct has no bytes.
unsafe impl Zeroable for Test {}

#[derive(Clone, Copy)]
#[repr(C)]
struct Ext {
    tag: u32,
    segments: u32,
}
// SAFETY: two u32s.
unsafe impl Zeroable for Ext {}
// SAFETY: two u32s without padding.
unsafe impl AnyBitPattern for Ext {}

struct StartIoState {
    outstanding: [Option<Srb<Test>>; 4],
    registers: Option<Registers>,
}
// SAFETY: `Option`s of NonNull-based handles, `None` when zero.
unsafe impl Zeroable for StartIoState {}

impl Miniport for Test {
    type StartIoState = StartIoState;
    type InterruptState = u32;
    type DpcState = u64;
    type SrbExtension = Ext;
    const HW_INIT: HwInitData =
        HwInitData { adapter_interface_type: sys::PCIBus, number_of_access_ranges: 2, map_buffers: MapBuffers::None };
    fn hw_find_adapter<'a>(
        &mut self,
        _: States<'_, Self>,
        ctx: &mut FindAdapterCtx<'a, Self>,
    ) -> Result<TransferLimits<'a>, FindAdapterError> {
        Ok(ctx.set_transfer_limits(0x10_0000, 32))
    }
    fn hw_initialize(&self, _: &mut u32, _: &mut InitializeCtx<'_, Self>) -> bool {
        true
    }
    fn hw_build_io<'a>(&self, _: &mut BuildIoCtx<'a, Self>, srb: Srb<Self>) -> BuildIo<'a, Self> {
        BuildIo::StartIo(srb)
    }
    fn hw_start_io(&self, state: &mut StartIoState, _: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        if let Some(slot) = state.outstanding.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(srb);
        }
    }
    fn hw_interrupt(&self, _: &mut u32, _: &mut InterruptCtx<'_, Self>) -> bool {
        false
    }
    fn hw_dpc(&self, _: &mut u64, _: &mut DpcCtx<'_, Self>) {}
    fn hw_reset_bus(&self, _: &mut StartIoState, _: &mut ResetBusCtx<'_, Self>, _: u8) -> bool {
        true
    }
    fn hw_adapter_control(&self, _: &mut u32, _: &mut AdapterControlCtx<'_, Self>, _: AdapterControl) {}
}

/// The same miniport with every buffer mapped.
struct Mapped;
// SAFETY: a unit struct has no bytes.
unsafe impl Zeroable for Mapped {}
impl Miniport for Mapped {
    type StartIoState = ();
    type InterruptState = ();
    type DpcState = ();
    type SrbExtension = ();
    const HW_INIT: HwInitData = HwInitData {
        adapter_interface_type: sys::PCIBus,
        number_of_access_ranges: 1,
        map_buffers: MapBuffers::AllIncludingReadWrite,
    };
    fn hw_find_adapter<'a>(
        &mut self,
        _: States<'_, Self>,
        ctx: &mut FindAdapterCtx<'a, Self>,
    ) -> Result<TransferLimits<'a>, FindAdapterError> {
        Ok(ctx.set_transfer_limits(4096, 16))
    }
    fn hw_initialize(&self, (): &mut (), _: &mut InitializeCtx<'_, Self>) -> bool {
        true
    }
    fn hw_build_io<'a>(&self, _: &mut BuildIoCtx<'a, Self>, srb: Srb<Self>) -> BuildIo<'a, Self> {
        BuildIo::StartIo(srb)
    }
    fn hw_start_io(&self, (): &mut (), _: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        let _ = srb.into_raw();
    }
    fn hw_interrupt(&self, (): &mut (), _: &mut InterruptCtx<'_, Self>) -> bool {
        false
    }
    fn hw_dpc(&self, (): &mut (), _: &mut DpcCtx<'_, Self>) {}
    fn hw_reset_bus(&self, (): &mut (), _: &mut ResetBusCtx<'_, Self>, _: u8) -> bool {
        true
    }
    fn hw_adapter_control(&self, (): &mut (), _: &mut AdapterControlCtx<'_, Self>, _: AdapterControl) {}
}

/// The same miniport with the buffers of everything but READ and WRITE mapped.
struct NonReadWriteMapped;
// SAFETY: a unit struct has no bytes.
unsafe impl Zeroable for NonReadWriteMapped {}
impl Miniport for NonReadWriteMapped {
    type StartIoState = ();
    type InterruptState = ();
    type DpcState = ();
    type SrbExtension = ();
    const HW_INIT: HwInitData = HwInitData {
        adapter_interface_type: sys::PCIBus,
        number_of_access_ranges: 1,
        map_buffers: MapBuffers::NonReadWrite,
    };
    fn hw_find_adapter<'a>(
        &mut self,
        _: States<'_, Self>,
        ctx: &mut FindAdapterCtx<'a, Self>,
    ) -> Result<TransferLimits<'a>, FindAdapterError> {
        Ok(ctx.set_transfer_limits(4096, 16))
    }
    fn hw_initialize(&self, (): &mut (), _: &mut InitializeCtx<'_, Self>) -> bool {
        true
    }
    fn hw_build_io<'a>(&self, _: &mut BuildIoCtx<'a, Self>, srb: Srb<Self>) -> BuildIo<'a, Self> {
        BuildIo::StartIo(srb)
    }
    fn hw_start_io(&self, (): &mut (), _: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        let _ = srb.into_raw();
    }
    fn hw_interrupt(&self, (): &mut (), _: &mut InterruptCtx<'_, Self>) -> bool {
        false
    }
    fn hw_dpc(&self, (): &mut (), _: &mut DpcCtx<'_, Self>) {}
    fn hw_reset_bus(&self, (): &mut (), _: &mut ResetBusCtx<'_, Self>, _: u8) -> bool {
        true
    }
    fn hw_adapter_control(&self, (): &mut (), _: &mut AdapterControlCtx<'_, Self>, _: AdapterControl) {}
}

/// Zeroed, suitably aligned memory standing in for the device extension Storport allocates.
pub(super) struct FakeExtension {
    words: Vec<u128>,
}

impl FakeExtension {
    pub(super) fn new<M: Miniport>() -> Self {
        let words = (Extension::<M>::SIZE as usize).div_ceil(16);
        Self { words: vec![0; words] }
    }

    pub(super) fn get<M: Miniport>(&mut self) -> &Extension<M> {
        // SAFETY: zero-filled, 16-byte aligned, `SIZE` bytes, alive as long as the borrow.
        unsafe { Extension::<M>::from_raw(self.words.as_mut_ptr().cast()) }.unwrap()
    }
}

#[test]
fn hw_initialization_data_is_what_storport_requires() {
    let data = hw_initialization_data::<Test>();
    assert_eq!(data.HwInitializationDataSize as usize, core::mem::size_of::<stor::HW_INITIALIZATION_DATA>());
    assert_eq!(data.AdapterInterfaceType, sys::PCIBus);
    // The required entry points, HwBuildIo and HwAdapterControl are set; the ones Storport
    // wants NULL are NULL.
    assert!(data.HwInitialize.is_some() && data.HwStartIo.is_some() && data.HwInterrupt.is_some());
    assert!(data.HwFindAdapter.is_some() && data.HwResetBus.is_some() && data.HwAdapterControl.is_some());
    assert!(data.HwBuildIo.is_some());
    assert!(data.HwDmaStarted.is_none() && data.HwAdapterState.is_none());
    assert!(data.HwFreeAdapterResources.is_none() && data.HwProcessServiceRequest.is_none());
    assert!(data.HwUnitControl.is_none());
    // Sizes come from the types.
    assert_eq!(data.DeviceExtensionSize, Extension::<Test>::SIZE);
    assert!(data.DeviceExtensionSize as usize >= core::mem::size_of::<stor::STOR_DPC>() + 40);
    assert_eq!(data.SrbExtensionSize, 8);
    assert_eq!(data.SpecificLuExtensionSize, 0);
    assert_eq!(data.NumberOfAccessRanges, 2);
    // "Must be TRUE" four times, and the SRB and address types.
    assert_eq!(
        (data.NeedPhysicalAddresses, data.TaggedQueuing, data.AutoRequestSense, data.MultipleRequestPerLu),
        (sys::TRUE, sys::TRUE, sys::TRUE, sys::TRUE)
    );
    assert_eq!(data.MapBuffers, stor::STOR_MAP_NO_BUFFERS);
    assert_eq!(data.SrbTypeFlags, stor::SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK);
    assert_eq!(data.AddressTypeFlags, stor::ADDRESS_TYPE_FLAG_BTL8);
    assert_eq!(data.FeatureSupport, 0, "not a virtual miniport");
    assert_eq!(hw_initialization_data::<Mapped>().MapBuffers, stor::STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE);
    assert_eq!(hw_initialization_data::<Mapped>().SrbExtensionSize, 0);
    assert_eq!(hw_initialization_data::<NonReadWriteMapped>().MapBuffers, stor::STOR_MAP_NON_READ_WRITE_BUFFERS);
}

pub(super) fn config() -> stor::PORT_CONFIGURATION_INFORMATION {
    // SAFETY: all-zero is a valid ConfigInfo (integers, null pointers, `None`).
    let mut c: stor::PORT_CONFIGURATION_INFORMATION = unsafe { core::mem::zeroed() };
    c.Length = u32::try_from(core::mem::size_of::<stor::PORT_CONFIGURATION_INFORMATION>()).unwrap();
    c.NumberOfPhysicalBreaks = 0x11;
    c.MaximumTransferLength = sys::SP_UNINITIALIZED_VALUE;
    c.MaxNumberOfIO = 1000;
    c.SynchronizationModel = stor::StorSynchronizeHalfDuplex;
    c.MapBuffers = stor::STOR_MAP_NON_READ_WRITE_BUFFERS;
    c
}

#[test]
fn configuration_the_wrapper_forces() {
    let mut raw = config();
    crate::config::prepare(&mut raw, MapBuffers::None);
    assert_eq!(raw.SynchronizationModel, stor::StorSynchronizeFullDuplex);
    assert_eq!((raw.ScatterGather, raw.Master), (sys::TRUE, sys::TRUE));
    assert_eq!(raw.MapBuffers, stor::STOR_MAP_NO_BUFFERS);
    assert_eq!(raw.SrbType, stor::SRB_TYPE_SCSI_REQUEST_BLOCK);
    assert_eq!(raw.AddressType, stor::STORAGE_ADDRESS_TYPE_BTL8);
    assert!(raw.HwMSInterruptRoutine.is_none());
}

#[test]
fn transfer_limits_are_set_with_their_proof() {
    let mut memory = FakeExtension::new::<Test>();
    let extension = memory.get::<Test>();
    let mut raw = config();
    let mut ctx = FindAdapterCtx::<Test>::new(extension, &mut raw, None);
    let limits = ctx.set_transfer_limits(0x4_0000, 64);
    assert_eq!((limits.maximum_transfer_length(), limits.physical_breaks()), (0x4_0000, 64));
    assert_eq!((ctx.config().maximum_transfer_length(), ctx.config().physical_breaks()), (0x4_0000, 64));
    assert_eq!((raw.MaximumTransferLength, raw.NumberOfPhysicalBreaks), (0x4_0000, 64));
}

#[test]
fn config_setters() {
    let mut ranges = [
        sys::ACCESS_RANGE { RangeStart: sys::LARGE_INTEGER { QuadPart: 0xC000 }, RangeLength: 8, RangeInMemory: 0 },
        sys::ACCESS_RANGE::default(),
        sys::ACCESS_RANGE { RangeStart: sys::LARGE_INTEGER { QuadPart: 0xFEBF_0000 }, RangeLength: 0x8000, RangeInMemory: 1 },
    ];
    let mut raw = config();
    raw.AccessRanges = ranges.as_mut_ptr();
    raw.NumberOfAccessRanges = 3;
    let mut info = ConfigInfo::new(&mut raw);
    let found: Vec<AccessRange> = info.access_ranges().collect();
    assert_eq!(found.len(), 2, "all-zero entries are not ranges");
    assert_eq!((found[1].start(), found[1].length(), found[1].in_memory()), (0xFEBF_0000, 0x8000, true));
    assert_eq!((found[0].start(), found[0].in_memory()), (0xC000, false));
    info.set_dma64();
    info.set_initiator_bus_id(9, 1);
    info.set_initiator_bus_id(0, 7);
    info.set_maximum_targets(200);
    info.set_max_ios_per_lun(4000);
    info.set_bus_reset_hold_time(0);
    assert_eq!(raw.Dma64BitAddresses, sys::SCSI_DMA64_MINIPORT_SUPPORTED);
    assert_eq!(raw.Dma32BitAddresses, 0, "Storport's to set, left alone");
    assert_eq!(raw.InitiatorBusId, [7, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(raw.MaximumNumberOfTargets, 200);
    assert_eq!(raw.MaxIOsPerLun, 255, "at most 255 with SCSI_REQUEST_BLOCKs, and at most MaxNumberOfIO");
    let mut info = ConfigInfo::new(&mut raw);
    info.set_max_number_of_io(100);
    info.set_max_ios_per_lun(200);
    assert_eq!(raw.MaxIOsPerLun, 100);
}

#[test]
fn argument_string_parsing() {
    let mut memory = FakeExtension::new::<Test>();
    let extension = memory.get::<Test>();
    let mut raw = config();
    let argument: &[u8] = b"Dump=1;queue=32 x";
    let ctx = FindAdapterCtx::<Test>::new(extension, &mut raw, Some(argument));
    assert_eq!(ctx.argument("dump"), Some(&b"1"[..]));
    assert_eq!(ctx.argument("QUEUE"), Some(&b"32"[..]));
    assert_eq!(ctx.argument("x"), None);
    assert_eq!(ctx.argument_string(), Some(argument));
    let ctx = FindAdapterCtx::<Test>::new(extension, &mut raw, None);
    assert_eq!(ctx.argument("dump"), None);
}

/// A `SCSI_SUPPORTED_CONTROL_TYPE_LIST` with room for `N` entries.
#[repr(C)]
pub(super) struct ControlList<const N: usize> {
    pub(super) max: u32,
    pub(super) entries: [u8; N],
}

#[test]
fn supported_control_types_are_query_stop_restart_within_bounds() {
    let mut list = ControlList::<8> { max: 8, entries: [0; 8] };
    // SAFETY: `list` has the list's layout with `max` entries.
    unsafe { report_supported_control_types((&raw mut list).cast()) };
    assert_eq!(list.entries, [1, 1, 1, 0, 0, 0, 0, 0]);
    // A port that allows only two entries gets two: never past SupportedTypeList[Max - 1].
    let mut list = ControlList::<4> { max: 2, entries: [0; 4] };
    // SAFETY: as above.
    unsafe { report_supported_control_types((&raw mut list).cast()) };
    assert_eq!(list.entries, [1, 1, 0, 0]);
    // SAFETY: NULL is accepted and ignored.
    unsafe { report_supported_control_types(core::ptr::null_mut()) };
}

pub(super) fn blank_srb() -> sys::SCSI_REQUEST_BLOCK {
    // SAFETY: all-zero is a valid SRB (integers and null pointers).
    let mut srb: sys::SCSI_REQUEST_BLOCK = unsafe { core::mem::zeroed() };
    srb.Length = sys::SCSI_REQUEST_BLOCK_SIZE;
    srb
}

/// Ends a test handle's life without completing it (there is no port to complete it to).
fn drop_handle<M: Miniport>(srb: Srb<M>) {
    let _ = srb.into_raw();
}

fn handle<M: Miniport>(raw: &mut sys::SCSI_REQUEST_BLOCK) -> Srb<M> {
    // SAFETY: the test owns `raw` for the handle's life.
    unsafe { Srb::from_raw(core::ptr::NonNull::from(raw)) }
}

#[test]
fn srb_views() {
    let mut raw = blank_srb();
    raw.Function = sys::SRB_FUNCTION_EXECUTE_SCSI;
    raw.TargetId = 3;
    raw.Lun = 1;
    raw.CdbLength = 10;
    raw.Cdb[0] = 0x28;
    raw.SrbFlags = sys::SRB_FLAGS_DATA_IN | sys::SRB_FLAGS_QUEUE_ACTION_ENABLE;
    raw.QueueAction = sys::SRB_ORDERED_QUEUE_TAG_REQUEST;
    raw.QueueTag = 5;
    raw.DataTransferLength = 4096;
    raw.TimeOutValue = 10;
    let srb = handle::<Test>(&mut raw);
    assert_eq!(srb.function(), SrbFunction::ExecuteScsi);
    assert_eq!(srb.address(), LuAddress { path_id: 0, target_id: 3, lun: 1 });
    assert_eq!(srb.cdb().len(), 10);
    assert_eq!(srb.data_direction(), DataDirection::In);
    assert_eq!(srb.queue_tag(), Some(5));
    assert_eq!(srb.queue_action(), Some(QueueAction::Ordered));
    assert_eq!(srb.timeout_seconds(), 10);
    drop_handle(srb);

    raw.QueueTag = sys::SP_UNTAGGED;
    raw.SrbFlags = sys::SRB_FLAGS_UNSPECIFIED_DIRECTION;
    raw.CdbLength = 200;
    let srb = handle::<Test>(&mut raw);
    assert_eq!(srb.queue_tag(), None);
    assert_eq!(srb.queue_action(), None);
    assert_eq!(srb.data_direction(), DataDirection::Unspecified);
    assert_eq!(srb.cdb().len(), 16, "a CdbLength past the array is clamped");
    drop_handle(srb);

    // The CDB as two words: the bytes past CdbLength read as zero, whatever the SRB holds there.
    raw.Cdb = core::array::from_fn(|i| u8::try_from(i).unwrap() + 1);
    for (length, low, high) in [
        (0u8, 0u64, 0u64),
        (6, 0x0605_0403_0201, 0),
        (8, 0x0807_0605_0403_0201, 0),
        (10, 0x0807_0605_0403_0201, 0x0A09),
        (16, 0x0807_0605_0403_0201, 0x100F_0E0D_0C0B_0A09),
        (200, 0x0807_0605_0403_0201, 0x100F_0E0D_0C0B_0A09),
    ] {
        raw.CdbLength = length;
        let srb = handle::<Test>(&mut raw);
        assert_eq!(srb.cdb_words(), [low, high], "CdbLength {length}");
        let bytes: Vec<u8> = srb.cdb_words().iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(&bytes[..srb.cdb().len()], srb.cdb(), "the same bytes as cdb()");
        drop_handle(srb);
    }

    for (function, expected) in [
        (sys::SRB_FUNCTION_RESET_LOGICAL_UNIT, SrbFunction::ResetLogicalUnit),
        (sys::SRB_FUNCTION_RESET_DEVICE, SrbFunction::ResetDevice),
        (sys::SRB_FUNCTION_RESET_BUS, SrbFunction::ResetBus),
        (sys::SRB_FUNCTION_POWER, SrbFunction::Power),
        (sys::SRB_FUNCTION_PNP, SrbFunction::Pnp),
        (sys::SRB_FUNCTION_DUMP_POINTERS, SrbFunction::Other(sys::SRB_FUNCTION_DUMP_POINTERS)),
    ] {
        raw.Function = function;
        let srb = handle::<Test>(&mut raw);
        assert_eq!(srb.function(), expected);
        drop_handle(srb);
    }
}

#[test]
fn srb_writable_fields_follow_the_rules() {
    let mut sense = vec![0u8; 32];
    let mut ext = Ext { tag: 0xDEAD_BEEF, segments: 0 };
    let mut raw = blank_srb();
    raw.DataTransferLength = 4096;
    raw.SenseInfoBuffer = sense.as_mut_ptr().cast();
    raw.SenseInfoBufferLength = 18;
    raw.SrbExtension = (&raw mut ext).cast();
    let mut srb = handle::<Test>(&mut raw);
    // Underrun can only shrink the length.
    srb.set_transferred(8192);
    assert_eq!(srb.data_transfer_length(), 4096);
    srb.set_transferred(512);
    assert_eq!(srb.data_transfer_length(), 512);
    // Sense is bounded by the request's buffer and sets the autosense flag.
    let kept = srb.return_sense(|buffer| {
        buffer.fill(0x70);
        100
    });
    assert_eq!(kept, 18);
    // No data buffer access with STOR_MAP_NO_BUFFERS for an EXECUTE_SCSI.
    assert!(srb.data_buffer().is_none());
    // The SRB extension is per-request state, as left there.
    let extension = srb.extension().unwrap();
    assert_eq!(extension.tag, 0xDEAD_BEEF);
    extension.segments = 3;
    srb.set_status(SrbStatus::Error);
    drop_handle(srb);
    assert_eq!(ext.segments, 3);
    assert_eq!(raw.SenseInfoBufferLength, 18);
    assert_eq!(raw.SrbStatus, sys::SRB_STATUS_ERROR | sys::SRB_STATUS_AUTOSENSE_VALID);
    assert!(sense[..18].iter().all(|b| *b == 0x70) && sense[18..].iter().all(|b| *b == 0));

    // Sense the device wrote itself: the length is clamped, zero clears the flag.
    let mut raw = blank_srb();
    raw.SenseInfoBuffer = sense.as_mut_ptr().cast();
    raw.SenseInfoBufferLength = 18;
    let mut srb = handle::<Test>(&mut raw);
    assert_eq!(srb.set_sense_returned(96), 18);
    assert_eq!(srb.set_sense_returned(0), 0);
    srb.set_status(SrbStatus::Success);
    drop_handle(srb);
    assert_eq!((raw.SenseInfoBufferLength, raw.SrbStatus), (0, sys::SRB_STATUS_SUCCESS));

    // DISABLE_AUTOSENSE: nothing is returned.
    let mut raw = blank_srb();
    raw.SenseInfoBuffer = sense.as_mut_ptr().cast();
    raw.SenseInfoBufferLength = 18;
    raw.SrbFlags = sys::SRB_FLAGS_DISABLE_AUTOSENSE;
    let mut srb = handle::<Test>(&mut raw);
    assert_eq!(srb.return_sense(|_| 18), 0);
    assert_eq!(srb.set_sense_returned(18), 0);
    srb.set_status(SrbStatus::Success);
    drop_handle(srb);
    assert_eq!(raw.SrbStatus, sys::SRB_STATUS_SUCCESS);
}

#[test]
fn data_buffer_follows_map_buffers() {
    let mut data = vec![0u8; 64];
    let mut raw = blank_srb();
    raw.Function = sys::SRB_FUNCTION_EXECUTE_SCSI;
    raw.DataBuffer = data.as_mut_ptr().cast();
    raw.DataTransferLength = 64;
    // STOR_MAP_NO_BUFFERS: not for EXECUTE_SCSI, always for IO_CONTROL.
    let mut srb = handle::<Test>(&mut raw);
    assert!(srb.data_buffer().is_none());
    drop_handle(srb);
    raw.Function = sys::SRB_FUNCTION_IO_CONTROL;
    let mut srb = handle::<Test>(&mut raw);
    assert_eq!(srb.data_buffer().map(|buffer| buffer.len()), Some(64));
    drop_handle(srb);
    // STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE: every buffer, unless Storport left it NULL.
    raw.Function = sys::SRB_FUNCTION_EXECUTE_SCSI;
    let mut srb = handle::<Mapped>(&mut raw);
    srb.data_buffer().unwrap().fill(0xA5);
    drop_handle(srb);
    assert!(data.iter().all(|b| *b == 0xA5));
    raw.DataBuffer = core::ptr::null_mut();
    let mut srb = handle::<Mapped>(&mut raw);
    assert!(srb.data_buffer().is_none());
    // No SRB extension for a zero-sized one.
    assert!(srb.extension().is_none());
    drop_handle(srb);
    // STOR_MAP_NON_READ_WRITE_BUFFERS: a READ CAPACITY's buffer, not a READ(10)'s or a WRITE(16)'s.
    raw.DataBuffer = data.as_mut_ptr().cast();
    raw.CdbLength = 10;
    for (opcode, mapped) in [(0x25u8, true), (0x12, true), (0x28, false), (0x8A, false), (0x08, false)] {
        raw.Cdb[0] = opcode;
        let mut srb = handle::<NonReadWriteMapped>(&mut raw);
        assert_eq!(srb.data_buffer().is_some(), mapped, "opcode {opcode:#x}");
        drop_handle(srb);
    }
}

#[test]
fn storage_request_blocks_are_recognised() {
    let mut raw = blank_srb();
    raw.Function = sys::SRB_FUNCTION_STORAGE_REQUEST_BLOCK;
    // SAFETY: `raw` is a valid request block.
    assert!(unsafe { crate::srb::is_storage_request_block(core::ptr::NonNull::from(&mut raw)) });
    raw.Function = sys::SRB_FUNCTION_EXECUTE_SCSI;
    // SAFETY: as above.
    assert!(!unsafe { crate::srb::is_storage_request_block(core::ptr::NonNull::from(&mut raw)) });
}

#[test]
fn abort_target_is_next_srb() {
    let mut target = blank_srb();
    let mut raw = blank_srb();
    raw.Function = sys::SRB_FUNCTION_ABORT_COMMAND;
    raw.NextSrb = &raw mut target;
    let abort = handle::<Test>(&mut raw);
    let victim = handle::<Test>(&mut target);
    assert_eq!(abort.function(), SrbFunction::AbortCommand);
    assert_eq!(abort.abort_target(), Some(victim.id()));
    drop_handle(abort);
    drop_handle(victim);
}

/// A `STOR_SCATTER_GATHER_LIST` with three elements, as Storport lays it out.
#[repr(C)]
pub(super) struct ThreeElements {
    pub(super) number_of_elements: u32,
    pub(super) reserved: usize,
    pub(super) list: [stor::STOR_SCATTER_GATHER_ELEMENT; 3],
}

#[test]
fn scatter_gather_list_views_storport_s_list() {
    let element = |address: i64, length: u32| stor::STOR_SCATTER_GATHER_ELEMENT {
        PhysicalAddress: sys::LARGE_INTEGER { QuadPart: address },
        Length: length,
        Reserved: 0,
    };
    let mut raw = ThreeElements {
        number_of_elements: 2,
        reserved: 0,
        list: [element(0x1_0000_1000, 0x1000), element(0x2000, 0x200), element(0xDEAD, 0xDEAD)],
    };
    // SAFETY: `raw` has the list's layout and outlives the view.
    let list = unsafe { ScatterGatherList::from_raw((&raw mut raw).cast()) }.unwrap();
    assert_eq!(list.len(), 2, "NumberOfElements, not the storage behind it");
    assert_eq!(list.total_length(), 0x1200);
    let segments: Vec<PhysicalSegment> = list.iter().collect();
    assert_eq!(
        segments,
        [PhysicalSegment { address: 0x1_0000_1000, length: 0x1000 }, PhysicalSegment { address: 0x2000, length: 0x200 }]
    );
    // SAFETY: NULL is "no list".
    assert!(unsafe { ScatterGatherList::from_raw(core::ptr::null_mut()) }.is_none());
}

#[test]
fn common_buffer_is_bounds_checked() {
    let mut backing: Vec<u64> = vec![0; 64];
    let va = core::ptr::NonNull::new(backing.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: the vector outlives the buffer; 512 bytes, "physically" at 0x1000.
    let buffer = unsafe { CommonBuffer::new(va, 0x1000, 512) };
    assert_eq!(buffer.write_u32(508, 0x1122_3344), Some(()));
    assert_eq!(buffer.read_u32(508), Some(0x1122_3344));
    assert_eq!(buffer.write_u32(510, 0), None, "straddles the end");
    assert_eq!(buffer.read_u32(2), None, "misaligned");
    assert_eq!(buffer.write_u64(512, 0), None);
    assert_eq!(buffer.pa_at(511), Some(0x11FF));
    assert_eq!(buffer.pa_at(512), None);
    let window = buffer.window(256, 256).unwrap();
    assert_eq!(window.pa(), 0x1100);
    assert_eq!(window.write_bytes(250, &[1, 2, 3, 4, 5, 6]), Some(()));
    assert_eq!(window.write_bytes(251, &[1, 2, 3, 4, 5, 6]), None);
    let mut out = [0u8; 6];
    assert_eq!(buffer.read_bytes(506, &mut out), Some(()));
    assert_eq!(out, [1, 2, 3, 4, 5, 6]);
    assert!(buffer.window(300, 300).is_none());
    // Runs of words: all or nothing, one check.
    assert_eq!(buffer.write_u64s(496, [1u64, 2].into_iter()), Some(()));
    assert_eq!(buffer.read_u64s::<2>(496), Some([1, 2]));
    assert_eq!(buffer.read_u64(504), Some(2));
    assert_eq!(buffer.write_u64s(504, [7u64, 8].into_iter()), None, "the second word is past the end");
    assert_eq!(buffer.read_u64(504), Some(2), "and nothing was written");
    assert_eq!(buffer.write_u64s(4, [7u64].into_iter()), None, "misaligned");
    assert_eq!(buffer.read_u64s::<1>(4), None, "misaligned");
    assert_eq!(buffer.read_u64s::<3>(496), None);
    assert_eq!(buffer.read_u64s::<0>(512), Some([]));
    // A run checked once, written in place word by word.
    let words = buffer.words::<2>(496).unwrap();
    words.write::<1>(9);
    words.write::<0>(8);
    assert_eq!(buffer.read_u64s::<2>(496), Some([8, 9]));
    assert!(buffer.words::<2>(504).is_none(), "the second word is past the end");
    assert!(buffer.words::<1>(4).is_none(), "misaligned");
    assert!(buffer.words::<1>(u32::MAX).is_none());
    assert_eq!(buffer.zero(0, 512), Some(()));
    assert!(backing.iter().all(|w| *w == 0));
}

#[test]
fn registers_refuse_offsets_outside_the_mapping() {
    let mut window = [0u32; 8];
    let base = core::ptr::NonNull::new(window.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: only `checked` is exercised, which computes addresses and touches nothing.
    let registers = unsafe { Registers::new(core::ptr::null_mut(), base, 32, Space::Memory) };
    assert_eq!(registers.checked::<u32>(28).map(|p| p as usize), Some(base.as_ptr() as usize + 28));
    assert_eq!(registers.checked::<u32>(30), None, "misaligned");
    assert_eq!(registers.checked::<u32>(32), None, "past the end");
    assert_eq!(registers.checked::<u16>(30).map(|p| p as usize), Some(base.as_ptr() as usize + 30));
    assert_eq!(registers.checked::<u32>(u32::MAX - 1), None, "no overflow");
    assert_eq!(registers.space(), Space::Memory);
    // SAFETY: as above.
    let ports = unsafe { Registers::new(core::ptr::null_mut(), base, 8, Space::Io) };
    assert_eq!(ports.space(), Space::Io);
    assert_eq!(ports.len(), 8);
}

#[test]
fn zeroed_options_are_none() {
    // The property the `Zeroable` impls rely on.
    // SAFETY: asserting exactly that all-zero is a valid (None) value.
    let regs: Option<Registers> = unsafe { core::mem::zeroed() };
    assert!(regs.is_none());
    // SAFETY: as above.
    let buffer: Option<CommonBuffer> = unsafe { core::mem::zeroed() };
    assert!(buffer.is_none());
    // SAFETY: as above.
    let srb: Option<Srb<Test>> = unsafe { core::mem::zeroed() };
    assert!(srb.is_none());
}

#[test]
fn device_extension_layout() {
    let mut memory = FakeExtension::new::<Test>();
    let extension = memory.get::<Test>();
    // Zero-filled memory is a valid extension: no DPC yet, empty state.
    assert_eq!(extension.dpc_flags(), (false, false));
    // SAFETY: the test holds no other reference into the extension.
    let (_, start_io, interrupt, dpc) = unsafe { extension.all() };
    assert!(start_io.outstanding.iter().all(Option::is_none) && start_io.registers.is_none());
    assert_eq!((*interrupt, *dpc), (0, 0));
    // The DPC object sits first, pointer-aligned, where Storport writes it.
    assert_eq!(extension.dpc_object().cast::<u8>(), extension.as_raw().cast::<u8>());
    assert!(Extension::<Test>::SIZE as usize >= core::mem::size_of::<stor::STOR_DPC>());
}

#[test]
fn one_dpc_instance_at_a_time() {
    let mut memory = FakeExtension::new::<Test>();
    let extension = memory.get::<Test>();
    let mut first = extension.try_dpc_state().unwrap();
    *first.state() = 7;
    assert!(extension.try_dpc_state().is_none(), "a second instance does not get the DPC state");
    // A failed attempt leaves the flag with its holder.
    assert!(extension.try_dpc_state().is_none(), "a failed attempt released the holder's flag");
    drop(first);
    let mut again = extension.try_dpc_state().unwrap();
    assert_eq!(*again.state(), 7);
}

#[test]
fn a_dpc_asked_for_before_initialisation_is_remembered() {
    let mut memory = FakeExtension::new::<Test>();
    let extension = memory.get::<Test>();
    // Before StorPortInitializeDpc: nothing is queued (the object is zeros), the request is
    // noted and reported as pending, not refused.
    assert!(extension.issue_dpc());
    assert_eq!(extension.dpc_flags(), (false, true));
}

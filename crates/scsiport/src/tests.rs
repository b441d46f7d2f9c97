//! Host tests of the parts of the wrapper that need no port: request views, the common buffer
//! accessors, `ConfigInfo` rules and argument parsing. The routines' behaviour against a port is
//! tested end to end by the driver's integration tests on the SCSI Port emulator.

use std::vec;
use std::vec::Vec;

use scsiport_sys as sys;

use crate::context::FindAdapterCtx;
use crate::*;

struct Test;
// SAFETY: a unit struct has no bytes.
unsafe impl Zeroable for Test {}

#[derive(Clone, Copy)]
#[repr(C)]
struct Ext {
    tag: u32,
}
// SAFETY: a plain u32 wrapper.
unsafe impl Zeroable for Ext {}
// SAFETY: a plain u32 wrapper without padding.
unsafe impl AnyBitPattern for Ext {}

impl Miniport for Test {
    type SrbExtension = Ext;
    type LuExtension = ();
    const HW_INIT: HwInitData = HwInitData {
        adapter_interface_type: sys::PCIBus,
        vendor_id: b"15AD",
        device_id: b"07C0",
        number_of_access_ranges: 1,
        map_buffers: false,
        need_physical_addresses: true,
        tagged_queuing: true,
        auto_request_sense: true,
        multiple_request_per_lu: true,
        receive_event: false,
    };
    const CONTROL_TYPES: ControlTypes = ControlTypes { stop: true, restart: true, set_boot_config: false, set_running_config: false };
    fn hw_find_adapter(&mut self, _: &mut FindAdapterCtx<'_, Self>) -> Result<(), FindAdapterError> {
        Ok(())
    }
    fn hw_initialize(&mut self, _: &mut InitializeCtx<'_, Self>) -> bool {
        true
    }
    fn hw_start_io(&mut self, _: &mut StartIoCtx<'_, Self>, srb: Srb<Self>) {
        let _ = srb;
    }
    fn hw_interrupt(&mut self, _: InterruptCtx<'_, Self>) -> InterruptResult {
        InterruptResult::NotMine
    }
    fn hw_enable_interrupts_callback(&mut self, ctx: EnableInterruptsCtx<'_, Self>) -> DisableInterruptsRequested {
        ctx.call_disable_interrupts()
    }
    fn hw_disable_interrupts_callback(&mut self, _: &mut DisableInterruptsCtx<'_, Self>) -> bool {
        true
    }
    fn hw_reset_bus(&mut self, _: &mut ResetBusCtx<'_, Self>, _: u8) -> bool {
        true
    }
}

fn blank_srb() -> sys::SCSI_REQUEST_BLOCK {
    // SAFETY: all-zero is a valid SRB (integers and null pointers).
    let mut srb: sys::SCSI_REQUEST_BLOCK = unsafe { core::mem::zeroed() };
    srb.Length = sys::SCSI_REQUEST_BLOCK_SIZE;
    srb
}

/// Ends a test handle's life without completing it (there is no port to complete it to).
#[allow(clippy::needless_pass_by_value)] // taking it by value is the point
fn drop_handle(srb: Srb<Test>) {
    let _ = srb;
}

fn handle(raw: &mut sys::SCSI_REQUEST_BLOCK) -> Srb<Test> {
    // SAFETY: the test owns `raw` for the handle's life.
    unsafe { Srb::from_raw(raw) }.unwrap()
}

#[test]
fn data_direction_is_the_two_flag_bits_whatever_else_is_set() {
    let others = [0, sys::SRB_FLAGS_QUEUE_ACTION_ENABLE | sys::SRB_FLAGS_DISABLE_AUTOSENSE, !sys::SRB_FLAGS_UNSPECIFIED_DIRECTION];
    for other in others {
        for (bits, direction) in [
            (0, DataDirection::None),
            (sys::SRB_FLAGS_DATA_IN, DataDirection::In),
            (sys::SRB_FLAGS_DATA_OUT, DataDirection::Out),
            (sys::SRB_FLAGS_DATA_IN | sys::SRB_FLAGS_DATA_OUT, DataDirection::Unspecified),
        ] {
            let mut raw = blank_srb();
            raw.SrbFlags = bits | other;
            let srb = handle(&mut raw);
            assert_eq!(srb.data_direction(), direction, "SrbFlags {:#x}", bits | other);
            drop_handle(srb);
        }
    }
}

#[test]
fn srb_views() {
    let mut raw = blank_srb();
    raw.Function = sys::SRB_FUNCTION_EXECUTE_SCSI;
    raw.PathId = 0;
    raw.TargetId = 3;
    raw.Lun = 0;
    raw.CdbLength = 10;
    raw.Cdb[0] = 0x28;
    raw.SrbFlags = sys::SRB_FLAGS_DATA_IN | sys::SRB_FLAGS_QUEUE_ACTION_ENABLE;
    raw.QueueAction = sys::SRB_ORDERED_QUEUE_TAG_REQUEST;
    raw.QueueTag = 5;
    raw.DataTransferLength = 4096;
    let srb = handle(&mut raw);
    assert_eq!(srb.function(), SrbFunction::ExecuteScsi);
    assert_eq!(srb.address(), LuAddress { path_id: 0, target_id: 3, lun: 0 });
    assert_eq!(srb.cdb().len(), 10);
    assert_eq!(srb.data_direction(), DataDirection::In);
    assert_eq!(srb.queue_tag(), Some(5));
    assert_eq!(srb.queue_action(), Some(QueueAction::Ordered));
    drop_handle(srb);

    raw.QueueTag = sys::SP_UNTAGGED;
    raw.SrbFlags = sys::SRB_FLAGS_UNSPECIFIED_DIRECTION;
    raw.CdbLength = 200;
    let srb = handle(&mut raw);
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
        let srb = handle(&mut raw);
        assert_eq!(srb.cdb_words(), [low, high], "CdbLength {length}");
        let bytes: Vec<u8> = srb.cdb_words().iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(&bytes[..srb.cdb().len()], srb.cdb(), "the same bytes as cdb()");
        drop_handle(srb);
    }
}

#[test]
fn srb_writable_fields_follow_the_rules() {
    let mut sense = vec![0u8; 32];
    let mut ext = Ext { tag: 0xDEAD_BEEF };
    let mut raw = blank_srb();
    raw.DataTransferLength = 4096;
    raw.SenseInfoBuffer = sense.as_mut_ptr().cast();
    raw.SenseInfoBufferLength = 18;
    raw.SrbExtension = (&raw mut ext).cast();
    let mut srb = handle(&mut raw);
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
    // No data buffer access without MapBuffers.
    assert!(srb.data_buffer().is_none());
    assert_eq!(srb.extension().map(|e| e.tag), Some(0xDEAD_BEEF));
    srb.set_status(SrbStatus::Error);
    drop_handle(srb);
    assert_eq!(raw.SenseInfoBufferLength, 18);
    assert_eq!(raw.SrbStatus, sys::SRB_STATUS_ERROR | sys::SRB_STATUS_AUTOSENSE_VALID);
    assert!(sense[..18].iter().all(|b| *b == 0x70) && sense[18..].iter().all(|b| *b == 0));

    // DISABLE_AUTOSENSE: nothing is returned.
    let mut raw = blank_srb();
    raw.SenseInfoBuffer = sense.as_mut_ptr().cast();
    raw.SenseInfoBufferLength = 18;
    raw.SrbFlags = sys::SRB_FLAGS_DISABLE_AUTOSENSE;
    let mut srb = handle(&mut raw);
    assert_eq!(srb.return_sense(|_| 18), 0);
    srb.set_status(SrbStatus::Success);
    drop_handle(srb);
    assert_eq!(raw.SrbStatus, sys::SRB_STATUS_SUCCESS);
}

#[test]
fn abort_target_is_next_srb() {
    let mut target = blank_srb();
    let mut raw = blank_srb();
    raw.Function = sys::SRB_FUNCTION_ABORT_COMMAND;
    raw.NextSrb = &raw mut target;
    let abort = handle(&mut raw);
    let victim = handle(&mut target);
    assert_eq!(abort.function(), SrbFunction::AbortCommand);
    assert_eq!(abort.abort_target(), Some(victim.id()));
    drop_handle(abort);
    drop_handle(victim);
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

fn config() -> sys::PORT_CONFIGURATION_INFORMATION {
    // SAFETY: all-zero is a valid ConfigInfo (integers and null pointers).
    let mut c: sys::PORT_CONFIGURATION_INFORMATION = unsafe { core::mem::zeroed() };
    c.Length = sys::CONFIG_INFO_VERSION_2;
    c.NumberOfPhysicalBreaks = sys::SP_UNINITIALIZED_VALUE;
    c
}

#[test]
fn config_rules() {
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
    assert_eq!(found[1], AccessRange { start: 0xFEBF_0000, length: 0x8000, in_memory: true });
    // Breaks: set when uninitialised, lowered, never raised.
    assert_eq!(info.limit_physical_breaks(32), 32);
    assert_eq!(info.limit_physical_breaks(64), 32);
    assert_eq!(info.limit_physical_breaks(16), 16);
    info.set_dma64();
    info.set_initiator_bus_id(9, 1);
    info.set_initiator_bus_id(0, 7);
    assert_eq!(raw.Dma64BitAddresses, sys::SCSI_DMA64_MINIPORT_SUPPORTED);
    assert_eq!(raw.Dma32BitAddresses, 0);
    assert_eq!(raw.InitiatorBusId, [7, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn argument_string_parsing() {
    let mut raw = config();
    let argument: &[u8] = b"Dump=1;queue=32 x";
    let ctx: FindAdapterCtx<'_, Test> = FindAdapterCtx::new(core::ptr::null_mut(), &mut raw, Some(argument));
    assert_eq!(ctx.argument("dump"), Some(&b"1"[..]));
    assert_eq!(ctx.argument("QUEUE"), Some(&b"32"[..]));
    assert_eq!(ctx.argument("x"), None);
    assert_eq!(ctx.argument("missing"), None);
    let ctx: FindAdapterCtx<'_, Test> = FindAdapterCtx::new(core::ptr::null_mut(), &mut raw, None);
    assert_eq!(ctx.argument("dump"), None);
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

/// A zero-filled device extension, as SCSI Port allocates it.
fn extension_memory() -> Vec<u64> {
    vec![0u64; (crate::extension::Extension::<Test>::SIZE as usize).div_ceil(8)]
}

#[test]
fn a_failed_try_lock_leaves_the_holder_its_lock() {
    let mut memory = extension_memory();
    // SAFETY: zero-filled, large and aligned enough, alive for the test.
    let ext = unsafe { crate::extension::Extension::<Test>::from_raw(memory.as_mut_ptr().cast()) }.unwrap();
    let held = ext.try_lock().expect("free at first");
    assert!(ext.try_lock().is_none(), "held");
    assert!(ext.try_lock().is_none(), "still held after a failed attempt");
    drop(held);
    assert!(ext.try_lock().is_some(), "free again");
}

#[test]
fn parked_requests_come_back_once_each() {
    let mut memory = extension_memory();
    // SAFETY: as above.
    let ext = unsafe { crate::extension::Extension::<Test>::from_raw(memory.as_mut_ptr().cast()) }.unwrap();
    let mut srbs = [blank_srb(), blank_srb(), blank_srb(), blank_srb(), blank_srb()];
    let mut ptrs: Vec<*mut sys::SCSI_REQUEST_BLOCK> = srbs.iter_mut().map(core::ptr::from_mut).collect();
    assert!(!ext.has_parked());
    let extra = ptrs.pop().unwrap();
    for &srb in &ptrs {
        assert!(ext.park(srb));
    }
    assert!(ext.has_parked());
    assert!(!ext.park(extra), "four slots");
    // The holder clears the mark first, then empties the slots.
    ext.take_parked_mark();
    assert!(!ext.has_parked());
    let mut back: Vec<*mut sys::SCSI_REQUEST_BLOCK> = core::iter::from_fn(|| ext.unpark()).collect();
    back.sort();
    ptrs.sort();
    assert_eq!(back, ptrs);
    assert!(ext.unpark().is_none());
    // A request parked after the mark was cleared marks again, so the holder's next look finds it.
    assert!(ext.park(extra));
    assert!(ext.has_parked());
    assert_eq!(ext.unpark(), Some(extra));
}

#[test]
fn a_memory_window_is_proved_when_it_is_made() {
    let mut window = [0u32; 8];
    let base = core::ptr::NonNull::new(window.as_mut_ptr().cast::<u8>()).unwrap();
    let range = |len, space| {
        // SAFETY: only the window's construction and its address arithmetic are exercised; no
        // register is accessed.
        unsafe { Registers::new(base, len, space) }
    };
    let regs = range(32, Space::Memory).memory_window::<32>().expect("32 bytes of memory space hold a 32-byte window");
    assert_eq!(regs.register::<u32, 28>() as usize, base.as_ptr() as usize + 28, "the last register");
    assert_eq!(regs.register::<u32, 0>() as usize, base.as_ptr() as usize);
    assert_eq!(regs.registers().len(), 32);
    assert_eq!(regs.into_registers().base(), base, "the range comes back whole, to be unmapped");
    let short = range(16, Space::Memory).memory_window::<32>().expect_err("a range shorter than the window");
    assert_eq!(short.len(), 16);
    let ports = range(32, Space::Io).memory_window::<32>().expect_err("I/O space has no memory window");
    assert_eq!(ports.space(), Space::Io);
    // SAFETY: asserting that all-zero is a valid (None) value, as the device extension needs.
    let none: Option<MemoryWindow<32>> = unsafe { core::mem::zeroed() };
    assert!(none.is_none());
}

//! One deliberately broken miniport per verifier rule, each getting that rule's code.
#![allow(clippy::cast_possible_truncation, clippy::many_single_char_names)]

mod common;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use scsiport_sim::mem::SimDma;
use scsiport_sim::{Machine, Port, Request, Rule, Schedule, VerifierConfig, test_miniport};
use scsiport_sys as sys;

fn entry_fails_with(entry: scsiport_sim::DriverEntryFn, rule: Rule) {
    let (m, _d) = machine_with(det(), "", VerifierConfig::default(), 1);
    let e = m.load_driver(entry).unwrap_err();
    assert_eq!(e.bugcheck().map(|b| b.rule), Some(rule), "{e}");
    assert_bugcheck(&m, rule);
}

#[test]
fn x1000_bad_initialize_data_size() {
    entry_fails_with(test_miniport::driver_entry_bad_size, Rule::InitializeArguments);
}

#[test]
fn x1000_missing_start_io() {
    entry_fails_with(test_miniport::driver_entry_no_start_io, Rule::InitializeArguments);
}

#[test]
fn x1000_foreign_arguments() {
    entry_fails_with(test_miniport::driver_entry_wrong_args, Rule::InitializeArguments);
}

#[test]
fn x1000_initialize_outside_driver_entry() {
    assert_bugcheck(&broken("initialize_outside", ""), Rule::InitializeArguments);
}

#[test]
fn x1101_driver_entry_return() {
    entry_fails_with(test_miniport::driver_entry_wrong_return, Rule::DriverEntryReturn);
}

#[test]
fn x1001_stall_over_100ms() {
    let m = broken("stall_200ms", "");
    assert_bugcheck(&m, Rule::StallTooLong);
    assert_eq!(m.bugcheck().unwrap().params[0], 200_000);
}

/// 0x1002 counts the machine's time: a routine that is slow only because the host is (load,
/// valgrind) is no violation in the deterministic schedule, whose time is virtual; in the
/// concurrent schedule, whose time is real, it is one.
/// 0x1002 measures the routine, not the host: in the deterministic schedule machine time is
/// virtual; in the concurrent one it is the routine's CPU time (and what it slept in stalls), so
/// a thread the host took the CPU from for 600 ms is not a slow routine, and one that ran 600 ms
/// is.
#[test]
fn x1002_counts_machine_time_not_the_host_s() {
    for schedule in [det(), Schedule::Concurrent] {
        let (m, _d) = machine_with(schedule, "break=host_slow_startio", VerifierConfig::default(), 1);
        m.load_driver(test_miniport::driver_entry).unwrap();
        // The first command meets the power-on unit attention; the second one reads.
        m.execute(Request::read10(0, 0, 8, 4096)).expect("no bug check for a descheduled routine");
        let c = m.execute(Request::read10(0, 0, 8, 4096)).expect("no bug check for a descheduled routine");
        assert!(c.is_success(), "{c:?}");
        assert_eq!(m.violations(), Vec::new(), "{schedule:?}");
    }

    let (m, _d) = machine_with(det(), "break=busy_startio", VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    m.execute(Request::read10(0, 0, 8, 4096)).expect("no bug check in virtual time");
    assert!(m.execute(Request::read10(0, 0, 8, 4096)).expect("no bug check in virtual time").is_success());
    assert_eq!(m.violations(), Vec::new());

    let (m, _d) = machine_with(Schedule::Concurrent, "break=busy_startio", VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    let _ = m.execute(Request::read10(0, 0, 8, 4096));
    let _ = m.run_until_idle();
    assert_bugcheck(&m, Rule::RoutineTooLong);
}

#[test]
fn x1002_start_io_too_long() {
    let m = broken("slow_startio", "");
    assert_bugcheck(&m, Rule::RoutineTooLong);
    assert!(m.bugcheck().unwrap().params[2] >= 500_000, "duration in µs");
    // The 90 ms stalls were warnings first.
    assert!(m.violations().iter().any(|v| v.rule == Rule::StallOverMillisecond));
}

#[test]
fn x1138_stall_over_1ms_is_a_warning() {
    let m = broken("stall_2ms", "");
    assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    let v = m.violations();
    assert!(v.iter().any(|v| v.rule == Rule::StallOverMillisecond && v.code == 0x1138));
    assert!(m.execute(Request::test_unit_ready(0)).is_ok());
}

#[test]
fn x1003_completed_twice() {
    assert_bugcheck(&broken("complete_twice", ""), Rule::CompletedTwice);
}

#[test]
fn x1003_completed_not_outstanding() {
    assert_bugcheck(&broken("complete_bogus", ""), Rule::CompletedNotOutstanding);
}

#[test]
fn x1004_status_pending() {
    assert_bugcheck(&broken("status_pending", ""), Rule::InvalidSrbStatus);
}

#[test]
fn x1004_status_queue_frozen() {
    assert_bugcheck(&broken("status_frozen", ""), Rule::InvalidSrbStatus);
}

#[test]
fn x1004_autosense_with_disable_autosense() {
    let (m, _d) = machine_with(det(), "break=autosense_disabled", VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    let _ = m.execute(Request::read10(0, 0, 1, 512).with_flags(sys::SRB_FLAGS_DISABLE_AUTOSENSE));
    assert_bugcheck(&m, Rule::InvalidSrbStatus);
}

#[test]
fn x1005_next_lu_with_untagged_active() {
    let (m, _d) = machine_with(det(), "tagged=1 break=next_lu_untagged", VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    let _ = m.execute(Request::read10(0, 0, 1, 512).untagged());
    assert_bugcheck(&m, Rule::NextLuWithUntaggedActive);
}

#[test]
fn x1005_can_be_disabled_like_bit_30() {
    let v = VerifierConfig::default().without(Rule::NextLuWithUntaggedActive);
    let (m, _d) = machine_with(det(), "tagged=1 break=next_lu_untagged", v, 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    let c = m.execute(Request::read10(0, 0, 1, 512).untagged()).unwrap();
    assert!(m.bugcheck().is_none(), "{c:?}");
}

#[test]
fn x1116_next_lu_without_tagged_queuing() {
    assert_bugcheck(&broken("next_lu_not_allowed", ""), Rule::NextLuNotAllowed);
}

#[test]
fn x1006_physical_address_of_a_stack_buffer() {
    assert_bugcheck(&broken("bad_physical", ""), Rule::BadPhysicalAddressQuery);
}

#[test]
fn x1117_extension_physical_without_need_physical_addresses() {
    assert_bugcheck(&broken("extension_physical", "nophys=1"), Rule::ExtensionNeedsPhysical);
}

#[test]
fn x1118_virtual_address_of_a_bogus_pa() {
    assert_bugcheck(&broken("bad_virtual", ""), Rule::BadVirtualAddressQuery);
}

#[test]
fn x1007_reset_hold_with_outstanding_requests() {
    let (m, _d) = machine_with(det(), "break=drop_io_ignore_reset", VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    let e = m.execute(Request::read10(0, 0, 1, 512).with_timeout(2)).unwrap_err();
    assert_eq!(e.bugcheck().map(|b| b.rule), Some(Rule::ResetHoldOutstanding), "{e}");
    assert_bugcheck(&m, Rule::ResetHoldOutstanding);
}

#[test]
fn xd1_srb_extension_touched_after_completion() {
    let m = broken("touch_ext_after", "");
    assert_bugcheck(&m, Rule::TouchedAfterCompletion);
    assert_eq!(m.bugcheck().unwrap().code, 0xD1);
    assert_eq!(m.bugcheck().unwrap().params[2], 1, "a write");
}

#[test]
fn xd1_srb_touched_after_completion() {
    let m = broken("touch_srb_after", "");
    assert_bugcheck(&m, Rule::TouchedAfterCompletion);
    assert_eq!(m.bugcheck().unwrap().params[2], 0, "a read");
}

#[test]
fn xd1_data_buffer_without_map_buffers() {
    assert_bugcheck(&broken("deref_databuffer", ""), Rule::DataBufferNotMapped);
}

#[test]
fn xd1_data_buffer_with_map_buffers_is_fine() {
    let m = broken("deref_databuffer", "map=1");
    assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
}

#[test]
fn xd1_direct_register_dereference() {
    assert_bugcheck(&broken("direct_mmio", ""), Rule::DirectRegisterAccess);
}

#[test]
fn x1102_find_adapter_again_unset() {
    let (m, _d) = machine_with(det(), "break=bad_again", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::FindAdapterResult);
}

#[test]
fn x1103_find_adapter_inconsistent_config() {
    let (m, _d) = machine_with(det(), "break=bad_config", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::FindAdapterConfig);
}

#[test]
fn x1103_not_found_without_freeing_the_mapping() {
    let (m, _d) = machine_with(det(), "break=not_found_keep_mapping", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::FindAdapterConfig);
}

#[test]
fn x1104_config_changed_after_uncached_extension() {
    let (m, _d) = machine_with(det(), "break=size_after_uncached", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::UncachedExtension);
    assert!(m.bugcheck().unwrap().message.contains("SrbExtensionSize"));
}

#[test]
fn x1104_uncached_extension_twice() {
    let (m, _d) = machine_with(det(), "break=uncached_twice", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::UncachedExtension);
}

#[test]
fn x1104_uncached_extension_outside_find_adapter() {
    assert_bugcheck(&broken("uncached_in_init", ""), Rule::UncachedExtension);
}

#[test]
fn x1105_validate_range_outside_find_adapter() {
    assert_bugcheck(&broken("validate_outside", ""), Rule::FindAdapterOnlyService);
}

#[test]
fn x1106_unassigned_range() {
    let (m, _d) = machine_with(det(), "break=unassigned_range", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::UnassignedRange);
}

#[test]
fn x1110_start_io_returned_false() {
    assert_bugcheck(&broken("startio_false", ""), Rule::StartIoReturnedFalse);
}

#[test]
fn x1111_completed_srb_passed_to_log_error() {
    assert_bugcheck(&broken("log_error_after", ""), Rule::CompletedSrbPassed);
}

#[test]
fn x1112_read_only_field_written() {
    let m = broken("write_read_only", "");
    assert_bugcheck(&m, Rule::ReadOnlySrbField);
    assert!(m.bugcheck().unwrap().message.contains("TargetId"));
}

#[test]
fn x1113_transfer_length_grown() {
    assert_bugcheck(&broken("grow_length", ""), Rule::TransferLengthGrown);
}

#[test]
fn x1114_underrun_with_success() {
    assert_bugcheck(&broken("underrun_success", ""), Rule::UnderrunStatus);
}

#[test]
fn x1115_missing_next_request() {
    let (m, _d) = machine_with(det(), "break=skip_next_request", VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    let ts: Vec<_> = (0..3).map(|i| m.submit(Request::read10(0, i, 1, 512)).unwrap()).collect();
    let e = m.wait(ts[2]).unwrap_err();
    assert_eq!(e.bugcheck().map(|b| b.rule), Some(Rule::MissingNextRequest), "{e}");
    assert_bugcheck(&m, Rule::MissingNextRequest);
}

#[test]
fn x1115_missing_next_request_concurrent() {
    let v = VerifierConfig { hang_threshold_ns: 300_000_000, time_scale: 20.0, ..VerifierConfig::default() };
    let (m, _d) = machine_with(scsiport_sim::Schedule::Concurrent, "break=skip_next_request", v, 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    let ts: Vec<_> = (0..3).map(|i| m.submit(Request::read10(0, i, 1, 512)).unwrap()).collect();
    let e = m.wait(ts[2]).unwrap_err();
    assert_eq!(e.bugcheck().map(|b| b.rule), Some(Rule::MissingNextRequest), "{e}");
}

#[test]
fn x1120_port_accessor_on_memory_range() {
    assert_bugcheck(&broken("wrong_register_kind", ""), Rule::RegisterAccess);
}

#[test]
fn x1120_register_outside_mapping() {
    assert_bugcheck(&broken("register_out_of_range", ""), Rule::RegisterAccess);
}

#[test]
fn x1121_foreign_device_extension() {
    assert_bugcheck(&broken("wrong_extension", ""), Rule::WrongDeviceExtension);
}

#[test]
fn x1131_interrupt_storm() {
    assert_bugcheck(&broken("storm", ""), Rule::InterruptStorm);
}

#[test]
fn x1132_isr_claims_without_clearing() {
    assert_bugcheck(&broken("no_clear", "defer=0"), Rule::IsrDidNotClear);
}

#[test]
fn x1133_call_enable_outside_isr() {
    assert_bugcheck(&broken("enable_outside_isr", ""), Rule::CallEnableOutsideIsr);
}

#[test]
fn x1133_call_enable_in_dump_mode() {
    let b = Machine::builder().schedule(det()).dump_mode(true).argument_string("break=defer_in_dump");
    let dma = SimDma::default();
    let dev = device(&b, &dma, 1, 1);
    let m = b.adapter(Arc::new(dev), Arc::new(dma)).build();
    // The scan's first interrupt already breaks it.
    if m.load_driver(test_miniport::driver_entry).is_ok() {
        let _ = m.execute(Request::read10(0, 0, 1, 512));
    }
    assert_bugcheck(&m, Rule::CallEnableOutsideIsr);
    assert!(m.bugcheck().unwrap().message.contains("dump"));
}

#[test]
fn x1134_enable_without_masking() {
    assert_bugcheck(&broken("enable_no_mask", ""), Rule::EnableWithoutMask);
}

#[test]
fn x1134_interrupt_again_inside_the_deferral_window() {
    let (m, d) = machine_with(det(), "qd=8 tagged=1 break=enable_dismiss_only", VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    // Completions spread out, so one lands while a deferral is pending.
    d.set_latency(scsiport_sim::pvscsi::Latency::range(10_000, 400_000));
    let ts: Vec<_> = (0..64).filter_map(|i| m.submit(Request::read10(0, i, 1, 512)).ok()).collect();
    for t in ts {
        if m.wait(t).is_err() {
            break;
        }
    }
    assert_bugcheck(&m, Rule::EnableWithoutMask);
}

#[test]
fn x1135_enable_callback_without_call_disable() {
    assert_bugcheck(&broken("no_disable", ""), Rule::EnableWithoutDisable);
}

#[test]
fn x1136_call_disable_outside_enable_callback() {
    assert_bugcheck(&broken("disable_outside_enable", ""), Rule::CallDisableOutsideEnable);
}

#[test]
fn x1137_disable_callback_leaves_interrupts_masked() {
    assert_bugcheck(&broken("leave_masked", ""), Rule::DisableLeftMasked);
}

#[test]
fn x1139_isr_over_50us_warning_when_enabled() {
    let v = VerifierConfig::default().with(Rule::IsrOver50us);
    let (m, _d) = machine_with(det(), "break=slow_isr", v, 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    m.execute(Request::read10(0, 0, 1, 512)).unwrap();
    assert!(m.bugcheck().is_none());
    assert!(m.violations().iter().any(|v| v.rule == Rule::IsrOver50us));
}

#[test]
fn x113a_timer_without_routine() {
    assert_bugcheck(&broken("timer_null", ""), Rule::TimerMisuse);
}

#[test]
fn x113b_notification_from_find_adapter_warns() {
    let m = broken("notify_in_find_adapter", "");
    assert!(m.bugcheck().is_none());
    assert!(m.violations().iter().any(|v| v.rule == Rule::NotificationInFindAdapter));
}

#[test]
fn x1150_control_list_overrun() {
    let (m, _d) = machine_with(det(), "break=control_overrun", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::ControlListOverrun);
}

#[test]
fn x1151_control_not_success() {
    let (m, _d) = machine_with(det(), "break=control_fail", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::ControlNotSuccess);
}

#[test]
fn x1152_stop_unsupported() {
    let (m, _d) = machine_with(det(), "break=no_stop", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::ControlStopUnsupported);
}

#[test]
fn x1153_interrupt_during_set_running_config() {
    let (m, _d) = machine_with(det(), "break=irq_in_running_config", VerifierConfig::default(), 1);
    m.load_driver(test_miniport::driver_entry).unwrap();
    m.stop_adapter(0).unwrap();
    m.run_for(Duration::from_millis(10)).unwrap();
    let e = m.restart_adapter(0).unwrap_err();
    assert_eq!(e.bugcheck().map(|b| b.rule), Some(Rule::InterruptWhileDisconnected), "{e}");
}

#[test]
fn x1160_unsupported_notification() {
    assert_bugcheck(&broken("unsupported_notification", ""), Rule::UnsupportedNotification);
}

#[test]
fn x1161_free_device_base_of_a_bogus_address() {
    let (m, _d) = machine_with(det(), "break=free_bogus_base", VerifierConfig::default(), 1);
    assert!(m.load_driver(test_miniport::driver_entry).is_err());
    assert_bugcheck(&m, Rule::BadServiceArgument);
}

#[test]
fn x1130_isr_claims_another_hbas_interrupt() {
    // Two HBAs share a line; the first one's ISR claims every interrupt (break=claim_foreign).
    foreign_claim_is_caught(Port::ScsiPort, test_miniport::driver_entry, Rule::IsrClaimedForeign);
}

#[test]
fn every_rule_has_a_distinct_name_and_a_doc_key() {
    // SCSI Port's rules; Storport's have their own ranges (tests/stor_verifier_rules.rs).
    for r in Rule::ALL.iter().filter(|r| !r.storport()) {
        assert!(!r.doc().is_empty() && !r.text().is_empty());
        assert!(r.code() == 0xD1 || (0x1000..0x1200).contains(&r.code()), "{r:?}");
    }
}

/// An HBA whose device raises completion vector 0 at the moment its ISR reads `INTR_STATUS`,
/// once armed: the interrupt the port's sample before the call could not see. Everything else
/// is the model's.
struct RaisesDuringIsr {
    inner: scsiport_sim::pvscsi::PvscsiDevice,
    armed: std::sync::atomic::AtomicBool,
    injected: std::sync::atomic::AtomicU32,
    raises: std::sync::atomic::AtomicU64,
    mask: std::sync::atomic::AtomicU32,
}

impl scsiport_sim::hba::Hba for RaisesDuringIsr {
    fn identity(&self) -> scsiport_sim::hba::PciIdentity {
        self.inner.identity()
    }
    fn bars(&self) -> Vec<scsiport_sim::hba::Bar> {
        self.inner.bars()
    }
    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize {
        self.inner.config_read(offset, buf)
    }
    fn config_write(&self, offset: u32, data: &[u8]) -> usize {
        self.inner.config_write(offset, data)
    }
    fn read(&self, bar: u8, offset: u64, size: u8) -> u32 {
        use std::sync::atomic::Ordering::SeqCst;
        let value = self.inner.read(bar, offset, size);
        if offset != scsiport_sim::pvscsi::regs::REG_INTR_STATUS {
            return value;
        }
        if self.armed.swap(false, SeqCst) {
            self.injected.store(scsiport_sim::pvscsi::regs::INTR_CMPL_0, SeqCst);
            self.raises.fetch_add(1, SeqCst);
        }
        value | self.injected.load(SeqCst)
    }
    fn write(&self, bar: u8, offset: u64, size: u8, value: u32) {
        use std::sync::atomic::Ordering::SeqCst;
        match offset {
            scsiport_sim::pvscsi::regs::REG_INTR_STATUS => {
                self.injected.fetch_and(!value, SeqCst);
            }
            scsiport_sim::pvscsi::regs::REG_INTR_MASK => self.mask.store(value, SeqCst),
            _ => {}
        }
        self.inner.write(bar, offset, size, value);
    }
    fn irq_asserted(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.inner.irq_asserted() || self.injected.load(SeqCst) & self.mask.load(SeqCst) != 0
    }
    fn end_of_interrupt(&self) {
        self.inner.end_of_interrupt();
    }
    fn next_event_ns(&self) -> Option<u64> {
        self.inner.next_event_ns()
    }
    fn run_due(&self, now_ns: u64) -> bool {
        self.inner.run_due(now_ns)
    }
    fn set_waker(&self, waker: scsiport_sim::hba::Waker) {
        self.inner.set_waker(waker);
    }
    fn irq_raises(&self) -> Option<u64> {
        Some(self.inner.irq_raises()?.wrapping_add(self.raises.load(std::sync::atomic::Ordering::SeqCst)))
    }
    fn interrupts_unmasked(&self) -> Option<bool> {
        self.inner.interrupts_unmasked()
    }
    fn set_dma_trace(&self, trace: Option<scsiport_sim::hba::DmaTrace>) {
        self.inner.set_dma_trace(trace);
    }
}

#[test]
fn x1130_a_claim_for_an_interrupt_raised_while_the_isr_ran_is_not_foreign() {
    // Two HBAs share a line. While the second one interrupts, the port calls the first one's ISR
    // with its line low; its device raises completion vector 0 just as the ISR reads
    // INTR_STATUS (in the concurrent schedule a device completion or an injected fault can land
    // between the port's sample and that read), and the ISR rightly claims. Before the port
    // counted the device's raises, this was bug check 0x1130 (seen in concurrent soaks).
    let b = Machine::builder().port(Port::ScsiPort).schedule(det());
    let dma = SimDma::default();
    let first = Arc::new(RaisesDuringIsr {
        inner: device(&b, &dma, 1, 1),
        armed: false.into(),
        injected: 0.into(),
        raises: 0.into(),
        mask: 0.into(),
    });
    let d1 = device(&b, &dma, 1, 2);
    let dma = Arc::new(dma);
    let m = b.adapter_on_line(first.clone(), dma.clone(), 5).adapter_on_line(Arc::new(d1), dma, 5).build();
    m.load_driver(test_miniport::driver_entry).unwrap();
    m.execute_on(0, Request::read10(0, 0, 1, 512)).unwrap();
    first.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    for i in 0..8 {
        m.execute_on(1, Request::read10(0, i, 1, 512)).unwrap();
    }
    assert!(!first.armed.load(std::sync::atomic::Ordering::SeqCst), "the first HBA's ISR never read INTR_STATUS while the second interrupted");
    assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck().map(|b| b.to_string()));
    m.execute_on(0, Request::read10(0, 1, 1, 512)).unwrap();
}

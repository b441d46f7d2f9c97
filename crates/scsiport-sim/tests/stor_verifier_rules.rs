//! The Storport verifier: one deliberately broken Storport miniport per rule
//! (`src/stor_test_miniport.rs`, `break=NAME`), each getting that rule's code and nothing else.
//! VERIFIER.md's Storport table lists the rules, their citations and these tests.
#![allow(clippy::cast_possible_truncation, clippy::many_single_char_names)]

mod common;
use std::collections::BTreeSet;

use common::*;
use scsiport_sim::pvscsi::PvscsiDevice;
use scsiport_sim::{DriverEntryFn, Machine, Port, Request, Rule, Schedule, VerifierConfig, stor_test_miniport as t};
use scsiport_sys as sys;

fn stor_machine(schedule: Schedule, args: &str, verifier: VerifierConfig) -> (Machine, PvscsiDevice) {
    machine_on(Port::Storport, schedule, args, verifier, 1)
}

/// Loads the Storport test miniport with `args`.
fn stor_loaded(args: &str) -> Machine {
    let (m, _d) = stor_machine(det(), args, VerifierConfig::default());
    m.load_driver(t::driver_entry).expect("load");
    m
}

/// Loads with `break=NAME` in `schedule`, then a TEST UNIT READY (the power-on unit attention),
/// a READ and a WRITE (the break's request), and returns the machine.
fn broken_in(schedule: Schedule, name: &str, extra: &str) -> Machine {
    let args = format!("break={name} {extra}");
    let v = if matches!(schedule, Schedule::Concurrent) { VerifierConfig { time_scale: 20.0, ..VerifierConfig::default() } } else { VerifierConfig::default() };
    let (m, _d) = stor_machine(schedule, &args, v);
    if m.load_driver(t::driver_entry).is_ok() {
        let _ = m.execute(Request::test_unit_ready(0));
        let _ = m.execute(Request::read10(0, 0, 8, 4096));
        let _ = m.execute(Request::write10(0, 0, 8, vec![0x5A; 4096]));
        let _ = m.run_until_idle();
    }
    m
}

fn broken(name: &str) -> Machine {
    broken_in(det(), name, "")
}

/// The machine bug-checked with `rule`, and recorded no other fatal rule.
fn assert_only(m: &Machine, rule: Rule) {
    assert_bugcheck(m, rule);
    let others: Vec<_> = m.violations().into_iter().filter(|v| v.rule.fatal() && v.rule != rule).collect();
    assert!(others.is_empty(), "{rule:?} and also {others:#?}");
    assert!(rule.storport(), "{rule:?} is a SCSI Port rule");
}

fn entry_fails_with(entry: DriverEntryFn, rule: Rule) {
    let (m, _d) = stor_machine(det(), "", VerifierConfig::default());
    let e = m.load_driver(entry).unwrap_err();
    assert_eq!(e.bugcheck().map(|b| b.rule), Some(rule), "{e}");
    assert_only(&m, rule);
}

// Driver Verifier's Storport Verification: bug check 0xF1, parameter 1 0x2001-0x2005.

#[test]
fn x2001_stall_over_100ms() {
    let m = broken("stall_200ms");
    assert_only(&m, Rule::StorStallTooLong);
    assert_eq!(m.bugcheck().unwrap().params[0], 200_000);
}

#[test]
fn x2002_uncached_extension_outside_find_adapter() {
    assert_only(&broken("uncached_in_init"), Rule::StorUncachedExtension);
}

#[test]
fn x2002_srb_extension_size_set_after_the_uncached_extension() {
    assert_only(&broken("size_after_uncached"), Rule::StorUncachedExtension);
}

#[test]
fn x2003_device_base_of_an_unassigned_address() {
    assert_only(&broken("unassigned_range"), Rule::StorUnassignedRange);
}

#[test]
fn x2004_request_completed_twice_in_both_schedules() {
    for schedule in [det(), Schedule::Concurrent] {
        assert_only(&broken_in(schedule, "complete_twice", ""), Rule::StorCompletedTwice);
    }
}

#[test]
fn x2005_register_read_past_the_mapping() {
    assert_only(&broken("register_out_of_range"), Rule::StorRegisterAccess);
}

#[test]
fn x2005_port_accessor_on_a_memory_range() {
    assert_only(&broken("wrong_register_kind"), Rule::StorRegisterAccess);
}

// The memory monitor (0xD1, as Driver Verifier's special pool reports it).

#[test]
fn xd1_srb_read_after_completion() {
    assert_only(&broken("touch_srb_after"), Rule::StorTouchedAfterCompletion);
}

#[test]
fn xd1_srb_extension_written_after_completion() {
    assert_only(&broken("touch_ext_after"), Rule::StorTouchedAfterCompletion);
}

#[test]
fn xd1_scatter_gather_list_read_after_completion() {
    assert_only(&broken("touch_sg_after"), Rule::StorTouchedAfterCompletion);
}

#[test]
fn xd1_data_buffer_storport_did_not_map() {
    assert_only(&broken("deref_databuffer"), Rule::StorDataBufferNotMapped);
    // With STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE the same dereference is fine.
    let m = broken_in(det(), "deref_databuffer", "map=3");
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
}

// The rules Storport's documentation states (0x12xx).

#[test]
fn x1200_storport_initialize_with_a_null_argument() {
    entry_fails_with(t::driver_entry_null_data, Rule::StorInitializeArguments);
}

#[test]
fn x1200_storport_initialize_outside_driver_entry() {
    assert_only(&broken("initialize_outside"), Rule::StorInitializeArguments);
}

#[test]
fn x1201_wrong_hw_initialization_data_size() {
    entry_fails_with(t::driver_entry_bad_size, Rule::StorInitializeData);
}

#[test]
fn x1201_no_hw_adapter_control() {
    entry_fails_with(t::driver_entry_no_adapter_control, Rule::StorInitializeData);
}

#[test]
fn x1201_tagged_queuing_false() {
    entry_fails_with(t::driver_entry_untagged, Rule::StorInitializeData);
}

#[test]
fn x1202_driver_entry_return() {
    entry_fails_with(t::driver_entry_wrong_return, Rule::StorDriverEntryReturn);
}

#[test]
fn x1203_find_adapter_result() {
    assert_only(&broken("bad_find_result"), Rule::StorFindAdapterResult);
}

#[test]
fn x1204_find_adapter_without_transfer_limits() {
    assert_only(&broken("no_limits"), Rule::StorFindAdapterLimits);
}

#[test]
fn x1205_half_duplex() {
    assert_only(&broken("half_duplex"), Rule::StorFullDuplex);
}

#[test]
fn x1206_find_adapter_modifies_what_storport_owns() {
    assert_only(&broken("modify_config"), Rule::StorFindAdapterConfig);
}

#[test]
fn x1206_fewer_than_16_physical_breaks() {
    assert_only(&broken("few_breaks"), Rule::StorFindAdapterConfig);
}

#[test]
fn x1207_free_device_base_outside_find_adapter() {
    assert_only(&broken("free_base_outside"), Rule::StorFreeDeviceBaseOutside);
}

#[test]
fn x1208_enable_passive_initialization_outside_hw_initialize() {
    assert_only(&broken("passive_outside"), Rule::StorEnablePassive);
}

#[test]
fn x1209_enable_passive_initialization_from_adapter_control() {
    let m = stor_loaded("break=passive_from_control");
    m.execute(Request::read10(0, 0, 1, 512)).unwrap();
    assert!(m.violations().is_empty(), "the first HwStorInitialize may enable it");
    m.stop_adapter(0).unwrap();
    let _ = m.restart_adapter(0);
    assert_only(&m, Rule::StorPassiveFromHwInit);
}

#[test]
fn x120a_initialize_dpc_outside_the_passive_routine() {
    assert_only(&broken("dpc_outside_passive"), Rule::StorInitializeDpcOutside);
}

#[test]
fn x120b_issue_dpc_of_an_uninitialized_object() {
    assert_only(&broken("issue_uninitialized"), Rule::StorIssueDpcUninitialized);
}

#[test]
fn x120c_interrupt_lock_in_the_passive_routine() {
    assert_only(&broken("lock_in_passive"), Rule::StorLockNotAllowed);
}

#[test]
fn x120d_start_io_lock_after_the_interrupt_lock_in_both_schedules() {
    for schedule in [det(), Schedule::Concurrent] {
        assert_only(&broken_in(schedule, "lock_order", ""), Rule::StorLockOrder);
    }
}

#[test]
fn x120d_start_io_lock_twice() {
    assert_only(&broken("lock_twice"), Rule::StorLockOrder);
}

#[test]
fn x120d_synchronize_access_from_the_isr() {
    assert_only(&broken("sync_in_isr"), Rule::StorLockOrder);
}

#[test]
fn x120e_release_of_a_lock_never_acquired() {
    assert_only(&broken("release_unheld"), Rule::StorLockRelease);
}

#[test]
fn x120f_dpc_returns_holding_the_start_io_lock() {
    let m = broken("lock_leak");
    assert_only(&m, Rule::StorLockHeldAtReturn);
    assert_eq!(m.bugcheck().unwrap().routine, Some("HwStorDpcRoutine"));
}

#[test]
fn x1210_stall_in_start_io() {
    assert_only(&broken("stall_in_startio"), Rule::StorStallInStartIo);
}

#[test]
fn x1211_stall_of_2ms() {
    assert_only(&broken("stall_2ms"), Rule::StorStallOverMillisecond);
}

#[test]
fn x1212_build_io_completes_and_returns_true() {
    assert_only(&broken("buildio_complete_true"), Rule::StorBuildIoCompletedTrue);
}

#[test]
fn x1213_build_io_returns_false_and_never_completes() {
    let (m, _d) = stor_machine(det(), "break=buildio_keep", VerifierConfig::default());
    m.load_driver(t::driver_entry).unwrap();
    let _ = m.execute(Request::test_unit_ready(0));
    let before = m.stats();
    let _ = m.execute(Request::read10(0, 0, 1, 512).with_timeout(1));
    assert_only(&m, Rule::StorBuildIoNotCompleted);
    // The port's half of the rule (`DT:storport-storportbuildio`): the request HwStorBuildIo
    // returned FALSE for never reached HwStorStartIo.
    let s = m.stats();
    assert_eq!((s.build_io_calls - before.build_io_calls, s.start_io_calls - before.start_io_calls), (1, 0));
}

#[test]
fn x1214_request_complete_of_a_pointer_that_is_no_request() {
    assert_only(&broken("complete_bogus"), Rule::StorCompletedNotOutstanding);
}

#[test]
fn x1215_completed_with_srb_status_pending() {
    assert_only(&broken("status_pending"), Rule::StorInvalidSrbStatus);
}

#[test]
fn x1216_completed_srb_passed_to_log_error() {
    assert_only(&broken("log_error_after"), Rule::StorCompletedSrbPassed);
}

#[test]
fn x1217_read_only_srb_field_written() {
    assert_only(&broken("write_read_only"), Rule::StorReadOnlySrbField);
}

#[test]
fn x1218_data_transfer_length_grown() {
    assert_only(&broken("grow_length"), Rule::StorTransferLengthGrown);
}

#[test]
fn x1219_underrun_reported_as_success() {
    assert_only(&broken("underrun_success"), Rule::StorUnderrunStatus);
}

#[test]
fn x121a_scatter_gather_list_modified() {
    assert_only(&broken("modify_sg"), Rule::StorScatterGatherModified);
}

#[test]
fn x121b_timer_call_without_a_routine() {
    assert_only(&broken("timer_null"), Rule::StorTimerMisuse);
}

#[test]
fn x121c_scsi_port_notification_type() {
    assert_only(&broken("unsupported_notification"), Rule::StorUnsupportedNotification);
}

#[test]
fn x121d_next_request_is_a_warning() {
    let m = broken("next_request");
    assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    let v = m.violations();
    assert!(!v.is_empty() && v.iter().all(|v| v.rule == Rule::StorIgnoredNotification && !v.rule.fatal()), "{v:#?}");
    assert!(m.execute(Request::test_unit_ready(0)).unwrap().is_success());
}

#[test]
fn x121e_adapter_control_not_success() {
    assert_only(&broken("control_fail"), Rule::StorControlNotSuccess);
}

#[test]
fn x121f_restart_adapter_unsupported() {
    assert_only(&broken("no_restart"), Rule::StorControlRequired);
}

#[test]
fn x1220_control_list_overrun() {
    assert_only(&broken("control_overrun"), Rule::StorControlListOverrun);
}

#[test]
fn x1221_reset_bus_leaves_requests_of_the_bus() {
    // The port's own reset (as after a timeout) meets requests the miniport holds.
    let m = stor_loaded("break=ignore_reset qd=16");
    let _ = m.execute(Request::test_unit_ready(0));
    let busy: Vec<_> = (0..16u32).map(|i| m.submit(Request::read10(0, i * 8, 8, 4096)).unwrap()).collect();
    let _ = m.reset_bus(0, 0);
    for t in busy {
        let _ = m.wait(t);
    }
    let _ = m.run_until_idle();
    assert_only(&m, Rule::StorResetBusLeftRequests);
}

#[test]
fn x1221_timeout_escalates_to_a_bus_reset_that_completes_nothing() {
    let (m, _d) = stor_machine(det(), "break=drop_io_ignore_resets", VerifierConfig::default());
    m.load_driver(t::driver_entry).unwrap();
    let _ = m.execute(Request::test_unit_ready(0));
    let _ = m.execute(Request::read10(0, 0, 1, 512).with_timeout(1));
    assert_only(&m, Rule::StorResetBusLeftRequests);
}

#[test]
fn x1222_physical_address_of_a_stack_buffer() {
    assert_only(&broken("bad_physical"), Rule::StorPhysicalAddress);
}

#[test]
fn x1223_virtual_address_of_a_bogus_physical_address() {
    assert_only(&broken("bad_virtual"), Rule::StorVirtualAddress);
}

#[test]
fn x1224_foreign_device_extension() {
    assert_only(&broken("wrong_extension"), Rule::StorWrongDeviceExtension);
}

#[test]
fn x1225_build_io_too_long() {
    let m = broken("slow_buildio");
    assert_only(&m, Rule::StorRoutineTooLong);
    assert!(m.bugcheck().unwrap().params[2] >= 500_000, "duration in µs");
}

#[test]
fn x1226_isr_claims_another_hbas_interrupt() {
    // Two HBAs share a line; the first one's ISR claims every interrupt (break=claim_foreign).
    foreign_claim_is_caught(Port::Storport, t::driver_entry, Rule::StorIsrClaimedForeign);
}

#[test]
fn x1227_interrupt_storm() {
    assert_only(&broken("storm"), Rule::StorInterruptStorm);
}

#[test]
fn x1228_isr_claims_without_clearing() {
    assert_only(&broken("no_clear"), Rule::StorIsrDidNotClear);
}

#[test]
fn x1229_isr_over_50us_warning_when_enabled() {
    let (m, _d) = stor_machine(det(), "break=slow_isr", VerifierConfig::default().with(Rule::StorIsrOver50us));
    m.load_driver(t::driver_entry).unwrap();
    let _ = m.execute(Request::test_unit_ready(0));
    m.execute(Request::read10(0, 0, 1, 512)).unwrap();
    assert!(m.bugcheck().is_none());
    assert!(m.violations().iter().all(|v| v.rule == Rule::StorIsrOver50us), "{:#?}", m.violations());
    assert!(!m.violations().is_empty());
    // Off by default, as SCSI Port's 0x1139.
    let m = broken("slow_isr");
    assert!(m.violations().is_empty(), "{:#?}", m.violations());
}

#[test]
fn x122a_storport_complete_request_is_a_warning() {
    let m = stor_loaded("break=complete_request_call qd=16");
    let _ = m.execute(Request::test_unit_ready(0));
    let busy: Vec<_> = (0..16u32).map(|i| m.submit(Request::read10(0, i * 8, 8, 4096)).unwrap()).collect();
    m.reset_bus(0, 0).unwrap();
    for t in busy {
        let c = m.wait(t).unwrap();
        assert!(c.is_success() || c.status() == sys::SRB_STATUS_BUS_RESET || c.scsi_status == 2, "{c:?}");
    }
    m.run_until_idle().unwrap();
    assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    let v = m.violations();
    assert!(!v.is_empty() && v.iter().all(|v| v.rule == Rule::StorCompleteRequestCalled), "{v:#?}");
}

#[test]
fn x122c_storport_validate_range_is_deprecated_a_warning() {
    let m = broken("validate_range");
    assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    let v = m.violations();
    assert!(v.len() == 1 && v[0].rule == Rule::StorDeprecatedRoutine && v[0].routine == Some("HwStorFindAdapter"), "{v:#?}");
}

#[test]
fn x122b_acquire_of_an_undefined_lock() {
    assert_only(&broken("bad_lock_kind"), Rule::StorBadServiceArgument);
}

/// Every rule the Storport verifier reports: its code in Storport's ranges, a citation from the
/// Storport documentation, a text; the checks both ports share map to a Storport rule on a
/// Storport machine.
#[test]
fn every_storport_rule_has_a_code_a_storport_citation_and_a_text() {
    let stor: Vec<Rule> = Rule::ALL.iter().copied().filter(|r| r.storport()).collect();
    assert!(stor.len() >= 50, "{}", stor.len());
    for r in &stor {
        assert!(r.code() == 0xD1 || (0x2001..=0x2005).contains(&r.code()) || (0x1200..0x1300).contains(&r.code()), "{r:?}");
        assert!(!r.text().is_empty(), "{r:?}");
        let doc = r.doc();
        assert!(
            ["DBG:bug-check-0xf1", "DT:dv-storport-verification", "DT:storport-", "DDI-storport:", "KG:"].iter().any(|p| doc.starts_with(p)),
            "{r:?}: {doc}"
        );
        assert_eq!(r.on_port(Port::Storport), *r);
    }
    let codes: BTreeSet<u32> = stor.iter().map(|r| r.code()).filter(|c| *c != 0xD1).collect();
    assert_eq!(codes.len(), stor.iter().filter(|r| r.code() != 0xD1).count(), "codes are distinct");
    for r in Rule::ALL.iter().filter(|r| !r.storport()) {
        let s = r.on_port(Port::Storport);
        assert!(s == *r || s.storport(), "{r:?} -> {s:?}");
    }
    // Driver Verifier's five Storport codes are all there.
    for c in 0x2001..=0x2005 {
        assert!(codes.contains(&c), "{c:#x}");
    }
}

/// Every `break=` knob of the Storport test miniport that breaks a rule is loaded by a test in
/// this file, and every rule of Storport's own ranges (0x12xx, and Driver Verifier's 0x2001–0x2005)
/// is named by some assertion here: a rule added without a test that breaks it fails this.
#[test]
fn every_break_knob_is_exercised() {
    let src = include_str!("stor_verifier_rules.rs");
    // The code, without this test (whose own text names no knob and no rule).
    let tests = src.split("fn every_break_knob_is_exercised").next().unwrap_or(src);
    for (name, _) in t::breaks() {
        if matches!(*name, "drop_io" | "bus_change") {
            continue; // not rule breaks: tests/stor_port.rs uses them
        }
        let loaded = [format!("broken(\"{name}\")"), format!("\"{name}\","), format!("break={name}")].iter().any(|p| tests.contains(p.as_str()));
        assert!(loaded, "break={name} has no test");
    }
    for r in Rule::ALL.iter().filter(|r| (0x1200..0x1300).contains(&r.code()) || (0x2001..=0x2005).contains(&r.code())) {
        assert!(tests.contains(&format!("Rule::{r:?}")), "{r:?} ({:#x}) is asserted by no test", r.code());
    }
}

/// The clean miniport is clean in both schedules, with every optional feature on.
#[test]
fn the_unbroken_miniport_breaks_no_rule() {
    for schedule in [det(), Schedule::Concurrent] {
        let v = if matches!(schedule, Schedule::Concurrent) { VerifierConfig { time_scale: 20.0, ..VerifierConfig::default() } } else { VerifierConfig::default() };
        let (m, _d) = stor_machine(schedule, "break=none qd=16 map=2 timer=1 caches=1 abort=1", v);
        m.load_driver(t::driver_entry).expect("the clean miniport loads");
        // The power-on unit attention first, then the requests themselves must succeed: a
        // miniport that failed them would break no rule either.
        let _ = m.execute(Request::test_unit_ready(0));
        for request in [Request::read10(0, 0, 8, 4096), Request::write10(0, 0, 8, vec![0x5A; 4096]), Request::read10(0, 0, 8, 4096)] {
            let c = m.execute(request).expect("no bug check");
            assert!(c.is_success(), "{schedule:?}: {c:?}");
        }
        m.run_until_idle().expect("idle");
        assert!(m.violations().is_empty(), "{schedule:?}: {:#?}", m.violations());
    }
}

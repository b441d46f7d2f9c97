//! Which instructions of a profile are the miniport's, and which of its routines each belongs to.
//!
//! Every function of the profile is one of three kinds ([`Kind`]):
//! - **driver**: the miniport and its safe wrapper (crates `rspvscsi` and `scsiport`, or anything
//!   inside the loaded `.sys`);
//! - **port**: the emulator and the CLI (`scsiport_sim`, `rspvscsi_sim`, the exported
//!   `ScsiPort…` routines): what the miniport calls is excluded from its cost;
//! - **neutral**: library code with no owner of its own (`core`, `alloc`, `std`, libc's `memcpy`,
//!   unnamed code, and `scsiport_sys`, whose FFI definitions both sides use): it counts for
//!   whoever called it.
//!
//! The cost of a routine (`HwScsiStartIo`, `HwScsiInterrupt`, ...) is the self cost of the driver
//! functions it runs, found through callgrind's call edges. A function with several callers is
//! shared among them in proportion to the calls each made (callgrind records edges, not whole
//! call paths, so this is the one assumption: a shared function costs the same per call from
//! each caller). With LTO nearly all of the driver is inlined into the wrapper's trampolines
//! (`scsiport::miniport::hw_start_io<…>`), whose only callers are the port, so little is
//! shared; [`Attribution::shared`] says how much was.
//!
//! A routine is entered wherever a non-driver function calls a driver function: the port
//! calling a trampoline, `DriverEntry`, or a callback. Trampolines are named by the routine the
//! documentation gives them ([`ROUTINES`]); any other entry is reported under its own name.

use std::collections::BTreeMap;

use super::callgrind::Profile;

/// Who a function's own instructions count for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The miniport.
    Driver,
    /// The port driver (the emulator) and the program around it.
    Port,
    /// Library code: counts for its caller.
    Neutral,
}

/// The crates whose code is the miniport's.
pub const DRIVER_CRATES: [&str; 3] = ["rspvscsi", "scsiport", "storport"];
/// The crates that are the port driver and the program.
pub const PORT_CRATES: [&str; 2] = ["scsiport_sim", "rspvscsi_sim"];
/// The prefix [`super::image`] gives the functions of a loaded `.sys`.
pub const IMAGE_PREFIX: &str = "rspvscsi.sys!";

/// The wrappers' trampolines (crates/scsiport/src/miniport.rs, crates/storport/src/miniport.rs)
/// and the routine of the SCSI Port or Storport documentation each one is.
pub const ROUTINES: [(&str, &str); 22] = [
    ("scsiport::miniport::hw_start_io", "HwScsiStartIo"),
    ("scsiport::miniport::hw_interrupt", "HwScsiInterrupt"),
    ("scsiport::miniport::hw_enable_interrupts_callback", "HwScsiEnableInterruptsCallback"),
    ("scsiport::miniport::hw_disable_interrupts_callback", "HwScsiDisableInterruptsCallback"),
    ("scsiport::miniport::hw_find_adapter", "HwScsiFindAdapter"),
    ("scsiport::miniport::hw_initialize", "HwScsiInitialize"),
    ("scsiport::miniport::hw_reset_bus", "HwScsiResetBus"),
    ("scsiport::miniport::hw_timer", "HwScsiTimer"),
    ("scsiport::miniport::hw_adapter_control", "HwScsiAdapterControl"),
    ("storport::miniport::hw_build_io", "HwStorBuildIo"),
    ("storport::miniport::hw_start_io", "HwStorStartIo"),
    ("storport::miniport::hw_interrupt", "HwStorInterrupt"),
    ("storport::miniport::hw_dpc", "HwStorDpcRoutine"),
    ("storport::miniport::hw_find_adapter", "HwStorFindAdapter"),
    ("storport::miniport::hw_initialize", "HwStorInitialize"),
    ("storport::miniport::hw_passive_initialize", "HwStorPassiveInitializeRoutine"),
    ("storport::miniport::hw_reset_bus", "HwStorResetBus"),
    ("storport::miniport::hw_timer", "HwStorTimer"),
    ("storport::miniport::hw_adapter_control", "HwStorAdapterControl"),
    ("storport::context::synchronized_access", "SynchronizedAccessRoutine"),
    ("rspvscsi::DriverEntry", "DriverEntry"),
    // `#[unsafe(no_mangle)]`: the symbol has no path.
    ("DriverEntry", "DriverEntry"),
];

/// A name without generic arguments (`a::b::<T>` and `a::b<T>` both give `a::b`) and without
/// the `.sys` prefix or a trailing hash (`::h0123…`).
#[must_use]
pub fn plain_name(name: &str) -> String {
    let name = name.strip_prefix(IMAGE_PREFIX).unwrap_or(name);
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for ch in name.chars() {
        match ch {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    // `<A as B>::f` became `::f`: keep the original for those.
    if out.starts_with("::") || out.is_empty() {
        return name.to_string();
    }
    let out = out.trim_end_matches("::").replace("::::", "::");
    match out.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => head.to_string(),
        _ => out,
    }
}

/// The crate a demangled name belongs to: the first path segment, or for `<T as Trait>::f` the
/// crate of `T` (the impl is the type's); `None` for a name without a path (`memcpy`, `0x…`).
#[must_use]
pub fn crate_of(name: &str) -> Option<&str> {
    let mut s = name.trim_start();
    loop {
        let before = s;
        for prefix in ["<", "&", "mut ", "*const ", "*mut ", "dyn ", "[", "(", "impl "] {
            s = s.strip_prefix(prefix).unwrap_or(s);
        }
        if s == before {
            break;
        }
    }
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    let (head, rest) = s.split_at(end);
    (!head.is_empty() && rest.starts_with("::")).then_some(head)
}

/// The kind of a function, by its name.
#[must_use]
pub fn kind_of(name: &str) -> Kind {
    if name.starts_with(IMAGE_PREFIX) || name.ends_with(super::inline::DRIVER_PART) {
        return Kind::Driver;
    }
    if name.ends_with(super::inline::PORT_PART) {
        return Kind::Port;
    }
    // The routines a miniport imports from the port driver (the emulator exports them).
    if name.starts_with("ScsiPort") || name.starts_with("StorPort") {
        return Kind::Port;
    }
    match crate_of(name) {
        Some(c) if DRIVER_CRATES.contains(&c) => Kind::Driver,
        Some(c) if PORT_CRATES.contains(&c) => Kind::Port,
        _ => Kind::Neutral,
    }
}

/// The documentation's name of a routine entered at `name`, or `name` itself.
#[must_use]
pub fn routine_of(name: &str) -> String {
    let plain = plain_name(name);
    ROUTINES.iter().find(|(f, _)| plain == *f).map_or(plain, |(_, r)| (*r).to_string())
}

/// One routine's share of the driver's cost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routine {
    /// Instructions of driver (and neutral library) code it ran, excluding the port's.
    pub cost: f64,
    /// Times the port entered it.
    pub calls: u64,
}

/// The driver's cost in one profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attribution {
    /// By routine name ([`routine_of`]).
    pub routines: BTreeMap<String, Routine>,
    /// Self cost of every driver function (neutral ones called by the driver are not listed).
    pub driver_self: BTreeMap<String, u64>,
    /// Cost that was split among several callers by call counts (see the module doc).
    pub shared: f64,
}

impl Attribution {
    /// The driver's whole cost: the sum over routines.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.routines.values().map(|r| r.cost).sum()
    }
}

/// Attributes `profile`'s driver cost to routines, classifying functions with `kind`.
#[must_use]
pub fn attribute(profile: &Profile, kind: &dyn Fn(&str) -> Kind) -> Attribution {
    let kinds: Vec<Kind> = profile.functions.iter().map(|f| kind(&f.name)).collect();
    let calls_in = profile.calls_in();
    let n = profile.functions.len();
    // cost[f]: f's own cost plus its shares of the callees it passes cost through (driver
    // functions: driver and neutral callees; neutral functions: neutral callees only, so that a
    // driver function called from library code is an entry, not part of the library's cost).
    let mut memo: Vec<Option<f64>> = vec![None; n];
    let mut shared = 0.0f64;
    for f in 0..n {
        if kinds.get(f) != Some(&Kind::Port) {
            inclusive(profile, &kinds, &calls_in, f, &mut memo, &mut vec![false; 0], &mut shared);
        }
    }
    let mut out = Attribution { shared, ..Attribution::default() };
    for (i, f) in profile.functions.iter().enumerate() {
        if kinds.get(i) == Some(&Kind::Driver) {
            out.driver_self.insert(f.name.clone(), f.self_cost);
        }
    }
    // Entries: edges from a non-driver caller into a driver function; and driver functions
    // nobody is seen calling (a jump into them, or the start of the program), with all of it.
    let mut entered = vec![0u64; n];
    for (caller, f) in profile.functions.iter().enumerate() {
        if kinds.get(caller) == Some(&Kind::Driver) {
            continue;
        }
        for c in &f.calls {
            if kinds.get(c.callee) == Some(&Kind::Driver)
                && let Some(e) = entered.get_mut(c.callee)
            {
                *e += c.count;
            }
        }
    }
    for (i, f) in profile.functions.iter().enumerate() {
        if kinds.get(i) != Some(&Kind::Driver) {
            continue;
        }
        let cost = memo.get(i).copied().flatten().unwrap_or(0.0);
        let total_in = calls_in.get(i).copied().unwrap_or(0);
        let from_outside = entered.get(i).copied().unwrap_or(0);
        let share = if total_in == 0 { cost } else { cost * ratio(from_outside, total_in) };
        if total_in == 0 && cost == 0.0 {
            continue;
        }
        if from_outside > 0 || total_in == 0 {
            let r = out.routines.entry(routine_of(&f.name)).or_default();
            r.cost += share;
            r.calls += from_outside;
        }
    }
    out
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The cost `f` passes up to its callers (memoized; a call back into a function still being
/// summed, i.e. recursion, adds nothing).
#[allow(clippy::cast_precision_loss)]
fn inclusive(
    profile: &Profile,
    kinds: &[Kind],
    calls_in: &[u64],
    f: usize,
    memo: &mut Vec<Option<f64>>,
    on_stack: &mut Vec<bool>,
    shared: &mut f64,
) -> f64 {
    if let Some(Some(v)) = memo.get(f) {
        return *v;
    }
    if on_stack.len() < memo.len() {
        on_stack.resize(memo.len(), false);
    }
    if on_stack.get(f).copied().unwrap_or(false) {
        return 0.0;
    }
    if let Some(s) = on_stack.get_mut(f) {
        *s = true;
    }
    let Some(func) = profile.functions.get(f) else { return 0.0 };
    let me = kinds.get(f).copied().unwrap_or(Kind::Neutral);
    let mut cost = func.self_cost as f64;
    for c in &func.calls {
        let callee_kind = kinds.get(c.callee).copied().unwrap_or(Kind::Neutral);
        let follow = match me {
            Kind::Driver => callee_kind != Kind::Port,
            Kind::Neutral => callee_kind == Kind::Neutral,
            Kind::Port => false,
        };
        if !follow || c.callee == f {
            continue;
        }
        let sub = inclusive(profile, kinds, calls_in, c.callee, memo, on_stack, shared);
        let total_in = calls_in.get(c.callee).copied().unwrap_or(0);
        let part = sub * ratio(c.count, total_in);
        cost += part;
        if me == Kind::Driver && c.count < total_in {
            *shared += part;
        }
    }
    if let Some(s) = on_stack.get_mut(f) {
        *s = false;
    }
    if let Some(m) = memo.get_mut(f) {
        *m = Some(cost);
    }
    cost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert_eq!(crate_of("<rspvscsi::adapter::Adapter as scsiport::miniport::Miniport>::hw_start_io"), Some("rspvscsi"));
        assert_eq!(crate_of("scsiport::srb::Srb<M>::return_sense"), Some("scsiport"));
        assert_eq!(crate_of("core::ptr::drop_in_place<rspvscsi_sim::engine::Outstanding>"), Some("core"));
        assert_eq!(crate_of("<&mut scsiport_sim::X as core::fmt::Debug>::fmt"), Some("scsiport_sim"));
        assert_eq!(crate_of("memcpy"), None);
        assert_eq!(crate_of("0x0000000004838030"), None);
        assert_eq!(kind_of("scsiport::miniport::hw_interrupt"), Kind::Driver);
        assert_eq!(kind_of("scsiport_sim::port::MachineCore::register_write"), Kind::Port);
        assert_eq!(kind_of("ScsiPortNotification"), Kind::Port);
        assert_eq!(kind_of("__memcpy_avx_unaligned_erms"), Kind::Neutral);
        assert_eq!(kind_of("rspvscsi.sys!core::ptr::write_bytes"), Kind::Driver);
        assert_eq!(plain_name("scsiport::miniport::hw_start_io::<rspvscsi::adapter::Adapter>"), "scsiport::miniport::hw_start_io");
        assert_eq!(plain_name("rspvscsi.sys!scsiport::miniport::hw_interrupt::<rspvscsi::Adapter>"), "scsiport::miniport::hw_interrupt");
        assert_eq!(plain_name("scsiport::miniport::hw_timer::h0123456789abcdef"), "scsiport::miniport::hw_timer");
        assert_eq!(routine_of("scsiport::miniport::hw_enable_interrupts_callback"), "HwScsiEnableInterruptsCallback");
        assert_eq!(routine_of("rspvscsi::adapter::Adapter::post"), "rspvscsi::adapter::Adapter::post");
    }

    /// A port calling two trampolines; both reach one shared driver helper, which calls the port
    /// and libc's memset; the port also calls memset itself.
    const GRAPH: &str = "\
events: Ir
fn=scsiport_sim::Machine::run
10 1000
cfn=scsiport::miniport::hw_start_io
calls=10 1
10 0
cfn=scsiport::miniport::hw_interrupt
calls=2 1
10 0
cfn=memset
calls=1 1
10 0
fn=scsiport::miniport::hw_start_io
1 50
cfn=rspvscsi::adapter::Adapter::post
calls=10 1
1 0
cfn=scsiport::hw::Registers::write_u32
calls=10 1
1 0
fn=scsiport::miniport::hw_interrupt
1 30
cfn=scsiport::hw::Registers::write_u32
calls=30 1
1 0
fn=rspvscsi::adapter::Adapter::post
1 200
cfn=memset
calls=10 1
1 0
fn=scsiport::hw::Registers::write_u32
1 400
cfn=ScsiPortWriteRegisterUlong
calls=40 1
1 0
fn=ScsiPortWriteRegisterUlong
1 4000
fn=memset
1 110
";

    #[test]
    #[allow(clippy::cast_precision_loss)]
    fn routines_get_their_helpers_and_not_the_port() {
        let p = Profile::parse(GRAPH).unwrap();
        let a = attribute(&p, &kind_of);
        let start = &a.routines["HwScsiStartIo"];
        let isr = &a.routines["HwScsiInterrupt"];
        // memset: 11 calls, 110 instructions; the driver's 10 calls are 100 of them.
        // write_u32: 400 over 40 calls, 10 from StartIo (100) and 30 from the ISR (300).
        assert!((start.cost - (50.0 + 200.0 + 100.0 + 100.0)).abs() < 1e-9, "{start:?}");
        assert_eq!(start.calls, 10);
        assert!((isr.cost - (30.0 + 300.0)).abs() < 1e-9, "{isr:?}");
        assert_eq!(isr.calls, 2);
        assert_eq!(a.routines.len(), 2, "{:?}", a.routines);
        // Conservation: every driver instruction once, plus the driver's share of memset.
        let driver_self: u64 = a.driver_self.values().sum();
        assert_eq!(driver_self, 50 + 30 + 200 + 400);
        assert!((a.total() - (driver_self as f64 + 100.0)).abs() < 1e-9);
        // write_u32 was split between two routines, memset between the driver and the port.
        assert!((a.shared - 500.0).abs() < 1e-9, "{}", a.shared);
    }

    #[test]
    fn a_driver_function_entered_from_outside_and_inside_is_split() {
        // The port calls the enable callback directly (3 times) and the ISR calls it too (once):
        // 3/4 of its cost is the callback's own routine, 1/4 is the ISR's.
        let text = "events: Ir\nfn=scsiport_sim::x\n1 1\ncfn=scsiport::miniport::hw_enable_interrupts_callback\ncalls=3 1\n1 0\n\
cfn=scsiport::miniport::hw_interrupt\ncalls=1 1\n1 0\nfn=scsiport::miniport::hw_interrupt\n1 10\n\
cfn=scsiport::miniport::hw_enable_interrupts_callback\ncalls=1 1\n1 0\nfn=scsiport::miniport::hw_enable_interrupts_callback\n1 80\n";
        let a = attribute(&Profile::parse(text).unwrap(), &kind_of);
        assert!((a.routines["HwScsiEnableInterruptsCallback"].cost - 60.0).abs() < 1e-9);
        assert!((a.routines["HwScsiInterrupt"].cost - 30.0).abs() < 1e-9);
        assert!((a.total() - 90.0).abs() < 1e-9);
    }

    #[test]
    fn recursion_and_unreached_driver_code_terminate() {
        let text = "events: Ir\nfn=rspvscsi::a\n1 5\ncfn=rspvscsi::b\ncalls=1 1\n1 0\nfn=rspvscsi::b\n1 7\ncfn=rspvscsi::a\ncalls=1 1\n1 0\n";
        let a = attribute(&Profile::parse(text).unwrap(), &kind_of);
        // Nobody outside calls either: no routine entered them, nothing is counted twice.
        assert!(a.total() <= 12.0, "{:?}", a.routines);
        assert_eq!(a.driver_self.values().sum::<u64>(), 12);
    }
}

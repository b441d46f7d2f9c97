//! `StorPortNotification` as the C shim forwards it, the DPCs, the spin locks and
//! `StorPortSynchronizeAccess`.

use std::sync::Arc;

use scsiport_sys as sys;
use sys::storport as stor;
use sys::{BOOLEAN, FALSE, TRUE};

use super::{ACQUIRED, Acquired, DpcObj, HELD_INTERRUPT, HELD_START_IO, StorLock, held_here};
use crate::port::{Adapter, MachineCore, PortLock, Routine, with_stack};
use crate::trace::J;
use crate::verifier::Rule;

/// `KeQueryTickCount`'s tick: the default clock interval of x64 Windows, 15.625 ms.
const TICK_NS: u64 = 15_625_000;

/// The documented name of a `StorPortNotification` type.
fn notification_name(ty: i32) -> &'static str {
    match ty {
        stor::RequestComplete => "RequestComplete",
        stor::NextRequest => "NextRequest",
        stor::NextLuRequest => "NextLuRequest",
        stor::ResetDetected => "ResetDetected",
        stor::RequestTimerCall => "RequestTimerCall",
        stor::BusChangeDetected => "BusChangeDetected",
        stor::WMIEvent => "WMIEvent",
        stor::WMIReregister => "WMIReregister",
        stor::LinkUp => "LinkUp",
        stor::LinkDown => "LinkDown",
        stor::QueryTickCount => "QueryTickCount",
        stor::BufferOverrunDetected => "BufferOverrunDetected",
        stor::IoTargetRequestServiceTime => "IoTargetRequestServiceTime",
        stor::EnablePassiveInitialization => "EnablePassiveInitialization",
        stor::InitializeDpc => "InitializeDpc",
        stor::IssueDpc => "IssueDpc",
        stor::AcquireSpinLock => "AcquireSpinLock",
        stor::ReleaseSpinLock => "ReleaseSpinLock",
        _ => "unsupported",
    }
}

impl Acquired {
    pub(super) fn release(&self) {
        match self.lock {
            StorLock::StartIo => self.adapter.startio_lock.release(),
            StorLock::Interrupt => self.adapter.intlock.release(),
            StorLock::Dpc(_) => {
                if let Some(l) = &self.dpc_lock {
                    l.release();
                }
            }
        }
    }
}

/// Writes a `LONG` result of an inline `storport.h` function.
fn write_long(result: usize, value: i32) {
    if result != 0 {
        // SAFETY: the caller's `LONG` result variable, which storport.h passes for these types.
        unsafe { (result as *mut i32).write_unaligned(value) };
    }
}

impl MachineCore {
    /// `StorPortNotification` (`DDI-storport:nf-storport-storportnotification`) and the inline
    /// functions of `storport.h` that are notifications underneath.
    #[allow(clippy::too_many_lines)]
    pub(crate) fn stor_notification(self: &Arc<Self>, ad: &Arc<Adapter>, routine: Routine, ty: i32, args: [usize; 4]) {
        let idx = Some(ad.index);
        let name = notification_name(ty);
        let event = |extra: &[(&'static str, J)]| {
            if self.tracer.enabled() {
                let mut f = vec![("fn", J::Static("StorPortNotification")), ("type", J::Static(name))];
                f.extend_from_slice(extra);
                self.trace(idx, "port", &f);
            }
        };
        match ty {
            stor::RequestComplete => self.complete_srb(ad, args[0], None, Some(routine)),
            stor::NextRequest | stor::NextLuRequest => {
                event(&[]);
                self.violation(idx, Rule::StorIgnoredNotification, [u64::from(ty.cast_unsigned()), 0, 0], format!("{name}, which Storport ignores"));
            }
            stor::ResetDetected => {
                event(&[]);
                // "The port driver will manage all required bus-reset delays": the adapter is
                // paused for BusResetHoldTime.
                let now = self.now();
                let mut st = ad.st();
                st.stats.resets_detected += 1;
                if let Some(s) = st.stor.as_mut() {
                    s.reset_pause_until = Some(now.saturating_add(u64::from(s.bus_reset_hold_us) * 1000));
                }
                drop(st);
                self.kick_dpc();
            }
            stor::RequestTimerCall => {
                let us = u64::from(u32::try_from(args[1] & 0xFFFF_FFFF).unwrap_or(0));
                event(&[("us", J::U(us))]);
                if args[0] == 0 && us != 0 {
                    self.violation(idx, Rule::StorTimerMisuse, [0, us, 0], "RequestTimerCall without a HwStorTimer routine".into());
                    return;
                }
                let mut st = ad.st();
                st.timer = if us == 0 { None } else { Some((args[0], self.now().saturating_add(us * 1000))) };
                drop(st);
                self.kick_dpc();
            }
            stor::BusChangeDetected => {
                event(&[("path", J::U(args[0] as u64))]);
                // Storport re-enumerates the bus (`DDI-storport:nf-storport-storportnotification`).
                #[allow(clippy::cast_possible_truncation)]
                ad.st().rescan.insert(args[0] as u8);
                self.kick_dpc();
            }
            stor::WMIEvent | stor::WMIReregister | stor::IoTargetRequestServiceTime | stor::BufferOverrunDetected => {
                event(&[("arg", J::U(args[0] as u64))]);
            }
            stor::LinkDown | stor::LinkUp => {
                event(&[]);
                // LinkDown pauses the adapter, LinkUp restarts it.
                if let Some(s) = ad.st().stor.as_mut() {
                    s.link_down = ty == stor::LinkDown;
                }
                self.kick_dpc();
            }
            stor::QueryTickCount => {
                event(&[]);
                if args[0] != 0 {
                    let ticks = i64::try_from(self.now() / TICK_NS).unwrap_or(i64::MAX);
                    // SAFETY: the caller's LARGE_INTEGER out parameter.
                    unsafe { (args[0] as *mut i64).write_unaligned(ticks) };
                }
            }
            stor::EnablePassiveInitialization => self.stor_enable_passive(ad, routine, args[0], args[1]),
            stor::InitializeDpc => self.stor_initialize_dpc(ad, routine, args[0], args[1]),
            stor::IssueDpc => self.stor_issue_dpc(ad, args[0], (args[1], args[2]), args[3]),
            stor::AcquireSpinLock => {
                #[allow(clippy::cast_possible_truncation)]
                let kind = ((args[0] & 0xFFFF_FFFF) as u32).cast_signed();
                self.stor_acquire(ad, routine, kind, args[1], args[2]);
            }
            stor::ReleaseSpinLock => self.stor_release(ad, args[0]),
            _ => {
                self.trace(idx, "port", &[("fn", J::Static("StorPortNotification")), ("type", J::I(i64::from(ty)))]);
                self.violation(idx, Rule::StorUnsupportedNotification, [u64::from(ty.cast_unsigned()), 0, 0], format!("StorPortNotification type {ty:#x} is not a documented notification"));
            }
        }
    }

    /// `StorPortEnablePassiveInitialization`: only from `HwStorInitialize`
    /// (`DDI-storport:nf-storport-storportenablepassiveinitialization`; otherwise it returns
    /// FALSE and the routine does not run), and not from a `HwStorInitialize` the miniport's
    /// `HwStorAdapterControl` calls itself (`DT:storport-storportpassivefromhwinit`).
    fn stor_enable_passive(&self, ad: &Adapter, routine: Routine, passive: usize, result: usize) {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static("StorPortNotification")), ("type", J::Static("EnablePassiveInitialization"))]);
        match routine {
            Routine::Initialize if passive != 0 => {
                if let Some(s) = ad.st().stor.as_mut() {
                    s.passive = Some(passive);
                }
                write_long(result, 1);
                return;
            }
            Routine::Initialize => {
                self.violation(idx, Rule::StorBadServiceArgument, [0, 0, 0], "StorPortEnablePassiveInitialization with a NULL routine".into());
            }
            Routine::AdapterControl => self.violation(
                idx,
                Rule::StorPassiveFromHwInit,
                [passive as u64, 0, 0],
                "StorPortEnablePassiveInitialization reached from HwStorAdapterControl (its HwStorInitialize called directly)".into(),
            ),
            other => self.violation(
                idx,
                Rule::StorEnablePassive,
                [passive as u64, 0, 0],
                format!("StorPortEnablePassiveInitialization from {}", other.name_in(self.port)),
            ),
        }
        write_long(result, 0);
    }

    /// `StorPortInitializeDpc`: from `HwStorPassiveInitializeRoutine`
    /// (`DDI-storport:nf-storport-storportinitializedpc`). The object is (re)initialised either
    /// way, so a miniport that breaks the rule still runs as far as the verifier lets it.
    fn stor_initialize_dpc(&self, ad: &Adapter, routine: Routine, dpc: usize, dpc_routine: usize) {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static("StorPortNotification")), ("type", J::Static("InitializeDpc"))]);
        if dpc == 0 || dpc_routine == 0 {
            self.violation(idx, Rule::StorBadServiceArgument, [dpc as u64, dpc_routine as u64, 0], "StorPortInitializeDpc with a NULL DPC or routine".into());
            return;
        }
        if routine != Routine::PassiveInitialize {
            self.violation(
                idx,
                Rule::StorInitializeDpcOutside,
                [dpc as u64, 0, 0],
                format!("StorPortInitializeDpc from {}", routine.name_in(self.port)),
            );
        }
        if let Some(s) = ad.st().stor.as_mut() {
            let lock = s.dpcs.get(&dpc).map_or_else(|| Arc::new(PortLock::default()), |d| Arc::clone(&d.lock));
            s.dpcs.insert(dpc, DpcObj { routine: dpc_routine, queued: None, due_ns: 0, running: false, lock });
        }
    }

    /// `StorPortIssueDpc`: queues the DPC unless it is queued already, which returns FALSE
    /// (`DDI-storport:nf-storport-storportissuedpc`). It runs after the DPC latency (deterministic
    /// schedule) on the DPC thread (concurrent schedule), one instance at a time.
    fn stor_issue_dpc(&self, ad: &Adapter, dpc: usize, sys_args: (usize, usize), result: usize) {
        let idx = Some(ad.index);
        let due = self.now().saturating_add(self.draw(&self.cfg.dpc_latency_ns));
        let queued = {
            let mut st = ad.st();
            match st.stor.as_mut().and_then(|s| s.dpcs.get_mut(&dpc)) {
                None => None,
                Some(d) if d.queued.is_some() => Some(false),
                Some(d) => {
                    d.queued = Some(sys_args);
                    d.due_ns = due;
                    Some(true)
                }
            }
        };
        self.trace(idx, "port", &[("fn", J::Static("StorPortNotification")), ("type", J::Static("IssueDpc")), ("queued", J::B(queued == Some(true)))]);
        match queued {
            None => {
                write_long(result, 0);
                self.violation(idx, Rule::StorIssueDpcUninitialized, [dpc as u64, 0, 0], "StorPortIssueDpc of a DPC object StorPortInitializeDpc did not initialise".into());
            }
            Some(q) => {
                write_long(result, i32::from(q));
                self.kick_dpc();
            }
        }
    }

    /// Runs one DPC routine that is queued and due, if any, with no lock held; never a second
    /// instance of one that is running (`DDI-storport:nc-storport-hw_dpc_routine`).
    pub(crate) fn run_stor_dpc(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let now = self.now();
        let picked = {
            let mut st = ad.st();
            let Some(s) = st.stor.as_mut() else { return false };
            let Some(addr) = s.due_dpc(now) else { return false };
            s.dpcs.get_mut(&addr).and_then(|d| {
                let args = d.queued.take()?;
                d.running = true;
                Some((addr, d.routine, args))
            })
        };
        let Some((dpc, routine, (a1, a2))) = picked else { return false };
        // SAFETY: the non-NULL PHW_DPC_ROUTINE the miniport passed to StorPortInitializeDpc.
        let f: stor::HW_DPC_ROUTINE = unsafe { std::mem::transmute(routine) };
        let devext = ad.devext_ptr();
        let overlapped = ad.submitting.load(std::sync::atomic::Ordering::Acquire) > 0;
        self.call(Some(ad), Routine::Dpc, &[], || {
            // SAFETY: the miniport's DPC routine with its DPC object, device extension and the
            // system arguments StorPortIssueDpc was given, at DISPATCH_LEVEL with no lock.
            unsafe { f(dpc as stor::PSTOR_DPC, devext, a1 as sys::PVOID, a2 as sys::PVOID) };
            0i32
        });
        let mut st = ad.st();
        st.stats.dpc_calls += 1;
        if overlapped {
            st.stats.overlapped_submissions += 1;
        }
        if let Some(d) = st.stor.as_mut().and_then(|s| s.dpcs.get_mut(&dpc)) {
            d.running = false;
        }
        drop(st);
        self.kick_dpc();
        true
    }

    /// `StorPortAcquireSpinLock`: checked against the table of
    /// `DDI-storport:nf-storport-storportacquirespinlock` and the lock order before it is taken,
    /// so a miniport that would deadlock gets a bug check instead.
    fn stor_acquire(&self, ad: &Arc<Adapter>, routine: Routine, kind: i32, context: usize, handle: usize) {
        let idx = Some(ad.index);
        let lock = match kind {
            stor::StartIoLock => Some(StorLock::StartIo),
            stor::InterruptLock => Some(StorLock::Interrupt),
            stor::DpcLock => Some(StorLock::Dpc(context)),
            _ => None,
        };
        self.trace(
            idx,
            "port",
            &[("fn", J::Static("StorPortAcquireSpinLock")), ("lock", J::Static(lock.map_or("invalid", StorLock::name)))],
        );
        let Some(lock) = lock else {
            self.violation(idx, Rule::StorBadServiceArgument, [u64::from(kind.cast_unsigned()), 0, 0], format!("StorPortAcquireSpinLock of lock {kind}"));
            return;
        };
        let dpc_lock = match lock {
            StorLock::Dpc(addr) => {
                let l = ad.st().stor.as_ref().and_then(|s| s.dpcs.get(&addr)).map(|d| Arc::clone(&d.lock));
                if l.is_none() {
                    self.violation(idx, Rule::StorBadServiceArgument, [addr as u64, 0, 0], "DpcLock with a LockContext that is no initialised STOR_DPC".into());
                    return;
                }
                l
            }
            _ => None,
        };
        if handle == 0 {
            self.violation(idx, Rule::StorBadServiceArgument, [0, 0, 0], "StorPortAcquireSpinLock with a NULL LockHandle".into());
            return;
        }
        let (port, mine) = held_here(self.owner, ad.index);
        let holds = |l: StorLock| {
            mine.contains(&l)
                || match l {
                    StorLock::Interrupt => port & HELD_INTERRUPT != 0,
                    StorLock::StartIo => port & HELD_START_IO != 0,
                    StorLock::Dpc(_) => false,
                }
        };
        let rname = routine.name_in(self.port);
        if holds(lock) {
            self.violation(idx, Rule::StorLockOrder, [u64::from(kind.cast_unsigned()), 0, 0], format!("{rname} acquires the {}, which it already holds (deadlock)", lock.name()));
            return;
        }
        if matches!(lock, StorLock::StartIo | StorLock::Dpc(_)) && holds(StorLock::Interrupt) {
            self.violation(
                idx,
                Rule::StorLockOrder,
                [u64::from(kind.cast_unsigned()), 0, 0],
                format!("{rname} acquires the {} while holding the interrupt lock (DPC or StartIo come first)", lock.name()),
            );
            return;
        }
        let allowed = match routine {
            Routine::DriverEntry | Routine::FindAdapter | Routine::Initialize | Routine::Interrupt | Routine::PassiveInitialize => false,
            Routine::StartIo => matches!(lock, StorLock::Dpc(_) | StorLock::Interrupt),
            Routine::Timer | Routine::ResetBus => lock == StorLock::Interrupt,
            _ => true,
        };
        if !allowed {
            self.violation(idx, Rule::StorLockNotAllowed, [u64::from(kind.cast_unsigned()), 0, 0], format!("{rname} may not acquire the {}", lock.name()));
            return;
        }
        match lock {
            StorLock::StartIo => ad.startio_lock.acquire(),
            StorLock::Interrupt => ad.intlock.acquire(),
            StorLock::Dpc(_) => {
                if let Some(l) = &dpc_lock {
                    l.acquire();
                }
            }
        }
        let depth = with_stack(<[_]>::len);
        ACQUIRED.with(|a| {
            a.borrow_mut().push(Acquired { owner: self.owner, adapter: Arc::clone(ad), lock, handle, depth, dpc_lock });
        });
        // SAFETY: the caller's STOR_LOCK_HANDLE, whose first member is the STOR_SPINLOCK.
        unsafe { (handle as *mut i32).write_unaligned(kind) };
    }

    /// `StorPortReleaseSpinLock`: only a lock this code acquired, by its handle
    /// (`DT:storport-storportspinlock4`).
    fn stor_release(&self, ad: &Adapter, handle: usize) {
        let idx = Some(ad.index);
        let owner = self.owner;
        let found = ACQUIRED.with(|a| {
            let mut v = a.borrow_mut();
            let pos = v.iter().rposition(|x| x.owner == owner && x.adapter.index == ad.index && x.handle == handle)?;
            Some(v.remove(pos))
        });
        self.trace(
            idx,
            "port",
            &[("fn", J::Static("StorPortReleaseSpinLock")), ("lock", J::Static(found.as_ref().map_or("none", |a| a.lock.name())))],
        );
        match found {
            Some(a) => a.release(),
            None => self.violation(idx, Rule::StorLockRelease, [handle as u64, 0, 0], "StorPortReleaseSpinLock of a handle that holds no lock".into()),
        }
    }

    /// `StorPortSynchronizeAccess`: the routine under the interrupt lock, its result returned
    /// (`DDI-storport:nf-storport-storportsynchronizeaccess`). A caller holding the interrupt
    /// lock already would deadlock.
    pub(crate) fn stor_synchronize_access(self: &Arc<Self>, ad: &Arc<Adapter>, routine: Routine, f: usize, context: usize) -> BOOLEAN {
        let idx = Some(ad.index);
        if f == 0 {
            self.violation(idx, Rule::StorBadServiceArgument, [0, 0, 0], "StorPortSynchronizeAccess with a NULL routine".into());
            return FALSE;
        }
        let (port, mine) = held_here(self.owner, ad.index);
        if port & HELD_INTERRUPT != 0 || mine.contains(&StorLock::Interrupt) {
            self.violation(
                idx,
                Rule::StorLockOrder,
                [f as u64, 0, 0],
                format!("StorPortSynchronizeAccess from {}, which holds the interrupt lock (deadlock)", routine.name_in(self.port)),
            );
            return FALSE;
        }
        // SAFETY: the non-NULL PSTOR_SYNCHRONIZED_ACCESS the miniport passed.
        let sync: stor::STOR_SYNCHRONIZED_ACCESS = unsafe { std::mem::transmute(f) };
        let devext = ad.devext_ptr();
        let r = {
            let _g = ad.intlock();
            self.call_held(Some(ad), Routine::SynchronizedAccess, HELD_INTERRUPT, &[], || {
                // SAFETY: the miniport's routine with its device extension and context, under
                // the interrupt lock.
                unsafe { sync(devext, context as sys::PVOID) }
            })
        };
        if self.cfg.adversarial {
            // The interrupt lock is free again: the HBA's interrupt may come at once, as after
            // a register access (`interrupt_between_accesses`). What the routine left behind it
            // (the mask the ISR judges by, the HBA's own mask) is then what the ISR meets.
            self.interrupt_between_accesses(ad);
        }
        if r == FALSE { FALSE } else { TRUE }
    }
}

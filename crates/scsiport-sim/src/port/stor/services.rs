//! The services whose Storport semantics differ from SCSI Port's: the uncached extension and the
//! scatter/gather list. The rest are shared (`port/services.rs`) under Storport's names.

use scsiport_sys as sys;
use sys::storport as stor;
use sys::{FALSE, PVOID};

use super::uncached_fields;
use crate::mem::Layout;
use crate::port::{Adapter, MachineCore, Routine};
use crate::trace::J;
use crate::verifier::Rule;

/// The Storport name of a SCSI Port service, for the trace and messages of the shared services.
pub(crate) fn service_name(scsi: &'static str) -> &'static str {
    match scsi {
        "ScsiPortStallExecution" => "StorPortStallExecution",
        "ScsiPortGetUncachedExtension" => "StorPortGetUncachedExtension",
        "ScsiPortGetPhysicalAddress" => "StorPortGetPhysicalAddress",
        "ScsiPortGetVirtualAddress" => "StorPortGetVirtualAddress",
        "ScsiPortGetDeviceBase" => "StorPortGetDeviceBase",
        "ScsiPortFreeDeviceBase" => "StorPortFreeDeviceBase",
        "ScsiPortGetBusData" => "StorPortGetBusData",
        "ScsiPortSetBusDataByOffset" => "StorPortSetBusDataByOffset",
        "ScsiPortValidateRange" => "StorPortValidateRange",
        "ScsiPortLogError" => "StorPortLogError",
        "ScsiPortGetSrb" => "StorPortGetSrb",
        "ScsiPortCompleteRequest" => "StorPortCompleteRequest",
        "ScsiPortNotification" => "StorPortNotification",
        "ScsiDebugPrint" => "StorPortDebugPrint",
        "ScsiPortReadRegisterUchar" => "StorPortReadRegisterUchar",
        "ScsiPortReadRegisterUshort" => "StorPortReadRegisterUshort",
        "ScsiPortReadRegisterUlong" => "StorPortReadRegisterUlong",
        "ScsiPortWriteRegisterUchar" => "StorPortWriteRegisterUchar",
        "ScsiPortWriteRegisterUshort" => "StorPortWriteRegisterUshort",
        "ScsiPortWriteRegisterUlong" => "StorPortWriteRegisterUlong",
        other => other,
    }
}

impl MachineCore {
    /// `StorPortGetUncachedExtension`: from `HwStorFindAdapter` only, for a bus master, with the
    /// `ConfigInfo` it depends on already set (bug check 0xF1/0x2002,
    /// `DBG:bug-check-0xf1--scsi-verifier-detected-violation`; `DT:dv-storport-verification`).
    /// "If the memory was previously allocated, the virtual address pointer to the current
    /// uncached extension is returned" (`DDI-storport:nf-storport-storportgetuncachedextension`):
    /// a second call, or a call in a later `HwStorFindAdapter`, gets the same buffer, untouched.
    pub(crate) fn stor_get_uncached_extension(&self, ad: &Adapter, routine: Routine, config: *mut stor::PORT_CONFIGURATION_INFORMATION, bytes: u32) -> PVOID {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static("StorPortGetUncachedExtension")), ("bytes", J::from(bytes))]);
        let mut st = ad.st();
        let ours = st.stor.as_ref().map_or(0, |s| s.find_cfg);
        let master = if config.is_null() {
            false
        } else {
            // SAFETY: a non-NULL ConfigInfo pointer from the miniport; compared with the port's
            // below before any other use.
            let master = unsafe { std::ptr::addr_of!((*config).Master) };
            // SAFETY: as above.
            unsafe { master.read_unaligned() != FALSE }
        };
        let problem = if routine != Routine::FindAdapter {
            Some(format!("called from {}", routine.name_in(self.port)))
        } else if config.is_null() || config as usize != ours {
            Some("ConfigInfo is not the one passed to HwStorFindAdapter".to_string())
        } else if !master {
            Some("ConfigInfo->Master is FALSE (bus-master adapters only)".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            drop(st);
            self.violation(idx, Rule::StorUncachedExtension, [u64::from(bytes), 0, 0], format!("StorPortGetUncachedExtension: {p}"));
            return std::ptr::null_mut();
        }
        // SAFETY: the ConfigInfo the port passed to the running HwStorFindAdapter (checked above).
        let fields = uncached_fields(unsafe { &*config });
        if let Some(s) = st.stor.as_mut() {
            s.uncached_snapshot = Some(fields);
        }
        if let Some(u) = &st.uncached {
            return u.va().cast();
        }
        match ad.dma.alloc(bytes as usize, Layout::Contiguous) {
            Ok(r) => {
                let p = r.va();
                st.uncached = Some(r);
                p.cast()
            }
            Err(_) => std::ptr::null_mut(),
        }
    }

    /// `StorPortGetScatterGatherList`: the list the port built for an outstanding request, valid
    /// until it completes (`DDI-storport:nf-storport-storportgetscattergatherlist`); NULL for a
    /// request without data.
    pub(crate) fn stor_get_scatter_gather_list(&self, ad: &Adapter, srb: usize) -> PVOID {
        let idx = Some(ad.index);
        let st = ad.st();
        let found = st.active.get(&srb).map(|a| (a.preq.id, a.block.sg_list().map_or(std::ptr::null_mut(), |l| l.va().cast())));
        let completed = found.is_none() && st.quarantine.iter().any(|q| q.srb == srb);
        drop(st);
        if let Some((id, list)) = found {
            self.trace(idx, "port", &[("fn", J::Static("StorPortGetScatterGatherList")), ("srb", J::U(id))]);
            return list;
        }
        self.trace(idx, "port", &[("fn", J::Static("StorPortGetScatterGatherList")), ("srb", J::Null)]);
        let (rule, what) = if completed { (Rule::StorCompletedSrbPassed, "the completed SRB") } else { (Rule::StorBadServiceArgument, "an SRB that is not outstanding") };
        self.violation(idx, rule, [srb as u64, 0, 0], format!("StorPortGetScatterGatherList with {what} {srb:#x}"));
        std::ptr::null_mut()
    }
}

/*
 * pvscsi.h - definitions of the C reference PVSCSI SCSI Port miniport: the headers it is
 * built against, the register accessors, the layout of the uncached extension and the
 * device extension.
 *
 * Citation keys (DDI:, KG:, REF:) are those of shared/reference/scsiport-contract.md; the
 * Rust driver in driver/ cites the same pages.
 */

#ifndef PVSCSI_H
#define PVSCSI_H

/*
 * A SCSI Port miniport is built against miniport.h, srb.h and scsi.h only: it may call
 * ScsiPortXxx routines and nothing else, and must not link ntoskrnl.lib or hal.lib
 * (KG:scsi-port-driver-overview). MinGW-w64's miniport.h does not stand alone as the WDK's
 * does; ntdef.h gives it the basic types. intrin.h gives the interlocked and barrier
 * intrinsics, which compile to instructions, not imports.
 */
#include <ntdef.h>
#include <ddk/miniport.h>
#include <ddk/srb.h>
#include <ddk/scsi.h>
#include <intrin.h>

#include "pvscsi_hw.h"

/*
 * Register accessors on x64.
 *
 * On x64, srb.h turns ScsiPortReadRegisterUlong and ScsiPortWriteRegisterUlong into the
 * macros READ_REGISTER_ULONG and WRITE_REGISTER_ULONG, which the WDK defines as inline
 * volatile accesses (DDI:nf-srb-scsiportreadregisterulong; contract section 1.4): an x64
 * miniport touches its registers directly and imports no accessor from scsiport.sys (the
 * image checker refuses such an import). MinGW-w64's headers define those two names only in
 * wdm.h, which a miniport does not include; without a definition GCC would compile every
 * register access as a call to an undeclared READ_REGISTER_ULONG, without a warning because
 * the macro comes from a system header, and the link would look for an ntoskrnl routine. So
 * they are defined here as the WDK defines them for AMD64: a compiler barrier before a read,
 * a full fence after a write. Only the 32-bit memory-space forms exist: PVSCSI has 32-bit
 * registers only, and the driver uses the memory BAR (pvscsi-facts.md Section 2).
 */
/*
 * KeMemoryBarrier (wdm.h, which a miniport does not include) on AMD64: a locked instruction on
 * the stack, which orders every earlier load and store before every later one. (MinGW-w64's
 * __faststorefence is an SFENCE, which orders stores only, and needs SSE.)
 */
FORCEINLINE VOID PvscsiMemoryBarrier(VOID)
{
    LONG volatile barrier = 0;

    _InterlockedOr(&barrier, 0);
}

#if defined(_M_AMD64) && !defined(READ_REGISTER_ULONG)
FORCEINLINE ULONG READ_REGISTER_ULONG(volatile ULONG *Register)
{
    _ReadWriteBarrier();
    return *Register;
}

FORCEINLINE VOID WRITE_REGISTER_ULONG(volatile ULONG *Register, ULONG Value)
{
    *Register = Value;
    PvscsiMemoryBarrier();
}
#endif

/*
 * The uncached extension.
 *
 * Everything the device reaches by DMA that the driver owns lives in the one physically
 * contiguous common buffer SCSI Port gives a bus master (DDI:nf-srb-scsiportgetuncachedextension):
 * the rings-state page, the request, completion and message rings (page aligned, addressed by
 * page number), then per request slot a scatter-gather list and a sense buffer. Sense goes to
 * the driver's own buffer and is copied into the SRB afterwards, so a device that reports
 * more sense than asked for can never write past what the driver owns.
 */
#define PVSCSI_SG_LIST_BYTES    1024    /* per slot; divides the page size, so a list never crosses a page (Section 5.4) */
#define PVSCSI_SG_ELEMENTS      (PVSCSI_SG_LIST_BYTES / sizeof(PVSCSI_SG_ELEMENT))
#define PVSCSI_SENSE_BYTES      256     /* per slot: the largest SenseInfoBufferLength (a UCHAR), rounded up */
#define PVSCSI_MAX_TRANSFER     (128 * 1024)                        /* MaximumTransferLength */
#define PVSCSI_PHYSICAL_BREAKS  (PVSCSI_MAX_TRANSFER / PVSCSI_PAGE_SIZE) /* elements - 1 at any alignment */
#define PVSCSI_MAX_SLOTS        64      /* the slot bitmap is a ULONGLONG */

typedef struct _PVSCSI_LAYOUT {
    ULONG Slots;        /* request slots: outstanding requests at most */
    ULONG ReqPages;
    ULONG CmpPages;
    ULONG MsgPages;     /* 0: no message ring */
    ULONG ReqOffset;    /* the rings-state page is at offset 0 */
    ULONG CmpOffset;
    ULONG MsgOffset;
    ULONG SgOffset;     /* per-slot scatter-gather lists */
    ULONG SenseOffset;  /* per-slot sense buffers */
    ULONG Total;        /* bytes to ask for */
} PVSCSI_LAYOUT, *PPVSCSI_LAYOUT;

#define PVSCSI_LAYOUT_SG(s, r, c, m)    (PVSCSI_PAGE_SIZE * (1 + (r) + (c) + (m)))
#define PVSCSI_LAYOUT_TOTAL(s, r, c, m) \
    (PVSCSI_LAYOUT_SG(s, r, c, m) + (s) * PVSCSI_SG_LIST_BYTES + (s) * PVSCSI_SENSE_BYTES)
#define PVSCSI_LAYOUT_INIT(s, r, c, m) {                                    \
    (s), (r), (c), (m),                                                     \
    PVSCSI_PAGE_SIZE,                                                       \
    PVSCSI_PAGE_SIZE * (1 + (r)),                                           \
    PVSCSI_PAGE_SIZE * (1 + (r) + (c)),                                     \
    PVSCSI_LAYOUT_SG(s, r, c, m),                                           \
    PVSCSI_LAYOUT_SG(s, r, c, m) + (s) * PVSCSI_SG_LIST_BYTES,              \
    PVSCSI_LAYOUT_TOTAL(s, r, c, m) }

/*
 * The normal layout: 64 slots (queue depth 64), a 2-page request ring (64 entries), a 1-page
 * completion ring (128 entries) and a message ring; 100 KiB in all.
 */
#define PVSCSI_NORMAL_SLOTS         64
#define PVSCSI_NORMAL_REQ_PAGES     2
#define PVSCSI_NORMAL_CMP_PAGES     1
#define PVSCSI_NORMAL_MSG_PAGES     1
#define PVSCSI_NORMAL_LAYOUT(macro) \
    macro(PVSCSI_NORMAL_SLOTS, PVSCSI_NORMAL_REQ_PAGES, PVSCSI_NORMAL_CMP_PAGES, PVSCSI_NORMAL_MSG_PAGES)
/*
 * The crash-dump layout: the dump stack wants the uncached extension under 32 KiB
 * (KG:restrictions-on-miniport-drivers-that-manage-the-boot-drive), and there is no hot-plug
 * to watch, so 8 slots and no message ring.
 */
#define PVSCSI_DUMP_SLOTS           8
#define PVSCSI_DUMP_REQ_PAGES       1
#define PVSCSI_DUMP_CMP_PAGES       1
#define PVSCSI_DUMP_MSG_PAGES       0
#define PVSCSI_DUMP_LAYOUT(macro) \
    macro(PVSCSI_DUMP_SLOTS, PVSCSI_DUMP_REQ_PAGES, PVSCSI_DUMP_CMP_PAGES, PVSCSI_DUMP_MSG_PAGES)

/*
 * Linux's and FreeBSD's ring-full check, outstanding < request entries, follows from the slot
 * count, and the completion ring holds every outstanding request (Section 5.2, Q7).
 */
#define PVSCSI_LAYOUT_FITS(s, r, c, m) \
    ((s) <= (r) * PVSCSI_REQ_DESCS_PER_PAGE && (r) * PVSCSI_REQ_DESCS_PER_PAGE <= (c) * PVSCSI_CMP_DESCS_PER_PAGE \
     && (s) <= PVSCSI_MAX_SLOTS)
C_ASSERT(PVSCSI_NORMAL_LAYOUT(PVSCSI_LAYOUT_FITS));
C_ASSERT(PVSCSI_DUMP_LAYOUT(PVSCSI_LAYOUT_FITS));
C_ASSERT(PVSCSI_NORMAL_LAYOUT(PVSCSI_LAYOUT_TOTAL) == 100 * 1024);
C_ASSERT(PVSCSI_DUMP_LAYOUT(PVSCSI_LAYOUT_TOTAL) < 32 * 1024);
C_ASSERT(PVSCSI_PHYSICAL_BREAKS < PVSCSI_SG_ELEMENTS);
C_ASSERT(PVSCSI_PAGE_SIZE % PVSCSI_SG_LIST_BYTES == 0);

/*
 * A request slot: the SRB the device is working on and the generation that makes its context
 * unique, so that a stale or forged completion is recognised.
 */
typedef struct _PVSCSI_SLOT {
    PSCSI_REQUEST_BLOCK Srb;    /* NULL: free */
    ULONG Generation;           /* 24 bits */
    BOOLEAN Aborting;           /* ABORT_CMD sent for it */
    ULONG Sent;                 /* DataLen the device was given: at most DataTransferLength, less
                                   when the CDB transfers less, which is then an underrun */
} PVSCSI_SLOT, *PPVSCSI_SLOT;

/*
 * Requests HwScsiStartIo can park while the enable callback runs (see "Serialisation" in
 * pvscsi.c). The port calls HwScsiStartIo again only after the miniport signals readiness, and
 * the enable callback does that once, so a few are plenty.
 */
#define PVSCSI_PARKED_REQUESTS  4

/* The device extension. SCSI Port allocates it zero-filled (DDI:ns-srb-_hw_initialization_data). */
typedef struct _PVSCSI_ADAPTER {
    /* Serialisation with HwScsiEnableInterruptsCallback. */
    LONG volatile Lock;
    PSCSI_REQUEST_BLOCK volatile Parked[PVSCSI_PARKED_REQUESTS];

    PUCHAR Registers;               /* ScsiPortGetDeviceBase; NULL until mapped */
    PUCHAR Uncached;                /* ScsiPortGetUncachedExtension */
    ULONGLONG UncachedPa;           /* its bus address */
    const PVSCSI_LAYOUT *Layout;

    BOOLEAN DumpMode;
    BOOLEAN Running;                /* rings set up, requests accepted */
    BOOLEAN MsgRing;                /* SETUP_MSG_RING succeeded */
    BOOLEAN ReqCallThreshold;       /* SETUP_REQCALLTHRESHOLD enabled the threshold (VMware) */
    BOOLEAN Deferred;               /* the ISR masked the HBA; the disable callback has not run */
    BOOLEAN OweNextRequest;         /* a request was turned away BUSY without NextRequest */
    UCHAR MaxTargets;
    ULONG EnabledMask;              /* INTR_MASK while interrupts are enabled */
    ULONG SavedStatus;              /* INTR_STATUS bits the ISR saw, for the enable callback */

    ULONG ReqProd;                  /* request producer index; the device only reads it */
    ULONG CmpCons;                  /* completion consumer index */
    ULONG MsgCons;                  /* message consumer index */
    ULONGLONG Busy;                 /* bit n set: slot n holds a request */
    PVSCSI_SLOT Slots[PVSCSI_MAX_SLOTS];

    /*
     * The logical block size of each target, from its last READ CAPACITY answer; 0 when unknown
     * (PvscsiLearnBlockSize). It holds READ and WRITE to the length of their CDB.
     */
    ULONG BlockSizes[SCSI_MAXIMUM_TARGETS_PER_BUS];

    /*
     * Device misbehaviour the driver survived, for a look in a memory dump; nothing depends
     * on them.
     */
    ULONG RejectedCompletions;      /* a context that named no outstanding request */
    ULONG BadIndexes;               /* a producer index out of range */
    ULONG LayoutFaults;             /* a request that did not fit its slot */
} PVSCSI_ADAPTER, *PPVSCSI_ADAPTER;

/* The routines SCSI Port calls, named as the documentation names them. */
ULONG DriverEntry(PVOID DriverObject, PVOID Argument2);
ULONG PvscsiHwScsiFindAdapter(PVOID HwDeviceExtension, PVOID HwContext, PVOID BusInformation,
                              PCHAR ArgumentString, PPORT_CONFIGURATION_INFORMATION ConfigInfo,
                              PBOOLEAN Again);
BOOLEAN PvscsiHwScsiInitialize(PVOID HwDeviceExtension);
BOOLEAN PvscsiHwScsiStartIo(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb);
BOOLEAN PvscsiHwScsiInterrupt(PVOID HwDeviceExtension);
BOOLEAN PvscsiHwScsiEnableInterruptsCallback(PVOID HwDeviceExtension);
BOOLEAN PvscsiHwScsiDisableInterruptsCallback(PVOID HwDeviceExtension);
BOOLEAN PvscsiHwScsiResetBus(PVOID HwDeviceExtension, ULONG PathId);
SCSI_ADAPTER_CONTROL_STATUS PvscsiHwScsiAdapterControl(PVOID HwDeviceExtension,
                                                       SCSI_ADAPTER_CONTROL_TYPE ControlType,
                                                       PVOID Parameters);

#endif /* PVSCSI_H */

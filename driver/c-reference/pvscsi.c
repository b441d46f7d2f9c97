/*
 * pvscsi.c - a SCSI Port miniport for the VMware paravirtual SCSI HBA (PVSCSI, PCI 15AD:07C0),
 * written in C against the DDK headers, in the shape of Microsoft's classic SCSI Port samples.
 *
 * It is the C reference of the Rust driver in driver/: the same rings, uncached-extension
 * layout, request contexts, register accesses in the same order, the same limits and
 * recovery, so that the SCSI Port emulator's trace of this driver equals the Rust driver's,
 * event by event (tests/c_reference.rs). NOTES-FOR-PORTING.md maps each piece onto its Rust
 * counterpart.
 *
 * The interrupt path is the deferred one Microsoft documents (contract section 4.3):
 * HwScsiInterrupt claims the interrupt, acknowledges it, masks the HBA and requests
 * CallEnableInterrupts; HwScsiEnableInterruptsCallback drains the completion ring, completes
 * requests, asks for more and requests CallDisableInterrupts; HwScsiDisableInterruptsCallback
 * unmasks the HBA. PVSCSI suits this well: its line is INTR_STATUS & INTR_MASK, re-evaluated on
 * every mask write, so unmasking with completions still pending re-asserts the line and
 * nothing is lost (pvscsi-facts.md Sections 3 and 11).
 *
 * Everything the device writes (ring indexes, contexts, lengths, statuses) is untrusted: an
 * index out of range is ignored, a completion is accepted only for a context the driver
 * issued and has not seen complete, and sense lengths are bounded by both buffers.
 *
 * Build: cargo xtask sys --c-reference (MinGW-w64, no C runtime; see crates/xtask/src/c_reference.rs).
 */

#include "pvscsi.h"

/* The ID VMware reserves for the controller; reported as InitiatorBusId so SCSI Port does not scan it. */
#define PVSCSI_INITIATOR_ID     7
/* Targets when the device cannot say: QEMU does not implement CONFIG, and Linux assumes the same (Section 4.7, Q10). */
#define PVSCSI_DEFAULT_TARGETS  16

static const PVSCSI_LAYOUT PvscsiNormalLayout = PVSCSI_NORMAL_LAYOUT(PVSCSI_LAYOUT_INIT);
static const PVSCSI_LAYOUT PvscsiDumpLayout = PVSCSI_DUMP_LAYOUT(PVSCSI_LAYOUT_INIT);

static VOID PvscsiStartIo(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb);

/* --------------------------------------------------------------------------------------------
 * Hardware access: one small helper per hardware operation, in the manner of Linux's
 * vmw_pvscsi.c. Every register access of the driver is in this section.
 * ------------------------------------------------------------------------------------------ */

static ULONG
PvscsiReadRegister(PPVSCSI_ADAPTER Adapter, ULONG Offset)
{
    return ScsiPortReadRegisterUlong((PULONG)(Adapter->Registers + Offset));
}

static VOID
PvscsiWriteRegister(PPVSCSI_ADAPTER Adapter, ULONG Offset, ULONG Value)
{
    ScsiPortWriteRegisterUlong((PULONG)(Adapter->Registers + Offset), Value);
}

/* Reading INTR_STATUS does not clear it (Section 2). */
static ULONG
PvscsiReadIntrStatus(PPVSCSI_ADAPTER Adapter)
{
    return PvscsiReadRegister(Adapter, PVSCSI_REG_INTR_STATUS);
}

/* Write-1-to-clear: dropping the pending bits drops the line unless a new completion sets them again (Section 3). */
static VOID
PvscsiAckIntr(PPVSCSI_ADAPTER Adapter, ULONG Bits)
{
    PvscsiWriteRegister(Adapter, PVSCSI_REG_INTR_STATUS, Bits);
}

/*
 * INTR_MASK = 0 lowers the line at once and keeps the pending status, which is what
 * HwScsiInterrupt needs before it defers (Section 3).
 */
static VOID
PvscsiMaskIntr(PPVSCSI_ADAPTER Adapter)
{
    PvscsiWriteRegister(Adapter, PVSCSI_REG_INTR_MASK, 0);
}

/* With status still pending the device re-asserts the line at once, so nothing that arrived while masked is lost. */
static VOID
PvscsiUnmaskIntr(PPVSCSI_ADAPTER Adapter, ULONG Mask)
{
    PvscsiWriteRegister(Adapter, PVSCSI_REG_INTR_MASK, Mask);
}

/*
 * Issues a command with its descriptor and returns COMMAND_STATUS. The device runs the command
 * when the last word arrives, so the descriptor's size must be exact (Section 4.1, Q13).
 */
static ULONG
PvscsiWriteCommand(PPVSCSI_ADAPTER Adapter, ULONG Command, PVOID Descriptor, ULONG Length)
{
    PULONG words = (PULONG)Descriptor;
    ULONG i;

    PvscsiWriteRegister(Adapter, PVSCSI_REG_COMMAND, Command);
    for (i = 0; i < Length / sizeof(ULONG); i++) {
        PvscsiWriteRegister(Adapter, PVSCSI_REG_COMMAND_DATA, words[i]);
    }
    return PvscsiReadRegister(Adapter, PVSCSI_REG_COMMAND_STATUS);
}

/*
 * Whether the device knows a command: the interface header's probing convention is to write
 * the code alone and look for anything but 0xFFFFFFFF (Section 4.1).
 */
static BOOLEAN
PvscsiCommandSupported(PPVSCSI_ADAPTER Adapter, ULONG Command)
{
    PvscsiWriteRegister(Adapter, PVSCSI_REG_COMMAND, Command);
    return PvscsiReadRegister(Adapter, PVSCSI_REG_COMMAND_STATUS) != PVSCSI_COMMAND_STATUS_FAILED;
}

/*
 * ADAPTER_RESET: the device cancels everything, writes what completed into the old ring,
 * forgets the rings and clears INTR_STATUS without re-evaluating the line; INTR_MASK survives
 * (Section 7, Q11). Callers therefore acknowledge and rewrite the mask afterwards.
 */
static VOID
PvscsiAdapterReset(PPVSCSI_ADAPTER Adapter)
{
    PvscsiWriteCommand(Adapter, PVSCSI_CMD_ADAPTER_RESET, NULL, 0);
    PvscsiAckIntr(Adapter, PVSCSI_INTR_ALL_SUPPORTED);
}

/*
 * RESET_DEVICE for one target, addressed as its LUN 0, the only one PVSCSI exposes (Section 4.6):
 * a target reset's SRB Lun is not valid (DDI-storport:ns-storport-_scsi_request_block), so the
 * LUN bytes stay zero. Requests it cancels complete later through the ring with BUSRESET.
 */
static BOOLEAN
PvscsiResetDevice(PPVSCSI_ADAPTER Adapter, UCHAR Target)
{
    PVSCSI_CMD_DESC_RESET_DEVICE cmd = { 0 };

    cmd.Target = Target;
    return PvscsiWriteCommand(Adapter, PVSCSI_CMD_RESET_DEVICE, &cmd, sizeof(cmd)) == 0;
}

/*
 * ABORT_CMD for the request with this context (Section 4.5). The aborted request, if the
 * device still had it, completes later through the ring with ABORTQUEUE.
 */
static VOID
PvscsiAbortCommand(PPVSCSI_ADAPTER Adapter, ULONGLONG Context, UCHAR Target)
{
    PVSCSI_CMD_DESC_ABORT_CMD cmd = { 0 };

    cmd.Context = Context;
    cmd.Target = Target;
    PvscsiWriteCommand(Adapter, PVSCSI_CMD_ABORT_CMD, &cmd, sizeof(cmd));
}

/*
 * Rings the doorbell for the request just posted: KICK_RW_IO for READ/WRITE, KICK_NON_RW_IO
 * otherwise, the Linux convention, which is right on VMware and harmless on QEMU (Section 5.7).
 * With the request-call threshold on (VMware), a READ/WRITE is kicked only when
 * ReqProdIdx - ReqConsIdx >= ReqCallThreshold, Linux's pvscsi_kick_io rule; a threshold larger
 * than the ring can only be garbage and gets a kick. The full barrier orders the producer index
 * just stored before the loads of what the device writes (the store-then-load pair x86-64 may
 * reorder).
 */
static VOID
PvscsiKick(PPVSCSI_ADAPTER Adapter, BOOLEAN ReadWrite)
{
    volatile PVSCSI_RINGS_STATE *state = (volatile PVSCSI_RINGS_STATE *)Adapter->Uncached;
    ULONG consumed;
    ULONG threshold;

    if (ReadWrite && Adapter->ReqCallThreshold) {
        PvscsiMemoryBarrier();
        consumed = state->ReqConsIdx;
        threshold = state->ReqCallThreshold;
        if (threshold <= Adapter->Layout->ReqPages * PVSCSI_REQ_DESCS_PER_PAGE && Adapter->ReqProd - consumed < threshold) {
            return;
        }
    }
    PvscsiWriteRegister(Adapter, ReadWrite ? PVSCSI_REG_KICK_RW_IO : PVSCSI_REG_KICK_NON_RW_IO, 0);
}

/* --------------------------------------------------------------------------------------------
 * Memory. A miniport has no C runtime (it may not link libcntpr.lib, KG:scsi-port-driver-overview),
 * and on x64 ScsiPortMoveMemory is memmove, so the few copies are written out. The device reads
 * and writes the uncached extension behind the compiler's back: what it writes is read through
 * volatile pointers, once, into locals.
 * ------------------------------------------------------------------------------------------ */

static VOID
PvscsiZeroMemory(PVOID Buffer, ULONG Length)
{
    volatile UCHAR *bytes = (volatile UCHAR *)Buffer;
    ULONG i;

    for (i = 0; i < Length; i++) {
        bytes[i] = 0;
    }
}

static volatile PVSCSI_RINGS_STATE *
PvscsiRingsState(PPVSCSI_ADAPTER Adapter)
{
    return (volatile PVSCSI_RINGS_STATE *)Adapter->Uncached;
}

/* Bus address of a byte of the uncached extension. */
static ULONGLONG
PvscsiUncachedPa(PPVSCSI_ADAPTER Adapter, ULONG Offset)
{
    return Adapter->UncachedPa + Offset;
}

/* Page number of page Index of an area, or 0 past its last page (unused descriptor slots stay 0). */
static ULONGLONG
PvscsiAreaPpn(PPVSCSI_ADAPTER Adapter, ULONG Offset, ULONG Index, ULONG Pages)
{
    if (Index >= Pages) {
        return 0;
    }
    return PvscsiUncachedPa(Adapter, Offset + (Index << PVSCSI_PAGE_SHIFT)) >> PVSCSI_PAGE_SHIFT;
}

static ULONG
PvscsiLog2(ULONG PowerOfTwo)
{
    ULONG log2 = 0;

    while (PowerOfTwo > 1) {
        PowerOfTwo >>= 1;
        log2++;
    }
    return log2;
}

/* --------------------------------------------------------------------------------------------
 * What the driver needs to know about a CDB: which doorbell it rings, and how much data moves
 * which way as the device will see it.
 *
 * QEMU's pvscsi does not take the direction or the length of a transfer from the request: it
 * derives both from the CDB (QEMU scsi_req_parse_cdb, scsi_req_xfer and scsi_cmd_xfer_mode in
 * hw/scsi/scsi-bus.c, scsi_cdb_length and scsi_cdb_xfer in scsi/utils.c; the same in QEMU 7.2,
 * Debian 12's, and in current QEMU), and it never completes a request whose direction bits
 * contradict that (pvscsi-facts.md Q4: pvscsi_process_request_descriptor cancels a request it
 * never enqueued, and the next ADAPTER_RESET fails QEMU's assertion that its request list is
 * empty). PvscsiCdbTransfer reproduces that derivation for a disk, so the driver never sends a
 * request the device reads differently from the class driver.
 * ------------------------------------------------------------------------------------------ */

typedef enum _PVSCSI_DIRECTION {
    PvscsiDirectionNone,    /* no data phase */
    PvscsiDirectionIn,      /* device to memory */
    PvscsiDirectionOut      /* memory to device */
} PVSCSI_DIRECTION;

/* A CDB's data phase as the device derives it. */
typedef struct _PVSCSI_TRANSFER {
    PVSCSI_DIRECTION Direction;
    ULONGLONG Length;       /* 0 when Direction is PvscsiDirectionNone */
    BOOLEAN InBlocks;       /* Length counts logical blocks, whose size depends on the disk */
    BOOLEAN Media;          /* READ, WRITE or WRITE AND VERIFY: see PvscsiPlanRequest */
} PVSCSI_TRANSFER, *PPVSCSI_TRANSFER;

/* READ/WRITE(6/10/12/16): what Linux and FreeBSD send through KICK_RW_IO (Section 5.7). */
static BOOLEAN
PvscsiIsReadWrite(UCHAR Opcode)
{
    switch (Opcode) {
    case SCSIOP_READ6: case SCSIOP_WRITE6:
    case SCSIOP_READ: case SCSIOP_WRITE:
    case SCSIOP_READ12: case SCSIOP_WRITE12:
    case SCSIOP_READ16: case SCSIOP_WRITE16:
        return TRUE;
    default:
        return FALSE;
    }
}

/*
 * Byte Index of the request's CDB, 0 past CdbLength: the bytes of Srb->Cdb beyond it are
 * whatever the class driver left there, and the device never sees them.
 */
static ULONG
PvscsiCdbByte(PSCSI_REQUEST_BLOCK Srb, ULONG Index)
{
    return Index < Srb->CdbLength && Index < sizeof(Srb->Cdb) ? Srb->Cdb[Index] : 0;
}

/* Count big-endian bytes of the CDB from Index. */
static ULONGLONG
PvscsiCdbField(PSCSI_REQUEST_BLOCK Srb, ULONG Index, ULONG Count)
{
    ULONGLONG value = 0;
    ULONG i;

    for (i = 0; i < Count; i++) {
        value = (value << 8) | PvscsiCdbByte(Srb, Index + i);
    }
    return value;
}

/*
 * The CDB length of an opcode's group; 0 for groups 3, 6 and 7, which QEMU refuses (INVALID
 * COMMAND OPERATION CODE, no data phase: scsi_cdb_length).
 */
static ULONG
PvscsiCdbGroupLength(UCHAR Opcode)
{
    switch (Opcode >> 5) {
    case 0:
        return 6;
    case 1:
    case 2:
        return 10;
    case 4:
        return 16;
    case 5:
        return 12;
    default:
        return 0;
    }
}

/*
 * WRITE SAME(10/16) with NDOB (byte 1 bit 0, "no data-out buffer"): QEMU derives no data phase
 * and completes the command GOOD without writing anything (scsi_req_xfer gives it no length,
 * scsi_disk_emulate_command then completes it; the zeroing in scsi_disk_emulate_write_same is
 * reached only with a data phase), in 7.2 and now.
 */
static BOOLEAN
PvscsiIsWriteSameWithoutData(PSCSI_REQUEST_BLOCK Srb)
{
    UCHAR opcode = Srb->Cdb[0];

    return (opcode == SCSIOP_WRITE_SAME || opcode == SCSIOP_WRITE_SAME16) && (PvscsiCdbByte(Srb, 1) & 0x01) != 0;
}

/*
 * QEMU's list of data-out opcodes (scsi_cmd_xfer_mode): every other opcode with a transfer
 * length moves data from the device, whatever the SCSI standard says. So WRITE ATOMIC(16),
 * COMPARE AND WRITE, SANITIZE, SECURITY PROTOCOL OUT and POPULATE TOKEN, data-out commands
 * missing here, are data-in to QEMU, and 0x24, reserved for a disk, is data-out.
 */
static BOOLEAN
PvscsiIsToDevice(UCHAR Opcode)
{
    switch (Opcode) {
    /* WRITE(6/10/12/16), WRITE AND VERIFY(10/12/16), VERIFY(10/12/16). */
    case 0x0A: case 0x2A: case 0x2E: case 0xAA: case 0xAE: case 0x8A: case 0x8E:
    case 0x2F: case 0xAF: case 0x8F:
    /* COPY, COPY AND VERIFY, COMPARE, CHANGE DEFINITION, LOG SELECT, MODE SELECT(6/10), SEND
       DIAGNOSTIC, WRITE BUFFER, FORMAT UNIT, REASSIGN BLOCKS. */
    case 0x18: case 0x3A: case 0x39: case 0x40: case 0x4C: case 0x15: case 0x55: case 0x1D:
    case 0x3B: case 0x04: case 0x07:
    /* SEARCH DATA EQUAL/HIGH/LOW(10/12), UPDATE BLOCK, WRITE LONG(10), WRITE SAME(10/16), UNMAP,
       MEDIUM SCAN. */
    case 0x31: case 0x30: case 0x32: case 0xB1: case 0xB0: case 0xB2: case 0x3D: case 0x3F:
    case 0x41: case 0x93: case 0x42: case 0x38:
    /* SEND VOLUME TAG, SEND CUE SHEET, SEND DVD STRUCTURE, PERSISTENT RESERVE OUT, MAINTENANCE
       OUT, and the scanner commands SET WINDOW and SCAN (SCAN shares START STOP UNIT's opcode,
       which has no data). */
    case 0xB6: case 0x5D: case 0xBF: case 0x5F: case 0xA4: case 0x24: case 0x1B:
        return TRUE;
    default:
        return FALSE;
    }
}

/* QEMU ata_passthrough_12_xfer / ata_passthrough_16_xfer for a disk. */
static VOID
PvscsiAtaPassThroughLength(PSCSI_REQUEST_BLOCK Srb, PPVSCSI_TRANSFER Transfer)
{
    ULONG flags = PvscsiCdbByte(Srb, 2);
    BOOLEAN extend = Srb->Cdb[0] == SCSIOP_ATA_PASSTHROUGH16 && (PvscsiCdbByte(Srb, 1) & 0x01) != 0;
    ULONGLONG count;

    /* T_LENGTH: where the count is, if anywhere. */
    switch (flags & 0x03) {
    case 1:     /* FEATURES */
        count = Srb->Cdb[0] == SCSIOP_ATA_PASSTHROUGH12 ? PvscsiCdbByte(Srb, 3) : PvscsiCdbByte(Srb, 4);
        if (extend) {
            count |= PvscsiCdbByte(Srb, 3) << 8;
        }
        break;
    case 2:     /* SECTOR COUNT */
        count = Srb->Cdb[0] == SCSIOP_ATA_PASSTHROUGH12 ? PvscsiCdbByte(Srb, 4) : PvscsiCdbByte(Srb, 6);
        if (extend) {
            count |= PvscsiCdbByte(Srb, 5) << 8;
        }
        break;
    default:
        count = 0;
        break;
    }
    /* BYTE_BLOCK: the count is in blocks (T_TYPE: 512-byte ones or logical ones), else in bytes. */
    if ((flags & 0x04) == 0) {
        Transfer->Length = count;
    } else if ((flags & 0x10) == 0) {
        Transfer->Length = count * 512;
    } else {
        Transfer->Length = count;
        Transfer->InBlocks = TRUE;
    }
}

/*
 * The data phase of the request's CDB (its CdbLength bytes) as QEMU derives it for a disk
 * (TYPE_DISK). A refused group, or a CDB shorter than its group, moves nothing: QEMU answers
 * INVALID COMMAND OPERATION CODE before anything moves.
 */
static VOID
PvscsiCdbTransfer(PSCSI_REQUEST_BLOCK Srb, PPVSCSI_TRANSFER Transfer)
{
    UCHAR opcode = Srb->Cdb[0];
    ULONG groupLength = PvscsiCdbGroupLength(opcode);
    ULONGLONG field;

    Transfer->Direction = PvscsiDirectionNone;
    Transfer->Length = 0;
    Transfer->InBlocks = FALSE;
    Transfer->Media = FALSE;
    if (groupLength == 0 || Srb->CdbLength < groupLength) {
        return;
    }

    /* scsi_cdb_xfer: the group's transfer length field. */
    switch (opcode >> 5) {
    case 0:
        field = PvscsiCdbByte(Srb, 4);
        break;
    case 1:
    case 2:
        field = PvscsiCdbField(Srb, 7, 2);
        break;
    case 4:
        field = PvscsiCdbField(Srb, 10, 4);
        break;
    default:
        field = PvscsiCdbField(Srb, 6, 4);
        break;
    }

    /* scsi_req_xfer for a disk; the cases follow QEMU's, one group of opcodes each. */
    switch (opcode) {
    /* TEST UNIT READY, REZERO UNIT (REWIND), START STOP UNIT, SEEK(6) (SET CAPACITY), WRITE
       FILEMARKS(6/16), SPACE, RESERVE(6), RELEASE(6), ERASE, PREVENT ALLOW MEDIUM REMOVAL,
       SEEK(10), SYNCHRONIZE CACHE(10/16), LOCATE(16), LOCK UNLOCK CACHE, SET CD SPEED, SET
       LIMITS, WRITE LONG(10), UPDATE BLOCK, RESERVE TRACK, SET READ AHEAD, PRE-FETCH(10/16),
       ALLOW OVERWRITE: no data. */
    case 0x00: case 0x01: case 0x1B: case 0x0B: case 0x10: case 0x80: case 0x11: case 0x16:
    case 0x17: case 0x19: case 0x1E: case 0x2B: case 0x35: case 0x91: case 0x92: case 0x36:
    case 0xBB: case 0x33: case 0x3F: case 0x3D: case 0x53: case 0xA7: case 0x34: case 0x90:
    case 0x82:
        break;
    /* VERIFY(10/12/16): data only with BYTCHK; one block with BYTCHK 11b. */
    case 0x2F: case 0xAF: case 0x8F:
        switch (PvscsiCdbByte(Srb, 1) & 0x06) {
        case 0x02:
            Transfer->Length = field;
            break;
        case 0x06:
            Transfer->Length = 1;
            break;
        default:
            break;
        }
        Transfer->InBlocks = TRUE;
        break;
    /* WRITE SAME(10/16): one block, none with NDOB. */
    case 0x41: case 0x93:
        Transfer->Length = (PvscsiCdbByte(Srb, 1) & 0x01) == 0 ? 1 : 0;
        Transfer->InBlocks = TRUE;
        break;
    /* READ CAPACITY(10), READ BLOCK LIMITS. */
    case 0x25:
        Transfer->Length = 8;
        break;
    case 0x05:
        Transfer->Length = 6;
        break;
    /* SEND VOLUME TAG / SET STREAMING: bytes 8-9 on a disk. */
    case 0xB6:
        Transfer->Length = PvscsiCdbField(Srb, 8, 2);
        break;
    /* READ(6), READ REVERSE(6), WRITE(6): 0 means 256 blocks. */
    case 0x08: case 0x0F: case 0x0A:
        Transfer->Length = field == 0 ? 256 : field;
        Transfer->InBlocks = TRUE;
        Transfer->Media = opcode != 0x0F;
        break;
    /* READ/WRITE/WRITE AND VERIFY(10/12/16). */
    case 0x28: case 0xA8: case 0x88: case 0x2A: case 0xAA: case 0x8A: case 0x2E: case 0xAE: case 0x8E:
        Transfer->Length = field;
        Transfer->InBlocks = TRUE;
        Transfer->Media = TRUE;
        break;
    /* FORMAT UNIT: the parameter list header with FMTDATA (8 bytes with LONGLIST). */
    case 0x04:
        switch (PvscsiCdbByte(Srb, 1) & 0x30) {
        case 0x10:
            Transfer->Length = 4;
            break;
        case 0x30:
            Transfer->Length = 8;
            break;
        default:
            break;
        }
        break;
    /* INQUIRY, RECEIVE DIAGNOSTIC RESULTS, SEND DIAGNOSTIC: bytes 3-4. */
    case 0x12: case 0x1C: case 0x1D:
        Transfer->Length = PvscsiCdbField(Srb, 3, 2);
        break;
    /* READ CD, READ BUFFER, WRITE BUFFER, SEND CUE SHEET: bytes 6-8. */
    case 0xBE: case 0x3C: case 0x3B: case 0x5D:
        Transfer->Length = PvscsiCdbField(Srb, 6, 3);
        break;
    /* PERSISTENT RESERVE OUT: bytes 5-8. */
    case 0x5F:
        Transfer->Length = PvscsiCdbField(Srb, 5, 4);
        break;
    /* ATA PASS-THROUGH(12/16): from the T_LENGTH, BYTE_BLOCK and T_TYPE fields. */
    case SCSIOP_ATA_PASSTHROUGH12: case SCSIOP_ATA_PASSTHROUGH16:
        PvscsiAtaPassThroughLength(Srb, Transfer);
        break;
    default:
        Transfer->Length = field;
        break;
    }

    /* scsi_cmd_xfer_mode. */
    if (Transfer->Length == 0) {
        Transfer->Direction = PvscsiDirectionNone;
        Transfer->Media = FALSE;
    } else if (opcode == SCSIOP_ATA_PASSTHROUGH12 || opcode == SCSIOP_ATA_PASSTHROUGH16) {
        /* T_DIR. */
        Transfer->Direction = (PvscsiCdbByte(Srb, 2) & 0x08) != 0 ? PvscsiDirectionIn : PvscsiDirectionOut;
    } else {
        Transfer->Direction = PvscsiIsToDevice(opcode) ? PvscsiDirectionOut : PvscsiDirectionIn;
    }
}

/*
 * Whether Bytes can be a logical block size: a multiple of 512 up to 64 KiB (QEMU's disks, whose
 * MODE SELECT may set any multiple of 512 up to 65024; VMware's 512 and 4096).
 */
static BOOLEAN
PvscsiIsPlausibleBlockSize(ULONGLONG Bytes)
{
    return Bytes >= 512 && Bytes <= 0x10000 && Bytes % 512 == 0;
}

/*
 * Plans a request from its CDB, its flags and its buffer: the direction bits and how many bytes
 * of the buffer the device gets (DataLen). Returns FALSE when the request must not go to the
 * device; the caller completes it SRB_STATUS_INVALID_REQUEST, "the request contains invalid
 * parameters" (DDI:ns-srb-_scsi_request_block).
 *
 * The device derives a command's direction and length from the CDB alone (PvscsiCdbTransfer), so
 * the request it is given must agree with that:
 * - A direction contradicting the device's is refused: QEMU never completes such a request, and
 *   its next adapter reset aborts QEMU (pvscsi-facts.md Q4); sent without direction bits, data
 *   would move the other way than the class driver asked.
 * - A buffer shorter than a data-out transfer, or than a READ's blocks, is refused: QEMU moves
 *   what the buffer holds and completes GOOD, so a short WRITE would half happen and be reported
 *   done; with no buffer at all its DMA never completes. A data-in buffer shorter than an
 *   allocation length is sent as it is: the device stops at its end.
 * - A buffer longer than the transfer is sent only the transfer's bytes (QEMU moves the whole
 *   buffer, so a WRITE would overwrite blocks past the CDB's range), and the rest is reported as
 *   an underrun at completion (PvscsiCompleteOne).
 * - A transfer over MaximumTransferLength is refused: the port promised never to send one.
 * - WRITE SAME without a data-out buffer (NDOB) is refused: QEMU completes it GOOD and writes
 *   nothing.
 */
static BOOLEAN
PvscsiPlanRequest(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb, PULONG Direction, PULONG Send)
{
    ULONG srbDirection = Srb->SrbFlags & SRB_FLAGS_UNSPECIFIED_DIRECTION;
    ULONG length = Srb->DataTransferLength;
    ULONG blockSize = Adapter->BlockSizes[Srb->TargetId];
    PVSCSI_TRANSFER transfer;
    ULONGLONG wanted;

    if (length > PVSCSI_MAX_TRANSFER || PvscsiIsWriteSameWithoutData(Srb)) {
        return FALSE;
    }
    PvscsiCdbTransfer(Srb, &transfer);
    if (transfer.Direction == PvscsiDirectionNone) {
        *Direction = PVSCSI_FLAG_CMD_DIR_NONE;
        *Send = 0;
        return TRUE;
    }
    if ((srbDirection == SRB_FLAGS_DATA_IN && transfer.Direction == PvscsiDirectionOut) ||
        (srbDirection == SRB_FLAGS_DATA_OUT && transfer.Direction == PvscsiDirectionIn)) {
        return FALSE;
    }
    if (srbDirection == 0 && length != 0) {
        /* The class driver said no data moves, and gave a buffer anyway. */
        return FALSE;
    }
    *Direction = transfer.Direction == PvscsiDirectionIn ? PVSCSI_FLAG_CMD_DIR_TOHOST : PVSCSI_FLAG_CMD_DIR_TODEVICE;

    if (!transfer.InBlocks) {
        wanted = transfer.Length;
    } else if (blockSize != 0) {
        wanted = transfer.Length * blockSize;
    } else if (PvscsiIsPlausibleBlockSize(length / transfer.Length) &&
               (length / transfer.Length) * transfer.Length == length) {
        /* Before the first READ CAPACITY answer: the buffer must hold a whole number of blocks
           of a size a disk can have. */
        wanted = length;
    } else {
        return FALSE;
    }
    if (wanted <= length) {
        *Send = (ULONG)wanted;
#if defined(PVSCSI_BREAK_SEND_WHOLE_BUFFER)
        /* A deliberate mistake, compiled only into a test build (tests/c_reference.rs): the
           whole buffer goes to the device, which then moves all of it. */
        *Send = length;
#endif
    } else if (transfer.Direction == PvscsiDirectionIn && !transfer.Media) {
        *Send = length;
    } else {
        return FALSE;
    }
    return TRUE;
}

/*
 * Where a READ CAPACITY answer holds the logical block length: READ CAPACITY(10) at byte 4, READ
 * CAPACITY(16) (SERVICE ACTION IN(16), service action 0x10) at byte 8; 0 for any other command.
 */
static ULONG
PvscsiCapacityBlockLengthOffset(PSCSI_REQUEST_BLOCK Srb)
{
    if (Srb->Cdb[0] == SCSIOP_READ_CAPACITY) {
        return 4;
    }
    if (Srb->Cdb[0] == SCSIOP_SERVICE_ACTION_IN16 && (PvscsiCdbByte(Srb, 1) & 0x1F) == SERVICE_ACTION_READ_CAPACITY16) {
        return 8;
    }
    return 0;
}

/*
 * What a command that succeeded tells about its target: READ CAPACITY its logical block size,
 * read from the data buffer, which the port maps for this (MapBuffers TRUE; what the device
 * wrote is checked before use); MODE SELECT that it may have changed it (QEMU lets a block
 * descriptor set any multiple of 512 up to 65024), so it is unknown again.
 */
static VOID
PvscsiLearnBlockSize(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb)
{
    ULONG offset = PvscsiCapacityBlockLengthOffset(Srb);
    volatile UCHAR *data = (volatile UCHAR *)Srb->DataBuffer;
    ULONG size;

    if (offset != 0) {
        if (data == NULL || Srb->DataTransferLength < offset + 4) {
            return;
        }
        size = ((ULONG)data[offset] << 24) | ((ULONG)data[offset + 1] << 16) |
               ((ULONG)data[offset + 2] << 8) | data[offset + 3];
        if (PvscsiIsPlausibleBlockSize(size)) {
            Adapter->BlockSizes[Srb->TargetId] = size;
        }
    } else if (Srb->Cdb[0] == SCSIOP_MODE_SELECT || Srb->Cdb[0] == SCSIOP_MODE_SELECT10) {
        Adapter->BlockSizes[Srb->TargetId] = 0;
    }
}

/* --------------------------------------------------------------------------------------------
 * From a PVSCSI completion to what SCSI Port expects in the SRB.
 * ------------------------------------------------------------------------------------------ */

typedef struct _PVSCSI_OUTCOME {
    UCHAR SrbStatus;
    UCHAR ScsiStatus;
    BOOLEAN Underrun;           /* DataTransferLength becomes Transferred */
    ULONG Transferred;
    ULONG SenseBytes;           /* to copy, already bounded by both buffers */
    ULONG LogError;             /* ScsiPortLogError code, 0 for none */
} PVSCSI_OUTCOME, *PPVSCSI_OUTCOME;

/*
 * Maps a completion (Section 6) to the SRB's outcome.
 * - Host statuses follow the Linux and FreeBSD drivers' reading (Section 6.1): selection
 *   timeout means no device; resets mean SRB_STATUS_BUS_RESET; an abort the driver did not ask
 *   for (e.g. a hot-unplug purge) is SRB_STATUS_BUSY, so SCSI Port retries it.
 * - QEMU reports every residual as DATARUN with a transferred length of 0 (Section 6.3): with
 *   GOOD status that is a successful short answer whose length the driver cannot know. When the
 *   device reports a length (VMware), a shorter one is an underrun: SRB_STATUS_DATA_OVERRUN with
 *   the reduced length, as KG:error-handling-in-scsi-miniport-drivers requires.
 * - The SCSI status is one byte; a device writing more is taken at its low byte.
 */
static VOID
PvscsiClassify(USHORT HostStatus, USHORT ScsiStatus, ULONGLONG DataLen, ULONG SenseLen,
               ULONG Requested, UCHAR SenseCapacity, BOOLEAN Aborting, PPVSCSI_OUTCOME Outcome)
{
    UCHAR failed;

    Outcome->SrbStatus = SRB_STATUS_SUCCESS;
    Outcome->ScsiStatus = (UCHAR)ScsiStatus;
    Outcome->Underrun = FALSE;
    Outcome->Transferred = 0;
    Outcome->SenseBytes = 0;
    Outcome->LogError = 0;

    switch (HostStatus) {
    case BTSTAT_SUCCESS:
    case BTSTAT_LINKED_COMMAND_COMPLETED:
    case BTSTAT_LINKED_COMMAND_COMPLETED_WITH_FLAG:
    case BTSTAT_DATARUN:
    case BTSTAT_DATA_UNDERRUN:
        break;
    case BTSTAT_SENSFAILED:
        Outcome->SrbStatus = SRB_STATUS_REQUEST_SENSE_FAILED;
        return;
    default:
        switch (HostStatus) {
        case BTSTAT_SELTIMEO:
            /* Not logged: every empty target of a bus scan answers with it (Section 6.4). */
            failed = SRB_STATUS_SELECTION_TIMEOUT;
            break;
        case BTSTAT_NORESPONSE:
            failed = SRB_STATUS_NO_DEVICE;
            break;
        case BTSTAT_LUNMISMATCH:
            failed = SRB_STATUS_INVALID_LUN;
            break;
        case BTSTAT_BUSRESET:
        case BTSTAT_SENTRST:
        case BTSTAT_RECVRST:
            failed = SRB_STATUS_BUS_RESET;
            break;
        case BTSTAT_ABORTQUEUE:
            failed = Aborting ? SRB_STATUS_ABORTED : SRB_STATUS_BUSY;
            break;
        case BTSTAT_HATIMEOUT:
            failed = SRB_STATUS_COMMAND_TIMEOUT;
            Outcome->LogError = SP_REQUEST_TIMEOUT;
            break;
        case BTSTAT_SCSIPARITY:
            failed = SRB_STATUS_PARITY_ERROR;
            Outcome->LogError = SP_BUS_PARITY_ERROR;
            break;
        case BTSTAT_BUSFREE:
            failed = SRB_STATUS_UNEXPECTED_BUS_FREE;
            Outcome->LogError = SP_UNEXPECTED_DISCONNECT;
            break;
        case BTSTAT_INVPHASE:
            failed = SRB_STATUS_PHASE_SEQUENCE_FAILURE;
            Outcome->LogError = SP_PROTOCOL_ERROR;
            break;
        case BTSTAT_TAGREJECT:
        case BTSTAT_BADMSG:
            failed = SRB_STATUS_MESSAGE_REJECTED;
            Outcome->LogError = SP_PROTOCOL_ERROR;
            break;
        default:
            /* INVPARAM, HAHARDWARE, HASOFTWARE, DISCONNECT and anything unknown: the adapter
               failed the request. */
            failed = SRB_STATUS_ERROR;
            Outcome->LogError = SP_INTERNAL_ADAPTER_ERROR;
            break;
        }
        Outcome->SrbStatus = failed;
        Outcome->ScsiStatus = SCSISTAT_GOOD;
        return;
    }

    if (Outcome->ScsiStatus != SCSISTAT_GOOD) {
        Outcome->SrbStatus = SRB_STATUS_ERROR;
        if (Outcome->ScsiStatus == SCSISTAT_CHECK_CONDITION) {
            Outcome->SenseBytes = SenseLen;
            if (Outcome->SenseBytes > SenseCapacity) {
                Outcome->SenseBytes = SenseCapacity;
            }
            if (Outcome->SenseBytes > PVSCSI_SENSE_BYTES) {
                Outcome->SenseBytes = PVSCSI_SENSE_BYTES;
            }
        }
        return;
    }

    if (DataLen != 0 && DataLen < Requested) {
        Outcome->Underrun = TRUE;
        Outcome->Transferred = (ULONG)DataLen;
        Outcome->SrbStatus = SRB_STATUS_DATA_OVERRUN;
    } else if (DataLen > Requested) {
        Outcome->SrbStatus = SRB_STATUS_DATA_OVERRUN;
        Outcome->LogError = SP_PROTOCOL_ERROR;
    }
}

/* --------------------------------------------------------------------------------------------
 * Requests and their contexts.
 * ------------------------------------------------------------------------------------------ */

/*
 * A request context: slot + 1 in the low byte (never 0), the slot's generation above it, and
 * the upper 32 bits zero, as VMware requires (Section 5.3). A context is used again only once
 * the device can no longer hold its earlier use: its completion was consumed, or an
 * ADAPTER_RESET, which completes or cancels everything before it returns, came between
 * (Section 7). So the generation only has to tell a stale or duplicated completion apart within
 * one ring setup, and may start again from 0 in a fresh device extension (a PnP start, the
 * crash-dump instance): every session resets the adapter before its first request.
 */
static ULONGLONG
PvscsiEncodeContext(ULONG Slot, ULONG Generation)
{
    return (ULONGLONG)((Generation << 8) | ((Slot & 0xFF) + 1));
}

/* The slot and generation of a context the device returned; FALSE if it cannot be one of ours. */
static BOOLEAN
PvscsiDecodeContext(ULONGLONG Context, PULONG Slot, PULONG Generation)
{
    if ((Context >> 32) != 0 || (Context & 0xFF) == 0) {
        return FALSE;
    }
    *Slot = (ULONG)(Context & 0xFF) - 1;
    *Generation = (ULONG)Context >> 8;
    return TRUE;
}

/*
 * RequestComplete. SrbStatus keeps SRB_STATUS_AUTOSENSE_VALID, which the sense copy set. The
 * SRB belongs to the port again afterwards: it must not be touched or completed again
 * (DDI:nf-srb-scsiportnotification; Driver Verifier 0xF1/0x1003).
 */
static VOID
PvscsiCompleteRequest(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb, UCHAR SrbStatus)
{
    Srb->SrbStatus = SrbStatus | (Srb->SrbStatus & SRB_STATUS_AUTOSENSE_VALID);
    ScsiPortNotification(RequestComplete, Adapter, Srb);
}

/* Completes a request the driver will not send to the device, and signals readiness. */
static VOID
PvscsiRejectRequest(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb, UCHAR SrbStatus)
{
    PvscsiCompleteRequest(Adapter, Srb, SrbStatus);
    ScsiPortNotification(NextRequest, Adapter);
}

/* A free slot, its generation advanced, or PVSCSI_MAX_SLOTS when all are busy. */
static ULONG
PvscsiAllocateSlot(PPVSCSI_ADAPTER Adapter)
{
    ULONG slot;

    for (slot = 0; slot < Adapter->Layout->Slots; slot++) {
        if ((Adapter->Busy & (1ULL << slot)) == 0) {
            Adapter->Slots[slot].Generation = (Adapter->Slots[slot].Generation + 1) & 0x00FFFFFF;
            Adapter->Slots[slot].Aborting = FALSE;
            Adapter->Busy |= 1ULL << slot;
            return slot;
        }
    }
    return PVSCSI_MAX_SLOTS;
}

/* Frees a slot and returns the request it held, if any. */
static PSCSI_REQUEST_BLOCK
PvscsiReleaseSlot(PPVSCSI_ADAPTER Adapter, ULONG Slot)
{
    PSCSI_REQUEST_BLOCK srb = Adapter->Slots[Slot].Srb;

    Adapter->Busy &= ~(1ULL << Slot);
    Adapter->Slots[Slot].Srb = NULL;
    return srb;
}

/* --------------------------------------------------------------------------------------------
 * Bring-up.
 * ------------------------------------------------------------------------------------------ */

/*
 * SETUP_RINGS with all 132 words (Section 4.3), then checks that the device took it: status 0
 * and the ring sizes it wrote into the rings-state page.
 */
static BOOLEAN
PvscsiSetupRings(PPVSCSI_ADAPTER Adapter)
{
    const PVSCSI_LAYOUT *layout = Adapter->Layout;
    PVSCSI_CMD_DESC_SETUP_RINGS cmd;
    ULONG i;

    PvscsiZeroMemory(&cmd, sizeof(cmd));
    cmd.ReqRingNumPages = layout->ReqPages;
    cmd.CmpRingNumPages = layout->CmpPages;
    cmd.RingsStatePPN = Adapter->UncachedPa >> PVSCSI_PAGE_SHIFT;
    for (i = 0; i < PVSCSI_SETUP_RINGS_MAX_PAGES; i++) {
        cmd.ReqRingPPNs[i] = PvscsiAreaPpn(Adapter, layout->ReqOffset, i, layout->ReqPages);
        cmd.CmpRingPPNs[i] = PvscsiAreaPpn(Adapter, layout->CmpOffset, i, layout->CmpPages);
    }
    if (PvscsiWriteCommand(Adapter, PVSCSI_CMD_SETUP_RINGS, &cmd, sizeof(cmd)) != 0) {
        return FALSE;
    }
    return PvscsiRingsState(Adapter)->ReqNumEntriesLog2 == PvscsiLog2(layout->ReqPages * PVSCSI_REQ_DESCS_PER_PAGE) &&
           PvscsiRingsState(Adapter)->CmpNumEntriesLog2 == PvscsiLog2(layout->CmpPages * PVSCSI_CMP_DESCS_PER_PAGE);
}

/*
 * SETUP_MSG_RING (Section 4.4), when the device has it: hot-plug messages turn into
 * BusChangeDetected. Issued after SETUP_RINGS, as the interface requires.
 */
static BOOLEAN
PvscsiSetupMsgRing(PPVSCSI_ADAPTER Adapter)
{
    const PVSCSI_LAYOUT *layout = Adapter->Layout;
    PVSCSI_CMD_DESC_SETUP_MSG_RING cmd;
    ULONG i;

    if (layout->MsgPages == 0 || !PvscsiCommandSupported(Adapter, PVSCSI_CMD_SETUP_MSG_RING)) {
        return FALSE;
    }
    PvscsiZeroMemory(&cmd, sizeof(cmd));
    cmd.NumPages = layout->MsgPages;
    for (i = 0; i < PVSCSI_SETUP_MSG_RING_MAX_PAGES; i++) {
        cmd.RingPPNs[i] = PvscsiAreaPpn(Adapter, layout->MsgOffset, i, layout->MsgPages);
    }
    return PvscsiWriteCommand(Adapter, PVSCSI_CMD_SETUP_MSG_RING, &cmd, sizeof(cmd)) != PVSCSI_COMMAND_STATUS_FAILED;
}

/*
 * SETUP_REQCALLTHRESHOLD with Enable = 1, where the device has it (Section 4.8): probed first
 * (QEMU answers the probe 0xFFFFFFFF), then issued; the device took it when it answers neither 0
 * (Linux's pvscsi_setup_req_threshold reads any other status as enabled) nor 0xFFFFFFFF.
 */
static BOOLEAN
PvscsiSetupReqCallThreshold(PPVSCSI_ADAPTER Adapter)
{
    ULONG enable = 1;
    ULONG status;

    if (!PvscsiCommandSupported(Adapter, PVSCSI_CMD_SETUP_REQCALLTHRESHOLD)) {
        return FALSE;
    }
    status = PvscsiWriteCommand(Adapter, PVSCSI_CMD_SETUP_REQCALLTHRESHOLD, &enable, sizeof(enable));
    return status != 0 && status != PVSCSI_COMMAND_STATUS_FAILED;
}

/*
 * The number of targets the device reports through CONFIG (the controller page's numPhys,
 * Section 4.7), with the answer written to a page of the uncached extension not in use yet
 * (the first slot's scatter-gather list). QEMU does not implement CONFIG: 0, "cannot say".
 */
static UCHAR
PvscsiQueryMaxTargets(PPVSCSI_ADAPTER Adapter)
{
    PUCHAR scratch = Adapter->Uncached + Adapter->Layout->SgOffset;
    volatile USHORT *hostStatus = (volatile USHORT *)(scratch + PVSCSI_CONFIG_HEADER_HOST_STATUS);
    volatile USHORT *scsiStatus = (volatile USHORT *)(scratch + PVSCSI_CONFIG_HEADER_SCSI_STATUS);
    PVSCSI_CMD_DESC_CONFIG cmd = { 0 };
    ULONG targets = 0;

    PvscsiZeroMemory(scratch, PVSCSI_CONFIG_CONTROLLER_NUM_PHYS + 8);
    /* Pre-filled as failed, so a device that writes nothing reads as failure (as Linux does). */
    *hostStatus = BTSTAT_INVPARAM;
    *scsiStatus = SCSISTAT_CHECK_CONDITION;
    cmd.CmpAddr = PvscsiUncachedPa(Adapter, Adapter->Layout->SgOffset);
    cmd.ConfigPageAddress = (ULONGLONG)PVSCSI_CONFIG_CONTROLLER_ADDRESS << 32;
    cmd.ConfigPageNum = PVSCSI_CONFIG_PAGE_CONTROLLER;
    if (PvscsiWriteCommand(Adapter, PVSCSI_CMD_CONFIG, &cmd, sizeof(cmd)) != PVSCSI_COMMAND_STATUS_FAILED &&
        *hostStatus == BTSTAT_SUCCESS && *scsiStatus == SCSISTAT_GOOD) {
        targets = *(volatile ULONG *)(scratch + PVSCSI_CONFIG_CONTROLLER_NUM_PHYS);
    }
    PvscsiZeroMemory(scratch, PVSCSI_CONFIG_CONTROLLER_NUM_PHYS + 8);
    if (targets > SCSI_MAXIMUM_TARGETS_PER_BUS) {
        targets = SCSI_MAXIMUM_TARGETS_PER_BUS;
    }
    return (UCHAR)targets;
}

/*
 * How many times PvscsiResetAndSetup resets the adapter and sends SETUP_RINGS before it gives
 * the HBA up. A reset from the device side (the machine reset of Section 7, which clears the
 * pending command) between two of the command's 132 data words leaves the rest of them with no
 * command, each setting COMMAND_STATUS to -1 (Section 4.1): the rings do not exist. The next
 * try, from a fresh ADAPTER_RESET, is whole; a device that fails three in a row is not coming
 * back.
 */
#define PVSCSI_SETUP_ATTEMPTS 3

/*
 * Resets the adapter and sets the rings up afresh in the same memory, leaving the HBA masked
 * and EnabledMask saying what to unmask (bring-up unmasks in HwScsiInitialize, the others right
 * away). Used by bring-up, the bus reset and ScsiRestartAdapter. With JustReset the first try
 * sends no ADAPTER_RESET: the caller has sent one (bring-up, before it queried the device; the
 * bus reset, which drained the old ring since), and the device does nothing until SETUP_RINGS
 * (Section 7; the recipes of Section 9, as Linux's probe and host reset, reset once). A failed
 * try is still retried from a fresh reset.
 */
static BOOLEAN
PvscsiResetAndSetup(PPVSCSI_ADAPTER Adapter, BOOLEAN JustReset)
{
    volatile PVSCSI_RINGS_STATE *state = PvscsiRingsState(Adapter);
    ULONG attempt;

    if (Adapter->Registers == NULL || Adapter->Uncached == NULL) {
        return FALSE;
    }
    for (attempt = 0;; attempt++) {
        if (attempt == PVSCSI_SETUP_ATTEMPTS) {
            return FALSE;
        }
        PvscsiMaskIntr(Adapter);
        if (attempt > 0 || !JustReset) {
            PvscsiAdapterReset(Adapter);
        }
        /* The rings and the state page start from zero, as Linux does before SETUP_RINGS. */
        PvscsiZeroMemory(Adapter->Uncached, Adapter->Layout->SgOffset);
        if (PvscsiSetupRings(Adapter)) {
            break;
        }
    }
    /* Not in crash-dump mode, which keeps to the simplest protocol; an adapter reset turns it off.
       Before SETUP_MSG_RING, whose status then stays in COMMAND_STATUS, as in the Rust driver. */
    Adapter->ReqCallThreshold = !Adapter->DumpMode && PvscsiSetupReqCallThreshold(Adapter);
    Adapter->MsgRing = PvscsiSetupMsgRing(Adapter);
    /*
     * The device writes the starting indexes into the rings-state page as part of the setup
     * (0 on QEMU and in every open driver's experience, Section 4.3); take them from there
     * rather than assume them. They only ever select a slot through a mask.
     */
    Adapter->ReqProd = state->ReqProdIdx;
    Adapter->CmpCons = state->CmpConsIdx;
    Adapter->MsgCons = state->MsgConsIdx;
    if (Adapter->DumpMode) {
        Adapter->EnabledMask = 0;
    } else if (Adapter->MsgRing) {
        Adapter->EnabledMask = PVSCSI_INTR_CMPL_MASK | PVSCSI_INTR_MSG_MASK;
    } else {
        Adapter->EnabledMask = PVSCSI_INTR_CMPL_MASK;
    }
    PvscsiAckIntr(Adapter, PVSCSI_INTR_ALL_SUPPORTED);
    return TRUE;
}

/* INTR_MASK as it should be now: 0 while the deferred interrupt work is pending. */
static ULONG
PvscsiCurrentMask(PPVSCSI_ADAPTER Adapter)
{
    return Adapter->Deferred ? 0 : Adapter->EnabledMask;
}

/* --------------------------------------------------------------------------------------------
 * Serialisation with HwScsiEnableInterruptsCallback.
 *
 * SCSI Port runs nearly every miniport routine under its interrupt spin lock, but the enable
 * callback runs as a DPC outside it, and whether HwScsiStartIo can run on another processor
 * meanwhile is not documented (contract section 4.3, "[NOT DOCUMENTED]"). Both touch the slots
 * and the rings, so every routine that does takes this lock. It is never contended when the
 * port behaves as documented. Where waiting could deadlock against the port's interrupt lock
 * (the routines below hold it; the enable callback may need it for its notifications), nothing
 * waits: the ISR answers "not mine" (only the enable callback can hold the lock then, and it
 * runs with this HBA masked), and HwScsiStartIo treats each request the way the port will treat
 * its status. SCSI Port requeues an EXECUTE_SCSI request completed SRB_STATUS_BUSY
 * (KG:return-from-hwscsistartio), so that one is answered BUSY; it retries no other function,
 * and an abort or a bus reset answered BUSY would simply not be done. Those are parked instead,
 * and whoever holds the lock starts them as it lets go.
 * ------------------------------------------------------------------------------------------ */

static BOOLEAN
PvscsiTryAcquireLock(PPVSCSI_ADAPTER Adapter)
{
    return _InterlockedCompareExchange(&Adapter->Lock, 1, 0) == 0;
}

static VOID
PvscsiAcquireLock(PPVSCSI_ADAPTER Adapter)
{
    while (!PvscsiTryAcquireLock(Adapter)) {
        while (Adapter->Lock != 0) {
            _mm_pause();
        }
    }
}

static VOID
PvscsiReleaseLock(PPVSCSI_ADAPTER Adapter)
{
    _InterlockedExchange(&Adapter->Lock, 0);
}

static BOOLEAN
PvscsiParkRequest(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb)
{
    ULONG i;

    for (i = 0; i < PVSCSI_PARKED_REQUESTS; i++) {
        if (_InterlockedCompareExchangePointer((PVOID volatile *)&Adapter->Parked[i], Srb, NULL) == NULL) {
            return TRUE;
        }
    }
    return FALSE;
}

/* Takes the first parked request out, if there is one. */
static PSCSI_REQUEST_BLOCK
PvscsiUnparkRequest(PPVSCSI_ADAPTER Adapter)
{
    PSCSI_REQUEST_BLOCK srb;
    ULONG i;

    for (i = 0; i < PVSCSI_PARKED_REQUESTS; i++) {
        if (Adapter->Parked[i] != NULL) {
            srb = (PSCSI_REQUEST_BLOCK)_InterlockedExchangePointer((PVOID volatile *)&Adapter->Parked[i], NULL);
            if (srb != NULL) {
                return srb;
            }
        }
    }
    return NULL;
}

static BOOLEAN
PvscsiHasParkedRequests(PPVSCSI_ADAPTER Adapter)
{
    ULONG i;

    for (i = 0; i < PVSCSI_PARKED_REQUESTS; i++) {
        if (Adapter->Parked[i] != NULL) {
            return TRUE;
        }
    }
    return FALSE;
}

/*
 * Starts the requests HwScsiStartIo parked while the lock was held, for as long as there are
 * any and the lock can be had. If the lock is taken meanwhile, its holder does the same when it
 * lets go.
 */
static VOID
PvscsiStartParkedRequests(PPVSCSI_ADAPTER Adapter)
{
    PSCSI_REQUEST_BLOCK srb;

    while (PvscsiHasParkedRequests(Adapter)) {
        if (!PvscsiTryAcquireLock(Adapter)) {
            return;
        }
        while ((srb = PvscsiUnparkRequest(Adapter)) != NULL) {
            PvscsiStartIo(Adapter, srb);
        }
        PvscsiReleaseLock(Adapter);
    }
}

/* --------------------------------------------------------------------------------------------
 * Submission.
 * ------------------------------------------------------------------------------------------ */

/*
 * Returns the descriptor's DataAddr and the flag to set for the first Send bytes of the request's
 * buffer: a single segment goes directly in DataAddr with no list, as Linux and FreeBSD do, so the
 * device reads no element and none is written; several are written as the slot's scatter-gather
 * list. The pieces come from ScsiPortGetPhysicalAddress over DataBuffer
 * (DDI:nf-srb-scsiportgetphysicaladdress), each clamped to what remains of DataTransferLength, as
 * the port may report more, and then to what remains to be sent; no piece past the bytes sent is
 * asked for. The port never splits a transfer of MaximumTransferLength into more pieces than
 * NumberOfPhysicalBreaks allows, so a longer list is not one the device may get.
 */
static BOOLEAN
PvscsiMapData(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb, ULONG Slot, ULONG Send, PULONGLONG DataAddr,
              PULONG Flags)
{
    ULONG listOffset = Adapter->Layout->SgOffset + Slot * PVSCSI_SG_LIST_BYTES;
    PPVSCSI_SG_ELEMENT list = (PPVSCSI_SG_ELEMENT)(Adapter->Uncached + listOffset);
    SCSI_PHYSICAL_ADDRESS pa;
    ULONGLONG firstAddr = 0;
    ULONG firstLength = 0;
    ULONG offset = 0;
    ULONG left = Send;
    ULONG count = 0;
    ULONG length;

    *DataAddr = 0;
    *Flags = 0;
    if (Send == 0) {
        return TRUE;
    }
    while (left != 0) {
        if (offset >= Srb->DataTransferLength) {
            /* The buffer holds less than is to be sent. */
            return FALSE;
        }
        length = 0;
        pa = ScsiPortGetPhysicalAddress(Adapter, Srb, (PUCHAR)Srb->DataBuffer + offset, &length);
        if (pa.QuadPart == 0 || length == 0) {
            return FALSE;
        }
        if (length > Srb->DataTransferLength - offset) {
            length = Srb->DataTransferLength - offset;
        }
        offset += length;
        if (count > PVSCSI_PHYSICAL_BREAKS || count >= PVSCSI_SG_ELEMENTS) {
            return FALSE;
        }
        if (length > left) {
            length = left;
        }
        left -= length;
        if (count == 0) {
            /* Written as element 0 only if a second piece makes this a list. */
            firstAddr = (ULONGLONG)pa.QuadPart;
            firstLength = length;
        } else {
            if (count == 1) {
                list[0].Addr = firstAddr;
                list[0].Length = firstLength;
                list[0].Flags = 0;
            }
            list[count].Addr = pa.QuadPart;
            list[count].Length = length;
            list[count].Flags = 0;
        }
        count++;
    }
    if (count == 1) {
        *DataAddr = firstAddr;
    } else {
        *DataAddr = PvscsiUncachedPa(Adapter, listOffset);
        *Flags = PVSCSI_FLAG_CMD_WITH_SG_LIST;
    }
    return TRUE;
}

/* Fills the next request descriptor and publishes it (Sections 5.2, 5.3). */
static VOID
PvscsiPostRequest(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb, ULONG Slot, ULONGLONG DataAddr, ULONG Send,
                  ULONG Flags)
{
    const PVSCSI_LAYOUT *layout = Adapter->Layout;
    ULONG index = Adapter->ReqProd & (layout->ReqPages * PVSCSI_REQ_DESCS_PER_PAGE - 1);
    PPVSCSI_RING_REQ_DESC desc = (PPVSCSI_RING_REQ_DESC)(Adapter->Uncached + layout->ReqOffset) + index;
    UCHAR tag = SRB_SIMPLE_TAG_REQUEST;
    ULONG i;

    if ((Srb->SrbFlags & SRB_FLAGS_QUEUE_ACTION_ENABLE) != 0 &&
        (Srb->QueueAction == SRB_HEAD_OF_QUEUE_TAG_REQUEST || Srb->QueueAction == SRB_ORDERED_QUEUE_TAG_REQUEST)) {
        tag = Srb->QueueAction;
    }
    PvscsiZeroMemory(desc, sizeof(*desc));
    desc->Context = PvscsiEncodeContext(Slot, Adapter->Slots[Slot].Generation);
    desc->DataAddr = DataAddr;
    desc->DataLen = Send;
    desc->SenseAddr = PvscsiUncachedPa(Adapter, layout->SenseOffset + Slot * PVSCSI_SENSE_BYTES);
    desc->SenseLen = PVSCSI_SENSE_BYTES;
    desc->Flags = Flags;
    for (i = 0; i < Srb->CdbLength; i++) {
        desc->Cdb[i] = Srb->Cdb[i];
    }
    desc->CdbLen = Srb->CdbLength;
    desc->Lun[1] = Srb->Lun;        /* single-level LUN in byte 1 of the SAM LUN */
    desc->Tag = tag;
    desc->Bus = 0;
    desc->Target = Srb->TargetId;

    /* The descriptor must be visible before the producer index that publishes it, and the index
       before the doorbell: compiler barriers only, as in Linux's pvscsi_queue_ring. x86-64 keeps
       stores in order, the device only reads the index, and WRITE_REGISTER_ULONG fences on its
       own (Section 5.2). */
    _WriteBarrier();
    Adapter->ReqProd++;
    PvscsiRingsState(Adapter)->ReqProdIdx = Adapter->ReqProd;
    _WriteBarrier();
}

static VOID
PvscsiExecuteScsi(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb)
{
    ULONGLONG dataAddr;
    ULONG flags;
    ULONG direction;
    ULONG send;
    ULONG slot;

    if (!Adapter->Running) {
        /* SCSI Port sends nothing to a stopped adapter, so this is one whose reset failed (the
           rings could not be set up again): as far as I/O goes the HBA is gone. */
        PvscsiRejectRequest(Adapter, Srb, SRB_STATUS_NO_HBA);
        return;
    }
    if (Srb->PathId != 0) {
        PvscsiRejectRequest(Adapter, Srb, SRB_STATUS_INVALID_PATH_ID);
        return;
    }
    if (Srb->TargetId >= Adapter->MaxTargets) {
        PvscsiRejectRequest(Adapter, Srb, SRB_STATUS_INVALID_TARGET_ID);
        return;
    }
    if (Srb->CdbLength == 0 || Srb->CdbLength > sizeof(Srb->Cdb) ||
        !PvscsiPlanRequest(Adapter, Srb, &direction, &send)) {
        PvscsiRejectRequest(Adapter, Srb, SRB_STATUS_INVALID_REQUEST);
        return;
    }
    slot = PvscsiAllocateSlot(Adapter);
    if (slot == PVSCSI_MAX_SLOTS) {
        /* Every slot is busy: let the port retry, and signal readiness only when a completion
           frees a slot (KG:return-from-hwscsistartio). */
        PvscsiCompleteRequest(Adapter, Srb, SRB_STATUS_BUSY);
        Adapter->OweNextRequest = TRUE;
        return;
    }
    if (!PvscsiMapData(Adapter, Srb, slot, send, &dataAddr, &flags)) {
        Adapter->LayoutFaults++;
        PvscsiReleaseSlot(Adapter, slot);
        PvscsiRejectRequest(Adapter, Srb, SRB_STATUS_INVALID_REQUEST);
        return;
    }
    PvscsiPostRequest(Adapter, Srb, slot, dataAddr, send, flags | direction);
    Adapter->Slots[slot].Srb = Srb;
    Adapter->Slots[slot].Sent = send;
    PvscsiKick(Adapter, PvscsiIsReadWrite(Srb->Cdb[0]));
    /* A tagged request leaves the LU open for more; an untagged one must not (Driver Verifier
       0xF1/0x1005: NextLuRequest with an untagged request active). With MultipleRequestPerLu
       the port tags requests itself (DDI:ns-srb-_hw_initialization_data). */
    if (Srb->QueueTag != SP_UNTAGGED) {
        ScsiPortNotification(NextLuRequest, Adapter, Srb->PathId, Srb->TargetId, Srb->Lun);
    } else {
        ScsiPortNotification(NextRequest, Adapter);
    }
}

/*
 * SRB_FUNCTION_ABORT_COMMAND (KG:handling-srb-function-abort-command): if the request is still
 * outstanding, ask the device to abort it; the aborted request completes through the ring
 * (SRB_STATUS_ABORTED, or its own status if it finished first). Otherwise the abort fails.
 */
static VOID
PvscsiAbort(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb)
{
    PPVSCSI_SLOT slot;
    UCHAR status = SRB_STATUS_ABORT_FAILED;
    ULONG i;

    for (i = 0; Srb->NextSrb != NULL && i < PVSCSI_MAX_SLOTS; i++) {
        slot = &Adapter->Slots[i];
        if (slot->Srb == Srb->NextSrb) {
            if (!slot->Aborting) {
                slot->Aborting = TRUE;
                PvscsiAbortCommand(Adapter, PvscsiEncodeContext(i, slot->Generation), slot->Srb->TargetId);
            }
            status = SRB_STATUS_SUCCESS;
            break;
        }
    }
    PvscsiCompleteRequest(Adapter, Srb, status);
    ScsiPortNotification(NextRequest, Adapter);
}

/* Completes every outstanding request with SRB_STATUS_BUS_RESET. */
static VOID
PvscsiFailAll(PPVSCSI_ADAPTER Adapter)
{
    PSCSI_REQUEST_BLOCK srb;
    ULONG i;

    for (i = 0; i < PVSCSI_MAX_SLOTS; i++) {
        srb = PvscsiReleaseSlot(Adapter, i);
        if (srb != NULL) {
            PvscsiCompleteRequest(Adapter, srb, SRB_STATUS_BUS_RESET);
        }
    }
}

static BOOLEAN PvscsiDrainCompletions(PPVSCSI_ADAPTER Adapter);

/*
 * The bus reset of HwScsiResetBus and SRB_FUNCTION_RESET_BUS. It uses ADAPTER_RESET, which
 * resets every device on the bus like RESET_BUS but, unlike it, returns only when the device
 * has cancelled everything and stopped touching request memory (Section 7; Linux's host reset).
 * That is what lets every outstanding request be completed, once, before the routine returns,
 * as SCSI Port requires (REF:HwScsiResetBus). Before it lets go of the rings, ADAPTER_RESET
 * writes every completion the device still had, cancelled or finished, into the old completion
 * ring: that ring is drained once more, as Linux's host reset does, so that a request the device
 * had finished completes with its own status instead of SRB_STATUS_BUS_RESET.
 */
static BOOLEAN
PvscsiResetBus(PPVSCSI_ADAPTER Adapter)
{
    BOOLEAN ok;

    DebugPrint((1, "rspvscsi_c: bus reset, outstanding requests %#llx\n", Adapter->Busy));
    if (Adapter->Registers != NULL) {
        PvscsiMaskIntr(Adapter);
        PvscsiAdapterReset(Adapter);
    }
    if (Adapter->Uncached != NULL) {
        PvscsiDrainCompletions(Adapter);
    }
    ok = PvscsiResetAndSetup(Adapter, Adapter->Registers != NULL);

    PvscsiFailAll(Adapter);
    if (!ok) {
        /* Out of service from here on: a failed bus reset is logged
           (KG:scsi-miniport-driver-s-hwscsiresetbus-routine). */
        ScsiPortLogError(Adapter, NULL, 0, 0, 0, SP_INTERNAL_ADAPTER_ERROR, 4);
    }
    Adapter->OweNextRequest = FALSE;
    Adapter->Running = ok;
    if (Adapter->Registers != NULL) {
        PvscsiUnmaskIntr(Adapter, PvscsiCurrentMask(Adapter));
    }
    return ok;
}

/* HwScsiStartIo's work, under the lock. */
static VOID
PvscsiStartIo(PPVSCSI_ADAPTER Adapter, PSCSI_REQUEST_BLOCK Srb)
{
    UCHAR status;

    switch (Srb->Function) {
    case SRB_FUNCTION_EXECUTE_SCSI:
        PvscsiExecuteScsi(Adapter, Srb);
        break;
    case SRB_FUNCTION_ABORT_COMMAND:
        PvscsiAbort(Adapter, Srb);
        break;
    case SRB_FUNCTION_RESET_BUS:
        /* The dump stack asks miniports to ignore bus resets
           (KG:restrictions-on-miniport-drivers-that-manage-the-boot-drive). */
        status = (Adapter->DumpMode || PvscsiResetBus(Adapter)) ? SRB_STATUS_SUCCESS : SRB_STATUS_ERROR;
        PvscsiRejectRequest(Adapter, Srb, status);
        break;
    case SRB_FUNCTION_RESET_DEVICE:
        /* Requests the reset cancels come back through the ring with BUSRESET. */
        status = (Adapter->Registers != NULL && PvscsiResetDevice(Adapter, Srb->TargetId))
                     ? SRB_STATUS_SUCCESS : SRB_STATUS_ERROR;
        PvscsiRejectRequest(Adapter, Srb, status);
        break;
    case SRB_FUNCTION_FLUSH:
    case SRB_FUNCTION_SHUTDOWN:
        /* PVSCSI has no cache of its own (CachesData is FALSE, so these should not come). */
        PvscsiRejectRequest(Adapter, Srb, SRB_STATUS_SUCCESS);
        break;
    default:
        /* IO_CONTROL, WMI, PNP and anything else (KG:handling-unsupported-srb-function-xxx). */
        PvscsiRejectRequest(Adapter, Srb, SRB_STATUS_INVALID_REQUEST);
        break;
    }
}

/* --------------------------------------------------------------------------------------------
 * Completion.
 * ------------------------------------------------------------------------------------------ */

/*
 * Completes the request a completion names, if it names one the driver issued and has not
 * completed yet. The descriptor's fields were read once, by the caller.
 */
static BOOLEAN
PvscsiCompleteOne(PPVSCSI_ADAPTER Adapter, ULONGLONG Context, ULONGLONG DataLen, ULONG SenseLen,
                  USHORT HostStatus, USHORT ScsiStatus)
{
    PSCSI_REQUEST_BLOCK srb;
    PVSCSI_OUTCOME outcome;
    volatile UCHAR *sense;
    PUCHAR senseInfo;
    UCHAR senseCapacity;
    BOOLEAN aborting;
    ULONG generation;
    ULONG sent;
    ULONG slot;
    ULONG i;

    if (!PvscsiDecodeContext(Context, &slot, &generation) || slot >= PVSCSI_MAX_SLOTS ||
        Adapter->Slots[slot].Srb == NULL || Adapter->Slots[slot].Generation != generation) {
        Adapter->RejectedCompletions++;
        DebugPrint((1, "rspvscsi_c: completion for no outstanding request, context %#llx\n", Context));
        return FALSE;
    }
    aborting = Adapter->Slots[slot].Aborting;
    sent = Adapter->Slots[slot].Sent;
    srb = PvscsiReleaseSlot(Adapter, slot);

    /* Sense goes back only where there is a buffer and autosense is enabled (DDI:ns-srb-_scsi_request_block). */
    senseCapacity = 0;
    if (srb->SenseInfoBuffer != NULL && (srb->SrbFlags & SRB_FLAGS_DISABLE_AUTOSENSE) == 0) {
        senseCapacity = srb->SenseInfoBufferLength;
    }
    PvscsiClassify(HostStatus, ScsiStatus, DataLen, SenseLen, sent, senseCapacity, aborting, &outcome);
    if (outcome.SrbStatus == SRB_STATUS_SUCCESS && sent < srb->DataTransferLength) {
        /* The device was given less than the buffer because the CDB transfers less: an
           underrun, SRB_STATUS_DATA_OVERRUN with the bytes transferred
           (KG:error-handling-in-scsi-miniport-drivers). QEMU cannot say how many of them it
           filled (Section 6.3); what was sent bounds them. */
        outcome.SrbStatus = SRB_STATUS_DATA_OVERRUN;
        outcome.Underrun = TRUE;
        outcome.Transferred = sent;
    }
    if (outcome.SrbStatus == SRB_STATUS_SUCCESS && PvscsiIsReadWrite(srb->Cdb[0]) &&
        (HostStatus == BTSTAT_DATARUN || HostStatus == BTSTAT_DATA_UNDERRUN)) {
        /* A READ or WRITE the device says moved other than its CDB's bytes: the buffer and the
           CDB disagree, which the driver could not check before it knew the disk's block size,
           so it sent the buffer whole (QEMU moves it whole, Section 6.3). Not a success. */
        outcome.SrbStatus = SRB_STATUS_DATA_OVERRUN;
    }
    if (outcome.SrbStatus == SRB_STATUS_SUCCESS || outcome.SrbStatus == SRB_STATUS_DATA_OVERRUN) {
        PvscsiLearnBlockSize(Adapter, srb);
    }
    srb->ScsiStatus = outcome.ScsiStatus;
    if (outcome.Underrun && outcome.Transferred < srb->DataTransferLength) {
        /* It can only shrink (contract section 10, rule 13). */
        srb->DataTransferLength = outcome.Transferred;
    }
    if (outcome.SenseBytes != 0 && senseCapacity != 0) {
        sense = (volatile UCHAR *)(Adapter->Uncached + Adapter->Layout->SenseOffset + slot * PVSCSI_SENSE_BYTES);
        senseInfo = (PUCHAR)srb->SenseInfoBuffer;
        for (i = 0; i < outcome.SenseBytes; i++) {
            senseInfo[i] = sense[i];
        }
        srb->SenseInfoBufferLength = (UCHAR)outcome.SenseBytes;
        srb->SrbStatus |= SRB_STATUS_AUTOSENSE_VALID;
    }
    if (outcome.LogError != 0) {
        ScsiPortLogError(Adapter, srb, srb->PathId, srb->TargetId, srb->Lun, outcome.LogError, HostStatus);
    }
    PvscsiCompleteRequest(Adapter, srb, outcome.SrbStatus);
#if defined(PVSCSI_BREAK_COMPLETE_TWICE)
    /* A deliberate mistake, compiled only into the verifier test's build: the request is the
       port's again, and completing it a second time is Driver Verifier's 0xF1/0x1003. */
    ScsiPortNotification(RequestComplete, Adapter, srb);
#endif
    return TRUE;
}

/* Drains the completion ring (Section 5.2). Returns whether any request was completed. */
static BOOLEAN
PvscsiDrainCompletions(PPVSCSI_ADAPTER Adapter)
{
    const PVSCSI_LAYOUT *layout = Adapter->Layout;
    ULONG entries = layout->CmpPages * PVSCSI_CMP_DESCS_PER_PAGE;
    volatile PVSCSI_RING_CMP_DESC *ring = (volatile PVSCSI_RING_CMP_DESC *)(Adapter->Uncached + layout->CmpOffset);
    volatile PVSCSI_RING_CMP_DESC *desc;
    ULONG produced = PvscsiRingsState(Adapter)->CmpProdIdx;
    ULONG pending = produced - Adapter->CmpCons;
    BOOLEAN completed = FALSE;
    ULONGLONG context, dataLen;
    ULONG senseLen;
    USHORT hostStatus, scsiStatus;

    if (pending > entries) {
        /* More than the ring holds: the index is garbage. Take nothing; requests the device
           really finished are recovered by the port's timeout and HwScsiResetBus. */
        Adapter->BadIndexes++;
        DebugPrint((1, "rspvscsi_c: completion producer index out of range %#x\n", produced));
        return FALSE;
    }
    /* Descriptors are read after the producer index that published them. */
    _ReadBarrier();
    while (pending-- != 0) {
        desc = &ring[Adapter->CmpCons & (entries - 1)];
        context = desc->Context;
        dataLen = desc->DataLen;
        senseLen = desc->SenseLen;
        hostStatus = desc->HostStatus;
        scsiStatus = desc->ScsiStatus;
        Adapter->CmpCons++;
        if (PvscsiCompleteOne(Adapter, context, dataLen, senseLen, hostStatus, scsiStatus)) {
            completed = TRUE;
        }
    }
    _WriteBarrier();
    /* The device may read it to know which slots are free (VMware). */
    PvscsiRingsState(Adapter)->CmpConsIdx = Adapter->CmpCons;
    return completed;
}

/* Drains the message ring (Section 5.6). Returns whether a device was added or removed. */
static BOOLEAN
PvscsiDrainMessages(PPVSCSI_ADAPTER Adapter)
{
    const PVSCSI_LAYOUT *layout = Adapter->Layout;
    ULONG entries = layout->MsgPages * PVSCSI_MSG_DESCS_PER_PAGE;
    volatile PVSCSI_RING_MSG_DESC *ring = (volatile PVSCSI_RING_MSG_DESC *)(Adapter->Uncached + layout->MsgOffset);
    BOOLEAN changed = FALSE;
    volatile PVSCSI_MSG_DESC_DEV_STATUS_CHANGED *msg;
    ULONG produced, pending, target;

    if (!Adapter->MsgRing) {
        return FALSE;
    }
    produced = PvscsiRingsState(Adapter)->MsgProdIdx;
    pending = produced - Adapter->MsgCons;
    if (pending > entries) {
        Adapter->BadIndexes++;
        return FALSE;
    }
    _ReadBarrier();
    while (pending-- != 0) {
        msg = (volatile PVSCSI_MSG_DESC_DEV_STATUS_CHANGED *)&ring[Adapter->MsgCons & (entries - 1)];
        if (msg->Type == PVSCSI_MSG_DEV_ADDED || msg->Type == PVSCSI_MSG_DEV_REMOVED) {
            changed = TRUE;
            /* Another disk, or none: its block size is to be learned again. */
            target = msg->Target;
            if (target < SCSI_MAXIMUM_TARGETS_PER_BUS) {
                Adapter->BlockSizes[target] = 0;
            }
        }
        Adapter->MsgCons++;
    }
    PvscsiRingsState(Adapter)->MsgConsIdx = Adapter->MsgCons;
    return changed;
}

/* Completes what the device finished and signals readiness if anything was freed. */
static VOID
PvscsiProcessCompletions(PPVSCSI_ADAPTER Adapter)
{
    BOOLEAN completed = PvscsiDrainCompletions(Adapter);

    if (completed || Adapter->OweNextRequest) {
        Adapter->OweNextRequest = FALSE;
        ScsiPortNotification(NextRequest, Adapter);
    }
}

/* --------------------------------------------------------------------------------------------
 * The routines SCSI Port calls.
 * ------------------------------------------------------------------------------------------ */

/*
 * DriverEntry: registers the miniport with SCSI Port and returns what ScsiPortInitialize
 * returned (KG:driverentry-of-scsi-miniport-driver). In crash-dump mode both arguments are
 * NULL; they are passed on unchanged either way.
 */
ULONG
DriverEntry(PVOID DriverObject, PVOID Argument2)
{
    HW_INITIALIZATION_DATA hwInitData;

    /* Zeroed entirely first (DDI:ns-srb-_hw_initialization_data). */
    PvscsiZeroMemory(&hwInitData, sizeof(hwInitData));
    hwInitData.HwInitializationDataSize = sizeof(HW_INITIALIZATION_DATA);
    hwInitData.AdapterInterfaceType = PCIBus;
    hwInitData.HwInitialize = PvscsiHwScsiInitialize;
    hwInitData.HwStartIo = PvscsiHwScsiStartIo;
    hwInitData.HwInterrupt = PvscsiHwScsiInterrupt;
    hwInitData.HwFindAdapter = PvscsiHwScsiFindAdapter;
    hwInitData.HwResetBus = PvscsiHwScsiResetBus;
    hwInitData.HwAdapterControl = PvscsiHwScsiAdapterControl;
    hwInitData.DeviceExtensionSize = sizeof(PVSCSI_ADAPTER);
    hwInitData.SpecificLuExtensionSize = 0;
    hwInitData.SrbExtensionSize = 0;
    hwInitData.NumberOfAccessRanges = 2;    /* VMware: I/O BAR0 and the MMIO BAR1 */
    hwInitData.MapBuffers = TRUE;           /* for READ CAPACITY's answer: PvscsiLearnBlockSize */
    hwInitData.NeedPhysicalAddresses = TRUE;
    hwInitData.TaggedQueuing = TRUE;
    hwInitData.AutoRequestSense = TRUE;
    hwInitData.MultipleRequestPerLu = TRUE;
    hwInitData.ReceiveEvent = FALSE;
    /* Used for legacy detection only. */
    hwInitData.VendorId = "15AD";
    hwInitData.VendorIdLength = 4;
    hwInitData.DeviceId = "07C0";
    hwInitData.DeviceIdLength = 4;

    return ScsiPortInitialize(DriverObject, Argument2, &hwInitData, NULL);
}

static BOOLEAN
PvscsiIsArgumentSeparator(CHAR c)
{
    return c == ';' || c == ',' || c == ' ' || c == '\t';
}

static CHAR
PvscsiLowerCase(CHAR c)
{
    return (c >= 'A' && c <= 'Z') ? (CHAR)(c - 'A' + 'a') : c;
}

/*
 * Whether ArgumentString holds Key=Value among its items, which are separated by ';', ',' or
 * blanks; keys compare without case, and the first item with the key counts. The scan is
 * bounded, so a malformed string cannot run away.
 */
static BOOLEAN
PvscsiArgumentIs(PCHAR Arguments, PCHAR Key, PCHAR Value)
{
    ULONG length, start, end, equals, i;

    if (Arguments == NULL) {
        return FALSE;
    }
    for (length = 0; length < 4096 && Arguments[length] != '\0'; length++) {
    }
    for (start = 0; start <= length; start = end + 1) {
        for (end = start; end < length && !PvscsiIsArgumentSeparator(Arguments[end]); end++) {
        }
        for (equals = start; equals < end && Arguments[equals] != '='; equals++) {
        }
        if (equals == end) {
            continue;       /* no '=': not a key=value item */
        }
        for (i = 0; start + i < equals && Key[i] != '\0'; i++) {
            if (PvscsiLowerCase(Arguments[start + i]) != PvscsiLowerCase(Key[i])) {
                break;
            }
        }
        if (start + i != equals || Key[i] != '\0') {
            continue;       /* another key */
        }
        for (i = 0; equals + 1 + i < end && Value[i] != '\0'; i++) {
            if (Arguments[equals + 1 + i] != Value[i]) {
                return FALSE;
            }
        }
        return equals + 1 + i == end && Value[i] == '\0';
    }
    return FALSE;
}

/*
 * HwScsiFindAdapter (REF:HwScsiFindAdapter): claims the first memory range of at least 32 KiB
 * (QEMU's BAR0, VMware's BAR1), resets the HBA, fills in the configuration, carves the uncached
 * extension and sets up the rings. "dump=1" in ArgumentString selects crash-dump mode: a smaller
 * layout, no interrupts, every completion handled inline when the dump stack polls
 * HwScsiInterrupt.
 */
ULONG
PvscsiHwScsiFindAdapter(PVOID HwDeviceExtension, PVOID HwContext, PVOID BusInformation, PCHAR ArgumentString,
                        PPORT_CONFIGURATION_INFORMATION ConfigInfo, PBOOLEAN Again)
{
    PPVSCSI_ADAPTER adapter = (PPVSCSI_ADAPTER)HwDeviceExtension;
    PACCESS_RANGE range = NULL;
    SCSI_PHYSICAL_ADDRESS pa;
    PVOID uncached;
    ULONG length;
    UCHAR targets;
    ULONG i;

    UNREFERENCED_PARAMETER(HwContext);
    UNREFERENCED_PARAMETER(BusInformation);

    /* Irrelevant under PnP, but it must be set (DDI:nc-srb-phw_find_adapter). */
    if (Again != NULL) {
        *Again = FALSE;
    }
    /* Length first, so that no field past the port's structure is touched
       (DDI:ns-srb-_port_configuration_information). */
    if (ConfigInfo == NULL || ConfigInfo->Length < sizeof(PORT_CONFIGURATION_INFORMATION)) {
        return SP_RETURN_BAD_CONFIG;
    }

    adapter->DumpMode = PvscsiArgumentIs(ArgumentString, "dump", "1");
    for (i = 0; ConfigInfo->AccessRanges != NULL && i < ConfigInfo->NumberOfAccessRanges; i++) {
        PACCESS_RANGE candidate = &(*ConfigInfo->AccessRanges)[i];

        if (candidate->RangeLength != 0 && candidate->RangeInMemory &&
            candidate->RangeLength >= PVSCSI_MEM_SPACE_SIZE) {
            range = candidate;
            break;
        }
    }
    if (range == NULL) {
        DebugPrint((1, "rspvscsi_c: no memory range of 32 KiB among the access ranges\n"));
        return SP_RETURN_NOT_FOUND;
    }
    adapter->Registers = (PUCHAR)ScsiPortGetDeviceBase(adapter, ConfigInfo->AdapterInterfaceType,
                                                       ConfigInfo->SystemIoBusNumber, range->RangeStart,
                                                       range->RangeLength, FALSE /* memory space */);
    if (adapter->Registers == NULL) {
        DebugPrint((1, "rspvscsi_c: ScsiPortGetDeviceBase failed for %#llx\n", range->RangeStart.QuadPart));
        ScsiPortLogError(adapter, NULL, 0, 0, 0, SP_INTERNAL_ADAPTER_ERROR, 1);
        return SP_RETURN_ERROR;
    }
    adapter->Layout = adapter->DumpMode ? &PvscsiDumpLayout : &PvscsiNormalLayout;

    /* Everything ScsiPortGetUncachedExtension depends on is final before it is called
       (DDI:nf-srb-scsiportgetuncachedextension). NumberOfPhysicalBreaks may be lowered, never
       raised (DDI:ns-srb-_port_configuration_information). */
    ConfigInfo->MaximumTransferLength = PVSCSI_MAX_TRANSFER;
    if (ConfigInfo->NumberOfPhysicalBreaks == SP_UNINITIALIZED_VALUE ||
        ConfigInfo->NumberOfPhysicalBreaks > PVSCSI_PHYSICAL_BREAKS) {
        ConfigInfo->NumberOfPhysicalBreaks = PVSCSI_PHYSICAL_BREAKS;
    }
    ConfigInfo->ScatterGather = TRUE;
    ConfigInfo->Master = TRUE;
    ConfigInfo->CachesData = FALSE;
    /* 64-bit DMA; Dma32BitAddresses must then be FALSE. */
    ConfigInfo->Dma64BitAddresses = SCSI_DMA64_MINIPORT_SUPPORTED;
    ConfigInfo->Dma32BitAddresses = FALSE;
    ConfigInfo->NumberOfBuses = 1;
    ConfigInfo->InitiatorBusId[0] = PVSCSI_INITIATOR_ID;
    ConfigInfo->MaximumNumberOfLogicalUnits = 1;
    ConfigInfo->TaggedQueuing = TRUE;
    ConfigInfo->MultipleRequestPerLu = TRUE;
    ConfigInfo->AutoRequestSense = TRUE;

    /* Quiet first: whatever ran before (firmware, a previous driver) may have left the device
       active, and INTR_MASK survives resets (Q11). */
    PvscsiMaskIntr(adapter);
    PvscsiAdapterReset(adapter);

    uncached = ScsiPortGetUncachedExtension(adapter, ConfigInfo, adapter->Layout->Total);
    pa.QuadPart = 0;
    length = 0;
    if (uncached != NULL) {
        /* Srb NULL with an address inside the uncached extension is the documented way to get
           its bus address (DDI:nf-srb-scsiportgetphysicaladdress). */
        pa = ScsiPortGetPhysicalAddress(adapter, NULL, uncached, &length);
    }
    if (pa.QuadPart == 0 || length < adapter->Layout->Total) {
        DebugPrint((1, "rspvscsi_c: no uncached extension of %u bytes\n", adapter->Layout->Total));
        ScsiPortLogError(adapter, NULL, 0, 0, 0, SP_INTERNAL_ADAPTER_ERROR, 2);
        ScsiPortFreeDeviceBase(adapter, adapter->Registers);
        adapter->Registers = NULL;
        return SP_RETURN_ERROR;
    }
    adapter->Uncached = (PUCHAR)uncached;
    adapter->UncachedPa = pa.QuadPart;

    targets = PvscsiQueryMaxTargets(adapter);
    if (targets == 0) {
        targets = PVSCSI_DEFAULT_TARGETS;
    }
    ConfigInfo->MaximumNumberOfTargets = targets;
    adapter->MaxTargets = targets;

    /* The reset above is the setup's: the query left nothing behind. */
    if (!PvscsiResetAndSetup(adapter, TRUE)) {
        DebugPrint((1, "rspvscsi_c: SETUP_RINGS failed, COMMAND_STATUS %#x\n",
                    PvscsiReadRegister(adapter, PVSCSI_REG_COMMAND_STATUS)));
        ScsiPortLogError(adapter, NULL, 0, 0, 0, SP_INTERNAL_ADAPTER_ERROR, 3);
        ScsiPortFreeDeviceBase(adapter, adapter->Registers);
        adapter->Registers = NULL;
        return SP_RETURN_ERROR;
    }
    adapter->Running = TRUE;
    return SP_RETURN_FOUND;
}

/* HwScsiInitialize (REF:HwScsiInitialize): clears anything pending and unmasks completion (and message) interrupts. */
BOOLEAN
PvscsiHwScsiInitialize(PVOID HwDeviceExtension)
{
    PPVSCSI_ADAPTER adapter = (PPVSCSI_ADAPTER)HwDeviceExtension;

    if (adapter->Registers == NULL) {
        return FALSE;
    }
    PvscsiAckIntr(adapter, PVSCSI_INTR_ALL_SUPPORTED);
    PvscsiUnmaskIntr(adapter, PvscsiCurrentMask(adapter));
    return TRUE;
}

/*
 * HwScsiStartIo (REF:HwScsiStartIo). Returns TRUE whatever happened to the request, as it must
 * (KG:return-from-hwscsistartio). See "Serialisation" for the enable callback on another processor.
 */
BOOLEAN
PvscsiHwScsiStartIo(PVOID HwDeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    PPVSCSI_ADAPTER adapter = (PPVSCSI_ADAPTER)HwDeviceExtension;

    if (PvscsiTryAcquireLock(adapter)) {
        PvscsiStartIo(adapter, Srb);
        PvscsiReleaseLock(adapter);
        PvscsiStartParkedRequests(adapter);
        return TRUE;
    }
    /* Only the enable callback on another processor can hold the lock here. */
    if (Srb->Function == SRB_FUNCTION_EXECUTE_SCSI) {
        PvscsiRejectRequest(adapter, Srb, SRB_STATUS_BUSY);
        return TRUE;
    }
    if (PvscsiParkRequest(adapter, Srb)) {
        /* Looking again closes the race with a holder that let go meanwhile. */
        PvscsiStartParkedRequests(adapter);
    } else {
        /* No room: more requests handed over in one callback than a miniport that signals
           readiness once per callback can cause. The port's own recovery remains. */
        PvscsiRejectRequest(adapter, Srb, SRB_STATUS_BUSY);
    }
    return TRUE;
}

/* HwScsiInterrupt's work, under the lock. Returns whether the interrupt was this HBA's. */
static BOOLEAN
PvscsiInterrupt(PPVSCSI_ADAPTER Adapter)
{
    ULONG status, raised;

    if (Adapter->Registers == NULL) {
        return FALSE;
    }
    status = PvscsiReadIntrStatus(Adapter);
    if (status == 0xFFFFFFFF) {
        /* All ones from the mask too: the device is gone (surprise removal reads all ones from
           every register; the driver never writes all ones to the mask). A device still there
           reads its mask back, and its all-ones status, read again, is claimed like any other,
           or a line it holds up would never drop. */
        if (PvscsiReadRegister(Adapter, PVSCSI_REG_INTR_MASK) == 0xFFFFFFFF) {
            return FALSE;
        }
        status = PvscsiReadIntrStatus(Adapter);
    }
    raised = status & (Adapter->DumpMode ? PVSCSI_INTR_ALL_SUPPORTED : PvscsiCurrentMask(Adapter));
    if (raised == 0) {
        return FALSE;
    }
    PvscsiAckIntr(Adapter, raised);
    if (Adapter->DumpMode) {
        /* The dump stack polls the ISR with interrupts off and has no deferral. */
        PvscsiDrainMessages(Adapter);
        PvscsiProcessCompletions(Adapter);
        return TRUE;
    }
    PvscsiMaskIntr(Adapter);
    Adapter->Deferred = TRUE;
    Adapter->SavedStatus |= raised;
    /* Only after masking: the port runs the callback with every other interrupt enabled, and
       calls this routine again only after the disable callback (contract section 4.3). */
    ScsiPortNotification(CallEnableInterrupts, Adapter, PvscsiHwScsiEnableInterruptsCallback);
    return TRUE;
}

/*
 * HwScsiInterrupt (REF:HwScsiInterrupt): claims only an interrupt this HBA raised, a status bit
 * its current mask lets through (the line may be shared); acknowledges it, masks the HBA, saves
 * the status and defers the rest to HwScsiEnableInterruptsCallback. In crash-dump mode it
 * completes inline.
 */
BOOLEAN
PvscsiHwScsiInterrupt(PVOID HwDeviceExtension)
{
    PPVSCSI_ADAPTER adapter = (PPVSCSI_ADAPTER)HwDeviceExtension;
    BOOLEAN claimed;

    /* Held only by the enable callback, during which this HBA is masked: another device's interrupt. */
    if (!PvscsiTryAcquireLock(adapter)) {
        return FALSE;
    }
    claimed = PvscsiInterrupt(adapter);
    PvscsiReleaseLock(adapter);
    return claimed;
}

/*
 * HwScsiEnableInterruptsCallback (REF:HwScsiEnableInterruptsCallback), with the HBA masked:
 * reports hot-plug, completes what the device finished, asks for more, and requests
 * CallDisableInterrupts as its last step
 * (KG:scsi-miniport-driver-s-hwscsienableinterruptscallback-routine). Requests HwScsiStartIo
 * parked meanwhile are started before that last step, with the lock already free.
 */
BOOLEAN
PvscsiHwScsiEnableInterruptsCallback(PVOID HwDeviceExtension)
{
    PPVSCSI_ADAPTER adapter = (PPVSCSI_ADAPTER)HwDeviceExtension;
    ULONG status;

    PvscsiAcquireLock(adapter);
    status = adapter->SavedStatus;
    adapter->SavedStatus = 0;
    if ((status & PVSCSI_INTR_MSG_MASK) != 0 && PvscsiDrainMessages(adapter)) {
        ScsiPortNotification(BusChangeDetected, adapter, 0);
    }
    /* Drained whatever the status said: a completion posted after the ISR's acknowledgement is
       already in the ring. */
    PvscsiProcessCompletions(adapter);
    PvscsiReleaseLock(adapter);
    PvscsiStartParkedRequests(adapter);
    ScsiPortNotification(CallDisableInterrupts, adapter, PvscsiHwScsiDisableInterruptsCallback);
    return TRUE;
}

/* HwScsiDisableInterruptsCallback (REF:HwScsiDisableInterruptsCallback): unmasks the HBA, nothing else. */
BOOLEAN
PvscsiHwScsiDisableInterruptsCallback(PVOID HwDeviceExtension)
{
    PPVSCSI_ADAPTER adapter = (PPVSCSI_ADAPTER)HwDeviceExtension;
    BOOLEAN ok = FALSE;

    PvscsiAcquireLock(adapter);
    adapter->Deferred = FALSE;
    if (adapter->Registers != NULL) {
        PvscsiUnmaskIntr(adapter, PvscsiCurrentMask(adapter));
        ok = TRUE;
    }
    PvscsiReleaseLock(adapter);
    return ok;
}

/*
 * HwScsiResetBus (REF:HwScsiResetBus): every outstanding request completed with
 * SRB_STATUS_BUS_RESET before returning, then readiness signalled. The dump stack asks
 * miniports to ignore bus resets (KG:restrictions-on-miniport-drivers-that-manage-the-boot-drive).
 */
BOOLEAN
PvscsiHwScsiResetBus(PVOID HwDeviceExtension, ULONG PathId)
{
    PPVSCSI_ADAPTER adapter = (PPVSCSI_ADAPTER)HwDeviceExtension;
    BOOLEAN ok;

    if (PathId > 0xFF) {
        return FALSE;
    }
    PvscsiAcquireLock(adapter);
    ok = adapter->DumpMode || PvscsiResetBus(adapter);
    ScsiPortNotification(NextRequest, adapter);
    PvscsiReleaseLock(adapter);
    PvscsiStartParkedRequests(adapter);
    return ok;
}

/*
 * HwScsiAdapterControl (REF:HwScsiAdapterControl): stop and restart, which a PnP miniport must
 * support. Every control type reports success.
 */
SCSI_ADAPTER_CONTROL_STATUS
PvscsiHwScsiAdapterControl(PVOID HwDeviceExtension, SCSI_ADAPTER_CONTROL_TYPE ControlType, PVOID Parameters)
{
    PPVSCSI_ADAPTER adapter = (PPVSCSI_ADAPTER)HwDeviceExtension;
    PSCSI_SUPPORTED_CONTROL_TYPE_LIST list;
    ULONG i;

    switch (ControlType) {
    case ScsiQuerySupportedControlTypes:
        list = (PSCSI_SUPPORTED_CONTROL_TYPE_LIST)Parameters;
        /* Never past SupportedTypeList[MaxControlType - 1]. */
        for (i = 0; list != NULL && i < ScsiAdapterControlMax && i < list->MaxControlType; i++) {
            if (i == ScsiQuerySupportedControlTypes || i == ScsiStopAdapter || i == ScsiRestartAdapter) {
                list->SupportedTypeList[i] = TRUE;
            }
        }
        break;

    case ScsiStopAdapter:
        /* No requests are outstanding. Quiesce the device; registers may already be gone after
           a surprise removal, which costs nothing. Masked from here on, so HwScsiInterrupt
           claims nothing on a shared line. */
        PvscsiAcquireLock(adapter);
        adapter->Running = FALSE;
        adapter->EnabledMask = 0;
        if (adapter->Registers != NULL) {
            PvscsiMaskIntr(adapter);
            PvscsiAdapterReset(adapter);
        }
        PvscsiReleaseLock(adapter);
        break;

    case ScsiRestartAdapter:
        /* What HwScsiInitialize does, with the same resources. */
        PvscsiAcquireLock(adapter);
        adapter->Deferred = FALSE;
        adapter->SavedStatus = 0;
        adapter->Running = PvscsiResetAndSetup(adapter, FALSE);
        if (adapter->Registers != NULL) {
            PvscsiUnmaskIntr(adapter, PvscsiCurrentMask(adapter));
        }
        PvscsiReleaseLock(adapter);
        break;

    default:
        /* ScsiSetBootConfig, ScsiSetRunningConfig: not supported, nothing to do. */
        break;
    }
    return ScsiAdapterControlSuccess;
}

/*
 * pvscsi_hw.h - the VMware PVSCSI device interface (PCI 15AD:07C0), as this driver uses it.
 *
 * Values from shared/reference/pvscsi-facts.md, which restates VMware's interface header as
 * QEMU, Linux and FreeBSD carry it; "Section n" below is a section of that sheet. Everything
 * is little-endian and every page is 4 KiB. The Rust driver has the same in driver/pvscsi.rs.
 */

#ifndef PVSCSI_HW_H
#define PVSCSI_HW_H

#define PVSCSI_PAGE_SIZE            4096
#define PVSCSI_PAGE_SHIFT           12

/*
 * Size of the register window. The driver takes the first memory range at least this long,
 * because QEMU puts it at BAR0 and VMware at BAR1 (Section 1).
 */
#define PVSCSI_MEM_SPACE_SIZE       0x8000

/* Register offsets in the MMIO window; every register is 32 bits wide (Section 2). */
#define PVSCSI_REG_COMMAND          0x0000  /* starts a command */
#define PVSCSI_REG_COMMAND_DATA     0x0004  /* one word of the current command's descriptor */
#define PVSCSI_REG_COMMAND_STATUS   0x0008  /* result of the last command */
#define PVSCSI_REG_INTR_STATUS      0x100C  /* write 1 to clear */
#define PVSCSI_REG_INTR_MASK        0x2010  /* the INTx line is (status & mask) != 0 */
#define PVSCSI_REG_KICK_NON_RW_IO   0x3014  /* doorbell for anything but READ/WRITE */
#define PVSCSI_REG_KICK_RW_IO       0x4018  /* doorbell for READ/WRITE */

/* INTR_STATUS / INTR_MASK bits (Section 2). QEMU never sets the vector-1 bits. */
#define PVSCSI_INTR_CMPL_0          0x1
#define PVSCSI_INTR_CMPL_1          0x2
#define PVSCSI_INTR_MSG_0           0x4
#define PVSCSI_INTR_MSG_1           0x8
#define PVSCSI_INTR_CMPL_MASK       (PVSCSI_INTR_CMPL_0 | PVSCSI_INTR_CMPL_1)
#define PVSCSI_INTR_MSG_MASK        (PVSCSI_INTR_MSG_0 | PVSCSI_INTR_MSG_1)
#define PVSCSI_INTR_ALL_SUPPORTED   (PVSCSI_INTR_CMPL_MASK | PVSCSI_INTR_MSG_MASK)

/* Command codes (Section 4.2). */
#define PVSCSI_CMD_ADAPTER_RESET    1       /* no descriptor */
#define PVSCSI_CMD_SETUP_RINGS      3
#define PVSCSI_CMD_RESET_BUS        4       /* no descriptor */
#define PVSCSI_CMD_RESET_DEVICE     5
#define PVSCSI_CMD_ABORT_CMD        6
#define PVSCSI_CMD_CONFIG           7
#define PVSCSI_CMD_SETUP_MSG_RING   8
#define PVSCSI_CMD_SETUP_REQCALLTHRESHOLD 10 /* one word, enable; VMware only (Section 4.8) */

/* COMMAND_STATUS of an unsupported or failed command (Section 4.1). */
#define PVSCSI_COMMAND_STATUS_FAILED 0xFFFFFFFF

/*
 * Command descriptors. Each is written word by word to COMMAND_DATA, in memory order, and the
 * device runs the command when the last word arrives: the word count must be exact even when
 * most of the descriptor is unused (Section 4.1, Q13).
 */
#define PVSCSI_SETUP_RINGS_MAX_PAGES    32
#define PVSCSI_SETUP_MSG_RING_MAX_PAGES 16

typedef struct _PVSCSI_CMD_DESC_SETUP_RINGS {           /* Section 4.3, 132 words */
    ULONG ReqRingNumPages;
    ULONG CmpRingNumPages;
    ULONGLONG RingsStatePPN;
    ULONGLONG ReqRingPPNs[PVSCSI_SETUP_RINGS_MAX_PAGES];
    ULONGLONG CmpRingPPNs[PVSCSI_SETUP_RINGS_MAX_PAGES];
} PVSCSI_CMD_DESC_SETUP_RINGS, *PPVSCSI_CMD_DESC_SETUP_RINGS;

typedef struct _PVSCSI_CMD_DESC_SETUP_MSG_RING {        /* Section 4.4, 34 words */
    ULONG NumPages;
    ULONG Pad;
    ULONGLONG RingPPNs[PVSCSI_SETUP_MSG_RING_MAX_PAGES];
} PVSCSI_CMD_DESC_SETUP_MSG_RING, *PPVSCSI_CMD_DESC_SETUP_MSG_RING;

typedef struct _PVSCSI_CMD_DESC_ABORT_CMD {             /* Section 4.5, 4 words */
    ULONGLONG Context;
    ULONG Target;
    ULONG Pad;
} PVSCSI_CMD_DESC_ABORT_CMD, *PPVSCSI_CMD_DESC_ABORT_CMD;

typedef struct _PVSCSI_CMD_DESC_RESET_DEVICE {          /* Section 4.6, 3 words */
    ULONG Target;
    UCHAR Lun[8];                   /* single-level LUN in Lun[1] */
} PVSCSI_CMD_DESC_RESET_DEVICE, *PPVSCSI_CMD_DESC_RESET_DEVICE;

typedef struct _PVSCSI_CMD_DESC_CONFIG {                /* Section 4.7, 6 words */
    ULONGLONG CmpAddr;              /* PA of the page the answer goes to */
    ULONGLONG ConfigPageAddress;    /* address type in the high 32 bits */
    ULONG ConfigPageNum;
    ULONG Pad;
} PVSCSI_CMD_DESC_CONFIG, *PPVSCSI_CMD_DESC_CONFIG;

#define PVSCSI_CONFIG_PAGE_CONTROLLER       0x1958
#define PVSCSI_CONFIG_CONTROLLER_ADDRESS    0x2120

/* What CONFIG writes for the controller page (VMware only; QEMU writes nothing). */
#define PVSCSI_CONFIG_HEADER_HOST_STATUS    6   /* USHORT */
#define PVSCSI_CONFIG_HEADER_SCSI_STATUS    8   /* USHORT */
#define PVSCSI_CONFIG_CONTROLLER_NUM_PHYS   472 /* ULONG: the number of targets */

/* The rings-state page (Section 5.1). */
typedef struct _PVSCSI_RINGS_STATE {
    ULONG ReqProdIdx;               /* 0x00 driver */
    ULONG ReqConsIdx;               /* 0x04 device */
    ULONG ReqNumEntriesLog2;        /* 0x08 device, at SETUP_RINGS */
    ULONG CmpProdIdx;               /* 0x0C device */
    ULONG CmpConsIdx;               /* 0x10 driver */
    ULONG CmpNumEntriesLog2;        /* 0x14 device, at SETUP_RINGS */
    ULONG ReqCallThreshold;         /* 0x18 device, once SETUP_REQCALLTHRESHOLD enabled it */
    UCHAR Pad[0x80 - 0x1C];
    ULONG MsgProdIdx;               /* 0x80 device */
    ULONG MsgConsIdx;               /* 0x84 driver */
    ULONG MsgNumEntriesLog2;        /* 0x88 device, at SETUP_MSG_RING */
} PVSCSI_RINGS_STATE, *PPVSCSI_RINGS_STATE;

/* Request descriptor, 128 bytes, 32 to a page (Section 5.3). */
typedef struct _PVSCSI_RING_REQ_DESC {
    ULONGLONG Context;              /* echoed in the completion; VMware: non-zero, high half 0 */
    ULONGLONG DataAddr;             /* the data, or the SG list with PVSCSI_FLAG_CMD_WITH_SG_LIST */
    ULONGLONG DataLen;
    ULONGLONG SenseAddr;
    ULONG SenseLen;
    ULONG Flags;
    UCHAR Cdb[16];
    UCHAR CdbLen;
    UCHAR Lun[8];                   /* SAM LUN: a single-level LUN goes in Lun[1] */
    UCHAR Tag;                      /* queue tag message */
    UCHAR Bus;                      /* must be 0 */
    UCHAR Target;
    UCHAR VcpuHint;
    UCHAR Unused[59];
} PVSCSI_RING_REQ_DESC, *PPVSCSI_RING_REQ_DESC;

#define PVSCSI_REQ_DESCS_PER_PAGE       32

/* Request flags (Section 5.3). */
#define PVSCSI_FLAG_CMD_WITH_SG_LIST    0x01
#define PVSCSI_FLAG_CMD_DIR_NONE        0x04
#define PVSCSI_FLAG_CMD_DIR_TOHOST      0x08
#define PVSCSI_FLAG_CMD_DIR_TODEVICE    0x10

/* Scatter-gather element, 16 bytes; Flags 0 (QEMU has no chaining, Q14) (Section 5.4). */
typedef struct _PVSCSI_SG_ELEMENT {
    ULONGLONG Addr;
    ULONG Length;
    ULONG Flags;
} PVSCSI_SG_ELEMENT, *PPVSCSI_SG_ELEMENT;

/* Completion descriptor, 32 bytes, 128 to a page (Section 5.5). */
typedef struct _PVSCSI_RING_CMP_DESC {
    ULONGLONG Context;
    ULONGLONG DataLen;              /* bytes transferred (VMware; QEMU writes 0, Section 6.3) */
    ULONG SenseLen;                 /* sense bytes written */
    USHORT HostStatus;              /* BTSTAT_* */
    USHORT ScsiStatus;              /* one byte in a 16-bit field */
    ULONG Pad[2];
} PVSCSI_RING_CMP_DESC, *PPVSCSI_RING_CMP_DESC;

#define PVSCSI_CMP_DESCS_PER_PAGE       128

/* Message descriptor, 128 bytes, 32 to a page (Section 5.6). */
typedef struct _PVSCSI_RING_MSG_DESC {
    ULONG Type;
    ULONG Args[31];
} PVSCSI_RING_MSG_DESC, *PPVSCSI_RING_MSG_DESC;

#define PVSCSI_MSG_DESCS_PER_PAGE       32
#define PVSCSI_MSG_DEV_ADDED            0
#define PVSCSI_MSG_DEV_REMOVED          1

/* A device added or removed (the two message types above), the same 128 bytes (Section 5.6). */
typedef struct _PVSCSI_MSG_DESC_DEV_STATUS_CHANGED {
    ULONG Type;
    ULONG Bus;
    ULONG Target;
    UCHAR Lun[8];
    ULONG Pad[27];
} PVSCSI_MSG_DESC_DEV_STATUS_CHANGED, *PPVSCSI_MSG_DESC_DEV_STATUS_CHANGED;

/* Adapter (host) status of a completion (Section 6.1). */
#define BTSTAT_SUCCESS                  0x00
#define BTSTAT_LINKED_COMMAND_COMPLETED 0x0A
#define BTSTAT_LINKED_COMMAND_COMPLETED_WITH_FLAG 0x0B
#define BTSTAT_DATA_UNDERRUN            0x0C
#define BTSTAT_SELTIMEO                 0x11
#define BTSTAT_DATARUN                  0x12    /* QEMU: any residual */
#define BTSTAT_BUSFREE                  0x13
#define BTSTAT_INVPHASE                 0x14
#define BTSTAT_LUNMISMATCH              0x17
#define BTSTAT_INVPARAM                 0x1A
#define BTSTAT_SENSFAILED               0x1B
#define BTSTAT_TAGREJECT                0x1C
#define BTSTAT_BADMSG                   0x1D
#define BTSTAT_HAHARDWARE               0x20
#define BTSTAT_NORESPONSE               0x21
#define BTSTAT_SENTRST                  0x22
#define BTSTAT_RECVRST                  0x23
#define BTSTAT_DISCONNECT               0x24
#define BTSTAT_BUSRESET                 0x25
#define BTSTAT_ABORTQUEUE               0x26
#define BTSTAT_HASOFTWARE               0x27
#define BTSTAT_HATIMEOUT                0x30
#define BTSTAT_SCSIPARITY               0x34

/* The layouts above are the device's; the compiler must not have moved anything. */
C_ASSERT(sizeof(PVSCSI_CMD_DESC_SETUP_RINGS) == 132 * sizeof(ULONG));
C_ASSERT(sizeof(PVSCSI_CMD_DESC_SETUP_MSG_RING) == 34 * sizeof(ULONG));
C_ASSERT(sizeof(PVSCSI_CMD_DESC_ABORT_CMD) == 4 * sizeof(ULONG));
C_ASSERT(sizeof(PVSCSI_CMD_DESC_RESET_DEVICE) == 3 * sizeof(ULONG));
C_ASSERT(sizeof(PVSCSI_CMD_DESC_CONFIG) == 6 * sizeof(ULONG));
C_ASSERT(FIELD_OFFSET(PVSCSI_RINGS_STATE, CmpConsIdx) == 0x10);
C_ASSERT(FIELD_OFFSET(PVSCSI_RINGS_STATE, MsgProdIdx) == 0x80);
C_ASSERT(FIELD_OFFSET(PVSCSI_RINGS_STATE, MsgNumEntriesLog2) == 0x88);
C_ASSERT(sizeof(PVSCSI_RING_REQ_DESC) == 128);
C_ASSERT(FIELD_OFFSET(PVSCSI_RING_REQ_DESC, Cdb) == 0x28);
C_ASSERT(FIELD_OFFSET(PVSCSI_RING_REQ_DESC, Lun) == 0x39);
C_ASSERT(FIELD_OFFSET(PVSCSI_RING_REQ_DESC, Target) == 0x43);
C_ASSERT(sizeof(PVSCSI_SG_ELEMENT) == 16);
C_ASSERT(sizeof(PVSCSI_RING_CMP_DESC) == 32);
C_ASSERT(FIELD_OFFSET(PVSCSI_RING_CMP_DESC, HostStatus) == 0x14);
C_ASSERT(sizeof(PVSCSI_RING_MSG_DESC) == 128);
C_ASSERT(sizeof(PVSCSI_MSG_DESC_DEV_STATUS_CHANGED) == 128);
C_ASSERT(FIELD_OFFSET(PVSCSI_MSG_DESC_DEV_STATUS_CHANGED, Target) == 0x08);

#endif /* PVSCSI_HW_H */

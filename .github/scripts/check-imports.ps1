# Fails unless every import of the driver binary is one a SCSI Port miniport may have.
#
# A SCSI miniport links only against scsiport.lib (contract §1.4, KG:scsi-port-driver-overview);
# HLK's imports test holds it to that. On x64 the WDK's srb.h turns ScsiPortMoveMemory into
# memmove, so C miniports built with the WDK import the compiler's memory intrinsics from
# ntoskrnl.exe; those four are the only exception allowed here. Anything else (DbgPrint,
# ExAllocatePool2, KeBugCheckEx from a panic path that survived) fails the build.
param([Parameter(Mandatory)] [string] $Binary)

$ErrorActionPreference = 'Stop'
$allowed = @{
    'scsiport.sys' = '^(ScsiPort\w+|ScsiDebugPrint)$'
    'ntoskrnl.exe' = '^(memcpy|memmove|memset|memcmp)$'
}

$output = & dumpbin /nologo /imports $Binary
if ($LASTEXITCODE -ne 0) { throw "dumpbin failed on $Binary" }
$output | Write-Host

$dll = $null
$bad = @()
$count = 0
foreach ($line in $output) {
    if ($line -match '^\s{4}(\S+\.(sys|dll|exe))\s*$') {
        $dll = $Matches[1].ToLowerInvariant()
        continue
    }
    # Import lines: "<hint> <name>", indented under their DLL.
    if ($dll -and $line -match '^\s+[0-9A-Fa-f]+\s+(\w+)\s*$') {
        $name = $Matches[1]
        $count++
        if (-not $allowed.ContainsKey($dll) -or $name -notmatch $allowed[$dll]) {
            $bad += "$dll!$name"
        }
    }
}
if ($count -eq 0) { throw "no imports parsed from dumpbin output: the parser is out of date" }
if ($bad.Count -gt 0) {
    throw "imports a SCSI Port miniport may not have: $($bad -join ', ')"
}
Write-Host "OK: $count imports, all from the allowed list"

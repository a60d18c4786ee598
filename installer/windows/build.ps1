# Builds the Windows installer: dist\pairsync-<version>-windows-x64-setup.exe
#
#   powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1
#
# Needs: Python 3.11+ (x64, from python.org: `py -3.11`), Inno Setup 6 (ISCC.exe; `winget
# install JRSoftware.InnoSetup`). Optional signing: set PAIRSYNC_SIGN_CERT (a .pfx path) and
# PAIRSYNC_SIGN_PASSWORD, with signtool.exe (Windows SDK) on PATH; the app and the installer
# are then signed with a timestamp.
param(
    [string]$Python = "py -3.11"
)
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path "$PSScriptRoot\..\..").Path
$Build = Join-Path $Root "build"
$Dist = Join-Path $Root "dist"
$env:PAIRSYNC_BUILD = $Build

function Run([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed ($LASTEXITCODE)" }
}

function Sign([string]$File) {
    if (-not $env:PAIRSYNC_SIGN_CERT) { return }
    Run "signtool.exe" @("sign", "/f", $env:PAIRSYNC_SIGN_CERT, "/p", $env:PAIRSYNC_SIGN_PASSWORD,
        "/fd", "SHA256", "/tr", "http://timestamp.digicert.com", "/td", "SHA256", $File)
}

# A clean build venv: this checkout with the installer extra (PyInstaller), nothing else.
$PyParts = $Python -split " "
Run $PyParts[0] (@($PyParts | Select-Object -Skip 1) + @("-m", "venv", "$Build\venv"))
$Py = "$Build\venv\Scripts\python.exe"
Run $Py @("-m", "pip", "install", "-q", "--upgrade", "pip")
Run $Py @("-m", "pip", "install", "-q", "$Root[installer]")
$Version = (& $Py -c "import tomllib; print(tomllib.load(open(r'$Root\pyproject.toml', 'rb'))['project']['version'])").Trim()
Write-Host "== Pairsync $Version"

# Icons (pairsync.ico among them) drawn from resources\icons\pairsync.svg by Qt.
$env:QT_QPA_PLATFORM = "offscreen"
Run $Py @("$Root\installer\render_icons.py", "$Build\icons")
Remove-Item Env:\QT_QPA_PLATFORM

# The bundle (installer\pairsync.spec): Pairsync.exe (windowed) and pairsync-cli.exe (console).
if (Test-Path "$Build\bundle") { Remove-Item -Recurse -Force "$Build\bundle" }
Run $Py @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", "$Build\bundle",
    "--workpath", "$Build\pyinstaller", "$Root\installer\pairsync.spec")
$Bundle = "$Build\bundle\Pairsync"
$Said = (& "$Bundle\pairsync-cli.exe" --version).Trim()
if ($Said -ne "pairsync $Version") { throw "the bundle says '$Said', expected 'pairsync $Version'" }
Sign "$Bundle\Pairsync.exe"
Sign "$Bundle\pairsync-cli.exe"

# The installer.
$Iscc = (Get-Command "ISCC.exe" -ErrorAction SilentlyContinue).Source
if (-not $Iscc) {
    foreach ($Dir in @("${env:ProgramFiles(x86)}\Inno Setup 6", "$env:ProgramFiles\Inno Setup 6",
                       "$env:LOCALAPPDATA\Programs\Inno Setup 6")) {
        if (Test-Path "$Dir\ISCC.exe") { $Iscc = "$Dir\ISCC.exe"; break }
    }
}
if (-not $Iscc) { throw "Inno Setup 6 is missing: winget install JRSoftware.InnoSetup" }
New-Item -ItemType Directory -Force $Dist | Out-Null
Run $Iscc @("/Q", "/DAppVersion=$Version", "/DSourceDir=$Bundle", "/DIconFile=$Build\icons\pairsync.ico",
    "/O$Dist", "$PSScriptRoot\pairsync.iss")
$Setup = "$Dist\pairsync-$Version-windows-x64-setup.exe"
Sign $Setup
Write-Host "== $Setup ($([math]::Round((Get-Item $Setup).Length / 1MB)) MB)"

; Inno Setup 6 script: Pairsync for Windows, installed per user (no administrator rights).
; Built by build.ps1, which passes the version, the bundle and the icon:
;   ISCC /DAppVersion=0.1.0 /DSourceDir=...\build\bundle\Pairsync /DIconFile=...\pairsync.ico
;        /O...\dist pairsync.iss
; Output: dist\pairsync-<version>-windows-x64-setup.exe
;
; Installs into %LOCALAPPDATA%\Programs\Pairsync ({autopf} in non-administrative mode), adds a
; Start-menu entry and an uninstaller (Settings > Apps), and offers the task "Start Pairsync
; when I sign in": the HKCU Run value "Pairsync" = "<app>\Pairsync.exe" --background, the very
; value the app's own switch (app/ui/autostart.py) toggles later. Uninstalling removes the app,
; the Start-menu entry and that Run value whoever wrote it; the user's contacts database
; (%LOCALAPPDATA%\pairsync) is kept.

#ifndef AppVersion
  #error Pass the version: ISCC /DAppVersion=x.y.z (build.ps1 reads it from pyproject.toml)
#endif
#ifndef SourceDir
  #define SourceDir "..\..\build\bundle\Pairsync"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\icons\pairsync.ico"
#endif
#define RunKey "Software\Microsoft\Windows\CurrentVersion\Run"

[Setup]
AppId={{F7CC41CD-2B60-4039-BD21-B39185F86D94}
AppName=Pairsync
AppVersion={#AppVersion}
AppVerName=Pairsync {#AppVersion}
AppPublisher=Pairsync
VersionInfoVersion={#AppVersion}
PrivilegesRequired=lowest
DefaultDirName={autopf}\Pairsync
DisableProgramGroupPage=yes
DisableDirPage=auto
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputBaseFilename=pairsync-{#AppVersion}-windows-x64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\Pairsync.exe
UninstallDisplayName=Pairsync
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "autostart"; Description: "Start Pairsync when I sign in (it keeps syncing from the notification area)"; Flags: unchecked
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Pairsync"; Filename: "{app}\Pairsync.exe"; Comment: "Keep the contacts of two apps in sync"
Name: "{autodesktop}\Pairsync"; Filename: "{app}\Pairsync.exe"; Tasks: desktopicon

[Registry]
; The same value app/ui/autostart.py writes (RUN_KEY, RUN_VALUE) with the same command line.
Root: HKCU; Subkey: "{#RunKey}"; ValueType: string; ValueName: "Pairsync"; ValueData: """{app}\Pairsync.exe"" --background"; Flags: uninsdeletevalue; Tasks: autostart

[Run]
Filename: "{app}\Pairsync.exe"; Description: "{cm:LaunchProgram,Pairsync}"; Flags: nowait postinstall skipifsilent

[Code]
// The Run value may have been set by the app's switch after installing without the task:
// the uninstaller removes it in every case, so nothing starts a program that is gone.
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usUninstall then
    RegDeleteValue(HKEY_CURRENT_USER, '{#RunKey}', 'Pairsync');
end;

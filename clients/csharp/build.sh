#!/bin/sh
# Builds the library, the CLI, the interop agent and the test runner with Mono's mcs into build/.
# (The .csproj files beside the sources build the same code with a dotnet SDK: dotnet build Switchboard.Cli.)
set -eu
cd "$(dirname "$0")"
MCS=${MCS:-mcs}
mkdir -p build
$MCS -nologo -warn:4 -target:library -out:build/Switchboard.Client.dll Switchboard.Client/*.cs
$MCS -nologo -out:build/switchboard-cs.exe -r:build/Switchboard.Client.dll -r:System.Core Switchboard.Cli/*.cs
$MCS -nologo -out:build/switchboard-cs-agent.exe -r:build/Switchboard.Client.dll Switchboard.Agent/*.cs
$MCS -nologo -out:build/Switchboard.Tests.exe -r:build/Switchboard.Client.dll -r:System.Core Switchboard.Tests/*.cs
echo "built into $(pwd)/build: Switchboard.Client.dll switchboard-cs.exe switchboard-cs-agent.exe Switchboard.Tests.exe"

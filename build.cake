// CheapConv build script: `dotnet tool restore && dotnet cake --target=<Task>`.
// Tasks: Native (PTX + emulator + sanitizer builds), Build, Test, Bench, Pack (the CheapConv NuGet package), Bundle
// (self-contained GPU bundle).
var target = Argument("target", "Test");
var configuration = Argument("configuration", "Release");
var bundleDir = Directory("./artifacts/bundle");
var packageDir = Directory("./artifacts/packages");

Task("Native")
    .Description("Compiles native/kernels to PTX (clang-14) and into the emulator and sanitizer builds (g++).")
    .Does(() =>
{
    var exit = StartProcess("make", new ProcessSettings { Arguments = $"-C native -j{Environment.ProcessorCount} all sanitize" });
    if (exit != 0) throw new Exception($"make -C native failed with exit code {exit}; its output above names the missing tool or the failing file");
});

Task("Build")
    .IsDependentOn("Native")
    .Does(() => DotNetBuild("./CheapConv.sln", new DotNetBuildSettings { Configuration = configuration }));

Task("Test")
    .IsDependentOn("Build")
    .Does(() => DotNetTest("./CheapConv.sln", new DotNetTestSettings { Configuration = configuration, NoBuild = true }));

Task("Bench")
    .Description("Times the conv passes over the shape catalogue on the best device (CUDA if present, else the C# CPU baseline).")
    .IsDependentOn("Build")
    .Does(() =>
{
    var exit = StartProcess("dotnet", new ProcessSettings
    {
        Arguments = $"run --no-build -c {configuration} --project src/CheapConv.Cli -- bench conv --device auto --catalogue shapes/wrn40-2-moonshine.txt",
    });
    if (exit != 0) throw new Exception($"bench failed with exit code {exit}");
});

Task("Pack")
    .Description("Packs the core into artifacts/packages/CheapConv.<version>.nupkg, the native libraries under runtimes/linux-x64/native/.")
    .IsDependentOn("Native")
    .Does(() =>
{
    DotNetPack("./src/CheapConv/CheapConv.csproj", new DotNetPackSettings { Configuration = configuration, OutputDirectory = packageDir });
    Information($"package in {packageDir}; use it from a project through a local feed: dotnet nuget add source {MakeAbsolute(packageDir)} --name cheapconv-local");
});

Task("Bundle")
    .Description("Publishes the CLI self-contained for linux-x64 into artifacts/bundle, for GPU machines without .NET.")
    .IsDependentOn("Native")
    .Does(() =>
{
    CleanDirectory(bundleDir);
    DotNetPublish("./src/CheapConv.Cli/CheapConv.Cli.csproj", new DotNetPublishSettings
    {
        Configuration = configuration,
        Runtime = "linux-x64",
        SelfContained = true,
        OutputDirectory = bundleDir,
        // One compressed executable (about 35 MB instead of 83 MB of loose files) so the bundle fits what a
        // GPU machine's transfer takes; the native libraries (libcheapconv.so, libcheapconv_emu.so) stay beside it,
        // where CheapConvNative looks first. Nothing is trimmed: the dependencies were never checked for it.
        PublishSingleFile = true,
        PublishTrimmed = false,
        MSBuildSettings = new DotNetMSBuildSettings().WithProperty("EnableCompressionInSingleFile", "true"),
    });
    var commit = StartProcess("git", new ProcessSettings { Arguments = "rev-parse HEAD", RedirectStandardOutput = true }, out var lines) == 0
        ? string.Join("", lines) : "unknown";
    System.IO.File.WriteAllText(bundleDir + File("COMMIT"), commit + "\n");
    Information($"bundle in {bundleDir} (commit {commit}); on a GPU machine run: bench/gpu/check.sh {bundleDir}");
});

RunTarget(target);

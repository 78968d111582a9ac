using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text.RegularExpressions;
using CheapConv.Tests.Emulator;
using Xunit;
using Xunit.Abstractions;

namespace CheapConv.Tests.Packaging;

/// <summary>
/// The NuGet package of the core, as a user gets it: <c>dotnet pack</c> of src/CheapConv (what the build of this test
/// run made, native libraries included: nothing is rebuilt) into a local folder feed, then a throwaway console project in a temporary folder that references CheapConv
/// from that feed and runs one grouped convolution on the emulator (EmulatedDevice + GpuBackend), checked against
/// CpuBackend. Nothing of the repository reaches the program but the .nupkg: its own nuget.config (the local feed
/// first, then nuget.org, with CheapConv mapped to the local feed only), its own global packages folder (so a package
/// of an earlier run is never reused), and no CHEAPCONV_*LIBRARY or LD_LIBRARY_PATH, so the native libraries can only
/// come from the package's runtimes/linux-x64/native/.
/// </summary>
public class PackageTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(3);

    [Fact]
    public void Package_RestoredFromALocalFeed_RunsAConvolutionOnTheEmulator()
    {
        var root = Directory.CreateTempSubdirectory("cheapconv-package-");
        try
        {
            var watch = Stopwatch.StartNew();
            var feed = Directory.CreateDirectory(Path.Combine(root.FullName, "feed")).FullName;
            var configuration = typeof(PackageTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
            Dotnet(TestPaths.RepositoryRoot, "pack", Path.Combine(TestPaths.RepositoryRoot, "src", "CheapConv", "CheapConv.csproj"),
                "--no-build", "-c", configuration, "-p:CheapConvSkipNative=true", "-o", feed);
            var package = Assert.Single(Directory.GetFiles(feed, "CheapConv.*.nupkg"));
            var version = Path.GetFileNameWithoutExtension(package)["CheapConv.".Length..];
            output.WriteLine($"packed {Path.GetFileName(package)} in {watch.Elapsed.TotalSeconds:F1} s");

            var app = Directory.CreateDirectory(Path.Combine(root.FullName, "app")).FullName;
            File.WriteAllText(Path.Combine(app, "nuget.config"), NuGetConfig(feed, Path.Combine(root.FullName, "packages")));
            File.WriteAllText(Path.Combine(app, "PackageConsumer.csproj"), ConsumerProject(version));
            File.WriteAllText(Path.Combine(app, "Program.cs"), ConsumerProgram);
            var run = Dotnet(app, "run", "-c", "Release");
            output.WriteLine($"restored, built and ran the consumer after {watch.Elapsed.TotalSeconds:F1} s");

            Assert.Matches(@"package conv2d: emulator matches CpuBackend, max abs error \S+ <= 1E-004 over 1512 outputs", run);
            var outputFolder = Path.Combine(app, "bin", "Release", "net10.0");
            var nativeFolder = Path.Combine(outputFolder, "runtimes", "linux-x64", "native") + Path.DirectorySeparatorChar;
            Assert.Contains($"emulator library: {nativeFolder}libcheapconv_emu.so", run);
            Assert.Contains($"cuda library: {nativeFolder}libcheapconv.so", run);

            using var archive = ZipFile.OpenRead(package);
            var entries = archive.Entries.Select(e => e.FullName).ToHashSet();
            string[] expected =
            [
                "lib/net10.0/CheapConv.dll", "lib/net10.0/CheapConv.xml", "README.md",
                "runtimes/linux-x64/native/libcheapconv.so", "runtimes/linux-x64/native/libcheapconv_emu.so",
            ];
            Assert.All(expected, entry => Assert.Contains(entry, entries));
            using var nuspec = new StreamReader(archive.GetEntry("CheapConv.nuspec")!.Open());
            var metadata = nuspec.ReadToEnd();
            Assert.Contains("<license type=\"expression\">MIT</license>", metadata);
            Assert.DoesNotContain("<dependency ", metadata); // the API analyzer is build-only; the core depends on nothing
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    /// <summary>Runs the dotnet that runs these tests with a clean environment; returns its output, failing the test on a non-zero exit.</summary>
    private string Dotnet(string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet") { WorkingDirectory = workingDirectory };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // What the test host inherited from `dotnet test` (MSBuild's own variables) or from a developer's shell
        // (library overrides) must not steer the nested builds or the program.
        var inherited = start.Environment.Keys.Where(key =>
            key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || key.StartsWith("CHEAPCONV_", StringComparison.Ordinal) ||
            key is "LD_LIBRARY_PATH" or "NUGET_PACKAGES").ToList();
        foreach (var key in inherited)
        {
            start.Environment.Remove(key);
        }

        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        var (code, text) = NativeProcess.Run(start, StepTimeout);
        output.WriteLine($"$ dotnet {string.Join(' ', arguments)}\n{text}");
        Assert.True(code == 0, $"dotnet {string.Join(' ', arguments)} exited with {code}:\n{text}");
        return text;
    }

    /// <summary>The local feed first; nuget.org (this machine's default source, here served by a mirror) for anything
    /// else; CheapConv from the local feed only, so a package of that name elsewhere can never be the one tested.</summary>
    private static string NuGetConfig(string feed, string packages) => $"""
        <?xml version="1.0" encoding="utf-8"?>
        <configuration>
          <config>
            <add key="globalPackagesFolder" value="{packages}" />
          </config>
          <packageSources>
            <clear />
            <add key="local" value="{feed}" />
            <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
          </packageSources>
          <packageSourceMapping>
            <packageSource key="local">
              <package pattern="CheapConv" />
            </packageSource>
            <packageSource key="nuget.org">
              <package pattern="*" />
            </packageSource>
          </packageSourceMapping>
        </configuration>
        """;

    private static string ConsumerProject(string version) => $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
            <ImplicitUsings>enable</ImplicitUsings>
            <Nullable>enable</Nullable>
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="CheapConv" Version="[{version}]" />
          </ItemGroup>
        </Project>
        """;

    /// <summary>A grouped 3×3 convolution (12 filters over 8 channels in 4 groups, 9×7 images, batch 2) on the emulator
    /// and on the C# backend. Each output sums 2·3·3 = 18 products of values in [-1, 1], so float32 rounding stays orders
    /// of magnitude below the 1e-4 tolerance; the output buffer starts as NaN, so a kernel that writes nothing fails.</summary>
    private const string ConsumerProgram = """
        using CheapConv.Backends;
        using CheapConv.Devices;
        using CheapConv.Interop;
        using CheapConv.Problems;

        var problem = ConvProblem.Create(n: 2, c: 8, h: 9, w: 7, k: 12, r: 3, s: 3, stride: 1, pad: 1, groups: 4);
        var random = new Random(7);
        float[] x = [.. Enumerable.Range(0, (int)problem.InputElements).Select(_ => (float)(random.NextDouble() * 2 - 1))];
        float[] w = [.. Enumerable.Range(0, (int)problem.WeightElements).Select(_ => (float)(random.NextDouble() * 2 - 1))];

        using var device = EmulatedDevice.Open();
        using var gpu = new GpuBackend(device);
        using var gx = device.Upload<float>(x);
        using var gw = device.Upload<float>(w);
        using var gy = device.Allocate<float>(problem.OutputElements);
        gy.FillBytes(0xFF);
        gpu.Conv2dForward(problem, gx, gw, gy);
        var actual = gy.ToArray();

        IBackend cpu = new CpuBackend(); // CpuBackend implements the ops explicitly: they are IBackend's
        using var cx = cpu.Upload(x);
        using var cw = cpu.Upload(w);
        using var cy = cpu.Allocate(problem.OutputElements);
        cpu.Conv2dForward(problem, cx, cw, cy);
        var expected = new float[problem.OutputElements];
        cpu.Download(cy, expected);

        const double tolerance = 1e-4;
        var error = actual.Zip(expected, (a, e) => float.IsFinite(a) ? Math.Abs((double)a - e) : double.PositiveInfinity).Max();
        var cuda = CheapConvNative.Load(CheapConvBackend.Cuda);
        Console.WriteLine($"emulator library: {device.LibraryPath}");
        Console.WriteLine($"cuda library: {cuda.LibraryPath} (C ABI {cuda.VersionText})");
        var passed = error <= tolerance;
        var verdict = passed ? "matches CpuBackend" : "DIFFERS from CpuBackend";
        Console.WriteLine(FormattableString.Invariant(
            $"package conv2d: emulator {verdict}, max abs error {error:E2} {(passed ? "<=" : ">")} {tolerance:E0} over {actual.Length} outputs"));
        return passed ? 0 : 1;
        """;
}

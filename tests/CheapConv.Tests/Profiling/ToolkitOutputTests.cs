using CheapConv.Profiling;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>The readers of ptxas and cuobjdump output, on text in the tools' own format.</summary>
public class ToolkitOutputTests
{
    private const string PtxasVerbose = """
        ptxas info    : 0 bytes gmem
        ptxas info    : Compiling entry function 'cc_a_kernel' for 'sm_90'
        ptxas info    : Function properties for cc_a_kernel
            0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 39 registers, 8320 bytes smem, 400 bytes cmem[0]
        ptxas info    : Compiling entry function 'cc_b_kernel' for 'sm_90'
        ptxas info    : Function properties for cc_b_kernel
            256 bytes stack frame, 12 bytes spill stores, 8 bytes spill loads
        ptxas info    : Used 255 registers, 16 bytes lmem, 360 bytes cmem[0]
        """;

    private const string ResourceUsage = """

        Fatbin elf code:
        ================
        arch = sm_80
        code version = [1,7]

        Resource usage:
         Common:
          GLOBAL:0
         Function cc_a_kernel:
          REG:70 STACK:0 SHARED:8320 LOCAL:0 CONSTANT[0]:440 TEXTURE:0 SURFACE:0 SAMPLER:0

        Fatbin ptx code:
        ================
        arch = sm_90

        Fatbin elf code:
        ================
        arch = sm_90
        code version = [1,7]

        Resource usage:
         Common:
          GLOBAL:0
         Function cc_a_kernel:
          REG:64 STACK:16 SHARED:9344 LOCAL:8 CONSTANT[0]:616 TEXTURE:0 SURFACE:0 SAMPLER:0
        """;

    private const string Sass = """
        	code for sm_90
        		Function : cc_a_kernel
        	.headerflags    @"EF_CUDA_SM90 EF_CUDA_PTX_SM(EF_CUDA_SM90)"
                /*0000*/                   IMAD.MOV.U32 R1, RZ, RZ, c[0x0][0x28] ;     /* 0x00000a00ff017624 */
                                                                                      /* 0x000fc400078e00ff */
                /*0010*/                   LDG.E R2, [R2.64] ;                         /* 0x0000000402027981 */
                /*0020*/                   LDG.E.64.CONSTANT R4, [R2.64] ;             /* 0x0000000402047981 */
                /*0030*/               @!P0 LDG.E.128 R8, [R2.64] ;                    /* 0x0000000402087981 */
                /*0040*/                   FFMA R1, R2, R3, R4 ;                       /* 0x0000000302017223 */
                /*0050*/                   HFMA2.MMA R4, -RZ, RZ, 0, 0 ;               /* 0x00000000ff047435 */
                /*0060*/                   HMMA.1688.F32.TF32 R4, R8, R12, R4 ;        /* 0x0000000c08047237 */
                /*0070*/                   STS.128 [R0], R8 ;                          /* 0x0000000800007388 */
                /*0080*/                   LDS R6, [R0] ;                              /* 0x0000000000067984 */
                /*0090*/                   SHFL.BFLY PT, R3, R2, 0x10, 0x1f ;          /* 0x0e001f0002037f89 */
                /*00a0*/               @P1 BRA 0x200 ;                                 /* 0x0000001000001947 */
                /*00b0*/                   STL.64 [R1], R4 ;                           /* 0x0000000401007387 */
                /*00c0*/                   LDL R5, [R1] ;                              /* 0x0000000001057983 */
                /*00d0*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;               /* 0x0000000000007b1d */
                /*00e0*/                   RED.E.ADD.F32.FTZ.RN.STRONG.GPU [R2.64], R7 ;  /* 0x000000070200798e */
                /*00f0*/                   STG.E [R2.64], R1 ;                         /* 0x0000000102007986 */
                /*0100*/                   EXIT ;                                      /* 0x000000000000794d */
                /*0110*/                   NOP ;                                       /* 0x0000000000007918 */
        		...........
        		Function : cc_b_kernel
                /*0000*/                   EXIT ;                                      /* 0x000000000000794d */
        """;

    [Fact]
    public void ParsePtxas_ReadsEveryEntryWithSpillsStackAndLocalMemory()
    {
        var kernels = ToolkitOutput.ParsePtxas(PtxasVerbose);
        Assert.Equal(
            [
                new PtxasKernel("cc_a_kernel", "sm_90", 39, 8320, 0, 0, 0, 0),
                new PtxasKernel("cc_b_kernel", "sm_90", 255, 0, 16, 256, 12, 8),
            ],
            kernels);
    }

    [Fact]
    public void ParseResourceUsage_ReadsEachArchitectureAndSkipsThePtxSection()
    {
        var rows = ToolkitOutput.ParseResourceUsage(ResourceUsage);
        Assert.Equal(
            [
                new CubinResources("cc_a_kernel", "sm_80", 70, 0, 8320, 0, 440),
                new CubinResources("cc_a_kernel", "sm_90", 64, 16, 9344, 8, 616),
            ],
            rows);
    }

    [Fact]
    public void ParseResourceUsage_OfACubinTakesTheGivenArchitecture()
    {
        var cubin = " Function cc_a_kernel:\n  REG:10 STACK:0 SHARED:0 LOCAL:0 CONSTANT[0]:536 TEXTURE:0 SURFACE:0 SAMPLER:0\n";
        Assert.Equal([new CubinResources("cc_a_kernel", "sm_90", 10, 0, 0, 0, 536)], ToolkitOutput.ParseResourceUsage(cubin, "sm_90"));
    }

    [Fact]
    public void ParseSass_CountsTheMixByOpcodeAndWidth()
    {
        var listing = ToolkitOutput.ParseSass(Sass);
        Assert.Equal(["EXIT"], listing[("cc_b_kernel", "sm_90")]);
        var mix = SassMix.Of(listing[("cc_a_kernel", "sm_90")]);
        Assert.Equal(new SassMix(Total: 17, Ffma: 1, FpOther: 0, Hmma: 1, Ldg: 1, Ldg64: 1, Ldg128: 1, Stg: 1, Stg64: 0, Stg128: 0,
            Lds: 1, Sts: 1, Shfl: 1, Branches: 1, Atomics: 1, Barriers: 1, LocalStoreBytes: 8, LocalLoadBytes: 4), mix);
    }

    [Fact]
    public void Find_WithoutTheToolkit_NamesTheDebianPackage()
    {
        CudaToolkit.SearchPathForTests.Value = [Path.Combine(Path.GetTempPath(), "no-such-toolkit")];
        try
        {
            var e = Assert.Throws<ToolkitUnavailableException>(CudaToolkit.Find);
            Assert.Contains("ptxas and cuobjdump not found", e.Message);
            Assert.Contains("apt-get install nvidia-cuda-toolkit", e.Message);
            Assert.Contains("non-free", e.Message);
            Assert.False(CudaToolkit.IsAvailable());
        }
        finally
        {
            CudaToolkit.SearchPathForTests.Value = null;
        }
    }
}

using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Tests.Cuda;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// The Norm-family checks of <see cref="NormDeviceChecks"/> on a real GPU. Skipped, with the reason, where there
/// is no usable NVIDIA GPU (always on development and CI machines).
/// </summary>
public class NormCudaTests
{
    [SkippableTheory]
    [MemberData(nameof(NormTestData.Training), MemberType = typeof(NormTestData))]
    public void BatchNorm_MatchesReference(string shape)
    {
        CudaRequirement.SkipOrFailWithoutGpu();
        using var device = CudaDevice.Open();
        var gpu = new GpuBackend(device);
        var s = NormShape.Parse(shape);
        foreach (var relu in new[] { false, true })
        {
            NormDeviceChecks.BatchNormTrainForward(gpu, s, relu);
            NormDeviceChecks.BatchNormEvalForward(gpu, s, relu);
            NormDeviceChecks.BatchNormBackward(gpu, s, relu);
        }

        NormDeviceChecks.BatchNormTrainForward(gpu, s, relu: false, offset: 1000);
        NormDeviceChecks.GlobalAvgPool(gpu, s);
        NormDeviceChecks.ZeroPad(gpu, s, 1, 2, 3, 4);
    }

    [SkippableTheory]
    [MemberData(nameof(NormTestData.Lengths), MemberType = typeof(NormTestData))]
    public void ElementwiseAndSum_MatchReference(int length)
    {
        CudaRequirement.SkipOrFailWithoutGpu();
        using var device = CudaDevice.Open();
        var gpu = new GpuBackend(device);
        NormDeviceChecks.ReluAndAdd(gpu, length);
        NormDeviceChecks.FillScaleAxpy(gpu, length);
        NormDeviceChecks.Sum(gpu, length);
    }
}

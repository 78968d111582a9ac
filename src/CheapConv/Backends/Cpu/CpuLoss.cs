using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// Vectorised attention transfer and SGD step for the fast CPU paths. Every element gets the reference's
/// operations in the reference's order (the attention map sums its channels one after another, the loss adds
/// the samples in order), so these results equal the float reference bit for bit; the work is only spread over
/// samples (attention) or element slices (SGD). Callers check the sizes first.
/// </summary>
internal static class CpuLoss
{
    /// <summary>One sample's scaled map gradient per AT backward body running (kept from call to call, see ScratchArrays).</summary>
    private static readonly ScratchArrays ScaledMapScratch = new(pinned: false);

    /// <summary>See <see cref="CpuBackend.AtForward{T}"/>.</summary>
    public static void AtForward(int n, int c, int h, int w, float[] student, float[] teacher, float[] loss, float[] studentMap,
        float[] teacherMap, float[] studentNorm, ParallelOptions parallel)
    {
        int hw = h * w;
        Parallel.For(0, 2 * n, parallel, task =>
        {
            var sample = task >> 1;
            if ((task & 1) == 0)
            {
                studentNorm[sample] = AttentionMap(student.AsSpan(sample * c * hw, c * hw), c, studentMap.AsSpan(sample * hw, hw));
            }
            else
            {
                AttentionMap(teacher.AsSpan(sample * c * hw, c * hw), c, teacherMap.AsSpan(sample * hw, hw));
            }
        });

        var total = 0f;
        for (var i = 0; i < n * hw; i++)
        {
            var d = studentMap[i] - teacherMap[i];
            total += d * d;
        }

        loss[0] = total / ((float)n * hw);
    }

    /// <summary>See <see cref="CpuBackend.AtBackward{T}"/>.</summary>
    public static void AtBackward(int n, int c, int h, int w, float[] student, float[] studentMap, float[] teacherMap, float[] studentNorm,
        float[] dloss, float[] dstudent, ParallelOptions parallel)
    {
        int hw = h * w;
        var k = 2f * dloss[0] / ((float)n * hw);
        var channelScale = 2f / c;
        Parallel.For(0, n, parallel, sample => AtBackwardSample(sample, c, hw, k, channelScale, student, studentMap, teacherMap, studentNorm, dstudent));
    }

    /// <summary>One SGD step (see <see cref="CpuBackend.SgdStep{T}"/>), element slices over the thread pool.</summary>
    public static void SgdStep(float[] parameter, float[] gradient, float[] momentumBuffer, float learningRate, float momentum,
        float weightDecay, bool nesterov, ParallelOptions parallel) =>
        CpuVector.ForSlices(parameter.Length, parallel, (start, length) =>
            SgdSlice(parameter.AsSpan(start, length), gradient.AsSpan(start, length), momentumBuffer.AsSpan(start, length), learningRate,
                momentum, weightDecay, nesterov));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float AttentionMap(ReadOnlySpan<float> activation, int c, Span<float> map)
    {
        var hw = map.Length;
        map.Clear();
        for (var ch = 0; ch < c; ch++)
        {
            // map[i] += a[ch, i]², channel after channel: the reference's order for every element.
            var plane = activation.Slice(ch * hw, hw);
            var vp = MemoryMarshal.Cast<float, Vector<float>>(plane);
            var vm = MemoryMarshal.Cast<float, Vector<float>>(map);
            for (var i = 0; i < vm.Length; i++)
            {
                vm[i] += vp[i] * vp[i];
            }

            for (var i = vm.Length * Vector<float>.Count; i < hw; i++)
            {
                map[i] += plane[i] * plane[i];
            }
        }

        float channels = c, squares = 0f;
        for (var i = 0; i < hw; i++)
        {
            map[i] /= channels;
            squares += map[i] * map[i];
        }

        var norm = MathF.Sqrt(squares);
        var divisor = MathF.Max(norm, CpuBackend.AtNormEpsilon);
        for (var i = 0; i < hw; i++)
        {
            map[i] /= divisor;
        }

        return norm;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AtBackwardSample(int sample, int c, int hw, float k, float channelScale, float[] student, float[] studentMap,
        float[] teacherMap, float[] studentNorm, float[] dstudent)
    {
        var qs = studentMap.AsSpan(sample * hw, hw);
        var qt = teacherMap.AsSpan(sample * hw, hw);
        var dot = 0f;
        for (var i = 0; i < hw; i++)
        {
            dot += qs[i] * (qs[i] - qt[i]);
        }

        var norm = studentNorm[sample];
        var clamped = norm < CpuBackend.AtNormEpsilon;
        var projection = clamped ? 0f : dot;
        var divisor = clamped ? CpuBackend.AtNormEpsilon : norm;
        using var scratch = ScaledMapScratch.Rent(hw);
        var scaled = scratch.Array.AsSpan(0, hw);
        for (var i = 0; i < hw; i++)
        {
            var dmap = k * ((qs[i] - qt[i]) - qs[i] * projection) / divisor;
            scaled[i] = dmap * channelScale;
        }

        var vs = MemoryMarshal.Cast<float, Vector<float>>(scaled);
        for (var ch = 0; ch < c; ch++)
        {
            var offset = (sample * c + ch) * hw;
            ReadOnlySpan<float> a = student.AsSpan(offset, hw);
            var d = dstudent.AsSpan(offset, hw);
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vd = MemoryMarshal.Cast<float, Vector<float>>(d);
            for (var i = 0; i < vd.Length; i++)
            {
                vd[i] = vs[i] * va[i];
            }

            for (var i = vd.Length * Vector<float>.Count; i < hw; i++)
            {
                d[i] = scaled[i] * a[i];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SgdSlice(Span<float> parameter, ReadOnlySpan<float> gradient, Span<float> buffer, float learningRate, float momentum,
        float weightDecay, bool nesterov)
    {
        var vp = MemoryMarshal.Cast<float, Vector<float>>(parameter);
        var vg = MemoryMarshal.Cast<float, Vector<float>>(gradient);
        var vb = MemoryMarshal.Cast<float, Vector<float>>(buffer);
        Vector<float> lr = new(learningRate), mu = new(momentum), wd = new(weightDecay);
        for (var i = 0; i < vp.Length; i++)
        {
            var d = vg[i];
            if (weightDecay != 0)
            {
                d += wd * vp[i];
            }

            if (momentum != 0)
            {
                vb[i] = mu * vb[i] + d;
                d = nesterov ? d + mu * vb[i] : vb[i];
            }

            vp[i] -= lr * d;
        }

        for (var i = vp.Length * Vector<float>.Count; i < parameter.Length; i++)
        {
            var d = gradient[i];
            if (weightDecay != 0)
            {
                d += weightDecay * parameter[i];
            }

            if (momentum != 0)
            {
                buffer[i] = momentum * buffer[i] + d;
                d = nesterov ? d + momentum * buffer[i] : buffer[i];
            }

            parameter[i] -= learningRate * d;
        }
    }
}

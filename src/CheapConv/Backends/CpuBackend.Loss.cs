using System.Numerics;
using CheapConv.Backends.Cpu;

namespace CheapConv.Backends;

// The Loss family of the reference (see CpuBackend.cs): cross-entropy, knowledge distillation, attention
// transfer, the SGD step and CountCorrect. The validation helpers at the end are shared with GpuBackend,
// so both backends refuse the same arguments with the same messages.
public sealed partial class CpuBackend
{
    /// <summary>F.normalize's eps: an attention map's norm is clamped below at this value before dividing.</summary>
    internal const float AtNormEpsilon = 1e-12f;

    /// <summary>
    /// loss[0] = −(1/N)·Σ_n log softmax(logits[n])[labels[n]], computed as log Σ_j exp(x_j − max) − (x_label − max)
    /// (log-sum-exp: no exponential overflows and no log of an underflowed probability);
    /// probabilities[n, j] = exp(x_j − max) / Σ_k exp(x_k − max).
    /// </summary>
    internal static void CrossEntropyForward<T>(int n, int classes, T[] logits, ReadOnlySpan<int> labels, T[] loss, T[] probabilities)
        where T : IFloatingPointIeee754<T>
    {
        CheckRows(n, classes);
        CheckLabels(labels, n, classes);
        CheckElements(nameof(logits), logits.Length, (long)n * classes);
        CheckElements(nameof(probabilities), probabilities.Length, (long)n * classes);
        CheckElements(nameof(loss), loss.Length, 1);

        var total = T.Zero;
        for (var row = 0; row < n; row++)
        {
            var x = logits.AsSpan(row * classes, classes);
            var (max, sum) = SoftmaxStatistics(x, T.One);
            var p = probabilities.AsSpan(row * classes, classes);
            for (var j = 0; j < classes; j++)
            {
                p[j] = T.Exp(x[j] - max) / sum;
            }

            total += T.Log(sum) - (x[labels[row]] - max);
        }

        loss[0] = total / T.CreateChecked(n);
    }

    /// <summary>dlogits = (probabilities − onehot(labels)) · dloss[0] / N. dlogits may be the probabilities array.</summary>
    internal static void CrossEntropyBackward<T>(int n, int classes, T[] probabilities, ReadOnlySpan<int> labels, T[] dloss, T[] dlogits)
        where T : IFloatingPointIeee754<T>
    {
        CheckRows(n, classes);
        CheckLabels(labels, n, classes);
        CheckElements(nameof(probabilities), probabilities.Length, (long)n * classes);
        CheckElements(nameof(dlogits), dlogits.Length, (long)n * classes);
        CheckElements(nameof(dloss), dloss.Length, 1);

        var scale = dloss[0] / T.CreateChecked(n);
        for (var row = 0; row < n; row++)
        {
            for (var j = 0; j < classes; j++)
            {
                var index = row * classes + j;
                dlogits[index] = (probabilities[index] - (j == labels[row] ? T.One : T.Zero)) * scale;
            }
        }
    }

    /// <summary>
    /// loss[0] = T²/N · Σ_n KL(softmax(t_n/T) ‖ softmax(s_n/T)), KL(p ‖ q) = Σ_j p_j (log p_j − log q_j), the logs in
    /// log-sum-exp form (x_j/T − max) − log Σ. Saves softmax(s/T) and softmax(t/T).
    /// </summary>
    internal static void KdForward<T>(int n, int classes, T temperature, T[] student, T[] teacher, T[] loss, T[] studentSoft, T[] teacherSoft)
        where T : IFloatingPointIeee754<T>
    {
        CheckRows(n, classes);
        CheckTemperature(double.CreateChecked(temperature));
        foreach (var (name, array) in new[] { (nameof(student), student), (nameof(teacher), teacher), (nameof(studentSoft), studentSoft), (nameof(teacherSoft), teacherSoft) })
        {
            CheckElements(name, array.Length, (long)n * classes);
        }

        CheckElements(nameof(loss), loss.Length, 1);

        var total = T.Zero;
        for (var row = 0; row < n; row++)
        {
            var s = student.AsSpan(row * classes, classes);
            var t = teacher.AsSpan(row * classes, classes);
            var (maxS, sumS) = SoftmaxStatistics(s, temperature);
            var (maxT, sumT) = SoftmaxStatistics(t, temperature);
            T logSumS = T.Log(sumS), logSumT = T.Log(sumT);
            var kl = T.Zero;
            for (var j = 0; j < classes; j++)
            {
                var shiftedS = s[j] / temperature - maxS;
                var shiftedT = t[j] / temperature - maxT;
                var pt = T.Exp(shiftedT) / sumT;
                studentSoft[row * classes + j] = T.Exp(shiftedS) / sumS;
                teacherSoft[row * classes + j] = pt;
                kl += pt * ((shiftedT - logSumT) - (shiftedS - logSumS));
            }

            total += kl;
        }

        loss[0] = temperature * temperature * total / T.CreateChecked(n);
    }

    /// <summary>dstudent = T/N · (softmax(s/T) − softmax(t/T)) · dloss[0]. dstudent may be either input array.</summary>
    internal static void KdBackward<T>(int n, int classes, T temperature, T[] studentSoft, T[] teacherSoft, T[] dloss, T[] dstudent)
        where T : IFloatingPointIeee754<T>
    {
        CheckRows(n, classes);
        CheckTemperature(double.CreateChecked(temperature));
        CheckElements(nameof(studentSoft), studentSoft.Length, (long)n * classes);
        CheckElements(nameof(teacherSoft), teacherSoft.Length, (long)n * classes);
        CheckElements(nameof(dstudent), dstudent.Length, (long)n * classes);
        CheckElements(nameof(dloss), dloss.Length, 1);

        var scale = dloss[0] * temperature / T.CreateChecked(n);
        for (var i = 0; i < n * classes; i++)
        {
            dstudent[i] = (studentSoft[i] - teacherSoft[i]) * scale;
        }
    }

    /// <summary>
    /// Attention transfer for one pair of N×C×H×W activations: map[n, hw] = (1/C)·Σ_c a[n, c, hw]², q = map / max(‖map‖₂, eps)
    /// per sample (F.normalize), loss[0] = (1/(N·H·W))·Σ (q_s − q_t)². Saves q_s, q_t (N×H·W) and the unclamped ‖map_s‖ (N).
    /// </summary>
    internal static void AtForward<T>(int n, int c, int h, int w, T[] student, T[] teacher, T[] loss, T[] studentMap, T[] teacherMap, T[] studentNorm)
        where T : IFloatingPointIeee754<T>
    {
        CheckActivations(n, c, h, w);
        int hw = h * w;
        CheckElements(nameof(student), student.Length, (long)n * c * hw);
        CheckElements(nameof(teacher), teacher.Length, (long)n * c * hw);
        CheckElements(nameof(studentMap), studentMap.Length, (long)n * hw);
        CheckElements(nameof(teacherMap), teacherMap.Length, (long)n * hw);
        CheckElements(nameof(studentNorm), studentNorm.Length, n);
        CheckElements(nameof(loss), loss.Length, 1);

        var total = T.Zero;
        for (var sample = 0; sample < n; sample++)
        {
            var qs = studentMap.AsSpan(sample * hw, hw);
            var qt = teacherMap.AsSpan(sample * hw, hw);
            var normS = AttentionMap(student.AsSpan(sample * c * hw, c * hw), c, qs);
            var normT = AttentionMap(teacher.AsSpan(sample * c * hw, c * hw), c, qt);
            studentNorm[sample] = normS;
            for (var i = 0; i < hw; i++)
            {
                var d = qs[i] - qt[i];
                total += d * d;
            }
        }

        loss[0] = total / (T.CreateChecked(n) * T.CreateChecked(hw));
    }

    /// <summary>
    /// dstudent of <see cref="AtForward{T}"/> times dloss[0]. With g = ∂L/∂q_s = k·(q_s − q_t), k = 2·dloss/(N·H·W):
    /// ∂L/∂map = (g − q_s·⟨q_s, g⟩)/‖map_s‖ where ‖map_s‖ ≥ eps, else g/eps (the clamped divisor is a constant, as in
    /// PyTorch's clamp_min backward); ∂L/∂a[c, hw] = ∂L/∂map[hw] · 2·a[c, hw]/C.
    /// </summary>
    internal static void AtBackward<T>(int n, int c, int h, int w, T[] student, T[] studentMap, T[] teacherMap, T[] studentNorm, T[] dloss, T[] dstudent)
        where T : IFloatingPointIeee754<T>
    {
        CheckActivations(n, c, h, w);
        int hw = h * w;
        CheckElements(nameof(student), student.Length, (long)n * c * hw);
        CheckElements(nameof(dstudent), dstudent.Length, (long)n * c * hw);
        CheckElements(nameof(studentMap), studentMap.Length, (long)n * hw);
        CheckElements(nameof(teacherMap), teacherMap.Length, (long)n * hw);
        CheckElements(nameof(studentNorm), studentNorm.Length, n);
        CheckElements(nameof(dloss), dloss.Length, 1);

        var epsilon = T.CreateChecked(AtNormEpsilon);
        var k = T.CreateChecked(2) * dloss[0] / (T.CreateChecked(n) * T.CreateChecked(hw));
        var channelScale = T.CreateChecked(2) / T.CreateChecked(c);
        for (var sample = 0; sample < n; sample++)
        {
            var qs = studentMap.AsSpan(sample * hw, hw);
            var qt = teacherMap.AsSpan(sample * hw, hw);
            var dot = T.Zero;
            for (var i = 0; i < hw; i++)
            {
                dot += qs[i] * (qs[i] - qt[i]);
            }

            var norm = studentNorm[sample];
            var clamped = norm < epsilon;
            var projection = clamped ? T.Zero : dot;
            var divisor = clamped ? epsilon : norm;
            for (var ch = 0; ch < c; ch++)
            {
                for (var i = 0; i < hw; i++)
                {
                    var index = (sample * c + ch) * hw + i;
                    var dmap = k * ((qs[i] - qt[i]) - qs[i] * projection) / divisor;
                    dstudent[index] = dmap * channelScale * student[index];
                }
            }
        }
    }

    /// <summary>
    /// One SGD step in place, PyTorch's torch.optim.SGD with dampening 0: d = g + weightDecay·p; with momentum ≠ 0,
    /// buf = momentum·buf + d (buf must start at zero) and d = nesterov ? d + momentum·buf : buf; then p −= lr·d.
    /// With momentum 0 the buffer is neither read nor written (PyTorch keeps none).
    /// </summary>
    internal static void SgdStep<T>(T[] parameter, T[] gradient, T[] momentumBuffer, T learningRate, T momentum, T weightDecay, bool nesterov)
        where T : IFloatingPointIeee754<T>
    {
        CheckSgdOptions(double.CreateChecked(learningRate), double.CreateChecked(momentum), double.CreateChecked(weightDecay), nesterov);
        CheckElements(nameof(gradient), gradient.Length, parameter.Length);
        CheckElements(nameof(momentumBuffer), momentumBuffer.Length, parameter.Length);

        for (var i = 0; i < parameter.Length; i++)
        {
            var d = gradient[i];
            if (weightDecay != T.Zero)
            {
                d += weightDecay * parameter[i];
            }

            if (momentum != T.Zero)
            {
                momentumBuffer[i] = momentum * momentumBuffer[i] + d;
                d = nesterov ? d + momentum * momentumBuffer[i] : momentumBuffer[i];
            }

            parameter[i] -= learningRate * d;
        }
    }

    /// <summary>How many rows have their argmax at the label; argmax as PyTorch's: NaN beats every number, ties go to the first.</summary>
    internal static int CountCorrect<T>(int n, int classes, T[] logits, ReadOnlySpan<int> labels)
        where T : IFloatingPointIeee754<T>
    {
        CheckRows(n, classes);
        CheckLabels(labels, n, classes);
        CheckElements(nameof(logits), logits.Length, (long)n * classes);

        var correct = 0;
        for (var row = 0; row < n; row++)
        {
            var x = logits.AsSpan(row * classes, classes);
            var best = 0;
            for (var j = 1; j < classes; j++)
            {
                // Strictly greater keeps the first of equal values; a NaN wins unless the best is already NaN.
                if ((T.IsNaN(x[j]) && !T.IsNaN(x[best])) || x[j] > x[best])
                {
                    best = j;
                }
            }

            correct += best == labels[row] ? 1 : 0;
        }

        return correct;
    }

    void IBackend.CrossEntropyForward(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage loss, Storage probabilities) =>
        CrossEntropyForward(n, classes, Host(logits), labels, Host(loss), Host(probabilities));

    void IBackend.CrossEntropyBackward(int n, int classes, Storage probabilities, ReadOnlySpan<int> labels, Storage dloss, Storage dlogits) =>
        CrossEntropyBackward(n, classes, Host(probabilities), labels, Host(dloss), Host(dlogits));

    void IBackend.KdForward(int n, int classes, float temperature, Storage student, Storage teacher, Storage loss, Storage studentSoft, Storage teacherSoft) =>
        KdForward(n, classes, temperature, Host(student), Host(teacher), Host(loss), Host(studentSoft), Host(teacherSoft));

    void IBackend.KdBackward(int n, int classes, float temperature, Storage studentSoft, Storage teacherSoft, Storage dloss, Storage dstudent) =>
        KdBackward(n, classes, temperature, Host(studentSoft), Host(teacherSoft), Host(dloss), Host(dstudent));

    // Attention transfer and SGD run the vectorised loops of Backends/Cpu/CpuLoss.cs after the reference's checks;
    // the per-row losses above are a few thousand elements and stay on the reference.
    void IBackend.AtForward(int n, int c, int h, int w, Storage student, Storage teacher, Storage loss, Storage studentMap, Storage teacherMap, Storage studentNorm)
    {
        float[] hs = Host(student), ht = Host(teacher), hl = Host(loss), hsm = Host(studentMap), htm = Host(teacherMap), hn = Host(studentNorm);
        CheckActivations(n, c, h, w);
        long hw = (long)h * w;
        CheckElements(nameof(student), hs.Length, n * c * hw);
        CheckElements(nameof(teacher), ht.Length, n * c * hw);
        CheckElements(nameof(studentMap), hsm.Length, n * hw);
        CheckElements(nameof(teacherMap), htm.Length, n * hw);
        CheckElements(nameof(studentNorm), hn.Length, n);
        CheckElements(nameof(loss), hl.Length, 1);
        CpuLoss.AtForward(n, c, h, w, hs, ht, hl, hsm, htm, hn, Parallelism);
    }

    void IBackend.AtBackward(int n, int c, int h, int w, Storage student, Storage studentMap, Storage teacherMap, Storage studentNorm, Storage dloss, Storage dstudent)
    {
        float[] hs = Host(student), hsm = Host(studentMap), htm = Host(teacherMap), hn = Host(studentNorm), hdl = Host(dloss), hds = Host(dstudent);
        CheckActivations(n, c, h, w);
        long hw = (long)h * w;
        CheckElements(nameof(student), hs.Length, n * c * hw);
        CheckElements(nameof(dstudent), hds.Length, n * c * hw);
        CheckElements(nameof(studentMap), hsm.Length, n * hw);
        CheckElements(nameof(teacherMap), htm.Length, n * hw);
        CheckElements(nameof(studentNorm), hn.Length, n);
        CheckElements(nameof(dloss), hdl.Length, 1);
        CpuLoss.AtBackward(n, c, h, w, hs, hsm, htm, hn, hdl, hds, Parallelism);
    }

    void IBackend.SgdStep(long length, Storage parameter, Storage gradient, Storage momentumBuffer, float learningRate, float momentum, float weightDecay, bool nesterov)
    {
        CheckElements(nameof(parameter), parameter.Length, length);
        float[] hp = Host(parameter), hg = Host(gradient), hb = Host(momentumBuffer);
        CheckSgdOptions(learningRate, momentum, weightDecay, nesterov);
        CheckElements(nameof(gradient), hg.Length, hp.Length);
        CheckElements(nameof(momentumBuffer), hb.Length, hp.Length);
        CpuLoss.SgdStep(hp, hg, hb, learningRate, momentum, weightDecay, nesterov, Parallelism);
    }

    int IBackend.CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels) =>
        CountCorrect(n, classes, Host(logits), labels);

    /// <summary>max_j x_j/T and Σ_j exp(x_j/T − max): the stable softmax of a row at temperature T.</summary>
    private static (T Max, T Sum) SoftmaxStatistics<T>(ReadOnlySpan<T> x, T temperature) where T : IFloatingPointIeee754<T>
    {
        var max = T.NegativeInfinity;
        foreach (var value in x)
        {
            max = T.Max(max, value / temperature);
        }

        var sum = T.Zero;
        foreach (var value in x)
        {
            sum += T.Exp(value / temperature - max);
        }

        return (max, sum);
    }

    /// <summary>Writes the normalised attention map of one sample (C×HW) into <paramref name="map"/>; returns ‖map‖ before clamping.</summary>
    private static T AttentionMap<T>(ReadOnlySpan<T> activation, int c, Span<T> map) where T : IFloatingPointIeee754<T>
    {
        var hw = map.Length;
        var squares = T.Zero;
        for (var i = 0; i < hw; i++)
        {
            var sum = T.Zero;
            for (var ch = 0; ch < c; ch++)
            {
                sum += activation[ch * hw + i] * activation[ch * hw + i];
            }

            map[i] = sum / T.CreateChecked(c);
            squares += map[i] * map[i];
        }

        var norm = T.Sqrt(squares);
        var divisor = T.Max(norm, T.CreateChecked(AtNormEpsilon));
        for (var i = 0; i < hw; i++)
        {
            map[i] /= divisor;
        }

        return norm;
    }

    /// <summary>A batch of <paramref name="n"/> rows of <paramref name="classes"/> logits, indexable in 32 bits.</summary>
    internal static void CheckRows(int n, int classes)
    {
        if (n < 1 || classes < 1)
        {
            throw new ArgumentException($"a batch needs at least one row and one class, not N={n}, classes={classes}");
        }

        if ((long)n * classes > int.MaxValue)
        {
            throw new ArgumentException($"N={n} × classes={classes} is more than 2^31−1 elements");
        }
    }

    /// <summary>One label per row, each a class index in [0, classes).</summary>
    internal static void CheckLabels(ReadOnlySpan<int> labels, int n, int classes)
    {
        if (labels.Length != n)
        {
            throw new ArgumentException($"{labels.Length} labels for a batch of {n} rows", nameof(labels));
        }

        for (var i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classes)
            {
                throw new ArgumentException($"label {labels[i]} at index {i} is outside the {classes} classes [0, {classes})", nameof(labels));
            }
        }
    }

    /// <summary>N×C×H×W activations, all sizes positive, indexable in 32 bits.</summary>
    internal static void CheckActivations(int n, int c, int h, int w)
    {
        if (n < 1 || c < 1 || h < 1 || w < 1)
        {
            throw new ArgumentException($"activations need positive sizes, not N={n} C={c} H={h} W={w}");
        }

        if ((long)n * c * h * w > int.MaxValue)
        {
            throw new ArgumentException($"N={n} C={c} H={h} W={w} is more than 2^31−1 elements");
        }
    }

    internal static void CheckElements(string name, long actual, long expected)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{name} has {actual} elements where {expected} are needed", name);
        }
    }

    internal static void CheckTemperature(double temperature)
    {
        if (!(temperature > 0) || !double.IsFinite(temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "the temperature must be positive and finite");
        }
    }

    /// <summary>The options torch.optim.SGD accepts (with dampening 0): finite, non-negative, Nesterov only with momentum.</summary>
    internal static void CheckSgdOptions(double learningRate, double momentum, double weightDecay, bool nesterov)
    {
        foreach (var (name, value) in new[] { (nameof(learningRate), learningRate), (nameof(momentum), momentum), (nameof(weightDecay), weightDecay) })
        {
            if (!(value >= 0) || !double.IsFinite(value))
            {
                throw new ArgumentOutOfRangeException(name, value, $"the SGD {name} must be finite and non-negative");
            }
        }

        if (nesterov && momentum == 0)
        {
            throw new ArgumentException("Nesterov momentum needs a momentum above 0 (as torch.optim.SGD requires)", nameof(nesterov));
        }
    }
}

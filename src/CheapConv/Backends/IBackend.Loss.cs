namespace CheapConv.Backends;

/// <summary>Losses of distillation and the optimiser step.</summary>
public partial interface IBackend
{
    /// <summary>
    /// Softmax cross-entropy with integer labels, mean over the batch: loss[0] = −(1/N)·Σ_n log softmax(logits[n])[label[n]].
    /// Saves the softmax probabilities (N×classes) for the backward pass. A label outside [0, classes) is an
    /// <see cref="ArgumentException"/>.
    /// </summary>
    void CrossEntropyForward(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage loss, Storage probabilities);

    /// <summary>dlogits = (probabilities − onehot(labels)) · dloss[0] / N.</summary>
    void CrossEntropyBackward(int n, int classes, Storage probabilities, ReadOnlySpan<int> labels, Storage dloss, Storage dlogits);

    /// <summary>
    /// Knowledge distillation, the corrected form of REFERENCE.md: loss[0] = T²/N · Σ_n KL(softmax(t_n/T) ‖ softmax(s_n/T)).
    /// Saves softmax(s/T) and softmax(t/T) (N×classes each).
    /// </summary>
    void KdForward(int n, int classes, float temperature, Storage student, Storage teacher, Storage loss,
        Storage studentSoft, Storage teacherSoft);

    /// <summary>dstudent = T/N · (softmax(s/T) − softmax(t/T)) · dloss[0]. The teacher gets no gradient.</summary>
    void KdBackward(int n, int classes, float temperature, Storage studentSoft, Storage teacherSoft, Storage dloss, Storage dstudent);

    /// <summary>
    /// Attention transfer for one activation pair (N×C×H×W each): map(a)[n, hw] = mean_c a², q = map/‖map‖₂
    /// per sample (‖·‖ clamped below at 1e-12 as F.normalize does); loss[0] = mean over N·H·W of (q_s − q_t)².
    /// Saves q_s, q_t (N×H·W) and ‖map_s‖ (N) for the backward pass.
    /// </summary>
    void AtForward(int n, int c, int h, int w, Storage student, Storage teacher, Storage loss,
        Storage studentMap, Storage teacherMap, Storage studentNorm);

    /// <summary>dstudent for <see cref="AtForward"/>, times dloss[0]. The teacher gets no gradient.</summary>
    void AtBackward(int n, int c, int h, int w, Storage student, Storage studentMap, Storage teacherMap,
        Storage studentNorm, Storage dloss, Storage dstudent);

    /// <summary>
    /// One SGD step on a parameter, PyTorch semantics (dampening 0): d = g + weightDecay·p;
    /// buf = momentum·buf + d (buf starts at zero); d = nesterov ? d + momentum·buf : buf; p −= lr·d.
    /// </summary>
    void SgdStep(long length, Storage parameter, Storage gradient, Storage momentumBuffer,
        float learningRate, float momentum, float weightDecay, bool nesterov);

    /// <summary>How many rows of logits (N×classes) have their largest value (first on ties) at the label.</summary>
    int CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels);
}

namespace CheapConv.Backends;

/// <summary>Batch normalization, activations, residual add, pooling, padding and element-wise utilities.</summary>
public partial interface IBackend
{
    /// <summary>
    /// Training-mode batch norm over N×C×H×W, per channel c: mean and biased variance over (n, h, w),
    /// y = γ·(x − mean)·invStd + β with invStd = 1/√(var + eps). Saves mean and invStd (C each) for the
    /// backward pass, and updates the running statistics in place as PyTorch does:
    /// running = (1 − momentum)·running + momentum·batch, using the unbiased variance (× NHW/(NHW−1)).
    /// </summary>
    void BatchNormTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta,
        Storage runningMean, Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd);

    /// <summary>Eval-mode batch norm with the running statistics: y = γ·(x − runningMean)/√(runningVar + eps) + β.</summary>
    void BatchNormEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta,
        Storage runningMean, Storage runningVar, float eps, Storage y);

    /// <summary>
    /// Backward of training-mode batch norm: with x̂ = (x − mean)·invStd, dβ = Σ dy, dγ = Σ dy·x̂,
    /// dx = γ·invStd/M · (M·dy − dβ − x̂·dγ), M = N·H·W. Overwrites dgamma and dbeta, and dx unless
    /// <paramref name="accumulateDx"/>: then dx += that gradient, rounded to fp32 first, so the bits equal writing it
    /// elsewhere and adding it with <see cref="Axpy"/> (α = 1) — the autograd's accumulation of a second gradient.
    /// </summary>
    void BatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma,
        Storage saveMean, Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx = false);

    /// <summary>Fused y = relu(training-mode batch norm(x)); same statistics and running updates as <see cref="BatchNormTrainForward"/>.</summary>
    void BatchNormReluTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta,
        Storage runningMean, Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd);

    /// <summary>Fused y = relu(eval-mode batch norm(x)).</summary>
    void BatchNormReluEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta,
        Storage runningMean, Storage runningVar, float eps, Storage y);

    /// <summary>Backward of the fused training-mode BN+ReLU: the ReLU mask is recomputed from x, the saved statistics, γ and β.
    /// <paramref name="accumulateDx"/> as in <see cref="BatchNormBackward"/>.</summary>
    void BatchNormReluBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage beta,
        Storage saveMean, Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx = false);

    /// <summary>y = max(x, 0) over <paramref name="length"/> elements (y may be x).</summary>
    void ReluForward(long length, Storage x, Storage y);

    /// <summary>dx = dy where y &gt; 0, else 0 (uses the forward output y).</summary>
    void ReluBackward(long length, Storage y, Storage dy, Storage dx);

    /// <summary>y = a + b element-wise (the residual add; y may alias a or b).</summary>
    void Add(long length, Storage a, Storage b, Storage y);

    /// <summary>y[n,c] = mean over h, w of x[n,c,h,w].</summary>
    void GlobalAvgPoolForward(int n, int c, int h, int w, Storage x, Storage y);

    /// <summary>dx[n,c,h,w] = dy[n,c] / (H·W).</summary>
    void GlobalAvgPoolBackward(int n, int c, int h, int w, Storage dy, Storage dx);

    /// <summary>Zero padding: y is N×C×(H+top+bottom)×(W+left+right) with x in the middle.</summary>
    void ZeroPadForward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage x, Storage y);

    /// <summary>dx = the middle H×W window of dy (the crop).</summary>
    void ZeroPadBackward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage dy, Storage dx);

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    void Fill(Storage x, float value);

    /// <summary>x *= alpha.</summary>
    void Scale(Storage x, float alpha);

    /// <summary>y += alpha·x (gradient accumulation).</summary>
    void Axpy(float alpha, Storage x, Storage y);

    /// <summary>result[0] = Σ x (deterministic order; result is a 1-element storage).</summary>
    void Sum(Storage x, Storage result);
}

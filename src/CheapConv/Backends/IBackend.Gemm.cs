using CheapConv.Problems;

namespace CheapConv.Backends;

/// <summary>The GEMM family: pointwise 1×1 convolution and the linear layer.</summary>
public partial interface IBackend
{
    /// <summary>
    /// 1×1 convolution without groups or padding, any stride (the WRN shortcut uses stride 2), as a GEMM:
    /// y[n,k,p,q] = Σ_c w[k,c] · x[n, c, p·stride, q·stride]. <paramref name="problem"/> must have R = S = 1,
    /// groups = 1, pad = 0.
    /// </summary>
    void PointwiseForward(ConvProblem problem, Storage x, Storage w, Storage y);

    /// <summary>dx[n,c,h,w] = Σ_k w[k,c] · dy[n,k,h/stride,w/stride] where h, w are multiples of the stride, else 0.</summary>
    void PointwiseBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx);

    /// <summary>dw[k,c] = Σ_{n,p,q} dy[n,k,p,q] · x[n,c,p·stride,q·stride].</summary>
    void PointwiseBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw);

    /// <summary>y = x·wᵀ + b: x is N×in, w is out×in (PyTorch's layout), b has out elements, y is N×out.</summary>
    void LinearForward(int n, int inFeatures, int outFeatures, Storage x, Storage w, Storage b, Storage y);

    /// <summary>dx = dy·w (N×in).</summary>
    void LinearBackwardData(int n, int inFeatures, int outFeatures, Storage dy, Storage w, Storage dx);

    /// <summary>dw = dyᵀ·x (out×in).</summary>
    void LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw);

    /// <summary>db[o] = Σ_n dy[n,o].</summary>
    void LinearBackwardBias(int n, int outFeatures, Storage dy, Storage db);
}

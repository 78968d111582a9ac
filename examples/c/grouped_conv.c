/* grouped_conv.c: one grouped convolution through the CheapConv C ABI, checked against plain loops.
 *
 * Runs the forward, backward-data and backward-weight passes of a grouped 3x3 convolution (n=2 c=8 h=9 w=7
 * k=8 groups=4, stride 2, padding 1) on libcheapconv_emu.so, where "device" pointers are host pointers,
 * computes the same three tensors with the textbook loops in double precision, and compares them with a
 * tolerance derived from the arithmetic (below). Then it shows what a wrong problem gets: a status and a
 * readable cc_last_error() message. Exit status 0 when every element is within its tolerance, else 1.
 *
 * The same code runs on a GPU with libcheapconv.so, given device buffers (cudaMalloc / cuMemAlloc) and a
 * stream instead of malloc'ed memory and NULL.
 *
 * Tolerance: every output element is a sum of T products of fp32 numbers. Computed in fp32 in any order
 * (with or without fused multiply-adds), its error is at most gamma(T) * sum |products|, where
 * gamma(T) = T*u / (1 - T*u) and u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms,
 * sec. 3.1). The double-precision reference is exact to far better than that. So each element is checked
 * against its own bound, and the program prints the largest error and the largest error/bound ratio. */
#include <cheapconv.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exits with the library's message when a call fails. */
#define CHECK(call)                                                                                       \
    do {                                                                                                  \
        cc_status status_ = (call);                                                                       \
        if (status_ != CC_SUCCESS) {                                                                      \
            fprintf(stderr, "%s failed: %s: %s\n", #call, cc_status_string(status_), cc_last_error());    \
            exit(1);                                                                                      \
        }                                                                                                 \
    } while (0)

static void* allocate(size_t bytes)
{
    void* p = calloc(bytes > 0 ? bytes : 1, 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* Uniform values in [-1, 1) from a fixed linear congruential sequence: the same numbers every run. */
static float* random_tensor(size_t count, unsigned long long* state)
{
    float* t = allocate(count * sizeof(float));
    size_t i;
    for (i = 0; i < count; ++i) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i] = (float)((*state >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    return t;
}

/* A reference tensor: the exact sums and, per element, the error bound gamma(T) * sum |products|. */
typedef struct {
    double* value;
    double* magnitude; /* sum of |products| */
    long* terms;       /* T */
    size_t count;
} Reference;

static Reference reference_new(size_t count)
{
    Reference r;
    r.value = allocate(count * sizeof(double));
    r.magnitude = allocate(count * sizeof(double));
    r.terms = allocate(count * sizeof(long));
    r.count = count;
    return r;
}

static void reference_add(Reference* r, size_t i, double a, double b)
{
    r->value[i] += a * b;
    r->magnitude[i] += fabs(a * b);
    r->terms[i] += 1;
}

static void reference_free(Reference* r)
{
    free(r->value);
    free(r->magnitude);
    free(r->terms);
}

/* The three passes as the definition of a grouped cross-correlation (PyTorch's conv2d) says. */
static void reference_passes(const cc_conv_problem* p, const float* x, const float* w, const float* dy, Reference* y,
                             Reference* dx, Reference* dw)
{
    const int cg = p->c / p->groups, kg = p->k / p->groups;
    int n, k, oh, ow, ci, r, s;
    for (n = 0; n < p->n; ++n)
        for (k = 0; k < p->k; ++k)
            for (oh = 0; oh < p->p; ++oh)
                for (ow = 0; ow < p->q; ++ow) {
                    const size_t yi = (((size_t)n * p->k + k) * p->p + oh) * p->q + ow;
                    for (ci = 0; ci < cg; ++ci)
                        for (r = 0; r < p->r; ++r)
                            for (s = 0; s < p->s; ++s) {
                                const int h = oh * p->stride_h - p->pad_h + r, wi = ow * p->stride_w - p->pad_w + s;
                                const int c = k / kg * cg + ci;
                                size_t xi, wj;
                                if (h < 0 || h >= p->h || wi < 0 || wi >= p->w) continue;
                                xi = (((size_t)n * p->c + c) * p->h + h) * p->w + wi;
                                wj = (((size_t)k * cg + ci) * p->r + r) * p->s + s;
                                reference_add(y, yi, x[xi], w[wj]);
                                reference_add(dx, xi, dy[yi], w[wj]);
                                reference_add(dw, wj, dy[yi], x[xi]);
                            }
                }
}

/* Compares one pass; prints its max error and max error/bound ratio; returns 1 when every element is within. */
static int compare(const char* pass, const float* got, const Reference* want)
{
    const double u = ldexp(1.0, -24);
    double max_error = 0.0, max_ratio = 0.0;
    size_t i, bad = 0;
    for (i = 0; i < want->count; ++i) {
        const double t = (double)want->terms[i];
        const double bound = t * u / (1.0 - t * u) * want->magnitude[i];
        const double error = fabs((double)got[i] - want->value[i]);
        if (error > max_error) max_error = error;
        if (bound > 0.0 && error / bound > max_ratio) max_ratio = error / bound;
        if (!(error <= bound)) ++bad; /* NaN counts as bad */
    }
    printf("%-16s max |error| %.3g, max error/bound %.3f over %zu elements: %s\n", pass, max_error, max_ratio, want->count,
           bad == 0 ? "ok" : "OUTSIDE THE BOUND");
    if (bad > 0) printf("  %zu element(s) outside their bound\n", bad);
    return bad == 0;
}

/* Runs pass `pass` with the workspace the library asks for, zeroed (calloc): a split weight gradient counts its
 * blocks' arrivals in the workspace's first CC_SPLIT_COUNTER_BYTES, which must be zero when the call starts. */
static void* workspace_for(const cc_conv_problem* p, cc_conv_pass pass, size_t* bytes)
{
    CHECK(cc_conv_workspace_size(p, pass, NULL, bytes));
    return *bytes > 0 ? allocate(*bytes) : NULL;
}

int main(void)
{
    cc_conv_problem p, wrong;
    cc_handle handle;
    cc_status status;
    char text[256];
    unsigned long long seed = 42;
    size_t x_count, w_count, y_count, bytes;
    float *x, *w, *dy, *y, *dx, *dw;
    void* workspace;
    Reference ry, rdx, rdw;
    int ok = 1;

    /* n, c, h, w, k, r, s, pad_h, pad_w, stride_h, stride_w, groups */
    CHECK(cc_conv_init(&p, 2, 8, 9, 7, 8, 3, 3, 1, 1, 2, 2, 4));
    CHECK(cc_create(&handle, 0));
    CHECK(cc_describe(handle, text, sizeof text));
    printf("grouped convolution n=%d c=%d h=%d w=%d k=%d groups=%d r=%d s=%d stride %dx%d pad %dx%d -> p=%d q=%d\n", p.n, p.c,
           p.h, p.w, p.k, p.groups, p.r, p.s, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.p, p.q);
    printf("library %d.%d.%d on %s\n", cc_version() / 10000, cc_version() / 100 % 100, cc_version() % 100, text);

    x_count = (size_t)p.n * p.c * p.h * p.w;
    w_count = (size_t)p.k * (p.c / p.groups) * p.r * p.s;
    y_count = (size_t)p.n * p.k * p.p * p.q;
    x = random_tensor(x_count, &seed);
    w = random_tensor(w_count, &seed);
    dy = random_tensor(y_count, &seed);
    y = allocate(y_count * sizeof(float));
    dx = allocate(x_count * sizeof(float));
    dw = allocate(w_count * sizeof(float));

    workspace = workspace_for(&p, CC_CONV_FORWARD, &bytes);
    CHECK(cc_conv_forward(handle, &p, NULL, x, w, y, workspace, bytes, NULL));
    free(workspace);
    workspace = workspace_for(&p, CC_CONV_BACKWARD_DATA, &bytes);
    CHECK(cc_conv_backward_data(handle, &p, NULL, dy, w, dx, workspace, bytes, NULL));
    free(workspace);
    workspace = workspace_for(&p, CC_CONV_BACKWARD_WEIGHT, &bytes);
    CHECK(cc_conv_backward_weight(handle, &p, NULL, x, dy, dw, workspace, bytes, NULL));
    free(workspace);

    ry = reference_new(y_count);
    rdx = reference_new(x_count);
    rdw = reference_new(w_count);
    reference_passes(&p, x, w, dy, &ry, &rdx, &rdw);
    ok &= compare("forward", y, &ry);
    ok &= compare("backward-data", dx, &rdx);
    ok &= compare("backward-weight", dw, &rdw);

    /* A problem that cannot exist: 3 groups do not divide 8 channels. */
    status = cc_conv_init(&wrong, 2, 8, 9, 7, 8, 3, 3, 1, 1, 2, 2, 3);
    printf("a wrong problem (groups=3): %s: %s\n", cc_status_string(status), cc_last_error());
    if (status != CC_ERROR_INVALID_VALUE || strstr(cc_last_error(), "groups") == NULL) {
        printf("  expected CC_ERROR_INVALID_VALUE naming the groups\n");
        ok = 0;
    }

    CHECK(cc_destroy(handle));
    reference_free(&ry);
    reference_free(&rdx);
    reference_free(&rdw);
    free(x);
    free(w);
    free(dy);
    free(y);
    free(dx);
    free(dw);
    printf(ok ? "all three passes are within their error bounds\n" : "FAILED\n");
    return ok ? 0 : 1;
}

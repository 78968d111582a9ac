using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests;

internal static class ConvAssert
{
    /// <summary>Fails with the errors of every pass and the first mismatching elements.</summary>
    public static void Passed(ConvCheckResult result)
    {
        if (result.Passed)
        {
            return;
        }

        var lines = result.Passes.Select(p =>
            $"{p.Pass}: max abs {p.MaxAbsError:0.00e+00}, max rel {p.MaxRelError:0.00e+00}, tolerance {p.Tolerance:0.00e+00}, {p.Failures}/{p.Elements} failing" +
            string.Concat(p.FirstFailures.Select(f => "\n    " + f)));
        Assert.Fail($"{result.Problem} on {result.Device}:\n{string.Join("\n", lines)}");
    }
}

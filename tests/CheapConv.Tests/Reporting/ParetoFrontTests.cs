using CheapConv.Reporting;
using Xunit;

namespace CheapConv.Tests.Reporting;

/// <summary>Membership of the Pareto front (both coordinates minimised) on hand-worked examples.</summary>
public class ParetoFrontTests
{
    [Fact]
    public void Members_HandExample_KeepsExactlyTheNonDominated()
    {
        (double, double)[] points =
        [
            (100, 10),        // A: cheapest → on the front
            (200, 8),         // B: better error for more cost → on
            (150, 12),        // C: A is cheaper and better → off
            (300, 8),         // D: B has the same error for less → off
            (200, 8),         // E: identical to B: neither dominates → on
            (50, double.NaN), // F: no error yet → off, and dominates nothing despite the lowest cost
            (400, 5),         // G: best error → on
            (400, 6),         // H: G has the same cost and a better error → off
        ];

        Assert.Equal([true, true, false, false, true, false, true, false], ParetoFront.Members(points));
    }

    [Fact]
    public void Members_SinglePoint_IsOnTheFront() => Assert.Equal([true], ParetoFront.Members([(1e6, 7.5)]));

    [Fact]
    public void Members_NoPoints_IsEmpty() => Assert.Empty(ParetoFront.Members([]));
}

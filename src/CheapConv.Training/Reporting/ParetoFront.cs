namespace CheapConv.Reporting;

/// <summary>
/// The Pareto front of points that trade a cost (parameters, MACs) against an error, both to be minimised.
/// </summary>
internal static class ParetoFront
{
    /// <summary>
    /// For each point, whether it is on the front: no other point has a cost and an error both at most its own
    /// with at least one strictly smaller. Identical points do not dominate each other, so both stay on the front.
    /// Points with a NaN coordinate (a run without a completed epoch) are never on it and dominate nothing.
    /// </summary>
    public static bool[] Members(IReadOnlyList<(double Cost, double Error)> points)
    {
        var members = new bool[points.Count];
        for (var i = 0; i < points.Count; i++)
        {
            var (cost, error) = points[i];
            if (double.IsNaN(cost) || double.IsNaN(error))
            {
                continue;
            }

            var dominated = false;
            for (var j = 0; j < points.Count && !dominated; j++)
            {
                var (otherCost, otherError) = points[j];
                dominated = j != i && otherCost <= cost && otherError <= error && (otherCost < cost || otherError < error);
            }

            members[i] = !dominated;
        }

        return members;
    }
}

namespace CheapConv.Nn;

/// <summary>The initialisations of REFERENCE.md, from a seeded generator so a model is reproducible.</summary>
internal static class Init
{
    /// <summary><paramref name="count"/> samples of N(0, <paramref name="std"/>²) (Box–Muller).</summary>
    public static float[] Normal(Random random, long count, double std)
    {
        var values = new float[count];
        for (long i = 0; i < count; i += 2)
        {
            // 1 − U keeps the logarithm's argument in (0, 1].
            double radius = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())), angle = 2 * Math.PI * random.NextDouble();
            values[i] = (float)(std * radius * Math.Cos(angle));
            if (i + 1 < count)
            {
                values[i + 1] = (float)(std * radius * Math.Sin(angle));
            }
        }

        return values;
    }

    /// <summary><paramref name="count"/> samples of U(−bound, bound).</summary>
    public static float[] Uniform(Random random, long count, double bound)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++)
        {
            values[i] = (float)((2 * random.NextDouble() - 1) * bound);
        }

        return values;
    }

    /// <summary><paramref name="count"/> copies of <paramref name="value"/>.</summary>
    public static float[] Constant(long count, float value)
    {
        var values = new float[count];
        Array.Fill(values, value);
        return values;
    }
}

namespace CheapConv.Models;

/// <summary>How a WRN block uses its units (REFERENCE.md).</summary>
public enum BlockType
{
    /// <summary>Two units per block: bn1 → relu → conv1 → bn2 → relu → conv2, + shortcut.</summary>
    Basic,

    /// <summary>One unit per block: bn1 → relu → conv1, + shortcut (the bottleneck rows of the tables).</summary>
    Bottle,
}

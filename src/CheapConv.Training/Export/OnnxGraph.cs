using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;

namespace CheapConv.Export;

/// <summary>
/// Builds an ONNX graph node by node on OnnxSharp's protobuf types: float32 initializers (raw little-endian data),
/// int64 constants, nodes with attributes, and the graph's input and output declarations. Names are checked for
/// uniqueness here, because ONNX Runtime would only reject a duplicate when the file is loaded.
/// </summary>
internal sealed class OnnxGraph
{
    // TensorProto.DataType values of the ONNX standard (onnx.proto, TensorProto.DataType).
    private const int Float32 = 1;
    private const int Int64 = 7;

    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>The graph built so far.</summary>
    public GraphProto Proto { get; } = new();

    /// <summary>Adds a float32 constant (a weight) under <paramref name="name"/>; returns the name.</summary>
    public string Initializer(string name, IReadOnlyList<int> shape, float[] data)
    {
        var tensor = new TensorProto { Name = Claim(name), DataType = Float32 };
        tensor.Dims.AddRange(shape.Select(d => (long)d));
        // ONNX raw data is little-endian whatever the machine.
        var bytes = new byte[data.Length * sizeof(float)];
        for (var i = 0; i < data.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), data[i]);
        }

        tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes); // the array is ours alone: no second copy
        Proto.Initializer.Add(tensor);
        return name;
    }

    /// <summary>Adds a 1-D int64 constant (Pad's pads) under <paramref name="name"/>; returns the name.</summary>
    public string Int64Initializer(string name, long[] values)
    {
        var tensor = new TensorProto { Name = Claim(name), DataType = Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        Proto.Initializer.Add(tensor);
        return name;
    }

    /// <summary>Adds a node with one output, named after the node; returns the output's name.</summary>
    public string Node(string opType, string name, IEnumerable<string> inputs, params IEnumerable<AttributeProto> attributes)
    {
        var node = new NodeProto { OpType = opType, Name = Claim(name) };
        node.Input.AddRange(inputs);
        node.Output.Add(name);
        node.Attribute.AddRange(attributes);
        Proto.Node.Add(node);
        return name;
    }

    /// <summary>Declares a float32 graph input; a null dimension is the symbolic <paramref name="symbolicDimension"/>.</summary>
    public void Input(string name, IReadOnlyList<int?> shape, string symbolicDimension) =>
        Proto.Input.Add(ValueInfo(Claim(name), shape, symbolicDimension));

    /// <summary>Declares an existing value as a float32 graph output.</summary>
    public void Output(string name, IReadOnlyList<int?> shape, string symbolicDimension) =>
        Proto.Output.Add(ValueInfo(name, shape, symbolicDimension));

    /// <summary>An int attribute.</summary>
    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>An ints attribute.</summary>
    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A float attribute.</summary>
    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    /// <summary>A string attribute.</summary>
    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    private static ValueInfoProto ValueInfo(string name, IReadOnlyList<int?> shape, string symbolicDimension)
    {
        var tensorShape = new TensorShapeProto();
        foreach (var size in shape)
        {
            tensorShape.Dim.Add(size is { } value
                ? new TensorShapeProto.Types.Dimension { DimValue = value }
                : new TensorShapeProto.Types.Dimension { DimParam = symbolicDimension });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = Float32, Shape = tensorShape } },
        };
    }

    private string Claim(string name) =>
        _names.Add(name) ? name : throw new InvalidOperationException($"ONNX graph: the name '{name}' is used twice");
}

using CheapConv.IO;

namespace CheapConv.Data;

/// <summary>
/// Finds and reads the train and test splits of a <see cref="DatasetKind"/> from a folder: the IDX files of
/// (Fashion-)MNIST, raw or .gz, and the binary files of CIFAR-10/100, directly in the folder or in the
/// subfolder their archive extracts to. Missing files are reported all at once, with where to get them.
/// </summary>
public static class DatasetLoader
{
    /// <summary>Where the Debian package dataset-fashion-mnist installs the four .gz IDX files.</summary>
    internal const string FashionMnistDebianDirectory = "/usr/share/datasets/fashion-mnist";

    private const string Cifar10Subfolder = "cifar-10-batches-bin";
    private const string Cifar100Subfolder = "cifar-100-binary";

    private static readonly (string Name, DatasetKind Kind)[] KindNames =
    [
        ("fashion-mnist", DatasetKind.FashionMnist),
        ("mnist", DatasetKind.Mnist),
        ("cifar10", DatasetKind.Cifar10),
        ("cifar100", DatasetKind.Cifar100),
    ];

    /// <summary>The names <see cref="ParseKind"/> accepts, in the order the help lists them.</summary>
    public static IReadOnlyList<string> ValidNames { get; } = [.. KindNames.Select(k => k.Name)];

    /// <summary>
    /// Loads the train and test splits from <paramref name="directory"/>, or from
    /// <see cref="DefaultDirectory"/> when it is null. Every problem is a <see cref="DataException"/>.
    /// </summary>
    public static (ImageDataset Train, ImageDataset Test) Load(DatasetKind kind, string? directory)
    {
        directory ??= DefaultDirectory(kind)
            ?? throw new DataException($"{Name(kind)} has no default location; download it ({WhereToGet(kind)}) and give its folder");
        if (!Directory.Exists(directory))
        {
            throw new DataException($"{Name(kind)}: the folder {directory} does not exist; {MissingAdvice(kind, directory)}");
        }

        return kind switch
        {
            DatasetKind.FashionMnist or DatasetKind.Mnist => LoadIdx(kind, directory),
            DatasetKind.Cifar10 => LoadCifar(kind, directory, Cifar10Subfolder, [.. Enumerable.Range(1, 5).Select(i => $"data_batch_{i}.bin")], ["test_batch.bin"], 1, [10]),
            DatasetKind.Cifar100 => LoadCifar(kind, directory, Cifar100Subfolder, ["train.bin"], ["test.bin"], 2, [20, 100]),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown dataset kind"),
        };
    }

    /// <summary>
    /// The dataset for a command-line name: "fashion-mnist", "mnist", "cifar10" or "cifar100"
    /// (case-insensitive; "cifar-10" and "cifar-100" also accepted).
    /// </summary>
    /// <exception cref="DataException">The name is none of these; the message lists the valid names.</exception>
    public static DatasetKind ParseKind(string name)
    {
        var key = (name ?? "").Trim().ToLowerInvariant();
        key = key switch
        {
            "cifar-10" => "cifar10",
            "cifar-100" => "cifar100",
            _ => key,
        };
        foreach (var (kindName, kind) in KindNames)
        {
            if (kindName == key)
            {
                return kind;
            }
        }

        throw new DataException($"unknown dataset '{UntrustedText.OneLine(name ?? "")}'; valid names: {string.Join(", ", ValidNames)}");
    }

    /// <summary>The command-line name of a dataset ("fashion-mnist", "mnist", "cifar10", "cifar100").</summary>
    public static string Name(DatasetKind kind) =>
        KindNames.FirstOrDefault(k => k.Kind == kind).Name ?? throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown dataset kind");

    /// <summary>The number of classes of a dataset: 10, or 100 for CIFAR-100 (fine labels).</summary>
    public static int Classes(DatasetKind kind) => kind == DatasetKind.Cifar100 ? 100 : 10;

    /// <summary>
    /// Where a dataset is found without a folder given: <see cref="FashionMnistDebianDirectory"/> for
    /// Fashion-MNIST (whether or not the package is installed: loading then says what to install), null for
    /// the others, which no system package provides.
    /// </summary>
    public static string? DefaultDirectory(DatasetKind kind) =>
        kind == DatasetKind.FashionMnist ? FashionMnistDebianDirectory : null;

    private static (ImageDataset Train, ImageDataset Test) LoadIdx(DatasetKind kind, string directory)
    {
        string[] baseNames = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
        var paths = new string[baseNames.Length];
        var missing = new List<string>();
        for (var i = 0; i < baseNames.Length; i++)
        {
            // The raw file first: a folder holding both (after gunzip -k) reads faster from it.
            var raw = Path.Combine(directory, baseNames[i]);
            var gz = raw + ".gz";
            paths[i] = File.Exists(raw) ? raw : File.Exists(gz) ? gz : "";
            if (paths[i].Length == 0)
            {
                missing.Add(baseNames[i] + "[.gz]");
            }
        }

        if (missing.Count > 0)
        {
            throw new DataException(
                $"{Name(kind)}: missing {string.Join(", ", missing)} in {directory}; {MissingAdvice(kind, directory)}");
        }

        var classes = Classes(kind);
        return (ReadIdxSplit(kind, "train", paths[0], paths[1], classes), ReadIdxSplit(kind, "test", paths[2], paths[3], classes));
    }

    private static ImageDataset ReadIdxSplit(DatasetKind kind, string split, string imagesPath, string labelsPath, int classes)
    {
        var (count, rows, columns, pixels) = IdxReader.ReadImages(imagesPath);
        var labels = IdxReader.ReadLabels(labelsPath, classes);
        if (labels.Length != count)
        {
            throw new DataException($"{imagesPath} holds {count} images but {labelsPath} holds {labels.Length} labels; the two files must come from the same split");
        }

        return new ImageDataset($"{Name(kind)}/{split}", 1, rows, columns, classes, pixels, labels, validateLabels: false);
    }

    private static (ImageDataset Train, ImageDataset Test) LoadCifar(
        DatasetKind kind, string directory, string subfolder, string[] trainFiles, string[] testFiles, int labelBytes, int[] labelLimits)
    {
        // The archive extracts to a subfolder: accept the folder that holds the files or the one above it.
        var nested = Path.Combine(directory, subfolder);
        var folder = !File.Exists(Path.Combine(directory, trainFiles[0])) && Directory.Exists(nested) ? nested : directory;
        var missing = trainFiles.Concat(testFiles).Where(f => !File.Exists(Path.Combine(folder, f))).ToList();
        if (missing.Count > 0)
        {
            var where = folder == directory ? $"{directory} (or {nested})" : folder;
            throw new DataException($"{Name(kind)}: missing {string.Join(", ", missing)} in {where}; {MissingAdvice(kind, directory)}");
        }

        return (
            ReadCifarSplit(kind, "train", folder, trainFiles, labelBytes, labelLimits),
            ReadCifarSplit(kind, "test", folder, testFiles, labelBytes, labelLimits));
    }

    private static ImageDataset ReadCifarSplit(DatasetKind kind, string split, string folder, string[] files, int labelBytes, int[] labelLimits)
    {
        var chunks = new List<byte[]>();
        var labels = new List<int>();
        foreach (var file in files)
        {
            CifarReader.ReadInto(Path.Combine(folder, file), labelBytes, labelLimits, chunks, labels);
        }

        var pixels = new byte[chunks.Sum(c => (long)c.Length)];
        var offset = 0;
        foreach (var chunk in chunks)
        {
            chunk.CopyTo(pixels, offset);
            offset += chunk.Length;
        }

        return new ImageDataset(
            $"{Name(kind)}/{split}", CifarReader.Channels, CifarReader.Side, CifarReader.Side, Classes(kind), pixels, [.. labels], validateLabels: false);
    }

    private static string WhereToGet(DatasetKind kind) => kind switch
    {
        DatasetKind.FashionMnist => "https://github.com/zalandoresearch/fashion-mnist, the four IDX files",
        DatasetKind.Mnist => "the four MNIST IDX files, e.g. from https://yann.lecun.com/exdb/mnist/",
        DatasetKind.Cifar10 => "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        DatasetKind.Cifar100 => "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        _ => "unknown dataset",
    };

    private static string MissingAdvice(DatasetKind kind, string directory) => kind switch
    {
        DatasetKind.FashionMnist =>
            $"on Debian/Ubuntu run `apt-get install dataset-fashion-mnist` (installs them in {FashionMnistDebianDirectory}, the default folder); " +
            $"elsewhere download {WhereToGet(kind)}, and put them (raw or .gz) in {directory} or give the folder that holds them",
        DatasetKind.Mnist =>
            $"download {WhereToGet(kind)} and put them (raw or .gz) in {directory} or give the folder that holds them",
        DatasetKind.Cifar10 =>
            $"download {WhereToGet(kind)} and extract it in {directory} (tar xzf; the {Cifar10Subfolder} folder it makes is found) or give the folder that holds the .bin files",
        DatasetKind.Cifar100 =>
            $"download {WhereToGet(kind)} and extract it in {directory} (tar xzf; the {Cifar100Subfolder} folder it makes is found) or give the folder that holds the .bin files",
        _ => "unknown dataset",
    };
}

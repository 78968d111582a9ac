namespace CheapConv.Data;

/// <summary>The datasets the loaders read; <see cref="DatasetLoader.ParseKind"/> maps command-line names to these.</summary>
public enum DatasetKind
{
    /// <summary>Fashion-MNIST: IDX files, 60,000 + 10,000 grey 28×28 images, 10 classes.</summary>
    FashionMnist,

    /// <summary>MNIST: the same IDX layout and sizes as Fashion-MNIST (handwritten digits).</summary>
    Mnist,

    /// <summary>CIFAR-10, binary version: 50,000 + 10,000 RGB 32×32 images, 10 classes.</summary>
    Cifar10,

    /// <summary>CIFAR-100, binary version: 50,000 + 10,000 RGB 32×32 images, 100 fine classes.</summary>
    Cifar100,
}

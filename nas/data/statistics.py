"""Standard per-channel pixel statistics of the datasets this package reads."""

# Per-channel mean and standard deviation of all pixels (scaled to [0, 1]) of each dataset's
# official training set: the statistics torchvision users normalise with. MNIST's are the ones
# in pytorch/examples (mnist/main.py); the others are computed the same way over the 60,000
# (Fashion-MNIST) or 50,000 (CIFAR) training images. The CIFAR-10 std (0.2023, 0.1994, 0.2010)
# copied around many repositories is the mean of per-image stds, not the pixel std: not used.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

"""Convolutional encoders and transposed-convolution decoders for images.

Rows stay flat everywhere outside the module (the estimator, the scaling, the
losses and the objectives see ``(batch, n_features)``): the module reshapes
them to ``(batch, channels, height, width)`` on the way in and flattens its
output on the way out, so it follows :class:`~skae.nn.AutoencoderModule`.
"""

from torch import nn

from skae.nn._mlp import ACTIVATIONS


def conv_output_size(size, kernel_size, stride=2):
    """Side length after a convolution with padding ``kernel_size // 2``.

    Examples
    --------
    >>> from skae.nn._conv import conv_output_size
    >>> [conv_output_size(n, 3) for n in (28, 14, 7, 5, 1)]
    [14, 7, 4, 3, 1]
    """
    padding = kernel_size // 2
    return (size + 2 * padding - kernel_size) // stride + 1


def transposed_output_padding(size, target, kernel_size, stride=2):
    """The ``output_padding`` that makes a transposed convolution map a side
    of ``size`` back to exactly ``target`` (it undoes the rounding down of the
    strided convolution that went from ``target`` to ``size``).

    Examples
    --------
    >>> from skae.nn._conv import transposed_output_padding
    >>> transposed_output_padding(14, 28, 3), transposed_output_padding(4, 7, 3)
    (1, 0)
    """
    padding = kernel_size // 2
    extra = target - ((size - 1) * stride - 2 * padding + kernel_size)
    if not 0 <= extra < stride:
        raise ValueError(
            f"a transposed convolution cannot map {size} back to {target} with "
            f"kernel_size={kernel_size} and stride={stride}."
        )
    return extra


class ConvAutoencoderModule(nn.Module):
    r"""Strided convolutions down to a code, transposed convolutions back up.

    Encoder: for each width in ``channels``, a ``kernel_size`` convolution of
    stride 2 (padding ``kernel_size // 2``, so each side is halved, rounded
    up) and the activation; then a linear map of the flattened feature maps
    to the ``n_components`` code. Decoder: the mirror image, a linear map
    from the code to the last feature maps and the activation, then
    transposed convolutions of stride 2 (each doubling the sides, with the
    ``output_padding`` that lands exactly on the encoder's sizes) back to the
    image's channels, the last one without activation (the decoder returns
    the pre-activation output, as the module protocol asks).

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)`` of one image; rows have
        ``channels * height * width`` features, channel by channel, each
        channel row by row (the order of ``x.reshape(-1, *image_shape)``).
    n_components : int
        Code width.
    channels : sequence of int
        Feature maps of the encoder's convolutions, input side first.
    kernel_size : int, default=3
        Odd side of the square kernels.
    activation : str, default="relu"
        Key of :data:`~skae.nn.ACTIVATIONS`.

    Examples
    --------
    >>> import torch
    >>> from skae.nn import ConvAutoencoderModule
    >>> module = ConvAutoencoderModule((1, 28, 28), 16, (8, 16))
    >>> module.encode(torch.zeros(5, 784)).shape
    torch.Size([5, 16])
    >>> module(torch.zeros(5, 784)).shape
    torch.Size([5, 784])
    """

    def __init__(
        self, image_shape, n_components, channels, kernel_size=3, activation="relu"
    ):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        n_channels, height, width = self.image_shape
        widths = [n_channels, *(int(c) for c in channels)]
        padding = kernel_size // 2
        sizes = [(height, width)]
        for _ in channels:
            h, w = sizes[-1]
            sizes.append(
                (conv_output_size(h, kernel_size), conv_output_size(w, kernel_size))
            )
        last_maps = (widths[-1], *sizes[-1])
        n_last = widths[-1] * sizes[-1][0] * sizes[-1][1]

        encoder = [nn.Unflatten(1, self.image_shape)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            encoder += [
                nn.Conv2d(c_in, c_out, kernel_size, stride=2, padding=padding),
                ACTIVATIONS[activation](),
            ]
        encoder += [nn.Flatten(), nn.Linear(n_last, n_components)]
        self.encoder = nn.Sequential(*encoder)

        decoder = [
            nn.Linear(n_components, n_last),
            ACTIVATIONS[activation](),
            nn.Unflatten(1, last_maps),
        ]
        n_layers = len(channels)
        for i in range(n_layers, 0, -1):
            (h, w), (target_h, target_w) = sizes[i], sizes[i - 1]
            decoder.append(
                nn.ConvTranspose2d(
                    widths[i],
                    widths[i - 1],
                    kernel_size,
                    stride=2,
                    padding=padding,
                    output_padding=(
                        transposed_output_padding(h, target_h, kernel_size),
                        transposed_output_padding(w, target_w, kernel_size),
                    ),
                )
            )
            if i > 1:
                decoder.append(ACTIVATIONS[activation]())
        decoder.append(nn.Flatten())
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))

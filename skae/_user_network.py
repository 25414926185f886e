"""Your own torch encoder and decoder inside an skae autoencoder.

:class:`UserNetworkMixin` gives an estimator the ``encoder`` and ``decoder``
parameters, as skorch users are used to passing ``module=``: with them the
estimator trains the user's networks instead of its own, through the same
training template (scaling, objectives, early stopping, ``partial_fit``,
dask). :class:`UserSAENetwork` and :class:`UserVAENetwork` give a user's pair
what SparseAE's dictionary kinds and the VAE ask of their module. The
parameters are stored untouched; each fit trains a deep copy (or a fresh
instance, for a class), so the user's module never changes.

What persistence keeps: ``pickle`` and ``joblib`` keep the fitted network
whole (its class is imported on load, like any pickled code: trusted files
only). :func:`skae.save` refuses such a model with a TypeError: its file
format never runs code, and rebuilding a user's module would need its class.
"""

import copy

import torch
from sklearn.base import BaseEstimator

from skae.nn import EncoderDecoder
from skae.nn._vae import floored_logvar
from skae.utils._device import resolve_device

#: Constraints of the user-network parameters, merged into an estimator's own.
USER_NETWORK_PARAMETER_CONSTRAINTS = {
    "encoder": [callable, None],
    "decoder": [callable, None],
}


class UserNetwork(EncoderDecoder):
    """A user's encoder and decoder joined into an :class:`~skae.nn.AutoencoderModule`.

    Examples
    --------
    >>> import torch
    >>> from skae._user_network import UserNetwork
    >>> net = UserNetwork(torch.nn.Linear(4, 2), torch.nn.Linear(2, 4))
    >>> net(torch.zeros(3, 4)).shape
    torch.Size([3, 4])
    """


class UserVAENetwork(UserNetwork):
    """A user's encoder and decoder as the VAE's module.

    The encoder's ``2 * n_components`` outputs per row are the posterior
    mean (first half) and log-variance (second half); the decoder's output
    parametrizes the likelihood as in :class:`~skae.nn.VAEModule` (logits,
    or the Gaussian mean, whose log-variance is learned here, one per
    feature or one shared).

    Examples
    --------
    >>> import torch
    >>> from skae._user_network import UserVAENetwork
    >>> net = UserVAENetwork(torch.nn.Linear(4, 4), torch.nn.Linear(2, 4), 4)
    >>> [t.shape for t in net.encode(torch.zeros(3, 4))], net.decoder_logvar().shape
    ([torch.Size([3, 2]), torch.Size([3, 2])], torch.Size([4]))
    """

    def __init__(
        self, encoder, decoder, n_features, likelihood="gaussian", variance="feature"
    ):
        super().__init__(encoder, decoder)
        self.likelihood = likelihood
        if likelihood == "gaussian":
            n_var = n_features if variance == "feature" else 1
            # As VAEModule's: starts at variance 1 + MIN_VARIANCE.
            self.raw_logvar = torch.nn.Parameter(torch.zeros(n_var))

    def encode(self, x):
        """Return ``(mu, logvar)`` of :math:`q(z \\mid x)`."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decoder_logvar(self):
        """Log-variance of the Gaussian decoder (None for Bernoulli)."""
        if self.likelihood != "gaussian":
            return None
        return floored_logvar(self.raw_logvar)

    def forward(self, x):
        return self.decode(self.encode(x)[0])


class UserSAENetwork(UserNetwork):
    """A user's encoder (wrapped in :class:`~skae.nn._sae.UserSAEEncoder`)
    and decoder as the network of SparseAE's dictionary kinds.

    Examples
    --------
    >>> import torch
    >>> from skae._user_network import UserSAENetwork
    >>> from skae.nn._sae import JumpReLU, UserSAEEncoder
    >>> enc = UserSAEEncoder(torch.nn.Linear(4, 8), JumpReLU(8, 0.05), 8)
    >>> net = UserSAENetwork(enc, torch.nn.Linear(8, 4))
    >>> net.decode_residual(torch.zeros(3, 8)).abs().max().item()
    0.0
    """

    def decode_residual(self, z):
        """What the latents ``z`` add to the reconstruction, :math:`g(z) -
        g(0)`: the AuxK loss reconstructs the residual with it (for a linear
        decoder, its weights times ``z``, as for skae's own network)."""
        return self.decoder(z) - self.decoder(torch.zeros_like(z))


def is_user_network(value):
    """Whether a parameter value is a user's network (a torch module, or a
    class or callable making one), which the safe file format cannot store.

    Examples
    --------
    >>> import torch
    >>> from skae._user_network import is_user_network
    >>> is_user_network(torch.nn.Linear), is_user_network("relu")
    (True, False)
    """
    if isinstance(value, torch.nn.Module):
        return True
    if isinstance(value, BaseEstimator) or (
        isinstance(value, type) and issubclass(value, BaseEstimator)
    ):
        return False
    return callable(value)


def _make_part(spec, n_in, n_out, name):
    if isinstance(spec, torch.nn.Module):
        # The user's instance is a parameter: it must never change.
        return copy.deepcopy(spec)
    part = spec(n_in, n_out)
    if not isinstance(part, torch.nn.Module):
        raise TypeError(
            f"{name}={spec!r} called as {name}({n_in}, {n_out}) returned "
            f"{type(part).__name__}, not a torch.nn.Module."
        )
    return part


def _output_shape(network, inputs, failure):
    """The shape of ``network(inputs)`` (the output's type if it is not a
    tensor); a ``RuntimeError`` inside the network becomes a ``ValueError``
    that starts with ``failure``."""
    try:
        out = network(inputs)
    except RuntimeError as exc:
        raise ValueError(f"{failure}: {exc}") from None
    return tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)


def _first_device(module):
    for tensor in module.parameters():
        if not isinstance(tensor, torch.nn.parameter.UninitializedParameter):
            return tensor.device
    return torch.device("cpu")


def _check_user_shapes(encoder, decoder, n_features, n_components, width, estimator):
    """One forward pass of two zero rows through each part, in eval mode (no
    batch statistics change), to report wrong widths before training starts."""
    parts = (encoder, decoder)
    modes = [part.training for part in parts]
    for part in parts:
        part.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(2, n_features, device=_first_device(encoder))
            shape = _output_shape(
                encoder,
                x,
                f"encoder does not run on rows of {n_features} features "
                "(n_features_in_)",
            )
            if shape != (2, width):
                raise ValueError(
                    f"encoder maps 2 rows of {n_features} features to {shape}, "
                    f"but {type(estimator).__name__} with n_components="
                    f"{n_components} expects a tensor of shape (2, {width}): "
                    f"{estimator._user_encoder_output(n_components)} per row."
                )
            z = torch.zeros(2, n_components, device=_first_device(decoder))
            shape = _output_shape(
                decoder, z, f"decoder does not run on codes of shape {tuple(z.shape)}"
            )
            if shape != (2, n_features):
                raise ValueError(
                    f"decoder maps codes of shape {tuple(z.shape)} to {shape}, "
                    f"expected (2, {n_features}): one "
                    "reconstruction of the n_features inputs per row."
                )
    finally:
        for part, mode in zip(parts, modes):
            part.train(mode)


class UserNetworkMixin:
    """``encoder=``/``decoder=``: train the user's torch networks.

    Placed before the MLP mixins, it takes over the architecture, the module
    and its initialization when the parameters are set, and leaves them to
    the estimator's own network otherwise. A model whose network is more
    than a code and a reconstruction says so through three hooks:
    ``_user_encoder_width`` (the VAE's encoder returns a mean and a
    log-variance), ``_user_encoder_output`` (that, in words, for the shape
    error) and ``_wrap_user_network`` (what skae adds around the copied
    parts: SparseAE's code layer, the VAE's decoder variances).
    """

    def _user_network(self):
        return self.encoder is not None or self.decoder is not None

    def _validate_model_params(self, n_features):
        super()._validate_model_params(n_features)
        if not self._user_network():
            return
        if self.encoder is None or self.decoder is None:
            raise ValueError(
                "encoder and decoder must be given together (got "
                f"encoder={self.encoder!r}, decoder={self.decoder!r})."
            )
        if getattr(self, "pretraining", None) is not None:
            raise ValueError(
                f"pretraining={self.pretraining!r} trains the layers of skae's own "
                "MLP; it does not apply to your encoder and decoder: use "
                "pretraining=None."
            )

    def _architecture(self, n_features):
        if not self._user_network():
            return super()._architecture(n_features)
        return {
            "n_features": int(n_features),
            "n_components": int(self.n_components),
            "user_network": True,
        }

    def _build_module(self, architecture):
        if not architecture.get("user_network"):
            return super()._build_module(architecture)
        n_features, n_components = (
            architecture["n_features"],
            architecture["n_components"],
        )
        width = self._user_encoder_width(n_components)
        encoder = _make_part(self.encoder, n_features, width, "encoder")
        decoder = _make_part(self.decoder, n_components, n_features, "decoder")
        _check_user_shapes(encoder, decoder, n_features, n_components, width, self)
        return self._wrap_user_network(encoder, decoder, architecture)

    # Hooks of the estimators whose network is more than an encoder and a
    # decoder: what the encoder returns, and what skae adds around the parts.
    def _user_encoder_width(self, n_components):
        """Outputs of the user's encoder per row (the VAE's are twice the code)."""
        return n_components

    def _user_encoder_output(self, n_components):
        """What the encoder's outputs are, for the shape error message."""
        return f"a code of n_components={n_components} values"

    def _wrap_user_network(self, encoder, decoder, architecture):
        """The fitted module made of the user's (copied) encoder and decoder."""
        return UserNetwork(encoder, decoder)

    # ----------------------------------------------------------- persistence
    def __getstate__(self):
        state = super().__getstate__()
        module = self.__dict__.get("module_")
        if isinstance(module, UserNetwork):
            # Rebuilding from architecture_ would read the parameters: the
            # fitted network travels whole (on the CPU), classes by reference.
            state["module_"] = copy.deepcopy(module).cpu()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        module = self.__dict__.get("module_")
        if isinstance(module, UserNetwork):
            device = self.device_
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
            self.device_ = resolve_device(device)
            self.module_ = module.to(self.device_)

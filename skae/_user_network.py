"""Your own torch encoder and decoder inside an skae autoencoder.

:class:`UserNetworkMixin` gives an estimator the ``encoder`` and ``decoder``
parameters, as skorch users are used to passing ``module=``: with them the
estimator trains the user's networks instead of its MLP, through the same
training template (scaling, objectives, early stopping, ``partial_fit``,
dask). The parameters are stored untouched; each fit trains a deep copy (or a
fresh instance, for a class), so the user's module never changes.

What persistence keeps: ``pickle`` and ``joblib`` keep the fitted network
whole (its class is imported on load, like any pickled code: trusted files
only). :func:`skae.save` refuses such a model with a TypeError: its file
format never runs code, and rebuilding a user's module would need its class.
"""

import copy

import torch
from sklearn.base import BaseEstimator

from skae.nn import EncoderDecoder
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


def _first_device(module):
    for tensor in module.parameters():
        if not isinstance(tensor, torch.nn.parameter.UninitializedParameter):
            return tensor.device
    return torch.device("cpu")


class UserNetworkMixin:
    """``encoder=``/``decoder=``: train the user's torch networks.

    Placed before the MLP mixins, it takes over the architecture, the module
    and its initialization when the parameters are set, and leaves them to
    the estimator's own network otherwise.
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
        module = UserNetwork(
            _make_part(self.encoder, n_features, n_components, "encoder"),
            _make_part(self.decoder, n_components, n_features, "decoder"),
        )
        self._check_user_shapes(module, n_features, n_components)
        return module

    def _check_user_shapes(self, module, n_features, n_components):
        """One forward pass of two zero rows, in eval mode (no batch statistics
        change), to report wrong widths before training starts."""
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                x = torch.zeros(2, n_features, device=_first_device(module))
                try:
                    code = module.encode(x)
                except RuntimeError as exc:
                    raise ValueError(
                        f"encoder does not run on rows of {n_features} features "
                        f"(n_features_in_): {exc}"
                    ) from None
                if tuple(code.shape) != (2, n_components):
                    raise ValueError(
                        f"encoder maps 2 rows of {n_features} features to a tensor "
                        f"of shape {tuple(code.shape)}, but n_components="
                        f"{n_components} expects codes of shape (2, {n_components})."
                    )
                try:
                    out = module.decode(code)
                except RuntimeError as exc:
                    raise ValueError(
                        f"decoder does not run on codes of shape {tuple(code.shape)}: "
                        f"{exc}"
                    ) from None
                if tuple(out.shape) != (2, n_features):
                    raise ValueError(
                        f"decoder maps codes of shape {tuple(code.shape)} to shape "
                        f"{tuple(out.shape)}, expected (2, {n_features}): one "
                        "reconstruction of the n_features inputs per row."
                    )
        finally:
            module.train(was_training)

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

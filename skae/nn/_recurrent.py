"""Recurrent (GRU / LSTM) encoders and decoders for flattened sequences.

Rows reach the network as the estimator sees them, flattened step by step:
``[x_1[0], ..., x_1[C-1], x_2[0], ...]`` for a sequence of ``T`` steps of
``C`` channels (a C-ordered ``(T, C)`` array raveled). The modules reshape
them to ``(batch, T, C)`` on the way in and flatten on the way out, so the
network follows the same :class:`~skae.nn.AutoencoderModule` protocol as an
MLP and the estimator's training template does not know it is recurrent.
"""

import torch
from torch import nn

#: The recurrent cells a :class:`RecurrentAutoencoder` can use.
CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class RecurrentEncoder(nn.Module):
    """Read a sequence step by step; its last hidden state, mapped linearly,
    is the code.

    Parameters
    ----------
    n_steps, n_channels : int
        Shape of one sequence; inputs are rows of ``n_steps * n_channels``.
    n_components : int
        Code width.
    cell : {"gru", "lstm"}, default="gru"
    hidden_size : int, default=64
    num_layers : int, default=1

    Examples
    --------
    >>> import torch
    >>> from skae.nn import RecurrentEncoder
    >>> RecurrentEncoder(5, 3, 2)(torch.zeros(4, 15)).shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        n_steps,
        n_channels,
        n_components,
        cell="gru",
        hidden_size=64,
        num_layers=1,
    ):
        super().__init__()
        self.n_steps, self.n_channels = n_steps, n_channels
        self.rnn = CELLS[cell](
            n_channels, hidden_size, num_layers=num_layers, batch_first=True
        )
        self.code = nn.Linear(hidden_size, n_components)

    def forward(self, x):
        steps = x.reshape(len(x), self.n_steps, self.n_channels)
        outputs, _ = self.rnn(steps)
        # The last layer's state after the last step summarizes the sequence
        # (the same tensor as h_n[-1], for GRU and LSTM alike).
        return self.code(outputs[:, -1])


class RecurrentDecoder(nn.Module):
    """Unroll a code back into a sequence.

    The code sets the recurrent network's initial state (through a linear
    map and tanh, the range of a GRU/LSTM state) and is also its input at
    every step, so that no step has to carry the code alone through the
    recurrence; a linear read-out maps each step's hidden state to the
    channels. Decoding is a function of the code only (no teacher forcing),
    so ``inverse_transform`` is well defined.

    Parameters
    ----------
    n_steps, n_channels : int
        Shape of one output sequence; outputs are rows of
        ``n_steps * n_channels``.
    n_components : int
        Code width.
    cell : {"gru", "lstm"}, default="gru"
    hidden_size : int, default=64
    num_layers : int, default=1

    Examples
    --------
    >>> import torch
    >>> from skae.nn import RecurrentDecoder
    >>> RecurrentDecoder(5, 3, 2)(torch.zeros(4, 2)).shape
    torch.Size([4, 15])
    """

    def __init__(
        self,
        n_steps,
        n_channels,
        n_components,
        cell="gru",
        hidden_size=64,
        num_layers=1,
    ):
        super().__init__()
        self.n_steps, self.n_channels = n_steps, n_channels
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.lstm = cell == "lstm"
        n_states = 2 if self.lstm else 1  # an LSTM has a cell state too
        self.initial = nn.Linear(n_components, n_states * num_layers * hidden_size)
        self.rnn = CELLS[cell](
            n_components, hidden_size, num_layers=num_layers, batch_first=True
        )
        self.readout = nn.Linear(hidden_size, n_channels)

    def forward(self, z):
        batch = len(z)
        state = torch.tanh(self.initial(z))
        # (batch, [2,] layers * hidden) -> ([2,] layers, batch, hidden)
        state = state.reshape(batch, -1, self.num_layers, self.hidden_size)
        state = state.permute(1, 2, 0, 3).contiguous()
        state = (state[0], state[1]) if self.lstm else state[0]
        inputs = z.unsqueeze(1).expand(batch, self.n_steps, z.shape[1])
        outputs, _ = self.rnn(inputs, state)
        return self.readout(outputs).reshape(batch, self.n_steps * self.n_channels)


class RecurrentAutoencoder(nn.Module):
    """A sequence autoencoder: a recurrent encoder to a code, and a recurrent
    decoder that unrolls it back (Srivastava et al., 2015).

    Like every skae module it maps flattened rows to codes and back to
    *pre-activation* flattened rows (logits for a BCE loss).

    Parameters
    ----------
    n_features : int
        Row width; must equal ``n_steps * n_channels``.
    n_components : int
        Code width.
    n_steps, n_channels : int
        Shape of one sequence.
    cell : {"gru", "lstm"}, default="gru"
        Recurrent cell of the encoder and the decoder.
    hidden_size : int, default=64
        Width of the recurrent state.
    num_layers : int, default=1
        Stacked recurrent layers, in the encoder and in the decoder.

    Examples
    --------
    >>> import torch
    >>> from skae.nn import RecurrentAutoencoder
    >>> module = RecurrentAutoencoder(15, 2, n_steps=5, n_channels=3)
    >>> module.encode(torch.zeros(4, 15)).shape
    torch.Size([4, 2])
    >>> module(torch.zeros(4, 15)).shape
    torch.Size([4, 15])
    """

    def __init__(
        self,
        n_features,
        n_components,
        n_steps,
        n_channels,
        cell="gru",
        hidden_size=64,
        num_layers=1,
    ):
        super().__init__()
        sizes = {
            "n_features": n_features,
            "n_components": n_components,
            "n_steps": n_steps,
            "n_channels": n_channels,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
        }
        for name, value in sizes.items():
            # Checked here too: a saved file's architecture rebuilds the module.
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if n_steps * n_channels != n_features:
            raise ValueError(
                f"A sequence of {n_steps} steps of {n_channels} channels has "
                f"{n_steps * n_channels} values, not n_features={n_features}."
            )
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
        shape = (n_steps, n_channels, n_components)
        sizes = {"cell": cell, "hidden_size": hidden_size, "num_layers": num_layers}
        self.encoder = RecurrentEncoder(*shape, **sizes)
        self.decoder = RecurrentDecoder(*shape, **sizes)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))

"""Test-session settings."""

import torch

# The models under test are tiny: one intra-op thread is as fast, and it keeps
# the suite fast when other processes share the cores (e.g. GridSearchCV jobs).
torch.set_num_threads(1)

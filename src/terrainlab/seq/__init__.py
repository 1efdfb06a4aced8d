"""terrainlab.seq — sequence models as trajectories (the hidden-state world for language models).

A transformer's residual stream is a trajectory across depth, h_{l+1} = h_l + f_l(h_l) (a ResNet
is explicit Euler); a recurrent model's hidden state is a trajectory across tokens,
h_t = Φ(h_{t−1}, x_t). This package trains small models on tasks with exact answers, and gives
instruments that read those trajectories out of any ``nn.Module`` with forward hooks.
"""

# --- models and tasks (h7) ---
from .checkpoint import load_checkpoint, save_checkpoint  # noqa: F401
from .models import GRULM, TinyGPT  # noqa: F401
from .pretrained import (  # noqa: F401  (h9: MiniLM-L6; the `lm` extra is needed only when called)
    bert_layer_substeps,
    embed,
    load_minilm,
    mean_pool,
    minilm_layers,
    minilm_path,
    random_init_like,
    residual_stream,
    substep_run,
    tokenize_texts,
)
from .tasks import Copy, Lookup, Mixture, ModArithmetic, TaskBatch, Vocab, concat_batches  # noqa: F401
from .train import (  # noqa: F401
    LMTrainResult,
    accuracy,
    answer_correct,
    generate,
    generated_accuracy,
    lm_loss,
    train_lm,
)

"""terrainlab.seq — sequence models as trajectories (the hidden-state world for language models).

A transformer's residual stream is a trajectory across depth, h_{l+1} = h_l + f_l(h_l) (a ResNet
is explicit Euler); a recurrent model's hidden state is a trajectory across tokens,
h_t = Φ(h_{t−1}, x_t). This package trains small models on tasks with exact answers, and gives
instruments that read those trajectories out of any ``nn.Module`` with forward hooks.
"""

# --- models and tasks (h7), instruments for any nn.Module (h8), MiniLM (h9) ---
from .basins import BasinVolume, TangentHessian, answer_hessian, basin_volume, gru_cell_map  # noqa: F401  (h8)
from .checkpoint import load_checkpoint, save_checkpoint  # noqa: F401
from .evaluation import ROC, ContractionFit, cohen_kappa, contraction_fit, roc_auc  # noqa: F401  (h2)
from .geometry import (  # noqa: F401  (h8: step geometry, Def-4 classes, Def-3 events)
    CLASS_NAMES,
    ImplicitEvents,
    StepClassComparison,
    StepClasses,
    StepGeometry,
    classify_steps,
    implicit_reasoning_events,
    reinit_like,
    step_classes_with_controls,
    step_geometry,
)
from .lens import AnswerBelief, LogitLens, answer_belief, logit_lens  # noqa: F401  (h8)
from .loops import LoopCensus, WindowOrbit, canonical_loop, loop_census, window_orbit  # noqa: F401  (s12 h1)
from .models import GRULM, TinyGPT  # noqa: F401
from .predictability import Predictability, predictability, r2_score  # noqa: F401  (s12 h1)
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
from .smoothness import (  # noqa: F401  (s12-h4: closed-form tangent Hessian, κ on the temperature path, power-law fit)
    BeliefRuggedness,
    PowerLawFit,
    belief_path_ruggedness,
    coefficient_of_variation,
    fit_power_law,
    logit_hessian_eigenvalues,
)
from .substeps import SubstepStream, pre_ln_branches, pre_ln_substep_stream, residual_substeps  # noqa: F401  (h3)
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
from .trajectory import HiddenTrajectory, capture, first_tensor, resolve_layers, token_trajectory  # noqa: F401  (h8)

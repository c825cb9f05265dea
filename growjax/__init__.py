"""growjax: train language models cheaply by growing them.

    import jax, growjax
    cfg = growjax.ModelConfig(vocab_size=512, d_model=64, n_layers=2, n_heads=4,
                              head_dim=16, d_ff=256, max_len=256, pos="xpos")
    params = growjax.model.init(cfg, jax.random.key(0))
    logits = growjax.model.apply(params, cfg, tokens)
"""

from growjax import config, grow, model, positions
from growjax.config import ModelConfig

__all__ = ["ModelConfig", "config", "grow", "model", "positions"]

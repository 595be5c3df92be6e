"""Load MoE models, know where their experts live, and train one expert group of them."""

"""compass: COntinual Multilingual PEFT with Adaptive Semantic Sampling (arXiv 2604.20720)."""
__version__ = "0.1.0"

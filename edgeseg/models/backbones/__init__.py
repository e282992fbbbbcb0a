"""In-house backbones (torchvision does not run here). Each returns a list of feature maps,
shallow to deep, and exposes `out_channels` in the same order."""

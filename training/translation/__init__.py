"""SAR-to-optical translation (pix2pix): U-Net generator, PatchGAN discriminator, training, export.

``python -m training.translation {train,export,evaluate}``; see ``docs/TRAINING.md``.
"""

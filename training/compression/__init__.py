"""Learned SAR compression: autoencoder variants, factorised prior, training, ONNX export."""

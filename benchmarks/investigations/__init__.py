"""One-off investigations behind a decision or a benchmark figure, kept runnable (each has a Make target).

- :mod:`.codec_ceiling` (``make bench-codec-ceiling``): where the learned codec's quality is lost,
  quantisation or the autoencoder (docs/decisions/2026-11-26-codec-training-schedule.md).
- :mod:`.osdataset_check` (``make bench-osdataset-check``): the OSdataset pair's homography reproduces its
  warped optical image to a fraction of a pixel, so the co-registration benchmark's residual on that pair
  is the dataset's own ground truth.
"""

"""The hyperprior entropy model of the compression family (``python -m training.compression hyper ...``):
:mod:`.cache` (latents of a shipped encoder), :mod:`.model` (torch modules), :mod:`.train`, :mod:`.tables`
(the engine's table format), :mod:`.export` and :mod:`.card` (model card), :mod:`.cli` (the subcommands)."""

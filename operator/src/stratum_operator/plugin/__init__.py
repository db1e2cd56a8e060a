"""``kubectl stratum``: a pool's health on one screen, modelled on ``kubectl cnpg
status``. ``gather.py`` asks the cluster (through kubectl, so the user's kubeconfig,
context and rights apply); ``render.py`` turns what it found into text or JSON."""

"""Instant styles (Johnson et al. 2016): train a network once per painting, then stylise in one pass.

`modelfile` reads and writes the self-describing model files and lists the known ones, `data` feeds
training photos, `train` fits a network to the perceptual criterion, `infer` applies one to images and
video.
"""

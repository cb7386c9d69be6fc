"""DCGAN (Radford et al. 2015) built from nn layers."""

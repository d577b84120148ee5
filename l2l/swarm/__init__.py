"""The LOIS swarm (Cao et al., 2019): features, attention, posterior, unroll."""
